"""UCI Statlog German Credit, decoded into readable category labels (see README.md here)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

TARGET = "creditability"


def load_german_credit() -> tuple[pd.DataFrame, pd.Series]:
    """The 1,000 applicants and whether each was a good or bad credit risk.

    Returns
    -------
    X : DataFrame of shape (1000, 20)
        13 text columns with the data set's category labels and 7 integer columns.
    y : Series of shape (1000,)
        ``"good"`` or ``"bad"``.
    """
    with resources.files(__package__).joinpath("german_credit.csv").open("rb") as fh:
        frame = pd.read_csv(fh)
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].astype(object)
    y = frame.pop(TARGET)
    return frame, y
