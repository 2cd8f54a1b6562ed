"""The bundle: safe save/load, refusal of corrupt or tampered files, determinism, and the
`nba train` / `nba score` commands end to end on synthetic customers."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from nba import load_bundle
from nba.bundle import FORMAT_VERSION, BundleError, dump_trusted, save_bundle
from nba.churn import TrainOptions
from nba.cli import main
from nba.config import Settings
from nba.data import synth
from nba.data.discover import describe, write_synthetic
from nba.data.validate import validate
from nba.scoring import SCORE_COLUMNS
from nba.train import train

from factories import to_kaggle_csv

ACTION_COLUMNS = tuple(f"action_{k}{s}" for k in (1, 2, 3) for s in ("", "_value", "_reason"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    path = write_synthetic(folder / "customers.csv", rows=3000, seed=11)
    return folder, path


def _train(path):
    clean = validate(pd.read_csv(path, dtype=str)).clean
    return train(clean, describe(path, "argument"), Settings(), TrainOptions.fast())


@pytest.fixture(scope="module")
def bundle_file(data):
    folder, path = data
    bundle, _ = _train(path)
    return save_bundle(bundle, folder / "nba.bundle")


def test_round_trip_keeps_metadata_and_scores(bundle_file, data):
    bundle = load_bundle(bundle_file)
    meta = bundle.metadata
    assert meta["format_version"] == FORMAT_VERSION and meta["synthetic"] is True
    assert {"roc_auc", "pr_auc", "f1", "precision", "recall", "threshold"} <= set(
        meta["metrics"]["churn"]
    )
    assert {"k", "silhouette", "stability_ari"} <= set(meta["metrics"]["segments"])
    assert meta["data"]["rows"] == 3000 and len(meta["data"]["sha256"]) == 64
    customers = validate(synth.generate(200, 5)).clean
    scores = bundle.score(customers)
    assert tuple(scores.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert set(ACTION_COLUMNS) <= set(scores.columns)
    flag = (scores.churn_probability >= bundle.threshold).astype(int)
    assert (scores.churn_flag == flag).all()


def test_same_data_and_seed_give_the_same_bundle_contents(data, bundle_file):
    again, _ = _train(data[1])
    first = load_bundle(bundle_file)
    customers = validate(synth.generate(300, 9)).clean
    pd.testing.assert_frame_equal(first.score(customers), again.score(customers))
    assert first.metadata["metrics"] == again.metadata["metrics"]


def test_a_corrupt_file_is_one_sentence(tmp_path, bundle_file):
    broken = tmp_path / "broken.bundle"
    broken.write_bytes(bundle_file.read_bytes()[:5000])
    with pytest.raises(BundleError, match="not a readable nba file") as err:
        load_bundle(broken)
    assert "\n" not in str(err.value)


def test_a_bundle_asking_for_an_untrusted_type_is_refused(tmp_path, bundle_file):
    """Tampering: a file that asks skops to build a type nba never stores."""
    evil = tmp_path / "evil.bundle"
    payload = {"format_version": FORMAT_VERSION, "churn": Fraction(1, 3)}
    evil.write_bytes(sio.dumps(payload))
    with pytest.raises(BundleError, match="does not trust"):
        load_bundle(evil)


def test_refuses_to_write_what_it_would_not_load(tmp_path):
    with pytest.raises(BundleError, match="does not trust"):
        dump_trusted({"x": Fraction(1, 3)}, tmp_path / "x.skops")
    assert not (tmp_path / "x.skops").exists()


def test_an_incompatible_format_is_named(tmp_path):
    old = tmp_path / "old.bundle"
    dump_trusted({"format_version": FORMAT_VERSION + 1}, old)
    with pytest.raises(BundleError, match=f"format {FORMAT_VERSION + 1}"):
        load_bundle(old)


def test_missing_bundle_says_how_to_build_one(tmp_path):
    with pytest.raises(BundleError, match="nba train --out"):
        load_bundle(tmp_path / "none.bundle")


def test_score_command_loses_no_row_of_a_messy_file(tmp_path, bundle_file, capsys):
    df = synth.generate(40, 8)
    df["Customer_Age"] = df["Customer_Age"].astype(object)
    df.loc[2, "Customer_Age"] = "forty"
    df.loc[5, "Card_Category"] = "Diamond"
    df.loc[9, "Total_Trans_Amt"] = -100
    df.loc[12, "Gender"] = None
    df.loc[20, "CLIENTNUM"] = df.loc[19, "CLIENTNUM"]
    path = tmp_path / "messy.csv"
    df.to_csv(path, index=False)  # a spreadsheet export: unquoted, mixed types
    out = tmp_path / "scores.parquet"
    code = main(["score", str(path), "--bundle", str(bundle_file), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "40 rows in: 35 scored, 5 rejected" in err
    scores = pd.read_parquet(out)
    rejects = pd.read_csv(tmp_path / "scores.rejects.csv")
    assert len(scores) + len(rejects) == 40
    assert rejects["row"].tolist() == [3, 6, 10, 13, 21]
    assert not np.isin(rejects["CLIENTNUM"].iloc[:4], scores["CLIENTNUM"]).any()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("CLIENTNUM,Gender\n1,F\n", "missing"),
        (to_kaggle_csv(synth.generate(30, 2)).encode().replace(b'"Blue"', b'"Bl\xfce"'), "UTF-8"),
    ],
)
def test_score_command_unusable_input_exits_2(tmp_path, bundle_file, capsys, content, needle):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code = main(
        ["score", str(path), "--bundle", str(bundle_file), "--out", str(tmp_path / "o.csv")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("nba: error:")
    assert needle.lower() in err[0].lower()
    assert not (tmp_path / "o.csv").exists()
