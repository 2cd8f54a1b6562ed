"""Who gets an action: action rates by gender and age band beside what drives them (churn
probability, the share flagged, value at risk), the gaps between groups, and the sentence
notebook 06 shows. No rule of the engine reads gender or age; these tables show whether the
scores and the value still make the rates differ, and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nba.actions import AGE_BINS, AGE_LABELS

#: The protected attributes the tables are cut by (columns of the customer record).
PROTECTED = ("Gender", "Customer_Age")
#: Customers a group needs to count in the gaps (smaller groups are shown, not compared).
MIN_GROUP = 100


def action_context(
    scores: pd.DataFrame, customers: pd.DataFrame, acted: np.ndarray, value_at_risk: np.ndarray
) -> pd.DataFrame:
    """One row per customer: churn probability, flagged (0/1), value at risk ($), whether the
    engine gave an action, gender and age band (`nba.actions.AGE_BINS`, left-closed)."""
    age_band = pd.cut(
        customers["Customer_Age"], bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False
    )
    return pd.DataFrame(
        {
            "churn_probability": scores["churn_probability"].to_numpy(),
            "flagged": scores["churn_flag"].to_numpy(),
            "value_at_risk": np.asarray(value_at_risk, dtype=np.float64),
            "acted": np.asarray(acted, dtype=bool),
            "Gender": customers["Gender"].astype(str).to_numpy(),
            "age_band": age_band.array,  # categorical: groups in age order
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
