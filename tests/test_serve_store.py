"""The embedded store: loading once and atomically, the SparqlStore contract (one test class run
against every implementation), worker timeouts, encoding."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyoxigraph
import pytest
from conftest import (
    ALL_DUMPS,
    ALOFISEL,
    EXPLOSIVE_QUERY,
    LINK_DUMPS,
    LINKS_DUMP,
    LINKS_GRAPH,
    SERVE_DATA,
    link_graph,
    wait_until,
)
from engines import ENGINES, Engines
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph.load import plan
from epar_graph.serve.negotiation import Format
from epar_graph.serve.remote_store import RemoteStore
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import (
    INFO_FILE,
    RDF_FORMATS,
    RESULT_FORMATS,
    AnswerCache,
    EncodedResult,
    EncodingStore,
    OxigraphStore,
    QueryTimeout,
    ServerBusy,
    SparqlStore,
    StoreError,
    capped_tsv,
    decode_result,
    encode_result,
    ensure_store,
)

BASE = "https://w3id.org/epar/"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


def dump_triples(*names: str) -> set[pyoxigraph.Triple]:
    out: set[pyoxigraph.Triple] = set()
    for name in names:
        quads = pyoxigraph.parse(path=str(SERVE_DATA / name), format=pyoxigraph.RdfFormat.N_TRIPLES)
        out |= {q.triple for q in quads}
    return out


def link_graph_sizes() -> dict[str, int]:
    """Each link set's named graph with its number of triples."""
    return {link_graph(name): len(dump_triples(name)) for name in LINK_DUMPS}


def copy_build(target: Path, *, gz: bool = False) -> Path:
    target.mkdir(parents=True)
    if gz:
        (target / "epar.nt.gz").write_bytes(gzip.compress((SERVE_DATA / "epar.nt").read_bytes()))
    else:
        shutil.copy(SERVE_DATA / "epar.nt", target / "epar.nt")
    for name in LINK_DUMPS:
        shutil.copy(SERVE_DATA / name, target / name)
    return target


def stores_in(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir()) if root.exists() else []


# --- loading ------------------------------------------------------------------------------------


def test_store_is_built_once_and_reused(tmp_path: Path) -> None:
    data = copy_build(tmp_path / "dist")
    root = tmp_path / "stores"
    first = ensure_store(data, root, BASE)
    marker = first.path / INFO_FILE
    stamp = marker.stat().st_mtime_ns
    second = ensure_store(data, root, BASE)
    assert second.path == first.path
    assert marker.stat().st_mtime_ns == stamp  # not rebuilt
    assert stores_in(root) == [first.path]  # no temporary directory left behind
    assert first.triples == len(dump_triples(*ALL_DUMPS))
    assert first.named_graphs == link_graph_sizes()


def test_changed_dump_gets_a_new_store_and_old_ones_are_pruned(tmp_path: Path) -> None:
    data = copy_build(tmp_path / "dist")
    root = tmp_path / "stores"
    paths = []
    for n in range(3):
        with (data / "epar.nt").open("a") as fh:
            fh.write(f'<http://example.org/s{n}> <{RDFS_LABEL}> "extra {n}" .\n')
        paths.append(ensure_store(data, root, BASE).path)
    assert len(set(paths)) == 3
    assert stores_in(root) == sorted(paths[1:])  # the current store and its predecessor


def test_gzipped_dump_loads_the_same_graph(tmp_path: Path) -> None:
    plain = ensure_store(copy_build(tmp_path / "a"), tmp_path / "sa", BASE)
    zipped = ensure_store(copy_build(tmp_path / "b", gz=True), tmp_path / "sb", BASE)
    assert plain.triples == zipped.triples


def test_malformed_dump_names_the_file_and_leaves_no_store(tmp_path: Path) -> None:
    data = copy_build(tmp_path / "dist")
    with (data / "epar.nt").open("a") as fh:
        fh.write("<http://example.org/s> <http://example.org/p> this is not N-Triples .\n")
    root = tmp_path / "stores"
    with pytest.raises(StoreError) as info:
        ensure_store(data, root, BASE)
    assert "epar.nt" in str(info.value)
    assert stores_in(root) == []


def test_missing_dump_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="epar.nt"):
        ensure_store(tmp_path, tmp_path / "stores", BASE)


def test_damaged_store_is_rebuilt(tmp_path: Path) -> None:
    data = copy_build(tmp_path / "dist")
    root = tmp_path / "stores"
    info = ensure_store(data, root, BASE)
    (info.path / INFO_FILE).unlink()  # as if someone removed files by hand
    again = ensure_store(data, root, BASE)
    assert again.path == info.path and (again.path / INFO_FILE).is_file()


