"""The interaction history: one SQLite file holding every decision made (campaign plan rows and
API decisions), the customer record each decision was made for, and every outcome recorded.

Why SQLite: one file a user can copy, no server, transactions, and safe for a few writers at
once in WAL mode (the batch `nba campaign` commands and the decision service write to the same
file). Every write is one `BEGIN IMMEDIATE … COMMIT` transaction: a failure anywhere inside rolls
the whole batch back, so a crash mid-record leaves the history as it was. The schema carries its
version in `PRAGMA user_version` and is migrated forward on open.

Tables (version 1), laid out so that a million decisions write in seconds: the columns of a
batch of decisions (and of their customers' records) are stored as Parquet blobs, and one small
row per decision indexes them.
- `campaigns`: cid (integer key), campaign_id, created, bundle_id, channel, rows;
- `batches`: one per write of up to `BLOB_ROWS` decisions: `decisions`, a Parquet blob of the
  decision columns (the plan / service columns, plus `explored` (1 when exploration, not the
  policy, chose the action), `value_at_risk` ($), `cost` ($ of the action) and
  `delivered_propensity` (the probability that what the customer actually received — the
  action, or nothing for control rows — was chosen: what off-policy evaluation divides by) when
  the caller knows them, and `created`), and `customers`, a Parquet blob of the BankChurners
  feature columns of the same customers (learn models effects per customer from them);
- `decisions`: id (integer key), campaign (cid), CLIENTNUM, batch, row, and decision_id when it
  is not the plan form `<campaign_id>:<CLIENTNUM>` (a service decision's own id); unique either
  way (a campaign's plan is written once; other ids by a unique index). The campaign and batch
  keys are kept right by this module rather than by foreign keys and a unique index on random
  customer numbers, which would triple the time to write a million decisions.
- `outcomes`: one per decision (its integer id, found by this module before writing),
  responded, retained (0/1), source, recorded.

Version 2 adds `overrides`: one per decision where a person chose another action than the
engine recommended (the app's "Record the contact"): the decision's key and decision_id, its
CLIENTNUM and campaign_id, the recommended and the chosen action, the person's reason, who
recorded it and when. Impact and learning read `interactions_with_overrides`, so that an
overridden decision is never taken for the engine's own (`overridden` = 1). The app's earlier
side file `<history>.decisions.csv` is imported by `import_override_log`.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba import config
from nba.data import schema
from nba.errors import NbaError

log = logging.getLogger(__name__)

HISTORY_ENV = "NBA_HISTORY"
SCHEMA_VERSION = 2
#: Seconds a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S = 60.0

#: Decision columns a caller must give (`record_decisions`), in the history's order.
DECISION_COLUMNS = (
    "decision_id",
    schema.ID,
    "campaign_id",
    "channel",
    "group",
    "action",
    "propensity",
    "churn_probability",
    "segment",
    "expected_value",
    "bundle_id",
)
#: Optional decision columns: filled with defaults when absent.
OPTIONAL_DECISION_COLUMNS = {
    "explored": 0,
    "value_at_risk": np.nan,
    "cost": np.nan,
    "delivered_propensity": np.nan,
}
CHANNELS = ("batch", "api")
GROUPS = ("treatment", "control")
#: Customer feature columns kept beside each decision (the record minus its id).
CUSTOMER_COLUMNS = tuple(c for c in schema.REQUIRED if c != schema.ID)
OUTCOME_COLUMNS = ("responded", "retained")

#: Decisions (and customer records) per Parquet blob.
BLOB_ROWS = 250_000

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS campaigns (
    cid INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    bundle_id TEXT,
    channel TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
    batch INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    decisions BLOB NOT NULL,
    customers BLOB
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL,
    CLIENTNUM INTEGER NOT NULL,
    decision_id TEXT UNIQUE,
    batch INTEGER NOT NULL,
    row INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_campaign ON decisions (campaign);
CREATE TABLE IF NOT EXISTS outcomes (
    decision INTEGER PRIMARY KEY,
    responded INTEGER NOT NULL CHECK (responded IN (0, 1)),
    retained INTEGER NOT NULL CHECK (retained IN (0, 1)),
    source TEXT NOT NULL,
    recorded TEXT NOT NULL
);
"""
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS overrides (
    decision INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    CLIENTNUM INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    recommended TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded TEXT NOT NULL
);
"""
#: Migrations: version → statements that bring the schema from version-1 to version.
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}
#: Columns of `History.overrides()`, in order.
OVERRIDE_COLUMNS = (
    "decision_id",
    schema.ID,
    "campaign_id",
    "recommended",
    "action",
    "override_reason",
    "recorded_by",
    "recorded",
)
#: Who recorded the overrides imported from the app's former side file (it did not say).
LEGACY_RECORDED_BY = "not recorded (imported from the app's former side file)"


def _mark_repeats(reason: np.ndarray, key: np.ndarray, message: str) -> None:
    """Reject, with `message`, every still-good row (`reason` "") whose `key` an earlier
    still-good row of the same file already has: the first one counts."""
    good = reason == ""
    repeat = pd.Series(key).where(good).duplicated(keep="first").to_numpy() & good
    reason[repeat] = message


class HistoryError(NbaError):
    """The history file or a batch written to it cannot be used; one sentence says why."""


def default_history_path() -> Path:
    """`NBA_HISTORY` if set, else `data/history.sqlite` under the project root."""
    env = os.environ.get(HISTORY_ENV)
    return Path(env) if env else config.DATA_DIR / "history.sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_ZERO_ONE = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def _zero_one(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(value as int8, ok mask): 0/1 given as numbers, booleans or text ("0", "1", "1.0",
    "true"); anything else (2, 0.5, "yes", empty) is not ok."""
    numeric = pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values)
    if numeric and not values.isna().any():
        num = values.astype("int64").to_numpy()
        ok = (num == 0) | (num == 1)
    elif pd.api.types.is_float_dtype(values):
        num = values.to_numpy(dtype=np.float64)
        ok = (num == 0) | (num == 1)
    else:  # text, as a CSV is read: a few distinct spellings, looked up once each
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        known = np.array(
            [_ZERO_ONE.get(str(u).strip().lower(), -1) for u in uniques] + [-1], dtype=np.int64
        )
        num = known[codes]  # the sentinel -1 indexes the appended "not 0/1"
        ok = num >= 0
    return np.where(ok, num, 0).astype(np.int8), np.asarray(ok, dtype=bool)


