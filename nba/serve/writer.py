"""The service's one writer to the interaction history: decisions off the request path, in
batches; responses on it, durable before they are acknowledged.

One thread owns the history (SQLite connections belong to the thread that made them) and
works through a FIFO queue:
- decisions are queued by the request that made them and written by the thread in batches
  (what arrives within `linger` seconds of the first, up to `batch_rows` rows, in one
  `record_decisions` call: SQLite's cost is mostly per call, ~40 µs a row in batches of
  1,000 against ~25 µs in batches of 10,000 here), so a decision costs the request a queue
  put, not a disk write. They reach the file within about `linger` seconds; on a graceful
  shutdown everything queued is written before the process ends. A crash (SIGKILL, power)
  can lose the decisions still queued, never an acknowledged response.
- responses wait: the thread first writes every decision queued before them (so a response to
  a decision this process just made finds it), then records the responses and commits, and
  only then does the request answer 200. An acknowledged response is on disk.

The service runs that thread in a process of its own (`WriterProcess`): building a batch's
frames and Parquet blobs is Python work that, in the serving process, held the interpreter
lock while requests waited, and kept one worker to one core (the request path and the writer
shared it). In its own process the writes run on the other core; the service pays a pickle
and a pipe write per request.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

_STOP = object()


@dataclass
class _Decisions:
    decisions: dict[str, Any]
    customers: dict[str, Any] | None

    def __len__(self) -> int:
        return len(self.decisions["decision_id"])


@dataclass
class _Responses:
    responses: pd.DataFrame
    done: Future


class HistoryWriter:
    """A thread writing to a `History` made by `open_history()` in that thread.

    `open_history`: a callable returning an object with `record_decisions(decisions_df,
    customers_df)`, `record_responses(responses_df) -> (recorded, rejected_df)` and `close()`
    (`nba.campaigns.history.History`)."""

    def __init__(
        self,
        open_history: Callable[[], Any],
        batch_rows: int = 20_000,
        linger: float = 0.5,
        max_rows: int = 200_000,
        retries: int = 5,
    ) -> None:
        self._open = open_history
        # Decisions waiting in memory, bounded (a few hundred bytes each): past the bound the
        # service answers 503 instead of growing until the machine runs out of memory.
        self.max_rows = max_rows
        self._rows = 0
        self._rows_lock = threading.Lock()
        self.batch_rows, self.linger, self.retries = batch_rows, linger, retries
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="nba-history", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.written = 0  # decisions written
        self.lost = 0  # decisions that could not be written after every retry
        self.on_written: Callable[[int], None] = lambda n: None
        self.on_lost: Callable[[int], None] = lambda n: None

    # --- the request side ---------------------------------------------------------------------

    def start(self) -> HistoryWriter:
        """Start the thread and open the history there; a history that cannot be opened is
        raised here (the service does not start without one)."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    @property
    def alive(self) -> bool:
        """True while the writer thread runs (the service answers 503 on /health otherwise)."""
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Decisions waiting to be written."""
        return self._rows

    def add_decisions(self, decisions: dict[str, Any], customers: dict[str, Any] | None) -> None:
        """Queue decisions (the history's columns: arrays or lists) and their customers'
        feature columns for writing; raises `queue.Full` when `max_rows` decisions already
        wait (the writer is far behind)."""
        item = _Decisions(decisions, customers)
        with self._rows_lock:
            if self._rows + len(item) > self.max_rows:
                raise queue.Full
            self._rows += len(item)
        self._queue.put_nowait(item)

    def record_responses(self, responses: pd.DataFrame) -> Future:
        """Queue responses; the future resolves to (recorded, rejected frame) once they are
        committed (after every decision queued before them)."""
        done: Future = Future()
        self._queue.put(_Responses(responses, done))
        return done

    def stop(self, timeout: float = 60.0) -> None:
        """Write everything queued, close the history, end the thread."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the history writer did not finish within %.0f s", timeout)

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            history = self._open()
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the main thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(history)
        finally:
            try:
                history.close()
            except Exception:  # noqa: BLE001 - closing must not hide what happened before
                log.exception("closing the history failed")

    def _loop(self, history: Any) -> None:
        pending: list[_Decisions] = []
        rows, deadline = 0, 0.0
        while True:
            try:
                # Wait for work; with decisions pending, only until `linger` seconds after
                # the first of them (a write per batch: SQLite's cost is mostly per call).
                wait = max(0.0, deadline - time.monotonic()) if pending else None
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if isinstance(item, _Decisions):
                if not pending:
                    deadline = time.monotonic() + self.linger
                pending.append(item)
                rows += len(item)
                if rows < self.batch_rows and time.monotonic() < deadline:
                    continue
            if pending:
                self._write(history, pending)
                pending, rows = [], 0
            if isinstance(item, _Responses):
                self._respond(history, item)
            elif item is _STOP:
                return

    def _write(self, history: Any, batches: list[_Decisions]) -> None:
        try:
            self._write_batches(history, batches)
        finally:
            with self._rows_lock:
                self._rows -= sum(map(len, batches))

    def _write_batches(self, history: Any, batches: list[_Decisions]) -> None:
        """One `record_decisions` call for the whole batch; if it fails, each request's part
        on its own (so one bad part cannot take the others down), with retries for what may
        pass later (a locked or full disk)."""
        if len(batches) > 1 and self._try(history, batches, attempts=1):
            return
        for part in batches if len(batches) > 1 else batches[:1]:
            if not self._try(history, [part], attempts=self.retries):
                n = len(part)
                self.lost += n
                self.on_lost(n)
                log.error(
                    "%d decisions could not be written to the history: %s",
                    n,
                    ", ".join(map(str, part.decisions["decision_id"][:5])),
                )

    def _try(self, history: Any, batches: list[_Decisions], attempts: int) -> bool:
        decisions = _frame([b.decisions for b in batches])
        parts = [b.customers for b in batches]
        customers = None if any(p is None for p in parts) else _frame(parts)  # type: ignore[arg-type]
        for attempt in range(1, attempts + 1):
            try:
                history.record_decisions(decisions, customers)
            except Exception:  # noqa: BLE001 - logged; the caller decides what is lost
                log.exception("writing %d decisions failed (attempt %d)", len(decisions), attempt)
                if attempt < attempts:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                continue
            self.written += len(decisions)
            self.on_written(len(decisions))
            return True
        return False

    def _respond(self, history: Any, item: _Responses) -> None:
        if not item.done.set_running_or_notify_cancel():
            return
        try:
            item.done.set_result(history.record_responses(item.responses))
        except BaseException as exc:  # noqa: BLE001 - the request answers 503 with it
            item.done.set_exception(exc)


