"""The SPARQL 1.1 Protocol endpoint at ``/sparql`` (query operation only).

Requests (https://www.w3.org/TR/sparql11-protocol/#query-operation):

* ``GET /sparql?query=…`` — URL parameters;
* ``POST /sparql`` with ``application/x-www-form-urlencoded`` — parameters in the body;
* ``POST /sparql`` with ``application/sparql-query`` — the body is the query,
  the dataset parameters stay in the URL.

``default-graph-uri`` / ``named-graph-uri`` (repeatable) replace the query's
own ``FROM``/``FROM NAMED``. The answer's format comes from ``format``
(``json``, ``xml``, ``csv``, ``tsv``, ``turtle``, ``ntriples``, ``jsonld``,
``rdfxml``, or a media type) or else from ``Accept``.

Limits, all from :class:`~epar_graph.serve.settings.Settings`: a query that
runs past ``query_timeout`` is stopped and answered with 503; at most
``max_rows`` solutions (or triples) are returned, and every answer carries
``X-Result-Truncated: true`` or ``false`` so a client can tell a complete
answer from a cut one; request bodies over ``max_request_bytes`` get 413.
Long answers are streamed (chunked) from the file their worker wrote
(:class:`StreamedAnswer`), at the pace the client reads.

Refused before any worker sees them (see ``serve/querycheck.py``): queries
nested or long enough to exhaust a worker's stack (400), updates (403: this is
a read-only endpoint, the data never changes through HTTP) and federated
``SERVICE`` calls to endpoints not in ``service_allowlist`` (403: otherwise the
server would fetch any URL a stranger names). Long queries are checked in a
thread, so the event loop keeps serving meanwhile. Parameters must be UTF-8; anything unparseable is a 400 with
a message, never a traceback.

``GET /sparql`` without a query returns the SPARQL Service Description (RDF
clients) or redirects browsers to the query editor at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from epar_graph import sparql_text
from epar_graph.serve import negotiation, querycheck, service_description
from epar_graph.serve.negotiation import Choice, Format, UnknownFormat
from epar_graph.serve.querycheck import refused_services, service_endpoints, unescape_codepoints
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import (
    EncodedResult,
    EncodingStore,
    EngineFailed,
    EngineUnavailable,
    QueryFailed,
    QueryTimeout,
    ServerBusy,
    SparqlStore,
    encode_result,
)

router = APIRouter(tags=["SPARQL"])
__all__ = ["answer_query", "install", "refused_services", "router", "service_endpoints", "unescape_codepoints"]

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
TRUNCATED_HEADER = "X-Result-Truncated"


class ProtocolError(Exception):
    """A request the endpoint answers with a client-error status and a plain message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# --- checking the query text -------------------------------------------------------------

#: Queries up to this length are checked on the event loop (well under a millisecond); longer ones in a thread.
INLINE_CHECK_CHARS = 8192


def check_limiter(request: Request) -> anyio.CapacityLimiter:
    """The app's limiter for long checks: one at a time, since the check is pure Python and the event
    loop shares its interpreter (one per app, so each app's event loop has its own)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "check_limiter", None)
    if limiter is None:
        limiter = state.check_limiter = anyio.CapacityLimiter(1)
    return limiter


#: Short queries whose checks and prepared text are remembered: the same query asked again (a page's
#: lookup, an example, a polling client) skips both. Each entry is at most INLINE_CHECK_CHARS long.
REMEMBERED_QUERIES = 2048


@functools.lru_cache(maxsize=REMEMBERED_QUERIES)
def _checked(query: str, allowlist: frozenset[str]) -> querycheck.Refusal | None:
    return querycheck.check(query, allowlist)


@functools.lru_cache(maxsize=REMEMBERED_QUERIES)
def _prepared(query: str, endpoint: str) -> sparql_text.Prepared:
    return sparql_text.with_common_prefixes(query, endpoint)


def prepare(query: str, endpoint: str) -> sparql_text.Prepared:
    """The text sent to the store (common prefixes, the endpoint as base), remembered for short queries."""
    if len(query) <= INLINE_CHECK_CHARS:
        return _prepared(query, endpoint)
    return sparql_text.with_common_prefixes(query, endpoint)


async def check_query(request: Request, query: str, settings: Settings) -> None:
    """Raise ProtocolError (400 shape, 403 federation) for a query no worker should see."""
    if len(query) <= INLINE_CHECK_CHARS:
        refusal = _checked(query, settings.service_allowlist)
    else:
        refusal = await anyio.to_thread.run_sync(
            querycheck.check, query, settings.service_allowlist, limiter=check_limiter(request)
        )
    if refusal is not None:
        raise ProtocolError(refusal.status, refusal.message)


# --- reading the request ------------------------------------------------------------------


def parse_params(raw: bytes, where: str) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, strictly UTF-8 (400 otherwise)."""
    try:
        text = raw.decode("utf-8")
        return urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError(400, f"The {where} is not valid UTF-8; SPARQL requests must be UTF-8 encoded.") from None
    except ValueError as exc:
        raise ProtocolError(400, f"The {where} cannot be read: {exc}") from None


