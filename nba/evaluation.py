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
