"""Stage 1: who is about to leave. Candidate models, cross-validated comparison, feature
evidence, tuning, threshold choice, calibration and per-customer reasons.

Everything here is chosen by stratified K-fold cross-validation on the *training* part of the
project's one split (`nba.features.split`); the held-out part is only scored at the end, once,
by `train_churn`. Class imbalance (≈ 16 % attrited) is handled by the decision threshold (and,
if the search picks it, by LightGBM's `scale_pos_weight`) — never by resampling.

Chosen: LightGBM, tuned (`TUNED_PARAMS`), on the raw customer record. On the training split
(5-fold CV) the boosted trees clearly beat the prototype's GradientBoostingClassifier, the
random forest and the logistic regression; tuned LightGBM and a tuned HistGradientBoosting
rank customers equally well (PR-AUC 0.969 vs 0.968 for the best draws of the same 60-draw
search), so LightGBM is chosen for what later stages need: exact TreeSHAP built in
(`pred_contrib=True`), which `ChurnModel.reasons` turns into sentences such as
"Total_Trans_Ct 28 (median 67): raises risk", and faster scoring at the same size
(`bench/bench_train.py`). None of the engineered features beat the fold-to-fold noise
(`feature_evidence`), so none is used. Probabilities out of fold are already calibrated
(ECE ≈ 0.006), so no calibration map is applied unless `calibration_report` says otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
)
from sklearn.model_selection import (
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from nba.config import Settings, cache_dir
from nba.data import schema
from nba.evaluation import metric_set
from nba.features import (
    CATEGORY_DTYPES,
    ENGINEERED,
    FEATURES,
    KEPT_ENGINEERED,
    FeatureBuilder,
    split,
)

logger = logging.getLogger(__name__)

#: pandas' "str" dtype, resolved once (parsing the name costs more than a one-row column).
_STR = pd.api.types.pandas_dtype("str")

#: Candidate learners, in the order the comparison table lists them.
CANDIDATES: tuple[str, ...] = (
    "logistic",
    "random_forest",
    "gradient_boosting",
    "hist_gradient_boosting",
    "lightgbm",
    "lightgbm_tuned",
)
#: The original prototype's model: the baseline every other candidate is compared with.
BASELINE = "gradient_boosting"
#: The learner `ChurnModel` uses (chosen by `compare_candidates`; see the module docstring).
CHOSEN = "lightgbm"

#: LightGBM settings that are not tuned: reproducible (deterministic, row-wise histograms) and
#: quiet. Bagging happens every iteration when `subsample` < 1.
LGBM_FIXED: dict[str, Any] = {
    "objective": "binary",
    "deterministic": True,
    "force_row_wise": True,
    "subsample_freq": 1,
    "verbose": -1,
}

#: The tuned LightGBM hyper-parameters: what `tune(..., n_iter=60)` picks on the training split
#: of the development data (seed 42, 5-fold stratified CV, PR-AUC of the attrited class, then
#: the one-standard-error rule: the cheapest configuration within one SE of the best). Its
#: PR-AUC was 0.967 vs 0.969 for the best draw (358 trees × 26 leaves); on four fresh fold
#: seeds the two scored 0.968 and 0.969, i.e. the same within noise, at a third of the scoring
#: cost. The search space is deliberately lean (≤ 400 trees of ≤ 31 leaves) so that batch
#: scoring stays fast. Re-run `tune` (or `train_churn` with `search_iter > 0`) to refresh.
TUNED_PARAMS: dict[str, Any] = {
    "n_estimators": 120,
    "learning_rate": 0.153332,
    "num_leaves": 15,
    "min_child_samples": 9,
    "subsample": 0.986253,
    "colsample_bytree": 0.626734,
    "reg_lambda": 0.001821,
    "scale_pos_weight": 1.0,
}

#: Where `tune` samples from (LightGBM parameter names).
SEARCH_SPACE: dict[str, Any] = {
    "n_estimators": randint(100, 401),
    "learning_rate": loguniform(0.03, 0.2),
    "num_leaves": randint(7, 32),
    "min_child_samples": randint(3, 41),
    "subsample": uniform(0.6, 0.4),
    "colsample_bytree": uniform(0.3, 0.7),
    "reg_lambda": loguniform(1e-3, 10.0),
    "scale_pos_weight": [1.0, 2.0, 4.0],
}

#: Cross-validation scorers; "pr_auc" is average precision (area under the PR curve).
SCORING: dict[str, str] = {
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
}

CALIBRATIONS = ("none", "sigmoid", "isotonic")
THRESHOLD_RULES = ("f1", "cost")

#: "auto" calibration switches away from raw probabilities only when the cross-fitted Brier
#: score improves by at least this share: a tiny gain is not worth a ranking-changing step.
CALIBRATION_MIN_GAIN = 0.02


# --- candidates -------------------------------------------------------------------------------


def _tree_encoder() -> ColumnTransformer:
    """Categoricals → ordinal codes, numbers → median-imputed (for RF and sklearn GBM)."""
    return ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                make_column_selector(dtype_include="category"),
            ),
            (
                "num",
                SimpleImputer(strategy="median"),
                make_column_selector(dtype_exclude="category"),
            ),
        ]
    )


def _linear_encoder() -> ColumnTransformer:
    """Categoricals → one-hot, numbers → median-imputed and standardised (for the logistic)."""
    return ColumnTransformer(
        [
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore"),
                make_column_selector(dtype_include="category"),
            ),
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                make_column_selector(dtype_exclude="category"),
            ),
        ]
    )


def lgbm_params(params: dict[str, Any] | None, seed: int, n_jobs: int = 1) -> dict[str, Any]:
    """Full LightGBM keyword arguments: the fixed settings, `params` (default `TUNED_PARAMS`;
    pass `{}` for the library defaults), the seed and the thread count."""
    chosen = TUNED_PARAMS if params is None else params
    return {**LGBM_FIXED, **chosen, "random_state": seed, "n_jobs": n_jobs}


def make_candidate(
    name: str,
    seed: int,
    engineered: Sequence[str] = (),
    params: dict[str, Any] | None = None,
) -> Pipeline:
    """An unfitted pipeline `FeatureBuilder → [encoder] → learner` for candidate `name`.

    Learners use their library defaults (seeded) so that the comparison is like for like,
    except "lightgbm_tuned" (`TUNED_PARAMS`, the final configuration); `params` overrides the
    learner's parameters (for "lightgbm", `None` means library defaults here, unlike
    `ChurnModel`, which uses `TUNED_PARAMS`).
    """
    params = dict(params or {})
    if name == "logistic":
        steps = [
            ("encode", _linear_encoder()),
            ("model", LogisticRegression(max_iter=2000, random_state=seed, **params)),
        ]
    elif name == "random_forest":
        steps = [
            ("encode", _tree_encoder()),
            ("model", RandomForestClassifier(n_jobs=1, random_state=seed, **params)),
        ]
    elif name == "gradient_boosting":
        steps = [
            ("encode", _tree_encoder()),
            ("model", GradientBoostingClassifier(random_state=seed, **params)),
        ]
    elif name == "hist_gradient_boosting":
        steps = [
            (
                "model",
                HistGradientBoostingClassifier(
                    categorical_features="from_dtype", random_state=seed, **params
                ),
            )
        ]
    elif name == "lightgbm":
        steps = [("model", lgb.LGBMClassifier(**lgbm_params(params, seed)))]
    elif name == "lightgbm_tuned":  # the final configuration, for the same table
        tuned = {**TUNED_PARAMS, **params}
        steps = [("model", lgb.LGBMClassifier(**lgbm_params(tuned, seed)))]
    else:
        raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")
    return Pipeline([("features", FeatureBuilder(engineered=tuple(engineered))), *steps])


def _xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Features frame and 0/1 target of a clean customer frame."""
    if schema.TARGET not in df.columns:
        raise ValueError(f"the customer frame has no {schema.TARGET!r} column to learn from")
    return df, df[schema.TARGET].to_numpy().astype(np.int64)


