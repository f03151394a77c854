"""Wire formats that put the rows at one place in a JSON document and read the predictions
from one place in the answer: plain JSON (today's default), KServe V1 / TF Serving, Vertex AI,
BentoML and a user's own template.

Where the predictions are is a key path (``json``: ``response_key="data.scores"``; KServe V1
and Vertex: ``predictions``) or a JMESPath expression (BentoML, template). ``output`` then
picks from each row's prediction: an index into a list, or a JMESPath expression such as
``"scores"`` or ``"probabilities[1]"`` (Vertex AutoML answers an object per row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...exceptions import ConfigurationError
from ._base import (
    PLACEHOLDER,
    Answer,
    InstanceFormat,
    ResponseFormatError,
    WireFormat,
    check_instance_format,
    compile_expression,
    finite_parameters,
    json_text,
    load_json,
    output_selector,
    place_rows,
    predictions,
    records,
    splice,
)


def _key_path(key: str, what: str) -> tuple[str, ...]:
    if not isinstance(key, str):
        raise ConfigurationError(f"{what} must be a string like 'predictions' or 'data.scores'")
    parts = tuple(key.split(".")) if key else ()
    if any(not p for p in parts):
        raise ConfigurationError(f"{what}={key!r} has an empty component")
    return parts


class _Envelope(WireFormat):
    """Rows spliced into a fixed JSON document; predictions found at a path or expression."""

    def __init__(
        self,
        request: Any,
        *,
        instance_format: InstanceFormat,
        response: tuple[str, ...] | str | None,
        output: str | int | None,
        label: str,
        options: Mapping[str, Any],
    ) -> None:
        self.instance_format = check_instance_format(instance_format)
        self._before, self._after = splice(request)
        self._response_path = response if isinstance(response, tuple) else None
        self._response_expr = (
            compile_expression(response, "response") if isinstance(response, str) else None
        )
        self._selector = output_selector(output)
        self.output = output
        self._label = label
        self._options = dict(options)

    def encode(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> bytes:
        if self.instance_format == "list":
            payload = b"[" + ",".join(keys).encode("ascii") + b"]"
        else:
            payload = json_text(records(rows, columns)).encode("ascii")
        return self._before + payload + self._after

    def _locate(self, doc: Any) -> tuple[Any, str]:
        if self._response_expr is not None:
            return self._response_expr.search(doc), f"response={self._response_expr.expression!r}"
        path = self._response_path or ()
        for depth, key in enumerate(path):
            if not isinstance(doc, dict) or key not in doc:
                where = ".".join(path[:depth]) or "the top level"
                found = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
                raise ResponseFormatError(
                    f"the answer has no {key!r} at {where} ({self._label}); found {found}"
                )
            doc = doc[key]
        return doc, self._label

    def decode(self, answer: Answer, n_rows: int, outputs: list[str]) -> np.ndarray:
        items, where = self._locate(load_json(answer))
        if items is None:
            raise ResponseFormatError(f"{where} finds nothing in the answer")
        return predictions(
            items,
            n_rows,
            outputs,
            where=where,
            selector=self._selector,
            what=f"output={self.output!r}",
        )


class PlainJSON(_Envelope):
    """``{"instances": [row, ...]}`` → ``{"predictions": [p, ...]}`` with movable keys.

    Parameters
    ----------
    instance_format : {"list", "object"}
        A row as a list in ``feature_names`` order or as an object keyed by column.
    request_key, response_key : str
        Where the rows go and where the predictions are: a key or a dotted path
        (``"data.scores"``); ``""`` means the body itself is the list.
    output : int or str, optional
        Picks each row's value from its prediction (an index, or a JMESPath expression).
    """

    name = "json"

    def __init__(
        self,
        *,
        instance_format: InstanceFormat = "list",
        request_key: str = "instances",
        response_key: str = "predictions",
        output: str | int | None = None,
    ) -> None:
        request: Any = PLACEHOLDER
        for key in reversed(_key_path(request_key, "request_key")):
            request = {key: request}
        super().__init__(
            request,
            instance_format=instance_format,
            response=_key_path(response_key, "response_key"),
            output=output,
            label=f"response_key={response_key!r}",
            options={
                "instance_format": instance_format,
                "request_key": request_key,
                "response_key": response_key,
                "output": output,
            },
        )


class KServeV1(_Envelope):
    """KServe V1 / TF Serving's row format: ``POST .../v1/models/NAME:predict`` with
    ``{"instances": [...]}``, answered ``{"predictions": [...]}``."""

    name = "kserve-v1"

    def __init__(
        self, *, instance_format: InstanceFormat = "list", output: str | int | None = None
    ) -> None:
        super().__init__(
            {"instances": PLACEHOLDER},
            instance_format=instance_format,
            response=("predictions",),
            output=output,
            label="protocol 'kserve-v1'",
            options={"instance_format": instance_format, "output": output},
        )


class Vertex(_Envelope):
    """Vertex AI online prediction: ``{"instances": [...], "parameters": {...}}`` answered
    ``{"predictions": [...], "deployedModelId": ...}``.

    ``output`` picks from an object prediction, e.g. ``"scores"`` for AutoML classification.
    """

    name = "vertex"

    def __init__(
        self,
        *,
        instance_format: InstanceFormat = "list",
        parameters: Mapping[str, Any] | None = None,
        output: str | int | None = None,
    ) -> None:
        params = finite_parameters(parameters, "parameters")
        request: dict[str, Any] = {"instances": PLACEHOLDER}
        if params is not None:
            request["parameters"] = params
        super().__init__(
            request,
            instance_format=instance_format,
            response=("predictions",),
            output=output,
            label="protocol 'vertex'",
            options={"instance_format": instance_format, "parameters": params, "output": output},
        )


class BentoML(_Envelope):
    """A BentoML API called with named arguments: ``POST /NAME`` with
    ``{"ARGUMENT": [rows], **parameters}``; the answer is the API's return value.

    Parameters
    ----------
    argument : str
        The API method's parameter that takes the rows (``def predict(self, input_data:
        np.ndarray)`` → ``"input_data"``). Required: a guess would only earn a 400.
    instance_format : {"list", "object"}
        ``"list"`` for an ``np.ndarray`` parameter, ``"object"`` for a ``pd.DataFrame`` one.
    parameters : mapping, optional
        The API's other named arguments, sent unchanged with every request.
    response : str, optional
        JMESPath to the predictions when the API returns an object (default: the whole answer).
    output : int or str, optional
        Picks each row's value from its prediction.
    """

    name = "bentoml"

    def __init__(
        self,
        *,
        argument: str | None = None,
        instance_format: InstanceFormat = "list",
        parameters: Mapping[str, Any] | None = None,
        response: str | None = None,
        output: str | int | None = None,
    ) -> None:
        if not isinstance(argument, str) or not argument:
            raise ConfigurationError(
                "protocol 'bentoml' needs argument=: the name of the API parameter that takes "
                "the rows (e.g. 'input_data')"
            )
        params = finite_parameters(parameters, "parameters") or {}
        if argument in params:
            raise ConfigurationError(f"parameters must not set {argument!r}: the rows go there")
        super().__init__(
            {argument: PLACEHOLDER, **params},
            instance_format=instance_format,
            response=response if response is not None else (),
            output=output,
            label="protocol 'bentoml'" if response is None else f"response={response!r}",
            options={
                "argument": argument,
                "instance_format": instance_format,
                "parameters": params or None,
                "response": response,
                "output": output,
            },
        )


#: What a template's placeholder string is replaced with.
_TEMPLATE_SLOTS: dict[str, InstanceFormat] = {"$rows": "list", "$records": "object"}


class Template(_Envelope):
    """Anything else: a request template with the rows placed in it, and a JMESPath to the
    predictions in the answer.

    Parameters
    ----------
    template : mapping, list or str
        The request body as JSON (a JSON string is parsed). Exactly one value in it is the
        string ``"$rows"`` (replaced by the rows as lists) or ``"$records"`` (as objects keyed
        by column); everything else is sent unchanged — fixed extra fields, a model name, ...
        The template is recorded in provenance: credentials belong in headers or ``auth``.
    response : str
        JMESPath expression to the list of per-row predictions, e.g. ``"result.scores"`` or
        ``"outputs[0].data"``.
    output : int or str, optional
        Picks each row's value from its prediction.
    """

    name = "template"

    def __init__(
        self,
        *,
        template: Any = None,
        response: str | None = None,
        output: str | int | None = None,
    ) -> None:
        doc = template
        if isinstance(template, str):
            try:
                doc = json.loads(template)
            except ValueError as exc:
                raise ConfigurationError(f"template is not valid JSON: {exc}") from None
        if not isinstance(doc, dict | list):
            raise ConfigurationError(
                'protocol \'template\' needs template=: a JSON object such as {"data": "$rows"}'
            )
        if response is None:
            raise ConfigurationError(
                "protocol 'template' needs response=: a JMESPath to the predictions"
            )
        found: list[str] = []
        request = place_rows(doc, tuple(_TEMPLATE_SLOTS), found)
        if len(found) != 1:
            raise ConfigurationError(
                f"template must hold exactly one '$rows' or '$records' value, found {len(found)}"
            )
        super().__init__(
            request,
            instance_format=_TEMPLATE_SLOTS[found[0]],
            response=response,
            output=output,
            label=f"response={response!r}",
            options={"template": doc, "response": response, "output": output},
        )