# --- the SparqlStore contract -------------------------------------------------------------------
#
# One class runs what the interface promises against every implementation: a new store (a remote
# endpoint, say) gets the same tests by adding one entry to ``STORES``. The expected answers come
# from the fixture dumps, read here with pyoxigraph's parser, not from any store.

PRODUCT = pyoxigraph.NamedNode(ALOFISEL)
GROUP = "https://w3id.org/epar/pharmacotherapeutic-group/immunosuppressants"
UNKNOWN = "https://w3id.org/epar/product/none"
COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


#: Opens a store on the fixture build for the contract tests: a scratch directory, and the run's engines.
Opener = Callable[[Path, Engines], contextlib.AbstractContextManager[SparqlStore]]


@contextlib.contextmanager
def oxigraph_store(tmp: Path, engines: Engines) -> Iterator[SparqlStore]:
    """The embedded store on a copy of the fixture build, with two workers."""
    with OxigraphStore.open(copy_build(tmp / "dist"), store_dir=tmp / "stores", base=BASE, workers=2,
                            default_timeout=20) as s:
        yield s


def _engine_store(name: str) -> Opener:
    """Engine ``name`` holding the fixture build (the run's, see ``engines``), through :class:`RemoteStore`."""

    @contextlib.contextmanager
    def open_store(tmp: Path, engines: Engines) -> Iterator[SparqlStore]:
        with RemoteStore(engines.endpoint(name), default_timeout=20,
                         dataset=plan(copy_build(tmp / "dist")).dataset()) as s:
            yield s

    return open_store


#: Each implementation of :class:`SparqlStore`, opened on the fixture build (``tests/data/serve``).
STORES: dict[str, Opener] = {"oxigraph": oxigraph_store, **{name: _engine_store(name) for name in ENGINES}}


@pytest.fixture(scope="class", params=sorted(STORES))
def any_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              engines: Engines) -> Iterator[SparqlStore]:
    with STORES[request.param](tmp_path_factory.mktemp(f"store-{request.param}"), engines) as s:
        yield s


def own_triples(subject: pyoxigraph.NamedNode) -> set[pyoxigraph.Triple]:
    return {t for t in dump_triples("epar.nt") if t.subject == subject}


def encoding(store: SparqlStore) -> EncodingStore:
    """The store as an :class:`EncodingStore`; the encoded-answer tests do not apply to one that is not."""
    if not isinstance(store, EncodingStore):
        pytest.skip(f"{type(store).__name__} hands back no encoded answers")
    return store


def count(store: SparqlStore, sparql: str, **dataset: list[str]) -> int:
    result = store.query(sparql, **dataset)  # type: ignore[arg-type]
    assert isinstance(result, pyoxigraph.QuerySolutions)
    (row,) = list(result)
    return int(row["n"].value)


