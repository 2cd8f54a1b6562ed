"""How the churn model turns scores into decisions: the calibration map and the threshold rule.

Both are fitted inside `ChurnModel.fit` on out-of-fold probabilities of the training data, so
they ship with the model. Which map is used is chosen where decisions are made:
`decision_calibration_report` judges none, sigmoid and isotonic over the whole base and over
the customers the action engine would contact (`DECISION_CRITERION`), and `choose_calibration`
keeps raw probabilities unless a map earns its place (`MONOTONE_MIN_GAIN`, `CALIBRATION_MIN_GAIN`); notebook 04 records the choice
and its evidence in the lineage record, and the bundle carries both. The committed default
(`DEFAULT_CALIBRATION`) is that rule's pick on the development data. "auto" picks by the
whole-base Brier score of `calibration_report` instead. The threshold maximises F1 of the
attrited class unless the cost rule is asked for. `reliability_table` (equal-width or
equal-count bins, with Wilson intervals) and `calibration_metrics` are what notebooks 04 and
07 report.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold

#: The candidate maps, simplest first (the order `choose_calibration` prefers them in).
CALIBRATIONS = ("none", "sigmoid", "isotonic")
#: The calibration the shipped model uses by default. Chosen where decisions are made: on the
#: training split of the development data (5-fold out-of-fold probabilities, seed 42, the
#: committed parameters), `decision_calibration_report` with the engine's contacts (810
#: customers in the decision region) gave decision-weighted Brier 0.0600 for none, 0.0585 for
#: sigmoid and 0.0585 for isotonic; `choose_calibration` takes sigmoid (2.5 % better than none,
#: isotonic not 2 % better than it). With 3 folds and the pipeline's 10-draw search the gain
#: was about 1 %, still a sigmoid. Over the engine's own contacts raw probabilities averaged
#: 72.7 % against 76.7 % observed, sigmoid 71.9 % against 73.1 %; equal-count ECE over the region
#: 0.049 raw, 0.029 sigmoid. An earlier whole-base study (`bench/stage1_cv.py`: lead over the
#: default learners, then the lowest ECE) chose sigmoid too; isotonic's ties cost PR-AUC there.
DEFAULT_CALIBRATION = "sigmoid"
THRESHOLD_RULES = ("f1", "cost")

#: A map that changes the ranking (isotonic: a step function, whose ties reorder customers and
#: cost PR-AUC) is adopted only when it lowers the cross-fitted criterion of the simpler pick by
#: at least this share: a tiny gain is not worth a ranking-changing step.
CALIBRATION_MIN_GAIN = 0.02
#: A monotone map (sigmoid: ranking, F1 and the flagged set unchanged) replaces raw
#: probabilities when it lowers the cross-fitted criterion by at least this share: above the
#: noise a perfectly calibrated score shows (about 0.05 % of Brier in a 4,000-customer
#: simulation), below the gains measured where the engine decides (1-2.5 % on the data).
MONOTONE_MIN_GAIN = 0.005
_MIN_GAIN = {"sigmoid": MONOTONE_MIN_GAIN, "isotonic": CALIBRATION_MIN_GAIN}

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


# --- calibration ------------------------------------------------------------------------------

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def wilson_interval(
    events: np.ndarray | float, n: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a rate `events` / `n` (arrays or numbers; n > 0): unlike the
    normal approximation it stays inside [0, 1] and is honest for rates near 0 or 1 and for
    small bins, which is where a reliability diagram's bins often are."""
    from scipy.stats import norm

    k = np.asarray(events, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = norm.ppf(0.5 + level / 2)
    rate = k / n
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    # exact ends where the rate is 0 or 1 (the formula gives them up to rounding)
    low = np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def reliability_table(
    y: np.ndarray | pd.Series,
    p: np.ndarray | pd.Series,
    n_bins: int = 10,
    *,
    strategy: str = "uniform",
    level: float = 0.95,
) -> pd.DataFrame:
    """Customers binned by predicted probability: per bin the mean predicted probability, the
    observed churn rate with its `level` Wilson interval (`observed_low`, `observed_high`) and
    the count (empty bins dropped). A calibrated model has observed ≈ predicted in every bin.

    strategy "uniform": equal-width bins over [0, 1] (`bin_low`, `bin_high` are the bin edges);
    "quantile": equal-count bins (customers sorted by probability, split into `n_bins` groups of
    sizes differing by at most one; `bin_low`, `bin_high` are the lowest and highest probability
    in the bin), so that every bin has enough customers to be read and none is dominated by the
    many customers near zero."""
    y = np.asarray(y).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    if strategy == "uniform":
        bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
        low_edge = np.arange(n_bins) / n_bins
        high_edge = (np.arange(n_bins) + 1) / n_bins
    elif strategy == "quantile":
        order = np.argsort(p, kind="stable")
        bins = np.empty(len(p), dtype=np.int64)
        for b, rows in enumerate(np.array_split(order, min(n_bins, max(len(p), 1)))):
            bins[rows] = b
        low_edge = np.full(n_bins, np.nan)
        high_edge = np.full(n_bins, np.nan)
        for b in np.unique(bins):
            low_edge[b], high_edge[b] = p[bins == b].min(), p[bins == b].max()
    else:
        raise ValueError(f"unknown binning strategy {strategy!r}; choose uniform or quantile")
    count = np.bincount(bins, minlength=n_bins)
    keep = count > 0
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    low, high = wilson_interval(sum_y[keep], count[keep], level)
    return pd.DataFrame(
        {
            "bin_low": low_edge[keep],
            "bin_high": high_edge[keep],
            "mean_predicted": sum_p[keep] / count[keep],
            "observed_rate": sum_y[keep] / count[keep],
            "observed_low": low,
            "observed_high": high,
            "count": count[keep],
        }
    )


def _ece(table: pd.DataFrame) -> float:
    """Count-weighted mean |observed − predicted| over the bins of a `reliability_table`."""
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float((table["count"] * gap).sum() / table["count"].sum())


def calibration_metrics(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, n_bins: int = 10
) -> dict[str, float]:
    """Brier score (mean squared error of the probability), ECE (expected calibration error:
    count-weighted mean |observed − predicted| over `n_bins` equal-width bins, in probability
    points) and log loss. Lower is better for all three."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    table = reliability_table(y, p, n_bins)
    ece = _ece(table)
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
        # Platt's formula from the fitted coefficients: what `predict_proba` computes, without
        # its input validation (≈ 0.1 ms, which counts when scoring one customer)
        z = calibrator.coef_[0, 0] * _logit(p) + calibrator.intercept_[0]
        return 1.0 / (1.0 + np.exp(-z))
    return calibrator.predict(p)


def _cross_fitted(y: np.ndarray, p: np.ndarray, folds: int, seed: int) -> dict[str, np.ndarray]:
    """Each method of `CALIBRATIONS` applied to `p` cross-fitted: on each stratified fold, the
    map fitted on the other folds' probabilities, so no customer is calibrated by its own label."""
    mapped = {}
    for method in CALIBRATIONS:
        q = np.empty_like(p)
        for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed).split(p, y):
            q[b] = apply_calibrator(fit_calibrator(method, y[a], p[a]), p[b])
        mapped[method] = q
    return mapped


