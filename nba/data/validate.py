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
from typing import Any

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

#: Rules an issue can name (`Issue.rule`, the `rule` column of `ValidationResult.issues`):
#: what other components read instead of the sentence, which is for people.
MISSING = "missing"
NOT_A_NUMBER = "not_a_number"
DUPLICATE = "duplicate"
NOT_ALLOWED = "not_allowed"
BELOW_MINIMUM = "below_minimum"
ABOVE_MAXIMUM = "above_maximum"
NOT_WHOLE = "not_whole"
OPEN_TO_BUY_IDENTITY = "open_to_buy_identity"
UTILIZATION_IDENTITY = "utilization_identity"
#: Columns of `ValidationResult.issues`.
ISSUE_COLUMNS = ("row", "column", "rule", "message", "first_row")
#: How a rejected row's messages are joined into its `reason`.
REASON_SEPARATOR = "; "

_OPEN_TO_BUY_CHECK = OPEN_TO_BUY_IDENTITY
_UTILIZATION_CHECK = UTILIZATION_IDENTITY
_WHOLE_CHECK = "whole_number"
_SHOW_MAX = 40  # characters of a raw value quoted in a reason


@dataclass(frozen=True)
class Issue:
    """One broken rule in one row: `row` (1-based position among the input's data rows),
    `column`, `rule` (one of the rule names above, or a pandera check's name), `message` (the
    sentence for people) and, for a duplicate, `first_row` (where the id first appears; else 0).
    """

    row: int
    column: str
    rule: str
    message: str
    first_row: int = 0


class RecordError(DataError):
    """A single customer record is invalid: the message joins the sentences for people;
    `issues` holds the same problems as `Issue` records (column, rule) for programs."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__(join_reasons(i.message for i in self.issues))


def join_reasons(messages: Iterable[str]) -> str:
    """A rejected row's `reason`: its messages, in the order `validate` reports them."""
    return REASON_SEPARATOR.join(messages)


def duplicate_message(shown: str, first_row: int) -> str:
    """The sentence for an id seen in an earlier row (`shown` as `show_values` writes it)."""
    return f"{schema.ID} {shown} duplicates row {first_row}"


@dataclass(frozen=True)
class ValidationResult:
    """What `validate` found.

    clean:    valid rows, typed, columns in `schema.REQUIRED` order (+ `churn` when the input
              had `Attrition_Flag`), RangeIndex.
    rejects:  invalid rows with their original values for every input column, plus `row`
              (1-based position among the input's data rows) and `reason`.
    problems: one line per rule broken, with counts, e.g. "12 rows: Gender not one of F, M".
    n_in:     number of input rows (= len(clean) + len(rejects)).
    issues:   every broken rule as a record, one row each: `ISSUE_COLUMNS` (row, column, rule,
              message, first_row; see `Issue`), sorted by row in the order of the `reason`.
    """

    clean: pd.DataFrame
    rejects: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    n_in: int = 0
    #: validate's working issues frame; `issues` builds the records from it when asked for
    found: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def issues(self) -> pd.DataFrame:
        """Every broken rule as a record (see the class docstring); built on first use."""
        return _public_issues(_no_issues() if self.found is None else self.found)

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return len(self.rejects) == 0

    def issues_in(self, row: int) -> list[Issue]:
        """The issues of one input row (1-based, as in `rejects["row"]`), in reason order."""
        issues = self.issues
        part = issues[issues["row"] == row]
        return [Issue(*values) for values in part.itertuples(index=False, name=None)]


