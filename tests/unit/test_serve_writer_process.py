"""The service's history writer in a process of its own (`WriterProcess`): what it is sent is
written, responses resolve only once committed, nothing sent is lost when the service stops
or dies, and a writer that is gone is said, not hidden."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from nba.campaigns.history import History, HistoryError
from nba.serve.writer import WriterProcess
from tests.unit.test_serve import _customer_columns, _customers, _history_columns


def test_decisions_and_responses_go_through_the_child_in_order(tmp_path):
    path = tmp_path / "h.sqlite"
    written: list[int] = []
    writer = WriterProcess(str(path), linger=0.5)
    writer.on_written = written.append
    writer.start()
    customers = _customers(6)
    for k in range(3):
        part = customers[2 * k : 2 * k + 2]
        ids = [f"d{2 * k + j}" for j in range(2)]
        writer.add_decisions(
            _history_columns(ids, [c["CLIENTNUM"] for c in part]), _customer_columns(part)
        )
    # a response to a decision sent just before it finds it: the pipe keeps the order
    done = writer.record_responses(
        pd.DataFrame({"decision_id": ["d5", "nope"], "responded": [1, 1], "retained": [1, 0]})
    )
    recorded, rejected = done.result(timeout=60)
    assert recorded == 1 and rejected["decision_id"].tolist() == ["nope"]
    assert writer.written == 6 and sum(written) == 6 and writer.queued == 0
    writer.stop()
    assert not writer.alive
    with History(path) as h:
        assert h.counts()["decisions"] == 6 and h.counts()["customers"] == 6
        assert h.interactions()["decision_id"].tolist() == ["d5"]


def test_stop_writes_everything_sent(tmp_path):
    path = tmp_path / "h.sqlite"
    writer = WriterProcess(str(path), linger=30).start()  # would wait 30 s
    writer.add_decisions(_history_columns(["a", "b"], [1, 2]), None)
    assert writer.queued == 2
    writer.stop()
    assert writer.written == 2 and writer.lost == 0 and writer.queued == 0
    with History(path) as h:
        assert h.decisions()["decision_id"].tolist() == ["a", "b"]


def test_the_request_side_bounds_what_waits(tmp_path):
    writer = WriterProcess(str(tmp_path / "h.sqlite"), linger=30, max_rows=3).start()
    writer.add_decisions(_history_columns(["a", "b"], [1, 2]), None)
    with pytest.raises(queue.Full):
        writer.add_decisions(_history_columns(["c", "d"], [3, 4]), None)
    writer.add_decisions(_history_columns(["c"], [3]), None)
    writer.stop()
    assert writer.written == 3


def test_a_history_that_cannot_open_stops_the_start(tmp_path):
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError):
        WriterProcess(str(bad)).start()


def test_a_writer_that_died_is_said_and_fails_what_waits(tmp_path):
    writer = WriterProcess(str(tmp_path / "h.sqlite"), linger=30).start()
    writer._process.kill()  # the child killed from outside (the OOM killer, an operator)
    writer._process.join(30)
    writer._reader.join(30)
    assert not writer.alive
    with pytest.raises(RuntimeError, match="gone"):
        writer.add_decisions(_history_columns(["a"], [1]), None)
    with pytest.raises(RuntimeError):
        writer.record_responses(
            pd.DataFrame({"decision_id": ["a"], "responded": [1], "retained": [1]})
        ).result(timeout=30)
    writer.stop()  # nothing to stop: returns


def test_a_service_that_dies_does_not_take_what_it_sent_with_it(tmp_path):
    """The serving process ends without stopping the writer (killed) just after sending a
    response (which sends every decision before it): the child sees its pipe close, writes
    what it was sent and exits. (Decisions given and not yet sent die with the service, as
    the module says: a crash can lose decisions still queued, never an acknowledged
    response.)"""
    path = tmp_path / "h.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        import pandas as pd
        from nba.serve.writer import WriterProcess
        from tests.unit.test_serve import _history_columns

        if __name__ == "__main__":
            w = WriterProcess({str(path)!r}, linger=30).start()
            w.add_decisions(_history_columns(["a", "b", "c"], [1, 2, 3]), None)
            w.record_responses(pd.DataFrame({{"decision_id": ["a"], "responded": [1],
                                              "retained": [1]}}))
            os._exit(9)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 9, out.stderr
    deadline = time.monotonic() + 60  # the child writes once it sees the pipe close
    while time.monotonic() < deadline:
        if path.exists():
            with History(path) as h:
                if len(h.interactions()) == 1:
                    break
        time.sleep(0.2)
    with History(path) as h:
        assert h.decisions()["decision_id"].tolist() == ["a", "b", "c"]
        assert h.interactions()["decision_id"].tolist() == ["a"]


def test_a_service_that_ends_without_stopping_the_writer_still_ends_and_loses_nothing(tmp_path):
    """An error on the way out skips `stop()`: the process still ends (nothing waits forever
    on the child) and the child writes the decisions given."""
    path = tmp_path / "h.sqlite"
    script = textwrap.dedent(
        f"""
        from nba.serve.writer import WriterProcess
        from tests.unit.test_serve import _history_columns

        if __name__ == "__main__":
            w = WriterProcess({str(path)!r}, linger=30).start()
            w.add_decisions(_history_columns(["a", "b"], [1, 2]), None)
            raise SystemExit(3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 3, out.stderr
    with History(path) as h:
        assert h.decisions()["decision_id"].tolist() == ["a", "b"]