def calibration_report(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, seed: int, folds: int = 5
) -> pd.DataFrame:
    """Brier, ECE and log loss of out-of-fold probabilities `p` as they are ("none") and after
    sigmoid or isotonic calibration. The calibration maps are cross-fitted (fitted on the other
    folds of p, applied to this one), so the comparison is honest. Index: method."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    rows = {m: calibration_metrics(y, q) for m, q in _cross_fitted(y, p, folds, seed).items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def choose_calibration(report: pd.DataFrame, criterion: str = "brier") -> str:
    """Raw probabilities ("none") unless a map earns its place on the report's cross-fitted
    `criterion` ("brier" for `calibration_report`, "decision_brier" for
    `decision_calibration_report`; lower is better). Maps are tried simplest first (sigmoid,
    then isotonic); each replaces the pick so far only when it lowers the criterion by at least
    its own share: `MONOTONE_MIN_GAIN` for the sigmoid (monotone: ranking and F1 unchanged),
    `CALIBRATION_MIN_GAIN` for isotonic (its ties change the ranking)."""
    pick = "none"
    for method in CALIBRATIONS[1:]:
        if method not in report.index:
            continue
        if report.loc[method, criterion] <= report.loc[pick, criterion] * (1 - _MIN_GAIN[method]):
            pick = method
    return pick


#: What `decision_calibration_report` ranks the maps by, stated once for notebooks and bundles.
DECISION_CRITERION = (
    "decision-weighted Brier score: the mean of the cross-fitted Brier score over the whole "
    "training base and over the decision region (the customers the action engine would contact "
    "with any of the candidate maps' probabilities), so that the few hundred customers where "
    "money is spent weigh as much as the thousands where nothing is decided; a sigmoid map "
    f"replaces raw probabilities when it lowers this by at least {MONOTONE_MIN_GAIN:.1%}, an "
    f"isotonic map (whose ties change the ranking) when it lowers the pick so far by at least "
    f"{CALIBRATION_MIN_GAIN:.0%}"
)


def _equal_count_ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE over `n_bins` equal-count bins (NaN for no customers)."""
    if len(y) == 0:
        return float("nan")
    return _ece(reliability_table(y, p, n_bins, strategy="quantile"))


def decision_calibration_report(
    y: np.ndarray | pd.Series,
    p: np.ndarray | pd.Series,
    contacts: Callable[[np.ndarray], np.ndarray],
    seed: int,
    folds: int = 5,
) -> pd.DataFrame:
    """Calibration where decisions are made: the out-of-fold probabilities `p` as they are
    ("none") and after cross-fitted sigmoid or isotonic maps (as `calibration_report`), judged
    over the whole base and over the decision region.

    `contacts(q)` says, for probabilities q of the same customers, whom the action engine would
    contact (bool array; e.g. `nba.lineage.engine_contacts`). The decision region is the union
    of the customers contacted under each map's probabilities, the same customers for every
    map, so the comparison is paired. Index: method. Columns: brier, ece_equal_count (whole
    base, 10 equal-count bins), contacted (customers the engine contacts with this map),
    region (customers in the decision region), decision_brier_region, decision_ece_region
    (equal-count ECE over the region), predicted_contacted and observed_contacted (mean
    probability and churn rate over this map's own contacts: what the engine's expected value
    assumes against what happened), and decision_brier (`DECISION_CRITERION`)."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    mapped = _cross_fitted(y, p, folds, seed)
    own = {m: np.asarray(contacts(q), dtype=bool) for m, q in mapped.items()}
    region = np.logical_or.reduce(list(own.values()))
    rows = {}
    for method, q in mapped.items():
        c = own[method]
        whole = float(brier_score_loss(y, q))
        in_region = float(np.mean((q[region] - y[region]) ** 2)) if region.any() else whole
        rows[method] = {
            "brier": whole,
            "ece_equal_count": _equal_count_ece(y, q),
            "contacted": int(c.sum()),
            "region": int(region.sum()),
            "decision_brier_region": in_region,
            "decision_ece_region": _equal_count_ece(y[region], q[region]),
            "predicted_contacted": float(q[c].mean()) if c.any() else float("nan"),
            "observed_contacted": float(y[c].mean()) if c.any() else float("nan"),
            "decision_brier": (whole + in_region) / 2,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
