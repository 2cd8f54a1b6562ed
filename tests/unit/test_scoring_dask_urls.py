"""Paths as fsspec URLs: `memory://` and `file://` in and out for both scoring engines give the
same scores and rejects as plain local paths; URL problems are one sentence. (`memory://` is
one process's memory: the dask engine uses it with its in-process schedulers only.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from nba.bundle import Bundle
from nba.churn import TrainOptions
from nba.cli import main
from nba.config import Settings
from nba.data import schema, synth
from nba.data.discover import describe, write_synthetic
from nba.data.io import load, location, read_table, write_table
from nba.errors import DataError
from nba.scoring import score_file
from nba.scoring_dask import score_file_dask
from nba.train import train


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    """A fast bundle on 1,500 synthetic customers (seed 11)."""
    folder = tmp_path_factory.mktemp("urls")
    data = write_synthetic(folder / "train.csv", 1500, 11)
    trained, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return trained


@pytest.fixture
def mem() -> Iterator[str]:
    """A fresh `memory://` folder, emptied afterwards (the memory filesystem is per process)."""
    root = f"/nba-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}"
    fsspec.filesystem("memory").rm(root, recursive=True)


@pytest.fixture(scope="module")
def messy_text() -> str:
    """600 customers in Kaggle's CSV format with three bad rows (one a duplicate id)."""
    lines = synth.kaggle_csv_text(synth.generate(600, 4)).splitlines()
    rows = [line.split(",") for line in lines[1:]]
    col = {c: i for i, c in enumerate(lines[0].split(","))}
    rows[5][col["Customer_Age"]] = '"forty"'
    rows[300][col["Card_Category"]] = '"Diamond"'
    rows[550][col["CLIENTNUM"]] = rows[2][col["CLIENTNUM"]]
    return "\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n"


@pytest.fixture(scope="module")
def reference(bundle, messy_text, tmp_path_factory):
    """The pandas engine on a local file: (scores, rejects) as read back from Parquet."""
    folder = tmp_path_factory.mktemp("ref")
    (folder / "in.csv").write_text(messy_text)
    result = score_file(bundle, folder / "in.csv", folder / "scores.parquet")
    assert (result.rows_in, result.scored, result.rejected) == (600, 597, 3)
    return read_table(result.output, required=()), read_table(result.rejects, required=())


def _put(url: str, text: str) -> str:
    with fsspec.open(url, "w") as f:
        f.write(text)
    return url


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    a = got.sort_values(schema.ID, ignore_index=True)
    b = want.sort_values(schema.ID, ignore_index=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)


def _csv_view(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    path = folder / "view.csv"
    df.to_csv(path, index=False)
    return read_table(path, required=())


def test_location_keeps_local_paths_and_urls_apart(tmp_path):
    assert location(str(tmp_path / "a.csv")) == tmp_path / "a.csv"
    assert location(f"file://{tmp_path}/a.csv") == tmp_path / "a.csv"
    assert location("memory://x/a.csv") == "memory://x/a.csv"
    assert location("s3://bucket/a.parquet") == "s3://bucket/a.parquet"


def test_pandas_engine_memory_in_and_out(bundle, messy_text, reference, mem):
    src = _put(f"{mem}/in/customers.csv", messy_text)
    result = score_file(bundle, src, f"{mem}/out/scores.parquet")
    assert (result.rows_in, result.scored, result.rejected) == (600, 597, 3)
    assert result.output == f"{mem}/out/scores.parquet"
    assert result.rejects == f"{mem}/out/scores.rejects.csv"  # beside the output, as locally
    _same(read_table(result.output, required=()), reference[0])
    pd.testing.assert_frame_equal(read_table(result.rejects, required=()), reference[1])


def test_cli_pandas_engine_file_urls(bundle, messy_text, reference, tmp_path, capsys):
    from nba.bundle import save_bundle

    (tmp_path / "in.csv").write_text(messy_text)
    bundle_file = save_bundle(bundle, tmp_path / "nba.bundle")
    out = tmp_path / "o" / "scores.csv"
    code = main(
        ["score", f"file://{tmp_path}/in.csv", "--bundle", str(bundle_file)]
        + ["--out", f"file://{out}", "--rejects", f"file://{tmp_path}/bad.csv"]
    )
    assert code == 0, capsys.readouterr().err
    _same(read_table(out, required=()), _csv_view(reference[0], tmp_path))
    pd.testing.assert_frame_equal(read_table(tmp_path / "bad.csv", required=()), reference[1])


@pytest.mark.parametrize("out_name", ["scores.csv", "scores.parquet"])
def test_dask_engine_memory_in_and_out(bundle, messy_text, reference, mem, out_name, tmp_path):
    src = _put(f"{mem}/in/customers.csv", messy_text)
    out = f"{mem}/out/{out_name}"
    result = score_file_dask(bundle, src, out, blocksize=20_000, scheduler="threads")
    assert (result.rows_in, result.scored, result.rejected) == (600, 597, 3)
    assert sum(result.workers.values()) >= 4  # several partitions
    fs = fsspec.filesystem("memory")
    if out_name.endswith(".parquet"):  # a folder of parts
        assert len(fs.glob(f"{out[len('memory://') :]}/part-*.parquet")) >= 4
        _same(read_table(out, required=()), reference[0])
    else:
        _same(read_table(out, required=()), _csv_view(reference[0], tmp_path))
    pd.testing.assert_frame_equal(read_table(result.rejects, required=()), reference[1])
    # only the outputs are left: no hidden part folders
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{mem}/out", detail=False)) == sorted(
        [out_name, "scores.rejects.csv"]
    )


