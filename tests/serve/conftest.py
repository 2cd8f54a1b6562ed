"""Two small bundles (champion and challenger) for the decision service's tests, trained on
synthetic customers, and the customers to send."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.bundle import Bundle, load_bundle, save_bundle
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data.discover import describe, write_synthetic
from nba.data.io import load
from nba.train import train


def _bundle(folder: Path, rows: int, seed: int) -> Path:
    data = write_synthetic(folder / f"customers-{seed}.csv", rows, seed)
    bundle, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return save_bundle(bundle, folder / f"nba-{seed}.bundle")


@pytest.fixture(scope="session")
def serve_bundles(tmp_path_factory) -> tuple[Path, Path]:
    """(champion, challenger) bundle files: 2,000 synthetic customers each, different seeds."""
    folder = tmp_path_factory.mktemp("serve")
    return _bundle(folder, 2000, 5), _bundle(folder, 2000, 6)


@pytest.fixture(scope="session")
def champion(serve_bundles) -> Bundle:
    return load_bundle(serve_bundles[0])


@pytest.fixture(scope="session")
def challenger(serve_bundles) -> Bundle:
    return load_bundle(serve_bundles[1])


@pytest.fixture(scope="session")
def real_path() -> Path:
    """The real development file (NBA_DATA); skipped without it unless NBA_REQUIRE_REAL_DATA=1
    (as tests/data does), so CI cannot pass by skipping."""
    import os

    from nba.config import DATA_ENV

    value = os.environ.get(DATA_ENV)
    if value and Path(value).is_file():
        return Path(value)
    if os.environ.get("NBA_REQUIRE_REAL_DATA") == "1":
        pytest.fail(f"NBA_REQUIRE_REAL_DATA=1 but {DATA_ENV}={value!r} is not the real file")
    pytest.skip(f"the real Kaggle file is not available (set {DATA_ENV})")
