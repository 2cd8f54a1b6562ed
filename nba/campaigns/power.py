"""Campaigns designed to prove themselves: how many customers each action needs in treatment and
control to detect a given reduction in churn, and whether a plan has them.

The impact report compares two proportions (retention of the treated and of the control group,
with a 95 % Wald interval). Sizes here use the standard normal approximation for the test of that
comparison, with the pooled variance under the null hypothesis (Fleiss, Levin & Paik, "Statistical Methods for
Rates and Proportions", 3rd ed., 2003, §4.2, without continuity correction; R's
`power.prop.test`), generalised to unequal groups (Chow, Shao & Wang, "Sample Size Calculations
in Clinical Research", 2008, §4.2): with base churn p_c, treated churn p_t = p_c − Δ, treated
and control sizes n_t and n_c, p̄ = (n_t p_t + n_c p_c) / (n_t + n_c),

    power = Φ( (Δ − z_{1−α/2} √(p̄(1−p̄)(1/n_t + 1/n_c))) / √(p_t(1−p_t)/n_t + p_c(1−p_c)/n_c) )

(the far tail, below 1e-6 at any useful size, is left out, as R does by default). Why by hand
with scipy rather than a library: statsmodels (whose `NormalIndPower` does this on Cohen's
arcsine effect size h) is not a project dependency and would be a large one for five lines;
scipy, already one, gives Φ, its inverse and a root finder, and the tests check the result
against R's documented values.

Defaults (power 80 %, 5 % two-sided, a target lift of 10 % of the base churn) are data with their
rationale in params/power.yaml; the constants below are the same values, used when that file is
absent (an installed package) and as the keyword defaults of `required_per_arm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.errors import NbaError

DEFAULT_POWER = 0.8
DEFAULT_ALPHA = 0.05
DEFAULT_TARGET_RELATIVE_LIFT = 0.10

POWER_COLUMNS = (
    "action",
    "treated",
    "control",
    "base_churn",
    "target_lift",
    "power_at_target",
    "mde",
    "mde_relative",
    "needed_treated",
    "needed_control",
    "measurable",
)


@dataclass(frozen=True)
class PowerParams:
    """Power (1 − β), two-sided α and the target lift as a share of the base churn."""

    power: float = DEFAULT_POWER
    alpha: float = DEFAULT_ALPHA
    target_relative_lift: float = DEFAULT_TARGET_RELATIVE_LIFT

    def check(self) -> None:
        for name in ("power", "alpha", "target_relative_lift"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise NbaError(f"{name} must be a share between 0 and 1 (exclusive), got {v}.")


def load_power_params(path: str | Path | None = None) -> PowerParams:
    """`params/power.yaml` (or `path`); the built-in defaults when the default file is absent.
    Unknown keys and values outside (0, 1) are an error naming them."""
    from nba import config

    params = config.load_params_file(PowerParams, path, "power.yaml", "power parameters")
    params.check()
    return params


def _default_control() -> float:
    """The control share assumed for an action without a control group: the plan's default."""
    from nba.campaigns.plan import PlanOptions

    return PlanOptions().control


def _check_rate(base_rate: float, lift: float) -> None:
    if not 0 < base_rate < 1:
        raise ValueError(f"base_rate must be a churn rate in (0, 1), got {base_rate}")
    if not 0 < lift <= base_rate:
        raise ValueError(
            f"lift must be a reduction in churn in (0, base_rate = {base_rate}], got {lift}"
        )


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def detection_power(
    n_treated: float, n_control: float, base_rate: float, lift: float, *, alpha: float = 0.05
) -> float:
    """Probability that a two-sided test at `alpha` finds a difference when the action cuts
    churn from `base_rate` by `lift` (absolute), with `n_treated` and `n_control` customers;
    0 when either group is empty."""
    from scipy.stats import norm

    _check_rate(base_rate, lift)
    if n_treated <= 0 or n_control <= 0:
        return 0.0
    pc, pt = base_rate, base_rate - lift
    pbar = (n_treated * pt + n_control * pc) / (n_treated + n_control)
    null_sd = math.sqrt(pbar * (1 - pbar) * (1 / n_treated + 1 / n_control))
    alt_sd = math.sqrt(pt * (1 - pt) / n_treated + pc * (1 - pc) / n_control)  # > 0: 0 < p_c < 1
    return float(norm.cdf((lift - _z(1 - alpha / 2) * null_sd) / alt_sd))