def format_names(names: Sequence[str], limit: int = 5) -> str:
    """'A, B, C, D, E and 3 more': a short list of names for a one-line message."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def clean_column_names(columns: Iterable[object]) -> list[str]:
    """Column names as text without surrounding whitespace or a stray byte-order mark."""
    if isinstance(columns, pd.Index):
        columns = columns.tolist()  # plain Python names: iterating an arrow-backed Index is slow
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
    names = clean_column_names(raw.columns)
    if names != raw.columns.tolist():
        raw = raw.copy(deep=False)  # renamed in a shallow copy: the caller's frame stays as is
        raw.columns = names
    check_columns(names, "the data", schema.REQUIRED)
    if len(raw) == 0:
        raise DataError("the data has no rows")
    if not raw.index.equals(pd.RangeIndex(len(raw))):
        raw = raw.reset_index(drop=True)
    n_in = len(raw)
    has_target = schema.TARGET_RAW in raw.columns

    typed = _coerce(raw, has_target)
    # Fast path: one vectorised pass over every row; only rows it cannot vouch for go through
    # pandera (which names the rule broken), so a clean batch never pays for pandera.
    suspects = np.flatnonzero(_suspect(typed, has_target))
    issues = _issues(raw, typed, has_target, suspects)

    keep = None
    if len(issues):
        keep = np.ones(n_in, dtype=bool)
        keep[issues["index"].to_numpy(dtype=np.int64)] = False
    clean = _clean_frame(typed, has_target, keep)
    rejects, problems = _rejects(raw, issues)

    # The promise every caller relies on: no row disappears.
    assert len(clean) + len(rejects) == n_in, (len(clean), len(rejects), n_in)
    logger.info("validated %d rows: %d clean, %d rejected", n_in, len(clean), len(rejects))
    return ValidationResult(
        clean=clean, rejects=rejects, problems=problems, n_in=n_in, found=issues
    )


# --- coercion -------------------------------------------------------------------------------


class Typed(dict[str, Any]):
    """The typed working columns: name → float64 array (numbers) or "str" array (categories).
    `known`: category columns already found to hold allowed values only (so the row checks
    need not look them up again)."""

    known: frozenset[str] = frozenset()


def _to_float(values: Any) -> np.ndarray:
    """Numbers as float64, NaN where missing or not a number (the raw text is reported later).
    `values` is a column's array (numpy or pandas extension array); the result is a new array."""
    dtype = values.dtype
    if isinstance(values, np.ndarray) and dtype.kind in "iuf":
        return values.astype(np.float64)  # plain numbers (the usual typed input)
    if pd.api.types.is_bool_dtype(dtype):
        return np.full(len(values), np.nan)  # True/False is not an amount
    if pd.api.types.is_numeric_dtype(dtype):
        if isinstance(values, np.ndarray):
            return values.astype(np.float64)
        return np.array(values.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)
    if pd.api.types.is_object_dtype(dtype):
        # Booleans inside an object column would pass to_numeric as 1/0; treat them as text.
        text: Any = np.array(
            [
                v.strip() if isinstance(v, str) else (None if isinstance(v, bool | np.bool_) else v)
                for v in values
            ],
            dtype=object,
        )
    elif pd.api.types.is_string_dtype(dtype):
        # Fast path: Arrow parses a clean string column ~20x faster than pd.to_numeric.
        try:
            arr = pyarrow.array(values, from_pandas=True)
            return (
                pc.cast(arr, pyarrow.float64())
                .to_numpy(zero_copy_only=False)
                .astype(np.float64, copy=False)
            )
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, pyarrow.ArrowTypeError):
            text = pd.Series(values, copy=False).str.strip()
    else:
        return np.full(len(values), np.nan)  # dates, intervals…: not numbers; quoted later
    out = pd.Series(pd.to_numeric(text, errors="coerce"), copy=False)
    return np.array(out.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def _canonical(values: Any, allowed: Sequence[str]) -> Any:
    """Categories matched case-insensitively after trimming whitespace, in canonical spelling,
    as a "str" array.

    Values that match nothing keep their trimmed text (so the isin check reports them);
    blanks become missing. Works on the unique values only, so it is cheap on large inputs.
    """
    lookup = {a.casefold(): a for a in allowed}
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped: list[object] = []
    for u in uniques:
        text = " ".join(str(u).split())
        mapped.append(lookup.get(text.casefold(), text) if text else None)
    if values.dtype == "str" and all(m == u for m, u in zip(mapped, uniques, strict=True)):
        return values.copy()  # already canonical text: a new wrapper, same memory
    # code -1 → the trailing None; an arrow take builds the text column without Python objects
    table = pyarrow.array([*mapped, None], type=pyarrow.string())
    codes = np.where(codes < 0, len(mapped), codes)
    return pd.array(table.take(codes), dtype="str")


def _all_allowed(values: Any, allowed: Sequence[str]) -> bool:
    """True when `values` is "str" text and every value is one of `allowed` (none missing):
    the usual case, checked with one arrow lookup instead of factorising."""
    return values.dtype == "str" and bool(_isin(values, allowed).all())


def _isin(values: Any, allowed: Sequence[str]) -> np.ndarray:
    """True where a text value is one of `allowed` (missing never is), as a bool array; one
    arrow kernel for arrow-backed text, pandas' isin otherwise."""
    if isinstance(values, pd.arrays.ArrowStringArray):
        found = pc.is_in(pyarrow.array(values), value_set=_value_set(tuple(allowed)))
        return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    return np.asarray(values.isin(list(allowed)), dtype=bool)


@functools.cache
def _value_set(allowed: tuple[str, ...]) -> pyarrow.Array:
    return pyarrow.array(allowed, pyarrow.large_string())


def _coerce(raw: pd.DataFrame, has_target: bool) -> Typed:
    """The working columns the checks read: numbers as float64, categories canonical or raw
    text; one array per column (no Series or frame: cheap for one customer as for a million)."""
    names = [*schema.REQUIRED, schema.TARGET_RAW] if has_target else list(schema.REQUIRED)
    arrays = schema.column_arrays(raw, names)
    typed = Typed()
    known: set[str] = set()
    labels = {**schema.CATEGORIES, schema.TARGET_RAW: schema.TARGET_LABELS}
    for c in names:
        if c in labels:
            if _all_allowed(arrays[c], labels[c]):  # the usual case: a new wrapper, same memory
                typed[c] = arrays[c].copy()
                known.add(c)
            else:
                typed[c] = _canonical(arrays[c], labels[c])
        else:
            typed[c] = _to_float(arrays[c])
    typed.known = frozenset(known)
    return typed


# --- the pandera schema ---------------------------------------------------------------------


def _within_bounds(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """True where every column is present and inside its bounds (identities need sane inputs)."""
    ok = pd.Series(True, index=df.index)
    for c in columns:
        lo, hi = schema.BOUNDS[c]
        ok &= df[c].between(lo, hi)
    return ok


def _open_to_buy_gap(open_to_buy: Any, limit: Any, balance: Any) -> Any:
    """|open to buy − (limit − balance)| (currency units), for arrays or Series alike."""
    return np.abs(open_to_buy - (limit - balance))


def _utilization_gap(ratio: Any, limit: Any, balance: Any) -> Any:
    """|utilisation − balance / limit| (ratio points), for arrays or Series alike."""
    return np.abs(ratio - balance / limit)


def _open_to_buy_ok(df: pd.DataFrame) -> pd.Series:
    cols = ("Credit_Limit", "Total_Revolving_Bal", "Avg_Open_To_Buy")
    gap = _open_to_buy_gap(df["Avg_Open_To_Buy"], df["Credit_Limit"], df["Total_Revolving_Bal"])
    return ~(_within_bounds(df, cols) & (gap > schema.OPEN_TO_BUY_TOLERANCE))


def _utilization_ok(df: pd.DataFrame) -> pd.Series:
    cols = ("Credit_Limit", "Total_Revolving_Bal", "Avg_Utilization_Ratio")
    ratio, limit = df["Avg_Utilization_Ratio"], df["Credit_Limit"]
    gap = _utilization_gap(ratio, limit, df["Total_Revolving_Bal"])
    return ~(_within_bounds(df, cols) & (gap > schema.UTILIZATION_TOLERANCE))


def _is_whole(s: Any) -> Any:
    """True where a number has no fractional part (Series or array)."""
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


def _suspect(typed: Typed, has_target: bool) -> np.ndarray:
    """True for every row the pandera schemas could fail, from the same schema constants:
    missing, out of bounds, not whole, unknown category or label, a broken identity, or an id
    that occurs more than once (all of its rows, so that pandera sees the first one too).
    May flag a row pandera accepts (it then stays clean); never misses one pandera rejects."""
    n = len(typed[schema.ID])
    bad = np.zeros(n, dtype=bool)
    inside: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    for c in _NUMBERS:
        v = values[c] = typed[c]
        lo, hi = schema.BOUNDS[c]
        ok = inside[c] = (v >= lo) & (v <= hi)  # False for NaN, as pandera's in_range
        if c in _WHOLE:
            ok = ok & _is_whole(v)
        bad |= ~ok
    labels = dict(schema.CATEGORIES)
    if has_target:
        labels[schema.TARGET_RAW] = schema.TARGET_LABELS
    for c, allowed in labels.items():
        if c not in getattr(typed, "known", ()):
            bad |= ~_isin(typed[c], allowed)  # missing is not in allowed
    # the identity checks of `_open_to_buy_ok` and `_utilization_ok`, on the arrays above
    limit, balance = values["Credit_Limit"], values["Total_Revolving_Bal"]
    sane = inside["Credit_Limit"] & inside["Total_Revolving_Bal"]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = _open_to_buy_gap(values["Avg_Open_To_Buy"], limit, balance)
        bad |= sane & inside["Avg_Open_To_Buy"] & (gap > schema.OPEN_TO_BUY_TOLERANCE)
        gap = _utilization_gap(values["Avg_Utilization_Ratio"], limit, balance)
        bad |= sane & inside["Avg_Utilization_Ratio"] & (gap > schema.UTILIZATION_TOLERANCE)
    if n > 1:
        bad |= pd.Series(values[schema.ID], copy=False).duplicated(keep=False).to_numpy(bool)
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


def show_values(raw_values: pd.Series, typed_values: pd.Series) -> list[str]:
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


@functools.cache
def _empty_issues() -> pd.DataFrame:
    return _issue(np.array([], dtype=np.int64), 0, "", "", "", [])


def _no_issues() -> pd.DataFrame:
    """An empty issues frame (a shallow copy of one built once: copy-on-write keeps it safe)."""
    return _empty_issues().copy(deep=False)


def _issue(
    idx: np.ndarray,
    order: int,
    column: str,
    rule: str,
    problem: str,
    messages: list[str],
    first_row: Any = 0,
) -> pd.DataFrame:
    """Issues of one rule: row positions `idx`, their `order` within a reason, the column and
    rule (for programs), `problem` (the summary line's text) and one message per row."""
    return pd.DataFrame(
        {
            "index": idx.astype(np.int64),
            "order": order,
            "column": column,
            "rule": rule,
            "problem": problem,
            "message": messages,
            "first_row": np.broadcast_to(np.asarray(first_row, dtype=np.int64), idx.shape),
        }
    )


@functools.cache
def _empty_public_issues() -> pd.DataFrame:
    return _issue_records(_empty_issues())


def _public_issues(issues: pd.DataFrame) -> pd.DataFrame:
    """The internal issues frame as `ValidationResult.issues` (built once when empty)."""
    if not len(issues):
        return _empty_public_issues().copy(deep=False)
    return _issue_records(issues)


def _issue_records(issues: pd.DataFrame) -> pd.DataFrame:
    """`ISSUE_COLUMNS` from the internal issues frame, rows 1-based."""
    return pd.DataFrame(
        {
            "row": issues["index"].to_numpy(dtype=np.int64) + 1,
            "column": issues["column"].astype("str"),
            "rule": issues["rule"].astype("str"),
            "message": issues["message"].astype("str"),
            "first_row": issues["first_row"].to_numpy(dtype=np.int64),
        },
        index=pd.RangeIndex(len(issues)),
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
            out.append(_issue(idx[blank], order, col, MISSING, msg, [msg] * int(blank.sum())))
        if (~blank).any():
            texts = [_quote(v) for v in raw_v[~blank].tolist()]
            out.append(
                _issue(
                    idx[~blank],
                    order + 1,
                    col,
                    NOT_A_NUMBER,
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
        shown = show_values(raw_v, typed_v)
        return [
            _issue(
                idx,
                order + 2,
                col,
                DUPLICATE,
                f"{col} duplicates an earlier row",
                [duplicate_message(s, r) for s, r in zip(shown, rows, strict=True)],
                rows,
            )
        ]

    if check.startswith("isin"):
        allowed = schema.CATEGORIES.get(col, schema.TARGET_LABELS)
        names = ", ".join(allowed)
        return [
            _issue(
                idx,
                order + 2,
                col,
                NOT_ALLOWED,
                f"{col} not one of {names}",
                [f"{col} {_quote(v)} is not one of {names}" for v in raw_v.tolist()],
            )
        ]

    if check.startswith("in_range"):
        lo, hi = schema.BOUNDS[col]
        values = typed_v.to_numpy()
        shown = np.array(show_values(raw_v, typed_v), dtype=object)
        out = []
        for mask, word, bound, step, rule in (
            (values < lo, "minimum", lo, 3, BELOW_MINIMUM),
            (~(values < lo), "maximum", hi, 4, ABOVE_MAXIMUM),  # NaN never reaches a range check
        ):
            if mask.any():
                side = "below" if word == "minimum" else "above"
                b = _fmt_number(bound)
                out.append(
                    _issue(
                        idx[mask],
                        order + step,
                        col,
                        rule,
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
                col,
                NOT_WHOLE,
                f"{col} is not a whole number",
                [f"{col} {s} is not a whole number" for s in show_values(raw_v, typed_v)],
            )
        ]

    # A check this module does not know: report pandera's own words rather than lose the row.
    return [
        _issue(
            idx,
            order + 9,
            col,
            check,
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
        return _issue(idx, base, "Avg_Open_To_Buy", OPEN_TO_BUY_IDENTITY, rule, messages)
    tol = _fmt_number(schema.UTILIZATION_TOLERANCE)
    expected = balance / limit
    rule = f"Avg_Utilization_Ratio is not Total_Revolving_Bal / Credit_Limit (tolerance {tol})"
    messages = [
        f"Avg_Utilization_Ratio {_fmt_number(v)} is not Total_Revolving_Bal / Credit_Limit = "
        f"{_fmt_number(round(e, 4))} (tolerance {tol})"
        for v, e in zip(t["Avg_Utilization_Ratio"].tolist(), expected.tolist(), strict=True)
    ]
    return _issue(idx, base + 1, "Avg_Utilization_Ratio", UTILIZATION_IDENTITY, rule, messages)


def _issues(raw: pd.DataFrame, typed: Typed, has_target: bool, rows: np.ndarray) -> pd.DataFrame:
    """Every (row, column, rule, message) found among the row positions `rows`, from pandera's failure
    cases, sorted by row. `raw` and `typed` are whole (RangeIndex), so the index pandera
    reports is a row position and messages can refer to any row (a duplicate's first)."""
    if not len(rows):
        return _no_issues()
    frames: list[pd.DataFrame] = [_no_issues()]
    # pandera needs a frame: built only here, for batches that have suspect rows
    typed = pd.DataFrame(typed, index=raw.index, copy=False)
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


def _clean_frame(typed: Typed, has_target: bool, keep: np.ndarray | None) -> pd.DataFrame:
    """Valid rows (`keep`, None = all) in their final types: ints int64, floats float64,
    categories str; one frame built from the columns, RangeIndex."""
    cols: dict[str, Any] = {}
    for c in schema.REQUIRED:
        v = typed[c] if keep is None else typed[c][keep]
        cols[c] = v.astype(np.int64) if c in _WHOLE else v
    if has_target:
        label = typed[schema.TARGET_RAW] if keep is None else typed[schema.TARGET_RAW][keep]
        cols[schema.TARGET] = np.asarray(label == schema.ATTRITED, dtype=bool).astype(np.int8)
    n = len(cols[schema.ID])
    return pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)


def _empty_rejects(raw: pd.DataFrame) -> pd.DataFrame:
    """The rejects frame when nothing was rejected: `_rejects`' columns and types, no rows.
    Built once per input layout (columns and types), handed out as a shallow copy."""
    if ROW in raw.columns or REASON in raw.columns:
        logger.warning("input columns %r/%r are replaced in the rejects frame", ROW, REASON)
    arrays = schema.column_arrays(raw, raw.columns.tolist())
    return _empty_rejects_for(tuple((c, a.dtype) for c, a in arrays.items())).copy(deep=False)


@functools.lru_cache(maxsize=32)
def _empty_rejects_for(layout: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    columns = {c: pd.Series([], dtype=dtype) for c, dtype in layout}
    rejects = pd.DataFrame(columns).drop(columns=[c for c in (ROW, REASON) if c in columns])
    rejects.insert(0, ROW, np.array([], dtype=np.int64))
    rejects[REASON] = pd.Series([], dtype="str")
    return rejects


def _rejects(raw: pd.DataFrame, issues: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rejected rows (raw values + row + reason) and the one-line-per-rule summary."""
    if not len(issues):
        return _empty_rejects(raw), []
    # issues is sorted by row; a plain pass over it is far faster than a groupby-join.
    idx_list: list[int] = []
    reasons: list[str] = []
    for i, group in itertools.groupby(
        zip(issues["index"].tolist(), issues["message"].tolist(), strict=True),
        key=operator.itemgetter(0),
    ):
        idx_list.append(i)
        reasons.append(join_reasons(m for _, m in group))
    idx = np.array(idx_list, dtype=np.int64)
    rejects = (raw.take(idx) if len(idx) else raw.iloc[:0]).reset_index(drop=True)
    if ROW in rejects.columns or REASON in rejects.columns:
        logger.warning("input columns %r/%r are replaced in the rejects frame", ROW, REASON)
        rejects = rejects.drop(columns=[c for c in (ROW, REASON) if c in rejects.columns])
    rejects.insert(0, ROW, idx + 1)
    rejects[REASON] = pd.Series(reasons, dtype="str")

    counts = issues.groupby(["order", "problem"], sort=True)["index"].nunique()
    problems = [f"{n} {'row' if n == 1 else 'rows'}: {text}" for (_, text), n in counts.items()]
    return rejects, problems
