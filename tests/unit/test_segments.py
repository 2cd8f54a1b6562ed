"""Stage 2 segments on synthetic customers: baseline, estimator API, names, descriptions, charts."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from nba import segments as sg
from nba.config import Settings
from nba.data import schema, synth
from nba.data.validate import validate
from nba.segments import space

ROWS = 3000


def _clean(rows: int, seed: int) -> pd.DataFrame:
    return validate(synth.generate(rows, seed)).clean


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return _clean(ROWS, 11)


@pytest.fixture(scope="module")
def other_customers() -> pd.DataFrame:
    return _clean(700, 12)


@pytest.fixture(scope="module")
def fitted(customers: pd.DataFrame) -> sg.Segmenter:
    return sg.Segmenter(Settings(seed=5)).fit(customers)


# --- baseline -----------------------------------------------------------------------------------


def test_baseline_has_three_groups_covering_everyone(customers):
    result = sg.baseline(customers, Settings())
    assert len(result.groups) == 3
    assert result.groups["size"].sum() == len(customers)
    assert set(np.unique(result.labels)) == {0, 1, 2}
    assert -1 <= result.silhouette_pca2 <= 1
    # groups are ordered by churn, like the prototype's 8.1 %, 10.7 %, 30.3 %
    assert result.groups["churn_rate"].is_monotonic_increasing
    # the churn rates are the real rates of the labelled customers
    expected = customers[schema.TARGET].groupby(result.labels).mean().to_numpy()
    np.testing.assert_allclose(result.groups["churn_rate"], expected)
    json.dumps(result.to_dict(), allow_nan=False)


def test_baseline_comparison_has_numeric_and_one_hot_rows(customers):
    table = sg.baseline_comparison(customers, Settings())
    assert list(table["features"]) == ["numeric", "numeric + one-hot categoricals"]
    assert (table[["size_0", "size_1", "size_2"]].sum(axis=1) == len(customers)).all()
    assert table["silhouette_pca2"].between(-1, 1).all()


# --- estimator API ------------------------------------------------------------------------------


def test_fit_returns_self_and_sets_fitted_attributes(customers):
    seg = sg.Segmenter(Settings(seed=5))
    with pytest.raises(NotFittedError):
        seg.predict(customers)
    assert seg.fit(customers) is seg
    assert len(seg.labels_) == len(customers)
    assert seg.cluster_centers_.shape == (seg.n_segments, 3)
    assert clone(seg).get_params() == seg.get_params()


def test_same_seed_gives_same_assignments_and_names(customers, fitted):
    again = sg.Segmenter(Settings(seed=5)).fit(customers)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    assert again.names_ == fitted.names_
    assert again.descriptions_ == fitted.descriptions_


def test_segment_ids_are_ordered_by_size(fitted):
    assert list(fitted.sizes_) == sorted(fitted.sizes_, reverse=True)
    assert fitted.sizes_.sum() == len(fitted.labels_)


def test_at_least_four_segments_by_default(fitted):
    assert fitted.n_segments >= 4
    assert len(np.unique(fitted.labels_)) == fitted.n_segments


def test_assign_new_customers(fitted, other_customers):
    out = fitted.assign(other_customers)
    assert len(out) == len(other_customers)
    assert out.index.equals(other_customers.index)
    assert out["segment"].between(0, fitted.n_segments - 1).all()
    assert out["segment"].dtype.kind == "i"
    names = np.asarray(fitted.names_)[out["segment"].to_numpy()]
    assert (out["segment_name"].to_numpy() == names).all()
    assert (out[schema.ID].to_numpy() == other_customers[schema.ID].to_numpy()).all()
    np.testing.assert_array_equal(out["segment"], fitted.predict(other_customers))


def test_assign_needs_only_the_clustering_columns(fitted, other_customers):
    slim = other_customers[["Total_Trans_Amt", "Total_Trans_Ct", "Total_Revolving_Bal"]]
    assert fitted.assign(slim)["segment"].between(0, fitted.n_segments - 1).all()


def test_missing_column_is_named(fitted, other_customers):
    with pytest.raises(ValueError, match="Total_Trans_Ct"):
        fitted.predict(other_customers.drop(columns="Total_Trans_Ct"))


def test_revolver_flag_follows_the_balance():
    df = pd.DataFrame({"Total_Trans_Amt": [100, 100], "Total_Trans_Ct": [5, 5]})
    df["Total_Revolving_Bal"] = [0, 1]
    x = sg.NeedsFeatures(sg.FEATURE_SETS["spend_revolver"], log=True).fit(df).transform(df)
    np.testing.assert_array_equal(x[:, 2], [0.0, 1.0])
    np.testing.assert_allclose(x[:, 0], np.log1p(100))


def test_skops_round_trip_trusts_only_project_types(fitted, other_customers):
    skops = pytest.importorskip("skops.io")
    blob = skops.dumps(fitted)
    untrusted = skops.get_untrusted_types(data=blob)
    assert all(t.startswith("nba.") for t in untrusted)
    loaded = skops.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(other_customers), fitted.predict(other_customers))
    assert loaded.names_ == fitted.names_


# --- profiles, names, descriptions ---------------------------------------------------------------


def test_names_unique_and_non_empty(fitted):
    assert len(fitted.names_) == fitted.n_segments
    assert len(set(fitted.names_)) == fitted.n_segments
    assert all(n.strip() for n in fitted.names_)


def test_names_follow_the_rules_of_the_profile(customers, fitted):
    base_spend = customers["Total_Trans_Amt"].median()
    for s, name in enumerate(fitted.names_):
        members = customers[fitted.labels_ == s]
        ratio = members["Total_Trans_Amt"].median() / base_spend
        assert name.startswith(sg.spend_tier(ratio))
        revolving = (members["Total_Revolving_Bal"] > 0).mean()
        assert ("revolvers" if revolving >= 0.5 else "transactors") in name


def test_names_stay_attached_to_profiles_when_the_seed_changes(customers, fitted):
    other = sg.Segmenter(Settings(seed=6)).fit(customers)
    assert sorted(other.names_) == sorted(fitted.names_)
    for name in fitted.names_:
        a = customers[fitted.labels_ == fitted.names_.index(name)]
        b = customers[other.labels_ == other.names_.index(name)]
        assert abs(len(a) - len(b)) <= 0.02 * len(customers)


def test_duplicate_base_names_are_made_unique():
    k = 3
    cols = sg.PROFILE_COLUMNS
    median = np.ones((k, len(cols)))
    median[:, cols.index("Total_Trans_Amt")] = [1.0, 1.1, 1.2]  # all "Everyday"
    mean = np.zeros((k, len(cols)))
    mean[:, cols.index(sg.REVOLVER)] = 1.0  # all revolvers
    p = sg.Profile(
        columns=cols,
        size=np.array([10, 10, 10]),
        mean=mean,
        median=median,
        base_mean=np.zeros(len(cols)),
        base_std=np.ones(len(cols)),
        base_median=np.ones(len(cols)),
        churn=np.array([0.1, 0.2, 0.3]),
        base_churn=0.2,
    )
    names = sg.name_segments(p)
    assert len(set(names)) == 3
    assert all(n.startswith("Everyday revolvers") for n in names)
    assert names[0].endswith("(spend rank 1 of 3)")


def test_descriptions_quote_numbers_from_the_data(customers, fitted):
    base_churn = customers[schema.TARGET].mean()
    for s, text in enumerate(fitted.descriptions_):
        members = customers[fitted.labels_ == s]
        assert f"{len(members):,} customers" in text
        assert f"${members['Total_Trans_Amt'].median():,.0f} a year" in text
        spend_ratio = members["Total_Trans_Amt"].median() / customers["Total_Trans_Amt"].median()
        assert f"{spend_ratio:.1f}× the base median" in text
        assert f"Churn {members[schema.TARGET].mean():.1%} against {base_churn:.1%}" in text
        assert text.startswith(fitted.names_[s])


def test_profiles_table(customers, fitted):
    table = fitted.profiles_
    assert list(table.columns[:6]) == [
        "segment",
        "name",
        "description",
        "size",
        "share",
        "churn_rate",
    ]
    assert table["size"].sum() == len(customers)
    assert table["share"].sum() == pytest.approx(1.0)
    expected = customers[schema.TARGET].groupby(fitted.labels_).mean().to_numpy()
    np.testing.assert_allclose(table["churn_rate"], expected)


def test_profile_charts_are_titled_and_labelled(fitted):
    charts = fitted.profile_charts()
    assert sorted(charts) == list(range(fitted.n_segments))
    for s, fig in charts.items():
        ax = fig.axes[0]
        assert fitted.names_[s] in ax.get_title()
        assert re.search(r"\(.+\)", ax.get_xlabel()), "x axis needs a unit"
        assert ax.get_ylabel()
        assert len(ax.patches) == len(sg.PROFILE_COLUMNS)
    with pytest.raises(ValueError, match="segment must be between"):
        fitted.profile_chart(fitted.n_segments)


def test_selection_plot_is_labelled(customers):
    table = sg.compare_segmentations(
        customers,
        Settings(),
        candidates=[("spend_revolver", "log")],
        ks=[3, 4],
        n_boot=2,
        progress=False,
    )
    fig = sg.plot_selection(table, "spend_revolver", "log")
    assert fig.get_suptitle()
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)


# --- comparison, choice, metrics ----------------------------------------------------------------


def test_compare_is_tidy_and_choice_respects_floors(customers):
    table = sg.compare_segmentations(
        customers,
        Settings(),
        candidates=[("spend_revolver", "log"), ("original4", "none")],
        ks=[4, 5],
        n_boot=3,
        progress=False,
    )
    assert len(table) == 4
    for col in (
        "inertia",
        "silhouette",
        "calinski_harabasz",
        "stability_ari",
    ):
        assert col in table
    assert not [c for c in table.columns if "churn" in c]  # churn is not a selection measure
    assert table["stability_ari"].between(-1, 1).all()
    # inertia falls as k grows within a candidate (the elbow curve)
    for _, t in table.groupby(["feature_set", "transform"]):
        assert t.sort_values("k")["inertia"].is_monotonic_decreasing
    try:
        choice = sg.choose_segmentation(table)
    except ValueError:
        assert not sg.eligibility(table)["eligible"].any()
    else:
        row = choice.row
        assert row["k"] >= sg.MIN_K and row["silhouette"] >= sg.MIN_SILHOUETTE
        assert row["stability_ari"] >= sg.MIN_STABILITY
        assert choice.feature_set in choice.rationale and f"k={choice.k}" in choice.rationale


def test_choice_prefers_more_needs_among_eligible():
    base = {
        "transform": "log",
        "stability_ari": 0.99,
        "stability_ari_min": 0.98,
        "smallest_share": 0.1,
        "purity": 1.0,
        "silhouette_pca2": 0.6,
        "calinski_harabasz": 1000.0,
        "inertia": 1.0,
    }
    table = pd.DataFrame(
        [
            {**base, "feature_set": "amount_revolver", "n_features": 2, "k": 5, "silhouette": 0.66},
            {**base, "feature_set": "spend_revolver", "n_features": 3, "k": 5, "silhouette": 0.58},
            {**base, "feature_set": "needs_all", "n_features": 10, "k": 5, "silhouette": 0.20},
        ]
    )
    choice = sg.choose_segmentation(table)
    assert (choice.feature_set, choice.k) == ("spend_revolver", 5)
    with pytest.raises(ValueError, match="no candidate"):
        sg.choose_segmentation(table.assign(silhouette=0.1))


def test_the_choice_does_not_read_churn(customers):
    # the same customers with churn shuffled, or without it, give the same table and choice:
    # differing in churn is a finding measured afterwards, not a filter of the selection
    args = dict(candidates=[("spend_revolver", "log")], ks=[4, 5], n_boot=2, progress=False)
    table = sg.compare_segmentations(customers, Settings(), **args)
    shuffled = customers.assign(
        **{schema.TARGET: customers[schema.TARGET].sample(frac=1, random_state=3).to_numpy()}
    )
    pd.testing.assert_frame_equal(table, sg.compare_segmentations(shuffled, Settings(), **args))
    blind = sg.compare_segmentations(customers.drop(columns=schema.TARGET), Settings(), **args)
    pd.testing.assert_frame_equal(table, blind)
    assert not any("churn" in c for c in sg.eligibility(table).columns)


def test_elbow_of_a_bent_curve():
    table = pd.DataFrame({"k": [2, 3, 4, 5, 6], "inertia": [100.0, 40.0, 30.0, 25.0, 22.0]})
    assert sg.elbow_k(table) == 3


def test_metrics_are_json_and_complete(customers, other_customers, fitted):
    m = sg.segment_metrics(fitted, customers, other_customers, n_boot=3)
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    for key in (
        "k",
        "silhouette",
        "silhouette_pca2",
        "calinski_harabasz",
        "stability_ari",
        "churn_rate",
        "churn_ratio",
    ):
        assert key in m
    assert m["k"] == fitted.n_segments
    assert 0 <= m["stability_ari"] <= 1
    labels = fitted.predict(other_customers)
    rates = other_customers[schema.TARGET].groupby(labels).mean()
    assert m["churn_rate"]["0"] == pytest.approx(rates[0], abs=1e-4)
    assert m["churn_ratio"] == pytest.approx(rates.max() / rates.min(), rel=1e-3)
    # the criteria's figures are on the held-out customers, each inside its interval
    for key in ("silhouette_test", "stability_ari_test", "churn_ratio"):
        high = m[f"{key}_high"]  # null: unbounded (a resample's safest segment kept everyone)
        assert m[f"{key}_low"] <= m[key] <= (float("inf") if high is None else high), key
    assert m["n_interval"] == 200 and m["interval_level"] == 0.95
    # the training stability is unchanged by also scoring the held-out customers
    raw = space.predict_pipeline(fitted.pipeline_, customers)
    alone = sg.bootstrap_ari(fitted.pipeline_, customers, raw, fitted.seed, 3)
    assert m["stability_ari"] == pytest.approx(alone.mean(), abs=1e-4)


def test_churn_ratio_interval_widens_with_fewer_customers():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 2000)
    churn = np.where(labels == 1, rng.random(4000) < 0.4, rng.random(4000) < 0.05)
    wide = sg.churn_ratio_interval(churn[::20], labels[::20], 2, seed=1)
    narrow = sg.churn_ratio_interval(churn, labels, 2, seed=1)
    point = sg.churn_ratio(sg.churn_rates(churn, labels, 2))
    assert narrow[0] < point < narrow[1]
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_silhouette_interval_holds_the_point_estimate():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))]
    labels = np.repeat([0, 1], 300)
    low, high = sg.silhouette_interval(X, labels, seed=2)
    assert low < sg.silhouette(X, labels, 2) < high < 1
    assert np.isnan(sg.silhouette_interval(X, np.zeros(600, dtype=int), seed=2)[0])


def test_churn_ratio_edge_cases():
    assert sg.churn_ratio(np.array([0.1, 0.4])) == pytest.approx(4.0)
    assert sg.churn_ratio(np.array([0.0, 0.4])) == float("inf")
    assert sg.churn_ratio(np.array([np.nan, 0.2, 0.4])) == pytest.approx(2.0)


def test_fit_without_churn_column(customers):
    seg = sg.Segmenter(Settings(seed=5)).fit(customers.drop(columns=schema.TARGET))
    assert np.isnan(seg.churn_rate_).all()
    assert not any("Churn" in d for d in seg.descriptions_)
    assert seg.metrics_["churn_ratio"] is None
    json.dumps(seg.metrics_, allow_nan=False)


def test_direct_nearest_centre_equals_kmeans_predict():
    """Segmenter.predict skips KMeans.predict's thread-pool set-up; the answer must not change."""
    clean = validate(synth.generate(3000, 17)).clean
    segmenter = sg.Segmenter(Settings()).fit(clean)
    other = validate(synth.generate(2000, 18)).clean
    expected = segmenter.pipeline_.predict(other)  # scikit-learn's own KMeans.predict
    np.testing.assert_array_equal(sg.predict_pipeline(segmenter.pipeline_, other), expected)


