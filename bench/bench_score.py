"""How fast scoring is: one customer, a batch with the pandas engine, a big file with Dask.

Targets, on the 2-core reference machine:
  (a) one customer through `bundle.recommend()` ≤ 5 ms (median of ≥ 200 calls);
  (b) batch, end to end with the pandas engine (read CSV → validate → score incl. actions →
      write Parquet) ≥ 200,000 customers/s on 1,000,000 synthetic customers;
  (c) `--big N`: N synthetic customers (default 10,000,000) as a Parquet folder, scored with the
      Dask engine into a Parquet folder with peak memory of the whole process tree ≤ 2 GiB.
Run: `.venv/bin/python bench/bench_score.py [--bundle B] [--rows N] [--big [N]] [--skip-batch]`
  --bundle a trained bundle (default: a fast bundle trained here on synthetic customers)
Peak memory: a thread samples the RSS of this process and all its descendants (the Dask
workers and nanny processes) with psutil every 0.2 s and keeps the largest sum.
Figures depend on machine load: other processes on the 2 cores slow everything down.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import PeakMemory, describe, timed  # noqa: E402

from nba.bundle import load_bundle  # noqa: E402
from nba.churn import TrainOptions  # noqa: E402
from nba.config import Settings  # noqa: E402
from nba.data import schema, synth  # noqa: E402
from nba.data.validate import validate  # noqa: E402
from nba.scoring import score_file, score_frame  # noqa: E402
from nba.scoring_dask import score_file_dask  # noqa: E402

GIB = 2**30


def _bundle(path: str | None):
    if path:
        print(f"bundle: {path}")
        return load_bundle(path)
    from nba.data.discover import describe as describe_source
    from nba.data.discover import write_synthetic
    from nba.data.io import load
    from nba.train import train

    folder = Path(tempfile.mkdtemp(prefix="nba-bench-"))
    data = write_synthetic(folder / "train.csv", 10_127, Settings().seed)
    bundle, _ = train(
        load(data), describe_source(data, "argument"), Settings(), TrainOptions.fast()
    )
    print("bundle: trained here on 10,127 SYNTHETIC customers (fast options)")
    return bundle


def bench_one(bundle, calls: int) -> None:
    records = synth.generate(50, 7)[list(schema.REQUIRED[1:])].to_dict("records")
    for r in records[:5]:
        bundle.recommend(r)
    it = iter(records * (calls // len(records) + 1))
    one_s, _ = timed(lambda: bundle.recommend(next(it)), repeat=calls)
    print(f"(a) one customer, bundle.recommend(): {one_s * 1000:.2f} ms (median of {calls})")


def _bench_frame(bundle, clean) -> None:
    cpu = time.process_time()
    frame_s, _ = timed(lambda: score_frame(bundle, clean), repeat=1)
    cpu = time.process_time() - cpu
    print(
        f"(b) in-memory score_frame (model + segments + actions), {len(clean):,} clean "
        f"customers: {frame_s:.2f} s = {len(clean) / frame_s:,.0f} customers/s; "
        f"{cpu:.2f} CPU s (all threads) = {len(clean) / cpu:,.0f} customers per CPU-second"
    )


def bench_batch(bundle, rows: int, folder: Path) -> None:
    df = synth.generate(rows, 1)
    csv = folder / "batch.csv"
    synth.write_kaggle_csv(df, csv)
    _bench_frame(bundle, validate(df).clean)
    del df
    out = folder / "batch_scores.parquet"
    cpu, start = time.process_time(), time.perf_counter()
    result = score_file(bundle, csv, out)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"(b) pandas engine end to end (read CSV {csv.stat().st_size / 2**20:,.0f} MiB → "
        f"validate → score incl. actions → write Parquet), {result.rows_in:,} customers: "
        f"{total:.2f} s = {result.rows_in / total:,.0f} customers/s; {cpu:.2f} CPU s "
        f"(all threads; a figure other work on the cores changes less)"
    )


def write_big(rows: int, folder: Path, chunk: int = 1_000_000, file_rows: int = 125_000) -> None:
    """`rows` synthetic customers as a Parquet folder, generated `chunk` at a time (ids offset
    per chunk so they stay unique), in files of `file_rows` rows."""
    folder.mkdir(parents=True)
    for k, start in enumerate(range(0, rows, chunk)):
        df = synth.generate(min(chunk, rows - start), seed=100 + k)
        df[schema.ID] = df[schema.ID] + k * 10**10
        for j in range(0, len(df), file_rows):
            df.iloc[j : j + file_rows].to_parquet(
                folder / f"part-{k:04d}-{j // file_rows:02d}.parquet", index=False
            )


def bench_big(bundle, rows: int, folder: Path, memory_limit: str) -> None:
    data = folder / "big.parquet"
    start = time.perf_counter()
    # in a child process, so that the generator's memory does not count as the driver's
    writer = multiprocessing.get_context("spawn").Process(target=write_big, args=(rows, data))
    writer.start()
    writer.join()
    if writer.exitcode:
        raise SystemExit(f"writing the big input failed (exit {writer.exitcode})")
    print(
        f"(c) wrote {rows:,} synthetic customers as {data} in {time.perf_counter() - start:.0f} s"
    )
    out = folder / "big_scores.parquet"
    with PeakMemory() as peak:
        start = time.perf_counter()
        result = score_file_dask(bundle, data, out, memory_limit=memory_limit)
        total = time.perf_counter() - start
    print(
        f"(c) dask engine (LocalCluster 2 workers × 1 thread, memory_limit {memory_limit}), "
        f"{result.rows_in:,} customers → Parquet folder: {total:.1f} s = "
        f"{result.rows_in / total:,.0f} customers/s; {result.scored:,} scored, "
        f"{result.rejected:,} rejected"
    )
    print(
        f"(c) peak memory, process tree (driver + nanny + workers, summed RSS sampled every "
        f"0.2 s with psutil): {peak.peak / GIB:.2f} GiB (driver alone {peak.root_peak / GIB:.2f} GiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--big", type=int, nargs="?", const=10_000_000)
    parser.add_argument("--memory-limit", default="1.5GiB")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()

    print(f"machine: {describe()}")
    bundle = _bundle(args.bundle)
    folder = Path(tempfile.mkdtemp(prefix="nba-bench-score-"))
    try:
        bench_one(bundle, args.calls)
        if not args.skip_batch:
            bench_batch(bundle, args.rows, folder)
        if args.big:
            bench_big(bundle, args.big, folder, args.memory_limit)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
