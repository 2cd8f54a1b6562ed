"""Data discovery order and the DataSource record."""

from __future__ import annotations

import json

import pytest

from nba import config
from nba.data import discover as disc
from nba.data import synth
from nba.errors import DataError


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project tree: no NBA_DATA, no data/raw file."""
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    monkeypatch.setattr(config, "RAW_FILE", tmp_path / "data/raw/BankChurners.csv")
    monkeypatch.setattr(config, "SYNTHETIC_DIR", tmp_path / "data/synthetic")
    return tmp_path


def _kaggle_file(path, rows=20, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_kaggle_csv(synth.generate(rows, seed), path)
    return path


SMALL = config.Settings(synthetic_rows=300)


def test_synthetic_default_when_nothing_else(project):
    source = disc.discover(settings=SMALL)
    assert source.synthetic and source.origin == "synthetic default"
    assert source.rows == 300
    assert source.path.startswith(str(project / "data/synthetic"))
    assert "SYNTHETIC DATA" in source.banner
    meta = json.loads(disc.sidecar(disc.Path(source.path)).read_text())
    assert meta == {"synthetic": True, "rows": 300, "seed": 42, "generator": "nba.data.synth"}


def test_synthetic_default_is_deterministic(project):
    first = disc.discover(settings=SMALL)
    disc.Path(first.path).unlink()
    second = disc.discover(settings=SMALL)
    assert first.sha256 == second.sha256


def test_raw_file_beats_synthetic(project):
    _kaggle_file(config.RAW_FILE)
    source = disc.discover(settings=SMALL)
    assert (source.origin, source.synthetic, source.rows) == ("data/raw", False, 20)
    assert "SYNTHETIC" not in source.banner


def test_env_beats_raw_and_missing_env_falls_through(project, monkeypatch):
    _kaggle_file(config.RAW_FILE)
    other = _kaggle_file(project / "elsewhere.csv", rows=11)
    monkeypatch.setenv(config.DATA_ENV, str(other))
    assert disc.discover(settings=SMALL).rows == 11
    monkeypatch.setenv(config.DATA_ENV, str(project / "missing.csv"))
    assert disc.discover(settings=SMALL).origin == "data/raw"


def test_explicit_path_beats_everything(project, monkeypatch):
    env_file = _kaggle_file(project / "env.csv", rows=11)
    arg_file = _kaggle_file(project / "arg.csv", rows=13)
    monkeypatch.setenv(config.DATA_ENV, str(env_file))
    source = disc.discover(arg_file, settings=SMALL)
    assert (source.origin, source.rows) == ("argument", 13)


def test_explicit_missing_path_is_one_clear_error(project):
    with pytest.raises(DataError, match="does not exist") as err:
        disc.discover(project / "nope.csv")
    assert "\n" not in str(err.value)


def test_a_generated_file_elsewhere_is_still_flagged_synthetic(project):
    path = disc.write_synthetic(project / "mine.parquet", rows=50, seed=1)
    source = disc.describe(path, "argument")
    assert source.synthetic and source.rows == 50
