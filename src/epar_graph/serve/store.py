"""The one small interface between the web layer and the triple store.

The server only talks to a :class:`SparqlStore`. The embedded
:class:`OxigraphStore` implements it today; a remote SPARQL 1.1 store (Oxigraph
server, Fuseki, Virtuoso, QLever) can implement the same four methods later
without touching the routers.

How the embedded store works, and why:

* **Loading.** The dump (``epar.nt`` or ``epar.nt.gz``) and every
  ``links-*.nt`` file are bulk-loaded into an on-disk store under
  ``<store_dir>/<sha256 of the inputs>/``. The load happens in a temporary
  directory that is renamed into place only when complete, so a crash or a
  concurrent start never leaves a half-built store behind, and an unchanged
  dump is never loaded twice. All triples are in the default graph; each links
  file is also kept as a named graph (:func:`graph_iri`) so that
  ``named-graph-uri``/``GRAPH`` can select one link set.
* **Querying.** pyoxigraph cannot interrupt a running query, so SPARQL
  queries run in a small pool of worker *processes*, each with its own
  read-only handle on the store. A query that passes its deadline gets its
  worker killed and replaced; the caller gets :class:`QueryTimeout` at once.
  The workers are persistent, so a fast lookup costs one pipe round trip.
  A query still running after a fraction of a second moves to a slow lane
  (see :class:`WorkerPool`), so cheap queries never queue behind it.
* **Encoding.** Workers serialise the answer themselves (:func:`encode_result`)
  and stop evaluating after ``max_rows``, so a huge result never crosses the
  pipe or fills memory. An answer over :data:`INLINE_ANSWER_BYTES` is written
  to a file that the web layer streams, so the server never holds it whole.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import gc
import gzip
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast, runtime_checkable

import pyoxigraph

from epar_graph.files import sha256_file
from epar_graph.namespaces import PREFIXES, RDFS, SKOS
from epar_graph.release import DUMP_NAMES, find_dump
from epar_graph.serve.negotiation import Format

log = logging.getLogger(__name__)

#: What a SPARQL query returns: solutions (SELECT), a boolean (ASK) or triples (CONSTRUCT/DESCRIBE).
QueryResult = pyoxigraph.QuerySolutions | pyoxigraph.QueryBoolean | pyoxigraph.QueryTriples


class QueryTimeout(Exception):
    """The query ran past its time limit and was stopped."""


class ServerBusy(QueryTimeout):
    """Every query worker stayed busy until the query's time limit."""


class QueryFailed(Exception):
    """A well-formed query could not be evaluated (e.g. a failing SERVICE call, a crashed worker)."""


class EngineUnavailable(QueryFailed):
    """An engine behind the server (``serve --store``) cannot be reached or is unavailable: 503."""


class EngineFailed(QueryFailed):
    """An engine behind the server answered with an error, or with something that is not a SPARQL answer: 502."""


class StoreError(Exception):
    """The data directory cannot be turned into a store (missing or malformed dump)."""


class SparqlStore(Protocol):
    def query(
        self,
        sparql: str,
        *,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> QueryResult:
        """Run a read-only query; raise ``SyntaxError`` for a malformed one, QueryTimeout when too slow."""
        ...

    def describe(self, iri: str) -> list[pyoxigraph.Triple]:
        """Every triple whose subject is ``iri`` (empty when the IRI is unknown)."""
        ...

    def labels(self, iris: Iterable[str]) -> dict[str, str]:
        """An rdfs:label (or skos:prefLabel) for each IRI that has one, English preferred."""
        ...

    def triples(self) -> Iterator[pyoxigraph.Triple]:
        """All triples of the default graph (for dumps and tests)."""
        ...


# --- encoding results ---------------------------------------------------------------------

ResultKind = Literal["solutions", "boolean", "graph"]

#: ``format`` names (:class:`~epar_graph.serve.negotiation.Format` for graphs) → pyoxigraph formats.
RESULT_FORMATS: dict[str, pyoxigraph.QueryResultsFormat] = {
    "json": pyoxigraph.QueryResultsFormat.JSON,
    "xml": pyoxigraph.QueryResultsFormat.XML,
    "csv": pyoxigraph.QueryResultsFormat.CSV,
    "tsv": pyoxigraph.QueryResultsFormat.TSV,
}
RDF_FORMATS: dict[Format, pyoxigraph.RdfFormat] = {
    Format.TURTLE: pyoxigraph.RdfFormat.TURTLE,
    Format.NTRIPLES: pyoxigraph.RdfFormat.N_TRIPLES,
    Format.JSONLD: pyoxigraph.RdfFormat.JSON_LD,
    Format.RDFXML: pyoxigraph.RdfFormat.RDF_XML,
}


@dataclass(frozen=True)
class EncodedResult:
    """A serialised query answer.

    ``body`` is None when the caller offered no format for this kind of result
    (the web layer turns that into 406); ``truncated`` is True when rows or
    triples beyond ``max_rows`` were dropped. A long answer may come as a file
    instead (``path``, with ``body`` None), written by the worker for the web
    layer to stream and delete.
    """

    kind: ResultKind
    body: bytes | None
    truncated: bool = False
    path: str | None = None


@runtime_checkable
class EncodingStore(Protocol):
    """A store that hands back serialised answers directly, without blocking the event loop.

    It skips a decode/encode round and ties up no thread while a query runs.
    """

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
    ) -> EncodedResult: ...


