"""Reading and writing customer tables (CSV or Parquet), loading validated data, file hashes.

This is the edge where files become DataFrames. Whole-file problems (missing, unreadable, not
UTF-8, empty, wrong delimiter, required columns missing) raise `DataError` with one sentence
naming the file and the problem; row problems are left to `nba.data.validate`.

Where a table is: a plain path or a `file://` URL is a local file; any other fsspec URL
(`memory://`, and `s3://`, `gs://`, `abfs://` once the user installs s3fs, gcsfs or adlfs) is
read and written through fsspec, with the same checks and the same sentences.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
import re
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow
import pyarrow.csv
import pyarrow.parquet

from nba.data import schema
from nba.data.validate import (
    ValidationResult,
    check_columns,
    clean_column_names,
    validate,
)
from nba.errors import DataError

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 64 * 1024
_OTHER_DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "pipes (|)"}


def table_kind(path: Path | str) -> str:
    """'csv' or 'parquet' from the file name (a Path or a URL); a directory is a Parquet dataset."""
    name = _name(path).lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise DataError(
        f"{path} has an unsupported file type; use {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def _name(path: Path | str) -> str:
    """The last part of a Path or of a URL (`memory://x/a.csv` → `a.csv`)."""
    return path.name if isinstance(path, Path) else str(path).rstrip("/").rsplit("/", 1)[-1]


def location(path: str | os.PathLike[str]) -> Path | str:
    """Where a table is: a local `Path` for a plain path or a `file://` URL; the URL itself for
    any other fsspec protocol (`memory://`, `s3://`, `gs://`, `abfs://`…), read and written
    through `filesystem`."""
    if isinstance(path, Path):
        return path
    text = os.fspath(path)
    protocol, _ = fsspec.core.split_protocol(text)
    if protocol is None:
        return Path(text)
    if protocol in ("file", "local"):
        return Path(fsspec.core.url_to_fs(text)[1])
    return text


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path inside it) for a URL; one sentence when the protocol is unknown
    or its package is not installed (`s3://` needs s3fs, `gs://` gcsfs, `abfs://` adlfs)."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        raise DataError(
            f"{url} needs a filesystem package that is not installed: {one_line(err)}"
        ) from None
    except ValueError as err:
        raise DataError(f"{url} is not a URL nba can open: {one_line(err)}") from None


def with_name(path: Path | str, name: str) -> Path | str:
    """A sibling of a Path or a URL: the same folder, another file name."""
    if isinstance(path, Path):
        return path.with_name(name)
    return f"{str(path).rstrip('/').rsplit('/', 1)[0]}/{name}"


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """True for a `.parquet`/`.pq` file name or a directory (a Parquet dataset)."""
    path = Path(path)
    return path.is_dir() or path.name.lower().endswith(PARQUET_SUFFIXES)


def count_rows(path: str | os.PathLike[str]) -> int:
    """Number of data rows in a CSV or Parquet table, without validating them.

    Parquet answers from file metadata; CSV is parsed (one column only) so that quoted line
    breaks are counted correctly. Unreadable files raise DataError as `read_table` does.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if is_parquet(path):
        check_parquet_path(path)
        try:
            return int(pyarrow.parquet.ParquetDataset(path).read(columns=[]).num_rows)
        except (pyarrow.ArrowException, OSError, ValueError) as err:
            raise DataError(f"{path} could not be read as Parquet: {one_line(err)}") from None
    table_kind(path)
    return len(_read_csv(path, usecols=[0]))


def one_line(err: BaseException) -> str:
    """An exception's message squeezed onto one line."""
    return " ".join(str(err).split()) or type(err).__name__


def read_table(
    path: str | os.PathLike[str], *, required: Sequence[str] = schema.REQUIRED
) -> pd.DataFrame:
    """The table at `path` as a DataFrame; CSV columns are all text so raw values survive.

    Accepts `.csv`, `.csv.gz` (UTF-8, with or without BOM, LF or CRLF, quoted or not; a UTF-16
    file with a BOM is decoded too), `.parquet`/`.pq` or a directory of Parquet files. Column
    names are stripped of surrounding whitespace; column order is free and extra columns are
    kept. `required` names columns that must be present (pass `()` for any table). `path` may
    be an fsspec URL (see `location`).
    """
    path = location(path)
    if isinstance(path, str):
        parquet = not _name(path).lower().endswith(CSV_SUFFIXES)  # a file or a folder
        return _check_table(_read_remote(path), path, required, parquet=parquet)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_dir():
        df = _read_parquet(path)
    elif table_kind(path) == "csv":
        df = _read_csv(path)
    else:
        df = _read_parquet(path)
    return _check_table(df, path, required, parquet=is_parquet(path))


