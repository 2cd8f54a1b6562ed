"""One lineage and one truth, after the notebooks' CI run: every face shows the same numbers.

The faces: the bundle notebook 08 built (its metadata), the model card, `reports/metrics/*.json`,
the executed notebooks' outputs and the app's Model and Segments tabs (built with
`nba.app.build_app` on the CI bundle). The figures: the threshold, the held-out metrics, the
segments' names and churn rates, the stage-1 comparison and the actions' expected value. JSON
figures must be equal as numbers; displayed ones must read exactly as the one source formats
them. And `nba train --choices <the run's record>` must build the same bundle as the pipeline.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba import config, pipeline
from nba.bundle import load_bundle
from nba.data.io import load
from nba.story import money

pytestmark = pytest.mark.slow

HELD_OUT = ("roc_auc", "pr_auc", "f1", "precision", "recall")


def _json(reports: Path, name: str) -> dict:
    path = reports / "metrics" / f"{name}.json"
    assert path.exists(), f"no {name}.json: the notebook that writes it did not run"
    return json.loads(path.read_text())


def _read(html_text: str) -> str:
    """What a person reads in a widget: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_text)).split())


def _plain(markdown: str) -> str:
    """Markdown as read: emphasis, table rules and escapes dropped, spaces collapsed (a table
    row reads as its cells separated by spaces, as in the app's HTML tables)."""
    return " ".join(markdown.replace("**", "").replace("\\$", "$").replace("|", " ").split())


@pytest.fixture(scope="module")
def bundle_path() -> Path:
    ci = pipeline.load_parameters(config.PARAMS_DIR / "ci.yaml")
    return config.Settings(models_dir=ci["models_dir"]).path("models_dir") / "nba.bundle"


@pytest.fixture(scope="module")
def bundle(bundle_path):
    return load_bundle(bundle_path)


@pytest.fixture(scope="module")
def faces(reports, bundle, bundle_path, notebook_text) -> dict[str, str]:
    """The text of every face a person reads."""
    from nba.app import App, build_app

    data = _json(reports, "data")
    app = build_app(bundle_path, data["data_path"])
    assert isinstance(app, App), "the app did not start on the CI bundle"
    stems = [p.stem for p in pipeline.notebooks()]
    return {
        "model card": _plain((reports / "model_card.md").read_text(encoding="utf-8")),
        "app Model tab": _read(app.model_card.value),
        "app Segments tab": _read(app.segments_table.value),
        **{stem: _plain(notebook_text(stem)) for stem in stems},
    }


def _shows(faces: dict[str, str], where: tuple[str, ...], text: str) -> None:
    missing = [face for face in where if text not in faces[face]]
    assert not missing, f"{text!r} is not shown by {missing}"


def test_the_bundle_is_the_evaluated_model_built_from_the_record(reports, bundle):
    record = json.loads((reports / "artifacts" / "choices.json").read_text())
    lineage = bundle.metadata["lineage"]
    assert lineage["refit"] is False and lineage["reproduces_record"] is True
    assert lineage["choices"] == {stage: record[stage] for stage in ("churn", "segments")}
    assert bundle.threshold == record["churn"]["threshold"]
    assert bundle.churn.params == record["churn"]["params"]
    assert bundle.segmenter.n_segments == record["segments"]["k"]
    assert bundle.metadata["metrics"]["models"] == "the evaluated models"


def test_threshold_is_the_same_everywhere(reports, bundle, faces):
    t = bundle.threshold
    meta = bundle.metadata["metrics"]["churn"]
    assert meta["threshold"] == meta["threshold_evaluated"] == t
    assert _json(reports, "churn")["threshold"] == t
    assert _json(reports, "evaluation")["threshold"] == t
    shown = f"threshold {t:.3f}"
    _shows(faces, ("model card", "app Model tab", "06_modeling_next_best_action"), shown)
    _shows(faces, ("model card", "app Model tab"), f"at or above {t:.1%} are flagged")
    _shows(faces, ("04_modeling_churn", "07_evaluation"), f"{t:.3f}")
    _shows(faces, ("08_deployment",), f"its threshold is {t:.3f}")


def test_held_out_metrics_are_the_same_everywhere(reports, bundle, faces):
    meta = bundle.metadata["metrics"]["churn"]
    churn, evaluation = _json(reports, "churn"), _json(reports, "evaluation")
    for m in (*HELD_OUT, "ece"):
        assert churn[m] == evaluation["held_out"][m] == meta[m], m
        _shows(faces, ("model card", "app Model tab"), f"{m} {meta[m]:.4f}")
    _shows(faces, ("04_modeling_churn", "07_evaluation"), f"ROC-AUC {meta['roc_auc']:.4f}")
    _shows(faces, ("04_modeling_churn", "07_evaluation"), f"PR-AUC {meta['pr_auc']:.4f}")
    _shows(faces, ("04_modeling_churn", "08_deployment"), f"F1 {meta['f1']:.4f}")
    _shows(faces, ("08_deployment",), f"held-out ROC-AUC {meta['roc_auc']:.4f}")


