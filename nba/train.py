"""`nba train` and notebook 08: stage 1 + stage 2 + the action catalogue into one bundle, built
from one choices record (`nba.lineage`).

The models are fitted with the recorded choices on the training part of the project's one split
and measured on its held-out part; by default the bundle holds exactly those models, so the
metrics in its metadata are the held-out figures of the models it contains (the same numbers the
notebooks show). `refit=True` refits the same configuration on every customer after evaluation;
the metadata then says so and labels the figures as the evaluated configuration's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from nba import lineage
from nba.actions import parse_catalogue, population_medians
from nba.bundle import Bundle, make_metadata
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data import schema
from nba.data.discover import DataSource
from nba.evaluation import baseline_comparison
from nba.monitor import reference_profile

log = logging.getLogger(__name__)

#: The keys of each stage's metrics that the bundle's metadata promises (see architecture).
CHURN_KEYS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "threshold")
#: More of the churn record the metadata carries: calibration and the choice behind the model.
CHURN_EXTRA = (
    "ece",
    "brier",
    "threshold_rule",
    "calibration",
    "model",
    "features",
    "n_train",
    "n_test",
)
STAGE1_KEYS = ("models", "leads", "ece", "ece_max", "met", "n_boot", "level", "folds")
SEGMENT_KEYS = (
    "k",
    "silhouette",
    "stability_ari",
    "silhouette_test",
    "stability_ari_test",
    "churn_ratio",
    "churn_ratio_train",
    "segments",
)


def catalogue_data(path: str | Path | None) -> dict[str, Any]:
    """The catalogue as plain data for the bundle (validated by parsing it first; None → the
    shipped default)."""
    from importlib import resources

    import yaml

    from nba.actions import load_catalogue

    load_catalogue(path)  # one clear error for a bad file, before any training
    if path is None:
        text = resources.files("nba").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _wants_study(options: TrainOptions | None) -> bool:
    return options is not None and (
        options.compare or options.select_features or options.search_iter > 0
    )


def study_choices(df: pd.DataFrame, settings: Settings, options: TrainOptions) -> dict[str, Any]:
    """A record made by re-running stage 1's study (`nba train --full`): comparison, feature
    evidence and search as `options` ask; the segmentation keeps the committed default."""
    from nba.churn import train_churn

    model, _ = train_churn(df, settings, options)
    record = lineage.default_choices(settings)
    churn = lineage.churn_choice(model)
    record["churn"] = {**churn, "threshold": None}  # re-chosen by its rule when fitted below
    record["origin"] = "stage-1 study re-run by `nba train --full`; segments: " + record["origin"]
    return record


def evaluation_note(n_train: int, n_test: int, refit: bool, rows: int) -> str:
    """One sentence on what the promised metrics measure and which models the bundle holds."""
    held_out = (
        f"held-out split of the data below ({n_test:,} customers); models fitted on the "
        f"other {n_train:,} with the recorded choices. "
    )
    if refit:
        return held_out + (
            f"The deployed models were refitted on all {rows:,} customers after evaluation: "
            "these figures are the evaluated configuration's, not measured on the refitted models."
        )
    return held_out + "The bundle holds exactly these evaluated models."


def fairness_record(
    bundle: Bundle,
    held_out: pd.DataFrame,
    protected: tuple[str, ...],
    settings: Settings,
    credit_metrics: dict[str, Any],
) -> dict[str, Any]:
    """What the bundle promises on responsible decisioning: the protected attributes, whether
    the main model keeps them, the blind model's held-out figures, and the adverse impact of
    the engine's first choices on the held-out customers (`nba.fairness`, four-fifths rule)."""
    from nba.fairness import FOUR_FIFTHS, engine_adverse_impact, impact_summary

    catalogue = bundle.action_catalogue
    impact = engine_adverse_impact(bundle.score(held_out), held_out, catalogue, protected)
    return {
        "protected": list(protected),
        "churn_keeps_protected": bool(settings.churn_keeps_protected),
        "credit_actions": catalogue.credit_ids,
        "credit_churn": credit_metrics,
        "four_fifths": FOUR_FIFTHS,
        "customers": len(held_out),
        "adverse_impact": impact_summary(impact).to_dict(orient="records"),
    }


