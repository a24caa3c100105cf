"""The /sparql endpoint against a real server, modelled on the W3C SPARQL 1.1 Protocol tests.

Names in ``test_w3c_*`` follow the query tests of
https://www.w3.org/2009/sparql/docs/tests/data-sparql11/protocol/manifest (query via
GET / URL-encoded POST / direct POST, dataset parameters, content negotiation,
bad methods, multiple queries, wrong media types, non-UTF-8, updates refused).
Expected values are computed from the fixture files, not written down.

The protocol tests run against the app on each store it can use (:func:`backend`): the
embedded one, Oxigraph server and Virtuoso (``serve --store URL``). The client sees one
endpoint whatever is behind it. Tests of the embedded store's own machinery (its workers,
time limit, row cap, request limits, calls to allowed SERVICE endpoints) run on it only.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph
import pytest
from conftest import (
    ALL_DUMPS,
    ALOFISEL,
    EXPLOSIVE_QUERY,
    LINK_DUMPS,
    LINKS_DUMP,
    LINKS_GRAPH,
    SCRIPT_PRODUCT,
    SERVE_DATA,
    LiveServer,
    link_graph,
    wait_until,
)
from engines import ENGINES, Engines, app_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epar_graph import sparql_text
from epar_graph.serve import create_app
from epar_graph.serve.negotiation import negotiate, parse_accept
from epar_graph.serve.querycheck import parsed_service_endpoints
from epar_graph.serve.settings import Settings, SettingsError
from epar_graph.serve.sparql import refused_services, service_endpoints, unescape_codepoints

FORM = "application/x-www-form-urlencoded"
RESULTS_JSON = "application/sparql-results+json"
PRODUCTS = "SELECT ?p WHERE { ?p a <https://w3id.org/epar/ontology#MedicinalProduct> } ORDER BY ?p"
COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def fixture_graph() -> set[pyoxigraph.Triple]:
    """Every triple of the fixture build's dumps (what the default graph must hold)."""
    triples: set[pyoxigraph.Triple] = set()
    for name in ALL_DUMPS:
        quads = pyoxigraph.parse(path=str(SERVE_DATA / name), format=pyoxigraph.RdfFormat.N_TRIPLES)
        triples |= {q.triple for q in quads}
    return triples


def expected_products() -> list[str]:
    rdf_type = pyoxigraph.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    product = pyoxigraph.NamedNode("https://w3id.org/epar/ontology#MedicinalProduct")
    return sorted(str(t.subject)[1:-1] for t in fixture_graph() if t.predicate == rdf_type and t.object == product)


def json_column(response: httpx.Response, var: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [b[var]["value"] for b in response.json()["results"]["bindings"] if var in b]


def csv_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a SPARQL CSV answer, header dropped (pyoxigraph does not read CSV back: it is lossy)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [tuple(row) for row in rows[1:]]


def count_of(response: httpx.Response) -> int:
    (value,) = json_column(response, "n")
    return int(value)


# --- the app on each store ---------------------------------------------------------------------

#: Where the app keeps its data, as test ids: the embedded store, then each engine behind ``serve --store``.
BACKENDS = ["embedded", *sorted(ENGINES)]


@dataclass(frozen=True)
class Backend:
    """The app on one store: which store, and the URL the app answers at."""

    name: str
    url: str


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, serve_data_dir: Path) -> Iterator[Backend]:
    """The app on each store, started once per module; the engines are the run's (see ``engines``)."""
    if request.param == "embedded":
        live: LiveServer = request.getfixturevalue("live_server")
        yield Backend(request.param, live.url)
        return
    engines: Engines = request.getfixturevalue("engines")
    settings = Settings(data_dir=serve_data_dir, workers=1, store_url=engines.endpoint(request.param))
    with app_server(create_app(settings)) as url:
        yield Backend(request.param, url)


@pytest.fixture
def sparql_client(backend: Backend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.url, timeout=60.0) as c:
        yield c


# --- W3C protocol: query operation ---------------------------------------------------------


