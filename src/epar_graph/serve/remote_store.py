"""An existing SPARQL engine as the store, spoken to over the SPARQL 1.1 Protocol.

A user who outgrows one process, or who already runs a triple store (Oxigraph server,
Virtuoso, Fuseki, QLever), points ``epar-graph serve --store URL`` at its query endpoint.
The routers see the same :class:`~epar_graph.serve.store.SparqlStore` as with the
embedded store, so entity pages, downloads, the UI, the row cap, the SERVICE policy and
the read-only rule (both checked before a query reaches any store) work unchanged.

What this side guarantees whatever the engine does:

* **The deadline.** Every request runs under our own clock (``asyncio.timeout`` or a
  deadline checked while the answer streams in); an engine that ignores time limits
  is cut off and the caller gets :class:`QueryTimeout`.
* **Bounded answers.** Line-based answers (TSV, N-Triples) are read one line at a time
  and the connection is dropped after ``max_rows``; other syntaxes are read up to
  ``max_answer_bytes``. A runaway result never fills memory.
* **Clear failures.** An engine that is down is :class:`EngineUnavailable` (503), one that
  answers garbage or fails is :class:`EngineFailed` (502); a query the engine refuses
  (400) is a ``SyntaxError`` (400 to the client). Never a traceback.

``/sparql`` reaches the engine through aiohttp, pages (which run in threads) through
httpx's blocking client. Measured against Oxigraph server on 127.0.0.1, one event loop
and 8 concurrent lookups: aiohttp 8,220 requests/s, httpx's async client 1,141. With
httpx, ``serve --store`` spent four fifths of its time in the client.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from urllib.parse import urlencode

import aiohttp
import httpx
import pyoxigraph

from epar_graph.namespaces import RDFS, SKOS
from epar_graph.serve.negotiation import Format
from epar_graph.serve.store import (
    EncodedResult,
    EngineFailed,
    EngineUnavailable,
    QueryResult,
    QueryTimeout,
    capped_tsv,
    decode_result,
    encode_result,
    label_rank,
)
from epar_graph.sparql_text import names_a_dataset, query_form

#: What we ask the engine for when the query's form is unknown, best first: line-based syntaxes
#: can be cut off at the row cap.
ACCEPT = ", ".join(
    (
        "text/tab-separated-values",
        "application/n-triples",
        "application/sparql-results+json;q=0.9",
        "text/turtle;q=0.8",
        "application/sparql-results+xml;q=0.7",
        "application/rdf+xml;q=0.6",
    )
)
_RESULTS = {
    "text/tab-separated-values": pyoxigraph.QueryResultsFormat.TSV,
    "application/sparql-results+json": pyoxigraph.QueryResultsFormat.JSON,
    "application/json": pyoxigraph.QueryResultsFormat.JSON,
    "application/sparql-results+xml": pyoxigraph.QueryResultsFormat.XML,
}
_GRAPHS = {
    "application/n-triples": pyoxigraph.RdfFormat.N_TRIPLES,
    "text/plain": pyoxigraph.RdfFormat.N_TRIPLES,  # N-Triples' old media type, still sent by some engines
    "text/turtle": pyoxigraph.RdfFormat.TURTLE,
    "application/rdf+xml": pyoxigraph.RdfFormat.RDF_XML,
    "application/ld+json": pyoxigraph.RdfFormat.JSON_LD,
}
#: What to ask for, by query form. SELECT answers come as TSV where the engine writes standard TSV
#: (one solution a line, so the row cap stops the reading), else as JSON.
ACCEPT_BY_FORM = {
    "SELECT": "text/tab-separated-values, application/sparql-results+json;q=0.9",
    "ASK": "application/sparql-results+json, application/sparql-results+xml;q=0.9",
    "CONSTRUCT": "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.8",
    "DESCRIBE": "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.8",
}
FORM = "application/x-www-form-urlencoded"
SELECT_AS_JSON = "application/sparql-results+json, application/sparql-results+xml;q=0.9"
#: IRIs per label look-up: small enough for any engine's query size limit.
LABEL_BATCH = 200
#: Virtuoso's answer to ASK is a one-row table with this variable, whatever was asked for.
_VIRTUOSO_ASK = "__ASK_RETVAL"


@dataclass(frozen=True)
class Dataset:
    """The graphs a query without its own ``FROM`` runs on, when the engine holds the release as named graphs.

    ``epar-graph load`` writes each dump into a graph of its own; the embedded store's default
    graph is all of them, its named graphs the link sets and the history. Sending these as the
    protocol's ``default-graph-uri``/``named-graph-uri`` gives the same dataset on any engine.
    """

    default: tuple[str, ...]
    named: tuple[str, ...]


@dataclass(frozen=True)
class _Exchange:
    """One request to the engine: the query's form, the form-encoded body and the headers."""

    form: str
    content: bytes
    headers: dict[str, str]


