"""nba.report: metrics JSON, figures and the persisted split."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from nba import report  # noqa: E402
from nba.config import Settings  # noqa: E402
from nba.errors import NbaError  # noqa: E402


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(reports_dir=str(tmp_path / "reports"))


def test_metrics_round_trip_numpy_values(settings):
    path = report.write_metrics(
        "m", {"auc": np.float64(0.5), "n": np.int64(3), "v": np.arange(2)}, settings
    )
    assert path == settings.path("reports_dir") / "metrics" / "m.json"
    assert report.read_metrics("m", settings) == {"auc": 0.5, "n": 3, "v": [0, 1]}


def test_figures_are_saved_as_png_and_listed_as_written(settings):
    start = time.time() - 1
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = report.save_figure(fig, "line", settings)
    plt.close(fig)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert report.files_written(settings, since=start) == ["figures/line.png"]
    assert report.files_written(settings, since=time.time() + 60) == []


def test_split_round_trip_and_unknown_customers(settings):
    df = pd.DataFrame({"CLIENTNUM": [1, 2, 3, 4], "x": [10, 20, 30, 40]})
    report.save_split([1, 3], [2, 4], settings)
    assert settings.path("split_file") == settings.path("reports_dir") / "artifacts/split.csv"
    train, test = report.load_split(df, settings)
    assert train.x.tolist() == [10, 30] and test.x.tolist() == [20, 40]
    with pytest.raises(NbaError, match="1 customers are not in the split"):
        report.load_split(pd.concat([df, df.head(1).assign(CLIENTNUM=9)]), settings)


def test_missing_split_says_which_notebook_makes_it(settings):
    with pytest.raises(NbaError, match="03_data_preparation"):
        report.load_split(pd.DataFrame({"CLIENTNUM": [1]}), settings)


def _metadata(actions: bool = True) -> dict:
    churn = {"roc_auc": 0.98761, "pr_auc": 0.9, "f1": 0.88, "precision": 0.9, "recall": 0.86}
    churn |= {"ece": 0.012, "threshold": 0.3245, "threshold_rule": "f1", "calibration": "none"}
    churn |= {"pr_auc_lead_vs_lightgbm": 0.002, "f1_lead_vs_lightgbm": -0.001, "model": "lightgbm"}
    segments = [
        {"id": 0, "name": "Everyday revolvers", "churn_rate_train": 0.036, "churn_rate_test": 0.04},
        {"id": 1, "name": "Light transactors", "churn_rate_train": 0.6, "churn_rate_test": 0.7},
    ]
    stage1 = {
        "models": {"chosen": {"pr_auc": 0.9, "f1": 0.88, "threshold": 0.3245}},
        "leads": [
            {
                "baseline": "lightgbm",
                "metric": "pr_auc",
                "lead": 0.002,
                "ci_low": -0.001,
                "ci_high": 0.005,
            }
        ],
        "level": 0.95,
        "n_boot": 200,
    }
    metrics = {
        "churn": churn,
        "segments": {"k": 2, "silhouette": 0.6, "stability_ari": 0.97, "churn_ratio": 17.5},
        "stage1": stage1,
        "evaluation": "held-out split",
        "models": "the evaluated models",
    }
    metrics["segments"]["segments"] = segments
    if actions:
        metrics["actions"] = {
            "customers": 100,
            "customers_contacted": 20,
            "cost": 500.0,
            "expected_net_value": 81122.4,
            "net_value_uplift_vs_no_action": 81122.4,
            "net_value_uplift_vs_churn_score_one_offer": 1000.0,
            "net_value_uplift_vs_random_action": -5.0,
        }
    data = {"path": "x.csv", "origin": "argument", "rows": 100, "sha256": "ab", "synthetic": False}
    return {
        "format_version": 1,
        "created": "2026-12-02T00:00:00+00:00",
        "data": data,
        "synthetic": False,
        "metrics": metrics,
        "libraries": {"nba": "0.1"},
        "lineage": {"origin": "notebooks 04 and 05", "file": "reports/artifacts/choices.json"},
    }


def test_model_card_shows_the_promised_figures_as_recorded():
    profiles = pd.DataFrame(
        {
            "segment": [0, 1],
            "name": ["Everyday revolvers", "Light transactors"],
            "share": [0.8, 0.2],
            "churn_rate": [0.036, 0.6],
        }
    )
    card = report.model_card(_metadata(), profiles, 0.3245)
    assert "threshold 0.325 by the f1 rule" in card and "at or above 32.5% are flagged" in card
    assert "| roc_auc | 0.9876 |" in card and "| ece | 0.0120 |" in card
    assert "| roc_auc | 0.9876 | chance the model ranks a random leaver" in card
    assert "notebooks 04 and 05 (`reports/artifacts/choices.json`)" in card
    assert "it holds the evaluated models" in card
    # the actions' gain is the recorded one, in the criteria and in its own section
    # a simulation shares its save rates with its baselines: it holds or fails, never "met"
    sim = "assumption-based simulation"
    assert (
        f"| actions | net_value_uplift_vs_no_action | \\$81,122 | > 0 | {sim} | holds in " in card
    )
    assert f"| net_value_uplift_vs_random_action | -\\$5 | > 0 | {sim} | fails in sim" in card
    assert 'cannot be "met" until a campaign with a control group' in card
    assert "Gain over doing nothing \\$81,122" in card
    held_out = "held-out measurement"
    assert f"| churn | f1_lead_vs_lightgbm | -0.0010 | > 0 | {held_out} | not met |" in card
    assert f"| churn | ece | 0.0120 | <= 0.01 | {held_out} | not met |" in card
    assert "| segments | k | 2 | >= 4 | design constraint | not met |" in card
    assert "| lightgbm | pr_auc | +0.0020 | [-0.0010, +0.0050] |" in card
    assert "| 1 | Light transactors | 20.0% | 60.0% | 70.0% |" in card
    assert "Churn model inputs: the whole customer record, 12-month behaviour included" in card


def test_model_card_names_an_early_warning_variant():
    metadata = _metadata()
    metadata["metrics"]["churn"]["features"] = "early_warning"
    card = report.model_card(metadata, pd.DataFrame(columns=["segment"]), 0.5)
    assert "Churn model inputs: the customer's profile only, no 12-month behaviour" in card


def test_model_card_without_a_measurement_says_not_measured():
    card = report.model_card(_metadata(actions=False), pd.DataFrame(columns=["segment"]), 0.5)
    sim = "assumption-based simulation"
    assert f"| actions | net_value_uplift_vs_no_action | — | > 0 | {sim} | not measured |" in card
    assert 'cannot be "met"' not in card  # nothing simulated, nothing to warn about
    assert "Next best actions" not in card


def test_a_saved_figure_displays_itself_with_alt_text(tmp_path):
    """A cell ending in `fig` shows the picture (not "<Figure size …>") with alternative text."""
    from IPython.core.formatters import DisplayFormatter
    from matplotlib.figure import Figure

    from nba.config import Settings
    from nba.report import save_figure

    fig = Figure(figsize=(5, 4.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    ax.set(title="Churn by band", xlabel="risk band", ylabel="customers")
    before, _ = DisplayFormatter().format(fig)
    assert "text/html" not in before  # a bare Figure has no picture of its own
    save_figure(fig, "demo", Settings(reports_dir=str(tmp_path)))
    shown, _ = DisplayFormatter().format(fig)
    assert 'alt="Churn by band. axes: risk band against customers"' in shown["text/html"]
    assert shown["image/png"][:4] == b"\x89PNG"


def test_report_html_has_the_notebooks_title_and_alt_text(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from nba.pipeline import _html

    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    code = new_code_cell("fig")
    code.outputs = [new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 06 · Next best action\n\nWhat to do."),
            code,
            new_markdown_cell("The bars show how many customers get each action."),
        ]
    )
    executed = tmp_path / "06_x.ipynb"
    nbformat.write(nb, executed)
    _html(executed, tmp_path / "html")
    page = (tmp_path / "html" / "06_x.business.html").read_text()
    assert "<title>06 · Next best action</title>" in page
    assert 'alt="The bars show how many customers get each action."' in page
