"""What leaving the protected attributes out of the stage-1 model costs: ROC-AUC and PR-AUC with
and without them (params/protected.yaml), cross-validated on the training part of the project's
split (`nba.fairness.protected_cost`: repeated stratified folds, paired differences with 95 %
t intervals), then both models fitted as the bundle fits them and measured on the held-out part.
Run: `NBA_DATA=... .venv/bin/python bench/bench_protected.py [--repeats 2]`
"""

from __future__ import annotations

import argparse
import time

from nba import lineage
from nba.config import Settings
from nba.data.discover import discover
from nba.data.io import load
from nba.fairness import protected_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the k folds")
    args = parser.parse_args()
    settings = Settings()
    source = discover(None, settings)
    df = load(source.path)
    train, test = lineage.held_out_split(df, settings)
    protected = lineage.protected_columns(settings)
    print(f"data: {source.path} ({len(df):,} rows, synthetic={source.synthetic})")
    print(f"protected: {', '.join(protected)}")
    start = time.perf_counter()
    table = protected_cost(train, settings, protected, repeats=args.repeats)
    print(
        f"cross-validated on the {len(train):,} training customers ({time.perf_counter() - start:.0f} s):"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    main_model, blind = lineage.fit_models(lineage.default_choices()["churn"], train, settings)
    for name, model in (("with", main_model), ("without", blind)):
        record = lineage.credit_record(model, test, protected)
        print(
            f"held-out ({len(test):,} customers), {name} the attributes: "
            f"ROC-AUC {record['roc_auc']:.4f}, PR-AUC {record['pr_auc']:.4f}"
        )


if __name__ == "__main__":
    main()