def test_predict_equals_the_pipeline_and_kmeans_for_small_and_large_batches(fitted, monkeypatch):
    big = validate(synth.generate(12_000, 21)).clean
    want = fitted.label_map_[fitted.pipeline_.predict(big)]  # scikit-learn's own path
    np.testing.assert_array_equal(sg.pipeline_space(fitted.pipeline_, big), fitted.transform(big))
    assert len(big) >= space._ONE_THREAD_FROM  # the one-BLAS-thread branch
    np.testing.assert_array_equal(fitted.predict(big), want)
    monkeypatch.setattr(space, "_ONE_THREAD_FROM", 10**9)  # the small-batch branch, same rows
    np.testing.assert_array_equal(fitted.predict(big), want)
    one = big.iloc[[7]]
    np.testing.assert_array_equal(fitted.predict(one), want[[7]])


def test_profile_bars_agree_with_their_labels(fitted):
    """A bar is drawn above the line exactly when its label's segment value is above the
    base's (the chart once drew means while its labels quoted medians)."""
    from nba.plots import profile_difference
    from nba.segments.space import REVOLVER

    p = fitted.profile()
    for s in range(p.k):
        d = profile_difference(p, s)
        fig = fitted.profile_chart(s)
        widths = [bar.get_width() for bar in fig.axes[0].patches][::-1]  # top row first
        for j, column in enumerate(sg.PROFILE_COLUMNS):
            seg, base = (
                (p.mean[s, j], p.base_mean[j])
                if column == REVOLVER
                else (p.median[s, j], p.base_median[j])
            )
            assert np.sign(d[j]) == np.sign(seg - base) or (seg == base == 0), column
            assert np.sign(widths[j]) == np.sign(d[j]), column


