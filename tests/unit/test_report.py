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
