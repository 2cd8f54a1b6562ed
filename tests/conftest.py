"""Shared test helpers: small synthetic customer tables in the Kaggle format (never real rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chromium import open_browser
from factories import make_customers, to_kaggle_csv


@pytest.fixture
def customers() -> pd.DataFrame:
    """Forty valid typed customers (seed 7)."""
    return make_customers(40, seed=7)


@pytest.fixture
def kaggle_csv(tmp_path: Path, customers: pd.DataFrame) -> Path:
    """`customers` written as a Kaggle-format CSV file."""
    path = tmp_path / "customers.csv"
    path.write_text(to_kaggle_csv(customers), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (tests/chromium.py)."""
    yield from open_browser()
