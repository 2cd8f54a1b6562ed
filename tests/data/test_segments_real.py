"""Stage 2 targets on the real development file (issue: segmentation).

Baseline: the prototype's KMeans reproduces silhouette 0.497 (2-D PCA) and churn 8.1 / 10.7 /
30.3 % closely (those figures were on all 10,127 customers; this file holds 8,101 of them).
Segments: fitted on the training split from `split`; silhouette ≥ 0.50 in the clustering space,
≥ 4 segments, bootstrap ARI ≥ 0.95 over 20 resamples, and churn ratio (highest ÷ lowest
segment) ≥ 8 on the held-out customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba import segments as sg
from nba.config import Settings
from nba.data.io import load
from nba.features import split

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real_clean(real_path) -> pd.DataFrame:
    return load(real_path)


@pytest.fixture(scope="module")
def parts(real_clean) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(real_clean, Settings())


@pytest.fixture(scope="module")
def fitted(parts) -> sg.Segmenter:
    return sg.Segmenter(Settings()).fit(parts[0])


@pytest.fixture(scope="module")
def metrics(fitted, parts) -> dict:
    train, test = parts
    return sg.segment_metrics(fitted, train, test, n_boot=20)


def test_baseline_reproduces_the_prototype(real_clean):
    table = sg.baseline_comparison(real_clean, Settings())
    numeric, one_hot = table.iloc[0], table.iloc[1]
    assert numeric["silhouette_pca2"] == pytest.approx(0.497, abs=0.02)
    assert one_hot["silhouette_pca2"] == pytest.approx(0.491, abs=0.02)
    assert numeric["silhouette_pca2"] > one_hot["silhouette_pca2"]  # as in the prototype
    rates = numeric[["churn_rate_0", "churn_rate_1", "churn_rate_2"]].to_numpy(dtype=float)
    np.testing.assert_allclose(rates, [0.081, 0.107, 0.303], atol=0.015)
    assert numeric[["size_0", "size_1", "size_2"]].sum() == len(real_clean)


def test_silhouette_in_the_clustering_space(metrics):
    assert metrics["silhouette"] >= 0.50
    assert metrics["silhouette_within_credit_groups"] >= 0.50
    assert metrics["silhouette_test"] >= 0.50


def test_at_least_four_segments(metrics, fitted):
    assert metrics["k"] >= 4
    assert len(set(fitted.names_)) == metrics["k"]


def test_bootstrap_stability(metrics):
    assert metrics["n_bootstrap"] == 20
    assert metrics["stability_ari"] >= 0.95


def test_churn_separation_on_held_out_customers(metrics):
    assert metrics["n_test"] > 1500
    assert metrics["churn_ratio"] is not None
    assert metrics["churn_ratio"] >= 8


def test_every_segment_has_held_out_customers(metrics):
    assert all(s["size_test"] >= 50 for s in metrics["segments"])


def test_segments_differ_in_needs(fitted):
    """Spend tiers and credit behaviour both vary across segments (not one risk axis)."""
    profiles = fitted.profiles_
    assert profiles["revolver_share"].min() < 0.05 and profiles["revolver_share"].max() > 0.95
    spend = profiles["median_Total_Trans_Amt"]
    assert spend.max() / spend.min() > 3