# --- the writer in a process of its own -------------------------------------------------------


def open_history(path: str | None) -> Any:
    """The interaction history (`nba.campaigns.history.History`), created if need be."""
    from nba.campaigns.history import History

    return History(path)


class WriterProcess:
    """A `HistoryWriter` in a child process, with the same interface for the service.

    The request side (this process) keeps what it is given in a list (a request pays an
    append: waking a thread or a process per request cost the one-customer median about half
    a millisecond) and bounds it by `max_rows`; a thread here sends the list down a pipe every
    `linger` seconds, or at once past `batch_rows`. A response first sends every decision
    given before it, on the same pipe, so the order the writer keeps (decisions given before a
    response are written before it) holds across the processes. The thread also reads what
    the child reports on a second pipe: rows written or lost, responses committed (their
    futures resolve only then), the child's stop. The child ignores SIGINT and SIGTERM (a
    Ctrl-C reaches the whole process group): it stops when told to, after writing everything
    sent, or when this process is gone (its pipe closes), after writing what it has."""

    def __init__(
        self,
        path: str | None,
        opener: Callable[[str | None], Any] = open_history,
        batch_rows: int = 20_000,
        linger: float = 0.5,
        max_rows: int = 200_000,
        retries: int = 5,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self.max_rows, self.batch_rows, self.linger = max_rows, batch_rows, linger
        self._rows = 0  # given and not yet reported written or lost
        self._pending: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self._pending_rows = 0
        self._lock = threading.Lock()  # the counts, the list and the futures
        self._send_lock = threading.Lock()  # the pipe's order: held from taking the list to sent
        self._wake = threading.Event()
        self._stopping = False
        self._gone = False
        self._child_in, self._to_child = context.Pipe(duplex=False)
        self._from_child, self._child_out = context.Pipe(duplex=False)
        # the child batches what arrives together into one write; the waiting is done here
        options = {"batch_rows": batch_rows, "linger": min(linger, 0.05), "retries": retries}
        self._process = context.Process(
            target=_child, args=(opener, path, options, self._child_in, self._child_out)
        )
        self._process.name = "nba-history"
        self._reader = threading.Thread(target=self._read, name="nba-history-reader", daemon=True)
        self._sender = threading.Thread(
            target=self._send_loop, name="nba-history-sender", daemon=True
        )
        self._futures: dict[int, Future] = {}
        self._ids = itertools.count()
        self.written = 0
        self.lost = 0
        self.on_written: Callable[[int], None] = lambda n: None
        self.on_lost: Callable[[int], None] = lambda n: None

    def start(self, timeout: float = 300.0) -> WriterProcess:
        """Start the child and wait until it has opened the history; a history that cannot be
        opened is raised here."""
        self._process.start()
        # the child's ends belong to the child: closed here, so each side sees the other go
        self._child_in.close()
        self._child_out.close()
        if not self._from_child.poll(timeout):
            self._process.kill()
            raise RuntimeError(f"the history writer did not start within {timeout:.0f} s")
        try:
            kind, *rest = self._from_child.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"the history writer ended on start (exit {self._process.exitcode})"
            ) from None
        if kind == "error":
            self._process.join()
            raise rest[0]
        self._reader.start()
        self._sender.start()
        # a process that ends without `stop()` (an error on the way out) closes its end of the
        # pipe before multiprocessing waits for the child, which then writes what it has
        atexit.register(self._abandon)
        return self

    @property
    def alive(self) -> bool:
        """True while the child runs and reports (the service answers 503 on /health else)."""
        return not self._gone and self._process.is_alive() and self._reader.is_alive()

    @property
    def queued(self) -> int:
        """Decisions given and not yet reported written or lost."""
        return self._rows

    def add_decisions(self, decisions: dict[str, Any], customers: dict[str, Any] | None) -> None:
        """As `HistoryWriter.add_decisions`: raises `queue.Full` when `max_rows` decisions
        already wait, `RuntimeError` when the writer is gone."""
        n = len(decisions["decision_id"])
        with self._lock:
            if self._gone:
                raise RuntimeError("the history writer is gone")
            if self._rows + n > self.max_rows:
                raise queue.Full
            self._rows += n
            self._pending.append((decisions, customers))
            self._pending_rows += n
            if self._pending_rows >= self.batch_rows:
                self._wake.set()

    def record_responses(self, responses: pd.DataFrame) -> Future:
        """As `HistoryWriter.record_responses`: resolves once the child has committed them
        (after every decision given before them)."""
        done: Future = Future()
        with self._send_lock:
            self._send_pending()
            with self._lock:
                key = next(self._ids)
                self._futures[key] = done
            self._send(("responses", key, responses))
        return done

    def stop(self, timeout: float = 60.0) -> None:
        """Send what waits, have the child write it all and close the history; wait for it."""
        if not self._sender.is_alive() and not self._process.is_alive():
            return
        self._stopping = True
        self._wake.set()
        self._sender.join(timeout)
        self._process.join(timeout)
        if self._process.is_alive():
            log.error("the history writer did not finish within %.0f s", timeout)
            return
        self._reader.join(timeout)
        self._abandon()

    def _abandon(self) -> None:
        """Send what waits (if the pipe is free within a few seconds), then close this end:
        the child writes everything it was sent and ends."""
        atexit.unregister(self._abandon)
        if self._send_lock.acquire(timeout=5):
            try:
                with contextlib.suppress(RuntimeError):
                    self._send_pending()
            finally:
                self._send_lock.release()
        self._to_child.close()

    # --- this process's threads -----------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.linger)
            self._wake.clear()
            with self._send_lock:
                self._send_pending()
        with self._send_lock:
            self._send_pending()
            with contextlib.suppress(RuntimeError):
                self._send(("stop",))

    def _send_pending(self) -> None:
        """Send the decisions given so far (the caller holds the send lock)."""
        with self._lock:
            batch, self._pending, self._pending_rows = self._pending, [], 0
        if not batch:
            return
        # stacked column by column before pickling: pickling each request's arrays one by one
        # cost a quarter of a millisecond a request, in this process's interpreter
        sizes = [len(d["decision_id"]) for d, _ in batch]
        decisions = _stacked([d for d, _ in batch])
        parts = [c for _, c in batch]
        customers = None if any(c is None for c in parts) else _stacked(parts)  # type: ignore[arg-type]
        try:
            self._send(("decisions", decisions, customers, sizes))
        except RuntimeError as exc:
            n = sum(sizes)
            log.error("%d decisions could not be sent to the history writer: %s", n, exc)
            with self._lock:
                self._rows -= n
            self.lost += n
            self.on_lost(n)

    def _send(self, message: tuple) -> None:
        try:
            self._to_child.send(message)
        except (OSError, ValueError) as exc:  # the child is gone (a broken or closed pipe)
            self._gone = True
            raise RuntimeError(f"the history writer is gone ({exc})") from exc

    def _read(self) -> None:
        try:
            while True:
                try:
                    kind, *rest = self._from_child.recv()
                except (EOFError, OSError):
                    log.error("the history writer process ended (exit %s)", self._process.exitcode)
                    return
                if kind == "stopped":
                    return
                if kind == "responded":
                    key, failed, value = rest
                    with self._lock:
                        done = self._futures.pop(key)
                    (done.set_exception if failed else done.set_result)(value)
                    continue
                with self._lock:
                    self._rows -= rest[0]
                if kind == "written":
                    self.written += rest[0]
                    self.on_written(rest[0])
                else:
                    self.lost += rest[0]
                    self.on_lost(rest[0])
        finally:
            with self._lock:
                self._gone = True
                waiting, self._futures = list(self._futures.values()), {}
            for done in waiting:
                done.set_exception(RuntimeError("the history writer stopped"))


