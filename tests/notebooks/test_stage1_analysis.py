"""What notebooks 04 and 07 recorded about how early the score warns and its calibration where
decisions are made, after the notebooks' CI run (the `reports` fixture of conftest.py): the
feature variants' paired comparison, the calibration chosen on the decision region with its
evidence in the record and the bundle, and the held-out reliability over the contacted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nba import churn, config, pipeline
from nba.bundle import load_bundle

from factories import recorded_metrics

pytestmark = pytest.mark.slow


def test_the_feature_variants_were_compared_on_paired_folds(reports):
    rows = recorded_metrics(reports, "churn")["feature_variants"]
    table = {(r["variant"], r["metric"]): r for r in rows}
    for name in churn.CHURN_FEATURE_SETS:
        assert (name, "pr_auc") in table and (name, "roc_auc") in table
    full, early = table[("full", "pr_auc")], table[("early_warning", "pr_auc")]
    assert full["delta"] == 0 and early["folds"] == full["folds"]
    assert early["delta"] == pytest.approx(early["mean"] - full["mean"])
    # on the real and the synthetic data alike, the profile alone ranks churners far worse
    assert early["delta_high"] < 0 and early["retained"] < 0.8
    assert early["columns"] == len(churn.PROFILE)


def test_the_calibration_was_chosen_on_the_decision_region_and_recorded(reports):
    churn_metrics = recorded_metrics(reports, "churn")
    evidence = churn_metrics["calibration_choice"]
    assert evidence["criterion"] == churn.DECISION_CRITERION
    report = evidence["report"]
    assert set(report) == set(churn.CALIBRATIONS)
    assert len({r["region"] for r in report.values()}) == 1
    table = pd.DataFrame(report).T
    assert churn.choose_calibration(table, "decision_brier") == churn_metrics["calibration"]
    record = json.loads((reports / "artifacts" / "choices.json").read_text())
    assert record["churn"]["calibration_choice"] == evidence
    assert record["churn"]["features"] == churn_metrics["features"]
    ci = pipeline.load_parameters(config.PARAMS_DIR / "ci.yaml")
    models = config.Settings(models_dir=ci["models_dir"]).path("models_dir")
    bundle = load_bundle(models / "nba.bundle")
    assert bundle.metadata["lineage"]["choices"]["churn"]["calibration_choice"] == evidence
    assert bundle.churn.calibration_ == churn_metrics["calibration"]


def test_held_out_reliability_over_the_contacted_has_intervals(reports):
    held_out = recorded_metrics(reports, "calibration")
    evaluation = recorded_metrics(reports, "evaluation")
    assert held_out["ece"] == evaluation["held_out"]["ece"]
    assert 0 < held_out["contacted"] <= evaluation["n_test"]
    assert sum(b["count"] for b in held_out["contacted_bins"]) == held_out["contacted"]
    assert sum(b["count"] for b in held_out["whole"]) == evaluation["n_test"]
    low, high = held_out["observed_contacted_low"], held_out["observed_contacted_high"]
    assert low <= held_out["observed_contacted"] <= high
    for b in held_out["contacted_bins"]:
        assert b["observed_low"] <= b["observed_rate"] <= b["observed_high"]
