"""Who gets an action: action rates by gender and age band beside what drives them (churn
probability, the share flagged, value at risk), the gaps between groups, and the sentence
notebook 06 shows. No rule of the engine reads gender or age; these tables show whether the
scores and the value still make the rates differ, and why.

Adverse impact (the four-fifths rule of the US Uniform Guidelines, 29 CFR 1607.4(D), the
yardstick fair-lending reviews borrow): per action and per protected attribute
(params/protected.yaml; age in the bands `AGE_BINS`, one set everywhere), the selection rate of
each group with a Wilson interval, and its ratio to the most-selected group with a Katz
log interval; a ratio under 0.8 is adverse impact. `adverse_impact` computes it from who got
which action; notebooks 06 and 07, the model card and `nba monitor` show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from nba.actions import AGE_BINS, AGE_LABELS

#: The four-fifths rule: a group selected at less than 0.8 × the most-selected group's rate.
FOUR_FIFTHS = 0.8
#: Groups smaller than this are shown but neither compared nor used as the reference.
MIN_AI_GROUP = 30

#: The protected attributes the tables are cut by (columns of the customer record).
PROTECTED = ("Gender", "Customer_Age")
#: Customers a group needs to count in the gaps (smaller groups are shown, not compared).
MIN_GROUP = 100


def action_context(
    scores: pd.DataFrame, customers: pd.DataFrame, acted: np.ndarray, value_at_risk: np.ndarray
) -> pd.DataFrame:
    """One row per customer: churn probability, flagged (0/1), value at risk ($), whether the
    engine gave an action, gender and age band (`age_bands`, the project's one set)."""
    age_band = age_bands(customers["Customer_Age"])
    return pd.DataFrame(
        {
            "churn_probability": scores["churn_probability"].to_numpy(),
            "flagged": scores["churn_flag"].to_numpy(),
            "value_at_risk": np.asarray(value_at_risk, dtype=np.float64),
            "acted": np.asarray(acted, dtype=bool),
            "Gender": customers["Gender"].astype(str).to_numpy(),
            "age_band": age_band,  # categorical: groups in age order
        },
        index=customers.index,
    )


def action_rates(context: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per group of `by` ("Gender" or "age_band"): customers, action rate, mean churn
    probability, share flagged; among flagged customers only, the action rate and the median
    value at risk."""
    groups = context.groupby(by, observed=True)
    table = groups.agg(
        customers=("acted", "size"),
        action_rate=("acted", "mean"),
        churn_probability=("churn_probability", "mean"),
        flagged=("flagged", "mean"),
    )
    flagged = context[context["flagged"] == 1].groupby(by, observed=True)
    return table.join(
        flagged.agg(
            action_rate_flagged=("acted", "mean"), value_at_risk_flagged=("value_at_risk", "median")
        )
    )


def rate_gaps(by_gender: pd.DataFrame, by_age: pd.DataFrame, min_group: int = MIN_GROUP) -> dict:
    """Widest action-rate gap (share, 0-1) between groups of at least `min_group` customers:
    overall and among flagged customers, by gender and by age band."""
    gender = by_gender[by_gender.customers >= min_group]
    age = by_age[by_age.customers >= min_group]

    def spread(column: pd.Series) -> float:
        return float(column.max() - column.min())

    return {
        "gender": spread(gender.action_rate),
        "gender_flagged": spread(gender.action_rate_flagged),
        "age_band": spread(age.action_rate),
        "age_band_flagged": spread(age.action_rate_flagged),
    }


def rule_columns(catalogue: Any) -> set[str]:
    """Every customer column the catalogue's rules read (eligibility, suitability, contacts)."""
    return {
        c.column
        for a in catalogue.actions
        for r in (*a.eligible_if, *a.unsuitable_if)
        for c in r.conditions
    } | {catalogue.contact_column}


def gap_story(
    by_gender: pd.DataFrame, by_age: pd.DataFrame, catalogue: Any, min_group: int = MIN_GROUP
) -> str:
    """The markdown sentence under the tables: the gaps, and whether value at risk or churn
    risk explains them (every figure from the tables)."""
    from nba.story import money

    read = rule_columns(catalogue)
    protected = sorted(set(PROTECTED) & read)
    gaps = rate_gaps(by_gender, by_age, min_group)
    g = by_gender[by_gender.customers >= min_group]
    a = by_age[by_age.customers >= min_group]
    hi, lo = g.action_rate.idxmax(), g.action_rate.idxmin()
    hf, lf = g.action_rate_flagged.idxmax(), g.action_rate_flagged.idxmin()
    ha, la = a.action_rate.idxmax(), a.action_rate.idxmin()
    fa, fl = a.action_rate_flagged.idxmax(), a.action_rate_flagged.idxmin()
    text = f"The rules read {len(read)} columns, " + (
        f"including {', '.join(protected)}. "
        if protected
        else "neither gender nor age: any gap comes through the scores and the value. "
    )
    text += (
        f"**Gender: a gap of {100 * gaps['gender']:.1f} percentage points.** {hi} customers get "
        f"an action more often ({g.action_rate[hi]:.1%} against {g.action_rate[lo]:.1%}) "
        + ("although" if g.churn_probability[hi] < g.churn_probability[lo] else "and")
        + f" their mean churn probability is {g.churn_probability[hi]:.1%} against "
        f"{g.churn_probability[lo]:.1%}. Among flagged customers the gap is "
        f"{100 * gaps['gender_flagged']:.1f} points ({hf} {g.action_rate_flagged[hf]:.1%}, {lf} "
        f"{g.action_rate_flagged[lf]:.1%}), and flagged {hf} customers have a median value at "
        f"risk of {money(g.value_at_risk_flagged[hf])} against "
        f"{money(g.value_at_risk_flagged[lf])}: "
    )
    text += (
        "the gap comes from value at risk (spend, revolving balance, card tier), which decides "
        "whether an action's saving beats its cost, not from churn risk. "
        if g.value_at_risk_flagged[hf] > g.value_at_risk_flagged[lf]
        else "value at risk does not explain it; the traits behind the save rates do. "
    )
    return text + (
        f"**Age bands (of {min_group}+ customers): a gap of {100 * gaps['age_band']:.1f} "
        f"points** ({ha} {a.action_rate[ha]:.1%}, {la} {a.action_rate[la]:.1%}); among flagged "
        f"customers {100 * gaps['age_band_flagged']:.1f} points ({fa} "
        f"{a.action_rate_flagged[fa]:.1%} with median value at risk "
        f"{money(a.value_at_risk_flagged[fa])}, {fl} {a.action_rate_flagged[fl]:.1%} with "
        f"{money(a.value_at_risk_flagged[fl])}). An action follows expected value, so groups "
        "worth less to the bank are contacted less: a business choice to review, not a rule "
        "that reads the attribute."
    )


# --- adverse impact ---------------------------------------------------------------------------


def age_bands(age: pd.Series | np.ndarray) -> pd.Categorical:
    """Age in the project's one set of bands (`nba.actions.AGE_BINS`, left-closed: <35, 35-44,
    45-54, 55-64, 65+), used by the action rates (notebook 06), the fairness slices (notebook
    07, `nba.evaluation.fairness_slices`) and the adverse-impact tables alike."""
    return pd.cut(
        np.asarray(age, dtype=np.float64), bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False
    )


def protected_groups(customers: pd.DataFrame, protected: Sequence[str]) -> pd.DataFrame:
    """One column per protected attribute: the customer's group (age in bands, a count such
    as Dependent_count as its value, categories as they are), index of `customers`."""
    out = {}
    for c in protected:
        if c == "Customer_Age":
            out[c] = age_bands(customers[c])
        else:
            values = customers[c]
            out[c] = (
                values.astype(str)
                if values.dtype.kind not in "iuf"
                else values.astype(np.int64).astype(str)
            )
    return pd.DataFrame(out, index=customers.index)


def selections(
    scores: pd.DataFrame, actions: Sequence[str], column: str = "action_1"
) -> pd.DataFrame:
    """Boolean per customer and action: the engine's first choice (`action_1`, what a campaign
    delivers) is that action."""
    chosen = scores[column].astype(str).to_numpy()
    return pd.DataFrame({a: chosen == a for a in actions}, index=scores.index)


def wilson(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (elementwise; NaN where n = 0)."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def ratio_interval(
    k1: np.ndarray, n1: np.ndarray, k0: float, n0: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Katz log interval for the ratio of two proportions (k1/n1) / (k0/n0), with 0.5 added
    to zero counts (NaN where the reference rate is 0)."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    k1 = np.asarray(k1, dtype=np.float64)
    n1 = np.asarray(n1, dtype=np.float64)
    a = np.where(k1 == 0, 0.5, k1)
    b = 0.5 if k0 == 0 else float(k0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (a / n1) / (b / n0)
        se = np.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n0)
        low, high = ratio * np.exp(-z * se), ratio * np.exp(z * se)
    if k0 == 0:
        return np.full_like(ratio, np.nan), np.full_like(ratio, np.nan)
    return low, high


def adverse_impact(
    selected: pd.DataFrame,
    customers: pd.DataFrame,
    protected: Sequence[str],
    min_group: int = MIN_AI_GROUP,
    threshold: float = FOUR_FIFTHS,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per action (columns of `selected`, booleans per customer), protected attribute and
    group: customers, selected, selection rate with its `level` Wilson interval, the ratio to
    the most-selected group of at least `min_group` customers (`reference`) with its Katz
    interval, `adverse` (ratio < `threshold`) and `significant` (the ratio's interval lies wholly
    below 1: the gap is not sampling noise); None for groups too small to compare or when no
    compared group is selected. Few selections give wide intervals: a ratio of 0.6 from 2 of
    1,500 against 3 of 1,400 is adverse by the rule and chance by the interval."""
    groups = protected_groups(customers, protected)
    rows = []
    for action in selected.columns:
        chosen = selected[action].to_numpy(dtype=bool)
        for attribute in protected:
            g = groups[attribute]
            table = (
                pd.DataFrame({"group": g.array, "selected": chosen})
                .groupby("group", observed=True, sort=True)["selected"]
                .agg(customers="size", selected="sum")
            )
            n = table["customers"].to_numpy()
            k = table["selected"].to_numpy()
            rate = k / n
            low, high = wilson(k, n, level)
            big = n >= min_group
            ref = int(np.argmax(np.where(big, rate, -1.0))) if big.any() else -1
            if ref >= 0 and k[ref] > 0:
                ratio = np.where(big, rate / rate[ref], np.nan)
                r_low, r_high = ratio_interval(k, n, k[ref], n[ref], level)
                r_low, r_high = np.where(big, r_low, np.nan), np.where(big, r_high, np.nan)
            else:
                ratio = r_low = r_high = np.full(len(n), np.nan)
            for i, group in enumerate(table.index):
                rows.append(
                    {
                        "action": action,
                        "attribute": attribute,
                        "group": str(group),
                        "customers": int(n[i]),
                        "selected": int(k[i]),
                        "selection_rate": float(rate[i]),
                        "rate_low": float(low[i]),
                        "rate_high": float(high[i]),
                        "reference": str(table.index[ref]) if ref >= 0 else "",
                        "ratio": float(ratio[i]),
                        "ratio_low": float(r_low[i]),
                        "ratio_high": float(r_high[i]),
                        "adverse": bool(ratio[i] < threshold) if np.isfinite(ratio[i]) else None,
                        # the gap is not chance: the ratio's whole interval lies below parity
                        "significant": bool(r_high[i] < 1.0) if np.isfinite(r_high[i]) else None,
                    }
                )
    return pd.DataFrame(rows)


def impact_summary(table: pd.DataFrame, threshold: float = FOUR_FIFTHS) -> pd.DataFrame:
    """One row per action and attribute: the lowest ratio among compared groups, its group,
    whether it passes the four-fifths rule (`threshold`) and whether that group's gap is
    significant (interval wholly below 1)."""
    compared = table.dropna(subset=["ratio"])
    if compared.empty:
        columns = ["action", "attribute", "lowest_group", "min_ratio", "passes", "significant"]
        return pd.DataFrame(columns=columns)
    low = compared.loc[compared.groupby(["action", "attribute"], sort=False)["ratio"].idxmin()]
    return pd.DataFrame(
        {
            "action": low["action"].to_numpy(),
            "attribute": low["attribute"].to_numpy(),
            "lowest_group": low["group"].to_numpy(),
            "min_ratio": low["ratio"].to_numpy(),
            "passes": (low["ratio"] >= threshold).to_numpy(),
            "significant": low["significant"].astype(bool).to_numpy(),
        }
    )


def engine_adverse_impact(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Any,
    protected: Sequence[str],
    credit_only: bool = False,
    min_group: int = MIN_AI_GROUP,
) -> pd.DataFrame:
    """`adverse_impact` of the engine's first choices (`action_1` of scored customers) for
    every real action of the catalogue (only the credit ones with `credit_only`)."""
    from nba.actions import NO_ACTION

    ids = [a.id for a in catalogue.actions if a.id != NO_ACTION and (a.credit or not credit_only)]
    return adverse_impact(selections(scores, ids), customers, protected, min_group)


# --- counterfactual invariance ----------------------------------------------------------------

#: Another marital status for each one (a different value for every customer).
OTHER_MARITAL = {
    "Married": "Single",
    "Single": "Married",
    "Divorced": "Married",
    "Unknown": "Single",
}


def counterfactual(customers: pd.DataFrame, protected: Sequence[str]) -> pd.DataFrame:
    """The same customers with every protected attribute changed: gender flipped, another
    marital status, age 10 years older (10 younger where that would pass the oldest customer of
    the frame), 2 more dependants (2 fewer past the most in the frame). Other columns unchanged."""
    out = customers.copy()
    if "Gender" in protected:
        out["Gender"] = (
            customers["Gender"].map({"F": "M", "M": "F"}).astype(customers["Gender"].dtype)
        )
    if "Marital_Status" in protected:
        out["Marital_Status"] = (
            customers["Marital_Status"].map(OTHER_MARITAL).astype(customers["Marital_Status"].dtype)
        )
    for column, step in (("Customer_Age", 10), ("Dependent_count", 2)):
        if column in protected:
            v = customers[column]
            out[column] = (v + step).where(v + step <= v.max(), v - step)
    return out


def credit_decisions(bundle: Any, customers: pd.DataFrame) -> pd.DataFrame:
    """Per customer, for every credit action of the bundle's catalogue: whether it is allowed
    (eligibility, suitability, contact) and its expected net value ($, NaN where not allowed),
    as the bundle's engine computes them (`bundle.score`, then `nba.actions.evaluate`)."""
    from nba.actions import evaluate

    catalogue = bundle.action_catalogue
    scores = bundle.score(customers)
    ev = evaluate(
        scores,
        customers,
        catalogue,
        bundle.run_settings,
        reference=bundle.reference.get("population_medians"),
    )
    out = {}
    for j, a in enumerate(catalogue.actions):
        if a.credit:
            allowed = ev.exclusions.allowed[:, j]
            out[f"{a.id}_allowed"] = allowed
            out[f"{a.id}_value"] = np.where(allowed, ev.net[:, j], np.nan)
    return pd.DataFrame(out, index=customers.index)


# --- the cost of leaving the protected attributes out -----------------------------------------


def protected_cost(
    train: pd.DataFrame,
    settings: Any,
    protected: Sequence[str],
    repeats: int = 2,
    level: float = 0.95,
) -> pd.DataFrame:
    """What leaving `protected` out of the stage-1 model costs, cross-validated on `train`
    (labelled customers; the held-out split stays untouched): the stage-1 learner with and
    without the columns on the same `repeats` × `settings.cv_folds` seeded folds
    (`nba.churn.feature_set_comparison`, the one paired comparison of feature variants). One
    row per metric (ROC-AUC, PR-AUC): the mean with and without, the mean paired difference
    (with − without) and its `level` t interval over folds (folds overlap, so the interval is
    indicative, a little narrow), and the folds."""
    from nba.churn import feature_set_comparison
    from nba.data import schema

    table = feature_set_comparison(
        train,
        train[schema.TARGET],
        settings,
        sets={"with": (), "without": tuple(protected)},
        reference="without",
        repeats=repeats,
        level=level,
    ).set_index(["variant", "metric"])
    rows = []
    for metric in ("roc_auc", "pr_auc"):
        with_, without = table.loc[("with", metric)], table.loc[("without", metric)]
        rows.append(
            {
                "metric": metric,
                "with_protected": float(with_["mean"]),
                "without_protected": float(without["mean"]),
                "cost": float(with_["delta"]),
                "cost_low": float(with_["delta_low"]),
                "cost_high": float(with_["delta_high"]),
                "folds": int(with_["folds"]),
            }
        )
    return pd.DataFrame(rows)


def impact_story(summary: pd.DataFrame, credit_ids: Sequence[str], where: str = "") -> str:
    """The markdown sentence under an `impact_summary` table: how many action × attribute
    pairs fall below the four-fifths rule, and which credit actions do (every figure from the
    table). `where`: the customers it was measured on, e.g. "on held-out customers"."""
    credit = summary[summary.action.isin(list(credit_ids))]
    failing = credit[~credit.passes.astype(bool)]
    significant = failing[failing.significant.astype(bool)]
    text = (
        f"Of {len(summary)} action × attribute pairs{' ' + where if where else ''}, "
        f"{int((~summary.passes.astype(bool)).sum())} fall below the four-fifths rule, "
        f"{int((~summary.passes.astype(bool) & summary.significant.astype(bool)).sum())} of them "
        "with a ratio interval wholly below 1 (not chance). "
        f"For the {len(credit_ids)} credit actions, {len(failing)} of {len(credit)} pairs fall "
        f"below it, {len(significant)} significantly"
    )
    if significant.empty:
        text += ": every gap is within chance. "
    else:
        text += (
            ": "
            + "; ".join(
                f"**{r.action} by {r.attribute}** (lowest {r.lowest_group}, ratio "
                f"{r.min_ratio:.2f})"
                for r in significant.itertuples()
            )
            + "; the others are within chance. "
        )
    return text + (
        "Their rules and scores read no protected attribute, so a gap comes through correlated "
        "columns (income band, utilisation, spend): a fair-lending review must weigh it, and "
        "`nba monitor` raises an alert when a batch falls below the level in "
        "`params/monitor.yaml`."
    )