def _cv(settings: Settings) -> StratifiedKFold:
    """The seeded stratified folds every comparison on the training split uses."""
    return StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)


def _tidy(per_fold: dict[str, np.ndarray], label: str) -> list[dict[str, Any]]:
    return [
        {
            "model": label,
            "metric": metric,
            "mean": float(np.mean(v)),
            "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "folds": len(v),
        }
        for metric, v in per_fold.items()
    ]


def compare_candidates(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    settings: Settings,
    *,
    candidates: Sequence[str] = CANDIDATES,
    engineered: Sequence[str] = (),
    n_jobs: int = 2,
) -> pd.DataFrame:
    """Stratified `settings.cv_folds`-fold CV of each candidate on (X, y), the training split.

    Returns a tidy frame with one row per (model, metric): columns model, metric, mean, sd
    (across folds), folds. Metrics: precision, recall and f1 of the attrited class at each
    model's default 0.5 cut-off, roc_auc, pr_auc, and fit_time_s (seconds per fold fit, which
    depends on machine load). Use `.pivot(index="model", columns="metric", values="mean")` for
    a wide table.
    """
    y = np.asarray(y).astype(np.int64)
    cv = _cv(settings)
    rows: list[dict[str, Any]] = []
    for name in candidates:
        start = time.perf_counter()
        res = cross_validate(
            make_candidate(name, settings.seed, engineered),
            X,
            y,
            cv=cv,
            scoring=SCORING,
            n_jobs=n_jobs,
        )
        per_fold = {m: res[f"test_{m}"] for m in SCORING}
        per_fold["fit_time_s"] = res["fit_time"]
        rows += _tidy(per_fold, name)
        logger.info(
            "candidate %s: ROC-AUC %.4f, PR-AUC %.4f (%.1f s)",
            name,
            per_fold["roc_auc"].mean(),
            per_fold["pr_auc"].mean(),
            time.perf_counter() - start,
        )
    return pd.DataFrame(rows)


def _fold_scores(
    model: Pipeline, X: pd.DataFrame, y: np.ndarray, cv: StratifiedKFold, n_jobs: int
) -> dict[str, np.ndarray]:
    res = cross_validate(model, X, y, cv=cv, scoring=SCORING, n_jobs=n_jobs)
    scores = {m: res[f"test_{m}"] for m in SCORING}
    return scores


