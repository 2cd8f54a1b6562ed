"""A real Dask cluster for the `--cluster` tests: one scheduler and two workers, each a separate
process on loopback started with Dask's own commands, every one stopped when the module's tests
are done (even when a test fails). Each worker has its own, empty compiled-model cache
(`NBA_CACHE`), as a fresh machine would; nothing else is shared with the test process but this
machine's disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nba.bundle import Bundle, save_bundle
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data.discover import describe, write_synthetic
from nba.data.io import load
from nba.train import train

STARTUP_S = 60.0  # a loaded 2-core machine can take a while to start Python processes


@dataclass(frozen=True)
class Cluster:
    address: str
    scheduler_file: Path
    processes: tuple[subprocess.Popen, ...]  # scheduler, worker 1, worker 2 (their nannies)
    caches: tuple[Path, Path]  # NBA_CACHE of each worker
    logs: tuple[Path, ...]

    def log_text(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs
        )


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    # a session of its own, so that the finalizer can stop the nanny and the worker it spawned
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in reversed(processes):  # workers first, the scheduler last
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _wait(what: str, ready, processes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + STARTUP_S
    while not ready():
        dead = [p.args for p in processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)
            raise RuntimeError(f"the test cluster did not start ({what}; exited: {dead})\n{text}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """`dask scheduler` + 2 × `dask worker --nworkers 1 --nthreads 1` on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("cluster")
    sched_file = folder / "scheduler.json"
    processes: list[subprocess.Popen] = []
    logs = [folder / "scheduler.log", folder / "worker-1.log", folder / "worker-2.log"]
    caches = (folder / "cache-1", folder / "cache-2")
    try:
        processes.append(
            _start(
                [
                    "distributed.cli.dask_scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--scheduler-file",
                    str(sched_file),
                    "--no-dashboard",
                ],
                logs[0],
            )
        )
        _wait("scheduler file", sched_file.exists, processes, logs)
        for n in (1, 2):
            caches[n - 1].mkdir()
            processes.append(
                _start(
                    [
                        "distributed.cli.dask_worker",
                        "--scheduler-file",
                        str(sched_file),
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--memory-limit",
                        "1.5GiB",
                        "--no-dashboard",
                        "--local-directory",
                        str(folder / f"worker-{n}"),
                        # import the scoring stack while the test process trains its bundle
                        "--preload",
                        "nba.scoring_dask",
                    ],
                    logs[n],
                    # an empty compiled-model cache of its own, as on another machine
                    env={"NBA_CACHE": str(caches[n - 1])},
                )
            )
        address = json.loads(sched_file.read_text())["address"]
        yield Cluster(address, sched_file, tuple(processes), caches, tuple(logs))
    finally:
        _stop(processes)


@pytest.fixture(scope="module")
def ready_cluster(cluster: Cluster) -> Cluster:
    """The cluster once both workers have joined."""
    from distributed import Client

    with Client(cluster.address, timeout=STARTUP_S, set_as_default=False) as client:
        try:
            client.wait_for_workers(2, timeout=STARTUP_S)
        except TimeoutError:
            pytest.fail(f"the two test workers did not join\n{cluster.log_text()}")
    return cluster


@pytest.fixture(scope="module")
def bundle_file(cluster, tmp_path_factory) -> Path:
    """A fast bundle on 1,500 synthetic customers (seed 11), trained while the cluster starts
    (asking for `cluster` first starts its processes before training)."""
    folder = tmp_path_factory.mktemp("cluster-bundle")
    data = write_synthetic(folder / "train.csv", 1500, 11)
    bundle, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return save_bundle(bundle, folder / "nba.bundle")


@pytest.fixture(scope="module")
def bundle(bundle_file) -> Bundle:
    from nba.bundle import load_bundle

    return load_bundle(bundle_file)
