"""Fixtures for the data tests: the real development file (when present) and a synthetic draw.

Without the real file the real-data tests skip; with NBA_REQUIRE_REAL_DATA=1 (set by .ci/run)
a missing file is a failure instead, so CI cannot pass by skipping them."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from nba.config import DATA_ENV, Settings
from nba.data import synth

REQUIRE_ENV = "NBA_REQUIRE_REAL_DATA"
SYNTHETIC_ROWS = 20_000


@pytest.fixture(scope="session")
def real_path() -> Path:
    value = os.environ.get(DATA_ENV)
    if value and Path(value).is_file():
        return Path(value)
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {DATA_ENV}={value!r} is not the real Kaggle file")
    pytest.skip(f"the real Kaggle file is not available (set {DATA_ENV})")


@pytest.fixture(scope="session")
def real(real_path: Path) -> pd.DataFrame:
    """The real file as Kaggle ships it (23 columns, Attrition_Flag as text)."""
    return pd.read_csv(real_path)


@pytest.fixture(scope="session")
def synthetic() -> pd.DataFrame:
    return synth.generate(SYNTHETIC_ROWS, Settings().seed)
