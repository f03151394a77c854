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


def test_any_cell_values_in_real_columns_get_200_or_422(live: Service) -> None:
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
        seen.append(answer.status_code)
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


def test_fuzzed_service_still_explains(live: Service) -> None:
    with httpx.Client(base_url=live.url, headers=AUTH, timeout=60) as client:
        ok = client.post("/v1/explanations", json={"rows": request_rows(2)})
    assert ok.status_code == 200
    assert len(ok.json()["record_ids"]) == 2
