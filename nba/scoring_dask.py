"""Batch scoring for data larger than memory: the pandas engine, one Dask partition at a time.

`score_file_dask` gives the same outputs as `nba.scoring.score_file` (same score columns, the
same rejects with `row` and `reason`, rows in = rows scored + rows rejected) without ever
holding the whole input or the whole result in memory:

1. whole-file checks on the head of the file (missing, empty, wrong delimiter, required columns
   missing) raise the same one-line `DataError` as the pandas engine;
2. an ids pass reads CLIENTNUM only, partition by partition: it gives each partition's length
   (so reject `row` numbers are positions in the whole input) and finds CLIENTNUMs repeated
   across partitions (a few bytes per row on the driver: 10 M ids ≈ 80 MB);
3. each partition is validated, scored and written as its own part file by a worker;
4. parts are put together: a Parquet output is a folder of parts; a CSV output (and the
   rejects CSV) is the parts' bytes streamed one after the other, headers dropped but the first.

Duplicates: a CLIENTNUM seen in an earlier row anywhere in the input is rejected with the same
reason as the pandas engine ("CLIENTNUM 7 duplicates row 12", row numbers global). Missing or
non-numeric ids are left to `validate` (they are rejected as missing / not a number).

Limits: a CSV is split at line ends, so line breaks inside quoted values are not supported
(Dask's own limit; use the pandas engine or `blocksize=None`); a `.csv.gz` is one partition
(gzip cannot be split); UTF-16 text is refused with a one-line message. Output: `.csv` or a
Parquet folder (`.parquet`, `.pq` or a name without a suffix).
"""

from __future__ import annotations

import io
import logging
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nba.data import schema
from nba.data.io import check_delimiter, is_parquet
from nba.data.io import check_parquet_path as _read_parquet_check
from nba.data.io import head_bytes as _peek
from nba.data.io import one_line as _one_line
from nba.data.io import table_kind as _kind
from nba.data.validate import (
    DUPLICATE,
    REASON,
    ROW,
    check_columns,
    clean_column_names,
    duplicate_message,
    join_reasons,
    show_values,
    validate,
)
from nba.errors import DataError
from nba.scoring import ScoreResult, score_frame
from nba.scoring import rejects_path as _rejects_path

log = logging.getLogger(__name__)


# --- whole-file checks ------------------------------------------------------------------------


def _id_column(names: Sequence[str]) -> str:
    """The id column's name as the file spells it (with stray spaces or byte-order mark)."""
    return next(n for n, c in zip(names, clean_column_names(names), strict=True) if c == schema.ID)


