"""Campaign plans, impact, off-policy evaluation and learning, on a small synthetic bundle and the
response simulator of params/world.yaml."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nba import config
from nba.actions import EFFECT_FEATURES, NO_ACTION, parse_catalogue
from nba.bundle import Bundle, load_bundle, save_bundle
from nba.campaigns import ope
from nba.campaigns.history import CUSTOMER_COLUMNS, History
from nba.campaigns.impact import IMPACT_COLUMNS, impact_table
from nba.campaigns.learn import learn, learn_from_history, logged_data
from nba.campaigns.plan import (
    PLAN_COLUMNS,
    PlanOptions,
    make_plan,
    thompson_probabilities,
)
from nba.campaigns.policy import engine_view
from nba.campaigns.simulator import load_world, run_waves, wave_customers
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data.discover import describe, write_synthetic
from nba.data.io import load


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    """A fast bundle on 3,000 synthetic customers (seed 11)."""
    from nba.train import train

    folder = tmp_path_factory.mktemp("campaigns")
    data = write_synthetic(folder / "train.csv", 3000, 11)
    trained, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return trained


@pytest.fixture(scope="module")
def world():
    return load_world()


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return wave_customers(4000, 5)


# -- plans ------------------------------------------------------------------------------------


def test_plan_keeps_the_contract(bundle, customers) -> None:
    plan = make_plan(bundle, customers, PlanOptions(seed=3), campaign_id="c1")
    assert list(plan.columns[: len(PLAN_COLUMNS)]) == list(PLAN_COLUMNS)
    assert len(plan) == len(customers)
    assert set(plan["group"]) == {"treatment", "control"}
    assert set(plan["action"]) <= set(bundle.action_catalogue.ids)
    assert ((plan["propensity"] > 0) & (plan["propensity"] <= 1)).all()
    assert (plan["campaign_id"] == "c1").all()
    # control: exactly round(10 %) of each segment × risk band stratum
    for _, g in plan.groupby(["segment", "risk_band"]):
        assert g["group"].eq("control").sum() == round(0.10 * len(g))
    # exploration: only treatment rows, about 10 % of those with an alternative
    assert plan.loc[plan["explored"] == 1, "group"].eq("treatment").all()
    assert 0.05 < plan["explored"].mean() < 0.12


def test_control_rows_keep_the_policys_action_and_plans_are_deterministic(
    bundle, customers
) -> None:
    plan = make_plan(bundle, customers, PlanOptions(seed=3), campaign_id="c1")
    again = make_plan(bundle, customers, PlanOptions(seed=3), campaign_id="c1")
    pd.testing.assert_frame_equal(plan, again)
    other = make_plan(bundle, customers, PlanOptions(seed=4), campaign_id="c1")
    assert not plan["group"].equals(other["group"])
    greedy = make_plan(bundle, customers, PlanOptions(0.0, 0.0), campaign_id="c1")
    control = plan["group"].eq("control")
    assert plan.loc[control, "action"].equals(greedy.loc[control, "action"])
    not_explored = plan["explored"].eq(0)
    assert plan.loc[not_explored, "action"].equals(greedy.loc[not_explored, "action"])


def test_pure_exploitation_is_the_engines_first_choice(bundle, customers) -> None:
    plan = make_plan(bundle, customers, PlanOptions(control=0.0, explore=0.0), campaign_id="x")
    assert plan["group"].eq("treatment").all()
    assert (plan["propensity"] == 1.0).all()
    assert plan["explored"].eq(0).all()
    scored = bundle.score(customers)
    assert plan["action"].tolist() == scored["action_1"].astype(str).tolist()
    np.testing.assert_allclose(plan["expected_value"], scored["action_1_value"])


def test_budget_caps_the_cost_of_the_exploitation_plan(bundle, customers) -> None:
    full = make_plan(bundle, customers, PlanOptions(control=0.0, explore=0.0))
    spent = full.loc[full["action"].ne(NO_ACTION), "cost"].sum()
    budget = spent / 3
    capped = make_plan(bundle, customers, PlanOptions(control=0.0, explore=0.0, budget=budget))
    treated = capped["action"].ne(NO_ACTION)
    assert 0 < capped.loc[treated, "cost"].sum() <= budget
    assert treated.sum() < full["action"].ne(NO_ACTION).sum()


def test_logged_propensities_are_the_real_frequencies(bundle) -> None:
    """Uniform exploration: over many seeds, each customer's frequency of (group, action)
    matches the propensity logged with it."""
    few = wave_customers(150, 8)
    seen: dict[tuple[int, str, str], int] = {}
    logged: dict[tuple[int, str, str], float] = {}
    seeds = 300
    options = PlanOptions(control=0.2, explore=0.3, method="uniform")
    for s in range(seeds):
        plan = make_plan(bundle, few, replace(options, seed=s), campaign_id="p")
        for c, g, a, p in zip(
            plan["CLIENTNUM"], plan["group"], plan["action"], plan["propensity"], strict=True
        ):
            seen[(c, g, a)] = seen.get((c, g, a), 0) + 1
            assert logged.setdefault((c, g, a), p) == pytest.approx(p)
    keys = list(seen)
    freq = np.array([seen[k] / seeds for k in keys])
    prop = np.array([logged[k] for k in keys])
    se = np.sqrt(prop * (1 - prop) / seeds)
    z = np.abs(freq - prop) / np.maximum(se, 1e-9)
    assert np.mean(z < 3) > 0.99  # 3 standard errors, as a binomial count should
    # and each customer's propensities over what it could receive sum to 1
    total = pd.Series(prop, index=pd.MultiIndex.from_tuples(keys)).groupby(level=0).sum()
    assert np.allclose(total, 1.0)


def test_thompson_probabilities_sum_to_one_over_the_alternatives(bundle, customers) -> None:
    view = engine_view(bundle, customers)
    options = view.allowed.copy()
    options[:, view.j0] = False
    rows = np.flatnonzero(options.any(axis=1))[:300]
    q = thompson_probabilities(bundle, view, rows, options[rows], np.random.default_rng(0))
    assert np.allclose(q.sum(axis=1), 1.0)
    assert (q[options[rows]] > 0).all()  # the uniform floor: every alternative keeps a chance
    assert (q[~options[rows]] == 0).all()


# -- impact ------------------------------------------------------------------------------------


def test_impact_matches_a_hand_computation() -> None:
    rows = [
        # action, group, retained, responded, value at risk, cost
        ("retention_offer", "treatment", 1, 1, 100.0, 60.0),
        ("retention_offer", "treatment", 1, 0, 200.0, 60.0),
        ("retention_offer", "treatment", 0, 0, 300.0, 60.0),
        ("retention_offer", "treatment", 1, 1, 400.0, 60.0),
        ("retention_offer", "control", 1, 0, 100.0, 60.0),
        ("retention_offer", "control", 0, 0, 500.0, 60.0),
        ("retention_offer", "treatment", 0, 1, 900.0, 60.0),  # explored: left out
        ("no_action", "treatment", 1, 0, 100.0, 0.0),  # no action: not in the table
    ]
    frame = pd.DataFrame(
        rows, columns=["action", "group", "retained", "responded", "value_at_risk", "cost"]
    ).assign(explored=[0, 0, 0, 0, 0, 0, 1, 0], segment="0")
    table = impact_table(frame)
    assert list(table.columns) == list(IMPACT_COLUMNS)
    r = table.iloc[0]
    assert r["action"] == "retention_offer" and len(table) == 1
    assert (r["treated"], r["control"]) == (4, 2)
    assert r["retention_treated"] == pytest.approx(0.75)
    assert r["retention_control"] == pytest.approx(0.5)
    assert r["lift"] == pytest.approx(0.25)
    se = math.sqrt(0.75 * 0.25 / 4 + 0.5 * 0.5 / 2)
    assert r["lift_low"] == pytest.approx(0.25 - 1.959964 * se, abs=1e-6)
    assert r["lift_high"] == pytest.approx(0.25 + 1.959964 * se, abs=1e-6)
    assert r["response_rate"] == pytest.approx(0.5)
    # retained × value: treated 100, 200, 0, 400 (mean 175); control 100, 0 (mean 50)
    assert r["net_value"] == pytest.approx(175 - 50 - 60)
    se_v = math.sqrt(np.var([100, 200, 0, 400], ddof=1) / 4 + np.var([100, 0], ddof=1) / 2)
    assert r["net_value_low"] == pytest.approx(65 - 1.959964 * se_v, abs=1e-4)


# -- off-policy evaluation ---------------------------------------------------------------------


def test_ips_and_snips_on_a_textbook_example() -> None:
    # two actions, logging policy uniform (μ = 0.5); the target always plays action 1
    reward = np.array([1.0, 0.0, 3.0, 2.0])
    logged = np.array([1, 0, 1, 0])
    mu = np.full(4, 0.5)
    target = np.ones(4, dtype=int)
    r_hat = np.zeros((4, 2))
    est = ope.estimate(reward, mu, logged, target, r_hat)
    assert est["ips"] == pytest.approx((1 / 0.5 + 3 / 0.5) / 4)  # = 2.0
    assert est["snips"] == pytest.approx((2 + 6) / (2 + 2))  # = 2.0
    assert est["dr"] == pytest.approx(est["ips"])  # a zero reward model: DR = IPS
    r_hat[:, 1] = 2.0  # a perfect-on-average model: DR = 2 + mean of corrections
    est = ope.estimate(reward, mu, logged, target, r_hat)
    assert est["dr"] == pytest.approx(2 + ((1 - 2) / 0.5 + (3 - 2) / 0.5) / 4)
    assert est["matched"] == 2


def test_off_policy_estimates_cover_the_true_value_of_a_known_policy(bundle, world) -> None:
    """Log a campaign with wide uniform exploration; evaluate the oracle's policy and the
    engine's greedy policy off-policy; the simulator knows their true values."""
    customers = wave_customers(6000, 21)
    view = engine_view(bundle, customers)
    plan = make_plan(
        bundle, customers, PlanOptions(control=0.2, explore=0.5, method="uniform", seed=2), "o"
    )
    outcomes = world.respond(plan, view, 9)
    frame = plan.merge(outcomes, on=["CLIENTNUM", "campaign_id"]).join(
        customers.drop(columns=["CLIENTNUM"]).reset_index(drop=True)
    )
    data = logged_data(bundle, frame)
    reward = data.y * data.var - view.cost[data.delivered]
    true_net = world.true_net(view)
    p_stay = 1 - world.baseline_churn(view.p)
    rows = np.arange(len(plan))
    oracle = np.argmax(true_net, axis=1)
    greedy = view.best()
    # a crude reward model for DR: retention of the customer left alone, no effect
    r_hat = np.repeat(((1 - view.p) * view.var)[:, None], len(view.ids), axis=1)
    r_hat -= view.cost[None, :]
    # six 95 % intervals checked at once would miss somewhere one run in four or so by chance
    # alone (any change to the engine reshuffles which): each is widened to the Bonferroni
    # level 1 - 0.05 / 6, so that the joint check itself holds at 95 %
    from scipy.stats import norm

    widen = norm.ppf(1 - 0.05 / 12) / norm.ppf(0.975)
    for target in (oracle, greedy):
        truth = float(np.mean(p_stay * view.var + true_net[rows, target]))
        est = ope.estimate(reward, data.mu, data.delivered, target, r_hat)
        for name in ("ips", "snips", "dr"):
            low, high = est[f"{name}_low"], est[f"{name}_high"]
            centre, half = (low + high) / 2, (high - low) / 2 * widen
            assert centre - half <= truth <= centre + half, (name, est, truth)


