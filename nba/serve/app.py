"""The ASGI application: FastAPI routes over `nba.serve.decisions`, with metrics, access logs,
an optional API key and the history writer.

Routes read the raw body themselves (no pydantic model per customer): the validator is the one
rule set, and a 1,000-customer request must not pay for two. The OpenAPI description is built
from `nba.serve.openapi`; its Swagger UI assets are served from the `fastapi-offline` package,
so /docs works without internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import operator
import os
import queue
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from nba.data import schema
from nba.serve import openapi
from nba.serve.decisions import (
    CHALLENGER,
    CHAMPION,
    MAX_BODY_BYTES,
    Checked,
    Decider,
    Model,
    RequestError,
    Scored,
    bundle_id,
    check_batch,
    customer_columns,
    parse_body,
)
from nba.serve.writer import WriterProcess

log = logging.getLogger("nba.serve")
access_log = logging.getLogger("nba.serve.access")

API_KEY_ENV = "NBA_API_KEY"
CONFIG_ENV = "NBA_SERVE_CONFIG"
#: Rows scored together at most when requests wait for the scoring thread (dynamic batching).
BATCH_ROWS = 2_000

_VARIANT = operator.itemgetter("variant")


@dataclass(frozen=True)
class ServeConfig:
    """What `nba serve` was asked for (plain values: it travels to worker processes as JSON)."""

    bundle: str
    history: str | None = None
    challenger: str | None = None
    challenger_share: float = 0.1
    seed: int = 42
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


def load_models(config: ServeConfig) -> tuple[Model, Model | None]:
    """The champion (and challenger) bundles, ready to serve; a bad file raises `BundleError`."""
    from nba.bundle import load_bundle

    def one(path: str, role: str) -> Model:
        bundle = load_bundle(path)
        # Parallelism comes from concurrent requests and workers; a thread pool per scoring
        # call (the churn model's batch default) costs more than it saves at ≤ 2,000 rows.
        # Each row's trees are summed the same way on one thread: the same probabilities.
        bundle.churn.n_jobs = 1
        return Model(bundle, bundle_id(bundle, path), role)

    champion = one(config.bundle, CHAMPION)
    challenger = one(config.challenger, CHALLENGER) if config.challenger else None
    return champion, challenger


# --- metrics --------------------------------------------------------------------------------


class Metrics:
    """Prometheus metrics of one app. With PROMETHEUS_MULTIPROC_DIR set (`--workers` > 1) every
    worker writes its own files and /metrics adds them up."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = None if self.multiprocess else CollectorRegistry()
        reg = {"registry": own}
        self._own = own
        self.requests = Counter(
            "nba_serve_requests", "HTTP requests answered", ["endpoint", "status"], **reg
        )
        self.latency = Histogram(
            "nba_serve_request_seconds",
            "Time to answer a request, seconds",
            ["endpoint"],
            buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            **reg,
        )
        self.decisions = Counter(
            "nba_serve_decisions", "Decisions made, by first action", ["action", "variant"], **reg
        )
        self.rejected = Counter(
            "nba_serve_rejected", "Customers or responses rejected with a reason", ["kind"], **reg
        )
        self.responses = Counter("nba_serve_responses_recorded", "Responses recorded", **reg)
        self.written = Counter(
            "nba_serve_history_decisions_written", "Decisions written to the history", **reg
        )
        self.lost = Counter(
            "nba_serve_history_decisions_lost",
            "Decisions that could not be written to the history after every retry",
            **reg,
        )
        self.batch = Histogram(
            "nba_serve_batch_customers",
            "Customers validated and scored together (requests batched while the scorer ran)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000),
            **reg,
        )
        gauge = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.queued = Gauge(
            "nba_serve_history_queue", "Decisions waiting for the history writer", **reg, **gauge
        )

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess:
            return generate_latest(self._own)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


# --- dynamic batching -----------------------------------------------------------------------


@dataclass
class Decided:
    """One request's share of a batch: its checked customers, their scores (None when every
    customer was rejected) and their feature columns for the history."""

    checked: Checked
    scored: Scored | None
    customers: dict[str, Any] | None


