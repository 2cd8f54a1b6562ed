"""Batch scoring: clean customers in, one score row per customer out.

`score_frame` is the engine (pure: a bundle and a clean frame → a frame). `score_file` is the
edge the `nba score` command uses: read, validate (bad rows go to rejects with a reason, never
lost), score, write.

Every score row says in `out_of_range` which of the customer's values lie outside the range
the models learnt from (`training_range`, recorded in the bundle's reference at training):
such a customer is plausible (validation's hard bounds let it through) but the score
extrapolates, and an analyst should know.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
#: The score column naming the columns outside the training range ("" when none).
OUT_OF_RANGE = "out_of_range"
#: Key of the training range in `bundle.reference`.
TRAINING_RANGE = "training_range"


def training_range(clean: pd.DataFrame) -> dict[str, list[float]]:
    """[min, max] of every numeric column of the customer record over `clean`, the customers
    the models learn from: what `out_of_range` compares new customers with (plain floats, for
    the bundle)."""
    arrays = schema.column_arrays(clean, schema.NUMERIC)
    return {
        c: [float(np.nanmin(np.asarray(a, dtype=np.float64))), float(np.nanmax(a))]
        for c, a in arrays.items()
    }


def out_of_range(
    values: np.ndarray, names: Sequence[str], ranges: Mapping[str, Sequence[float]] | None
) -> pd.api.extensions.ExtensionArray:
    """Per customer, the columns whose value lies outside `ranges` (column → [min, max], from
    `training_range`), joined with ", " in `names` order; "" when none (or no ranges known).
    `values`: customers × `names` as float64, e.g. the churn model's input matrix, so that
    the check is one vectorised comparison for a million customers as for one."""
    n = len(values)
    known = [j for j, c in enumerate(names) if ranges and c in ranges]
    if not known:
        return _labels(("",), np.zeros(n, dtype=np.int64))
    lo = np.array([ranges[names[j]][0] for j in known], dtype=np.float64)
    hi = np.array([ranges[names[j]][1] for j in known], dtype=np.float64)
    x = values[:, known]
    outside = (x < lo) | (x > hi)  # NaN compares False: a missing value is not "outside"
    if not outside.any():
        return _labels(("",), np.zeros(n, dtype=np.int64))
    codes = outside.astype(np.int64) @ (np.int64(1) << np.arange(len(known), dtype=np.int64))
    uniques, inverse = np.unique(codes, return_inverse=True)
    text = [", ".join(names[known[b]] for b in range(len(known)) if u >> b & 1) for u in uniques]
    return _labels(text, inverse)


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
        OUT_OF_RANGE: out_of_range(
            M, bundle.churn.feature_names_, bundle.reference.get(TRAINING_RANGE)
        ),
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
    returns. Invalid values raise `RecordError` (a `DataError`): its message names each field
    and rule broken in one sentence (the reason a batch's rejects file would give), its
    `issues` are the same problems as records (column, rule) for programs such as the app."""
    from nba.data.validate import RecordError, validate

    record = {schema.ID: 1, **customer}  # a hand-entered customer needs no id
    result = validate(pd.DataFrame([record]))
    if not result.ok:
        raise RecordError(result.issues_in(1))
    row = {k: v[0] for k, v in score_columns(bundle, result.clean, drivers=3).items()}
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def rejects_path(output: Path, rejects: Path | None) -> Path:
    """Where the rejected rows go: `rejects` if given, else `<output>.rejects.csv`."""
    if rejects is not None:
        return Path(rejects)
    name = output.name[: -len(".parquet")] if output.name.endswith(".parquet") else output.stem
    return output.with_name(f"{name}.rejects.csv")


def score_file(
    bundle: Any, input_path: str | Path, output: str | Path, rejects: str | Path | None = None
) -> ScoreResult:
    """`nba score` with the pandas engine: read (whole-file problems raise `DataError`),
    validate (bad rows go to the rejects file with a reason), score, write. Rows in = rows
    scored + rows rejected, always."""
    from nba.data.io import read_table, write_table
    from nba.data.validate import validate
    from nba.errors import DataError

    input_path, output = Path(input_path), Path(output)
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
        rejects_out = write_table(checked.rejects, rejects_path(output, rejects))
    result = ScoreResult(checked.n_in, len(scored), len(checked.rejects), output, rejects_out)
    assert result.scored + result.rejected == result.rows_in
    return result


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
