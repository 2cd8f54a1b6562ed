"""Adverse impact (nba.fairness.adverse_impact): selection rates by protected group, their ratio
to the most-selected group and the four-fifths rule, checked against a hand computation; and the
alert `nba monitor` raises when a credit action's ratio falls below the level."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nba import fairness, monitor


def _crafted(n_f: int, k_f: int, n_m: int, k_m: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers (gender, age) and scores whose action_1 is the credit action for the first
    k of each gender's n customers, no_action otherwise."""
    gender = ["F"] * n_f + ["M"] * n_m
    chosen = (
        ["credit_limit_increase"] * k_f
        + ["no_action"] * (n_f - k_f)
        + ["credit_limit_increase"] * k_m
        + ["no_action"] * (n_m - k_m)
    )
    customers = pd.DataFrame({"Gender": gender, "Customer_Age": [40] * (n_f + n_m)})
    scores = pd.DataFrame({"action_1": chosen}, index=customers.index)
    return customers, scores


def test_selection_rates_and_ratios_match_a_hand_computation():
    # women: 20 of 100 selected (0.20); men: 50 of 100 (0.50) → ratio 0.20 / 0.50 = 0.4
    customers, scores = _crafted(100, 20, 100, 50)
    table = fairness.adverse_impact(
        fairness.selections(scores, ["credit_limit_increase"]), customers, ["Gender"]
    ).set_index("group")
    assert table.loc["F", "selection_rate"] == pytest.approx(0.20)
    assert table.loc["M", "selection_rate"] == pytest.approx(0.50)
    assert (table["reference"] == "M").all()
    assert table.loc["F", "ratio"] == pytest.approx(0.4)
    assert table.loc["M", "ratio"] == pytest.approx(1.0)
    assert bool(table.loc["F", "adverse"]) and not bool(table.loc["M", "adverse"])
    # Wilson interval for 20 / 100 at 95 %: centre (0.2 + z²/200) / (1 + z²/100)
    z = 1.959963984540054
    centre = (0.2 + z**2 / 200) / (1 + z**2 / 100)
    half = z * math.sqrt(0.2 * 0.8 / 100 + z**2 / 40000) / (1 + z**2 / 100)
    assert table.loc["F", "rate_low"] == pytest.approx(centre - half)
    assert table.loc["F", "rate_high"] == pytest.approx(centre + half)
    # Katz log interval of the ratio: exp(±z sqrt(1/20 - 1/100 + 1/50 - 1/100))
    se = math.sqrt(1 / 20 - 1 / 100 + 1 / 50 - 1 / 100)
    assert table.loc["F", "ratio_low"] == pytest.approx(0.4 * math.exp(-z * se))
    assert table.loc["F", "ratio_high"] == pytest.approx(0.4 * math.exp(z * se))
    summary = fairness.impact_summary(table.reset_index())
    assert summary.iloc[0]["lowest_group"] == "F"
    assert summary.iloc[0]["min_ratio"] == pytest.approx(0.4)
    assert not summary.iloc[0]["passes"]


def test_age_is_cut_into_the_one_set_of_bands_and_small_groups_are_not_compared():
    customers = pd.DataFrame(
        {"Customer_Age": [30] * 40 + [50] * 40 + [70] * 5, "Gender": ["F"] * 85}
    )
    selected = pd.DataFrame(
        {"card_upgrade": [True] * 10 + [False] * 30 + [True] * 20 + [False] * 20 + [True] * 5}
    )
    table = fairness.adverse_impact(selected, customers, ["Customer_Age"]).set_index("group")
    assert list(table.index) == ["<35", "45-54", "65+"]
    assert table.loc["<35", "ratio"] == pytest.approx(0.25 / 0.5)
    # 5 customers aged 65+ all selected: shown (rate 1.0) but neither compared nor the reference
    assert table.loc["65+", "selection_rate"] == 1.0
    assert np.isnan(table.loc["65+", "ratio"])
    assert (table["reference"] == "45-54").all()


@pytest.mark.parametrize(("k_f", "expected"), [(20, "act"), (44, "watch"), (50, "ok")])
def test_monitor_alerts_when_a_credit_action_falls_below_four_fifths(k_f, expected):
    # women selected at k_f %, men at 50 %: ratios 0.40 (act), 0.88 (watch), 1.0 (ok)
    customers, scores = _crafted(100, k_f, 100, 50)
    result = monitor.MonitorResult(items=[], rows_in=200, rows_scored=200, rows_rejected=0)
    monitor.adverse_impact_items(
        result, customers, scores, ["credit_limit_increase"], ["Gender"], monitor.Thresholds()
    )
    (item,) = [i for i in result.items if i["kind"] == "adverse_impact"]
    assert item["status"] == expected
    assert item["value"] == pytest.approx(k_f / 50)
    assert result.status == expected  # "act" makes `nba monitor` exit 1
    if expected == "act":
        assert "F selected at 20.0% vs M at 50.0%" in item["detail"]


