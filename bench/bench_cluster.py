"""How `nba score --engine dask --cluster` does on an existing Dask cluster, and what that implies.

Starts a real cluster on this machine as separate processes on loopback (`dask scheduler`, and
`--workers` × `dask worker --nworkers 1 --nthreads 1`, each worker with its own empty compiled-model
cache, as a fresh machine would have), writes `--rows` synthetic customers as a Parquet folder
(as `bench_score.py --big` does), scores them through the cluster into a Parquet folder with
`connect` + `score_file_dask` (what `nba score --cluster` runs), and prints:
  - wall time (connect, scatter of the bundle, both passes, assembling), throughput, and the
    throughput per worker core (each worker is one single-thread process);
  - peak resident memory per process: scheduler, each worker's nanny and worker, the driver
    (psutil, sampled every 0.2 s);
  - on paper: the time and the cost of `--project-rows` customers on a cluster of
    `--project-cores` worker cores at `--price-core-hour` per core-hour, assuming throughput
    grows linearly with worker cores (partitions are independent; the driver's share, the ids
    pass, is measured here and scaled by rows) and every worker core is as fast as one here.
With `--plan-rows N` (default 1,000,000; 0 skips it) it also plans N customers with
`nba campaign plan --cluster` (`plan_file` with the client: the engine's scoring on the workers,
the draws and the history on the driver) and here, and prints both times and whether the two
plan files are byte for byte the same.
Run: `.venv/bin/python bench/bench_cluster.py [--rows 10000000] [--bundle B] [--plan-rows N]`
Figures depend on machine load; every process of the cluster is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_score import _bundle, write_big  # noqa: E402
from machine import describe  # noqa: E402

from nba.scoring_dask import connect, score_file_dask  # noqa: E402

GIB = 2**30


class PerProcessPeak:
    """Largest RSS of each named process (and, for `dask worker` commands, of the worker
    process each one spawns), sampled every `every` seconds in a thread."""

    def __init__(self, named: dict[str, int], every: float = 0.2) -> None:
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in named.items()}
        self.peak: dict[str, int] = {}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        for name, proc in self.procs.items():
            try:
                rss = proc.memory_info().rss
                kids = proc.children(recursive=True) if name.startswith("worker") else []
                kid_rss = sum(k.memory_info().rss for k in kids)
            except psutil.Error:
                continue
            if name.startswith("worker"):
                self._keep(f"{name} nanny", rss)
                self._keep(f"{name} process", kid_rss)
            else:
                self._keep(name, rss)

    def _keep(self, name: str, rss: int) -> None:
        self.peak[name] = max(self.peak.get(name, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> PerProcessPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own group: stopping it stops the worker it spawns
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in reversed(processes):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def start_cluster(
    folder: Path, workers: int, memory_limit: str, processes: list[subprocess.Popen]
) -> str:
    """Scheduler + workers on 127.0.0.1 (appended to `processes`); the scheduler's address."""
    sched_file = folder / "scheduler.json"
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
            folder / "scheduler.log",
        )
    )
    deadline = time.monotonic() + 60
    while not sched_file.exists():
        if processes[0].poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the scheduler did not start; see " + str(folder / "scheduler.log"))
        time.sleep(0.2)
    for n in range(1, workers + 1):
        cache = folder / f"cache-{n}"
        cache.mkdir()
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
                    memory_limit,
                    "--no-dashboard",
                    "--local-directory",
                    str(folder / f"worker-{n}"),
                ],
                folder / f"worker-{n}.log",
                env={"NBA_CACHE": str(cache)},
            )
        )
    return json.loads(sched_file.read_text())["address"]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_plan(bundle, address: str, rows: int, folder: Path) -> None:
    """`nba campaign plan` of `rows` customers with the engine on the cluster, then here."""
    from nba.bundle import save_bundle
    from nba.campaigns.history import History
    from nba.campaigns.plan import PlanOptions, plan_file
    from nba.data import synth
    from nba.data.io import write_table

    bundle_path = save_bundle(bundle, folder / "plan.bundle")
    customers = write_table(synth.generate(rows, 2026), folder / "plan-customers.parquet")
    seconds = {}
    for where in ("cluster", "here"):
        out = folder / f"plan-{where}.parquet"
        with History(folder / f"history-{where}.sqlite") as history:
            start = time.perf_counter()
            if where == "cluster":
                with connect(address, timeout=60) as client:
                    r = plan_file(bundle_path, customers, out, history, PlanOptions(), "b", client)
            else:
                r = plan_file(bundle_path, customers, out, history, PlanOptions(), "b")
            seconds[where] = time.perf_counter() - start
    same = (folder / "plan-cluster.parquet").read_bytes() == (
        folder / "plan-here.parquet"
    ).read_bytes()
    print(
        f"campaign plan of {r.planned:,} customers: {seconds['cluster']:.1f} s with the engine "
        f"on the cluster, {seconds['here']:.1f} s here; plan files identical: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--bundle")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1.5GiB")
    parser.add_argument("--project-rows", type=int, default=100_000_000)
    parser.add_argument("--project-cores", type=int, default=32)
    parser.add_argument("--price-core-hour", type=float, default=0.05)
    parser.add_argument("--plan-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--compare-local",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the same input on a LocalCluster (the engine's default)",
    )
    args = parser.parse_args()

    print(f"machine: {describe()}")
    bundle = _bundle(args.bundle)
    folder = Path(tempfile.mkdtemp(prefix="nba-bench-cluster-"))
    processes: list[subprocess.Popen] = []
    try:
        data = folder / "customers.parquet"
        start = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(
            target=write_big, args=(args.rows, data)
        )
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the input failed (exit {writer.exitcode})")
        print(
            f"input: {args.rows:,} synthetic customers, Parquet folder of "
            f"{len(list(data.glob('*.parquet')))} files, {_size(data) / GIB:.2f} GiB, written "
            f"in {time.perf_counter() - start:.0f} s"
        )

        load_before = os.getloadavg()[0]
        address = start_cluster(folder, args.workers, args.memory_limit, processes)
        named = {"scheduler": processes[0].pid, "driver": os.getpid()}
        named |= {f"worker {n}": p.pid for n, p in enumerate(processes[1:], 1)}
        out = folder / "scores.parquet"
        with PerProcessPeak(named) as peak:
            start = time.perf_counter()
            with connect(address, timeout=60) as client:
                client.wait_for_workers(args.workers, timeout=60)
                connected = time.perf_counter() - start
                result = score_file_dask(bundle, data, out, client=client)
            total = time.perf_counter() - start
        alive = sum(p.poll() is None for p in processes)
        load_after = os.getloadavg()[0]
        scoring = total - connected
        rate = result.rows_in / scoring
        per_core = rate / args.workers
        compiled = sum(
            bool(list((folder / f"cache-{n}").glob("churn-*.o")))
            for n in range(1, args.workers + 1)
        )
        print(
            f"cluster: scheduler + {args.workers} workers × 1 thread (memory limit "
            f"{args.memory_limit} each) as separate processes on 127.0.0.1; {alive} of "
            f"{len(processes)} still running after the run (nothing stopped but the client)"
        )
        print(
            f"scored: {result.rows_in:,} rows in = {result.scored:,} scored + "
            f"{result.rejected:,} rejected; partitions per worker "
            f"{sorted(result.workers.values())}; compiled model built in {compiled} of "
            f"{args.workers} empty worker caches; output {_size(out) / GIB:.2f} GiB"
        )
        print(
            f"time: {total:.1f} s end to end (connect and worker check {connected:.1f} s, "
            f"scoring {scoring:.1f} s) = {rate:,.0f} customers/s while scoring, "
            f"{per_core:,.0f} customers/s per worker core"
        )
        print(
            f"machine load (1-min load average, {os.cpu_count()} cores): {load_before:.1f} "
            f"before, {load_after:.1f} after: other processes share the cores"
        )
        for name in sorted(peak.peak):
            print(f"peak memory {name}: {peak.peak[name] / GIB:.2f} GiB")
        # on paper: linear in worker cores; the driver's ids pass scales with rows
        p_rows, p_cores = args.project_rows, args.project_cores
        p_core_s = p_rows / per_core
        p_wall = p_core_s / p_cores
        p_cost = p_core_s / 3600 * args.price_core_hour
        driver = peak.peak["driver"] / GIB
        print(
            f"projection: {p_rows:,} customers = {p_core_s / 3600:.1f} worker core-hours; on "
            f"{p_cores} worker cores {p_wall / 60:.1f} min of scoring; at "
            f"{args.price_core_hour:.3f} per core-hour {p_cost:.2f} in compute; output about "
            f"{_size(out) / GIB * p_rows / result.rows_in:.0f} GiB; driver memory about "
            f"{driver * p_rows / result.rows_in:.1f} GiB if it grew with rows as at "
            f"{result.rows_in:,} ({driver:.2f} GiB, an upper bound: the ids pass is the part "
            "that grows)"
        )
        if args.plan_rows:
            bench_plan(bundle, address, args.plan_rows, folder)
        if args.compare_local:
            _stop(processes)  # the external cluster's cores back for the comparison
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            local = score_file_dask(bundle, data, out, n_workers=args.workers)
            local_s = time.perf_counter() - start
            print(
                f"same input, same engine on a LocalCluster it starts itself ({args.workers} "
                f"workers × 1 thread): {local_s:.1f} s = {local.rows_in / local_s:,.0f} "
                f"customers/s (load average {os.getloadavg()[0]:.1f} after)"
            )
    finally:
        _stop(processes)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the LocalCluster's own chatter
    main()