class Batcher:
    """Validates and scores customers in one thread, batching the requests that arrive while
    it is busy: 16 clients sending one customer each cost about one validator call and one
    scoring call per round instead of sixteen of each; a lone request goes straight through
    (nothing waits on purpose). The event loop meanwhile reads and answers other requests."""

    def __init__(self, decider: Decider, metrics: Metrics) -> None:
        self.decider, self.metrics = decider, metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nba-score")
        self._pending: list[tuple[list[Any], asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def decide(self, customers: list[Any]) -> Decided:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((customers, done))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await done

    def _take(self) -> list[tuple[list[Any], asyncio.Future]]:
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= BATCH_ROWS):
            item = self._pending.pop(0)
            batch.append(item)
            rows += len(item[0])
        return batch

    def _work(self, requests: list[list[Any]]) -> list[Decided]:
        clean, parts = check_batch(requests)
        if not len(clean):
            return [Decided(p, None, None) for p in parts]
        scored = self.decider.score(clean)
        columns = customer_columns(clean)
        out = []
        for p in parts:
            a, b = p.rows
            if b == a:
                out.append(Decided(p, None, None))
                continue
            out.append(Decided(p, scored.take(a, b), {k: v[a:b] for k, v in columns.items()}))
        return out

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._take()
                requests = [customers for customers, _ in batch]
                self.metrics.batch.observe(sum(map(len, requests)))
                try:
                    decided = await loop.run_in_executor(self._executor, self._work, requests)
                except Exception as exc:  # noqa: BLE001 - each waiting request answers 500
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), result in zip(batch, decided, strict=True):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._task = None

    def close(self) -> None:
        self._executor.shutdown(wait=True)


# --- the request's edges --------------------------------------------------------------------


def _json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    try:
        body = orjson.dumps(payload)
    except (TypeError, orjson.JSONEncodeError):
        # A customer's text with a lone surrogate, quoted in a reason: escape it.
        body = json.dumps(_escape(payload), ensure_ascii=True).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _error(status: int, detail: str, headers: dict | None = None) -> Response:
    return _json_response({"detail": detail}, status, headers)


def _check_content_type(request: Request) -> None:
    raw = request.headers.get("content-type")
    media = (raw or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        got = f"got {raw!r}" if raw else "none was given"
        raise RequestError(
            415, f"Send JSON with the header Content-Type: application/json ({got})."
        )


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 past `MAX_BODY_BYTES` (announced or actual)."""
    too_big = (
        f"The request body is larger than the limit of {MAX_BODY_BYTES // 2**20} MB: "
        "send fewer customers a request, or use `nba score` for files."
    )
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            size = int(announced)
        except ValueError:
            raise RequestError(400, "The Content-Length header is not a number.") from None
        if size > MAX_BODY_BYTES:
            raise RequestError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


class AccessLog:
    """Pure ASGI middleware: one JSON line per request (with the decision ids it made) and the
    request metrics, for every route including errors and unknown paths."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        extra: dict[str, Any] = {}
        scope.setdefault("state", {})["nba"] = extra

        async def record_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"  # a bounded set of labels
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("", 0)
                line = {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "client": f"{client[0]}:{client[1]}",
                    "method": scope.get("method"),
                    "path": path,
                    "status": status[0],
                    "ms": round(seconds * 1000, 2),
                    **extra,
                }
                access_log.info(_log_line(line))


def _log_line(line: dict[str, Any]) -> str:
    try:
        return orjson.dumps(line).decode()
    except (TypeError, orjson.JSONEncodeError):  # a client's text that UTF-8 cannot hold
        return json.dumps(_escape(line), ensure_ascii=True, default=str)


def event(name: str, **fields: Any) -> None:
    """A service event (start, stop) as one JSON line in the access log."""
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": name,
        "pid": os.getpid(),
        **fields,
    }
    access_log.info(orjson.dumps(line).decode())


def configure_access_log() -> None:
    """JSON lines on stderr for `nba.serve.access` (once per process)."""
    if not access_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


# --- the app --------------------------------------------------------------------------------


