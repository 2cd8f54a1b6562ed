"""Decisions for customers sent as JSON: the one scoring path of `nba score`, over HTTP.

Pure functions and one small class, no web framework: the request's customers become the frame
`nba.data.validate` checks (the project's own rules and sentences), the clean rows go through
`nba.scoring.score_columns` (what `nba score` and `bundle.recommend()` use), and each scored
customer becomes one decision: the score row's fields, plus its position in the request, its
`decision_id`, the bundle that made it and whether that was the champion or the challenger.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import operator
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from nba.data import schema

#: The request's limits (stated in the OpenAPI description and the README): bigger batches
#: belong to `nba score`, and a bound keeps one request from holding a worker for long.
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_CUSTOMERS = 1_000

#: What the service writes to the history for its own decisions.
CAMPAIGN_ID = "api"
CHANNEL = "api"
GROUP = "treatment"

CHAMPION = "champion"
CHALLENGER = "challenger"

_NUMBERS = frozenset((schema.ID, *schema.NUMERIC))
_STR = pd.api.types.pandas_dtype("str")  # resolved once: parsing the name costs per column
_PLAIN_NUMBER = frozenset((int, float))
_TEXT = {str}
_INT64 = 2**63


class RequestError(ValueError):
    """The request as a whole is unusable; `status` is the HTTP status, the message one sentence."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def bundle_id(bundle: Any, path: str | Path | None = None) -> str:
    """A short stable name for a bundle: `metadata["bundle_id"]` when training recorded one,
    else the first 12 hex digits of the file's sha256 (the same file, the same id)."""
    recorded = (bundle.metadata or {}).get("bundle_id")
    if recorded:
        return str(recorded)
    if path is None:
        raise ValueError("a bundle without a recorded id needs its file to be named")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# --- the request body -----------------------------------------------------------------------


def parse_body(body: bytes, key: str) -> list[Any]:
    """The list under `key` of a JSON object, or a `RequestError` (400 not JSON or wrong
    shape, 413 over `MAX_CUSTOMERS`). Standard JSON is parsed by orjson; a body orjson refuses
    is read again by Python's json, which also takes the NaN and Infinity literals some
    clients write and numbers beyond 64 bits, so such a value is one customer's reject
    instead of the whole request's."""
    if not body.strip():
        raise RequestError(400, "The request body is empty: send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        import json

        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(400, "The request body is not UTF-8 text.") from None
        except ValueError as exc:
            raise RequestError(400, f"The request body is not valid JSON ({exc}).") from None
        except RecursionError:
            raise RequestError(400, "The request body nests JSON too deeply.") from None
    if not isinstance(data, dict):
        raise RequestError(
            400, f'The request body must be a JSON object {{"{key}": [...]}}, not {_kind(data)}.'
        )
    if key not in data:
        raise RequestError(400, f'The request body has no "{key}" list.')
    items = data[key]
    if not isinstance(items, list):
        raise RequestError(400, f'"{key}" must be a list, not {_kind(items)}.')
    if not items:
        raise RequestError(400, f'"{key}" is empty: send at least one.')
    if len(items) > MAX_CUSTOMERS:
        raise RequestError(
            413,
            f'"{key}" holds {len(items):,} entries; the limit is {MAX_CUSTOMERS:,} a request '
            "(use `nba score` for files).",
        )
    return items


def _kind(value: Any) -> str:
    """'a list', 'a number', … for a message about a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _utf8(text: str) -> str:
    """Text as UTF-8 can hold it: a lone surrogate (JSON can write "\\ud800", UTF-8 cannot)
    becomes its escape, so the validator, arrow and the answer can quote it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _as_text(v: Any) -> Any:
    """A nested JSON value as its JSON text (so the validator quotes it as a wrong value);
    one nested too deeply to write back is named by its kind; text made UTF-8 safe."""
    if isinstance(v, str):
        return _utf8(v)
    if isinstance(v, dict | list):
        try:
            return orjson.dumps(v).decode()
        except (TypeError, orjson.JSONEncodeError):
            return f"<{_kind(v)} nested too deeply>"
    return v


def _number_column(values: list[Any]) -> Any:
    """Plain JSON numbers straight into float64 (the usual case); anything else as an object
    column the validator reads value by value (text, null, booleans, nested values as text)."""
    if set(map(type, values)) <= _PLAIN_NUMBER:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64: handled below
            pass
    out = []
    for v in values:
        if type(v) is int and not -_INT64 <= v < _INT64:
            v = float("inf") if v > 0 else float("-inf")  # reported out of range, not garbled
        out.append(_as_text(v))
    return np.array(out, dtype=object)


def _text_column(values: list[Any]) -> Any:
    """Text as pandas' "str" array built by arrow (what `validate` reads fastest); anything
    else as an object column the validator reports value by value."""
    if set(map(type, values)) == _TEXT:
        try:
            text = pa.array(values, pa.large_string())
        except UnicodeEncodeError:  # a lone surrogate somewhere: escape it
            text = pa.array([_utf8(v) for v in values], pa.large_string())
        return pd.arrays.ArrowStringArray(text, dtype=_STR)
    return np.array([_as_text(v) for v in values], dtype=object)


def customers_frame(customers: Sequence[Any]) -> tuple[pd.DataFrame, dict[int, str]]:
    """The request's customers as the raw frame `validate` checks (one row per customer, in
    order, every BankChurners field; other fields ignored) and the customers that are not
    JSON objects at all, with their reason. Row i of the frame is `customers[i]`, so the
    validator's 1-based row numbers are request positions + 1."""
    not_objects = {
        i: f"customer {i} is {_kind(c)}, not a JSON object of BankChurners fields"
        for i, c in enumerate(customers)
        if not isinstance(c, dict)
    }
    # Each field of every customer by one C-level map per field (half the CPU of a lookup per
    # customer and a transpose); a customer without some field, or not an object: the fields
    # customer by customer, None where missing.
    columns = None
    if not not_objects:
        with contextlib.suppress(KeyError):
            columns = [list(map(get, customers)) for get in _GETTERS]
    if columns is None:
        fields = [_fields(c) if isinstance(c, dict) else _NOTHING for c in customers]
        columns = [list(values) for values in zip(*fields, strict=True)]
    cols = {}
    for name, values in zip(schema.REQUIRED, columns, strict=True):
        cols[name] = _number_column(values) if name in _NUMBERS else _text_column(values)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(customers)), copy=False), not_objects


