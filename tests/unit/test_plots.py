"""nba.plots: every figure function returns a titled Figure with labelled axes, off pyplot."""

from __future__ import annotations

import io

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from nba import plots
from nba.config import Settings
from nba.data import schema, synth
from nba.data.validate import validate
from nba.value import customer_value, value_components


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """300 valid synthetic customers with `churn` (never real rows)."""
    return validate(synth.generate(300, 11)).clean


def _labelled(ax) -> None:
    assert ax.get_title(), "axes without a title"
    assert ax.get_xlabel(), f"no x label on {ax.get_title()!r}"
    assert ax.get_ylabel(), f"no y label on {ax.get_title()!r}"


def _bar_colors(ax) -> list[str]:
    return [mcolors.to_hex(p.get_facecolor()) for p in ax.patches]


def test_churn_balance_has_one_bar_per_class(clean):
    fig = plots.churn_balance(clean)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    _labelled(ax)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [(clean.churn == 0).sum(), (clean.churn == 1).sum()]


def test_class_histogram_shows_each_class_as_a_share_of_itself(clean):
    fig = plots.class_histogram(
        clean["Total_Trans_Ct"], clean["churn"], title="t", xlabel="transactions (count)"
    )
    ax = fig.axes[0]
    _labelled(ax)
    # each class's bars sum to 100 % of that class
    totals = [sum(p.get_height() for p in patch.patches) for patch in ax.containers]
    assert totals == pytest.approx([100.0, 100.0])


def test_count_columns_get_one_bar_per_value(clean):
    fig = plots.class_histogram(
        clean["Months_Inactive_12_mon"], clean["churn"], title="t", xlabel="months"
    )
    values = np.unique(clean["Months_Inactive_12_mon"])
    assert len(fig.axes[0].containers[0].patches) == len(values)


def test_customer_value_figures(clean):
    settings = Settings()
    fig = plots.customer_value_distribution(customer_value(clean, settings), clean)
    _labelled(fig.axes[0])
    assert "$" in fig.axes[0].get_xlabel()

    fig = plots.value_components(value_components(clean, settings), clean)
    ax = fig.axes[0]
    _labelled(ax)
    assert len(ax.patches) == 2 * 5  # two classes × four components and the net value


def test_feature_separation_highlights_the_named_features():
    sep = pd.DataFrame({"auc": [0.8, 0.6, 0.55]}, index=["Total_Trans_Ct", "Gender", "Age"])
    fig = plots.feature_separation(sep, highlight=["Total_Trans_Ct"])
    ax = fig.axes[0]
    _labelled(ax)
    assert len(ax.patches) == 3
    colors = dict(zip([t.get_text() for t in ax.get_yticklabels()], _bar_colors(ax), strict=True))
    assert colors["Total_Trans_Ct"] == mcolors.to_hex(plots.HIGHLIGHT)
    assert colors["Gender"] != colors["Total_Trans_Ct"]
    assert ax.get_legend() is not None


@pytest.mark.parametrize("column", schema.CATEGORICAL)
def test_category_profile_has_two_labelled_panels(clean, column):
    fig = plots.category_profile(clean, column)
    left, right = fig.axes
    for ax in (left, right):
        _labelled(ax)
    n = clean[column].nunique()
    assert len(left.patches) == 2 * n  # existing and attrited share per category
    assert len(right.patches) == n  # churn rate per category
    rates = clean.groupby(column)["churn"].mean() * 100
    assert sorted(p.get_height() for p in right.patches) == pytest.approx(sorted(rates))


def test_income_labels_are_not_read_as_maths(clean):
    fig = plots.category_profile(clean, "Income_Category")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert all("$" not in label or r"\$" in label for label in labels)
    assert plots.tex("$40K - $60K") == r"\$40K - \$60K"
    assert plots.tex(plots.tex("$40K")) == plots.tex("$40K")
    fig.savefig(io.BytesIO(), format="png")  # renders without a mathtext error


def test_numeric_distributions_one_panel_per_column(clean):
    fig = plots.numeric_distributions(clean, schema.NUMERIC)
    assert len(fig.axes) == len(schema.NUMERIC)
    assert fig.get_suptitle()
    for ax, column in zip(fig.axes, schema.NUMERIC, strict=True):
        _labelled(ax)
        assert ax.get_title() == column
        assert "(" in ax.get_xlabel()  # unit in brackets


