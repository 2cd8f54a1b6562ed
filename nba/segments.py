"""Stage 2: customer segments that differ in needs, plus the original KMeans baseline.

The baseline (`baseline`, `baseline_comparison`) reproduces the prototype: KMeans (k=3) on
Contacts_Count_12_mon, Credit_Limit, Total_Revolving_Bal and Avg_Utilization_Ratio,
standard-scaled and projected to 2 PCA components, silhouette measured in that 2-D space,
optionally with one-hot categoricals added before the projection.

The project's segmentation (`Segmenter`) clusters customers on two needs that a card offer can
answer: how much they use the card (log of 12-month transaction amount and count: dormant,
light, everyday, high spend) and whether they borrow on it (revolving balance > 0: revolver vs
transactor). Everything else (utilisation, limit, inactivity, contacts, products held, Q4/Q1
trends, churn) describes the segments but does not shape them.

Why this design (chosen by `choose_segmentation` from `compare_segmentations` on the training
split of the development data only; the held-out split is only reported):
- Compared: the prototype's four columns, all ten need columns, a six-column core, spend +
  utilisation, spend + revolver flag, amount + revolver flag; transforms log, none, quantile;
  k = 3…8; 48 candidates. Rich sets (6–10 columns) never separate well (silhouette 0.15–0.36 in
  their own space): the need columns are continuous and mostly unimodal. Spend on a log scale
  is multimodal (modes near $1.8k, $4.2k, $8k and $15k a year) and borrowing or not is a crisp
  behaviour, so spend × revolver gives clusters separated in their own space: silhouette 0.578
  at k=5, bootstrap ARI 0.995, Calinski–Harabasz 9,472; the inertia elbow is also at k=5.
  The binary flag is not what carries the score: within revolvers and within transactors the
  spend tiers alone have silhouette 0.58–0.59 (`silhouette_within_credit_groups`).
- Rule: keep candidates with k ≥ 4, silhouette ≥ 0.50, mean bootstrap ARI ≥ 0.95, every
  segment ≥ 5 % of customers, every segment ≥ 95 % one credit behaviour (revolver or
  transactor, so one offer fits the segment) and a cross-validated churn ratio ≥ 8 in every
  fold; among those prefer the candidate that describes the most needs (most features), then
  the highest silhouette. Three candidates pass. Amount alone (k=5, silhouette 0.664) passes
  but drops transaction frequency; raw (unlogged) spend scores 0.603 but isolates only the
  top-spend tail and mixes revolvers with transactors (purity 87 %); k=4 also mixes them.
- Result: spend_revolver, log transform, k = 5. The segments differ in needs (high-spend
  revolvers with few products: cross-sell; everyday revolvers at 40 % utilisation: balance and
  rate offers; light or declining transactors: activation) and, as a consequence, in churn:
  3 % to 71 % on the training split, a ratio above 20 (cross-validated worst fold 19.8).

Names and descriptions are generated from each segment's profile by rules (`name_segments`,
`describe_segment`), so they follow the data when it or the seed changes. Segment ids are
ordered by size (0 = largest) for the same reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from nba.config import Settings
from nba.data import schema

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Feature sets and transforms
# ---------------------------------------------------------------------------------------------

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

#: (feature set, transform) pairs `compare_segmentations` tries by default.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("original4", "none"),
    ("needs_all", "log"),
    ("needs_all", "quantile"),
    ("needs_core", "log"),
    ("spend_utilisation", "log"),
    ("spend_revolver", "log"),
    ("spend_revolver", "none"),
    ("amount_revolver", "log"),
)

#: The chosen design (see the module docstring and `choose_segmentation`).
DEFAULT_FEATURE_SET = "spend_revolver"
DEFAULT_TRANSFORM = "log"
DEFAULT_K = 5

#: Silhouette is O(n²): above this many rows it is estimated on a seeded sample of this size.
SILHOUETTE_SAMPLE = 10_000

#: Selection floors: the issue's targets plus actionability rules (see `choose_segmentation`).
MIN_K = 4
MIN_SILHOUETTE = 0.50
MIN_STABILITY = 0.95
MIN_CHURN_RATIO = 8.0
MIN_SHARE = 0.05
MIN_PURITY = 0.95


def _check_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """ValueError naming the missing columns, for people."""
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {', '.join(missing)}, missing from the data")


def _source_columns(columns: Iterable[str]) -> list[str]:
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
        _check_columns(X, _source_columns(self.columns), "segmentation")
        self.feature_names_out_ = [str(c) for c in self.columns]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        sources = _source_columns(self.columns)
        _check_columns(X, sources, "segmentation")
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


def _fit(pipe: Pipeline, X: pd.DataFrame) -> Pipeline:
    """`pipe.fit(X)` with KMeans' OpenMP pool at one thread.

    Measured on the 2-core machine under load: KMeans (k=5, n_init=10) on 6,480 × 3 takes
    0.05 s on one thread and 6.7 s on two, because OpenMP spin-waits between the many short
    Lloyd iterations; at these sizes one thread is always faster."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return pipe.fit(X)


def _space(pipe: Pipeline, X: pd.DataFrame) -> np.ndarray:
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


