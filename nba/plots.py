"""Every figure of the reports and the app: functions that take DataFrames and return a
matplotlib `Figure` with a title and labelled axes (units included).

Figures are built on `matplotlib.figure.Figure` directly, not through pyplot, so they work on any
backend (Agg in tests and batch runs), never pile up in pyplot's global state, and are neither
shown nor saved here: callers display them and save them with `nba.report.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, StrMethodFormatter

from nba.data import schema
from nba.segments.profile import PROFILE_COLUMNS, PROFILE_FEATURES, Profile
from nba.segments.selection import MIN_SILHOUETTE, MIN_STABILITY
from nba.segments.space import REVOLVER

CURRENCY = "$"  # the Kaggle file's amounts and income bands are in US dollars

#: Class names and colours used by every figure (colour-blind safe pair).
CLASS_NAMES = {0: "Existing", 1: "Attrited"}
CLASS_COLORS = {0: "#4C72B0", 1: "#DD8452"}
HIGHLIGHT = "#C44E52"
NEUTRAL = "#8C8C8C"

#: Axis unit of each numeric column of the customer record.
UNITS: dict[str, str] = {
    "Customer_Age": "years",
    "Dependent_count": "people",
    "Months_on_book": "months",
    "Total_Relationship_Count": "products held",
    "Months_Inactive_12_mon": "months in last 12",
    "Contacts_Count_12_mon": "contacts in last 12 months",
    "Credit_Limit": CURRENCY,
    "Total_Revolving_Bal": CURRENCY,
    "Avg_Open_To_Buy": CURRENCY,
    "Total_Amt_Chng_Q4_Q1": "ratio Q4 / Q1",
    "Total_Trans_Amt": f"{CURRENCY} in last 12 months",
    "Total_Trans_Ct": "transactions in last 12 months",
    "Total_Ct_Chng_Q4_Q1": "ratio Q4 / Q1",
    "Avg_Utilization_Ratio": "share of limit, 0-1",
}


def axis_label(column: str) -> str:
    """'Credit_Limit ($)': a column name with its unit, for an axis."""
    unit = UNITS.get(column)
    return f"{column} ({unit})" if unit else column


def tex(text: str) -> str:
    """Text with its dollar signs escaped: matplotlib reads a pair of `$` as maths, and the
    income bands ('$40K - $60K') would turn into italics."""
    return text.replace(r"\$", "$").replace("$", r"\$")


def number(value: float) -> str:
    """A number as a person reads it: 4,666 · 68 · 0.74 · 0.055."""
    v = float(value)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10 or v == int(v):
        return f"{v:,.1f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def _churn(df: pd.DataFrame) -> np.ndarray:
    return df[schema.TARGET].to_numpy() == 1


def churn_balance(df: pd.DataFrame) -> Figure:
    """Customers by status (existing / attrited): one bar each, labelled with count and share."""
    churned = _churn(df)
    counts = [int((~churned).sum()), int(churned.sum())]
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    bars = ax.bar(
        [CLASS_NAMES[0], CLASS_NAMES[1]], counts, color=[CLASS_COLORS[0], CLASS_COLORS[1]]
    )
    for bar, n in zip(bars, counts, strict=True):
        ax.annotate(
            f"{n:,} ({n / len(df):.1%})",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_ylim(0, max(counts) * 1.15)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_title(f"One customer in {len(df) / max(counts[1], 1):.1f} has left")
    ax.set_xlabel("customer status")
    ax.set_ylabel("customers (count)")
    fig.tight_layout()
    return fig


def _bin_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Histogram edges: one bar per value for a small count, whole-number-aligned bins for
    an integer column (no empty comb teeth), else `bins` equal bins."""
    if len(x) == 0:
        return np.linspace(0, 1, bins + 1)
    values = np.unique(x)
    if len(values) <= 12:  # a count: one bar per value
        return np.concatenate([values - 0.5, [values[-1] + 0.5]])
    lo, hi = float(values[0]), float(values[-1])
    if np.all(values == np.round(values)) and hi - lo <= 4 * bins:
        step = max(1, int(np.ceil((hi - lo + 1) / bins)))
        return np.arange(lo - 0.5, hi + 0.5 + step, step)
    return np.histogram_bin_edges(x, bins=bins)


def class_histogram(
    values: pd.Series,
    churn: pd.Series | np.ndarray,
    *,
    title: str,
    xlabel: str,
    bins: int = 40,
    ax=None,
) -> Figure:
    """Distribution of `values` for existing vs attrited customers, each as a share of its own
    class (%) so the smaller attrited group stays visible; dashed lines mark the medians."""
    own = ax is None
    fig = Figure(figsize=(7.5, 4.2)) if own else ax.figure
    ax = fig.subplots() if own else ax
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    churned = np.asarray(churn) == 1
    finite = np.isfinite(x)
    edges = _bin_edges(x[finite], bins)
    for cls in (0, 1):
        part = x[finite & (churned == bool(cls))]
        if len(part) == 0:
            continue
        weights = np.full(len(part), 100.0 / len(part))
        ax.hist(
            part,
            bins=edges,
            weights=weights,
            histtype="bar",
            alpha=0.45,
            color=CLASS_COLORS[cls],
            label=f"{CLASS_NAMES[cls]} (median {number(np.median(part))})",
        )
        ax.axvline(np.median(part), color=CLASS_COLORS[cls], linestyle="--", linewidth=1.2)
    if np.nanmax(np.abs(x[finite]), initial=0) >= 10_000:  # 12,500 not 12500, and no overlap
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
    ax.set_title(tex(title))
    ax.set_xlabel(tex(xlabel))
    ax.set_ylabel("share of class (%)")
    ax.legend(frameon=False, fontsize="small")
    if own:
        fig.tight_layout()
    return fig


def customer_value_distribution(value: pd.Series, df: pd.DataFrame) -> Figure:
    """Yearly value per customer ($/year) for existing vs attrited customers."""
    return class_histogram(
        value,
        df[schema.TARGET],
        title="Yearly value per customer, existing vs attrited",
        xlabel=f"yearly value per customer ({CURRENCY} / year, proxy)",
        bins=50,
    )