# -- learning ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop(bundle, world, tmp_path_factory):
    """Four waves of 5,000 customers through the simulated loop, and a fifth evaluated."""
    path = tmp_path_factory.mktemp("loop") / "history.sqlite"
    with History(path) as history:
        waves, last = run_waves(bundle, world, history, 4, 5000, seed=31)
        frame = history.interactions(with_customers=True)
    return waves, last, frame


def test_the_learner_recovers_the_simulators_true_effects(bundle, world, loop) -> None:
    waves, last, frame = loop
    effects = pd.DataFrame(last.metadata["campaigns"]["effects"]).set_index("action")
    view = engine_view(bundle, frame.loc[:, ["CLIENTNUM", *CUSTOMER_COLUMNS]])
    np.testing.assert_allclose(view.p, frame["churn_probability"])  # the score as logged
    true = world.effects(view)
    allowed = view.allowed
    covered = []
    for a, action in enumerate(view.ids):
        if action == NO_ACTION or effects.loc[action, "outcomes"] < 50:
            continue
        t = float(true[allowed[:, a], a].mean())
        e = effects.loc[action]
        covered.append(e["learned_low"] <= t <= e["learned_high"])
    assert len(covered) >= 5
    assert sum(covered) >= len(covered) - 1, effects  # 95 % intervals: at most one miss


