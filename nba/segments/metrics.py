"""How good a segmentation is: silhouette (in its own space, in 2-D PCA, within credit
groups), churn per segment and the churn ratio, credit-behaviour purity, bootstrap stability
(adjusted Rand index), and `segment_metrics`, the figures the bundle and notebook 05 record
for the shipped segmentation (scores on the training split; on the held-out split the churn,
the silhouette and the stability the success criteria judge, with intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    silhouette_samples,
    silhouette_score,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from nba.data import schema
from nba.segments.space import REVOLVER, fit_pipeline, predict_pipeline

if TYPE_CHECKING:
    from nba.segments.model import Segmenter

#: Silhouette is O(n²): above this many rows it is estimated on a seeded sample of this size.
SILHOUETTE_SAMPLE = 10_000


def silhouette(X: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Mean silhouette of `labels` in the space `X` (exact up to `SILHOUETTE_SAMPLE` rows)."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    sample = SILHOUETTE_SAMPLE if len(X) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(X, labels, sample_size=sample, random_state=seed))


def silhouette_within_groups(
    X: np.ndarray, labels: np.ndarray, feature_names: Sequence[str], seed: int
) -> float:
    """Size-weighted silhouette of `labels` inside each revolver / transactor group, on the
    non-flag columns: how well separated segments are beyond the binary credit split (NaN if
    the space has no `REVOLVER` column or no group holds two segments)."""
    if REVOLVER not in feature_names:
        return float("nan")
    j = list(feature_names).index(REVOLVER)
    rest = [i for i in range(X.shape[1]) if i != j]
    flag = X[:, j] > np.median(np.unique(X[:, j]))
    scores, weights = [], []
    for side in (False, True):
        m = flag == side
        if len(np.unique(labels[m])) >= 2:
            scores.append(silhouette(X[m][:, rest], labels[m], seed))
            weights.append(m.sum())
    return float(np.average(scores, weights=weights)) if scores else float("nan")


def silhouette_pca2(X: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Silhouette of `labels` after projecting `X` to 2 PCA components: the prototype's way."""
    if X.shape[1] <= 2:
        return silhouette(X, labels, seed)
    return silhouette(PCA(2, random_state=seed).fit_transform(X), labels, seed)


