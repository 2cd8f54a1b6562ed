"""Impact: what each action really did, treated customers against the control group.

For each action, the customers the policy chose it for (exploration rows left out: their action
was drawn, not chosen, so they have no control twins; overridden rows left out too: a person,
not the policy, chose their action) are split by the plan's random control
group into treated (received it) and control (left alone). Then, with 95 % normal (Wald)
intervals:

- retention in each group and the lift = retention_treated − retention_control,
  se = √(r_t(1 − r_t)/n_t + r_c(1 − r_c)/n_c);
- response rate of the treated (accepted the offer);
- incremental net value per treated customer ($) = mean over treated of retained × value at
  risk − mean over control of the same − the action's cost, se from the two groups' variances
  of retained × value at risk (the cost is fixed).
The same per (action, segment), and per (action, protected attribute, group) in the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from nba.actions import NO_ACTION
from nba.campaigns.ope import Z95

IMPACT_COLUMNS = (
    "action",
    "treated",
    "control",
    "retention_treated",
    "retention_control",
    "lift",
    "lift_low",
    "lift_high",
    "response_rate",
    "net_value",
    "net_value_low",
    "net_value_high",
)


def _row(g: pd.DataFrame) -> dict[str, float]:
    t = g[g["group"].eq("treatment")]
    c = g[g["group"].eq("control")]
    nt, nc = len(t), len(c)
    rt = float(t["retained"].mean()) if nt else math.nan
    rc = float(c["retained"].mean()) if nc else math.nan
    lift = rt - rc
    se = math.sqrt(rt * (1 - rt) / nt + rc * (1 - rc) / nc) if nt and nc else math.nan
    vt = (t["retained"] * t["value_at_risk"]).to_numpy(dtype=np.float64)
    vc = (c["retained"] * c["value_at_risk"]).to_numpy(dtype=np.float64)
    cost = float(t["cost"].mean()) if nt else math.nan
    net = float(vt.mean() - vc.mean() - cost) if nt and nc else math.nan
    var_t = vt.var(ddof=1) / nt if nt > 1 else math.nan
    var_c = vc.var(ddof=1) / nc if nc > 1 else math.nan
    se_v = math.sqrt(var_t + var_c) if nt > 1 and nc > 1 else math.nan
    return {
        "treated": nt,
        "control": nc,
        "retention_treated": rt,
        "retention_control": rc,
        "lift": lift,
        "lift_low": lift - Z95 * se,
        "lift_high": lift + Z95 * se,
        "response_rate": float(t["responded"].mean()) if nt else math.nan,
        "net_value": net,
        "net_value_low": net - Z95 * se_v,
        "net_value_high": net + Z95 * se_v,
    }


def impact_table(interactions: pd.DataFrame, by: Sequence[str] = ("action",)) -> pd.DataFrame:
    """One row per action (or per `by` group) over recorded interactions
    (`History.interactions`): the `IMPACT_COLUMNS` (plus the extra `by` keys)."""
    keys = list(by)
    frame = interactions
    if "explored" in frame.columns:
        frame = frame[frame["explored"].fillna(0).astype(int).eq(0)]
    if "overridden" in frame.columns:  # `History.interactions_with_overrides`
        frame = frame[frame["overridden"].fillna(0).astype(int).eq(0)]
    frame = frame[frame["action"].ne(NO_ACTION)].copy()
    frame["value_at_risk"] = pd.to_numeric(frame["value_at_risk"], errors="coerce")
    frame["cost"] = pd.to_numeric(frame["cost"], errors="coerce")
    columns = [*keys, *[c for c in IMPACT_COLUMNS if c not in keys]]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = [
        {**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)), **_row(g)}
        for key, g in frame.groupby(keys, sort=True)
    ]
    return pd.DataFrame(rows, columns=columns)


def impact_by_group(interactions: pd.DataFrame, protected: Sequence[str]) -> pd.DataFrame:
    """`impact_table` per action, protected attribute and group (age in the bands of
    `nba.fairness.age_bands`): whether an action helps or fails some groups more than others.
    Attributes missing from `interactions` (decisions recorded without their customers) are
    left out; so are rows where the attribute is missing."""
    from nba.fairness import protected_groups

    tables = []
    for attribute in protected:
        if attribute not in interactions.columns:
            continue
        known = interactions[interactions[attribute].notna()]
        if known.empty:
            continue
        groups = protected_groups(known, [attribute])[attribute].astype(str).to_numpy()
        # "group" already names treatment / control
        frame = known.assign(attribute=attribute, protected_group=groups)
        tables.append(impact_table(frame, by=("action", "attribute", "protected_group")))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN (no control group, too few rows) → None, so the JSON says null."""
    out = []
    for r in records:
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        )
    return out


def impact_summary(
    interactions: pd.DataFrame, campaigns: Sequence[str], protected: Sequence[str] = ()
) -> dict[str, Any]:
    """The JSON summary: per action, per action and segment, per action and protected group
    (when `protected` is given and the interactions carry those columns), and the campaigns
    covered."""
    by_action = impact_table(interactions)
    by_segment = impact_table(interactions, by=("action", "segment"))
    by_group = impact_by_group(interactions, protected)
    return {
        "campaigns": list(campaigns),
        "outcomes": int(len(interactions)),
        "explored_left_out": int(
            interactions.get("explored", pd.Series(dtype=int)).fillna(0).sum()
        ),
        "overridden_left_out": int(
            interactions.get("overridden", pd.Series(dtype=int)).fillna(0).sum()
        ),
        "actions": _clean(by_action.to_dict(orient="records")),
        "segments": _clean(by_segment.to_dict(orient="records")),
        "protected_groups": _clean(by_group.to_dict(orient="records")),
        "method": (
            "treated vs control customers the policy chose the action for (exploration and "
            "overridden rows left out); 95 % Wald intervals; net value per treated customer in $ = retained x "
            "value at risk, treated minus control, minus the action's cost"
        ),
    }


def impact_report(
    history: Any, out: Any, campaign_ids: Sequence[str] | None = None
) -> tuple[dict[str, Any], Any, Any]:
    """`nba campaign impact`: the summary over the recorded campaigns (or `campaign_ids`),
    written as OUT (HTML with charts) and OUT with .json. Returns (summary, html, json)."""
    from pathlib import Path

    from nba import report
    from nba.campaigns.figures import impact_html
    from nba.errors import DataError

    known = history.campaign_ids()
    if campaign_ids:
        unknown = [c for c in campaign_ids if c not in known]
        if unknown:
            raise DataError(
                f"unknown campaign_id {unknown[0]!r}: not in the history {history.path}"
            )
    chosen = list(campaign_ids) if campaign_ids else known
    # with the customers' columns: outcomes by protected group (params/protected.yaml)
    interactions = history.interactions_with_overrides(chosen, with_customers=True)
    if interactions.empty:
        raise DataError(
            f"no recorded outcome in {history.path}"
            + (f" for campaign {', '.join(chosen)}" if campaign_ids else "")
            + ": record outcomes with `nba campaign record` first"
        )
    from nba.config import protected_attributes

    summary = impact_summary(interactions, chosen, tuple(protected_attributes()))
    out = Path(out)
    html_path = report.write_text(out, impact_html(summary, impact_table(interactions)))
    json_path = report.write_json(out.with_suffix(".json"), summary)
    return summary, html_path, json_path