def test_learning_beats_the_first_bundle_and_flags_harm(loop) -> None:
    waves, last, _ = loop
    first, final = waves["ratio"].iloc[0], waves["ratio"].iloc[-1]
    assert final > first + 0.05, waves
    meta = last.metadata["campaigns"]
    assert meta["parent_bundle"]
    assert sum(meta["campaigns"].values()) == meta["outcomes"] == 4 * 5000
    off = meta["off_policy"]
    for key in ("ips", "snips", "dr"):
        assert off["new"][f"{key}_low"] <= off["new"][key] <= off["new"][f"{key}_high"]
    effects = pd.DataFrame(meta["effects"]).set_index("action")
    assert set(effects.columns) >= {"assumed_effect", "learned_effect", "hurts_share"}


def test_a_learnt_bundle_round_trips_and_its_engine_uses_the_learnt_effects(
    bundle, loop, tmp_path, customers
) -> None:
    _, last, _ = loop
    path = save_bundle(last, tmp_path / "learnt.bundle")
    back = load_bundle(path)
    assert back.metadata["campaigns"]["bundle_id"] == back.metadata["bundle_id"]
    learned = back.action_catalogue.learned
    assert learned is not None and learned.caution >= 0
    view = engine_view(back, customers)
    a = next(iter(learned.coef))
    j = view.ids.index(a)
    expected = learned.effect(a, view.z) * view.var - view.cost[j]
    ok = view.allowed[:, j]
    np.testing.assert_allclose(view.net[ok, j], expected[ok], rtol=1e-9, atol=1e-9)
    assert back.score(customers.head(50))["action_1"].notna().all()