def churn_rates(churn: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Share of churners per segment 0…k-1 (NaN for an empty segment)."""
    n = np.bincount(labels, minlength=k).astype(float)
    c = np.bincount(labels, weights=churn.astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c / n


def churn_ratio(rates: np.ndarray) -> float:
    """Highest segment churn rate ÷ lowest (inf when the lowest is 0; NaN rates ignored)."""
    rates = rates[~np.isnan(rates)]
    if len(rates) == 0:
        return float("nan")
    low = rates.min()
    return float("inf") if low == 0 else float(rates.max() / low)


def purity(revolver: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Lowest, over segments, share of the segment's majority credit behaviour (revolver or not)."""
    n = np.bincount(labels, minlength=k).astype(float)
    r = np.bincount(labels, weights=revolver.astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = r / n
    share = share[n > 0]
    return float(np.maximum(share, 1 - share).min())


def json_float(x: float, digits: int = 4) -> float | None:
    """A JSON-safe rounded float (None for NaN or infinity)."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def bootstrap_ari(
    pipeline: Pipeline,
    df: pd.DataFrame,
    labels: np.ndarray,
    seed: int,
    n_boot: int = 20,
    also: Sequence[tuple[pd.DataFrame, np.ndarray]] = (),
) -> np.ndarray:
    """Adjusted Rand index between `labels` (the full fit on `df`) and refits of `pipeline` on
    `n_boot` bootstrap resamples of `df`, each predicted on the full `df`.

    Resamples come from `seed`; refit b uses random_state seed + 1 + b, so both the data and
    KMeans' initialisation vary. With `also` ((frame, labels) pairs, e.g. held-out customers
    and the fit's labels for them) each refit is scored on those too, and the result has one
    column per frame, `df` first: the same refits judge the fitted and the unseen customers."""
    targets = [(df, labels), *also]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(targets)))
    for b in range(n_boot):
        idx = rng.integers(0, len(df), len(df))
        refit = clone(pipeline).set_params(kmeans__random_state=seed + 1 + b)
        fit_pipeline(refit, df.iloc[idx])
        for j, (frame, truth) in enumerate(targets):
            out[b, j] = adjusted_rand_score(truth, predict_pipeline(refit, frame))
    return out if also else out[:, 0]


def silhouette_interval(
    X: np.ndarray, labels: np.ndarray, seed: int, n_boot: int = 200, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean silhouette over customers resampled with replacement,
    each keeping the silhouette value it has among all of `X` (a seeded sample of
    `SILHOUETTE_SAMPLE` rows above that size): how far the figure moves with the sample of
    customers, not with the segments (which stay fixed)."""
    if len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if len(X) > SILHOUETTE_SAMPLE:
        keep = rng.choice(len(X), SILHOUETTE_SAMPLE, replace=False)
        X, labels = X[keep], labels[keep]
    values = silhouette_samples(X, labels)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def churn_ratio_interval(
    churn: np.ndarray, labels: np.ndarray, k: int, seed: int, n_boot: int = 200, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the churn ratio (highest ÷ lowest segment, `churn_ratio`) over
    customers resampled with replacement; infinite where a resample's safest segment has no
    churner."""
    churn = np.asarray(churn, dtype=np.float64)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(churn), len(churn))
        ratios[b] = churn_ratio(churn_rates(churn[idx], labels[idx], k))
    tail = (1 - level) / 2
    # no interpolation: an infinite ratio must stay infinite, not turn the bound into NaN
    low = np.quantile(ratios, tail, method="inverted_cdf")
    return float(low), float(np.quantile(ratios, 1 - tail, method="inverted_cdf"))


def segment_metrics(
    segmenter: Segmenter,
    train: pd.DataFrame,
    test: pd.DataFrame,
    n_boot: int = 20,
    n_interval: int = 200,
    level: float = 0.95,
) -> dict[str, Any]:
    """Metrics for reports/metrics/segments.json, as plain JSON-able types.

    `segmenter` must be fitted on `train`. Scores of the clustering (silhouette in its own
    space and the prototype's 2-D PCA way, Calinski–Harabasz, bootstrap ARI over `n_boot`
    resamples) are on `train`; churn per segment and `churn_ratio` (highest ÷ lowest; null if
    the lowest is 0) are on the held-out `test`; `*_train` are the same on `train`. The figures
    the success criteria judge are on `test`: `silhouette_test`, `stability_ari_test` (the same
    refits on resampled training customers, each assigning the held-out customers, against the
    fit's assignment) and `churn_ratio`, each with a `level` interval (`*_low`, `*_high`;
    `n_interval` resamples of the held-out customers, the refits' percentiles for stability)."""
    check_is_fitted(segmenter)
    k, seed = segmenter.n_segments, segmenter.seed
    labels = segmenter.predict(train)
    space = segmenter.transform(train)
    raw_train = predict_pipeline(segmenter.pipeline_, train)
    raw_test = predict_pipeline(segmenter.pipeline_, test)
    both = bootstrap_ari(segmenter.pipeline_, train, raw_train, seed, n_boot, [(test, raw_test)])
    aris, aris_test = both[:, 0], both[:, 1]
    test_labels = segmenter.predict(test)
    test_space = segmenter.transform(test)
    tail = (1 - level) / 2
    sil_low, sil_high = silhouette_interval(test_space, test_labels, seed, n_interval, level)
    out: dict[str, Any] = {
        "k": k,
        "feature_set": segmenter.feature_set,
        "transform": segmenter.feature_transform,
        "features": list(segmenter.feature_names_),
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "silhouette": json_float(silhouette(space, labels, seed)),
        "silhouette_pca2": json_float(silhouette_pca2(space, labels, seed)),
        "calinski_harabasz": json_float(calinski_harabasz_score(space, labels), 1),
        "silhouette_within_credit_groups": json_float(
            silhouette_within_groups(space, labels, segmenter.feature_names_, seed)
        ),
        "stability_ari": json_float(float(aris.mean())),
        "stability_ari_min": json_float(float(aris.min())),
        "n_bootstrap": n_boot,
        "silhouette_test": json_float(silhouette(test_space, test_labels, seed)),
        "silhouette_test_low": json_float(sil_low),
        "silhouette_test_high": json_float(sil_high),
        "stability_ari_test": json_float(float(aris_test.mean())),
        "stability_ari_test_low": json_float(float(np.quantile(aris_test, tail))),
        "stability_ari_test_high": json_float(float(np.quantile(aris_test, 1 - tail))),
        "interval_level": level,
        "n_interval": n_interval,
    }
    sizes_test = np.bincount(test_labels, minlength=k)
    segments = []
    for s in range(k):
        segments.append(
            {
                "id": s,
                "name": segmenter.names_[s],
                "size_train": int(segmenter.sizes_[s]),
                "size_test": int(sizes_test[s]),
            }
        )
    if schema.TARGET in test.columns:
        rates_test = churn_rates(test[schema.TARGET].to_numpy(), test_labels, k)
        rates_train = churn_rates(train[schema.TARGET].to_numpy(), labels, k)
        out["churn_rate"] = {str(s): json_float(r) for s, r in enumerate(rates_test)}
        out["churn_ratio"] = json_float(churn_ratio(rates_test), 2)
        low, high = churn_ratio_interval(
            test[schema.TARGET].to_numpy(), test_labels, k, seed, n_interval, level
        )
        out["churn_ratio_low"], out["churn_ratio_high"] = json_float(low, 2), json_float(high, 2)
        out["churn_rate_train"] = {str(s): json_float(r) for s, r in enumerate(rates_train)}
        out["churn_ratio_train"] = json_float(churn_ratio(rates_train), 2)
        for s in range(k):
            segments[s]["churn_rate_train"] = json_float(rates_train[s])
            segments[s]["churn_rate_test"] = json_float(rates_test[s])
    out["segments"] = segments
    return out


def criterion_intervals(record: dict[str, Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """The intervals of the stage-2 success criteria from a `segment_metrics` record, keyed
    (stage, metric) as `nba.evaluation.criterion_evidence` reads them; a null bound (an
    unbounded churn ratio) is infinite. Criteria without a recorded interval are left out."""
    names = {
        "silhouette_test": "silhouette_test",
        "stability_ari_test": "stability_ari_test",
        "churn_ratio_high_low": "churn_ratio",
    }
    out = {}
    for metric, key in names.items():
        if f"{key}_low" in record:
            low, high = record[f"{key}_low"], record[f"{key}_high"]
            out[("segments", metric)] = (
                math.inf if low is None else float(low),
                math.inf if high is None else float(high),
            )
    return out
