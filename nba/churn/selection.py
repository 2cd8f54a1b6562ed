"""How stage 1 was chosen: candidate models, cross-validated comparison, feature evidence,
tuning and the threshold study; and `train_churn`, the whole stage from a labelled frame to a
fitted `ChurnModel` with its held-out metrics.

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
(`feature_evidence`), so none is used. A sigmoid map fitted on out-of-fold
probabilities (`DEFAULT_CALIBRATION`) lowers the expected calibration error; `bench/stage1_cv.py`
chose it by cross-validation on the training split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from nba.churn.calibration import DEFAULT_CALIBRATION
from nba.churn.model import CHOSEN, CHURN_FEATURE_SETS, TUNED_PARAMS, ChurnModel, lgbm_params
from nba.config import Settings
from nba.data import schema
from nba.evaluation import metric_set
from nba.features import ENGINEERED, KEPT_ENGINEERED, FeatureBuilder, split

logger = logging.getLogger(__name__)

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


def make_candidate(
    name: str,
    seed: int,
    engineered: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    exclude: Sequence[str] = (),
) -> Pipeline:
    """An unfitted pipeline `FeatureBuilder → [encoder] → learner` for candidate `name`;
    `exclude`: record columns it never sees (a feature variant's, the protected attributes).

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
    builder = FeatureBuilder(engineered=tuple(engineered), exclude=tuple(exclude))
    return Pipeline([("features", builder), *steps])


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


def feature_set_comparison(
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    settings: Settings,
    *,
    sets: dict[str, tuple[str, ...]] | None = None,
    reference: str = "full",
    params: dict[str, Any] | None = None,
    repeats: int = 2,
    level: float = 0.95,
    n_jobs: int = 2,
) -> pd.DataFrame:
    """How much accuracy each feature variant keeps: the chosen learner (LightGBM with `params`,
    default `TUNED_PARAMS`) cross-validated on (X, y), the training split, once per variant of
    `sets` (name -> record columns left out; default `CHURN_FEATURE_SETS`), on the same
    `repeats` × `settings.cv_folds` seeded folds, so the differences are paired.

    Tidy frame, one row per (variant, metric) for ROC-AUC and PR-AUC: `mean` with its `level`
    t interval over folds (`low`, `high`), `delta` (variant − `reference`, paired per fold) with
    its interval (`delta_low`, `delta_high`), `retained` (the share of the reference's lift over
    a random score the variant keeps: (mean − chance) / (reference − chance), chance being 0.5
    for ROC-AUC and the churn rate for PR-AUC), `columns` (inputs used) and `folds`. Folds
    overlap between repeats, so the intervals are indicative (a little narrow)."""
    from scipy.stats import t as student

    y = np.asarray(y).astype(np.int64)
    sets = dict(CHURN_FEATURE_SETS if sets is None else sets)
    if reference not in sets:
        raise ValueError(f"the reference variant {reference!r} is not among {', '.join(sets)}")
    params = TUNED_PARAMS if params is None else params
    metrics = ("roc_auc", "pr_auc")
    scores: dict[str, dict[str, list[float]]] = {v: {m: [] for m in metrics} for v in sets}
    widths: dict[str, int] = {}
    for r in range(repeats):
        cv = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed + r)
        for variant, left_out in sets.items():
            model = Pipeline(
                [
                    ("features", FeatureBuilder(KEPT_ENGINEERED, tuple(left_out))),
                    ("model", lgb.LGBMClassifier(**lgbm_params(params, settings.seed))),
                ]
            )
            widths[variant] = len(FeatureBuilder((), tuple(left_out)).inputs)
            res = cross_validate(
                model,
                X,
                y,
                cv=cv,
                scoring={"roc_auc": "roc_auc", "pr_auc": "average_precision"},
                n_jobs=n_jobs,
            )
            for m in metrics:
                scores[variant][m] += list(res[f"test_{m}"])
        logger.info("feature sets: repeat %d of %d done", r + 1, repeats)
    chance = {"roc_auc": 0.5, "pr_auc": float(y.mean())}

    def interval(v: np.ndarray) -> tuple[float, float]:
        half = student.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
        return float(v.mean() - half), float(v.mean() + half)

    rows = []
    for variant in sets:
        for m in metrics:
            v = np.asarray(scores[variant][m])
            ref = np.asarray(scores[reference][m])
            d = v - ref
            low, high = interval(v)
            d_low, d_high = interval(d) if variant != reference else (0.0, 0.0)
            rows.append(
                {
                    "variant": variant,
                    "metric": m,
                    "mean": float(v.mean()),
                    "low": low,
                    "high": high,
                    "delta": float(d.mean()),
                    "delta_low": d_low,
                    "delta_high": d_high,
                    "retained": float((v.mean() - chance[m]) / (ref.mean() - chance[m])),
                    "columns": widths[variant],
                    "folds": len(v),
                }
            )
    return pd.DataFrame(rows)


def feature_set_summary(table: pd.DataFrame) -> pd.DataFrame:
    """`feature_set_comparison`'s tidy table as one row per variant (in its order), for people:
    inputs, ROC-AUC and PR-AUC with their intervals as text ("0.968 (0.962-0.974)"), the paired
    PR-AUC change against the reference with its interval, and the share of the reference's
    PR-AUC lift over a random score the variant keeps."""

    def shown(row: pd.Series, key: str, signed: bool = False) -> str:
        fmt = "{:+.3f}" if signed else "{:.3f}"
        low, high = ("delta_low", "delta_high") if key == "delta" else ("low", "high")
        return f"{fmt.format(row[key])} ({fmt.format(row[low])} to {fmt.format(row[high])})"

    wide = table.set_index(["variant", "metric"])
    rows = {}
    for variant in dict.fromkeys(table["variant"]):
        roc, pr = wide.loc[(variant, "roc_auc")], wide.loc[(variant, "pr_auc")]
        rows[variant] = {
            "inputs": int(pr["columns"]),
            "ROC-AUC": shown(roc, "mean"),
            "PR-AUC": shown(pr, "mean"),
            "PR-AUC change": shown(pr, "delta", signed=True),
            "PR-AUC lift kept": f"{pr['retained']:.0%}",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


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


# --- the threshold study ------------------------------------------------------------------------


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


# --- the whole stage --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainOptions:
    """How much of stage 1 `train_churn` runs. The defaults do everything (several minutes on
    2 cores); `TrainOptions.fast()` skips comparison, feature evidence and search and uses the
    recorded choices (`KEPT_ENGINEERED`, `TUNED_PARAMS`), for CI (tens of seconds)."""

    compare: bool = True  # cross-validated comparison of all candidates
    select_features: bool = True  # feature evidence, then keep what helps (select_engineered)
    search_iter: int = 60  # random-search draws for LightGBM; 0 = use TUNED_PARAMS
    calibration: str = DEFAULT_CALIBRATION  # "sigmoid", "none", "isotonic" or "auto"
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