_GET = operator.itemgetter(*schema.REQUIRED)
_GETTERS = [operator.itemgetter(name) for name in schema.REQUIRED]
_NOTHING = (None,) * len(schema.REQUIRED)


def _fields(customer: dict[str, Any]) -> tuple[Any, ...]:
    """The BankChurners fields of one customer, None where missing."""
    try:
        return _GET(customer)
    except KeyError:
        return tuple(customer.get(name) for name in schema.REQUIRED)


@dataclass
class Checked:
    """A request's customers after validation: the clean frame and where each row came from."""

    clean: pd.DataFrame
    positions: np.ndarray  # request position of each clean row
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "reason"}
    n_in: int = 0
    rows: tuple[int, int] = (0, 0)  # this request's clean rows in a batch (`check_batch`)


def check_customers(customers: Sequence[Any]) -> Checked:
    """Validate a request's customers with the project's validator: clean rows to decide, and
    one `{"index", "reason"}` per bad customer. Customers in = clean + rejected, always."""
    from nba.data.validate import validate

    raw, not_objects = customers_frame(customers)
    result = validate(raw)
    bad = (result.rejects["row"].to_numpy(dtype=np.int64) - 1).tolist()
    reasons = result.rejects["reason"].tolist()
    rejected = [
        {"index": i, "reason": not_objects.get(i, r)} for i, r in zip(bad, reasons, strict=True)
    ]
    keep = np.ones(len(customers), dtype=bool)
    keep[bad] = False
    checked = Checked(result.clean, np.flatnonzero(keep), rejected, len(customers))
    assert len(checked.positions) + len(rejected) == len(customers)
    return checked