def test_correlation_heatmap_is_square_with_a_colorbar(clean):
    columns = [*schema.NUMERIC[:5], schema.TARGET]
    fig = plots.correlation_heatmap(clean, columns)
    ax, colorbar = fig.axes
    _labelled(ax)
    assert ax.images[0].get_array().shape == (len(columns), len(columns))
    assert colorbar.get_ylabel()


def test_outlier_counts_one_bar_per_column():
    outliers = pd.DataFrame({"outliers": [5, 0, 12]}, index=["a", "b", "c"])
    fig = plots.outlier_counts(outliers)
    ax = fig.axes[0]
    _labelled(ax)
    assert sorted(p.get_width() for p in ax.patches) == [0, 5, 12]


def test_signed_bars_colour_by_sign():
    values = pd.Series({"up": 0.3, "down": -0.2, "flat": 0.0})
    fig = plots.signed_bars(values, title="t", xlabel="correlation (-1 to 1)")
    ax = fig.axes[0]
    _labelled(ax)
    colors = dict(zip([t.get_text() for t in ax.get_yticklabels()], _bar_colors(ax), strict=True))
    assert colors["up"] == mcolors.to_hex(plots.CLASS_COLORS[1])
    assert colors["down"] == mcolors.to_hex(plots.CLASS_COLORS[0])


def test_permutation_importance_bars_with_error_bars():
    importance = pd.DataFrame(
        {"importance": [0.1, 0.02, -0.0001], "std": [0.01, 0.005, 0.0002]},
        index=["Total_Trans_Ct", "Avg_Trans_Amt", "Gender"],
    )
    fig = plots.permutation_importance(importance, highlight=["Avg_Trans_Amt"])
    ax = fig.axes[0]
    _labelled(ax)
    assert len(ax.patches) == 3
    labels = [t.get_text() for t in ax.texts]
    assert "-0.000" not in labels and "0.000" in labels


def test_split_balance_two_panels_two_bars_each():
    summary = pd.DataFrame(
        {"customers": [80, 20], "churn_rate": [0.16, 0.16]}, index=["train", "test"]
    )
    fig = plots.split_balance(summary)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        _labelled(ax)
        assert len(ax.patches) == 2


def test_leakage_histogram_with_and_without_the_columns():
    raw = synth.generate(200, 5)
    fig = plots.leakage_histogram(raw)
    _labelled(fig.axes[0])
    assert "Naive_Bayes" in fig.axes[0].get_title()

    fig = plots.leakage_histogram(raw.drop(columns=list(schema.LEAKAGE)))
    _labelled(fig.axes[0])
    assert "none" in fig.axes[0].get_title()


def test_figures_stay_off_pyplot(clean):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.churn_balance(clean)
    plots.numeric_distributions(clean, schema.NUMERIC[:3])
    assert plt.get_fignums() == before


def _candidate_table() -> pd.DataFrame:
    """A tidy table shaped like `nba.churn.compare_candidates`: three models, 3 folds."""
    rows = []
    for i, model in enumerate(["logistic", "gradient_boosting", "lightgbm_tuned"]):
        for metric in ["precision", "recall", "f1", "roc_auc", "pr_auc", "fit_time_s"]:
            rows.append({"model": model, "metric": metric, "mean": 0.7 + 0.1 * i, "sd": 0.01})
    return pd.DataFrame(rows).assign(folds=3)


def test_cv_comparison_one_row_per_model_with_fit_times():
    fig = plots.cv_comparison(
        _candidate_table(), baseline="gradient_boosting", chosen="lightgbm_tuned"
    )
    scores, timing = fig.axes
    for ax in (scores, timing):
        _labelled(ax)
    assert "3 folds" in scores.get_title()
    labels = [t.get_text() for t in scores.get_yticklabels()]
    # the table's first model at the top; baseline and chosen named
    assert labels == ["lightgbm_tuned (chosen)", "gradient_boosting (baseline)", "logistic"]
    assert len(scores.lines) >= 5  # one series of dots per metric
    assert sorted(round(p.get_width(), 3) for p in timing.patches) == [0.7, 0.8, 0.9]


