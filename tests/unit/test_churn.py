"""Stage 1 on synthetic customers: threshold rules, calibration measures, the fitted model,
its reasons, persistence and the end-to-end `train_churn` (fast configuration)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from nba import churn
from nba.churn import ChurnModel, TrainOptions
from nba.config import Settings
from nba.data import schema, synth
from nba.data.validate import validate
from nba.features import CATEGORY_DTYPES, ENGINEERED, FEATURES

#: Small, quick LightGBM settings for unit tests (bagging on, so the seed matters).
QUICK = {
    "n_estimators": 60,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 10,
    "subsample": 0.8,
    "colsample_bytree": 0.7,
}


def clean_synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic customers as `nba.data.io.load` returns them: typed, `churn` 0/1."""
    return validate(synth.generate(rows, seed)).clean


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return clean_synthetic(3000, seed=1)


@pytest.fixture(scope="module")
def test() -> pd.DataFrame:
    return clean_synthetic(2000, seed=2)


@pytest.fixture(scope="module")
def model(train) -> ChurnModel:
    return ChurnModel(params=QUICK, n_jobs=1, random_state=5).fit(train, train[schema.TARGET])


# --- threshold --------------------------------------------------------------------------------

y_hand = np.array([1, 1, 0, 1, 0, 0])
p_hand = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])


def test_f1_rule_picks_the_f1_maximum_on_a_hand_made_example():
    # Flag top k: F1 = .5, .8, .667, .857, .75, .667 → best is the top 4 (cut between .6 and .3)
    t = churn.choose_threshold(y_hand, p_hand, "f1")
    assert t == pytest.approx(0.45)
    best = max(f1_score(y_hand, p_hand >= c) for c in p_hand)
    assert f1_score(y_hand, p_hand >= t) == pytest.approx(best) == pytest.approx(6 / 7)


def test_cost_rule_trades_false_alarms_against_missed_churners():
    # An offer that costs 10 against 1 lost per missed churner: flag only the sure top 2.
    assert churn.choose_threshold(
        y_hand, p_hand, "cost", cost_fp=10, value_missed=1
    ) == pytest.approx(0.75)
    # Missed churners cost 10, offers 1: flag the top 4 (1 false alarm, nobody missed).
    assert churn.choose_threshold(
        y_hand, p_hand, "cost", cost_fp=1, value_missed=10
    ) == pytest.approx(0.45)
    # The top score is not a churner and offers are dear: flagging nobody is cheapest.
    p = np.array([0.9, 0.1])
    t = churn.choose_threshold(np.array([0, 1]), p, "cost", cost_fp=100, value_missed=1)
    assert (p >= t).sum() == 0
    with pytest.raises(ValueError, match="cost"):
        churn.choose_threshold(y_hand, p_hand, "cost")


def test_threshold_table_matches_hand_counts():
    table = churn.threshold_table(
        y_hand, p_hand, np.array([0.45, 0.75]), cost_fp=1, value_missed=10
    )
    row = table.set_index("threshold").loc[0.45]
    assert row["precision"] == pytest.approx(3 / 4) and row["recall"] == pytest.approx(1.0)
    assert row["f1"] == pytest.approx(6 / 7) and row["cost"] == pytest.approx(1.0)
    assert table.set_index("threshold").loc[0.75, "flagged_share"] == pytest.approx(2 / 6)


# --- calibration ------------------------------------------------------------------------------


def test_calibration_metrics_on_known_values():
    y = np.array([0, 0, 1, 1])
    perfect = churn.calibration_metrics(y, np.array([0.0, 0.0, 1.0, 1.0]))
    assert perfect["brier"] == pytest.approx(0.0) and perfect["ece"] == pytest.approx(0.0)
    halves = churn.calibration_metrics(y, np.full(4, 0.5))  # one bin, observed rate 0.5
    assert halves["brier"] == pytest.approx(0.25) and halves["ece"] == pytest.approx(0.0)
    over = churn.calibration_metrics(np.array([0, 0, 0, 1]), np.full(4, 0.95))
    assert over["ece"] == pytest.approx(0.70)
    table = churn.reliability_table(y, np.array([0.05, 0.15, 0.85, 0.95]))
    assert table["count"].sum() == 4 and len(table) == 4


