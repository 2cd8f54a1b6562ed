"""The calibrated synthetic default: customers that behave like the real Kaggle file.

Model: a Gaussian copula per class (attrited / existing). Each class keeps its own marginal
distribution for every column (exact probability tables for discrete columns, percentile
knots for continuous ones) and its own correlation matrix of normal scores, so churn rates by
category, class-conditional distributions and the dependence between columns all carry over.
Derived columns are computed, not drawn, so the Kaggle identities hold exactly:
``Avg_Open_To_Buy = Credit_Limit − Total_Revolving_Bal`` and
``Avg_Utilization_Ratio = round(Total_Revolving_Bal / Credit_Limit, 3)``.

`calibrate()` turns a real file into statistics (no rows); `generate()` turns statistics into
rows. The committed statistics live in ``nba/data/calibration.json``.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr, ndtri

from nba.data import schema

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 1

#: Columns drawn from the copula, in order. The derived ones are computed afterwards.
DRAWN = (
    "Customer_Age",
    "Gender",
    "Dependent_count",
    "Education_Level",
    "Marital_Status",
    "Income_Category",
    "Card_Category",
    "Months_on_book",
    "Total_Relationship_Count",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Credit_Limit",
    "Total_Revolving_Bal",
    "Total_Amt_Chng_Q4_Q1",
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Total_Ct_Chng_Q4_Q1",
    schema.LEAKAGE[0],
)
#: Continuous columns: drawn by interpolating percentile knots, then rounded like Kaggle writes
#: them. Values holding ≥ ATOM_SHARE of a class (the 1,438.3 credit-limit floor, a zero
#: balance) are kept exactly as point masses.
DECIMALS = {
    "Credit_Limit": 0,
    "Total_Revolving_Bal": 0,
    "Total_Amt_Chng_Q4_Q1": 3,
    "Total_Trans_Amt": 0,
    "Total_Trans_Ct": 0,
    "Total_Ct_Chng_Q4_Q1": 3,
}
MAX_KNOTS = 201  # quantile knots per continuous column and stratum (every half percent) ...
ROWS_PER_KNOT = 4  # ... but never finer than one knot per 4 customers of the stratum
ATOM_SHARE = 0.01
#: Customers are drawn from strata of class × credit-limit band. Balance, utilisation and
#: spending relate to the limit in ways a single copula cannot carry (balances are capped near
#: 2,517 whatever the limit; customers on the 1,438.3 floor mostly carry no balance; high
#: limits spend more), so each band keeps its own marginals and correlations.
CALIBRATION_SEED = 20_240_101  # seed of the draws used while calibrating (not of the data)
PEARSON_STEPS = 6
LIMIT_BANDS = (1438.3, 2500.0, 5000.0, 10000.0)  # upper edges; the last band is open
LEAKAGE_DIGITS = 5  # Kaggle writes the Naive Bayes columns with 5 significant digits


def _signif(x: np.ndarray, digits: int) -> np.ndarray:
    """Round to `digits` significant digits (as R's signif)."""
    with np.errstate(divide="ignore"):
        mag = np.floor(np.log10(np.abs(x)))
    mag = np.where(np.isfinite(mag), mag, 0)
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(x * scale) / scale


def _codes(df: pd.DataFrame, col: str) -> np.ndarray:
    """Numeric codes of a drawn column: category position for categoricals, the value otherwise."""
    if col in schema.CATEGORIES:
        cats = list(schema.CATEGORIES[col])
        return df[col].map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
    return df[col].to_numpy(dtype=float)


def _normal_scores(x: np.ndarray) -> np.ndarray:
    """Normal scores from mid-ranks: the copula's view of a column."""
    ranks = pd.Series(x).rank(method="average").to_numpy()
    return ndtri((ranks - 0.5) / len(x))


def _nearest_correlation(r: np.ndarray) -> np.ndarray:
    """Clip eigenvalues so the matrix is positive definite, then restore a unit diagonal."""
    vals, vecs = np.linalg.eigh((r + r.T) / 2)
    fixed = vecs @ np.diag(np.clip(vals, 1e-6, None)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


def _marginal(x: np.ndarray, col: str, knots: int) -> dict[str, Any]:
    if col not in DECIMALS and col != schema.LEAKAGE[0]:
        values, counts = np.unique(x, return_counts=True)
        return {
            "kind": "discrete",
            "values": values.tolist(),
            "cdf": (np.cumsum(counts) / counts.sum()).round(6).tolist(),
        }
    values, counts = np.unique(x, return_counts=True)
    atoms = values[counts / len(x) >= ATOM_SHARE].tolist()
    q = np.quantile(x, np.linspace(0, 1, knots))
    return {"kind": "quantile", "knots": q.round(6).tolist(), "atoms": atoms}


def _correlation(codes: dict[str, np.ndarray]) -> np.ndarray:
    """Correlation of normal scores; a column constant within the stratum is independent."""
    z = np.column_stack([_normal_scores(c) for c in codes.values()])
    sd = z.std(axis=0)
    corr = np.eye(z.shape[1])
    live = sd > 0
    corr[np.ix_(live, live)] = np.corrcoef(z[:, live], rowvar=False)
    return _nearest_correlation(corr)


def _match_pearson(stratum: dict[str, Any], codes: dict[str, np.ndarray]) -> np.ndarray:
    """Adjust the copula correlation until draws reproduce the stratum's Pearson correlations.

    Normal-score correlations carry rank dependence, but spending clusters (few products, very
    high amounts) make Pearson correlations differ from it; a few fixed-point steps on a large
    seeded draw close that gap. Calibration-time work only."""
    x = np.column_stack(list(codes.values()))
    sd = x.std(axis=0)
    live = sd > 0
    target = np.eye(x.shape[1])
    target[np.ix_(live, live)] = np.corrcoef(x[:, live], rowvar=False)
    corr = np.asarray(stratum["correlation"])
    rng = np.random.default_rng(CALIBRATION_SEED)
    for _ in range(PEARSON_STEPS):
        drawn = _draw_class({**stratum, "correlation": corr}, list(codes), 20_000, rng)
        y = np.column_stack(list(drawn.values()))
        got = np.eye(y.shape[1])
        ok = live & (y.std(axis=0) > 0)
        got[np.ix_(ok, ok)] = np.corrcoef(y[:, ok], rowvar=False)
        corr = _nearest_correlation(np.clip(corr + (target - got), -0.999, 0.999))
        np.fill_diagonal(corr, 1.0)
    return corr


def _band(limit: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(LIMIT_BANDS), limit, side="left")


def calibrate(real: pd.DataFrame) -> dict[str, Any]:
    """Statistics of a real labelled frame (`churn` or `Attrition_Flag`) that drive `generate`:
    per stratum (class × credit-limit band) its share, marginals and normal-score
    correlations. No rows."""
    attrited = schema.attrited_mask(real)
    band = _band(real["Credit_Limit"].to_numpy())
    strata = []
    for label, is_attrited in (("existing", False), ("attrited", True)):
        for b in range(len(LIMIT_BANDS) + 1):
            part = real.loc[(attrited == is_attrited) & (band == b)]
            knots = int(np.clip(len(part) // ROWS_PER_KNOT, 2, MAX_KNOTS))
            codes = {c: _codes(part, c) for c in DRAWN}
            stratum = {
                "label": label,
                "band": b,
                "rows": len(part),
                "share": len(part) / len(real),
                "marginals": {c: _marginal(codes[c], c, knots) for c in DRAWN},
                "correlation": _correlation(codes),
            }
            stratum["correlation"] = _match_pearson(stratum, codes).round(6).tolist()
            strata.append(stratum)
    return {
        "format_version": FORMAT_VERSION,
        "source": "Kaggle 'Credit Card Customers' (sakshigoyal7/credit-card-customers), "
        "development portion; statistics only, no rows",
        "rows": len(real),
        "churn_rate": float(attrited.mean()),
        "columns": list(DRAWN),
        "limit_bands": list(LIMIT_BANDS),
        # the smallest unused credit in the file: balances are drawn below limit − this
        "min_open_to_buy": float(real["Avg_Open_To_Buy"].min()),
        "strata": strata,
    }


def calibration_text() -> str:
    """The committed calibration statistics shipped inside the package, as JSON text."""
    return resources.files("nba.data").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8")


def load_calibration() -> dict[str, Any]:
    return json.loads(calibration_text())


def save_calibration(calibration: dict[str, Any], path: str | Path) -> None:
    """Write calibration statistics as the JSON that `load_calibration` reads."""
    Path(path).write_text(json.dumps(calibration, indent=1) + "\n", encoding="utf-8")


def _draw_class(cal: dict[str, Any], columns: list[str], n: int, rng: np.random.Generator):
    chol = np.linalg.cholesky(np.asarray(cal["correlation"]))
    u = ndtr(rng.standard_normal((n, len(columns))) @ chol.T)
    out: dict[str, np.ndarray] = {}
    for j, col in enumerate(columns):
        m = cal["marginals"][col]
        if m["kind"] == "discrete":
            cdf = np.asarray(m["cdf"])
            idx = np.minimum(np.searchsorted(cdf, u[:, j], side="right"), len(cdf) - 1)
            out[col] = np.asarray(m["values"])[idx]
        else:
            knots = np.asarray(m["knots"])
            x = np.interp(u[:, j], np.linspace(0, 1, len(knots)), knots)
            # interpolation between two equal knots returns that knot exactly: a point mass
            atom = np.isin(x, m["atoms"])
            if col in DECIMALS:
                x = np.where(atom, x, np.round(x, DECIMALS[col]))
            out[col] = x
    return out


def _allocate(rows: int, shares: list[float]) -> list[int]:
    """Split `rows` over strata in proportion to their shares (largest remainder), so the
    class balance and band mix are exact for every size rather than noisy."""
    raw = np.asarray(shares) / sum(shares) * rows
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: rows - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def _stratum_counts(rows: int, strata: list[dict[str, Any]]) -> list[int]:
    """Rows per stratum: first per class (so the churn rate is exact), then per band."""
    labels = list(dict.fromkeys(s["label"] for s in strata))
    per_label = _allocate(
        rows, [sum(s["share"] for s in strata if s["label"] == lab) for lab in labels]
    )
    counts = []
    for label, n in zip(labels, per_label, strict=True):
        counts += _allocate(n, [s["share"] for s in strata if s["label"] == label])
    return counts


def _client_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unique 9-digit ids like Kaggle's: one random id per bucket of a fixed span, shuffled."""
    low, span = 708_000_000, max(120_000_000, 10 * n)
    stride = span // n
    ids = low + np.arange(n, dtype=np.int64) * stride + rng.integers(0, stride, n)
    return rng.permutation(ids)


def _text(codes: np.ndarray, labels: tuple[str, ...]) -> pd.Series:
    """A text column from category codes, built through Arrow's dictionary decoding (fast)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(labels))
    return pd.Series(dictionary.cast(pa.string()).to_pandas(types_mapper=None), dtype="str")


def generate(rows: int, seed: int, calibration: dict[str, Any] | None = None) -> pd.DataFrame:
    """`rows` synthetic customers in the exact schema of the Kaggle file (23 columns, Kaggle's
    order, `Attrition_Flag` as text). Deterministic for a seed."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    cal = calibration or load_calibration()
    rng = np.random.default_rng(seed)
    parts = []
    for stratum, n in zip(cal["strata"], _stratum_counts(rows, cal["strata"]), strict=True):
        if n:
            drawn = _draw_class(stratum, cal["columns"], n, rng)
            drawn[schema.TARGET_RAW] = np.full(n, stratum["label"] == "attrited", dtype=np.int8)
            parts.append(drawn)
    order = rng.permutation(rows)
    cols = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}

    limit = cols["Credit_Limit"]
    balance = np.minimum(cols["Total_Revolving_Bal"], np.floor(limit - cal["min_open_to_buy"]))
    nb1 = _signif(np.clip(cols[schema.LEAKAGE[0]], 1e-6, 1 - 1e-6), LEAKAGE_DIGITS)
    frame: dict[str, Any] = {
        schema.ID: _client_ids(rows, rng),
        schema.TARGET_RAW: _text(cols[schema.TARGET_RAW], (schema.EXISTING, schema.ATTRITED)),
    }
    for col in schema.REQUIRED[1:]:
        if col in schema.CATEGORIES:
            frame[col] = _text(cols[col], schema.CATEGORIES[col])
        elif col == "Total_Revolving_Bal":
            frame[col] = balance.astype(np.int64)
        elif col == "Avg_Open_To_Buy":
            frame[col] = np.round(limit - balance, 1)
        elif col == "Avg_Utilization_Ratio":
            frame[col] = np.round(balance / limit, 3)
        elif col in schema.INTEGERS:
            frame[col] = cols[col].astype(np.int64)
        else:
            frame[col] = cols[col].astype(float)
    frame[schema.LEAKAGE[0]] = nb1
    frame[schema.LEAKAGE[1]] = _signif(1 - nb1, LEAKAGE_DIGITS)
    return pd.DataFrame(frame, copy=False)[list(schema.KAGGLE_COLUMNS)]


def _r_number(values: pa.Array) -> pa.Array:
    """Numbers as R's write.csv prints them: the shortest round-trip digits, in scientific
    notation only where that is strictly shorter (9.3448e-05 but 0.00013366)."""
    fixed = pc.cast(values, pa.string())
    if pa.types.is_integer(values.type):
        return fixed
    x = values.to_numpy(zero_copy_only=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = np.floor(np.log10(np.abs(x)))
    exp = np.where(np.isfinite(exp), exp, 0).astype(np.int64)
    mantissa = pc.cast(pa.array(np.round(x / 10.0**exp, 12)), pa.string())
    sign = pa.array(np.where(exp < 0, "e-", "e+"))
    digits = pc.utf8_lpad(pc.cast(pa.array(np.abs(exp)), pa.string()), 2, "0")
    sci = pc.binary_join_element_wise(mantissa, sign, digits, "")
    shorter = pc.less(pc.utf8_length(sci), pc.utf8_length(fixed))
    return pc.if_else(shorter, sci, fixed)


def _kaggle_csv_chunks(df: pd.DataFrame, chunk_rows: int):
    """The CSV's bytes a chunk of rows at a time: header first, then lines built column-wise
    in Arrow (no Python loop over rows)."""
    yield (",".join(df.columns) + "\n").encode()
    for start in range(0, len(df), chunk_rows):
        chunk = pa.Table.from_pandas(df.iloc[start : start + chunk_rows], preserve_index=False)
        fields = []
        for column in chunk.columns:
            column = column.combine_chunks()
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                text = pc.replace_substring(column.cast(pa.string()), '"', '""')
                fields.append(pc.binary_join_element_wise('"', text, '"', ""))
            else:
                fields.append(_r_number(column))
        lines = pc.binary_join_element_wise(*fields, ",")
        yield _buffer(pc.binary_join_element_wise(lines, "\n", ""))


def write_kaggle_csv(df: pd.DataFrame, path: str | Path, chunk_rows: int = 500_000) -> None:
    """Write a Kaggle-format frame the way the original file is written (R's write.csv): an
    unquoted header, quoted strings, numbers unquoted in their shortest form (12691, 1438.3,
    9.3448e-05)."""
    with open(path, "wb") as out:
        for block in _kaggle_csv_chunks(df, chunk_rows):
            out.write(block)


def kaggle_csv_text(df: pd.DataFrame) -> str:
    """The same CSV as `write_kaggle_csv`, as text (small frames: tests, examples)."""
    return b"".join(_kaggle_csv_chunks(df, max(len(df), 1))).decode()


def _buffer(strings: pa.Array) -> bytes:
    """The concatenated bytes of a string array (its value buffer, between first and last
    offset): the lines as they go to the file, without a Python-level join."""
    width = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    offsets = np.frombuffer(strings.buffers()[1], dtype=width)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1]
    return memoryview(strings.buffers()[2])[offsets[0] : offsets[-1]].tobytes()
