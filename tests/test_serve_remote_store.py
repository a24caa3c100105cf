"""An existing engine behind the same server: ``serve --store URL`` (``serve/remote_store.py``).

Oxigraph server and Virtuoso hold the fixture build on 127.0.0.1 (started once per run, see
``engines`` in ``conftest.py``); the same app then runs on each and on the embedded store, and
must answer alike. Broken engines (down, slow, answering garbage) are small real HTTP servers
on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph
import pytest
from conftest import ALOFISEL, LINKS_GRAPH, LiveServer, wait_until
from engines import (
    ENGINES,
    Engines,
    app_server,
    free_port,
    misbehaving_engine,
    oxigraph_server,
    reply,
)

from epar_graph.load import plan
from epar_graph.serve import create_app
from epar_graph.serve.remote_store import RemoteStore
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import EngineFailed, EngineUnavailable, OxigraphStore, QueryTimeout
from epar_graph.serve.ui import load_examples

JSON = "application/sparql-results+json"


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, engines: Engines) -> str:
    """Each engine on 127.0.0.1, given the fixture build by ``epar-graph load`` (shared by the run)."""
    return engines.endpoint(request.param)


@pytest.fixture(scope="module")
def remote(engine: str, serve_data_dir: Path) -> Iterator[RemoteStore]:
    with RemoteStore(engine, default_timeout=20, dataset=plan(serve_data_dir).dataset()) as store:
        yield store


@pytest.fixture(scope="module")
def embedded(serve_data_dir: Path) -> Iterator[OxigraphStore]:
    settings = Settings(data_dir=serve_data_dir, workers=1)
    with OxigraphStore.open(serve_data_dir, store_dir=settings.resolved_store_dir, base=settings.base,
                            workers=1, default_timeout=20) as store:
        yield store


def _rows(result: object) -> list[tuple[str, ...]]:
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = [v.value for v in result.variables]
    return sorted(tuple(str(row[n]) if row[n] is not None else "" for n in names) for row in result)


def test_lookups_answer_as_the_embedded_store_does(remote: RemoteStore, embedded: OxigraphStore) -> None:
    assert sorted(map(str, remote.describe(ALOFISEL))) == sorted(map(str, embedded.describe(ALOFISEL)))
    assert remote.describe(ALOFISEL)
    assert remote.describe("not an iri") == [] and remote.describe("https://w3id.org/epar/product/none") == []
    subjects = {t.subject.value for t in embedded.triples()}
    assert remote.labels(subjects) == embedded.labels(subjects)
    assert sorted(map(str, remote.triples())) == sorted(map(str, embedded.triples()))


def _concat_unordered(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Rows with each "; "-joined plain literal's parts sorted: the order GROUP_CONCAT joins in is the engine's."""

    def unordered(value: str) -> str:
        if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
            return value
        return '"' + "; ".join(sorted(value[1:-1].split("; "))) + '"'

    return sorted(tuple(unordered(value) for value in row) for row in rows)


def test_queries_answer_as_the_embedded_store_does(remote: RemoteStore, embedded: OxigraphStore) -> None:
    ran = 0
    for example in load_examples():
        if "SERVICE" in example.query:
            continue
        answers = _rows(remote.query(example.query)), _rows(embedded.query(example.query))
        if "GROUP_CONCAT" in example.query.upper():
            answers = _concat_unordered(answers[0]), _concat_unordered(answers[1])
        assert answers[0] == answers[1], example.name
        ran += 1
    assert ran >= 10
    assert bool(remote.query("ASK { ?s ?p ?o }")) is True
    graph = LINKS_GRAPH
    sparql = "SELECT ?s ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
    linked = _rows(embedded.query(sparql, named_graphs=[graph]))
    assert linked and _rows(remote.query(sparql, named_graphs=[graph])) == linked


def test_the_app_on_the_engine_serves_pages_endpoint_and_limits(engine: str, serve_data_dir: Path) -> None:
    settings = Settings(data_dir=serve_data_dir, workers=1, max_rows=5, store_url=engine)
    with app_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/html"})
        assert page.status_code == 200 and "Alofisel" in page.text
        turtle = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/turtle"})
        assert turtle.status_code == 200 and "EMEA/H/C/004258" in turtle.text
        capped = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers={"accept": JSON})
        assert capped.status_code == 200 and capped.headers["x-result-truncated"] == "true"
        assert len(capped.json()["results"]["bindings"]) == 5
        csv = c.get("/sparql", params={"query": "SELECT ?s WHERE { ?s a epar:MedicinalProduct } LIMIT 2"},
                    headers={"accept": "text/csv"})
        assert csv.status_code == 200 and csv.text.splitlines()[0] == "s"
        federated = "ASK { SERVICE <http://example.org/s> { ?s ?p ?o } }"
        assert c.get("/sparql", params={"query": federated}).status_code == 403
        assert c.post("/sparql", data={"update": "DROP ALL"}).status_code in (400, 403)
        assert c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p }"}).status_code == 400
        assert c.get("/downloads/").status_code == 200
        assert c.get("/").status_code == 200