def test_calibration_report_detects_distorted_probabilities():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0, 1, 4000)
    y = (rng.uniform(size=4000) < true_p).astype(int)
    honest = churn.calibration_report(y, true_p, seed=0)
    assert churn.choose_calibration(honest) == "none"
    distorted = churn.calibration_report(y, true_p**3, seed=0)  # far too low
    assert distorted.loc["sigmoid", "brier"] < distorted.loc["none", "brier"]
    assert distorted.loc["isotonic", "ece"] < distorted.loc["none", "ece"]
    assert churn.choose_calibration(distorted) in ("sigmoid", "isotonic")


def test_wilson_interval_matches_hand_values_and_stays_in_the_unit_interval():
    low, high = churn.wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    # hand values (z = 1.96): 0 of 10 → [0, 0.2775]; 5 of 10 → [0.2366, 0.7634]
    np.testing.assert_allclose(low, [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.2775, 0.7634, 1.0], atol=1e-4)
    narrow = churn.wilson_interval(500, 1000)
    assert narrow[1] - narrow[0] < high[1] - low[1]  # more customers, a narrower interval


def test_equal_count_bins_hold_equal_numbers_and_cover_the_observed_rate():
    rng = np.random.default_rng(4)
    p = rng.beta(0.3, 2.0, 1003)  # most customers near zero, as the churn scores are
    y = (rng.uniform(size=p.size) < p).astype(int)
    table = churn.reliability_table(y, p, n_bins=10, strategy="quantile")
    assert table["count"].sum() == 1003 and table["count"].max() - table["count"].min() <= 1
    assert (table["bin_low"] <= table["mean_predicted"]).all()
    assert (table["mean_predicted"] <= table["bin_high"]).all()
    assert table["bin_low"].is_monotonic_increasing
    assert (
        (table.observed_low <= table.observed_rate) & (table.observed_rate <= table.observed_high)
    ).all()
    uniform = churn.reliability_table(y, p, n_bins=10)
    assert uniform["count"].max() > 3 * table["count"].max()  # equal width: one crowded bin
    with pytest.raises(ValueError, match="strategy"):
        churn.reliability_table(y, p, strategy="log")


def test_a_map_replaces_raw_scores_only_when_it_earns_its_place():
    def report(none, sigmoid, isotonic):
        return pd.DataFrame(
            {"decision_brier": [none, sigmoid, isotonic]}, index=["none", "sigmoid", "isotonic"]
        )

    pick = churn.choose_calibration
    assert pick(report(0.1000, 0.0999, 0.0999), "decision_brier") == "none"  # noise
    assert pick(report(0.1000, 0.0990, 0.0985), "decision_brier") == "sigmoid"  # monotone, 1 %
    assert pick(report(0.1000, 0.0990, 0.0960), "decision_brier") == "isotonic"  # 3 % more
    assert pick(report(0.1000, 0.1000, 0.0970), "decision_brier") == "isotonic"
    assert pick(report(0.1000, 0.1010, 0.0990), "decision_brier") == "none"


def test_decision_calibration_report_judges_the_maps_where_the_engine_contacts():
    rng = np.random.default_rng(1)
    true_p = rng.beta(0.5, 2.5, 4000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(int)
    seen = []

    def contacts(q):  # an engine that contacts customers above 30 % risk
        seen.append(q)
        return q >= 0.3

    low = true_p**1.5  # under-predicts, most in the middle: where the engine decides
    rep = churn.decision_calibration_report(y, low, contacts, seed=0, folds=5)
    assert list(rep.index) == list(churn.CALIBRATIONS) and len(seen) == 3
    assert rep["region"].nunique() == 1  # one region, the same customers for every map
    assert rep.loc["none", "region"] >= rep["contacted"].max()
    assert rep.loc["none", "contacted"] == int((low >= 0.3).sum())
    # raw scores under-predict among the contacted; a map closes most of the gap
    gap = rep["observed_contacted"] - rep["predicted_contacted"]
    assert gap["none"] > 0.03 and abs(gap["sigmoid"]) < gap["none"]
    expected = (rep["brier"] + rep["decision_brier_region"]) / 2
    np.testing.assert_allclose(rep["decision_brier"], expected)
    assert churn.choose_calibration(rep, "decision_brier") != "none"
    honest = churn.decision_calibration_report(y, true_p, contacts, seed=0, folds=5)
    assert churn.choose_calibration(honest, "decision_brier") == "none"


# --- the fitted model -------------------------------------------------------------------------


def test_model_beats_a_trivial_baseline_on_unseen_synthetic_customers(model, test):
    y = test[schema.TARGET].to_numpy()
    p = model.predict_proba(test)[:, 1]
    assert roc_auc_score(y, p) > 0.95
    assert average_precision_score(y, p) > 4 * y.mean()  # a constant score gets ≈ y.mean()
    assert f1_score(y, model.predict(test)) > 2 * f1_score(y, np.ones_like(y))


def test_predict_uses_the_chosen_threshold(model, test):
    p = model.predict_proba(test)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(test), (p[:, 1] >= model.threshold_).astype(int))
    assert 0 < model.threshold_ < 1
    assert model.metrics_["threshold"] == model.threshold_