def test_targets_caption_quotes_the_held_out_figures_and_calls_k_by_design():
    from nba.value import check_criteria

    metrics = {"k": 5, "silhouette": 0.58, "silhouette_pca2": 0.62, "stability_ari": 0.99}
    metrics |= {
        "n_bootstrap": 20,
        "stability_ari_min": 0.98,
        "silhouette_within_credit_groups": 0.59,
    }
    measured = {"silhouette_test": 0.45, "k": 5, "stability_ari_test": 0.99}
    checked = check_criteria({"segments": {**measured, "churn_ratio_high_low": 21.4}})
    intervals = {("segments", "silhouette_test"): (0.40, 0.50)}
    intervals |= {("segments", "stability_ari_test"): (0.98, 1.0)}
    intervals |= {("segments", "churn_ratio_high_low"): (15.5, 35.5)}
    from nba.evaluation import criterion_evidence

    targets = criterion_evidence(checked.query("stage == 'segments'"), intervals)
    text = sg.targets_caption(targets.set_index("metric"), metrics, 0.489, 1621)
    assert text.startswith("**On the 1,621 held-out customers, 2 of 3 measured targets are met.**")
    assert "silhouette_test 0.45 (95 % interval 0.4 to 0.5) >= 0.5: **not met**" in text
    assert "(5) holds **by design**" in text and "baseline 0.489" in text
