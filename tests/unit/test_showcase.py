"""nba.showcase: the example customers notebook 06 shows, and its tables and sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba import actions, showcase
from nba.data import schema
from nba.data.validate import validate

from factories import make_customers


@pytest.fixture(scope="module")
def base():
    df = validate(make_customers(400, seed=4)).clean
    rng = np.random.default_rng(0)
    p = rng.random(len(df))
    scores = pd.DataFrame(
        {
            "churn_probability": p,
            "churn_flag": (p >= 0.5).astype(np.int8),
            "segment": rng.integers(0, 3, len(df)),
            "segment_name": np.array(["A", "B", "C"])[rng.integers(0, 3, len(df))],
        },
        index=df.index,
    )
    catalogue = actions.load_catalogue()
    medians = actions.population_medians(df)
    return df, scores, catalogue, actions.customer_traits(df, catalogue, medians)


def test_examples_follow_their_rules(base):
    df, scores, catalogue, traits = base
    var = np.linspace(0, 1000, len(df))
    among = np.ones(len(df), dtype=bool)
    examples = showcase.example_customers(scores, df, var, among, catalogue, traits)
    risky, revolver, contacted = examples.values()
    open_to_marketing = df[catalogue.contact_column] < catalogue.suppress_marketing_at
    assert risky == scores.churn_probability[open_to_marketing].idxmax()
    assert traits.loc[revolver, "revolver"] and traits.loc[revolver, "high_utilisation"]
    assert open_to_marketing[revolver] and revolver != risky
    assert not open_to_marketing[contacted]
    assert contacted == scores.churn_probability[~open_to_marketing].idxmax()
    profiles = showcase.example_profiles(examples, scores, df, var)
    assert list(profiles.columns) == list(examples)
    assert profiles.loc[schema.ID, "highest churn risk"] == df.loc[risky, schema.ID]


def test_scores_by_segment_counts_every_customer(base):
    df, scores, _, _ = base
    table = showcase.scores_by_segment(scores, np.ones(len(df)))
    assert table["customers"].sum() == len(df)
    assert table["flagged"].sum() == scores["churn_flag"].sum()
    assert table["mean_churn_probability"].is_monotonic_decreasing


def test_exclusion_table_says_allowed_or_why_not():
    why = pd.DataFrame(
        {
            "customer": [5, 5, 9, 9],
            "action": ["a", "b", "a", "b"],
            "allowed": [True, False, False, True],
            "expected_net_value": [1234.4, 0.0, 0.0, -3.0],
            "reason": ["", "excluded: rule x", "excluded: rule y", ""],
        }
    )
    table = showcase.exclusion_table(why, {"first": 5, "second": 9}, ["b", "a"])
    assert list(table.index) == ["b", "a"] and list(table.columns) == ["first", "second"]
    assert table.loc["a", "first"] == "allowed, expected net 1,234"
    assert table.loc["b", "first"] == "excluded: rule x"
    assert table.loc["b", "second"] == "allowed, expected net -3"
