"""Serving the app: the Voila command with its safe settings, the server's environment (which
bundle and data the kernels use), `serve` for `nba app`, and `Server`, a Voila server on a free
local port that tests and benchmarks start and stop. Nothing here imports the widgets.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from nba import config
from nba.errors import NbaError

BUNDLE_ENV = "NBA_BUNDLE"
DEFAULT_BUNDLE = config.MODELS_DIR / "nba.bundle"

#: Seconds Voila may take to build the page (the app loads the bundle and scores the base).
EXECUTOR_TIMEOUT = 180
#: Seconds Voila waits for a cell's outputs after it finished (the app's widget).
IOPUB_TIMEOUT = 60
#: What a Voila kernel writes to the server's log once the page is built (readiness).
READY_LINE = "nba app: page built"


def bundle_path() -> Path:
    """The bundle the app serves: `NBA_BUNDLE` if set, else models/nba.bundle."""
    return Path(os.environ.get(BUNDLE_ENV) or DEFAULT_BUNDLE)


def voila_command(
    port: int = 8866, host: str = "127.0.0.1", notebook: Path | None = None
) -> list[str]:
    """The Voila command that serves the app: Voila's safe defaults kept (sources stripped, no
    tracebacks), a time limit on building the page, and one preheated kernel (the notebook is
    executed before anyone asks, so the first page is quick). Kernel culling is left off: Voila
    0.5 must not combine it with preheating."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook or config.ROOT / "app.ipynb"),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--no-browser",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--preheat_kernel=True",
        "--pool_size=1",
        f"--VoilaExecutor.timeout={EXECUTOR_TIMEOUT}",
        # Under load (many sessions starting at once) the widget's display message can arrive
        # after nbclient's default 4 s wait for IOPub, and Voila then drops it: an empty page.
        f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT}",
    ]


def app_environment(
    bundle: str | Path | None = None, data: str | Path | None = None
) -> dict[str, str]:
    """The server's environment (its kernels inherit it): which bundle and data to use."""
    env = dict(os.environ)
    path = Path(bundle) if bundle else bundle_path()
    if not path.is_file():
        raise NbaError(
            f"No bundle at {path}: run `make run` (trains one through the pipeline) or "
            f"`nba train --out {path}`."
        )
    env[BUNDLE_ENV] = str(path.resolve())
    if data:
        if not Path(data).is_file():
            raise NbaError(f"The data file {data} given with --data does not exist.")
        env[config.DATA_ENV] = str(Path(data).resolve())
    return env


def serve(
    port: int = 8866,
    host: str = "127.0.0.1",
    bundle: str | Path | None = None,
    data: str | Path | None = None,
) -> int:
    """Serve the app with Voila until interrupted; returns Voila's exit status."""
    import subprocess

    env = app_environment(bundle, data)
    print(f"Serving the nba app on http://{host}:{port}/ with {env[BUNDLE_ENV]} (Ctrl-C stops)")
    return subprocess.call(voila_command(port, host), env=env)


class Server:
    """A Voila server for the app on a free local port, for tests and benchmarks: started on
    entry (waits until the page answers and the preheated kernel is ready), stopped on exit."""

    def __init__(
        self,
        bundle: str | Path,
        data: str | Path | None = None,
        port: int | None = None,
        log_file: str | Path | None = None,
        ready_timeout: float = 180.0,
    ) -> None:
        self.bundle, self.data, self.ready_timeout = bundle, data, ready_timeout
        self.port = port or free_port()
        if log_file is None:
            handle, log_file = tempfile.mkstemp(prefix="nba-voila-", suffix=".log")
            os.close(handle)
        self.log_file = Path(log_file)
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Server:
        import subprocess

        env = app_environment(self.bundle, self.data)
        with open(self.log_file, "wb") as out:  # the child keeps its own handle
            self.process = subprocess.Popen(
                voila_command(self.port), env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self.wait_for_pages(1)  # a built page means the server answers too
        except NbaError:
            self.__exit__()
            raise
        return self

    def pages_built(self) -> int:
        """How many kernels have finished building the page so far (from the server's log)."""
        return self.log_file.read_bytes().count(READY_LINE.encode())

    def wait_for_pages(self, n: int) -> None:
        """Wait until `n` kernels have built the page (after a visit, `n` + 1 means the preheated
        kernel is ready again); one sentence if Voila exits or `ready_timeout` passes."""
        import time

        deadline = time.monotonic() + self.ready_timeout
        while self.pages_built() < n:
            if self.process.poll() is not None:
                raise NbaError(f"Voila exited with status {self.process.returncode}.")
            if time.monotonic() > deadline:
                raise NbaError(
                    f"Voila on {self.url} had built {self.pages_built()} of {n} pages after "
                    f"{self.ready_timeout:.0f} s."
                )
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
