"""`nba data download`, with only the kagglehub boundary faked (no network in tests)."""

from __future__ import annotations

import sys
import types

import pytest

from nba.data import download as dl
from nba.errors import DataError


def _fake_kagglehub(monkeypatch, behaviour):
    module = types.ModuleType("kagglehub")
    module.dataset_download = behaviour
    monkeypatch.setitem(sys.modules, "kagglehub", module)


def test_copies_the_csv_into_the_destination(tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "versions" / "1"
    cache.mkdir(parents=True)
    (cache / "BankChurners.csv").write_text("CLIENTNUM\n1\n")
    asked = []

    def fake(handle):
        asked.append(handle)
        return str(tmp_path / "cache")

    _fake_kagglehub(monkeypatch, fake)
    dest = dl.download(tmp_path / "raw")
    assert asked == ["sakshigoyal7/credit-card-customers"]
    assert dest == tmp_path / "raw" / "BankChurners.csv"
    assert dest.read_text() == "CLIENTNUM\n1\n"


def test_without_network_one_sentence_says_what_to_do(tmp_path, monkeypatch):
    def offline(handle):
        raise ConnectionError("Failed to resolve host\nretries exhausted")

    _fake_kagglehub(monkeypatch, offline)
    with pytest.raises(DataError) as err:
        dl.download(tmp_path / "raw")
    message = str(err.value)
    assert "\n" not in message
    assert "Failed to resolve host" in message and "by hand" in message
    assert not (tmp_path / "raw").exists()


def test_a_download_without_the_csv_is_reported(tmp_path, monkeypatch):
    _fake_kagglehub(monkeypatch, lambda handle: str(tmp_path))
    with pytest.raises(DataError, match="holds no BankChurners.csv"):
        dl.download(tmp_path / "raw")
