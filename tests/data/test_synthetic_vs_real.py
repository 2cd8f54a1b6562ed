"""The synthetic default measured against the real development file (issue: foundation).

Targets: churn 16 % ± 1 point; category shares within 2 points and churn by category close;
KS ≤ 0.05 per numeric column overall and within each class; Pearson correlations within 0.10
entry by entry; a classifier trained on synthetic scores ROC-AUC ≥ 0.95 on the real customers.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nba.config import Settings
from nba.data import fidelity, schema, synth

pytestmark = pytest.mark.real_data


def test_churn_rate_within_one_point(synthetic, real):
    rate = synthetic[schema.TARGET_RAW].eq(schema.ATTRITED).mean()
    real_rate = real[schema.TARGET_RAW].eq(schema.ATTRITED).mean()
    assert abs(rate - 0.16) <= 0.01
    assert abs(rate - real_rate) <= 0.01


def test_category_shares_within_two_points(synthetic, real):
    gaps = fidelity.category_gaps(synthetic, real)
    worst = gaps.loc[gaps.share_gap.idxmax()]
    assert worst.share_gap <= 2.0, f"{worst.column}={worst.category}: {worst.share_gap:.2f} points"


def test_churn_by_category_close_to_real(synthetic, real):
    """Within 3 points, or 3 standard errors of the real rate where few customers hold the
    category (Platinum: 16 customers, so its real rate is itself uncertain by ±11 points)."""
    gaps = fidelity.category_gaps(synthetic, real)
    p = gaps.churn_real / 100
    se_points = 100 * np.sqrt(p * (1 - p) / gaps.real_count)
    allowed = np.maximum(3.0, 3 * se_points)
    bad = gaps[gaps.churn_gap > allowed]
    assert bad.empty, bad[["column", "category", "churn_synthetic", "churn_real"]].to_string()


def test_ks_per_numeric_column_overall_and_within_class(synthetic, real):
    ks = fidelity.ks_statistics(synthetic, real)
    assert list(ks.index) == list(schema.NUMERIC)
    worst = ks.stack().idxmax()
    assert ks.to_numpy().max() <= 0.05, f"KS {ks.stack().max():.3f} at {worst}"


def test_correlation_matrix_within_a_tenth(synthetic, real):
    gap = fidelity.correlation_gap(synthetic, real)
    worst = gap.stack().idxmax()
    assert gap.to_numpy().max() <= 0.10, f"{gap.stack().max():.3f} at {worst}"


@pytest.mark.slow
def test_train_on_synthetic_test_on_real_auc(synthetic, real):
    auc = fidelity.train_synthetic_test_real(synthetic, real, seed=Settings().seed)
    assert auc >= 0.95


def test_bounds_are_within_the_real_range(synthetic, real):
    for col in schema.NUMERIC:
        assert synthetic[col].min() >= real[col].min(), col
        assert synthetic[col].max() <= real[col].max(), col


def _assert_close(got, want, where="calibration"):
    """Equal structure; numbers equal to 1e-5 (BLAS may differ in the last digit kept)."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-5), where
    else:
        assert got == want, where


def test_committed_calibration_is_what_the_real_file_gives(real):
    """The shipped statistics are reproducible from the real file by the shipped code."""
    fresh = json.loads(json.dumps(synth.calibrate(real)))
    _assert_close(fresh, synth.load_calibration())


def test_calibration_holds_no_customer_ids(real):
    numbers = set(re.findall(r"\d{9}", synth.calibration_text()))
    assert not numbers & set(real[schema.ID].astype(str))


def test_fidelity_command_prints_the_headline_figures(real_path, capsys):
    from nba.cli import main

    assert main(["data", "fidelity", str(real_path), "--rows", "5000"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["rows_synthetic"].strip() == "5,000"
    assert float(lines["max_ks_overall"]) <= 0.05
    assert float(lines["tstr_roc_auc"]) >= 0.95