def test_dask_engine_memory_parquet_folder_in(bundle, mem, tmp_path):
    df = synth.generate(500, 6)
    for k in (0, 1):
        write_table(df.iloc[k * 250 : (k + 1) * 250], f"{mem}/in.parquet/p{k}.parquet")
    result = score_file_dask(bundle, f"{mem}/in.parquet", f"{mem}/out.csv", scheduler="sync")
    assert (result.rows_in, result.scored, result.rejected) == (500, 500, 0)
    assert result.rejects is None
    local = score_file(bundle, f"{mem}/in.parquet", tmp_path / "want.csv")
    _same(read_table(f"{mem}/out.csv", required=()), read_table(local.output, required=()))


def test_dask_engine_file_urls(bundle, messy_text, reference, tmp_path):
    (tmp_path / "in.csv").write_text(messy_text)
    result = score_file_dask(
        bundle,
        f"file://{tmp_path}/in.csv",
        f"file://{tmp_path}/out.parquet",
        blocksize=20_000,
        scheduler="sync",
    )
    assert result.output == tmp_path / "out.parquet"
    _same(read_table(tmp_path / "out.parquet", required=()), reference[0])
    pd.testing.assert_frame_equal(
        read_table(tmp_path / "out.rejects.csv", required=()), reference[1]
    )


def test_memory_urls_are_refused_for_worker_processes(bundle, messy_text, mem, tmp_path):
    src = _put(f"{mem}/in.csv", messy_text)
    with pytest.raises(DataError, match="Dask worker processes do not share"):
        score_file_dask(bundle, src, tmp_path / "o.csv")  # a LocalCluster of processes
    assert not list(tmp_path.iterdir())


def test_remote_whole_file_problems_name_the_url(mem):
    with pytest.raises(DataError, match=rf"^{mem}/nope.csv does not exist$"):
        read_table(f"{mem}/nope.csv")
    semi = _put(f"{mem}/semi.csv", "CLIENTNUM;Customer_Age\n1;40\n")
    with pytest.raises(DataError, match=rf"^{semi} seems to be separated by semicolons"):
        read_table(semi)
    with pytest.raises(DataError, match=r"^nope://x/a.csv is not a URL nba can open"):
        read_table("nope://x/a.csv")


def test_a_url_whose_filesystem_package_is_missing_is_one_sentence():
    # as `abfs://` is without adlfs: fsspec knows the protocol, its package does not import
    fsspec.register_implementation(
        "nbatest", "no_such_module.FileSystem", errtxt="Install no_such_module", clobber=True
    )
    with pytest.raises(
        DataError,
        match=r"^nbatest://c/a.csv needs a filesystem package that is not installed: Install",
    ):
        read_table("nbatest://c/a.csv")


def test_an_output_that_cannot_be_written_is_one_sentence(bundle, messy_text, tmp_path):
    (tmp_path / "in.csv").write_text(messy_text)
    (tmp_path / "afile").write_text("not a folder")
    target = tmp_path / "afile" / "scores.csv"
    with pytest.raises(DataError, match=rf"^{target} cannot be written: ") as err:
        score_file_dask(bundle, tmp_path / "in.csv", target, scheduler="sync")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.csv"]
