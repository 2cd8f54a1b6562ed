"""Model inputs: which columns are features, the engineered ones, fixed category codes, the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from nba.config import Settings
from nba.data import schema, synth
from nba.data.validate import validate
from nba.features import (
    CATEGORY_DTYPES,
    ENGINEERED,
    ENGINEERED_INPUTS,
    FEATURES,
    KEPT_ENGINEERED,
    FeatureBuilder,
    split,
    to_matrix,
)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """600 synthetic customers as `load` returns them (typed, `churn` 0/1)."""
    return validate(synth.generate(600, seed=3)).clean


def test_features_exclude_naive_bayes_id_and_target():
    assert not any(c.startswith(schema.LEAKAGE_PREFIX) for c in FEATURES)
    assert not set(schema.LEAKAGE) & set(FEATURES)
    for col in (schema.ID, schema.TARGET, schema.TARGET_RAW):
        assert col not in FEATURES
    assert len(FEATURES) == 19 and set(FEATURES) == set(schema.REQUIRED) - {schema.ID}


def test_builder_output_never_holds_leakage_even_when_the_input_does(clean):
    raw = synth.generate(50, seed=4)  # Kaggle format: id, Attrition_Flag, both Naive_Bayes cols
    assert set(schema.LEAKAGE) <= set(raw.columns)
    out = FeatureBuilder(engineered=tuple(ENGINEERED)).fit(raw).transform(raw)
    assert list(out.columns) == [*FEATURES, *ENGINEERED]
    assert not any(c.startswith(schema.LEAKAGE_PREFIX) for c in out.columns)
    assert schema.ID not in out.columns and schema.TARGET_RAW not in out.columns


def test_engineered_values_on_a_hand_made_customer(clean):
    row = clean.iloc[[0]].copy()
    row["Total_Trans_Amt"], row["Total_Trans_Ct"], row["Months_on_book"] = 3000, 60, 30
    row["Total_Amt_Chng_Q4_Q1"], row["Total_Ct_Chng_Q4_Q1"] = 0.8, 0.5
    row["Total_Relationship_Count"], row["Months_Inactive_12_mon"] = 4, 3
    row["Contacts_Count_12_mon"], row["Credit_Limit"] = 2, 6000.0
    out = FeatureBuilder(engineered=tuple(ENGINEERED)).fit(row).transform(row).iloc[0]
    assert out["Avg_Trans_Amt"] == pytest.approx(50.0)
    assert out["Trans_Ct_per_Month_on_Book"] == pytest.approx(2.0)
    assert out["Amt_Ct_Chng_Ratio"] == pytest.approx(1.6)
    assert out["Amt_x_Ct_Chng"] == pytest.approx(0.4)
    assert out["Products_x_Inactive"] == pytest.approx(12.0)
    assert out["Contacts_x_Inactive"] == pytest.approx(6.0)
    assert out["Trans_Amt_per_Limit"] == pytest.approx(0.5)
    assert set(ENGINEERED_INPUTS) == set(ENGINEERED)


def test_division_by_zero_gives_nan_not_inf(clean):
    rows = clean.iloc[:3].copy()
    rows["Total_Trans_Ct"] = [0, 10, 0]
    rows["Total_Ct_Chng_Q4_Q1"] = [0.0, 0.5, 0.0]
    out = (
        FeatureBuilder(engineered=("Avg_Trans_Amt", "Amt_Ct_Chng_Ratio")).fit(rows).transform(rows)
    )
    assert out["Avg_Trans_Amt"].isna().tolist() == [True, False, True]
    assert out["Amt_Ct_Chng_Ratio"].isna().tolist() == [True, False, True]
    assert np.isfinite(out["Avg_Trans_Amt"].dropna()).all()


def test_category_codes_do_not_depend_on_the_batch(clean):
    fb = FeatureBuilder(engineered=()).fit(clean)
    col = FEATURES.index("Card_Category")
    gold = clean[clean["Card_Category"] == "Gold"].head(1)
    assert len(gold) == 1
    codes_alone = to_matrix(fb.transform(gold))[0, col]
    codes_all = to_matrix(fb.transform(clean))[clean.index.get_loc(gold.index[0]), col]
    assert (
        codes_alone == codes_all == list(CATEGORY_DTYPES["Card_Category"].categories).index("Gold")
    )
    odd = gold.copy()
    odd["Card_Category"] = "Titanium"  # unknown: missing, not an error and not another code
    assert np.isnan(to_matrix(fb.transform(odd))[0, col])


def test_fast_matrix_equals_the_frame_path(clean):
    fb = FeatureBuilder(engineered=tuple(ENGINEERED)).fit(clean)
    odd = clean.head(50).copy()
    odd.loc[odd.index[:3], "Marital_Status"] = ["Widowed", None, "Single"]  # unknown, missing
    odd.loc[odd.index[3], "Total_Trans_Ct"] = 0  # a ratio with a zero denominator
    fast, slow = fb.matrix(odd), to_matrix(fb.transform(odd))
    np.testing.assert_array_equal(fast, slow)  # NaN in the same places, same codes
    assert np.isnan(fast[:2, FEATURES.index("Marital_Status")]).all()


def test_builder_ignores_column_order_and_extra_columns(clean):
    fb = FeatureBuilder(engineered=("Avg_Trans_Amt",)).fit(clean)
    shuffled = clean[list(reversed(clean.columns))].assign(extra=1)
    pd.testing.assert_frame_equal(fb.transform(shuffled), fb.transform(clean))


def test_builder_rejects_unknown_features_and_missing_columns(clean):
    with pytest.raises(ValueError, match="Not_A_Feature"):
        FeatureBuilder(engineered=("Not_A_Feature",)).fit(clean)
    fb = FeatureBuilder().fit(clean)
    with pytest.raises(ValueError, match="Total_Trans_Ct"):
        fb.transform(clean.drop(columns=["Total_Trans_Ct"]))


def test_builder_follows_the_estimator_api(clean):
    fb = FeatureBuilder(engineered=("Avg_Trans_Amt",))
    assert clone(fb).get_params() == {"engineered": ("Avg_Trans_Amt",), "exclude": ()}
    assert FeatureBuilder().get_params()["engineered"] == KEPT_ENGINEERED
    assert fb.fit(clean) is fb
    assert list(fb.get_feature_names_out()) == [*FEATURES, "Avg_Trans_Amt"]


def test_split_is_stratified_seeded_and_disjoint(clean):
    settings = Settings(seed=11, test_size=0.25)
    train, test = split(clean, settings)
    again, _ = split(clean, settings)
    assert len(train) + len(test) == len(clean)
    assert len(test) == pytest.approx(0.25 * len(clean), abs=1)
    assert not set(train[schema.ID]) & set(test[schema.ID])
    assert train[schema.TARGET].mean() == pytest.approx(clean[schema.TARGET].mean(), abs=0.01)
    assert train[schema.ID].tolist() == again[schema.ID].tolist()


def test_excluded_columns_never_reach_the_model_inputs(clean):
    from nba.config import DEFAULT_PROTECTED

    fb = FeatureBuilder(exclude=DEFAULT_PROTECTED).fit(clean)
    frame, matrix = fb.transform(clean), fb.matrix(clean)
    assert not set(DEFAULT_PROTECTED) & set(frame.columns)
    assert list(fb.get_feature_names_out()) == list(frame.columns)
    np.testing.assert_array_equal(matrix, to_matrix(frame))
    with pytest.raises(ValueError, match="Trans_Amt_per_Limit read an excluded column"):
        FeatureBuilder(("Trans_Amt_per_Limit",), exclude=("Credit_Limit",)).fit(clean)
