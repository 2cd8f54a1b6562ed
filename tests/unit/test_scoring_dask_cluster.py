"""`connect`'s checks before any work: what is not a scheduler address or file, nothing
listening, and (on a stand-in client; the real cluster is in tests/cluster) a worker without
nba, with other versions, or no worker at all, each one sentence naming what is wrong."""

from __future__ import annotations

import socket

import pytest

from nba.scoring_dask import ClusterError, _check_workers, _worker_info, connect


class StubClient:
    """Answers `wait_for_workers` and `run` as a scheduler with the given workers would."""

    def __init__(self, workers: dict[str, object]) -> None:
        self.workers = workers

    def wait_for_workers(self, n: int, timeout: float) -> None:
        if len(self.workers) < n:
            raise TimeoutError

    def run(self, fn, on_error: str = "raise") -> dict[str, object]:
        return dict(self.workers)


def test_matching_workers_pass():
    mine = _worker_info()
    assert {"python", "nba", "lightgbm", "lleaves"} <= set(mine)
    _check_workers(StubClient({"tcp://a:1": mine, "tcp://b:1": dict(mine)}), "tcp://s:1", 1)


def test_a_worker_with_another_library_version_is_named():
    mine = _worker_info()
    other = {**mine, "lightgbm": "3.0.0"}
    with pytest.raises(ClusterError) as err:
        _check_workers(StubClient({"tcp://a:1": mine, "tcp://b:1": other}), "tcp://s:1", 1)
    message = str(err.value)
    assert message.startswith("worker tcp://b:1 of tcp://s:1 differs from this machine")
    assert f"lightgbm 3.0.0 (here {mine['lightgbm']})" in message
    assert "\n" not in message


def test_a_worker_without_nba_is_named():
    failed = ModuleNotFoundError("No module named 'nba'")
    with pytest.raises(ClusterError, match=r"^worker tcp://a:1 of tcp://s:1 cannot run nba \("):
        _check_workers(StubClient({"tcp://a:1": failed}), "tcp://s:1", 1)


def test_a_scheduler_without_workers():
    with pytest.raises(ClusterError, match=r"^the Dask scheduler at tcp://s:1 has no worker"):
        _check_workers(StubClient({}), "tcp://s:1", 0.1)


@pytest.mark.parametrize(
    ("cluster", "start"),
    [
        ("nofile.json", "nofile.json is neither a Dask scheduler address (tcp://HOST:PORT) nor"),
        ("garbage://x", "garbage://x is neither a Dask scheduler address"),
    ],
)
def test_what_is_not_a_scheduler_address_is_one_sentence(cluster, start):
    with pytest.raises(ClusterError) as err, connect(cluster, timeout=1):
        pass
    assert str(err.value).startswith(start) and "\n" not in str(err.value)


def test_a_file_that_is_not_a_scheduler_file(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text("{}")
    refused = pytest.raises(ClusterError, match=rf"^{path} is not a Dask scheduler file")
    with refused, connect(str(path), timeout=1):
        pass


def test_nothing_listening_fails_fast():
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = pytest.raises(
        ClusterError, match=rf"^no Dask scheduler answered at 127.0.0.1:{port} "
    )
    with refused, connect(f"127.0.0.1:{port}", timeout=5):
        pass
