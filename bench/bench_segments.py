"""How fast segments are assigned: a Segmenter fitted on the synthetic default, then
`predict` and `assign` (id + name per customer) on 1,000,000 synthetic customers.

Run: `.venv/bin/python bench/bench_segments.py [ROWS]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe, timed  # noqa: E402

from nba.config import Settings  # noqa: E402
from nba.data import synth  # noqa: E402
from nba.data.validate import validate  # noqa: E402
from nba.segments import Segmenter  # noqa: E402


def main(rows: int = 1_000_000) -> None:
    settings = Settings()
    print(f"machine: {describe()}")
    train = validate(synth.generate(settings.synthetic_rows, settings.seed)).clean
    fit_s, seg = timed(lambda: Segmenter(settings).fit(train), repeat=3)
    print(f"fit on {len(train):,} customers: {fit_s:.2f} s (median of 3)")
    customers = synth.generate(rows, settings.seed + 1)
    pred_s, _ = timed(lambda: seg.predict(customers), repeat=5)
    print(f"predict {rows:,} customers: {pred_s:.3f} s = {rows / pred_s:,.0f} customers/s")
    assign_s, out = timed(lambda: seg.assign(customers), repeat=5)
    print(
        f"assign (segment + segment_name) {rows:,} customers: {assign_s:.3f} s "
        f"= {rows / assign_s:,.0f} customers/s (median of 5)"
    )
    print(out["segment_name"].value_counts(normalize=True).round(3).to_string())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
