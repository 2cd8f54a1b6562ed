"""Test data builders: small synthetic customer tables in the Kaggle format (never real rows)."""

from __future__ import annotations

import io
from pathlib import Path

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


def write_messy_csv(path: Path) -> Path:
    """1,500 customers as Kaggle writes them, with bad rows spread over the file (7 rejects,
    duplicates across partitions among them): the engines' shared messy input."""
    df = synth.generate(1500, 4)
    text = synth.kaggle_csv_text(df).splitlines()
    rows = [line.split(",") for line in text[1:]]
    col = {c: i for i, c in enumerate(text[0].split(","))}
    rows[3][col["Customer_Age"]] = '"forty"'  # text in a numeric column
    rows[400][col["Card_Category"]] = '"Diamond"'  # unknown category
    rows[700][col["Total_Trans_Amt"]] = "-5"  # negative amount
    rows[900][col["Dependent_count"]] = ""  # missing value
    rows[1200][col["CLIENTNUM"]] = rows[10][col["CLIENTNUM"]]  # duplicate across partitions
    rows[1210][col["CLIENTNUM"]] = rows[1205][col["CLIENTNUM"]]  # duplicate nearby
    rows[1300][col["CLIENTNUM"]] = rows[20][col["CLIENTNUM"]]  # duplicate and another problem
    rows[1300][col["Gender"]] = '"X"'
    path.write_text("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for servers and unreachable addresses)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recorded_metrics(reports: Path, name: str) -> dict:
    """`<reports>/metrics/<name>.json`, as the notebooks' run wrote it; a clear failure when the
    notebook that writes it did not run."""
    import json

    path = reports / "metrics" / f"{name}.json"
    assert path.exists(), f"no {name}.json: the notebook that writes it did not run"
    return json.loads(path.read_text())
