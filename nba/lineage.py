"""One model lineage: the choices the study makes, in one record file, and the one way a bundle's
models are fitted and measured from such a record.

Notebook 04 records the churn choice (learner and parameters, engineered features, calibration,
threshold rule and the threshold it gave) and notebook 05 the segmentation design (feature set,
transform, number of segments) in the file the parameter `choices_file` names. Notebook 08 and
`nba train --choices FILE` both build the bundle from that record with `fit_churn` and
`fit_segmenter` on the project's one held-out split (`held_out_split`), so the bundle holds the
very models the notebooks evaluated, and `churn_record`, `segment_record` and `actions_record`
compute every figure the bundle promises with the same functions the notebooks show them with.

Without a record, `nba train` uses the committed default choice, `default_choices()`: the
recorded study results in `nba.churn.TUNED_PARAMS`, `nba.features.KEPT_ENGINEERED` and
`nba.segments` (`DEFAULT_FEATURE_SET`, `DEFAULT_TRANSFORM`, `DEFAULT_K`); the bundle's metadata
says which.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.config import Settings
from nba.data import schema
from nba.errors import NbaError

#: Version of the record's layout (a reader refuses versions it does not know).
RECORD_VERSION = 1
STAGES = ("churn", "segments")
CHURN_KEYS = (
    "model",
    "params",
    "engineered",
    "calibration",
    "threshold_rule",
    "threshold",
    "cost_fp",
    "value_missed",
    "cv_folds",
)
SEGMENT_KEYS = ("feature_set", "transform", "k")
#: Where a record made by the notebooks comes from, and the committed default's origin.
NOTEBOOKS = "notebooks 04_modeling_churn and 05_modeling_segments"
DEFAULT_ORIGIN = (
    "committed default (nba.lineage.default_choices: nba.churn.TUNED_PARAMS, "
    "nba.features.KEPT_ENGINEERED, nba.segments.DEFAULT_FEATURE_SET, DEFAULT_TRANSFORM and "
    "DEFAULT_K)"
)
#: Bootstrap refits behind the segments' stability (ARI), in notebook 05 and in every bundle.
SEGMENT_BOOT = 20
#: The settings a record depends on beside its choices (the churn choice carries its own
#: folds): the same data and these give the same split, hence the same models.
RUN_KEYS = ("seed", "test_size")


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so a record compares equal after a JSON round trip."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def default_choices(settings: Settings | None = None) -> dict[str, Any]:
    """The committed default choice: what the full study chose on the development data (see
    `nba.churn` and `nba.segments`); the threshold is chosen by its rule when fitted. The churn
    model's feature variant is `settings.churn_features` ("full" without settings)."""
    from nba.churn import CHOSEN, DEFAULT_CALIBRATION, TUNED_PARAMS
    from nba.features import KEPT_ENGINEERED
    from nba.segments import DEFAULT_FEATURE_SET, DEFAULT_K, DEFAULT_TRANSFORM

    return {
        "version": RECORD_VERSION,
        "origin": DEFAULT_ORIGIN,
        "data": None,
        "settings": None,
        "churn": {
            "model": CHOSEN,
            "params": {k: _plain(v) for k, v in TUNED_PARAMS.items()},
            "engineered": list(KEPT_ENGINEERED),
            "calibration": DEFAULT_CALIBRATION,
            "threshold_rule": "f1",
            "threshold": None,
            "cost_fp": None,
            "value_missed": None,
            "cv_folds": None,
            "features": settings.churn_features if settings is not None else "full",
            "calibration_choice": None,
        },
        "segments": {
            "feature_set": DEFAULT_FEATURE_SET,
            "transform": DEFAULT_TRANSFORM,
            "k": DEFAULT_K,
        },
    }


def churn_choice(model: Any, calibration_evidence: pd.DataFrame | None = None) -> dict[str, Any]:
    """The choice a fitted `ChurnModel` embodies, for the record (calibration as resolved, its
    feature variant); `calibration_evidence`: the `nba.churn.decision_calibration_report` the
    calibration was chosen by, recorded with its criterion (None: not chosen by this run)."""
    from nba.churn import CHOSEN, TUNED_PARAMS

    params = TUNED_PARAMS if model.params is None else model.params
    evidence = None if calibration_evidence is None else calibration_record(calibration_evidence)
    return {
        "model": CHOSEN,
        "params": {k: _plain(v) for k, v in params.items()},
        "engineered": list(model.engineered),
        "calibration": model.calibration_,
        "threshold_rule": model.threshold_rule,
        "threshold": float(model.threshold_),
        "cost_fp": model.cost_fp,
        "value_missed": model.value_missed,
        "cv_folds": int(model.cv_folds),
        "features": getattr(model, "feature_set", "full"),
        "calibration_choice": evidence,
    }


