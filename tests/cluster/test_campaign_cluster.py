"""`nba campaign plan --cluster`: the engine scores the plan's customers on an existing Dask
cluster (a scheduler and two workers started as separate processes, see conftest.py), and the
plan, its history and its summary are the same as without the cluster, byte for byte."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from nba.campaigns.history import History
from nba.campaigns.plan import PlanOptions, cluster_view, make_plan, plan_file
from nba.campaigns.policy import engine_view
from nba.cli import main
from nba.data import synth
from nba.data.io import write_table
from nba.data.validate import validate
from nba.scoring_dask import connect

from factories import free_port


@pytest.fixture(scope="module")
def customers(tmp_path_factory) -> Path:
    """3,000 customers, two of them invalid."""
    raw = synth.generate(3000, 17)
    raw.loc[5, "Customer_Age"] = -3
    raw.loc[9, "Card_Category"] = "Diamond"
    return write_table(raw, tmp_path_factory.mktemp("plan-in") / "customers.parquet")


def _plan(args: list[str], folder: Path, capsys) -> tuple[int, list[str]]:
    folder.mkdir()
    code = main(
        [*args, "--out", str(folder / "plan.parquet"), "--history", str(folder / "h.sqlite")]
    )
    return code, capsys.readouterr().err.strip().splitlines()


def test_the_cli_plans_on_the_cluster_the_plan_it_makes_here(
    ready_cluster, bundle_file, customers, tmp_path, capsys
):
    base = ["campaign", "plan", str(customers), "--bundle", str(bundle_file), "--seed", "5"]
    code, here = _plan(base, tmp_path / "here", capsys)
    assert code == 0, here
    code, there = _plan([*base, "--cluster", ready_cluster.address], tmp_path / "there", capsys)
    assert code == 0, there
    assert there[0].startswith("nba campaign plan: 3,000 rows in: 2,998 planned, 2 rejected")
    assert f"parts on 2 workers of {ready_cluster.address}" in there[0]
    assert there[1:] == here[1:]  # the same power warnings
    for name in ("plan.parquet", "plan.rejects.csv"):
        assert (tmp_path / "there" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    summaries = [
        json.loads((tmp_path / f / "plan.summary.json").read_text()) for f in ("here", "there")
    ]
    assert summaries[0] == summaries[1]
    with (
        History(tmp_path / "here" / "h.sqlite") as a,
        History(tmp_path / "there" / "h.sqlite") as b,
    ):
        pd.testing.assert_frame_equal(
            a.decisions().drop(columns="created"), b.decisions().drop(columns="created")
        )


def test_the_engine_ran_on_the_workers(ready_cluster, bundle, bundle_file, customers, tmp_path):
    clean = validate(pd.read_parquet(customers)).clean
    with connect(ready_cluster.address) as client:
        workers = set(client.scheduler_info()["workers"])
        pids = client.run(os.getpid)
        view, ran = cluster_view(bundle, clean, client, rows_per_part=500)
        with History(tmp_path / "h.sqlite") as history:
            result = plan_file(
                bundle_file, customers, tmp_path / "p.csv", history, PlanOptions(), "c", client
            )
    assert set(ran) == workers and len(workers) == 2 and sum(ran.values()) == 6
    assert set(result.workers) == workers and result.planned == 2998
    assert os.getpid() not in pids.values()
    # each worker compiled the churn model into its own, previously empty cache
    assert all(list(c.glob("churn-*.o")) for c in ready_cluster.caches)
    local = engine_view(bundle, clean)
    pd.testing.assert_frame_equal(
        make_plan(bundle, clean, PlanOptions(), "c", "b", view),
        make_plan(bundle, clean, PlanOptions(), "c", "b", local),
    )


def test_the_environment_names_the_cluster(
    ready_cluster, bundle_file, customers, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("NBA_DASK_CLUSTER", str(ready_cluster.scheduler_file))
    base = ["campaign", "plan", str(customers), "--bundle", str(bundle_file)]
    code, err = _plan(base, tmp_path / "env", capsys)
    assert code == 0, err
    assert f"workers of {ready_cluster.scheduler_file}" in err[0]


def test_an_unreachable_scheduler_is_one_sentence_and_writes_nothing(
    bundle_file, customers, tmp_path, capsys
):
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    out = tmp_path / "out"
    code = main(
        ["campaign", "plan", str(customers), "--bundle", str(bundle_file)]
        + ["--out", str(out / "plan.csv"), "--history", str(out / "h.sqlite")]
        + ["--cluster", address, "--cluster-timeout", "2"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        f"nba: error: no Dask scheduler answered at {address} within 2 s"
    )
    assert not out.exists()  # neither the history nor the plan


def test_the_cluster_is_left_as_it_was(ready_cluster):
    """Runs last: both workers still up and no task or data of these tests left behind."""
    from distributed import Client

    with Client(ready_cluster.address, timeout=10, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        tasks_left = lambda dask_scheduler: len(dask_scheduler.tasks)  # noqa: E731
        deadline = time.monotonic() + 10
        while (left := client.run_on_scheduler(tasks_left)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == 0
    assert all(p.poll() is None for p in ready_cluster.processes)
