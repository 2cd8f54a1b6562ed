"""Test data builders: small synthetic customer tables in the Kaggle format (never real rows)."""

from __future__ import annotations

import io

import pandas as pd

from nba.data import synth


def make_customers(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` valid customers with Kaggle's 23 columns in Kaggle's order (the synthetic generator:
    identities hold exactly, values are plausible)."""
    return synth.generate(n, seed)


def to_kaggle_csv(df: pd.DataFrame) -> str:
    """The frame as Kaggle writes it: strings quoted, numbers R-style (12691, 9.3448e-05)."""
    return synth.kaggle_csv_text(df)


def to_raw(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as `read_table` returns a CSV: every column text, Kaggle's spelling."""
    return pd.read_csv(io.StringIO(to_kaggle_csv(df)), dtype="str", keep_default_na=False)


def json_records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (what a JSON client sends: numbers as numbers)."""
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]