def check_input(path: Path) -> tuple[str, str]:
    """('csv' or 'parquet', the id column's name as written) after the whole-file checks the
    pandas engine makes, on the head of the file only (columns, emptiness, delimiter);
    one-line `DataError` otherwise."""
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if is_parquet(path):
        _read_parquet_check(path)
        try:
            dataset = pq.ParquetDataset(path)
            names = list(dataset.schema.names)
            rows = sum(f.metadata.num_rows for f in dataset.fragments)
        except Exception as err:  # noqa: BLE001 - any unreadable Parquet is one sentence
            if "magic bytes" in str(err):
                raise DataError(f"{path} is not a Parquet file (no Parquet footer found)") from None
            raise DataError(f"{path} could not be read as Parquet: {_one_line(err)}") from None
        check_columns(clean_column_names(names), str(path), schema.REQUIRED)
        if rows == 0:
            raise DataError(f"{path} has no data rows")
        return "parquet", _id_column(names)
    _kind(path)
    try:
        head = _peek(path)
    except PermissionError:
        raise DataError(f"{path} is not readable (permission denied)") from None
    except OSError as err:
        raise DataError(f"{path} could not be read: {_one_line(err)}") from None
    if not head.strip():
        raise DataError(f"{path} is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path} is UTF-16 text, which the dask engine cannot split; save it as UTF-8 CSV "
            "or use --engine pandas"
        )
    text = head.decode("utf-8-sig", errors="replace")
    lines = check_delimiter(text, path)
    try:
        sample = pd.read_csv(io.StringIO(text[: text.rfind("\n") + 1] or text), dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{path} is not a well-formed CSV file: {_one_line(err)}") from None
    check_columns(clean_column_names(sample.columns), str(path), schema.REQUIRED)
    if len(sample) == 0 and len(lines) <= 1:
        raise DataError(f"{path} has a header but no data rows")
    return "csv", _id_column(list(sample.columns))


def _frame(path: Path, kind: str, blocksize: str | int | None, columns: Sequence[str] | None):
    import dask.dataframe as dd

    if kind == "parquet":
        return dd.read_parquet(path, columns=list(columns) if columns else None)
    gz = path.name.lower().endswith(".gz")
    return dd.read_csv(
        path,
        dtype=str,
        blocksize=None if gz else blocksize,
        compression="gzip" if gz else None,
        encoding="utf-8-sig",
        usecols=list(columns) if columns else None,
    )


# --- per-partition work -----------------------------------------------------------------------


def _ids(part: pd.DataFrame) -> np.ndarray:
    """CLIENTNUM as float64 (NaN where missing or not a number), as `validate` sees it."""
    part.columns = clean_column_names(part.columns)
    return pd.to_numeric(part[schema.ID], errors="coerce").to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class _Dups:
    """Global duplicates inside one partition: local positions and the 1-based global row of
    the first occurrence of their id."""

    local: np.ndarray
    first_row: np.ndarray


def _global_dups(ids: list[np.ndarray]) -> list[_Dups]:
    every = pd.Series(np.concatenate(ids) if ids else np.array([], dtype=np.float64))
    known = every.notna().to_numpy()
    dup = every.duplicated(keep="first").to_numpy() & known
    firsts = every[known & ~dup]
    first_row = pd.Series(firsts.index.to_numpy() + 1, index=firsts.to_numpy())
    out, offset = [], 0
    for part in ids:
        local = np.flatnonzero(dup[offset : offset + len(part)])
        rows = first_row.reindex(part[local]).to_numpy(dtype=np.int64) if local.size else local
        out.append(_Dups(local, rows))
        offset += len(part)
    return out


def _with_global_dups(
    raw: pd.DataFrame,
    clean: pd.DataFrame,
    rejects: pd.DataFrame,
    dups: _Dups,
    offset: int,
    issues: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shift reject rows to global numbers and reject every id seen earlier in the whole input
    with the pandas engine's reason (the duplicate message comes first, as `validate` orders).
    Reasons are rebuilt from `validate`'s issues (row, rule, message), never parsed."""
    rejects = rejects.copy()
    local_rows = rejects[ROW].to_numpy(dtype=np.int64) - 1
    first = dict(zip(dups.local.tolist(), dups.first_row.tolist(), strict=True))
    typed_ids = pd.to_numeric(raw[schema.ID], errors="coerce")

    def duplicate(local: int, row: int) -> str:
        shown = show_values(raw[schema.ID].iloc[[local]], typed_ids.iloc[[local]])[0]
        return duplicate_message(shown, row)

    messages: dict[int, list[str]] = {}
    has_duplicate: set[int] = set()
    for row, rule, message, first_row in zip(
        issues["row"].tolist(),
        issues["rule"].tolist(),
        issues["message"].tolist(),
        issues["first_row"].tolist(),
        strict=True,
    ):
        local = row - 1
        if rule == DUPLICATE:  # validate's own: first occurrence in this partition
            message = duplicate(local, first.get(local, first_row + offset))
            has_duplicate.add(local)
        messages.setdefault(local, []).append(message)
    for local, row in first.items():  # ids seen in an earlier partition
        if local not in has_duplicate:
            messages.setdefault(local, []).insert(0, duplicate(local, row))
    already = set(local_rows.tolist())
    rejects[ROW] = local_rows + 1 + offset
    rejects[REASON] = pd.Series(
        [join_reasons(messages[local]) for local in local_rows.tolist()],
        index=rejects.index,
        dtype="str",
    )
    extra_local = [local for local in dups.local.tolist() if local not in already]
    extra_reason = [join_reasons(messages[local]) for local in extra_local]
    if not extra_local:
        return clean, rejects

    # clean rows are the partition's rows that validate did not reject, in order
    clean_local = np.setdiff1d(np.arange(len(raw)), local_rows)
    drop = np.isin(clean_local, extra_local)
    clean = clean.loc[~drop].reset_index(drop=True)
    order = np.argsort(extra_local, kind="stable")
    extra = raw.iloc[np.asarray(extra_local)[order]].reset_index(drop=True)
    extra = extra.drop(columns=[c for c in (ROW, REASON) if c in extra.columns])
    extra.insert(0, ROW, np.asarray(extra_local)[order] + 1 + offset)
    extra[REASON] = pd.Series(np.asarray(extra_reason, dtype=object)[order], dtype="str")
    rejects = pd.concat([rejects, extra.astype(rejects.dtypes.to_dict())], ignore_index=True)
    rejects = rejects.sort_values(ROW, kind="stable", ignore_index=True)
    return clean, rejects


def _write_part(df: pd.DataFrame, folder: Path, i: int, kind: str) -> Path | None:
    if df.empty:
        return None
    path = folder / f"part-{i:05d}.{kind}"
    if kind == "csv":
        df.to_csv(path, index=False, lineterminator="\n")
    else:
        df.to_parquet(path, index=False)
    return path


def _score_part(
    part: pd.DataFrame,
    bundle: Any,
    i: int,
    offset: int,
    dups: _Dups,
    out_dir: str,
    out_kind: str,
    rej_dir: str,
    rej_kind: str,
) -> dict[str, Any]:
    """Validate, score and write one partition; returns its counts and part files."""
    raw = part.reset_index(drop=True)
    raw.columns = clean_column_names(raw.columns)
    n_in = len(raw)
    if n_in == 0:
        return {"i": i, "rows_in": 0, "scored": 0, "rejected": 0, "first_reason": None}
    checked = validate(raw)
    clean, rejects = _with_global_dups(
        raw, checked.clean, checked.rejects, dups, offset, checked.issues
    )
    scored = score_frame(bundle, clean) if len(clean) else clean.iloc[:0]
    if len(clean):
        _write_part(scored, Path(out_dir), i, out_kind)
    if len(rejects):
        _write_part(rejects, Path(rej_dir), i, rej_kind)
    assert len(clean) + len(rejects) == n_in
    return {
        "i": i,
        "rows_in": n_in,
        "scored": len(clean),
        "rejected": len(rejects),
        "first_reason": str(rejects[REASON].iloc[0]) if len(rejects) else None,
    }


# --- putting parts together -------------------------------------------------------------------


def _concat_csv(parts: list[Path], target: Path) -> None:
    """Stream CSV parts into one file, keeping only the first header."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as out:
        for n, p in enumerate(parts):
            with open(p, "rb") as f:
                header = f.readline()
                if n == 0:
                    out.write(header)
                shutil.copyfileobj(f, out, 16 * 2**20)
    tmp.replace(target)


def _finish(parts_dir: Path, target: Path, kind: str) -> Path | None:
    parts = sorted(parts_dir.glob(f"part-*.{kind}"))
    if not parts:
        shutil.rmtree(parts_dir, ignore_errors=True)
        return None
    if kind == "csv":
        _concat_csv(parts, target)
        shutil.rmtree(parts_dir, ignore_errors=True)
    else:
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        parts_dir.replace(target)
    return target


def _out_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")) or not Path(name).suffix:
        return "parquet"
    raise DataError(f"{path}: the dask engine writes .csv or a .parquet folder of parts")


# --- the engine ------------------------------------------------------------------------------


def score_file_dask(
    bundle: Any,
    input_path: str | Path,
    output: str | Path,
    rejects: str | Path | None = None,
    blocksize: str | int = "64MB",
    *,
    scheduler: str = "distributed",
    n_workers: int = 2,
    memory_limit: str = "1.5GiB",
) -> ScoreResult:
    """`nba score --engine dask`: the pandas engine's outputs, partition by partition.

    `input_path`: a CSV (split in `blocksize` chunks, every column read as text) or a Parquet
    file/folder (one partition per file / row group). `output`: `.csv` (one file, parts
    concatenated in order) or `.parquet` / a folder (a folder of part files). `rejects`: CSV
    (default `<output>.rejects.csv`) or Parquet folder. `scheduler`: "distributed" (a
    `LocalCluster` of `n_workers` single-thread processes with `memory_limit` each), "threads"
    or "sync" (both in this process). Rows in = rows scored + rows rejected, always.
    """
    import dask

    input_path, output = Path(input_path), Path(output)
    kind, id_column = check_input(input_path)
    out_kind = _out_kind(output)
    rejects_path = _rejects_path(output, Path(rejects) if rejects else None)
    rej_kind = _out_kind(rejects_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    out_dir = output.with_name(f".{output.name}.{tag}.parts")
    rej_dir = rejects_path.with_name(f".{rejects_path.name}.{tag}.parts")
    out_dir.mkdir()
    rej_dir.mkdir()

    client = cluster = None
    try:
        if scheduler == "distributed":
            from dask.distributed import Client, LocalCluster

            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=memory_limit,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            )
            client = Client(cluster)
            get = {}
        else:
            get = {"scheduler": scheduler}
        try:
            id_parts = _frame(input_path, kind, blocksize, [id_column]).to_delayed()
            ids = list(dask.compute(*[dask.delayed(_ids)(p) for p in id_parts], **get))
            dups = _global_dups(ids)
            offsets = np.concatenate([[0], np.cumsum([len(a) for a in ids])]).tolist()
            n_parts = len(ids)
            del ids  # the driver keeps only the duplicates, not every id
            parts = _frame(input_path, kind, blocksize, None).to_delayed()
            if len(parts) != n_parts:
                raise DataError(f"{input_path} changed while it was being scored")
            shared = client.scatter(bundle, broadcast=True) if client else bundle
            tasks = [
                dask.delayed(_score_part)(
                    p,
                    shared,
                    i,
                    offsets[i],
                    dups[i],
                    str(out_dir),
                    out_kind,
                    str(rej_dir),
                    rej_kind,
                )
                for i, p in enumerate(parts)
            ]
            done = list(dask.compute(*tasks, **get))
        except DataError:
            raise
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as err:
            raise DataError(f"{input_path} could not be read as {kind}: {_one_line(err)}") from None
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(rej_dir, ignore_errors=True)
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    rows_in = sum(d["rows_in"] for d in done)
    scored = sum(d["scored"] for d in done)
    rejected = sum(d["rejected"] for d in done)
    if scored == 0:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(rej_dir, ignore_errors=True)
        first = next(d["first_reason"] for d in done if d["first_reason"])
        raise DataError(
            f"no usable row in {input_path}: all {rows_in:,} rows failed validation "
            f"(first: {first})"
        )
    _finish(out_dir, output, out_kind)
    rejects_out = _finish(rej_dir, rejects_path, rej_kind)
    result = ScoreResult(rows_in, scored, rejected, output, rejects_out)
    assert result.scored + result.rejected == result.rows_in
    log.info("dask engine: %s", result.summary)
    return result
