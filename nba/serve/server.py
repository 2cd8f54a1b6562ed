"""`nba serve`: check what was asked for, then run uvicorn (one process, or `--workers N`)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

from nba.errors import NbaError
from nba.serve.app import CONFIG_ENV, ServeConfig, create_app, load_models
from nba.serve.writer import open_history

#: Seconds uvicorn waits for requests in flight on shutdown before closing them.
GRACEFUL_SECONDS = 30


def _check_port(host: str, port: int) -> None:
    """A one-sentence error now rather than uvicorn's log line after the bundles loaded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NbaError(f"--host {host} is not an address this machine can bind ({exc}).") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise NbaError(f"Port {port} on {host} {why}: choose another with --port.") from exc


def check(config: ServeConfig) -> tuple[Any, Any]:
    """Everything that can be wrong before serving, each as one sentence (`NbaError`): the
    options, the bundles, the history file, the port. Returns the loaded models."""
    if config.workers < 1:
        raise NbaError(f"--workers must be at least 1, got {config.workers}.")
    if config.challenger and not 0 < config.challenger_share < 1:
        raise NbaError(
            f"--challenger-share must be between 0 and 1 (exclusive), got {config.challenger_share}."
        )
    if not 0 < config.port < 65536:
        raise NbaError(f"--port must be between 1 and 65535, got {config.port}.")
    models = load_models(config)
    open_history(config.history).close()  # creates or migrates it; a bad file stops here
    _check_port(config.host, config.port)
    return models


def serve(config: ServeConfig) -> int:
    """Run the service until Ctrl-C or SIGTERM (graceful: requests in flight finish, the
    history is flushed). Returns the exit status."""
    import uvicorn

    models = check(config)
    champion, challenger = models
    data = champion.bundle.metadata.get("data", {})
    loud = " — SYNTHETIC DATA" if champion.bundle.metadata.get("synthetic") else ""
    print(
        f"nba serve: bundle {champion.id} ({data.get('path', '?')}{loud})"
        + (
            f", challenger {challenger.id} for {config.challenger_share:.0%} of customers"
            if challenger
            else ""
        )
        + f"; http://{config.host}:{config.port} (docs /docs), {config.workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    common: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": "warning",
        "access_log": False,  # the service writes its own structured access log
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "server_header": False,
    }
    if config.workers == 1:
        uvicorn.run(create_app(config, models), **common)
        return 0
    # Workers are new processes: they rebuild the app from the config in the environment,
    # and add their metrics up through files in a folder of their own.
    metrics_dir = tempfile.mkdtemp(prefix="nba-serve-metrics-")
    os.environ[CONFIG_ENV] = config.to_json()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "nba.serve.app:app_from_environment", factory=True, workers=config.workers, **common
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


class Running:
    """`nba serve` in a subprocess on a free loopback port, for tests and benchmarks: waits
    until /health answers, and on exit stops it with SIGTERM (the graceful path) and waits.

    `args`: further `nba serve` options; `env`: extra environment (e.g. NBA_API_KEY); `log`:
    file for the server's stderr (the access log)."""

    def __init__(
        self,
        bundle: str | os.PathLike,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log: str | os.PathLike | None = None,
        port: int | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.bundle, self.args = str(bundle), list(args or [])
        self.env = {**os.environ, **(env or {})}
        self.log_path = log
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.process: Any = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Running:
        import subprocess
        import time

        import httpx

        command = [sys.executable, "-m", "nba.cli", "serve", "--bundle", self.bundle]
        command += ["--port", str(self.port), *self.args]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(f"nba serve exited with {self.process.returncode} on start")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nba serve did not answer /health within {self.startup_timeout:.0f} s")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait (kill only if it will not stop); returns the exit status."""
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        self.returncode = None if self.process is None else self.process.returncode
        return self.returncode if self.returncode is not None else -1

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and hasattr(log, "close"):
            log.close()
        self._log = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
