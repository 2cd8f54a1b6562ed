"""Evaluation on held-out customers: metrics with bootstrap intervals, confusion, gains and lift,
fairness slices. Pure functions over arrays and frames; notebook 07 shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall")


def metric_set(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC-AUC and PR-AUC of the scores; F1, precision and recall of the flag p ≥ threshold."""
    y = np.asarray(y).astype(int)
    flag = (np.asarray(p) >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "f1": float(f1_score(y, flag, zero_division=0)),
        "precision": float(precision_score(y, flag, zero_division=0)),
        "recall": float(recall_score(y, flag, zero_division=0)),
    }


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int, seed: int, level: float = 0.95
) -> pd.DataFrame:
    """Each metric with a percentile bootstrap interval over customers (resampled with
    replacement, stratified by class so every resample has churners)."""
    y, p = np.asarray(y).astype(int), np.asarray(p)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(metric_set(y[idx], p[idx], threshold))
    boot = pd.DataFrame(draws)
    point = metric_set(y, p, threshold)
    tail = (1 - level) / 2
    return pd.DataFrame(
        {
            "metric": list(METRICS),
            "value": [point[m] for m in METRICS],
            "ci_low": [float(boot[m].quantile(tail)) for m in METRICS],
            "ci_high": [float(boot[m].quantile(1 - tail)) for m in METRICS],
        }
    )


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> pd.DataFrame:
    """Counts of actual × predicted at the threshold (rows: actual, columns: predicted)."""
    y = np.asarray(y).astype(int)
    flag = (np.asarray(p) >= threshold).astype(int)
    labels = ["stayed", "churned"]
    table = pd.crosstab(
        pd.Categorical(np.array(labels)[y], categories=labels),
        pd.Categorical(np.array(labels)[flag], categories=labels),
        dropna=False,
    )
    table.index.name, table.columns.name = "actual", "predicted"
    return table


def gains(y: np.ndarray, p: np.ndarray, shares: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)):
    """Contact the riskiest share of customers: how many churners that catches (gain) and how
    much better than contacting at random (lift)."""
    y, p = np.asarray(y).astype(int), np.asarray(p)
    order = np.argsort(-p, kind="stable")
    caught = np.cumsum(y[order])
    total = max(int(y.sum()), 1)
    rows = []
    for share in shares:
        n = max(int(round(share * len(y))), 1)
        gain = caught[n - 1] / total
        rows.append(
            {
                "contacted_share": share,
                "customers": n,
                "churners_caught": int(caught[n - 1]),
                "gain": float(gain),
                "lift": float(gain / share),
            }
        )
    return pd.DataFrame(rows)


