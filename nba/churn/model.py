"""Stage 1 as it ships: the churn model, its scoring path and its per-customer reasons.

`ChurnModel` is LightGBM with the tuned parameters (`TUNED_PARAMS`) on the raw customer record,
with a calibration map and a decision threshold chosen on out-of-fold predictions of the
training data (`nba.churn.calibration`). Scoring reads the record's columns straight into the
model's input matrix and runs the trees compiled to native code (`nba.churn.compiled`), falling
back to LightGBM's own predict. `reasons` turns exact TreeSHAP values (LightGBM's
`pred_contrib=True`) into sentences such as "Transactions in 12 months 28 (below the typical 67): for this
customer it raises risk".

How this configuration was chosen (candidates, cross-validated comparison, feature evidence,
tuning, the threshold study) is `nba.churn.selection`.
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from nba.churn.calibration import (
    CALIBRATIONS,
    DEFAULT_CALIBRATION,
    THRESHOLD_RULES,
    apply_calibrator,
    calibration_report,
    choose_calibration,
    choose_threshold,
    fit_calibrator,
)
from nba.churn.compiled import compiled_booster
from nba.config import Settings
from nba.data import schema
from nba.evaluation import metric_set
from nba.features import CATEGORY_DTYPES, FEATURES, KEPT_ENGINEERED, FeatureBuilder

logger = logging.getLogger(__name__)

#: pandas' "str" dtype, resolved once (parsing the name costs more than a one-row column).
_STR = pd.api.types.pandas_dtype("str")

#: The learner `ChurnModel` uses (chosen by `nba.churn.selection.compare_candidates`).
CHOSEN = "lightgbm"

#: Rows from which the compiled trees predict with `n_jobs` threads (see `ChurnModel._raw`):
#: measured here, two threads cost ~0.2-0.3 ms more CPU per 1,000-row call than one, and
#: save under a millisecond of wall time below this size.
PREDICT_THREADED = 16_384

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


def lgbm_params(params: dict[str, Any] | None, seed: int, n_jobs: int = 1) -> dict[str, Any]:
    """Full LightGBM keyword arguments: the fixed settings, `params` (default `TUNED_PARAMS`;
    pass `{}` for the library defaults), the seed and the thread count."""
    chosen = TUNED_PARAMS if params is None else params
    return {**LGBM_FIXED, **chosen, "random_state": seed, "n_jobs": n_jobs}


#: The customer record's feature columns grouped by *when* their behaviour happens, relative to
#: the snapshot the label is read at (data README, Kaggle's own column descriptions). The data is
#: one snapshot with no dates, so a churner's last months lie inside the 12-month window: what
#: happens there may be the leaving itself rather than a warning of it.
#: - profile: who the customer is and what the bank gave them; known long before any decision.
PROFILE: tuple[str, ...] = (
    "Customer_Age",
    "Gender",
    "Dependent_count",
    "Education_Level",
    "Marital_Status",
    "Income_Category",
    "Card_Category",
    "Months_on_book",
    "Total_Relationship_Count",
    "Credit_Limit",
)
#: - trend: Q4 against Q1 of the window (amount and count of transactions): a decline that can
#:   start before leaving, but whose last quarter may overlap it.
TREND: tuple[str, ...] = ("Total_Amt_Chng_Q4_Q1", "Total_Ct_Chng_Q4_Q1")
#: - window: totals and counts over the last 12 months (spend, transactions, inactive months,
#:   contacts): they include a leaver's final months, when spend stops and calls are made.
WINDOW_12M: tuple[str, ...] = (
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
)
#: - balances: the revolving balance and what derives from it (open to buy = limit - balance;
#:   utilisation = balance / limit, averaged over the 12 months). A customer closing a card pays
#:   the balance down first, so a low balance may coincide with leaving; the three go together
#:   (any two reveal the third).
BALANCES: tuple[str, ...] = ("Total_Revolving_Bal", "Avg_Open_To_Buy", "Avg_Utilization_Ratio")

#: The churn model's feature variants (the setting `churn_features`): name -> record columns
#: left out. "full" uses the whole record (the most accurate score, but partly a description of
#: leaving); "trend" keeps the static profile and the Q4/Q1 trend only; "early_warning" keeps
#: the static profile only: no behaviour of the 12-month window at all. Notebook 04 measures
#: what each costs in accuracy (`nba.churn.feature_set_comparison`).
CHURN_FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "full": (),
    "trend": (*WINDOW_12M, *BALANCES),
    "early_warning": (*WINDOW_12M, *BALANCES, *TREND),
}


def feature_set_exclusions(name: str) -> tuple[str, ...]:
    """The record columns feature variant `name` leaves out (`CHURN_FEATURE_SETS`); an unknown
    name is a `ValueError` naming the choices."""
    if name not in CHURN_FEATURE_SETS:
        raise ValueError(
            f"unknown churn feature set {name!r}; choose from {', '.join(CHURN_FEATURE_SETS)}"
        )
    return CHURN_FEATURE_SETS[name]


@functools.cache
def _levels(column: str) -> pa.Array:
    """A categorical feature's levels in code order, as the arrow value set of `_matrix`."""
    # large_string, as the "str" text it is looked up in: no cast per call
    return pa.array(list(CATEGORY_DTYPES[column].categories), pa.large_string())


