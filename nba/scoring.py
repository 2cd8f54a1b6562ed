"""Batch scoring: clean customers in, one score row per customer out.

`score_frame` is the engine (pure: a bundle and a clean frame → a frame). `score_file` is the
edge the `nba score` command uses: read, validate (bad rows go to rejects with a reason, never
lost), score, write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nba.data import schema

log = logging.getLogger(__name__)

#: pandas' "str" dtype, resolved once (parsing the name costs more than a one-row column).
_STR = pd.api.types.pandas_dtype("str")

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


def _band_codes(probability: np.ndarray, threshold: float) -> np.ndarray:
    """0 (low), 1 (medium) or 2 (high) per probability: see `risk_band`."""
    return np.searchsorted([threshold / 2, threshold], probability, side="right")


def risk_band(probability: np.ndarray, threshold: float) -> np.ndarray:
    """ "high" at or above the model's threshold (the customers it flags), "medium" from half
    the threshold, "low" below: bands that move with the chosen threshold."""
    return np.asarray(RISK_BANDS, dtype=object)[_band_codes(probability, threshold)]


def _labels(names: Sequence[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """`names[codes]` as a "str" column, built by arrow from the few names (no Python objects
    per row, which matters on a million customers)."""
    from nba.actions import text_array

    return text_array(pa.array(list(names), pa.large_string()).take(pa.array(codes)))


def score_frame(bundle: Any, df: pd.DataFrame, drivers: int = 0) -> pd.DataFrame:
    """Score clean customers (as `nba.data.validate` returns them): churn probability, flag at
    the bundle's threshold, risk band, segment; `drivers` > 0 adds that many per-customer risk
    drivers (TreeSHAP reasons). Index and row order follow `df`. One code path for a million
    customers and for one (`recommend`)."""
    return pd.DataFrame(score_columns(bundle, df, drivers), index=df.index, copy=False)


def score_columns(bundle: Any, df: pd.DataFrame, drivers: int = 0) -> dict[str, Any]:
    """The columns of `score_frame` as a dict of arrays, in its order (the frame is built from
    them once; `recommend` reads its one row straight from them)."""
    M = bundle.churn.model_matrix(df)  # built once for the probabilities and the drivers
    p = bundle.churn.predict_proba(M)[:, 1]
    threshold = float(bundle.churn.threshold_)
    segment = np.asarray(bundle.segmenter.predict(df))
    cols: dict[str, Any] = {
        schema.ID: np.array(schema.column_arrays(df, [schema.ID])[schema.ID]),
        "churn_probability": p,
        "churn_flag": (p >= threshold).astype(np.int8),
        "risk_band": _labels(RISK_BANDS, _band_codes(p, threshold)),
        "segment": segment,
        "segment_name": _labels(bundle.segmenter.names_, segment),
    }
    if bundle.catalogue:
        cols.update(recommend_for(bundle, cols, df))
    if drivers:
        reasons = bundle.churn.reason_columns(M, top=drivers)
        cols.update({f"driver_{k}": reasons[f"reason_{k}"] for k in range(1, drivers + 1)})
    return cols


def recommend_for(
    bundle: Any, scores: pd.DataFrame | dict[str, Any], customers: pd.DataFrame
) -> dict[str, Any]:
    """The top-3 action columns (arrays) for scored customers (`scores`: a frame or a dict of
    score column arrays in the customers' order), from the bundle's catalogue and the
    population medians it learnt (so one customer's reasons compare with the whole base)."""
    from nba.actions import recommendation_columns

    return recommendation_columns(
        scores,
        customers,
        bundle.action_catalogue,
        bundle.run_settings,
        reference=bundle.reference.get("population_medians"),
    )


def recommend(bundle: Any, customer: dict[str, Any]) -> dict[str, Any]:
    """One customer (a dict of BankChurners fields) → one score row as a plain dict, with its
    three main risk drivers: `score_frame(..., drivers=3)` on the one-row frame `validate`
    returns. Invalid values raise `DataError` naming the field and the rule in one sentence."""
    from nba.data.validate import validate
    from nba.errors import DataError

    record = {schema.ID: 1, **customer}  # a hand-entered customer needs no id
    result = validate(pd.DataFrame([record]))
    if not result.ok:
        raise DataError(str(result.rejects["reason"].iloc[0]))
    row = {k: v[0] for k, v in score_columns(bundle, result.clean, drivers=3).items()}
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def _rejects_path(output: Path | str, rejects: Path | str | None) -> Path | str:
    """`--rejects`, else `OUTPUT.rejects.csv` beside the output (a Path, or a URL for a URL)."""
    from nba.data.io import _name, location, with_name

    if rejects is not None:
        return location(rejects)
    full = _name(output)
    name = full[: -len(".parquet")] if full.endswith(".parquet") else Path(full).stem
    return with_name(location(output), f"{name}.rejects.csv")


def score_file(
    bundle: Any, input_path: str | Path, output: str | Path, rejects: str | Path | None = None
) -> ScoreResult:
    """`nba score` with the pandas engine: read (whole-file problems raise `DataError`),
    validate (bad rows go to the rejects file with a reason), score, write. Rows in = rows
    scored + rows rejected, always. Paths may be fsspec URLs (`nba.data.io.location`)."""
    from nba.data.io import location, read_table, write_table
    from nba.data.validate import validate
    from nba.errors import DataError

    input_path, output = location(input_path), location(output)
    checked = validate(read_table(input_path))
    if checked.clean.empty:
        raise DataError(
            f"no usable row in {input_path}: all {checked.n_in:,} rows failed validation "
            f"(first: {checked.rejects['reason'].iloc[0]})"
        )
    scored = score_frame(bundle, checked.clean)
    write_table(scored, output)
    rejects_out = None
    if len(checked.rejects):
        rejects_out = write_table(checked.rejects, _rejects_path(output, rejects))
    result = ScoreResult(checked.n_in, len(scored), len(checked.rejects), output, rejects_out)
    assert result.scored + result.rejected == result.rows_in
    return result


@dataclass(frozen=True)
class ScoreResult:
    rows_in: int
    scored: int
    rejected: int
    output: Path | str  # a str for an fsspec URL
    rejects: Path | str | None

    @property
    def summary(self) -> str:
        where = f"; rejected rows in {self.rejects}" if self.rejects and self.rejected else ""
        return (
            f"{self.rows_in:,} rows in: {self.scored:,} scored, {self.rejected:,} rejected{where}"
        )