def test_the_default_model_ships_the_sigmoid_map_fitted_out_of_fold(model, train, test):
    from nba import lineage

    assert churn.DEFAULT_CALIBRATION == "sigmoid" and model.calibration_ == "sigmoid"
    assert lineage.default_choices()["churn"]["calibration"] == churn.DEFAULT_CALIBRATION
    assert TrainOptions().calibration == churn.DEFAULT_CALIBRATION
    # the map is the one fitted on the out-of-fold probabilities of the training data
    p_oof = model.out_of_fold_proba(train, train[schema.TARGET])
    refit = churn.fit_calibrator("sigmoid", train[schema.TARGET].to_numpy(), p_oof)
    raw = 1.0 / (1.0 + np.exp(-model.decision_function(test)))
    np.testing.assert_allclose(
        model.predict_proba(test)[:, 1], churn.apply_calibrator(refit, raw), rtol=1e-9
    )
    # monotone: the calibrated score ranks customers exactly as the raw trees do
    calibrated = model.predict_proba(test)[:, 1]
    order = np.argsort(raw, kind="stable")
    assert (np.diff(calibrated[order]) >= 0).all()
    assert not np.allclose(calibrated, raw)  # and it does move the probabilities
    # the direct Platt formula equals the logistic regression's own predict_proba
    clipped = np.clip(raw, 1e-6, 1 - 1e-6)  # as the map clips its input
    logit = np.log(clipped / (1 - clipped))[:, None]
    np.testing.assert_allclose(calibrated, refit.predict_proba(logit)[:, 1], rtol=1e-12)


def test_fast_scoring_path_equals_lightgbm_on_pandas(train, test):
    m = ChurnModel(params=QUICK, calibration="none", n_jobs=1, random_state=5)
    m.fit(train, train[schema.TARGET])
    via_pandas = m.estimator_.predict_proba(m.features_.transform(test))[:, 1]
    np.testing.assert_allclose(m.predict_proba(test)[:, 1], via_pandas, rtol=1e-12, atol=1e-12)


def test_compiled_trees_give_lightgbm_raw_scores(model, test):
    M = model._matrix(test)
    compiled = churn.compiled_booster(model.estimator_.booster_, M[:64])
    assert compiled is not None, "lleaves could not compile the churn model"
    want = model.estimator_.booster_.predict(M, raw_score=True)
    np.testing.assert_allclose(model._raw(M), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.decision_function(test), want, rtol=0, atol=1e-12)


def test_fast_matrix_equals_the_feature_builder_with_odd_categories(model, test):
    odd = test.copy()
    odd.loc[odd.index[0], "Gender"] = np.nan
    odd.loc[odd.index[1], "Card_Category"] = "Diamond"
    fast = model._matrix(odd)
    np.testing.assert_array_equal(fast, model.features_.matrix(odd))
    assert np.isnan(fast[:2]).sum() == 2
    as_object = odd.astype({c: object for c in schema.CATEGORICAL})  # the general path
    np.testing.assert_array_equal(model._matrix(as_object), fast)


def test_model_matrix_gives_the_same_scores_and_reasons_as_the_frame(model, test):
    few = test.head(50)
    M = model.model_matrix(few)
    np.testing.assert_array_equal(model.predict_proba(M), model.predict_proba(few))
    by_frame = model.reasons(few, top=3)
    by_matrix = pd.DataFrame(model.reason_columns(M, top=3), index=few.index)
    pd.testing.assert_frame_equal(by_matrix, by_frame)


def test_compiled_cache_keeps_only_the_most_recently_used_models(tmp_path):
    import os

    for i in range(25):
        path = tmp_path / f"churn-{i:02d}.o"
        path.write_bytes(b"x")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    old_partial = tmp_path / ".churn-99.o.abc.tmp"
    old_partial.write_bytes(b"x")
    os.utime(old_partial, (1_000_000, 1_000_000))
    other = tmp_path / "notes.txt"
    other.write_text("kept")
    churn.prune_cache(tmp_path, keep=20)
    kept = sorted(p.name for p in tmp_path.glob("churn-*.o"))
    assert kept == [f"churn-{i:02d}.o" for i in range(5, 25)]
    assert not old_partial.exists()
    assert other.exists()