_REASON_TEXT: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()


#: What a business user reads for each feature: a friendly name and its unit ("$" before money,
#: "%" after shares). The app's form uses the same names.
FRIENDLY: dict[str, tuple[str, str]] = {
    "Customer_Age": ("Age", " years"),
    "Gender": ("Gender", ""),
    "Dependent_count": ("Dependants", ""),
    "Education_Level": ("Education", ""),
    "Marital_Status": ("Marital status", ""),
    "Income_Category": ("Income band", ""),
    "Card_Category": ("Card", ""),
    "Months_on_book": ("Months as a customer", ""),
    "Total_Relationship_Count": ("Products held", ""),
    "Months_Inactive_12_mon": ("Inactive months in the last 12", ""),
    "Contacts_Count_12_mon": ("Contacts with the bank in the last 12 months", ""),
    "Credit_Limit": ("Credit limit", "$"),
    "Total_Revolving_Bal": ("Revolving balance", "$"),
    "Avg_Open_To_Buy": ("Open to buy", "$"),
    "Total_Amt_Chng_Q4_Q1": ("Spend change Q4 vs Q1 (ratio)", ""),
    "Total_Trans_Amt": ("Spend in 12 months", "$"),
    "Total_Trans_Ct": ("Transactions in 12 months", ""),
    "Total_Ct_Chng_Q4_Q1": ("Transaction change Q4 vs Q1 (ratio)", ""),
    "Avg_Utilization_Ratio": ("Utilisation", "%"),
    "Avg_Trans_Amt": ("Average transaction", "$"),
    "Trans_Ct_per_Month_on_Book": ("Transactions per month as a customer", ""),
    "Amt_Ct_Chng_Ratio": ("Spend change / transaction change", ""),
    "Amt_x_Ct_Chng": ("Spend change × transaction change", ""),
    "Products_x_Inactive": ("Products × inactive months", ""),
    "Contacts_x_Inactive": ("Contacts × inactive months", ""),
    "Trans_Amt_per_Limit": ("Spend per $ of credit limit", ""),
}


def friendly_value(name: str, values: np.ndarray, fmt: str) -> np.ndarray:
    """Numbers of feature `name` as text with their unit: "$1,283", "27.3%", "43"."""
    unit = FRIENDLY.get(name, (name, ""))[1]
    v = np.asarray(values, dtype=np.float64)
    if unit == "%":
        return np.array([f"{x:.1%}" for x in v], dtype=object)
    if unit == "$":
        return np.array([f"${x:,.0f}" for x in v], dtype=object)
    text = np.char.mod(fmt, v).astype(object)
    return text + unit if unit else text


