"""Tables and markdown the CRISP-DM notebooks display: the business framing (plan, data
inventory, risks), data-understanding statistics (churn by category, means by class, quality
checks, leakage) and data-preparation evidence (correlations, permutation importance, split).

Pure functions over DataFrames that return DataFrames or strings, so the notebooks only call
and display; the one exception, `merged_metrics`, reads the metrics file it extends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from nba.churn.model import TREND, WINDOW_12M
from nba.config import Settings
from nba.data import schema
from nba.data.discover import DataSource
from nba.data.validate import ValidationResult
from nba.plots import UNITS
from nba.report import METRICS

#: Behaviour measured over the last 12 months (the window's totals and its Q4/Q1 trend, as the
#: churn model's feature variants group them): the window may overlap the churn event itself.
BEHAVIOUR_12M = (*WINDOW_12M, *TREND)

#: Kaggle's own column descriptions (sakshigoyal7/credit-card-customers).
DESCRIPTIONS: dict[str, str] = {
    schema.ID: "Client number. Unique identifier for the customer holding the account",
    schema.TARGET_RAW: "Internal event (customer activity) variable: if the account is closed "
    "then 'Attrited Customer' else 'Existing Customer'",
    "Customer_Age": "Demographic variable: customer's age in years",
    "Gender": "Demographic variable: M = male, F = female",
    "Dependent_count": "Demographic variable: number of dependents",
    "Education_Level": "Demographic variable: educational qualification of the account holder "
    "(e.g. high school, college graduate)",
    "Marital_Status": "Demographic variable: married, single, divorced, unknown",
    "Income_Category": "Demographic variable: annual income category of the account holder "
    "(< $40K, $40K-60K, $60K-$80K, $80K-$120K, > $120K)",
    "Card_Category": "Product variable: type of card (Blue, Silver, Gold, Platinum)",
    "Months_on_book": "Period of relationship with the bank",
    "Total_Relationship_Count": "Total number of products held by the customer",
    "Months_Inactive_12_mon": "Number of months inactive in the last 12 months",
    "Contacts_Count_12_mon": "Number of contacts in the last 12 months",
    "Credit_Limit": "Credit limit on the credit card",
    "Total_Revolving_Bal": "Total revolving balance on the credit card",
    "Avg_Open_To_Buy": "Open to buy credit line (average of last 12 months)",
    "Total_Amt_Chng_Q4_Q1": "Change in transaction amount (Q4 over Q1)",
    "Total_Trans_Amt": "Total transaction amount (last 12 months)",
    "Total_Trans_Ct": "Total transaction count (last 12 months)",
    "Total_Ct_Chng_Q4_Q1": "Change in transaction count (Q4 over Q1)",
    "Avg_Utilization_Ratio": "Average card utilization ratio",
    schema.LEAKAGE[0]: "Output of another (Naive Bayes) model; Kaggle's note: ignore/remove it",
    schema.LEAKAGE[1]: "Output of another (Naive Bayes) model; Kaggle's note: ignore/remove it",
}


def md(text: object) -> str:
    """Text safe inside Jupyter markdown: a pair of `$` would be typeset as maths."""
    return str(text).replace("$", "\\$")


def money(amount: float) -> str:
    """An amount in dollars for markdown prose: '\\$1,234' (escaped), '-\\$40'."""
    sign = "-" if amount < 0 else ""
    return f"{sign}\\${abs(amount):,.0f}"


def money_cents(amount: float) -> str:
    """An amount in dollars and cents for markdown prose: '\\$0.00'."""
    sign = "-" if amount < 0 else ""
    return f"{sign}\\${abs(amount):,.2f}"


def short_name(column: str) -> str:
    """Column names fit for a table: the two 120-character leakage names shortened."""
    if column.startswith(schema.LEAKAGE_PREFIX):
        return f"{schema.LEAKAGE_PREFIX}…{column[-2:]}"
    return column


def banner_markdown(source: DataSource) -> str:
    """The data-source banner as markdown: a loud warning block when the data is synthetic."""
    if source.synthetic:
        return (
            f"> ## ⚠️ SYNTHETIC DATA\n>\n> **{source.banner}**\n>\n"
            "> Every number and figure below describes generated customers. Point `data_path` "
            "(or `NBA_DATA`) at the real file before drawing business conclusions."
        )
    return f"> ✅ **{source.banner}**"


def plan() -> pd.DataFrame:
    """The project plan: CRISP-DM phases and the notebook that answers each."""
    rows = [
        ("Business understanding", "01", "Why churn matters, what it costs, what success is"),
        ("Data understanding", "02", "What the data says; quality; leakage found"),
        ("Data preparation", "03", "Clean rows, the feature list, the held-out split"),
        ("Modelling: stage 1", "04", "Churn risk per customer, with reasons"),
        ("Modelling: stage 2", "05", "Customer segments, named and profiled"),
        ("Modelling: actions", "06", "Next best action per customer, with value"),
        ("Evaluation", "07", "Each success criterion met / not met on held-out customers"),
        ("Deployment", "08", "Bundle, batch scoring, app and monitoring"),
    ]
    return pd.DataFrame(rows, columns=["phase", "notebook", "question answered"])


def _kind(column: str) -> str:
    if column == schema.ID:
        return "integer id"
    if column in schema.CATEGORIES:
        return "category"
    if column in schema.INTEGERS:
        return "integer"
    if column in schema.FLOATS or column.startswith(schema.LEAKAGE_PREFIX):
        return "float"
    return "text"


def _role(column: str) -> str:
    if column == schema.ID:
        return "id"
    if column == schema.TARGET_RAW:
        return "target"
    if column.startswith(schema.LEAKAGE_PREFIX):
        return "leakage"
    return "feature"


def data_inventory(columns: Sequence[str] = schema.KAGGLE_COLUMNS) -> pd.DataFrame:
    """One row per column of the Kaggle file: type, role (id / target / feature / leakage),
    unit and Kaggle's description."""
    return pd.DataFrame(
        {
            "column": [short_name(c) for c in columns],
            "type": [_kind(c) for c in columns],
            "role": [_role(c) for c in columns],
            "unit": [UNITS.get(c, "") for c in columns],
            "description": [DESCRIPTIONS.get(c, "") for c in columns],
        }
    )


