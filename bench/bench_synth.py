"""How fast the synthetic generator is: 1,000,000 customers in memory, then to CSV and Parquet.

Target (foundation issue): 1,000,000 rows in ≤ 10 s on the 2-core reference machine.
Run: `make bench` or `.venv/bin/python bench/bench_synth.py [ROWS]`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe, timed  # noqa: E402

from nba.data import synth  # noqa: E402


def main(rows: int = 1_000_000) -> None:
    print(f"machine: {describe()}")
    gen_s, df = timed(lambda: synth.generate(rows, seed=42), repeat=3)
    print(f"generate {rows:,} rows in memory: {gen_s:.2f} s (median of 3)")
    with tempfile.TemporaryDirectory() as tmp:
        csv_s, _ = timed(lambda: synth.write_kaggle_csv(df, Path(tmp) / "s.csv"), repeat=1)
        pq_s, _ = timed(lambda: df.to_parquet(Path(tmp) / "s.parquet", index=False), repeat=1)
    print(f"write Kaggle-format CSV: {csv_s:.2f} s; generate + CSV: {gen_s + csv_s:.2f} s")
    print(f"write Parquet: {pq_s:.2f} s; generate + Parquet: {gen_s + pq_s:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