def calibration_record(report: pd.DataFrame) -> dict[str, Any]:
    """A `nba.churn.decision_calibration_report` as the record keeps it: the criterion in words
    and the report per method (JSON-able)."""
    from nba.churn import DECISION_CRITERION

    return {
        "criterion": DECISION_CRITERION,
        "report": {str(m): {k: _plain(v) for k, v in row.items()} for m, row in report.iterrows()},
    }


def choose_calibration(
    choice: dict[str, Any], train: pd.DataFrame, settings: Settings, catalogue: Any, n_jobs: int = 2
) -> dict[str, Any]:
    """`choice` with its calibration chosen where decisions are made: the recorded configuration's
    out-of-fold probabilities on `train` (`nba.churn.ChurnModel.out_of_fold_proba`), judged by
    `nba.churn.decision_calibration_report` with the engine's contacts under `catalogue`, and
    `nba.churn.choose_calibration`'s pick; the evidence goes into `calibration_choice`. What
    notebook 04 shows, for `nba train` without a record."""
    from nba.churn import ChurnModel, decision_calibration_report
    from nba.churn import choose_calibration as pick

    folds = int(choice["cv_folds"] or settings.cv_folds)
    probe = ChurnModel(
        params=dict(choice["params"]),
        engineered=tuple(choice["engineered"]),
        cv_folds=folds,
        n_jobs=n_jobs,
        random_state=settings.seed,
        feature_set=choice.get("features", "full"),
    )
    y = train[schema.TARGET].to_numpy().astype(np.int64)
    oof = probe.out_of_fold_proba(train, y)
    contacts = engine_contacts(train, catalogue, settings)
    report = decision_calibration_report(y, oof, contacts, settings.seed, folds)
    method = pick(report, "decision_brier")
    return {**choice, "calibration": method, "calibration_choice": calibration_record(report)}


def segment_choice(segmenter: Any) -> dict[str, Any]:
    """The design a fitted `Segmenter` embodies, for the record."""
    return {
        "feature_set": segmenter.feature_set,
        "transform": segmenter.feature_transform,
        "k": int(segmenter.n_segments),
    }