def feature_evidence(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    settings: Settings,
    *,
    candidates: Sequence[str] = tuple(ENGINEERED),
    params: dict[str, Any] | None = None,
    n_repeats: int = 1,
    n_jobs: int = 2,
) -> pd.DataFrame:
    """Does each engineered feature help? CV of the chosen learner (LightGBM with `params`,
    default `TUNED_PARAMS`) on the raw features ("none"), raw + each candidate alone, raw + all
    candidates ("all") and raw + `KEPT_ENGINEERED` ("kept").

    Folds are the same for every variant (`n_repeats` × `settings.cv_folds`, seeded), so the
    differences are paired. Returns a tidy frame: variant, metric, mean, sd, delta (mean paired
    difference to "none"), delta_sd (sd of the paired differences). A feature is worth keeping
    when its PR-AUC gain beats the noise (`select_engineered`).
    """
    y = np.asarray(y).astype(np.int64)
    params = TUNED_PARAMS if params is None else params
    variants: dict[str, tuple[str, ...]] = {"none": ()}
    variants.update({f"+{c}": (c,) for c in candidates})
    variants["all"] = tuple(candidates)
    if KEPT_ENGINEERED:
        variants["kept"] = tuple(KEPT_ENGINEERED)
    scores: dict[str, dict[str, list[float]]] = {v: {m: [] for m in SCORING} for v in variants}
    for r in range(n_repeats):
        cv = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed + r)
        for variant, eng in variants.items():
            model = make_candidate(CHOSEN, settings.seed, eng, params)
            for m, v in _fold_scores(model, X, y, cv, n_jobs).items():
                scores[variant][m] += list(v)
        logger.info("feature evidence: repeat %d of %d done", r + 1, n_repeats)
    rows = []
    for variant in variants:
        for m in SCORING:
            v = np.asarray(scores[variant][m])
            d = v - np.asarray(scores["none"][m])
            rows.append(
                {
                    "variant": variant,
                    "metric": m,
                    "mean": float(v.mean()),
                    "sd": float(v.std(ddof=1)),
                    "delta": float(d.mean()),
                    "delta_sd": float(d.std(ddof=1)),
                    "folds": len(v),
                }
            )
    return pd.DataFrame(rows)


def select_engineered(evidence: pd.DataFrame, min_se: float = 1.0) -> tuple[str, ...]:
    """The engineered features worth keeping, in `ENGINEERED` order: those whose single
    addition in `feature_evidence` raised mean PR-AUC by more than `min_se` standard errors of
    the paired difference (sd / √folds) without lowering mean ROC-AUC. Gains smaller than the
    fold-to-fold noise are not gains."""
    keep = []
    for name in ENGINEERED:
        rows = evidence[evidence["variant"] == f"+{name}"].set_index("metric")
        if rows.empty:
            continue
        pr = rows.loc["pr_auc"]
        se = pr["delta_sd"] / np.sqrt(pr["folds"])
        if pr["delta"] > min_se * se and rows.loc["roc_auc", "delta"] >= 0:
            keep.append(name)
    return tuple(keep)


def tune(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    settings: Settings,
    *,
    n_iter: int = 60,
    engineered: Sequence[str] = KEPT_ENGINEERED,
    n_jobs: int = 2,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Seeded random search of LightGBM over `SEARCH_SPACE` on (X, y), the training split.

    `n_iter` draws × `settings.cv_folds` stratified folds, scored by PR-AUC (the attrited class
    is the one that matters and it is rare). The pick follows the one-standard-error rule:
    the cheapest configuration (fewest trees × leaves, i.e. fastest to score) whose mean PR-AUC
    is within one standard error (sd / √folds) of the best. Returns (chosen parameters as plain
    Python values, the search results sorted by PR-AUC, with a `chosen` flag).
    """
    y = np.asarray(y).astype(np.int64)
    search = RandomizedSearchCV(
        make_candidate(CHOSEN, settings.seed, engineered, {}),
        {f"model__{k}": v for k, v in SEARCH_SPACE.items()},
        n_iter=n_iter,
        scoring={"pr_auc": "average_precision", "roc_auc": "roc_auc"},
        refit=False,
        cv=_cv(settings),
        random_state=settings.seed,
        n_jobs=n_jobs,
    )
    start = time.perf_counter()
    search.fit(X, y)
    res = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame(
        {
            **{k: res[f"param_model__{k}"].map(_plain) for k in SEARCH_SPACE},
            "pr_auc_mean": res["mean_test_pr_auc"],
            "pr_auc_sd": res["std_test_pr_auc"],
            "roc_auc_mean": res["mean_test_roc_auc"],
            "roc_auc_sd": res["std_test_roc_auc"],
        }
    ).sort_values("pr_auc_mean", ascending=False, ignore_index=True)
    bar = table.loc[0, "pr_auc_mean"] - table.loc[0, "pr_auc_sd"] / np.sqrt(settings.cv_folds)
    near = table[table["pr_auc_mean"] >= bar]
    cost = near["n_estimators"] * near["num_leaves"]
    chosen = int(cost.idxmin())
    table["chosen"] = table.index == chosen
    best = {k: _plain(table.loc[chosen, k]) for k in SEARCH_SPACE}
    logger.info(
        "tuned LightGBM in %.0f s: PR-AUC %.4f (best %.4f) with %s",
        time.perf_counter() - start,
        table.loc[chosen, "pr_auc_mean"],
        table.loc[0, "pr_auc_mean"],
        best,
    )
    return best, table


def _plain(v: Any) -> Any:
    """numpy scalars → Python scalars (for JSON and for readable parameters)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 6)
    return v


# --- threshold --------------------------------------------------------------------------------