@dataclass(frozen=True)
class QueryRequest:
    query: str | None
    default_graph: list[str] | None
    named_graphs: list[str] | None
    format: str | None


def _values(params: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in params if k == name]


def _from_params(params: list[tuple[str, str]], query: str | None = None) -> QueryRequest:
    if _values(params, "update"):
        raise ProtocolError(403, "This endpoint is read-only: SPARQL updates are not accepted.")
    queries = _values(params, "query")
    if query is not None:
        if queries:
            raise ProtocolError(400, "The query was sent both in the body and as a 'query' parameter; send it once.")
        queries = [query]
    if len(queries) > 1:
        raise ProtocolError(400, f"{len(queries)} 'query' parameters were given; send exactly one query.")
    formats = _values(params, "format")
    if len(formats) > 1:
        raise ProtocolError(400, "More than one 'format' parameter was given.")
    default = _values(params, "default-graph-uri")
    named = _values(params, "named-graph-uri")
    # The protocol's dataset replaces the query's FROM/FROM NAMED as a whole: naming only
    # graphs for GRAPH leaves the default graph empty, and the other way round.
    dataset_given = bool(default or named)
    return QueryRequest(
        query=queries[0] if queries else None,
        default_graph=default if dataset_given else None,
        named_graphs=named if dataset_given else None,
        format=formats[0] if formats else None,
    )


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower() or None


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) to read past ``limit`` bytes even without Content-Length."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_request(request: Request, settings: Settings) -> QueryRequest:
    url_params = parse_params(request.scope.get("query_string", b""), "URL query string")
    if request.method == "GET":
        return _from_params(url_params)
    media = _media_type(request)
    if media == SPARQL_UPDATE:
        raise ProtocolError(403, "This endpoint is read-only: SPARQL updates are not accepted.")
    if media not in (FORM, SPARQL_QUERY):
        raise ProtocolError(
            415,
            f"POST needs Content-Type {FORM} or {SPARQL_QUERY}, not {media or 'none'}.",
        )
    body = await _read_body(request, settings.max_request_bytes)
    if media == FORM:
        return _from_params(url_params + parse_params(body, "form body"))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(400, "The query is not valid UTF-8; SPARQL queries must be UTF-8 encoded.") from None
    return _from_params(url_params, query=text)


# --- answering ----------------------------------------------------------------------------


def _error(exc: ProtocolError) -> Response:
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=exc.headers)


@functools.cache
def _encodes(kind: type) -> bool:
    """Whether a store of this class hands back encoded answers; a protocol check costs ~20 µs, once is enough."""
    return callable(getattr(kind, "aquery_encoded", None))


async def _run(
    store: SparqlStore,
    settings: Settings,
    req: QueryRequest,
    result: Choice[str] | None,
    graph: Choice[Format] | None,
) -> EncodedResult:
    assert req.query is not None
    kwargs: dict[str, Any] = {"default_graph": req.default_graph, "named_graphs": req.named_graphs}
    r_name = result.name if result else None
    g_name = graph.name if graph else None
    if _encodes(type(store)):
        return await cast(EncodingStore, store).aquery_encoded(
            req.query, result_format=r_name, rdf_format=g_name, max_rows=settings.max_rows, **kwargs
        )

    def generic() -> EncodedResult:
        return encode_result(store.query(req.query or "", **kwargs), r_name, g_name, settings.max_rows)

    return await anyio.to_thread.run_sync(generic)


