"""Issue 18's stage-1 analysis on the data NBA_DATA names (or the synthetic default), training
split only for every choice (held-out customers read once, at the end, for calibration):

1. How early the score can warn: `nba.churn.feature_set_comparison` of the feature variants
   (`CHURN_FEATURE_SETS` plus one group left out at a time), 2 × 5 seeded folds, paired.
2. Calibration where decisions are made: `decision_calibration_report` on the out-of-fold
   probabilities with the engine's contacts, and the map `choose_calibration` takes.
3. The threshold: max F1 against the cost rule (every flag saves) and the rule priced as a
   campaign of retention offers at the catalogue's default save rate.
4. Held out: the engine's contacts under the chosen map, predicted against observed churn.

Result on the real file (2026-12-02; training split 6,480 customers, held out 1,621):
  1. CV PR-AUC (95 % t interval over 10 folds): full 0.968 (0.964-0.972), trend 0.581
     (0.562-0.600), early_warning 0.247 (0.235-0.258); ROC-AUC 0.993 / 0.805 / 0.634. Paired
     PR-AUC change against full: trend -0.387 (-0.406 to -0.368), early_warning -0.722 (-0.735
     to -0.708); without the 12-month window alone -0.269, without balances -0.008, without the
     trend -0.028. The profile keeps 11 % of the full model's lift over a random score.
  2. Decision region 810 customers; decision-weighted Brier none 0.0600, sigmoid 0.0585,
     isotonic 0.0585 -> sigmoid. Engine contacts: raw 72.7 % predicted vs 76.7 % observed,
     sigmoid 71.9 % vs 73.1 %.
  3. Max F1 0.415 (precision 0.909, recall 0.917, 16.2 % flagged, cost $30,108 if every flag
     saved its churner); the cost rule 0.082 ($19,469, 20.9 % flagged, precision 0.754); priced
     as retention offers at a 15 % save rate the offer never pays for an average churner
     ($305 over 3 years): flag nobody ($5,760 of offer cost lost at max F1).
  4. Held out: ECE 0.0065; the engine contacts 193: predicted 70.7 %, observed 75.1 % (95 %
     68.6-80.7 %).

Run: `NBA_DATA=/work/shared/data/BankChurners.csv .venv/bin/python bench/stage1_analysis.py`
(about a minute of CPU on 2 cores). Prints the figures; writes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba import churn, lineage, value
from nba.actions import load_catalogue
from nba.config import Settings
from nba.data import schema
from nba.data.discover import discover
from nba.data.io import load_with_rejects


def main() -> None:
    pd.set_option("display.width", 200)
    settings = Settings(cv_folds=5)
    source = discover(None, settings)
    print(source.banner)
    df, _ = load_with_rejects(source.path)
    train, test = lineage.held_out_split(df, settings)
    y = train[schema.TARGET].to_numpy()

    variants = {**churn.CHURN_FEATURE_SETS, "without the window": churn.WINDOW_12M}
    variants |= {"without balances": churn.BALANCES, "without trend": churn.TREND}
    table = churn.feature_set_comparison(train, y, settings, sets=variants, repeats=2)
    print("\n1. Feature variants (2 x 5 folds, training split)")
    print(churn.feature_set_summary(table).to_string())

    catalogue = load_catalogue()
    oof = churn.ChurnModel.from_settings(settings).out_of_fold_proba(train, y)
    contacts = lineage.engine_contacts(train, catalogue, settings)
    report = churn.decision_calibration_report(y, oof, contacts, settings.seed, settings.cv_folds)
    chosen = churn.choose_calibration(report, "decision_brier")
    print(f"\n2. Calibration where decisions are made (chosen: {chosen})")
    print(report.round(5).to_string())

    model = churn.ChurnModel.from_settings(settings, calibration=chosen).fit(train, y)
    p_oof = churn.apply_calibrator(model.calibrator_, oof)
    stake = value.value_at_stake(train, settings)
    cost_fp, missed = settings.servicing_cost, stake["value_per_lost_customer_horizon"]
    offer = catalogue.action("retention_offer")
    gain = max(offer.save_rate["default"] * missed - offer.cost, 0.0)
    cuts = {
        "max F1": model.threshold_,
        "cost, every flag saves": churn.choose_threshold(
            y, p_oof, "cost", cost_fp=cost_fp, value_missed=missed
        ),
        "cost, retention offer": churn.choose_threshold(
            y, p_oof, "cost", cost_fp=offer.cost, value_missed=gain
        ),
    }
    grid = np.array(list(cuts.values()))
    at = churn.threshold_table(y, p_oof, grid, cost_fp=cost_fp, value_missed=missed)
    at["offer_cost"] = churn.threshold_table(y, p_oof, grid, cost_fp=offer.cost, value_missed=gain)[
        "cost"
    ]
    print(f"\n3. Thresholds (missed churner ${missed:,.0f}, offer gain per saved ${gain:,.0f})")
    print(at.set_axis(list(cuts)).round(4).to_string())

    y_test = test[schema.TARGET].to_numpy()
    p = model.predict_proba(test)[:, 1]
    held = lineage.engine_contacts(test, catalogue, settings)(p)
    low, high = churn.wilson_interval(y_test[held].sum(), held.sum())
    print(
        f"\n4. Held out: ECE {churn.calibration_metrics(y_test, p)['ece']:.4f}; engine contacts "
        f"{int(held.sum())}: predicted {p[held].mean():.3f}, observed {y_test[held].mean():.3f} "
        f"(95 % {float(low):.3f} to {float(high):.3f})"
    )
    print(churn.reliability_table(y_test[held], p[held], strategy="quantile").round(3).to_string())


if __name__ == "__main__":
    main()