def _child(
    opener: Callable[[str | None], Any], path: str | None, options: dict[str, Any], inbox, outbox
) -> None:
    """The writer process: a `HistoryWriter` fed from the `inbox` pipe, reporting on `outbox`
    (from its thread and this one, so under a lock)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lock = threading.Lock()

    def report(message: tuple) -> None:
        with lock, contextlib.suppress(OSError):  # the service is gone: nobody to tell
            outbox.send(message)

    # the request side bounds what waits; here nothing may be refused
    writer = HistoryWriter(lambda: opener(path), max_rows=2**62, **options)
    writer.on_written = lambda n: report(("written", n))
    writer.on_lost = lambda n: report(("lost", n))
    try:
        writer.start()
    except BaseException as exc:  # noqa: BLE001 - raised again by WriterProcess.start
        report(("error", exc))
        return
    report(("ready",))
    while True:
        try:
            kind, *rest = inbox.recv()
        except EOFError:
            log.error("the service ended without stopping the history writer")
            break
        if kind == "decisions":  # each request's part again: one bad part loses only itself
            decisions, customers, sizes = rest
            for a, b in itertools.pairwise(itertools.accumulate(sizes, initial=0)):
                writer.add_decisions(
                    {k: v[a:b] for k, v in decisions.items()},
                    None if customers is None else {k: v[a:b] for k, v in customers.items()},
                )
        elif kind == "responses":
            key, responses = rest
            writer.record_responses(responses).add_done_callback(
                lambda done, key=key: report(_outcome(key, done))
            )
        else:
            break
    writer.stop()
    report(("stopped",))


def _outcome(key: int, done: Future) -> tuple[str, int, bool, Any]:
    """A committed response's message; a failure as a plain RuntimeError (any exception
    pickles as that; the service answers 503 and logs it)."""
    error = done.exception()
    if error is not None:
        return ("responded", key, True, RuntimeError(f"{type(error).__name__}: {error}"))
    return ("responded", key, False, done.result())


def _frame(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """One frame from the columns of many requests (numpy or pandas arrays, or lists), one
    frame per batch, stacked array by array (no type inferred per value)."""
    return pd.DataFrame(_stacked(parts))


def _stacked(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The columns of many requests, each stacked into one array."""
    return {name: _stack([p[name] for p in parts]) for name in parts[0]}


def _stack(pieces: list[Any]) -> Any:
    first = pieces[0]
    if len(pieces) == 1:
        return first
    if all(isinstance(p, np.ndarray) for p in pieces):
        return np.concatenate(pieces)
    if all(isinstance(p, type(first)) for p in pieces) and isinstance(
        first, pd.api.extensions.ExtensionArray
    ):
        return type(first)._concat_same_type(pieces)  # the ExtensionArray interface's concat
    return [v for p in pieces for v in p]