async def answer_query(request: Request) -> Response:
    """Both methods end here: read, check, run, encode; every failure becomes a plain-text status."""
    settings: Settings = request.app.state.settings
    store: SparqlStore = request.app.state.store
    prepared: sparql_text.Prepared | None = None
    original = ""
    try:
        req = await _read_request(request, settings)
        if req.query is None:
            if request.method == "POST":
                raise ProtocolError(400, "No query was given (expected a 'query' parameter or a query body).")
            return await _describe_service(request, req.format)
        if not req.query.strip():
            raise ProtocolError(400, "The query is empty.")
        try:
            result_choice, graph_choice = negotiation.choose_formats(request.headers.get("accept"), req.format)
        except UnknownFormat as exc:
            names = ", ".join(negotiation.format_names())
            raise ProtocolError(400, f"Unknown format {exc}; use one of {names} or a media type.") from None
        if result_choice is None and graph_choice is None:
            raise ProtocolError(406, _not_acceptable_message())
        await check_query(request, req.query, settings)
        original = req.query
        prepared = prepare(original, endpoint_iri(request))
        req = dataclasses.replace(req, query=prepared.text)
        encoded = await _run(store, settings, req, result_choice, graph_choice)
    except ProtocolError as exc:
        return _error(exc)
    except SyntaxError as exc:
        what = sparql_text.explain(exc, prepared, original) if prepared is not None else str(exc)
        return _error(ProtocolError(400, f"The query is not valid SPARQL 1.1: {what}"))
    except ServerBusy as exc:
        return _error(ProtocolError(503, f"The server is busy: {exc}. Try again shortly.", {"Retry-After": "2"}))
    except QueryTimeout as exc:
        return _error(
            ProtocolError(503, f"Query stopped: {exc}. Narrow it down, or add a LIMIT.", {"Retry-After": "2"})
        )
    except ValueError as exc:
        return _error(ProtocolError(400, f"The request cannot be answered: {exc}"))
    except EngineUnavailable as exc:
        return _error(ProtocolError(503, f"The store is unavailable: {exc}. Try again shortly.", {"Retry-After": "2"}))
    except EngineFailed as exc:
        return _error(ProtocolError(502, f"The store behind this endpoint failed: {exc}"))
    except QueryFailed as exc:
        return _error(ProtocolError(500, f"The query could not be evaluated: {exc}"))
    choice = result_choice if encoded.kind in ("solutions", "boolean") else graph_choice
    if (encoded.body is None and encoded.path is None) or choice is None:
        _discard_file(encoded.path)
        return _error(ProtocolError(406, _not_acceptable_message(encoded.kind)))
    headers = {TRUNCATED_HEADER: "true" if encoded.truncated else "false", "Vary": "Accept"}
    if encoded.truncated:
        headers["X-Result-Limit"] = str(settings.max_rows)
    if encoded.path is not None:
        return StreamedAnswer(encoded.path, media_type=choice.media_type, headers=headers)
    return Response(encoded.body, media_type=choice.media_type, headers=headers)


def endpoint_iri(request: Request) -> str:
    """The URL the endpoint was reached at, without its parameters: the base of relative IRIs in queries."""
    return str(request.url).partition("?")[0]  # a request's URL has no fragment, and its path no bare "?"