def test_an_engine_that_is_down_is_a_503_page(serve_data_dir: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/sparql"
    with pytest.raises(EngineUnavailable):
        RemoteStore(dead).query("ASK {}")
    settings = Settings(data_dir=serve_data_dir, workers=1, store_url=dead)
    with app_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        answer = c.get("/sparql", params={"query": "ASK {}"})
        assert answer.status_code == 503 and "Retry-After" in answer.headers and "Traceback" not in answer.text
        page = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/html"})
        assert page.status_code == 503 and "cannot be reached" in page.text


_garbage = reply(200, b"<html><body>Welcome to nginx</body></html>", "text/html")
_broken_tsv = reply(200, b"?s\n<unterminated\n", "text/tab-separated-values")


def _failing(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_error(500, "internal error in the engine")


@pytest.mark.parametrize("answer", [_garbage, _broken_tsv, _failing])
def test_an_engine_that_answers_garbage_is_a_502(answer: object, serve_data_dir: Path) -> None:
    with misbehaving_engine(answer) as endpoint:  # type: ignore[arg-type]
        with pytest.raises(EngineFailed):
            RemoteStore(endpoint).query("SELECT * WHERE { ?s ?p ?o }")
        settings = Settings(data_dir=serve_data_dir, workers=1, store_url=endpoint)
        with app_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
            answer_ = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers={"accept": JSON})
            assert answer_.status_code == 502 and "Traceback" not in answer_.text
            page = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/html"})
            assert page.status_code == 502


def _never_ending(handler: http.server.BaseHTTPRequestHandler) -> None:
    """An engine that ignores every time limit: it trickles a TSV header, then a row a second, forever."""
    handler.send_response(200)
    handler.send_header("content-type", "text/tab-separated-values")
    handler.end_headers()
    handler.wfile.write(b"?s\n")
    try:
        for n in range(600):
            handler.wfile.write(f"<http://example.org/{n}>\n".encode())
            handler.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass  # we hung up: the point


def test_the_deadline_holds_when_the_engine_ignores_it(serve_data_dir: Path) -> None:
    with misbehaving_engine(_never_ending) as endpoint:
        store = RemoteStore(endpoint, default_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            store.query("SELECT * WHERE { ?s ?p ?o }")
        took_sync = time.monotonic() - started
        settings = Settings(data_dir=serve_data_dir, workers=1, store_url=endpoint, query_timeout=1.0)
        with app_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
            started = time.monotonic()
            answer = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers={"accept": JSON})
            took = time.monotonic() - started
        assert answer.status_code == 503 and "Query stopped" in answer.text
        # the engine would go on for five minutes; a bound, not a timing: far below that
        assert took < 60 and took_sync < 60


# --- epar-graph load: a release into an engine, switched in one step ----------------------------


def _count(store: RemoteStore, sparql: str = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }") -> int:
    result = store.query(sparql)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    return int(next(iter(result))["n"].value)  # type: ignore[union-attr]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "epar_graph.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_load_puts_a_release_into_the_engine_and_switches_without_a_mixture(
    serve_data_dir: Path, embedded: OxigraphStore, tmp_path: Path
) -> None:
    with oxigraph_server(tmp_path / "engine", read_only=False) as url:
        loaded = _cli("load", str(serve_data_dir), "--to", url + "/store")
        assert loaded.returncode == 0, loaded.stderr
        store = RemoteStore(url + "/query", default_timeout=30, dataset=plan(serve_data_dir).dataset())
        assert sorted(map(str, store.triples())) == sorted(map(str, embedded.triples()))
        graph = LINKS_GRAPH
        sparql = "SELECT ?s ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
        linked = _rows(embedded.query(sparql, named_graphs=[graph]))
        assert linked and _rows(store.query(sparql, named_graphs=[graph])) == linked
        old = _count(store)

        # the next release: 20,000 more triples, so its load takes a while; queries during it see
        # one release or the other (a loader that replaced the graphs one by one would show others)
        newer = tmp_path / "newer"
        shutil.copytree(serve_data_dir, newer, ignore=shutil.ignore_patterns(".store"))
        label = "<http://www.w3.org/2000/01/rdf-schema#label>"
        added = 20_000
        with open(newer / "epar.nt", "a", encoding="utf-8") as f:
            f.writelines(f'<https://w3id.org/epar/product/EMEA-H-C-{n:06d}> {label} "N{n}" .\n' for n in range(added))
        seen: set[int] = set()
        failures: list[str] = []
        stop = threading.Event()
        settings = Settings(data_dir=newer, workers=1, store_url=url + "/query")

        def client(app_url: str) -> None:  # one of 8 clients of `serve --store` during the load
            with httpx.Client(base_url=app_url, timeout=60) as c:
                for _ in range(20_000):  # bounded; ends when the load does
                    if stop.is_set():
                        return
                    r = c.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
                              headers={"accept": JSON})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        seen.add(int(r.json()["results"]["bindings"][0]["n"]["value"]))

        with app_server(create_app(settings)) as app_url:
            clients = [threading.Thread(target=client, args=(app_url,), daemon=True) for _ in range(8)]
            for t in clients:
                t.start()
            try:
                assert wait_until(lambda: old in seen, 30)
                loaded = _cli("load", str(newer), "--to", url + "/store")
                assert wait_until(lambda: old + added in seen, 30)
            finally:
                stop.set()
                for t in clients:
                    t.join(timeout=60)
        assert loaded.returncode == 0, loaded.stderr
        assert failures == []
        assert _count(store) == old + added
        assert seen == {old, old + added}, seen  # each answer whole: the old release or the new
        with RemoteStore(url + "/query") as everything:  # no dataset: every graph the engine holds
            staged = _rows(everything.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"))
        assert not [g for (g,) in staged if "/graph/release/" in g], staged
        store.close()


def test_load_errors_are_one_line_with_the_step(serve_data_dir: Path, tmp_path: Path) -> None:
    down = _cli("load", str(serve_data_dir), "--to", f"http://127.0.0.1:{free_port()}/store")
    assert down.returncode == 1 and "cannot be reached" in down.stderr and "still serves" in down.stderr
    assert "Traceback" not in down.stderr
    not_a_release = _cli("load", str(tmp_path), "--to", "http://127.0.0.1:1/store")
    assert not_a_release.returncode == 2 and "Traceback" not in not_a_release.stderr
    no_update = _cli("load", str(serve_data_dir), "--to", "http://127.0.0.1:1/gsp")
    assert no_update.returncode == 2 and "--update" in no_update.stderr


_SAMPLE = re.compile(r"SAMPLE\s*\([^)]*\)\s+AS\s+\?(\w+)", re.IGNORECASE)
_GROUP_CONCAT = re.compile(r'GROUP_CONCAT\s*\([^;]*;\s*separator\s*=\s*"([^"]*)"\s*\)\s+AS\s+\?(\w+)', re.IGNORECASE)


def _bindings(c: httpx.Client, query: str) -> list[tuple[tuple[str, str], ...]]:
    """The answer's rows, with what SPARQL leaves to each engine set aside: which value SAMPLE picks
    (the column is dropped) and the order GROUP_CONCAT joins values in (they are sorted)."""
    r = c.get("/sparql", params={"query": query}, headers={"accept": JSON})
    assert r.status_code == 200, r.text[:500]
    sampled = set(_SAMPLE.findall(query))
    joined = {name: sep for sep, name in _GROUP_CONCAT.findall(query)}

    def value(name: str, text: str) -> str:
        return joined[name].join(sorted(text.split(joined[name]))) if joined.get(name) else text

    rows = r.json()["results"]["bindings"]
    return sorted(tuple(sorted((k, value(k, v["value"])) for k, v in row.items() if k not in sampled))
                  for row in rows)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_load_then_serve_store_serves_the_bundled_release(
    name: str, bundled_release: Path, bundled_server: LiveServer, tmp_path: Path
) -> None:
    """The whole bundled build (main graph, every link set, the history) through `load` and `serve --store`,
    answering as `serve` on the embedded store does."""
    with ENGINES[name](bundled_release, tmp_path) as endpoint:
        settings = Settings(data_dir=bundled_release, workers=1, store_url=endpoint)
        with app_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as remote, \
                httpx.Client(base_url=bundled_server.url, timeout=120) as embedded:
            page = remote.get("/product/EMEA-H-C-004258", headers={"accept": "text/html"})
            assert page.status_code == 200 and "Alofisel" in page.text
            counts = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
            assert _bindings(remote, counts) == _bindings(embedded, counts)
            graphs = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
            assert _bindings(remote, graphs) == _bindings(embedded, graphs)
            ran = 0
            for example in load_examples():
                if "SERVICE" not in example.query:
                    assert _bindings(remote, example.query) == _bindings(embedded, example.query), example.name
                    ran += 1
            assert ran >= 10
