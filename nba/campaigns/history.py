"""The interaction history: one SQLite file holding every decision made (campaign plan rows and
API decisions), the customer record each decision was made for, and every outcome recorded.

Why SQLite: one file a user can copy, no server, transactions, and safe for a few writers at
once in WAL mode (the batch `nba campaign` commands and the decision service write to the same
file). Every write is one `BEGIN IMMEDIATE … COMMIT` transaction: a failure anywhere inside rolls
the whole batch back, so a crash mid-record leaves the history as it was. The schema carries its
version in `PRAGMA user_version` and is migrated forward on open.

Tables (version 1):
- `campaigns`: campaign_id, created, bundle_id, channel, rows;
- `decisions`: one row per decision (decision_id unique): the plan / service columns, plus
  `explored` (1 when exploration, not the policy, chose the action), `value_at_risk` ($),
  `cost` ($ of the action) and `delivered_propensity` (the probability that what the customer
  actually received — the action, or nothing for control rows — was chosen: what off-policy
  evaluation divides by) when the caller knows them;
- `customers`: the BankChurners feature columns of each decision's customer (learn models
  effects per customer from them);
- `outcomes`: decision_id, responded, retained (0/1), source, recorded.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nba import config
from nba.data import schema
from nba.errors import NbaError

log = logging.getLogger(__name__)

HISTORY_ENV = "NBA_HISTORY"
SCHEMA_VERSION = 1
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

_TEXT_COLUMNS = {c for c in CUSTOMER_COLUMNS if c in schema.CATEGORIES}

_SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    bundle_id TEXT,
    channel TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(campaign_id),
    CLIENTNUM INTEGER NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('batch', 'api')),
    "group" TEXT NOT NULL CHECK ("group" IN ('treatment', 'control')),
    action TEXT NOT NULL,
    propensity REAL NOT NULL CHECK (propensity > 0 AND propensity <= 1),
    churn_probability REAL,
    segment TEXT,
    expected_value REAL,
    bundle_id TEXT,
    explored INTEGER NOT NULL DEFAULT 0,
    value_at_risk REAL,
    cost REAL,
    delivered_propensity REAL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_campaign_client ON decisions (campaign_id, CLIENTNUM);
CREATE TABLE IF NOT EXISTS customers (
    decision_id TEXT PRIMARY KEY REFERENCES decisions(decision_id),
    {", ".join(f"{c} {'TEXT' if c in _TEXT_COLUMNS else 'REAL'}" for c in CUSTOMER_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT PRIMARY KEY REFERENCES decisions(decision_id),
    responded INTEGER NOT NULL CHECK (responded IN (0, 1)),
    retained INTEGER NOT NULL CHECK (retained IN (0, 1)),
    source TEXT NOT NULL,
    recorded TEXT NOT NULL
);
"""
#: Migrations: version → statements that bring the schema from version-1 to version.
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}


class HistoryError(NbaError):
    """The history file or a batch written to it cannot be used; one sentence says why."""