def _graphs_form(default: list[str], named: list[str]) -> str:
    return urlencode([("default-graph-uri", g) for g in default] + [("named-graph-uri", g) for g in named])


@dataclass(frozen=True)
class _Answer:
    result: QueryResult
    truncated: bool


class RemoteStore:
    """A SPARQL 1.1 Protocol query endpoint (``endpoint``) behind the same interface as the embedded store."""

    def __init__(
        self,
        endpoint: str,
        *,
        default_timeout: float = 30.0,
        max_answer_bytes: int = 256 << 20,
        connect_timeout: float = 5.0,
        dataset: Dataset | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"the store must be an http(s) SPARQL endpoint URL, not {endpoint!r}")
        self.endpoint = endpoint
        self.default_timeout = default_timeout
        self.max_answer_bytes = max_answer_bytes
        self._connect_timeout = connect_timeout
        self._client = httpx.Client(timeout=self._timeout(default_timeout), follow_redirects=False)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self.dataset = dataset
        # The release's graphs as form fields, encoded once: with a link set a graph, they are most of each
        # request, and encoding them per query took a tenth of the server's time.
        self._dataset_form = "&" + _graphs_form(list(dataset.default), list(dataset.named)) if dataset else ""
        #: None until the engine has answered once: then whether its TSV is the standard one
        self._standard_tsv: bool | None = None

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(self._connect_timeout, seconds))

    def _request(
        self, sparql: str, default_graph: list[str] | None, named_graphs: list[str] | None
    ) -> _Exchange:
        """The protocol request: a form POST, which every engine takes (Virtuoso 7 hangs on a bare query body)."""
        form = query_form(sparql)
        if form is None:  # the read-only rule, kept here too whatever the engine allows
            raise SyntaxError("only SELECT, ASK, CONSTRUCT and DESCRIBE queries are answered here")
        for g in [*(default_graph or []), *(named_graphs or [])]:
            pyoxigraph.NamedNode(g)  # ValueError for anything but an IRI, as the embedded store does
        body = urlencode([("query", sparql)])
        if default_graph or named_graphs:
            body += "&" + _graphs_form(default_graph or [], named_graphs or [])
        elif self.dataset is not None and not names_a_dataset(sparql):
            body += self._dataset_form
        headers = {"content-type": FORM, "accept": self._accept(form)}
        return _Exchange(form, body.encode("ascii"), headers)

    def _accept(self, form: str | None) -> str:
        if form == "SELECT" and not self._standard_tsv:
            return SELECT_AS_JSON
        return ACCEPT_BY_FORM.get(form or "", ACCEPT)

    def _learn(self, headers: Mapping[str, str]) -> None:
        """Remember whether the engine writes standard TSV (Virtuoso's is CSV-like: no term kinds)."""
        if self._standard_tsv is None:
            self._standard_tsv = not headers.get("server", "").lower().startswith("virtuoso")

    # SparqlStore ---------------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> QueryResult:
        return self._query(sparql, timeout, default_graph, named_graphs, None).result

    def describe(self, iri: str) -> list[pyoxigraph.Triple]:
        try:
            node = pyoxigraph.NamedNode(iri)
        except ValueError:
            return []
        return list(self._graph_query(f"CONSTRUCT {{ {node} ?p ?o }} WHERE {{ {node} ?p ?o }}"))

    def _graph_query(self, sparql: str) -> Iterator[pyoxigraph.Triple]:
        result = self.query(sparql)
        if not isinstance(result, pyoxigraph.QueryTriples):
            raise EngineFailed(f"the store answered a CONSTRUCT query with {type(result).__name__}")
        yield from result

    def labels(self, iris: Iterable[str]) -> dict[str, str]:
        """rdfs:label first, skos:prefLabel as fallback; within each, English, then untagged, then others."""
        nodes: list[pyoxigraph.NamedNode] = []
        for iri in dict.fromkeys(iris):
            try:
                nodes.append(pyoxigraph.NamedNode(iri))
            except ValueError:
                continue
        best: dict[str, tuple[int, int, str]] = {}
        predicates = (RDFS.label, SKOS.prefLabel)
        for start in range(0, len(nodes), LABEL_BATCH):
            values = " ".join(str(n) for n in nodes[start : start + LABEL_BATCH])
            sparql = (
                f"SELECT ?s ?p ?o WHERE {{ VALUES ?s {{ {values} }} VALUES ?p {{ {predicates[0]} {predicates[1]} }} "
                "?s ?p ?o FILTER(isLiteral(?o)) }"
            )
            solutions = self.query(sparql)
            if not isinstance(solutions, pyoxigraph.QuerySolutions):
                raise EngineFailed(f"the store answered a SELECT query with {type(solutions).__name__}")
            for row in solutions:
                s, p, o = row["s"], row["p"], row["o"]
                if not isinstance(s, pyoxigraph.NamedNode) or not isinstance(o, pyoxigraph.Literal):
                    continue
                key = (0 if p == predicates[0] else 1, label_rank(o), o.value)
                if s.value not in best or key < best[s.value]:
                    best[s.value] = key
        return {iri: key[2] for iri, key in best.items()}

    def triples(self) -> Iterator[pyoxigraph.Triple]:
        yield from self._graph_query("CONSTRUCT WHERE { ?s ?p ?o }")

    # EncodingStore -------------------------------------------------------------------------

    def query_encoded(
        self,
        sparql: str,
        *,
        result_format: str | None,
        rdf_format: Format | None,
        max_rows: int | None,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> EncodedResult:
        """:meth:`aquery_encoded` for callers outside an event loop."""
        answer = self._query(sparql, timeout, default_graph, named_graphs, max_rows)
        return _encoded(answer, result_format, rdf_format, max_rows)

    async def aquery_encoded(
        self,
        sparql: str,
        *,
        result_format: str | None,
        rdf_format: Format | None,
        max_rows: int | None,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> EncodedResult:
        """The engine's answer re-encoded in the format asked for, at most ``max_rows`` rows, within ``timeout``."""
        seconds = self.default_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(seconds):
                answer = await self._aquery(sparql, default_graph, named_graphs, max_rows)
        except TimeoutError:
            raise QueryTimeout(f"no answer from the store within {seconds:g} s") from None
        return _encoded(answer, result_format, rdf_format, max_rows)

    # the exchange --------------------------------------------------------------------------

    def _query(
        self,
        sparql: str,
        timeout: float | None,
        default_graph: list[str] | None,
        named_graphs: list[str] | None,
        max_rows: int | None,
    ) -> _Answer:
        seconds = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        exchange = self._request(sparql, default_graph, named_graphs)
        try:
            with self._client.stream(
                "POST", self.endpoint, timeout=self._timeout(seconds),
                content=exchange.content, headers=exchange.headers,
            ) as response:
                self._learn(response.headers)
                if response.status_code != 200:
                    self._check_status(response.status_code, b"".join(islice(response.iter_bytes(), 16)), sparql)
                chunks = _deadline_chunks(response.iter_bytes(), deadline, seconds)
                answer = _read_answer(_media_type(response.headers), chunks, max_rows, self.max_answer_bytes)
                return _as_asked(answer, exchange.form)
        except httpx.TimeoutException:
            raise QueryTimeout(f"no answer from the store within {seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"the store at {self.endpoint} cannot be reached ({type(exc).__name__})") from None

    async def _aquery(
        self,
        sparql: str,
        default_graph: list[str] | None,
        named_graphs: list[str] | None,
        max_rows: int | None,
    ) -> _Answer:
        """One exchange; the caller's ``asyncio.timeout`` bounds it, whatever the engine does."""
        exchange = self._request(sparql, default_graph, named_graphs)
        try:
            async with self._async_session().post(
                self.endpoint, data=exchange.content, headers=exchange.headers, allow_redirects=False
            ) as response:
                self._learn(response.headers)
                media = _media_type(response.headers)
                if response.status != 200:
                    body = await _aread_capped(response.content.iter_any(), 64 << 10)
                    self._check_status(response.status, body, sparql)
                chunks = await _aread_lines_or_bytes(response.content.iter_any(), media, max_rows,
                                                     self.max_answer_bytes)
                answer = _read_answer(media, iter(chunks), max_rows, self.max_answer_bytes)
                return _as_asked(answer, exchange.form)
        except aiohttp.ServerTimeoutError:  # the connect timeout
            waited = f"{self._connect_timeout:g} s"
            raise EngineUnavailable(f"no connection to the store at {self.endpoint} within {waited}") from None
        except aiohttp.ClientError as exc:
            raise EngineUnavailable(f"the store at {self.endpoint} cannot be reached ({type(exc).__name__})") from None

    def _async_session(self) -> aiohttp.ClientSession:
        """The connection pool of the running event loop (a pool cannot outlive the loop it was made in)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            timeout = aiohttp.ClientTimeout(total=None, connect=self._connect_timeout)
            # proxy settings from the environment, as httpx (the pages' client) takes them
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=True)
            self._session_loop = loop
        return self._session

    def _check_status(self, status: int, body: bytes, sparql: str) -> None:
        """Turn an engine's error status into ours (the first line of its message kept, for the log and the client)."""
        text = _first_line(body)
        if status == 400:  # what a SPARQL engine says of a query it cannot parse (an update, too)
            raise _syntax_error(text, sparql)
        if status in (502, 503, 504):
            raise EngineUnavailable(f"the store at {self.endpoint} is unavailable (HTTP {status}: {text})")
        raise EngineFailed(f"the store at {self.endpoint} failed (HTTP {status}: {text})")

    # lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        # the async client belongs to the server's event loop, which closes its connections with it

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading answers -----------------------------------------------------------------------


def _encoded(
    answer: _Answer, result_format: str | None, rdf_format: Format | None, max_rows: int | None
) -> EncodedResult:
    encoded = encode_result(answer.result, result_format, rdf_format, max_rows)
    return EncodedResult(encoded.kind, encoded.body, encoded.truncated or answer.truncated, encoded.path)


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _first_line(body: bytes) -> str:
    text = body[:2000].decode("utf-8", "replace").strip()
    return (text.splitlines() or ["(no message)"])[0][:300]


#: Virtuoso's report of a query it cannot compile: ``… SPARQL compiler, line N: what at 'token' before 'next'``
#: (line 0 when it cannot tell).
_VIRTUOSO_SYNTAX = re.compile(r"SPARQL compiler, line (\d+): (.*?)(?: at '(.*)' before '(.*)'| at '(.*)')?$")


def _syntax_error(message: str, sparql: str) -> SyntaxError:
    """The engine's complaint about ``sparql`` (the text it was sent), positioned as pyoxigraph positions its own.

    ``error at LINE:COLUMN: what`` is what the endpoint turns into a line, a column and a caret in
    the query as the client wrote it, so a mistake reads the same whichever store is behind it.
    Virtuoso names the line and the token it stopped at; the token is looked for on that line.
    """
    m = _VIRTUOSO_SYNTAX.search(message)
    if m is None:
        return SyntaxError(message)
    what = message[m.start(2) :]
    token, after = (m[3], m[4]) if m[3] is not None else (m[5], None)
    lines = sparql.split("\n")
    line = int(m[1])
    if not token or not 1 <= line <= len(lines):
        return SyntaxError(what)
    column = _find_token(lines[line - 1], token, after)
    return SyntaxError(what if column is None else f"error at {line}:{column + 1}: {what}")


def _find_token(text: str, token: str, after: str | None) -> int | None:
    """Where ``token`` stands in ``text``: before ``after`` if it is there too, else its first occurrence."""
    if after:
        found = re.search(re.escape(token) + r"\s*" + re.escape(after), text)
        if found is not None:
            return found.start()
    index = text.find(token)
    return index if index >= 0 else None


def _deadline_chunks(chunks: Iterator[bytes], deadline: float, seconds: float) -> Iterator[bytes]:
    """The chunks of a streamed answer, cut off at the deadline (an engine that trickles is still stopped)."""
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise QueryTimeout(f"no complete answer from the store within {seconds:g} s")
        yield chunk


async def _aread_capped(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(parts)[:limit]


async def _aread_lines_or_bytes(
    chunks: AsyncIterator[bytes], media: str, max_rows: int | None, max_bytes: int
) -> list[bytes]:
    """Read what :func:`_read_answer` needs and no more: ``max_rows`` + 2 lines of a line-based answer."""
    parts: list[bytes] = []
    size = 0
    lines = 0
    line_cap = max_rows + 2 if max_rows is not None and media in _LINE_BASED else None
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if line_cap is not None:
            lines += chunk.count(b"\n")
            if lines >= line_cap:
                break
        if size > max_bytes:
            break
    return parts


_LINE_BASED = {"text/tab-separated-values", "application/n-triples", "text/plain"}


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _read_answer(media: str, chunks: Iterator[bytes], max_rows: int | None, max_bytes: int) -> _Answer:
    """Parse the engine's answer, keeping at most ``max_rows`` rows or triples.

    A parse error is raised outside its ``except``: the error's frames hold pyoxigraph objects
    that must not outlive this call (they may only be dropped on the thread that made them).
    """
    if media not in _RESULTS and media not in _GRAPHS and media not in _LINE_BASED:
        raise EngineFailed(f"the store answered with {media or 'no media type'}, which is not a SPARQL answer")
    why = ""
    try:
        if media in _LINE_BASED and max_rows is not None:
            return _read_lines(media, chunks, max_rows)
        body = _capped(chunks, max_bytes)
        if media in _RESULTS:
            return _checked(pyoxigraph.parse_query_results(body, _RESULTS[media]), max_rows)
        return _graph([q.triple for q in pyoxigraph.parse(body, _GRAPHS[media])])
    except SyntaxError as exc:
        why = _first_line(str(exc).encode())
    raise EngineFailed(f"the store's answer is not valid {media}: {why}")


def _read_lines(media: str, chunks: Iterator[bytes], max_rows: int) -> _Answer:
    lines = _lines(chunks)
    if media == "text/tab-separated-values":
        kept = list(islice(lines, max_rows + 2))  # the header, max_rows rows, and one to tell
        truncated = len(kept) > max_rows + 1 and kept[-1].strip() != b""
        body = b"\n".join(kept[: max_rows + 1]) + b"\n"
        answer = _checked(pyoxigraph.parse_query_results(body, pyoxigraph.QueryResultsFormat.TSV), max_rows)
        return _Answer(answer.result, truncated or answer.truncated)
    kept = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith(b"#"):
            kept.append(line)
            if len(kept) > max_rows:
                break
    triples = [q.triple for q in pyoxigraph.parse(b"\n".join(kept[:max_rows]) + b"\n", pyoxigraph.RdfFormat.N_TRIPLES)]
    answer = _graph(triples)
    return _Answer(answer.result, len(kept) > max_rows)


def _as_asked(answer: _Answer, form: str | None) -> _Answer:
    """An ASK answered as a table (Virtuoso: one row for true, none for false) turned into its boolean."""
    result = answer.result
    if form != "ASK" or not isinstance(result, pyoxigraph.QuerySolutions):
        return answer
    names = [v.value for v in result.variables]
    rows = list(result)
    if names != [_VIRTUOSO_ASK] or len(rows) > 1:
        raise EngineFailed("the store answered an ASK query with a table")
    # no row is false; one row holds 1 or 0
    cell = rows[0][0] if rows else None
    value = isinstance(cell, pyoxigraph.Literal) and cell.value.strip().lower() in ("1", "true")
    return _Answer(pyoxigraph.parse_query_results(f'{{"head":{{}},"boolean":{"true" if value else "false"}}}'.encode(),
                                                  pyoxigraph.QueryResultsFormat.JSON), False)


def _checked(result: QueryResult, max_rows: int | None) -> _Answer:
    """The parsed answer, read to its end now: pyoxigraph parses solutions lazily, and a broken row
    must be the engine's fault here, not a surprise for whoever iterates the result later.
    Booleans come back in their canonical form (``true``/``false``), as the release wrote them."""
    if not isinstance(result, pyoxigraph.QuerySolutions):
        return _Answer(result, False)
    tsv, truncated = capped_tsv(result, max_rows if max_rows is not None else 1 << 62)
    tsv = _BOOLEAN_CELL.sub(lambda m: b'"true"' if m[1] == b"1" else b'"false"', tsv)
    return _Answer(pyoxigraph.parse_query_results(tsv, pyoxigraph.QueryResultsFormat.TSV), truncated)


#: A boolean written as 1 or 0 (Virtuoso stores booleans as integers): a TSV cell, where each term is
#: in Turtle syntax, so the pattern cannot match inside another term.
_BOOLEAN_CELL = re.compile(rb'(?<![^\t\n])"([01])"(?=\^\^<http://www\.w3\.org/2001/XMLSchema#boolean>(?:\t|\n|$))')


def _capped(chunks: Iterator[bytes], max_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise EngineFailed(f"the store's answer is larger than {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _graph(triples: list[pyoxigraph.Triple]) -> _Answer:
    body = pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""
    return _Answer(decode_result(EncodedResult("graph", body)), False)