def value_components(components: pd.DataFrame, df: pd.DataFrame) -> Figure:
    """Mean of each value component ($ per customer per year) for existing vs attrited
    customers, with the net value as the last group."""
    churned = _churn(df)
    table = components.assign(net_value=components.sum(axis=1))
    means = pd.DataFrame({CLASS_NAMES[c]: table[churned == bool(c)].mean() for c in (0, 1)})
    fig = Figure(figsize=(8.5, 4.4))
    ax = fig.subplots()
    x = np.arange(len(means))
    width = 0.38
    for i, c in enumerate((0, 1)):
        bars = ax.bar(
            x + (i - 0.5) * width,
            means[CLASS_NAMES[c]],
            width,
            color=CLASS_COLORS[c],
            label=CLASS_NAMES[c],
        )
        ax.bar_label(bars, fmt="%.0f", fontsize="small", padding=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [name.replace("_", " ") for name in means.index])
    ax.set_title("Where a customer's yearly value comes from (mean per customer)")
    ax.set_xlabel("value component")
    ax.set_ylabel(tex(f"{CURRENCY} per customer per year"))
    ax.legend(frameon=False)
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig


def ranked_bars(
    values: pd.Series,
    *,
    title: str,
    xlabel: str,
    errors: pd.Series | None = None,
    highlight: Sequence[str] = (),
    highlight_label: str = "",
    other_label: str = "",
    reference: float | None = None,
    fmt: str = "{:.3f}",
) -> Figure:
    """Horizontal bars, largest at the top, each labelled with its value; names in `highlight`
    get their own colour (and legend entry when labels are given); `reference` draws a line."""
    order = values.sort_values()
    fig = Figure(figsize=(8.5, 0.32 * len(order) + 1.6))
    ax = fig.subplots()
    colors = [HIGHLIGHT if name in highlight else CLASS_COLORS[0] for name in order.index]
    err = None if errors is None else errors.reindex(order.index).to_numpy()
    bars = ax.barh(order.index, order.to_numpy(), xerr=err, color=colors, capsize=2)
    labels = [fmt.format(v) for v in order]
    labels = [
        t[1:] if t.startswith("-") and not t.strip("-0.,") else t for t in labels
    ]  # no "-0.000"
    ax.bar_label(bars, labels=labels, fontsize="small", padding=3)
    if reference is not None:
        ax.axvline(reference, color="black", linewidth=0.8, linestyle=":")
    if highlight and highlight_label:
        handles = [
            Patch(color=HIGHLIGHT, label=highlight_label),
            Patch(color=CLASS_COLORS[0], label=other_label or "other"),
        ]
        ax.legend(handles=handles, frameon=False, loc="lower right")
    ax.set_title(tex(title))
    ax.set_xlabel(tex(xlabel))
    ax.set_ylabel("feature")
    ax.margins(x=0.12)
    fig.tight_layout()
    return fig


def feature_separation(
    separation: pd.DataFrame, highlight: Sequence[str] = (), title: str | None = None
) -> Figure:
    """Single-feature ROC-AUC of each feature against churn (0.5 = no signal, 1 = perfect), from
    a table with an `auc` column indexed by feature; `highlight` marks e.g. the 12-month
    behaviour columns."""
    lo = min(0.5, float(separation["auc"].min()))
    fig = ranked_bars(
        separation["auc"],
        title=title or "How well each feature alone separates churners",
        xlabel="single-feature ROC-AUC (0.5 = no signal, 1.0 = perfect)",
        highlight=highlight,
        highlight_label="12-month behaviour",
        other_label="profile and balances",
        reference=0.5,
    )
    fig.axes[0].set_xlim(lo, 1.05)
    return fig


