"""The embedded store: loading once and atomically, the SparqlStore contract, worker timeouts, encoding."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph
import pytest
from conftest import ALOFISEL, EXPLOSIVE_QUERY, LINKS_GRAPH, SERVE_DATA, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph.serve.negotiation import Format
from epar_graph.serve.store import (
    INFO_FILE,
    EncodedResult,
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


def copy_build(target: Path, *, gz: bool = False) -> Path:
    target.mkdir(parents=True)
    if gz:
        (target / "epar.nt.gz").write_bytes(gzip.compress((SERVE_DATA / "epar.nt").read_bytes()))
    else:
        shutil.copy(SERVE_DATA / "epar.nt", target / "epar.nt")
    shutil.copy(SERVE_DATA / "links-wikidata.nt", target / "links-wikidata.nt")
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
    assert first.triples == len(dump_triples("epar.nt", "links-wikidata.nt"))
    assert first.named_graphs == {LINKS_GRAPH: len(dump_triples("links-wikidata.nt"))}


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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphStore]:
    data = copy_build(tmp_path_factory.mktemp("store") / "dist")
    with OxigraphStore.open(data, base=BASE, workers=1, default_timeout=20) as s:
        yield s


def test_oxigraph_store_is_a_sparql_store(store: OxigraphStore) -> None:
    def use(s: SparqlStore) -> SparqlStore:
        return s

    assert use(store) is store


def test_query_returns_pyoxigraph_results(store: OxigraphStore) -> None:
    select = store.query(f"SELECT ?l WHERE {{ <{ALOFISEL}> <{RDFS_LABEL}> ?l }}")
    assert isinstance(select, pyoxigraph.QuerySolutions)
    assert [row["l"] for row in select] == [pyoxigraph.Literal("Alofisel")]
    ask = store.query(f"ASK {{ <{ALOFISEL}> ?p ?o }}")
    assert isinstance(ask, pyoxigraph.QueryBoolean) and bool(ask)
    construct = store.query(f"CONSTRUCT WHERE {{ <{ALOFISEL}> ?p ?o }}")
    assert isinstance(construct, pyoxigraph.QueryTriples)
    assert set(construct) == {t for t in dump_triples("epar.nt") if t.subject == pyoxigraph.NamedNode(ALOFISEL)}


def test_query_dataset_arguments(store: OxigraphStore) -> None:
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    result = store.query(count, default_graph=[LINKS_GRAPH])
    assert isinstance(result, pyoxigraph.QuerySolutions)
    assert [int(r["n"].value) for r in result] == [len(dump_triples("links-wikidata.nt"))]
    with pytest.raises(ValueError):
        store.query(count, default_graph=["not an IRI"])


def test_malformed_query_raises_syntax_error(store: OxigraphStore) -> None:
    with pytest.raises(SyntaxError):
        store.query("SELECT * WHERE { ?s ?p }")


def test_describe(store: OxigraphStore) -> None:
    own = {t for t in dump_triples("epar.nt") if t.subject == pyoxigraph.NamedNode(ALOFISEL)}
    assert set(store.describe(ALOFISEL)) == own
    assert store.describe("https://w3id.org/epar/product/none") == []
    assert store.describe("not an iri") == []


def test_labels_prefer_rdfs_label_and_english(store: OxigraphStore) -> None:
    group = "https://w3id.org/epar/pharmacotherapeutic-group/immunosuppressants"
    labels = store.labels([ALOFISEL, group, "https://w3id.org/epar/none", "bad iri", ALOFISEL])
    assert labels == {ALOFISEL: "Alofisel", group: "Immunosuppressants"}


def test_triples_is_the_default_graph(store: OxigraphStore) -> None:
    assert set(store.triples()) == dump_triples("epar.nt", "links-wikidata.nt")


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


def test_encoded_query_caps_rows(store: OxigraphStore) -> None:
    total = len(dump_triples("epar.nt", "links-wikidata.nt"))
    for cap, truncated in ((3, True), (total, False), (total + 1, False)):
        encoded = store.query_encoded(
            "SELECT * { ?s ?p ?o }", result_format="tsv", rdf_format=None, max_rows=cap
        )
        assert encoded.kind == "solutions" and encoded.truncated is truncated
        assert len(list(decode_result(encoded))) == min(cap, total)  # type: ignore[arg-type]
    graph = store.query_encoded("CONSTRUCT WHERE { ?s ?p ?o }", result_format="json", rdf_format=None, max_rows=3)
    assert graph.kind == "graph" and graph.body is None  # no format offered for graphs: nothing serialised


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
