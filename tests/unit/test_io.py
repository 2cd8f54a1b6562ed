"""nba.data.io: reading real-looking exports, one-line errors for bad files, writing, hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba.data import schema
from nba.data.io import count_rows, load, load_with_rejects, read_table, sha256, write_table
from nba.errors import DataError

from factories import make_customers, to_kaggle_csv


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def baseline(kaggle_csv: Path) -> pd.DataFrame:
    return load(kaggle_csv)


# --- reading what real exports look like ---------------------------------------------------


def test_kaggle_csv_round_trip(kaggle_csv, customers):
    raw = read_table(kaggle_csv)
    assert list(raw.columns) == list(schema.KAGGLE_COLUMNS)
    assert all(pd.api.types.is_string_dtype(raw[c]) for c in raw.columns)
    assert raw.loc[0, "Gender"] == customers.loc[0, "Gender"]  # quotes removed

    clean = load(kaggle_csv)
    assert list(clean.columns) == [*schema.REQUIRED, schema.TARGET]
    assert isinstance(clean.index, pd.RangeIndex)
    assert clean[schema.ID].dtype == np.int64
    assert clean[schema.ID].tolist() == customers[schema.ID].tolist()
    for c in schema.INTEGERS:
        assert clean[c].tolist() == customers[c].tolist(), c
    for c in schema.FLOATS:
        np.testing.assert_allclose(clean[c], customers[c], err_msg=c)
    for c in schema.CATEGORICAL:
        assert clean[c].tolist() == customers[c].tolist(), c


def test_leakage_columns_are_dropped_and_churn_mapped(kaggle_csv, customers):
    clean = load(kaggle_csv)
    assert not any(c.startswith(schema.LEAKAGE_PREFIX) for c in clean.columns)
    assert schema.TARGET_RAW not in clean.columns
    expected = (customers[schema.TARGET_RAW] == schema.ATTRITED).astype(np.int8)
    assert clean[schema.TARGET].tolist() == expected.tolist()


def test_bom(tmp_path, customers, baseline):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + to_kaggle_csv(customers).encode())
    assert read_table(path).columns[0] == schema.ID
    pd.testing.assert_frame_equal(load(path), baseline)


def test_crlf(tmp_path, customers, baseline):
    path = write(tmp_path / "crlf.csv", to_kaggle_csv(customers).replace("\n", "\r\n"))
    assert read_table(path)["Avg_Utilization_Ratio"].str.contains("\r").sum() == 0
    pd.testing.assert_frame_equal(load(path), baseline)


def test_unquoted_strings_and_padded_header(tmp_path, customers, baseline):
    text = to_kaggle_csv(customers).replace('"', "")
    header, rest = text.split("\n", 1)
    header = ",".join(f"  {name} " for name in header.split(","))
    path = write(tmp_path / "plain.csv", header + "\n" + rest)
    pd.testing.assert_frame_equal(load(path), baseline)


def test_shuffled_columns_and_extra_columns(tmp_path, customers, baseline):
    rng = np.random.default_rng(1)
    shuffled = customers.assign(branch="north", score=1.5)
    shuffled = shuffled[list(rng.permutation(shuffled.columns))]
    path = write(tmp_path / "shuffled.csv", to_kaggle_csv(shuffled))
    raw = read_table(path)
    assert {"branch", "score"} <= set(raw.columns)  # kept by read_table
    pd.testing.assert_frame_equal(load(path), baseline)  # gone from the clean frame


def test_without_target_or_leakage(tmp_path, customers):
    scoring = customers.drop(columns=[schema.TARGET_RAW, *schema.LEAKAGE])
    path = write(tmp_path / "score.csv", to_kaggle_csv(scoring))
    assert list(load(path).columns) == list(schema.REQUIRED)


@pytest.mark.parametrize("name", ["c.parquet", "c.pq"])
def test_parquet(tmp_path, customers, baseline, name):
    path = write_table(customers, tmp_path / name)
    assert read_table(path)["Customer_Age"].dtype == np.int64  # typed, not text
    pd.testing.assert_frame_equal(load(path), baseline)


def test_directory_of_parquet_files(tmp_path, customers, baseline):
    folder = tmp_path / "parts"
    write_table(customers.iloc[:25], folder / "part-0.parquet")
    write_table(customers.iloc[25:], folder / "part-1.parquet")
    pd.testing.assert_frame_equal(load(folder), baseline)


def test_gzipped_csv(tmp_path, customers, baseline):
    path = write_table(customers, tmp_path / "c.csv.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    pd.testing.assert_frame_equal(load(path), baseline)


def test_utf16_with_bom_is_decoded(tmp_path, customers, baseline):
    path = tmp_path / "utf16.csv"
    path.write_bytes(to_kaggle_csv(customers).encode("utf-16"))
    pd.testing.assert_frame_equal(load(path), baseline)


# --- rejects -------------------------------------------------------------------------------


def test_load_with_rejects_and_load_raising(tmp_path, customers):
    df = customers.astype({"Customer_Age": object, "Gender": object})
    df.loc[16, "Customer_Age"] = 300
    df.loc[20, "Gender"] = "X"
    path = write(tmp_path / "bad.csv", to_kaggle_csv(df))

    clean, rejects = load_with_rejects(path)
    assert len(clean) + len(rejects) == len(df)
    assert rejects["row"].tolist() == [17, 21]
    assert rejects.loc[0, "Customer_Age"] == "300"
    assert rejects.loc[0, "reason"] == "Customer_Age 300 is above the maximum 110"
    assert rejects.loc[0, schema.LEAKAGE[0]] == read_table(path).loc[16, schema.LEAKAGE[0]]

    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(
        f"2 of 40 rows in {path} are invalid; first: row 17: Customer_Age 300"
    )
    assert f"run `nba data validate {path}`" in message
    assert "\n" not in message


# --- whole-file problems -------------------------------------------------------------------


def _header(columns=schema.KAGGLE_COLUMNS, sep=","):
    return sep.join(columns) + "\n"


def bad_files(tmp_path: Path, customers: pd.DataFrame) -> dict[str, tuple[Path, str]]:
    """name → (file, a regex its DataError must match)."""
    text = to_kaggle_csv(customers)
    latin = text.replace('"Graduate"', '"Gradué"', 1)
    assert latin != text
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text(text)
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    ragged = text.split("\n")
    ragged[3] += ",1,2"
    return {
        "missing": (tmp_path / "nope.csv", r"nope\.csv does not exist"),
        "empty": (write(tmp_path / "empty.csv", ""), r"empty\.csv is empty"),
        "blank lines": (write(tmp_path / "blank.csv", "\n\n"), r"blank\.csv is empty"),
        "header only": (write(tmp_path / "h.csv", _header()), "has a header but no data rows"),
        "semicolon": (
            write(tmp_path / "semi.csv", text.replace(",", ";")),
            r"semi\.csv seems to be separated by semicolons \(;\); a comma-separated file is expected",
        ),
        "tab": (
            write(tmp_path / "tab.csv", text.replace(",", "\t")),
            "seems to be separated by tabs; a comma-separated file is expected",
        ),
        "latin-1": (
            write(tmp_path / "latin.csv", latin, "latin-1"),
            r"latin\.csv is not UTF-8 text",
        ),
        "missing columns": (
            write(
                tmp_path / "cols.csv",
                to_kaggle_csv(customers.drop(columns=["Gender", "Credit_Limit"])),
            ),
            r"cols\.csv is missing required columns: Gender, Credit_Limit$",
        ),
        "many missing columns": (
            write(tmp_path / "few.csv", "CLIENTNUM,Gender,Other\n1,F,x\n"),
            r"few\.csv is missing required columns: Customer_Age, Dependent_count, "
            r"Education_Level, Marital_Status, Income_Category and 13 more$",
        ),
        "unsupported type": (
            write(tmp_path / "c.xlsx", text),
            r"c\.xlsx has an unsupported file type",
        ),
        "not parquet": (
            not_parquet,
            r"fake\.parquet is not a Parquet file \(no Parquet footer found\)$",
        ),
        "empty parquet dir": (empty_dir, "is a directory without any Parquet files"),
        "ragged row": (
            write(tmp_path / "ragged.csv", "\n".join(ragged)),
            "is not a well-formed CSV",
        ),
        "bad gzip": (write(tmp_path / "c.csv.gz", text), r"c\.csv\.gz could not be read"),
    }


CASES = [
    "missing",
    "empty",
    "blank lines",
    "header only",
    "semicolon",
    "tab",
    "latin-1",
    "missing columns",
    "many missing columns",
    "unsupported type",
    "not parquet",
    "empty parquet dir",
    "ragged row",
    "bad gzip",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_files_raise_one_line_data_error(tmp_path, customers, case):
    files = bad_files(tmp_path, customers)
    assert set(files) == set(CASES)
    path, pattern = files[case]
    with pytest.raises(DataError, match=pattern) as info:
        read_table(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    with pytest.raises(DataError):
        load(path)


def test_duplicate_columns_after_stripping(tmp_path, customers):
    text = to_kaggle_csv(customers.assign(extra=1)).replace(",extra", ", Gender", 1)
    path = write(tmp_path / "dupe.csv", text)
    with pytest.raises(DataError, match="has duplicate columns: Gender"):
        read_table(path)


def test_read_table_without_required_columns_reads_any_table(tmp_path):
    path = write(tmp_path / "any.csv", "a,b\n1,x\n")
    assert read_table(path, required=()).to_dict("list") == {"a": ["1"], "b": ["x"]}


# --- writing and hashing -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_table_is_atomic_and_overwrites(tmp_path, customers, name):
    path = tmp_path / "sub" / name
    write_table(customers.iloc[:5], path)
    write_table(customers, path)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temp files left behind
    assert len(read_table(path)) == len(customers)


def test_write_table_failure_leaves_old_file_and_no_temp(tmp_path, customers):
    path = write_table(customers, tmp_path / "out.parquet")
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for an object column
        write_table(pd.DataFrame({"x": [object()]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_sha256_of_file_and_directory(tmp_path, customers):
    path = write_table(customers, tmp_path / "d" / "a.csv")
    assert sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()

    folder = tmp_path / "d"
    first = sha256(folder)
    (folder / "_SUCCESS").write_text("")  # marker files are ignored, as Parquet readers do
    assert sha256(folder) == first
    write_table(customers.iloc[:3], folder / "b.csv")
    second = sha256(folder)
    assert second != first
    assert sha256(folder) == second  # deterministic
    write_table(make_customers(3, seed=9), folder / "b.csv")
    assert sha256(folder) != second


def test_count_rows(tmp_path, customers, kaggle_csv):
    text = to_kaggle_csv(customers.assign(note="a"))
    path = write(tmp_path / "nl.csv", text.replace(',"a"', ',"line one\nline two"', 1))
    assert count_rows(path) == len(customers)  # a quoted line break is not a row
    assert count_rows(kaggle_csv) == len(customers)
    folder = tmp_path / "parts"
    write_table(customers.iloc[:25], folder / "part-0.parquet")
    write_table(customers.iloc[25:], folder / "part-1.parquet")
    assert count_rows(folder) == len(customers)
    assert count_rows(folder / "part-0.parquet") == 25
    assert count_rows(write(tmp_path / "h.csv", _header())) == 0


def test_parquet_without_rows(tmp_path, customers):
    path = write_table(customers.iloc[:0], tmp_path / "none.parquet")
    with pytest.raises(DataError, match=r"none\.parquet has no data rows$"):
        read_table(path)


def test_sha256_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        sha256(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "text",
    [
        "\ufeffa,b,c\n1,2,3\n",
        "a,b,c\r\n1,2,3\r\n4,,6\r\n",
        'a,b,c\n1,"x\ny",3\n',
        'a,b,c\n"NA","",None\n<NA>,-nan,n/a\n',
        'a,b,c\n 1 , 2,"3 "\n',
        "a,b,c\n\n1,2,3\n\n",
        "a,b,c\n,,\n",
        'a,b,c\n"he said ""hi""",2,3\n',
    ],
)
def test_fast_csv_reader_reads_what_pandas_reads(tmp_path, text):
    from nba.data.io import _read_csv_arrow

    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    fast = _read_csv_arrow(path, text.lstrip("\ufeff"))
    assert fast is not None
    pd.testing.assert_frame_equal(fast, pd.read_csv(path, dtype=str, encoding="utf-8-sig"))