class TestStoreContract:
    """What every :class:`SparqlStore` promises, run against each implementation in ``STORES``."""

    def test_is_a_sparql_store(self, any_store: SparqlStore) -> None:
        for method in ("query", "describe", "labels", "triples"):
            assert callable(getattr(any_store, method, None)), method

    def test_select_answers_solutions(self, any_store: SparqlStore) -> None:
        select = any_store.query(f"SELECT ?l WHERE {{ <{ALOFISEL}> <{RDFS_LABEL}> ?l }}")
        assert isinstance(select, pyoxigraph.QuerySolutions)
        assert [v.value for v in select.variables] == ["l"]
        labels = {t.object for t in own_triples(PRODUCT) if t.predicate.value == RDFS_LABEL}
        assert [row["l"] for row in select] == sorted(labels, key=str)

    def test_select_counts_the_whole_default_graph(self, any_store: SparqlStore) -> None:
        assert count(any_store, COUNT_ALL) == len(dump_triples(*ALL_DUMPS))

    def test_ask_answers_a_boolean(self, any_store: SparqlStore) -> None:
        yes = any_store.query(f"ASK {{ <{ALOFISEL}> ?p ?o }}")
        no = any_store.query(f"ASK {{ <{UNKNOWN}> ?p ?o }}")
        assert isinstance(yes, pyoxigraph.QueryBoolean) and isinstance(no, pyoxigraph.QueryBoolean)
        assert bool(yes) and not bool(no)

    def test_construct_answers_triples(self, any_store: SparqlStore) -> None:
        construct = any_store.query(f"CONSTRUCT WHERE {{ <{ALOFISEL}> ?p ?o }}")
        assert isinstance(construct, pyoxigraph.QueryTriples)
        assert set(construct) == own_triples(PRODUCT)

    def test_describe_query_answers_the_resource(self, any_store: SparqlStore) -> None:
        described = any_store.query(f"DESCRIBE <{ALOFISEL}>")
        assert isinstance(described, pyoxigraph.QueryTriples)
        triples = set(described)
        assert own_triples(PRODUCT) <= triples
        assert all(t.subject == PRODUCT or isinstance(t.subject, pyoxigraph.BlankNode) for t in triples)

    def test_malformed_query_raises_syntax_error(self, any_store: SparqlStore) -> None:
        with pytest.raises(SyntaxError):
            any_store.query("SELECT * WHERE { ?s ?p }")

    @pytest.mark.parametrize("update", [
        f'INSERT DATA {{ <{UNKNOWN}> <{RDFS_LABEL}> "planted" }}',
        f"DELETE WHERE {{ <{ALOFISEL}> ?p ?o }}",
        "CLEAR ALL",
        f"LOAD <{ALOFISEL}>",
    ], ids=["insert-data", "delete-where", "clear-all", "load"])
    def test_updates_are_refused_and_change_nothing(self, any_store: SparqlStore, update: str) -> None:
        before = count(any_store, COUNT_ALL)
        with pytest.raises(SyntaxError):
            any_store.query(update)
        assert count(any_store, COUNT_ALL) == before == len(dump_triples(*ALL_DUMPS))

    def test_named_graphs_hold_the_link_sets(self, any_store: SparqlStore) -> None:
        result = any_store.query("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        assert isinstance(result, pyoxigraph.QuerySolutions)
        assert {row["g"].value: int(row["n"].value) for row in result} == link_graph_sizes()

    def test_dataset_arguments_choose_the_graphs(self, any_store: SparqlStore) -> None:
        links = len(dump_triples(LINKS_DUMP))
        assert count(any_store, COUNT_ALL, default_graph=[LINKS_GRAPH]) == links
        assert count(any_store, COUNT_ALL, default_graph=["https://example.org/no-such-graph"]) == 0
        in_graphs = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
        assert count(any_store, in_graphs, named_graphs=[LINKS_GRAPH]) == links
        assert count(any_store, in_graphs, named_graphs=["https://example.org/no-such-graph"]) == 0

    def test_dataset_arguments_must_be_iris(self, any_store: SparqlStore) -> None:
        with pytest.raises(ValueError):
            any_store.query(COUNT_ALL, default_graph=["not an IRI"])
        with pytest.raises(ValueError):
            any_store.query(COUNT_ALL, named_graphs=["not an IRI"])

    def test_timeout_stops_the_query_and_the_store_answers_after(self, any_store: SparqlStore) -> None:
        with pytest.raises(QueryTimeout):
            any_store.query(EXPLOSIVE_QUERY, timeout=0.5)
        assert bool(any_store.query(f"ASK {{ <{ALOFISEL}> ?p ?o }}", timeout=60))

    def test_describe(self, any_store: SparqlStore) -> None:
        assert set(any_store.describe(ALOFISEL)) == own_triples(PRODUCT)
        assert any_store.describe(UNKNOWN) == []
        assert any_store.describe("not an iri") == []

    def test_labels_prefer_rdfs_label_and_english(self, any_store: SparqlStore) -> None:
        labels = any_store.labels([ALOFISEL, GROUP, UNKNOWN, "bad iri", ALOFISEL])
        assert labels == {ALOFISEL: "Alofisel", GROUP: "Immunosuppressants"}

    def test_triples_is_the_default_graph(self, any_store: SparqlStore) -> None:
        assert set(any_store.triples()) == dump_triples(*ALL_DUMPS)

    # encoded answers (EncodingStore) --------------------------------------------------------

    @pytest.mark.parametrize("fmt", sorted(RESULT_FORMATS))
    def test_encoded_select_and_ask_in_every_result_format(self, any_store: SparqlStore, fmt: str) -> None:
        store = encoding(any_store)
        query = f"SELECT ?p ?o WHERE {{ <{ALOFISEL}> ?p ?o }}"
        encoded = store.query_encoded(query, result_format=fmt, rdf_format=None, max_rows=None)
        assert encoded.kind == "solutions" and encoded.body is not None and not encoded.truncated
        if fmt == "csv":  # CSV drops term kinds: compare the lexical values (a literal may span lines)
            header, *rows = csv.reader(io.StringIO(encoded.body.decode(), newline=""))
            assert header == ["p", "o"]
            assert sorted(rows) == sorted([t.predicate.value, t.object.value] for t in own_triples(PRODUCT))
        else:
            parsed = pyoxigraph.parse_query_results(encoded.body, RESULT_FORMATS[fmt])
            assert isinstance(parsed, pyoxigraph.QuerySolutions)
            got = {(row["p"], row["o"]) for row in parsed}
            assert got == {(t.predicate, t.object) for t in own_triples(PRODUCT)}
        ask = store.query_encoded(f"ASK {{ <{UNKNOWN}> ?p ?o }}", result_format=fmt, rdf_format=None, max_rows=None)
        assert ask.kind == "boolean" and ask.body is not None
        if fmt != "csv" and fmt != "tsv":
            parsed_ask = pyoxigraph.parse_query_results(ask.body, RESULT_FORMATS[fmt])
            assert isinstance(parsed_ask, pyoxigraph.QueryBoolean) and not bool(parsed_ask)

    @pytest.mark.parametrize("fmt", sorted(RDF_FORMATS))
    def test_encoded_graph_in_every_rdf_format(self, any_store: SparqlStore, fmt: str) -> None:
        store = encoding(any_store)
        encoded = store.query_encoded(f"CONSTRUCT WHERE {{ <{ALOFISEL}> ?p ?o }}", result_format=None,
                                      rdf_format=fmt, max_rows=None)
        assert encoded.kind == "graph" and encoded.body is not None and not encoded.truncated
        assert {q.triple for q in pyoxigraph.parse(encoded.body, RDF_FORMATS[fmt])} == own_triples(PRODUCT)

    def test_encoded_answer_without_a_format_for_its_kind_is_empty(self, any_store: SparqlStore) -> None:
        store = encoding(any_store)
        graph = store.query_encoded("CONSTRUCT WHERE { ?s ?p ?o }", result_format="json", rdf_format=None, max_rows=3)
        assert graph.kind == "graph" and graph.body is None
        rows = store.query_encoded("SELECT * { ?s ?p ?o }", result_format=None, rdf_format="turtle", max_rows=3)
        assert rows.kind == "solutions" and rows.body is None

    def test_encoded_answers_are_capped_at_max_rows(self, any_store: SparqlStore) -> None:
        store = encoding(any_store)
        total = len(dump_triples(*ALL_DUMPS))
        for cap, truncated in ((3, True), (total, False), (total + 1, False)):
            encoded = store.query_encoded("SELECT * { ?s ?p ?o }", result_format="tsv", rdf_format=None, max_rows=cap)
            assert encoded.kind == "solutions" and encoded.truncated is truncated
            assert len(list(decode_result(encoded))) == min(cap, total)  # type: ignore[arg-type]
            graph = store.query_encoded("CONSTRUCT WHERE { ?s ?p ?o }", result_format=None, rdf_format="ntriples",
                                        max_rows=cap)
            assert graph.truncated is truncated and graph.body is not None
            assert len(graph.body.decode().splitlines()) == min(cap, total)

    def test_encoded_answers_in_an_event_loop(self, any_store: SparqlStore) -> None:
        store = encoding(any_store)
        query = f"SELECT ?l WHERE {{ <{ALOFISEL}> <{RDFS_LABEL}> ?l }}"

        async def both() -> list[EncodedResult]:
            return list(await asyncio.gather(
                store.aquery_encoded(query, result_format="tsv", rdf_format=None, max_rows=10, timeout=60),
                store.aquery_encoded(query, result_format="tsv", rdf_format=None, max_rows=10, timeout=60)))

        assert [a.body for a in asyncio.run(both())] == [b'?l\n"Alofisel"\n'] * 2
        with pytest.raises(QueryTimeout):
            asyncio.run(store.aquery_encoded(EXPLOSIVE_QUERY, result_format="json", rdf_format=None, max_rows=1,
                                             timeout=0.5))
        with pytest.raises(SyntaxError):
            asyncio.run(store.aquery_encoded("SELECT * {", result_format="json", rdf_format=None, max_rows=1))


# --- the embedded store's worker pool -----------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphStore]:
    """The embedded store with a single worker, to watch it be replaced and taken in turns."""
    data = copy_build(tmp_path_factory.mktemp("store") / "dist")
    with OxigraphStore.open(data, base=BASE, workers=1, default_timeout=20) as s:
        yield s


def test_timeout_kills_the_query_and_the_pool_recovers(store: OxigraphStore) -> None:
    (before,) = store.worker_pids()
    with pytest.raises(QueryTimeout):
        store.query(EXPLOSIVE_QUERY, timeout=0.5)
    # the single worker is replaced: the next query waits for the new one, then runs
    result = store.query(f"ASK {{ <{ALOFISEL}> ?p ?o }}", timeout=60)
    assert bool(result)
    assert wait_until(lambda: len(store.worker_pids()) == 1)
    assert store.worker_pids() != [before]
    assert wait_until(lambda: not os.path.exists(f"/proc/{before}") or _zombie(before))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_threads_and_coroutines_take_turns_on_one_worker(store: OxigraphStore) -> None:
    """One worker, many callers from threads and from an event loop: everyone is served, in turn."""
    query = f"SELECT ?l WHERE {{ <{ALOFISEL}> <{RDFS_LABEL}> ?l }}"
    results: list[str] = []

    def sync_caller() -> None:
        for _ in range(5):
            encoded = store.query_encoded(query, result_format="tsv", rdf_format=None, max_rows=10, timeout=60)
            results.append(encoded.body.decode() if encoded.body else "")

    async def async_callers() -> list[EncodedResult]:
        calls = [store.aquery_encoded(query, result_format="tsv", rdf_format=None, max_rows=10, timeout=60)
                 for _ in range(10)]
        return await asyncio.gather(*calls)

    threads = [threading.Thread(target=sync_caller) for _ in range(3)]
    for t in threads:
        t.start()
    answers = asyncio.run(async_callers())
    for t in threads:
        t.join()
    expected = '?l\n"Alofisel"\n'
    assert results == [expected] * 15
    assert [a.body.decode() if a.body else "" for a in answers] == [expected] * 10
    assert store.idle_workers() == 1


def test_busy_pool_answers_server_busy(store: OxigraphStore) -> None:
    outcome: list[BaseException] = []

    def hold() -> None:
        try:
            store.query(EXPLOSIVE_QUERY, timeout=3)
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert wait_until(lambda: store.idle_workers() == 0)
        with pytest.raises(ServerBusy):
            store.query("ASK {}", timeout=0.2)
        with pytest.raises(ServerBusy):
            asyncio.run(store.aquery_encoded("ASK {}", result_format="json", rdf_format=None, max_rows=1, timeout=0.2))
    finally:
        holder.join()
    assert len(outcome) == 1 and isinstance(outcome[0], QueryTimeout)
    assert bool(store.query("ASK {}", timeout=60))  # the replacement worker answers


# --- encoding (no workers needed) ---------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_LITERALS = st.one_of(
    _TEXT.map(pyoxigraph.Literal),
    st.tuples(_TEXT, st.sampled_from(["en", "de", "zh-Hans", "en-GB"])).map(
        lambda t: pyoxigraph.Literal(t[0], language=t[1])
    ),
    st.tuples(
        st.one_of(_TEXT, st.integers().map(str), st.sampled_from(["01", "+1", "1.50", "1e3", "true", "0", " 1"])),
        st.sampled_from(["integer", "decimal", "double", "boolean", "date", "string"]),
    ).map(lambda t: pyoxigraph.Literal(t[0], datatype=pyoxigraph.NamedNode(f"http://www.w3.org/2001/XMLSchema#{t[1]}"))),
)
_IRIS = st.from_regex(r"http://example\.org/[a-z0-9_\-.~]{0,8}", fullmatch=True).map(pyoxigraph.NamedNode)