def test_same_seed_same_probabilities_other_seed_others(train, test):
    y = train[schema.TARGET]
    a = ChurnModel(params=QUICK, n_jobs=1, random_state=5).fit(train, y)
    b = ChurnModel(params=QUICK, n_jobs=2, random_state=5).fit(train, y)  # OOF in 2 processes
    c = ChurnModel(params=QUICK, n_jobs=1, random_state=6).fit(train, y)
    np.testing.assert_array_equal(a.predict_proba(test), b.predict_proba(test))
    assert a.threshold_ == b.threshold_
    assert not np.array_equal(a.predict_proba(test), c.predict_proba(test))


def test_leakage_columns_and_column_order_do_not_change_scores(model):
    raw = synth.generate(300, seed=9)  # Kaggle format with both Naive_Bayes columns
    clean = validate(raw).clean
    with_leak = raw.copy()
    with_leak[schema.LEAKAGE[0]] = 1 - with_leak[schema.LEAKAGE[0]]  # scramble the leak
    shuffled = with_leak[list(reversed(with_leak.columns))]
    np.testing.assert_allclose(model.predict_proba(shuffled), model.predict_proba(clean))


def test_model_follows_the_estimator_api(model, train):
    fresh = ChurnModel.from_settings(Settings(seed=3, cv_folds=4))
    assert fresh.random_state == 3 and fresh.cv_folds == 4
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "estimator_")
    assert list(model.classes_) == [0, 1] and model.n_features_in_ == len(FEATURES)
    with pytest.raises(ValueError, match="both classes"):
        ChurnModel(params=QUICK, n_jobs=1).fit(train, np.zeros(len(train)))


def test_out_of_fold_proba_is_what_fit_thresholds_on(train):
    y = train[schema.TARGET]
    m = ChurnModel(params=QUICK, calibration="none", n_jobs=1, random_state=5)
    p = m.out_of_fold_proba(train, y)
    assert p.shape == (len(train),) and ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(y, p) > 0.95
    assert churn.choose_threshold(y, p) == m.fit(train, y).threshold_


def test_metrics_are_plain_json(model):
    text = json.dumps(model.metrics_)
    cv = json.loads(text)["cv"]
    assert set(cv) == {"roc_auc", "pr_auc", "f1", "precision", "recall"}
    assert all(0 <= v["mean"] <= 1 and v["sd"] >= 0 for v in cv.values())


def test_skops_round_trip_keeps_scores_and_reasons(model, test, tmp_path):
    path = tmp_path / "churn.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert all(t.split(".")[0] in {"nba", "lightgbm", "collections", "sklearn"} for t in untrusted)
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    pd.testing.assert_frame_equal(loaded.reasons(test.head(20)), model.reasons(test.head(20)))


# --- reasons ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_model(train) -> ChurnModel:
    """A model of a world where only few transactions mean churn (Total_Trans_Ct < 50)."""
    y = (train["Total_Trans_Ct"] < 50).astype(int)
    return ChurnModel(params=QUICK, n_jobs=1, random_state=5).fit(train, y)


def test_reasons_have_the_right_direction_on_a_constructed_case(ct_model, train):
    few = train.iloc[[0, 1]].copy()
    few["Total_Trans_Ct"] = [20, 120]
    r = ct_model.reasons(few, top=3)
    median = ct_model.medians_["Total_Trans_Ct"]
    assert list(r["reason_1_feature"]) == ["Total_Trans_Ct", "Total_Trans_Ct"]
    assert (
        r.loc[few.index[0], "reason_1"]
        == f"Transactions in 12 months 20 (below the typical {median:.0f}): for this customer "
        "it raises risk"
    )
    assert (
        r.loc[few.index[1], "reason_1"]
        == f"Transactions in 12 months 120 (above the typical {median:.0f}): for this customer "
        "it lowers risk"
    )
    assert (
        r.loc[few.index[0], "reason_1_contribution"]
        > 0
        > r.loc[few.index[1], "reason_1_contribution"]
    )
    assert list(r.columns[:3]) == ["reason_1", "reason_1_feature", "reason_1_contribution"]
    assert r.shape == (2, 9) and r.index.equals(few.index)


