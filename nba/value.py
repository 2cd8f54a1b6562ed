"""What a card customer is worth to the issuer, what churn costs, and what counts as success.

The dataset has no revenue columns, so value is a *proxy* built from what it does have: spend
(interchange), revolving balances (interest margin) and the card tier (annual fee), less a
flat cost to serve. The spend counted is the last 12 months' (`value_basis: current`) or, as an
option, the same year with its Q4/Q1 decline undone (`value_basis: pre_decline`, see
`pre_decline_spend`). Every rate is a `Settings` field whose rationale sits in
`params/default.yaml`; amounts are in the card's currency (the Kaggle file is in US dollars).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.config import PARAMS_DIR, Settings
from nba.data import schema

#: Value-assumption settings, in the order a reader meets them, with their units.
ASSUMPTIONS: dict[str, str] = {
    "interchange_rate": "share of card spend",
    "interest_margin": "share of revolving balance a year",
    "annual_fee_blue": "$ a year",
    "annual_fee_silver": "$ a year",
    "annual_fee_gold": "$ a year",
    "annual_fee_platinum": "$ a year",
    "servicing_cost": "$ a year",
    "value_horizon_years": "years",
    "value_basis": "spend counted",
}

#: The spend a customer's value counts (`Settings.value_basis`).
VALUE_BASES = ("current", "pre_decline")


def _check_basis(settings: Settings) -> str:
    basis = getattr(settings, "value_basis", "current")
    if basis not in VALUE_BASES:
        raise ValueError(
            f"value_basis {basis!r} is not one of {', '.join(VALUE_BASES)} "
            "(the spend a customer's value counts)"
        )
    return basis


def pre_decline_spend(spend: Any, amount_change: Any) -> np.ndarray:
    """Yearly spend ($) with the Q4/Q1 decline undone: what the last 12 months would have been
    at the first quarter's pace, where spend fell.

    `amount_change` is Total_Amt_Chng_Q4_Q1, r = spend in the 4th quarter / spend in the 1st.
    The data has only the year's total S and that ratio, so an assumption is needed to recover
    the first quarter: spend moves in a straight line from the 1st quarter's level q1 to the
    4th's r·q1, so the four quarters are q1, q1(2+r)/3, q1(1+2r)/3 and r·q1, and
    S = 2·q1·(1 + r). A year at the 1st quarter's pace is then 4·q1 = S · 2 / (1 + r).

    Only declines are undone (r < 1): a customer whose spend grew keeps its 12 months' spend, so
    the option never lowers a value. The factor 2 / (1 + r) is at most 2 (spend that stopped),
    which keeps one odd quarter from inflating a value without bound, as S / r would."""
    s = np.asarray(spend, dtype=np.float64)
    r = np.asarray(amount_change, dtype=np.float64)
    return s * np.where(r < 1.0, 2.0 / (1.0 + np.maximum(r, 0.0)), 1.0)


def counted_spend(cols: Mapping[str, Any], settings: Settings) -> np.ndarray:
    """The yearly spend ($) value counts under `settings.value_basis`, from column arrays
    (Total_Trans_Amt, and Total_Amt_Chng_Q4_Q1 for "pre_decline")."""
    spend = np.asarray(cols["Total_Trans_Amt"], dtype=np.float64)
    if _check_basis(settings) == "current":
        return spend
    if "Total_Amt_Chng_Q4_Q1" not in cols:
        raise ValueError("value_basis pre_decline needs the column Total_Amt_Chng_Q4_Q1")
    return pre_decline_spend(spend, cols["Total_Amt_Chng_Q4_Q1"])


def annual_fee(card_category: pd.Series, settings: Settings) -> pd.Series:
    """Yearly card fee ($/year) for each customer from its `Card_Category` (Blue/Silver/Gold/
    Platinum); an unknown tier is an error rather than a silent zero."""
    fees = {
        card: getattr(settings, f"annual_fee_{card.lower()}")
        for card in schema.CATEGORIES["Card_Category"]
    }
    fee = card_category.map(fees)
    if fee.isna().any():
        unknown = sorted(set(card_category[fee.isna()].astype(str)))
        raise ValueError(f"Card_Category has no annual fee for: {', '.join(unknown)}")
    return fee.astype(float).rename("annual_fee")


def value_components(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The parts of each customer's yearly value, in $ per year: interchange on the spend
    `settings.value_basis` counts (the last 12 months', or pre-decline), interest margin on the
    revolving balance, the card's annual fee, and the servicing cost (negative). Rows align
    with `df`."""
    spend = counted_spend(_spend_columns(df, settings), settings)
    return pd.DataFrame(
        {
            "interchange": settings.interchange_rate * spend,
            "interest": settings.interest_margin * df["Total_Revolving_Bal"].astype(float),
            "annual_fee": annual_fee(df["Card_Category"], settings),
            "servicing_cost": -float(settings.servicing_cost),
        },
        index=df.index,
    )


