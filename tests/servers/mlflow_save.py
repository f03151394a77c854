"""Save the served model as an MLflow pyfunc model (run with the MLflow venv's python).

``python mlflow_save.py OUT_DIR`` writes a model folder for ``mlflow models serve -m OUT_DIR``:
a PythonModel around ``served_model.probabilities`` (shipped beside it with ``code_paths``)
and a signature of six float64 columns, so the scoring server enforces the schema (a missing
column is its 400 "Model is missing inputs").
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import served_model  # noqa: E402


class ScoreModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        import served_model

        X = model_input[served_model.FEATURES].to_numpy(dtype=np.float64)
        try:
            return served_model.ScoreModel().predict_proba(X)
        except served_model.TransientFailure as exc:
            # MLflow answers an MlflowException with its code's status (503); anything else
            # the model raises becomes a 400.
            raise MlflowException(str(exc), error_code=TEMPORARILY_UNAVAILABLE) from exc


def main(out: str) -> None:
    example = pd.DataFrame(
        np.linspace(-1.0, 1.0, 3 * served_model.N_FEATURES).reshape(3, -1),
        columns=served_model.FEATURES,
    )
    signature = infer_signature(example, served_model.probabilities(example.to_numpy()))
    mlflow.pyfunc.save_model(
        out,
        python_model=ScoreModel(),
        code_paths=[str(HERE.parent / "served_model.py")],
        signature=signature,
    )


if __name__ == "__main__":
    main(sys.argv[1])
