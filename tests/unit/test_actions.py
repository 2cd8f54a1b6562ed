"""nba.actions: catalogue, rules, arbitration, reasons, budget mode and simulation (no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nba import actions
from nba.actions import NO_ACTION, CatalogueError, load_catalogue
from nba.config import Settings
from nba.data import synth
from nba.data.validate import validate

SETTINGS = Settings()
NAMES = np.asarray(
    ["Everyday revolvers", "Light transactors, declining activity", "Light revolvers"]
)


@pytest.fixture(scope="module")
def catalogue() -> actions.Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return validate(synth.generate(2_000, 7)).clean


def make_scores(customers: pd.DataFrame, p: np.ndarray | float | None = None) -> pd.DataFrame:
    """Scores without a model: churn risk rises as 12-month transactions fall (a crude rule the
    real data supports); segment names from a few generated-looking names."""
    if p is None:
        ct = customers["Total_Trans_Ct"].to_numpy(dtype=float)
        p = 1 / (1 + np.exp((ct - 45) / 8))
    p = np.broadcast_to(np.asarray(p, dtype=float), (len(customers),)).copy()
    return pd.DataFrame(
        {
            "CLIENTNUM": customers["CLIENTNUM"].to_numpy(),
            "churn_probability": p,
            "churn_flag": (p >= 0.5).astype(np.int8),
            "segment_name": NAMES[np.arange(len(customers)) % len(NAMES)],
        },
        index=customers.index,
    )


def one_customer(customers: pd.DataFrame, **values: object) -> pd.DataFrame:
    """The first customer with some columns overwritten (identities are not re-derived: the
    rules read each column on its own)."""
    row = customers.iloc[[0]].copy()
    for k, v in values.items():
        row[k] = v
    return row


def status(
    customers: pd.DataFrame, row: pd.DataFrame, action: str, p: float = 0.6
) -> tuple[bool, str]:
    """(allowed, reason) of `action` for one customer, medians from the whole base."""
    table = actions.explain_exclusions(
        make_scores(row, p),
        row,
        load_catalogue(),
        SETTINGS,
        reference=actions.population_medians(customers),
    )
    hit = table[table["action"] == action].iloc[0]
    return bool(hit["allowed"]), str(hit["reason"])


# --- catalogue --------------------------------------------------------------------------------


def test_shipped_catalogue_has_the_actions_an_issuer_runs(catalogue: actions.Catalogue) -> None:
    ids = set(catalogue.ids)
    assert len(catalogue.actions) >= 8
    assert {
        NO_ACTION,
        "retention_offer",
        "credit_limit_increase",
        "card_upgrade",
        "cross_sell",
        "reactivation_cashback",
        "service_recovery_call",
        "instalment_plan",
    } <= ids
    for a in catalogue.actions:
        assert a.rationale and a.channel and a.description
        assert all(0 <= r <= 1 for r in a.save_rate.values())
        assert (a.cost == 0) == (a.id == NO_ACTION)
    assert not catalogue.action("service_recovery_call").marketing
    table = catalogue.table()
    assert list(table["id"]) == catalogue.ids


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _raw() -> dict:
    return yaml.safe_load(
        (Path(actions.__file__).parent / "catalogue.yaml").read_text(encoding="utf-8")
    )


def _set(raw: dict, action: str, field: str, value: object) -> dict:
    for a in raw["actions"]:
        if a["id"] == action:
            if value is None:
                del a[field]
            else:
                a[field] = value
    return raw


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda r: _set(r, "card_upgrade", "save_rate", {"default": 1.5}),
            ["card_upgrade", "save_rate.default"],
        ),
        (lambda r: _set(r, "cross_sell", "cost", None), ["cross_sell", "cost"]),
        (lambda r: _set(r, "cross_sell", "cost", "cheap"), ["cross_sell", "cost"]),
        (
            lambda r: _set(
                r,
                "card_upgrade",
                "eligible_if",
                [{"column": "Card_Colour", "op": "!=", "value": "x", "reason": "r"}],
            ),
            ["card_upgrade", "eligible_if[0].condition[0].column", "Card_Colour"],
        ),
        (
            lambda r: _set(
                r,
                "card_upgrade",
                "eligible_if",
                [{"column": "Card_Category", "op": "!=", "value": "Platinum"}],
            ),
            ["card_upgrade", "eligible_if[0].reason"],
        ),
        (
            lambda r: _set(r, "retention_offer", "save_rate", {"loyal": 0.2, "default": 0.1}),
            ["retention_offer", "save_rate.loyal"],
        ),
        (lambda r: _set(r, "digital_nudge", "marketing", "yes"), ["digital_nudge", "marketing"]),
        (
            lambda r: {**r, "actions": [a for a in r["actions"] if a["id"] != NO_ACTION]},
            ["no_action", "id"],
        ),
    ],
)
def test_bad_catalogue_gives_one_sentence_naming_action_and_field(
    tmp_path: Path, edit, words: list[str]
) -> None:
    path = _write(tmp_path, edit(_raw()))
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_unparseable_catalogue_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("actions: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(path)
    with pytest.raises(CatalogueError, match="cannot be read"):
        load_catalogue(tmp_path / "missing.yaml")


# --- rules ------------------------------------------------------------------------------------


def test_eligibility_upgrade_needs_a_card_below_platinum(customers: pd.DataFrame) -> None:
    spend = 3 * customers["Total_Trans_Amt"].median()  # not a light spender
    base = {"Income_Category": "$80K - $120K", "Total_Trans_Amt": spend}
    allowed, reason = status(
        customers, one_customer(customers, Card_Category="Platinum", **base), "card_upgrade"
    )
    assert not allowed
    assert reason.startswith("eligibility:") and "Platinum" in reason
    allowed, reason = status(
        customers, one_customer(customers, Card_Category="Gold", **base), "card_upgrade"
    )
    assert allowed and reason == ""


def test_eligibility_limit_increase_needs_a_known_income(customers: pd.DataFrame) -> None:
    base = {"Avg_Utilization_Ratio": 0.5, "Months_on_book": 36}
    allowed, reason = status(
        customers,
        one_customer(customers, Income_Category="Unknown", **base),
        "credit_limit_increase",
    )
    assert not allowed and "income band unknown" in reason
    allowed, _ = status(
        customers,
        one_customer(customers, Income_Category="$60K - $80K", **base),
        "credit_limit_increase",
    )
    assert allowed


def test_suitability_no_more_credit_at_high_utilisation_and_low_income(
    customers: pd.DataFrame,
) -> None:
    base = {"Avg_Utilization_Ratio": 0.8, "Months_on_book": 36}
    allowed, reason = status(
        customers,
        one_customer(customers, Income_Category="Less than $40K", **base),
        "credit_limit_increase",
    )
    assert not allowed
    assert reason.startswith("suitability:") and "default risk" in reason
    allowed, _ = status(
        customers,
        one_customer(customers, Income_Category="$60K - $80K", **base),
        "credit_limit_increase",
    )
    assert allowed


def test_contact_policy_suppresses_marketing_but_not_service_recovery(
    customers: pd.DataFrame,
) -> None:
    heavy = one_customer(customers, Contacts_Count_12_mon=5)
    allowed, reason = status(customers, heavy, "retention_offer", p=0.9)
    assert not allowed and reason.startswith("contact policy:")
    assert status(customers, heavy, "service_recovery_call", p=0.9)[0]
    allowed, _ = status(
        customers, one_customer(customers, Contacts_Count_12_mon=4), "retention_offer", p=0.9
    )
    assert allowed


def test_every_exclusion_keeps_its_reason(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    table = actions.explain_exclusions(
        make_scores(customers), customers, catalogue, SETTINGS, which=customers.index[:50]
    )
    assert len(table) == 50 * len(catalogue.actions)
    assert (table.loc[~table["allowed"], "reason"].str.len() > 0).all()
    assert (table.loc[table["allowed"], "reason"] == "").all()
    assert table.loc[table["action"] == NO_ACTION, "allowed"].all()


# --- arbitration ------------------------------------------------------------------------------


def test_top3_sorted_by_value_and_only_allowed_actions(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    scores = make_scores(customers)
    recs = actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    assert recs.index.equals(customers.index)
    ev = actions.evaluate(scores, customers, catalogue, SETTINGS)
    allowed = pd.DataFrame(ev.exclusions.allowed, index=customers.index, columns=catalogue.ids)
    values = recs[["action_1_value", "action_2_value", "action_3_value"]].to_numpy()
    filled = ~np.isnan(values)
    assert filled[:, 0].all()
    assert (np.diff(np.where(filled, values, -1e18), axis=1) <= 1e-9).all()
    for k in (1, 2, 3):
        acts = recs[f"action_{k}"]
        used = acts != ""
        col = np.asarray([catalogue.ids.index(a) for a in acts[used]])
        assert allowed.to_numpy()[np.flatnonzero(used.to_numpy()), col].all()
    # something is recommended on a base with real risk, and every listed action beats nothing
    acted = recs["action_1"] != NO_ACTION
    assert acted.sum() > 50
    assert (recs.loc[acted, "action_1_value"] > 0).all()


def test_reason_quotes_risk_as_shown_evidence_and_the_trait_behind_the_save_rate(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    scores = make_scores(customers)
    recs = actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    acted = recs["action_1"] == "reactivation_cashback"
    assert acted.any()
    i = recs.index[acted.to_numpy()][0]
    reason = recs.at[i, "action_1_reason"]
    ct = int(customers.at[i, "Total_Trans_Ct"])
    p = scores.at[i, "churn_probability"]
    shown = "< 0.1%" if p < 0.001 else "> 99.9%" if p > 0.999 else f"{p:.1%}"
    assert reason.startswith(f"Churn risk {shown};")  # as the card shows it, never "100 %"
    assert f"12-month transactions {ct} (typical" in reason
    # the segment and the action are shown beside the reason: not repeated in it
    assert scores.at[i, "segment_name"] not in reason
    assert catalogue.action("reactivation_cashback").name not in reason
    # which trait set the save rate is said, and the rate quoted is the one used
    ev = actions.evaluate(scores, customers, catalogue, SETTINGS)
    j = catalogue.ids.index("reactivation_cashback")
    row = customers.index.get_loc(i)
    assert f"keep {round(100 * ev.save[row, j])}% " in reason
    a = catalogue.action("reactivation_cashback")
    if np.isclose(ev.save[row, j], a.save_rate["default"]) and not any(
        ev.trait_arrays[t][row] for t in a.suits
    ):
        assert "the catalogue's default rate" in reason
    else:
        assert "the rate for customers with" in reason


def test_no_action_says_why_in_business_words(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    scores = make_scores(customers)
    recs = actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    ev = actions.evaluate(scores, customers, catalogue, SETTINGS)
    none = (recs["action_1"] == NO_ACTION).to_numpy()
    reasons = recs.loc[none, "action_1_reason"]
    assert none.sum() > 20 and reasons.str.startswith("No action: ").all()
    no_value = none & (ev.var <= 0)
    some_value = none & (ev.var > 0)
    assert no_value.any() and some_value.any()
    assert recs.loc[no_value, "action_1_reason"].str.contains("earns less than it costs").all()
    # the best offer named is the one with the highest expected net value, with its cost
    i = int(np.flatnonzero(some_value)[0])
    net = ev.net[i].copy()
    net[catalogue.ids.index(NO_ACTION)] = -np.inf
    best = catalogue.actions[int(np.argmax(net))]
    reason = recs["action_1_reason"].iloc[i]
    assert f"the best offer, {best.name}, would keep an expected" in reason
    cost = f"${best.cost:,.2f}" if best.cost < 10 else f"${best.cost:,.0f}"
    assert f"less than its {cost} cost" in reason
    # after a positive action, a later "no action" slot says nothing further pays
    later = recs["action_2"] == NO_ACTION
    assert recs.loc[later, "action_2_reason"].str.startswith("Nothing further: ").all()


def test_high_risk_minimum_service_policy_is_a_setting(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    scores = make_scores(customers)
    scores["risk_band"] = np.where(scores["churn_probability"] >= 0.5, "high", "low")
    plain = actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    high = scores["risk_band"].eq("high")
    left = high & plain["action_1"].eq(NO_ACTION)
    assert left.sum() > 5  # high-risk customers the engine leaves without action
    floor = SETTINGS.with_overrides(high_risk_minimum_action="digital_nudge")
    ruled = actions.recommend_actions(scores, customers, catalogue, floor)
    allowed = actions.evaluate(scores, customers, catalogue, floor).exclusions.allowed
    ok = allowed[:, catalogue.ids.index("digital_nudge")]
    got = left.to_numpy() & ok
    assert got.sum() > 0
    assert (ruled.loc[got, "action_1"] == "digital_nudge").all()
    assert (ruled.loc[got, "action_2"] == NO_ACTION).all()
    assert ruled.loc[got, "action_1_reason"].str.contains("minimum-service policy").all()
    # everyone else keeps the engine's list
    assert ruled.loc[~got, "action_1"].equals(plain.loc[~got, "action_1"])
    with pytest.raises(ValueError, match="not an action of the catalogue"):
        actions.recommend_actions(
            scores, customers, catalogue, SETTINGS.with_overrides(high_risk_minimum_action="x")
        )


def test_no_action_wins_when_churn_risk_is_zero(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    recs = actions.recommend_actions(make_scores(customers, 1e-6), customers, catalogue, SETTINGS)
    assert (recs["action_1"] == NO_ACTION).all()
    assert (recs["action_1_value"] == 0).all()
    assert (recs["action_2"] == "").all() and recs["action_2_value"].isna().all()


def test_levers_change_the_ranking(customers: pd.DataFrame, catalogue: actions.Catalogue) -> None:
    scores = make_scores(customers)
    before = actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    top = before["action_1"].value_counts().drop(NO_ACTION).index[0]
    muted = actions.recommend_actions(scores, customers, catalogue, SETTINGS, levers={top: 0.0})
    assert not (muted["action_1"] == top).any()
    boosted = actions.recommend_actions(
        scores, customers, catalogue, SETTINGS, levers={"cross_sell": 20.0}
    )
    assert (boosted["action_1"] == "cross_sell").sum() > (before["action_1"] == "cross_sell").sum()
    with pytest.raises(ValueError, match="unknown action"):
        actions.recommend_actions(scores, customers, catalogue, SETTINGS, levers={"bogus": 2.0})


def test_misaligned_inputs_are_refused(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    scores = make_scores(customers).iloc[::-1]
    with pytest.raises(ValueError, match="same index"):
        actions.recommend_actions(scores, customers, catalogue, SETTINGS)
    with pytest.raises(ValueError, match="Card_Category"):
        actions.recommend_actions(
            make_scores(customers), customers.drop(columns="Card_Category"), catalogue, SETTINGS
        )


# --- budget -----------------------------------------------------------------------------------


def test_budget_is_respected_and_value_is_monotone(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    recs = actions.recommend_actions(make_scores(customers), customers, catalogue, SETTINGS)
    cand = actions.budget_candidates(recs, catalogue)
    assert len(cand) > 20 and (cand["value"] > 0).all()
    budgets = np.linspace(0, cand["cost"].sum() * 1.2, 41)
    totals = []
    for b in budgets:
        chosen = actions.allocate_budget(cand, b)
        assert chosen["cost"].sum() <= b + 1e-9
        assert chosen["customer"].is_unique
        totals.append(chosen["value"].sum())
    assert (np.diff(totals) >= -1e-9).all()
    assert totals[0] == 0 and totals[-1] == pytest.approx(cand["value"].sum())
    curve = actions.budget_curve(cand, budgets)
    np.testing.assert_allclose(curve["expected_net_value"], totals)
    assert (curve["spent"] <= curve["budget"] + 1e-9).all()


def test_budget_prefers_value_per_dollar() -> None:
    cand = pd.DataFrame(
        {
            "customer": [1, 2, 3, 3],
            "action": ["a", "b", "c", "d"],
            "value": [100.0, 30.0, 50.0, 10.0],
            "cost": [50.0, 5.0, 10.0, 1.0],
        }
    )
    chosen = actions.allocate_budget(cand, 15.0)
    assert list(chosen["customer"]) == [2, 3]  # 6 $/$ and 5 $/$ before 2 $/$
    assert list(chosen["action"]) == ["b", "c"]  # one action per customer: its best value


# --- simulation -------------------------------------------------------------------------------


def test_simulation_beats_no_action_on_a_base_with_risk(
    customers: pd.DataFrame, catalogue: actions.Catalogue
) -> None:
    sim = actions.simulate(make_scores(customers), customers, catalogue, SETTINGS, seed=3)
    summary = sim["summary"]
    assert summary["expected_net_value"].iloc[0] > 0
    assert summary.loc["no action", "expected_net_value"] == 0
    assert sim["uplift"]["net_value_uplift_vs_no_action"] > 0
    assert sim["uplift"]["net_value_uplift_vs_random_action"] > 0
    assert sim["by_segment"].to_numpy().sum() == len(customers)
    assert set(sim["by_segment"].index) == set(NAMES)
    assert sim["no_action"] == int(sim["by_segment"][NO_ACTION].sum())
    assert set(sim["by_gender"].index) == {"F", "M"}
    assert sim["by_age_band"]["customers"].sum() == len(customers)
    again = actions.simulate(make_scores(customers), customers, catalogue, SETTINGS, seed=3)
    pd.testing.assert_frame_equal(summary, again["summary"])


def test_top_order_is_the_stable_sort_of_net_value():
    from nba.actions import _top_order

    rng = np.random.default_rng(4)
    net = rng.choice([-np.inf, np.nan, 0.0, 1.0, 2.5, -3.0, 7.0], size=(500, 9))
    for top in (1, 3, 9):
        want = np.argsort(-net, axis=1, kind="stable")[:, :top]
        np.testing.assert_array_equal(_top_order(net, top), want)


# ---------------------------------------------------------------------------------------------
# Reason texts: the table-based formatting equals formatting every value one by one
# ---------------------------------------------------------------------------------------------


def _awkward_amounts(rng: np.random.Generator) -> np.ndarray:
    """Amounts that make rounding hard: ties at the cent and the tenth, float products that
    land beside a tie, negative zero, tiny and huge values, missing and infinite ones."""
    cents = rng.integers(-(10**7), 10**7, 5000)
    ties = (cents + 0.5) / 100  # x.xx5: a tie in decimal, not in binary
    near = np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)
    tenths = (rng.integers(0, 1000, 2000) + 0.5) / 1000  # probabilities on a tenth-% tie
    special = [0.0, -0.0, 1e-9, -1e-9, 0.005, -0.005, 0.015, 2.675, 1e7, -1e7, 1e12, np.nan]
    return np.concatenate(
        [ties, *near, tenths, rng.normal(0, 500, 5000), rng.uniform(0, 1, 5000), special]
    )


def test_money_texts_equal_formatting_each_amount() -> None:
    rng = np.random.default_rng(3)
    x = _awkward_amounts(rng)
    c = np.nan_to_num(x)  # what the cents text formats (a missing amount reads $0.00)
    want = [f"-${-v:,.2f}" if v < 0 else f"${v:,.2f}" for v in c.tolist()]
    assert actions._money_text(x, cents=True).to_pylist() == want
    whole = np.nan_to_num(np.rint(x), nan=0.0, posinf=0.0, neginf=0.0).astype(np.int64)
    want = [f"-${-v:,}" if v < 0 else f"${v:,}" for v in whole.tolist()]
    assert actions._money_text(x).to_pylist() == want


def test_percent_texts_equal_formatting_each_probability() -> None:
    rng = np.random.default_rng(4)
    p = np.concatenate(
        [
            _awkward_amounts(rng),
            np.arange(0, 100_001) / 100_000,  # every thousandth of a percent, ties included
            [0.0009999, 0.001, 0.999, 0.9990001, 1.0, np.inf, -np.inf],
        ]
    )

    def one(v: float) -> str:
        if v < 0.001:
            return "< 0.1%"
        if v > 0.999:
            return "> 99.9%"
        return "%.1f%%" % (min(max(v, 0.001), 0.999) * 100)

    assert actions.percent_text(p).to_pylist() == [one(v) for v in p.tolist()]


def test_isclose_equals_numpy_isclose() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(0, 1, 1000), [0.15, 0.15 + 1e-7, 0.1500016, np.nan, np.inf]])
    for y in (0.15, 0.0, 1e-9, np.inf, np.nan, -0.3):
        assert np.array_equal(actions._isclose(x, y), np.isclose(x, y)), y


def test_reasons_built_in_blocks_equal_reasons_built_at_once(monkeypatch) -> None:
    """A big batch builds its reasons block by block (one arrow chunk each): same texts."""
    customers = validate(synth.generate(400, 23)).clean
    catalogue = load_catalogue()
    rng = np.random.default_rng(23)
    scores = pd.DataFrame(
        {"churn_probability": rng.uniform(0, 1, len(customers))}, index=customers.index
    )
    scores["risk_band"] = np.where(scores["churn_probability"] > 0.5, "high", "low")
    settings = Settings(high_risk_minimum_action="digital_nudge")
    at_once = actions.recommend_actions(scores, customers, catalogue, settings)
    monkeypatch.setattr(actions, "REASON_BLOCK", 37)
    in_blocks = actions.recommend_actions(scores, customers, catalogue, settings)
    assert in_blocks["action_1_reason"].array._pa_array.num_chunks == 11  # 400 rows / 37
    assert in_blocks["action_1"].nunique() > 2
    pd.testing.assert_frame_equal(in_blocks, at_once, check_exact=True)


def test_reasons_of_a_mixed_batch_equal_each_customers_reasons_alone() -> None:
    """Reasons are built piece by piece for all customers of a slot at once (whatever action
    each was chosen): each customer's texts equal those built for that customer alone, where
    only its own action's pieces exist (credit and plain offers, evidence of every format,
    traits, no action, the minimum-service note)."""
    customers = validate(synth.generate(120, 31)).clean
    catalogue = load_catalogue()
    rng = np.random.default_rng(31)
    p = rng.choice([0.0004, 0.2, 0.45, 0.7, 0.93, 0.9996], len(customers))
    scores = pd.DataFrame({"churn_probability": p}, index=customers.index)
    scores["risk_band"] = np.where(p > 0.5, "high", "low")
    scores[actions.CREDIT_SCORE] = np.clip(p * 0.8 + 0.05, 0, 1)
    settings = Settings(high_risk_minimum_action="digital_nudge")
    reference = actions.population_medians(customers)
    together = actions.recommend_actions(
        scores, customers, catalogue, settings, reference=reference
    )
    assert together["action_1"].nunique() > 3  # several offers share each slot
    assert together["action_1_reason"].str.contains("minimum-service").any()
    assert together["action_1_reason"].str.startswith("No action").any()
    alone = pd.concat(
        [
            actions.recommend_actions(
                scores.iloc[[i]], customers.iloc[[i]], catalogue, settings, reference=reference
            )
            for i in range(len(customers))
        ]
    )
    pd.testing.assert_frame_equal(together, alone, check_exact=True)
    # and the sentences keep their exact wording (both sides above share the code)
    reasons = pd.concat([together[f"action_{k}_reason"] for k in (1, 2, 3)])
    offer = (
        r"Churn risk (\(credit score, no protected attributes\) )?([<>] )?\d+\.\d%"
        r"(; [a-z0-9 -]+ \$?\d+%? \(typical \$?\d+%?\))?\. "
        r"Assumed to keep \d+% of would-be leavers \((the rate for customers with [a-z ]+|"
        r"the catalogue's default rate)\) of \$[\d,]+ at risk: expected net -?\$[\d,]+\."
        r"( Given by the high-risk minimum-service policy \(setting high_risk_minimum_action\)\.)?"
    )
    nothing = (
        r"(No action|Nothing further): the best (other )?offer, [^,]+, would keep an expected "
        r"\$[\d,.]+ of the \$[\d,]+ at risk, less than its \$[\d,.]+ cost\."
    )
    said = reasons[reasons.ne("") & ~reasons.str.contains("ruled out|no value at risk")]
    assert said.str.fullmatch(f"{offer}|{nothing}").all(), (
        said[~said.str.fullmatch(f"{offer}|{nothing}")].head(3).tolist()
    )
    assert said.str.fullmatch(nothing).any() and said.str.fullmatch(offer).any()
