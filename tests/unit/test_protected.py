"""Protected attributes kept out of credit decisions: the params file, the catalogue's refusal of
a credit-action rule on a protected attribute, the blind score credit actions use, and
counterfactual invariance of a trained bundle (change every customer's protected attributes:
every credit action's eligibility and expected value stay identical, customer by customer)."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from nba.actions import CatalogueError, evaluate, load_catalogue, parse_catalogue
from nba.bundle import load_bundle, save_bundle
from nba.churn import TrainOptions
from nba.config import DEFAULT_PROTECTED, Settings, protected_attributes
from nba.data import synth
from nba.data.discover import describe, write_synthetic
from nba.data.validate import validate
from nba.fairness import counterfactual, credit_decisions
from nba.train import train

CREDIT = ["credit_limit_increase", "card_upgrade", "instalment_plan"]
#: Words a reason would use to quote a protected attribute.
QUOTES = re.compile(
    r"gender|\bsex\b|female|\bmale\b|\bage\b|aged|years old|customer_age|marital|married|"
    r"single|divorced|dependant|dependent",
    re.IGNORECASE,
)


def _raw() -> dict:
    text = resources.files("nba").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def test_the_params_file_lists_the_four_attributes_each_with_its_rationale():
    listed = protected_attributes()
    assert tuple(listed) == DEFAULT_PROTECTED
    assert "ECOA" in listed["Gender"] and "Regulation B" in listed["Marital_Status"]
    assert all(len(why) > 40 for why in listed.values())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("protected:\n  Favourite_Colour: taste\n", "'Favourite_Colour' is not a customer column"),
        ("protected:\n  Gender: ''\n", "'Gender' has no rationale"),
        ("- Gender\n", "needs a mapping 'protected'"),
    ],
)
def test_a_bad_protected_file_is_one_sentence(tmp_path, text, needle):
    path = tmp_path / "protected.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(needle)):
        protected_attributes(path)


def test_the_shipped_catalogue_marks_the_three_credit_actions():
    assert load_catalogue().credit_ids == CREDIT


@pytest.mark.parametrize(
    ("action", "field", "rule", "kind", "column"),
    [
        (
            "credit_limit_increase",
            "eligible_if",
            {"column": "Customer_Age", "op": ">=", "value": 25, "reason": "too young"},
            "eligibility",
            "Customer_Age",
        ),
        (
            "card_upgrade",
            "unsuitable_if",
            {"when": [{"column": "Gender", "op": "==", "value": "F"}], "reason": "r"},
            "suitability",
            "Gender",
        ),
        (
            "instalment_plan",
            "eligible_if",
            {
                "any_of": [
                    {"column": "revolver", "op": "==", "value": True},
                    {"column": "Marital_Status", "op": "==", "value": "Married"},
                ],
                "reason": "r",
            },
            "eligibility",
            "Marital_Status",
        ),
    ],
)
def test_a_credit_action_rule_on_a_protected_attribute_is_refused(
    action, field, rule, kind, column
):
    raw = _raw()
    entry = next(a for a in raw["actions"] if a["id"] == action)
    entry[field] = [*(entry.get(field) or []), rule]
    position = len(entry[field]) - 1
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(raw)
    message = str(caught.value)
    assert f"'{action}' is a credit action" in message
    assert f"its {kind} rule {field}[{position}]" in message
    assert f"protected attribute {column}" in message


def test_the_same_rule_is_allowed_on_a_non_credit_action_and_follows_the_list():
    raw = _raw()
    rule = {"column": "Customer_Age", "op": ">=", "value": 25, "reason": "r"}
    retention = next(a for a in raw["actions"] if a["id"] == "retention_offer")
    retention["eligible_if"].append(rule)
    parse_catalogue(raw)  # not a credit action: a marketing choice, not refused
    limit = next(a for a in raw["actions"] if a["id"] == "credit_limit_increase")
    limit["eligible_if"].append(rule)
    with pytest.raises(CatalogueError):
        parse_catalogue(raw)
    parse_catalogue(raw, protected=("Gender",))  # a bank that protects only gender


def test_credit_actions_are_valued_on_the_blind_score(customers):
    catalogue = load_catalogue()
    settings = Settings()
    main = np.full(len(customers), 0.9)
    blind = np.full(len(customers), 0.3)
    both = evaluate(
        {"churn_probability": main, "credit_churn_probability": blind},
        customers,
        catalogue,
        settings,
    )
    only_blind = evaluate({"churn_probability": blind}, customers, catalogue, settings)
    only_main = evaluate({"churn_probability": main}, customers, catalogue, settings)
    credit = catalogue.credit
    np.testing.assert_array_equal(both.net[:, credit], only_blind.net[:, credit])
    np.testing.assert_array_equal(both.net[:, ~credit], only_main.net[:, ~credit])
    assert not np.array_equal(only_main.net[:, credit], only_blind.net[:, credit])


# --- a trained bundle, scored on customers and on their counterfactual twins ------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("protected")
    path = write_synthetic(folder / "customers.csv", rows=3000, seed=5)
    clean = validate(pd.read_csv(path, dtype=str)).clean
    trained, _ = train(clean, describe(path, "argument"), Settings(), TrainOptions.fast())
    return load_bundle(save_bundle(trained, folder / "nba.bundle"))  # through the file


@pytest.fixture(scope="module")
def batch():
    return validate(synth.generate(2000, 99)).clean


def test_the_bundle_keeps_a_blind_credit_model_beside_the_main_one(bundle):
    assert tuple(bundle.credit_churn.exclude) == DEFAULT_PROTECTED
    assert not set(DEFAULT_PROTECTED) & set(bundle.credit_churn.feature_names_)
    assert set(DEFAULT_PROTECTED) <= set(bundle.churn.feature_names_)
    assert bundle.metadata["metrics"]["credit_churn"]["excluded"] == list(DEFAULT_PROTECTED)


def test_credit_decisions_do_not_move_when_protected_attributes_change(bundle, batch):
    twins = counterfactual(batch, bundle.protected)
    for column in DEFAULT_PROTECTED:  # every customer changed in every attribute
        assert (twins[column].astype(str) != batch[column].astype(str)).all(), column
    before, after = credit_decisions(bundle, batch), credit_decisions(bundle, twins)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    # the test can fail: credit actions are allowed for some, and the main score does move
    assert before[[f"{a}_allowed" for a in CREDIT]].to_numpy().any()
    main_before = bundle.score(batch)["churn_probability"].to_numpy()
    main_after = bundle.score(twins)["churn_probability"].to_numpy()
    assert not np.array_equal(main_before, main_after)


def test_score_output_adds_only_the_blind_score_and_credit_reasons_quote_nothing_protected(
    bundle, batch
):
    twins = counterfactual(batch, bundle.protected)
    a, b = bundle.score(batch), bundle.score(twins)
    np.testing.assert_array_equal(a["credit_churn_probability"], b["credit_churn_probability"])
    quoted = 0
    for k in (1, 2, 3):
        credit = a[f"action_{k}"].isin(CREDIT).to_numpy()
        reasons = a.loc[credit, f"action_{k}_reason"]
        quoted += len(reasons)
        assert not reasons.str.contains(QUOTES).any()
        # and they say which score they quote: not the risk the card shows
        assert reasons.str.startswith("Churn risk (credit score, no protected attributes) ").all()
        # the same customer, changed: the same credit action keeps the same reason word for word
        same = credit & (b[f"action_{k}"] == a[f"action_{k}"]).to_numpy()
        pd.testing.assert_series_equal(
            a.loc[same, f"action_{k}_reason"], b.loc[same, f"action_{k}_reason"]
        )
    assert quoted > 0


def test_a_blind_main_model_serves_both():
    from nba import lineage

    settings = Settings(churn_keeps_protected=False)
    train_part = validate(synth.generate(1500, 3)).clean
    main, credit = lineage.fit_models(lineage.default_choices()["churn"], train_part, settings)
    assert credit is None
    assert tuple(main.exclude) == DEFAULT_PROTECTED
    assert Settings().with_overrides(churn_keeps_protected="false").churn_keeps_protected is False


def test_the_blind_models_fast_matrix_equals_its_feature_builder(bundle, batch):
    odd = batch.copy()
    odd.loc[odd.index[0], "Card_Category"] = "Diamond"  # unknown: a missing code on both paths
    blind = bundle.credit_churn
    fast = blind.model_matrix(odd)
    assert fast.shape == (len(odd), len(blind.feature_names_))
    np.testing.assert_array_equal(fast, blind.features_.matrix(odd))
    assert np.isnan(fast[0]).sum() == 1


def test_exploration_draws_of_credit_actions_do_not_move_when_protected_attributes_change(
    bundle, batch
):
    """A plan's Thompson draws: among credit actions alone, the chance each one is drawn the
    best reads the blind score only, so it is the same for every customer's twin."""
    from nba.campaigns.plan import thompson_probabilities
    from nba.campaigns.policy import engine_view

    views = [engine_view(bundle, b) for b in (batch, counterfactual(batch, bundle.protected))]
    options = [v.allowed & v.credit[None, :] for v in views]  # only credit actions compete
    np.testing.assert_array_equal(options[0], options[1])
    rows = np.flatnonzero(options[0].sum(axis=1) >= 2)
    assert len(rows) >= 50  # the test can fail: customers with a choice between credit actions
    drawn = [
        thompson_probabilities(bundle, v, rows, options[0][rows], np.random.default_rng(3))
        for v in views
    ]
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert not np.array_equal(views[0].z, views[1].z)  # the main score's features do move