class _Enough(Exception):
    """Raised from inside pyoxigraph's serialiser to stop evaluation at the row cap."""


class _LineCapWriter:
    """A binary sink that aborts the writer once more than ``max_lines`` lines arrived.

    SPARQL TSV puts exactly one solution per line (newlines inside literals are
    escaped), so counting lines counts rows, and raising here stops pyoxigraph
    from evaluating the rest of the query.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.parts: list[bytes] = []
        self.lines = 0

    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.lines += chunk.count(b"\n")
        if self.lines > self.max_lines:
            raise _Enough
        return len(chunk)

    def flush(self) -> None:
        return None


def capped_tsv(solutions: pyoxigraph.QuerySolutions, max_rows: int) -> tuple[bytes, bool]:
    """SPARQL TSV of at most ``max_rows`` solutions, and whether more existed.

    TSV is the lossless interchange here: every RDF term is written in Turtle
    syntax, so :func:`pyoxigraph.parse_query_results` gives back the same terms.
    """
    writer = _LineCapWriter(max_rows + 1)  # the header line, then max_rows rows
    truncated = False
    try:
        solutions.serialize(cast(IO[bytes], writer), pyoxigraph.QueryResultsFormat.TSV)
    except _Enough:
        truncated = True
    data = b"".join(writer.parts)
    if truncated:
        data = b"".join(line + b"\n" for line in data.split(b"\n", max_rows + 1)[: max_rows + 1])
    return data, truncated


def encode_result(
    result: QueryResult,
    result_format: str | None,
    rdf_format: Format | None,
    max_rows: int | None = None,
) -> EncodedResult:
    """Serialise ``result`` in the format named for its kind, keeping at most ``max_rows`` rows/triples."""
    if isinstance(result, pyoxigraph.QueryBoolean):
        if result_format is None:
            return EncodedResult("boolean", None)
        return EncodedResult("boolean", _bytes(result.serialize(format=RESULT_FORMATS[result_format])))
    if isinstance(result, pyoxigraph.QuerySolutions):
        if result_format is None:
            return EncodedResult("solutions", None)
        fmt = RESULT_FORMATS[result_format]
        if max_rows is None:
            return EncodedResult("solutions", _bytes(result.serialize(format=fmt)))
        tsv, truncated = capped_tsv(result, max_rows)
        if result_format == "tsv":
            return EncodedResult("solutions", tsv, truncated)
        reparsed = pyoxigraph.parse_query_results(tsv, pyoxigraph.QueryResultsFormat.TSV)
        return EncodedResult("solutions", _bytes(reparsed.serialize(format=fmt)), truncated)
    if rdf_format is None:
        return EncodedResult("graph", None)
    if max_rows is None:
        triples = list(result)
        truncated = False
    else:
        triples = list(islice(result, max_rows + 1))
        truncated = len(triples) > max_rows
        del triples[max_rows:]
    return EncodedResult("graph", serialize_triples(triples, rdf_format), truncated)


def serialize_triples(triples: Iterable[pyoxigraph.Triple], rdf_format: Format) -> bytes:
    """Triples in one of :data:`RDF_FORMATS`, with the project's prefixes where the syntax has them."""
    fmt = RDF_FORMATS[rdf_format]
    prefixes = dict(PREFIXES) if rdf_format in (Format.TURTLE, Format.RDFXML) else None
    return _bytes(pyoxigraph.serialize(triples, format=fmt, prefixes=prefixes))


def _bytes(data: bytes | None) -> bytes:
    if data is None:  # pyoxigraph returns None only when given an output; never here
        raise RuntimeError("serialiser returned no bytes")
    return data


def decode_result(encoded: EncodedResult) -> QueryResult:
    """Turn a TSV/N-Triples :class:`EncodedResult` back into pyoxigraph result objects."""
    if encoded.body is None:
        raise ValueError("nothing to decode")
    if encoded.kind == "graph":
        # QueryTriples cannot be built directly; a throw-away in-memory store yields one.
        scratch = pyoxigraph.Store()
        scratch.load(encoded.body, pyoxigraph.RdfFormat.N_TRIPLES)
        result = scratch.query("CONSTRUCT WHERE { ?s ?p ?o }")
        return result
    return pyoxigraph.parse_query_results(encoded.body, pyoxigraph.QueryResultsFormat.TSV)


# --- building the on-disk store -----------------------------------------------------------

#: Bumped whenever the loading scheme changes, so stale stores are not reused.
LAYOUT_VERSION = "1"
INFO_FILE = "epar-store.json"


def graph_iri(base: str, stem: str) -> str:
    """The named graph holding one links file: ``<base>graph/links-wikidata``."""
    return f"{base}graph/{stem}"


def no_dump(data_dir: Path) -> StoreError:
    """The error for a directory that holds no build (see :func:`epar_graph.release.find_dump`)."""
    return StoreError(f"{data_dir}: no {' or '.join(DUMP_NAMES)} found (run `epar-graph build` first)")


