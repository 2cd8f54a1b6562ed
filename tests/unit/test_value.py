"""nba.value: the customer-value proxy, what churn costs, and the success criteria."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from nba.config import Settings
from nba.value import (
    ASSUMPTIONS,
    DESIGN,
    HELD_OUT,
    OUTCOME,
    SIMULATION,
    annual_fee,
    check_criteria,
    customer_value,
    pre_decline_spend,
    success_criteria,
    value_assumptions,
    value_at_stake,
    value_components,
)


@pytest.fixture
def customers() -> pd.DataFrame:
    """One customer per card tier, with round amounts so the formula can be done by hand."""
    return pd.DataFrame(
        {
            "Card_Category": ["Blue", "Silver", "Gold", "Platinum"],
            "Total_Trans_Amt": [1000, 2000, 0, 5000],
            "Total_Revolving_Bal": [500, 0, 1000, 2000],
            "churn": [1, 0, 0, 1],
        }
    )


def test_customer_value_is_the_documented_formula(customers):
    # 0.018 × spend + 0.12 × balance + fee(tier) − 40, with the default assumptions
    expected = [
        18 + 60 + 0 - 40,  # Blue
        36 + 0 + 59 - 40,  # Silver
        0 + 120 + 99 - 40,  # Gold
        90 + 240 + 199 - 40,  # Platinum
    ]
    got = customer_value(customers, Settings())
    assert got.tolist() == pytest.approx(expected)
    assert got.name == "customer_value"
    assert got.index.equals(customers.index)


def test_customer_value_follows_the_settings(customers):
    settings = Settings(
        interchange_rate=0.02,
        interest_margin=0.1,
        annual_fee_blue=10.0,
        annual_fee_silver=20.0,
        annual_fee_gold=30.0,
        annual_fee_platinum=40.0,
        servicing_cost=5.0,
    )
    expected = [20 + 50 + 10 - 5, 40 + 0 + 20 - 5, 0 + 100 + 30 - 5, 100 + 200 + 40 - 5]
    assert customer_value(customers, settings).tolist() == pytest.approx(expected)


def test_annual_fee_by_card_tier():
    cards = pd.Series(["Platinum", "Blue", "Gold", "Silver", "Blue"])
    assert annual_fee(cards, Settings()).tolist() == [199.0, 0.0, 99.0, 59.0, 0.0]


def test_annual_fee_rejects_an_unknown_tier():
    with pytest.raises(ValueError, match="Diamond"):
        annual_fee(pd.Series(["Blue", "Diamond"]), Settings())


def test_components_add_up_to_the_value(customers):
    settings = Settings()
    parts = value_components(customers, settings)
    assert list(parts.columns) == ["interchange", "interest", "annual_fee", "servicing_cost"]
    assert (parts["servicing_cost"] == -settings.servicing_cost).all()
    assert parts.sum(axis=1).tolist() == pytest.approx(customer_value(customers, settings).tolist())


def test_value_at_stake_sums_the_churners_over_the_horizon(customers):
    stake = value_at_stake(customers, Settings(value_horizon_years=2.0))
    churner_year = 38 + 489  # the Blue and the Platinum customer left
    total_year = 38 + 55 + 179 + 489
    assert stake["customers"] == 4 and stake["churners"] == 2
    assert stake["churn_rate"] == pytest.approx(0.5)
    assert stake["churner_value_year"] == pytest.approx(churner_year)
    assert stake["portfolio_value_year"] == pytest.approx(total_year)
    assert stake["share_of_value_lost"] == pytest.approx(churner_year / total_year)
    assert stake["value_lost_horizon"] == pytest.approx(churner_year * 2)
    assert stake["value_per_lost_customer_horizon"] == pytest.approx(churner_year * 2 / 2)
    assert stake["value_per_existing_year"] == pytest.approx((55 + 179) / 2)


def test_value_at_stake_without_churners_has_no_loss(customers):
    stake = value_at_stake(customers.assign(churn=0), Settings())
    assert stake["churners"] == 0 and stake["churner_value_year"] == 0
    assert math.isnan(stake["value_per_lost_customer_horizon"])


def test_pre_decline_spend_undoes_a_decline_on_a_straight_line():
    # quarters on a straight line from q1 to r·q1 add up to 2·q1·(1 + r); a year at q1's pace
    # is 4·q1. r = 0.5, q1 = 100: quarters 100, 83.3, 66.7, 50 → 300 a year, 400 before
    assert pre_decline_spend([300.0], [0.5]).tolist() == pytest.approx([400.0])
    # growth (r ≥ 1) is kept as it is, spend that stopped (r = 0) at most doubles
    assert pre_decline_spend([300.0, 300.0, 300.0], [1.0, 1.7, 0.0]).tolist() == [300, 300, 600]


def test_pre_decline_basis_raises_the_interchange_of_declining_customers(customers):
    declining = customers.assign(Total_Amt_Chng_Q4_Q1=[0.5, 1.2, 0.0, 1.0])
    current = customer_value(declining, Settings())
    before = customer_value(declining, Settings(value_basis="pre_decline"))
    # only the Blue customer (r = 0.5: spend 1000 → 1333.3) and the Gold (no spend) declined
    assert (before - current).tolist() == pytest.approx([0.018 * 1000 / 3, 0, 0, 0])
    parts = value_components(declining, Settings(value_basis="pre_decline"))
    assert parts.sum(axis=1).tolist() == pytest.approx(before.tolist())
    stake = value_at_stake(declining, Settings(value_basis="pre_decline"))
    assert stake["value_basis"] == "pre_decline"
    assert stake["churner_value_year"] == pytest.approx(before[declining.churn == 1].sum())


def test_value_basis_is_checked_and_needs_its_column(customers):
    with pytest.raises(ValueError, match="value_basis 'peak' is not one of current, pre_decline"):
        customer_value(customers, Settings(value_basis="peak"))
    with pytest.raises(ValueError, match="Total_Amt_Chng_Q4_Q1"):
        customer_value(customers, Settings(value_basis="pre_decline"))
    assert value_at_stake(customers, Settings())["value_basis"] == "current"


def test_value_assumptions_show_the_runs_values_and_the_files_rationale(tmp_path: Path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "# header comment\n"
        "interchange_rate: 0.018  # issuer's share of card spend\n"
        "                         # (continued on a second line)\n"
        "servicing_cost: 40.0     # statements and calls\n",
        encoding="utf-8",
    )
    table = value_assumptions(Settings(interchange_rate=0.03), params)
    assert table["setting"].tolist() == list(ASSUMPTIONS)
    row = table.set_index("setting").loc["interchange_rate"]
    assert row["value"] == 0.03  # the run's value, not the file's
    assert row["rationale"] == "issuer's share of card spend (continued on a second line)"
    assert table.set_index("setting").loc["interest_margin", "rationale"] == ""


def test_value_assumptions_read_the_projects_params_file():
    table = value_assumptions(Settings()).set_index("setting")
    assert (table["rationale"].str.len() > 0).all()


EXPECTED_TARGETS = {
    # stage 1 restated (issue 12): ahead of default learners on the same split, calibrated
    ("churn", "pr_auc_lead_vs_lightgbm"): (">", 0),
    ("churn", "pr_auc_lead_vs_hist_gradient_boosting"): (">", 0),
    ("churn", "f1_lead_vs_lightgbm"): (">", 0),
    ("churn", "f1_lead_vs_hist_gradient_boosting"): (">", 0),
    ("churn", "ece"): ("<=", 0.01),
    ("segments", "silhouette_test"): (">=", 0.50),
    ("segments", "k"): (">=", 4),
    ("segments", "stability_ari_test"): (">=", 0.95),
    ("segments", "churn_ratio_high_low"): (">=", 8),
    ("actions", "net_value_uplift_vs_no_action"): (">", 0),
    ("actions", "net_value_uplift_vs_churn_score_one_offer"): (">", 0),
    ("actions", "net_value_uplift_vs_random_action"): (">", 0),
}


def test_success_criteria_hold_the_agreed_targets():
    table = success_criteria()
    assert {"stage", "metric", "target", "comparison", "source"} <= set(table.columns)
    got = {(r.stage, r.metric): (r.comparison, r.target) for r in table.itertuples(index=False)}
    assert got == EXPECTED_TARGETS
    assert table["source"].str.len().gt(0).all()
    assert table["target"].dtype == float


def test_every_criterion_says_what_it_rests_on_and_where_it_is_measured():
    table = success_criteria().set_index(["stage", "metric"])
    basis = table["basis"]
    # the churn and segment figures are measured on held-out customers, where they can fail
    assert (basis.loc["churn"] == HELD_OUT).all()
    assert basis.loc[("segments", "churn_ratio_high_low")] == HELD_OUT
    assert basis.loc[("segments", "silhouette_test")] == HELD_OUT
    # the engine against baselines scored with the same formula cannot fail: a simulation
    assert (basis.loc["actions"] == SIMULATION).all()
    assert basis.loc[("segments", "k")] == DESIGN  # the selection demands it
    assert table["evaluated_on"].str.len().gt(0).all()
    assert table.loc[basis == HELD_OUT, "evaluated_on"].str.contains("held-out").all()
    assert table.loc[basis.isin([SIMULATION, DESIGN]), "note"].str.len().gt(0).all()


def test_check_criteria_marks_met_not_met_and_not_measured():
    measured = {
        "churn": {
            "ece": 0.01,
            "pr_auc_lead_vs_lightgbm": -0.001,
            "f1_lead_vs_lightgbm": float("nan"),
        },
        "segments": {"k": 5, "churn_ratio_high_low": 9.0},
        "actions": {"net_value_uplift_vs_no_action": 0.0},
    }
    table = check_criteria(measured).set_index(["stage", "metric"])
    assert table.loc[("churn", "ece"), "status"] == "met"  # <= includes the target
    assert table.loc[("churn", "pr_auc_lead_vs_lightgbm"), "status"] == "not met"
    # NaN is not a measurement
    assert table.loc[("churn", "f1_lead_vs_lightgbm"), "status"] == "not measured"
    assert table.loc[("churn", "f1_lead_vs_hist_gradient_boosting"), "status"] == "not measured"
    assert table.loc[("segments", "churn_ratio_high_low"), "status"] == "met"
    # true by construction: holds, but is not a finding
    assert table.loc[("segments", "k"), "status"] == "by design"
    assert table.loc[("segments", "k"), "holds"] and not table.loc[("segments", "k"), "met"]
    assert table.loc[("actions", "net_value_uplift_vs_no_action"), "status"] == (
        "fails in simulation"  # > 0
    )
    assert table["met"].sum() == 2
    assert table["holds"].sum() == 3


def test_a_simulated_criterion_is_never_met_until_outcomes_are_measured():
    uplift = {"net_value_uplift_vs_no_action": 5_000.0, "net_value_uplift_vs_random_action": 1.0}
    simulated = check_criteria({"actions": uplift}).set_index("metric").loc[list(uplift)]
    assert (simulated.status == "holds in simulation").all()
    assert simulated.holds.all() and not simulated.met.any()
    assert (simulated.basis == SIMULATION).all()
    # outcomes of a campaign with a control group replace the simulation, and can fail
    outcomes = {"actions": {"net_value_uplift_vs_no_action": -200.0}}
    where = {"actions": "1,200 customers of campaign c1"}
    table = check_criteria({"actions": uplift}, outcomes=outcomes, evaluated_on=where)
    row = table.set_index("metric").loc["net_value_uplift_vs_no_action"]
    assert (row.basis, row.measured, row.status) == (OUTCOME, -200.0, "not met")
    assert row.evaluated_on == "1,200 customers of campaign c1"
    other = table.set_index("metric").loc["net_value_uplift_vs_random_action"]
    assert other.status == "holds in simulation" and other.evaluated_on == where["actions"]