def gains_curve(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """The full cumulative gains curve (share contacted → share of churners caught)."""
    y, p = np.asarray(y).astype(int), np.asarray(p)
    order = np.argsort(-p, kind="stable")
    caught = np.concatenate([[0], np.cumsum(y[order])]) / max(int(y.sum()), 1)
    contacted = np.arange(len(y) + 1) / max(len(y), 1)
    return pd.DataFrame({"contacted": contacted, "caught": caught})


def fairness_slices(
    df: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    level: float = 0.95,
    min_group: int | None = None,
) -> pd.DataFrame:
    """Per group of gender, age band (`nba.fairness.age_bands`, the project's one set) and
    income: customers, churners, churn rate, share flagged, precision and recall, each rate
    with its `level` Wilson interval (`*_low`, `*_high`; recall's over the group's churners,
    precision's over its flagged customers), ROC-AUC, and `small` where the group has fewer than
    `min_group` customers (`nba.fairness.MIN_GROUP` by default): shown, too few to compare.
    Large gaps in recall mean some groups' churners are missed more."""
    from nba import fairness

    min_group = fairness.MIN_GROUP if min_group is None else min_group
    y, p = np.asarray(y).astype(int), np.asarray(p)
    flag = p >= threshold
    bands = fairness.age_bands(df["Customer_Age"])
    groups = {
        "Gender": (df["Gender"].astype("str").to_numpy(), None),
        "age band": (np.asarray(bands.astype(str)), [str(c) for c in bands.categories]),
        "Income_Category": (df["Income_Category"].astype("str").to_numpy(), None),
    }
    rows = []
    for attribute, (values, order) in groups.items():
        present = set(pd.unique(values))
        for group in [g for g in order if g in present] if order else sorted(present):
            m = values == group
            yg, pg, fg = y[m], p[m], flag[m]
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "customers": int(m.sum()),
                    "churners": int(yg.sum()),
                    "flagged": int(fg.sum()),
                    "churn_hits": int((fg & (yg == 1)).sum()),
                    "roc_auc": float(roc_auc_score(yg, pg)) if len(np.unique(yg)) == 2 else np.nan,
                }
            )
    out = pd.DataFrame(rows)
    rates = {
        "churn_rate": ("churners", "customers"),
        "flagged_rate": ("flagged", "customers"),
        "precision": ("churn_hits", "flagged"),
        "recall": ("churn_hits", "churners"),
    }
    for name, (k, n) in rates.items():
        hits, trials = out[k].to_numpy(dtype=float), out[n].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(trials > 0, hits / trials, np.nan)
        low, high = fairness.wilson(hits, trials, level)
        # at a rate of 0 or 1 the bound equals the rate; rounding must not leave it outside
        out[f"{name}_low"], out[f"{name}_high"] = np.fmin(low, out[name]), np.fmax(high, out[name])
    out["small"] = out["customers"] < min_group
    columns = ["attribute", "group", "customers", "churners", "small"]
    columns += [f"{r}{s}" for r in rates for s in ("", "_low", "_high")]
    return out[[*columns, "roc_auc"]]


def recall_gap(
    slices: pd.DataFrame, min_customers: int | None = None, level: float = 0.95
) -> pd.DataFrame:
    """Per attribute, the widest recall gap between its groups of at least `min_customers`
    (`nba.fairness.MIN_GROUP` by default): the lowest and highest recall with their groups, the
    gap and its `level` interval (Newcombe's hybrid score interval for a difference of two
    proportions, from the groups' Wilson intervals), and `significant` when the interval lies
    wholly above 0 (the gap is more than sampling noise)."""
    from nba import fairness

    min_customers = fairness.MIN_GROUP if min_customers is None else min_customers
    big = slices[(slices.customers >= min_customers) & slices.recall.notna()]
    rows = []
    for attribute, part in big.groupby("attribute", sort=False):
        lo, hi = part.loc[part.recall.idxmin()], part.loc[part.recall.idxmax()]
        churners = np.array([hi.churners, lo.churners], dtype=float)
        rate = np.array([hi.recall, lo.recall])
        r_low, r_high = fairness.wilson(np.round(rate * churners), churners, level)
        gap = float(rate[0] - rate[1])
        low = gap - np.hypot(rate[0] - r_low[0], r_high[1] - rate[1])
        high = gap + np.hypot(r_high[0] - rate[0], rate[1] - r_low[1])
        rows.append(
            {
                "attribute": attribute,
                "min_group": lo.group,
                "min": float(lo.recall),
                "max_group": hi.group,
                "max": float(hi.recall),
                "gap": gap,
                "gap_low": float(low),
                "gap_high": float(high),
                "significant": bool(low > 0),
                "groups_compared": len(part),
                "groups_too_small": int((slices.attribute == attribute).sum() - len(part)),
            }
        )
    return pd.DataFrame(rows)


# --- stage-1 targets, restated (issue 12) -----------------------------------------------------

#: Default learners the churn model must stay ahead of, on the same split and in the same run.
BASELINE_LEARNERS = ("lightgbm", "hist_gradient_boosting")
#: Highest held-out expected calibration error (probability points) the churn model may have.
ECE_MAX = 0.01
#: The comparison's metrics: ranking of the rare class, and F1 at each model's own threshold.
LEAD_METRICS = ("pr_auc", "f1")


def _lead_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    flag = p >= threshold
    tp = float((flag & (y == 1)).sum())
    f1 = 2 * tp / (flag.sum() + y.sum()) if (flag.sum() + y.sum()) else 0.0
    return {"pr_auc": float(average_precision_score(y, p)), "f1": float(f1)}