def category_profile(df: pd.DataFrame, column: str) -> Figure:
    """Two panels for one categorical column: its distribution within existing and within
    attrited customers (% of class), and the churn rate of each category (%) with the overall
    rate as a line."""
    churned = _churn(df)
    order = [c for c in schema.CATEGORIES.get(column, ()) if c in set(df[column])] or sorted(
        df[column].unique()
    )
    labels = [tex(str(c)) for c in order]
    rotation = 20 if len(order) > 4 else 0  # long income/education labels
    fig = Figure(figsize=(12, 4.4))
    left, right = fig.subplots(1, 2)
    x = np.arange(len(order))
    width = 0.38
    for i, c in enumerate((0, 1)):
        share = df.loc[churned == bool(c), column].value_counts(normalize=True)
        share = share.reindex(order, fill_value=0) * 100
        left.bar(x + (i - 0.5) * width, share, width, color=CLASS_COLORS[c], label=CLASS_NAMES[c])
    left.set_xticks(x, labels, rotation=rotation, ha="right" if rotation else "center")
    left.set_title(f"{column}: share of each class")
    left.set_xlabel(column)
    left.set_ylabel("share of class (%)")
    left.legend(frameon=False)

    grouped = pd.Series(churned, index=df.index).groupby(df[column])
    rate = grouped.mean().reindex(order) * 100
    count = grouped.size().reindex(order)
    bars = right.bar(x, rate, color=CLASS_COLORS[1])
    texts = right.bar_label(
        bars,
        labels=[f"{r:.1f}%\nn={n:,}" for r, n in zip(rate, count, strict=True)],
        fontsize="small",
        padding=2,
    )
    for text in texts:  # readable where a label crosses the overall-rate line
        text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    overall = churned.mean() * 100
    right.axhline(
        overall, color="black", linestyle=":", linewidth=1, label=f"all customers {overall:.1f}%"
    )
    right.set_xticks(x, labels, rotation=rotation, ha="right" if rotation else "center")
    right.set_ylim(0, max(float(np.nanmax(rate.to_numpy())), overall) * 1.35)
    right.set_title(f"{column}: churn rate per category")
    right.set_xlabel(column)
    right.set_ylabel("churn rate (%)")
    right.legend(frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def numeric_distributions(df: pd.DataFrame, columns: Sequence[str], ncols: int = 4) -> Figure:
    """A grid with one panel per numeric column: its distribution for existing vs attrited
    customers (% of class per bin); unused grid cells are removed."""
    columns = list(columns)
    nrows = int(np.ceil(len(columns) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.1 * nrows + 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, column in zip(axes, columns, strict=False):
        class_histogram(
            df[column], df[schema.TARGET], title=column, xlabel=axis_label(column), bins=30, ax=ax
        )
        ax.legend(frameon=False, fontsize="x-small")
    for ax in axes[len(columns) :]:
        fig.delaxes(ax)
    fig.suptitle(
        "Numeric features: existing vs attrited customers (dashed lines: medians)",
        fontsize="x-large",
    )
    fig.tight_layout()
    return fig


def correlation_heatmap(df: pd.DataFrame, columns: Sequence[str]) -> Figure:
    """Pearson correlation (−1 to 1) between `columns` (numeric, e.g. the features and churn),
    annotated, lower triangle only."""
    corr = df[list(columns)].astype(float).corr()
    n = len(corr)
    masked = corr.to_numpy().copy()
    masked[np.triu_indices(n, k=1)] = np.nan
    fig = Figure(figsize=(0.62 * n + 3, 0.55 * n + 2))
    ax = fig.subplots()
    image = ax.imshow(masked, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(n):
        for j in range(i + 1):
            v = masked[i, j]
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(v) > 0.6 else "black",
            )
    ax.set_xticks(range(n), corr.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), corr.index)
    ax.set_title("Correlation between numeric features and churn (Pearson)")
    ax.set_xlabel("feature")
    ax.set_ylabel("feature")
    fig.colorbar(image, ax=ax, label="Pearson correlation (-1 to 1)", shrink=0.8)
    fig.tight_layout()
    return fig


def outlier_counts(outliers: pd.DataFrame) -> Figure:
    """Customers outside the IQR fences (Q1 − 1.5·IQR, Q3 + 1.5·IQR) per column, from a table
    with `outliers` and `share` columns indexed by column name."""
    fig = ranked_bars(
        outliers["outliers"].astype(float),
        title="Outliers by the IQR rule, per numeric column",
        xlabel="customers outside Q1 - 1.5 IQR .. Q3 + 1.5 IQR (count)",
        fmt="{:,.0f}",
    )
    return fig


def signed_bars(values: pd.Series, *, title: str, xlabel: str) -> Figure:
    """Horizontal bars of signed values ordered by size (e.g. correlation with churn):
    positive in the attrited colour, negative in the existing colour."""
    order = values.sort_values()
    fig = Figure(figsize=(8.5, 0.32 * len(order) + 1.6))
    ax = fig.subplots()
    colors = [CLASS_COLORS[1] if v > 0 else CLASS_COLORS[0] for v in order]
    bars = ax.barh(order.index, order.to_numpy(), color=colors)
    ax.bar_label(bars, labels=[f"{v:+.2f}" for v in order], fontsize="small", padding=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("feature")
    ax.margins(x=0.15)
    fig.tight_layout()
    return fig


def permutation_importance(importance: pd.DataFrame, highlight: Sequence[str] = ()) -> Figure:
    """Permutation importance (drop in ROC-AUC when a feature is shuffled, mean ± sd over
    repeats) from a table with `importance` and `std` columns indexed by feature; `highlight`
    marks e.g. the engineered candidates."""
    return ranked_bars(
        importance["importance"],
        errors=importance["std"],
        highlight=highlight,
        highlight_label="engineered candidate",
        other_label="base feature",
        title="Which features a quick model relies on (permutation importance)",
        xlabel="drop in validation ROC-AUC when the feature is shuffled (AUC, 0-1 scale)",
        reference=0.0,
        fmt="{:.3f}",
    )


def split_balance(summary: pd.DataFrame) -> Figure:
    """Customers and churn rate of each side of the held-out split, from a table with
    `customers` and `churn_rate` columns indexed by side."""
    fig = Figure(figsize=(9, 3.8))
    left, right = fig.subplots(1, 2)
    sides = list(summary.index)
    bars = left.bar(sides, summary["customers"], color=NEUTRAL)
    left.bar_label(bars, labels=[f"{n:,}" for n in summary["customers"]], padding=2)
    left.set_title("Customers per side of the split")
    left.set_xlabel("split side")
    left.set_ylabel("customers (count)")
    left.margins(y=0.15)
    bars = right.bar(sides, summary["churn_rate"] * 100, color=CLASS_COLORS[1])
    right.bar_label(bars, labels=[f"{r:.2%}" for r in summary["churn_rate"]], padding=2)
    right.set_title("Churn rate per side (stratified)")
    right.set_xlabel("split side")
    right.set_ylabel("churn rate (%)")
    right.margins(y=0.15)
    fig.tight_layout()
    return fig


def leakage_histogram(raw: pd.DataFrame) -> Figure:
    """The first leakage column present in `raw` (text as `read_table` returns it, with
    `Attrition_Flag`) for existing vs attrited customers; a note when the file has none."""
    present = [c for c in raw.columns if c.startswith(schema.LEAKAGE_PREFIX)]
    if not present or schema.TARGET_RAW not in raw.columns:
        fig = Figure(figsize=(7.5, 2.5))
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no Naive_Bayes_Classifier_* column in this file", ha="center")
        ax.set_title("Leakage columns: none present")
        ax.set_xlabel("column value (probability, 0-1)")
        ax.set_ylabel("share of class (%)")
        return fig
    column = present[0]
    churn = raw[schema.TARGET_RAW].eq(schema.ATTRITED).astype(int)
    return class_histogram(
        pd.to_numeric(raw[column], errors="coerce"),
        churn,
        title=f"{schema.LEAKAGE_PREFIX}…{column[-2:]}: the label in disguise",
        xlabel="column value (another model's attrition probability, 0-1)",
        bins=40,
    )


# --- evaluation (notebook 07) ----------------------------------------------------------------


def roc_pr_curves(y: np.ndarray, p: np.ndarray, threshold: float) -> Figure:
    """ROC and precision–recall curves of held-out scores, with the operating point marked."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = np.asarray(y).astype(int), np.asarray(p)
    fig = Figure(figsize=(11, 4.5))
    roc_ax, pr_ax = fig.subplots(1, 2)
    fpr, tpr, _ = roc_curve(y, p)
    roc_ax.plot(fpr, tpr, color="#1f77b4")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    flag = p >= threshold
    roc_ax.scatter(
        flag[y == 0].mean(),
        flag[y == 1].mean(),
        color="#d62728",
        zorder=3,
        label=f"threshold {threshold:.2f}",
    )
    roc_ax.set(
        title="ROC curve (held-out customers)",
        xlabel="False-positive rate (share of stayers flagged)",
        ylabel="True-positive rate (share of churners flagged)",
    )
    roc_ax.legend(loc="lower right")
    precision, recall, _ = precision_recall_curve(y, p)
    pr_ax.plot(recall, precision, color="#1f77b4")
    pr_ax.axhline(y.mean(), color="grey", linestyle=":", label=f"churn rate {y.mean():.1%}")
    pr_ax.scatter(
        flag[y == 1].mean(),
        y[flag].mean() if flag.any() else 0,
        color="#d62728",
        zorder=3,
        label=f"threshold {threshold:.2f}",
    )
    pr_ax.set(
        title="Precision–recall curve (held-out customers)",
        xlabel="Recall (share of churners flagged)",
        ylabel="Precision (share of flagged who churn)",
    )
    pr_ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def confusion_matrix(table: pd.DataFrame, threshold: float) -> Figure:
    """Counts of actual × predicted at the threshold, annotated."""
    fig = Figure(figsize=(5, 4.2))
    ax = fig.subplots()
    values = table.to_numpy()
    ax.imshow(values, cmap="Blues")
    for (i, j), v in np.ndenumerate(values):
        ax.text(
            j,
            i,
            f"{v:,}",
            ha="center",
            va="center",
            color="white" if v > values.max() / 2 else "black",
            fontsize=12,
        )
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]), [str(c) for c in table.index])
    ax.set(
        title=f"Confusion matrix at threshold {threshold:.2f}",
        xlabel="Predicted (customers)",
        ylabel="Actual (customers)",
    )
    fig.tight_layout()
    return fig


def gains_chart(curve: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Cumulative gains: share of churners caught against share of customers contacted."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    ax.plot(100 * curve.contacted, 100 * curve.caught, color="#1f77b4", label="model ranking")
    ax.plot([0, 100], [0, 100], color="grey", linestyle=":", label="random contact")
    for row in table.itertuples():
        ax.scatter(100 * row.contacted_share, 100 * row.gain, color="#d62728", zorder=3)
        ax.annotate(
            f"{row.gain:.0%} (lift {row.lift:.1f}×)",
            (100 * row.contacted_share, 100 * row.gain),
            textcoords="offset points",
            xytext=(8, -12),
            fontsize=8,
        )
    ax.set(
        title="Cumulative gains on held-out customers",
        xlabel="Customers contacted, riskiest first (%)",
        ylabel="Churners caught (%)",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def fairness_recall(slices: pd.DataFrame) -> Figure:
    """Recall and share flagged per group (gender, age band, income): who is missed more."""
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    labels = [f"{a}: {tex(str(g))}" for a, g in zip(slices.attribute, slices.group, strict=True)]
    x = np.arange(len(slices))
    errors = None
    if {"recall_low", "recall_high"} <= set(slices.columns):  # 95 % Wilson intervals
        low = (slices.recall - slices.recall_low).clip(lower=0)
        high = (slices.recall_high - slices.recall).clip(lower=0)
        errors = 100 * np.vstack([low.to_numpy(float), high.to_numpy(float)])
    ax.bar(
        x - 0.2,
        100 * slices.recall,
        width=0.4,
        yerr=errors,
        capsize=2,
        label="recall (churners flagged), 95 % interval",
        color="#1f77b4",
    )
    ax.bar(x + 0.2, 100 * slices.churn_rate, width=0.4, label="churn rate", color="#ff7f0e")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set(
        title="Recall and churn rate by group (held-out customers)",
        xlabel="Group",
        ylabel="Share of customers (%)",
        ylim=(0, 105),
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


# --- stage 1 modelling (notebook 04) ------------------------------------------------------------

#: Colours of the classifier scores in the modelling figures (colour-blind safe).
SCORE_COLORS = {
    "precision": "#4C72B0",
    "recall": "#DD8452",
    "f1": "#55A868",
    "roc_auc": "#8172B3",
    "pr_auc": "#C44E52",
}


def cv_comparison(
    table: pd.DataFrame,
    *,
    baseline: str | None = None,
    chosen: str | None = None,
    metrics: Sequence[str] = ("precision", "recall", "f1", "roc_auc", "pr_auc"),
) -> Figure:
    """Cross-validated comparison of candidate models, from the tidy frame of
    `nba.churn.compare_candidates` (model, metric, mean, sd, folds): left, each model's scores
    (0-1) as dots with ± 1 sd bars over folds; right, seconds per fold fit. Models keep the
    table's order, top to bottom; `baseline` and `chosen` are named on their labels."""
    wide = table.pivot(index="model", columns="metric", values="mean")
    sd = table.pivot(index="model", columns="metric", values="sd")
    models = list(dict.fromkeys(table["model"]))[::-1]  # first model at the top
    wide, sd = wide.reindex(models), sd.reindex(models)
    folds = int(table["folds"].max())
    tags = {baseline: "baseline", chosen: "chosen"}
    labels = [f"{m} ({tags[m]})" if m in tags else m for m in models]
    fig = Figure(figsize=(12, 0.55 * len(models) + 2.2))
    scores, timing = fig.subplots(1, 2, width_ratios=[3, 1], sharey=True)
    y = np.arange(len(models))
    offsets = np.linspace(-0.28, 0.28, len(metrics))
    for offset, metric in zip(offsets, metrics, strict=True):
        scores.errorbar(
            wide[metric],
            y + offset,
            xerr=sd[metric],
            fmt="o",
            markersize=5,
            capsize=2,
            color=SCORE_COLORS.get(metric, NEUTRAL),
            label=metric.replace("_", "-").upper() if "auc" in metric else metric,
        )
    for i, m in enumerate(models):
        if m in tags:
            scores.axhspan(i - 0.45, i + 0.45, color=NEUTRAL, alpha=0.12, linewidth=0)
    scores.set_yticks(y, labels)
    scores.set_title(f"Cross-validated scores on the training split ({folds} folds)")
    scores.set_xlabel("score for the attrited class (0-1; mean, bars ± 1 sd over folds)")
    scores.set_ylabel("candidate model")
    scores.grid(axis="x", alpha=0.3)
    scores.legend(
        frameon=False,
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncols=len(metrics),
    )
    scores.margins(y=0.12)
    if "fit_time_s" in wide:
        bars = timing.barh(y, wide["fit_time_s"], xerr=sd["fit_time_s"], color=NEUTRAL, capsize=2)
        timing.bar_label(
            bars, labels=[f"{t:.2f}" for t in wide["fit_time_s"]], fontsize="small", padding=3
        )
        timing.margins(x=0.3)
    timing.set_title("Time to fit")
    timing.set_xlabel("seconds per fold fit (s)")
    timing.set_ylabel("candidate model")
    timing.tick_params(axis="y", labelleft=False)
    fig.tight_layout()
    return fig


def threshold_curve(
    table: pd.DataFrame,
    marks: dict[str, float] | None = None,
    *,
    cost_label: str = f"expected cost ({CURRENCY})",
) -> Figure:
    """Precision, recall, F1 and share flagged against the decision threshold, from
    `nba.churn.threshold_table`; `marks` draws named thresholds (e.g. {"max F1": 0.34}). When
    the table has a `cost` column, a second panel shows it (in `cost_label`'s unit)."""
    marks = marks or {}
    has_cost = "cost" in table
    fig = Figure(figsize=(12 if has_cost else 7.5, 4.4))
    axes = np.atleast_1d(fig.subplots(1, 2 if has_cost else 1))
    left = axes[0]
    for metric in ("precision", "recall", "f1"):
        left.plot(
            table["threshold"], table[metric], color=SCORE_COLORS[metric], label=metric, lw=1.8
        )
    left.plot(
        table["threshold"],
        table["flagged_share"],
        color=NEUTRAL,
        linestyle="--",
        label="share flagged",
    )
    styles = (":", "-.", (0, (5, 2)), (0, (1, 3)))
    for ax in axes:
        for (name, t), style in zip(marks.items(), styles * len(marks), strict=False):
            ax.axvline(t, color="black", linestyle=style, linewidth=1, label=f"{name}: {t:.3f}")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1.02)
    left.set_title("Precision, recall and F1 by threshold")
    left.set_xlabel("threshold on P(churn) (probability, 0-1)")
    left.set_ylabel("score or share (0-1)")
    left.grid(alpha=0.3)
    left.legend(
        frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=3
    )
    if has_cost:
        right = axes[1]
        right.plot(table["threshold"], table["cost"], color=HIGHLIGHT, lw=1.8, label="cost")
        right.set_xlim(0, 1)
        right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        right.set_title("Expected cost of errors by threshold")
        right.set_xlabel("threshold on P(churn) (probability, 0-1)")
        right.set_ylabel(tex(cost_label))
        right.grid(alpha=0.3)
        right.legend(frameon=False, fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def reliability_diagram(tables: dict[str, pd.DataFrame]) -> Figure:
    """Calibration evidence from `nba.churn.reliability_table` frames (label → table): left,
    observed churn rate against mean predicted probability per bin, with the diagonal of a
    perfectly calibrated model; right, customers per bin of the first table (log scale)."""
    fig = Figure(figsize=(11, 4.6))
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
    left.plot([0, 1], [0, 1], color="black", linestyle=":", lw=1, label="perfectly calibrated")
    colors = (CLASS_COLORS[1], CLASS_COLORS[0], "#55A868", "#8172B3")
    for (label, t), color in zip(tables.items(), colors * len(tables), strict=False):
        left.plot(t["mean_predicted"], t["observed_rate"], "o-", color=color, label=label, ms=4)
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_aspect("equal")
    left.set_title("Reliability: predicted vs observed churn")
    left.set_xlabel("mean predicted P(churn) in the bin (probability, 0-1)")
    left.set_ylabel("observed churn rate in the bin (share, 0-1)")
    left.grid(alpha=0.3)
    left.legend(frameon=False, fontsize="small", loc="upper left")
    first = next(iter(tables.values()))
    width = (first["bin_high"] - first["bin_low"]).to_numpy()
    centres = ((first["bin_low"] + first["bin_high"]) / 2).to_numpy()
    right.bar(centres, first["count"], width=width * 0.9, color=NEUTRAL)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    right.set_xlim(0, 1)
    right.set_title("Customers per probability bin")
    right.set_xlabel("predicted P(churn) bin (probability, 0-1)")
    right.set_ylabel("customers (count, log scale)")
    fig.tight_layout()
    return fig


def reliability_intervals(panels: dict[str, dict[str, pd.DataFrame]]) -> Figure:
    """Reliability with intervals, one panel per population (title → {label → table}): each
    table from `nba.churn.reliability_table(..., strategy="quantile")` (equal-count bins), drawn
    as observed churn rate against mean predicted probability with the bin's Wilson interval as
    a vertical bar, beside the diagonal of a perfectly calibrated model."""
    fig = Figure(figsize=(5.2 * len(panels), 4.8))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    colors = (CLASS_COLORS[1], CLASS_COLORS[0], "#55A868", "#8172B3")
    for ax, (title, tables) in zip(axes, panels.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="black", linestyle=":", lw=1, label="perfectly calibrated")
        for k, ((label, t), color) in enumerate(zip(tables.items(), colors, strict=False)):
            shift = (k - (len(tables) - 1) / 2) * 0.006  # side by side, not on top of each other
            ax.errorbar(
                t["mean_predicted"] + shift,
                t["observed_rate"],
                yerr=[
                    t["observed_rate"] - t["observed_low"],
                    t["observed_high"] - t["observed_rate"],
                ],
                fmt="o",
                ms=4,
                capsize=2,
                color=color,
                label=f"{label} ({int(t['count'].sum()):,} customers)",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("mean predicted P(churn) in the bin (probability, 0-1)")
        ax.set_ylabel("observed churn rate, 95 % interval (share, 0-1)")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def feature_set_power(table: pd.DataFrame, metric: str = "pr_auc") -> Figure:
    """What each churn feature variant keeps, from `nba.churn.feature_set_comparison`: the
    cross-validated `metric` per variant with its interval over folds, and its input count."""
    rows = table[table["metric"] == metric].iloc[::-1]
    fig = Figure(figsize=(8, 0.55 * len(rows) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(rows))
    ax.barh(y, rows["mean"], color=NEUTRAL)
    ax.errorbar(
        rows["mean"],
        y,
        xerr=[rows["mean"] - rows["low"], rows["high"] - rows["mean"]],
        fmt="none",
        color="black",
        capsize=3,
    )
    for yi, (m, cols) in enumerate(zip(rows["mean"], rows["columns"], strict=True)):
        ax.text(m + 0.01, yi, f"{m:.3f} ({cols} columns)", va="center", fontsize="small")
    ax.set_yticks(y, rows["variant"])
    ax.set_xlim(0, 1.15)
    name = {"pr_auc": "PR-AUC", "roc_auc": "ROC-AUC"}.get(metric, metric)
    ax.set_title(f"Cross-validated {name} by feature variant (training split)")
    ax.set_xlabel(f"{name} (0-1; bars: 95 % interval over folds)")
    ax.set_ylabel("feature variant")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def search_results(results: pd.DataFrame, folds: int) -> Figure:
    """A random search as `nba.churn.tune` returns it (sorted by PR-AUC, with `chosen`): each
    draw's mean PR-AUC (bars ± 1 standard error, sd / √folds) against its size (trees ×
    leaves, which sets scoring cost); the dotted line is one standard error below the best,
    the one-standard-error rule's bar; the chosen draw is highlighted."""
    size = (results["n_estimators"] * results["num_leaves"]).to_numpy(dtype=float)
    mean = results["pr_auc_mean"].to_numpy(dtype=float)
    se = results["pr_auc_sd"].to_numpy(dtype=float) / np.sqrt(folds)
    best = int(np.argmax(mean))
    chosen = results["chosen"].to_numpy(dtype=bool)
    fig = Figure(figsize=(8.5, 4.6))
    ax = fig.subplots()
    ax.errorbar(
        size[~chosen],
        mean[~chosen],
        yerr=se[~chosen],
        fmt="o",
        color=CLASS_COLORS[0],
        alpha=0.7,
        capsize=2,
        label="draw (± 1 SE)",
    )
    ax.errorbar(
        size[chosen],
        mean[chosen],
        yerr=se[chosen],
        fmt="D",
        markersize=8,
        color=HIGHLIGHT,
        capsize=3,
        label="chosen: smallest within 1 SE of the best",
    )
    ax.axhline(
        mean[best] - se[best],
        color="black",
        linestyle=":",
        linewidth=1,
        label=f"best - 1 SE = {mean[best] - se[best]:.4f}",
    )
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_title(f"Random search: PR-AUC against model size ({len(results)} draws, {folds} folds)")
    ax.set_xlabel("model size: trees x leaves (count; sets scoring cost)")
    ax.set_ylabel("cross-validated PR-AUC (0-1, mean)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


# --- next best action (notebook 06) -------------------------------------------------------------


def action_mix(by_segment: pd.DataFrame) -> Figure:
    """The engine's best action per customer, from a crosstab of segments (rows) × actions
    (columns, counts) as `nba.actions.simulate` returns in `by_segment`: left, customers per
    action over the whole base; right, the share of each segment given each action (stacked,
    so a bar's length is the segment's action rate). "no_action" is left out of the bars and
    counted in the titles: it is usually most customers and would hide the rest."""
    acted = by_segment.drop(columns=["no_action"], errors="ignore")
    none = int(by_segment["no_action"].sum()) if "no_action" in by_segment else 0
    counts = acted.sum(axis=0).sort_values()
    total = int(by_segment.to_numpy().sum())
    shares = acted.div(by_segment.sum(axis=1), axis=0) * 100
    order = list(counts.index[::-1])
    palette = (
        "#4C72B0",
        "#DD8452",
        "#55A868",
        "#C44E52",
        "#8172B3",
        "#937860",
        "#DA8BC3",
        "#CCB974",
        "#64B5CD",
    )
    colors = {a: palette[i % len(palette)] for i, a in enumerate(order)}
    fig = Figure(figsize=(13, 0.45 * max(len(counts), len(shares)) + 2.4))
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.5])
    bars = left.barh(counts.index, counts.to_numpy(), color=[colors[a] for a in counts.index])
    left.bar_label(
        bars, labels=[f"{n:,} ({n / total:.1%})" for n in counts], fontsize="small", padding=3
    )
    left.set_title(f"Best action per customer ({none:,} of {total:,} get no action)")
    left.set_xlabel("customers (count)")
    left.set_ylabel("action")
    left.margins(x=0.3)
    segments = [tex(str(s)) for s in shares.index]
    offset = np.zeros(len(shares))
    for action in order:
        width = shares[action].to_numpy()
        right.barh(segments, width, left=offset, color=colors[action], label=action)
        offset += width
    for y, rate in enumerate(offset):
        right.annotate(f"{rate:.1f} %", (rate, y), xytext=(3, -4), textcoords="offset points")
    right.set_xlim(0, max(float(offset.max()), 1.0) * 1.15)
    right.set_title("Action rate of each segment, by action (rest: no action)")
    right.set_xlabel("customers of the segment given the action (%)")
    right.set_ylabel("segment")
    right.invert_yaxis()
    right.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _money(value: float) -> str:
    """'$1,234' or '-$1,234' for a figure label (dollar sign escaped for matplotlib)."""
    return tex(f"{'-' if value < 0 else ''}${abs(value):,.0f}")


def _money_k(value: float) -> str:
    """'$50k' or '-$150k' for a crowded money axis (dollar sign escaped for matplotlib)."""
    if abs(value) < 1000:
        return _money(value)
    return tex(f"{'-' if value < 0 else ''}${abs(value) / 1000:,.0f}k")


def budget_curve(curve: pd.DataFrame, budget: float | None = None) -> Figure:
    """Budget mode: total expected net value ($) the greedy allocation reaches against the
    campaign budget ($), from `nba.actions.budget_curve` (budget, spent, customers,
    expected_net_value); `budget` marks one chosen budget. The right axis shows how many
    customers get an action."""
    fig = Figure(figsize=(8.5, 4.6))
    ax = fig.subplots()
    ax.plot(curve["budget"], curve["expected_net_value"], color=CLASS_COLORS[0], lw=2)
    ax.set_title("Budget mode: expected net value against campaign budget")
    ax.set_xlabel(tex("campaign budget ($, total contact cost)"))
    ax.set_ylabel(tex("expected net value ($, after cost)"))
    money = FuncFormatter(lambda v, _: _money(v))
    ax.xaxis.set_major_formatter(money)
    ax.yaxis.set_major_formatter(money)
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(curve["budget"], curve["customers"], color=NEUTRAL, lw=1, linestyle="--")
    twin.set_ylabel("customers given an action (count, dashed)")
    twin.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    if budget is not None:
        b = np.asarray(curve["budget"], dtype=float)
        value = float(np.interp(budget, b, curve["expected_net_value"].to_numpy(dtype=float)))
        ax.axvline(budget, color=HIGHLIGHT, linestyle=":", lw=1)
        ax.scatter([budget], [value], color=HIGHLIGHT, zorder=3)
        ax.annotate(
            f"budget {_money(budget)}: {_money(value)}",
            (budget, value),
            textcoords="offset points",
            xytext=(8, -16),
            fontsize="small",
            color=HIGHLIGHT,
        )
    fig.tight_layout()
    return fig


def policy_comparison(summary: pd.DataFrame) -> Figure:
    """Simulated policies side by side, from `nba.actions.simulate`'s `summary` (indexed by
    policy, with expected_net_value, cost and customers_contacted): left, expected net value
    ($, after cost); right, customers contacted (count). The first row (the engine) is
    highlighted."""
    names = [tex(str(p)) for p in summary.index][::-1]
    colors = [NEUTRAL] * (len(names) - 1) + [HIGHLIGHT]
    fig = Figure(figsize=(12, 0.5 * len(names) + 2.2))
    left, right = fig.subplots(1, 2, sharey=True)
    net = summary["expected_net_value"].to_numpy(dtype=float)[::-1]
    bars = left.barh(names, net, color=colors)
    left.bar_label(bars, labels=[_money(v) for v in net], fontsize="small", padding=3)
    left.axvline(0, color="black", lw=0.8)
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _money_k(v)))
    left.set_title("Expected net value of each policy")
    left.set_xlabel(tex("expected net value ($, saved value minus contact cost)"))
    left.set_ylabel("policy")
    left.margins(x=0.3)
    contacted = summary["customers_contacted"].to_numpy(dtype=float)[::-1]
    bars = right.barh(names, contacted, color=colors)
    right.bar_label(bars, labels=[f"{v:,.0f}" for v in contacted], fontsize="small", padding=3)
    right.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    right.set_title("Customers contacted")
    right.set_xlabel("customers given an action (count)")
    right.margins(x=0.2)
    fig.tight_layout()
    return fig


# --- stage 2: segments (notebook 05, the app's profile charts) ---------------------------------


def profile_difference(p: Profile, s: int) -> np.ndarray:
    """Segment `s` against the base, per profile column, as the bar labels quote it: the
    segment's median ÷ the base median − 1 (the share of revolvers: means), so that a bar is
    never drawn below the line while its label says the segment is above. 0 when both are 0."""
    seg = p.median[s].astype(np.float64).copy()
    base = p.base_median.astype(np.float64).copy()
    j = PROFILE_COLUMNS.index(REVOLVER)
    seg[j], base[j] = p.mean[s, j], p.base_mean[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(base != 0, seg / base - 1, np.where(seg == 0, 0.0, np.sign(seg)))
    return np.nan_to_num(out)


def segment_profile(p: Profile, s: int, name: str) -> Figure:
    """Bar chart of segment `s` against the typical customer of the base: the segment's median
    as a % above or below the base median (the revolver share: means); each bar is annotated
    with both values in the feature's unit, so bars and labels always agree."""
    d = profile_difference(p, s) * 100
    labels = [lab for _, lab, _ in PROFILE_FEATURES]
    order = np.arange(len(d))[::-1]  # first profile column at the top
    fig = Figure(figsize=(9, 5.8), layout="constrained")
    ax = fig.add_subplot()
    colors = np.where(d[order] >= 0, "#2a7ab9", "#d9822b")
    ax.barh(np.arange(len(d)), d[order], color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(d)), [labels[j] for j in order])
    span = float(np.nanmax(np.abs(d))) if len(d) else 0.0
    lim = max(60.0, span * 1.6)  # room for the bar labels
    ax.set_xlim(-lim, lim)
    for y, j in enumerate(order):
        fmt = PROFILE_FEATURES[j][2]
        if PROFILE_FEATURES[j][0] == REVOLVER:
            note = f"{p.mean[s, j]:.0%} vs {p.base_mean[j]:.0%}"
        else:
            note = f"{fmt.format(p.median[s, j])} vs {fmt.format(p.base_median[j])}"
        ax.text(
            d[j] + (0.02 * lim if d[j] >= 0 else -0.02 * lim),
            y,
            note,
            va="center",
            ha="left" if d[j] >= 0 else "right",
            fontsize=8,
            parse_math=False,  # "$" is a currency sign here, not mathtext
        )
    for tick in ax.get_yticklabels():
        tick.set_parse_math(False)
    churn = (
        f", churn {p.churn[s]:.1%} (all customers {p.base_churn:.1%})"
        if math.isfinite(p.churn[s])
        else ""
    )
    ax.set_title(
        f"Segment {s}: {name}\n{p.size[s]:,} customers ({p.share[s]:.0%}){churn}\n"
        "bar labels: this segment's typical (median) value vs all customers'",
        fontsize=10,
    )
    ax.set_xlabel("This segment's median vs all customers' median (% above or below)")
    ax.set_ylabel("Feature (unit)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.0f}%"))
    ax.grid(axis="x", alpha=0.3)
    return fig


def segment_k_choice(table: pd.DataFrame, feature_set: str, transform: str) -> Figure:
    """Elbow (inertia), silhouette and bootstrap ARI against k for one candidate."""
    t = table[(table["feature_set"] == feature_set) & (table["transform"] == transform)]
    t = t.sort_values("k")
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    specs = (
        ("inertia", "Inertia (sum of squared distances, scaled units²)", None),
        ("silhouette", "Silhouette (−1 to 1)", MIN_SILHOUETTE),
        ("stability_ari", "Bootstrap ARI (0 to 1)", MIN_STABILITY),
    )
    for ax, (col, label, floor) in zip(axes, specs, strict=True):
        ax.plot(t["k"], t[col], marker="o")
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1, label=f"floor {floor}")
            ax.legend(loc="lower left", fontsize=8)
        ax.set_xlabel("Number of segments k (count)")
        ax.set_ylabel(label)
        ax.set_xticks(t["k"])
        ax.grid(alpha=0.3)
    fig.suptitle(f"Choosing k for {feature_set} ({transform} transform), training data")
    return fig


