"""The early-warning option of stage 1 (`churn_features`): the feature variants are data, the
model honours them, the lineage records them, and `nba train -p churn_features early_warning`
builds a bundle that scores end to end (compiled trees, reasons, the blind credit model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba import churn, lineage
from nba.bundle import load_bundle
from nba.churn import ChurnModel
from nba.churn.model import FRIENDLY
from nba.config import Settings
from nba.data import schema, synth
from nba.data.discover import write_synthetic
from nba.data.validate import validate
from nba.features import FEATURES

QUICK = {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 10}


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return validate(synth.generate(1500, 11)).clean


def test_the_feature_groups_partition_the_record_and_the_variants_nest():
    groups = (churn.PROFILE, churn.TREND, churn.WINDOW_12M, churn.BALANCES)
    flat = [c for g in groups for c in g]
    assert sorted(flat) == sorted(FEATURES) and len(flat) == len(set(flat))
    sets = churn.CHURN_FEATURE_SETS
    assert sets["full"] == ()
    # the trend variant keeps profile + trend; early warning keeps the profile only
    assert set(FEATURES) - set(sets["trend"]) == {*churn.PROFILE, *churn.TREND}
    assert set(FEATURES) - set(sets["early_warning"]) == set(churn.PROFILE)
    with pytest.raises(ValueError, match="early_warning"):
        churn.feature_set_exclusions("earliest")


def test_the_model_leaves_the_variant_columns_out_and_adds_the_protected_ones(train):
    y = train[schema.TARGET]
    model = ChurnModel(params=QUICK, n_jobs=1, cv_folds=3, feature_set="early_warning")
    model.fit(train, y)
    assert model.feature_names_ == list(churn.PROFILE)
    blind = ChurnModel(
        params=QUICK, n_jobs=1, cv_folds=3, feature_set="trend", exclude=("Gender",)
    ).fit(train, y)
    assert blind.feature_names_ == [c for c in (*churn.PROFILE, *churn.TREND) if c != "Gender"]
    # the window's columns cannot move an early-warning score
    changed = train.head(50).copy()
    changed["Total_Trans_Ct"] = 1
    changed["Total_Trans_Amt"] = 510.0
    np.testing.assert_array_equal(model.predict_proba(changed), model.predict_proba(train.head(50)))
    with pytest.raises(ValueError, match="churn feature set"):
        ChurnModel(params=QUICK, n_jobs=1, cv_folds=3, feature_set="nope").fit(train, y)


def test_baselines_leave_out_what_the_model_leaves_out():
    model = ChurnModel(feature_set="trend", exclude=("Gender",))
    assert model.excluded_columns == tuple(
        c for c in FEATURES if c not in (*churn.PROFILE, *churn.TREND) or c == "Gender"
    )
    pipe = churn.make_candidate("lightgbm", 0, exclude=model.excluded_columns)
    assert pipe.named_steps["features"].inputs == tuple(
        c for c in FEATURES if c not in model.excluded_columns
    )


def test_settings_carry_the_variant_into_the_model_and_the_record(train):
    settings = Settings(cv_folds=3, churn_features="trend")
    model = ChurnModel.from_settings(settings, params=QUICK, n_jobs=1).fit(
        train, train[schema.TARGET]
    )
    assert model.feature_set == "trend"
    choice = lineage.churn_choice(model)
    assert choice["features"] == "trend" and choice["calibration_choice"] is None
    assert lineage.default_choices(settings)["churn"]["features"] == "trend"
    assert lineage.default_choices()["churn"]["features"] == "full"
    refitted = lineage.fit_churn(choice, train, settings, n_jobs=1)
    assert refitted.feature_names_ == model.feature_names_


def test_feature_set_comparison_is_paired_and_says_what_each_variant_keeps(train):
    settings = Settings(cv_folds=3)
    table = churn.feature_set_comparison(
        train, train[schema.TARGET], settings, repeats=1, n_jobs=1
    ).set_index(["variant", "metric"])
    full, early = table.loc[("full", "pr_auc")], table.loc[("early_warning", "pr_auc")]
    assert full.delta == 0 and full.retained == pytest.approx(1.0)
    assert early.delta == pytest.approx(early["mean"] - full["mean"])
    assert early.delta_low <= early.delta <= early.delta_high
    assert early["low"] <= early["mean"] <= early["high"]
    assert early.columns == len(churn.PROFILE) and full.columns == len(FEATURES)
    # the synthetic churners, like the real ones, are told apart mostly by their behaviour
    assert early["mean"] < full["mean"] and early.retained < 1
    summary = churn.feature_set_summary(table.reset_index())
    assert list(summary.index) == list(churn.CHURN_FEATURE_SETS)
    assert summary.loc["early_warning", "inputs"] == len(churn.PROFILE)
    assert summary.loc["full", "PR-AUC change"] == "+0.000 (+0.000 to +0.000)"
    assert summary.loc["early_warning", "PR-AUC"].startswith(f"{early['mean']:.3f} (")
    with pytest.raises(ValueError, match="reference"):
        churn.feature_set_comparison(train, train[schema.TARGET], settings, reference="x")


@pytest.mark.slow
def test_nba_train_with_the_early_warning_setting_builds_a_bundle_that_scores(tmp_path):
    from nba.cli import main

    data = write_synthetic(tmp_path / "customers.csv", rows=1500, seed=4)
    out = tmp_path / "early.bundle"
    args = ["train", "--data", str(data), "--out", str(out), "-p", "churn_features"]
    assert main([*args, "early_warning"]) == 0
    bundle = load_bundle(out)
    assert bundle.metadata["lineage"]["choices"]["churn"]["features"] == "early_warning"
    assert bundle.metadata["metrics"]["churn"]["features"] == "early_warning"
    assert bundle.churn.feature_names_ == list(churn.PROFILE)
    # without a record the calibration is chosen on this data where the engine contacts
    chosen = bundle.metadata["lineage"]["choices"]["churn"]
    assert chosen["calibration_choice"]["criterion"] == churn.DECISION_CRITERION
    report = pd.DataFrame(chosen["calibration_choice"]["report"]).T
    assert churn.choose_calibration(report, "decision_brier") == chosen["calibration"]
    assert bundle.churn.calibration_ == chosen["calibration"]
    # the blind credit model is the same variant, less the protected attributes
    protected = set(lineage.protected_columns(Settings()))
    assert bundle.credit_churn.feature_names_ == [c for c in churn.PROFILE if c not in protected]
    # the stage-1 comparison is like for like: default learners on the same profile columns
    # (against learners given the whole record the lead would be about -0.6 PR-AUC)
    leads = bundle.metadata["metrics"]["stage1"]["leads"]
    assert all(abs(r["lead"]) < 0.2 for r in leads if r["metric"] == "pr_auc"), leads
    customers = validate(synth.generate(300, 5)).clean
    scored = bundle.score(customers)
    assert len(scored) == 300 and scored["churn_probability"].between(0, 1).all()
    assert scored["action_1"].notna().all()
    assert (scored["churn_flag"] == (scored["churn_probability"] >= bundle.threshold)).all()
    # the compiled fast path agrees with LightGBM's own predict
    M = bundle.churn.model_matrix(customers)
    raw = bundle.churn.estimator_.booster_.predict(M, raw_score=True)
    np.testing.assert_allclose(bundle.churn.decision_function(customers), raw, atol=1e-9)
    one = bundle.recommend(customers.drop(columns=[schema.TARGET]).iloc[0].to_dict())
    assert one["churn_probability"] == pytest.approx(scored["churn_probability"].iloc[0])
    names = [FRIENDLY[c][0] for c in churn.PROFILE]  # a reason names a profile column only
    assert any(one["driver_1"].startswith(f"{name} ") for name in names), one["driver_1"]
    assert main([*args, "soonest"]) == 2  # an unknown variant is one sentence, exit 2


def test_engine_contacts_are_the_customers_the_engine_spends_money_on(train):
    from nba.actions import load_catalogue, simulate

    settings = Settings()
    catalogue = load_catalogue()
    contacts = lineage.engine_contacts(train, catalogue, settings)
    assert not contacts(np.zeros(len(train))).any()  # nobody leaves: no offer pays
    p = np.random.default_rng(0).uniform(size=len(train))
    chosen = contacts(p)
    assert 0 < chosen.sum() < len(train)
    sim = simulate(
        pd.DataFrame({"churn_probability": p}, index=train.index),
        train,
        catalogue,
        settings,
        seed=0,
    )
    assert sim["summary"].iloc[0].customers_contacted == chosen.sum()


def test_the_interval_and_variant_figures_draw_what_they_are_given():
    from nba import plots

    rng = np.random.default_rng(2)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    whole = churn.reliability_table(y, p, strategy="quantile")
    contacted = churn.reliability_table(y[p > 0.5], p[p > 0.5], strategy="quantile")
    fig = plots.reliability_intervals(
        {"all customers": {"raw": whole}, "contacted": {"raw": contacted, "sigmoid": contacted}}
    )
    left, right = fig.axes
    for ax in (left, right):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert labels[1] == f"raw ({int(contacted['count'].sum()):,} customers)"
    bars = left.containers[0]  # the first error-bar series: its points are the table's
    np.testing.assert_allclose(
        np.asarray(bars.lines[0].get_ydata(), dtype=float), whole["observed_rate"].to_numpy()
    )
    table = pd.DataFrame(
        {
            "variant": ["full", "full", "early_warning", "early_warning"],
            "metric": ["roc_auc", "pr_auc", "roc_auc", "pr_auc"],
            "mean": [0.99, 0.96, 0.62, 0.24],
            "low": [0.98, 0.95, 0.60, 0.22],
            "high": [0.995, 0.97, 0.64, 0.26],
            "columns": [19, 19, 10, 10],
        }
    )
    fig = plots.feature_set_power(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["early_warning", "full"]
    assert [round(b.get_width(), 2) for b in ax.patches] == [0.24, 0.96]
    assert "PR-AUC" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