def customer_value(df: pd.DataFrame, settings: Settings) -> pd.Series:
    """Yearly value of each customer to the issuer, in $ per year (a proxy):

    interchange_rate × spend + interest_margin × Total_Revolving_Bal
    + annual fee of the Card_Category − servicing_cost,

    where spend is Total_Trans_Amt, or its pre-decline level (`pre_decline_spend`) when
    `settings.value_basis` is "pre_decline". It can be negative for an inactive customer with
    no balance on a fee-free card."""
    cols = schema.column_arrays(df, _required(df, _value_columns(settings)))
    return pd.Series(yearly_value(cols, settings), index=df.index, name="customer_value")


_VALUE_COLUMNS = ("Total_Trans_Amt", "Total_Revolving_Bal", "Card_Category")


def _value_columns(settings: Settings) -> tuple[str, ...]:
    """The columns the value proxy reads under `settings.value_basis`."""
    extra = ("Total_Amt_Chng_Q4_Q1",) if _check_basis(settings) == "pre_decline" else ()
    return _VALUE_COLUMNS + extra


def _required(df: pd.DataFrame, names: tuple[str, ...]) -> list[str]:
    """`names`, or a one-sentence error naming the ones `df` lacks."""
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"customer value needs the column(s) {', '.join(missing)}")
    return list(names)


