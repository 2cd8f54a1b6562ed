"""The clustering space of stage 2: need columns, their transforms and the KMeans pipeline.

A segmentation clusters customers on a feature set (`FEATURE_SETS`: source columns of the
customer record, or `REVOLVER`, 1.0 when the customer carries a revolving balance), optionally
log-transformed, standard-scaled (or quantile-transformed), then KMeans. `fit_pipeline` and
`predict_pipeline` are the fast, single-threaded fit and nearest-centre assignment every part of
stage 2 uses (the shipped `Segmenter`, the design search and the stability measures).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from nba.data import schema

#: Derived column: 1.0 when the customer carries a revolving balance (borrows on the card).
REVOLVER = "Revolver"
#: Money and count columns that are log-transformed (log1p) under transform="log": their
#: spread grows with their level, so ratios, not differences, are what customers share.
LOG_COLUMNS = frozenset(
    {"Total_Trans_Amt", "Total_Trans_Ct", "Credit_Limit", "Total_Revolving_Bal"}
)

#: The prototype's four columns, in its order.
BASELINE_FEATURES = (
    "Contacts_Count_12_mon",
    "Credit_Limit",
    "Total_Revolving_Bal",
    "Avg_Utilization_Ratio",
)

#: Candidate feature sets for the segmentation (source columns or `REVOLVER`).
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "original4": BASELINE_FEATURES,
    "needs_all": (
        "Total_Trans_Amt",
        "Total_Trans_Ct",
        "Avg_Utilization_Ratio",
        "Total_Revolving_Bal",
        "Months_Inactive_12_mon",
        "Contacts_Count_12_mon",
        "Total_Relationship_Count",
        "Total_Ct_Chng_Q4_Q1",
        "Total_Amt_Chng_Q4_Q1",
        "Credit_Limit",
    ),
    "needs_core": (
        "Total_Trans_Amt",
        "Total_Trans_Ct",
        "Avg_Utilization_Ratio",
        "Total_Revolving_Bal",
        "Months_Inactive_12_mon",
        "Contacts_Count_12_mon",
    ),
    "spend_utilisation": ("Total_Trans_Amt", "Total_Trans_Ct", "Avg_Utilization_Ratio"),
    "spend_revolver": ("Total_Trans_Amt", "Total_Trans_Ct", REVOLVER),
    "amount_revolver": ("Total_Trans_Amt", REVOLVER),
}
TRANSFORMS = ("log", "none", "quantile")


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """ValueError naming the missing columns, for people."""
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {', '.join(missing)}, missing from the data")


def source_columns(columns: Iterable[str]) -> list[str]:
    """Input columns needed to build `columns` (REVOLVER comes from Total_Revolving_Bal)."""
    return ["Total_Revolving_Bal" if c == REVOLVER else c for c in columns]


class NeedsFeatures(TransformerMixin, BaseEstimator):
    """Selects need columns from a customer frame as a float matrix; stateless.

    `columns` are source columns or `REVOLVER` (1.0 if Total_Revolving_Bal > 0). With
    `log=True`, columns in `LOG_COLUMNS` become log1p(value) (dollars or counts → log units).
    """

    def __init__(self, columns: Sequence[str] = FEATURE_SETS["spend_revolver"], log: bool = True):
        self.columns = columns
        self.log = log

    def fit(self, X: pd.DataFrame, y: Any = None) -> NeedsFeatures:
        require_columns(X, source_columns(self.columns), "segmentation")
        self.feature_names_out_ = [str(c) for c in self.columns]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        sources = source_columns(self.columns)
        require_columns(X, sources, "segmentation")
        arrays = schema.column_arrays(X, dict.fromkeys(sources))  # each column read once
        out = np.empty((len(X), len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.columns):
            if col == REVOLVER:
                out[:, j] = np.asarray(arrays["Total_Revolving_Bal"], dtype=np.float64) > 0
            else:
                values = np.asarray(arrays[col], dtype=np.float64)
                out[:, j] = np.log1p(values) if self.log and col in LOG_COLUMNS else values
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.feature_names_out_, dtype=object)


def make_pipeline(
    feature_set: str, transform: str, k: int, seed: int, n_init: int = 10
) -> Pipeline:
    """features → scaling → KMeans for one candidate; every random_state is `seed`."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(
            f"unknown feature set {feature_set!r}; use one of {', '.join(FEATURE_SETS)}"
        )
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}")
    if transform == "quantile":
        scale: Any = QuantileTransformer(output_distribution="normal", random_state=seed)
    else:
        scale = StandardScaler()
    return Pipeline(
        [
            ("features", NeedsFeatures(FEATURE_SETS[feature_set], log=transform == "log")),
            ("scale", scale),
            ("kmeans", KMeans(n_clusters=k, n_init=n_init, random_state=seed)),
        ]
    )


def fit_pipeline(pipe: Pipeline, X: pd.DataFrame) -> Pipeline:
    """`pipe.fit(X)` with KMeans' OpenMP pool at one thread.

    Measured on the 2-core machine under load: KMeans (k=5, n_init=10) on 6,480 × 3 takes
    0.05 s on one thread and 6.7 s on two, because OpenMP spin-waits between the many short
    Lloyd iterations; at these sizes one thread is always faster."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return pipe.fit(X)


def pipeline_space(pipe: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """`pipe[:-1].transform(X)` as float64. For the usual features → StandardScaler steps the
    scaling is done here with the scaler's own arithmetic (subtract `mean_`, divide by
    `scale_`, as its transform does): slicing the pipeline and scikit-learn's input checks
    cost more than the arithmetic for one customer."""
    steps = [step for _, step in pipe.steps[:-1]]
    if (
        len(steps) == 2
        and isinstance(steps[0], NeedsFeatures)
        and type(steps[1]) is StandardScaler
        and isinstance(X, pd.DataFrame)
    ):
        scaler = steps[1]
        Z = np.array(steps[0].transform(X), dtype=np.float64)
        if scaler.with_mean:
            Z -= scaler.mean_
        if scaler.with_std:
            Z /= scaler.scale_
        return Z
    return np.asarray(pipe[:-1].transform(X), dtype=np.float64)


def predict_pipeline(pipe: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """`pipe.predict(X)`: for a KMeans pipeline the nearest centre, computed directly (what
    KMeans.predict does, without its thread-pool set-up, which costs milliseconds per call and
    dominates scoring one customer); otherwise the pipeline's own predict on one thread."""
    if not isinstance(pipe[-1], KMeans):
        with threadpool_limits(limits=1, user_api="openmp"):
            return pipe.predict(X)
    Z = pipeline_space(pipe, X)
    centres = pipe[-1].cluster_centers_
    # squared distances without an n × k × d intermediate: |z|² − 2 z·c + |c|² (|z|² is
    # the same for every centre, so it does not change the argmin)
    if len(Z) < _ONE_THREAD_FROM:
        return np.argmin((centres**2).sum(axis=1) - 2 * Z @ centres.T, axis=1)
    # the same product on one BLAS thread: n × d × k with d, k tiny is memory-bound, and
    # BLAS threads spin-waiting on a busy 2-core machine made it 6x slower (0.35 s vs 0.06 s
    # for a million customers); setting the limit costs ~1 ms, so small batches skip it
    with threadpool_limits(limits=1, user_api="blas"):
        return np.argmin((centres**2).sum(axis=1) - 2 * Z @ centres.T, axis=1)


#: Batch size from which `predict_pipeline` runs its matrix product on one BLAS thread.
_ONE_THREAD_FROM = 10_000
