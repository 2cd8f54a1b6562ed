"""Stage 1: who is about to leave.

- `nba.churn.model`: what ships — `ChurnModel` (LightGBM, tuned parameters), its scoring path
  and its per-customer reasons (TreeSHAP);
- `nba.churn.compiled`: the trees compiled to native code with lleaves, checked against
  LightGBM, cached on disk;
- `nba.churn.calibration`: the calibration map and the threshold rule `ChurnModel.fit` chooses;
- `nba.churn.selection`: how the model was chosen (candidates, cross-validated comparison,
  feature evidence, tuning, the threshold study) and `train_churn`, the whole stage.

Every public name of these modules is importable from `nba.churn` itself.
"""

from nba.churn.calibration import (
    CALIBRATION_MIN_GAIN,
    CALIBRATIONS,
    DEFAULT_CALIBRATION,
    THRESHOLD_RULES,
    apply_calibrator,
    calibration_metrics,
    calibration_report,
    choose_calibration,
    choose_threshold,
    fit_calibrator,
    reliability_table,
)
from nba.churn.compiled import CACHE_KEEP, COMPILED_TOLERANCE, compiled_booster, prune_cache
from nba.churn.model import (
    CHOSEN,
    LGBM_FIXED,
    TUNED_PARAMS,
    ChurnModel,
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
    make_candidate,
    select_engineered,
    threshold_table,
    train_churn,
    tune,
)
from nba.features import ENGINEERED, KEPT_ENGINEERED  # the model's engineered-feature defaults

__all__ = [
    "BASELINE",
    "CACHE_KEEP",
    "CALIBRATIONS",
    "DEFAULT_CALIBRATION",
    "CALIBRATION_MIN_GAIN",
    "CANDIDATES",
    "CHOSEN",
    "COMPILED_TOLERANCE",
    "ENGINEERED",
    "KEPT_ENGINEERED",
    "LGBM_FIXED",
    "SCORING",
    "SEARCH_SPACE",
    "THRESHOLD_RULES",
    "TUNED_PARAMS",
    "ChurnModel",
    "TrainOptions",
    "apply_calibrator",
    "calibration_metrics",
    "calibration_report",
    "choose_calibration",
    "choose_threshold",
    "compare_candidates",
    "compiled_booster",
    "evaluate",
    "feature_evidence",
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
]