def required_sizes(
    base_rate: float,
    lift: float,
    *,
    power: float = DEFAULT_POWER,
    alpha: float = DEFAULT_ALPHA,
    control_share: float = 0.5,
) -> tuple[int, int]:
    """(treated, control) customers needed to detect an absolute churn reduction `lift` from
    `base_rate` with `power` at two-sided `alpha`, when a share `control_share` of the customers
    is held out as control. Each group rounded up; the pair reaches `power`."""
    _check_rate(base_rate, lift)
    if not 0 < control_share < 1:
        raise ValueError(f"control_share must be in (0, 1), got {control_share}")
    s = control_share
    pc, pt = base_rate, base_rate - lift
    pbar = (1 - s) * pt + s * pc
    # total N: Δ √N = z_α √(p̄q̄ (1/(1−s) + 1/s)) + z_β √(p_t q_t/(1−s) + p_c q_c/s)
    root = _z(1 - alpha / 2) * math.sqrt(pbar * (1 - pbar) * (1 / (1 - s) + 1 / s)) + _z(
        power
    ) * math.sqrt(pt * (1 - pt) / (1 - s) + pc * (1 - pc) / s)
    total = (root / lift) ** 2
    # a hair below an integer after floating point stays that integer
    treated = math.ceil((1 - s) * total - 1e-9)
    control = math.ceil(s * total - 1e-9)
    return max(treated, 1), max(control, 1)


def required_per_arm(
    base_rate: float,
    lift: float,
    *,
    power: float = DEFAULT_POWER,
    alpha: float = DEFAULT_ALPHA,
    control_share: float | None = None,
    relative: bool = False,
) -> int:
    """Customers needed to detect a reduction in churn from `base_rate` (the churn of the
    action's customers without it) with `power` at two-sided `alpha`.

    `lift`: the reduction, absolute (0.05 = five points: 30 % → 25 %), or, with
    `relative=True`, as a share of `base_rate` (0.10: 30 % → 27 %).
    `control_share` None: two equal groups; the number returned is the size of EACH (treated
    and control alike). `control_share` s in (0, 1): a share s of the customers held out, as
    `nba campaign plan --control s` does; the number returned is the TREATED group's size,
    and the control group needs `required_sizes(...)[1]` ≈ treated × s / (1 − s).
    """
    absolute = lift * base_rate if relative else lift
    share = 0.5 if control_share is None else control_share
    treated, _ = required_sizes(base_rate, absolute, power=power, alpha=alpha, control_share=share)
    return treated


def minimum_detectable_lift(
    n_treated: float,
    n_control: float,
    base_rate: float,
    *,
    power: float = DEFAULT_POWER,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """The smallest absolute churn reduction from `base_rate` that `n_treated` against
    `n_control` customers detect with `power` at `alpha` (the minimum detectable effect); NaN
    when no reduction can be, not even churn cut to zero (too few customers, or no control)."""
    from scipy.optimize import brentq

    if not 0 < base_rate < 1:
        raise ValueError(f"base_rate must be a churn rate in (0, 1), got {base_rate}")
    if n_treated <= 0 or n_control <= 0:
        return math.nan

    def gap(lift: float) -> float:
        return detection_power(n_treated, n_control, base_rate, lift, alpha=alpha) - power

    top = base_rate
    if gap(top) < 0:
        return math.nan
    bottom = min(1e-9, top / 2)
    if gap(bottom) >= 0:
        return bottom
    return float(brentq(gap, bottom, top, xtol=1e-10))


def plan_power(
    plan: pd.DataFrame,
    *,
    lift: float | None = None,
    relative: bool = True,
    power: float | None = None,
    alpha: float | None = None,
    params: PowerParams | None = None,
) -> pd.DataFrame:
    """One row per action of a plan (no_action left out: nothing is delivered to measure):
    `POWER_COLUMNS`.

    Treated and control are counted as the impact report compares them: the customers the
    policy chose the action for (explored rows left out), split by the plan's control group.
    `base_churn` is their mean `churn_probability` (the engine's estimate of their churn without
    the action). `target_lift` is the absolute reduction to detect: `lift` (relative to the base
    churn when `relative`, else absolute), default `params.target_relative_lift` of it.
    `power_at_target`: the chance this plan detects that lift; `mde` the lift it detects with
    `power` (NaN: none, e.g. no control group), `mde_relative` the same as a share of the base;
    `needed_treated`, `needed_control` the sizes the target needs at the action's own control
    share (the default `--control` share when it has none); `measurable` = power_at_target ≥
    power. `power`, `alpha` default to `params` (params/power.yaml)."""
    from nba.actions import NO_ACTION

    params = params or load_power_params()
    power = params.power if power is None else power
    alpha = params.alpha if alpha is None else alpha
    if lift is None:
        lift, relative = params.target_relative_lift, True
    # column arrays and counts by action code: no filtered copy of a million-row plan
    action = plan["action"].astype("str")
    keep = action.ne(NO_ACTION).to_numpy()
    if "explored" in plan.columns:
        keep = keep & (pd.to_numeric(plan["explored"]).fillna(0).to_numpy() == 0)
    code, names = pd.factorize(action)
    code = code[keep]
    control = plan["group"].astype("str").eq("control").to_numpy()[keep]
    p = pd.to_numeric(plan["churn_probability"]).to_numpy(dtype=np.float64)[keep]
    size = np.bincount(code, minlength=len(names))
    n_control = np.bincount(code[control], minlength=len(names))
    p_sum = np.bincount(code, weights=p, minlength=len(names))
    rows: list[dict[str, Any]] = []
    for j in sorted(np.flatnonzero(size).tolist(), key=lambda j: str(names[j])):
        nc = int(n_control[j])
        nt = int(size[j]) - nc
        base = float(np.clip(p_sum[j] / size[j], 1e-6, 1 - 1e-6))
        target = min(lift * base if relative else lift, base)
        share = nc / (nt + nc) if nc and nt else _default_control()
        need_t, need_c = required_sizes(base, target, power=power, alpha=alpha, control_share=share)
        at_target = detection_power(nt, nc, base, target, alpha=alpha)
        mde = minimum_detectable_lift(nt, nc, base, power=power, alpha=alpha)
        rows.append(
            {
                "action": str(names[j]),
                "treated": nt,
                "control": nc,
                "base_churn": base,
                "target_lift": target,
                "power_at_target": at_target,
                "mde": mde,
                "mde_relative": mde / base,
                "needed_treated": need_t,
                "needed_control": need_c,
                "measurable": bool(at_target >= power),
            }
        )
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))


