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

Where it runs: a `LocalCluster` started for the run and closed after it (the default), or an
existing Dask cluster (`cluster=`/`client=`, `nba score --cluster ADDRESS`, `NBA_DASK_CLUSTER`;
`connect` is the reusable door). On an existing cluster nothing is started or stopped but the
work: the bundle travels to the workers through the client (scattered once to each), every
byte of data is read and written by the workers, and the client is closed at the end.

Where the files are: paths or fsspec URLs (`file://`, `memory://`, and `s3://`, `gs://`,
`abfs://` with the user's s3fs, gcsfs or adlfs installed on the driver and the workers). The
workers read the input and write the output parts and assemble them (a CSV output is streamed
together by one worker), so a remote target never passes through the driver; on a cluster of
other machines a plain path must be on a disk they share, and `memory://` lives inside one
process (in-process schedulers only).

Limits: a CSV is split at line ends, so line breaks inside quoted values are not supported
(Dask's own limit; use the pandas engine or `blocksize=None`); a `.csv.gz` is one partition
(gzip cannot be split); UTF-16 text is refused with a one-line message. Output: `.csv` or a
Parquet folder (`.parquet`, `.pq` or a name without a suffix).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nba.data import schema
from nba.data.io import (
    _SNIFF_BYTES,
    PARQUET_SUFFIXES,
    check_delimiter,
    filesystem,
    location,
    one_line,
    table_kind,
)
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
from nba.errors import DataError, NbaError
from nba.scoring import ScoreResult, rejects_path, score_frame

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


# --- where the files are ----------------------------------------------------------------------

CLUSTER_ENV = "NBA_DASK_CLUSTER"
#: Seconds to wait for an existing scheduler to answer (and to have a worker) before giving up.
CONNECT_TIMEOUT = 10.0


class ClusterError(NbaError):
    """The Dask cluster cannot be reached or cannot run the work (one sentence, exit 2)."""


@dataclass(frozen=True)
class Where:
    """A file or folder as the engine reaches it: an fsspec filesystem, the absolute path inside
    it, and what the user wrote (messages name that)."""

    fs: Any
    path: str
    shown: str

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        head, sep, _ = self.path.rstrip("/").rpartition("/")
        return (head or "/") if sep else ""

    @property
    def local(self) -> bool:
        return "file" in _protocols(self.fs)

    @property
    def url(self) -> str:
        """What Dask's readers take: the local path, or the full URL."""
        return self.path if self.local else self.fs.unstrip_protocol(self.path)

    def sibling(self, name: str) -> Where:
        """Another name in the same folder (for the hidden folders of part files)."""
        parent = self.parent.rstrip("/")
        return Where(self.fs, f"{parent}/{name}" if self.parent else name, name)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def where(path: str | os.PathLike[str] | Where) -> Where:
    """A path or fsspec URL as a `Where`; local paths are made absolute, so that workers whose
    working folder differs (on a shared disk) reach the same file."""
    if isinstance(path, Where):
        return path
    loc = location(path)
    if isinstance(loc, Path):
        from fsspec.implementations.local import LocalFileSystem

        return Where(LocalFileSystem(), str(loc.absolute()), str(loc))
    fs, inner = filesystem(loc)
    return Where(fs, inner, loc)


def _rm(fs: Any, path: str) -> None:
    with contextlib.suppress(OSError):
        fs.rm(path, recursive=True)


# --- whole-file checks ------------------------------------------------------------------------


def _id_column(names: Sequence[str]) -> str:
    """The id column's name as the file spells it (with stray spaces or byte-order mark)."""
    return next(n for n, c in zip(names, clean_column_names(names), strict=True) if c == schema.ID)


def _head(src: Where) -> bytes:
    """The first bytes of the file's content (decompressed for .gz)."""
    with src.fs.open(src.path, "rb") as f:
        if src.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=f) as g:
                return g.read(_SNIFF_BYTES)
        return f.read(_SNIFF_BYTES)


def check_input(path: str | os.PathLike[str] | Where) -> tuple[str, str]:
    """('csv' or 'parquet', the id column's name as written) after the whole-file checks the
    pandas engine makes, on the head of the file only (columns, emptiness, delimiter);
    one-line `DataError` otherwise. `path` may be an fsspec URL."""
    src = where(path)
    fs, inner, shown = src.fs, src.path, src.shown
    if not fs.exists(inner):
        raise DataError(f"{shown} does not exist")
    is_dir = fs.isdir(inner)
    if is_dir or src.name.lower().endswith(PARQUET_SUFFIXES):
        if is_dir and not fs.find(inner):
            raise DataError(f"{shown} is a directory without any Parquet files")
        if not is_dir and fs.size(inner) == 0:
            raise DataError(f"{shown} is empty")
        try:
            dataset = pq.ParquetDataset(inner, filesystem=None if src.local else fs)
            names = list(dataset.schema.names)
            rows = sum(f.metadata.num_rows for f in dataset.fragments)
        except Exception as err:  # noqa: BLE001 - any unreadable Parquet is one sentence
            if "magic bytes" in str(err):
                raise DataError(
                    f"{shown} is not a Parquet file (no Parquet footer found)"
                ) from None
            raise DataError(f"{shown} could not be read as Parquet: {one_line(err)}") from None
        check_columns(clean_column_names(names), shown, schema.REQUIRED)
        if rows == 0:
            raise DataError(f"{shown} has no data rows")
        return "parquet", _id_column(names)
    table_kind(shown)
    try:
        head = _head(src)
    except PermissionError:
        raise DataError(f"{shown} is not readable (permission denied)") from None
    except OSError as err:
        raise DataError(f"{shown} could not be read: {one_line(err)}") from None
    if not head.strip():
        raise DataError(f"{shown} is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{shown} is UTF-16 text, which the dask engine cannot split; save it as UTF-8 CSV "
            "or use --engine pandas"
        )
    text = head.decode("utf-8-sig", errors="replace")
    lines = check_delimiter(text, shown)
    try:
        sample = pd.read_csv(io.StringIO(text[: text.rfind("\n") + 1] or text), dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{shown} is not a well-formed CSV file: {one_line(err)}") from None
    check_columns(clean_column_names(sample.columns), shown, schema.REQUIRED)
    if len(sample) == 0 and len(lines) <= 1:
        raise DataError(f"{shown} has a header but no data rows")
    return "csv", _id_column(list(sample.columns))


def _frame(src: Where, kind: str, blocksize: str | int | None, columns: Sequence[str] | None):
    import dask.dataframe as dd

    if kind == "parquet":
        return dd.read_parquet(src.url, columns=list(columns) if columns else None)
    gz = src.name.lower().endswith(".gz")
    return dd.read_csv(
        src.url,
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


def _worker_name() -> str:
    """The Dask worker running this task (its address), or this process when there is none."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _write_part(df: pd.DataFrame, folder: Where, i: int, kind: str) -> str | None:
    if df.empty:
        return None
    path = f"{folder.path}/part-{i:05d}.{kind}"
    try:
        with folder.fs.open(path, "wb") as f:
            if kind == "csv":
                df.to_csv(f, index=False, lineterminator="\n")
            else:
                df.to_parquet(f, index=False)
    except OSError as err:  # not the input's fault: say which file could not be written
        raise DataError(f"could not write {path}: {one_line(err)}") from None
    return path


def _score_part(
    part: pd.DataFrame,
    bundle: Any,
    i: int,
    offset: int,
    dups: _Dups,
    out_dir: Where,
    out_kind: str,
    rej_dir: Where,
    rej_kind: str,
) -> dict[str, Any]:
    """Validate, score and write one partition; returns its counts and the worker that did it."""
    raw = part.reset_index(drop=True)
    raw.columns = clean_column_names(raw.columns)
    n_in = len(raw)
    done = {"i": i, "rows_in": n_in, "scored": 0, "rejected": 0, "first_reason": None}
    done["worker"] = _worker_name()
    if n_in == 0:
        return done
    checked = validate(raw)
    clean, rejects = _with_global_dups(
        raw, checked.clean, checked.rejects, dups, offset, checked.issues
    )
    if len(clean):
        _write_part(score_frame(bundle, clean), out_dir, i, out_kind)
    if len(rejects):
        _write_part(rejects, rej_dir, i, rej_kind)
    assert len(clean) + len(rejects) == n_in
    done.update(scored=len(clean), rejected=len(rejects))
    done["first_reason"] = str(rejects[REASON].iloc[0]) if len(rejects) else None
    return done


# --- putting parts together (a task: on a cluster, a worker does it) --------------------------


def _concat_csv(fs: Any, parts: list[str], target: Where) -> None:
    """Stream CSV parts into one file, keeping only the first header. A local file is written
    beside the target and moved into place; an object store publishes it when the upload ends."""
    tmp = target.sibling(f".{target.name}.{uuid.uuid4().hex}.tmp").path if target.local else None
    with fs.open(tmp or target.path, "wb") as out:
        for n, p in enumerate(parts):
            with fs.open(p, "rb") as f:
                header = f.readline()
                if n == 0:
                    out.write(header)
                shutil.copyfileobj(f, out, 16 * 2**20)
    if tmp:
        os.replace(tmp, target.path)


def _finish(parts_dir: Where, target: Where, kind: str) -> str | None:
    """The parts as the target: one CSV, or the parts' folder moved into place. Returns what the
    user named, or None when there was nothing to write."""
    fs = parts_dir.fs
    parts = sorted(fs.glob(f"{parts_dir.path}/part-*.{kind}"))
    if not parts:
        _rm(fs, parts_dir.path)
        return None
    if kind == "csv":
        _concat_csv(fs, parts, target)
        _rm(fs, parts_dir.path)
    else:
        if fs.exists(target.path):
            fs.rm(target.path, recursive=True)
        fs.mv(parts_dir.path, target.path, recursive=True)
    return target.shown


def _out_kind(target: Where) -> str:
    name = target.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES) or not Path(name).suffix:
        return "parquet"
    raise DataError(f"{target.shown}: the dask engine writes .csv or a .parquet folder of parts")


# --- the cluster --------------------------------------------------------------------------------


@contextlib.contextmanager
def _local_client(n_workers: int, memory_limit: str) -> Iterator[Client]:
    """A `LocalCluster` of `n_workers` single-thread processes for one run, closed after it."""
    from distributed import Client, LocalCluster

    # its start, progress and stop chatter is not the user's business; errors still show
    with (
        _quiet("distributed"),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from logger `name` (and its children) while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _worker_info() -> dict[str, str]:
    """What must match between the driver and a worker for the bundle to load and score alike."""
    import platform
    from importlib.metadata import version

    from nba.bundle import LIBRARIES

    libs = {name: version(name) for name in (*LIBRARIES, "lleaves")}
    return {"python": ".".join(platform.python_version_tuple()[:2]), **libs}


def _check_workers(client: Any, address: str, timeout: float) -> None:
    """At least one worker, each with the driver's nba, Python and model libraries."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(
            f"the Dask scheduler at {address} has no worker (waited {timeout:g} s)"
        ) from None
    mine = _worker_info()
    try:
        theirs = client.run(_worker_info, on_error="return")
    except Exception as err:  # noqa: BLE001 - whatever the workers answer is one sentence
        raise ClusterError(f"the workers of {address} cannot run nba: {one_line(err)}") from None
    for worker, info in sorted(theirs.items()):
        if isinstance(info, BaseException):
            raise ClusterError(
                f"worker {worker} of {address} cannot run nba ({one_line(info)}); install "
                f"nba {mine['nba']} with the same libraries on every worker"
            )
        wrong = [f"{k} {info.get(k)} (here {v})" for k, v in mine.items() if info.get(k) != v]
        if wrong:
            raise ClusterError(
                f"worker {worker} of {address} differs from this machine: {', '.join(wrong)}; "
                "the bundle needs the same versions on every worker"
            )


@contextlib.contextmanager
def connect(
    cluster: str | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT,
    n_workers: int = 2,
    memory_limit: str = "1.5GiB",
) -> Iterator[Client]:
    """A `distributed.Client` for one command's work, closed on exit.

    `cluster`: an existing scheduler's address (`tcp://host:8786`, `tls://…`) or its scheduler
    file (the JSON `dask scheduler --scheduler-file F` writes); None → `$NBA_DASK_CLUSTER`;
    neither → a `LocalCluster` of `n_workers` single-thread processes (`memory_limit` each)
    started here and closed on exit. On an existing cluster nothing is started or stopped:
    only the client is closed. A scheduler that does not answer within `timeout` seconds, has
    no worker, or whose workers lack this nba and its libraries raises `ClusterError`.

    Usage: `with connect(args.cluster) as client: dask.compute(..., scheduler=client)`.
    """
    address = cluster or os.environ.get(CLUSTER_ENV) or None
    if not address:
        with _local_client(n_workers, memory_limit) as client:
            yield client
        return
    from distributed import Client

    target = _scheduler_address(address)
    _probe(address, target, timeout)
    # the client's connection attempts and closing: the sentences here say what matters
    with _quiet("distributed"):
        try:
            client = Client(target, timeout=timeout, set_as_default=False)
        except Exception as err:  # noqa: BLE001 - any failure to connect is one sentence
            raise ClusterError(
                f"no Dask scheduler answered at {address} within {timeout:g} s ({one_line(err)})"
            ) from None
        try:
            _check_workers(client, address, timeout)
            yield client
        finally:
            client.close()  # the client only: the cluster's scheduler and workers stay up


def _scheduler_address(cluster: str) -> str:
    """The scheduler's address from `--cluster`: an address (`tcp://` assumed when no scheme is
    given) or a scheduler file; one sentence when it is neither."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    if "://" not in cluster and Path(cluster).is_file():
        try:
            return str(json.loads(Path(cluster).read_text())["address"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ClusterError(
                f"{cluster} is not a Dask scheduler file (no address in it)"
            ) from None
    address = cluster if "://" in cluster else f"tcp://{cluster}"
    try:
        scheme, loc = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(loc)
    except (ValueError, TypeError) as err:
        raise ClusterError(
            f"{cluster} is neither a Dask scheduler address (tcp://HOST:PORT) nor a scheduler "
            f"file ({one_line(err)})"
        ) from None
    return address


def _probe(shown: str, address: str, timeout: float) -> None:
    """Fail fast, in one sentence, when nothing listens at a tcp/tls scheduler address (Dask's
    client would retry until its timeout and leave a half-made client behind)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, loc = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(loc)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ClusterError(
            f"no Dask scheduler answered at {shown} within {timeout:g} s ({one_line(err)})"
        ) from None


def _cluster_name(client: Any) -> str:
    return str(getattr(client.scheduler, "address", None) or "the Dask cluster")


# --- the engine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskScoreResult(ScoreResult):
    """`ScoreResult` plus where the work ran: worker address → partitions it scored."""

    workers: dict[str, int] = field(default_factory=dict)


def score_file_dask(
    bundle: Any,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    rejects: str | os.PathLike[str] | None = None,
    blocksize: str | int = "64MB",
    *,
    scheduler: str = "distributed",
    n_workers: int = 2,
    memory_limit: str = "1.5GiB",
    client: Client | None = None,
) -> DaskScoreResult:
    """`nba score --engine dask`: the pandas engine's outputs, partition by partition.

    `input_path`: a CSV (split in `blocksize` chunks, every column read as text) or a Parquet
    file/folder (one partition per file / row group). `output`: `.csv` (one file, parts
    concatenated in order) or `.parquet` / a folder (a folder of part files). `rejects`: CSV
    (default `<output>.rejects.csv`) or Parquet folder. Each may be a path or an fsspec URL.
    `client`: a `distributed.Client` (see `connect`) to run on; without one, `scheduler`:
    "distributed" (a `LocalCluster` of `n_workers` single-thread processes with `memory_limit`
    each, for this run), "threads" or "sync" (both in this process).
    Rows in = rows scored + rows rejected, always.
    """
    src = where(input_path)
    kind, id_column = check_input(src)
    out = where(output)
    out_kind = _out_kind(out)
    rej = where(rejects_path(location(output), rejects))
    rej_kind = _out_kind(rej)
    if client is not None or scheduler == "distributed":
        _check_reachable_by_workers(src, out, rej)
    tag = uuid.uuid4().hex[:8]
    out_dir = out.sibling(f".{out.name}.{tag}.parts")
    rej_dir = rej.sibling(f".{rej.name}.{tag}.parts")
    for folder, target in ((out_dir, out), (rej_dir, rej)):
        try:
            folder.fs.makedirs(folder.path, exist_ok=False)
        except OSError as err:
            _rm(out_dir.fs, out_dir.path)
            raise DataError(f"{target.shown} cannot be written: {one_line(err)}") from None

    external = client is not None
    try:
        with contextlib.ExitStack() as stack:
            if client is None and scheduler == "distributed":
                client = stack.enter_context(_local_client(n_workers, memory_limit))
            outputs = (out_dir, out_kind, rej_dir, rej_kind)
            done = _run(
                bundle, src, kind, id_column, blocksize, client, scheduler, outputs, external
            )
            rows_in = sum(d["rows_in"] for d in done)
            scored = sum(d["scored"] for d in done)
            if scored == 0:
                first = next(d["first_reason"] for d in done if d["first_reason"])
                raise DataError(
                    f"no usable row in {src.shown}: all {rows_in:,} rows failed validation "
                    f"(first: {first})"
                )
            try:
                finished = _compute(
                    client,
                    scheduler,
                    [
                        _delayed(_finish)(out_dir, out, out_kind),
                        _delayed(_finish)(rej_dir, rej, rej_kind),
                    ],
                )
            except OSError as err:
                raise DataError(f"{out.shown} could not be written: {one_line(err)}") from None
    except BaseException:
        _rm(out_dir.fs, out_dir.path)
        _rm(rej_dir.fs, rej_dir.path)
        raise

    rejected = sum(d["rejected"] for d in done)
    workers: dict[str, int] = {}
    for d in done:
        workers[d["worker"]] = workers.get(d["worker"], 0) + 1
    rejects_out = location(finished[1]) if finished[1] else None
    result = DaskScoreResult(
        rows_in, scored, rejected, location(out.shown), rejects_out, workers=workers
    )
    assert result.scored + result.rejected == result.rows_in
    log.info("dask engine: %s; partitions per worker %s", result.summary, workers)
    return result


def _check_reachable_by_workers(*places: Where) -> None:
    """Worker processes have their own memory: a `memory://` file there is not the driver's."""
    for place in places:
        if "memory" in _protocols(place.fs):
            raise DataError(
                f"{place.shown} is in this process's memory, which Dask worker processes do "
                "not share; use a shared disk or an object store (s3://, gs://, abfs://)"
            )


def _delayed(fn: Any) -> Any:
    import dask

    return dask.delayed(fn, pure=False)


def _compute(client: Any, scheduler: str, tasks: list[Any]) -> list[Any]:
    import dask

    return list(dask.compute(*tasks, scheduler=client if client is not None else scheduler))


def _run(
    bundle: Any,
    src: Where,
    kind: str,
    id_column: str,
    blocksize: str | int,
    client: Any,
    scheduler: str,
    outputs: tuple[Where, str, Where, str],
    external: bool,
) -> list[dict[str, Any]]:
    """The two passes (ids, then validate + score + write), with their failures as sentences."""
    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    where_ran = _cluster_name(client) if client is not None else "this process"
    try:
        id_parts = _frame(src, kind, blocksize, [id_column]).to_delayed()
        ids = _compute(client, scheduler, [_delayed(_ids)(p) for p in id_parts])
        dups = _global_dups(ids)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in ids])]).tolist()
        n_parts = len(ids)
        del ids  # the driver keeps only the duplicates, not every id
        parts = _frame(src, kind, blocksize, None).to_delayed()
        if len(parts) != n_parts:
            raise DataError(f"{src.shown} changed while it was being scored")
        # the bundle travels through the client, once to each worker: no shared disk needed
        shared = client.scatter(bundle, broadcast=True, hash=False) if client else bundle
        tasks = [
            _delayed(_score_part)(p, shared, i, offsets[i], dups[i], *outputs)
            for i, p in enumerate(parts)
        ]
        return _compute(client, scheduler, tasks)
    except (DataError, ClusterError):
        raise
    except KilledWorker as err:
        raise ClusterError(
            f"a Dask worker of {where_ran} died while scoring ({one_line(err)}); "
            "give the workers more memory"
        ) from None
    except (CommClosedError, TimeoutError) as err:
        raise ClusterError(f"lost {where_ran} while scoring: {one_line(err)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as err:
        hint = (
            "; on an existing cluster the workers must reach the files themselves (a shared "
            "disk or a URL such as s3://…)"
            if external and src.local and isinstance(err, FileNotFoundError)
            else ""
        )
        raise DataError(f"{src.shown} could not be read as {kind}: {one_line(err)}{hint}") from None