def test_learned_effects_must_be_well_formed(bundle) -> None:
    raw = dict(bundle.catalogue)
    raw["learned_effects"] = {"features": list(EFFECT_FEATURES), "actions": {"nope": {}}}
    with pytest.raises(ValueError, match="not a catalogue action"):
        parse_catalogue(raw)
    raw["learned_effects"] = {
        "features": list(EFFECT_FEATURES),
        "actions": {"retention_offer": {"coef": [0.1, 0.2]}},
    }
    with pytest.raises(ValueError, match="wrong shape"):
        parse_catalogue(raw)


def test_without_outcomes_an_action_keeps_the_catalogues_assumption(
    bundle, world, loop, tmp_path
) -> None:
    """Shrinkage: an action nobody received keeps the catalogue's assumed effect (its prior)
    and a wide interval; the outcomes of the loop narrow it."""
    customers = wave_customers(300, 41)
    view = engine_view(bundle, customers)
    plan = make_plan(bundle, customers, PlanOptions(seed=1), "tiny")
    outcomes = world.respond(plan, view, 3)
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(plan.assign(channel="batch"), customers)
        h.record_outcomes(outcomes.head(60))
        result = learn_from_history(bundle, h)
    e = result.effects.set_index("action")
    none = e[e["outcomes"] == 0]
    assert len(none)
    np.testing.assert_allclose(none["learned_effect"], none["assumed_effect"], atol=0.002)
    many = pd.DataFrame(loop[1].metadata["campaigns"]["effects"]).set_index("action")
    width = (e["learned_high"] - e["learned_low"]).loc[none.index]
    width_many = (many["learned_high"] - many["learned_low"]).loc[none.index]
    assert (width_many < width).all()


def test_learning_needs_customer_records(bundle) -> None:
    frame = pd.DataFrame({"Customer_Age": [np.nan]})
    with pytest.raises(ValueError, match="nothing to learn"):
        learn(bundle, frame)


def test_world_file_is_documented_and_differs_from_the_catalogue(bundle, world) -> None:
    text = (config.PARAMS_DIR / "world.yaml").read_text()
    assert "ground truth" in text
    catalogue = bundle.action_catalogue
    differs = [
        a.id
        for a in catalogue.actions
        if a.id in world.save and world.save[a.id]["default"] != a.save_rate["default"]
    ]
    assert len(differs) >= 5
    assert any(v < 0 for h in world.harm.values() for v in h.values())  # an action that hurts


def test_learning_judges_the_engines_as_they_decide(bundle, loop) -> None:
    """The off-policy comparison inside `learn` evaluates the policies the two engines really
    follow: credit actions valued on the blind score, as `engine_view` (the engine) values
    them, customer by customer."""
    _, _, frame = loop
    result = learn(bundle, frame)
    customers = frame.loc[:, ["CLIENTNUM", *CUSTOMER_COLUMNS]]
    old, new = (engine_view(b, customers).best() for b in (bundle, result.bundle))
    credit = np.asarray(bundle.action_catalogue.credit)
    assert credit[new].any()  # the test can fail: the learnt engine picks credit actions
    assert result.off_policy["changed_decisions"] == int((new != old).sum())