def _identity(source: Any, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    data = {"sha256": source.sha256, "rows": int(source.rows), "synthetic": bool(source.synthetic)}
    return data, {k: getattr(settings, k) for k in RUN_KEYS}


def record_choice(stage: str, choice: dict[str, Any], source: Any, settings: Settings) -> Path:
    """Write one stage's choice into the record at `settings.path("choices_file")`. A record
    made from other data or other settings is started afresh, so a record never mixes runs."""
    from nba.report import write_json

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    path = settings.path("choices_file")
    data, run = _identity(source, settings)
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if record.get("data") != data or record.get("settings") != run:
        record = {}
    record.update(version=RECORD_VERSION, origin=NOTEBOOKS, data=data, settings=run)
    record[stage] = {k: _plain(v) for k, v in choice.items()}
    return write_json(path, record)


def check_choices(record: Any, where: str = "the choices record") -> dict[str, Any]:
    """The record if it holds both stages with every key; else one sentence naming the gap."""
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise NbaError(f"{where} is not an nba choices record (version {RECORD_VERSION}).")
    for stage, keys in (("churn", CHURN_KEYS), ("segments", SEGMENT_KEYS)):
        part = record.get(stage)
        if not isinstance(part, dict):
            raise NbaError(
                f"{where} has no {stage} choice: run notebook "
                f"{'04' if stage == 'churn' else '05'} (or `nba pipeline`) to record it."
            )
        missing = [k for k in keys if k not in part]
        if missing:
            raise NbaError(f"{where}: the {stage} choice lacks {', '.join(missing)}.")
    return record


def read_choices(path: str | Path | None) -> dict[str, Any]:
    """The record at `path` (checked), or the committed default when `path` is None."""
    if path is None:
        return default_choices()
    path = Path(path)
    if not path.is_file():
        raise NbaError(
            f"No choices record at {path}: run notebooks 04 and 05 (`nba pipeline`) to write "
            "it, or leave the record out to use the committed default."
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NbaError(f"{path} is not readable JSON ({exc.__class__.__name__}).") from exc
    record = check_choices(record, str(path))
    return {**record, "file": str(path)}


def held_out_split(df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the project's one split (`nba.features.split`: stratified, seeded), in
    the frame's own row order: the order `nba.report.load_split` gives the notebooks, so a
    model fitted here sees its rows, and its folds, exactly as notebook 04's did."""
    from nba.features import split

    _, test = split(df, settings)
    side = df[schema.ID].isin(test[schema.ID]).to_numpy()
    return df[~side].reset_index(drop=True), df[side].reset_index(drop=True)


def fit_churn(
    choice: dict[str, Any],
    train: pd.DataFrame,
    settings: Settings,
    n_jobs: int = 2,
    exclude: tuple[str, ...] = (),
) -> Any:
    """The churn model of a recorded choice, fitted on `train` (threshold and calibration
    chosen on its out-of-fold predictions, as in notebook 04); `exclude`: columns it never
    sees."""
    from nba.churn import ChurnModel

    model = ChurnModel(
        params=dict(choice["params"]),
        engineered=tuple(choice["engineered"]),
        calibration=choice["calibration"],
        threshold_rule=choice["threshold_rule"],
        cost_fp=choice["cost_fp"],
        value_missed=choice["value_missed"],
        cv_folds=int(choice["cv_folds"] or settings.cv_folds),
        n_jobs=n_jobs,
        random_state=settings.seed,
        exclude=tuple(exclude),
        feature_set=choice.get("features", "full"),  # records from before the option: full
    )
    return model.fit(train, train[schema.TARGET].to_numpy())


def protected_columns(settings: Settings) -> tuple[str, ...]:
    """The protected attributes `settings.protected_params` lists (`nba.config`)."""
    from nba.config import protected_attributes

    return tuple(protected_attributes(settings.path("protected_params")))


def fit_models(
    choice: dict[str, Any], train: pd.DataFrame, settings: Settings, n_jobs: int = 2
) -> tuple[Any, Any]:
    """(main churn model, credit churn model) of a recorded choice, fitted on `train`. The
    credit model never sees the protected attributes; credit actions use it for eligibility,
    suitability and value. With `settings.churn_keeps_protected` false the main model is
    fitted blind too and the credit model is None (the main one serves both)."""
    protected = protected_columns(settings)
    if not settings.churn_keeps_protected:
        return fit_churn(choice, train, settings, n_jobs, exclude=protected), None
    main = fit_churn(choice, train, settings, n_jobs)
    return main, fit_churn(choice, train, settings, n_jobs, exclude=protected)


def fit_segmenter(choice: dict[str, Any], train: pd.DataFrame, settings: Settings) -> Any:
    """The segmenter of a recorded design, fitted on `train` (as in notebook 05)."""
    from nba.segments import Segmenter

    return Segmenter(
        settings,
        n_segments=int(choice["k"]),
        feature_set=choice["feature_set"],
        feature_transform=choice["transform"],
    ).fit(train)


def churn_record(model: Any, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """What the churn model promises, measured on the held-out customers `test`: ROC-AUC,
    PR-AUC, F1, precision and recall at its threshold, the held-out expected calibration error
    and Brier score, with the choice behind it and its cross-validated figures. One function for
    notebook 04's metrics file and the bundle's metadata, so both carry the same numbers."""
    from nba.churn import CHOSEN, TUNED_PARAMS, calibration_metrics
    from nba.evaluation import metric_set

    y = test[schema.TARGET].to_numpy().astype(np.int64)
    p = model.predict_proba(test)[:, 1]
    calibration = calibration_metrics(y, p)
    params = TUNED_PARAMS if model.params is None else model.params
    return {
        **metric_set(y, p, model.threshold_),
        "ece": calibration["ece"],
        "brier": calibration["brier"],
        "threshold": float(model.threshold_),
        "threshold_rule": model.threshold_rule,
        "calibration": model.calibration_,
        "model": CHOSEN,
        "params": {k: _plain(v) for k, v in params.items()},
        "engineered": list(model.engineered),
        "features": getattr(model, "feature_set", "full"),
        "cv": model.metrics_["cv"],
        "cv_folds": int(model.cv_folds),
        "calibration_report": model.metrics_["calibration_report"],
        "n_train": len(train),
        "n_test": len(test),
        "churn_rate_test": float(y.mean()),
    }


def segment_record(segmenter: Any, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """The segments' figures (`nba.segments.segment_metrics` with `SEGMENT_BOOT` refits):
    silhouette and stability on `train`, churn per segment on the held-out `test`, names."""
    from nba.segments import segment_metrics

    metrics = segment_metrics(segmenter, train, test, n_boot=SEGMENT_BOOT)
    return {**metrics, "names": list(segmenter.names_)}


def score_columns(
    model: Any, segmenter: Any, df: pd.DataFrame, credit_model: Any = None
) -> pd.DataFrame:
    """Churn probability, flag at the model's threshold, risk band and segment of every
    customer in `df` (and the credit model's probability when there is one): the bundle's own
    scoring path (`nba.scoring.score_frame`) over models that are not (yet) in a bundle."""
    from nba.bundle import Bundle
    from nba.scoring import score_frame

    return score_frame(Bundle(churn=model, segmenter=segmenter, credit_churn=credit_model), df)


def engine_contacts(
    customers: pd.DataFrame, catalogue: Any, settings: Settings
) -> Callable[[np.ndarray], np.ndarray]:
    """Whom the action engine would contact, as a function of churn probabilities q of
    `customers` (bool array: recommended action is not "no action"): `nba.actions`'
    arbitration with the customers' own population medians. Credit actions read q too (no
    blind score here), and the high-risk policy (`high_risk_minimum_action`) is not applied:
    the region is where the engine spends money because the expected value says so."""
    from nba.actions import NO_ACTION, population_medians, recommendation_columns

    reference = population_medians(customers)

    def contacts(q: np.ndarray) -> np.ndarray:
        scores = {"churn_probability": np.asarray(q, dtype=np.float64)}
        columns = recommendation_columns(
            scores, customers, catalogue, settings, top=1, reference=reference
        )
        return np.asarray(columns["action_1"], dtype=object) != NO_ACTION

    return contacts


def credit_record(model: Any, test: pd.DataFrame, protected: tuple[str, ...]) -> dict[str, Any]:
    """What the model credit actions use promises on the held-out customers: ROC-AUC and PR-AUC,
    and the columns it never saw."""
    from nba.evaluation import metric_set

    y = test[schema.TARGET].to_numpy().astype(np.int64)
    p = model.predict_proba(test)[:, 1]
    measured = metric_set(y, p, model.threshold_)
    return {
        "roc_auc": measured["roc_auc"],
        "pr_auc": measured["pr_auc"],
        "excluded": list(getattr(model, "exclude", ()) or ()),
        "protected": list(protected),
    }


def simulation_record(sim: dict[str, Any], customers: int) -> dict[str, Any]:
    """The action engine's promise from `nba.actions.simulate`: its expected net value, cost
    and customers contacted, and its uplift over each baseline (the success criteria's keys)."""
    engine = sim["summary"].iloc[0]
    return {
        "customers": int(customers),
        **{k: float(v) for k, v in sim["uplift"].items()},
        "expected_net_value": float(engine.expected_net_value),
        "customers_contacted": int(engine.customers_contacted),
        "cost": float(engine.cost),
    }


def actions_record(
    model: Any,
    segmenter: Any,
    df: pd.DataFrame,
    catalogue: Any,
    settings: Settings,
    credit_model: Any = None,
) -> dict[str, Any]:
    """`simulation_record` of the engine on every customer of `df`, scored by these models:
    what notebook 06 records and the bundle promises."""
    from nba.actions import simulate

    scores = score_columns(model, segmenter, df, credit_model)
    sim = simulate(scores, df, catalogue, settings, seed=settings.seed)
    return simulation_record(sim, len(df))


def reproduces(record: dict[str, Any], source: Any, settings: Settings) -> bool:
    """Whether fitting `record` on this data and these settings repeats the run that made it."""
    if record.get("data") is None:
        return False
    data, run = _identity(source, settings)
    return record["data"] == data and record["settings"] == run


def tuning_record(results: pd.DataFrame, n_iter: int, chosen: dict[str, Any]) -> dict[str, Any]:
    """What a random search (`nba.churn.tune`'s results table) found, for the metrics file:
    the chosen and the best draw's PR-AUC, and whether the committed default's parameters were
    among the draws and chosen."""
    from nba.churn import TUNED_PARAMS

    drawn = (results[list(TUNED_PARAMS)] == pd.Series(TUNED_PARAMS)).all(axis=1).any()
    return {
        "n_iter": int(n_iter),
        "scoring": "pr_auc",
        "rule": "cheapest within one standard error of the best PR-AUC",
        "chosen_pr_auc": float(results.loc[results["chosen"], "pr_auc_mean"].iloc[0]),
        "best_pr_auc": float(results["pr_auc_mean"].iloc[0]),
        "best_pr_auc_sd": float(results["pr_auc_sd"].iloc[0]),
        "recorded_params_drawn": bool(drawn),
        "chose_recorded_params": {k: _plain(v) for k, v in chosen.items()} == TUNED_PARAMS,
    }
