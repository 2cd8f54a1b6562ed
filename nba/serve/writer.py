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
"""

from __future__ import annotations

import logging
import queue
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


def _frame(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """One frame from the columns of many requests (numpy or pandas arrays, or lists), one
    frame per batch, stacked array by array (no type inferred per value)."""
    return pd.DataFrame({name: _stack([p[name] for p in parts]) for name in parts[0]})


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