def check_batch(requests: Sequence[Sequence[Any]]) -> tuple[pd.DataFrame, list[Checked]]:
    """Validate the customers of several requests: one clean frame for all of them (request
    after request) and, per request, a `Checked` whose `clean` is empty and whose rows are
    `rows` of the shared frame. Equal to `check_customers` request by request: every rule is
    about one row except duplicate ids, so one validator call covers requests whose ids are
    all distinct, numeric and present (the usual case); otherwise each request alone."""
    from nba.data.validate import validate

    together = [c for r in requests for c in r]
    raw, not_objects = customers_frame(together)
    ids = raw[schema.ID].to_numpy()
    distinct = (
        ids.dtype == np.float64 and not np.isnan(ids).any() and len(np.unique(ids)) == len(ids)
    )
    if not distinct:
        checked = [check_customers(r) for r in requests]
        frames = [c.clean for c in checked]
        clean = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        start = 0
        for c in checked:
            c.rows = (start, start + len(c.clean))
            start += len(c.clean)
        return clean, checked
    result = validate(raw)
    bad = result.rejects["row"].to_numpy(dtype=np.int64) - 1
    reasons = result.rejects["reason"].tolist()
    keep = np.ones(len(together), dtype=bool)
    keep[bad] = False
    kept = np.cumsum(keep)  # clean rows up to and including each customer
    checked, start, first_clean = [], 0, 0
    for r in requests:
        stop = start + len(r)
        here = (bad >= start) & (bad < stop)
        rejected = [
            {"index": int(i - start), "reason": not_objects.get(int(i), reasons[k])}
            for k, i in zip(np.flatnonzero(here).tolist(), bad[here].tolist(), strict=True)
        ]
        last_clean = int(kept[stop - 1]) if stop > 0 else 0
        positions = np.flatnonzero(keep[start:stop])
        part = Checked(result.clean.iloc[:0], positions, rejected, len(r))
        part.rows = (first_clean, last_clean)
        assert len(positions) + len(rejected) == len(r)
        checked.append(part)
        start, first_clean = stop, last_clean
    return result.clean, checked