def _cutoffs(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (descending) and the TP / FP counts when flagging p ≥ each score."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # last index of each score
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    return ps[last], tp.astype(np.float64), fp.astype(np.float64)


def choose_threshold(
    y: np.ndarray | pd.Series,
    p: np.ndarray | pd.Series,
    rule: str = "f1",
    *,
    cost_fp: float | None = None,
    value_missed: float | None = None,
) -> float:
    """The probability cut-off (flag when p ≥ threshold) chosen on out-of-fold scores.

    rule "f1": maximise F1 of the attrited class (ties: the highest cut-off, fewest flags).
    rule "cost": minimise cost_fp × false positives + value_missed × missed churners, both in
    the same money unit per customer (e.g. the cost of an unneeded retention offer, and the
    value lost when a churner is not contacted).
    The cut-off is placed halfway between the chosen score and the next lower one, so small
    score changes do not flip the decision for the customers on the edge.
    """
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("y and p must be 1-d arrays of the same, non-zero length")
    scores, tp, fp = _cutoffs(y, p)
    positives = float(y.sum())
    if rule == "f1":
        if positives == 0:
            raise ValueError("F1 needs at least one attrited customer")
        objective = 2 * tp / (2 * tp + fp + (positives - tp))  # maximise
        i = int(np.argmax(objective))
    elif rule == "cost":
        if cost_fp is None or value_missed is None or cost_fp < 0 or value_missed < 0:
            raise ValueError("the cost rule needs cost_fp ≥ 0 and value_missed ≥ 0")
        cost = cost_fp * fp + value_missed * (positives - tp)
        # flagging nobody is also an option: cost = value_missed × all churners
        if value_missed * positives <= cost.min():
            return float(np.nextafter(scores[0], np.inf))
        i = int(np.argmin(cost))
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; choose from {THRESHOLD_RULES}")
    if i + 1 < len(scores):
        return float((scores[i] + scores[i + 1]) / 2)
    return float(scores[i])


def threshold_table(
    y: np.ndarray | pd.Series,
    p: np.ndarray | pd.Series,
    thresholds: np.ndarray | None = None,
    *,
    cost_fp: float | None = None,
    value_missed: float | None = None,
) -> pd.DataFrame:
    """Precision, recall, F1 and share flagged at each cut-off (default 0.01 … 0.99), plus
    expected cost when both costs are given: the data behind a threshold chart."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else thresholds
    flag = p[None, :] >= np.asarray(grid)[:, None]
    tp = (flag & (y == 1)).sum(1).astype(np.float64)
    fp = (flag & (y == 0)).sum(1).astype(np.float64)
    fn = y.sum() - tp
    out = pd.DataFrame(
        {
            "threshold": grid,
            "precision": np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0),
            "recall": tp / max(y.sum(), 1),
            "f1": np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=tp > 0),
            "flagged_share": flag.mean(1),
        }
    )
    if cost_fp is not None and value_missed is not None:
        out["cost"] = cost_fp * fp + value_missed * fn
    return out


# --- calibration ------------------------------------------------------------------------------

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def reliability_table(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, n_bins: int = 10
) -> pd.DataFrame:
    """Customers binned by predicted probability (equal-width bins over [0, 1]): per bin the
    mean predicted probability, the observed churn rate and the count (empty bins dropped).
    A calibrated model has observed ≈ predicted in every bin."""
    y = np.asarray(y).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return pd.DataFrame(
        {
            "bin_low": np.arange(n_bins)[keep] / n_bins,
            "bin_high": (np.arange(n_bins)[keep] + 1) / n_bins,
            "mean_predicted": sum_p[keep] / count[keep],
            "observed_rate": sum_y[keep] / count[keep],
            "count": count[keep],
        }
    )


def calibration_metrics(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, n_bins: int = 10
) -> dict[str, float]:
    """Brier score (mean squared error of the probability), ECE (expected calibration error:
    count-weighted mean |observed − predicted| over `n_bins` equal-width bins, in probability
    points) and log loss. Lower is better for all three."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    table = reliability_table(y, p, n_bins)
    ece = float(
        (table["count"] * (table["observed_rate"] - table["mean_predicted"]).abs()).sum() / len(y)
    )
    return {
        "brier": float(brier_score_loss(y, p)),
        "ece": ece,
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
    }


def fit_calibrator(
    method: str, y: np.ndarray, p: np.ndarray
) -> LogisticRegression | IsotonicRegression | None:
    """A calibration map fitted on out-of-fold probabilities: "sigmoid" (Platt: a logistic
    regression on the log-odds), "isotonic" (monotone step function) or "none" (None)."""
    if method == "none":
        return None
    if method == "sigmoid":
        return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    raise ValueError(f"unknown calibration {method!r}; choose from {CALIBRATIONS}")


def apply_calibrator(
    calibrator: LogisticRegression | IsotonicRegression | None, p: np.ndarray
) -> np.ndarray:
    """Calibrated probabilities from raw ones with a map from `fit_calibrator`."""
    if calibrator is None:
        return p
    if isinstance(calibrator, LogisticRegression):
        return calibrator.predict_proba(_logit(p)[:, None])[:, 1]
    return calibrator.predict(p)


def calibration_report(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, seed: int, folds: int = 5
) -> pd.DataFrame:
    """Brier, ECE and log loss of out-of-fold probabilities `p` as they are ("none") and after
    sigmoid or isotonic calibration. The calibration maps are cross-fitted (fitted on the other
    folds of p, applied to this one), so the comparison is honest. Index: method."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    rows = {}
    for method in CALIBRATIONS:
        q = np.empty_like(p)
        for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed).split(p, y):
            q[b] = apply_calibrator(fit_calibrator(method, y[a], p[a]), p[b])
        rows[method] = calibration_metrics(y, q)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def choose_calibration(report: pd.DataFrame) -> str:
    """ "none" unless sigmoid or isotonic lowers the cross-fitted Brier score by at least
    `CALIBRATION_MIN_GAIN` (relative); then the better of the two."""
    base = report.loc["none", "brier"]
    best = report["brier"].idxmin()
    if best != "none" and report.loc[best, "brier"] <= base * (1 - CALIBRATION_MIN_GAIN):
        return str(best)
    return "none"


# --- compiled inference -----------------------------------------------------------------------

#: Raw scores of the compiled trees may differ from LightGBM's only by floating-point summation
#: order; anything larger means the compiled code is wrong, and LightGBM is used instead.
COMPILED_TOLERANCE = 1e-9
_COMPILED: weakref.WeakKeyDictionary[lgb.Booster, Any] = weakref.WeakKeyDictionary()


def _compile(booster: lgb.Booster) -> Any:
    """The booster as native code with lleaves (the same trees and thresholds, compiled by
    LLVM: ~4x faster than LightGBM's own predict on one core). Compiling takes about a second,
    so the object file is cached on disk per model text and machine (CPU, library versions)."""
    from importlib.metadata import version

    import lleaves
    import llvmlite.binding as llvm

    text = booster.model_to_string()
    cpu = f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"
    machine = f"lleaves {version('lleaves')} llvmlite {version('llvmlite')} {cpu}"
    key = hashlib.sha256(f"{machine}\n{text}".encode()).hexdigest()[:32]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"churn-{key}.o"
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_text(text)
        model = lleaves.Model(model_file=str(model_file))
        if target.exists():
            model.compile(cache=str(target), raw_score=True)
            with contextlib.suppress(OSError):
                os.utime(target)  # "recently used": what `_prune_cache` keeps
        else:  # compile beside the target, then move into place: concurrent workers are safe
            partial = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
            model.compile(cache=str(partial), raw_score=True)
            os.replace(partial, target)
            _prune_cache(folder)
    return model


#: Compiled models kept in the cache folder: the most recently used ones (one per trained
#: model and machine, ~1 MB each); older ones are deleted when a new one is written.
CACHE_KEEP = 20
_PARTIAL_MAX_AGE = 3600.0  # s: a partial file older than this is left over from a crash


def _prune_cache(folder: Path, keep: int = CACHE_KEEP) -> None:
    """Delete all but the `keep` most recently used compiled models in `folder`, and partial
    files left by interrupted compilations; files that vanish meanwhile are skipped."""
    entries = []
    for path in folder.glob("churn-*.o"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime, path))
    entries.sort(reverse=True)
    stale = [path for _, path in entries[keep:]]
    now = time.time()
    for path in folder.glob(".churn-*.tmp"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _PARTIAL_MAX_AGE:
                stale.append(path)
    for path in stale:
        with contextlib.suppress(OSError):
            path.unlink()
    if stale:
        logger.info("removed %d old compiled models from %s", len(stale), folder)


def compiled_booster(booster: lgb.Booster, probe: np.ndarray) -> Any | None:
    """The compiled booster (see `_compile`), built once per booster and process and checked
    against LightGBM on `probe` (a few model-input rows); None when lleaves is unavailable or
    disagrees, so that the caller keeps LightGBM's own predict."""
    if booster in _COMPILED:
        return _COMPILED[booster]
    model = None
    try:
        model = _compile(booster)
        want = booster.predict(probe, raw_score=True, num_threads=1)
        got = model.predict(probe, n_jobs=1)
        if not np.allclose(got, want, rtol=0.0, atol=COMPILED_TOLERANCE):
            logger.warning("compiled churn model disagrees with LightGBM; using LightGBM")
            model = None
    except Exception as err:  # noqa: BLE001 - any failure means: score with LightGBM itself
        logger.warning("churn model not compiled (%s); using LightGBM", err)
        model = None
    _COMPILED[booster] = model
    return model


@functools.cache
def _levels(column: str) -> pa.Array:
    """A categorical feature's levels in code order, as the arrow value set of `_matrix`."""
    # large_string, as the "str" text it is looked up in: no cast per call
    return pa.array(list(CATEGORY_DTYPES[column].categories), pa.large_string())


_REASON_TEXT: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _reason_text(model: ChurnModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """The fixed text of a fitted model's reasons, built once per model: feature names, the
    text before each feature's value ("Credit_Limit "), after it (" (median 4549): "), and the
    category levels of categorical features by feature position. Cached per model and fit."""
    fitted = (model.feature_names_, model.medians_, model.formats_)
    cached = _REASON_TEXT.get(model)
    if cached is not None and all(a is b for a, b in zip(cached[0], fitted, strict=True)):
        return cached[1]  # built from this very fit (a refit makes new attributes)
    names = model.feature_names_
    closers = []
    for name in names:
        if name in CATEGORY_DTYPES:
            closers.append(f" (most common {model.medians_[name]}): ")
        else:
            closers.append(f" (median {model.formats_[name] % model.medians_[name]}): ")
    built = (
        np.array(names, dtype=object),
        np.array([f"{name} " for name in names], dtype=object),
        np.array(closers, dtype=object),
        {
            i: np.array(CATEGORY_DTYPES[c].categories, dtype=object)
            for i, c in enumerate(names)
            if c in CATEGORY_DTYPES
        },
    )
    _REASON_TEXT[model] = (fitted, built)
    return built


# --- the model --------------------------------------------------------------------------------


def _format_for(name: str, median: float) -> str:
    """printf format for showing a feature's value in a reason."""
    if name in schema.INTEGERS or name in ("Products_x_Inactive", "Contacts_x_Inactive"):
        return "%.0f"
    magnitude = abs(median) if np.isfinite(median) else 0.0
    if magnitude >= 100:
        return "%.0f"
    if magnitude >= 10:
        return "%.1f"
    return "%.2f"


class ChurnModel(ClassifierMixin, BaseEstimator):
    """The stage-1 churn model: LightGBM on `FeatureBuilder` features, an optional calibration
    map and a decision threshold, all chosen on out-of-fold predictions of the training data.

    Parameters
    ----------
    params: LightGBM hyper-parameters (default `TUNED_PARAMS`).
    engineered: engineered features to add (default `KEPT_ENGINEERED`).
    calibration: "auto" (decide by `calibration_report`), "none", "sigmoid" or "isotonic".
    threshold_rule: "f1" (max F1) or "cost" (needs `cost_fp` and `value_missed`).
    cost_fp, value_missed: money per customer, for the cost rule (see `choose_threshold`).
    cv_folds: folds for the out-of-fold predictions behind calibration and threshold.
    n_jobs: processes for the out-of-fold fits and threads for batch prediction.
    random_state: the one seed (use `ChurnModel.from_settings(settings)`).

    Fitted attributes: `features_` (FeatureBuilder), `estimator_` (LGBMClassifier fitted on
    all of X), `calibration_`, `calibrator_`, `threshold_`, `feature_names_` (model inputs),
    `medians_` / `formats_` (population reference for reasons), `metrics_` (CV figures, JSON-able),
    `classes_`, `n_features_in_`, `feature_names_in_`.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        engineered: Sequence[str] = KEPT_ENGINEERED,
        calibration: str = "auto",
        threshold_rule: str = "f1",
        cost_fp: float | None = None,
        value_missed: float | None = None,
        cv_folds: int = 5,
        n_jobs: int = 2,
        random_state: int = 42,
    ) -> None:
        self.params = params
        self.engineered = engineered
        self.calibration = calibration
        self.threshold_rule = threshold_rule
        self.cost_fp = cost_fp
        self.value_missed = value_missed
        self.cv_folds = cv_folds
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ChurnModel:
        """A model seeded and folded by `settings` (seed, cv_folds); other parameters as given."""
        return cls(random_state=settings.seed, cv_folds=settings.cv_folds, **kwargs)

    # fitting ---------------------------------------------------------------------------------

    def _learner(self) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(**lgbm_params(self.params, self.random_state, n_jobs=1))

    def _folds(self, F: pd.DataFrame, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.random_state)
        return list(cv.split(F, y))

    def _out_of_fold(
        self, F: pd.DataFrame, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray:
        return cross_val_predict(
            self._learner(), F, y, cv=folds, method="predict_proba", n_jobs=self.n_jobs
        )[:, 1]

    def out_of_fold_proba(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> np.ndarray:
        """Uncalibrated out-of-fold P(churn) for (X, y) with this configuration and the same
        seeded folds `fit` uses: the data behind the reliability and threshold charts (feed it
        to `reliability_table`, `calibration_report`, `threshold_table`). Needs no fitting."""
        y = np.asarray(y).astype(np.int64)
        F = FeatureBuilder(engineered=tuple(self.engineered)).fit(X).transform(X)
        return self._out_of_fold(F, y, self._folds(F, y))

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> ChurnModel:
        """Fit on clean customers X (extra columns ignored) and 0/1 churn labels y."""
        if self.calibration not in (*CALIBRATIONS, "auto"):
            raise ValueError(f"unknown calibration {self.calibration!r}")
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ValueError(f"unknown threshold rule {self.threshold_rule!r}")
        y = np.asarray(y).astype(np.int64)
        if len(y) != len(X) or not set(np.unique(y)) == {0, 1}:
            raise ValueError("y must hold one 0/1 churn label per customer, with both classes")
        start = time.perf_counter()
        self.features_ = FeatureBuilder(engineered=tuple(self.engineered)).fit(X)
        F = self.features_.transform(X)
        self.feature_names_ = [str(c) for c in F.columns]

        # Out-of-fold probabilities: the honest basis for calibration and the threshold.
        folds = self._folds(F, y)
        p_oof = self._out_of_fold(F, y, folds)
        report = calibration_report(y, p_oof, self.random_state, self.cv_folds)
        self.calibration_ = (
            choose_calibration(report) if self.calibration == "auto" else self.calibration
        )
        self.calibrator_ = fit_calibrator(self.calibration_, y, p_oof)
        p_cal = apply_calibrator(self.calibrator_, p_oof)
        self.threshold_ = choose_threshold(
            y, p_cal, self.threshold_rule, cost_fp=self.cost_fp, value_missed=self.value_missed
        )

        self.estimator_ = self._learner().fit(F, y)
        self.estimator_.set_params(n_jobs=self.n_jobs)

        self.medians_: dict[str, float | str] = {}
        self.formats_: dict[str, str] = {}
        for c in F.columns:
            if isinstance(F[c].dtype, pd.CategoricalDtype):
                self.medians_[c] = str(F[c].mode().iloc[0])
                self.formats_[c] = "%s"
            else:
                med = float(F[c].median())
                self.medians_[c] = med
                self.formats_[c] = _format_for(c, med)

        per_fold = [metric_set(y[b], p_cal[b], self.threshold_) for _, b in folds]
        self.metrics_: dict[str, Any] = {
            "cv": {
                m: {
                    "mean": float(np.mean([f[m] for f in per_fold])),
                    "sd": float(np.std([f[m] for f in per_fold], ddof=1)),
                }
                for m in per_fold[0]
            },
            "cv_folds": self.cv_folds,
            "threshold": float(self.threshold_),
            "threshold_rule": self.threshold_rule,
            "calibration": self.calibration_,
            "calibration_report": {
                m: {k: float(v) for k, v in row.items()} for m, row in report.iterrows()
            },
            "fit_seconds": round(time.perf_counter() - start, 2),
        }
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(FEATURES)
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        logger.info(
            "fitted churn model on %d customers: CV PR-AUC %.4f, threshold %.3f (%s), "
            "calibration %s",
            len(y),
            self.metrics_["cv"]["pr_auc"]["mean"],
            self.threshold_,
            self.threshold_rule,
            self.calibration_,
        )
        return self

    # scoring ---------------------------------------------------------------------------------

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """`features_.matrix(X)`; for the raw record with arrow text categories (what
        `validate` returns) the category codes come from one arrow lookup per column instead
        of Python strings per row (same codes: schema order, -1 → NaN for anything else), and
        each column is read once as an array (no Series: cheap for one customer)."""
        check_is_fitted(self, "estimator_")
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == len(self.feature_names_):
            return X  # already the model input (see `model_matrix`)
        if not isinstance(X, pd.DataFrame) or self.features_.engineered:
            return self.features_.matrix(X)
        try:
            cols = schema.column_arrays(X, FEATURES)
        except KeyError:  # a feature is missing: the general path says which
            return self.features_.matrix(X)
        if not all(isinstance(cols[c], pd.arrays.ArrowStringArray) for c in CATEGORY_DTYPES):
            return self.features_.matrix(X)
        out = np.empty((len(X), len(FEATURES)))
        for j, c in enumerate(FEATURES):
            if c in CATEGORY_DTYPES:
                codes = pc.index_in(pa.array(cols[c]), value_set=_levels(c))  # null: unknown
                out[:, j] = codes.to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                out[:, j] = np.asarray(cols[c], dtype=np.float64)
        return out

    def model_matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The model input for customers X (float64, categoricals as codes). Pass it instead of
        X to `predict_proba` or `reason_columns` to build it once for both."""
        return self._matrix(X)

    def _threads(self, n: int) -> int:
        # Threads cost more than they save on a handful of customers (single-customer latency).
        return 1 if n < 1000 else max(1, self.n_jobs)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds of churn from the boosted trees (before calibration), shape (n,)."""
        return self._raw(self._matrix(X))

    def _raw(self, M: np.ndarray) -> np.ndarray:
        """Raw log-odds for a model-input matrix: compiled trees when available (equal to
        LightGBM's to ~1e-14, by summation order only), else LightGBM's predict."""
        booster = self.estimator_.booster_
        compiled = compiled_booster(booster, M[:64]) if len(M) else None
        if compiled is not None:
            return compiled.predict(np.ascontiguousarray(M), n_jobs=self._threads(len(M)))
        return booster.predict(M, raw_score=True, num_threads=self._threads(len(M)))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probabilities (n, 2): columns P(stays), P(churns), calibrated if `calibration_`.
        X: customers, or their `model_matrix`."""
        raw = self.decision_function(X)
        p = apply_calibrator(self.calibrator_, 1.0 / (1.0 + np.exp(-raw)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where P(churn) ≥ `threshold_`, else 0."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(np.int64)

    # explanations ----------------------------------------------------------------------------

    def _contributions(self, M: np.ndarray) -> np.ndarray:
        return self.estimator_.booster_.predict(
            M, pred_contrib=True, num_threads=self._threads(len(M))
        )

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-customer, per-feature contributions to the raw log-odds of churn, plus "bias"
        (the same for everyone): exact path-dependent TreeSHAP values (LightGBM's
        `pred_contrib`), so each row sums exactly to `decision_function`. They explain the
        score before calibration; calibration is monotone, so directions carry over."""
        C = self._contributions(self._matrix(X))
        return pd.DataFrame(C, index=X.index, columns=[*self.feature_names_, "bias"])

    def reasons(self, X: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """The `top` features that move each customer's score most (by |TreeSHAP value|),
        strongest first.

        Columns per rank k: `reason_k` (text such as "Total_Trans_Ct 28 (median 67): raises
        risk"; categoricals show the most common value instead of a median),
        `reason_k_feature` and `reason_k_contribution` (log-odds). Vectorised: one TreeSHAP
        pass in C++ plus string work on n × top cells (≈ 10,000 customers/s on 2 cores).
        Index: X's.
        """
        return pd.DataFrame(self.reason_columns(X, top), index=X.index, copy=False)

    def reason_columns(self, X: pd.DataFrame | np.ndarray, top: int = 3) -> dict[str, Any]:
        """`reasons` as a dict of column arrays (text columns "str"), in its column order;
        X: customers or their `model_matrix`."""
        M = self._matrix(X)
        C = self._contributions(M)[:, :-1]
        n, k_all = C.shape
        top = int(min(max(top, 1), k_all))
        order = np.argsort(-np.abs(C), axis=1, kind="stable")[:, :top]
        rows = np.arange(n)
        names, openers, closers, cat_levels = _reason_text(self)
        texts, features, contributions = [], [], []
        for k in range(top):
            idx = order[:, k]
            contrib = C[rows, idx]
            values = M[rows, idx]
            shown = np.empty(n, dtype=object)
            for f in np.unique(idx):
                mask = idx == f
                v = values[mask]
                missing = np.isnan(v)
                if f in cat_levels:
                    s = np.full(v.shape, "missing", dtype=object)
                    s[~missing] = cat_levels[f][v[~missing].astype(np.int64)]
                else:
                    s = np.char.mod(self.formats_[self.feature_names_[f]], v).astype(object)
                    s[missing] = "missing"
                shown[mask] = s
            direction = np.where(
                contrib > 0, "raises risk", np.where(contrib < 0, "lowers risk", "no effect")
            ).astype(object)
            # "<feature> " + value + " (median …): " + direction
            texts.append(openers[idx] + shown + closers[idx] + direction)
            features.append(names[idx])
            contributions.append(contrib)
        # one "str" array for every rank (slices share it): fewer conversions for one customer
        text = pd.array(np.concatenate(texts), dtype=_STR)
        feature = pd.array(np.concatenate(features), dtype=_STR)
        out: dict[str, Any] = {}
        for k in range(top):
            out[f"reason_{k + 1}"] = text[k * n : (k + 1) * n]
            out[f"reason_{k + 1}_feature"] = feature[k * n : (k + 1) * n]
            out[f"reason_{k + 1}_contribution"] = contributions[k]
        return out

    def global_importance(self, X: pd.DataFrame) -> pd.DataFrame:
        """Mean |TreeSHAP value| per feature over the customers in X (log-odds), its share of
        the total, and the mean signed value; sorted, most important first."""
        return global_importance(self.contributions(X))


def global_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Global importance table from per-customer contributions (the "bias" column is ignored)."""
    C = contributions.drop(columns=["bias"], errors="ignore")
    mean_abs = C.abs().mean()
    return pd.DataFrame(
        {
            "feature": C.columns,
            "mean_abs_contribution": mean_abs.to_numpy(),
            "share": (mean_abs / mean_abs.sum()).to_numpy(),
            "mean_contribution": C.mean().to_numpy(),
        }
    ).sort_values("mean_abs_contribution", ascending=False, ignore_index=True)


# --- the whole stage --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainOptions:
    """How much of stage 1 `train_churn` runs. The defaults do everything (several minutes on
    2 cores); `TrainOptions.fast()` skips comparison, feature evidence and search and uses the
    recorded choices (`KEPT_ENGINEERED`, `TUNED_PARAMS`), for CI (tens of seconds)."""

    compare: bool = True  # cross-validated comparison of all candidates
    select_features: bool = True  # feature evidence, then keep what helps (select_engineered)
    search_iter: int = 60  # random-search draws for LightGBM; 0 = use TUNED_PARAMS
    calibration: str = "auto"  # "auto", "none", "sigmoid" or "isotonic"
    threshold_rule: str = "f1"  # "f1" or "cost"
    cost_fp: float | None = None  # cost of contacting a customer who would have stayed
    value_missed: float | None = None  # value lost per churner the model misses
    n_jobs: int = 2  # parallel CV fits (processes)

    @classmethod
    def fast(cls, **overrides: Any) -> TrainOptions:
        """The CI configuration: recorded choices, no comparison, no search."""
        return cls(**{"compare": False, "select_features": False, "search_iter": 0, **overrides})


def evaluate(model: ChurnModel, X: pd.DataFrame, y: np.ndarray | pd.Series) -> dict[str, float]:
    """roc_auc, pr_auc, and f1 / precision / recall at `model.threshold_` on customers X."""
    y = np.asarray(y).astype(np.int64)
    return metric_set(y, model.predict_proba(X)[:, 1], model.threshold_)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def train_churn(
    df: pd.DataFrame, settings: Settings, options: TrainOptions | None = None
) -> tuple[ChurnModel, dict[str, Any]]:
    """Stage 1 end to end on a clean customer frame (with `churn`).

    Split (`nba.features.split`) → [candidate comparison] → [feature evidence and selection]
    → [random search] → `ChurnModel` fit on the training split (out-of-fold calibration and
    threshold) → metrics on the held-out split. Returns (fitted model, JSON-able metrics: the
    held-out roc_auc, pr_auc, f1, precision, recall, threshold, the CV mean ± sd of the final
    configuration, and the tables of whichever optional steps ran, as lists of records).
    """
    options = options or TrainOptions()
    start = time.perf_counter()
    train, test = split(df, settings)
    X_train, y_train = _xy(train)
    X_test, y_test = _xy(test)
    logger.info(
        "stage 1 on %d training / %d held-out customers (%.1f %% churn)",
        len(train),
        len(test),
        100 * y_train.mean(),
    )
    extra: dict[str, Any] = {}
    if options.compare:
        table = compare_candidates(X_train, y_train, settings, n_jobs=options.n_jobs)
        extra["candidates"] = _records(table)
    params: dict[str, Any] = dict(TUNED_PARAMS)
    engineered: tuple[str, ...] = tuple(KEPT_ENGINEERED)
    if options.select_features:
        evidence = feature_evidence(X_train, y_train, settings, n_jobs=options.n_jobs)
        engineered = select_engineered(evidence)
        extra["feature_evidence"] = _records(evidence)
    if options.search_iter > 0:
        params, results = tune(
            X_train,
            y_train,
            settings,
            n_iter=options.search_iter,
            engineered=engineered,
            n_jobs=options.n_jobs,
        )
        extra["tuning"] = {
            "n_iter": options.search_iter,
            "scoring": "pr_auc",
            "rule": "cheapest within one standard error of the best PR-AUC",
            "chosen_pr_auc": float(results.loc[results["chosen"], "pr_auc_mean"].iloc[0]),
            "best_pr_auc": float(results.loc[0, "pr_auc_mean"]),
            "best_pr_auc_sd": float(results.loc[0, "pr_auc_sd"]),
        }
    model = ChurnModel.from_settings(
        settings,
        params=params,
        engineered=engineered,
        calibration=options.calibration,
        threshold_rule=options.threshold_rule,
        cost_fp=options.cost_fp,
        value_missed=options.value_missed,
        n_jobs=options.n_jobs,
    )
    fit_start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - fit_start
    held_out = evaluate(model, X_test, y_test)
    metrics: dict[str, Any] = {
        **held_out,
        "threshold": float(model.threshold_),
        "threshold_rule": options.threshold_rule,
        "calibration": model.calibration_,
        "model": CHOSEN,
        "params": {k: _plain(v) for k, v in params.items()},
        "engineered": list(engineered),
        "cv": model.metrics_["cv"],
        "cv_folds": settings.cv_folds,
        "calibration_report": model.metrics_["calibration_report"],
        "n_train": len(train),
        "n_test": len(test),
        "churn_rate_test": float(y_test.mean()),
        "fit_seconds": round(fit_seconds, 2),
        "total_seconds": round(time.perf_counter() - start, 2),
        **extra,
    }
    logger.info(
        "held-out: ROC-AUC %.4f, PR-AUC %.4f, F1 %.4f (P %.4f, R %.4f) at %.3f",
        held_out["roc_auc"],
        held_out["pr_auc"],
        held_out["f1"],
        held_out["precision"],
        held_out["recall"],
        model.threshold_,
    )
    return model, metrics