def link_files(data_dir: Path) -> list[Path]:
    """The ``links-*.nt(.gz)`` files of a build directory, in a stable order."""
    return sorted(p for p in data_dir.glob("links-*.nt*") if p.is_file() and p.name.endswith((".nt", ".nt.gz")))


#: The history dump of a build (changes between EMA's exports), kept as its own named graph too.
CHANGES_DUMP = "changes.nt"


def graph_files(data_dir: Path) -> list[Path]:
    """The dumps beside the main one that the store holds as named graphs: link sets, history."""
    changes = data_dir / CHANGES_DUMP
    return [*link_files(data_dir), *([changes] if changes.is_file() else [])]




def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nt.gz", ".nt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def store_key(files: list[Path], base: str) -> str:
    """A digest of everything that decides the store's content."""
    digest = hashlib.sha256(f"layout={LAYOUT_VERSION}\nbase={base}\n".encode())
    for path in files:
        digest.update(f"{path.name}={sha256_file(path)}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StoreInfo:
    """What was loaded, recorded next to the store so startup needs no counting."""

    path: Path
    sources: tuple[str, ...]
    triples: int
    named_graphs: dict[str, int]


def ensure_store(data_dir: Path, store_root: Path, base: str) -> StoreInfo:
    """The on-disk store for ``data_dir``'s dump, loading it first if it is new or changed."""
    dump = find_dump(data_dir)
    if dump is None:
        raise no_dump(data_dir)
    files = [dump, *graph_files(data_dir)]
    key = store_key(files, base)
    target = store_root / key
    if not (target / INFO_FILE).is_file():
        if target.exists():  # damaged from outside (we only ever rename complete stores into place)
            shutil.rmtree(target, ignore_errors=True)
        _build_store(files, store_root, target, base)
        _prune(store_root, keep=KEEP_STORES)
    return _read_info(target)


#: Stores kept per data directory: the current one and its predecessor (a server may still use it).
KEEP_STORES = 2


def _prune(store_root: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently built stores, so rebuilds do not fill the disk."""
    stores = [p for p in store_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    stores.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in stores[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _build_store(files: list[Path], store_root: Path, target: Path, base: str) -> None:
    store_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name[:12]}-", dir=store_root))
    try:
        store = pyoxigraph.Store(str(tmp))
        named: dict[str, int] = {}
        for path in files:
            _bulk_load(store, path, None)
            if path.name.startswith("links-") or path.name == CHANGES_DUMP:
                iri = graph_iri(base, _stem(path))
                _bulk_load(store, path, pyoxigraph.NamedNode(iri))
                named[iri] = _count(store, f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}")
        triples = _count(store, "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")
        store.optimize()
        store.flush()
        info = {"sources": [p.name for p in files], "triples": triples, "named_graphs": named}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
        del store
        gc.collect()  # the store closes when the last reference goes; do it before the rename
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / INFO_FILE).is_file():  # someone else's half-built store: not ours to judge
                raise
            # another server finished the same store first; use theirs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bulk_load(store: pyoxigraph.Store, path: Path, graph: pyoxigraph.NamedNode | None) -> None:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                store.bulk_load(cast(IO[bytes], fh), pyoxigraph.RdfFormat.N_TRIPLES, to_graph=graph)
        else:
            store.bulk_load(path=str(path), format=pyoxigraph.RdfFormat.N_TRIPLES, to_graph=graph)
    except SyntaxError as exc:
        raise StoreError(f"{path}: not valid N-Triples: {exc}") from None
    except (OSError, EOFError) as exc:
        raise StoreError(f"{path}: cannot be read: {exc}") from None


def _count(store: pyoxigraph.Store, sparql: str) -> int:
    result = store.query(sparql)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    for row in result:
        term = row[0]
        return int(term.value) if isinstance(term, pyoxigraph.Literal) else 0
    return 0


def _read_info(path: Path) -> StoreInfo:
    data = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
    return StoreInfo(
        path=path,
        sources=tuple(data["sources"]),
        triples=int(data["triples"]),
        named_graphs={str(k): int(v) for k, v in data["named_graphs"].items()},
    )


# --- query worker processes ---------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    sparql: str
    result_format: str | None
    rdf_format: Format | None
    max_rows: int | None
    default_graph: list[str] | None
    named_graphs: list[str] | None
    spool_dir: str | None = None  # where a long answer may be written as a file


#: Answers longer than this are handed over as a file (see EncodedResult.path) when the caller accepts one.
INLINE_ANSWER_BYTES = 256 * 1024
_spooled = 0


def _spool(encoded: EncodedResult, spool_dir: str | None) -> EncodedResult:
    """A long answer written to a file named after this process (so a killed worker's leftovers are found)."""
    global _spooled
    if spool_dir is None or encoded.body is None or len(encoded.body) <= INLINE_ANSWER_BYTES:
        return encoded
    _spooled += 1
    path = os.path.join(spool_dir, f"{os.getpid()}-{_spooled}.answer")
    with open(path, "wb") as fh:
        fh.write(encoded.body)
    return EncodedResult(encoded.kind, None, encoded.truncated, path=path)


class AnswerCache:
    """Recent answers of one store, by request, bounded in bytes (least recently used go first).

    A release never changes, so an answer stays right for the life of the store it
    came from; a new release gets a new store and so an empty cache. A repeated
    query (an example, a page's lookup, a client polling) then costs no trip to a
    worker. Answers handed over as files, errors and timeouts are not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self._size = 0
        self._answers: collections.OrderedDict[tuple[object, ...], EncodedResult] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(request: _Request) -> tuple[object, ...]:
        graphs = tuple(request.default_graph) if request.default_graph is not None else None
        named = tuple(request.named_graphs) if request.named_graphs is not None else None
        return (request.sparql, request.result_format, request.rdf_format, request.max_rows, graphs, named)

    def get(self, key: tuple[object, ...]) -> EncodedResult | None:
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                self.hits += 1
            return found

    @staticmethod
    def _cost(key: tuple[object, ...], encoded: EncodedResult) -> int:
        return len(encoded.body or b"") + len(str(key[0]))

    def put(self, key: tuple[object, ...], encoded: EncodedResult) -> None:
        if encoded.path is not None or encoded.body is None or self._cost(key, encoded) > self.max_bytes // 16:
            return
        with self._lock:
            if key in self._answers:
                return
            self._answers[key] = encoded
            self._size += self._cost(key, encoded)
            while self._size > self.max_bytes:
                old_key, old = self._answers.popitem(last=False)
                self._size -= self._cost(old_key, old)


#: Bytes of answers each store keeps for repeated queries (see :class:`AnswerCache`).
ANSWER_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Reply:
    encoded: EncodedResult | None = None
    error: str | None = None  # "syntax", "value" or "failed"
    message: str = ""


#: Stack of the thread that runs each query in a worker. pyoxigraph recurses once per level of the query's
#: tree: on the 8 MB main stack, 2,700 chained MINUS or 8,200 objects of one subject kill the worker; on
#: 256 MB no chain within ``querycheck.MAX_TERMS`` comes near that. Pages are only touched when used.
QUERY_STACK_BYTES = 256 * 1024 * 1024


def _on_big_stack(body: Callable[[], None]) -> None:
    """Run ``body`` in a thread with a :data:`QUERY_STACK_BYTES` stack (on this one if no such stack can be had).

    A worker runs all its queries on that one thread: a thread made per query
    cost a tenth of a cheap lookup. The stack's pages are only touched by deep
    queries, and stay the worker's until it ends (at most the stack's size).
    """
    try:
        previous = threading.stack_size(QUERY_STACK_BYTES)
        try:
            thread = threading.Thread(target=body, name="epar-query")
            thread.start()
        finally:
            threading.stack_size(previous)
    except (RuntimeError, ValueError, MemoryError):
        body()
        return
    thread.join()


def _worker_main(conn: Connection, store_path: str) -> None:
    """Body of a query worker: open the store read-only, then answer requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        store = pyoxigraph.Store.read_only(store_path)
    except OSError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    _on_big_stack(lambda: _answer(conn, store))


def _answer(conn: Connection, store: pyoxigraph.Store) -> None:
    """Answer requests from ``conn`` until it closes or sends ``None``."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        conn.send(_execute(store, request))


def _execute(store: pyoxigraph.Store, request: _Request) -> _Reply:
    try:
        result = store.query(
            request.sparql,
            default_graph=_graph_nodes(request.default_graph),
            named_graphs=_named_nodes(request.named_graphs),
        )
        encoded = encode_result(result, request.result_format, request.rdf_format, request.max_rows)
        del result
        return _Reply(_spool(encoded, request.spool_dir))
    except SyntaxError as exc:
        return _Reply(error="syntax", message=str(exc))
    except ValueError as exc:
        return _Reply(error="value", message=str(exc))
    except (OSError, RuntimeError) as exc:
        return _Reply(error="failed", message=str(exc))


_GraphName = pyoxigraph.NamedNode | pyoxigraph.BlankNode | pyoxigraph.DefaultGraph


def _graph_nodes(iris: list[str] | None) -> list[_GraphName] | None:
    return None if iris is None else [pyoxigraph.NamedNode(i) for i in iris]


def _named_nodes(iris: list[str] | None) -> list[pyoxigraph.NamedNode | pyoxigraph.BlankNode] | None:
    return None if iris is None else [pyoxigraph.NamedNode(i) for i in iris]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection


#: A thread waiting for a worker (no loop, a concurrent future) or a coroutine (its loop, an asyncio future).
_Waiter = (
    tuple[None, "concurrent.futures.Future[_Worker]"]
    | tuple[asyncio.AbstractEventLoop, "asyncio.Future[_Worker]"]
)


_COMMENT_OR_SPACE = re.compile(r"#[^\n\r]*|\s+")
_LITERAL_OR_NUMBER = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b')


class _Costs:
    """The keys a query's cost is remembered by, each computed at most once and only when needed."""

    def __init__(self, sparql: str) -> None:
        self._sparql = sparql

    @functools.cached_property
    def text(self) -> str:
        """The text, comments and spacing aside."""
        text = " ".join(_COMMENT_OR_SPACE.sub(" ", self._sparql).split())
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    @functools.cached_property
    def shape(self) -> str:
        """The text with its literals and numbers blanked: runaway texts that differ only there share it."""
        text = _LITERAL_OR_NUMBER.sub("0", _COMMENT_OR_SPACE.sub(" ", self._sparql))
        return hashlib.sha256(" ".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()


def _worker_context() -> ForkServerContext | SpawnContext:
    """How workers are started: forked from a server process that has imported this module once.

    A worker start costs ~40 ms (opening the store) instead of ~250 ms for a fresh interpreter that
    imports everything again; lanes start one worker per long query, so this is paid often. Where
    forkserver is not available, workers are spawned.
    """
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return cast(SpawnContext, multiprocessing.get_context("spawn"))
    ctx.set_forkserver_preload([__name__])
    return cast(ForkServerContext, ctx)


class WorkerPool:
    """Persistent worker processes, each with a read-only handle on one store, in two lanes.

    A worker whose query passes the deadline is killed (SIGKILL: a query in
    native code ignores anything gentler) and a fresh one is started in the
    background, so the pool heals itself without delaying the caller.

    **Lanes.** Every query starts on one of ``size`` fast workers. A query
    still running after ``fast_lane_seconds`` is *demoted*: its worker leaves
    the fast lane, with its query still running, for the slow lane (at most
    ``slow_slots`` workers, at a lower CPU priority), and a fresh worker takes
    its place in the fast lane. A demoted worker is never reused: it is
    stopped when its query ends, so it costs one worker start, as a timeout
    does. When the slow lane is full the query gets ``BUSY_GRACE`` times its
    fast-lane time to answer or find a free slot, and is then stopped
    (:class:`ServerBusy`). So cheap queries wait at most ``fast_lane_seconds``
    behind an expensive one, instead of its whole time limit. pyoxigraph can
    neither cancel nor pause a query, which rules out cheaper ways to move one
    aside. ``slow_slots=0`` turns lanes off.
    """

    STARTUP_TIMEOUT = 60.0
    #: Added to a demoted worker's nice value (capped at 19), so the fast lane keeps the CPU under contention.
    SLOW_NICE = 19
    #: How many slow query texts are remembered (least recently seen forgotten first).
    #: A query is remembered as slow when it is still running this long after it started (in the slow lane).
    REMEMBER_AFTER = 1.0
    #: A query past fast_lane_seconds that finds the slow lane full may run this many times as long before
    #: 503: a cheap query slowed down by contention still answers.
    BUSY_GRACE = 2.0
    REMEMBERED_QUERIES = 4096
    #: Slow texts of one shape (differing only in literals and numbers) after which its next text starts in
    #: the slow lane too; a fast answer of that shape clears the count.
    SHAPE_STRIKES = 2

    def __init__(self, store_path: Path, size: int, *, slow_slots: int = 0, fast_lane_seconds: float = 0.25) -> None:
        self.store_path = store_path
        self.size = size
        self.slow_slots = slow_slots
        self.fast_lane_seconds = fast_lane_seconds
        self.spool_dir = tempfile.mkdtemp(prefix="epar-answers-")
        self._slow: set[int] = set()
        self._slow_keys: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._slow_shapes: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.demotions = 0
        self._ctx = _worker_context()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._all: set[int] = set()
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = False
        starting = [self._start() for _ in range(size)]
        for worker in starting:
            self._await_ready(worker)
            self._idle.put(worker)

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, args=(child, str(self.store_path)), name="epar-query-worker", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        with self._lock:
            self._workers[id(worker)] = worker
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        if not worker.conn.poll(self.STARTUP_TIMEOUT):
            self._kill(worker)
            raise StoreError(f"{self.store_path}: query worker did not start within {self.STARTUP_TIMEOUT:.0f} s")
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            message = ("error", "worker exited during startup")
        if message[0] != "ready":
            self._kill(worker)
            raise StoreError(f"{self.store_path}: query worker could not open the store: {message[1]}")

    def _grace_end(self, started: float, deadline: float) -> float:
        """When a query that found the slow lane full is stopped, unless it answered or a slot came free."""
        return min(deadline, started + self.fast_lane_seconds * self.BUSY_GRACE)

    def _lane_end(self, started: float, deadline: float) -> float:
        """When a query started at ``started`` leaves the fast lane (the deadline itself without lanes)."""
        return min(deadline, started + self.fast_lane_seconds) if self.slow_slots > 0 else deadline

    def run(self, request: _Request, timeout: float) -> _Reply:
        """Send ``request`` to a fast worker and wait at most ``timeout`` seconds in all.

        Blocking: call it from a worker thread, never from the event loop (use :meth:`arun` there).
        """
        deadline = time.monotonic() + timeout
        costs = _Costs(request.sparql)
        known_slow = self._known_slow(costs)
        worker = self._acquire(timeout)
        if known_slow and not self._demote(worker):
            self._release(worker)
            raise self._busy()
        started = time.monotonic()
        try:
            worker.conn.send(request)
            lane_end = deadline if known_slow else self._lane_end(started, deadline)
            ready = worker.conn.poll(max(lane_end - time.monotonic(), 0.0))
            if not ready and lane_end < deadline and not self._demote(worker):  # slow lane full: a little grace
                ready = worker.conn.poll(max(self._grace_end(started, deadline) - time.monotonic(), 0.0))
                if not ready and not self._demote(worker):
                    self._discard(worker)
                    raise self._busy()
            if not ready and lane_end < deadline:  # demoted: still running a second later, it is remembered
                ready = worker.conn.poll(max(min(deadline, started + self.REMEMBER_AFTER) - time.monotonic(), 0.0))
                if not ready:
                    self._remember_slow(costs)
                    ready = worker.conn.poll(max(deadline - time.monotonic(), 0.0))
            if not ready:
                self._discard(worker)
                raise QueryTimeout(f"it ran longer than the {timeout:g} s limit")
            reply: _Reply = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._discard(worker)
            raise QueryFailed("the query worker stopped unexpectedly (out of memory?)") from None
        self._finish(worker, costs, time.monotonic() - started)
        return reply

    async def arun(self, request: _Request, timeout: float) -> _Reply:
        """:meth:`run` for the event loop: no thread is tied up while the worker computes."""
        deadline = time.monotonic() + timeout
        costs = _Costs(request.sparql)
        known_slow = self._known_slow(costs)
        worker = await self._acquire_async(timeout)
        if known_slow and not self._demote(worker):
            self._release(worker)
            raise self._busy()
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            worker.conn.send(request)
            ready: asyncio.Future[None] = loop.create_future()
            fd = worker.conn.fileno()
            loop.add_reader(fd, _wake, ready)
            slow_lane_full = False
            try:
                lane_end = deadline if known_slow else self._lane_end(started, deadline)
                await asyncio.wait({ready}, timeout=max(lane_end - time.monotonic(), 0.0))
                if not ready.done() and lane_end < deadline and not self._demote(worker):
                    grace = self._grace_end(started, deadline)  # slow lane full: a little grace
                    await asyncio.wait({ready}, timeout=max(grace - time.monotonic(), 0.0))
                    slow_lane_full = not ready.done() and not self._demote(worker)
                if not ready.done() and lane_end < deadline and not slow_lane_full:
                    remember = min(deadline, started + self.REMEMBER_AFTER)  # demoted, still running: remembered
                    await asyncio.wait({ready}, timeout=max(remember - time.monotonic(), 0.0))
                    if not ready.done():
                        self._remember_slow(costs)
                        await asyncio.wait({ready}, timeout=max(deadline - time.monotonic(), 0.0))
            finally:  # before any kill closes the pipe, whose fd number a new worker may then reuse
                loop.remove_reader(fd)
                os.set_blocking(fd, True)  # uvloop leaves watched fds non-blocking; recv needs blocking reads
            if slow_lane_full:
                self._discard(worker)
                raise self._busy()
            if not ready.done():
                self._discard(worker)
                raise QueryTimeout(f"it ran longer than the {timeout:g} s limit")
            reply: _Reply = worker.conn.recv()
        except (EOFError, OSError):
            self._discard(worker)
            raise QueryFailed("the query worker stopped unexpectedly (out of memory?)") from None
        except QueryTimeout:
            raise
        except BaseException:  # cancelled mid-query: the worker's answer would arrive for nobody
            self._discard(worker)
            raise
        self._finish(worker, costs, time.monotonic() - started)
        return reply

    # Lanes: a worker is in the fast lane unless its id is in self._slow.

    def _demote(self, worker: _Worker) -> bool:
        """Move a long-running query's worker to the slow lane; False when that is full."""
        with self._lock:
            if len(self._slow) >= self.slow_slots:
                return False
            self._slow.add(id(worker))
            self.demotions += 1
        pid = worker.process.pid
        if pid is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + self.SLOW_NICE))
        if not self._closed:  # the fast lane gets a fresh worker right away
            threading.Thread(target=self._refill, name="epar-worker-refill", daemon=True).start()
        return True

    def _busy(self) -> ServerBusy:
        return ServerBusy(
            f"it ran past {self.fast_lane_seconds:g} s while {self.slow_slots} long queries were already running"
        )

    # Remembered costs: a query text (comments and spacing aside) that ran for REMEMBER_AFTER seconds in
    # the slow lane starts there next time, or is refused at once when that is full, instead of spending
    # another fast_lane_seconds of a fast worker first. One that then answers quickly is forgotten again.

    def _known_slow(self, costs: _Costs) -> bool:
        """Slow before: this very text, or texts of its shape at least :data:`SHAPE_STRIKES` times."""
        if self.slow_slots <= 0 or not (self._slow_keys or self._slow_shapes):  # nothing remembered: no hashing
            return False
        with self._lock:
            if costs.text in self._slow_keys:
                self._slow_keys.move_to_end(costs.text)
            elif self._slow_shapes.get(costs.shape, 0) >= self.SHAPE_STRIKES:
                self._slow_shapes.move_to_end(costs.shape)
            else:
                return False
            if len(self._slow) >= self.slow_slots:
                raise self._busy()
        return True

    def _remember_slow(self, costs: _Costs) -> None:
        with self._lock:
            self._slow_keys[costs.text] = None
            self._slow_keys.move_to_end(costs.text)
            self._slow_shapes[costs.shape] = self._slow_shapes.get(costs.shape, 0) + 1
            self._slow_shapes.move_to_end(costs.shape)
            for remembered in (self._slow_keys, self._slow_shapes):
                while len(remembered) > self.REMEMBERED_QUERIES:
                    remembered.popitem(last=False)

    def _finish(self, worker: _Worker, costs: _Costs, seconds: float) -> None:
        """A query ended with an answer: a fast worker serves the next one, a demoted one is stopped."""
        if seconds < self.fast_lane_seconds and (self._slow_keys or self._slow_shapes):
            with self._lock:
                self._slow_keys.pop(costs.text, None)
                self._slow_shapes.pop(costs.shape, None)  # a fast one clears its shape
        with self._lock:
            demoted = id(worker) in self._slow
            self._slow.discard(id(worker))
        if demoted:
            self._kill(worker)  # its replacement is already in the fast lane
        else:
            self._release(worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker whose query failed or ran out of time; replace it unless it was demoted."""
        with self._lock:
            demoted = id(worker) in self._slow
            self._slow.discard(id(worker))
        if demoted:
            self._kill(worker)
        else:
            self._replace(worker)

    def slow(self) -> int:
        """How many demoted queries are running (for tests and diagnostics)."""
        with self._lock:
            return len(self._slow)

    # Waiting for a worker: one FIFO of waiters, threads and coroutines alike, so neither kind
    # starves the other. A released worker goes to the oldest live waiter, else to the idle queue.
    # Every waiter re-checks the idle queue after registering, so no release can be missed.

    def _acquire(self, timeout: float) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        waiter: concurrent.futures.Future[_Worker] = concurrent.futures.Future()
        with self._lock:
            self._waiters.append((None, waiter))
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            pass
        else:
            if not waiter.cancel():  # a worker was handed over meanwhile: give that one back
                self._release(waiter.result())
            return worker
        try:
            return waiter.result(timeout)
        except concurrent.futures.TimeoutError:
            if waiter.cancel():
                raise ServerBusy(f"no query worker became free within {timeout:g} s") from None
            return waiter.result()

    async def _acquire_async(self, timeout: float) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Worker] = loop.create_future()
        with self._lock:
            self._waiters.append((loop, waiter))
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            pass
        else:
            waiter.cancel()  # a hand-over already on its way sees the cancel and re-releases
            return worker
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise ServerBusy(f"no query worker became free within {timeout:g} s") from None

    def _release(self, worker: _Worker) -> None:
        """Hand ``worker`` to the oldest waiting thread or coroutine, else back to the idle queue."""
        if self._closed:
            self._stop(worker)
            return
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if isinstance(waiter, concurrent.futures.Future):
                    if waiter.set_running_or_notify_cancel():  # False: that thread gave up
                        waiter.set_result(worker)
                        return
                    continue
                if loop is None or waiter.done():
                    continue
                try:
                    loop.call_soon_threadsafe(self._deliver, waiter, worker)
                    return
                except RuntimeError:  # that event loop is closed
                    continue
        self._idle.put(worker)

    def _deliver(self, waiter: asyncio.Future[_Worker], worker: _Worker) -> None:
        """Runs in the waiter's loop, so the done-check and set_result cannot race with a cancel."""
        if waiter.done():
            self._release(worker)
        else:
            waiter.set_result(worker)

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        if not self._closed:
            threading.Thread(target=self._refill, name="epar-worker-refill", daemon=True).start()

    def _refill(self) -> None:
        for attempt in range(3):
            if self._closed:
                return
            try:
                worker = self._start()
                self._await_ready(worker)
            except StoreError as exc:
                log.error("replacing a query worker failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(1.0)
                continue
            self._release(worker)
            return

    def _kill(self, worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            worker.process.kill()
        with contextlib.suppress(Exception):
            worker.conn.close()
        with self._lock:
            self._workers.pop(id(worker), None)
        # reap in the background: the caller must not wait for the kernel; then drop any half-written answer
        threading.Thread(target=self._reap, args=(worker,), daemon=True).start()

    def _reap(self, worker: _Worker) -> None:
        worker.process.join(5.0)
        if worker.process.pid is not None:
            for leftover in Path(self.spool_dir).glob(f"{worker.process.pid}-*.answer"):
                leftover.unlink(missing_ok=True)

    def _stop(self, worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            worker.conn.send(None)
        worker.process.join(1.0)
        if worker.process.is_alive():
            self._kill(worker)
        else:
            with self._lock:
                self._workers.pop(id(worker), None)
            with contextlib.suppress(Exception):
                worker.conn.close()

    def close(self) -> None:
        """Stop every worker; busy ones are killed."""
        self._closed = True
        while True:
            try:
                self._stop(self._idle.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            rest = list(self._workers.values())
        for worker in rest:
            self._kill(worker)
        shutil.rmtree(self.spool_dir, ignore_errors=True)

    def idle(self) -> int:
        """How many workers are free right now (for tests and diagnostics)."""
        return self._idle.qsize()

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return [w.process.pid for w in self._workers.values() if w.process.pid is not None]


def _request(
    sparql: str,
    result_format: str | None,
    rdf_format: Format | None,
    max_rows: int | None,
    default_graph: list[str] | None,
    named_graphs: list[str] | None,
) -> _Request:
    for iri in (default_graph or []) + (named_graphs or []):
        pyoxigraph.NamedNode(iri)  # raises ValueError for an invalid IRI before any work is done
    return _Request(sparql, result_format, rdf_format, max_rows, default_graph, named_graphs)


def _unwrap(reply: _Reply) -> EncodedResult:
    if reply.error == "syntax":
        raise SyntaxError(reply.message)
    if reply.error == "value":
        raise ValueError(reply.message)
    if reply.error is not None or reply.encoded is None:
        raise QueryFailed(reply.message or "the query could not be evaluated")
    return reply.encoded


# --- the store ----------------------------------------------------------------------------


def label_rank(literal: pyoxigraph.Literal) -> int:
    lang = (literal.language or "").lower()
    if lang == "en" or lang.startswith("en-"):
        return 0
    return 1 if not lang else 2


class OxigraphStore:
    """The embedded store: SPARQL through worker processes, lookups in-process.

    ``describe``/``labels``/``triples`` are bounded index lookups, so they use
    a read-only handle in the server process; arbitrary SPARQL goes to the pool.
    """

    def __init__(
        self,
        info: StoreInfo,
        *,
        workers: int = 2,
        default_timeout: float = 30.0,
        slow_workers: int = 0,
        fast_lane_seconds: float = 0.25,
        answer_cache_bytes: int = ANSWER_CACHE_BYTES,
    ) -> None:
        self.info = info
        self.default_timeout = default_timeout
        self._local = pyoxigraph.Store.read_only(str(info.path))
        self.answers = AnswerCache(answer_cache_bytes)
        self._pool = WorkerPool(info.path, workers, slow_slots=slow_workers, fast_lane_seconds=fast_lane_seconds)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        store_dir: Path | None = None,
        base: str,
        workers: int = 2,
        default_timeout: float = 30.0,
        slow_workers: int = 0,
        fast_lane_seconds: float = 0.25,
        answer_cache_bytes: int = ANSWER_CACHE_BYTES,
    ) -> OxigraphStore:
        """Load (or reuse) the store for ``data_dir`` and start its workers."""
        info = ensure_store(data_dir, store_dir if store_dir is not None else data_dir / ".store", base)
        return cls(
            info,
            workers=workers,
            default_timeout=default_timeout,
            slow_workers=slow_workers,
            fast_lane_seconds=fast_lane_seconds,
            answer_cache_bytes=answer_cache_bytes,
        )

    # SparqlStore ---------------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> QueryResult:
        encoded = self.query_encoded(
            sparql,
            result_format="tsv",
            rdf_format=Format.NTRIPLES,
            max_rows=None,
            timeout=timeout,
            default_graph=default_graph,
            named_graphs=named_graphs,
        )
        return decode_result(encoded)

    def describe(self, iri: str) -> list[pyoxigraph.Triple]:
        try:
            node = pyoxigraph.NamedNode(iri)
        except ValueError:
            return []
        return [q.triple for q in self._local.quads_for_pattern(node, None, None, pyoxigraph.DefaultGraph())]

    def labels(self, iris: Iterable[str]) -> dict[str, str]:
        """rdfs:label first, skos:prefLabel as fallback; within each, English, then untagged, then others."""
        found: dict[str, str] = {}
        for iri in dict.fromkeys(iris):
            try:
                node = pyoxigraph.NamedNode(iri)
            except ValueError:
                continue
            best: tuple[int, int, str] | None = None
            for p_rank, predicate in enumerate((RDFS.label, SKOS.prefLabel)):
                for quad in self._local.quads_for_pattern(node, predicate, None, pyoxigraph.DefaultGraph()):
                    obj = quad.object
                    if isinstance(obj, pyoxigraph.Literal):
                        key = (p_rank, label_rank(obj), obj.value)
                        if best is None or key < best:
                            best = key
                if best is not None:
                    break
            if best is not None:
                found[iri] = best[2]
        return found

    def triples(self) -> Iterator[pyoxigraph.Triple]:
        for quad in self._local.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph()):
            yield quad.triple

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
        """The answer serialised in the named format (see :func:`encode_result`), at most ``max_rows`` rows."""
        request = _request(sparql, result_format, rdf_format, max_rows, default_graph, named_graphs)
        key = AnswerCache.key(request)
        cached = self.answers.get(key)
        if cached is not None:
            return cached
        encoded = _unwrap(self._pool.run(request, self.default_timeout if timeout is None else timeout))
        self.answers.put(key, encoded)
        return encoded

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
        """:meth:`query_encoded` for the event loop; a long answer comes as a file (``EncodedResult.path``)."""
        request = _request(sparql, result_format, rdf_format, max_rows, default_graph, named_graphs)
        key = AnswerCache.key(request)
        cached = self.answers.get(key)
        if cached is not None:
            return cached
        request = dataclasses.replace(request, spool_dir=self._pool.spool_dir)
        encoded = _unwrap(await self._pool.arun(request, self.default_timeout if timeout is None else timeout))
        self.answers.put(key, encoded)
        return encoded

    # lifecycle -----------------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        return self._pool.pids()

    def idle_workers(self) -> int:
        return self._pool.idle()

    def slow_queries(self) -> int:
        return self._pool.slow()

    def spooled_answers(self) -> list[str]:
        """Answer files written by workers and not yet opened for streaming (for tests and diagnostics)."""
        return sorted(p.name for p in Path(self._pool.spool_dir).glob("*.answer"))

    def demotions(self) -> int:
        return self._pool.demotions

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> OxigraphStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
