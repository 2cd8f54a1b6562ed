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
