"""nba.fairness: action rates by gender and age band, their gaps, and the sentence about them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba import fairness
from nba.actions import load_catalogue


@pytest.fixture
def context() -> pd.DataFrame:
    # 4 women (ages 30, 40, 50, 60) and 4 men (same ages); women flagged and acted on more
    customers = pd.DataFrame(
        {"Gender": ["F"] * 4 + ["M"] * 4, "Customer_Age": [30, 40, 50, 60] * 2},
        index=np.arange(10, 18),
    )
    scores = pd.DataFrame(
        {
            "churn_probability": [0.9, 0.8, 0.1, 0.2, 0.7, 0.1, 0.1, 0.1],
            "churn_flag": [1, 1, 0, 0, 1, 0, 0, 0],
        },
        index=customers.index,
    )
    acted = np.array([True, True, False, False, False, False, False, True])
    value = np.array([100.0, 300.0, 0.0, 0.0, 50.0, 0.0, 0.0, 10.0])
    return fairness.action_context(scores, customers, acted, value)


def test_action_rates_by_group_with_their_drivers(context):
    by_gender = fairness.action_rates(context, "Gender")
    assert by_gender.loc["F", "customers"] == 4 and by_gender.loc["F", "action_rate"] == 0.5
    assert by_gender.loc["M", "action_rate"] == 0.25
    assert by_gender.loc["F", "flagged"] == 0.5 and by_gender.loc["M", "flagged"] == 0.25
    assert by_gender.loc["F", "churn_probability"] == pytest.approx(0.5)
    # among flagged customers only: both flagged women acted on, the flagged man not
    assert by_gender.loc["F", "action_rate_flagged"] == 1.0
    assert by_gender.loc["M", "action_rate_flagged"] == 0.0
    assert by_gender.loc["F", "value_at_risk_flagged"] == 200.0
    by_age = fairness.action_rates(context, "age_band")
    assert list(by_age.index) == ["<35", "35-44", "45-54", "55-64"]  # AGE_BINS, left-closed
    assert by_age.loc["<35", "action_rate"] == 0.5


def test_gaps_count_only_groups_big_enough(context):
    by_gender = fairness.action_rates(context, "Gender")
    by_age = fairness.action_rates(context, "age_band")
    gaps = fairness.rate_gaps(by_gender, by_age, min_group=1)
    assert gaps["gender"] == pytest.approx(0.25) and gaps["gender_flagged"] == 1.0
    assert gaps["age_band"] == pytest.approx(0.5)  # <35 and 55-64 at 0.5, 45-54 at 0
    small = fairness.rate_gaps(by_gender, by_age, min_group=5)
    assert np.isnan(small["gender"])  # no group has 5 customers: nothing to compare


def test_the_story_quotes_the_tables(context):
    by_gender = fairness.action_rates(context, "Gender")
    by_age = fairness.action_rates(context, "age_band")
    catalogue = load_catalogue()
    text = fairness.gap_story(by_gender, by_age, catalogue, min_group=1)
    assert "**Gender: a gap of 25.0 percentage points.** F customers" in text
    assert "(50.0% against 25.0%)" in text
    assert "from value at risk" in text  # flagged women hold more value at risk
    read = fairness.rule_columns(catalogue)
    assert catalogue.contact_column in read
    assert ("neither gender nor age" in text) == (not {"Gender", "Customer_Age"} & read)


def test_the_price_of_leaving_protected_columns_out_is_a_paired_difference():
    """`protected_cost` on synthetic customers: the cost is with − without on the same folds,
    inside its interval, over repeats × folds, and both models rank better than chance."""
    from dataclasses import replace

    from nba.config import Settings
    from nba.data import synth
    from nba.data.validate import validate

    train = validate(synth.generate(1500, 11)).clean
    settings = replace(Settings(), cv_folds=3)
    table = fairness.protected_cost(train, settings, ["Gender", "Marital_Status"], repeats=2)
    assert table["metric"].tolist() == ["roc_auc", "pr_auc"]
    assert (table["folds"] == 6).all()
    diff = table["with_protected"] - table["without_protected"]
    assert np.allclose(diff, table["cost"])
    assert ((table["cost_low"] <= table["cost"]) & (table["cost"] <= table["cost_high"])).all()
    assert (
        table.loc[table["metric"] == "roc_auc", ["with_protected", "without_protected"]] > 0.6
    ).all(axis=None)