def _churn(df: pd.DataFrame) -> np.ndarray:
    return (df[schema.TARGET].to_numpy() == 1).astype(int)


def separation(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """How well each column alone separates attrited from existing customers: ROC-AUC of the
    value (numeric) or of the category's churn rate (categorical), folded so that 0.5 = no
    signal and 1 = perfect, with the direction and the class means of numeric columns."""
    y = _churn(df)
    rows = []
    for c in columns:
        if c in schema.CATEGORIES:
            rate = pd.Series(y, index=df.index).groupby(df[c].astype(str)).mean()
            score = df[c].astype(str).map(rate).to_numpy(dtype=float)
            mean0 = mean1 = np.nan
        else:
            score = df[c].to_numpy(dtype=float)
            mean0, mean1 = np.nanmean(score[y == 0]), np.nanmean(score[y == 1])
        ok = np.isfinite(score)  # an engineered ratio is NaN where its denominator is 0
        auc = roc_auc_score(y[ok], score[ok])
        rows.append(
            {
                "feature": c,
                "auc": max(auc, 1 - auc),
                "direction": "higher in attrited" if auc > 0.5 else "lower in attrited",
                "mean_existing": mean0,
                "mean_attrited": mean1,
                "window": "last 12 months" if c in BEHAVIOUR_12M else "",
            }
        )
    return pd.DataFrame(rows).set_index("feature").sort_values("auc", ascending=False)


def category_churn(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per category of `column`: customers, attrited, share of existing and of attrited
    customers (%) and churn rate (%), in the schema's category order."""
    y = pd.Series(_churn(df), index=df.index)
    order = [c for c in schema.CATEGORIES.get(column, ()) if c in set(df[column])]
    g = y.groupby(df[column])
    table = pd.DataFrame({"customers": g.size(), "attrited": g.sum()}).reindex(
        order or sorted(df[column].unique())
    )
    table["share_of_existing_%"] = (
        (table["customers"] - table["attrited"]) / (len(y) - y.sum()) * 100
    )
    table["share_of_attrited_%"] = table["attrited"] / max(int(y.sum()), 1) * 100
    table["churn_rate_%"] = table["attrited"] / table["customers"] * 100
    table.index.name = column
    return table.round(1)


def means_by_class(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Mean of each numeric column for existing and attrited customers, the relative
    difference (%) and the single-feature separation (AUC)."""
    y = _churn(df)
    table = pd.DataFrame(
        {
            "unit": [UNITS.get(c, "") for c in columns],
            "mean_existing": [df.loc[y == 0, c].mean() for c in columns],
            "mean_attrited": [df.loc[y == 1, c].mean() for c in columns],
        },
        index=pd.Index(list(columns), name="feature"),
    )
    table["difference_%"] = (table["mean_attrited"] / table["mean_existing"] - 1) * 100
    table["auc"] = separation(df, columns)["auc"]
    return table.round(3)


def unknown_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Customers whose category is 'Unknown', per categorical column (count, % of customers,
    churn rate among them %)."""
    y = _churn(df)
    rows = []
    for c in schema.CATEGORICAL:
        unknown = df[c].eq("Unknown").to_numpy()
        rows.append(
            {
                "column": c,
                "unknown": int(unknown.sum()),
                "share_%": unknown.mean() * 100,
                "churn_rate_unknown_%": y[unknown].mean() * 100 if unknown.any() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("column").round(2)


def iqr_outliers(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Tukey's rule per column: fences Q1 − 1.5·IQR and Q3 + 1.5·IQR, customers outside them
    (count and %). Outliers are flagged, not removed: they are real customers."""
    rows = []
    for c in columns:
        x = df[c].astype(float)
        q1, q3 = x.quantile([0.25, 0.75])
        lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        n = int(((x < lo) | (x > hi)).sum())
        rows.append({"column": c, "low_fence": lo, "high_fence": hi, "outliers": n})
    table = pd.DataFrame(rows).set_index("column")
    table["share_%"] = table["outliers"] / len(df) * 100
    return table.round(2).sort_values("outliers", ascending=False)


def identity_check(df: pd.DataFrame) -> pd.DataFrame:
    """The file's two balance identities: largest absolute deviation, the validator's tolerance
    and the customers beyond it."""
    open_gap = (df["Avg_Open_To_Buy"] - (df["Credit_Limit"] - df["Total_Revolving_Bal"])).abs()
    util_gap = (df["Avg_Utilization_Ratio"] - df["Total_Revolving_Bal"] / df["Credit_Limit"]).abs()
    return pd.DataFrame(
        {
            "identity": [
                "Avg_Open_To_Buy = Credit_Limit - Total_Revolving_Bal",
                "Avg_Utilization_Ratio = Total_Revolving_Bal / Credit_Limit",
            ],
            "unit": ["$", "ratio points"],
            "max_abs_deviation": [float(open_gap.max()), float(util_gap.max())],
            "tolerance": [schema.OPEN_TO_BUY_TOLERANCE, schema.UTILIZATION_TOLERANCE],
            "beyond_tolerance": [
                int((open_gap > schema.OPEN_TO_BUY_TOLERANCE).sum()),
                int((util_gap > schema.UTILIZATION_TOLERANCE).sum()),
            ],
        }
    ).set_index("identity")


def quality_summary(raw: pd.DataFrame, clean: pd.DataFrame, rejects: pd.DataFrame) -> pd.DataFrame:
    """Whole-file data-quality counts: rows read, rows rejected by validation, missing cells,
    duplicate ids and duplicate records (all columns but the id)."""
    record = [c for c in clean.columns if c != schema.ID]
    checks = {
        "rows read": len(raw),
        "rows rejected by validation": len(rejects),
        "clean rows": len(clean),
        "missing cells (raw file)": int(raw.isna().sum().sum()),
        "columns with missing cells": int(raw.isna().any().sum()),
        "duplicate CLIENTNUM (raw file)": int(raw[schema.ID].duplicated().sum()),
        "duplicate records, all columns but CLIENTNUM": int(clean[record].duplicated().sum()),
    }
    return pd.DataFrame({"count": checks}).rename_axis("check")


def leakage_separation(raw: pd.DataFrame) -> pd.DataFrame:
    """ROC-AUC of each leakage column present in `raw` (as `read_table` returns it) against
    the target: 1.0 or 0.0 means the column encodes the label. Empty when none is present."""
    present = [c for c in raw.columns if c.startswith(schema.LEAKAGE_PREFIX)]
    if not present or schema.TARGET_RAW not in raw.columns:
        return pd.DataFrame(columns=["auc", "separation"]).rename_axis("column")
    y = raw[schema.TARGET_RAW].eq(schema.ATTRITED).to_numpy()
    rows = []
    for c in present:
        x = pd.to_numeric(raw[c], errors="coerce")
        ok = x.notna().to_numpy()
        auc = roc_auc_score(y[ok], x[ok])
        rows.append({"column": short_name(c), "auc": auc, "separation": max(auc, 1 - auc)})
    return pd.DataFrame(rows).set_index("column").round(4)


def risks(
    df: pd.DataFrame, source: DataSource, sep: pd.DataFrame, rejected: int = 0
) -> pd.DataFrame:
    """The project's risks, each with evidence computed from this data and a mitigation."""
    y = _churn(df)
    behaviour = sep.loc[sep.index.isin(BEHAVIOUR_12M)]
    others = sep.loc[~sep.index.isin(BEHAVIOUR_12M)]
    top = behaviour["auc"].idxmax()
    unknown = unknown_shares(df)
    platinum = df["Card_Category"].eq("Platinum").to_numpy()
    mean_ct = [df.loc[y == k, "Total_Trans_Ct"].mean() for k in (0, 1)]
    rows = [
        (
            "12-month behaviour may overlap the churn event",
            f"{top} alone separates churners with AUC {behaviour.loc[top, 'auc']:.3f}; "
            f"behaviour columns median AUC {behaviour['auc'].median():.3f} vs "
            f"{others['auc'].median():.3f} for the rest; attrited customers made "
            f"{mean_ct[1]:.0f} transactions a year vs {mean_ct[0]:.0f}",
            "Ask when the 12-month window ends relative to the closure date; compare a model "
            "without these columns before trusting scores as early warnings",
        ),
        (
            "'Unknown' categories",
            "; ".join(
                f"{c}: {r['share_%']:.1f}%" for c, r in unknown.iterrows() if r["unknown"] > 0
            )
            or "no 'Unknown' values in this data",
            "Keep 'Unknown' as its own category (no imputation); ask why it is missing",
        ),
        (
            "Small Platinum group",
            f"{int(platinum.sum())} Platinum customers ({platinum.mean():.2%}), "
            f"{int(y[platinum].sum())} of them attrited",
            "No Platinum-specific conclusions; rare tiers are pooled where a rate is needed",
        ),
        (
            "Class imbalance",
            f"{y.mean():.2%} of customers attrited ({int(y.sum()):,} of {len(y):,})",
            "Stratified split; PR-AUC, precision and recall next to ROC-AUC; tuned threshold",
        ),
        (
            "Leakage columns in the file",
            f"the {len(schema.LEAKAGE)} Naive_Bayes_Classifier_* columns are another model's "
            "output (notebook 02 measures how well they encode the target)",
            "The loader drops them; they are never features",
        ),
        (
            "Value is a proxy",
            "the file has no revenue columns: value uses assumed interchange, margin, fees "
            "and cost (params/default.yaml)",
            "Replace the assumptions with the bank's own figures; results scale with them",
        ),
        (
            "Synthetic data" if source.synthetic else "Data is a development sample",
            f"this run uses {'SYNTHETIC' if source.synthetic else 'real'} data: "
            f"{source.rows:,} rows{f', {rejected:,} rejected' if rejected else ''}",
            "Synthetic figures show the method only; acceptance is measured on real "
            "customers the project has never seen"
            if source.synthetic
            else "Acceptance is measured on real customers the project has never seen",
        ),
    ]
    return pd.DataFrame(rows, columns=["risk", "evidence (this run)", "mitigation"])


def validation_summary(result: ValidationResult) -> pd.DataFrame:
    """Rows in / clean / rejected, then one row per validation rule broken (with its count)."""
    counts = [
        ("rows in", result.n_in),
        ("clean rows", len(result.clean)),
        ("rejected rows", len(result.rejects)),
    ]
    counts += [
        (f"rule broken: {p.split(': ', 1)[1]}", int(p.split(" ", 1)[0])) for p in result.problems
    ]
    return pd.DataFrame(counts, columns=["item", "rows"]).set_index("item")


def correlation_with_churn(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Pearson (point-biserial) correlation of each numeric column with churn (−1 to 1)."""
    y = pd.Series(_churn(df), index=df.index, dtype=float)
    return pd.Series({c: df[c].astype(float).corr(y) for c in columns}, name="correlation")


def model_frame(df: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The feature columns with categories as pandas categoricals (schema order), as
    scikit-learn's histogram gradient boosting reads them natively."""
    X = df[list(features)].copy()
    for c in X.columns.intersection(list(schema.CATEGORIES)):
        X[c] = X[c].astype(pd.CategoricalDtype(schema.CATEGORIES[c]))
    return X


def feature_importance(
    train: pd.DataFrame, features: Sequence[str], settings: Settings, n_repeats: int = 5
) -> tuple[pd.DataFrame, float]:
    """Permutation importance of a quick, seeded HistGradientBoostingClassifier, using the
    training split only: fitted on 75 % of it and measured (drop in ROC-AUC when a feature is
    shuffled) on the other 25 %. Returns (table with `importance` and `std`, validation AUC)."""
    fit, valid = train_test_split(
        train, test_size=0.25, stratify=train[schema.TARGET], random_state=settings.seed
    )
    model = HistGradientBoostingClassifier(
        random_state=settings.seed, categorical_features="from_dtype"
    )
    X_valid = model_frame(valid, features)
    # One OpenMP thread: on a small table threads gain little, and on a busy machine their
    # spin-waiting makes the fit many times slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(model_frame(fit, features), fit[schema.TARGET])
        auc = float(roc_auc_score(valid[schema.TARGET], model.predict_proba(X_valid)[:, 1]))
        result = permutation_importance(
            model,
            X_valid,
            valid[schema.TARGET],
            scoring="roc_auc",
            n_repeats=n_repeats,
            random_state=settings.seed,
        )
    table = pd.DataFrame(
        {"importance": result.importances_mean, "std": result.importances_std},
        index=pd.Index(list(features), name="feature"),
    ).sort_values("importance", ascending=False)
    return table, auc


def split_summary(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Customers, attrited customers and churn rate on each side of the held-out split."""
    rows = {
        side: {
            "customers": len(part),
            "attrited": int(_churn(part).sum()),
            "churn_rate": float(_churn(part).mean()),
        }
        for side, part in (("train", train), ("test", test))
    }
    return pd.DataFrame(rows).T.astype({"customers": int, "attrited": int, "churn_rate": float})


def source_metrics(source: DataSource, settings: Settings) -> dict[str, Any]:
    """The data identity every metrics file starts with: path, origin, sha256, rows in the
    file, synthetic flag and the seed."""
    return {
        "data_path": source.path,
        "data_origin": source.origin,
        "data_sha256": source.sha256,
        "rows": source.rows,
        "synthetic": source.synthetic,
        "seed": settings.seed,
    }


def merged_metrics(name: str, new: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`new` added to the metrics already in `reports/metrics/<name>.json` when those came from
    the same data and seed (notebooks 01-03 each add their part to `data.json`); otherwise
    `new` alone, so figures from another dataset never mix in."""
    path = settings.path("reports_dir") / METRICS / f"{name}.json"
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    same = all(old.get(k) == new.get(k) for k in ("data_sha256", "seed")) and "data_sha256" in new
    return {**old, **new} if same else dict(new)


# --- captions: the sentence under a figure, from the numbers it shows ----------------------------


def category_caption(df: pd.DataFrame, column: str) -> str:
    """What `plots.category_profile` shows for `column`, with the highest and lowest churn."""
    table = category_churn(df, column)
    rate = table["churn_rate_%"]
    hi, lo = rate.idxmax(), rate.idxmin()
    return (
        f"Left: how {column} is spread within existing and within attrited customers; right: "
        f"the churn rate of each category. Highest: **{md(hi)}** ({rate[hi]:.1f}%, "
        f"{int(table.loc[hi, 'customers']):,} customers); lowest: **{md(lo)}** ({rate[lo]:.1f}%, "
        f"{int(table.loc[lo, 'customers']):,}); all customers: {_churn(df).mean():.1%}. "
        f"On its own {column} separates churners with AUC "
        f"{separation(df, [column])['auc'].iloc[0]:.3f} (0.5 = no signal)."
    )


def means_caption(means: pd.DataFrame, n: int = 3) -> str:
    """The `n` numeric features whose class means differ most (by separation AUC)."""
    top = means.sort_values("auc", ascending=False).head(n)
    parts = [
        f"{feature} {row['mean_attrited']:,.2f} vs {row['mean_existing']:,.2f} "
        f"({row['difference_%']:+.0f}%)"
        for feature, row in top.iterrows()
    ]
    flat = means.sort_values("auc").head(n)
    return (
        "Mean of attrited vs existing customers, largest separations first: "
        + "; ".join(parts)
        + f". Smallest: {', '.join(flat.index)} (AUC ≤ {flat['auc'].max():.3f})."
    )


def distributions_caption(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """What `plots.numeric_distributions` shows: where the classes differ and where not."""
    sep = separation(df, columns)
    strong, weak = sep.head(3), sep.tail(3)
    return (
        "Each panel is one feature's distribution within existing (blue) and attrited "
        "(orange) customers, as a share of each class; dashed lines are the medians. The "
        f"clearest shifts: {', '.join(f'{c} (AUC {a:.3f})' for c, a in strong['auc'].items())}; "
        f"almost none: {', '.join(f'{c} ({a:.3f})' for c, a in weak['auc'].items())}."
    )


def correlation_caption(
    df: pd.DataFrame, columns: Sequence[str], n: int = 3, duplicate: float = 0.95
) -> str:
    """The strongest correlated feature pairs, the features most correlated with churn, and
    the near-duplicate pairs (|r| ≥ `duplicate`)."""
    corr = df[list(columns)].astype(float).corr()
    upper = corr.where(np.triu(np.ones(corr.shape, dtype=bool), k=1)).stack()
    pairs = upper.abs().sort_values(ascending=False).head(n).index
    with_churn = correlation_with_churn(df, columns)
    top = with_churn.abs().sort_values(ascending=False).head(n).index
    twins = list(upper[upper.abs() >= duplicate].index)
    return (
        "Lower triangle of Pearson correlations (red positive, blue negative). Strongest pairs: "
        + "; ".join(f"{a} – {b} ({upper[(a, b)]:+.2f})" for a, b in pairs)
        + ". Most correlated with churn: "
        + ", ".join(f"{c} ({with_churn[c]:+.2f})" for c in top)
        + "."
        + (
            f" Near-duplicates (|r| ≥ {duplicate:.2f}), the same information twice: "
            + "; ".join(f"{a} – {b}" for a, b in twins)
            + "."
            if twins
            else ""
        )
    )


def leakage_caption(leak: pd.DataFrame) -> str:
    """Why the leakage columns are excluded, with their measured separation."""
    if leak.empty:
        return (
            "This file has no Naive_Bayes_Classifier_* columns: nothing to exclude here; the "
            "loader would drop them if they were present."
        )
    return (
        f"The {len(leak)} Naive_Bayes_Classifier_* columns separate attrited from existing "
        f"customers with ROC-AUC {leak['separation'].min():.4f} (1.0 = perfect): they are "
        "another model's output and encode the label. A model using them would look perfect "
        "and be useless on new customers. The loader drops them; they are never features."
    )


def selection_table(
    train: pd.DataFrame,
    features: Sequence[str],
    importance: pd.DataFrame,
    engineered_inputs: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Per feature, the selection evidence side by side (training split only): single-feature
    AUC, correlation with churn (numeric features), permutation importance, whether it is
    engineered and whether it uses the last-12-months behaviour columns."""
    inputs = dict(engineered_inputs or {})
    numeric = [f for f in features if f not in schema.CATEGORIES]
    table = pd.DataFrame(
        {
            "single_feature_auc": separation(train, features)["auc"],
            "correlation_with_churn": correlation_with_churn(train, numeric),
            "permutation_importance": importance["importance"],
        }
    ).reindex(importance.index)
    table["kind"] = ["engineered" if f in inputs else "base" for f in table.index]
    table["window"] = [
        "last 12 months" if set(inputs.get(f, (f,))) & set(BEHAVIOUR_12M) else ""
        for f in table.index
    ]
    return table.round(4)


def engineered_table(
    candidates: pd.DataFrame,
    engineered: Mapping[str, Callable[..., Any]],
    inputs: Mapping[str, Sequence[str]],
    kept: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per engineered candidate present in `candidates` (a model-input frame with
    `churn`): the columns it is built from, its reason (the first line of its function's
    docstring), how well it alone separates churners (AUC) and whether the churn model keeps
    it."""
    names = [n for n in engineered if n in candidates.columns]
    sep = separation(candidates, names)
    return pd.DataFrame(
        {
            "built_from": [" & ".join(inputs.get(n, ())) for n in names],
            "reason": [(engineered[n].__doc__ or "").strip().split("\n")[0] for n in names],
            "single_feature_auc": [round(float(sep.loc[n, "auc"]), 4) for n in names],
            "kept_by_churn_model": [n in kept for n in names],
        },
        index=pd.Index(names, name="engineered feature"),
    )


def quality_caption(quality: pd.DataFrame) -> str:
    """One sentence over `quality_summary`."""
    q = quality["count"]
    return (
        f"{q['rows read']:,} rows read, {q['rows rejected by validation']:,} rejected by "
        f"validation, {q['missing cells (raw file)']:,} missing cells, "
        f"{q['duplicate CLIENTNUM (raw file)']:,} duplicate ids and "
        f"{q['duplicate records, all columns but CLIENTNUM']:,} duplicate records."
    )


def unknown_caption(unknown: pd.DataFrame) -> str:
    """Which columns hold 'Unknown', how often, and the churn rate among those customers."""
    present = unknown[unknown["unknown"] > 0]
    if present.empty:
        return "No categorical column holds 'Unknown' in this data."
    parts = "; ".join(
        f"{c} {r['share_%']:.1f}% (churn {r['churn_rate_unknown_%']:.1f}%)"
        for c, r in present.iterrows()
    )
    return (
        f"'Unknown' in {len(present)} columns: {parts}. It is an answer the bank recorded, not "
        "a gap in the file: it stays a category of its own (no imputation)."
    )


def outlier_caption(outliers: pd.DataFrame) -> str:
    """Where the IQR rule flags customers, and the decision taken."""
    flagged = outliers[outliers["outliers"] > 0]
    if flagged.empty:
        return "No customer lies outside the IQR fences of any numeric column."
    top = flagged.index[0]
    return (
        f"{len(flagged)} of {len(outliers)} numeric columns have customers outside the IQR "
        f"fences; most in {top} ({int(flagged.loc[top, 'outliers']):,}, "
        f"{flagged.loc[top, 'share_%']:.1f}%). These are long right tails of limits and spend "
        "(and the few extreme counts), not errors: the customers stay in, and tree models are "
        "insensitive to them."
    )


def identity_caption(identities: pd.DataFrame) -> str:
    """The two identities' largest deviations in words."""
    dev = identities["max_abs_deviation"]
    return (
        f"Largest deviations: {money_cents(dev.iloc[0])} for the open-to-buy identity and "
        f"{dev.iloc[1]:.4f} for utilisation (the file rounds the ratio); "
        f"{int(identities['beyond_tolerance'].sum()):,} customers beyond the validator's "
        "tolerance. Both columns follow from others, so they add no new information."
    )