def test_reasons_are_ordered_by_strength_and_categoricals_show_the_mode(model, test):
    r = model.reasons(test.head(200), top=4)
    strength = r[[f"reason_{k}_contribution" for k in range(1, 5)]].abs().to_numpy()
    assert (np.diff(strength, axis=1) <= 1e-12).all()
    cats = r.melt(value_vars=[f"reason_{k}" for k in range(1, 5)])["value"]
    cats = cats[cats.str.startswith(schema.CATEGORICAL)]
    assert cats.str.contains(r"\(most common ").all()


def test_contributions_add_up_to_the_score_exactly(model, test):
    c = model.contributions(test)
    assert list(c.columns) == [*model.feature_names_, "bias"]
    np.testing.assert_allclose(c.sum(axis=1), model.decision_function(test), atol=1e-9)
    assert c["bias"].nunique() == 1


def test_global_importance_finds_the_only_driver(ct_model, test):
    table = ct_model.global_importance(test)
    assert table.loc[0, "feature"] == "Total_Trans_Ct"
    assert table["share"].sum() == pytest.approx(1.0)
    assert (np.diff(table["mean_abs_contribution"]) <= 0).all()


# --- selection helpers and the whole stage ----------------------------------------------------


def test_select_engineered_keeps_only_gains_beyond_noise():
    def rows(variant, pr, pr_sd, roc):
        return [
            {"variant": variant, "metric": "pr_auc", "delta": pr, "delta_sd": pr_sd, "folds": 25},
            {"variant": variant, "metric": "roc_auc", "delta": roc, "delta_sd": 0.001, "folds": 25},
        ]

    names = list(ENGINEERED)
    evidence = pd.DataFrame(
        rows(f"+{names[0]}", 0.004, 0.005, 0.001)  # 4 SE up: keep
        + rows(f"+{names[1]}", 0.0005, 0.005, 0.001)  # 0.5 SE: noise
        + rows(f"+{names[2]}", 0.004, 0.005, -0.001)  # ROC-AUC worse: drop
    )
    assert churn.select_engineered(evidence) == (names[0],)


def test_compare_candidates_returns_a_tidy_table(train):
    small = train.head(900)
    table = churn.compare_candidates(small, small[schema.TARGET], Settings(cv_folds=3), n_jobs=1)
    assert set(table["model"]) == set(churn.CANDIDATES)
    assert set(table["metric"]) == {*churn.SCORING, "fit_time_s"}
    assert len(table) == len(churn.CANDIDATES) * (len(churn.SCORING) + 1)
    assert (table["sd"] >= 0).all() and (table["folds"] == 3).all()
    auc = table[table.metric == "roc_auc"].set_index("model")["mean"]
    assert auc["lightgbm"] > 0.9


def test_tune_is_seeded_and_stays_in_the_search_space(train):
    small = train.head(900)
    kw = {"n_iter": 3, "engineered": (), "n_jobs": 1}
    best, table = churn.tune(small, small[schema.TARGET], Settings(cv_folds=3), **kw)
    again, _ = churn.tune(small, small[schema.TARGET], Settings(cv_folds=3), **kw)
    assert best == again and set(best) == set(churn.SEARCH_SPACE)
    assert table["chosen"].sum() == 1 and len(table) == 3
    assert 100 <= best["n_estimators"] <= 400 and 7 <= best["num_leaves"] <= 31


def test_train_churn_fast_returns_a_fitted_model_and_json_metrics():
    df = clean_synthetic(2500, seed=4)
    model, metrics = churn.train_churn(df, Settings(), TrainOptions.fast(n_jobs=1))
    json.dumps(metrics)
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall", "threshold"):
        assert 0 < metrics[key] < 1, key
    assert metrics["roc_auc"] > 0.95
    assert metrics["n_train"] + metrics["n_test"] == len(df)
    assert metrics["threshold"] == model.threshold_
    assert metrics["params"] == churn.TUNED_PARAMS
    assert set(metrics["cv"]["f1"]) == {"mean", "sd"}
    assert "candidates" not in metrics and "tuning" not in metrics


def test_reason_text_follows_a_new_fit(model, test):
    import copy

    m = copy.deepcopy(model)
    few = test.head(5)
    first = m.reasons(few, top=1)
    name = first["reason_1_feature"].iloc[0]
    new = 12345 if name not in CATEGORY_DTYPES else "Zzz"
    m.medians_ = {**m.medians_, name: new}  # what a refit does: new fitted attributes
    m.formats_ = {**m.formats_, name: "%.0f" if not isinstance(new, str) else "%s"}
    again = m.reasons(few, top=1)["reason_1"].iloc[0]
    assert ("typical 12345" in again) or ("most common: Zzz" in again)
    assert again != first["reason_1"].iloc[0]