@settings(max_examples=60, deadline=None)
@given(objects=st.lists(st.one_of(_LITERALS, _IRIS), min_size=0, max_size=12), cap=st.integers(1, 15))
def test_capped_tsv_round_trips_terms_and_counts_rows(objects: list[pyoxigraph.Literal], cap: int) -> None:
    """TSV is the interchange between worker and server: it must give back exactly the same terms."""
    mem = pyoxigraph.Store()
    subject = pyoxigraph.NamedNode("http://example.org/s")
    for i, obj in enumerate(objects):
        mem.add(pyoxigraph.Quad(subject, pyoxigraph.NamedNode(f"http://example.org/p{i}"), obj))
    query = "SELECT ?p ?o ?unbound WHERE { ?s ?p ?o OPTIONAL { ?s <http://example.org/none> ?unbound } } ORDER BY ?p"
    expected = [(r["p"], r["o"]) for r in mem.query(query)]  # type: ignore[union-attr]
    solutions = mem.query(query)
    assert isinstance(solutions, pyoxigraph.QuerySolutions)
    tsv, truncated = capped_tsv(solutions, cap)
    assert truncated is (len(expected) > cap)
    back = pyoxigraph.parse_query_results(tsv, pyoxigraph.QueryResultsFormat.TSV)
    assert isinstance(back, pyoxigraph.QuerySolutions)
    assert [v.value for v in back.variables] == ["p", "o", "unbound"]
    rows = [(r["p"], r["o"], r["unbound"]) for r in back]
    assert rows == [(p, o, None) for p, o in expected[:cap]]


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_encode_result_for_every_result_format(fmt: str) -> None:
    mem = pyoxigraph.Store()
    for i in range(4):
        mem.add(pyoxigraph.Quad(pyoxigraph.NamedNode(f"http://example.org/s{i}"),
                                pyoxigraph.NamedNode(RDFS_LABEL), pyoxigraph.Literal(f"label {i}", language="en")))
    encoded = encode_result(mem.query("SELECT * { ?s ?p ?o }"), fmt, None, 2)
    assert encoded.truncated and encoded.body is not None
    if fmt != "csv":
        parsed = pyoxigraph.parse_query_results(encoded.body, getattr(pyoxigraph.QueryResultsFormat, fmt.upper()))
        assert len(list(parsed)) == 2  # type: ignore[arg-type]
    else:
        assert len(encoded.body.decode().strip().splitlines()) == 3
    boolean = encode_result(mem.query("ASK { ?s ?p ?o }"), fmt, None, 2)
    assert boolean.kind == "boolean" and not boolean.truncated


