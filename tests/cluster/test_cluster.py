"""`nba score --engine dask --cluster`: scoring through an existing Dask cluster (a scheduler
and two workers started as separate processes, see conftest.py) gives the pandas engine's
scores and rejects, runs on the workers, and leaves the cluster as it found it."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from nba.cli import main
from nba.data import schema, synth
from nba.data.io import read_table
from nba.errors import DataError
from nba.scoring import score_file
from nba.scoring_dask import ClusterError, connect, score_file_dask

from factories import free_port, write_messy_csv


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory) -> Path:
    """1,500 customers as Kaggle writes them, with bad rows spread over the file: 7 rejects."""
    return write_messy_csv(tmp_path_factory.mktemp("messy") / "messy.csv")


@pytest.fixture(scope="module")
def pandas_run(bundle, messy_csv, tmp_path_factory):
    """The pandas engine's result, scores and rejects on the same file: the reference."""
    folder = tmp_path_factory.mktemp("pandas")
    result = score_file(bundle, messy_csv, folder / "scores.parquet")
    return result, read_table(result.output, required=()), read_table(result.rejects, required=())


def _as_csv(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """`df` as `read_table` reads it back from a CSV (every column text)."""
    path = folder / "reference.csv"
    df.to_csv(path, index=False)
    return read_table(path, required=())


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    a = got.sort_values(schema.ID, ignore_index=True)
    b = want.sort_values(schema.ID, ignore_index=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)


def _worker_processes(cluster) -> set[int]:
    """Pids of the `dask worker` commands this test session started and of their children."""
    pids = set()
    for proc in cluster.processes[1:]:
        pids.add(proc.pid)
        pids |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    return pids


def test_scores_on_the_workers_like_the_pandas_engine(
    ready_cluster, bundle, messy_csv, pandas_run, tmp_path
):
    expected, want_scores, want_rejects = pandas_run
    out, bad = tmp_path / "scores.parquet", tmp_path / "bad.csv"
    assert not any(list(c.iterdir()) for c in ready_cluster.caches)  # each worker's cache is empty
    with connect(ready_cluster.address) as client:
        workers = set(client.scheduler_info()["workers"])
        pids = client.run(os.getpid)
        result = score_file_dask(
            bundle, f"file://{messy_csv}", f"file://{out}", f"file://{bad}", 40_000, client=client
        )
    assert (result.rows_in, result.scored, result.rejected) == (1500, 1493, 7)
    assert (expected.scored, expected.rejected) == (result.scored, result.rejected)
    # every partition ran on one of the cluster's two workers, both took part, and those are
    # the worker processes this session started, not this test's process
    assert set(result.workers) == workers and len(workers) == 2
    assert sum(result.workers.values()) == len(list(out.glob("part-*.parquet"))) >= 4
    assert set(pids.values()) <= _worker_processes(ready_cluster)
    assert os.getpid() not in pids.values()
    # the bundle reached the workers through the client; each compiled the churn model into
    # its own, previously empty cache
    assert all(list(c.glob("churn-*.o")) for c in ready_cluster.caches)
    _same(read_table(out, required=()), want_scores)
    got_rejects = read_table(bad, required=())
    pd.testing.assert_frame_equal(got_rejects, want_rejects)
    reasons = dict(zip(got_rejects["row"].astype(int), got_rejects["reason"], strict=True))
    assert reasons[1201].endswith("duplicates row 11")  # found across partitions
    assert not list(tmp_path.glob(".*"))  # no part folders left behind


def test_cli_scores_through_the_cluster_into_one_csv(
    ready_cluster, bundle_file, messy_csv, pandas_run, tmp_path, capsys
):
    _, want_scores, want_rejects = pandas_run
    out = tmp_path / "scores.csv"
    code = main(
        ["score", f"file://{messy_csv}", "--bundle", str(bundle_file), "--out", f"file://{out}"]
        + ["--cluster", ready_cluster.address]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0, err
    assert len(err) == 1, err  # one summary line, no log chatter from Dask
    summary = err[0]
    assert summary.startswith("nba score: 1,500 rows in: 1,493 scored, 7 rejected")
    assert re.search(rf"\d+ partitions? on [12] workers? of {ready_cluster.address}", summary)
    _same(read_table(out, required=()), _as_csv(want_scores, tmp_path))
    pd.testing.assert_frame_equal(
        read_table(tmp_path / "scores.rejects.csv", required=()), want_rejects
    )


def test_environment_names_the_cluster_by_its_scheduler_file(
    ready_cluster, bundle, bundle_file, tmp_path, capsys, monkeypatch
):
    df = synth.generate(900, 8)
    folder = tmp_path / "in.parquet"
    folder.mkdir()
    for k in range(3):  # three files: three partitions
        df.iloc[k * 300 : (k + 1) * 300].to_parquet(folder / f"p{k}.parquet", index=False)
    monkeypatch.setenv("NBA_DASK_CLUSTER", str(ready_cluster.scheduler_file))
    out = tmp_path / "scores.parquet"
    code = main(
        ["score", str(folder), "--bundle", str(bundle_file), "--out", str(out), "--engine", "dask"]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "3 partitions on" in err and str(ready_cluster.scheduler_file) in err
    expected = score_file(bundle, folder, tmp_path / "pandas.parquet")
    assert expected.scored == 900
    _same(read_table(out, required=()), read_table(expected.output, required=()))


def test_all_rows_bad_over_the_cluster_is_one_sentence(
    ready_cluster, bundle_file, tmp_path, capsys
):
    df = synth.generate(50, 9)
    df["Gender"] = "X"  # not an allowed category
    path = tmp_path / "bad.csv"
    synth.write_kaggle_csv(df, path)
    code = main(
        ["score", str(path), "--bundle", str(bundle_file), "--out", str(tmp_path / "o.csv")]
        + ["--engine", "dask", "--cluster", ready_cluster.address]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"nba: error: no usable row in {path}: all 50")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # nothing left behind


def test_unreachable_scheduler_is_one_sentence_and_exit_2(
    bundle_file, kaggle_csv, tmp_path, capsys
):
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    start = time.monotonic()
    code = main(
        [
            "score",
            str(kaggle_csv),
            "--bundle",
            str(bundle_file),
            "--out",
            str(tmp_path / "out" / "o.csv"),
        ]
        + ["--cluster", address, "--cluster-timeout", "2"]
    )
    waited = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"nba: error: no Dask scheduler answered at {address} within 2 s")
    assert waited < 30  # gave up after its timeout instead of Dask's default retries
    assert not (tmp_path / "out").exists()  # nothing written


def test_connect_refuses_a_cluster_with_the_pandas_engine(
    bundle_file, kaggle_csv, tmp_path, capsys
):
    code = main(
        ["score", str(kaggle_csv), "--bundle", str(bundle_file), "--out", str(tmp_path / "o.csv")]
        + ["--engine", "pandas", "--cluster", "tcp://127.0.0.1:1"]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "nba: error: --cluster runs the dask engine; drop --engine pandas or --cluster."
    )


def test_memory_urls_are_refused_on_worker_processes(ready_cluster, bundle, tmp_path):
    with connect(ready_cluster.address) as client, pytest.raises(DataError) as err:
        score_file_dask(bundle, "memory://in/customers.csv", tmp_path / "o.csv", client=client)
    assert "memory://in/customers.csv" in str(err.value)  # checked before any work


def test_a_scheduler_without_workers_is_one_sentence():
    from distributed import LocalCluster

    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty,
        pytest.raises(ClusterError, match="has no worker"),
        connect(empty.scheduler_address, timeout=1),
    ):
        pass


def test_the_cluster_is_left_as_it_was(ready_cluster):
    """Runs last: after every test above, both workers are still up and no task or data of
    theirs is left on the scheduler (only the clients were closed)."""
    from distributed import Client

    with Client(ready_cluster.address, timeout=10, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        # a lambda travels by value (the scheduler cannot import this test module)
        tasks_left = lambda dask_scheduler: len(dask_scheduler.tasks)  # noqa: E731
        deadline = time.monotonic() + 10
        while (left := client.run_on_scheduler(tasks_left)) and time.monotonic() < deadline:
            time.sleep(0.2)  # released clients' tasks go away asynchronously
        assert left == 0
    assert all(p.poll() is None for p in ready_cluster.processes)
