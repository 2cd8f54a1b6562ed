"""`nba train`: stage 1 + stage 2 (+ the action catalogue once it exists) into one bundle.

Each stage is first fitted on the training split and measured on the held-out split (those are
the metrics the bundle records); the deployed models are then refitted with the same
configuration on every customer, so that the bundle learns from all the data it was given.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from nba.actions import population_medians
from nba.bundle import Bundle, make_metadata
from nba.churn import ChurnModel, TrainOptions, train_churn
from nba.config import Settings
from nba.data import schema
from nba.data.discover import DataSource
from nba.features import split
from nba.monitor import reference_profile
from nba.segments import Segmenter, segment_metrics

log = logging.getLogger(__name__)

#: The keys of each stage's metrics that the bundle's metadata promises (see architecture).
CHURN_KEYS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "threshold")


def _refit_churn(held_out_model: ChurnModel, df: pd.DataFrame) -> ChurnModel:
    """The same configuration fitted on every customer (threshold and calibration re-chosen
    on out-of-fold predictions of all of them)."""
    from sklearn.base import clone

    X, y = df.drop(columns=[schema.TARGET]), df[schema.TARGET].to_numpy()
    return clone(held_out_model).fit(X, y)


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


def train(
    df: pd.DataFrame,
    source: DataSource,
    settings: Settings,
    options: TrainOptions | None = None,
    refit: bool = True,
    catalogue: str | Path | None = None,
) -> tuple[Bundle, dict[str, Any]]:
    """Train every stage on a clean labelled frame; return the bundle and the full metrics
    (`{"churn": {...}, "segments": {...}}`, held-out figures of the training-split fits)."""
    if schema.TARGET not in df.columns:
        raise ValueError("training needs labels: the data has no Attrition_Flag column")
    start = time.perf_counter()
    churn_model, churn_metrics = train_churn(df, settings, options or TrainOptions.fast())

    train_part, test_part = split(df, settings)
    segmenter = Segmenter(settings).fit(train_part)
    seg_metrics = segment_metrics(segmenter, train_part, test_part)

    if refit:
        churn_model = _refit_churn(churn_model, df)
        segmenter = Segmenter(settings).fit(df)
    metrics = {
        "churn": churn_metrics,
        "segments": seg_metrics,
        "evaluation": (
            "held-out split of the data below; models fitted on the training split. The "
            + (
                "deployed models were refitted on all rows with the same configuration."
                if refit
                else "deployed models are those training-split fits."
            )
        ),
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    summary = {
        "churn": {
            **{k: churn_metrics[k] for k in CHURN_KEYS},
            # the deployed model's own threshold (re-chosen when refitted on all rows)
            "threshold": float(churn_model.threshold_),
            "threshold_evaluated": churn_metrics["threshold"],
        },
        "segments": {
            k: seg_metrics[k] for k in ("k", "silhouette", "stability_ari", "churn_ratio")
        },
        "evaluation": metrics["evaluation"],
    }
    bundle = Bundle(
        churn=churn_model,
        segmenter=segmenter,
        catalogue=catalogue_data(catalogue),
        settings=settings.to_dict(),
        metadata=make_metadata(source.to_dict(), summary, settings.to_dict()),
    )
    # population medians first: the action reasons compare each customer with them
    bundle.reference = {"population_medians": population_medians(df)}
    bundle.reference.update(reference_profile(df, bundle.score(df)))  # for `nba monitor`
    log.info("trained in %.1f s", metrics["train_seconds"])
    return bundle, metrics
