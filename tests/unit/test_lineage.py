"""nba.lineage and nba.train: one choices record, the bundle built from it is the model the
notebooks fitted and measured, the metrics it promises are that model's, and the restated
stage-1 comparison (nba.evaluation.baseline_comparison)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nba import lineage, report
from nba.churn import ChurnModel
from nba.config import Settings
from nba.data import schema
from nba.data.discover import describe, write_synthetic
from nba.data.io import load
from nba.errors import NbaError
from nba.evaluation import ECE_MAX, baseline_comparison, lead_key
from nba.features import split
from nba.train import train
from nba.value import success_criteria

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lineage")
    path = write_synthetic(folder / "customers.csv", rows=2000, seed=3)
    settings = Settings(reports_dir=str(folder / "reports"), cv_folds=3)
    return load(path), describe(path, "argument"), settings


@pytest.fixture(scope="module")
def notebook_run(data):
    """What notebooks 03-05 do: persist the split, fit on `load_split`'s training part, record."""
    df, source, settings = data
    train_ids, test_ids = split(df, settings)
    report.save_split(train_ids[schema.ID], test_ids[schema.ID], settings)
    train_part, test_part = report.load_split(df, settings)
    model = ChurnModel.from_settings(settings, calibration="auto").fit(
        train_part, train_part[schema.TARGET].to_numpy()
    )
    design = {"feature_set": "spend_revolver", "transform": "log", "k": 4}
    segmenter = lineage.fit_segmenter(design, train_part, settings)
    lineage.record_choice("churn", lineage.churn_choice(model), source, settings)
    lineage.record_choice("segments", lineage.segment_choice(segmenter), source, settings)
    return model, segmenter, train_part, test_part


@pytest.fixture(scope="module")
def built(data, notebook_run):
    df, source, settings = data
    choices = lineage.read_choices(settings.path("choices_file"))
    return train(df, source, settings, choices=choices)


def test_held_out_split_is_the_persisted_split_in_the_same_row_order(data, notebook_run):
    df, _, settings = data
    train_part, test_part = lineage.held_out_split(df, settings)
    pd.testing.assert_frame_equal(train_part, notebook_run[2])
    pd.testing.assert_frame_equal(test_part, notebook_run[3])


def test_the_record_holds_both_choices_and_reads_back(data, notebook_run):
    _, source, settings = data
    record = json.loads(settings.path("choices_file").read_text())
    model, segmenter = notebook_run[:2]
    assert record["churn"]["threshold"] == model.threshold_
    assert record["churn"]["calibration"] == model.calibration_
    assert record["segments"] == {"feature_set": "spend_revolver", "transform": "log", "k": 4}
    assert record["data"]["sha256"] == source.sha256 and record["origin"] == lineage.NOTEBOOKS
    assert lineage.read_choices(settings.path("choices_file"))["churn"] == record["churn"]


def test_a_record_from_other_data_is_started_afresh(data, tmp_path):
    _, source, settings = data
    here = settings.with_overrides(reports_dir=str(tmp_path))
    lineage.record_choice(
        "segments", {"feature_set": "a", "transform": "log", "k": 4}, source, here
    )
    other = here.with_overrides(seed=7)  # another split: the segments part must not survive
    lineage.record_choice("churn", lineage.default_choices()["churn"], source, other)
    record = json.loads(here.path("choices_file").read_text())
    assert "segments" not in record and record["settings"]["seed"] == 7
    with pytest.raises(NbaError, match="no segments choice: run notebook 05"):
        lineage.read_choices(here.path("choices_file"))