def action_power(
    action: pd.Series | np.ndarray,
    churn_probability: pd.Series | np.ndarray,
    *,
    control_share: float | None = None,
    params: PowerParams | None = None,
) -> pd.DataFrame:
    """`plan_power` of a campaign that would give each customer `action` (e.g. the engine's best
    action over a base) and hold out `control_share` of each action's customers (default: the
    plan's `--control` share), before any plan is drawn: how many customers each action would
    have, the cut in churn that could be measured, and the sizes the target cut needs.

    Only counts and mean churn probabilities enter `plan_power`, so the control customers are
    taken as the first round(share × n) of each action, which gives the plan's counts."""
    share = _default_control() if control_share is None else control_share
    if not 0 <= share < 1:
        raise ValueError(
            f"control_share must be a share from 0 up to (not including) 1, got {share}"
        )
    actions = pd.Series(np.asarray(action, dtype=object)).astype("str")
    p = np.asarray(churn_probability, dtype=np.float64)
    if len(p) != len(actions):
        raise ValueError(f"{len(actions):,} actions for {len(p):,} churn probabilities")
    rank = actions.groupby(actions, sort=False).cumcount().to_numpy()
    size = actions.map(actions.value_counts()).to_numpy()
    control = rank < np.rint(share * size)
    plan = pd.DataFrame(
        {
            "action": actions,
            "group": np.where(control, "control", "treatment"),
            "churn_probability": p,
        }
    )
    return plan_power(plan, params=params)


def power_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """`plan_power`'s table as JSON records (NaN, no detectable lift, as None: null)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def power_warnings(table: pd.DataFrame, power: float, alpha: float) -> list[str]:
    """One sentence per action of `plan_power`'s table that the plan cannot measure; one
    sentence in all when the plan has no control group."""
    if table.empty:
        return []
    short = table[~table["measurable"].astype(bool)]
    if len(short) and table["control"].sum() == 0:
        return [
            "no control group: the effect of none of the plan's actions can be measured "
            f"against customers left alone (use --control, e.g. {_default_control():g})"
        ]
    lines = []
    for r in short.itertuples(index=False):
        sees = (
            "no reduction at all"
            if r.control == 0 or math.isnan(r.mde)
            else f"only a cut of {r.mde * 100:.1f} points or more"
        )
        lines.append(
            f"{r.action}: {r.control:,} control and {r.treated:,} treated customers are too few "
            f"to measure a cut in churn of {r.target_lift * 100:.1f} points "
            f"({r.base_churn:.1%} → {r.base_churn - r.target_lift:.1%}) with {power:.0%} power "
            f"at {alpha:.0%}: they detect {sees}; it needs {r.needed_control:,} control and "
            f"{r.needed_treated:,} treated"
        )
    return lines
