"""Fuzzing the live service: schemathesis over its own OpenAPI schema, and hypothesis over
every JSON value a real column can receive. No request may get a 5xx answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_service import (
    COLUMNS,
    HOUSING,
    KEY,
    PURPOSE,
    Service,
    request_rows,
    running_service,
    write_service_files,
)

pytestmark = pytest.mark.reliability  # part of the reliability suite (tests/reliability.py)

AUTH = {"Authorization": f"Bearer {KEY}"}
# Bounded and reproducible: the same examples on every run.
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("fuzz")
    files = write_service_files(folder)
    with running_service(
        files, "--max-rows", "20", "--max-evals", "2000", store=folder / "audit.db"
    ) as svc:
        yield svc


OPERATIONS = [
    ("/healthz", "GET"),
    ("/v1/model", "GET"),
    ("/v1/explanations", "POST"),
    ("/v1/explanations/{record_id}", "GET"),
    ("/v1/explanations/{record_id}/replay", "POST"),
]


@pytest.fixture(scope="module")
def api_schema(live: Service) -> Any:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def test_the_schema_lists_every_operation(api_schema: Any) -> None:
    listed = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


# schemathesis' own pytest integration (``from_fixture``) does not run under this pytest
# version, so each operation's case strategy is driven by hypothesis directly.
@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [(p, m, GenerationMode.POSITIVE) for p, m in OPERATIONS]
    # /healthz takes no input, so it has no invalid request to generate.
    + [(p, m, GenerationMode.NEGATIVE) for p, m in OPERATIONS if p != "/healthz"],
)
def test_no_operation_answers_5xx(api_schema: Any, live: Service, path, method, mode) -> None:
    operation = api_schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # Only checks that hold for any input: a generated row almost never names the
        # model's columns, so data "valid per schema" is rightly refused with 422.
        case.call_and_validate(
            base_url=live.url,
            headers=AUTH,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    check()


odd_cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["own", "rent", "free", "car", "repairs", "NaN", ""]),
)
number = st.one_of(st.integers(18, 90), st.floats(0, 1e5, allow_nan=False))
# Mostly valid cells, so that many requests are explained and the odd ones sit among them.
cells_of = {
    "age": st.one_of(number, number, odd_cell),
    "income": st.one_of(number, number, odd_cell),
    "housing": st.one_of(st.sampled_from(HOUSING), st.sampled_from(HOUSING), odd_cell),
    "purpose": st.one_of(st.sampled_from(PURPOSE), st.sampled_from(PURPOSE), odd_cell),
}


def test_any_cell_values_in_real_columns_get_200_or_422(live: Service, attack: Any) -> None:
    seen: list[int] = []

    @FUZZ
    @given(
        rows=st.lists(st.fixed_dictionaries(cells_of), min_size=1, max_size=3),
        drop=st.sampled_from([None, None, None, *COLUMNS]),
    )
    def check(rows: list[dict[str, Any]], drop: str | None) -> None:
        rows = [dict(r) for r in rows]
        if drop is not None:
            del rows[0][drop]
        # json writes NaN/Infinity literals, which the service must refuse by name.
        body = json.dumps({"rows": rows, "max_evals": 200})
        with httpx.Client(base_url=live.url, headers=AUTH, timeout=60) as client:
            answer = client.post(
                "/v1/explanations", content=body, headers={"Content-Type": "application/json"}
            )
        seen.append(attack.http(answer).status_code)
        assert answer.status_code in (200, 422), answer.text
        if answer.status_code == 422:
            for error in answer.json()["detail"]:
                assert error["loc"][:3] == ["body", "rows", error["loc"][2]]
                assert error["loc"][3] in COLUMNS or error["type"] == "unknown_column"
                assert error["msg"]
        else:
            assert len(answer.json()["explanations"]) == len(rows)

    check()
    # Both kinds of answer were exercised.
    assert 200 in seen
    assert 422 in seen


# -- valid requests, then one field broken at a time ------------------------------------------------
MAX_SEED = 2**63 - 1
# Text a client may well send and the store must hold: any character but lone surrogates and NUL.
plain_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=12,
)
valid_row = st.fixed_dictionaries(
    {
        "age": st.one_of(st.integers(18, 90), st.floats(18, 90)),
        "income": st.floats(0, 1e5),
        "housing": st.sampled_from(HOUSING),
        "purpose": st.sampled_from(PURPOSE),
    }
)
# JSON that json.dumps would never write: literals outside the standard, escapes of lone
# surrogates and NUL, numbers float32 cannot hold, integers no float or int64 can.
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e308", "-3.5e38", "1e400", "1" + "0" * 30]
RAW_TEXT = ['"\\ud800"', '"a\\u0000b"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"', '""']
odd_value = st.one_of(
    st.none(),
    st.booleans(),
    st.just([]),
    st.just({"a": 1}),
    plain_text,
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and infinities too (json.dumps writes them as literals)
)
MUTATIONS = [
    "cell_type",
    "cell_raw",
    "category",
    "extra_key",
    "raw_key",
    "missing_key",
    "id_text",
    "id_raw",
    "id_duplicate",
    "id_count",
    "seed",
    "max_evals",
    "threshold",
    "exclude",
    "output",
    "top_key",
]


@st.composite
def fuzzed_requests(draw: st.DrawFn) -> tuple[str, str | None, int]:
    """(raw JSON body, the mutation applied or None, number of rows)."""
    n = draw(st.integers(1, 3))
    rows = [dict(draw(valid_row)) for _ in range(n)]
    body: dict[str, Any] = {"rows": rows, "max_evals": 2000}
    if draw(st.booleans()):
        body["decision_ids"] = draw(st.lists(plain_text, min_size=n, max_size=n, unique=True))
    body["method"] = draw(st.sampled_from(["kernelshap", "permutation", "exact"]))
    body["seed"] = draw(st.sampled_from([0, 1, 7, MAX_SEED]))
    if draw(st.booleans()):
        body["threshold"] = draw(st.floats(0, 1))
        body["adverse"] = draw(st.sampled_from(["decrease", "increase"]))
        body["output"] = draw(st.sampled_from([0, 1, "probabilities[1]"]))
    if draw(st.booleans()):
        body["exclude"] = draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True))
    raws: list[str] = []

    def raw(text: str) -> str:
        raws.append(text)
        return f"@RAW{len(raws) - 1}@"

    mutation = draw(st.one_of(st.none(), st.sampled_from(MUTATIONS)))
    i = draw(st.integers(0, n - 1))
    column = draw(st.sampled_from(COLUMNS))
    if mutation == "cell_type":
        rows[i][column] = draw(odd_value)
    elif mutation == "cell_raw":
        rows[i][column] = raw(draw(st.sampled_from(RAW_NUMBERS + RAW_TEXT)))
    elif mutation == "category":
        rows[i][draw(st.sampled_from(["housing", "purpose"]))] = draw(plain_text)
    elif mutation == "extra_key":
        rows[i][draw(plain_text)] = draw(odd_value)
    elif mutation == "raw_key":
        rows[i][raw(draw(st.sampled_from(RAW_TEXT)))] = 1
    elif mutation == "missing_key":
        del rows[i][column]
    elif mutation in ("id_text", "id_raw", "id_duplicate", "id_count"):
        ids = body.get("decision_ids") or [f"id-{k}" for k in range(n)]
        if mutation == "id_text":
            ids[i] = draw(st.text(max_size=6))  # may be NUL, or empty
        elif mutation == "id_raw":
            ids[i] = raw(draw(st.sampled_from(RAW_TEXT)))
        elif mutation == "id_duplicate":
            ids = [*ids, ids[0]]
            rows.append(dict(rows[0]))
        else:
            ids = ids[:-1] if draw(st.booleans()) else [*ids, "one-more"]
        body["decision_ids"] = ids
    elif mutation == "seed":
        body["seed"] = draw(st.sampled_from([-1, MAX_SEED + 1, 2**70, 1.5, "7", True, None]))
    elif mutation == "max_evals":
        body["max_evals"] = draw(st.sampled_from([-1, 0, 2, 3, 28, 29, 2001, 10**30, 1e3]))
    elif mutation == "threshold":
        body["threshold"] = raw(
            draw(st.sampled_from(["NaN", "Infinity", "1e400", "true", '"0.5"']))
        )
    elif mutation == "exclude":
        body["exclude"] = (
            [raw(draw(st.sampled_from(RAW_TEXT)))] if draw(st.booleans()) else [draw(plain_text)]
        )
    elif mutation == "output":
        body["output"] = draw(st.one_of(st.sampled_from([-1, 2, 2**70, 1.0]), plain_text))
    elif mutation == "top_key":
        body[raw(draw(st.sampled_from(RAW_TEXT)))] = 1
    text = json.dumps(body)
    for k, value in enumerate(raws):
        text = text.replace(f'"@RAW{k}@"', value)
    return text, mutation, len(rows)


def test_valid_requests_are_explained_and_broken_ones_never_5xx(live: Service, attack: Any) -> None:
    seen: dict[str | None, set[int]] = {}

    @settings(FUZZ, max_examples=100)
    @given(request=fuzzed_requests())
    def check(request: tuple[str, str | None, int]) -> None:
        text, mutation, n = request
        with httpx.Client(base_url=live.url, headers=AUTH, timeout=60) as client:
            answer = client.post(
                "/v1/explanations",
                content=text.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        seen.setdefault(mutation, set()).add(attack.http(answer).status_code)
        assert answer.status_code < 500, (mutation, text, answer.text)
        body = answer.json()  # every answer is JSON, whatever the request held
        if mutation is None:
            assert answer.status_code == 200, (text, answer.text)
            assert len(body["explanations"]) == n
            assert len(body["record_ids"]) == n
            decided = body["threshold"] is not None
            assert all((r["decision"] is not None) == decided for r in body["explanations"])
        elif answer.status_code == 422:
            for error in body["detail"]:
                assert error["loc"][0] == "body", error
                assert error["msg"], error

    check()
    # The unmutated requests got through, and the mutations were refused as client errors.
    assert seen[None] == {200}
    assert 422 in set().union(*seen.values())


def test_fuzzed_service_still_explains(live: Service) -> None:
    with httpx.Client(base_url=live.url, headers=AUTH, timeout=60) as client:
        ok = client.post("/v1/explanations", json={"rows": request_rows(2)})
    assert ok.status_code == 200
    assert len(ok.json()["record_ids"]) == 2
