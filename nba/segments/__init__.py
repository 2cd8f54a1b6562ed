"""Stage 2: customer segments that differ in needs.

- `nba.segments.model`: what ships — `Segmenter` (fit, names, descriptions, assignment);
- `nba.segments.space`: the clustering space (need columns, transforms) and the KMeans pipeline;
- `nba.segments.profile`: per-segment profiles, rule-based names and descriptions;
- `nba.segments.metrics`: silhouette, churn ratio, stability and `segment_metrics`, the figures
  the bundle records;
- `nba.segments.selection`: how the design was chosen (the prototype's KMeans baseline, the
  design search, the choice rule, notebook 05's tables).

Figures are in `nba.plots` (`segment_profile`, `segment_k_choice`, `segmentation_comparison`,
`segment_churn`); the names notebook 05 knows them by (`plot_selection`, `plot_comparison`,
`plot_segment_churn`, `profile_chart`) are served from there on first use, so that importing
the shipped model does not import matplotlib. Every public name of the modules is importable from here.
"""

from typing import Any

from nba.segments.metrics import (
    SILHOUETTE_SAMPLE,
    bootstrap_ari,
    churn_rates,
    churn_ratio,
    churn_ratio_interval,
    criterion_intervals,
    json_float,
    purity,
    segment_metrics,
    silhouette,
    silhouette_interval,
    silhouette_pca2,
    silhouette_within_groups,
)
from nba.segments.model import (
    DEFAULT_FEATURE_SET,
    DEFAULT_K,
    DEFAULT_TRANSFORM,
    Segmenter,
)
from nba.segments.profile import (
    CREDIT_COLUMNS,
    PROFILE_COLUMNS,
    PROFILE_FEATURES,
    QUALIFIER_MIN_SD,
    QUALIFIERS,
    SPEND_TIERS,
    Profile,
    compute_profile,
    credit_noun,
    describe_segment,
    name_segments,
    profile_caption,
    profile_frame,
    qualifier,
    spend_tier,
)
from nba.segments.selection import (
    CANDIDATES,
    MIN_K,
    MIN_PURITY,
    MIN_SHARE,
    MIN_SILHOUETTE,
    MIN_STABILITY,
    PROTOTYPE_CLAIMS,
    BaselineResult,
    Choice,
    baseline,
    baseline_comparison,
    baseline_silhouette_own_space,
    baseline_vs_prototype,
    choose_segmentation,
    compare_segmentations,
    design_summary,
    elbow_k,
    eligibility,
    evaluate_candidate,
    targets_caption,
)
from nba.segments.space import (
    BASELINE_FEATURES,
    FEATURE_SETS,
    LOG_COLUMNS,
    REVOLVER,
    TRANSFORMS,
    NeedsFeatures,
    fit_pipeline,
    make_pipeline,
    pipeline_space,
    predict_pipeline,
    require_columns,
    source_columns,
)

#: Figures of stage 2 by the names notebook 05 uses → their name in `nba.plots`.
_FIGURES = {
    "plot_selection": "segment_k_choice",
    "plot_comparison": "segmentation_comparison",
    "plot_segment_churn": "segment_churn",
    "profile_chart": "segment_profile",
}


def __getattr__(name: str) -> Any:
    """The stage-2 figures, imported from `nba.plots` only when first asked for."""
    if name in _FIGURES:
        from nba import plots

        return getattr(plots, _FIGURES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINE_FEATURES",
    "BaselineResult",
    "CANDIDATES",
    "CREDIT_COLUMNS",
    "Choice",
    "DEFAULT_FEATURE_SET",
    "DEFAULT_K",
    "DEFAULT_TRANSFORM",
    "FEATURE_SETS",
    "LOG_COLUMNS",
    "MIN_K",
    "MIN_PURITY",
    "MIN_SHARE",
    "MIN_SILHOUETTE",
    "MIN_STABILITY",
    "NeedsFeatures",
    "PROFILE_COLUMNS",
    "PROFILE_FEATURES",
    "PROTOTYPE_CLAIMS",
    "Profile",
    "QUALIFIERS",
    "QUALIFIER_MIN_SD",
    "REVOLVER",
    "SILHOUETTE_SAMPLE",
    "SPEND_TIERS",
    "Segmenter",
    "TRANSFORMS",
    "baseline",
    "baseline_comparison",
    "baseline_silhouette_own_space",
    "baseline_vs_prototype",
    "bootstrap_ari",
    "choose_segmentation",
    "churn_rates",
    "churn_ratio",
    "churn_ratio_interval",
    "criterion_intervals",
    "compare_segmentations",
    "compute_profile",
    "credit_noun",
    "describe_segment",
    "design_summary",
    "elbow_k",
    "eligibility",
    "evaluate_candidate",
    "targets_caption",
    "fit_pipeline",
    "json_float",
    "make_pipeline",
    "name_segments",
    "pipeline_space",
    "plot_comparison",
    "plot_segment_churn",
    "profile_chart",
    "plot_selection",
    "predict_pipeline",
    "profile_caption",
    "profile_frame",
    "purity",
    "qualifier",
    "require_columns",
    "segment_metrics",
    "silhouette",
    "silhouette_interval",
    "silhouette_pca2",
    "silhouette_within_groups",
    "source_columns",
    "spend_tier",
]