def _spend_columns(df: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """The columns `counted_spend` reads, as arrays."""
    names = ("Total_Trans_Amt", *_value_columns(settings)[len(_VALUE_COLUMNS) :])
    return {c: df[c].to_numpy() for c in _required(df, names)}


def yearly_value(cols: Mapping[str, Any], settings: Settings) -> np.ndarray:
    """`customer_value` ($ per year) from the column arrays of `_value_columns` (a dict):
    array arithmetic only, so that one customer costs microseconds. The parts are added in
    `value_components`' column order, as its row sum does."""
    fees = {
        card: float(getattr(settings, f"annual_fee_{card.lower()}"))
        for card in schema.CATEGORIES["Card_Category"]
    }
    codes, uniques = schema.factorize(cols["Card_Category"])
    per_card = np.array([fees.get(u, np.nan) for u in uniques], dtype=np.float64)
    if np.isnan(per_card).any():
        unknown = sorted({str(u) for u, f in zip(uniques, per_card, strict=True) if np.isnan(f)})
        raise ValueError(f"Card_Category has no annual fee for: {', '.join(unknown)}")
    interchange = settings.interchange_rate * counted_spend(cols, settings)
    interest = settings.interest_margin * np.asarray(cols["Total_Revolving_Bal"], dtype=float)
    return interchange + interest + per_card[codes] - float(settings.servicing_cost)


def value_at_stake(df: pd.DataFrame, settings: Settings) -> dict[str, float]:
    """What churn costs, from a labelled frame (`churn` 0/1), under the value assumptions.

    Amounts are $ (per year where the key says `_year`, else over `value_horizon_years`, not
    discounted), on the spend `settings.value_basis` counts (`value_basis` in the result). On
    the default basis, "current", the churners' value is measured on their last 12 months,
    which already hold the decline before they left: the loss is a conservative proxy, not an
    accounting figure; "pre_decline" undoes that decline (`pre_decline_spend`).
    """
    value = customer_value(df, settings)
    churned = df[schema.TARGET].to_numpy() == 1
    lost_year = float(value[churned].sum())
    total_year = float(value.sum())
    horizon = float(settings.value_horizon_years)
    n_churn = int(churned.sum())
    return {
        "customers": len(df),
        "value_basis": _check_basis(settings),
        "churners": n_churn,
        "churn_rate": float(churned.mean()),
        "horizon_years": horizon,
        "value_per_customer_year": float(value.mean()),
        "value_per_existing_year": float(value[~churned].mean()) if (~churned).any() else np.nan,
        "value_per_churner_year": float(value[churned].mean()) if n_churn else np.nan,
        "portfolio_value_year": total_year,
        "churner_value_year": lost_year,
        "share_of_value_lost": lost_year / total_year if total_year else np.nan,
        "value_lost_horizon": lost_year * horizon,
        "value_per_lost_customer_horizon": lost_year * horizon / n_churn if n_churn else np.nan,
    }


def _rationale(params_file: Path) -> dict[str, str]:
    """Comment text beside each key of a params YAML file (continuation comment lines joined)."""
    notes: dict[str, str] = {}
    key = None
    for line in params_file.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z_]\w*):[^#]*(?:#\s*(.*))?$", line)
        if m:
            key = m.group(1)
            notes[key] = (m.group(2) or "").strip()
        elif key and re.match(r"^\s+#", line):
            notes[key] = f"{notes[key]} {line.strip().lstrip('#').strip()}".strip()
        else:
            key = None
    return notes


def value_assumptions(settings: Settings, params_file: Path | None = None) -> pd.DataFrame:
    """The value assumptions of this run: setting, value, unit and the rationale written beside
    it in `params/default.yaml` (the values are the run's, the reasons the file's)."""
    path = params_file or PARAMS_DIR / "default.yaml"
    notes = _rationale(path) if path.exists() else {}
    return pd.DataFrame(
        {
            "setting": list(ASSUMPTIONS),
            "value": [getattr(settings, k) for k in ASSUMPTIONS],
            "unit": list(ASSUMPTIONS.values()),
            "rationale": [notes.get(k, "") for k in ASSUMPTIONS],
        }
    )


# --- success criteria -------------------------------------------------------------------------

#: What a criterion's measured figure rests on. Only a measurement can be "met": a simulation
#: scores the engine and its baselines with the same assumed save rates, so it cannot fail
#: against them until outcomes exist; a design constraint is true because the design rule
#: demands it.
HELD_OUT = "held-out measurement"
CROSS_VALIDATION = "cross-validation"
SIMULATION = "assumption-based simulation"
OUTCOME = "measured outcome"
DESIGN = "design constraint"
#: The bases whose figures can fail a criterion, and so may call it met.
MEASURED_BASES = (HELD_OUT, CROSS_VALIDATION, OUTCOME)

#: Status words of `check_criteria`. "met" is kept for measurements.
MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"
HOLDS_IN_SIMULATION, FAILS_IN_SIMULATION = "holds in simulation", "fails in simulation"
BY_DESIGN = "by design"

_TEST = "held-out customers (the test split notebook 03 set aside)"
_STAGE1 = "held-out test split, paired with default learners fitted on the same training split"
_HELD_OUT_SOURCE = "held-out test split (notebook 03), chosen model and threshold"
_SEGMENTS = "segments fitted on the training split, held-out customers assigned to them"
_ACTIONS = "simulation of the action engine (`nba.actions.simulate`) on the held-out customers"
_SIMULATED = (
    "the engine picks each customer's highest expected-value action, doing nothing at $0, and "
    "the baselines are scored with the same formula and the same assumed save rates: it cannot "
    "fall below them. Only a campaign with a control group (`nba campaign impact`) can measure it"
)

#: The first plan's absolute stage-1 floors, retired (issue 12) because repeated
#: cross-validation plateaued below them on this data. Kept to say, against the held-out
#: intervals, whether missing them is beyond sampling noise (`nba.evaluation.retired_targets`).
RETIRED_STAGE1_TARGETS: dict[str, float] = {
    "roc_auc": 0.996,
    "pr_auc": 0.98,
    "f1": 0.935,
    "precision": 0.92,
    "recall": 0.92,
}

#: (stage, metric, comparison, target, basis, source, description). Stage and metric names are
#: the keys of `bundle.metadata["metrics"]`, so a measured metrics dict can be checked directly.
_CRITERIA: tuple[tuple[str, str, str, float, str, str, str], ...] = (
    # Stage 1, restated (issue 12): the absolute targets (`RETIRED_STAGE1_TARGETS`) lay beyond
    # this data, so the model is judged against what the data allows: ahead of default learners
    # on the same customers, in the same run (`nba.evaluation.baseline_comparison`), and well
    # calibrated.
    (
        "churn",
        "pr_auc_lead_vs_lightgbm",
        ">",
        0.0,
        HELD_OUT,
        _STAGE1,
        "PR-AUC above a default LightGBM trained on the same split",
    ),
    (
        "churn",
        "pr_auc_lead_vs_hist_gradient_boosting",
        ">",
        0.0,
        HELD_OUT,
        _STAGE1,
        "PR-AUC above a default HistGradientBoosting trained on the same split",
    ),
    (
        "churn",
        "f1_lead_vs_lightgbm",
        ">",
        0.0,
        HELD_OUT,
        _STAGE1,
        "F1 above a default LightGBM's, each at its own threshold (same rule, training data)",
    ),
    (
        "churn",
        "f1_lead_vs_hist_gradient_boosting",
        ">",
        0.0,
        HELD_OUT,
        _STAGE1,
        "F1 above a default HistGradientBoosting's, each at its own threshold",
    ),
    (
        "churn",
        "ece",
        "<=",
        0.01,
        HELD_OUT,
        _HELD_OUT_SOURCE,
        "expected calibration error (probability points)",
    ),
    # Stage 2: the selection (`nba.segments.choose_segmentation`) keeps only designs with k ≥ 4,
    # silhouette and bootstrap stability above floors on a training sample, and never looks at
    # churn; the criteria are then measured on the held-out customers, where they can fail.
    (
        "segments",
        "silhouette_test",
        ">=",
        0.50,
        HELD_OUT,
        _SEGMENTS,
        "segments are compact and apart on customers the fit never saw",
    ),
    (
        "segments",
        "k",
        ">=",
        4,
        DESIGN,
        "the selection rule keeps only designs with at least this many segments",
        "enough segments to act on differently",
    ),
    (
        "segments",
        "stability_ari_test",
        ">=",
        0.95,
        HELD_OUT,
        _SEGMENTS + "; refits on resampled training customers assign them alike",
        "same segments for unseen customers when refitted",
    ),
    (
        "segments",
        "churn_ratio_high_low",
        ">=",
        8,
        HELD_OUT,
        _SEGMENTS,
        "churn rate of the riskiest segment / the safest",
    ),
    (
        "actions",
        "net_value_uplift_vs_no_action",
        ">",
        0.0,
        SIMULATION,
        _ACTIONS,
        "expected net value ($) above doing nothing",
    ),
    (
        "actions",
        "net_value_uplift_vs_churn_score_one_offer",
        ">",
        0.0,
        SIMULATION,
        _ACTIONS,
        "expected net value ($) above one offer to the highest churn scores",
    ),
    (
        "actions",
        "net_value_uplift_vs_random_action",
        ">",
        0.0,
        SIMULATION,
        _ACTIONS,
        "expected net value ($) above a random eligible action",
    ),
)

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


def success_criteria() -> pd.DataFrame:
    """The measurable success criteria for stage 1 (churn), stage 2 (segments) and the actions:
    one row per criterion with `stage`, `metric`, `comparison`, `target`, `basis` (what the
    figure rests on: held-out measurement, cross-validation, assumption-based simulation,
    measured outcome or design constraint), `evaluated_on` (the customers it is to be measured
    on), `source` (where the measured value must come from), `description` and `note` (why a
    criterion that cannot fail is not a finding). Action criteria are uplifts over a baseline
    in $, to be above 0."""
    columns = ["stage", "metric", "comparison", "target", "basis", "source", "description"]
    frame = pd.DataFrame(list(_CRITERIA), columns=columns)
    frame["target"] = frame["target"].astype(float)
    frame["evaluated_on"] = np.where(
        frame["basis"] == DESIGN, "every design compared (a rule of the selection)", _TEST
    )
    frame["note"] = np.select(
        [frame["basis"] == SIMULATION, frame["basis"] == DESIGN],
        [f"cannot fail: {_SIMULATED}", "true by construction: the selection demands it"],
        "",
    )
    order = ["stage", "metric", "comparison", "target", "basis", "evaluated_on", "source"]
    return frame[[*order, "description", "note"]]


def check_criteria(
    measured: Mapping[str, Mapping[str, float]],
    criteria: pd.DataFrame | None = None,
    *,
    evaluated_on: Mapping[str, str] | None = None,
    outcomes: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """The criteria with the `measured` value of each (nested `{stage: {metric: value}}`, as in
    `bundle.metadata["metrics"]`), whether the figure `holds` against its target, whether the
    criterion is `met`, and a `status`.

    Only a measurement (held-out, cross-validated or a measured outcome) can be met: its status
    is met / not met. A simulation's is "holds in simulation" / "fails in simulation", a
    design constraint's "by design" (or "not met" if the figure breaks it); missing or NaN
    figures are "not measured" and never count. `outcomes` (same shape as `measured`) are
    figures measured on real campaign outcomes: where one is given it replaces the simulated
    figure and the basis becomes "measured outcome". `evaluated_on` ({stage: text}) states the
    customers each stage's figures came from, replacing the plan's wording."""
    table = (success_criteria() if criteria is None else criteria).copy()
    if "basis" not in table:
        table["basis"] = HELD_OUT
    if "evaluated_on" not in table:
        table["evaluated_on"] = ""
    outcomes = outcomes or {}
    values, bases, where = [], [], []
    for stage, metric, basis, on in zip(
        table["stage"], table["metric"], table["basis"], table["evaluated_on"], strict=True
    ):
        outcome = outcomes.get(stage, {}).get(metric, np.nan)
        if outcome is not None and np.isfinite(outcome):
            values.append(outcome)
            bases.append(OUTCOME)
            where.append((evaluated_on or {}).get(stage, "customers of the recorded campaigns"))
        else:
            values.append(measured.get(stage, {}).get(metric, np.nan))
            bases.append(basis)
            where.append((evaluated_on or {}).get(stage, on))
    table["basis"], table["evaluated_on"] = bases, where
    table["measured"] = pd.to_numeric(pd.Series(values, index=table.index, dtype=object))
    has = table["measured"].notna().to_numpy()
    holds = np.array(
        [
            bool(h and COMPARISONS[c](m, t))
            for h, c, m, t in zip(
                has, table["comparison"], table["measured"], table["target"], strict=True
            )
        ]
    )
    counts = table["basis"].isin(MEASURED_BASES).to_numpy()
    simulated = (table["basis"] == SIMULATION).to_numpy()
    design = (table["basis"] == DESIGN).to_numpy()
    table["holds"] = holds
    table["met"] = holds & counts
    table["status"] = np.select(
        [
            ~has,
            simulated & holds,
            simulated,
            design & holds,
            holds & counts,
        ],
        [NOT_MEASURED, HOLDS_IN_SIMULATION, FAILS_IN_SIMULATION, BY_DESIGN, MET],
        NOT_MET,
    )
    return table