def test_w3c_query_get(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": PRODUCTS}, headers={"Accept": RESULTS_JSON})
    assert r.headers["content-type"].startswith(RESULTS_JSON)
    assert json_column(r, "p") == expected_products()


def test_w3c_query_post_form(sparql_client: httpx.Client) -> None:
    r = sparql_client.post("/sparql", data={"query": PRODUCTS}, headers={"Accept": RESULTS_JSON})
    assert json_column(r, "p") == expected_products()


def test_w3c_query_post_direct(sparql_client: httpx.Client) -> None:
    r = sparql_client.post(
        "/sparql",
        content=PRODUCTS.encode(),
        headers={"Content-Type": "application/sparql-query; charset=utf-8", "Accept": RESULTS_JSON},
    )
    assert json_column(r, "p") == expected_products()


def test_default_graph_holds_every_dump_triple(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": COUNT_ALL})
    assert count_of(r) == len(fixture_graph())


def _links_count() -> int:
    links = pyoxigraph.parse(path=str(SERVE_DATA / LINKS_DUMP), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return len(list(links))


def test_w3c_query_dataset_default_graphs_get(sparql_client: httpx.Client) -> None:
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("query", COUNT_ALL), ("default-graph-uri", LINKS_GRAPH), ("default-graph-uri", "http://example.org/none")
    ]
    assert count_of(sparql_client.get("/sparql", params=params)) == _links_count()


def test_w3c_query_dataset_default_graphs_post(sparql_client: httpx.Client) -> None:
    r = sparql_client.post(
        "/sparql", content=COUNT_ALL.encode(), params={"default-graph-uri": LINKS_GRAPH},
        headers={"Content-Type": "application/sparql-query"},
    )
    assert count_of(r) == _links_count()


def test_w3c_query_dataset_named_graphs_get_and_post(sparql_client: httpx.Client) -> None:
    query = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
    for r in (
        sparql_client.get("/sparql", params={"query": query, "named-graph-uri": LINKS_GRAPH}),
        sparql_client.post("/sparql", data={"query": query, "named-graph-uri": LINKS_GRAPH}),
    ):
        assert json_column(r, "g") == [LINKS_GRAPH]
        assert count_of(r) == _links_count()
    # naming only graphs for GRAPH leaves the default graph empty, as the protocol says
    r = sparql_client.get("/sparql", params={"query": "ASK { ?s ?p ?o }", "named-graph-uri": LINKS_GRAPH})
    assert r.json()["boolean"] is False


def test_w3c_query_dataset_full_protocol_overrides_from(sparql_client: httpx.Client) -> None:
    query = "SELECT (COUNT(*) AS ?n) FROM <http://example.org/empty> WHERE { ?s ?p ?o }"
    assert count_of(sparql_client.get("/sparql", params={"query": query})) == 0
    r = sparql_client.get("/sparql", params={"query": query, "default-graph-uri": LINKS_GRAPH})
    assert count_of(r) == _links_count()


def test_w3c_query_multiple_dataset_from_in_query(sparql_client: httpx.Client) -> None:
    query = f"SELECT (COUNT(*) AS ?n) FROM <{LINKS_GRAPH}> FROM NAMED <{LINKS_GRAPH}> WHERE {{ ?s ?p ?o }}"
    assert count_of(sparql_client.get("/sparql", params={"query": query})) == _links_count()


def test_invalid_graph_iri_is_400(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": COUNT_ALL, "default-graph-uri": "not an iri"})
    assert r.status_code == 400
    assert "Traceback" not in r.text


# --- content negotiation ---------------------------------------------------------------------

SELECT_LABELS = (
    "SELECT ?s ?label WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY ?s ?label"
)


def _value(term: object) -> str:
    assert isinstance(term, pyoxigraph.NamedNode | pyoxigraph.Literal)
    return term.value


def _label_triples() -> set[pyoxigraph.Triple]:
    label = "http://www.w3.org/2000/01/rdf-schema#label"
    return {t for t in fixture_graph() if t.predicate.value == label}


@pytest.mark.parametrize(
    ("accept", "media", "fmt"),
    [
        (RESULTS_JSON, RESULTS_JSON, pyoxigraph.QueryResultsFormat.JSON),
        ("application/sparql-results+xml", "application/sparql-results+xml", pyoxigraph.QueryResultsFormat.XML),
        ("text/tab-separated-values", "text/tab-separated-values", pyoxigraph.QueryResultsFormat.TSV),
        ("text/csv", "text/csv", pyoxigraph.QueryResultsFormat.CSV),
        ("application/sparql-results+json;q=0.5, text/tab-separated-values;q=0.9", "text/tab-separated-values",
         pyoxigraph.QueryResultsFormat.TSV),
        ("text/html, application/xml;q=0.9, */*;q=0.1", "application/xml", pyoxigraph.QueryResultsFormat.XML),
        ("*/*", RESULTS_JSON, pyoxigraph.QueryResultsFormat.JSON),
    ],
)
def test_w3c_query_content_type_select(sparql_client: httpx.Client, accept: str, media: str, fmt: object) -> None:
    r = sparql_client.get("/sparql", params={"query": SELECT_LABELS}, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media
    assert r.headers["x-result-truncated"] == "false"
    assert "Accept" in r.headers["vary"].split(", ")
    if fmt == pyoxigraph.QueryResultsFormat.CSV:  # CSV keeps only the lexical values
        assert set(csv_rows(r.text)) == {(_value(t.subject), _value(t.object)) for t in _label_triples()}
    else:
        solutions = pyoxigraph.parse_query_results(r.content, fmt)  # type: ignore[arg-type]
        assert isinstance(solutions, pyoxigraph.QuerySolutions)
        rows = {(str(s["s"]), str(s["label"])) for s in solutions}
        assert rows == {(str(t.subject), str(t.object)) for t in _label_triples()}


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_w3c_query_content_type_ask(sparql_client: httpx.Client, fmt: str) -> None:
    for query, expected in ((f"ASK {{ <{ALOFISEL}> ?p ?o }}", True), ("ASK { <http://example.org/x> ?p ?o }", False)):
        r = sparql_client.get("/sparql", params={"query": query, "format": fmt})
        assert r.status_code == 200, r.text
        if fmt in ("csv", "tsv"):
            assert r.text.strip().lower() == str(expected).lower()
        else:
            parsed = pyoxigraph.parse_query_results(r.content, getattr(pyoxigraph.QueryResultsFormat, fmt.upper()))
            assert bool(parsed) is expected


RDF_CASES = [
    ("text/turtle", pyoxigraph.RdfFormat.TURTLE),
    ("application/n-triples", pyoxigraph.RdfFormat.N_TRIPLES),
    ("application/ld+json", pyoxigraph.RdfFormat.JSON_LD),
    ("application/rdf+xml", pyoxigraph.RdfFormat.RDF_XML),
]


@pytest.mark.parametrize(("accept", "fmt"), RDF_CASES)
def test_w3c_query_content_type_describe(sparql_client: httpx.Client, accept: str, fmt: pyoxigraph.RdfFormat) -> None:
    r = sparql_client.get("/sparql", params={"query": f"DESCRIBE <{ALOFISEL}>"}, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == accept
    got = {q.triple for q in pyoxigraph.parse(r.content, fmt)}
    own = {t for t in fixture_graph() if t.subject == pyoxigraph.NamedNode(ALOFISEL)}
    assert own and own <= got


@pytest.mark.parametrize(("accept", "fmt"), RDF_CASES)
def test_w3c_query_content_type_construct(sparql_client: httpx.Client, accept: str, fmt: pyoxigraph.RdfFormat) -> None:
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o FILTER(?s = <{SCRIPT_PRODUCT}>) }}"
    r = sparql_client.get("/sparql", params={"query": query}, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    got = {q.triple for q in pyoxigraph.parse(r.content, fmt)}
    assert got == {t for t in fixture_graph() if t.subject == pyoxigraph.NamedNode(SCRIPT_PRODUCT)}


@pytest.mark.parametrize(
    ("name", "media"),
    [("turtle", "text/turtle"), ("ntriples", "application/n-triples"), ("jsonld", "application/ld+json"),
     ("rdfxml", "application/rdf+xml"), ("json", "application/ld+json")],
)
def test_format_parameter_for_graphs_overrides_accept(sparql_client: httpx.Client, name: str, media: str) -> None:
    r = sparql_client.get(
        "/sparql", params={"query": f"DESCRIBE <{ALOFISEL}>", "format": name}, headers={"Accept": "text/csv"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media


def test_not_acceptable_kind_is_406_with_the_choices(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": PRODUCTS}, headers={"Accept": "text/turtle"})
    assert r.status_code == 406
    assert "application/sparql-results+json" in r.text
    r = sparql_client.get("/sparql", params={"query": f"DESCRIBE <{ALOFISEL}>"}, headers={"Accept": RESULTS_JSON})
    assert r.status_code == 406
    assert "text/turtle" in r.text
    r = sparql_client.get("/sparql", params={"query": PRODUCTS}, headers={"Accept": "image/png"})
    assert r.status_code == 406


def test_unknown_format_parameter_is_400(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": PRODUCTS, "format": "yaml"})
    assert r.status_code == 400
    assert "yaml" in r.text and "json" in r.text
    for junk in ("\u00f0/\u00ac", "text/", "a/b/c", "text/csv;q=x"):  # not media types: no lenient */* here
        assert sparql_client.get("/sparql", params={"query": PRODUCTS, "format": junk}).status_code == 400
        assert sparql_client.get("/sparql", params={"format": junk}).status_code == 400


def test_format_parameter_may_be_a_media_type(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params={"query": PRODUCTS, "format": "text/tab-separated-values"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/tab-separated-values")
    r = sparql_client.get("/sparql", params={"format": "application/n-triples"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/n-triples"


def test_markup_in_data_is_returned_as_data(sparql_client: httpx.Client) -> None:
    query = f"SELECT ?l WHERE {{ <{SCRIPT_PRODUCT}> <http://www.w3.org/2000/01/rdf-schema#label> ?l }}"
    assert json_column(sparql_client.get("/sparql", params={"query": query}), "l") == ["<script>alert(1)</script>"]
    r = sparql_client.get("/sparql", params={"query": query, "format": "xml"})
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text


# --- W3C protocol: bad requests ------------------------------------------------------------


def test_w3c_bad_query_method(sparql_client: httpx.Client) -> None:
    for method in ("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
        r = sparql_client.request(method, "/sparql", params={"query": PRODUCTS})
        assert r.status_code == 405
        assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "POST"}
    r = sparql_client.request("TRACE", "/sparql")
    assert r.status_code == 405


def test_w3c_bad_multiple_queries(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", params=[("query", "ASK {}"), ("query", PRODUCTS)])
    assert r.status_code == 400
    assert "query" in r.text
    r = sparql_client.post("/sparql", content=b"ASK {}", params={"query": "ASK {}"},
                           headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "multipart/form-data; boundary=x"])
def test_w3c_bad_query_wrong_media_type(sparql_client: httpx.Client, content_type: str) -> None:
    r = sparql_client.post("/sparql", content=b"query=ASK%20%7B%7D", headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert "application/sparql-query" in r.text


def test_w3c_bad_query_missing_form_type(sparql_client: httpx.Client) -> None:
    r = sparql_client.post("/sparql", content=b"query=ASK%20%7B%7D")
    assert r.status_code == 415


def test_w3c_bad_query_non_utf8(sparql_client: httpx.Client) -> None:
    encoded = "SELECT%20*%20WHERE%20%7B%20?s%20?p%20%22%D8%22%20%7D"
    r = sparql_client.get(f"/sparql?query={encoded}")
    assert r.status_code == 400 and "UTF-8" in r.text
    r = sparql_client.post("/sparql", content=f"query={encoded}".encode(),
                           headers={"Content-Type": f"{FORM}; charset=ISO-8859-1"})
    assert r.status_code == 400 and "UTF-8" in r.text
    r = sparql_client.post("/sparql", content='SELECT * WHERE { ?s ?p "é" }'.encode("latin-1"),
                           headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 400 and "UTF-8" in r.text


def test_w3c_bad_query_syntax_is_a_readable_400(sparql_client: httpx.Client) -> None:
    for query in ("SELECT * WHERE { ?s ?p }", "SELEKT ?x", "ASK { FILTER( }"):
        r = sparql_client.get("/sparql", params={"query": query})
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/plain")
        assert "not valid SPARQL" in r.text
        assert "Traceback" not in r.text and "Error(" not in r.text


def test_common_prefixes_need_no_declaration(sparql_client: httpx.Client) -> None:
    query = f"SELECT ?l WHERE {{ <{ALOFISEL}> a epar:MedicinalProduct ; rdfs:label ?l }}"
    r = sparql_client.get("/sparql", params={"query": query})
    assert r.status_code == 200, r.text
    assert json_column(r, "l") == ["Alofisel"]
    own = "PREFIX rdfs: <http://example.org/not-rdfs#> ASK { ?s rdfs:label ?l }"
    assert sparql_client.get("/sparql", params={"query": own}).json()["boolean"] is False  # the query's own wins


def test_syntax_error_has_line_column_and_a_caret(sparql_client: httpx.Client) -> None:
    r = sparql_client.post("/sparql", data={"query": "SELECT ?p WHERE {\n  ?p a foo:Thing .\n}"})
    assert r.status_code == 400
    first, text, caret = r.text.rstrip("\n").splitlines()
    assert "line 2, column " in first and "unknown prefix foo:" in first
    assert caret.index("^") == text.index("foo:")
    assert len(r.text) < 400


def test_relative_iris_resolve_against_the_endpoint(sparql_client: httpx.Client, backend: Backend) -> None:
    r = sparql_client.get("/sparql", params={"query": "CONSTRUCT { <s> <p> 1 } WHERE {}"},
                          headers={"Accept": "application/n-triples"})
    assert r.status_code == 200, r.text
    (triple,) = {q.triple for q in pyoxigraph.parse(r.content, pyoxigraph.RdfFormat.N_TRIPLES)}
    assert triple.subject == pyoxigraph.NamedNode(backend.url + "/s")
    own = sparql_client.get("/sparql", params={"query": "BASE <http://example.org/a/> SELECT (<b> AS ?x) {}"})
    assert json_column(own, "x") == ["http://example.org/a/b"]
    # a relative BASE is read against the endpoint, and each declaration against the BASE before it
    chained = "BASE <a/> PREFIX ex: <c/> BASE <../d/> SELECT (<b> AS ?x) (ex:e AS ?y) {}"
    r = sparql_client.get("/sparql", params={"query": chained})
    assert json_column(r, "x") == [backend.url + "/d/b"]
    assert json_column(r, "y") == [backend.url + "/a/c/e"]


def test_missing_or_empty_query(sparql_client: httpx.Client) -> None:
    assert sparql_client.post("/sparql", data={"default-graph-uri": LINKS_GRAPH}).status_code == 400
    assert sparql_client.get("/sparql", params={"query": "  "}).status_code == 400


def test_w3c_update_is_refused_and_data_unchanged(sparql_client: httpx.Client) -> None:
    before = count_of(sparql_client.get("/sparql", params={"query": COUNT_ALL}))
    update = "INSERT DATA { <http://example.org/s> <http://example.org/p> <http://example.org/o> }"
    attempts = [
        sparql_client.get("/sparql", params={"update": update}),
        sparql_client.post("/sparql", data={"update": update}),
        sparql_client.post("/sparql", content=update.encode(), headers={"Content-Type": "application/sparql-update"}),
        sparql_client.post("/sparql", data={"query": update}),
        sparql_client.post("/sparql", data={"update": f"DELETE WHERE {{ <{ALOFISEL}> ?p ?o }}"}),
    ]
    assert [r.status_code for r in attempts] == [403, 403, 403, 400, 403]
    assert "read-only" in attempts[0].text
    assert count_of(sparql_client.get("/sparql", params={"query": COUNT_ALL})) == before
    r = sparql_client.get("/sparql", params={"query": "ASK { <http://example.org/s> ?p ?o }"})
    assert r.json()["boolean"] is False


# --- service description ---------------------------------------------------------------------

SD = "http://www.w3.org/ns/sparql-service-description#"
SHACL = "http://www.w3.org/ns/shacl#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_SEE_ALSO = "http://www.w3.org/2000/01/rdf-schema#seeAlso"


@dataclass(frozen=True)
class ServiceDescription:
    """A service description as triples, and the endpoint it describes."""

    graph: set[pyoxigraph.Triple]
    endpoint: pyoxigraph.NamedNode

    def objects(self, s: object, p: str) -> set[object]:
        return {t.object for t in self.graph if t.subject == s and t.predicate.value == p}

    def dataset(self) -> pyoxigraph.NamedNode:
        (dataset,) = self.objects(self.endpoint, SD + "defaultDataset")
        assert isinstance(dataset, pyoxigraph.NamedNode)
        return dataset


def service_description(client: httpx.Client, url: str, accept: str, fmt: pyoxigraph.RdfFormat) -> ServiceDescription:
    """The description ``GET /sparql`` gives the app at ``url``, parsed."""
    r = client.get("/sparql", headers={"Accept": accept})
    assert r.status_code == 200
    graph = {q.triple for q in pyoxigraph.parse(r.content, fmt)}
    return ServiceDescription(graph, pyoxigraph.NamedNode(url + "/sparql"))


@pytest.mark.parametrize(("accept", "fmt"), RDF_CASES + [("*/*", pyoxigraph.RdfFormat.TURTLE)])
def test_service_description(sparql_client: httpx.Client, backend: Backend, accept: str,
                             fmt: pyoxigraph.RdfFormat) -> None:
    sd = service_description(sparql_client, backend.url, accept, fmt)
    endpoint = sd.endpoint
    assert pyoxigraph.NamedNode(SD + "Service") in sd.objects(endpoint, RDF_TYPE)
    assert sd.objects(endpoint, SD + "endpoint") == {endpoint}
    assert sd.objects(endpoint, SD + "supportedLanguage") == {pyoxigraph.NamedNode(SD + "SPARQL11Query")}
    json_results = pyoxigraph.NamedNode("http://www.w3.org/ns/formats/SPARQL_Results_JSON")
    assert json_results in sd.objects(endpoint, SD + "resultFormat")
    assert not sd.objects(endpoint, SD + "feature")  # federation is off by default
    dataset = sd.dataset()
    assert pyoxigraph.NamedNode(backend.url + "/.well-known/void") in sd.objects(dataset, RDFS_SEE_ALSO)
    (default_graph,) = sd.objects(dataset, SD + "defaultGraph")
    assert isinstance(default_graph, pyoxigraph.NamedNode)
    declared = {
        next(iter(sd.objects(d, SHACL + "prefix"))).value: next(iter(sd.objects(d, SHACL + "namespace"))).value
        for d in sd.objects(endpoint, SHACL + "declare") if isinstance(d, pyoxigraph.NamedNode)
    }
    assert declared == sparql_text.COMMON_PREFIXES


def test_service_description_counts_the_dataset(sparql_client: httpx.Client, backend: Backend) -> None:
    """The sizes: what the embedded store recorded when it loaded the build, or what the engine counts."""
    sd = service_description(sparql_client, backend.url, "application/n-triples", pyoxigraph.RdfFormat.N_TRIPLES)
    dataset = sd.dataset()
    (default_graph,) = sd.objects(dataset, SD + "defaultGraph")
    (triples,) = sd.objects(default_graph, "http://rdfs.org/ns/void#triples")
    assert isinstance(triples, pyoxigraph.Literal) and int(triples.value) == len(fixture_graph())
    names = {n for g in sd.objects(dataset, SD + "namedGraph") for n in sd.objects(g, SD + "name")}
    assert names == {pyoxigraph.NamedNode(link_graph(name)) for name in LINK_DUMPS}


def test_browser_without_query_is_sent_to_the_ui(sparql_client: httpx.Client) -> None:
    r = sparql_client.get("/sparql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_service_description_lists_federation_when_allowed(limited_client: httpx.Client) -> None:
    r = limited_client.get("/sparql", headers={"Accept": "application/n-triples"})
    assert f"<{SD}BasicFederatedQuery>" in r.text


# --- federation ------------------------------------------------------------------------------


def test_service_refused_by_default(sparql_client: httpx.Client) -> None:
    query = "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }"
    r = sparql_client.get("/sparql", params={"query": query})
    assert r.status_code == 403
    assert "<http://127.0.0.1:1/sparql>" in r.text


def test_service_allowed_endpoint_is_called(limited_client: httpx.Client, live_server: LiveServer) -> None:
    label = "http://www.w3.org/2000/01/rdf-schema#label"
    query = f"SELECT ?l WHERE {{ SERVICE <{live_server.url}/sparql> {{ <{ALOFISEL}> <{label}> ?l }} }}"
    assert json_column(limited_client.get("/sparql", params={"query": query}), "l") == ["Alofisel"]
    other = query.replace(f"{live_server.url}/sparql", "http://127.0.0.1:1/sparql")
    assert limited_client.get("/sparql", params={"query": other}).status_code == 403


# Queries that call out, as pyoxigraph reads them; each must be detected.
_E = "http://127.0.0.1:{port}/sparql"
CALLING = [
    "SELECT * {{ SERVICE <{e}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ sErViCe <{e}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ SERVICE<{e}>{{ ?s ?p ?o }} }}",
    "SELECT * {{ SERVICE SILENT <{e}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ SERVICE#comment }}\n<{e}> {{ ?s ?p ?o }} }}",
    "PREFIX : <{e}> SELECT * {{ SERVICE: {{ ?s ?p ?o }} }}",
    "PREFIX x: <{b}> SELECT * {{ SERVICEx:sparql {{ ?s ?p ?o }} }}",
    "PREFIX x: <{b}> SELECT * {{ SERVICESILENT x:sparql {{ ?s ?p ?o }} }}",
    "PREFIX x: <{b}> SELECT * {{ ?a ?b ?c.SERVICE x:sparql {{ ?s ?p ?o }} }}",
    "BASE <{b}> SELECT * {{ SERVICE <sparql> {{ ?s ?p ?o }} }}",
    "SELECT * {{ SERVICE <{eu}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ {{ SELECT * {{ SERVICE <{e}> {{ ?s ?p ?o }} }} }} }}",
    "SELECT * {{ OPTIONAL {{ SERVICE SILENT <{e}> {{ ?s ?p ?o }} }} }}",
    "SELECT * {{ ?s ?p ?o FILTER(?o != \"}}\") SERVICE <{e}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ VALUES ?e {{ <{e}> }} SERVICE ?e {{ ?s ?p ?o }} }}",
]
# Queries that mention "service" without calling out: no false alarm.
HARMLESS = [
    "SELECT * { ?s ?p \"SERVICE <http://127.0.0.1:1/> { }\" }",
    "SELECT * { ?s ?p ?o } # SERVICE <http://127.0.0.1:1/> { }",
    "SELECT * { ?s <https://schema.org/serviceType> ?o }",
    "PREFIX schema: <https://schema.org/> SELECT * { ?s schema:serviceType ?service }",
    "PREFIX service: <http://example.org/> SELECT * { ?s ?p ?o }",
    "SELECT ?service { ?service ?p ?o }",
    "SELECT * { ?s ?p '''SERVICE <http://127.0.0.1:1/> {}''' }",
]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def _answer(self) -> None:
        type(self).hits.append(self.path)
        body = b'{"head":{"vars":[]},"results":{"bindings":[]}}'
        self.send_response(200)
        self.send_header("Content-Type", RESULTS_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self._answer()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def recording_endpoint() -> Iterator[int]:
    """A local SPARQL-ish endpoint that records every call: the oracle for 'pyoxigraph called out'."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _calls_out(query: str) -> bool:
    _Recorder.hits.clear()
    store = pyoxigraph.Store()
    store.add(pyoxigraph.Quad(pyoxigraph.NamedNode("http://a"), pyoxigraph.NamedNode("http://p"),
                              pyoxigraph.Literal("x")))
    try:
        result = store.query(query)
        if not isinstance(result, pyoxigraph.QueryBoolean):
            list(result)
    except (SyntaxError, OSError, RuntimeError, ValueError):
        pass
    return bool(_Recorder.hits)


def _fill(template: str, port: int) -> str:
    e = _E.format(port=port)
    eu = e.replace("sparql", "\\u0073parql")
    return template.format(e=e, b=e.removesuffix("sparql"), eu=eu)


@pytest.mark.parametrize("template", CALLING)
def test_service_detection_catches_what_pyoxigraph_calls(recording_endpoint: int, template: str) -> None:
    query = _fill(template, recording_endpoint)
    endpoint = _E.format(port=recording_endpoint)
    if "VALUES ?e" not in template:
        assert _calls_out(query), "the oracle should see this query call out"
    found = service_endpoints(query)
    assert found, query
    assert found <= {endpoint, None}
    assert refused_services(query, frozenset())
    if None not in found:
        assert not refused_services(query, frozenset({endpoint}))


@pytest.mark.parametrize("query", HARMLESS)
def test_service_detection_has_no_false_alarm_on_common_queries(recording_endpoint: int, query: str) -> None:
    assert not _calls_out(query)
    assert service_endpoints(query) == set()


# Glued forms pyoxigraph reads as SERVICE clauses and the SPARQL grammar of the parse tree does not:
# the tree reading gives nothing for them, the text reading names their endpoint.
GLUED = {
    "PREFIX x: <{b}> SELECT * {{ SERVICEx:sparql {{ ?s ?p ?o }} }}",
    "PREFIX x: <{b}> SELECT * {{ SERVICESILENT x:sparql {{ ?s ?p ?o }} }}",
}


@pytest.mark.parametrize("template", CALLING)
def test_parse_tree_names_the_endpoint_of_every_query_it_parses(recording_endpoint: int, template: str) -> None:
    query = _fill(template, recording_endpoint)
    expected: set[str | None] = {None} if "SERVICE ?e" in template else {_E.format(port=recording_endpoint)}
    parsed = parsed_service_endpoints(unescape_codepoints(query))
    assert parsed == (set() if template in GLUED else expected), query
    assert parsed <= service_endpoints(query)


@pytest.mark.parametrize("query", HARMLESS)
def test_parse_tree_finds_no_service_in_a_harmless_query(query: str) -> None:
    assert parsed_service_endpoints(query) == set()


def test_parse_tree_resolves_declarations_in_order() -> None:
    """A PREFIX IRI against the BASE before it, the SERVICE IRI against the last BASE."""
    query = (
        "BASE <http://a.example/> PREFIX p: <one/> BASE <two/> PREFIX q: <three/> "
        "SELECT * { SERVICE p:x {} SERVICE q:y\\.z {} SERVICE <four> {} SERVICE r:undeclared {} }"
    )
    assert parsed_service_endpoints(query) == {
        "http://a.example/one/x",
        "http://a.example/two/three/y.z",
        "http://a.example/two/four",
        None,
    }
    # both readings count: the text reading may add endpoints, never lose the tree's
    assert parsed_service_endpoints(query) <= service_endpoints(query)


def test_parse_tree_reads_deep_queries_without_recursion() -> None:
    deep = "SELECT * " + "{ " * 5_000 + "SERVICE <http://x.example/> { ?s ?p ?o }" + " }" * 5_000
    assert parsed_service_endpoints(deep) == {"http://x.example/"}


_CASES = st.sampled_from(["SERVICE", "service", "Service", "sErVIce"])
_GAPS = st.sampled_from([" ", "\n", "\t", "  ", " #c\n", "#SERVICE <http://x/>\n"])
_PLACES = st.sampled_from([
    "SELECT * {{ {svc} }}",
    "SELECT * {{ ?a ?b ?c . {svc} }}",
    "SELECT * {{ ?a ?b ?c.{svc} }}",
    "SELECT * {{ OPTIONAL {{ {svc} }} }}",
    "SELECT * {{ {{ SELECT * {{ {svc} }} }} }}",
    "SELECT * {{ ?a ?b \"{{ \\\" }}\" . {svc} }}",
    "SELECT * {{ ?a ?b 'it''s' . {svc} }}",
    "ASK {{ {svc} }}",
    "CONSTRUCT {{ ?s ?p ?o }} WHERE {{ {svc} }}",
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keyword=_CASES,
    gap1=_GAPS,
    gap2=_GAPS,
    silent=st.booleans(),
    form=st.sampled_from(["iri", "pname", "empty-prefix", "base", "escaped"]),
    place=_PLACES,
)
def test_service_detection_property(
    recording_endpoint: int, keyword: str, gap1: str, gap2: str, silent: bool, form: str, place: str
) -> None:
    """Whatever pyoxigraph calls, the detector names (or flags as unknown)."""
    endpoint = _E.format(port=recording_endpoint)
    base = endpoint.removesuffix("sparql")
    prologue, target = {
        "iri": ("", f"<{endpoint}>"),
        "pname": (f"PREFIX ex: <{base}> ", "ex:sparql"),
        "empty-prefix": (f"PREFIX : <{base}> ", ":sparql"),
        "base": (f"BASE <{base}> ", "<sparql>"),
        "escaped": ("", f"<{base}\\u0073parql>"),
    }[form]
    svc = f"{keyword}{gap1}{'SILENT' + gap2 if silent else ''}{target}{gap2}{{ ?s ?p ?o }}"
    query = prologue + place.format(svc=svc)
    called = _calls_out(query)
    found = service_endpoints(query)
    if called:
        assert found and found <= {endpoint, None}, query
        # nothing here is glued: the parse tree alone names the endpoint
        assert parsed_service_endpoints(unescape_codepoints(query)) == {endpoint}, query
    if found == {endpoint}:
        assert not refused_services(query, frozenset({endpoint}))


def test_unescape_codepoints() -> None:
    assert unescape_codepoints("S\\u0045RVICE \\U0001F600") == "SERVICE \U0001f600"
    assert unescape_codepoints("\\uD800") == "\\uD800"  # a lone surrogate stays as written


# --- limits ----------------------------------------------------------------------------------


def test_timeout_stops_a_runaway_query_and_frees_the_worker(
    limited_server: LiveServer, limited_client: httpx.Client
) -> None:
    before = set(limited_server.store.worker_pids())
    r = limited_client.get("/sparql", params={"query": EXPLOSIVE_QUERY})
    assert r.status_code == 503
    assert "limit" in r.text
    # the next query is answered
    r = limited_client.get("/sparql", params={"query": f"ASK {{ <{ALOFISEL}> ?p ?o }}"})
    assert r.status_code == 200 and r.json()["boolean"] is True
    # the worker that ran away is gone and the pool is whole again
    assert wait_until(lambda: len(limited_server.store.worker_pids()) == limited_server.settings.workers)
    killed = before - set(limited_server.store.worker_pids())
    assert len(killed) == 1
    (pid,) = killed
    assert wait_until(lambda: not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0); its state says it is dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_result_cap_marks_truncation(limited_client: httpx.Client) -> None:
    cap = 5
    assert len(fixture_graph()) > cap
    for fmt in ("json", "xml", "tsv", "csv"):
        r = limited_client.get("/sparql", params={"query": "SELECT * { ?s ?p ?o }", "format": fmt})
        assert r.status_code == 200
        assert r.headers["x-result-truncated"] == "true"
        assert r.headers["x-result-limit"] == str(cap)
        if fmt == "csv":
            assert len(csv_rows(r.text)) == cap
        else:
            parsed = pyoxigraph.parse_query_results(r.content, getattr(pyoxigraph.QueryResultsFormat, fmt.upper()))
            assert len(list(parsed)) == cap  # type: ignore[arg-type]
    for limit, truncated in ((cap - 1, "false"), (cap, "false"), (cap + 1, "true")):
        r = limited_client.get("/sparql", params={"query": f"SELECT * {{ ?s ?p ?o }} LIMIT {limit}"})
        assert r.headers["x-result-truncated"] == truncated
        assert len(r.json()["results"]["bindings"]) == min(limit, cap)
    r = limited_client.get("/sparql", params={"query": "CONSTRUCT WHERE { ?s ?p ?o }", "format": "ntriples"})
    assert r.headers["x-result-truncated"] == "true"
    assert len(set(pyoxigraph.parse(r.content, pyoxigraph.RdfFormat.N_TRIPLES))) == cap
    r = limited_client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"})
    assert r.headers["x-result-truncated"] == "false"


def test_request_size_limit(limited_client: httpx.Client, limited_server: LiveServer) -> None:
    limit = limited_server.settings.max_request_bytes
    padding = "#" + "x" * limit + "\n"
    r = limited_client.post("/sparql", content=(padding + "ASK {}").encode(),
                            headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted while read
        yield padding.encode()
        yield b"ASK {}"

    r = limited_client.post("/sparql", content=chunks(), headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 413
    r = limited_client.get("/sparql", params={"query": padding + "ASK {}"})
    assert r.status_code == 414
    r = limited_client.post("/sparql", content=b"ASK {}", headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 200


# --- HTTP plumbing -----------------------------------------------------------------------------


def test_cors(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": "ASK {}"}, headers={"Origin": "https://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "X-Result-Truncated" in r.headers["access-control-expose-headers"]
    r = client.options(
        "/sparql",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )
    assert r.status_code == 200
    assert "POST" in r.headers["access-control-allow-methods"]


def test_gzip(client: httpx.Client) -> None:
    r = client.get("/sparql", params={"query": "SELECT * { ?s ?p ?o }"}, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.json()["results"]["bindings"]) == len(fixture_graph())
    raw = client.get("/sparql", params={"query": "SELECT * { ?s ?p ?o }"}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    with client.stream("GET", "/sparql", params={"query": "SELECT * { ?s ?p ?o }"},
                       headers={"Accept-Encoding": "gzip"}) as s:
        body = b"".join(s.iter_raw())
    assert json.loads(gzip.decompress(body)) == raw.json()


def test_large_answer_arrives_whole(client: httpx.Client) -> None:
    """Answers larger than a pipe buffer cross from the worker intact (several hundred kB here)."""
    query = "SELECT * { ?s ?p ?o . ?x a <https://w3id.org/epar/ontology#MedicinalProduct> }"
    for _ in range(3):
        r = client.get("/sparql", params={"query": query}, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        assert len(r.content) > 200_000
        assert len(r.json()["results"]["bindings"]) == len(fixture_graph()) * len(expected_products())


def test_openapi_documents_the_endpoint(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    get_params = {p["name"] for p in spec["paths"]["/sparql"]["get"]["parameters"]}
    assert {"query", "default-graph-uri", "named-graph-uri", "format"} <= get_params
    assert "application/sparql-query" in spec["paths"]["/sparql"]["post"]["requestBody"]["content"]


# --- the command --------------------------------------------------------------------------------


#: Runs the ``epar-graph`` command with the test interpreter (no dependence on PATH).
CLI = "import sys; from epar_graph.cli import main; sys.argv[0] = 'epar-graph'; main()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command_serves_a_build(tmp_path: Path) -> None:
    data = tmp_path / "dist"
    data.mkdir()
    (data / "epar.nt").write_bytes((SERVE_DATA / "epar.nt").read_bytes())
    port = _free_port()
    args = ["serve", "--data", str(data), "--port", str(port), "--query-timeout", "5"]
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/sparql", params={"query": "ASK {}"}).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None
        assert wait_until(up, limit=60) and proc.poll() is None
        r = httpx.get(f"http://127.0.0.1:{port}/sparql", params={"query": PRODUCTS})
        assert json_column(r, "p") == expected_products()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (data / ".store").is_dir()


def test_serve_command_without_a_dump_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CLI, "serve", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "epar.nt" in proc.stderr and "Traceback" not in proc.stderr


def test_concurrent_queries_share_the_workers(client: httpx.Client, live_server: LiveServer) -> None:
    """More simultaneous queries than workers: each waits its turn and gets its own answer."""
    queries = [f"SELECT ?l WHERE {{ <{p}> <http://www.w3.org/2000/01/rdf-schema#label> ?l }}"
               for p in expected_products()] * 4
    assert len(queries) > 3 * live_server.settings.workers

    async def run_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as ac:
            return await asyncio.gather(*(ac.get("/sparql", params={"query": q}) for q in queries))

    responses = asyncio.run(run_all())
    labels = {t.subject: _value(t.object) for t in _label_triples()}
    for query, r in zip(queries, responses, strict=True):
        subject = pyoxigraph.NamedNode(query.split("<")[1].split(">")[0])
        assert json_column(r, "l") == [labels[subject]]


def test_default_serve_builds_the_bundled_data_first(tmp_path: Path, bundled_release: Path) -> None:
    """`epar-graph serve` with no --data builds dist/ when it has no dump, then serves it.

    The build is the one `epar-graph build` makes (the session's shared bundled build)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/sparql", params={"query": "ASK {}"}).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None
        assert wait_until(up, limit=300) and proc.poll() is None
        r = httpx.get(f"http://127.0.0.1:{port}/sparql", params={"query": COUNT_ALL})
        assert count_of(r) > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (tmp_path / "dist" / "epar.nt").read_bytes() == (bundled_release / "epar.nt").read_bytes()


# --- settings ----------------------------------------------------------------------------------


def test_settings_from_environment(tmp_path: Path) -> None:
    env = {
        "EPAR_QUERY_TIMEOUT": "2.5",
        "EPAR_MAX_ROWS": "10",
        "EPAR_SERVICE_ALLOWLIST": "http://a.example/sparql, http://b.example/sparql",
        "EPAR_QUERY_WORKERS": "3",
    }
    s = Settings.from_env(tmp_path, env, query_timeout=4.0)
    assert s.query_timeout == 4.0  # an explicit value wins over the environment
    assert s.max_rows == 10 and s.workers == 3
    assert s.service_allowlist == frozenset({"http://a.example/sparql", "http://b.example/sparql"})
    assert s.resolved_store_dir == tmp_path / ".store"
    with pytest.raises(SettingsError, match="EPAR_MAX_ROWS"):
        Settings.from_env(tmp_path, {"EPAR_MAX_ROWS": "many"})
    with pytest.raises(SettingsError, match="timeout"):
        Settings(data_dir=tmp_path, query_timeout=0)


# --- content negotiation (the Accept parser) ---------------------------------------------------

_TOKENS = st.sampled_from(["text", "application", "image", "*"])
_SUBTYPES = st.sampled_from(["turtle", "sparql-results+json", "csv", "html", "ld+json", "*"])
_Q = st.integers(0, 1000).map(lambda n: n / 1000)


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_accept_parser_never_fails(header: str) -> None:
    ranges = parse_accept(header)
    assert ranges and all(0.0 <= r.q <= 1.0 for r in ranges)
    negotiate(header, ["text/turtle", "application/sparql-results+json"])


@settings(max_examples=200)
@given(st.lists(st.tuples(_TOKENS, _SUBTYPES, _Q, st.booleans()), min_size=1, max_size=6))
def test_accept_parser_reads_back_what_was_written(elements: list[tuple[str, str, float, bool]]) -> None:
    elements = [(t, sub, q, p) for t, sub, q, p in elements if not (t == "*" and sub != "*")]
    if not elements:
        return
    charset = '; charset="utf-8"'
    header = " , ".join(f"{t}/{sub}{charset if param else ''};q={q:.3f}" for t, sub, q, param in elements)
    parsed = parse_accept(header)
    assert [(r.type, r.subtype, r.q) for r in parsed] == [(t, sub, round(q, 3)) for t, sub, q, _ in elements]
    assert [r.params for r in parsed] == [(("charset", "utf-8"),) if p else () for *_, p in elements]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["text/turtle", "text/csv", "application/ld+json", "text/html"]), _Q),
                min_size=1, max_size=4, unique_by=lambda e: e[0]))
def test_negotiation_picks_the_highest_weight(weights: list[tuple[str, float]]) -> None:
    offers = ["application/ld+json", "text/turtle", "text/csv"]
    header = ", ".join(f"{m};q={q:.3f}" for m, q in weights)
    chosen = negotiate(header, offers)
    q_of = {m: round(q, 3) for m, q in weights}
    acceptable = [o for o in offers if q_of.get(o, 0) > 0]
    if not acceptable:
        assert chosen is None
        return
    best = max(q_of[o] for o in acceptable)
    assert chosen is not None and q_of[chosen] == best
    # among equal weights the client's order decides
    assert chosen == next(m for m, q in weights if m in offers and round(q, 3) == best)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/*;q=0.5, text/turtle;q=0", "text/csv"),  # the specific range wins over the wildcard
        ("*/*;q=0.1, application/*;q=0.9", "application/ld+json"),
        ('text/turtle;profile="a,b";q=0.2, text/csv;q=0.3', "text/csv"),  # a comma inside quotes
        ("garbage;;;, text/csv", "text/csv"),
        ("text/turtle;q=2, text/csv", "text/csv"),  # an invalid q drops the element
        ("", "application/ld+json"),
        ("image/png", None),
    ],
)
def test_negotiation_cases(accept: str, expected: str | None) -> None:
    assert negotiate(accept, ["application/ld+json", "text/turtle", "text/csv"]) == expected
