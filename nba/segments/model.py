"""Stage 2 as it ships: `Segmenter`, need-based customer segments, their names and the
assignment of new customers.

The segmentation clusters customers on two needs that a card offer can answer: how much they
use the card (log of 12-month transaction amount and count: dormant, light, everyday, high
spend) and whether they borrow on it (revolving balance > 0: revolver vs transactor). Everything
else (utilisation, limit, inactivity, contacts, products held, Q4/Q1 trends, churn) describes
the segments but does not shape them (`nba.segments.profile`). Why this design, and the
prototype's KMeans baseline it replaced: `nba.segments.selection`.

Names and descriptions are generated from each segment's profile by rules (`name_segments`,
`describe_segment`), so they follow the data when it or the seed changes. Segment ids are
ordered by size (0 = largest) for the same reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import calinski_harabasz_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from nba.config import Settings
from nba.data import schema
from nba.segments.metrics import churn_ratio, json_float, silhouette, silhouette_pca2
from nba.segments.profile import Profile, compute_profile, describe_segment, name_segments
from nba.segments.space import REVOLVER, fit_pipeline, make_pipeline, predict_pipeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: The chosen design (why: `nba.segments.selection`).
DEFAULT_FEATURE_SET = "spend_revolver"
DEFAULT_TRANSFORM = "log"
DEFAULT_K = 5


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
        pipe = fit_pipeline(self.make_pipeline(), X)
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
            "silhouette": json_float(silhouette(space, self.labels_, self.seed)),
            "silhouette_pca2": json_float(silhouette_pca2(space, self.labels_, self.seed)),
            "calinski_harabasz": json_float(calinski_harabasz_score(space, self.labels_), 1),
            "churn_rate": {str(s): json_float(r) for s, r in enumerate(p.churn)},
            "churn_ratio": json_float(churn_ratio(p.churn), 2),
        }
        logger.info(
            "segments: k=%d on %d customers, silhouette %.3f",
            k,
            len(X),
            self.metrics_["silhouette"],
        )
        return self

    def profile(self) -> Profile:
        """The fitted segments' profile statistics (what names, descriptions and charts use)."""
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
        return self.label_map_[predict_pipeline(self.pipeline_, X)]

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
        p = self.profile()
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
        p = self.profile()
        return pd.DataFrame(p.z, index=pd.Index(self.names_, name="segment"), columns=p.columns)

    def profile_chart(self, segment: int) -> Figure:
        """The profile chart of one segment (a matplotlib Figure, no pyplot state)."""
        p = self.profile()
        if not 0 <= segment < p.k:
            raise ValueError(f"segment must be between 0 and {p.k - 1}, got {segment}")
        from nba.plots import segment_profile  # matplotlib only when a chart is drawn

        return segment_profile(p, segment, self.names_[segment])

    def profile_charts(self) -> dict[int, Figure]:
        """Every segment's profile chart, by id."""
        return {s: self.profile_chart(s) for s in range(self.n_segments)}
