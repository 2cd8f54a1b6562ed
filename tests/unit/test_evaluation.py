"""nba.evaluation: the paired bootstrap behind the restated stage-1 comparison."""

from __future__ import annotations

import numpy as np
import pytest

from nba import evaluation


def test_vectorised_resamples_equal_scikit_learn_on_each_resample():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.round(rng.random(500) * 0.5 + y * 0.3, 2)  # many ties, as real scores have
    weights = evaluation._resample_weights(y, 30, seed=3)
    assert (weights.sum(axis=1) == len(y)).all()
    assert (weights[:, y == 1].sum(axis=1) == y.sum()).all()  # stratified: churners stay churners
    got = evaluation._weighted_lead_metrics(y, p, 0.4, weights)
    draws = np.random.default_rng(3)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for b in range(30):
        idx = np.concatenate([draws.choice(pos, len(pos)), draws.choice(neg, len(neg))])
        expected = evaluation._lead_metrics(y[idx], p[idx], 0.4)
        assert got["pr_auc"][b] == pytest.approx(expected["pr_auc"], abs=1e-12)
        assert got["f1"][b] == pytest.approx(expected["f1"], abs=1e-12)


def test_the_bootstrap_needs_a_resample():
    with pytest.raises(ValueError, match="n_boot >= 1"):
        evaluation.baseline_comparison(object(), None, None, n_boot=0)