def segmentation_comparison(
    table: pd.DataFrame, feature_set: str, transform: str, subtitle: str = ""
) -> Figure:
    """Every design of a `nba.segments.compare_segmentations` table against k, in four panels: the elbow
    (inertia ÷ inertia at the smallest k, so designs of different sizes share an axis),
    silhouette, Calinski–Harabasz (log scale) and bootstrap ARI; floors dashed, the design
    (`feature_set`, `transform`) drawn thick and black."""
    fig = Figure(figsize=(11, 8.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    specs = (
        ("inertia", "Inertia ÷ inertia at the smallest k (ratio)", None, "Elbow"),
        ("silhouette", "Silhouette in the design's own space (−1 to 1)", MIN_SILHOUETTE, None),
        ("calinski_harabasz", "Calinski–Harabasz (ratio, log scale)", None, None),
        ("stability_ari", "Bootstrap ARI, mean over resamples (0 to 1)", MIN_STABILITY, None),
    )
    colors = [f"C{i}" for i in range(10)]
    designs = list(dict.fromkeys(zip(table["feature_set"], table["transform"], strict=True)))
    for ax, (col, label, floor, _) in zip(axes, specs, strict=True):
        others = iter(colors)
        for f, tr in designs:
            t = table[(table["feature_set"] == f) & (table["transform"] == tr)].sort_values("k")
            y = t[col] / t[col].iloc[0] if col == "inertia" else t[col]
            chosen = (f, tr) == (feature_set, transform)
            ax.plot(
                t["k"],
                y,
                marker="o",
                markersize=5 if chosen else 3,
                linewidth=2.8 if chosen else 1.2,
                color="black" if chosen else next(others),
                alpha=1.0 if chosen else 0.8,
                label=f"{f} / {tr}" + (" (chosen)" if chosen else ""),
                zorder=3 if chosen else 2,
            )
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1)
            ax.annotate(
                f"floor {floor}",
                (0, floor),
                xycoords=("axes fraction", "data"),
                xytext=(4, -11),
                textcoords="offset points",
                fontsize=8,
                color="grey",
            )
        if col == "calinski_harabasz":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel("Number of segments k (count)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted(table["k"].unique()))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8.5, frameon=False)
    fig.suptitle(
        "Candidate segmentations by number of segments: elbow, separation and stability"
        + (f"\n{subtitle}" if subtitle else "")
    )
    return fig


def segment_churn(segments: pd.DataFrame, base_rate: float) -> Figure:
    """Churn rate (%) of every segment on the training and on the held-out customers, from
    `nba.segments.segment_metrics(...)["segments"]` as a frame (`name`, `size_test`, `churn_rate_train`,
    `churn_rate_test`); riskiest at the top, the held-out base rate dashed."""
    t = segments.sort_values("churn_rate_test")
    y = np.arange(len(t))
    fig = Figure(figsize=(9, 1.0 + 0.75 * len(t)), layout="constrained")
    ax = fig.add_subplot()
    h = 0.38
    ax.barh(y + h / 2, 100 * t["churn_rate_train"], h, color="#9ecae1", label="training split")
    bars = ax.barh(y - h / 2, 100 * t["churn_rate_test"], h, color="#2a7ab9", label="held out")
    ax.bar_label(bars, [f"{v:.1%}" for v in t["churn_rate_test"]], padding=3, fontsize=8)
    ax.axvline(100 * base_rate, color="grey", linestyle="--", linewidth=1)
    ax.annotate(
        f"all held-out customers {base_rate:.1%}",
        (100 * base_rate, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -10),
        textcoords="offset points",
        fontsize=8,
        color="grey",
    )
    labels = [f"{n}\n({s:,} held out)" for n, s in zip(t["name"], t["size_test"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 100 * max(t["churn_rate_test"].max(), t["churn_rate_train"].max()) * 1.18)
    ax.set_xlabel("Churn rate (% of the segment's customers)")
    ax.set_ylabel("Segment (held-out customers)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Churn rate by segment: training vs held-out customers")
    return fig


# --- the economics under other assumptions (notebook 06) ---------------------------------------

LOW_COLOR, HIGH_COLOR = "#4C72B0", "#DD8452"  # the assumption lowered / raised


def sensitivity_tornado(tables: dict[str, pd.DataFrame], change: float) -> Figure:
    """Tornado chart of the plan's sensitivity, one panel per outcome: `tables` maps the
    outcome's axis label (with its unit; "($)" marks money) to `nba.economics.tornado_table`
    output (label, base, low, high, low_value, high_value; widest swing first). Each bar runs
    from the base case to the outcome with one assumption at −`change` (blue) or +`change`
    (orange), all others at their base value; the widest swing is drawn at the top."""
    first = next(iter(tables.values()))
    fig = Figure(figsize=(13, 1.6 + 0.62 * len(first) * math.ceil(len(tables) / 2)))
    axes = fig.subplots(math.ceil(len(tables) / 2), 2, squeeze=False).ravel()
    for ax in axes[len(tables) :]:
        ax.set_visible(False)
    for ax, (outcome, table) in zip(axes, tables.items(), strict=False):
        money = "($)" in outcome
        show = _money_k if money else (lambda v: f"{v:,.0f}")
        t = table.iloc[::-1]  # widest swing on top
        y = np.arange(len(t))
        base = float(t["base"].iloc[0])
        low, high = t["low"].to_numpy(dtype=float), t["high"].to_numpy(dtype=float)
        for yi, lo, hi in zip(y, low, high, strict=True):
            # the longer bar first, so that a shorter one on the same side stays visible
            ends = sorted(((lo, LOW_COLOR), (hi, HIGH_COLOR)), key=lambda e: -abs(e[0] - base))
            for end, color in ends:
                ax.barh(yi, end - base, left=base, color=color, height=0.6)
            if (lo - base) * (hi - base) > 0:  # both on one side: one label, low / high
                labels = [(max(lo, hi, key=lambda v: abs(v - base)), f"{show(lo)} / {show(hi)}")]
            else:
                labels = [(lo, show(lo)), (hi, show(hi))]
            for end, text in labels:
                if np.isfinite(end) and end != base:
                    ax.annotate(
                        text,
                        (end, yi),
                        xytext=(3 if end > base else -3, 0),
                        textcoords="offset points",
                        ha="left" if end > base else "right",
                        va="center",
                        fontsize=7.5,
                    )
        ax.axvline(base, color="black", lw=0.8)
        labels = [
            f"{label}\n{number(lo)} / {number(hi)}"
            for label, lo, hi in zip(t["label"], t["low_value"], t["high_value"], strict=True)
        ]
        ax.set_yticks(y, [tex(v) for v in labels], fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, f=show: f(v)))
        ax.margins(x=0.25)
        ax.set_title(tex(f"{outcome}: base {show(base)}"), fontsize=10)
        ax.set_xlabel(tex(outcome))
        ax.set_ylabel("assumption (low / high value)")
        ax.grid(axis="x", alpha=0.3)
    handles = [
        Patch(color=LOW_COLOR, label=f"assumption {-change:+.0%}"),
        Patch(color=HIGH_COLOR, label=f"assumption {change:+.0%}"),
    ]
    fig.legend(handles=handles, loc="lower center", ncols=2, frameon=False, fontsize=9)
    fig.suptitle("How the action plan moves when one assumption moves, all others fixed")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
