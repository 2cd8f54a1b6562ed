"""How fast stage 1 is: training the churn model, batch scoring, one customer, reasons.

Targets (stage-1 issue), on the 2-core reference machine:
  training the final model on the development data ≤ 60 s;
  batch scoring ≥ 200,000 customers/s; one customer ≤ 5 ms.
Run: `.venv/bin/python bench/bench_train.py [DATA] [--full] [--rows N]`
  DATA   the development file (default: $NBA_DATA, else synthetic customers, said loudly)
  --full also time the whole stage: candidate comparison, feature evidence, 60-draw search
  --rows customers in the batch-scoring test (default 1,000,000, synthetic)
Figures depend on machine load: other processes on the 2 cores slow everything down.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe, timed  # noqa: E402

from nba import churn  # noqa: E402
from nba.churn import TrainOptions  # noqa: E402
from nba.config import DATA_ENV, Settings  # noqa: E402
from nba.data import schema, synth  # noqa: E402
from nba.data.io import load  # noqa: E402
from nba.data.validate import validate  # noqa: E402
from nba.features import split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=os.environ.get(DATA_ENV))
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = Settings()

    print(f"machine: {describe()}")
    if args.data and Path(args.data).is_file():
        df = load(args.data)
        print(f"data: {args.data} ({len(df):,} customers)")
    else:
        df = validate(synth.generate(10_127, settings.seed)).clean
        print(f"data: SYNTHETIC ({len(df):,} customers) — set {DATA_ENV} for the real file")

    fast_s, (model, metrics) = timed(
        lambda: churn.train_churn(df, settings, TrainOptions.fast()), repeat=3
    )
    print(
        f"train_churn, fast configuration (split + out-of-fold calibration/threshold + final "
        f"fit): {fast_s:.1f} s (median of 3); final fit {metrics['fit_seconds']:.2f} s"
    )
    print(
        f"  held-out ROC-AUC {metrics['roc_auc']:.4f}, PR-AUC {metrics['pr_auc']:.4f}, "
        f"F1 {metrics['f1']:.4f} (precision {metrics['precision']:.4f}, recall "
        f"{metrics['recall']:.4f}) at threshold {metrics['threshold']:.3f}"
    )
    if args.full:
        full_s, (_, full) = timed(lambda: churn.train_churn(df, settings), repeat=1)
        print(
            f"train_churn, full (comparison + feature evidence + {full['tuning']['n_iter']}-draw "
            f"search + fit): {full_s:.1f} s"
        )

    batch = validate(synth.generate(args.rows, seed=1)).clean
    proba_s, _ = timed(lambda: model.predict_proba(batch), repeat=3)
    print(
        f"batch predict_proba, {len(batch):,} customers (features + trees + calibration, "
        f"{model.n_jobs} threads): {proba_s:.2f} s = {len(batch) / proba_s:,.0f} customers/s"
    )
    # The same size of model in scikit-learn, for the record (why LightGBM is a dependency).
    train, _ = split(df, settings)
    size = {k: churn.TUNED_PARAMS[k] for k in ("n_estimators", "learning_rate", "num_leaves")}
    hgb = churn.make_candidate(
        "hist_gradient_boosting",
        settings.seed,
        params={
            "max_iter": size["n_estimators"],
            "learning_rate": size["learning_rate"],
            "max_leaf_nodes": size["num_leaves"],
            "early_stopping": False,
        },
    ).fit(train, train[schema.TARGET])
    hgb_s, _ = timed(lambda: hgb.predict_proba(batch), repeat=3)
    print(
        f"  for comparison, HistGradientBoosting of the same size ({size['n_estimators']} trees "
        f"× {size['num_leaves']} leaves): {len(batch) / hgb_s:,.0f} customers/s"
    )
    one = batch.iloc[[0]]
    model.predict_proba(one)
    one_s, _ = timed(lambda: model.predict_proba(one), repeat=300)
    print(f"one customer predict_proba: {one_s * 1000:.2f} ms (median of 300)")
    one_r, _ = timed(lambda: model.reasons(one), repeat=100)
    print(f"one customer reasons (TreeSHAP, top 3): {one_r * 1000:.2f} ms (median of 100)")

    part = batch.iloc[:100_000]
    r_s, _ = timed(lambda: model.reasons(part, top=3), repeat=1)
    print(f"reasons (TreeSHAP, top 3), {len(part):,} customers: {len(part) / r_s:,.0f} customers/s")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
