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
#: P(churn) from the model fitted without the protected attributes, which credit actions use
#: (present when the bundle holds such a model beside the main one; `nba.actions.CREDIT_SCORE`).
CREDIT_SCORE = "credit_churn_probability"
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


#: Batches from this size compare the customers' own (contiguous) columns one by one, after a
#: min/max pass that skips columns with nothing outside; smaller ones compare the model's input
#: matrix in one broadcast (cheaper than reading 14 columns for one customer).
_COLUMNS_FROM = 1000


def out_of_range(
    customers: pd.DataFrame,
    ranges: Mapping[str, Sequence[float]] | None,
    matrix: np.ndarray | None = None,
    names: Sequence[str] = (),
) -> pd.api.extensions.ExtensionArray:
    """Per customer, the numeric columns whose value lies outside `ranges` (column → [min, max],
    from `training_range`), joined with ", " in schema order; "" when none or when no ranges
    are known. A missing value is not outside. `matrix` (with its column `names`): the same
    customers' values as a matrix, e.g. the churn model's input, used for small batches."""
    n = len(customers)
    cols = [c for c in schema.NUMERIC if c in ranges] if ranges else []
    masks: dict[str, np.ndarray] = {}
    if cols and matrix is not None and n < _COLUMNS_FROM and set(cols) <= set(names):
        where = {c: j for j, c in enumerate(names)}
        x = matrix[:, [where[c] for c in cols]]
        lo = np.array([ranges[c][0] for c in cols], dtype=np.float64)
        hi = np.array([ranges[c][1] for c in cols], dtype=np.float64)
        outside = (x < lo) | (x > hi)  # NaN compares False
        masks = {cols[k]: outside[:, k] for k in np.flatnonzero(outside.any(axis=0))}
    elif cols:
        arrays = schema.column_arrays(customers, cols)
        for c in cols:
            a = np.asarray(arrays[c], dtype=np.float64)
            lo, hi = ranges[c]
            # fmin/fmax skip NaN: one pass each, and most columns stop here
            if len(a) and (np.fmin.reduce(a) < lo or np.fmax.reduce(a) > hi):
                masks[c] = (a < lo) | (a > hi)
    if not masks:
        return _no_text(n)
    # one bit per column with anything outside, for the (usually few) rows outside only
    found = list(masks)
    rows = np.flatnonzero(np.logical_or.reduce([masks[c] for c in found]))
    codes = np.zeros(len(rows), dtype=np.int64)
    for bit, c in enumerate(found):
        codes |= masks[c][rows].astype(np.int64) << bit
    uniques, inverse = np.unique(codes, return_inverse=True)
    text = [", ".join(c for b, c in enumerate(found) if u >> b & 1) for u in uniques.tolist()]
    index = np.zeros(n, dtype=np.int64)  # 0: "" (inside)
    index[rows] = inverse + 1
    return _labels(["", *text], index)


def _no_text(n: int) -> pd.api.extensions.ExtensionArray:
    """n empty strings as a "str" column, built by arrow in one call."""
    from nba.actions import text_array

    return text_array(pa.repeat(pa.scalar("", pa.large_string()), n))


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


#: Customers scored together: a big batch is scored block by block (every score is about one
#: customer), so the arrays of a block (customers × actions, reasons) reuse the memory the block
#: before freed instead of each being fresh memory the kernel must zero: page faults were a
#: third of the CPU of a one-off million-customer `nba score`.
SCORE_BLOCK = 262_144


def score_columns(bundle: Any, df: pd.DataFrame, drivers: int = 0) -> dict[str, Any]:
    """The columns of `score_frame` as a dict of arrays, in its order (the frame is built from
    them once; `recommend` reads its one row straight from them)."""
    n = len(df)
    # without recorded population medians, reasons compare with the batch's own: not by block
    if n <= SCORE_BLOCK or bundle.reference.get("population_medians") is None:
        return _score_block(bundle, df, drivers)
    parts = [
        _score_block(bundle, df.iloc[lo : lo + SCORE_BLOCK], drivers)
        for lo in range(0, n, SCORE_BLOCK)
    ]
    return {k: _concat([p[k] for p in parts]) for k in parts[0]}


def _concat(pieces: list[Any]) -> Any:
    """One column from the blocks' (numpy arrays, or arrow text arrays joined without a copy)."""
    if all(isinstance(p, np.ndarray) for p in pieces):
        return np.concatenate(pieces)
    return type(pieces[0])._concat_same_type(pieces)  # the ExtensionArray interface's concat


def _score_block(bundle: Any, df: pd.DataFrame, drivers: int) -> dict[str, Any]:
    """`score_columns` for customers scored together."""
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
            df, bundle.reference.get(TRAINING_RANGE), M, bundle.churn.feature_names_
        ),
    }
    credit = getattr(bundle, "credit_churn", None)
    if credit is not None:
        # the score credit actions are decided on: a model that never saw the protected
        # attributes (the main model itself when it is blind, and then no extra column)
        cols[CREDIT_SCORE] = credit.predict_proba(credit_matrix(bundle.churn, credit, M, df))[:, 1]
    if bundle.catalogue:
        cols.update(recommend_for(bundle, cols, df))
    if drivers:
        reasons = bundle.churn.reason_columns(M, top=drivers)
        cols.update({f"driver_{k}": reasons[f"reason_{k}"] for k in range(1, drivers + 1)})
    return cols


def credit_matrix(main: Any, credit: Any, M: np.ndarray, df: pd.DataFrame) -> np.ndarray:
    """The blind (credit) model's input for customers `df`: the columns of the main model's
    input `M` it reads, when both models read the customer's own columns (no engineered
    features): the same values, coded the same way, without building a second matrix from the
    frame (a tenth of a second on a million customers); else its own `model_matrix(df)`."""
    names, main_names = list(credit.feature_names_), list(main.feature_names_)
    shared = (
        not main.features_.engineered
        and not credit.features_.engineered
        and M.shape[1] == len(main_names)
        and set(names) <= set(main_names)
    )
    if not shared:
        return credit.model_matrix(df)
    return M[:, [main_names.index(c) for c in names]]  # a C-ordered copy


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


def rejects_path(output: Path | str, rejects: Path | str | None) -> Path | str:
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
        rejects_out = write_table(checked.rejects, rejects_path(output, rejects))
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
