"""Production monitoring: PSI, the training reference, drift statuses, realised metrics, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from nba import monitor
from nba.bundle import Bundle, load_bundle, save_bundle
from nba.churn import TrainOptions
from nba.cli import main
from nba.config import Settings
from nba.data import schema, synth
from nba.data.discover import describe, write_synthetic
from nba.data.io import load
from nba.data.validate import validate
from nba.errors import NbaError
from nba.train import train

SHIFTED = ("Months_Inactive_12_mon", "Total_Trans_Ct")
ADD = {"Months_Inactive_12_mon": 1}
SCALE = {"Total_Trans_Ct": 0.7}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Bundle, Path]:
    """A fast bundle on 3,000 synthetic customers (seed 11), saved and loaded back."""
    folder = tmp_path_factory.mktemp("monitor")
    data = write_synthetic(folder / "train.csv", 3000, 11)  # with its synthetic sidecar
    bundle, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    path = save_bundle(bundle, folder / "nba.bundle")
    return load_bundle(path), path


@pytest.fixture(scope="module")
def bundle(trained) -> Bundle:
    return trained[0]


@pytest.fixture(scope="module")
def undrifted(bundle) -> monitor.MonitorResult:
    return monitor.monitor_frame(bundle, synth.generate(3000, 5))


@pytest.fixture(scope="module")
def drifted(bundle) -> monitor.MonitorResult:
    return monitor.monitor_frame(bundle, monitor.drifted_batch(3000, 5, add=ADD, scale=SCALE))


# --- PSI and bins ---------------------------------------------------------------------------


def test_psi_on_hand_made_shares():
    assert monitor.psi([0.25] * 4, [0.25] * 4) == 0.0
    expected = -0.1 * math.log(0.4 / 0.5) + 0.1 * math.log(0.6 / 0.5)
    assert monitor.psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(expected)
    assert monitor.psi([0.4, 0.6], [0.5, 0.5]) == pytest.approx(expected)  # symmetric
    # an empty reference bin is floored at 1e-4: large but finite
    floored = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert monitor.psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx(floored)
    with pytest.raises(ValueError, match="same bins"):
        monitor.psi([0.5, 0.5], [1.0])


def test_status_levels_are_inclusive():
    assert [monitor.status(v, 0.1, 0.25) for v in (0.0, 0.1, 0.2, 0.25, 3.0)] == [
        "ok",
        "watch",
        "watch",
        "act",
        "act",
    ]
    assert monitor.status(None, 0.1, 0.25) == "ok"


def test_bins_are_left_closed_and_discrete_edges_deduplicated():
    assert monitor.bin_shares(np.array([0, 1, 1, 2, 5]), [1.0, 2.0]) == [0.2, 0.4, 0.4]
    edges = monitor.quantile_edges(np.repeat([1, 2, 3], 100), bins=10)
    assert edges == [1.0, 2.0, 3.0]


def test_thresholds_file_matches_the_built_in_defaults(tmp_path):
    assert monitor.load_thresholds() == monitor.Thresholds()
    bad = tmp_path / "t.yaml"
    bad.write_text("psi_watch: 0.2\npsi_typo: 1\n")
    with pytest.raises(NbaError, match="psi_typo"):
        monitor.load_thresholds(bad)
    bad.write_text("psi_watch: 0.2\n")
    assert monitor.load_thresholds(bad).psi_watch == 0.2


# --- the reference the bundle records ---------------------------------------------------------


def test_training_records_the_reference_in_the_bundle(bundle):
    ref = bundle.reference
    assert ref["rows"] == 3000
    assert set(ref["features"]) == set(schema.NUMERIC) | set(schema.CATEGORICAL)
    for feature in ref["features"].values():
        assert sum(feature["shares"]) == pytest.approx(1.0)
    assert ref["features"]["Gender"]["categories"] == ["F", "M"]
    assert sum(ref["score"]["shares"]) == pytest.approx(1.0)
    assert len(ref["segments"]["names"]) == len(ref["segments"]["categories"])
    # the bundle carries the action catalogue, so its scores have action_1 and a mix is kept
    assert sum(ref["actions"]["shares"]) == pytest.approx(1.0)
    assert "no_action" in ref["actions"]["categories"]


# --- drifted batches ------------------------------------------------------------------------


def test_drifted_batch_stays_valid_and_keeps_identities():
    base = synth.generate(500, 3)
    df = monitor.drifted_batch(
        500, 3, add=ADD, scale={**SCALE, "Credit_Limit": 0.5}, unknown={"Income_Category": 0.5}
    )
    assert validate(df).ok
    assert (
        df["Months_Inactive_12_mon"] == np.clip(base["Months_Inactive_12_mon"] + 1, 0, 12)
    ).all()
    assert (df["Credit_Limit"] < base["Credit_Limit"]).all()
    gap = df["Credit_Limit"] - df["Total_Revolving_Bal"] - df["Avg_Open_To_Buy"]
    assert gap.abs().max() < 1e-6
    assert 0.4 < (df["Income_Category"] == "Unknown").mean() < 0.65
    with pytest.raises(ValueError, match="Avg_Open_To_Buy"):
        monitor.drifted_batch(10, 1, add={"Avg_Open_To_Buy": 5})


# --- comparing batches ----------------------------------------------------------------------


def test_undrifted_batch_raises_nothing(undrifted):
    # no drift alert of any kind: features, score, mixes, metrics. Adverse impact is not drift:
    # it is judged on every batch (tests/unit/test_fairness_impact.py), drifted or not
    drift = [i for i in undrifted.items if i["kind"] != "adverse_impact"]
    assert [i["name"] for i in drift if i["status"] != "ok"] == []
    assert any(i["kind"] == "adverse_impact" for i in undrifted.items)
    assert undrifted.items_at("watch", "feature") == []
    features = [i for i in undrifted.items if i["kind"] == "feature"]
    assert len(features) == len(schema.NUMERIC) + len(schema.CATEGORICAL)
    assert max(i["value"] for i in features) < 0.05


def test_shifted_features_act_and_nothing_else_does(drifted):
    assert sorted(drifted.items_at("act", "feature")) == sorted(SHIFTED)
    assert drifted.items_at("watch", "feature") == []
    # the score moves with two of its strongest inputs: that is real drift, and it is flagged
    assert "churn_probability" in drifted.items_at("act", "score")
    assert drifted.status == "act"


def test_unknown_and_rejected_rates(bundle):
    raw = monitor.drifted_batch(1000, 8, unknown={"Marital_Status": 0.4})
    raw.loc[:99, "Gender"] = "X"  # 100 of 1,000 rows fail validation
    result = monitor.monitor_frame(bundle, raw)
    assert result.rows_in == 1000 and result.rows_rejected == 100
    rejected = next(i for i in result.items if i["kind"] == "rejected_rate")
    assert rejected["value"] == pytest.approx(0.1) and rejected["status"] == "act"
    assert result.items_at("act", "unknown_rate") == ["Marital_Status"]


def test_realised_metrics_equal_scikit_learns(bundle, undrifted):
    clean = validate(synth.generate(3000, 5)).clean
    y = clean[schema.TARGET].to_numpy()
    p = bundle.score(clean)["churn_probability"].to_numpy()
    flag = (p >= bundle.threshold).astype(int)
    m = undrifted.metrics
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, flag), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, flag), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, flag), abs=1e-12)
    assert m["threshold"] == bundle.threshold and m["n"] == 3000
    assert {i["name"] for i in undrifted.items if i["kind"] == "performance"} == {"roc_auc", "f1"}


def test_no_labels_no_metrics(bundle):
    raw = synth.generate(400, 9).drop(columns=[schema.TARGET_RAW])
    result = monitor.monitor_frame(bundle, raw)
    assert result.metrics is None
    assert not [i for i in result.items if i["kind"] == "performance"]


def _with_actions(scores: pd.DataFrame, shares: dict[str, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = rng.choice(list(shares), size=len(scores), p=list(shares.values()))
    return scores.assign(action_1=names)


def test_action_mix_is_recorded_and_compared(bundle):
    mix = {"retention_call": 0.2, "fee_waiver": 0.3, "none": 0.5}
    ref_clean = validate(synth.generate(2000, 21)).clean
    reference = monitor.reference_profile(ref_clean, _with_actions(bundle.score(ref_clean), mix, 1))
    assert reference["actions"]["categories"] == sorted(mix)

    clean = validate(synth.generate(2000, 22)).clean
    scores = bundle.score(clean)
    same = monitor.compare(reference, clean, _with_actions(scores, mix, 2))
    action = next(i for i in same.items if i["kind"] == "action_mix")
    assert action["status"] == "ok" and action["value"] < 0.01

    moved = {"retention_call": 0.6, "fee_waiver": 0.1, "none": 0.2, "card_upgrade": 0.1}
    shifted = monitor.compare(reference, clean, _with_actions(scores, moved, 3))
    action = next(i for i in shifted.items if i["kind"] == "action_mix")
    assert action["status"] == "act" and "card_upgrade" in action["detail"]

    without = scores.drop(columns=[c for c in scores.columns if c.startswith("action_")])
    missing = monitor.compare(reference, clean, without)
    assert not [i for i in missing.items if i["kind"] == "action_mix"]
    assert any("action_1" in n for n in missing.notes)


# --- the command ----------------------------------------------------------------------------


def _write(df: pd.DataFrame, path: Path) -> Path:
    synth.write_kaggle_csv(df, path)
    return path


def test_cli_undrifted_exits_0_with_report_and_summary(trained, tmp_path, capsys):
    _, bundle_path = trained
    batch = _write(synth.generate(3000, 5), tmp_path / "batch.csv")
    out = tmp_path / "report.html"
    code = main(["monitor", "--bundle", str(bundle_path), str(batch), "--out", str(out)])
    assert code == 0
    assert "status" in capsys.readouterr().out
    text = out.read_text()
    assert '<table id="summary">' in text and "Customer_Age" in text
    assert "SYNTHETIC DATA" in text
    assert text.count("data:image/png;base64,") == 2
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["status"] in ("ok", "watch") and summary["synthetic"] is True
    assert len(summary["items"]) > 20


def test_cli_drifted_exits_1_and_names_the_features(trained, tmp_path, capsys):
    _, bundle_path = trained
    batch = _write(monitor.drifted_batch(2000, 6, add=ADD, scale=SCALE), tmp_path / "d.csv")
    out = tmp_path / "d.html"
    assert main(["monitor", "--bundle", str(bundle_path), str(batch), "--out", str(out)]) == 1
    line = capsys.readouterr().out
    assert "act:" in line and all(name in line for name in SHIFTED)
    assert json.loads(out.with_suffix(".json").read_text())["status"] == "act"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("CLIENTNUM,Customer_Age\n1,40\n", "missing required columns"),
        ("", "empty"),
    ],
)
def test_cli_unusable_input_exits_2_with_one_line(trained, tmp_path, capsys, content, message):
    _, bundle_path = trained
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    out = tmp_path / "x.html"
    assert main(["monitor", "--bundle", str(bundle_path), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nba: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_cli_all_rows_invalid_or_missing_bundle_exits_2(trained, tmp_path, capsys):
    _, bundle_path = trained
    bad = _write(synth.generate(20, 4).assign(Gender="?"), tmp_path / "allbad.csv")
    assert (
        main(["monitor", "--bundle", str(bundle_path), str(bad), "--out", str(tmp_path / "x.html")])
        == 2
    )
    assert "no usable row" in capsys.readouterr().err
    missing = tmp_path / "none.bundle"
    assert (
        main(["monitor", "--bundle", str(missing), str(bad), "--out", str(tmp_path / "x.html")])
        == 2
    )
    assert "No bundle" in capsys.readouterr().err


# --- plausible but outside the training range -------------------------------------------------


def test_the_reference_keeps_the_training_range(bundle):
    ranges = bundle.reference["training_range"]
    train = synth.generate(3000, 11)  # the customers the fixture's bundle learnt from
    for col in schema.NUMERIC:
        assert ranges[col] == [float(train[col].min()), float(train[col].max())]


def test_undrifted_batch_is_almost_all_inside_the_training_range(undrifted):
    item = next(i for i in undrifted.items if i["kind"] == "out_of_range")
    assert item["status"] == "ok"
    assert item["value"] < monitor.Thresholds().out_of_range_watch


def test_share_outside_the_training_range_is_judged_and_explained(bundle):
    ranges = bundle.reference["training_range"]
    raw = synth.generate(1000, 9)
    raw.loc[:59, "Customer_Age"] = ranges["Customer_Age"][1] + 3  # 6 %: plausible, unseen
    raw.loc[:4, "Total_Trans_Ct"] = ranges["Total_Trans_Ct"][1] + 50
    result = monitor.monitor_frame(bundle, raw)
    assert result.rows_rejected == 0  # scored, not rejected
    item = next(i for i in result.items if i["kind"] == "out_of_range")
    assert item["value"] >= 0.06 and item["status"] == "act"
    assert "most often Customer_Age 60" in item["detail"]
    smaller = monitor.monitor_frame(
        bundle, raw.assign(Customer_Age=raw["Customer_Age"].clip(upper=ranges["Customer_Age"][1]))
    )
    item = next(i for i in smaller.items if i["kind"] == "out_of_range")
    assert item["status"] in ("ok", "watch") and item["value"] < 0.02


def test_a_reference_without_a_training_range_says_so(bundle, undrifted):
    reference = {k: v for k, v in bundle.reference.items() if k != "training_range"}
    clean = validate(synth.generate(200, 3)).clean
    result = monitor.compare(reference, clean, bundle.score(clean))
    assert not [i for i in result.items if i["kind"] == "out_of_range"]
    assert any("no training range" in n for n in result.notes)


def test_thresholds_file_errors_name_the_file_and_the_key(tmp_path):
    from nba.errors import NbaError

    good = tmp_path / "monitor.yaml"
    good.write_text("psi_act: 0.3\nmin_labelled: 50\n")
    loaded = monitor.load_thresholds(good)
    assert (
        loaded.psi_act == 0.3 and loaded.min_labelled == 50 and isinstance(loaded.min_labelled, int)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("psi_act: 0.3\npsi_ack: 0.2\n")
    with pytest.raises(
        NbaError, match=r"bad\.yaml has unknown key\(s\) for the thresholds: psi_ack"
    ):
        monitor.load_thresholds(bad)
    bad.write_text("- a list\n")
    with pytest.raises(NbaError, match="must map the thresholds' names"):
        monitor.load_thresholds(bad)
    with pytest.raises(NbaError, match="No thresholds file at"):
        monitor.load_thresholds(tmp_path / "absent.yaml")