class History:
    """The interaction history in one SQLite file; use as a context manager or call `close()`.

    `path` None → `NBA_HISTORY`, else `<project root>/data/history.sqlite`. The parent folder is
    created, the schema created or migrated to `SCHEMA_VERSION`. WAL mode and a busy timeout let
    two processes write at once (each write waits for the other's transaction to finish)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        self._depth = 0  # transactions open: the outer one BEGINs, inner ones are savepoints
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: every transaction is an explicit BEGIN IMMEDIATE … COMMIT
            self.conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"Cannot open the history {self.path}: {exc}.") from exc
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL: a committed transaction survives a crash of the process; only a
            # power cut may lose the last one, never corrupt the file
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise HistoryError(
                f"{self.path} is not a usable nba history (SQLite said: {exc})."
            ) from exc

    # -- plumbing --------------------------------------------------------------------------

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        self.conn.close()

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        if self.version == SCHEMA_VERSION:
            return
        with self.transaction():
            current = self.version  # re-read under the write lock: another process may have won
            if current > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path} has history schema {current}; this nba knows up to "
                    f"{SCHEMA_VERSION}: upgrade nba."
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version}")
                log.info("history %s migrated to schema %d", self.path, version)

    class _Tx:
        """A transaction; inside another one of the same history, a savepoint in it (the
        outer transaction commits everything or nothing)."""

        def __init__(self, history: History) -> None:
            self.history = history

        def __enter__(self) -> sqlite3.Connection:
            h = self.history
            if h._depth == 0:
                h.conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not on first write
            else:
                h.conn.execute(f"SAVEPOINT nba_{h._depth}")
            h._depth += 1
            return h.conn

        def __exit__(self, kind: object, *rest: object) -> None:
            h = self.history
            h._depth -= 1
            if h._depth == 0:
                h.conn.execute("COMMIT" if kind is None else "ROLLBACK")
            elif kind is None:
                h.conn.execute(f"RELEASE nba_{h._depth}")
            else:
                h.conn.execute(f"ROLLBACK TO nba_{h._depth}")
                h.conn.execute(f"RELEASE nba_{h._depth}")

    def transaction(self) -> History._Tx:
        """Several writes that belong together (a decision, its override and its response)
        commit together or not at all: `with history.transaction(): ...`. Each write inside
        is checked as on its own; an exception leaving the block writes none of them."""
        return History._Tx(self)

    # -- decisions -------------------------------------------------------------------------

    def record_decisions(
        self, decisions: pd.DataFrame, customers: pd.DataFrame | None = None
    ) -> int:
        """Write decisions (and their customers' feature columns, same rows in the same order)
        in one transaction; returns rows written. Columns: `DECISION_COLUMNS` (+ the optional
        explored, value_at_risk, cost, delivered_propensity); extra columns are ignored. A
        decision_id already in the history, a duplicate, an unknown channel or group or a
        propensity outside (0, 1] is a `HistoryError` and nothing is written."""
        missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
        if missing:
            raise HistoryError(f"decisions need the column(s) {', '.join(missing)}.")
        if customers is not None and len(customers) != len(decisions):
            raise HistoryError(
                f"customers has {len(customers):,} rows for {len(decisions):,} decisions; "
                "give the same rows in the same order."
            )
        if decisions.empty:
            return 0
        d = decisions.reset_index(drop=True)
        ids = d["decision_id"].astype("str")
        client = pd.to_numeric(d[schema.ID]).astype(np.int64).to_numpy()
        campaign_code, campaign_names = pd.factorize(d["campaign_id"].astype("str"))
        # plan decisions keep their id implicit (<campaign_id>:<CLIENTNUM>); others store it
        implicit = _implicit(ids, d["campaign_id"].astype("str"), client)
        if implicit.all():  # a plan: the same id is the same (campaign, customer), as integers
            dup = pd.DataFrame({"c": campaign_code, "k": client}).duplicated().to_numpy()
        else:
            dup = ids.duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise HistoryError(f"decision_id {ids.iloc[i]!r} appears twice (row {i + 1}).")
        for column, allowed in (("channel", CHANNELS), ("group", GROUPS)):
            bad = ~d[column].astype("str").isin(allowed)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise HistoryError(
                    f"row {i + 1}: {column} is {d[column].iloc[i]!r}; use {' or '.join(allowed)}."
                )
        prop = pd.to_numeric(d["propensity"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~((prop > 0) & (prop <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise HistoryError(f"row {i + 1}: propensity {prop[i]!r} is outside (0, 1].")
        if customers is not None:
            gone = [c for c in CUSTOMER_COLUMNS if c not in customers.columns]
            if gone:
                raise HistoryError(f"customers need the column(s) {', '.join(gone)}.")
        now = _now()
        table = pd.DataFrame(
            {
                "decision_id": ids.array,
                schema.ID: client,
                "campaign_id": d["campaign_id"].astype("str").array,
                "channel": d["channel"].astype("str").array,
                "group": d["group"].astype("str").array,
                "action": d["action"].astype("str").array,
                "propensity": prop,
                "churn_probability": pd.to_numeric(d["churn_probability"]).to_numpy(float),
                "segment": d["segment"].astype("str").array,
                "expected_value": pd.to_numeric(d["expected_value"]).to_numpy(float),
                "bundle_id": d["bundle_id"].astype("str").array,
            }
        )
        for column, default in OPTIONAL_DECISION_COLUMNS.items():
            values = d[column] if column in d.columns else pd.Series(default, index=d.index)
            table[column] = (
                values.astype(np.int64).to_numpy()
                if column == "explored"
                else pd.to_numeric(values, errors="coerce").to_numpy(float)
            )
        table["created"] = now
        n = len(d)
        explicit = np.where(implicit, None, table["decision_id"].to_numpy())
        import pyarrow as pa

        id_text = pa.array(ids.array, pa.large_string())
        id_text = id_text.combine_chunks() if isinstance(id_text, pa.ChunkedArray) else id_text
        table["decision_id"] = table["decision_id"].where(~implicit)  # rebuilt when read
        campaigns = _campaign_rows(campaign_code, campaign_names, d["channel"], d["bundle_id"])
        try:
            with self.transaction() as conn:
                cid = {}
                for campaign, channel, rows, bundle in campaigns:
                    conn.execute(
                        "INSERT INTO campaigns (campaign_id, created, bundle_id, channel, rows) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(campaign_id) DO UPDATE SET "
                        "rows = rows + excluded.rows",
                        (campaign, now, bundle, channel, rows),
                    )
                    cid[campaign] = conn.execute(
                        "SELECT cid FROM campaigns WHERE campaign_id = ?", (campaign,)
                    ).fetchone()[0]
                for campaign in sorted(
                    str(campaign_names[c]) for c in np.unique(campaign_code[implicit])
                ):
                    again = conn.execute(
                        "SELECT 1 FROM decisions WHERE campaign = ? AND decision_id IS NULL "
                        "LIMIT 1",
                        (cid[campaign],),
                    ).fetchone()
                    if again:
                        raise sqlite3.IntegrityError(f"UNIQUE: campaign {campaign} planned")
                first = conn.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM batches").fetchone()
                batch = np.empty(n, dtype=np.int64)
                row_in = np.empty(n, dtype=np.int64)
                for k, lo in enumerate(range(0, n, BLOB_ROWS)):
                    hi = min(lo + BLOB_ROWS, n)
                    people = None if customers is None else customers.iloc[lo:hi]
                    conn.execute(
                        "INSERT INTO batches (batch, rows, decisions, customers) "
                        "VALUES (?, ?, ?, ?)",
                        (
                            first[0] + k,
                            hi - lo,
                            _parquet(table.iloc[lo:hi], text_dictionary=True),
                            None if people is None else _parquet(people, CUSTOMER_COLUMNS),
                        ),
                    )
                    batch[lo:hi] = first[0] + k
                    row_in[lo:hi] = np.arange(hi - lo)
                keys = np.asarray([cid[str(c)] for c in campaign_names], dtype=np.int64)
                _insert_index(
                    conn, keys[campaign_code], client, explicit, implicit, batch, row_in, id_text
                )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise HistoryError(f"Could not write decisions to {self.path}: {exc}.") from exc
            names = ", ".join(dict.fromkeys(c for c, *_ in campaigns))
            raise HistoryError(
                "some of these decisions are already in the history (a decision_id, or a "
                f"customer of campaign {names}): a campaign is planned once."
            ) from exc
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not write decisions to {self.path}: {exc}.") from exc
        log.info("history: %d decisions written", n)
        return n

    # -- outcomes --------------------------------------------------------------------------

    def record_responses(self, responses: pd.DataFrame) -> tuple[int, pd.DataFrame]:
        """Outcomes by decision_id (the decision service's responses): columns decision_id,
        responded, retained (0/1). Returns (recorded, rejected rows with a `reason`); recorded +
        rejected = rows given. Unknown decision_id, duplicates, values other than 0/1 are
        rejected; an outcome already recorded is never overwritten (the same one again adds
        nothing and is rejected as "already recorded")."""
        need = ["decision_id", *OUTCOME_COLUMNS]
        missing = [c for c in need if c not in responses.columns]
        if missing:
            raise HistoryError(f"responses need the column(s) {', '.join(missing)}.")
        r = responses.reset_index(drop=True)
        ids = r["decision_id"].astype("str").str.strip()
        reason = np.full(len(r), "", dtype=object)
        reason[(ids.eq("") | r["decision_id"].isna()).to_numpy()] = "decision_id is empty"
        keys = self._keys_by_decision_id(ids[reason == ""].tolist())
        found = keys.reindex(ids.to_numpy())
        unknown = found["id"].isna().to_numpy() & (reason == "")
        reason[unknown] = "unknown decision_id: no such decision in the history"
        return self._record(r, found["id"].to_numpy(), ids.to_numpy(), reason, "api")

    def record_outcomes(self, outcomes: pd.DataFrame) -> tuple[int, pd.DataFrame]:
        """Outcomes of campaign customers: columns CLIENTNUM, campaign_id, responded, retained
        (0/1), joined to the plan on (campaign_id, CLIENTNUM). Returns (recorded, rejected rows
        with a `reason`); recorded + rejected = rows given. Unknown campaign, a customer the
        campaign never planned, duplicates, values other than 0/1 are rejected; recording the
        same outcomes twice adds nothing (the second time they are "already recorded")."""
        need = [schema.ID, "campaign_id", *OUTCOME_COLUMNS]
        missing = [c for c in need if c not in outcomes.columns]
        if missing:
            raise HistoryError(f"outcomes need the column(s) {', '.join(missing)}.")
        o = outcomes.reset_index(drop=True)
        campaign = o["campaign_id"].astype("str").str.strip()
        client = pd.to_numeric(o[schema.ID], errors="coerce")
        whole = client.notna() & (client == client.round())
        reason = np.full(len(o), "", dtype=object)
        reason[(campaign.eq("") | o["campaign_id"].isna()).to_numpy()] = "campaign_id is empty"
        bad_id = (~whole).to_numpy() & (reason == "")
        reason[bad_id] = f"{schema.ID} is not a whole number"
        known = set(self.campaign_ids())
        unknown = (~campaign.isin(known)).to_numpy() & (reason == "")
        reason[unknown] = "unknown campaign_id: no plan with this id is in the history"
        wanted = sorted(set(campaign[reason == ""]))
        plan = self._plan_keys(wanted)
        key = pd.MultiIndex.from_arrays(
            [campaign.to_numpy(), client.fillna(-1).astype(np.int64).to_numpy()]
        )
        found = plan.reindex(key).to_numpy()
        never = pd.isna(found) & (reason == "")
        reason[never] = "customer never planned in this campaign"
        dup_key = pd.Series(np.where(reason == "", found, np.nan))
        return self._record(o, found, dup_key.to_numpy(), reason, "batch")

    def _keys_by_decision_id(self, ids: Sequence[str]) -> pd.DataFrame:
        """Decision key (`id`) by decision_id, for the given ids: a service decision's own id,
        or a plan decision's `<campaign_id>:<CLIENTNUM>` (through temporary tables: any size)."""
        conn = self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS probe (v TEXT PRIMARY KEY)")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS probe_plan (v TEXT, campaign_id TEXT, client INTEGER)"
        )
        conn.execute("DELETE FROM probe")
        conn.execute("DELETE FROM probe_plan")
        conn.executemany("INSERT OR IGNORE INTO probe VALUES (?)", ((v,) for v in ids))
        plan_like = []
        for v in set(ids):
            campaign, sep, client = v.rpartition(":")
            if sep and client.isdigit():
                plan_like.append((v, campaign, int(client)))
        conn.executemany("INSERT INTO probe_plan VALUES (?, ?, ?)", plan_like)
        keys = pd.read_sql_query(
            "SELECT d.decision_id, d.id FROM probe JOIN decisions d ON d.decision_id = probe.v "
            "UNION ALL SELECT p.v, d.id FROM probe_plan p "
            "JOIN campaigns c ON c.campaign_id = p.campaign_id "
            "JOIN decisions d ON d.campaign = c.cid AND d.CLIENTNUM = p.client "
            "AND d.decision_id IS NULL",
            conn,
        )
        conn.execute("DELETE FROM probe")
        conn.execute("DELETE FROM probe_plan")
        return keys.drop_duplicates("decision_id").set_index("decision_id")

    def _plan_keys(self, campaigns: Iterable[str]) -> pd.Series:
        """Decision key by (campaign_id, CLIENTNUM) for the given campaigns."""
        frames = [
            pd.read_sql_query(
                "SELECT c.campaign_id, d.CLIENTNUM, d.id FROM decisions d "
                "JOIN campaigns c ON c.cid = d.campaign WHERE c.campaign_id = ?",
                self.conn,
                params=(c,),
            )
            for c in campaigns
        ]
        if not frames:
            return pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))
        keys = pd.concat(frames, ignore_index=True)
        keys = keys.drop_duplicates(["campaign_id", schema.ID])
        return keys.set_index(["campaign_id", schema.ID])["id"].astype("float64")

    def _record(
        self,
        frame: pd.DataFrame,
        decision: np.ndarray,
        dup_key: np.ndarray,
        reason: np.ndarray,
        source: str,
    ) -> tuple[int, pd.DataFrame]:
        """Validate 0/1 values and duplicates (same `dup_key`), then insert what passed in
        one transaction; `decision` holds each row's decision row id (NaN: none) and `reason`
        the rejections found so far ("" = still good)."""
        values = {}
        for column in OUTCOME_COLUMNS:
            v, ok = _zero_one(frame[column])
            values[column] = v
            reason[(~ok) & (reason == "")] = f"{column} must be 0 or 1, got something else"
        _mark_repeats(
            reason, dup_key, "duplicate: an earlier row of this file gives this customer's outcome"
        )
        now = _now()
        try:
            with self.transaction() as conn:
                ok = reason == ""
                before = self._recorded(decision[ok])
                if len(before):
                    prev = before.reindex(np.where(ok, decision, -1))
                    had = ok & prev["responded"].notna().to_numpy()
                    same = (
                        had
                        & (prev["responded"].to_numpy() == values["responded"])
                        & (prev["retained"].to_numpy() == values["retained"])
                    )
                    reason[same] = "already recorded (same outcome): nothing added"
                    reason[had & ~same] = (
                        "an outcome is already recorded for this decision; outcomes are never "
                        "overwritten"
                    )
                ok = reason == ""
                k = int(ok.sum())
                rows = zip(
                    decision[ok].astype(np.int64).tolist(),
                    values["responded"][ok].tolist(),
                    values["retained"][ok].tolist(),
                    [source] * k,
                    [now] * k,
                    strict=True,
                )
                conn.executemany(
                    "INSERT INTO outcomes (decision, responded, retained, source, recorded) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not record outcomes in {self.path}: {exc}.") from exc
        return _tally(frame, reason, "outcomes")

    def _recorded(self, decisions: np.ndarray) -> pd.DataFrame:
        """Outcomes already recorded for these decision row ids, indexed by row id."""
        empty = pd.DataFrame(columns=list(OUTCOME_COLUMNS), dtype="float64")
        if not len(decisions):
            return empty
        ids = np.unique(decisions.astype(np.int64))
        query = "SELECT decision, responded, retained FROM outcomes WHERE decision "
        if len(ids) > 5_000:
            # one range scan of the outcomes' primary key: a campaign's decisions are contiguous
            out = pd.read_sql_query(
                query + "BETWEEN ? AND ?", self.conn, params=(int(ids[0]), int(ids[-1]))
            )
        else:
            chunks = [ids[k : k + 500].tolist() for k in range(0, len(ids), 500)]
            out = pd.concat(
                [
                    pd.read_sql_query(
                        query + f"IN ({', '.join('?' * len(c))})", self.conn, params=c
                    )
                    for c in chunks
                ]
            )
        out = out.set_index("decision")
        return out if len(out) else empty

    # -- reading ---------------------------------------------------------------------------

    def campaign_ids(self) -> list[str]:
        """Every campaign (and API channel id) in the history, oldest first."""
        rows = self.conn.execute("SELECT campaign_id FROM campaigns ORDER BY created, rowid")
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per table: campaigns, decisions, customers (records kept), outcomes."""
        q = {
            "campaigns": "SELECT COUNT(*) FROM campaigns",
            "decisions": "SELECT COUNT(*) FROM decisions",
            "customers": "SELECT COALESCE(SUM(rows), 0) FROM batches WHERE customers IS NOT NULL",
            "outcomes": "SELECT COUNT(*) FROM outcomes",
        }
        return {k: int(self.conn.execute(v).fetchone()[0]) for k, v in q.items()}

    def decisions(self, campaign_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Decisions (all, or of `campaign_ids`) in the order written."""
        where, params = _where(campaign_ids)
        keys = pd.read_sql_query(
            "SELECT d.id, d.batch, d.row FROM decisions d JOIN campaigns c ON c.cid = d.campaign "
            f"{where} ORDER BY d.id",
            self.conn,
            params=params,
        )
        return self._gather(keys, "decisions", None).reset_index(drop=True)

    def interactions(
        self,
        campaign_ids: Sequence[str] | None = None,
        with_customers: bool = False,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Decisions that have an outcome, joined to it (responded, retained) and, with
        `with_customers`, to the customer's feature columns (NaN where the decision was
        recorded without them): what impact and learn read. `columns`: only these decision
        columns (reading fewer is faster on millions of rows)."""
        where, params = _where(campaign_ids)
        keys = pd.read_sql_query(
            "SELECT d.id, d.batch, d.row, o.responded, o.retained FROM decisions d "
            "JOIN outcomes o ON o.decision = d.id JOIN campaigns c ON c.cid = d.campaign "
            f"{where} ORDER BY d.id",
            self.conn,
            params=params,
        )
        frame = self._gather(keys, "decisions", columns)
        frame["responded"] = keys["responded"].to_numpy()
        frame["retained"] = keys["retained"].to_numpy()
        if with_customers:
            people = self._gather(keys, "customers", list(CUSTOMER_COLUMNS))
            frame = pd.concat([frame, people], axis=1)
        return frame.reset_index(drop=True)

    def _gather(self, keys: pd.DataFrame, blob: str, columns: Sequence[str] | None) -> pd.DataFrame:
        """The rows (batch, row) of `keys` from the `blob` column of their batches, in the
        order of `keys` (a batch without that blob gives missing values)."""
        import pyarrow.parquet as pq

        batch = keys["batch"].to_numpy(dtype=np.int64)
        row = keys["row"].to_numpy(dtype=np.int64)
        names = list(columns) if columns else [*DECISION_COLUMNS, *OPTIONAL_DECISION_COLUMNS]
        parts, where = [], []
        for b in np.unique(batch).tolist():
            data = self.conn.execute(f"SELECT {blob} FROM batches WHERE batch = ?", (b,)).fetchone()
            if data is None or data[0] is None:
                continue
            mine = np.flatnonzero(batch == b)
            table = pq.read_table(io.BytesIO(data[0]), columns=list(columns) if columns else None)
            parts.append(table.take(row[mine]).to_pandas())
            where.append(mine)
        if not parts:
            return pd.DataFrame(np.nan, index=range(len(keys)), columns=names)
        found = pd.concat(parts, ignore_index=True)
        found.index = np.concatenate(where)
        found = found.reindex(range(len(keys)))
        if "decision_id" in found.columns and found["decision_id"].isna().any():
            # a plan decision's id is implicit: <campaign_id>:<CLIENTNUM>
            implicit = found["campaign_id"] + ":" + found[schema.ID].astype("Int64").astype("str")
            found["decision_id"] = found["decision_id"].fillna(implicit)
        return found

    # -- overrides -------------------------------------------------------------------------

    def record_overrides(self, overrides: pd.DataFrame) -> tuple[int, pd.DataFrame]:
        """Overrides of decisions already in the history (a person chose another action than
        the engine recommended): columns decision_id, recommended (the engine's action id),
        override_reason (the person's words), and optionally recorded_by and recorded (ISO
        time; default now). The chosen action, customer and campaign are read from the decision
        itself. Returns (recorded, rejected rows with a `reason`); recorded + rejected = rows
        given. An unknown decision, an empty reason, a decision whose action is the recommended
        one (no override) and duplicates are rejected; an override already recorded is never
        overwritten (the same one again is "already recorded")."""
        need = ["decision_id", "recommended", "override_reason"]
        missing = [c for c in need if c not in overrides.columns]
        if missing:
            raise HistoryError(f"overrides need the column(s) {', '.join(missing)}.")
        o = overrides.reset_index(drop=True)
        ids = o["decision_id"].fillna("").astype("str").str.strip()
        recommended = o["recommended"].fillna("").astype("str").str.strip()
        why = o["override_reason"].fillna("").astype("str").str.strip()
        by = (
            o["recorded_by"].fillna("").astype("str").str.strip()
            if "recorded_by" in o.columns
            else pd.Series("", index=o.index)
        )
        when = (
            o["recorded"].fillna("").astype("str").str.strip()
            if "recorded" in o.columns
            else pd.Series("", index=o.index)
        )
        reason = np.full(len(o), "", dtype=object)
        reason[ids.eq("").to_numpy()] = "decision_id is empty"
        keys = self._keys_by_decision_id(ids[reason == ""].tolist())
        found = keys.reindex(ids.to_numpy())["id"].to_numpy()
        reason[pd.isna(found) & (reason == "")] = "unknown decision_id: no such decision"
        reason[recommended.eq("").to_numpy() & (reason == "")] = (
            "recommended is empty: name the action the engine recommended"
        )
        reason[why.eq("").to_numpy() & (reason == "")] = (
            "override_reason is empty: say why the recommendation was overridden"
        )
        good = reason == ""
        key = np.where(good, found, -1).astype(np.int64)
        decided = self._decision_columns(key[good], [schema.ID, "campaign_id", "action"])
        action = np.full(len(o), "", dtype=object)
        client = np.zeros(len(o), dtype=np.int64)
        campaign = np.full(len(o), "", dtype=object)
        action[good] = decided["action"].astype("str").to_numpy()
        client[good] = decided[schema.ID].astype(np.int64).to_numpy()
        campaign[good] = decided["campaign_id"].astype("str").to_numpy()
        same = good & (action == recommended.to_numpy())
        reason[same] = "not an override: the decision's action is the recommended one"
        _mark_repeats(reason, key, "duplicate: an earlier row overrides the same decision")
        now = _now()
        try:
            with self.transaction() as conn:
                ok = reason == ""
                before = {
                    int(k): (r, w)
                    for k, r, w in self._rows(
                        conn,
                        "SELECT decision, recommended, reason FROM overrides WHERE decision",
                        key[ok],
                    )
                }
                for i in np.flatnonzero(ok):
                    if int(key[i]) in before:
                        again = before[int(key[i])] == (recommended.iloc[i], why.iloc[i])
                        reason[i] = (
                            "already recorded (same override): nothing added"
                            if again
                            else "an override is already recorded for this decision; overrides "
                            "are never overwritten"
                        )
                ok = reason == ""
                conn.executemany(
                    "INSERT INTO overrides (decision, decision_id, CLIENTNUM, campaign_id, "
                    "recommended, action, reason, recorded_by, recorded) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            int(key[i]),
                            ids.iloc[i],
                            int(client[i]),
                            campaign[i],
                            recommended.iloc[i],
                            action[i],
                            why.iloc[i],
                            by.iloc[i] or "unknown",
                            when.iloc[i] or now,
                        )
                        for i in np.flatnonzero(ok)
                    ],
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not record overrides in {self.path}: {exc}.") from exc
        return _tally(o, reason, "overrides")

    @staticmethod
    def _rows(conn: sqlite3.Connection, query: str, keys: np.ndarray) -> list[tuple]:
        """`query` ending in "WHERE <key column>" over `keys`, 500 at a time."""
        ids = np.unique(np.asarray(keys, dtype=np.int64)).tolist()
        out: list[tuple] = []
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            out += conn.execute(f"{query} IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def _decision_columns(self, keys: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
        """`columns` of the decisions with these integer keys, in the order of `keys`."""
        if not len(keys):
            return pd.DataFrame(columns=list(columns))
        rows = self._rows(self.conn, "SELECT id, batch, row FROM decisions WHERE id", keys)
        where = pd.DataFrame(rows, columns=["id", "batch", "row"]).set_index("id")
        return self._gather(where.reindex(keys).reset_index(drop=True), "decisions", columns)

    def overrides(self, campaign_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Every override recorded (all, or of `campaign_ids`), in the order of the decisions:
        `OVERRIDE_COLUMNS` (who chose which action instead of the recommended one, and why)."""
        query = (
            "SELECT decision_id, CLIENTNUM, campaign_id, recommended, action, "
            "reason AS override_reason, recorded_by, recorded FROM overrides"
        )
        params: list[str] = []
        if campaign_ids is not None:
            query += f" WHERE campaign_id IN ({', '.join('?' * len(campaign_ids))})"
            params = [str(c) for c in campaign_ids]
        return pd.read_sql_query(query + " ORDER BY decision", self.conn, params=params)

    def interactions_with_overrides(
        self,
        campaign_ids: Sequence[str] | None = None,
        with_customers: bool = False,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """`interactions` plus what impact and learning need to tell a person's choice from the
        engine's: `overridden` (1 where a person chose another action than the recommended
        one), `recommended` (the engine's action: the action itself when not overridden) and
        `override_reason` ("" when not overridden). `columns` gains decision_id, campaign_id
        and CLIENTNUM (the join needs them)."""
        wanted = (
            None
            if columns is None
            else list(dict.fromkeys([*columns, "decision_id", "campaign_id", schema.ID]))
        )
        frame = self.interactions(campaign_ids, with_customers, wanted)
        found = self.overrides(campaign_ids)
        action = frame["action"].astype("str") if "action" in frame.columns else None
        if found.empty or frame.empty:
            frame["overridden"] = np.zeros(len(frame), dtype=np.int8)
            frame["recommended"] = action if action is not None else ""
            frame["override_reason"] = ""
            return frame
        match = found.set_index("decision_id").reindex(frame["decision_id"].astype("str"))
        hit = match["recommended"].notna().to_numpy()
        frame["overridden"] = hit.astype(np.int8)
        recommended = match["recommended"].to_numpy(dtype=object)
        if action is not None:
            recommended = np.where(hit, recommended, action.to_numpy(dtype=object))
        frame["recommended"] = recommended
        frame["override_reason"] = match["override_reason"].fillna("").to_numpy(dtype=object)
        return frame

    def import_override_log(self, path: str | Path) -> tuple[int, pd.DataFrame]:
        """The app's former side file of contacts (`<history>.decisions.csv`: decision_id,
        CLIENTNUM, recommended, action, override_reason, result, recorded) into the
        `overrides` table: its rows with an override reason (the others were accepted
        recommendations, already complete in the history). Who recorded them is unknown
        (`LEGACY_RECORDED_BY`); the time is the file's. Importing twice adds nothing.
        Returns `record_overrides`' (recorded, rejected)."""
        try:
            old = pd.read_csv(path, dtype="str", keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise HistoryError(f"Cannot read the override log {path}: {exc}.") from exc
        need = ["decision_id", "recommended", "override_reason"]
        missing = [c for c in need if c not in old.columns]
        if missing:
            raise HistoryError(
                f"{path} has no column(s) {', '.join(missing)}: not an override log."
            )
        rows = old[old["override_reason"].str.strip().ne("")]
        return self.record_overrides(rows.assign(recorded_by=LEGACY_RECORDED_BY))


def _tally(rows: pd.DataFrame, reason: np.ndarray, what: str) -> tuple[int, pd.DataFrame]:
    """(rows recorded, the rejected rows with their `reason`) of one write, logged."""
    bad = reason != ""
    recorded = int((~bad).sum())
    rejected = rows.loc[bad].assign(reason=reason[bad])
    log.info("history: %d %s recorded, %d rejected", recorded, what, len(rejected))
    return recorded, rejected


def _parquet(
    frame: pd.DataFrame, columns: Sequence[str] | None = None, text_dictionary: bool = False
) -> bytes:
    """`frame` (or its `columns`) as Parquet bytes. A blob is always read whole, so it carries
    no column statistics; `text_dictionary`: dictionary-encode only the text columns (the
    decision columns' floats are all distinct: trying a dictionary on them is wasted work)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = frame if columns is None else frame.loc[:, list(columns)]
    # nthreads=1: a pool of threads started per blob cost more than converting the columns
    # of a service batch in this thread (the service's writer is a thread of its own)
    table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False, nthreads=1)
    dictionary: bool | list[str] = True
    if text_dictionary:
        dictionary = [f.name for f in table.schema if pa.types.is_large_string(f.type)]
        dictionary += [f.name for f in table.schema if pa.types.is_string(f.type)]
    buf = io.BytesIO()
    pq.write_table(table, buf, use_dictionary=dictionary, write_statistics=False)
    return buf.getvalue()


def _implicit(ids: pd.Series, campaign: pd.Series, client: np.ndarray) -> np.ndarray:
    """Rows whose decision_id is the plan form `<campaign_id>:<CLIENTNUM>` (compared by arrow,
    without a Python string per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(values: pd.Series) -> pa.Array:
        # from the values' own arrow data when they have it (pandas' "str" dtype): reading a
        # Series through Python objects was a quarter of writing the service's decisions
        data = values.array
        if not isinstance(data, pd.arrays.ArrowStringArray):
            data = values
        out = pa.array(data, pa.large_string())
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    colon, nothing = pa.scalar(":", pa.large_string()), pa.scalar("", pa.large_string())
    digits = pc.cast(pa.array(client), pa.large_string())
    built = pc.binary_join_element_wise(text(campaign), colon, digits, nothing)
    same = pc.fill_null(pc.equal(built, text(ids)), False)
    return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def _campaign_rows(
    code: np.ndarray, names: pd.Index, channel: pd.Series, bundle: pd.Series
) -> list[tuple[str, str, int, str]]:
    """(campaign_id, channel, rows, bundle_id of its first row) per campaign and channel, in
    the order they first appear."""
    ch_code, ch_names = pd.factorize(channel.astype("str"))
    key = code.astype(np.int64) * max(len(ch_names), 1) + ch_code
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return [
        (
            str(names[code[i]]),
            str(ch_names[ch_code[i]]),
            int(k),
            str(bundle.iloc[i]),
        )
        for i, k in zip(first[order].tolist(), counts[order].tolist(), strict=True)
    ]


#: True once this process's SQLite library was found built without `json_each`.
_json_each_missing = False


def _json_ints(values: np.ndarray) -> str:
    """Integers as one JSON array text, joined by arrow (no Python string per value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.cast(pa.array(values, pa.int64()), pa.large_string())
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(digits)], pa.int64()), digits)
    return "[" + pc.binary_join(whole, pa.scalar(",", pa.large_string()))[0].as_py() + "]"


#: Ids JSON writes as they are: printable ASCII without `"` or a backslash (nothing escaped).
_PLAIN_JSON_TEXT = r"^[ !#-\[\]-~]*$"


def _json_pairs(client: np.ndarray, ids: Any) -> str | None:
    """[[CLIENTNUM, "decision_id"], ...] as JSON text joined by arrow (no Python object per
    row), or None when an id would not be written as it is (an escape, text beyond ASCII, a
    missing id): those go row by row, so what SQLite stores is always the id given.
    `ids`: arrow text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(ids, pa.large_string()) if not isinstance(ids, pa.Array) else ids
    if ids.null_count or not pc.all(pc.match_substring_regex(ids, _PLAIN_JSON_TEXT)).as_py():
        return None
    digits = pc.cast(pa.array(client, pa.int64()), pa.large_string())
    text = pa.large_string()
    pair = pc.binary_join_element_wise(
        pa.scalar("[", text),
        digits,
        pa.scalar(',"', text),
        ids,
        pa.scalar('"]', text),
        pa.scalar("", text),
    )
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(pair)], pa.int64()), pair)
    return "[" + pc.binary_join(whole, pa.scalar(",", text))[0].as_py() + "]"


def _insert_index(
    conn: sqlite3.Connection,
    campaign: np.ndarray,
    client: np.ndarray,
    explicit: np.ndarray,
    implicit: np.ndarray,
    batch: np.ndarray,
    row: np.ndarray,
    id_text: Any,
) -> None:
    """One `decisions` row per decision, in order. `id_text`: every decision_id as arrow
    text. A run of plan decisions (implicit id, one
    campaign, one batch) goes in as one statement over a JSON array of its CLIENTNUMs
    (`json_each`, in SQLite's C code): no Python tuple per row, a third of the CPU time of
    `executemany` on a million decisions. A run of stored ids (the service's own) likewise
    over a JSON array of [CLIENTNUM, id] pairs, when every id is written in JSON as it is
    (printable ASCII, nothing escaped: SQLite reads back the very text); other runs, and every
    row where SQLite lacks its JSON functions (before 3.38 they were optional), go row by
    row."""
    global _json_each_missing
    n = len(client)
    change = (
        (campaign[1:] != campaign[:-1])
        | (implicit[1:] != implicit[:-1])
        | (batch[1:] != batch[:-1])
    )
    starts = np.concatenate([[0], np.flatnonzero(change) + 1, [n]]).tolist()
    for lo, hi in zip(starts[:-1], starts[1:], strict=True):
        if implicit[lo] and not _json_each_missing:
            try:
                conn.execute(
                    "INSERT INTO decisions (campaign, CLIENTNUM, decision_id, batch, row) "
                    "SELECT ?, value, NULL, ?, key + ? FROM json_each(?) ORDER BY key",
                    (int(campaign[lo]), int(batch[lo]), int(row[lo]), _json_ints(client[lo:hi])),
                )
                continue
            except sqlite3.OperationalError as exc:
                if "json_each" not in str(exc):
                    raise
                _json_each_missing = True  # nothing was inserted: the statement failed whole
        elif not implicit[lo] and not _json_each_missing:
            pairs = _json_pairs(client[lo:hi], id_text[lo:hi])
            if pairs is not None:
                try:
                    conn.execute(
                        "INSERT INTO decisions (campaign, CLIENTNUM, decision_id, batch, row) "
                        "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                        "?, key + ? FROM json_each(?) ORDER BY key",
                        (int(campaign[lo]), int(batch[lo]), int(row[lo]), pairs),
                    )
                    continue
                except sqlite3.OperationalError as exc:
                    if "json_" not in str(exc):
                        raise
                    _json_each_missing = True  # nothing was inserted: the statement failed
        conn.executemany(
            "INSERT INTO decisions (campaign, CLIENTNUM, decision_id, batch, row) "
            "VALUES (?, ?, ?, ?, ?)",
            zip(
                campaign[lo:hi].tolist(),
                client[lo:hi].tolist(),
                explicit[lo:hi].tolist(),
                batch[lo:hi].tolist(),
                row[lo:hi].tolist(),
                strict=True,
            ),
        )


def _where(campaign_ids: Sequence[str] | None) -> tuple[str, list[str]]:
    if campaign_ids is None:
        return "", []
    marks = ", ".join("?" * len(campaign_ids))
    return f"WHERE c.campaign_id IN ({marks})", [str(c) for c in campaign_ids]