def test_encode_result_without_row_cap_streams_everything() -> None:
    mem = pyoxigraph.Store()
    for i in range(50):
        mem.add(pyoxigraph.Quad(pyoxigraph.NamedNode(f"http://example.org/s{i}"),
                                pyoxigraph.NamedNode(RDFS_LABEL), pyoxigraph.Literal(str(i))))
    encoded = encode_result(mem.query("CONSTRUCT WHERE { ?s ?p ?o }"), None, Format.TURTLE, None)
    assert not encoded.truncated and encoded.body is not None
    assert len(list(pyoxigraph.parse(encoded.body, pyoxigraph.RdfFormat.TURTLE))) == 50


# --- the answer cache -------------------------------------------------------------------------


def _answer(body: bytes) -> EncodedResult:
    return EncodedResult("solutions", body)


def test_answer_cache_keeps_recent_answers_within_its_bytes() -> None:
    cache = AnswerCache(max_bytes=16 * 1024)
    keys = [(f"q{n}", "json", None, 10, None, None) for n in range(40)]
    for n, key in enumerate(keys):
        cache.put(key, _answer(bytes([n]) * 900))
    assert cache.get(keys[0]) is None  # the oldest went first
    assert cache.get(keys[-1]) == _answer(bytes([39]) * 900)
    kept = [k for k in keys if cache.get(k) is not None]
    assert 0 < len(kept) * 900 <= 16 * 1024
    cache.put(("big", "json", None, 10, None, None), _answer(b"x" * 2048))  # over 1/16 of the cache: not kept
    assert cache.get(("big", "json", None, 10, None, None)) is None
    cache.put(("file", "json", None, 10, None, None), EncodedResult("solutions", None, path="/tmp/a.answer"))
    assert cache.get(("file", "json", None, 10, None, None)) is None


def test_a_repeated_query_is_answered_from_the_cache(serve_data_dir: Path) -> None:
    settings = Settings(data_dir=serve_data_dir, workers=1)
    with OxigraphStore.open(serve_data_dir, store_dir=settings.resolved_store_dir, base=settings.base,
                            workers=1, slow_workers=0) as store:
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        first = store.query_encoded(query, result_format="json", rdf_format=None, max_rows=10)
        assert store.answers.hits == 0
        again = store.query_encoded(query, result_format="json", rdf_format=None, max_rows=10)
        assert again == first and store.answers.hits == 1
        other = store.query_encoded(query, result_format="csv", rdf_format=None, max_rows=10)
        assert other != first and store.answers.hits == 1  # another format is another answer
        with pytest.raises(SyntaxError):
            store.query_encoded("SELECT", result_format="json", rdf_format=None, max_rows=10)
        with pytest.raises(SyntaxError):  # errors are not kept
            store.query_encoded("SELECT", result_format="json", rdf_format=None, max_rows=10)
        assert store.answers.hits == 1