def _discard_file(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


class StreamedAnswer(Response):
    """A long answer streamed from the file its worker wrote, in chunks, at the pace the client reads.

    The file is opened and unlinked at once, so it disappears with the response whatever happens. The
    server holds one chunk per client (plus the transport's small write buffer): a client that stops
    reading holds no more, and one that reads nothing for :data:`SEND_TIMEOUT` seconds is cut off.
    Without a Content-Length the answer goes out with chunked transfer encoding.
    """

    CHUNK = 64 * 1024
    SEND_TIMEOUT = 60.0

    def __init__(self, path: str, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(None, status_code=200, headers=headers, media_type=media_type)
        del self.headers["content-length"]
        self.file = open(path, "rb")  # noqa: SIM115 (closed when the response ends)
        _discard_file(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            while chunk := self.file.read(self.CHUNK):
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                await asyncio.wait_for(send(message), self.SEND_TIMEOUT)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.file.close()


def _not_acceptable_message(kind: str | None = None) -> str:
    results = ", ".join(dict.fromkeys(m for m, _ in negotiation.RESULT_OFFERS))
    graphs = ", ".join(dict.fromkeys(m for m, _ in negotiation.RDF_OFFERS))
    if kind in ("solutions", "boolean"):
        return f"SELECT and ASK results are available as: {results}."
    if kind == "graph":
        return f"CONSTRUCT and DESCRIBE results are available as: {graphs}."
    return f"None of the requested media types is available. Results: {results}. Graphs: {graphs}."


async def _describe_service(request: Request, format_param: str | None) -> Response:
    if format_param is not None:
        try:
            _, graph = negotiation.choose_formats(None, format_param)
        except UnknownFormat:
            graph = None
        if graph is None:
            raise ProtocolError(400, "No query was given (expected a 'query' parameter).")
    else:
        offers = [m for m, _ in negotiation.RDF_OFFERS[:4]] + ["text/html"]
        chosen = negotiation.negotiate(request.headers.get("accept"), offers)
        if chosen is None:
            raise ProtocolError(400, "No query was given (expected a 'query' parameter).")
        if chosen == "text/html":
            return RedirectResponse("/", status_code=303, headers={"Vary": "Accept"})
        graph = Choice(dict(negotiation.RDF_OFFERS)[chosen], negotiation.content_type(chosen))
    body = await service_description.render(request, graph.name)
    return Response(body, media_type=graph.media_type, headers={"Vary": "Accept"})


# --- routes and their OpenAPI description -------------------------------------------------

_DATASET_PARAMS: list[dict[str, Any]] = [
    {
        "name": "default-graph-uri",
        "in": "query",
        "required": False,
        "description": "IRI of a graph to use as (part of) the default graph; repeatable.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
    {
        "name": "named-graph-uri",
        "in": "query",
        "required": False,
        "description": "IRI of a graph available to GRAPH patterns; repeatable.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
]
_FORMAT_PARAM: dict[str, Any] = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "Result format, overriding Accept.",
    "schema": {"type": "string", "enum": negotiation.format_names()},
}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_SPARQL_JSON_SCHEMA = {
    "type": "object",
    "required": ["head"],
    "properties": {
        "head": {"type": "object"},
        "results": {"type": "object"},
        "boolean": {"type": "boolean"},
    },
}
_ANY = {"schema": {"type": "string"}}
_OK_CONTENT: dict[str, Any] = {
    "application/sparql-results+json": {"schema": _SPARQL_JSON_SCHEMA},
    "application/json": {"schema": {}},
    "application/sparql-results+xml": _ANY,
    "application/xml": _ANY,
    "text/xml": _ANY,
    "text/csv": _ANY,
    "text/tab-separated-values": _ANY,
    "text/turtle": _ANY,
    "application/x-turtle": _ANY,
    "application/n-triples": _ANY,
    "text/plain": _ANY,
    "application/ld+json": {"schema": {}},
    "application/rdf+xml": _ANY,
}
_ERRORS: dict[str, Any] = {
    "400": {"description": "Malformed request or query, or not UTF-8.", "content": _TEXT},
    "403": {"description": "An update, or a SERVICE endpoint not on the allow-list.", "content": _TEXT},
    "406": {"description": "No acceptable result format for this kind of query.", "content": _TEXT},
    "413": {"description": "The request is larger than the server accepts.", "content": _TEXT},
    "414": {"description": "The URL is longer than the server accepts.", "content": _TEXT},
    "415": {"description": "POST with an unsupported Content-Type.", "content": _TEXT},
    "500": {"description": "The query could not be evaluated.", "content": _TEXT},
    "503": {"description": "The query ran past the time limit, or the server is busy.", "content": _TEXT},
}
_OK = {
    "description": "Query results; header X-Result-Truncated tells whether the row limit cut them.",
    "headers": {
        TRUNCATED_HEADER: {"schema": {"type": "string", "enum": ["true", "false"]}},
    },
    "content": _OK_CONTENT,
}


@router.get(
    "/sparql",
    summary="SPARQL query (GET), or the service description when no query is given",
    response_class=Response,
    responses={"303": {"description": "Browsers asking for HTML are sent to the query editor."}},
    openapi_extra={
        "parameters": [
            {
                "name": "query",
                "in": "query",
                "required": False,
                "description": "A SPARQL 1.1 query. Without it, the service description is returned.",
                "schema": {"type": "string"},
            },
            *_DATASET_PARAMS,
            _FORMAT_PARAM,
        ],
        "responses": {"200": _OK, **_ERRORS},
    },
)
async def sparql_get(request: Request) -> Response:
    return await answer_query(request)


@router.post(
    "/sparql",
    summary="SPARQL query (POST, form-encoded or application/sparql-query)",
    response_class=Response,
    openapi_extra={
        "parameters": [*_DATASET_PARAMS, _FORMAT_PARAM],
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "named-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "format": {"type": "string", "enum": negotiation.format_names()},
                        },
                    }
                },
                SPARQL_QUERY: {"schema": {"type": "string"}},
            },
        },
        "responses": {"200": _OK, **_ERRORS},
    },
)
async def sparql_post(request: Request) -> Response:
    return await answer_query(request)


class QueryRoute(BaseRoute):
    """``GET`` and ``POST /sparql`` as a plain route, placed ahead of the declared ones (see :func:`install`).

    The declared routes above give the OpenAPI description; requests are answered here, where each
    costs no dependency solving, no parsing of the URL's parameters into a dict nobody reads and no
    wrapping of the handler. Profiled under load, those took a fifth of the server's time per query.
    Any other method goes on to the declared routes (405), as does every other path.
    """

    path = "/sparql"
    methods = frozenset({"GET", "POST"})

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] in self.methods:
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await answer_query(Request(scope, receive))
        await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Add ``/sparql``'s routes to ``app``: the plain one first, then the declared ones."""
    app.router.routes.insert(0, QueryRoute())
    app.include_router(router)


ALLOWED_METHODS = "GET, POST"


async def method_not_allowed() -> Response:
    """405 naming both methods: without this route the router would answer with the first route's GET only."""
    return PlainTextResponse(
        "The SPARQL endpoint answers GET and POST only; updates are not accepted.\n",
        status_code=405,
        headers={"Allow": ALLOWED_METHODS},
    )


router.add_api_route(
    "/sparql",
    method_not_allowed,
    methods=["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"],
    include_in_schema=False,
    response_class=Response,
)