def _resamples(y: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """The customers drawn in each stratified resample (the same draws as
    `bootstrap_intervals`: churners, then stayers, with replacement)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return [
        np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        for _ in range(n_boot)
    ]


def _resample_weights(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) counts: how often each customer is drawn in each stratified resample."""
    weights = np.empty((n_boot, len(y)))
    for b, idx in enumerate(_resamples(y, n_boot, seed)):
        weights[b] = np.bincount(idx, minlength=len(y))
    return weights


def _weighted_lead_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """PR-AUC (average precision, as scikit-learn computes it) and F1 at `threshold` of every
    resample at once, a resample being a row of customer counts: one sort for all of them."""
    order = np.argsort(-p, kind="stable")
    ps, ys, w = p[order], y[order].astype(np.float64), weights[:, order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # last index of each score
    tp = np.cumsum(w * ys, axis=1)[:, last]
    fp = np.cumsum(w * (1 - ys), axis=1)[:, last]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / tp[:, -1:]
    step = np.diff(recall, axis=1, prepend=0.0)
    flag = (p >= threshold).astype(np.float64)
    yf = y.astype(np.float64)
    tp1, fp1 = weights @ (yf * flag), weights @ ((1 - yf) * flag)
    fn1 = weights @ (yf * (1 - flag))
    f1 = np.where(tp1 > 0, 2 * tp1 / (2 * tp1 + fp1 + fn1), 0.0)
    return {"pr_auc": (step * precision).sum(axis=1), "f1": f1}


def lead_key(metric: str, baseline: str) -> str:
    """The name of one lead in the metrics and the success criteria: `pr_auc_lead_vs_lightgbm`."""
    return f"{metric}_lead_vs_{baseline}"


def baseline_comparison(
    model,
    train: pd.DataFrame,
    test: pd.DataFrame,
    n_boot: int = 200,
    seed: int | None = None,
    baselines: tuple[str, ...] = BASELINE_LEARNERS,
    n_jobs: int = 2,
    level: float = 0.95,
) -> dict:
    """The restated stage-1 target on one split, in one run: is the fitted churn `model` ahead
    of each default learner in `baselines` (library defaults, seeded, trained on the same
    `train` customers and the same record columns) on the same held-out `test` customers — PR-AUC, and F1 at each model's
    own threshold, chosen by the model's rule on out-of-fold predictions of `train` with the
    model's folds — and is its held-out expected calibration error at most `ECE_MAX`?

    Leads (model − baseline) come with paired bootstrap intervals: the same resampled
    customers (stratified by class) score every model. Returns a JSON-able dict: `models`
    (each model's figures and threshold), `leads` (one record per baseline and metric, `ahead`
    when the lead is above 0, `clear` when the whole interval is), `ece` with its interval
    (`ece_low`, `ece_high`, the same resamples), `met`, and the criteria's measured values
    under `lead_key` names."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from nba.churn import calibration_metrics, choose_threshold, make_candidate
    from nba.data import schema

    if n_boot < 1:
        raise ValueError("the paired bootstrap needs n_boot >= 1 resample")
    seed = model.random_state if seed is None else seed
    y_train = train[schema.TARGET].to_numpy().astype(int)
    y = test[schema.TARGET].to_numpy().astype(int)
    folds = StratifiedKFold(model.cv_folds, shuffle=True, random_state=model.random_state)
    probs = {"chosen": model.predict_proba(test)[:, 1]}
    thresholds = {"chosen": float(model.threshold_)}
    for name in baselines:
        # like for like: the baselines see the same record columns as the model
        learner = make_candidate(name, model.random_state, exclude=model.excluded_columns)
        oof = cross_val_predict(
            learner, train, y_train, cv=folds, method="predict_proba", n_jobs=n_jobs
        )[:, 1]
        thresholds[name] = choose_threshold(
            y_train,
            oof,
            model.threshold_rule,
            cost_fp=model.cost_fp,
            value_missed=model.value_missed,
        )
        probs[name] = clone(learner).fit(train, y_train).predict_proba(test)[:, 1]
    point = {m: _lead_metrics(y, p, thresholds[m]) for m, p in probs.items()}
    weights = _resample_weights(y, n_boot, seed)
    draws = {m: _weighted_lead_metrics(y, p, thresholds[m], weights) for m, p in probs.items()}
    tail = (1 - level) / 2
    leads, measured = [], {}
    for name in baselines:
        for metric in LEAD_METRICS:
            diff = draws["chosen"][metric] - draws[name][metric]
            lead = point["chosen"][metric] - point[name][metric]
            low, high = float(np.quantile(diff, tail)), float(np.quantile(diff, 1 - tail))
            leads.append(
                {
                    "baseline": name,
                    "metric": metric,
                    "chosen": point["chosen"][metric],
                    "baseline_value": point[name][metric],
                    "lead": float(lead),
                    "ci_low": low,
                    "ci_high": high,
                    "ahead": bool(lead > 0),
                    "clear": bool(low > 0),
                }
            )
            measured[lead_key(metric, name)] = float(lead)
    ece = calibration_metrics(y, probs["chosen"])["ece"]
    # the same resampled customers give the calibration error its interval
    eces = [
        calibration_metrics(y[i], probs["chosen"][i])["ece"] for i in _resamples(y, n_boot, seed)
    ]
    return {
        "models": {m: {**point[m], "threshold": thresholds[m]} for m in probs},
        "leads": leads,
        "ece": float(ece),
        "ece_low": float(np.quantile(eces, tail)),
        "ece_high": float(np.quantile(eces, 1 - tail)),
        "ece_max": ECE_MAX,
        "ece_met": bool(ece <= ECE_MAX),
        "met": bool(all(r["ahead"] for r in leads) and ece <= ECE_MAX),
        "measured": {**measured, "ece": float(ece)},
        "threshold_rule": model.threshold_rule,
        "folds": int(model.cv_folds),
        "n_boot": int(n_boot),
        "level": level,
        "n_train": len(train),
        "n_test": len(test),
    }


# --- acceptance per stage ----------------------------------------------------------------------

#: The verdicts of `stage_acceptance`, from best to worst.
VERDICTS = ("accepted", "accepted with conditions", "not accepted")
#: The stages in the order the business reads them, with the names it knows them by.
STAGE_NAMES = {
    "churn": "stage 1, churn risk",
    "segments": "stage 2, segments",
    "actions": "stage 3, actions",
}


def _side(comparison: str, target: float, low: float, high: float) -> str:
    """Where an interval lies against a target: "clear" (wholly on the side the comparison
    asks for), "short" (wholly on the other side) or "across" (it holds the target)."""
    from nba.value import COMPARISONS

    ok = COMPARISONS[comparison]
    if np.isnan(low) or np.isnan(high):  # half an interval says nothing about the side
        return "across"
    if ok(low, target) and ok(high, target):
        return "clear"
    if not ok(low, target) and not ok(high, target):
        return "short"
    return "across"


def stage1_intervals(stage1: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """The intervals of the stage-1 success criteria from a `baseline_comparison` record: each
    lead's paired bootstrap interval and the calibration error's, keyed (stage, metric) as
    `criterion_evidence` reads them."""
    out = {
        ("churn", lead_key(r["metric"], r["baseline"])): (r["ci_low"], r["ci_high"])
        for r in stage1["leads"]
    }
    if "ece_low" in stage1:
        out[("churn", "ece")] = (stage1["ece_low"], stage1["ece_high"])
    return out


def criterion_evidence(
    criteria: pd.DataFrame, intervals: dict[tuple[str, str], tuple[float, float]]
) -> pd.DataFrame:
    """`nba.value.check_criteria` output with each criterion's interval (`ci_low`, `ci_high`
    from `intervals`, keyed by (stage, metric); NaN where there is none) and `evidence`:
    "clearly met" / "met, interval reaches the target" / "missed, interval reaches the target" /
    "clearly missed" for measurements, "simulation only", "by design" or "not measured"."""
    from nba.value import DESIGN, SIMULATION

    table = criteria.copy()
    pairs = list(zip(table["stage"], table["metric"], strict=True))
    table["ci_low"] = [float(intervals.get(k, (np.nan, np.nan))[0]) for k in pairs]
    table["ci_high"] = [float(intervals.get(k, (np.nan, np.nan))[1]) for k in pairs]
    evidence = []
    for row in table.itertuples():
        if pd.isna(row.measured):
            evidence.append("not measured")
        elif row.basis == SIMULATION:
            evidence.append("simulation only" if row.holds else "fails in simulation")
        elif row.basis == DESIGN and row.holds:
            evidence.append("by design")
        elif np.isnan(row.ci_low) and np.isnan(row.ci_high):
            evidence.append("met, no interval" if row.holds else "missed, no interval")
        else:
            side = _side(row.comparison, row.target, row.ci_low, row.ci_high)
            if row.holds:
                evidence.append(
                    "clearly met" if side == "clear" else "met, interval reaches the target"
                )
            else:
                evidence.append(
                    "clearly missed" if side == "short" else "missed, interval reaches the target"
                )
    table["evidence"] = evidence
    return table


def stage_acceptance(evidence: pd.DataFrame) -> pd.DataFrame:
    """One verdict per stage from `criterion_evidence`: "not accepted" when a criterion is
    missed (even within its interval: nothing shows it met), fails in simulation or is not
    measured; "accepted with conditions" when every criterion holds but some only within its
    interval (condition: confirm on the next held-out customers) or only in an assumption-based
    simulation (condition: a campaign with a control group measures it first); "accepted" when
    every criterion is met with its whole interval on the target's side. `reason` says which
    criteria decided it, with their figures; `conditions` what must happen before relying on it."""
    rows = []
    for stage in [s for s in STAGE_NAMES if s in set(evidence["stage"])]:
        part = evidence[evidence["stage"] == stage]
        failing = part[
            part.evidence.isin(
                ["clearly missed", "missed, interval reaches the target", "missed, no interval"]
                + ["fails in simulation", "not measured"]
            )
        ]
        loose = part[part.evidence.isin(["met, interval reaches the target", "met, no interval"])]
        simulated = part[part.evidence == "simulation only"]
        met = part[part.evidence == "clearly met"]

        def listed(rows_: pd.DataFrame) -> str:
            return "; ".join(
                f"{criterion_label(r.metric)} {_figure(r.measured, r.stage == 'actions')} "
                f"{r.comparison} "
                f"{r.target:g}"
                + (
                    f" (95 % interval {_figure(r.ci_low)} to {_figure(r.ci_high)})"
                    if np.isfinite(r.ci_low) or np.isfinite(r.ci_high)
                    else ""
                )
                + f": {r.evidence}"
                for r in rows_.itertuples()
            )

        conditions = []
        if len(failing):
            verdict = "not accepted"
            reason = (
                f"{len(failing)} of {_count(len(part), 'criterion')} not met: {listed(failing)}."
            )
            within = int(failing.evidence.eq("missed, interval reaches the target").sum())
            if within:
                reason += (
                    f" {_count(within, 'miss', 'misses')} within sampling noise: the held-out "
                    "customers can neither show the target met nor rule it out."
                )
            if len(loose):
                reason += f" Met, but only within noise: {listed(loose)}."
            if len(met):
                reason += f" Clearly met: {listed(met)}."
            if len(simulated):
                reason += f" Holding only in the simulation: {listed(simulated)}."
        elif len(loose) or len(simulated):
            verdict = "accepted with conditions"
            reason = ""
            if len(met):
                reason += f"Clearly met: {listed(met)}. "
            if len(loose):
                reason += f"Met, but the interval reaches the target: {listed(loose)}. "
                conditions.append("confirm the figures on the next held-out customers")
            if len(simulated):
                reason += (
                    "Holding only in an assumption-based simulation that cannot fail against its "
                    f"baselines: {listed(simulated)}."
                )
                conditions.append(
                    "run it as a pilot with a control group and judge it on measured outcomes "
                    "(`nba campaign impact`) before scaling up"
                )
        else:
            verdict = "accepted"
            reason = (
                f"Every criterion met with its whole interval on the target's side: {listed(met)}."
            )
        by_design = part[part.evidence == "by design"]
        if len(by_design):
            reason = reason.rstrip() + f" By design, not evidence: {listed(by_design)}."
        rows.append(
            {
                "stage": stage,
                "name": STAGE_NAMES[stage],
                "verdict": verdict,
                "criteria": len(part),
                "clearly_met": len(met),
                "reason": reason.strip(),
                "conditions": "; ".join(conditions),
            }
        )
    return pd.DataFrame(rows)


#: What a criterion's metric name means, as the verdicts name it for a business reader.
_LEARNERS = {
    "lightgbm": "a default LightGBM",
    "hist_gradient_boosting": "a default HistGradientBoosting",
}
_MEASURES = {"pr_auc": "PR-AUC", "f1": "F1"}
CRITERION_LABELS = {
    "ece": "calibration error (ECE)",
    "silhouette_test": "segment separation on held-out customers (silhouette)",
    "stability_ari_test": "segment stability on held-out customers (ARI)",
    "churn_ratio_high_low": "churn of the riskiest segment over the safest's",
    "k": "number of segments",
    "net_value_uplift_vs_no_action": "net value over doing nothing",
    "net_value_uplift_vs_churn_score_one_offer": "net value over one offer to the flagged",
    "net_value_uplift_vs_random_action": "net value over a random action",
}


def criterion_label(metric: str) -> str:
    """A criterion's metric in words ("PR-AUC lead over a default LightGBM"); unknown names as
    they are."""
    for measure, words in _MEASURES.items():
        for learner, name in _LEARNERS.items():
            if metric == lead_key(measure, learner):
                return f"{words} lead over {name}"
    return CRITERION_LABELS.get(metric, metric)


def _count(n: int, one: str, many: str | None = None) -> str:
    """ "1 criterion", "3 criteria": a count with its noun."""
    return f"{n} {one if n == 1 else many or ('criteria' if one == 'criterion' else one + 's')}"


def _figure(x: float, money: bool = False) -> str:
    """A measured figure as the verdicts quote it: dollars as markdown money (`money`),
    large numbers whole, others to 4 significant digits, infinite as "unbounded"."""
    if money and np.isfinite(x):
        from nba.story import money as dollars

        return dollars(x)
    if not np.isfinite(x):
        return "unbounded" if x > 0 else "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def retired_targets(
    intervals: pd.DataFrame, targets: dict[str, float] | None = None
) -> pd.DataFrame:
    """The first plan's absolute stage-1 floors (`nba.value.RETIRED_STAGE1_TARGETS`) against
    the held-out figures and their bootstrap intervals (`bootstrap_intervals` output): per
    metric the value, the interval, the target and `reading` — "met beyond noise" (the whole
    interval at or above the target), "missed beyond noise" (wholly below) or "within noise"
    (the interval holds the target: these customers cannot tell the model from one that meets
    it, so the miss is neither shown nor ruled out; only more customers can)."""
    from nba.value import RETIRED_STAGE1_TARGETS

    targets = RETIRED_STAGE1_TARGETS if targets is None else targets
    table = intervals.set_index("metric").loc[list(targets)].reset_index()
    table["target"] = [targets[m] for m in table["metric"]]
    table["reading"] = np.select(
        [table["ci_low"] >= table["target"], table["ci_high"] < table["target"]],
        ["met beyond noise", "missed beyond noise"],
        "within noise",
    )
    table["met"] = table["value"] >= table["target"]
    return table[["metric", "value", "ci_low", "ci_high", "target", "met", "reading"]]


def retired_story(retired: pd.DataFrame, customers: int) -> str:
    """The markdown under a `retired_targets` table: how many floors the held-out figures miss,
    which misses lie within sampling noise and which beyond it, and what that means."""
    missed = retired[~retired["met"]]
    noise = missed[missed["reading"] == "within noise"]
    beyond = missed[missed["reading"] == "missed beyond noise"]
    text = (
        "The first plan's absolute floors, retired in notebook 01, against section 2's "
        f"intervals: the held-out figures miss {len(missed)} of {len(retired)}"
        + (f" ({', '.join(missed.metric)})" if len(missed) else "")
        + f"; {len(noise)} of those misses {'lies' if len(noise) == 1 else 'lie'} inside their "
        "own 95 % interval"
        + (f" ({', '.join(noise.metric)})" if len(noise) else "")
        + (
            f" and {len(beyond)} beyond it ({', '.join(beyond.metric)}: these customers show "
            "that floor is not reached)"
            if len(beyond)
            else ""
        )
        + "."
    )
    if len(noise):
        text += (
            f" A target inside the interval means these {customers:,} customers cannot tell this "
            "model from one that meets it: the miss is neither shown nor ruled out, and another "
            "sample of the same size could land on either side. It is not evidence that the "
            "target is beyond reach, nor that it is met; only more held-out customers (or the "
            "acceptance sample) can settle it, which is why the targets were restated as leads "
            "over default learners measured on the same customers."
        )
    return text


def fairness_story(slices: pd.DataFrame, gaps: pd.DataFrame, min_group: int) -> str:
    """The markdown under the fairness slices: each attribute's widest recall gap with its
    interval and whether it is more than noise, then the groups too small to compare."""
    from nba.story import md

    small = slices[slices["small"]]
    text = (
        f"Widest recall gap between groups of at least {min_group} customers, with its 95 % "
        "interval (difference of two proportions): "
        + "; ".join(
            f"**{r.attribute} {r.gap:.1%}** ({md(r.min_group)} {r.min:.1%} to "
            f"{md(r.max_group)} {r.max:.1%}; interval {r.gap_low:+.1%} to {r.gap_high:+.1%}: "
            + ("more than sampling noise)" if r.significant else "within sampling noise)")
            for r in gaps.itertuples()
        )
        + f". {int(gaps['significant'].sum())} of {len(gaps)} gaps are more than noise. "
    )
    if small.empty:
        return text + "Every group is large enough to compare."
    return (
        text
        + f"Too small to compare: {len(small)} {'group' if len(small) == 1 else 'groups'} ("
        + "; ".join(
            f"{r.attribute} {md(r.group)}: {r.customers} customers, {r.churners} churners, "
            f"recall {r.recall:.0%}, interval {r.recall_low:.0%} to {r.recall_high:.0%}"
            for r in small.itertuples()
        )
        + "): read their rates with those intervals."
    )


def acceptance_story(
    acceptance: pd.DataFrame, retired: pd.DataFrame | None = None, customers: int | None = None
) -> str:
    """The markdown verdicts of `stage_acceptance`, one bullet per stage with its reason and
    conditions; with `retired` (`retired_targets`) a closing line on the retired stage-1 floors
    the verdict leaves out."""
    text = "\n".join(
        f"- **{r.name.capitalize()}: {r.verdict}.** {r.reason}"
        + (f" *Conditions:* {r.conditions}." if r.conditions else "")
        for r in acceptance.itertuples()
    )
    if retired is not None:
        missed = retired[~retired["met"]]
        noise = int((missed["reading"] == "within noise").sum())
        text += (
            "\n\nThe retired absolute floors of stage 1 are not part of the verdict: "
            f"{noise} of the {len(missed)} missed {'lies' if noise == 1 else 'lie'} within "
            "sampling noise"
            + (f" of these {customers:,} customers" if customers else "")
            + " (section 2b)."
        )
    return text


def actions_story(actions: dict, customers: int, trained: int) -> str:
    """The markdown under the action uplifts (notebook 06's `actions.json`): the engine's
    expected net value and uplifts on the whole base, then on the held-out customers alone,
    the figures the success criteria use."""
    from nba.story import money

    def uplifts(values: dict) -> str:
        return "; ".join(
            f"{k.replace('net_value_uplift_vs_', '').replace('_', ' ')}: {money(v)}"
            for k, v in values.items()
        )

    held = actions["held_out"]
    return (
        f"The engine's expected net value is {money(actions['expected_net_value'])}; its uplift "
        f"over {uplifts(actions['uplift'])} (over the value horizon, all {customers:,} "
        f"customers, {trained:,} of whom trained the churn model). On the "
        f"{held['customers']:,} held-out customers alone, whose probabilities the model never "
        f"trained on: {uplifts(held['uplift'])}, the figures the success criteria below use."
    )
