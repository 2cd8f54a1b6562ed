"""Stage 1 on the real development data, fast CI configuration (recorded features and
hyper-parameters, no comparison or search): held-out figures, CV figures, the baseline, reasons.

The held-out part is the project's own split of the development file; acceptance is measured
later on customers the project has never seen, so nothing here was tuned to these numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba import churn
from nba.churn import ChurnModel, TrainOptions
from nba.config import Settings
from nba.data import schema
from nba.data.io import load
from nba.features import split

pytestmark = pytest.mark.real_data

#: The issue's acceptance targets for the attrited class.
TARGETS = {"roc_auc": 0.996, "pr_auc": 0.980, "f1": 0.935, "precision": 0.92, "recall": 0.92}
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


@pytest.mark.xfail(
    strict=True,
    reason="not met yet: held-out ROC-AUC 0.9946, PR-AUC 0.974, F1 0.918, recall 0.897; "
    "CV on the training split says the same (see nba.churn); flip this when it passes",
)
def test_held_out_metrics_meet_the_acceptance_targets(trained):
    _, metrics = trained
    low = {k: round(metrics[k], 4) for k, target in TARGETS.items() if metrics[k] < target}
    assert not low, f"below the targets {TARGETS}: {low}"


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
