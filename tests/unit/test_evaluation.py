"""nba.evaluation: the paired bootstrap behind the restated stage-1 comparison, fairness slices
with intervals, and the acceptance of each stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba import evaluation, fairness
from nba.value import check_criteria


def test_vectorised_resamples_equal_scikit_learn_on_each_resample():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.round(rng.random(500) * 0.5 + y * 0.3, 2)  # many ties, as real scores have
    weights = evaluation._resample_weights(y, 30, seed=3)
    assert (weights.sum(axis=1) == len(y)).all()
    assert (weights[:, y == 1].sum(axis=1) == y.sum()).all()  # stratified: churners stay churners
    got = evaluation._weighted_lead_metrics(y, p, 0.4, weights)
    draws = np.random.default_rng(3)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for b in range(30):
        idx = np.concatenate([draws.choice(pos, len(pos)), draws.choice(neg, len(neg))])
        expected = evaluation._lead_metrics(y[idx], p[idx], 0.4)
        assert got["pr_auc"][b] == pytest.approx(expected["pr_auc"], abs=1e-12)
        assert got["f1"][b] == pytest.approx(expected["f1"], abs=1e-12)


def test_the_bootstrap_needs_a_resample():
    with pytest.raises(ValueError, match="n_boot >= 1"):
        evaluation.baseline_comparison(object(), None, None, n_boot=0)


# --- fairness slices: intervals and the one set of age bands ------------------------------------


def _customers(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "Gender": rng.choice(["F", "M"], n),
            "Customer_Age": rng.integers(26, 74, n),
            "Income_Category": rng.choice(["Less than $40K", "$60K - $80K"], n),
        }
    )
    y = (rng.random(n) < 0.2).astype(int)
    p = np.clip(0.6 * y + 0.5 * rng.random(n), 0, 1)
    return df, y, p


def test_fairness_slices_use_the_project_age_bands_and_wilson_intervals():
    df, y, p = _customers()
    slices = evaluation.fairness_slices(df, y, p, 0.5)
    ages = slices[slices.attribute == "age band"]
    assert list(ages.group) == [b for b in fairness.AGE_LABELS if b in set(ages.group)]
    assert set(ages.group) <= set(fairness.AGE_LABELS)  # the adverse-impact tables' bands
    assert ages.customers.sum() == len(df)
    # each group's figures recomputed by hand, and inside their Wilson intervals
    band = fairness.age_bands(df["Customer_Age"]).astype(str)
    for row in slices.itertuples():
        m = (df[row.attribute] if row.attribute != "age band" else band).to_numpy() == row.group
        churners, flagged = y[m] == 1, p[m] >= 0.5
        assert row.churners == churners.sum()
        assert row.recall == pytest.approx(flagged[churners].mean())
        low, high = fairness.wilson(np.array([flagged[churners].sum()]), np.array([row.churners]))
        assert (row.recall_low, row.recall_high) == pytest.approx((low[0], high[0]))
        for rate in ("churn_rate", "flagged_rate", "precision", "recall"):
            r = slices.loc[row.Index]
            assert r[f"{rate}_low"] <= r[rate] <= r[f"{rate}_high"]
    assert (slices.small == (slices.customers < fairness.MIN_GROUP)).all()


def test_small_groups_are_flagged_and_have_wide_intervals():
    df, y, p = _customers()
    df.loc[df.index[:40], "Customer_Age"] = 70  # the only 65+ customers: 40 of them
    df.loc[df.index[40:], "Customer_Age"] = df.loc[df.index[40:], "Customer_Age"].clip(upper=60)
    slices = evaluation.fairness_slices(df, y, p, 0.5).set_index(["attribute", "group"])
    old, big = slices.loc[("age band", "65+")], slices.loc[("age band", "45-54")]
    assert old.small and not big.small
    assert old.recall_high - old.recall_low > big.recall_high - big.recall_low


def test_recall_gap_compares_big_groups_with_a_difference_interval():
    slices = pd.DataFrame(
        {
            "attribute": ["a", "a", "a", "b", "b"],
            "group": ["x", "y", "tiny", "u", "v"],
            "customers": [1000, 1000, 20, 1000, 1000],
            "churners": [200, 200, 5, 40, 40],
            "recall": [0.95, 0.80, 0.0, 0.90, 0.85],
        }
    )
    gaps = evaluation.recall_gap(slices).set_index("attribute")
    a, b = gaps.loc["a"], gaps.loc["b"]
    assert (a.min_group, a.max_group) == ("y", "x")  # the 20-customer group is not compared
    assert a.gap == pytest.approx(0.15) and a.groups_too_small == 1
    assert a.gap_low <= a.gap <= a.gap_high and a.significant  # 200 churners each: not noise
    assert b.gap_low < 0 < b.gap_high and not b.significant  # 40 churners each: noise


# --- acceptance per stage and the retired targets ------------------------------------------------


def _criteria(measured: dict) -> pd.DataFrame:
    return check_criteria(measured)


def test_a_stage_is_accepted_only_when_every_interval_clears_its_target():
    measured = {
        "churn": {
            "pr_auc_lead_vs_lightgbm": 0.01,
            "pr_auc_lead_vs_hist_gradient_boosting": 0.01,
            "f1_lead_vs_lightgbm": 0.02,
            "f1_lead_vs_hist_gradient_boosting": 0.02,
            "ece": 0.005,
        }
    }
    clear = {("churn", m): (v / 2, v * 2) for m, v in measured["churn"].items()}
    clear[("churn", "ece")] = (0.003, 0.008)
    verdict = evaluation.stage_acceptance(evaluation.criterion_evidence(_criteria(measured), clear))
    churn = verdict.set_index("stage").loc["churn"]
    assert churn.verdict == "accepted" and churn.clearly_met == 5
    # one lead whose interval reaches below 0: met, but only with conditions
    loose = {**clear, ("churn", "f1_lead_vs_lightgbm"): (-0.01, 0.05)}
    table = evaluation.criterion_evidence(_criteria(measured), loose)
    churn = evaluation.stage_acceptance(table).set_index("stage").loc["churn"]
    assert churn.verdict == "accepted with conditions"
    assert "F1 lead over a default LightGBM" in churn.reason and churn.conditions
    # a miss, even within its interval, is not accepted, and the reason says it is noise
    missed = {"churn": {**measured["churn"], "pr_auc_lead_vs_hist_gradient_boosting": -0.001}}
    loose[("churn", "pr_auc_lead_vs_hist_gradient_boosting")] = (-0.006, 0.004)
    table = evaluation.criterion_evidence(_criteria(missed), loose)
    churn = evaluation.stage_acceptance(table).set_index("stage").loc["churn"]
    assert churn.verdict == "not accepted" and "sampling noise" in churn.reason


def test_simulated_actions_are_accepted_only_as_a_pilot_and_design_is_not_evidence():
    uplift = {
        "net_value_uplift_vs_no_action": 10.0,
        "net_value_uplift_vs_churn_score_one_offer": 5.0,
        "net_value_uplift_vs_random_action": 7.0,
    }
    segments = {"silhouette_test": 0.6, "k": 5, "stability_ari_test": 0.99}
    segments["churn_ratio_high_low"] = 20.0
    intervals = {("segments", "silhouette_test"): (0.55, 0.65)}
    intervals |= {("segments", "stability_ari_test"): (0.98, 1.0)}
    intervals |= {("segments", "churn_ratio_high_low"): (12.0, 40.0)}
    table = evaluation.criterion_evidence(
        _criteria({"actions": uplift, "segments": segments}), intervals
    )
    verdicts = evaluation.stage_acceptance(table).set_index("stage")
    assert verdicts.loc["actions", "verdict"] == "accepted with conditions"
    assert "control group" in verdicts.loc["actions", "conditions"]
    assert "net value over doing nothing \\$10 > 0" in verdicts.loc["actions", "reason"]
    assert verdicts.loc["segments", "verdict"] == "accepted"  # k is by design, not counted
    assert (
        verdicts.loc["segments", "clearly_met"] == 3
        and "By design" in verdicts.loc["segments", "reason"]
    )
    assert verdicts.loc["churn", "verdict"] == "not accepted"  # nothing measured
    # a segmentation whose held-out churn ratio misses is not accepted
    worse = {**segments, "churn_ratio_high_low": 6.0}
    intervals[("segments", "churn_ratio_high_low")] = (4.0, 9.0)
    table = evaluation.criterion_evidence(_criteria({"segments": worse}), intervals)
    assert (
        evaluation.stage_acceptance(table).set_index("stage").loc["segments", "verdict"]
        == "not accepted"
    )


def test_retired_targets_are_read_against_the_intervals():
    intervals = pd.DataFrame(
        {
            "metric": ["roc_auc", "pr_auc", "f1"],
            "value": [0.994, 0.97, 0.95],
            "ci_low": [0.991, 0.96, 0.94],
            "ci_high": [0.997, 0.975, 0.96],
        }
    )
    targets = {"roc_auc": 0.996, "pr_auc": 0.98, "f1": 0.935}
    table = evaluation.retired_targets(intervals, targets).set_index("metric")
    assert table.loc["roc_auc", "reading"] == "within noise" and not table.loc["roc_auc", "met"]
    assert table.loc["pr_auc", "reading"] == "missed beyond noise"
    assert table.loc["f1", "reading"] == "met beyond noise" and table.loc["f1", "met"]


def test_the_stories_quote_the_tables():
    retired = pd.DataFrame(
        {
            "metric": ["roc_auc", "recall", "precision"],
            "met": [False, False, True],
            "reading": ["within noise", "missed beyond noise", "within noise"],
        }
    )
    text = evaluation.retired_story(retired, 1621)
    assert "miss 2 of 3 (roc_auc, recall)" in text and "1 of those misses lies" in text
    assert "(recall: these customers show" in text and "1,621 customers" in text
    slices = pd.DataFrame(
        {
            "attribute": ["Income_Category", "age band"],
            "group": ["$40K - $60K", "65+"],
            "customers": [300, 17],
            "churners": [40, 2],
            "small": [False, True],
            "recall": [0.9, 1.0],
            "recall_low": [0.77, 0.34],
            "recall_high": [0.96, 1.0],
        }
    )
    gaps = pd.DataFrame(
        {
            "attribute": ["Income_Category"],
            "min_group": ["$40K - $60K"],
            "min": [0.8],
            "max_group": ["Unknown"],
            "max": [0.9],
            "gap": [0.1],
            "gap_low": [-0.02],
            "gap_high": [0.3],
            "significant": [False],
        }
    )
    text = evaluation.fairness_story(slices, gaps, 100)
    assert "\\$40K - \\$60K" in text  # dollars escaped: money, not maths
    assert "within sampling noise" in text and "0 of 1 gaps" in text
    assert "1 group (age band 65+: 17 customers, 2 churners" in text
    acceptance = pd.DataFrame(
        {
            "name": ["stage 2, segments"],
            "verdict": ["accepted"],
            "reason": ["r."],
            "conditions": [""],
        }
    )
    story = evaluation.acceptance_story(acceptance, retired, 1621)
    assert story.startswith("- **Stage 2, segments: accepted.** r.")
    assert "1 of the 2 missed lies within sampling noise of these 1,621 customers" in story


def test_the_fairness_figure_draws_the_recall_intervals():
    from nba import plots

    df, y, p = _customers()
    slices = evaluation.fairness_slices(df, y, p, 0.5)
    fig = plots.fairness_recall(slices)
    recall_bars = fig.axes[0].containers[1]  # after its error bars' own container
    assert recall_bars.errorbar is not None and len(recall_bars) == len(slices)
    lines = recall_bars.errorbar.lines[2][0].get_segments()  # one vertical segment per bar
    tops = [100 * h for h in slices.recall_high]
    assert [seg[:, 1].max() for seg in lines] == pytest.approx(tops)


def test_the_actions_story_quotes_the_whole_base_and_the_held_out_customers():
    actions = {
        "expected_net_value": 69036.7,
        "uplift": {"net_value_uplift_vs_no_action": 69036.7},
        "held_out": {"customers": 1621, "uplift": {"net_value_uplift_vs_no_action": 12649.9}},
    }
    text = evaluation.actions_story(actions, 8101, 6480)
    assert "expected net value is \\$69,037" in text  # the one-truth test reads this phrase
    assert "all 8,101 customers, 6,480 of whom trained" in text
    assert "1,621 held-out customers alone" in text and "no action: \\$12,650" in text