def _reason_text(model: ChurnModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """The fixed text of a fitted model's reasons, built once per model: feature names, the
    text before each feature's value ("Credit limit "), the typical (median) value as text
    ("$4,549"; the most common level of a category), and the category levels of categorical
    features by feature position. Cached per model and fit."""
    fitted = (model.feature_names_, model.medians_, model.formats_)
    cached = _REASON_TEXT.get(model)
    if cached is not None and all(a is b for a, b in zip(cached[0], fitted, strict=True)):
        return cached[1]  # built from this very fit (a refit makes new attributes)
    names = model.feature_names_
    typical = []
    for name in names:
        if name in CATEGORY_DTYPES:
            typical.append(str(model.medians_[name]))
        else:
            med = np.array([model.medians_[name]])
            typical.append(friendly_value(name, med, model.formats_[name])[0])
    built = (
        np.array(names, dtype=object),
        np.array([f"{FRIENDLY.get(name, (name, ''))[0]} " for name in names], dtype=object),
        np.array(typical, dtype=object),
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
    calibration: "sigmoid" (default, `DEFAULT_CALIBRATION`), "none", "isotonic" or "auto"
        (decide by `calibration_report`).
    threshold_rule: "f1" (max F1) or "cost" (needs `cost_fp` and `value_missed`).
    cost_fp, value_missed: money per customer, for the cost rule (see `choose_threshold`).
    cv_folds: folds for the out-of-fold predictions behind calibration and threshold.
    n_jobs: processes for the out-of-fold fits and threads for batch prediction.
    random_state: the one seed (use `ChurnModel.from_settings(settings)`).
    exclude: record columns the model never sees (the protected attributes, for the model
        credit actions use: `nba.lineage.fit_credit_churn`).
    feature_set: the feature variant, a key of `CHURN_FEATURE_SETS` ("full", "trend",
        "early_warning"): its columns are left out too.

    Fitted attributes: `features_` (FeatureBuilder), `estimator_` (LGBMClassifier fitted on
    all of X), `calibration_`, `calibrator_`, `threshold_`, `feature_names_` (model inputs),
    `medians_` / `formats_` (population reference for reasons), `metrics_` (CV figures, JSON-able),
    `classes_`, `n_features_in_`, `feature_names_in_`.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        engineered: Sequence[str] = KEPT_ENGINEERED,
        calibration: str = DEFAULT_CALIBRATION,
        threshold_rule: str = "f1",
        cost_fp: float | None = None,
        value_missed: float | None = None,
        cv_folds: int = 5,
        n_jobs: int = 2,
        random_state: int = 42,
        exclude: Sequence[str] = (),
        feature_set: str = "full",
    ) -> None:
        self.params = params
        self.engineered = engineered
        self.exclude = exclude
        self.feature_set = feature_set
        self.calibration = calibration
        self.threshold_rule = threshold_rule
        self.cost_fp = cost_fp
        self.value_missed = value_missed
        self.cv_folds = cv_folds
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ChurnModel:
        """A model seeded, folded and given its feature variant by `settings` (seed, cv_folds,
        churn_features); other parameters as given."""
        kwargs.setdefault("feature_set", settings.churn_features)
        return cls(random_state=settings.seed, cv_folds=settings.cv_folds, **kwargs)

    @property
    def excluded_columns(self) -> tuple[str, ...]:
        """The record columns this model never sees (`exclude` and the feature variant's), in
        record order: what a like-for-like baseline must leave out too."""
        return self._excluded

    @property
    def _excluded(self) -> tuple[str, ...]:
        """`exclude` and the columns the feature variant leaves out, in record order (models
        from before `exclude` or `feature_set` lack them)."""
        left_out = {
            *getattr(self, "exclude", ()),
            *feature_set_exclusions(getattr(self, "feature_set", "full")),
        }
        return tuple(c for c in FEATURES if c in left_out)

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
        F = FeatureBuilder(tuple(self.engineered), tuple(self._excluded)).fit(X).transform(X)
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
        self.features_ = FeatureBuilder(tuple(self.engineered), tuple(self._excluded)).fit(X)
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
        inputs = list(self.features_.inputs)  # FEATURES, less any excluded (protected) ones
        try:
            cols = schema.column_arrays(X, inputs)
        except KeyError:  # a feature is missing: the general path says which
            return self.features_.matrix(X)
        if not all(
            isinstance(cols[c], pd.arrays.ArrowStringArray) for c in CATEGORY_DTYPES if c in cols
        ):
            return self.features_.matrix(X)
        out = np.empty((len(X), len(inputs)))
        for j, c in enumerate(inputs):
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

    def _threads(self, n: int, threaded: int = 1000) -> int:
        # Threads cost more than they save on a handful of customers (single-customer latency).
        return 1 if n < threaded else max(1, self.n_jobs)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds of churn from the boosted trees (before calibration), shape (n,)."""
        return self._raw(self._matrix(X))

    def _raw(self, M: np.ndarray) -> np.ndarray:
        """Raw log-odds for a model-input matrix: compiled trees when available (equal to
        LightGBM's to ~1e-14, by summation order only), else LightGBM's predict."""
        booster = self.estimator_.booster_
        compiled = compiled_booster(booster, M[:64]) if len(M) else None
        if compiled is not None:
            # The compiled trees score 1,000 customers in about 1 ms: a thread pool started
            # per call costs more CPU than it saves below PREDICT_THREADED rows (a service
            # request; the server runs its own workers), so those run in the calling thread.
            n_jobs = self._threads(len(M), PREDICT_THREADED)
            return compiled.predict(np.ascontiguousarray(M), n_jobs=n_jobs)
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

        Columns per rank k: `reason_k` (text such as "Transactions in 12 months 28 (below the
        typical 67): for this customer it raises risk": the friendly name and unit, the value
        against the population median, and the sign of this customer's TreeSHAP value;
        categoricals quote the most common level),
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
        names, openers, typical, cat_levels = _reason_text(self)
        texts, features, contributions = [], [], []
        for k in range(top):
            idx = order[:, k]
            contrib = C[rows, idx]
            values = M[rows, idx]
            shown = np.empty(n, dtype=object)
            compared = np.empty(n, dtype=object)
            for f in np.unique(idx):
                mask = idx == f
                v = values[mask]
                missing = np.isnan(v)
                name = self.feature_names_[f]
                if f in cat_levels:
                    s = np.full(v.shape, "missing", dtype=object)
                    s[~missing] = cat_levels[f][v[~missing].astype(np.int64)]
                    same = s == typical[f]
                    c = np.where(same, " (the most common)", " (most common: " + typical[f] + ")")
                else:
                    s = friendly_value(name, v, self.formats_[name])
                    s[missing] = "missing"
                    # compared as shown, so that "67 (typical 67)" never reads as above or below
                    same = s == typical[f]
                    med = float(self.medians_[name])
                    word = np.where(v > med, " (above", " (below")
                    c = np.where(
                        same, " (typical)", word.astype(object) + " the typical " + typical[f] + ")"
                    )
                shown[mask] = s
                compared[mask] = c
            # SHAP's sign is this customer's own: the feature's value moves their score that
            # way compared with the average customer, given the rest of their profile
            direction = np.where(
                contrib > 0,
                ": for this customer it raises risk",
                np.where(contrib < 0, ": for this customer it lowers risk", ": no effect"),
            ).astype(object)
            # "<Feature> " + value + " (below the typical …)" + direction
            texts.append(openers[idx] + shown + compared + direction)
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
