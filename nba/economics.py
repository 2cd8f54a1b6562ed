"""The action plan's economics under other assumptions: what the plan is worth, whom it leaves
out and why, and how those answers move when the value assumptions move.

Everything here runs the engine itself (`nba.actions.evaluate` and `recommend_actions`) on
changed `Settings` or a changed catalogue; nothing re-implements arbitration. The churn scores
are computed once by the caller and re-used: economics does not change who is likely to leave,
only what keeping them is worth.

Amounts are $ over `value_horizon_years` (not discounted), as in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from nba import actions
from nba.actions import NO_ACTION, Catalogue, Evaluation
from nba.config import Settings

#: The assumptions the sensitivity analysis moves, with the label a reader sees. All but
#: `save_rates` are `Settings` fields; `save_rates` scales every save rate of the catalogue.
SENSITIVITY_PARAMETERS: dict[str, str] = {
    "servicing_cost": "Servicing cost ($ a year)",
    "value_horizon_years": "Value horizon (years)",
    "interchange_rate": "Interchange (share of spend)",
    "interest_margin": "Interest margin (share of balance a year)",
    "save_rates": "Save rates (every action)",
}

#: What a plan is judged by, with the label a reader sees (see `plan_outcome`).
OUTCOMES: dict[str, str] = {
    "expected_net_value": "Expected net value ($)",
    "customers_contacted": "Customers contacted",
    "high_risk_without_action": "High-risk customers without an action",
    "cost_per_expected_save": "Cost per expected save ($)",
}

#: Why a customer is left without an action, in the order the engine's reason checks them
#: (`nba.actions`' no-action sentence): code → business words.
NO_ACTION_REASONS: dict[str, str] = {
    "ruled_out": "every offer is ruled out by the catalogue's rules",
    "no_value": "no value at risk: the card earns less than it costs to serve",
    "below_cost": "an offer is allowed, but its expected saving is below its cost",
}

HIGH_RISK = "high"  # the risk band (`nba.scoring.risk_band`) the no-action counts are about


def _chosen(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    reference: Mapping[str, float],
) -> np.ndarray:
    """Each customer's first action as a catalogue index, as the engine recommends it (the
    high-risk minimum-service policy included)."""
    recs = actions.recommend_actions(
        scores, customers, catalogue, settings, top=1, reference=reference
    )
    codes, uniques = pd.factorize(recs["action_1"].astype("str"))
    where = np.asarray([catalogue.ids.index(u) for u in uniques], dtype=np.int64)
    return where[codes]


def no_action_reasons(ev: Evaluation, without_action: np.ndarray) -> np.ndarray:
    """Per customer, the code (a key of `NO_ACTION_REASONS`) of why it is left without an
    action, "" where it has one. Read from the engine's arrays, never from its sentences:
    no real action allowed by the rules (`ev.exclusions`) → "ruled_out"; else no value at risk
    (`ev.var` ≤ 0) → "no_value"; else → "below_cost" (the engine only leaves a customer with an
    allowed offer and value at risk when every such offer's expected net value is ≤ 0)."""
    real = np.asarray(ev.ids) != NO_ACTION
    ruled_out = ~ev.exclusions.allowed[:, real].any(axis=1)
    no_value = ev.var <= 0
    code = np.where(ruled_out, "ruled_out", np.where(no_value, "no_value", "below_cost"))
    return np.where(np.asarray(without_action, dtype=bool), code, "").astype(object)


def _plan(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    reference: Mapping[str, float],
) -> tuple[Evaluation, np.ndarray]:
    ev = actions.evaluate(scores, customers, catalogue, settings, reference=reference)
    return ev, _chosen(scores, customers, catalogue, settings, reference)


def _high_risk(scores: pd.DataFrame) -> np.ndarray:
    if "risk_band" not in scores.columns:
        raise ValueError("scores need the column risk_band (nba.scoring) to count high risk")
    return scores["risk_band"].astype("str").to_numpy() == HIGH_RISK


def _outcome(
    ev: Evaluation, chosen: np.ndarray, catalogue: Catalogue, high: np.ndarray
) -> dict[str, Any]:
    """The plan's figures from the engine's arrays and its chosen action per customer."""
    n = len(chosen)
    rows = np.arange(n)
    j0 = catalogue.ids.index(NO_ACTION)
    acted = chosen != j0
    cost = np.asarray([a.cost for a in catalogue.actions], dtype=np.float64)[chosen]
    # P(save) of the chosen action × the P(churn) it was valued on (the blind score for credit)
    p = np.where(catalogue.credit[chosen], ev.p_for(True), ev.p)
    saves = np.where(acted, p * ev.save[rows, chosen], 0.0)
    net = float(np.where(acted, ev.net[rows, chosen], 0.0).sum())
    spent = float(np.where(acted, cost, 0.0).sum())
    expected_saves = float(saves.sum())
    at_stake = float((ev.p * ev.var).sum())
    return {
        "customers": n,
        "customers_contacted": int(acted.sum()),
        "cost": spent,
        "expected_saves": expected_saves,
        "expected_saved_value": float(np.where(acted, ev.gross[rows, chosen], 0.0).sum()),
        "expected_net_value": net,
        "high_risk": int(high.sum()),
        "high_risk_without_action": int((high & ~acted).sum()),
        "cost_per_expected_save": spent / expected_saves if expected_saves > 0 else np.nan,
        "net_value_per_customer": net / n if n else np.nan,
        "net_value_per_expected_save": net / expected_saves if expected_saves > 0 else np.nan,
        "value_expected_to_leave": at_stake,
        "share_of_value_at_stake": net / at_stake if at_stake > 0 else np.nan,
    }


def plan_outcome(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    reference: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """What the engine's plan (each customer's first action) is worth and whom it reaches:

    customers, customers_contacted, cost ($), expected_saves (Σ P(churn) × P(save) over the
    contacted: customers expected to stay because of the plan), expected_saved_value and
    expected_net_value ($), high_risk and high_risk_without_action (customers in the high risk
    band; `scores` need `risk_band`), cost_per_expected_save ($), net_value_per_customer and
    net_value_per_expected_save ($), value_expected_to_leave (Σ P(churn) × value at risk, $: the
    prize if every would-be leaver were kept) and share_of_value_at_stake (net value / that).
    `reference`: population medians (default: those of `customers`)."""
    ref = actions.population_medians(customers) if reference is None else dict(reference)
    ev, chosen = _plan(scores, customers, catalogue, settings, ref)
    return _outcome(ev, chosen, catalogue, _high_risk(scores))


def high_risk_without_action(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """High-risk customers the plan leaves without an action, by reason (`NO_ACTION_REASONS`,
    every reason listed, zeros included): customers, share_of_high_risk, and their median churn
    probability and value at risk ($). Structural: read from the engine's exclusion and value
    arrays (`no_action_reasons`)."""
    ref = actions.population_medians(customers) if reference is None else dict(reference)
    ev, chosen = _plan(scores, customers, catalogue, settings, ref)
    high = _high_risk(scores)
    left = high & (chosen == catalogue.ids.index(NO_ACTION))
    code = no_action_reasons(ev, left)
    rows = []
    for reason, words in NO_ACTION_REASONS.items():
        mask = code == reason
        rows.append(
            {
                "reason": reason,
                "description": words,
                "customers": int(mask.sum()),
                "share_of_high_risk": mask.sum() / high.sum() if high.any() else np.nan,
                "median_churn_probability": float(np.median(ev.p[mask])) if mask.any() else np.nan,
                "median_value_at_risk": float(np.median(ev.var[mask])) if mask.any() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("reason")


def scaled_save_rates(catalogue: Catalogue, factor: float) -> Catalogue:
    """The catalogue with every assumed save rate × `factor`, capped at 1 (a probability);
    costs and rules unchanged. Learned effects, if any, are what campaigns measured and stay."""
    if factor < 0:
        raise ValueError(f"save-rate factor must be >= 0, got {factor}")
    scaled = tuple(
        replace(a, save_rate={t: min(1.0, r * factor) for t, r in a.save_rate.items()})
        for a in catalogue.actions
    )
    return replace(catalogue, actions=scaled)


def _case(
    parameter: str, factor: float, catalogue: Catalogue, settings: Settings
) -> tuple[Catalogue, Settings, float]:
    """The catalogue and settings of one case, and the assumption's value in it."""
    if parameter == "save_rates":
        return scaled_save_rates(catalogue, factor), settings, factor
    if parameter not in SENSITIVITY_PARAMETERS:
        raise ValueError(f"unknown sensitivity parameter {parameter!r}")
    value = float(getattr(settings, parameter)) * factor
    return catalogue, settings.with_overrides(**{parameter: value}), value


def sensitivity(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    change: float = 0.5,
    parameters: tuple[str, ...] = tuple(SENSITIVITY_PARAMETERS),
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The plan (`plan_outcome`) under each assumption moved by ±`change` (a share: 0.5 is
    ±50 %), one at a time, all others at `settings` and the catalogue: one row for the base
    case, then a `low` and a `high` row per parameter. Columns: parameter, label, case
    (base/low/high), factor (1 ± change), value (the assumption's value in the case; the
    factor itself for save rates) and the `plan_outcome` figures.

    The scores are re-used as they are: the churn probabilities do not depend on economics."""
    if not 0 < change < 1:
        raise ValueError(f"change must be a share between 0 and 1, got {change}")
    ref = actions.population_medians(customers) if reference is None else dict(reference)
    high = _high_risk(scores)

    def run(cat: Catalogue, s: Settings) -> dict[str, Any]:
        ev, chosen = _plan(scores, customers, cat, s, ref)
        return _outcome(ev, chosen, cat, high)

    rows = [{"parameter": "base", "label": "Base case", "case": "base", "factor": 1.0}]
    rows[0] |= {"value": np.nan, **run(catalogue, settings)}
    for parameter in parameters:
        for case, factor in (("low", 1.0 - change), ("high", 1.0 + change)):
            cat, s, value = _case(parameter, factor, catalogue, settings)
            label = SENSITIVITY_PARAMETERS[parameter]
            rows.append(
                {"parameter": parameter, "label": label, "case": case, "factor": factor}
                | {"value": value, **run(cat, s)}
            )
    return pd.DataFrame(rows)


def tornado_table(frame: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """One row per parameter of a `sensitivity` frame for one `outcome` column: base, low and
    high (the outcome with the assumption at −change and +change), their values of the
    assumption (low_value, high_value), swing (|high − low|), sorted widest swing first: the
    bars of a tornado chart."""
    base = float(frame.loc[frame["case"] == "base", outcome].iloc[0])
    moved = frame[frame["case"] != "base"]
    wide = moved.pivot(index="parameter", columns="case", values=outcome)
    values = moved.pivot(index="parameter", columns="case", values="value")
    labels = moved.drop_duplicates("parameter").set_index("parameter")["label"]
    table = pd.DataFrame(
        {
            "label": labels,
            "base": base,
            "low": wide["low"],
            "high": wide["high"],
            "low_value": values["low"],
            "high_value": values["high"],
        }
    )
    table["swing"] = (table["high"] - table["low"]).abs()
    return table.sort_values("swing", ascending=False, kind="stable")


def sensitivity_story(tornado: Mapping[str, pd.DataFrame], change: float) -> str:
    """Notebook 06's reading of the tornado (`tornado_table` per outcome label of `OUTCOMES`):
    which assumption moves the net value most and how far, the others in order, whether the
    net value stays positive, and what moves the high-risk customers left without an action."""
    from nba.plots import number
    from nba.story import md, money

    net_swing = tornado[OUTCOMES["expected_net_value"]]
    left_swing = tornado[OUTCOMES["high_risk_without_action"]]
    widest, widest_left = net_swing.iloc[0], left_swing.iloc[0]
    positive = bool((net_swing[["low", "high"]] > 0).to_numpy().all())
    others = "; ".join(
        f"{md(r.label.lower())} {money(r.low)} to {money(r.high)}"
        for r in net_swing.iloc[1:].itertuples()
    )
    others = others[:1].upper() + others[1:]  # it opens a sentence
    return (
        f"Each panel's bars run from the base case to the outcome with one assumption "
        f"{change:.0%} lower (blue) or higher (orange); the widest swing is on top. The net "
        f"value of the held-out plan ({money(widest.base)}) moves most with "
        f"**{md(widest.label.lower())}**: {money(widest.low)} to {money(widest.high)}. {others}. "
        f"The plan's net value {'stays positive' if positive else 'is not positive'} in every "
        f"case shown. High-risk customers left without an action ({int(widest_left.base):,}) "
        f"move most with {md(widest_left.label.lower())}: {int(widest_left.low):,} at "
        f"{md(number(widest_left.low_value))} and {int(widest_left.high):,} at "
        f"{md(number(widest_left.high_value))}. Horizon and save rates scale every expected "
        "saving alike, so they move the net value the same way; they differ in the cost per "
        "expected save, which only the save rates change directly."
    )


def value_basis_comparison(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    reference: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan with each customer valued on its current spend and on its pre-decline spend
    (`Settings.value_basis`, `nba.value.pre_decline_spend`), all else equal.

    Returns (plans, segments): `plans`, one row per basis with the `plan_outcome` figures;
    `segments`, one row per segment (`segment_name` of the scores) and basis with customers,
    mean_churn_probability, median_value_at_risk ($), action_rate (share given an action) and
    expected_net_value ($)."""
    ref = actions.population_medians(customers) if reference is None else dict(reference)
    high = _high_risk(scores)
    segment = scores["segment_name"].astype("str").to_numpy()
    plans, parts = {}, []
    for basis in ("current", "pre_decline"):
        s = settings.with_overrides(value_basis=basis)
        ev, chosen = _plan(scores, customers, catalogue, s, ref)
        plans[basis] = _outcome(ev, chosen, catalogue, high)
        j0 = catalogue.ids.index(NO_ACTION)
        acted = chosen != j0
        net = np.where(acted, ev.net[np.arange(len(chosen)), chosen], 0.0)
        frame = pd.DataFrame(
            {"segment_name": segment, "p": ev.p, "var": ev.var, "acted": acted, "net": net}
        )
        table = frame.groupby("segment_name").agg(
            customers=("p", "size"),
            mean_churn_probability=("p", "mean"),
            median_value_at_risk=("var", "median"),
            action_rate=("acted", "mean"),
            expected_net_value=("net", "sum"),
        )
        parts.append(table.assign(value_basis=basis).reset_index())
    segments = pd.concat(parts, ignore_index=True)
    segments = segments.sort_values(
        ["mean_churn_probability", "value_basis"], ascending=[False, True], kind="stable"
    )
    plan_table = pd.DataFrame.from_dict(plans, orient="index").rename_axis("value_basis")
    return plan_table, segments.reset_index(drop=True)