@pytest.mark.parametrize(
    "text", ["a,a,c\n1,2,3\n", "a,,c\n1,2,3\n", "a,b,c\n1,2\n", "a,b,c\n   \n1,2,3\n"]
)
def test_fast_csv_reader_leaves_odd_files_to_pandas(tmp_path, text):
    from nba.data.io import _read_csv_arrow

    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    assert _read_csv_arrow(path, text) is None
    pd.testing.assert_frame_equal(
        read_table(path, required=()), pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    )


def test_the_missing_value_texts_are_what_pandas_reads_as_missing(tmp_path):
    """The arrow reader's missing texts (`NA_TEXT`) are pandas' defaults: each is missing for
    `pd.read_csv`, and a text just outside the list is not."""
    from nba.data.io import NA_TEXT, _read_csv_arrow

    path = tmp_path / "na.csv"
    values = [t for t in NA_TEXT if t] + ["n.a.", "NONE", "-"]
    text = "a,b\n" + "".join(f'"{v}",1\n' for v in values)
    path.write_text(text)
    by_pandas = pd.read_csv(path, dtype=str)
    assert by_pandas["a"].isna().tolist() == [v in NA_TEXT for v in values]
    pd.testing.assert_frame_equal(_read_csv_arrow(path, text), by_pandas)  # the arrow reader