# --- champion and challenger ----------------------------------------------------------------


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a uint64 → a well-spread uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def challenger_mask(ids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the customers the challenger decides for: a hash of CLIENTNUM and the seed
    mapped to [0, 1) below `share`. Sticky (the same customer, the same side, in every
    request, worker and restart) and independent of the customer's features."""
    if share <= 0:
        return np.zeros(len(ids), dtype=bool)
    with np.errstate(over="ignore"):
        key = np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ _mix(
            np.array([seed], dtype=np.uint64)
        )
        u = (_mix(key) >> np.uint64(11)).astype(np.float64) / float(2**53)
    return u < share


@dataclass
class Model:
    """One bundle as the service uses it."""

    bundle: Any
    id: str
    role: str  # CHAMPION or CHALLENGER


def _column_list(values: Any) -> list[Any]:
    """A score column as a Python list (numpy and arrow text alike, without per-row pandas)."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    return np.asarray(values, dtype=object).tolist()


class Decider:
    """Scores clean customers with the champion (and a challenger for a sticky share of them)
    and turns the score columns into decisions. `decide` is the only work per request."""

    def __init__(
        self,
        champion: Model,
        challenger: Model | None = None,
        share: float = 0.0,
        seed: int = 42,
    ) -> None:
        if challenger is not None and not 0 < share < 1:
            raise ValueError(f"the challenger's share must be in (0, 1), got {share}")
        self.champion, self.challenger = champion, challenger
        self.share = share if challenger is not None else 0.0
        self.seed = seed
        # Ids: a random prefix per process and a counter, so ids never repeat across workers
        # or restarts and cost nothing to make (a uuid4 per decision is ~2 µs more each).
        self._prefix = secrets.token_hex(5)
        self._counter = itertools.count(1)

    def _ids(self, n: int) -> list[str]:
        return [f"{self._prefix}-{next(self._counter):x}" for _ in range(n)]

    def score(self, clean: pd.DataFrame) -> Scored:
        """Score clean customers (any number): the champion for all of them and, with a
        challenger, the challenger too (each customer's propensity needs both choices)."""
        from nba.scoring import score_columns

        champ = score_columns(self.champion.bundle, clean)
        if self.challenger is None:
            return Scored(champ, None, np.zeros(len(clean), dtype=bool))
        mask = challenger_mask(champ[schema.ID], self.share, self.seed)
        return Scored(champ, score_columns(self.challenger.bundle, clean), mask)

    def decisions(
        self, scored: Scored, positions: np.ndarray
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The decisions (dicts in row order, JSON-ready) and the history's columns for them
        (arrays: the writer thread builds one frame per batch, not one per request).

        propensity: the probability that the logging policy (champion for a share 1 − s of
        customers, challenger for s, by a hash independent of the customer) chose this action
        for this customer: (1 − s)·[champion's choice] + s·[challenger's choice]; 1 without a
        challenger or where both agree."""
        n = len(positions)
        ids = self._ids(n)
        keys = list(scored.champion)
        lists = [_column_list(v) for v in scored.champion.values()]
        roles = [CHAMPION] * n
        model_ids = [self.champion.id] * n
        propensity = [1.0] * n
        if scored.challenger is not None:
            mask = scored.mask
            other = [_column_list(v) for v in scored.challenger.values()]
            pick = mask.tolist()
            lists = [
                [b if m else a for a, b, m in zip(x, y, pick, strict=True)]
                for x, y in zip(lists, other, strict=True)
            ]
            roles = [CHALLENGER if m else CHAMPION for m in pick]
            model_ids = [self.challenger.id if m else self.champion.id for m in pick]
            a1 = np.asarray(scored.champion["action_1"], dtype=object)
            b1 = np.asarray(scored.challenger["action_1"], dtype=object)
            chosen = np.where(mask, b1, a1)
            share = self.share
            propensity = ((1 - share) * (a1 == chosen) + share * (b1 == chosen)).tolist()
        keys += ["index", "decision_id", "bundle_id", "variant"]
        lists += [positions.tolist(), ids, model_ids, roles]
        rows = [dict(zip(keys, r, strict=True)) for r in zip(*lists, strict=True)]
        history = self._history(scored, ids, model_ids, np.asarray(propensity, dtype=np.float64))
        return rows, history

    def _history(
        self, scored: Scored, ids: list[str], model_ids: list[str], propensity: np.ndarray
    ) -> dict[str, Any]:
        """The history's columns as arrays (numbers numpy, text arrow): the writer stacks a
        batch's arrays into one frame without inferring a type per value."""
        n = len(ids)

        def chosen(name: str) -> Any:
            champ = scored.champion[name]
            if scored.challenger is None:
                return champ
            if isinstance(champ, np.ndarray):
                return np.where(scored.mask, scored.challenger[name], champ)
            pick = np.where(
                scored.mask,
                np.asarray(scored.challenger[name], dtype=object),
                np.asarray(champ, dtype=object),
            )
            return _text(pick.tolist())

        history = {
            "decision_id": _text(ids),
            schema.ID: chosen(schema.ID),
            "campaign_id": _text([CAMPAIGN_ID] * n),
            "channel": _text([CHANNEL] * n),
            "group": _text([GROUP] * n),
            "action": chosen("action_1"),
            "propensity": propensity,
            "churn_probability": chosen("churn_probability"),
            "segment": chosen("segment"),
            "expected_value": chosen("action_1_value"),
            "bundle_id": _text(model_ids),
            # a treated customer receives the chosen action: the same probability
            "delivered_propensity": propensity,
        }
        if "value_at_risk" in scored.champion:
            history["value_at_risk"] = chosen("value_at_risk")
        return history


def _text(values: list[str]) -> Any:
    """Python strings as pandas' "str" array, built by arrow."""
    return pd.arrays.ArrowStringArray(pa.array(values, pa.large_string()), dtype=_STR)


def customer_columns(clean: pd.DataFrame) -> dict[str, Any]:
    """The clean customers' feature columns (their arrays), for the history writer."""
    return dict(schema.column_arrays(clean, schema.REQUIRED[1:]))


@dataclass
class Scored:
    """Score columns of a batch: the champion's, the challenger's (or None) and which rows the
    challenger decides."""

    champion: dict[str, Any]
    challenger: dict[str, Any] | None
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.mask)

    def take(self, start: int, stop: int) -> Scored:
        """Rows [start, stop) (a request's share of a batch scored with others)."""

        def cut(cols: dict[str, Any]) -> dict[str, Any]:
            return {k: v[start:stop] for k, v in cols.items()}

        other = None if self.challenger is None else cut(self.challenger)
        return Scored(cut(self.champion), other, self.mask[start:stop])