def test_stage_one_comparison_is_the_same_in_the_bundle_and_notebook_07(reports, bundle, faces):
    recorded = _json(reports, "evaluation")["stage1"]
    promised = bundle.metadata["metrics"]["stage1"]
    assert promised["leads"] == recorded["leads"] and promised["models"] == recorded["models"]
    assert promised["met"] == recorded["met"] and promised["ece"] == recorded["ece"]
    for row in recorded["leads"]:
        shown = f"{row['baseline']} {row['metric']} {row['lead']:+.4f}"
        _shows(faces, ("model card", "app Model tab"), shown)


def test_segment_names_and_churn_rates_are_the_same_everywhere(reports, bundle, faces):
    segments, evaluation = _json(reports, "segments"), _json(reports, "evaluation")
    names = list(bundle.segmenter.names_)
    assert segments["names"] == names
    assert [s["name"] for s in bundle.metadata["metrics"]["segments"]["segments"]] == names
    assert [s["name"] for s in evaluation["segments"]] == names
    promised = bundle.metadata["metrics"]["segments"]["segments"]
    assert promised == segments["segments"]  # train and held-out rates, sizes, names
    for row, shown in zip(promised, evaluation["segments"], strict=True):
        assert shown["churn_rate_test"] == row["churn_rate_test"]
    assert evaluation["segments_churn_ratio"] == segments["churn_ratio"]
    profiles = bundle.segmenter.profiles_
    for row, test_row in zip(profiles.itertuples(), promised, strict=True):
        train_rate, test_rate = f"{row.churn_rate:.1%}", f"{test_row['churn_rate_test']:.1%}"
        assert test_row["churn_rate_train"] == round(row.churn_rate, 4)  # the JSON's 4 decimals
        card_row = f"{row.segment} {row.name} {row.share:.1%} {train_rate} {test_rate}"
        _shows(faces, ("model card", "app Model tab"), card_row)
        listed = f"{row.name} {row.size:,} {row.share:.1%} {train_rate}"
        _shows(faces, ("app Segments tab",), listed)
        for stem in ("05_modeling_segments", "06_modeling_next_best_action", "08_deployment"):
            _shows(faces, (stem,), row.name)
        _shows(faces, ("05_modeling_segments",), train_rate)
        _shows(faces, ("07_evaluation",), row.name)
        _shows(faces, ("07_evaluation",), test_rate)


def test_actions_expected_value_is_the_same_everywhere(reports, bundle, faces):
    actions = _json(reports, "actions")
    promised = bundle.metadata["metrics"]["actions"]
    for key in ("expected_net_value", "cost", "customers_contacted", *actions["uplift"]):
        assert promised[key] == actions.get(key, actions["uplift"].get(key)), key
    value = money(promised["expected_net_value"]).replace("\\$", "$")
    gain = money(promised["net_value_uplift_vs_no_action"]).replace("\\$", "$")
    _shows(faces, ("model card", "app Model tab"), f"Expected net value {value}")
    _shows(faces, ("model card", "app Model tab"), f"Gain over doing nothing {gain}")
    _shows(faces, ("06_modeling_next_best_action",), f"expected to return {value} net")
    _shows(faces, ("07_evaluation",), f"expected net value is {value}")
    for face in ("model card", "app Model tab"):
        assert "| actions | net_value_uplift_vs_no_action | — |" not in faces[face]


def test_nba_train_from_the_record_builds_the_same_bundle(reports, bundle, tmp_path):
    from nba.cli import main

    data = _json(reports, "data")
    out = tmp_path / "trained.bundle"
    record = reports / "artifacts" / "choices.json"
    args = ["train", "--choices", str(record), "--data", data["data_path"], "--out", str(out)]
    assert main(args) == 0
    trained = load_bundle(out)
    assert trained.metadata["metrics"] == bundle.metadata["metrics"]
    assert trained.threshold == bundle.threshold
    assert trained.metadata["lineage"]["choices"] == bundle.metadata["lineage"]["choices"]
    customers = load(data["data_path"])
    scored = trained.score(customers)
    pd.testing.assert_frame_equal(scored, bundle.score(customers))
    written = pd.read_csv(reports / "scores" / "scores.csv")  # notebook 08's scores file
    assert (written["CLIENTNUM"].to_numpy() == scored["CLIENTNUM"].to_numpy()).all()
    assert (written["churn_flag"].to_numpy() == scored["churn_flag"].to_numpy()).all()
    assert np.allclose(
        written["churn_probability"], scored["churn_probability"], rtol=0, atol=1e-12
    )
