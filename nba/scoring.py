"""Batch scoring: clean customers in, one score row per customer out.

`score_frame` is the engine (pure: a bundle and a clean frame → a frame). `score_file` is the
edge the `nba score` command uses: read, validate (bad rows go to rejects with a reason, never
lost), score, write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.data import schema

log = logging.getLogger(__name__)

#: Score columns every output has, in this order (the architecture's contract).
SCORE_COLUMNS = (
    schema.ID,
    "churn_probability",
    "churn_flag",
    "risk_band",
    "segment",
    "segment_name",
)
RISK_BANDS = ("low", "medium", "high")


def risk_band(probability: np.ndarray, threshold: float) -> np.ndarray:
    """ "high" at or above the model's threshold (the customers it flags), "medium" from half
    the threshold, "low" below: bands that move with the chosen threshold."""
    band = np.searchsorted([threshold / 2, threshold], probability, side="right")
    return np.asarray(RISK_BANDS, dtype=object)[band]


def score_frame(bundle: Any, df: pd.DataFrame, drivers: int = 0) -> pd.DataFrame:
    """Score clean customers (as `nba.data.validate` returns them): churn probability, flag at
    the bundle's threshold, risk band, segment; `drivers` > 0 adds that many per-customer risk
    drivers (TreeSHAP reasons). Index and row order follow `df`."""
    p = bundle.churn.predict_proba(df)[:, 1]
    threshold = float(bundle.churn.threshold_)
    out = pd.DataFrame(
        {
            schema.ID: df[schema.ID].to_numpy(),
            "churn_probability": p,
            "churn_flag": (p >= threshold).astype(np.int8),
            "risk_band": pd.Series(risk_band(p, threshold), dtype="str").to_numpy(),
        },
        index=df.index,
    )
    segments = bundle.segmenter.assign(df)
    out["segment"] = segments["segment"].to_numpy()
    out["segment_name"] = segments["segment_name"].to_numpy()
    if drivers:
        reasons = bundle.churn.reasons(df, top=drivers)
        for k in range(1, drivers + 1):
            out[f"driver_{k}"] = reasons[f"reason_{k}"].to_numpy()
    out["risk_band"] = out["risk_band"].astype("str")
    out["segment_name"] = out["segment_name"].astype("str")
    return out


def recommend(bundle: Any, customer: dict[str, Any]) -> dict[str, Any]:
    """One customer (a dict of BankChurners fields) → one score row as a plain dict, with its
    three main risk drivers. Invalid values raise `DataError` naming the field and the rule."""
    from nba.data.validate import validate
    from nba.errors import DataError

    record = {schema.ID: 1, **customer}  # a hand-entered customer needs no id
    result = validate(pd.DataFrame([record]))
    if not result.ok:
        raise DataError(str(result.rejects["reason"].iloc[0]))
    row = score_frame(bundle, result.clean, drivers=3).iloc[0]
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


@dataclass(frozen=True)
class ScoreResult:
    rows_in: int
    scored: int
    rejected: int
    output: Path
    rejects: Path | None

    @property
    def summary(self) -> str:
        where = f"; rejected rows in {self.rejects}" if self.rejects and self.rejected else ""
        return (
            f"{self.rows_in:,} rows in: {self.scored:,} scored, {self.rejected:,} rejected{where}"
        )
