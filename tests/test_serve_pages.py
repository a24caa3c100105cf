"""Entity pages, /ontology, /shapes and the query page, over a small real graph.

The app under test is the real one (``create_app``) with the embedded store
loaded from ``tests/data/serve_pages/graph.ttl``; requests go through FastAPI's
test client (the browser tests start a real uvicorn server).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pyoxigraph
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyoxigraph import DefaultGraph, Literal, NamedNode, RdfFormat, Store, Triple

from epar_graph import config
from epar_graph.namespaces import EPAR, RDF, RDFS, SCHEMA, SH
from epar_graph.serve import create_app, entities, ui, vocabulary_pages
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import OxigraphStore

DATA = Path(__file__).parent / "data" / "serve_pages"
GRAPH = DATA / "graph.ttl"
BASE = "https://w3id.org/epar/"
ALOFISEL = BASE + "product/EMEA-H-C-004258"
HOSTILE = BASE + "product/EMEA-H-C-999999"
TTL = {"accept": "text/turtle"}
HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


# ---------------------------------------------------------------------------
# The real app over the fixture graph


@contextlib.contextmanager
def serve_fixture(tmp: Path, graph: Path = GRAPH) -> Iterator[FastAPI]:
    """``create_app`` with the embedded store loaded from ``graph`` (written as the build's epar.nt)."""
    data = tmp / "dist"
    data.mkdir(parents=True)
    with graph.open("rb") as f:
        triples = [Triple(q.subject, q.predicate, q.object) for q in pyoxigraph.parse(f, RdfFormat.TURTLE)]
    (data / "epar.nt").write_bytes(pyoxigraph.serialize(triples, format=RdfFormat.N_TRIPLES) or b"")
    settings = Settings(data_dir=data, workers=1, base=BASE)
    store = OxigraphStore.open(
        data, store_dir=settings.resolved_store_dir, base=BASE, workers=1, default_timeout=30.0
    )
    try:
        yield create_app(settings, store)
    finally:
        store.close()


class Oracle:
    """The fixture graph read independently of the server, to say what pages must show."""

    def __init__(self, path: Path = GRAPH) -> None:
        self.store = Store()
        self.store.load(path=str(path), format=RdfFormat.TURTLE)

    def describe(self, iri: str) -> list[Triple]:
        quads = self.store.quads_for_pattern(NamedNode(iri), None, None, DefaultGraph())
        return [Triple(q.subject, q.predicate, q.object) for q in quads]

    def triples(self) -> list[Triple]:
        return [Triple(q.subject, q.predicate, q.object) for q in self.store]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with serve_fixture(tmp_path_factory.mktemp("pages")) as app, TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def fixture_store() -> Oracle:
    return Oracle()


def path_of(iri: str) -> str:
    assert iri.startswith(BASE)
    return "/" + iri[len(BASE):]


def parse_rdf(body: bytes, fmt: RdfFormat) -> set[Triple]:
    return {Triple(q.subject, q.predicate, q.object) for q in pyoxigraph.parse(body, fmt)}


# ---------------------------------------------------------------------------
# A tiny HTML reader, so assertions are about elements and text, not substrings


class Page(HTMLParser):
    """Collects links, elements, attributes and visible text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self._open_a: list[list[str]] = []
        self._hrefs: list[str] = []
        self._title: list[str] = []
        self._in: list[str] = []
        self.html = html
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)
        if tag == "a":
            self._hrefs.append(dict(attrs).get("href") or "")
            self._open_a.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open_a:
            self.links.append((self._hrefs.pop(), "".join(self._open_a.pop()).strip()))
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        for parts in self._open_a:
            parts.append(data)
        if "title" in self._in:
            self._title.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    @property
    def title(self) -> str:
        return "".join(self._title).strip()

    def hrefs(self) -> set[str]:
        return {h for h, _ in self.links}

    def link_texts(self, href: str) -> list[str]:
        return [t for h, t in self.links if h == href]

    def elements(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def ontology_label(iri: str) -> str:
    """The label the ontology file gives a term (read independently of the code under test)."""
    store = Store()
    store.load(path=str(config.ONTOLOGY_FILE), format=RdfFormat.TURTLE)
    labels = [
        q.object.value
        for q in store.quads_for_pattern(NamedNode(iri), RDFS.label, None, None)
        if isinstance(q.object, Literal) and q.object.language in ("en", None)
    ]
    assert labels, f"the ontology has no label for {iri}"
    return labels[0]


# ---------------------------------------------------------------------------
# Every IRI of the fixture resolves


def all_subjects() -> list[str]:
    return sorted({t.subject.value for t in Oracle().triples() if t.subject.value.startswith(BASE)})


@pytest.mark.parametrize("iri", all_subjects())
def test_every_entity_iri_resolves_as_html_and_turtle(client: TestClient, iri: str) -> None:
    html = client.get(path_of(iri), headers=HTML)
    assert html.status_code == 200, iri
    assert html.headers["content-type"].startswith("text/html")
    assert "accept" in html.headers["vary"].lower()
    ttl = client.get(path_of(iri), headers=TTL)
    assert ttl.status_code == 200
    assert ttl.headers["content-type"].startswith("text/turtle")
    subjects = {t.subject for t in parse_rdf(ttl.content, RdfFormat.TURTLE)}
    assert NamedNode(iri) in subjects


def test_fixture_covers_every_kind_of_entity_path() -> None:
    roots = {iri[len(BASE):].split("/")[0] for iri in all_subjects()}
    expected = {"product", "authorisation", "procedure", "document", "organisation", "substance",
                "orphan-designation", "atc", "status", "scheme", "document-section",
                "document-type", "therapeutic-area", "pharmacotherapeutic-group"}
    assert expected <= roots
    assert expected <= set(entities.ENTITY_ROOTS)


# ---------------------------------------------------------------------------
# RDF representations


def test_turtle_holds_the_entity_triples_and_labels_of_what_it_links(
    client: TestClient, fixture_store: Oracle
) -> None:
    r = client.get(path_of(ALOFISEL), headers=TTL)
    got = parse_rdf(r.content, RdfFormat.TURTLE)
    own = set(fixture_store.describe(ALOFISEL))
    assert own <= got
    substance = NamedNode(BASE + "substance/darvadstrocel")
    assert Triple(substance, RDFS.label, Literal("darvadstrocel")) in got
    # nothing beyond the entity's triples and the labels of the IRIs it points at
    linked = {t.object for t in own if isinstance(t.object, NamedNode)}
    for t in got - own:
        assert t.predicate == RDFS.label and t.subject in linked


@pytest.mark.parametrize(
    ("accept", "fmt", "media"),
    [
        ("application/ld+json", RdfFormat.JSON_LD, "application/ld+json"),
        ("application/n-triples", RdfFormat.N_TRIPLES, "application/n-triples"),
        ("text/turtle;q=0.5, application/ld+json;q=0.9", RdfFormat.JSON_LD, "application/ld+json"),
        ("text/html;q=0.1, application/n-triples", RdfFormat.N_TRIPLES, "application/n-triples"),
        ("application/ld+json;q=0.2, text/turtle;q=0.8, text/html;q=0", RdfFormat.TURTLE, "text/turtle"),
    ],
)
def test_rdf_formats_by_accept_with_q_values(
    client: TestClient, fixture_store: Oracle, accept: str, fmt: RdfFormat, media: str
) -> None:
    r = client.get(path_of(ALOFISEL), headers={"accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media
    assert "accept" in r.headers["vary"].lower()
    assert set(fixture_store.describe(ALOFISEL)) <= parse_rdf(r.content, fmt)


@pytest.mark.parametrize(
    ("query", "fmt"),
    [("ttl", RdfFormat.TURTLE), ("jsonld", RdfFormat.JSON_LD), ("nt", RdfFormat.N_TRIPLES)],
)
def test_format_parameter_and_suffix_override_accept(
    client: TestClient, fixture_store: Oracle, query: str, fmt: RdfFormat
) -> None:
    own = set(fixture_store.describe(ALOFISEL))
    by_param = client.get(path_of(ALOFISEL), params={"format": query}, headers=HTML)
    assert by_param.status_code == 200
    assert own <= parse_rdf(by_param.content, fmt)
    by_suffix = client.get(path_of(ALOFISEL) + "." + query, headers=HTML)
    assert by_suffix.status_code == 200
    assert own <= parse_rdf(by_suffix.content, fmt)


def test_html_by_format_parameter_even_for_an_rdf_accept(client: TestClient) -> None:
    r = client.get(path_of(ALOFISEL), params={"format": "html"}, headers=TTL)
    assert r.headers["content-type"].startswith("text/html")


def test_bad_format_parameter_is_a_clear_400(client: TestClient) -> None:
    r = client.get(path_of(ALOFISEL), params={"format": "pdf"})
    assert r.status_code == 400
    assert "pdf" in r.text


@pytest.mark.parametrize(
    ("spelling", "short"),
    [("turtle", "ttl"), ("TTL", "ttl"), (" ttl ", "ttl"), ("json-ld", "jsonld"), ("json", "jsonld"),
     ("ntriples", "nt"), ("n-triples", "nt")],
)
def test_every_spelling_of_a_format_gives_what_its_short_name_gives(
    client: TestClient, spelling: str, short: str
) -> None:
    expected = client.get(path_of(ALOFISEL), params={"format": short})
    r = client.get(path_of(ALOFISEL), params={"format": spelling})
    assert r.status_code == expected.status_code == 200
    assert r.headers["content-type"] == expected.headers["content-type"]
    assert r.content == expected.content


@pytest.mark.parametrize("short", ["ttl", "jsonld", "nt"])
def test_pages_and_the_endpoint_mean_the_same_format_by_a_name(client: TestClient, short: str) -> None:
    page = client.get(path_of(ALOFISEL), params={"format": short})
    answer = client.get("/sparql", params={"query": f"DESCRIBE <{ALOFISEL}>", "format": short})
    assert page.status_code == answer.status_code == 200
    assert page.headers["content-type"].split(";")[0] == answer.headers["content-type"].split(";")[0]


def test_a_format_the_pages_do_not_write_is_a_400_naming_those_they_do(client: TestClient) -> None:
    r = client.get(path_of(ALOFISEL), params={"format": "rdfxml"})
    assert r.status_code == 400
    assert r.text == "Unknown format 'rdfxml'; use html, ttl, jsonld or nt\n"


def test_unacceptable_media_type_is_406(client: TestClient) -> None:
    r = client.get(path_of(ALOFISEL), headers={"accept": "image/png"})
    assert r.status_code == 406


def test_unknown_iri_is_404_html_for_people_and_text_for_rdf_clients(client: TestClient) -> None:
    r = client.get("/product/EMEA-H-C-000000", headers=HTML)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert BASE + "product/EMEA-H-C-000000" in Page(r.text).text
    r = client.get("/product/EMEA-H-C-000000", headers=TTL)
    assert r.status_code == 404
    assert not r.headers["content-type"].startswith("text/html")
    assert "accept" in r.headers["vary"].lower()


@pytest.mark.parametrize(
    "path",
    [
        "/product/x%3E%20%3Fp%20%3Fo%20%7D%20%23",  # would close the IRI in a query
        "/product/a%22b",
        "/substance/%3Cscript%3E",
        "/organisation/a%5Cb",
    ],
)
def test_paths_that_cannot_be_iris_are_404_not_errors(client: TestClient, path: str) -> None:
    r = client.get(path, headers=HTML)
    assert r.status_code == 404
    assert "<script>" not in r.text


# ---------------------------------------------------------------------------
# The HTML page


@pytest.fixture(scope="module")
def alofisel(client: TestClient) -> Page:
    r = client.get(path_of(ALOFISEL), headers=HTML)
    assert r.status_code == 200
    return Page(r.text)


def test_page_title_is_the_label_with_a_type_badge(alofisel: Page) -> None:
    assert alofisel.title.startswith("Alofisel")
    h1 = re.search(r"<h1>(.*?)</h1>", alofisel.html)
    assert h1 is not None and h1.group(1) == "Alofisel"
    badges = [t for h, t in alofisel.links if h == "/ontology#MedicinalProduct"]
    assert badges == [ontology_label(EPAR.MedicinalProduct.value)]


def test_properties_are_labelled_from_the_ontology(alofisel: Page) -> None:
    for term in (EPAR.activeSubstance, EPAR.therapeuticIndication, EPAR.isOrphan, EPAR.atcCode):
        anchor = "/ontology#" + term.value.rsplit("#", 1)[1]
        assert alofisel.link_texts(anchor) == [ontology_label(term.value)], term


def test_related_entities_are_local_links_with_labels(alofisel: Page) -> None:
    assert set(alofisel.link_texts("/substance/darvadstrocel")) == {"darvadstrocel"}  # key facts and properties
    assert "Rectal Fistula" in alofisel.link_texts("/therapeutic-area/rectal-fistula")
    assert not any(h.startswith(BASE) for h in alofisel.hrefs())


def test_embedded_authorisation_shows_holder_and_status(alofisel: Page) -> None:
    assert set(alofisel.link_texts("/organisation/takeda-pharma-a-s")) == {"Takeda Pharma A/S"}
    assert alofisel.link_texts("/status/withdrawn") == ["Withdrawn"]
    assert "2024-12-13" in alofisel.text


def test_literals_show_their_language_tag(client: TestClient) -> None:
    page = Page(client.get("/pharmacotherapeutic-group/immunosuppressants", headers=HTML).text)
    assert "免疫抑制剂 zh" in page.text
    assert "Immunosuppressants en" in page.text


def test_documents_table_is_sorted_by_date(client: TestClient, fixture_store: Oracle) -> None:
    html = client.get(path_of(ALOFISEL), headers=HTML).text
    section = html.split('<section class="documents">', 1)[1].split("</section>", 1)[0]
    shown = re.findall(r'<td class="date">([^<]*)</td>', section)
    docs = [t.object for t in fixture_store.describe(ALOFISEL) if t.predicate == EPAR.document]
    expected = sorted(
        str(t.object.value)
        for d in docs
        for t in fixture_store.describe(d.value)
        if t.predicate.value == "http://purl.org/dc/terms/issued"
    )
    assert shown == expected
    assert len(shown) == 3
    page = Page(section)
    assert "Changes since initial authorisation" in page.link_texts(
        "/document-section/changes-since-initial-authorisation"
    )
    assert page.link_texts("/document-type/public-statement") == ["Public statement"]


def test_questions_and_answers_in_position_order(alofisel: Page, fixture_store: Oracle) -> None:
    qs = [t.object.value for t in fixture_store.describe(ALOFISEL) if t.predicate == EPAR.overviewQuestion]
    by_pos = {}
    for q in qs:
        facts = {t.predicate: t.object for t in fixture_store.describe(q)}
        answer = {t.predicate: t.object for t in fixture_store.describe(facts[SCHEMA.acceptedAnswer].value)}
        by_pos[int(facts[SCHEMA.position].value)] = (facts[SCHEMA.name].value, answer[SCHEMA.text].value)
    text = alofisel.text
    positions = [text.index(by_pos[p][0] + " " + by_pos[p][1]) for p in sorted(by_pos)]
    assert positions == sorted(positions)


def test_alternate_representations_are_linked(alofisel: Page) -> None:
    alternates = {
        a["type"]: a["href"]
        for a in alofisel.elements("link")
        if a.get("rel") == "alternate"
    }
    assert alternates == {
        "text/turtle": "/product/EMEA-H-C-004258?format=ttl",
        "application/ld+json": "/product/EMEA-H-C-004258?format=jsonld",
        "application/n-triples": "/product/EMEA-H-C-004258?format=nt",
    }
    assert {"Turtle", "JSON-LD", "N-Triples"} <= {t for _, t in alofisel.links}


def test_external_iris_are_linked(client: TestClient) -> None:
    page = Page(client.get("/substance/darvadstrocel", headers=HTML).text)
    assert "http://www.wikidata.org/entity/Q27888297" in page.hrefs()


def test_substance_page_lists_its_products(client: TestClient) -> None:
    page = Page(client.get("/substance/darvadstrocel", headers=HTML).text)
    assert page.link_texts("/product/EMEA-H-C-004258") == ["Alofisel"]
    assert "Referenced by" in page.text


def test_holder_page_lists_the_medicines_it_holds(client: TestClient) -> None:
    page = Page(client.get("/organisation/takeda-pharma-a-s", headers=HTML).text)
    assert "Alofisel" in page.link_texts("/product/EMEA-H-C-004258")
    assert "Entyvio" in page.link_texts("/product/EMEA-H-C-002782")
    assert "Vallensbaek Strand" in page.text  # the address, shown inline


# ---------------------------------------------------------------------------
# Every literal is text


def hostile_literals(store: Oracle) -> list[str]:
    return sorted({t.object.value for t in store.triples() if isinstance(t.object, Literal) and "<" in t.object.value})


@pytest.mark.parametrize(
    "path",
    ["/product/EMEA-H-C-999999", "/organisation/evil-co", "/substance/x-script-alert-2-script",
     "/authorisation/EMEA-H-C-999999", "/status/authorised"],
)
def test_literals_are_escaped(client: TestClient, fixture_store: Oracle, path: str) -> None:
    html = client.get(path, headers=HTML).text
    page = Page(html)
    literals = hostile_literals(fixture_store)
    assert len(literals) >= 4
    for lit in literals:
        assert lit not in html
    # the one script is the site's own search box, from /static/; no inline or injected script
    assert [a.get("src") for a in page.elements("script")] == ["/static/search.js"]
    assert re.findall(r"<script[^>]*>([^<]+)</script>", html) == []
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert tag not in ("img", "svg", "b", "i")


def test_hostile_label_is_visible_as_text(client: TestClient) -> None:
    page = Page(client.get("/product/EMEA-H-C-999999", headers=HTML).text)
    assert page.title.startswith("<script>alert(1)</script>")
    assert "<script>alert(1)</script>" in page.text
    assert "Evil & Co <svg onload=alert(5)>" in page.link_texts("/organisation/evil-co")


# ---------------------------------------------------------------------------
# /ontology and /shapes


def ontology_terms() -> dict[str, str]:
    store = Store()
    store.load(path=str(config.ONTOLOGY_FILE), format=RdfFormat.TURTLE)
    out = {}
    for q in store.quads_for_pattern(None, RDFS.label, None, None):
        if isinstance(q.subject, NamedNode) and q.subject.value in EPAR:
            out[q.subject.value] = q.object.value
    return out


def test_ontology_page_lists_every_term_with_label_and_anchor(client: TestClient) -> None:
    r = client.get("/ontology", headers=HTML)
    assert r.status_code == 200
    page = Page(r.text)
    ids = {a.get("id") for _, a in page.tags}
    terms = ontology_terms()
    assert len(terms) >= 20
    for iri, label in terms.items():
        assert iri.rsplit("#", 1)[1] in ids, iri
        assert label in page.text
    # domains and ranges link within the page
    assert "#MedicinalProduct" in page.hrefs()


def test_ontology_as_turtle_and_json_ld(client: TestClient) -> None:
    r = client.get("/ontology", headers=TTL)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/turtle")
    assert r.content == config.ONTOLOGY_FILE.read_bytes()
    j = client.get("/ontology", headers={"accept": "application/ld+json"})
    assert parse_rdf(j.content, RdfFormat.JSON_LD) == parse_rdf(r.content, RdfFormat.TURTLE)


def test_build_shapes_renders_constraints_and_messages() -> None:
    path = DATA / "shapes.ttl"
    with path.open("rb") as f:
        shapes = vocabulary_pages.build_shapes(
            (Triple(q.subject, q.predicate, q.object) for q in pyoxigraph.parse(f, RdfFormat.TURTLE)),
            vocabulary_pages.turtle_prefixes(path.read_text()),
        )
    by_name = {s.name: s for s in shapes}
    assert set(by_name) == {"eparsh:AuthorisationShape", "eparsh:ProductShape"}
    auth = by_name["eparsh:AuthorisationShape"]
    assert auth.targets == ["sh:targetClass epar:MarketingAuthorisation"]
    paths = {p.path: p for p in auth.properties}
    assert set(paths) == {"epar:productNumber", "epar:authorisationDate",
                          "(epar:authorisationStatus skos:notation)"}
    status = paths["(epar:authorisationStatus skos:notation)"]
    assert status.constraints == ['sh:in ("Authorised" "Withdrawn" "Refused" "Suspended")']
    assert paths["epar:authorisationDate"].constraints == [
        "sh:or ([sh:datatype xsd:date] [sh:datatype xsd:dateTime])"
    ]
    assert auth.sparql[0][0] == "A withdrawal date is not before the authorisation date."
    product = by_name["eparsh:ProductShape"]
    assert product.description == "Every medicinal product has a name and exactly one authorisation."
    orphan = next(p for p in product.properties if p.path == "epar:isOrphan")
    assert orphan.severity == "Warning"
    assert set(orphan.constraints) == {"sh:maxCount 1", "sh:datatype xsd:boolean"}


def test_shapes_page_lists_every_shape_and_message(client: TestClient) -> None:
    r = client.get("/shapes", headers=HTML)
    assert r.status_code == 200, "shapes/epar.shacl.ttl must exist and parse"
    page = Page(r.text)
    store = Store()
    store.load(path=str(config.SHAPES_FILE), format=RdfFormat.TURTLE)
    node_shapes = {q.subject for q in store.quads_for_pattern(None, RDF.type, SH.NodeShape, None)}
    messages = {q.object.value for q in store.quads_for_pattern(None, SH.message, None, None)}
    assert node_shapes and messages
    prefixes = vocabulary_pages.turtle_prefixes(config.SHAPES_FILE.read_text())
    ids = {a.get("id") for _, a in page.tags}
    for shape in node_shapes:
        if isinstance(shape, NamedNode):
            local = shape.value.rsplit("#", 1)[-1]
            assert local in ids
            short = next((f"{p}:{local}" for p, ns in prefixes.items() if shape.value == ns + local), None)
            assert short is None or short in page.text
    for message in messages:
        assert " ".join(message.split()) in page.text
    ttl = client.get("/shapes", headers=TTL)
    assert ttl.content == config.SHAPES_FILE.read_bytes()


def test_shapes_page_escapes_messages(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SHAPES_FILE", DATA / "shapes.ttl")
    html = client.get("/shapes", headers=HTML).text
    assert "<Authorised> & co" not in html
    assert "&lt;Authorised&gt; &amp; co" in html


def test_broken_vocabulary_file_is_a_clear_error_and_pages_still_render(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.ttl"
    broken.write_text("@prefix sh: <http://www.w3.org/ns/shacl#> .\nsh:x sh:y .\n<unterminated\n")
    monkeypatch.setattr(config, "SHAPES_FILE", broken)
    monkeypatch.setattr(config, "ONTOLOGY_FILE", broken)
    for path in ("/shapes", "/ontology"):
        r = client.get(path, headers=HTML)
        assert r.status_code == 500
        assert r.text.startswith("broken.ttl cannot be read")
        assert "Traceback" not in r.text
    page = Page(client.get(path_of(ALOFISEL), headers=HTML).text)
    assert page.link_texts("/ontology#isOrphan") == ["is orphan"]  # the local name, readable


# ---------------------------------------------------------------------------
# The query page (its behaviour in a browser is in test_serve_ui_browser.py)


def test_query_page_offers_every_example(client: TestClient) -> None:
    r = client.get("/", headers=HTML)
    assert r.status_code == 200
    page = Page(r.text)
    examples = ui.load_examples()
    assert len(examples) >= 12
    options = [a.get("value") for a in page.elements("option")]
    assert options == [e.name for e in examples]
    data_block = r.text.split('<script id="ui-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    data = json.loads(data_block)
    assert data["endpoint"] == "/sparql"
    assert [e["query"] for e in data["examples"]] == [e.query for e in examples]
    for href in ("/downloads/", "/ontology", "/shapes", "/.well-known/void"):
        assert href in page.hrefs()


def test_query_page_loads_nothing_from_other_hosts(client: TestClient) -> None:
    page = Page(client.get("/", headers=HTML).text)
    refs = [a.get("src") for a in page.elements("script") if a.get("src")]
    refs += [a.get("href") for a in page.elements("link")]
    assert refs
    for ref in refs:
        assert ref and ref.startswith("/"), ref
        assert client.get(ref).status_code == 200, ref


def test_vendored_yasgui_has_its_licence() -> None:
    folder = ui.STATIC_DIR / "yasgui"
    assert "MIT License" in (folder / "LICENSE.txt").read_text()
    assert (folder / "yasgui.min.js").stat().st_size > 100_000


@pytest.mark.parametrize("path", ["/static/../entities.py", "/static/%2e%2e/entities.py", "/static/nope.css"])
def test_static_files_stay_inside_their_folder(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "router" not in r.text


def test_parse_example_reads_title_and_continued_description(tmp_path: Path) -> None:
    f = tmp_path / "01-x.rq"
    f.write_text("# title: Withdrawn medicines\n# description: Per year,\n#   with counts.\nSELECT * {}\n")
    e = ui.parse_example(f)
    assert (e.name, e.title, e.description) == ("01-x", "Withdrawn medicines", "Per year, with counts.")
    assert e.query.endswith("SELECT * {}\n")


def test_parse_example_without_title_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.rq"
    f.write_text("SELECT * {}\n")
    with pytest.raises(ui.ExampleError, match=r"bad\.rq.*title"):
        ui.parse_example(f)
