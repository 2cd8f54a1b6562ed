"""nba.economics: the plan's figures, its no-action reasons and its sensitivity to assumptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from nba import actions, economics, plots
from nba.actions import NO_ACTION
from nba.config import Settings
from nba.data import synth
from nba.data.validate import validate

SETTINGS = Settings()


@pytest.fixture(scope="module")
def catalogue() -> actions.Catalogue:
    return actions.load_catalogue()


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return validate(synth.generate(1_500, 5)).clean


@pytest.fixture(scope="module")
def scores(customers: pd.DataFrame) -> pd.DataFrame:
    """Scores without a model: risk rises as 12-month transactions fall; three risk bands."""
    ct = customers["Total_Trans_Ct"].to_numpy(dtype=float)
    p = 1 / (1 + np.exp((ct - 45) / 8))
    return pd.DataFrame(
        {
            "churn_probability": p,
            "churn_flag": (p >= 0.5).astype(np.int8),
            "risk_band": np.where(p >= 0.5, "high", np.where(p >= 0.2, "medium", "low")),
            "segment_name": np.array(["Quiet", "Busy", "Revolving"])[np.arange(len(p)) % 3],
        },
        index=customers.index,
    )


def test_plan_outcome_agrees_with_the_engines_simulation(scores, customers, catalogue):
    out = economics.plan_outcome(scores, customers, catalogue, SETTINGS)
    engine = actions.simulate(scores, customers, catalogue, SETTINGS, seed=1)["summary"].iloc[0]
    assert out["expected_net_value"] == pytest.approx(engine["expected_net_value"])
    assert out["customers_contacted"] == engine["customers_contacted"]
    assert out["cost"] == pytest.approx(engine["cost"])
    assert out["expected_saved_value"] == pytest.approx(engine["expected_saved_value"])
    # the per-customer and per-save figures are the totals divided, not new estimates
    assert out["net_value_per_customer"] == pytest.approx(out["expected_net_value"] / 1_500)
    assert out["cost_per_expected_save"] == pytest.approx(out["cost"] / out["expected_saves"])
    assert 0 < out["expected_saves"] < out["customers_contacted"]
    # what would leave, valued: Σ P(churn) × value at risk, above what the plan keeps
    ev = actions.evaluate(scores, customers, catalogue, SETTINGS)
    assert out["value_expected_to_leave"] == pytest.approx(float((ev.p * ev.var).sum()))
    assert out["expected_saved_value"] < out["value_expected_to_leave"]


def test_high_risk_without_action_by_reason_adds_up(scores, customers, catalogue):
    table = economics.high_risk_without_action(scores, customers, catalogue, SETTINGS)
    assert list(table.index) == list(economics.NO_ACTION_REASONS)
    recs = actions.recommend_actions(scores, customers, catalogue, SETTINGS, top=1)
    high = scores["risk_band"].eq("high")
    left = int((high & recs["action_1"].eq(NO_ACTION)).sum())
    assert table["customers"].sum() == left > 0
    assert table.loc["no_value", "customers"] > 0
    assert table.loc["no_value", "median_value_at_risk"] == 0
    assert table["share_of_high_risk"].sum() == pytest.approx(left / high.sum())


def test_no_action_reasons_read_the_engines_arrays(scores, customers, catalogue):
    ev = actions.evaluate(scores, customers, catalogue, SETTINGS)
    everyone = np.ones(len(customers), dtype=bool)
    code = economics.no_action_reasons(ev, everyone)
    real = np.asarray(ev.ids) != NO_ACTION
    ruled = ~ev.exclusions.allowed[:, real].any(axis=1)
    assert (code[ruled] == "ruled_out").all()
    assert (code[~ruled & (ev.var <= 0)] == "no_value").all()
    assert (code[~ruled & (ev.var > 0)] == "below_cost").all()
    assert (economics.no_action_reasons(ev, ~everyone) == "").all()


def test_contact_policy_rules_out_every_marketing_offer(customers, catalogue):
    # five contacts suppress marketing; with every service action excluded too, nothing is left
    row = customers.iloc[[0]].copy()
    row["Contacts_Count_12_mon"] = 6
    service = [a for a in catalogue.actions if not a.marketing and a.id != NO_ACTION]
    never = actions.Rule((actions.Condition("churn_probability", "<", -1.0),), "never")
    shut = tuple(
        a if a.marketing or a.id == NO_ACTION else _replace(a, eligible_if=(never,))
        for a in catalogue.actions
    )
    assert service, "the shipped catalogue has a service action"
    closed = _replace(catalogue, actions=shut)
    scores = pd.DataFrame({"churn_probability": [0.9], "risk_band": ["high"]}, index=row.index)
    table = economics.high_risk_without_action(scores, row, closed, SETTINGS)
    assert table.loc["ruled_out", "customers"] == 1 and table["customers"].sum() == 1


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


def test_minimum_service_policy_leaves_no_allowed_high_risk_customer_out(
    scores, customers, catalogue
):
    plain = economics.high_risk_without_action(scores, customers, catalogue, SETTINGS)
    floor = SETTINGS.with_overrides(high_risk_minimum_action="service_recovery_call")
    policed = economics.high_risk_without_action(scores, customers, catalogue, floor)
    assert policed["customers"].sum() < plain["customers"].sum()


def test_scaled_save_rates_are_capped_probabilities(catalogue):
    half = economics.scaled_save_rates(catalogue, 0.5)
    lots = economics.scaled_save_rates(catalogue, 10.0)
    for a, h, big in zip(catalogue.actions, half.actions, lots.actions, strict=True):
        assert h.save_rate == pytest.approx({t: r / 2 for t, r in a.save_rate.items()})
        assert all(0 <= r <= 1 for r in big.save_rate.values())
        assert h.cost == a.cost and h.eligible_if == a.eligible_if
    assert max(r for a in lots.actions for r in a.save_rate.values()) == 1.0
    with pytest.raises(ValueError, match="factor"):
        economics.scaled_save_rates(catalogue, -1)


def test_sensitivity_moves_one_assumption_at_a_time(scores, customers, catalogue):
    frame = economics.sensitivity(scores, customers, catalogue, SETTINGS, change=0.5)
    assert len(frame) == 1 + 2 * len(economics.SENSITIVITY_PARAMETERS)
    base = frame.iloc[0]
    assert base["case"] == "base"
    assert base["expected_net_value"] == pytest.approx(
        economics.plan_outcome(scores, customers, catalogue, SETTINGS)["expected_net_value"]
    )
    by = frame.set_index(["parameter", "case"])
    assert by.loc[("servicing_cost", "low"), "value"] == pytest.approx(20.0)
    assert by.loc[("servicing_cost", "high"), "value"] == pytest.approx(60.0)
    # a dearer customer to serve is worth less: less net value, fewer contacts
    assert by.loc[("servicing_cost", "high"), "expected_net_value"] < base["expected_net_value"]
    assert by.loc[("servicing_cost", "low"), "expected_net_value"] > base["expected_net_value"]
    assert (
        by.loc[("servicing_cost", "high"), "high_risk_without_action"]
        >= base["high_risk_without_action"]
    )
    # higher save rates: more value, and each save costs less
    assert by.loc[("save_rates", "high"), "expected_net_value"] > base["expected_net_value"]
    assert by.loc[("save_rates", "high"), "cost_per_expected_save"] < base["cost_per_expected_save"]
    # the scores are re-used: who is at high risk never changes
    assert (frame["high_risk"] == base["high_risk"]).all()
    with pytest.raises(ValueError, match="change"):
        economics.sensitivity(scores, customers, catalogue, SETTINGS, change=1.5)


def test_tornado_table_sorts_by_swing_and_draws(scores, customers, catalogue):
    frame = economics.sensitivity(scores, customers, catalogue, SETTINGS)
    tables = {
        label: economics.tornado_table(frame, key) for key, label in economics.OUTCOMES.items()
    }
    net = tables[economics.OUTCOMES["expected_net_value"]]
    assert set(net.index) == set(economics.SENSITIVITY_PARAMETERS)
    assert net["swing"].is_monotonic_decreasing
    assert net["swing"].iloc[0] == pytest.approx(abs(net["high"] - net["low"]).max())
    fig = plots.sensitivity_tornado(tables, 0.5)
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(tables)
    for ax in visible:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert len(ax.patches) == 2 * len(net)


def test_pre_decline_value_never_lowers_the_value_at_risk(scores, customers, catalogue):
    plans, segments = economics.value_basis_comparison(scores, customers, catalogue, SETTINGS)
    assert list(plans.index) == ["current", "pre_decline"]
    current = actions.value_at_risk(customers, SETTINGS)
    before = actions.value_at_risk(customers, SETTINGS.with_overrides(value_basis="pre_decline"))
    assert (before >= current - 1e-9).all() and (before > current).any()
    assert (
        plans.loc["pre_decline", "value_expected_to_leave"]
        > plans.loc["current", "value_expected_to_leave"]
    )
    assert plans.loc["current", "expected_net_value"] == pytest.approx(
        economics.plan_outcome(scores, customers, catalogue, SETTINGS)["expected_net_value"]
    )
    assert set(segments["value_basis"]) == {"current", "pre_decline"}
    assert segments.groupby("value_basis")["customers"].sum().eq(len(customers)).all()


def test_scores_without_a_risk_band_are_refused(scores, customers, catalogue):
    with pytest.raises(ValueError, match="risk_band"):
        economics.plan_outcome(scores.drop(columns="risk_band"), customers, catalogue, SETTINGS)


def test_sensitivity_story_reads_the_widest_swing_and_the_sign() -> None:
    net = pd.DataFrame(
        {
            "label": ["Save rates", "Servicing cost ($ a year)"],
            "base": [100.0, 100.0],
            "low": [40.0, 120.0],
            "high": [160.0, 90.0],
            "low_value": [0.5, 20.0],
            "high_value": [1.5, 60.0],
        }
    )
    left = pd.DataFrame(
        {
            "label": ["Interchange (share of spend)"],
            "base": [9.0],
            "low": [12.0],
            "high": [3.0],
            "low_value": [0.009],
            "high_value": [0.027],
        }
    )
    tornado = {
        economics.OUTCOMES["expected_net_value"]: net,
        economics.OUTCOMES["high_risk_without_action"]: left,
    }
    text = economics.sensitivity_story(tornado, 0.5)
    assert "one assumption 50% lower" in text
    assert (
        "moves most with **save rates**: \\$40 to \\$160. Servicing cost (\\$ a year) \\$120 to"
    ) in text
    assert "stays positive in every case" in text
    assert "(9) move most with interchange (share of spend): 12 at" in text
    net.loc[0, "low"] = -5.0
    assert "is not positive" in economics.sensitivity_story(tornado, 0.5)