def test_threshold_curve_marks_thresholds_and_adds_a_cost_panel():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.6, 0.7, 0.4, 0.05])
    from nba import churn

    fig = plots.threshold_curve(churn.threshold_table(y, p), {"max F1": 0.35})
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    _labelled(ax)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"precision", "recall", "f1", "share flagged", "max F1: 0.350"} <= set(legend)

    table = churn.threshold_table(y, p, cost_fp=40.0, value_missed=900.0)
    fig = plots.threshold_curve(table, {"max F1": 0.35, "min cost": 0.1}, cost_label="cost ($)")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        _labelled(ax)
    assert "$" not in fig.axes[1].get_ylabel().replace(r"\$", "")  # escaped, not maths
    cost_line = fig.axes[1].lines[-1]
    assert list(cost_line.get_ydata()) == pytest.approx(list(table["cost"]))


def test_reliability_diagram_has_the_diagonal_and_one_curve_per_table():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < p).astype(int)
    from nba import churn

    raw = churn.reliability_table(y, p)
    fig = plots.reliability_diagram({"raw": raw, "squared": churn.reliability_table(y, p**2)})
    left, right = fig.axes
    for ax in (left, right):
        _labelled(ax)
    assert [line.get_label() for line in left.lines] == ["perfectly calibrated", "raw", "squared"]
    assert list(left.lines[1].get_xdata()) == pytest.approx(list(raw["mean_predicted"]))
    assert right.get_yscale() == "log"
    assert sorted(p.get_height() for p in right.patches) == sorted(raw["count"])


def test_search_results_marks_the_chosen_draw_and_the_one_se_bar():
    results = pd.DataFrame(
        {
            "n_estimators": [300, 100, 200],
            "num_leaves": [31, 15, 7],
            "pr_auc_mean": [0.97, 0.968, 0.90],
            "pr_auc_sd": [0.006, 0.01, 0.02],
            "chosen": [False, True, False],
        }
    )
    fig = plots.search_results(results, folds=4)
    ax = fig.axes[0]
    _labelled(ax)
    assert "3 draws" in ax.get_title() and "4 folds" in ax.get_title()
    bar = [line for line in ax.lines if line.get_label().startswith("best - 1 SE")]
    assert bar and bar[0].get_ydata()[0] == pytest.approx(0.97 - 0.006 / 2)
    chosen = [c for c in ax.containers if c.get_label().startswith("chosen")][0]
    assert list(chosen.lines[0].get_xdata()) == [1500]


def test_action_mix_bars_are_action_counts_and_segment_action_rates():
    by_segment = pd.DataFrame(
        {"cross_sell": [5, 0], "retention_offer": [3, 2], "no_action": [2, 8]},
        index=pd.Index(["light $ users", "heavy users"], name="segment_name"),
    )
    fig = plots.action_mix(by_segment)
    left, right = fig.axes[:2]
    _labelled(left)
    _labelled(right)
    assert sorted(p.get_width() for p in left.patches) == [5, 5]  # no_action left out
    assert "10 of 20" in left.get_title()
    widths = np.array([p.get_width() for p in right.patches]).reshape(2, 2)
    assert widths.sum(axis=0) == pytest.approx([80.0, 20.0])  # each segment's action rate
    assert r"\$" in right.get_yticklabels()[0].get_text()  # not read as maths


def test_budget_curve_marks_the_chosen_budget_at_its_value():
    curve = pd.DataFrame(
        {
            "budget": [0.0, 100.0, 200.0],
            "spent": [0.0, 90.0, 190.0],
            "customers": [0, 3, 5],
            "expected_net_value": [0.0, 500.0, 600.0],
        }
    )
    fig = plots.budget_curve(curve, budget=150.0)
    ax = fig.axes[0]
    _labelled(ax)
    assert fig.axes[1].get_ylabel()
    point = ax.collections[0].get_offsets()[0]
    assert tuple(point) == pytest.approx((150.0, 550.0))
    assert len(plots.budget_curve(curve).axes[0].collections) == 0


def test_policy_comparison_highlights_the_engine_and_keeps_signs():
    summary = pd.DataFrame(
        {
            "customers_contacted": [10, 0, 4],
            "cost": [300.0, 0.0, 240.0],
            "expected_net_value": [900.0, 0.0, -50.0],
        },
        index=pd.Index(["engine (action_1)", "no action", "random"], name="policy"),
    )
    fig = plots.policy_comparison(summary)
    left, right = fig.axes
    _labelled(left)
    assert right.get_title() and right.get_xlabel()
    widths = [p.get_width() for p in left.patches]
    assert widths == [-50.0, 0.0, 900.0]  # bottom to top: the engine on top
    assert mcolors.to_hex(left.patches[-1].get_facecolor()) == plots.HIGHLIGHT.lower()
