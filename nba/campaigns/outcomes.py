"""Campaign outcomes files: read, validate, record into the history, rejects kept with reasons.

An outcomes file (CSV or Parquet, by extension) has `CLIENTNUM, campaign_id, responded,
retained` (0/1 each) for customers of a recorded plan, control customers included. Every row is
either recorded or rejected with a reason (unknown campaign, customer never planned, duplicate,
value other than 0/1, already recorded): rows in = recorded + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nba.campaigns.history import History
from nba.data import schema
from nba.data.io import read_table, write_table
from nba.errors import DataError

OUTCOME_FILE_COLUMNS = (schema.ID, "campaign_id", "responded", "retained")
ALREADY = "already recorded"


@dataclass(frozen=True)
class RecordResult:
    rows_in: int
    recorded: int
    rejected: int
    already: int  # of the rejected: outcomes the history already held (nothing added)
    rejects: Path | None

    @property
    def summary(self) -> str:
        where = f"; rejected rows with reasons in {self.rejects}" if self.rejects else ""
        again = (
            f" ({self.already:,} already recorded: recording them again adds nothing)"
            if self.already
            else ""
        )
        return (
            f"{self.rows_in:,} rows in: {self.recorded:,} recorded, {self.rejected:,} "
            f"rejected{again}{where}"
        )


def beside(path: Path, tail: str) -> Path:
    """NAME.`tail` beside the file NAME.csv / NAME.parquet (a plan's rejects and summary)."""
    name = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.stem
    return path.with_name(f"{name}.{tail}")


def rejects_path(path: Path) -> Path:
    """OUTCOMES.rejects.csv beside the outcomes file."""
    return beside(path, "rejects.csv")


def record_file(
    path: str | Path, history: History, rejects: str | Path | None = None
) -> RecordResult:
    """`nba campaign record`: the outcomes at `path` into `history`. A file that cannot be
    read, is empty or lacks a column raises `DataError`; so does one in which no row could be
    recorded for any reason other than having been recorded already."""
    path = Path(path)
    table = read_table(path, required=OUTCOME_FILE_COLUMNS)
    recorded, rejected = history.record_outcomes(table)
    assert recorded + len(rejected) == len(table)
    already = int(rejected["reason"].str.startswith(ALREADY).sum()) if len(rejected) else 0
    out = None
    if len(rejected):
        out = write_table(rejected, Path(rejects) if rejects else rejects_path(path))
    if recorded == 0 and already < len(rejected):
        first = rejected.loc[~rejected["reason"].str.startswith(ALREADY), "reason"].iloc[0]
        raise DataError(
            f"no outcome in {path} could be recorded: all {len(table):,} rows were rejected "
            f"(first: {first}); reasons in {out}"
        )
    return RecordResult(len(table), recorded, len(rejected), already, out)
