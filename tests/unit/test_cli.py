"""The `nba data …` commands as a user runs them: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from nba.cli import main

from factories import make_customers, to_kaggle_csv


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The installed console script path is not needed: `python -m nba.cli` is the same entry."""
    return subprocess.run(
        [sys.executable, "-m", "nba.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_synth_writes_a_flagged_kaggle_file(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["data", "synth", "--rows", "120", "--seed", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "120 synthetic customers" in captured.out
    assert "SYNTHETIC DATA" in captured.err
    assert len(pd.read_csv(out)) == 120
    assert (tmp_path / "s.csv.synthetic.json").exists()


def test_validate_a_good_file_exits_0_and_says_synthetic(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    main(["data", "synth", "--rows", "50", "--out", str(out)])
    capsys.readouterr()
    assert main(["data", "validate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC DATA" in text and "50 rows: 50 valid, 0 rejected" in text


def test_validate_reports_bad_rows_and_writes_rejects(tmp_path, capsys):
    df = make_customers(30, seed=2)
    df.loc[4, "Gender"] = "X"
    df.loc[9, "Customer_Age"] = 300
    path = tmp_path / "messy.csv"
    path.write_text(to_kaggle_csv(df))
    rejects = tmp_path / "rejects.csv"
    assert main(["data", "validate", str(path), "--rejects", str(rejects)]) == 0
    text = capsys.readouterr().out
    assert "30 rows: 28 valid, 2 rejected" in text
    bad = pd.read_csv(rejects)
    assert bad["row"].tolist() == [5, 10]
    assert "Gender 'X'" in bad["reason"][0] and "Customer_Age 300" in bad["reason"][1]


def test_validate_a_file_with_no_good_row_exits_2(tmp_path, capsys):
    df = make_customers(3, seed=2).assign(Gender="?")
    path = tmp_path / "allbad.csv"
    path.write_text(to_kaggle_csv(df))
    assert main(["data", "validate", str(path)]) == 2
    assert "no usable row" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("a;b;c\n1;2;3\n", "semicolons"),
        ("CLIENTNUM,Gender\n1,F\n", "missing"),
    ],
)
def test_unusable_files_give_one_line_and_exit_2_without_traceback(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    proc = run("data", "validate", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nba: error:"), proc.stderr
    assert expected in lines[0].lower()
    assert "Traceback" not in proc.stderr


def test_missing_file_is_one_line(tmp_path):
    proc = run("data", "validate", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_row_count_for_synth_is_one_line(tmp_path, capsys):
    assert main(["data", "synth", "--rows", "0", "--out", str(tmp_path / "x.csv")]) == 2
    assert "--rows" in capsys.readouterr().err