def default_history_path() -> Path:
    """`NBA_HISTORY` if set, else `data/history.sqlite` under the project root."""
    env = os.environ.get(HISTORY_ENV)
    return Path(env) if env else config.DATA_DIR / "history.sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _zero_one(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(value as int8, ok mask): 0/1 given as numbers, booleans or text "0"/"1"; anything else
    (2, 0.5, "yes", empty) is not ok."""
    text = values.astype("str").str.strip()
    num = pd.to_numeric(text.str.replace(r"\.0+$", "", regex=True), errors="coerce")
    lowered = text.str.lower()
    num = num.where(~lowered.isin(["true", "false"]), lowered.eq("true").astype(float))
    ok = num.isin([0, 1]).to_numpy() & values.notna().to_numpy()
    return np.where(ok, num.fillna(0).to_numpy(), 0).astype(np.int8), ok


class History:
    """The interaction history in one SQLite file; use as a context manager or call `close()`.

    `path` None → `NBA_HISTORY`, else `<project root>/data/history.sqlite`. The parent folder is
    created, the schema created or migrated to `SCHEMA_VERSION`. WAL mode and a busy timeout let
    two processes write at once (each write waits for the other's transaction to finish)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
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
        with self._transaction():
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
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not on first write
            return self.conn

        def __exit__(self, kind: object, *rest: object) -> None:
            if kind is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")

    def _transaction(self) -> History._Tx:
        """One write transaction: everything inside commits together or not at all."""
        return History._Tx(self.conn)

    def _existing(self, table: str, column: str, values: Sequence[str]) -> set[str]:
        """Which of `values` exist in `table.column` (through a temporary table: any size)."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS probe (v TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM probe")
        self.conn.executemany("INSERT OR IGNORE INTO probe VALUES (?)", ((v,) for v in values))
        rows = self.conn.execute(f"SELECT v FROM probe JOIN {table} ON {table}.{column} = probe.v")
        found = {r[0] for r in rows}
        self.conn.execute("DELETE FROM probe")
        return found

    # -- decisions -------------------------------------------------------------------------

    def record_decisions(
        self, decisions: pd.DataFrame, customers: pd.DataFrame | None = None
    ) -> int:
        """Write decisions (and their customers' feature columns, same rows in the same order)
        in one transaction; returns rows written. Columns: `DECISION_COLUMNS` (+ the optional
        explored, value_at_risk, cost); extra columns are ignored. A decision_id already in the
        history, a duplicate, an unknown channel or group or a propensity outside (0, 1] is a
        `HistoryError` and nothing is written."""
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
        dup = ids.duplicated()
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
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
        cols = {
            "decision_id": ids.tolist(),
            schema.ID: pd.to_numeric(d[schema.ID]).astype(np.int64).tolist(),
            "campaign_id": d["campaign_id"].astype("str").tolist(),
            "channel": d["channel"].astype("str").tolist(),
            "group": d["group"].astype("str").tolist(),
            "action": d["action"].astype("str").tolist(),
            "propensity": prop.tolist(),
            "churn_probability": _floats(d["churn_probability"]),
            "segment": d["segment"].astype("str").tolist(),
            "expected_value": _floats(d["expected_value"]),
            "bundle_id": d["bundle_id"].astype("str").tolist(),
        }
        for column, default in OPTIONAL_DECISION_COLUMNS.items():
            values = d[column] if column in d.columns else pd.Series(default, index=d.index)
            cols[column] = (
                values.astype(np.int64).tolist() if column == "explored" else _floats(values)
            )
        names = [*DECISION_COLUMNS, *OPTIONAL_DECISION_COLUMNS]
        rows = zip(*(cols[c] for c in names), [now] * len(d), strict=True)
        campaigns = d.groupby(["campaign_id", "channel"], sort=False).agg(
            rows=("decision_id", "size"), bundle_id=("bundle_id", "first")
        )
        quoted = ", ".join(f'"{c}"' for c in [*names, "created"])
        marks = ", ".join("?" * (len(names) + 1))
        try:
            with self._transaction() as conn:
                clash = self._existing("decisions", "decision_id", cols["decision_id"])
                if clash:
                    raise HistoryError(
                        f"{len(clash):,} decision_id(s) are already in the history "
                        f"(e.g. {sorted(clash)[0]!r}); a campaign is planned once."
                    )
                for (campaign, channel), row in campaigns.iterrows():
                    conn.execute(
                        "INSERT INTO campaigns (campaign_id, created, bundle_id, channel, rows) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(campaign_id) DO UPDATE SET "
                        "rows = rows + excluded.rows",
                        (str(campaign), now, str(row["bundle_id"]), str(channel), int(row["rows"])),
                    )
                conn.executemany(f"INSERT INTO decisions ({quoted}) VALUES ({marks})", rows)
                if customers is not None:
                    self._write_customers(conn, cols["decision_id"], customers)
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not write decisions to {self.path}: {exc}.") from exc
        log.info("history: %d decisions written", len(d))
        return len(d)

    @staticmethod
    def _write_customers(conn: sqlite3.Connection, ids: list[str], customers: pd.DataFrame) -> None:
        values = [
            customers[c].astype("str").tolist() if c in _TEXT_COLUMNS else _floats(customers[c])
            for c in CUSTOMER_COLUMNS
        ]
        marks = ", ".join("?" * (len(CUSTOMER_COLUMNS) + 1))
        conn.executemany(
            f"INSERT INTO customers (decision_id, {', '.join(CUSTOMER_COLUMNS)}) VALUES ({marks})",
            zip(ids, *values, strict=True),
        )

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
        return self._record(r, ids, reason, "api")

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
        ids = pd.Series(found, dtype="str").fillna("")
        never = (pd.isna(found)) & (reason == "")
        reason[never] = "customer never planned in this campaign"
        return self._record(o, ids, reason, "batch")

    def _plan_keys(self, campaigns: Iterable[str]) -> pd.Series:
        """decision_id by (campaign_id, CLIENTNUM) for the given campaigns."""
        frames = [
            pd.read_sql_query(
                "SELECT campaign_id, CLIENTNUM, decision_id FROM decisions WHERE campaign_id = ?",
                self.conn,
                params=(c,),
            )
            for c in campaigns
        ]
        if not frames:
            return pd.Series(dtype="str", index=pd.MultiIndex.from_arrays([[], []]))
        keys = pd.concat(frames, ignore_index=True)
        keys = keys.drop_duplicates(["campaign_id", schema.ID])
        return keys.set_index(["campaign_id", schema.ID])["decision_id"]

    def _record(
        self, frame: pd.DataFrame, ids: pd.Series, reason: np.ndarray, source: str
    ) -> tuple[int, pd.DataFrame]:
        """Validate 0/1 values and duplicates, then insert what passed in one transaction;
        `reason` holds the rejections found so far ("" = still good)."""
        values = {}
        for column in OUTCOME_COLUMNS:
            v, ok = _zero_one(frame[column])
            values[column] = v
            reason[(~ok) & (reason == "")] = f"{column} must be 0 or 1, got something else"
        good = reason == ""
        dup = pd.Series(ids.to_numpy()).where(good).duplicated(keep="first").to_numpy() & good
        reason[dup] = "duplicate: an earlier row of this file gives this customer's outcome"
        now = _now()
        try:
            with self._transaction() as conn:
                if source == "api":
                    ok = reason == ""
                    known = self._existing("decisions", "decision_id", ids[ok].tolist())
                    unknown = ok & ~ids.isin(known).to_numpy()
                    reason[unknown] = "unknown decision_id: no such decision in the history"
                ok = reason == ""
                before = self._recorded(ids[ok].tolist())
                if len(before):
                    prev = before.reindex(ids.to_numpy())
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
                rows = zip(
                    ids[ok].tolist(),
                    values["responded"][ok].tolist(),
                    values["retained"][ok].tolist(),
                    [source] * int(ok.sum()),
                    [now] * int(ok.sum()),
                    strict=True,
                )
                conn.executemany(
                    "INSERT INTO outcomes (decision_id, responded, retained, source, recorded) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not record outcomes in {self.path}: {exc}.") from exc
        recorded = int((reason == "").sum())
        rejected = frame.loc[reason != ""].assign(reason=reason[reason != ""])
        log.info("history: %d outcomes recorded, %d rejected", recorded, len(rejected))
        return recorded, rejected

    def _recorded(self, ids: Sequence[str]) -> pd.DataFrame:
        """Outcomes already recorded for `ids`, indexed by decision_id."""
        if not ids:
            return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS probe (v TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM probe")
        self.conn.executemany("INSERT OR IGNORE INTO probe VALUES (?)", ((v,) for v in ids))
        out = pd.read_sql_query(
            "SELECT o.decision_id, o.responded, o.retained FROM probe "
            "JOIN outcomes o ON o.decision_id = probe.v",
            self.conn,
        ).set_index("decision_id")
        self.conn.execute("DELETE FROM probe")
        return out

    # -- reading ---------------------------------------------------------------------------

    def campaign_ids(self) -> list[str]:
        """Every campaign (and API channel id) in the history, oldest first."""
        rows = self.conn.execute("SELECT campaign_id FROM campaigns ORDER BY created, rowid")
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per table: campaigns, decisions, customers, outcomes."""
        return {
            t: int(self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in ("campaigns", "decisions", "customers", "outcomes")
        }

    def decisions(self, campaign_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Decisions (all, or of `campaign_ids`) in the order written."""
        where, params = _where(campaign_ids, "d")
        return pd.read_sql_query(
            f"SELECT d.* FROM decisions d {where} ORDER BY d.rowid", self.conn, params=params
        )

    def interactions(
        self, campaign_ids: Sequence[str] | None = None, with_customers: bool = False
    ) -> pd.DataFrame:
        """Decisions that have an outcome, joined to it (responded, retained) and, with
        `with_customers`, to the customer's feature columns: what impact and learn read."""
        where, params = _where(campaign_ids, "d")
        extra = ", " + ", ".join(f"c.{c}" for c in CUSTOMER_COLUMNS) if with_customers else ""
        join = "LEFT JOIN customers c ON c.decision_id = d.decision_id" if with_customers else ""
        frame = pd.read_sql_query(
            f"SELECT d.*, o.responded, o.retained{extra} FROM decisions d "
            f"JOIN outcomes o ON o.decision_id = d.decision_id {join} {where} ORDER BY d.rowid",
            self.conn,
            params=params,
        )
        return frame


def _where(campaign_ids: Sequence[str] | None, alias: str) -> tuple[str, list[str]]:
    if campaign_ids is None:
        return "", []
    marks = ", ".join("?" * len(campaign_ids))
    return f"WHERE {alias}.campaign_id IN ({marks})", [str(c) for c in campaign_ids]


def _floats(values: pd.Series) -> list[float | None]:
    """A column as Python floats, missing values as None (SQL NULL)."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    out = arr.tolist()
    if np.isnan(arr).any():
        return [None if np.isnan(x) else x for x in out]
    return out