def _predict(pipe: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """`pipe.predict(X)`: for a KMeans pipeline the nearest centre, computed directly (what
    KMeans.predict does, without its thread-pool set-up, which costs milliseconds per call and
    dominates scoring one customer); otherwise the pipeline's own predict on one thread."""
    if not isinstance(pipe[-1], KMeans):
        with threadpool_limits(limits=1, user_api="openmp"):
            return pipe.predict(X)
    Z = _space(pipe, X)
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


#: Batch size from which `_predict` runs its matrix product on one BLAS thread.
_ONE_THREAD_FROM = 10_000


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------


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


def _purity(revolver: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Lowest, over segments, share of the segment's majority credit behaviour (revolver or not)."""
    n = np.bincount(labels, minlength=k).astype(float)
    r = np.bincount(labels, weights=revolver.astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = r / n
    share = share[n > 0]
    return float(np.maximum(share, 1 - share).min())


def _json_float(x: float, digits: int = 4) -> float | None:
    """A JSON-safe rounded float (None for NaN or infinity)."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


# ---------------------------------------------------------------------------------------------
# The original baseline
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineResult:
    """The prototype's clustering: score in its 2-D PCA space and one row per group.

    groups: group (0 = lowest churn), size, share, churn_rate and the median of each of the
    four features; labels: the group of every input row.
    """

    categoricals: bool
    silhouette_pca2: float
    groups: pd.DataFrame
    labels: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "features": "numeric + one-hot categoricals" if self.categoricals else "numeric",
            "k": int(len(self.groups)),
            "silhouette_pca2": _json_float(self.silhouette_pca2),
            "sizes": [int(s) for s in self.groups["size"]],
            "churn_rate": [_json_float(r) for r in self.groups["churn_rate"]],
        }


def baseline(df: pd.DataFrame, settings: Settings, *, categoricals: bool = False) -> BaselineResult:
    """Reproduce the prototype on `df`: StandardScaler on `BASELINE_FEATURES` (+ one-hot
    categoricals if asked), PCA to 2 components, KMeans k=3; silhouette in the PCA space."""
    cols = list(BASELINE_FEATURES) + (list(schema.CATEGORICAL) if categoricals else [])
    _check_columns(df, cols, "the baseline")
    parts: list[tuple[str, Any, list[str]]] = [
        ("numeric", StandardScaler(), list(BASELINE_FEATURES))
    ]
    if categoricals:
        parts.append(
            (
                "categorical",
                OneHotEncoder(sparse_output=False, dtype=float),
                list(schema.CATEGORICAL),
            )
        )
    pipe = Pipeline(
        [
            ("prepare", ColumnTransformer(parts)),
            ("pca", PCA(2, random_state=settings.seed)),
            ("kmeans", KMeans(n_clusters=3, n_init=10, random_state=settings.seed)),
        ]
    )
    raw = _fit(pipe, df[cols])[-1].labels_
    space = pipe[:-1].transform(df[cols])
    score = silhouette(space, raw, settings.seed)
    has_churn = schema.TARGET in df.columns
    if has_churn:
        rates = churn_rates(df[schema.TARGET].to_numpy(), raw, 3)
        order = np.argsort(rates, kind="stable")  # like the prototype: 8.1 %, 10.7 %, 30.3 %
    else:
        order = np.argsort(-np.bincount(raw, minlength=3), kind="stable")
    mapping = np.empty(3, dtype=int)
    mapping[order] = np.arange(3)
    labels = mapping[raw]
    sizes = np.bincount(labels, minlength=3)
    groups = pd.DataFrame({"group": np.arange(3), "size": sizes, "share": sizes / len(df)})
    groups["churn_rate"] = (
        churn_rates(df[schema.TARGET].to_numpy(), labels, 3) if has_churn else np.nan
    )
    medians = df[list(BASELINE_FEATURES)].groupby(labels).median()
    for c in BASELINE_FEATURES:
        groups[f"median_{c}"] = medians[c].to_numpy()
    return BaselineResult(categoricals, score, groups, labels)


def baseline_comparison(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The prototype's numeric-only vs numeric + one-hot comparison, one tidy row each:
    features, k, silhouette_pca2, churn per group (lowest to highest) and sizes."""
    rows = []
    for cats in (False, True):
        r = baseline(df, settings, categoricals=cats)
        row: dict[str, Any] = {
            "features": "numeric + one-hot categoricals" if cats else "numeric",
            "k": len(r.groups),
            "silhouette_pca2": r.silhouette_pca2,
        }
        for g in r.groups.itertuples():
            row[f"churn_rate_{g.group}"] = g.churn_rate
        for g in r.groups.itertuples():
            row[f"size_{g.group}"] = g.size
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Profiles, names, descriptions
# ---------------------------------------------------------------------------------------------

#: Columns a segment is profiled on: (column, label with unit, number format).
PROFILE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("Total_Trans_Amt", "Spend, 12 months ($)", "${:,.0f}"),
    ("Total_Trans_Ct", "Transactions, 12 months (count)", "{:,.0f}"),
    (REVOLVER, "Carries a revolving balance (share)", "{:.0%}"),
    ("Total_Revolving_Bal", "Revolving balance ($)", "${:,.0f}"),
    ("Avg_Utilization_Ratio", "Utilisation (share of limit)", "{:.0%}"),
    ("Credit_Limit", "Credit limit ($)", "${:,.0f}"),
    ("Total_Relationship_Count", "Products held (count)", "{:.0f}"),
    ("Months_Inactive_12_mon", "Inactive months, 12 months (count)", "{:.0f}"),
    ("Contacts_Count_12_mon", "Contacts with the bank, 12 months (count)", "{:.0f}"),
    ("Total_Ct_Chng_Q4_Q1", "Transactions Q4 ÷ Q1 (ratio)", "{:.2f}"),
    ("Total_Amt_Chng_Q4_Q1", "Spend Q4 ÷ Q1 (ratio)", "{:.2f}"),
    ("Months_on_book", "Tenure (months)", "{:.0f}"),
    ("Customer_Age", "Age (years)", "{:.0f}"),
)
PROFILE_COLUMNS = tuple(c for c, _, _ in PROFILE_FEATURES)

#: Spend tiers by the segment's median 12-month spend ÷ the base median (first match wins).
SPEND_TIERS: tuple[tuple[float, str], ...] = (
    (1.75, "High-spend"),
    (0.75, "Everyday"),
    (0.35, "Light"),
    (0.0, "Dormant"),
)
#: Secondary traits that may qualify a name: column → (label if above, label if below the base).
#: Utilisation and balance are left out: the revolver/transactor noun already says them.
QUALIFIERS: dict[str, tuple[str, str]] = {
    "Credit_Limit": ("high limit", "low limit"),
    "Total_Relationship_Count": ("many products", "few products"),
    "Months_Inactive_12_mon": ("often inactive", "rarely inactive"),
    "Contacts_Count_12_mon": ("frequent contacts", "rare contacts"),
    "Total_Ct_Chng_Q4_Q1": ("growing activity", "declining activity"),
    "Total_Amt_Chng_Q4_Q1": ("growing spend", "declining spend"),
}
#: Columns that say whether a customer borrows: implied by "revolvers"/"transactors".
CREDIT_COLUMNS = frozenset({REVOLVER, "Total_Revolving_Bal", "Avg_Utilization_Ratio"})
#: A trait qualifies a name when the segment mean is this many base standard deviations away.
QUALIFIER_MIN_SD = 0.5


@dataclass(frozen=True)
class Profile:
    """Per-segment statistics of the profile columns, against the whole base (fit data).

    Arrays are segments × `PROFILE_COLUMNS` (mean, median) or one value per column (base_*).
    churn is NaN when the data had no `churn` column.
    """

    columns: tuple[str, ...]
    size: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    base_mean: np.ndarray
    base_std: np.ndarray
    base_median: np.ndarray
    churn: np.ndarray
    base_churn: float

    @property
    def k(self) -> int:
        return len(self.size)

    @property
    def share(self) -> np.ndarray:
        return self.size / self.size.sum()

    @property
    def z(self) -> np.ndarray:
        """(segment mean − base mean) ÷ base standard deviation, segments × columns."""
        std = np.where(self.base_std > 0, self.base_std, 1.0)
        return (self.mean - self.base_mean) / std

    def col(self, name: str) -> int:
        return self.columns.index(name)

    def ratio(self, s: int, name: str) -> float:
        """Segment median ÷ base median of one column (NaN when the base median is 0)."""
        j = self.col(name)
        base = self.base_median[j]
        return float(self.median[s, j] / base) if base else float("nan")


def profile_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The profile columns of a customer frame, with `REVOLVER` derived (floats)."""
    _check_columns(df, _source_columns(PROFILE_COLUMNS), "the segment profile")
    out = {}
    for c in PROFILE_COLUMNS:
        if c == REVOLVER:
            out[c] = (df["Total_Revolving_Bal"].to_numpy() > 0).astype(np.float64)
        else:
            out[c] = df[c].to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=df.index)


def compute_profile(df: pd.DataFrame, labels: np.ndarray, k: int) -> Profile:
    """Profile of segments 0…k-1 given each row's label."""
    values = profile_frame(df)
    grouped = values.groupby(labels)
    mean = grouped.mean().reindex(range(k)).to_numpy()
    median = grouped.median().reindex(range(k)).to_numpy()
    if schema.TARGET in df.columns:
        churn = df[schema.TARGET].to_numpy()
        rates, base = churn_rates(churn, labels, k), float(churn.mean())
    else:
        rates, base = np.full(k, np.nan), float("nan")
    return Profile(
        columns=PROFILE_COLUMNS,
        size=np.bincount(labels, minlength=k).astype(np.int64),
        mean=mean,
        median=median,
        base_mean=values.mean().to_numpy(),
        base_std=values.std(ddof=0).to_numpy(),
        base_median=values.median().to_numpy(),
        churn=rates,
        base_churn=base,
    )


def spend_tier(ratio: float) -> str:
    """Spend tier word for a segment whose median spend is `ratio` × the base median."""
    for threshold, word in SPEND_TIERS:
        if ratio >= threshold:
            return word
    return SPEND_TIERS[-1][1]


def credit_noun(revolver_share: float) -> str:
    """'revolvers' when most of the segment carries a balance, else 'transactors'."""
    return "revolvers" if revolver_share >= 0.5 else "transactors"


def qualifier(p: Profile, s: int, exclude: Sequence[str] = ()) -> str | None:
    """The segment's most distinctive secondary trait (≥ QUALIFIER_MIN_SD from the base)."""
    best, best_z = None, QUALIFIER_MIN_SD
    for c, (up, down) in QUALIFIERS.items():
        z = p.z[s, p.col(c)]
        label = up if z > 0 else down
        if abs(z) >= best_z and label not in exclude:
            best, best_z = label, abs(z)
    return best


def name_segments(p: Profile) -> list[str]:
    """One unique name per segment, by rules on its profile: spend tier + credit behaviour
    (+ its most distinctive secondary trait); ties broken by spend, then by id."""
    base = [
        f"{spend_tier(p.ratio(s, 'Total_Trans_Amt'))} {credit_noun(p.mean[s, p.col(REVOLVER)])}"
        for s in range(p.k)
    ]
    names = []
    for s in range(p.k):
        q = qualifier(p, s)
        names.append(f"{base[s]}, {q}" if q else base[s])
    # Duplicates: order the clashing segments by median spend and say so.
    spend = p.median[:, p.col("Total_Trans_Amt")]
    for name in {n for n in names if names.count(n) > 1}:
        ids = sorted((s for s in range(p.k) if names[s] == name), key=lambda s: (spend[s], s))
        if len(ids) == 2:
            tags = ["lower spend", "higher spend"]
        else:
            tags = [f"spend rank {i + 1} of {len(ids)}" for i in range(len(ids))]
        for s, tag in zip(ids, tags, strict=True):
            names[s] = f"{names[s]} ({tag})"
    for s, n in enumerate(names):  # last resort: identical medians
        if names.count(n) > 1:
            names[s] = f"{n} #{s}"
    return names


def _times(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1f}×"


def describe_segment(p: Profile, s: int, name: str) -> str:
    """One paragraph on how segment `s` differs from the whole base, numbers from `p`."""

    def fmt(c: str, v: float) -> str:
        return next(f for col, _, f in PROFILE_FEATURES if col == c).format(v)

    def med(c: str) -> str:
        return fmt(c, p.median[s, p.col(c)])

    def base(c: str) -> str:
        return fmt(c, p.base_median[p.col(c)])

    rev = p.col(REVOLVER)
    z = p.z[s]
    # What sets the segment apart beyond its credit behaviour, which its name already says.
    short = {c: lab.split(" (")[0].split(",")[0].lower() for c, lab, _ in PROFILE_FEATURES}
    candidates = [j for j, c in enumerate(p.columns) if c not in CREDIT_COLUMNS]
    top = sorted(candidates, key=lambda j: -abs(z[j]))[:2]
    standout = " and ".join(f"{short[p.columns[j]]} ({z[j]:+.1f} sd)" for j in top)
    text = (
        f"{name}: {p.size[s]:,} customers ({p.share[s]:.0%} of the base). "
        f"They spend a median {med('Total_Trans_Amt')} a year, "
        f"{_times(p.ratio(s, 'Total_Trans_Amt'))} the base median, on "
        f"{med('Total_Trans_Ct')} transactions ({_times(p.ratio(s, 'Total_Trans_Ct'))}); "
        f"{p.mean[s, rev]:.0%} carry a revolving balance (base {p.base_mean[rev]:.0%}), "
        f"median utilisation {med('Avg_Utilization_Ratio')} (base {base('Avg_Utilization_Ratio')}). "
        f"Median credit limit {med('Credit_Limit')} ({_times(p.ratio(s, 'Credit_Limit'))} the base), "
        f"{med('Total_Relationship_Count')} products held (base {base('Total_Relationship_Count')}), "
        f"{med('Months_Inactive_12_mon')} inactive months and "
        f"{med('Contacts_Count_12_mon')} contacts in 12 months "
        f"(base {base('Months_Inactive_12_mon')} and {base('Contacts_Count_12_mon')}); "
        f"Q4/Q1 transaction ratio {med('Total_Ct_Chng_Q4_Q1')} "
        f"(base {base('Total_Ct_Chng_Q4_Q1')}). "
        f"Apart from credit use, they differ most from the base in {standout}."
    )
    if math.isfinite(p.churn[s]) and p.base_churn > 0:
        text += (
            f" Churn {p.churn[s]:.1%} against {p.base_churn:.1%} for the whole base "
            f"({_times(p.churn[s] / p.base_churn)})."
        )
    return text


def profile_chart(p: Profile, s: int, name: str) -> Figure:
    """Bar chart of segment `s`'s standardised feature means against the base (0); each bar
    is annotated with the segment's median and the base median in the feature's unit."""
    z = p.z[s]
    labels = [lab for _, lab, _ in PROFILE_FEATURES]
    order = np.arange(len(z))[::-1]  # first profile column at the top
    fig = Figure(figsize=(9, 5.8), layout="constrained")
    ax = fig.add_subplot()
    colors = np.where(z[order] >= 0, "#2a7ab9", "#d9822b")
    ax.barh(np.arange(len(z)), z[order], color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(z)), [labels[j] for j in order])
    lim = max(1.5, float(np.nanmax(np.abs(z))) * 1.25 + 1.5)  # room for the bar labels
    ax.set_xlim(-lim, lim)
    for y, j in enumerate(order):
        fmt = PROFILE_FEATURES[j][2]
        if PROFILE_FEATURES[j][0] == REVOLVER:
            note = f"{p.mean[s, j]:.0%} vs {p.base_mean[j]:.0%}"
        else:
            note = f"{fmt.format(p.median[s, j])} vs {fmt.format(p.base_median[j])}"
        ax.text(
            z[j] + (0.03 * lim if z[j] >= 0 else -0.03 * lim),
            y,
            note,
            va="center",
            ha="left" if z[j] >= 0 else "right",
            fontsize=8,
            parse_math=False,  # "$" is a currency sign here, not mathtext
        )
    for tick in ax.get_yticklabels():
        tick.set_parse_math(False)
    churn = (
        f", churn {p.churn[s]:.1%} (base {p.base_churn:.1%})" if math.isfinite(p.churn[s]) else ""
    )
    ax.set_title(
        f"Segment {s}: {name}\n{p.size[s]:,} customers ({p.share[s]:.0%}){churn}\n"
        "bar labels: segment median vs base median",
        fontsize=10,
    )
    ax.set_xlabel("Segment mean − base mean (base standard deviations)")
    ax.set_ylabel("Feature (unit)")
    ax.grid(axis="x", alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


class Segmenter(ClusterMixin, BaseEstimator):
    """Need-based customer segments: KMeans on a feature set, ids ordered by size.

    Fitted attributes: `pipeline_` (features → scaling → KMeans), `label_map_` (KMeans label →
    segment id), `labels_` (segment of each fit row), `cluster_centers_` (in the clustering
    space, by segment id), `names_`, `descriptions_`, `metrics_` (fit-data scores, JSON-able),
    and the profile arrays (`sizes_`, `churn_rate_`, `profile_mean_`, …). Only numpy arrays,
    lists, dicts and scikit-learn objects are stored, so skops can save it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        n_segments: int = DEFAULT_K,
        feature_set: str = DEFAULT_FEATURE_SET,
        feature_transform: str = DEFAULT_TRANSFORM,
        n_init: int = 10,
    ):
        self.settings = settings
        self.n_segments = n_segments
        self.feature_set = feature_set
        self.feature_transform = feature_transform
        self.n_init = n_init

    @property
    def seed(self) -> int:
        return (self.settings or Settings()).seed

    def make_pipeline(self) -> Pipeline:
        """An unfitted copy of the clustering pipeline (used for bootstrap refits too)."""
        return make_pipeline(
            self.feature_set, self.feature_transform, self.n_segments, self.seed, self.n_init
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> Segmenter:
        """Cluster the customers in `X` (a clean frame), then profile, name and score them."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("Segmenter.fit expects a pandas DataFrame of customers")
        if len(X) < self.n_segments:
            raise ValueError(f"{len(X)} customers cannot make {self.n_segments} segments")
        k = self.n_segments
        pipe = _fit(self.make_pipeline(), X)
        raw = pipe[-1].labels_
        centers = pipe[-1].cluster_centers_
        sizes = np.bincount(raw, minlength=k)
        # Largest first; ties by centroid coordinates, so ids do not depend on KMeans' order.
        order = np.lexsort((*centers.T[::-1], -sizes))
        self.label_map_ = np.empty(k, dtype=np.int64)
        self.label_map_[order] = np.arange(k)
        self.pipeline_ = pipe
        self.labels_ = self.label_map_[raw]
        self.cluster_centers_ = centers[order]
        self.feature_names_ = list(pipe[0].feature_names_out_)

        p = compute_profile(X, self.labels_, k)
        self.profile_columns_ = list(p.columns)
        self.sizes_ = p.size
        self.profile_mean_ = p.mean
        self.profile_median_ = p.median
        self.base_mean_ = p.base_mean
        self.base_std_ = p.base_std
        self.base_median_ = p.base_median
        self.churn_rate_ = p.churn
        self.base_churn_rate_ = p.base_churn
        self.names_ = name_segments(p)
        self.descriptions_ = [describe_segment(p, s, self.names_[s]) for s in range(k)]

        space = pipe[:-1].transform(X)
        self.metrics_ = {
            "k": k,
            "n": len(X),
            "feature_set": self.feature_set,
            "transform": self.feature_transform,
            "features": self.feature_names_,
            "inertia": float(pipe[-1].inertia_),
            "silhouette": _json_float(silhouette(space, self.labels_, self.seed)),
            "silhouette_pca2": _json_float(silhouette_pca2(space, self.labels_, self.seed)),
            "calinski_harabasz": _json_float(calinski_harabasz_score(space, self.labels_), 1),
            "churn_rate": {str(s): _json_float(r) for s, r in enumerate(p.churn)},
            "churn_ratio": _json_float(churn_ratio(p.churn), 2),
        }
        logger.info(
            "segments: k=%d on %d customers, silhouette %.3f",
            k,
            len(X),
            self.metrics_["silhouette"],
        )
        return self

    def _profile(self) -> Profile:
        check_is_fitted(self)
        return Profile(
            columns=tuple(self.profile_columns_),
            size=self.sizes_,
            mean=self.profile_mean_,
            median=self.profile_median_,
            base_mean=self.base_mean_,
            base_std=self.base_std_,
            base_median=self.base_median_,
            churn=self.churn_rate_,
            base_churn=self.base_churn_rate_,
        )

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Customers in the clustering space (scaled features), rows × features."""
        check_is_fitted(self)
        return self.pipeline_[:-1].transform(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment id (0…k-1, int64) of each customer; vectorised."""
        check_is_fitted(self, "label_map_")
        return self.label_map_[_predict(self.pipeline_, X)]

    def fit_predict(self, X: pd.DataFrame, y: Any = None, **kwargs: Any) -> np.ndarray:
        return self.fit(X).labels_

    def assign(self, X: pd.DataFrame) -> pd.DataFrame:
        """`segment` (int) and `segment_name` per customer, indexed like `X` (with CLIENTNUM
        first when `X` has it)."""
        ids = self.predict(X)
        out = {}
        if schema.ID in X.columns:
            out[schema.ID] = X[schema.ID].to_numpy()
        out["segment"] = ids
        out["segment_name"] = pd.Series(
            np.asarray(self.names_, dtype=object)[ids], index=X.index, dtype="str"
        )
        return pd.DataFrame(out, index=X.index)

    @property
    def profiles_(self) -> pd.DataFrame:
        """One row per segment: id, name, description, size, share, churn rate (fit data),
        plus the medians that drive the names."""
        p = self._profile()
        table = pd.DataFrame(
            {
                "segment": np.arange(p.k),
                "name": self.names_,
                "description": self.descriptions_,
                "size": p.size,
                "share": p.share,
                "churn_rate": p.churn,
                "churn_vs_base": p.churn / p.base_churn if p.base_churn else np.nan,
            }
        )
        for c in ("Total_Trans_Amt", "Total_Trans_Ct", "Avg_Utilization_Ratio", "Credit_Limit"):
            table[f"median_{c}"] = p.median[:, p.col(c)]
        table["revolver_share"] = p.mean[:, p.col(REVOLVER)]
        return table

    def profile_table(self) -> pd.DataFrame:
        """Standardised mean differences from the base, segments × profile columns (long form
        friendly: index = segment name)."""
        p = self._profile()
        return pd.DataFrame(p.z, index=pd.Index(self.names_, name="segment"), columns=p.columns)

    def profile_chart(self, segment: int) -> Figure:
        """The profile chart of one segment (a matplotlib Figure, no pyplot state)."""
        p = self._profile()
        if not 0 <= segment < p.k:
            raise ValueError(f"segment must be between 0 and {p.k - 1}, got {segment}")
        return profile_chart(p, segment, self.names_[segment])

    def profile_charts(self) -> dict[int, Figure]:
        """Every segment's profile chart, by id."""
        return {s: self.profile_chart(s) for s in range(self.n_segments)}


# ---------------------------------------------------------------------------------------------
# Stability, comparison, choice, metrics
# ---------------------------------------------------------------------------------------------


def bootstrap_ari(
    pipeline: Pipeline, df: pd.DataFrame, labels: np.ndarray, seed: int, n_boot: int = 20
) -> np.ndarray:
    """Adjusted Rand index between `labels` (the full fit on `df`) and refits of `pipeline` on
    `n_boot` bootstrap resamples of `df`, each predicted on the full `df`.

    Resamples come from `seed`; refit b uses random_state seed + 1 + b, so both the data and
    KMeans' initialisation vary."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(df), len(df))
        refit = clone(pipeline).set_params(kmeans__random_state=seed + 1 + b)
        _fit(refit, df.iloc[idx])
        out[b] = adjusted_rand_score(labels, _predict(refit, df))
    return out


def _cv_churn_ratios(
    df: pd.DataFrame, feature_set: str, transform: str, k: int, settings: Settings
) -> np.ndarray:
    """Churn ratio (highest ÷ lowest segment) on each validation fold of a stratified K-fold,
    segments fitted on the other folds."""
    folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    churn = df[schema.TARGET].to_numpy()
    out = []
    for fit_idx, val_idx in folds.split(df, churn):
        pipe = _fit(make_pipeline(feature_set, transform, k, settings.seed), df.iloc[fit_idx])
        labels = _predict(pipe, df.iloc[val_idx])
        out.append(churn_ratio(churn_rates(churn[val_idx], labels, k)))
    return np.asarray(out)


def evaluate_candidate(
    df: pd.DataFrame,
    settings: Settings,
    feature_set: str,
    transform: str,
    k: int,
    n_boot: int = 20,
) -> dict[str, Any]:
    """All selection criteria for one (feature set, transform, k) on `df` (training data)."""
    pipe = _fit(make_pipeline(feature_set, transform, k, settings.seed), df)
    labels = pipe[-1].labels_
    space = pipe[:-1].transform(df)
    sizes = np.bincount(labels, minlength=k)
    aris = bootstrap_ari(pipe, df, labels, settings.seed, n_boot)
    row: dict[str, Any] = {
        "feature_set": feature_set,
        "transform": transform,
        "n_features": len(FEATURE_SETS[feature_set]),
        "k": k,
        "inertia": float(pipe[-1].inertia_),
        "silhouette": silhouette(space, labels, settings.seed),
        "silhouette_pca2": silhouette_pca2(space, labels, settings.seed),
        "calinski_harabasz": float(calinski_harabasz_score(space, labels)),
        "stability_ari": float(aris.mean()),
        "stability_ari_min": float(aris.min()),
        "smallest_share": float(sizes.min() / len(df)),
        "purity": _purity(df["Total_Revolving_Bal"].to_numpy() > 0, labels, k),
    }
    if schema.TARGET in df.columns:
        churn = df[schema.TARGET].to_numpy()
        row["churn_ratio_fit"] = churn_ratio(churn_rates(churn, labels, k))
        cv = _cv_churn_ratios(df, feature_set, transform, k, settings)
        row["cv_churn_ratio"] = float(np.median(cv))
        row["cv_churn_ratio_min"] = float(cv.min())
    return row


def compare_segmentations(
    df: pd.DataFrame,
    settings: Settings,
    candidates: Sequence[tuple[str, str]] = CANDIDATES,
    ks: Iterable[int] = range(3, 9),
    n_boot: int = 20,
    progress: bool = True,
) -> pd.DataFrame:
    """Tidy table, one row per (feature set, transform, k): inertia (elbow), silhouette in
    the clustering space and in 2-D PCA, Calinski–Harabasz, bootstrap ARI (mean, min),
    smallest segment share, credit-behaviour purity and churn ratios (fit data and per CV fold).

    Run it on the training split only. About 25 KMeans fits per row (seconds each row)."""
    grid = [(f, t, k) for f, t in candidates for k in ks]
    try:
        from tqdm.auto import tqdm

        it = tqdm(grid, desc="segmentations", disable=not progress)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        it = grid
    rows = []
    for f, t, k in it:
        rows.append(evaluate_candidate(df, settings, f, t, k, n_boot))
        logger.info("candidate %s/%s k=%d: %s", f, t, k, rows[-1])
    return pd.DataFrame(rows)


def elbow_k(table: pd.DataFrame) -> int:
    """The elbow of an inertia curve (one candidate's rows): the k farthest below the straight
    line from the first to the last point, on min–max-scaled axes (the 'kneedle' idea)."""
    t = table.sort_values("k")
    k = t["k"].to_numpy(dtype=float)
    y = t["inertia"].to_numpy(dtype=float)
    if len(k) < 3:
        return int(k[0])
    kn = (k - k[0]) / (k[-1] - k[0])
    yn = (y - y.min()) / (y.max() - y.min()) if y.max() > y.min() else np.zeros_like(y)
    line = yn[0] + (yn[-1] - yn[0]) * kn
    return int(k[np.argmax(line - yn)])


@dataclass(frozen=True)
class Choice:
    """The chosen segmentation and why, from a comparison table."""

    feature_set: str
    transform: str
    k: int
    row: dict[str, Any]
    eligible: pd.DataFrame
    rationale: str


def eligibility(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with one boolean column per floor and `eligible` (all of them)."""
    t = table.copy()
    t["ok_k"] = t["k"] >= MIN_K
    t["ok_silhouette"] = t["silhouette"] >= MIN_SILHOUETTE
    t["ok_stability"] = t["stability_ari"] >= MIN_STABILITY
    t["ok_size"] = t["smallest_share"] >= MIN_SHARE
    t["ok_purity"] = t["purity"] >= MIN_PURITY
    if "cv_churn_ratio_min" in t:
        t["ok_churn"] = t["cv_churn_ratio_min"] >= MIN_CHURN_RATIO
    oks = [c for c in t.columns if c.startswith("ok_")]
    t["eligible"] = t[oks].all(axis=1)
    return t


def choose_segmentation(table: pd.DataFrame) -> Choice:
    """Pick from `compare_segmentations` output: among rows meeting every floor
    (`eligibility`), the feature set describing the most needs, then the highest silhouette,
    then the higher Calinski–Harabasz. Raises if nothing qualifies."""
    t = eligibility(table)
    ok = t[t["eligible"]].sort_values(
        ["n_features", "silhouette", "calinski_harabasz"], ascending=[False, False, False]
    )
    if ok.empty:
        raise ValueError(
            "no candidate segmentation meets every floor; relax them or add candidates"
        )
    best = ok.iloc[0].to_dict()
    same = t[(t["feature_set"] == best["feature_set"]) & (t["transform"] == best["transform"])]
    elbow = elbow_k(same)
    best_sil = t.loc[t["silhouette"].idxmax()]
    failed = [c.removeprefix("ok_") for c in t.columns if c.startswith("ok_") and not best_sil[c]]
    is_best = (
        best_sil["feature_set"] == best["feature_set"]
        and best_sil["transform"] == best["transform"]
        and int(best_sil["k"]) == int(best["k"])
    )
    if is_best:
        why_not = "is this choice."
    elif failed:
        why_not = f"misses the floor(s) on {', '.join(failed)}."
    else:
        why_not = f"describes fewer needs ({int(best_sil['n_features'])} features)."
    rich = t.sort_values("n_features", ascending=False).iloc[0]
    rich_best = t[t["feature_set"] == rich["feature_set"]]["silhouette"].max()
    cv = (
        f", cross-validated churn ratio {best['cv_churn_ratio']:.1f} (worst fold "
        f"{best['cv_churn_ratio_min']:.1f})"
        if "cv_churn_ratio" in best
        else ""
    )
    rationale = (
        f"Chosen: {best['feature_set']} ({', '.join(FEATURE_SETS[best['feature_set']])}), "
        f"transform {best['transform']}, k={int(best['k'])}. On the training data it scores "
        f"silhouette {best['silhouette']:.3f} in its own space ({best['silhouette_pca2']:.3f} "
        f"in 2-D PCA), Calinski–Harabasz {best['calinski_harabasz']:,.0f}, bootstrap ARI "
        f"{best['stability_ari']:.3f} (worst {best['stability_ari_min']:.3f}), smallest segment "
        f"{best['smallest_share']:.0%}, credit-behaviour purity {best['purity']:.0%}{cv}. "
        f"{int(t['eligible'].sum())} of {len(t)} candidates meet every floor (k ≥ {MIN_K}, "
        f"silhouette ≥ {MIN_SILHOUETTE}, ARI ≥ {MIN_STABILITY}, segments ≥ {MIN_SHARE:.0%}, "
        f"purity ≥ {MIN_PURITY:.0%}, CV churn ratio ≥ {MIN_CHURN_RATIO:g} in every fold); "
        f"among them it describes the most needs ({int(best['n_features'])} features) with the "
        f"best silhouette. The richest set ({rich['feature_set']}, {int(rich['n_features'])} "
        f"features) reaches only silhouette {rich_best:.3f}; the highest silhouette overall "
        f"({best_sil['silhouette']:.3f}, {best_sil['feature_set']}/{best_sil['transform']} "
        f"k={int(best_sil['k'])}) {why_not}"
        + f" The inertia elbow of the chosen feature set is at k={elbow}."
    )
    return Choice(
        feature_set=str(best["feature_set"]),
        transform=str(best["transform"]),
        k=int(best["k"]),
        row=best,
        eligible=t,
        rationale=rationale,
    )


def segment_metrics(
    segmenter: Segmenter, train: pd.DataFrame, test: pd.DataFrame, n_boot: int = 20
) -> dict[str, Any]:
    """Metrics for reports/metrics/segments.json, as plain JSON-able types.

    `segmenter` must be fitted on `train`. Scores of the clustering (silhouette in its own
    space and the prototype's 2-D PCA way, Calinski–Harabasz, bootstrap ARI over `n_boot`
    resamples) are on `train`; churn per segment and `churn_ratio` (highest ÷ lowest; null if
    the lowest is 0) are on the held-out `test`; `*_train` are the same on `train`."""
    check_is_fitted(segmenter)
    k, seed = segmenter.n_segments, segmenter.seed
    labels = segmenter.predict(train)
    space = segmenter.transform(train)
    raw_train = _predict(segmenter.pipeline_, train)
    aris = bootstrap_ari(segmenter.pipeline_, train, raw_train, seed, n_boot)
    test_labels = segmenter.predict(test)
    test_space = segmenter.transform(test)
    out: dict[str, Any] = {
        "k": k,
        "feature_set": segmenter.feature_set,
        "transform": segmenter.feature_transform,
        "features": list(segmenter.feature_names_),
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "silhouette": _json_float(silhouette(space, labels, seed)),
        "silhouette_pca2": _json_float(silhouette_pca2(space, labels, seed)),
        "calinski_harabasz": _json_float(calinski_harabasz_score(space, labels), 1),
        "silhouette_within_credit_groups": _json_float(
            silhouette_within_groups(space, labels, segmenter.feature_names_, seed)
        ),
        "stability_ari": _json_float(float(aris.mean())),
        "stability_ari_min": _json_float(float(aris.min())),
        "n_bootstrap": n_boot,
        "silhouette_test": _json_float(silhouette(test_space, test_labels, seed)),
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
        out["churn_rate"] = {str(s): _json_float(r) for s, r in enumerate(rates_test)}
        out["churn_ratio"] = _json_float(churn_ratio(rates_test), 2)
        out["churn_rate_train"] = {str(s): _json_float(r) for s, r in enumerate(rates_train)}
        out["churn_ratio_train"] = _json_float(churn_ratio(rates_train), 2)
        for s in range(k):
            segments[s]["churn_rate_train"] = _json_float(rates_train[s])
            segments[s]["churn_rate_test"] = _json_float(rates_test[s])
    out["segments"] = segments
    return out


def plot_selection(table: pd.DataFrame, feature_set: str, transform: str) -> Figure:
    """Elbow (inertia), silhouette and bootstrap ARI against k for one candidate."""
    t = table[(table["feature_set"] == feature_set) & (table["transform"] == transform)]
    t = t.sort_values("k")
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    specs = (
        ("inertia", "Inertia (sum of squared distances, scaled units²)", None),
        ("silhouette", "Silhouette (−1 to 1)", MIN_SILHOUETTE),
        ("stability_ari", "Bootstrap ARI (0 to 1)", MIN_STABILITY),
    )
    for ax, (col, label, floor) in zip(axes, specs, strict=True):
        ax.plot(t["k"], t[col], marker="o")
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1, label=f"floor {floor}")
            ax.legend(loc="lower left", fontsize=8)
        ax.set_xlabel("Number of segments k (count)")
        ax.set_ylabel(label)
        ax.set_xticks(t["k"])
        ax.grid(alpha=0.3)
    fig.suptitle(f"Choosing k for {feature_set} ({transform} transform), training data")
    return fig


# ---------------------------------------------------------------------------------------------
# Notebook 05: the baseline beside the prototype's claims, the comparison at a glance, captions
# ---------------------------------------------------------------------------------------------

#: The prototype's published figures, quoted from its report (not computed by this project):
#: KMeans k=3 on `BASELINE_FEATURES`, silhouette in 2-D PCA, churn per group lowest first, on
#: the full public file. Its main run and its numeric vs one-hot comparison quote slightly
#: different silhouettes (0.497 and 0.496).
PROTOTYPE_CLAIMS: dict[str, float] = {
    "silhouette_pca2": 0.497,
    "churn_rate_0": 0.081,
    "churn_rate_1": 0.107,
    "churn_rate_2": 0.303,
    "silhouette_pca2_numeric": 0.496,
    "silhouette_pca2_one_hot": 0.491,
}


def baseline_silhouette_own_space(
    df: pd.DataFrame, result: BaselineResult, settings: Settings
) -> float:
    """Silhouette of the numeric baseline's groups in the space it clusters before its PCA:
    `BASELINE_FEATURES` standard-scaled (4 dimensions). `result` is `baseline(df, settings)`."""
    _check_columns(df, BASELINE_FEATURES, "the baseline")
    space = StandardScaler().fit_transform(df[list(BASELINE_FEATURES)].to_numpy(np.float64))
    return silhouette(space, result.labels, settings.seed)


def baseline_vs_prototype(
    numeric: BaselineResult, one_hot: BaselineResult, own_space_silhouette: float
) -> pd.DataFrame:
    """The prototype's published figures (`PROTOTYPE_CLAIMS`) beside this run's, one row per
    measure, as display text: silhouettes, churn and size per group (lowest churn first), the
    churn ratio (highest ÷ lowest group) and the numeric vs numeric + one-hot comparison."""
    c = PROTOTYPE_CLAIMS
    g = numeric.groups
    rows = [
        (
            "Silhouette in 2-D PCA (numeric)",
            f"{c['silhouette_pca2']:.3f}",
            f"{numeric.silhouette_pca2:.3f}",
        ),
        ("Silhouette in its own scaled 4-D space", "not published", f"{own_space_silhouette:.3f}"),
    ]
    rows += [
        (f"Churn rate, group {r.group}", f"{c[f'churn_rate_{r.group}']:.1%}", f"{r.churn_rate:.1%}")
        for r in g.itertuples()
    ]
    rows += [
        (
            "Churn ratio, highest ÷ lowest group",
            f"{c['churn_rate_2'] / c['churn_rate_0']:.1f} (from its rates)",
            f"{churn_ratio(g['churn_rate'].to_numpy(dtype=float)):.1f}",
        ),
        ("Customers per group", "not published", " / ".join(f"{s:,}" for s in g["size"])),
        (
            "Comparison: silhouette in 2-D PCA, numeric",
            f"{c['silhouette_pca2_numeric']:.3f}",
            f"{numeric.silhouette_pca2:.3f}",
        ),
        (
            "Comparison: silhouette in 2-D PCA, numeric + one-hot categoricals",
            f"{c['silhouette_pca2_one_hot']:.3f}",
            f"{one_hot.silhouette_pca2:.3f}",
        ),
    ]
    return pd.DataFrame(rows, columns=["measure", "prototype (published)", "this run"]).set_index(
        "measure"
    )


def design_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per design (feature set, transform) of a `compare_segmentations` table: its
    number of features, its inertia elbow, silhouette / Calinski–Harabasz / bootstrap ARI at that k, its
    best silhouette (and k), the ks meeting every floor (`eligibility`) and the floors missed at
    the elbow k: what rules the design out at its natural number of segments."""
    t = eligibility(table)
    oks = [c for c in t.columns if c.startswith("ok_")]
    rows = []
    for (feature_set, transform), part in t.groupby(["feature_set", "transform"], sort=False):
        elbow = elbow_k(part)
        at = part.set_index("k").loc[elbow]
        best = part.loc[part["silhouette"].idxmax()]
        eligible = part.loc[part["eligible"], "k"].astype(int).tolist()
        rows.append(
            {
                "feature_set": feature_set,
                "transform": transform,
                "n_features": len(FEATURE_SETS[feature_set]),
                "elbow_k": elbow,
                "silhouette_at_elbow": round(float(at["silhouette"]), 3),
                "calinski_harabasz_at_elbow": round(float(at["calinski_harabasz"])),
                "stability_ari_at_elbow": round(float(at["stability_ari"]), 3),
                "best_silhouette": f"{best['silhouette']:.3f} (k={int(best['k'])})",
                "k_meeting_every_floor": ", ".join(map(str, eligible)) or "none",
                "floors_missed_at_elbow": ", ".join(c.removeprefix("ok_") for c in oks if not at[c])
                or "none",
            }
        )
    return pd.DataFrame(rows).set_index(["feature_set", "transform"])


def plot_comparison(
    table: pd.DataFrame, feature_set: str, transform: str, subtitle: str = ""
) -> Figure:
    """Every design of a `compare_segmentations` table against k, in four panels: the elbow
    (inertia ÷ inertia at the smallest k, so designs of different sizes share an axis),
    silhouette, Calinski–Harabasz (log scale) and bootstrap ARI; floors dashed, the design
    (`feature_set`, `transform`) drawn thick and black."""
    fig = Figure(figsize=(11, 8.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    specs = (
        ("inertia", "Inertia ÷ inertia at the smallest k (ratio)", None, "Elbow"),
        ("silhouette", "Silhouette in the design's own space (−1 to 1)", MIN_SILHOUETTE, None),
        ("calinski_harabasz", "Calinski–Harabasz (ratio, log scale)", None, None),
        ("stability_ari", "Bootstrap ARI, mean over resamples (0 to 1)", MIN_STABILITY, None),
    )
    colors = [f"C{i}" for i in range(10)]
    designs = list(dict.fromkeys(zip(table["feature_set"], table["transform"], strict=True)))
    for ax, (col, label, floor, _) in zip(axes, specs, strict=True):
        others = iter(colors)
        for f, tr in designs:
            t = table[(table["feature_set"] == f) & (table["transform"] == tr)].sort_values("k")
            y = t[col] / t[col].iloc[0] if col == "inertia" else t[col]
            chosen = (f, tr) == (feature_set, transform)
            ax.plot(
                t["k"],
                y,
                marker="o",
                markersize=5 if chosen else 3,
                linewidth=2.8 if chosen else 1.2,
                color="black" if chosen else next(others),
                alpha=1.0 if chosen else 0.8,
                label=f"{f} / {tr}" + (" (chosen)" if chosen else ""),
                zorder=3 if chosen else 2,
            )
        if floor is not None:
            ax.axhline(floor, color="grey", linestyle="--", linewidth=1)
            ax.annotate(
                f"floor {floor}",
                (0, floor),
                xycoords=("axes fraction", "data"),
                xytext=(4, -11),
                textcoords="offset points",
                fontsize=8,
                color="grey",
            )
        if col == "calinski_harabasz":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel("Number of segments k (count)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted(table["k"].unique()))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8.5, frameon=False)
    fig.suptitle(
        "Candidate segmentations by number of segments: elbow, separation and stability"
        + (f"\n{subtitle}" if subtitle else "")
    )
    return fig


def plot_segment_churn(segments: pd.DataFrame, base_rate: float) -> Figure:
    """Churn rate (%) of every segment on the training and on the held-out customers, from
    `segment_metrics(...)["segments"]` as a frame (`name`, `size_test`, `churn_rate_train`,
    `churn_rate_test`); riskiest at the top, the held-out base rate dashed."""
    t = segments.sort_values("churn_rate_test")
    y = np.arange(len(t))
    fig = Figure(figsize=(9, 1.0 + 0.75 * len(t)), layout="constrained")
    ax = fig.add_subplot()
    h = 0.38
    ax.barh(y + h / 2, 100 * t["churn_rate_train"], h, color="#9ecae1", label="training split")
    bars = ax.barh(y - h / 2, 100 * t["churn_rate_test"], h, color="#2a7ab9", label="held out")
    ax.bar_label(bars, [f"{v:.1%}" for v in t["churn_rate_test"]], padding=3, fontsize=8)
    ax.axvline(100 * base_rate, color="grey", linestyle="--", linewidth=1)
    ax.annotate(
        f"all held-out customers {base_rate:.1%}",
        (100 * base_rate, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -10),
        textcoords="offset points",
        fontsize=8,
        color="grey",
    )
    labels = [f"{n}\n({s:,} held out)" for n, s in zip(t["name"], t["size_test"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 100 * max(t["churn_rate_test"].max(), t["churn_rate_train"].max()) * 1.18)
    ax.set_xlabel("Churn rate (% of the segment's customers)")
    ax.set_ylabel("Segment (held-out customers)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Churn rate by segment: training vs held-out customers")
    return fig


def profile_caption(segmenter: Segmenter, segment: int, n: int = 2) -> str:
    """The sentence under a profile chart (markdown): what the bars show, the segment's credit
    behaviour, the `n` other traits that set it apart most (median vs base median) and its churn
    against the base."""
    p = segmenter._profile()
    z = p.z[segment]
    rev = p.col(REVOLVER)
    others = [j for j, c in enumerate(p.columns) if c not in CREDIT_COLUMNS]
    parts = []
    for j in sorted(others, key=lambda j: -abs(z[j]))[:n]:
        _, label, fmt = PROFILE_FEATURES[j]
        short = label.split(" (")[0].split(",")[0]
        parts.append(
            f"{short[0].lower()}{short[1:]} ({z[j]:+.1f} sd: median "
            f"{fmt.format(p.median[segment, j])} vs {fmt.format(p.base_median[j])})"
        )
    text = (
        "Bars: the segment's mean minus the training base's, in base standard deviations (blue "
        "above, orange below); labels: segment median vs base median. "
        f"**{segmenter.names_[segment]}**: {p.mean[segment, rev]:.0%} carry a revolving balance "
        f"(base {p.base_mean[rev]:.0%}); beyond credit use they differ most in "
        + " and ".join(parts)
        + "."
    )
    if math.isfinite(p.churn[segment]) and p.base_churn > 0:
        text += (
            f" Churn {p.churn[segment]:.1%} against {p.base_churn:.1%} for the base "
            f"({_times(p.churn[segment] / p.base_churn)})."
        )
    return text.replace("$", "\\$")
