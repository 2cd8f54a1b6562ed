"""Acceptance on the real development file: the bundle trained on it re-scores its kept-back
customers with their protected attributes changed (gender flipped, another marital status, age
±10 years, other dependants), and every credit action keeps its eligibility and its expected
value, customer by customer; the blind model's held-out figures sit close to the main one's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba import lineage
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data.discover import describe
from nba.data.io import load
from nba.fairness import counterfactual, credit_decisions
from nba.train import train

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def trained(real_path: Path):
    clean = load(real_path)
    bundle, metrics = train(
        clean, describe(real_path, "environment"), Settings(), TrainOptions.fast()
    )
    _, kept_back = lineage.held_out_split(clean, Settings())
    return bundle, metrics, kept_back


def test_kept_back_customers_keep_every_credit_decision_when_protected_attributes_change(trained):
    bundle, _, kept_back = trained
    twins = counterfactual(kept_back, bundle.protected)
    for column in bundle.protected:
        assert (twins[column].astype(str) != kept_back[column].astype(str)).all(), column
    before, after = credit_decisions(bundle, kept_back), credit_decisions(bundle, twins)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    allowed = before[[c for c in before.columns if c.endswith("_allowed")]].to_numpy()
    assert allowed.any() and not allowed.all()  # decisions that could have moved
    moved = bundle.score(kept_back)["churn_probability"] != bundle.score(twins)["churn_probability"]
    assert moved.any()  # the main model reads the attributes: the invariance is not a given


def test_the_blind_model_costs_little_on_kept_back_customers(trained):
    _, metrics, _ = trained
    main, blind = metrics["churn"], metrics["credit_churn"]
    assert blind["roc_auc"] > 0.98 and blind["pr_auc"] > 0.93
    assert main["roc_auc"] - blind["roc_auc"] < 0.01
    assert np.isfinite(blind["pr_auc"])