def _check_table(
    df: pd.DataFrame, path: Path | str, required: Sequence[str], parquet: bool
) -> pd.DataFrame:
    """Column names cleaned, required columns present, at least one row."""
    df.columns = clean_column_names(df.columns)
    check_columns(list(df.columns), str(path), required)
    if len(df) == 0:
        what = "no data rows" if parquet else "a header but no data rows"
        raise DataError(f"{path} has {what}")
    logger.info("read %d rows × %d columns from %s", len(df), df.shape[1], path)
    return df


def _read_remote(url: str) -> pd.DataFrame:
    """A table behind an fsspec URL, read with the local rules and sentences. A CSV is copied
    to a temporary local file first (the pandas engine holds the whole table in memory anyway),
    so that every check of `_read_csv` applies unchanged; Parquet is read in place."""
    import tempfile

    fs, inner = filesystem(url)
    try:
        if not fs.exists(inner):
            raise DataError(f"{url} does not exist")
        if fs.isdir(inner):
            if not fs.find(inner):
                raise DataError(f"{url} is a directory without any Parquet files")
            return _read_parquet_remote(fs, inner, url, "a directory of Parquet files")
        kind = table_kind(url)
        if fs.size(inner) == 0:
            raise DataError(f"{url} is empty")
        if kind == "parquet":
            return _read_parquet_remote(fs, inner, url, "a Parquet file")
        with tempfile.TemporaryDirectory(prefix="nba-read-") as tmp:
            local = Path(tmp) / _name(url)
            fs.get(inner, str(local))
            try:
                return _read_csv(local)
            except DataError as err:
                raise DataError(str(err).replace(str(local), url)) from None
    except PermissionError:
        raise DataError(f"{url} is not readable (permission denied)") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{url} could not be read: {one_line(err)}") from None


def _read_parquet_remote(fs: fsspec.AbstractFileSystem, inner: str, url: str, what: str):
    try:
        return pd.read_parquet(inner, filesystem=fs)
    except (pyarrow.ArrowException, OSError, ValueError, TypeError) as err:
        if "magic bytes" in str(err):
            raise DataError(f"{url} is not a Parquet file (no Parquet footer found)") from None
        raise DataError(f"{url} could not be read as {what}: {one_line(err)}") from None


def head_bytes(path: Path) -> bytes:
    """The first bytes of the file's content (decompressed for .gz)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read(_SNIFF_BYTES)


def check_delimiter(text: str, path: Path) -> list[str]:
    """The non-blank lines of the start of a CSV; a header without commas but with another
    delimiter is one clear error (a semicolon- or tab-separated export)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = lines[0] if lines else ""
    if "," not in header:
        found = {d: header.count(d) for d in _OTHER_DELIMITERS if d in header}
        if found:
            delim = max(found, key=found.__getitem__)
            raise DataError(
                f"{path} seems to be separated by {_OTHER_DELIMITERS[delim]}; "
                "a comma-separated file is expected"
            )
    return lines


def _read_csv(path: Path, usecols: list[int] | None = None) -> pd.DataFrame:
    try:
        head = head_bytes(path)
    except PermissionError:
        raise DataError(f"{path} is not readable (permission denied)") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} could not be read: {one_line(err)}") from None
    if not head.strip():
        raise DataError(f"{path} is empty")

    encoding = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    check_delimiter(head.decode(encoding, errors="replace"), path)

    if usecols is None and encoding == "utf-8-sig":
        fast = _read_csv_arrow(path, head.decode(encoding, errors="replace"))
        if fast is not None:
            return fast
    try:
        return pd.read_csv(path, dtype=str, encoding=encoding, compression="infer", usecols=usecols)
    except UnicodeError:
        raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV and try again") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except pd.errors.ParserError as err:
        # pandas: "Error tokenizing data. C error: Expected 23 fields in line 5, saw 24"
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        detail = (
            f"line {m[2]} has {m[3]} fields where the header has {m[1]} (check quoting)"
            if m
            else one_line(err)
        )
        raise DataError(f"{path} is not a well-formed CSV file: {detail}") from None
    except PermissionError:
        raise DataError(f"{path} is not readable (permission denied)") from None
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise DataError(f"{path} could not be read as CSV: {one_line(err)}") from None


#: What `pd.read_csv` reads as missing by default (its `na_values` documentation), so that the
#: arrow reader agrees with it value for value. Written out rather than read from pandas'
#: private `pandas._libs.parsers.STR_NA_VALUES`; tests/unit/test_io.py checks that pandas
#: still treats exactly these texts as missing.
NA_TEXT = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_NA_TEXT = sorted(NA_TEXT)
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # the "str" dtype pd.read_csv(dtype=str) gives


