"""The action engine shown on real customers, for notebook 06: which example customers to show,
their profiles, the engine's top actions as sentences, and the summaries of scores per segment
and of exclusions. Pure functions over the frames the engine already returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nba.data import schema

#: Columns shown for each example customer (what the rules and the value read).
PROFILE_COLUMNS = (
    schema.ID,
    "Card_Category",
    "Income_Category",
    "Total_Relationship_Count",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Total_Ct_Chng_Q4_Q1",
    "Avg_Utilization_Ratio",
)


def example_customers(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    value_at_risk: np.ndarray,
    among: np.ndarray,
    catalogue: Any,
    traits: pd.DataFrame,
) -> dict[str, Any]:
    """Three customers (label → index) among the rows `among` marks: the highest churn risk
    the contact policy leaves open to marketing, the riskiest high-utilisation revolver, and the
    riskiest customer contacted often enough for the contact policy to bite. Ties between
    probabilities (near 1) are broken by value at risk."""
    ranked = (
        scores.assign(value_at_risk=value_at_risk)[among]
        .sort_values(["churn_probability", "value_at_risk"], ascending=False)
        .index
    )
    contacts = customers.loc[ranked, catalogue.contact_column].to_numpy()
    many = contacts >= catalogue.suppress_marketing_at
    revolver = (traits.loc[ranked, "revolver"] & traits.loc[ranked, "high_utilisation"]).to_numpy()
    highest = ranked[~many][0]
    return {
        "highest churn risk": highest,
        "high-utilisation revolver": ranked[revolver & ~many & (ranked != highest)][0],
        f"{catalogue.suppress_marketing_at:.0f}+ contacts": ranked[many][0],
    }


def example_profiles(
    examples: dict[str, Any],
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    value_at_risk: np.ndarray,
) -> pd.DataFrame:
    """The examples side by side (one column each): their record, churn probability, segment
    name and value at risk ($ over the horizon)."""
    rows = list(examples.values())
    return (
        customers.loc[rows, list(PROFILE_COLUMNS)]
        .assign(
            churn_probability=scores.loc[rows, "churn_probability"].round(3),
            segment_name=scores.loc[rows, "segment_name"],
            value_at_risk=pd.Series(value_at_risk, index=customers.index)[rows].round(0),
        )
        .set_axis(list(examples), axis=0)
        .T
    )


def exclusion_table(why: pd.DataFrame, examples: dict[str, Any], ids: list[str]) -> pd.DataFrame:
    """`nba.actions.explain_exclusions` as one row per action and one column per example:
    "allowed, expected net N" or the first rule that excluded the action."""
    verdict = np.where(
        why["allowed"],
        "allowed, expected net " + why["expected_net_value"].map("{:,.0f}".format),
        why["reason"],
    )
    return (
        why.assign(verdict=verdict)
        .pivot(index="action", columns="customer", values="verdict")
        .reindex(index=ids, columns=list(examples.values()))
        .set_axis(list(examples), axis=1)
    )


def top_actions_markdown(
    recs: pd.DataFrame, customers: pd.DataFrame, examples: dict[str, Any], top: int
) -> str:
    """Each example's ranked actions with expected net value and reason, as markdown."""
    from nba.story import md, money

    blocks = []
    for label, i in examples.items():
        lines = [
            f"{k}. `{recs.loc[i, f'action_{k}']}` — expected net "
            f"{money(recs.loc[i, f'action_{k}_value'])}: {md(recs.loc[i, f'action_{k}_reason'])}"
            for k in range(1, top + 1)
            if recs.loc[i, f"action_{k}"]
        ]
        blocks.append(
            f"**{label}** (customer {int(customers.loc[i, schema.ID])}):\n\n" + "\n".join(lines)
        )
    return "\n\n".join(blocks)


def scores_by_segment(scores: pd.DataFrame, value_at_risk: np.ndarray) -> pd.DataFrame:
    """Per segment name: customers, mean churn probability, customers flagged and the median
    value at risk, riskiest segment first."""
    return (
        scores.assign(value_at_risk=value_at_risk)
        .groupby("segment_name")
        .agg(
            customers=("churn_probability", "size"),
            mean_churn_probability=("churn_probability", "mean"),
            flagged=("churn_flag", "sum"),
            median_value_at_risk=("value_at_risk", "median"),
        )
        .sort_values("mean_churn_probability", ascending=False)
    )


def arbitration_markdown(settings: Any, catalogue: Any) -> str:
    """The arbitration formula and the yearly value proxy, with this run's assumptions."""
    from nba.story import md, money

    return (
        "**Arbitration.** For every customer and every action the rules allow:\n\n"
        "> priority = expected net value = P(churn) × P(save | action, trait) × value at risk "
        "× lever − cost\n>\n"
        f"> value at risk = max(yearly value, 0) × **{settings.value_horizon_years:g} years**\n\n"
        f"The yearly value is the proxy of notebook 01: {settings.interchange_rate:.1%} "
        f"interchange on 12-month spend + {settings.interest_margin:.0%} margin on the revolving "
        f"balance + the annual fee (Blue {money(settings.annual_fee_blue)}, Silver "
        f"{money(settings.annual_fee_silver)}, Gold {money(settings.annual_fee_gold)}, Platinum "
        f"{money(settings.annual_fee_platinum)}) − {money(settings.servicing_cost)} servicing "
        "cost. The lever is 1 for every action here (the app's what-if knob). *No action* is "
        "worth 0 at cost 0, so an action is recommended only when its expected saving beats its "
        "cost. Traits come from each customer's own columns, never from segment names: "
        + ", ".join(f"{k} {v:g}" for k, v in catalogue.traits.items())
        + f". Contact policy: {md(catalogue.contact_reason)}."
    )