def test_a_gap_within_chance_is_watched_not_alerted():
    # 2 of 1,500 women against 3 of 1,400 men: ratio 0.62, below four-fifths, but chance
    customers, scores = _crafted(1500, 2, 1400, 3)
    result = monitor.MonitorResult(items=[], rows_in=2900, rows_scored=2900, rows_rejected=0)
    monitor.adverse_impact_items(
        result, customers, scores, ["credit_limit_increase"], ["Gender"], monitor.Thresholds()
    )
    assert result.items[0]["value"] == pytest.approx((2 / 1500) / (3 / 1400))
    assert result.status == "watch" and "within chance" in result.items[0]["detail"]


def test_the_alert_level_comes_from_the_thresholds():
    customers, scores = _crafted(1000, 440, 1000, 500)  # ratio 0.88, interval below 1
    result = monitor.MonitorResult(items=[], rows_in=200, rows_scored=200, rows_rejected=0)
    stricter = monitor.Thresholds(adverse_impact_watch=0.95, adverse_impact_act=0.9)
    monitor.adverse_impact_items(
        result, customers, scores, ["credit_limit_increase"], ["Gender"], stricter
    )
    assert result.status == "act"


def test_the_shipped_monitor_thresholds_hold_the_four_fifths_rule():
    t = monitor.load_thresholds()
    assert t.adverse_impact_act == 0.8
    assert t.adverse_impact_watch > t.adverse_impact_act


def test_the_model_card_states_the_default_and_the_adverse_impact_as_recorded():
    from nba import report

    metadata = {
        "format_version": 1,
        "created": "2026-12-02T00:00:00+00:00",
        "data": {
            "path": "x.csv",
            "origin": "argument",
            "rows": 10,
            "sha256": "ab",
            "synthetic": False,
        },
        "synthetic": False,
        "libraries": {"nba": "0.1"},
        "metrics": {
            "churn": {"roc_auc": 0.9912, "pr_auc": 0.9601},
            "segments": {"k": 2},
            "fairness": {
                "protected": ["Gender", "Customer_Age"],
                "churn_keeps_protected": True,
                "credit_actions": ["card_upgrade"],
                "credit_churn": {"roc_auc": 0.9903, "pr_auc": 0.9555},
                "four_fifths": 0.8,
                "customers": 1621,
                "adverse_impact": [
                    {
                        "action": "card_upgrade",
                        "attribute": "Gender",
                        "lowest_group": "F",
                        "min_ratio": 0.1234,
                        "passes": False,
                    },
                    {
                        "action": "retention_offer",
                        "attribute": "Gender",
                        "lowest_group": "M",
                        "min_ratio": 0.5,
                        "passes": False,
                    },
                ],
            },
        },
    }
    card = report.model_card(metadata, pd.DataFrame(columns=["segment"]), 0.5)
    assert "## Responsible decisioning" in card
    assert "Protected attributes (params/protected.yaml): Gender, Customer_Age." in card
    assert "`churn_keeps_protected = True`" in card
    assert "ROC-AUC 0.9912 with them, 0.9903 without; PR-AUC 0.9601 with, 0.9555 without" in card
    assert "| card_upgrade | Gender | F | 0.12 | **fails** (significant) |" in card
    assert "| retention_offer |" not in card  # the card's table is the credit actions'


def test_campaign_impact_by_protected_group_matches_a_hand_computation():
    from nba.campaigns.impact import impact_by_group, impact_summary

    # women: 4 treated (3 retained), 2 control (1 retained); men: 2 treated (2), 2 control (0)
    rows = [("F", "treatment", 1)] * 3 + [("F", "treatment", 0)] + [("F", "control", 1)]
    rows += [("F", "control", 0), ("M", "treatment", 1), ("M", "treatment", 1)]
    rows += [("M", "control", 0), ("M", "control", 0)]
    interactions = pd.DataFrame(
        {
            "Gender": [r[0] for r in rows],
            "group": [r[1] for r in rows],
            "retained": [r[2] for r in rows],
            "responded": [1] * len(rows),
            "action": "card_upgrade",
            "segment": 0,
            "value_at_risk": 100.0,
            "cost": 30.0,
        }
    )
    table = impact_by_group(interactions, ["Gender", "Customer_Age"]).set_index("protected_group")
    assert list(table.index) == ["F", "M"]  # Customer_Age absent: left out
    assert table.loc["F", "lift"] == pytest.approx(3 / 4 - 1 / 2)
    assert table.loc["M", "lift"] == pytest.approx(1.0)
    assert table.loc["F", "net_value"] == pytest.approx(75 - 50 - 30)
    summary = impact_summary(interactions, ["c1"], ["Gender"])
    assert [r["protected_group"] for r in summary["protected_groups"]] == ["F", "M"]
