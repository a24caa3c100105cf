"""The web server: SPARQL endpoint, entity pages, query UI and downloads, in one FastAPI app.

Shared state, set on every app :func:`create_app` builds and used by all routers:

``request.app.state.settings``
    the :class:`~epar_graph.serve.settings.Settings` (data directory, limits,
    base IRI ``settings.base``);
``request.app.state.store``
    a :class:`~epar_graph.serve.store.SparqlStore`. Routers must use only that
    interface (``query``, ``describe``, ``labels``, ``triples``) so the store can
    be swapped for a remote one; ``/sparql`` additionally takes a fast path
    when the store is an :class:`~epar_graph.serve.store.EncodingStore`.

Routers: ``serve.sparql`` (``/sparql``), ``serve.downloads`` (``/downloads/``,
``/context.jsonld``, ``/.well-known/void``), and, when present,
``serve.entities.router`` (entity pages), ``serve.vocabulary_pages.router``
(``/ontology``, ``/shapes``) and ``serve.ui.router`` (the query editor at ``/``);
every HTML page renders through ``serve.site_html``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from epar_graph import config
from epar_graph.serve.settings import Settings, SettingsError

if TYPE_CHECKING:  # the web stack is imported lazily: query worker processes import this package too
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.responses import HTMLResponse, Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from epar_graph.serve.following import FollowingStore
    from epar_graph.serve.store import SparqlStore

__all__ = ["Settings", "create_app", "open_embedded", "run_server"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


class RequestSizeLimit:
    """Refuse (413) a request whose declared body is over the limit, before anything reads it.

    Bodies without Content-Length are counted while read (see ``sparql._read_body``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = _header(scope, b"content-length")
            too_big = length is not None and (not length.isdigit() or int(length) > self.max_bytes)
            if too_big or len(scope.get("query_string", b"")) > self.max_bytes:
                status = 414 if not too_big else 413
                what = "request body" if too_big else "URL"
                body = f"The {what} is larger than {self.max_bytes} bytes.\n".encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NoControlCharacters:
    """404 for a path with a control character (``/downloads/%0A``): no resource has one, and a route's
    pattern would otherwise match it (``$`` matches before a final newline), so ``/sparql%0A`` was ``/sparql``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL.search(scope.get("path", "")):
            body = b"No such page.\n"
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


class SelectiveGZip:
    """GZip for generated answers, not for files: a downloaded dump keeps the bytes its ETag names."""

    def __init__(self, app: ASGIApp, minimum_size: int = 1000) -> None:
        from starlette.middleware.gzip import GZipMiddleware

        from epar_graph.serve.downloads import FILE_PATH_PREFIXES

        self.file_paths = FILE_PATH_PREFIXES
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        accepts_gzip = "gzip" in (_header(scope, b"accept-encoding") or "")
        if not accepts_gzip or (path.startswith(self.file_paths) and path != "/downloads/"):
            await self.app(scope, receive, send)  # nothing to compress: skip buffering the answer's start
        else:
            await self.gzip(scope, receive, send)


#: Seconds a client is told to wait (``Retry-After``) when the query workers are busy or a query ran too long.
RETRY_AFTER_SECONDS = 2


async def _unavailable(request: Request, exc: Exception) -> Response:
    """Busy workers, a query past its time limit, a lost worker or engine, on any page: 503 with Retry-After.

    An engine behind the server that answers garbage is a 502 (a bad gateway), with the same page.

    Routers other than ``/sparql`` let these exceptions rise from the store; without this handler they
    became 500s with a traceback in the log.
    """
    from fastapi.responses import HTMLResponse, PlainTextResponse

    from epar_graph.serve.negotiation import negotiate
    from epar_graph.serve.store import EngineFailed, EngineUnavailable, QueryTimeout, ServerBusy

    status = 503
    if isinstance(exc, EngineFailed):
        status, why = 502, "the triple store behind this server failed"
    elif isinstance(exc, EngineUnavailable):
        why = "the triple store behind this server cannot be reached"
    elif isinstance(exc, ServerBusy):
        why = "every query worker is busy"
    elif isinstance(exc, QueryTimeout):
        why = "answering took longer than the time limit"
    else:
        why = "a query worker stopped and is being replaced"
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    log.info("%d for %s: %s (%s)", status, request.url.path, why, exc)
    message = f"The server cannot answer right now: {why}. Try again in a few seconds."
    if negotiate(request.headers.get("accept"), ["text/plain", "text/html"]) == "text/html":
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Busy - EPAR knowledge graph</title>"
            f"<h1>Try again in a moment</h1><p>{message}</p></html>"
        )
        return HTMLResponse(body, status_code=status, headers=headers)
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _optional_router(module: str) -> APIRouter | None:
    """``router`` of an optional serve module (entities, ui, …), None when it is absent."""
    from fastapi import APIRouter

    try:
        mod = importlib.import_module(f"epar_graph.serve.{module}")
    except ImportError as exc:
        if exc.name and exc.name.startswith("epar_graph.serve"):
            return None
        raise
    router = getattr(mod, "router", None)
    return router if isinstance(router, APIRouter) else None


def create_app(settings: Settings, store: SparqlStore | None = None) -> FastAPI:
    """The app. With ``store`` None, the embedded store is opened at startup and closed at shutdown."""
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import HTMLResponse

    from epar_graph.serve import downloads, sparql
    from epar_graph.serve.following import PinRelease
    from epar_graph.serve.store import QueryFailed, QueryTimeout

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        if settings.store_url:
            from epar_graph.load import plan
            from epar_graph.serve.remote_store import RemoteStore

            remote = RemoteStore(settings.store_url, default_timeout=settings.query_timeout,
                                 dataset=plan(settings.data_dir).dataset())
            app.state.store = remote
            try:
                yield
            finally:
                await remote.aclose()
                remote.close()
            return
        opened = open_embedded(settings)
        app.state.store = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="EPAR knowledge graph",
        summary="SPARQL 1.1 endpoint, linked-data pages and dumps of EMA's European Public Assessment Reports.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api",
        redoc_url=None,
    )
    app.state.settings = settings
    if store is not None:
        app.state.store = store
    app.add_exception_handler(QueryTimeout, _unavailable)  # ServerBusy is a QueryTimeout
    app.add_exception_handler(QueryFailed, _unavailable)
    sparql.install(app)
    app.include_router(downloads.router)
    ui_router = _optional_router("ui")
    page_routers = [_optional_router(name) for name in ("entities", "vocabulary_pages")]
    for name in ("changes", "search", "reconcile", "examples"):
        extra = _optional_router(name)
        if extra is not None:
            app.include_router(extra)
    if ui_router is not None:
        app.include_router(ui_router)
    else:
        app.add_api_route("/", _fallback_home, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    for page_router in page_routers:
        if page_router is not None:
            app.include_router(page_router)
    app.add_middleware(PinRelease)
    app.add_middleware(NoControlCharacters)
    app.add_middleware(SelectiveGZip)
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "HEAD", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=[sparql.TRUNCATED_HEADER, "X-Result-Limit", "ETag", "Last-Modified"],
        max_age=3600,
    )
    return app


def open_embedded(settings: Settings) -> FollowingStore:
    """The embedded store of the release in ``settings.data_dir``, following it to each new build."""
    from epar_graph.serve.following import FollowingStore
    from epar_graph.serve.store import OxigraphStore

    def open_release(release: Path) -> OxigraphStore:
        return OxigraphStore.open(
            release,
            store_dir=settings.resolved_store_dir,
            base=settings.iris.base,
            workers=settings.workers,
            default_timeout=settings.query_timeout,
            slow_workers=settings.slow_workers,
            fast_lane_seconds=settings.fast_lane_seconds,
            answer_cache_bytes=settings.answer_cache_mb * 1024 * 1024,
        )

    return FollowingStore(settings.data_dir, open_release, interval=settings.follow_seconds)


async def _fallback_home() -> HTMLResponse:
    from fastapi.responses import HTMLResponse

    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>EPAR knowledge graph</title>"
        "<h1>EPAR knowledge graph</h1><ul><li><a href=/sparql>SPARQL endpoint</a></li>"
        "<li><a href=/downloads/>Downloads</a></li><li><a href=/api>API</a></li></ul></html>"
    )


def _ensure_default_build(out: Path) -> int:
    """Build the bundled data into ``out`` when it has no dump yet."""
    from epar_graph.release import find_dump

    if find_dump(out) is not None:
        return EXIT_OK
    print(f"No dump in {out}/: building the bundled data first.", file=sys.stderr)
    from epar_graph.pipeline import run_build

    code = run_build([], out, quiet=False)
    if find_dump(out) is None:
        print(f"error: the build did not produce a dump in {out}/ (exit {code})", file=sys.stderr)
        return code or EXIT_DATA
    return EXIT_OK


def run_server(
    *,
    data: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    query_timeout: float = 30.0,
    access_log: bool = False,
    store_url: str | None = None,
) -> int:
    """``epar-graph serve``: load the store, then serve until interrupted. Returns the exit code.

    The access log is off by default: a line per request halves the throughput of
    small lookups, and deployments usually log at their reverse proxy.

    With ``store_url`` the queries go to that SPARQL endpoint (see ``remote_store.py``),
    which holds the release (``epar-graph load``); ``data`` still gives the downloads,
    the search index and the base IRI.

    Exit 2 when ``data`` has no dump (a usage error), 1 when the dump is broken.
    """
    from epar_graph.release import find_dump
    from epar_graph.serve.store import StoreError, ensure_store, no_dump

    if data is None:
        data = config.DEFAULT_OUT
        code = _ensure_default_build(data)
        if code != EXIT_OK:
            return code
    elif not data.is_dir():
        print(f"error: {data} is not a directory (expected a build from `epar-graph build`)", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = Settings.from_env(data, query_timeout=query_timeout, store_url=store_url)
        if find_dump(data) is None:
            raise no_dump(data)
    except (SettingsError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.store_url:
        return _serve_remote(settings, host, port, access_log)
    print(f"Loading {data}/ into the query store (reused while the dump is unchanged)…", file=sys.stderr)
    try:
        info = ensure_store(data.resolve(), settings.resolved_store_dir, settings.iris.base)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    print(f"Serving {info.triples} triples on http://{host}:{port}/ (SPARQL at /sparql), "
          f"{settings.processes} server process(es)", file=sys.stderr)
    if settings.follow_seconds > 0:
        print(f"A new build in {data}/ is served as soon as it is loaded (checked every "
              f"{settings.follow_seconds:g} s).", file=sys.stderr)
    return _run(settings, host, port, access_log)


def _run(settings: Settings, host: str, port: int, access_log: bool) -> int:
    """Serve on ``host:port`` with ``settings.processes`` processes (see ``serve/replicas.py``)."""
    from epar_graph.serve.replicas import bind, run_replica, serve_replicas

    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.processes > 1:
        return serve_replicas(settings, sock, access_log)
    try:
        run_replica(settings, sock, access_log)
    finally:
        sock.close()
    return EXIT_OK


def _serve_remote(settings: Settings, host: str, port: int, access_log: bool) -> int:
    """Serve with an existing engine as the store; an engine that is down now only delays answers (503)."""
    from epar_graph.serve.remote_store import RemoteStore
    from epar_graph.serve.store import QueryFailed, QueryTimeout

    assert settings.store_url
    try:
        probe = RemoteStore(settings.store_url, default_timeout=min(settings.query_timeout, 10.0))
    except ValueError as exc:
        print(f"error: --store: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with probe:
        try:
            probe.query("ASK { }")
        except (QueryFailed, QueryTimeout, ValueError) as exc:
            print(f"warning: {exc}; pages answer 503 until it does", file=sys.stderr)
    print(f"Serving {settings.store_url} on http://{host}:{port}/ (SPARQL at /sparql), "
          f"{settings.processes} server process(es)", file=sys.stderr)
    return _run(settings, host, port, access_log)