def train(
    df: pd.DataFrame,
    source: DataSource,
    settings: Settings,
    options: TrainOptions | None = None,
    refit: bool = False,
    catalogue: str | Path | None = None,
    choices: dict[str, Any] | None = None,
) -> tuple[Bundle, dict[str, Any]]:
    """Build the bundle from a choices record (`nba.lineage.read_choices`; None → the committed
    default, or a re-run of stage 1's study when `options` asks for one) on a clean labelled
    frame. Returns the bundle and the full metrics `{"churn", "segments", "actions", ...}`."""
    if schema.TARGET not in df.columns:
        raise ValueError("training needs labels: the data has no Attrition_Flag column")
    start = time.perf_counter()
    chosen_here = choices is None
    if choices is None:
        choices = study_choices(df, settings, options) if _wants_study(options) else None
    record = lineage.check_choices(choices or lineage.default_choices(settings))
    recorded_features = record["churn"].get("features", "full")
    if recorded_features != settings.churn_features:
        log.warning(
            "the choices record's churn features %r are used, not the setting's %r: the record "
            "is the lineage of the bundle",
            recorded_features,
            settings.churn_features,
        )
    n_jobs = options.n_jobs if options is not None else 2
    train_part, test_part = lineage.held_out_split(df, settings)
    plain_catalogue = catalogue_data(catalogue)
    protected = lineage.protected_columns(settings)
    if chosen_here:  # no record: the calibration is chosen on this data, where decisions are made
        engine = parse_catalogue(plain_catalogue, protected)
        record["churn"] = lineage.choose_calibration(
            record["churn"], train_part, settings, engine, n_jobs
        )
        record["origin"] += "; calibration chosen on the training split where the engine contacts"
    # the main model and, beside it, the one credit actions use: fitted without the protected
    # attributes (None when the main model is blind itself)
    churn_model, credit_model = lineage.fit_models(record["churn"], train_part, settings, n_jobs)
    segmenter = lineage.fit_segmenter(record["segments"], train_part, settings)
    churn_metrics = lineage.churn_record(churn_model, train_part, test_part)
    # the restated stage-1 target, by the function notebook 07 shows it with
    stage1 = baseline_comparison(churn_model, train_part, test_part, n_jobs=n_jobs)
    churn_metrics.update(stage1["measured"])
    seg_metrics = lineage.segment_record(segmenter, train_part, test_part)
    action_metrics = lineage.actions_record(
        churn_model,
        segmenter,
        df,
        parse_catalogue(plain_catalogue, protected),
        settings,
        credit_model=credit_model,
    )
    credit_metrics = lineage.credit_record(credit_model or churn_model, test_part, protected)
    recorded = record["churn"]["threshold"]
    reproduces = lineage.reproduces(record, source, settings)
    if reproduces and recorded is not None and recorded != churn_model.threshold_:
        log.warning(
            "threshold %.6f differs from the recorded %.6f on the data and seed that made the "
            "record",
            churn_model.threshold_,
            recorded,
        )
    evaluated_threshold = float(churn_model.threshold_)
    if refit:
        churn_model, credit_model = lineage.fit_models(record["churn"], df, settings, n_jobs)
        segmenter = lineage.fit_segmenter(record["segments"], df, settings)
    note = evaluation_note(len(train_part), len(test_part), refit, len(df))
    metrics = {
        "churn": churn_metrics,
        "stage1": stage1,
        "segments": seg_metrics,
        "actions": action_metrics,
        "credit_churn": credit_metrics,
        "evaluation": note,
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    summary = {
        "churn": {
            **{k: churn_metrics[k] for k in (*CHURN_KEYS, *CHURN_EXTRA, *stage1["measured"])},
            # the deployed model's own threshold (re-chosen by the rule when refitted)
            "threshold": float(churn_model.threshold_),
            "threshold_evaluated": evaluated_threshold,
        },
        "stage1": {k: stage1[k] for k in STAGE1_KEYS},
        "segments": {k: seg_metrics[k] for k in SEGMENT_KEYS if k in seg_metrics},
        "actions": action_metrics,
        "credit_churn": credit_metrics,
        "evaluation": note,
        "models": "refitted on all customers" if refit else "the evaluated models",
    }
    metadata = make_metadata(source.to_dict(), summary, settings.to_dict())
    metadata["lineage"] = {
        "origin": record["origin"],
        "file": record.get("file"),
        "choices": {stage: record[stage] for stage in lineage.STAGES},
        "made_from": {"data": record.get("data"), "settings": record.get("settings")},
        "reproduces_record": reproduces,
        "refit": refit,
    }
    bundle = Bundle(
        churn=churn_model,
        segmenter=segmenter,
        catalogue=plain_catalogue,
        settings=settings.to_dict(),
        metadata=metadata,
        credit_churn=credit_model,
    )
    # population medians first: the action reasons compare each customer with them
    bundle.reference = {"population_medians": population_medians(df)}
    bundle.reference.update(reference_profile(df, bundle.score(df)))  # for `nba monitor`
    fairness = fairness_record(bundle, test_part, protected, settings, credit_metrics)
    bundle.metadata["metrics"]["fairness"] = metrics["fairness"] = fairness
    log.info("trained in %.1f s", metrics["train_seconds"])
    return bundle, metrics