def test_a_missing_or_broken_record_is_one_sentence(tmp_path):
    with pytest.raises(NbaError, match="No choices record at") as err:
        lineage.read_choices(tmp_path / "none.json")
    assert "\n" not in str(err.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(NbaError, match="not readable JSON"):
        lineage.read_choices(broken)
    broken.write_text(json.dumps({"version": 1, "churn": {"model": "lightgbm"}, "segments": {}}))
    with pytest.raises(NbaError, match="the churn choice lacks params"):
        lineage.read_choices(broken)


def test_without_a_record_the_committed_default_is_used_and_said(data):
    record = lineage.read_choices(None)
    assert record["origin"] == lineage.DEFAULT_ORIGIN and record["churn"]["threshold"] is None
    from nba.churn import TUNED_PARAMS
    from nba.segments import DEFAULT_K

    assert record["churn"]["params"] == TUNED_PARAMS and record["segments"]["k"] == DEFAULT_K


def test_the_bundle_holds_the_notebooks_models(built, notebook_run):
    bundle, _ = built
    model, segmenter, _, test_part = notebook_run
    assert bundle.threshold == model.threshold_
    np.testing.assert_array_equal(
        bundle.churn.predict_proba(test_part), model.predict_proba(test_part)
    )
    assert bundle.segmenter.names_ == segmenter.names_
    np.testing.assert_array_equal(bundle.segmenter.predict(test_part), segmenter.predict(test_part))
    assert bundle.metadata["lineage"]["reproduces_record"] is True
    assert bundle.metadata["lineage"]["refit"] is False


def test_the_bundle_promises_its_own_held_out_figures(built, notebook_run):
    bundle, metrics = built
    model, segmenter, train_part, test_part = notebook_run
    promised = bundle.metadata["metrics"]
    expected = lineage.churn_record(model, train_part, test_part)
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall", "ece", "threshold"):
        assert promised["churn"][key] == expected[key], key
    assert promised["models"] == "the evaluated models"
    assert "holds exactly these evaluated models" in promised["evaluation"]
    seg = lineage.segment_record(segmenter, train_part, test_part)
    assert promised["segments"]["segments"] == seg["segments"]
    assert promised["actions"]["net_value_uplift_vs_no_action"] == pytest.approx(
        promised["actions"]["expected_net_value"]
    )
    for key in success_criteria().query("stage == 'churn'").metric:
        assert key in promised["churn"], key


def test_train_is_deterministic_and_refit_is_labelled(data, built):
    df, source, settings = data
    choices = lineage.read_choices(settings.path("choices_file"))
    again, _ = train(df, source, settings, choices=choices)
    assert again.metadata["metrics"] == built[0].metadata["metrics"]
    refitted, _ = train(df, source, settings, choices=choices, refit=True)
    promised = refitted.metadata["metrics"]
    assert promised["models"] == "refitted on all customers"
    assert "not measured on the refitted models" in promised["evaluation"]
    assert promised["churn"]["threshold_evaluated"] == built[0].threshold
    assert refitted.metadata["lineage"]["refit"] is True


def test_baseline_comparison_pairs_the_same_customers(notebook_run):
    model, _, train_part, test_part = notebook_run
    result = baseline_comparison(model, train_part, test_part, n_boot=50)
    assert set(result["models"]) == {"chosen", "lightgbm", "hist_gradient_boosting"}
    assert len(result["leads"]) == 4
    for row in result["leads"]:
        chosen, base = result["models"]["chosen"], result["models"][row["baseline"]]
        assert row["lead"] == pytest.approx(chosen[row["metric"]] - base[row["metric"]])
        assert row["ahead"] == (row["lead"] > 0) and row["clear"] == (row["ci_low"] > 0)
        assert row["ci_low"] <= row["ci_high"]
        assert result["measured"][lead_key(row["metric"], row["baseline"])] == row["lead"]
    assert result["models"]["chosen"]["threshold"] == model.threshold_
    assert result["ece_met"] == (result["ece"] <= ECE_MAX)
    assert result["met"] == (all(r["ahead"] for r in result["leads"]) and result["ece_met"])
    # the baselines' thresholds are their own, chosen on the training split's out-of-fold scores
    assert result["models"]["lightgbm"]["threshold"] != model.threshold_
    again = baseline_comparison(model, train_part, test_part, n_boot=50)
    assert again["leads"] == result["leads"]


def test_settings_from_parameters_takes_the_fields_and_ignores_the_rest():
    given = {"seed": 7, "cv_folds": "3", "data_path": "", "np": np, "search_iter": 10}
    settings = Settings.from_parameters(given)
    assert settings.seed == 7 and settings.cv_folds == 3
    assert settings.choices_file == "artifacts/choices.json" and settings.test_size == 0.2
