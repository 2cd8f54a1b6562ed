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


def age_band(age: pd.Series) -> pd.Series:
    """Age bands for fairness slices: under 40, 40–49, 50–59, 60 and over."""
    bands = pd.cut(age, [0, 39, 49, 59, 200], labels=["<40", "40-49", "50-59", "60+"])
    return bands.astype("str")


def fairness_slices(
    df: pd.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float
) -> pd.DataFrame:
    """Per group of gender, age band and income: size, churn rate, share flagged, precision,
    recall and ROC-AUC — large gaps in recall mean some groups' churners are missed more."""
    y, p = np.asarray(y).astype(int), np.asarray(p)
    flag = p >= threshold
    groups = {
        "Gender": df["Gender"].astype("str").to_numpy(),
        "age band": age_band(df["Customer_Age"]).to_numpy(),
        "Income_Category": df["Income_Category"].astype("str").to_numpy(),
    }
    rows = []
    for attribute, values in groups.items():
        for group in pd.unique(values):
            m = values == group
            yg, pg, fg = y[m], p[m], flag[m]
            both = len(np.unique(yg)) == 2
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "customers": int(m.sum()),
                    "churn_rate": float(yg.mean()),
                    "flagged_rate": float(fg.mean()),
                    "precision": float(yg[fg].mean()) if fg.any() else float("nan"),
                    "recall": float(fg[yg == 1].mean()) if (yg == 1).any() else float("nan"),
                    "roc_auc": float(roc_auc_score(yg, pg)) if both else float("nan"),
                }
            )
    out = pd.DataFrame(rows)
    return out.sort_values(["attribute", "group"], ignore_index=True)


def recall_gap(slices: pd.DataFrame, min_customers: int = 30) -> pd.DataFrame:
    """Per attribute, the widest recall gap between its groups of at least `min_customers`."""
    big = slices[slices.customers >= min_customers]
    agg = big.groupby("attribute")["recall"].agg(["min", "max"])
    agg["gap"] = agg["max"] - agg["min"]
    return agg.reset_index()


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


def _resample_weights(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) counts: how often each customer is drawn in each stratified resample (the
    same draws as `bootstrap_intervals`: churners, then stayers, with replacement)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    weights = np.empty((n_boot, len(y)))
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
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
    when the lead is above 0, `clear` when the whole interval is), `ece`, `met`, and the
    criteria's measured values under `lead_key` names."""
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
    return {
        "models": {m: {**point[m], "threshold": thresholds[m]} for m in probs},
        "leads": leads,
        "ece": float(ece),
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