def _read_csv_arrow(path: Path, head: str) -> pd.DataFrame | None:
    """The CSV as `pd.read_csv(path, dtype=str)` returns it, read by pyarrow's multithreaded
    parser (several times faster); None when the file is not plain enough to be sure of the same
    result (odd header, ragged rows, bad bytes…), so that pandas reads it and words any problem."""
    try:
        names = next(csv.reader(io.StringIO(head)))
    except (csv.Error, StopIteration):
        return None
    if not names or len(set(names)) != len(names) or not all(n.strip() for n in names):
        return None  # pandas renames repeated and empty names; leave those files to it
    try:
        table = pyarrow.csv.read_csv(
            path,
            parse_options=pyarrow.csv.ParseOptions(newlines_in_values=True),
            convert_options=pyarrow.csv.ConvertOptions(
                # large_string is what the "str" dtype stores: no copy into pandas
                column_types={n: pyarrow.large_string() for n in names},
                null_values=_NA_TEXT,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pyarrow.ArrowException, OSError, ValueError):
        return None
    if table.column_names != names:
        return None
    return table.to_pandas(types_mapper={pyarrow.large_string(): _TEXT}.get)


def check_parquet_path(path: Path) -> None:
    """A Parquet input that is an empty file or a folder without files is one sentence."""
    if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
        raise DataError(f"{path} is a directory without any Parquet files")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path} is empty")


def _read_parquet(path: Path) -> pd.DataFrame:
    check_parquet_path(path)
    what = "a directory of Parquet files" if path.is_dir() else "a Parquet file"
    try:
        return pd.read_parquet(path)
    except PermissionError:
        raise DataError(f"{path} is not readable (permission denied)") from None
    except (pyarrow.ArrowException, OSError, ValueError, TypeError) as err:
        if "magic bytes" in str(err):
            raise DataError(f"{path} is not a Parquet file (no Parquet footer found)") from None
        raise DataError(f"{path} could not be read as {what}: {one_line(err)}") from None


def validate_file(path: str | os.PathLike[str]) -> ValidationResult:
    """`read_table` then `validate`: the full result, for reports such as `nba data validate`."""
    return validate(read_table(path))


def load_with_rejects(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean, rejects) for the customer file at `path`; see `nba.data.validate.validate`.

    clean: typed valid rows (`schema.REQUIRED` columns, + `churn` int8 when the file has
    Attrition_Flag; leakage and extra columns dropped). rejects: invalid rows with their raw
    values, `row` (1-based data-row number) and `reason`.
    """
    result = validate_file(path)
    if len(result.rejects):
        logger.warning(
            "%d of %d rows in %s are invalid: %s",
            len(result.rejects),
            result.n_in,
            path,
            "; ".join(result.problems),
        )
    return result.clean, result.rejects


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The clean, typed customer frame at `path`; DataError if any row is invalid.

    For training and analysis, where silently dropping customers would bias the results.
    Use `load_with_rejects` to keep going without the invalid rows.
    """
    clean, rejects = load_with_rejects(path)
    if len(rejects):
        n_in = len(clean) + len(rejects)
        first = rejects.iloc[0]
        verb = "is" if len(rejects) == 1 else "are"
        raise DataError(
            f"{len(rejects)} of {n_in} rows in {path} {verb} invalid; "
            f"first: row {first['row']}: {first['reason']}; "
            f"run `nba data validate {path}` for the list"
        )
    return clean


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | str:
    """Write `df` (without its index) as CSV or Parquet by extension, atomically.

    The table is written to a temporary file in the same directory and moved into place with
    os.replace, so a reader never sees half a file. Missing parent directories are created.
    An fsspec URL (see `location`) is written in one stream: object stores publish an object
    only when its upload completes, so readers do not see half a file there either.
    """
    path = location(path)
    kind = table_kind(path)
    if isinstance(path, str):
        return _write_remote(df, path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if kind == "csv":
            gz = path.name.lower().endswith(".gz")
            df.to_csv(tmp, index=False, compression="gzip" if gz else None, lineterminator="\n")
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote %d rows to %s", len(df), path)
    return path


def _write_remote(df: pd.DataFrame, url: str, kind: str) -> str:
    fs, inner = filesystem(url)
    parent = inner.rstrip("/").rsplit("/", 1)[0]
    if parent and parent != inner:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(inner, "wb") as f:
        if kind == "csv":
            gz = url.lower().endswith(".gz")
            df.to_csv(f, index=False, compression="gzip" if gz else None, lineterminator="\n")
        else:
            df.to_parquet(f, index=False)
    logger.info("wrote %d rows to %s", len(df), url)
    return url


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (streamed).

    For a directory: a hash over its files in sorted relative-path order (path and content
    hash of each), skipping names that start with '.' or '_' as Parquet readers do.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_file():
        return _file_sha256(path)
    files = sorted(
        (p.relative_to(path).as_posix(), p)
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    h = hashlib.sha256()
    for rel, p in files:
        h.update(f"{rel}\0{_file_sha256(p)}\n".encode())
    return h.hexdigest()
