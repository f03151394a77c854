"""KServe's Python model server around the served model (run with the KServe venv's python).

``python kserve_app.py --http_port PORT`` serves model ``score`` on 127.0.0.1 with V1
(``/v1/models/score:predict``, ``{"instances"}`` → ``{"predictions"}``) and V2
(``/v2/models/score/infer``, one FP64 input tensor → ``probabilities`` [n, 2]). A row of the
wrong width is KServe's ``InvalidInput`` (400); the marker row's transient failure is an
error KServe answers with 500.

KServe 0.21 builds its uvicorn config with ``host="0.0.0.0"`` and has no option to change it,
so the REST server class is replaced by one that sets the host to 127.0.0.1 before serving.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import served_model

parser = argparse.ArgumentParser()
parser.add_argument("--http_port", type=int, required=True)
port = parser.parse_known_args()[0].http_port

import kserve.model_server  # noqa: E402  (parses sys.argv at import: --http_port is its own)
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.rest.server import RESTServer  # noqa: E402


class LoopbackRESTServer(RESTServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.host = "127.0.0.1"


kserve.model_server.RESTServer = LoopbackRESTServer


def _rows(X: np.ndarray) -> np.ndarray:
    if X.ndim != 2 or X.shape[1] != served_model.N_FEATURES:
        raise InvalidInput(
            f"expected rows of {served_model.N_FEATURES} features, got shape {list(X.shape)}"
        )
    return X


class Score(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model = served_model.ScoreModel()
        self.load()

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            X = _rows(np.asarray(payload.inputs[0].as_numpy(), dtype=np.float64))
            P = self.model.predict_proba(X)
            output = InferOutput(name="probabilities", shape=list(P.shape), datatype="FP64")
            output.set_data_from_numpy(P, binary_data=False)
            # KServe's V2 answer must carry an id; a request without one gets a fresh one.
            response_id = payload.id or str(uuid.uuid4())
            return InferResponse(
                model_name=self.name, infer_outputs=[output], response_id=response_id
            )
        X = _rows(np.asarray(payload["instances"], dtype=np.float64))
        return {"predictions": self.model.predict_proba(X).tolist()}


if __name__ == "__main__":
    ModelServer(http_port=port, enable_grpc=False, workers=1).start([Score("score")])
