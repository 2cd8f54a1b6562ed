"""Stage 1: who is about to leave.

- `nba.churn.model`: what ships — `ChurnModel` (LightGBM, tuned parameters), its feature
  variants (`CHURN_FEATURE_SETS`: the whole record, or without the behaviour of the 12-month
  window for an earlier warning; the setting `churn_features`), its scoring path and its
  per-customer reasons (TreeSHAP);
- `nba.churn.compiled`: the trees compiled to native code with lleaves, checked against
  LightGBM, cached on disk;
- `nba.churn.calibration`: the calibration map and the threshold rule `ChurnModel.fit` fits,
  reliability with intervals, and the calibration judged where the engine makes decisions;
- `nba.churn.selection`: how the model was chosen (candidates, cross-validated comparison,
  feature evidence, the feature variants' comparison, tuning, the threshold study) and
  `train_churn`, the whole stage.

Every public name of these modules is importable from `nba.churn` itself.
"""

from nba.churn.calibration import (
    CALIBRATION_MIN_GAIN,
    CALIBRATIONS,
    DECISION_CRITERION,
    DEFAULT_CALIBRATION,
    MONOTONE_MIN_GAIN,
    THRESHOLD_RULES,
    apply_calibrator,
    calibration_metrics,
    calibration_report,
    choose_calibration,
    choose_threshold,
    decision_calibration_report,
    fit_calibrator,
    reliability_table,
    wilson_interval,
)
from nba.churn.compiled import CACHE_KEEP, COMPILED_TOLERANCE, compiled_booster, prune_cache
from nba.churn.model import (
    BALANCES,
    CHOSEN,
    CHURN_FEATURE_SETS,
    LGBM_FIXED,
    PROFILE,
    TREND,
    TUNED_PARAMS,
    WINDOW_12M,
    ChurnModel,
    feature_set_exclusions,
    global_importance,
    lgbm_params,
)
from nba.churn.selection import (
    BASELINE,
    CANDIDATES,
    SCORING,
    SEARCH_SPACE,
    TrainOptions,
    compare_candidates,
    evaluate,
    feature_evidence,
    feature_set_comparison,
    feature_set_summary,
    make_candidate,
    select_engineered,
    threshold_table,
    train_churn,
    tune,
)
from nba.features import ENGINEERED, KEPT_ENGINEERED  # the model's engineered-feature defaults

__all__ = [
    "BALANCES",
    "BASELINE",
    "CACHE_KEEP",
    "CALIBRATIONS",
    "DECISION_CRITERION",
    "DEFAULT_CALIBRATION",
    "CALIBRATION_MIN_GAIN",
    "CANDIDATES",
    "CHOSEN",
    "CHURN_FEATURE_SETS",
    "COMPILED_TOLERANCE",
    "ENGINEERED",
    "KEPT_ENGINEERED",
    "LGBM_FIXED",
    "MONOTONE_MIN_GAIN",
    "PROFILE",
    "SCORING",
    "SEARCH_SPACE",
    "THRESHOLD_RULES",
    "TREND",
    "TUNED_PARAMS",
    "WINDOW_12M",
    "ChurnModel",
    "TrainOptions",
    "apply_calibrator",
    "calibration_metrics",
    "calibration_report",
    "choose_calibration",
    "choose_threshold",
    "compare_candidates",
    "compiled_booster",
    "decision_calibration_report",
    "evaluate",
    "feature_evidence",
    "feature_set_comparison",
    "feature_set_exclusions",
    "feature_set_summary",
    "fit_calibrator",
    "global_importance",
    "lgbm_params",
    "make_candidate",
    "prune_cache",
    "reliability_table",
    "select_engineered",
    "threshold_table",
    "train_churn",
    "tune",
    "wilson_interval",
]
