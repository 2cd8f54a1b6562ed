"""A small bundle and customer base for the app's tests: 3,000 synthetic customers (seed 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.bundle import Bundle, load_bundle, save_bundle
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data.discover import describe, write_synthetic
from nba.data.io import load
from nba.train import train


@pytest.fixture(scope="session")
def app_files(tmp_path_factory) -> tuple[Path, Path]:
    """(bundle file, customer file) as `nba train` and `nba data synth` would write them."""
    folder = tmp_path_factory.mktemp("app")
    data = write_synthetic(folder / "customers.csv", 3000, 5)
    bundle, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return save_bundle(bundle, folder / "nba.bundle"), data


@pytest.fixture(scope="session")
def app_bundle(app_files) -> Bundle:
    return load_bundle(app_files[0])
