"""Data discovery and the `DataSource` record that travels with the data into every output.

Order (first that exists wins): an explicit path (`--data`, papermill `data_path`), the
environment variable `NBA_DATA`, `data/raw/BankChurners.csv`, then the synthetic default,
generated deterministically into `data/synthetic/`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nba import config
from nba.data import io
from nba.errors import DataError

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".synthetic.json"
SYNTHETIC_WARNING = (
    "SYNTHETIC DATA: these are generated customers calibrated to the public Kaggle file, "
    "not real ones; figures show the method, not the bank."
)


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from: path, content hash, size and whether it is synthetic."""

    path: str
    sha256: str
    rows: int
    synthetic: bool
    origin: str  # which discovery rule found it: argument, NBA_DATA, data/raw, synthetic default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def banner(self) -> str:
        """One line for every output: loud when the data is synthetic."""
        head = SYNTHETIC_WARNING if self.synthetic else "Real data."
        return (
            f"{head} Source: {self.path} ({self.origin}), {self.rows:,} rows, "
            f"sha256 {self.sha256[:12]}…"
        )


def sidecar(path: Path) -> Path:
    """The metadata file written beside every synthetic dataset (marks it synthetic)."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def is_synthetic(path: Path) -> bool:
    return sidecar(path).exists()


def write_synthetic(path: Path, rows: int, seed: int) -> Path:
    """Generate `rows` synthetic customers with `seed` into `path` (CSV in Kaggle's exact format,
    or Parquet by extension) with its sidecar, atomically."""
    from nba.data import synth

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = synth.generate(rows, seed)
    tmp = path.with_name(f".{path.name}.tmp")
    if io.is_parquet(path):
        df.to_parquet(tmp, index=False)
    else:
        synth.write_kaggle_csv(df, tmp)
    meta = {"synthetic": True, "rows": rows, "seed": seed, "generator": "nba.data.synth"}
    sidecar(path).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def synthetic_default(settings: config.Settings) -> Path:
    """The default dataset's path for these settings, generated on first use."""
    path = config.SYNTHETIC_DIR / (
        f"BankChurners_synthetic_{settings.synthetic_rows}_seed{settings.seed}.csv"
    )
    if not (path.exists() and is_synthetic(path)):
        log.warning("No real data found: generating the synthetic default into %s", path)
        write_synthetic(path, settings.synthetic_rows, settings.seed)
    return path


def describe(path: Path, origin: str, rows: int | None = None) -> DataSource:
    """A `DataSource` for an existing file: hash, row count (counted unless given) and
    synthetic flag."""
    path = Path(path)
    return DataSource(
        path=str(path),
        sha256=io.sha256(path),
        rows=io.count_rows(path) if rows is None else rows,
        synthetic=is_synthetic(path),
        origin=origin,
    )


def discover(
    data_path: str | Path | None = None, settings: config.Settings | None = None
) -> DataSource:
    """Find the data to use, in the documented order, and describe it."""
    settings = settings or config.Settings()
    if data_path:
        path = Path(data_path)
        if not path.exists():
            raise DataError(f"The data file {path} given with --data/data_path does not exist.")
        return describe(path, "argument")
    env = os.environ.get(config.DATA_ENV)
    if env:
        if Path(env).exists():
            return describe(Path(env), config.DATA_ENV)
        log.warning("%s=%s does not exist; looking further", config.DATA_ENV, env)
    if config.RAW_FILE.exists():
        return describe(config.RAW_FILE, "data/raw")
    return describe(synthetic_default(settings), "synthetic default")
