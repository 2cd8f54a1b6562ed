"""Row-level validation of customer records: typed clean rows in, rejected rows out with reasons.

`validate` accepts a frame as `nba.data.io.read_table` returns it (every column text) or an
already typed frame (from Parquet or built in Python). It coerces values itself so that it can
report the raw text of a bad value, runs one pandera schema lazily (types, bounds, categories,
uniqueness, the two balance identities) and turns pandera's failure cases into one sentence
per broken rule per row. Rows are never dropped silently: rows in = clean rows + rejected rows.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from nba.data import schema
from nba.errors import DataError

logger = logging.getLogger(__name__)

#: Columns added to the rejects frame: 1-based data-row position and the joined reasons.
ROW = "row"
REASON = "reason"

#: Columns that must be whole numbers (the id and the count/amount integers).
_WHOLE = (schema.ID, *schema.INTEGERS)
#: Columns coerced to numbers (the id plus every numeric feature).
_NUMBERS = (schema.ID, *schema.NUMERIC)

_OPEN_TO_BUY_CHECK = "open_to_buy_identity"
_UTILIZATION_CHECK = "utilization_identity"
_WHOLE_CHECK = "whole_number"
_SHOW_MAX = 40  # characters of a raw value quoted in a reason


@dataclass(frozen=True)
class ValidationResult:
    """What `validate` found.

    clean:    valid rows, typed, columns in `schema.REQUIRED` order (+ `churn` when the input
              had `Attrition_Flag`), RangeIndex.
    rejects:  invalid rows with their original values for every input column, plus `row`
              (1-based position among the input's data rows) and `reason`.
    problems: one line per rule broken, with counts, e.g. "12 rows: Gender not one of F, M".
    n_in:     number of input rows (= len(clean) + len(rejects)).
    """

    clean: pd.DataFrame
    rejects: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    n_in: int = 0

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return len(self.rejects) == 0


def format_names(names: Sequence[str], limit: int = 5) -> str:
    """'A, B, C, D, E and 3 more': a short list of names for a one-line message."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def clean_column_names(columns: Iterable[object]) -> list[str]:
    """Column names as text without surrounding whitespace or a stray byte-order mark."""
    return [str(c).replace("\ufeff", "").strip() for c in columns]


def check_columns(columns: Sequence[str], where: str, required: Sequence[str]) -> None:
    """Raise DataError when names repeat or a required column is missing; `where` names the input."""
    seen: set[str] = set()
    dupes = [c for c in columns if c in seen or seen.add(c)]
    if dupes:
        raise DataError(f"{where} has duplicate columns: {format_names(sorted(set(dupes)))}")
    present = set(columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise DataError(
            f"{where} is missing {'a required column' if len(missing) == 1 else 'required columns'}: "
            f"{format_names(missing)}"
        )


def validate(raw: pd.DataFrame) -> ValidationResult:
    """Split `raw` customer records into typed clean rows and rejected rows with reasons.

    Raises DataError only for whole-frame problems (required columns missing, duplicate
    column names, no rows); every row-level problem ends up in `rejects`.
    """
    raw = raw.copy(deep=False)
    raw.columns = clean_column_names(raw.columns)
    check_columns(list(raw.columns), "the data", schema.REQUIRED)
    if len(raw) == 0:
        raise DataError("the data has no rows")
    raw = raw.reset_index(drop=True)
    n_in = len(raw)
    has_target = schema.TARGET_RAW in raw.columns

    typed = _coerce(raw, has_target)
    # Fast path: one vectorised pass over every row; only rows it cannot vouch for go through
    # pandera (which names the rule broken), so a clean batch never pays for pandera.
    suspects = np.flatnonzero(_suspect(typed, has_target))
    issues = _issues(raw, typed, has_target, suspects)

    bad = np.zeros(n_in, dtype=bool)
    bad[issues["index"].to_numpy(dtype=np.int64)] = True
    clean = _clean_frame(typed.loc[~bad] if bad.any() else typed, has_target)
    rejects, problems = _rejects(raw, issues)

    # The promise every caller relies on: no row disappears.
    assert len(clean) + len(rejects) == n_in, (len(clean), len(rejects), n_in)
    logger.info("validated %d rows: %d clean, %d rejected", n_in, len(clean), len(rejects))
    return ValidationResult(clean=clean, rejects=rejects, problems=problems, n_in=n_in)


# --- coercion -------------------------------------------------------------------------------


def _to_float(s: pd.Series) -> pd.Series:
    """Numbers as float64, NaN where missing or not a number (the raw text is reported later)."""
    nothing = pd.Series(np.full(len(s), np.nan), index=s.index)
    if pd.api.types.is_bool_dtype(s):
        return nothing  # True/False is not an amount
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    if pd.api.types.is_object_dtype(s):
        # Booleans inside an object column would pass to_numeric as 1/0; treat them as text.
        s = s.map(
            lambda v: (
                v.strip() if isinstance(v, str) else (None if isinstance(v, bool | np.bool_) else v)
            )
        )
    elif pd.api.types.is_string_dtype(s):
        # Fast path: Arrow parses a clean string column ~20x faster than pd.to_numeric.
        try:
            arr = pyarrow.array(s, from_pandas=True)
            out = pc.cast(arr, pyarrow.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(out, index=s.index, dtype="float64")
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, pyarrow.ArrowTypeError):
            s = s.str.strip()
    else:
        return nothing  # dates, intervals…: not numbers; the raw value is quoted in the reason
    out = pd.Series(pd.to_numeric(s, errors="coerce"), index=s.index)
    return pd.Series(out.to_numpy(dtype="float64", na_value=np.nan), index=s.index)


def _canonical(s: pd.Series, allowed: Sequence[str]) -> pd.Series:
    """Categories matched case-insensitively after trimming whitespace, in canonical spelling.

    Values that match nothing keep their trimmed text (so the isin check reports them);
    blanks become missing. Works on the unique values only, so it is cheap on large inputs.
    """
    lookup = {a.casefold(): a for a in allowed}
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped: list[object] = []
    for u in uniques:
        text = " ".join(str(u).split())
        mapped.append(lookup.get(text.casefold(), text) if text else None)
    if s.dtype == "str" and all(m == u for m, u in zip(mapped, uniques, strict=True)):
        return s  # already canonical text (the usual case): nothing to rebuild
    # code -1 → the trailing None; an arrow take builds the text column without Python objects
    values = pyarrow.array([*mapped, None], type=pyarrow.string())
    codes = np.where(codes < 0, len(mapped), codes)
    return pd.Series(pd.array(values.take(codes), dtype="str"), index=s.index)


def _coerce(raw: pd.DataFrame, has_target: bool) -> pd.DataFrame:
    """The working frame pandera checks: numbers as float64, categories canonical or raw text."""
    cols: dict[str, pd.Series] = {}
    for c in schema.REQUIRED:
        if c in schema.CATEGORIES:
            cols[c] = _canonical(raw[c], schema.CATEGORIES[c])
        else:
            cols[c] = _to_float(raw[c])
    if has_target:
        cols[schema.TARGET_RAW] = _canonical(raw[schema.TARGET_RAW], schema.TARGET_LABELS)
    return pd.DataFrame(cols, index=raw.index, copy=False)  # no 2-D block: columns stay as built


# --- the pandera schema ---------------------------------------------------------------------


def _within_bounds(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """True where every column is present and inside its bounds (identities need sane inputs)."""
    ok = pd.Series(True, index=df.index)
    for c in columns:
        lo, hi = schema.BOUNDS[c]
        ok &= df[c].between(lo, hi)
    return ok


def _open_to_buy_ok(df: pd.DataFrame) -> pd.Series:
    cols = ("Credit_Limit", "Total_Revolving_Bal", "Avg_Open_To_Buy")
    gap = (df["Avg_Open_To_Buy"] - (df["Credit_Limit"] - df["Total_Revolving_Bal"])).abs()
    return ~(_within_bounds(df, cols) & (gap > schema.OPEN_TO_BUY_TOLERANCE))


def _utilization_ok(df: pd.DataFrame) -> pd.Series:
    cols = ("Credit_Limit", "Total_Revolving_Bal", "Avg_Utilization_Ratio")
    gap = (df["Avg_Utilization_Ratio"] - df["Total_Revolving_Bal"] / df["Credit_Limit"]).abs()
    return ~(_within_bounds(df, cols) & (gap > schema.UTILIZATION_TOLERANCE))


def _is_whole(s: pd.Series) -> pd.Series:
    return s == np.floor(s)


_IDENTITY_COLUMNS = (
    "Credit_Limit",
    "Total_Revolving_Bal",
    "Avg_Open_To_Buy",
    "Avg_Utilization_Ratio",
)


@functools.cache
def _column_schema(has_target: bool) -> pa.DataFrameSchema:
    """Per-column rules: type, missing values, bounds, whole numbers, categories, unique id."""
    columns: dict[str, pa.Column] = {}
    for c in schema.REQUIRED:
        if c in schema.CATEGORIES:
            columns[c] = pa.Column("str", pa.Check.isin(schema.CATEGORIES[c]), nullable=False)
            continue
        lo, hi = schema.BOUNDS[c]
        checks = [pa.Check.in_range(lo, hi)]
        if c in _WHOLE:
            checks.append(pa.Check(_is_whole, name=_WHOLE_CHECK))
        columns[c] = pa.Column(
            "float64",
            checks,
            nullable=False,
            unique=c == schema.ID,
            report_duplicates="exclude_first",
        )
    if has_target:
        columns[schema.TARGET_RAW] = pa.Column(
            "str", pa.Check.isin(schema.TARGET_LABELS), nullable=False
        )
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


@functools.cache
def _identity_schema() -> pa.DataFrameSchema:
    """The two balance identities as wide (dataframe-level) checks.

    Run on the four columns involved only: pandera reports every column of a failing row, so
    a narrow frame keeps a file where every row breaks an identity affordable.
    """
    return pa.DataFrameSchema(
        {c: pa.Column("float64", nullable=True) for c in _IDENTITY_COLUMNS},
        checks=[
            pa.Check(_open_to_buy_ok, name=_OPEN_TO_BUY_CHECK),
            pa.Check(_utilization_ok, name=_UTILIZATION_CHECK),
        ],
        strict=True,
        coerce=False,
    )


def _suspect(typed: pd.DataFrame, has_target: bool) -> np.ndarray:
    """True for every row the pandera schemas could fail, from the same schema constants:
    missing, out of bounds, not whole, unknown category or label, a broken identity, or an id
    that occurs more than once (all of its rows, so that pandera sees the first one too).
    May flag a row pandera accepts (it then stays clean); never misses one pandera rejects."""
    bad = np.zeros(len(typed), dtype=bool)
    inside: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    for c in _NUMBERS:
        v = values[c] = typed[c].to_numpy(dtype=np.float64)
        lo, hi = schema.BOUNDS[c]
        ok = inside[c] = (v >= lo) & (v <= hi)  # False for NaN, as pandera's in_range
        if c in _WHOLE:
            ok = ok & (v == np.floor(v))
        bad |= ~ok
    labels = dict(schema.CATEGORIES)
    if has_target:
        labels[schema.TARGET_RAW] = schema.TARGET_LABELS
    for c, allowed in labels.items():
        bad |= ~typed[c].isin(allowed).to_numpy(dtype=bool)  # missing is not in allowed
    # the identity checks of `_open_to_buy_ok` and `_utilization_ok`, on the arrays above
    limit, balance = values["Credit_Limit"], values["Total_Revolving_Bal"]
    sane = inside["Credit_Limit"] & inside["Total_Revolving_Bal"]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(values["Avg_Open_To_Buy"] - (limit - balance))
        bad |= sane & inside["Avg_Open_To_Buy"] & (gap > schema.OPEN_TO_BUY_TOLERANCE)
        gap = np.abs(values["Avg_Utilization_Ratio"] - balance / limit)
        bad |= sane & inside["Avg_Utilization_Ratio"] & (gap > schema.UTILIZATION_TOLERANCE)
    if len(typed) > 1:
        bad |= typed[schema.ID].duplicated(keep=False).to_numpy(dtype=bool)
    return bad


def _failure_cases(typed: pd.DataFrame, has_target: bool) -> pd.DataFrame:
    """pandera's failure cases (schema_context, column, check, failure_case, index), lazily."""
    found = []
    for sch, frame in (
        (_column_schema(has_target), typed),
        (_identity_schema(), typed[list(_IDENTITY_COLUMNS)]),
    ):
        try:
            sch.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as err:
            found.append(err.failure_cases)
    if not found:
        return pd.DataFrame(columns=["schema_context", "column", "check", "failure_case", "index"])
    return pd.concat(found, ignore_index=True)


# --- failure cases → reasons ----------------------------------------------------------------


def _fmt_number(v: float) -> str:
    """12691.0 → '12691', 0.061 → '0.061', 1e20 → '1e+20'."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:  # False for inf and NaN
        return str(int(v))
    return f"{v:.10g}"


def _quote(v: object) -> str:
    """A raw value quoted for a message, shortened, with control characters escaped."""
    text = str(v).strip()
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 1] + "…"
    return repr(text)


def _show(raw_values: pd.Series, typed_values: pd.Series) -> list[str]:
    """How a numeric value is written in a reason: its raw text when it was text, else the number."""
    out = []
    for r, t in zip(raw_values.tolist(), typed_values.tolist(), strict=True):
        if isinstance(r, str):
            text = r.strip()
            out.append(text if len(text) <= _SHOW_MAX else _quote(text))
        else:
            out.append(_fmt_number(t))
    return out


def _is_blank(values: pd.Series) -> np.ndarray:
    """Missing, or text that is only whitespace."""
    return np.array(
        [v is None or (isinstance(v, str) and not v.strip()) or _is_na(v) for v in values.tolist()],
        dtype=bool,
    )


def _is_na(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _issue(idx: np.ndarray, order: int, rule: str, messages: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"index": idx.astype(np.int64), "order": order, "rule": rule, "message": messages}
    )


def _column_issues(
    col: str, check: str, idx: np.ndarray, raw: pd.DataFrame, typed: pd.DataFrame
) -> list[pd.DataFrame]:
    """One issue frame per rule for the failures of one column check."""
    order = schema.REQUIRED.index(col) * 10 if col in schema.REQUIRED else len(schema.REQUIRED) * 10
    raw_v = raw[col].take(idx)
    typed_v = typed[col].take(idx)

    if check == "not_nullable":
        blank = _is_blank(raw_v)
        out = []
        if blank.any():
            msg = f"{col} is missing"
            out.append(_issue(idx[blank], order, msg, [msg] * int(blank.sum())))
        if (~blank).any():
            texts = [_quote(v) for v in raw_v[~blank].tolist()]
            out.append(
                _issue(
                    idx[~blank],
                    order + 1,
                    f"{col} is not a number",
                    [f"{col} {t} is not a number" for t in texts],
                )
            )
        return out

    if check == "field_uniqueness":
        ids = typed[col]
        firsts = ids[~ids.duplicated(keep="first")]
        first_row = pd.Series(firsts.index.to_numpy() + 1, index=firsts.to_numpy())
        rows = first_row.reindex(typed_v.to_numpy()).to_numpy()
        shown = _show(raw_v, typed_v)
        return [
            _issue(
                idx,
                order + 2,
                f"{col} duplicates an earlier row",
                [f"{col} {s} duplicates row {r}" for s, r in zip(shown, rows, strict=True)],
            )
        ]

    if check.startswith("isin"):
        allowed = schema.CATEGORIES.get(col, schema.TARGET_LABELS)
        names = ", ".join(allowed)
        return [
            _issue(
                idx,
                order + 2,
                f"{col} not one of {names}",
                [f"{col} {_quote(v)} is not one of {names}" for v in raw_v.tolist()],
            )
        ]

    if check.startswith("in_range"):
        lo, hi = schema.BOUNDS[col]
        values = typed_v.to_numpy()
        shown = np.array(_show(raw_v, typed_v), dtype=object)
        out = []
        for mask, word, bound, step in (
            (values < lo, "minimum", lo, 3),
            (~(values < lo), "maximum", hi, 4),  # NaN never reaches a range check
        ):
            if mask.any():
                side = "below" if word == "minimum" else "above"
                b = _fmt_number(bound)
                out.append(
                    _issue(
                        idx[mask],
                        order + step,
                        f"{col} {side} the {word} {b}",
                        [f"{col} {s} is {side} the {word} {b}" for s in shown[mask]],
                    )
                )
        return out

    if check == _WHOLE_CHECK:
        return [
            _issue(
                idx,
                order + 5,
                f"{col} is not a whole number",
                [f"{col} {s} is not a whole number" for s in _show(raw_v, typed_v)],
            )
        ]

    # A check this module does not know: report pandera's own words rather than lose the row.
    return [
        _issue(
            idx,
            order + 9,
            f"{col} fails {check}",
            [f"{col} {_quote(v)} fails {check}" for v in raw_v.tolist()],
        )
    ]


def _identity_issues(check: str, idx: np.ndarray, typed: pd.DataFrame) -> pd.DataFrame:
    t = typed.take(idx)
    base = len(schema.REQUIRED) * 10 + 100
    limit, balance = t["Credit_Limit"].to_numpy(), t["Total_Revolving_Bal"].to_numpy()
    if check == _OPEN_TO_BUY_CHECK:
        tol = _fmt_number(schema.OPEN_TO_BUY_TOLERANCE)
        expected = limit - balance
        rule = f"Avg_Open_To_Buy is not Credit_Limit - Total_Revolving_Bal (tolerance {tol})"
        messages = [
            f"Avg_Open_To_Buy {_fmt_number(v)} is not Credit_Limit - Total_Revolving_Bal = "
            f"{_fmt_number(round(e, 2))} (tolerance {tol})"
            for v, e in zip(t["Avg_Open_To_Buy"].tolist(), expected.tolist(), strict=True)
        ]
        return _issue(idx, base, rule, messages)
    tol = _fmt_number(schema.UTILIZATION_TOLERANCE)
    expected = balance / limit
    rule = f"Avg_Utilization_Ratio is not Total_Revolving_Bal / Credit_Limit (tolerance {tol})"
    messages = [
        f"Avg_Utilization_Ratio {_fmt_number(v)} is not Total_Revolving_Bal / Credit_Limit = "
        f"{_fmt_number(round(e, 4))} (tolerance {tol})"
        for v, e in zip(t["Avg_Utilization_Ratio"].tolist(), expected.tolist(), strict=True)
    ]
    return _issue(idx, base + 1, rule, messages)


def _issues(
    raw: pd.DataFrame, typed: pd.DataFrame, has_target: bool, rows: np.ndarray
) -> pd.DataFrame:
    """Every (row, rule, message) found among the row positions `rows`, from pandera's failure
    cases, sorted by row. `raw` and `typed` are whole (RangeIndex), so the index pandera
    reports is a row position and messages can refer to any row (a duplicate's first)."""
    frames: list[pd.DataFrame] = [_issue(np.array([], dtype=np.int64), 0, "", [])]
    if not len(rows):
        return frames[0]
    fc = _failure_cases(typed.take(rows), has_target)
    if len(fc):
        fc = fc[fc["index"].notna()]
        wide = (fc["schema_context"] == "DataFrameSchema").to_numpy()
        # A wide check reports each failing row once per column: group by check only.
        for check, group in fc[wide].groupby("check", sort=False):
            idx = np.unique(group["index"].to_numpy(dtype=np.int64))
            frames.append(_identity_issues(str(check), idx, typed))
        for (col, check), group in fc[~wide].groupby(["column", "check"], sort=False):
            idx = np.unique(group["index"].to_numpy(dtype=np.int64))
            frames.extend(_column_issues(str(col), str(check), idx, raw, typed))
    issues = pd.concat(frames, ignore_index=True)
    return issues.sort_values(["index", "order"], kind="stable", ignore_index=True)


# --- outputs --------------------------------------------------------------------------------


def _clean_frame(typed: pd.DataFrame, has_target: bool) -> pd.DataFrame:
    """Valid rows in their final types: ints int64, floats float64, categories str."""
    clean = typed[list(schema.REQUIRED)].reset_index(drop=True)
    for c in _WHOLE:
        clean[c] = clean[c].astype(np.int64)
    if has_target:
        churn = typed[schema.TARGET_RAW].to_numpy() == schema.ATTRITED
        clean[schema.TARGET] = churn.astype(np.int8)
    return clean


def _rejects(raw: pd.DataFrame, issues: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rejected rows (raw values + row + reason) and the one-line-per-rule summary."""
    # issues is sorted by row; a plain pass over it is far faster than a groupby-join.
    idx_list: list[int] = []
    reasons: list[str] = []
    for i, group in itertools.groupby(
        zip(issues["index"].tolist(), issues["message"].tolist(), strict=True),
        key=operator.itemgetter(0),
    ):
        idx_list.append(i)
        reasons.append("; ".join(m for _, m in group))
    idx = np.array(idx_list, dtype=np.int64)
    rejects = (raw.take(idx) if len(idx) else raw.iloc[:0]).reset_index(drop=True)
    if ROW in rejects.columns or REASON in rejects.columns:
        logger.warning("input columns %r/%r are replaced in the rejects frame", ROW, REASON)
        rejects = rejects.drop(columns=[c for c in (ROW, REASON) if c in rejects.columns])
    rejects.insert(0, ROW, idx + 1)
    rejects[REASON] = pd.Series(reasons, dtype="str")

    if not len(issues):
        return rejects, []
    counts = issues.groupby(["order", "rule"], sort=True)["index"].nunique()
    problems = [f"{n} {'row' if n == 1 else 'rows'}: {rule}" for (_, rule), n in counts.items()]
    return rejects, problems