def _warm_up(decider: Decider) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score two synthetic customers with each bundle before the first request (compiled
    trees, caches); return the champion's score columns (they name and type a decision) and
    the first customer as JSON (the documentation's example)."""
    from nba.data import synth
    from nba.data.validate import validate

    customers = synth.generate(2, decider.seed)[list(schema.REQUIRED)]
    scored = decider.score(validate(customers).clean)
    example = {k: (v.item() if hasattr(v, "item") else v) for k, v in customers.iloc[0].items()}
    return scored.champion, example


def _settle_heap() -> None:
    """Run the full garbage collection the start-up owes now, and freeze what survives.

    Loading the bundles creates a great many objects; the first full collection after it,
    left to chance, came about 80 requests into a fresh server and took 140–185 ms, so one
    customer waited that long (bench/bench_serve.py (a), gc callbacks in the server: a 174 ms
    collection ended 7 ms before the slowest request of that run). Collected here it costs
    the start instead; frozen (`gc.freeze`), the bundles, modules and caches, which live as
    long as the process, are left out of every later collection."""
    gc.collect()
    gc.freeze()


def create_app(config: ServeConfig, models: tuple[Model, Model | None] | None = None) -> FastAPI:
    """The decision service for `config` (bundles loaded here unless `models` are given)."""
    from nba import __version__

    configure_access_log()
    champion, challenger = models if models is not None else load_models(config)
    decider = Decider(champion, challenger, config.challenger_share, config.seed)
    columns, example = _warm_up(decider)
    metrics = Metrics()
    api_key = os.environ.get(API_KEY_ENV) or None
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = WriterProcess(config.history)
        writer.on_written = lambda n: metrics.written.inc(n)
        writer.on_lost = lambda n: metrics.lost.inc(n)
        await asyncio.get_running_loop().run_in_executor(None, writer.start)
        state["writer"] = writer
        state["batcher"] = Batcher(decider, metrics)
        _settle_heap()
        event("started", bundle_id=champion.id, history=str(config.history))
        try:
            yield
        finally:
            # uvicorn has stopped taking requests and finished the ones in flight: every
            # decision made is queued; write them all before the process ends.
            state["batcher"].close()
            writer.stop()
            event("stopped", history_written=writer.written, history_lost=writer.lost)

    app = FastAPIOffline(
        title="nba decision service",
        version=__version__,
        description=openapi.description(),
        lifespan=lifespan,
    )

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), api_key.encode()
        ):
            raise RequestError(
                401, "This service needs the header Authorization: Bearer <NBA_API_KEY>."
            )

    def writer() -> WriterProcess:
        w: WriterProcess = state["writer"]
        return w

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        request.scope["state"]["nba"]["detail"] = exc.detail
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.detail, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            detail = f"There is no {request.url.path} here: see /docs for the endpoints."
        elif exc.status_code == 405:
            detail = f"{request.url.path} does not answer {request.method}: see /docs."
        else:
            detail = str(exc.detail)
        return _error(exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return _error(
            500, "The service failed on this request (logged); nothing was decided or recorded."
        )

    @app.get("/health", responses=openapi.health_responses(), summary="Is it serving, and what")
    async def health() -> Response:
        w: WriterProcess | None = state.get("writer")
        alive = w is not None and w.alive
        meta = champion.bundle.metadata
        body = {
            "status": "ok" if alive else "failing",
            "bundle_id": champion.id,
            "bundle": config.bundle,
            "created": meta.get("created"),
            "data": meta.get("data"),
            "synthetic": bool(meta.get("synthetic")),
            "challenger": None
            if challenger is None
            else {
                "bundle_id": challenger.id,
                "bundle": config.challenger,
                "share": config.challenger_share,
                "synthetic": bool(challenger.bundle.metadata.get("synthetic")),
            },
            "history": {
                "path": config.history,
                "queued": w.queued if w else None,
                "written": w.written if w else 0,
                "lost": w.lost if w else 0,
            },
            "api_key_required": api_key is not None,
            "version": __version__,
            "pid": os.getpid(),
        }
        return _json_response(body, 200 if alive else 503)

    @app.get("/metrics", summary="Prometheus metrics", responses={200: {"description": "text"}})
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        w: WriterProcess | None = state.get("writer")
        if w is not None:
            metrics.queued.set(w.queued)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/decisions",
        summary="Next best actions for up to 1,000 customers",
        responses=openapi.v1_responses("DecisionsResponse", "decisions and rejected customers"),
        openapi_extra={"requestBody": openapi.request_body("DecisionsRequest")},
    )
    async def decide(request: Request) -> Response:
        authorize(request)
        _check_content_type(request)
        customers = parse_body(await _read_body(request), "customers")
        decided: Decided = await state["batcher"].decide(customers)
        checked = decided.checked
        decisions: list[dict[str, Any]] = []
        if decided.scored is not None:
            decisions, history = decider.decisions(decided.scored, checked.positions)
            try:
                writer().add_decisions(history, decided.customers)
            except queue.Full:
                raise RequestError(
                    503, "The history writer is far behind; try again in a moment."
                ) from None
            except RuntimeError as exc:  # the writer process is gone: decide nothing unlogged
                log.error("the history writer cannot take decisions: %s", exc)
                raise RequestError(
                    503, "The history writer is not running; nothing was decided (see /health)."
                ) from None
            # the actions as a list first: iterating an arrow-backed array value by value cost
            # 0.6 ms a 1,000-customer request, the list 0.1 ms
            variants = map(_VARIANT, decisions)
            counts = Counter(zip(history["action"].tolist(), variants, strict=True))
            for (action, variant), n in counts.items():
                metrics.decisions.labels(action, variant).inc(n)
        if checked.rejected:
            metrics.rejected.labels("customer").inc(len(checked.rejected))
        request.scope["state"]["nba"].update(
            customers=checked.n_in,
            rejected=len(checked.rejected),
            decision_ids=[d["decision_id"] for d in decisions],
        )
        return _json_response({"decisions": decisions, "rejected": checked.rejected})

    @app.post(
        "/v1/responses",
        summary="What customers did after a decision",
        responses=openapi.v1_responses("ResponsesResponse", "recorded and rejected responses"),
        openapi_extra={"requestBody": openapi.request_body("ResponsesRequest")},
    )
    async def respond(request: Request) -> Response:
        authorize(request)
        _check_content_type(request)
        items = parse_body(await _read_body(request), "responses")
        good, rejected = check_responses(items)
        recorded = 0
        if len(good):
            try:
                done = writer().record_responses(good)
                recorded, refused = await asyncio.wrap_future(done)
            except Exception as exc:  # noqa: BLE001 - nothing acknowledged: the client retries
                log.error("recording %d responses failed", len(good), exc_info=exc)
                raise RequestError(
                    503, "The responses could not be recorded now; nothing was; send them again."
                ) from None
            rejected += refused_entries(good, refused)
            rejected.sort(key=lambda r: r["index"])
        metrics.responses.inc(recorded)
        if rejected:
            metrics.rejected.labels("response").inc(len(rejected))
        request.scope["state"]["nba"].update(
            responses=len(items),
            recorded=recorded,
            rejected=len(rejected),
            decision_ids=good["decision_id"].tolist() if len(good) else [],
        )
        assert recorded + len(rejected) == len(items), (recorded, len(rejected), len(items))
        return _json_response({"recorded": recorded, "rejected": rejected})

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec.setdefault("components", {})["schemas"] = openapi.components(columns, example)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def check_responses(items: list[Any]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Well-formed responses as a frame (`position` = index in the request) and a reason for
    each malformed one: an object with a non-empty `decision_id` and 0/1 (or false/true)
    `responded` and `retained`."""
    rows, rejected = [], []
    for i, item in enumerate(items):
        problem = None
        if not isinstance(item, dict):
            problem = "the response is not a JSON object"
        else:
            did = item.get("decision_id")
            if not isinstance(did, str) or not did.strip():
                problem = "decision_id is missing (a non-empty string)"
            elif not _utf8(did):
                problem = "decision_id is not valid text (a lone surrogate)"
            for name in ("responded", "retained"):
                v = item.get(name)
                if problem is None and (type(v) not in (int, bool) or v not in (0, 1)):
                    problem = f"{name} {_show(v)} is not 0 or 1"
        if problem:
            rejected.append({"index": i, "reason": problem})
        else:
            rows.append(
                (i, item["decision_id"].strip(), int(item["responded"]), int(item["retained"]))
            )
    frame = pd.DataFrame(rows, columns=["position", "decision_id", "responded", "retained"])
    return frame, rejected


def _utf8(text: str) -> bool:
    """False for text JSON can carry but UTF-8 cannot (lone surrogates, like "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _show(v: Any) -> str:
    """A JSON value quoted briefly for a reason."""
    if isinstance(v, str):
        return repr(v[:40])
    if v is None:
        return "null"
    try:
        return orjson.dumps(v).decode()[:40]
    except (TypeError, orjson.JSONEncodeError):  # nested too deeply to write back
        return "(a deeply nested value)"


def refused_entries(good: pd.DataFrame, refused: pd.DataFrame) -> list[dict[str, Any]]:
    """The history's rejected responses as `{"index", "reason"}` entries of the request."""
    if refused is None or not len(refused):
        return []
    if "position" in refused.columns:
        positions = refused["position"].tolist()
    else:  # the history kept the frame's index: rows of `good`
        positions = good["position"].reindex(refused.index).tolist()
    return [
        {"index": int(p), "reason": str(r)}
        for p, r in zip(positions, refused["reason"].tolist(), strict=True)
    ]


def app_from_environment() -> Any:
    """The app a `--workers N` process builds from the config `nba serve` put in the
    environment (uvicorn's factory)."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start the service with `nba serve`")
    return create_app(ServeConfig.from_json(text))
