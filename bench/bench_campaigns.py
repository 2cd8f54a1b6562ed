"""How fast the closed loop is on a million customers.

Targets, on the 2-core reference machine:
  (a) plan 1,000,000 customers ≤ 10 s: `plan_file` end to end (read Parquet → validate → engine
      → control group, Thompson exploration → history, with the customers' records → write
      Parquet); the plan alone (`make_plan` in memory) is printed too;
  (b) record 1,000,000 outcomes ≤ 10 s: `record_file` (read Parquet → validate → join to the
      plan → one transaction into the history);
  (c) learn from 1,000,000 recorded outcomes ≤ 60 s: `learn_file` (read the history → fit the
      effect model → off-policy estimate → write the new bundle).
Run: `.venv/bin/python bench/bench_campaigns.py [--bundle B] [--rows N]`
  --bundle a trained bundle (default: a fast bundle trained here on synthetic customers)
Figures depend on machine load: other processes on the 2 cores slow everything down. Each step
also prints its CPU time (this process, all its threads: `time.process_time`), which load
changes much less than wall time: compare before/after changes with it on a busy machine.
For (a) the part spent writing the decisions to the history (`History.record_decisions`) is
printed too.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_score import _bundle  # noqa: E402
from machine import describe  # noqa: E402

from nba.bundle import save_bundle  # noqa: E402
from nba.campaigns.history import History  # noqa: E402
from nba.campaigns.learn import learn_file  # noqa: E402
from nba.campaigns.outcomes import record_file  # noqa: E402
from nba.campaigns.plan import PlanOptions, make_plan, plan_file  # noqa: E402
from nba.campaigns.policy import engine_view  # noqa: E402
from nba.campaigns.simulator import load_world  # noqa: E402
from nba.data import synth  # noqa: E402
from nba.data.io import write_table  # noqa: E402
from nba.data.validate import validate  # noqa: E402


def _timed(obj: object, method: str) -> dict[str, float]:
    """Wrap `obj.method` so that its wall and CPU seconds add up in the returned dict."""
    spent = {"wall": 0.0, "cpu": 0.0}
    inner = getattr(obj, method)

    def timed(*args, **kwargs):  # noqa: ANN202 - passes through whatever the method returns
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent["wall"] += time.perf_counter() - start
            spent["cpu"] += time.process_time() - cpu

    setattr(obj, method, timed)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a trained bundle (default: trained here)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="customers (default 1M)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(describe())
    bundle = _bundle(args.bundle)
    folder = Path(tempfile.mkdtemp(prefix="nba-bench-campaigns-"))
    try:
        bundle_path = save_bundle(bundle, folder / "nba.bundle")
        raw = synth.generate(args.rows, 2026)
        customers = write_table(raw, folder / "customers.parquet")
        clean = validate(raw).clean
        n = len(clean)

        start, cpu = time.perf_counter(), time.process_time()
        plan = make_plan(bundle, clean, PlanOptions(), campaign_id="bench-mem")
        t_mem, c_mem = time.perf_counter() - start, time.process_time() - cpu
        print(f"(a) make_plan in memory, {n:,} customers: {t_mem:.2f} s (cpu {c_mem:.2f} s)")

        with History(folder / "history.sqlite") as history:
            record = _timed(history, "record_decisions")
            start, cpu = time.perf_counter(), time.process_time()
            result = plan_file(
                bundle_path, customers, folder / "plan.parquet", history, PlanOptions(), "bench"
            )
            t_plan, c_plan = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"(a) plan_file end to end, {result.planned:,} customers (Parquet in, history, "
                f"Parquet out, power per action): {t_plan:.2f} s (cpu {c_plan:.2f} s; target "
                f"<= 10 s), of which record_decisions {record['wall']:.2f} s (cpu "
                f"{record['cpu']:.2f} s); {result.summary['control']:,} control, "
                f"{result.summary['explored']:,} explored"
            )
            del plan  # free memory before the next steps
            written = pd.read_parquet(folder / "plan.parquet")
            view = engine_view(bundle, clean)
            outcomes = load_world().respond(written, view, 7)
            del view, written
            outcomes_path = write_table(outcomes, folder / "outcomes.parquet")

            start, cpu = time.perf_counter(), time.process_time()
            rec = record_file(outcomes_path, history)
            t_rec, c_rec = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"(b) record_file, {rec.rows_in:,} outcomes: {t_rec:.2f} s (cpu {c_rec:.2f} s; "
                f"target <= 10 s); {rec.recorded:,} recorded, {rec.rejected:,} rejected"
            )

            start, cpu = time.perf_counter(), time.process_time()
            learnt = learn_file(bundle_path, history, folder / "learnt.bundle")
            t_learn, c_learn = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"(c) learn_file from {learnt.lineage['outcomes']:,} outcomes: {t_learn:.2f} s "
                f"(cpu {c_learn:.2f} s; target <= 60 s)"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
