"""`nba data download`: the public Kaggle dataset via kagglehub into data/raw/."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from nba import config
from nba.errors import DataError

log = logging.getLogger(__name__)

DATASET = "sakshigoyal7/credit-card-customers"
FILENAME = "BankChurners.csv"
MANUAL = (
    f"download {FILENAME} by hand from https://www.kaggle.com/datasets/{DATASET} "
    f"into data/raw/ (or set {config.DATA_ENV} to its path)"
)


def download(dest_dir: Path | None = None) -> Path:
    """Fetch the Kaggle dataset and copy its CSV to `dest_dir/BankChurners.csv` atomically.

    Needs network access and, for Kaggle, credentials (~/.kaggle/kaggle.json or KAGGLE_USERNAME
    and KAGGLE_KEY); without them it fails with one sentence saying what to do instead."""
    dest_dir = Path(dest_dir or config.RAW_DIR)
    try:
        import kagglehub

        folder = Path(kagglehub.dataset_download(DATASET))
    except Exception as exc:  # noqa: BLE001 - any failure of the download becomes one sentence
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(
            f"Could not download {DATASET} from Kaggle ({reason}); check network and Kaggle "
            f"credentials, or {MANUAL}."
        ) from exc
    found = sorted(folder.rglob(FILENAME)) if folder.is_dir() else []
    if not found:
        raise DataError(f"The Kaggle download in {folder} holds no {FILENAME}; {MANUAL}.")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / FILENAME
    tmp = dest.with_name(f".{FILENAME}.tmp")
    shutil.copyfile(found[0], tmp)
    os.replace(tmp, dest)
    log.info("Downloaded %s to %s", DATASET, dest)
    return dest
