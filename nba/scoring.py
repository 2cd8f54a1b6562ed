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
    if bundle.catalogue:
        actions = recommend_for(bundle, out, df)
        for col in actions.columns:
            out[col] = actions[col].to_numpy()
    if drivers:
        reasons = bundle.churn.reasons(df, top=drivers)
        for k in range(1, drivers + 1):
            out[f"driver_{k}"] = reasons[f"reason_{k}"].to_numpy()
    out["risk_band"] = out["risk_band"].astype("str")
    out["segment_name"] = out["segment_name"].astype("str")
    return out


def recommend_for(bundle: Any, scores: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """The top-3 action columns for scored customers, from the bundle's catalogue and the
    population medians it learnt (so one customer's reasons compare with the whole base)."""
    from nba.actions import recommend_actions

    return recommend_actions(
        scores,
        customers,
        bundle.action_catalogue,
        bundle.run_settings,
        reference=bundle.reference.get("population_medians"),
    )


def _quick_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric text, else None (let `validate` say why)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        x = float(value)
    elif isinstance(value, str) and value.isascii() and "_" not in value:
        try:
            x = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return x if np.isfinite(x) else None


_CANONICAL = {c: {a.casefold(): a for a in allowed} for c, allowed in schema.CATEGORIES.items()}
_WHOLE = frozenset((schema.ID, *schema.INTEGERS))


def clean_record(record: dict[str, Any]) -> pd.DataFrame | None:
    """The one-row clean frame `validate` would return for a valid record, built directly from
    the schema constants (bounds, categories, whole numbers, balance identities) in well under a
    millisecond; None as soon as anything looks wrong or unusual (missing field, text that is
    not a number, a target column…), so that the caller falls back to `validate` for its
    exact one-sentence reason. Never accepts a record `validate` would reject."""
    if schema.TARGET_RAW in record:
        return None
    cols: dict[str, Any] = {}
    values: dict[str, float] = {}
    for c in schema.REQUIRED:
        if c not in record:
            return None
        v = record[c]
        if c in _CANONICAL:
            if not isinstance(v, str):
                return None
            text = _CANONICAL[c].get(" ".join(v.split()).casefold())
            if text is None:
                return None
            cols[c] = pd.array([text], dtype="str")
            continue
        x = _quick_number(v)
        if x is None:
            return None
        lo, hi = schema.BOUNDS[c]
        if not lo <= x <= hi:
            return None
        if c in _WHOLE:
            if x != np.floor(x):
                return None
            cols[c] = np.array([x], dtype=np.int64)
        else:
            cols[c] = np.array([x], dtype=np.float64)
        values[c] = x
    limit, balance = values["Credit_Limit"], values["Total_Revolving_Bal"]
    if abs(values["Avg_Open_To_Buy"] - (limit - balance)) > schema.OPEN_TO_BUY_TOLERANCE:
        return None
    if abs(values["Avg_Utilization_Ratio"] - balance / limit) > schema.UTILIZATION_TOLERANCE:
        return None
    return pd.DataFrame(cols, index=pd.RangeIndex(1), copy=False)


def recommend(bundle: Any, customer: dict[str, Any]) -> dict[str, Any]:
    """One customer (a dict of BankChurners fields) → one score row as a plain dict, with its
    three main risk drivers. Invalid values raise `DataError` naming the field and the rule.

    Fast path: a valid record is checked and typed by `clean_record` (no pandera); anything
    else goes through `validate`, which names the field and the rule in one sentence."""
    from nba.errors import DataError

    record = {schema.ID: 1, **customer}  # a hand-entered customer needs no id
    clean = clean_record(record)
    if clean is None:
        from nba.data.validate import validate

        result = validate(pd.DataFrame([record]))
        if not result.ok:
            raise DataError(str(result.rejects["reason"].iloc[0]))
        clean = result.clean
    return _score_one(bundle, clean, drivers=3)


def _score_one(bundle: Any, clean: pd.DataFrame, drivers: int) -> dict[str, Any]:
    """`score_frame(bundle, clean, drivers).iloc[0]` as a plain dict, for one clean customer,
    without the batch engine's frame-building overhead."""
    p = bundle.churn.predict_proba(clean)[:, 1]
    threshold = float(bundle.churn.threshold_)
    segment = np.asarray(bundle.segmenter.predict(clean))
    name = np.asarray(bundle.segmenter.names_, dtype=object)[segment]
    row: dict[str, Any] = {
        schema.ID: clean[schema.ID].iloc[0],
        "churn_probability": p[0],
        "churn_flag": int(p[0] >= threshold),
        "risk_band": str(risk_band(p, threshold)[0]),
        "segment": segment[0],
        "segment_name": str(name[0]),
    }
    if bundle.catalogue:
        scores = pd.DataFrame(
            {"churn_probability": p, "segment_name": pd.array(name, dtype="str")},
            index=clean.index,
        )
        actions = recommend_for(bundle, scores, clean)
        for col in actions.columns:
            row[col] = actions[col].iloc[0]
    if drivers:
        reasons = bundle.churn.reasons(clean, top=drivers)
        for k in range(1, drivers + 1):
            row[f"driver_{k}"] = str(reasons[f"reason_{k}"].iloc[0])
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def _rejects_path(output: Path, rejects: Path | None) -> Path:
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
        rejects_out = write_table(checked.rejects, _rejects_path(output, rejects))
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
