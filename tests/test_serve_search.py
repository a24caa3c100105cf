"""Search and browse on the bundled release, over HTTP and in a real browser (Debian chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def web(bundled_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bundled_server.url, timeout=60.0) as c:
        yield c


def _search(web: httpx.Client, q: str, **params: str) -> list[dict]:
    r = web.get("/search", params={"q": q, **params}, headers={"accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.mark.parametrize(("q", "label", "kind"), [
    ("humira", "Humira", "medicine"),
    ("Humira", "Humira", "medicine"),
    ("EMEA/H/C/004258", "Alofisel", "medicine"),
    ("darvadstrocel", "darvadstrocel", "substance"),
    ("L04AB04", "L04AB04", "atc"),
    ("VeroBlue", "VeroBlue-3", "medicine"),
])
def test_the_obvious_answer_comes_first(web: httpx.Client, q: str, label: str, kind: str) -> None:
    first = _search(web, q)[0]
    assert (first["label"], first["kind"]) == (label, kind)
    assert first["href"].startswith("/")


def test_a_typo_still_finds_the_substance_and_its_medicines(web: httpx.Client) -> None:
    hits = _search(web, "adalimumb")
    assert hits[0]["label"] == "adalimumab" and hits[0]["kind"] == "substance"
    assert "Humira" in {h["label"] for h in hits if h["kind"] == "medicine"}


def test_former_names_and_holders_find_medicines(web: httpx.Client) -> None:
    hits = _search(web, "Abasaglar (previously Abasria)", kind="medicine")
    assert hits[0]["label"].startswith("Abasaglar")
    holders = _search(web, "AbbVie", kind="organisation")
    assert holders and all(h["kind"] == "organisation" for h in holders)


def test_hostile_queries_are_bounded_and_escaped(web: httpx.Client) -> None:
    assert isinstance(_search(web, "x" * 10_000), list)  # answered (200), whatever it finds
    r = web.get("/search", params={"q": '<script>alert("x")</script> " OR 1'})
    assert r.status_code == 200 and "<script>alert" not in r.text
    assert isinstance(_search(web, '"adal" AND NEAR('), list)  # FTS syntax in a query is just text
    assert _search(web, "   ") == []


def test_browse_medicines_a_to_z_with_filters(web: httpx.Client) -> None:
    page = web.get("/medicines", params={"letter": "H"}).text
    assert ">Humira</a>" in page
    names = re.findall(r'<td><a href="/product/[^"]+">([^<]+)</a>', page)
    assert names and all(n[0].upper() == "H" for n in names)
    withdrawn = web.get("/medicines", params={"status": "Withdrawn", "category": "Veterinary"}).text
    rows = re.findall(r"<tr><td><a href=\"/product/(EMEA-[HV]-C-\d+)\">[^<]*</a></td><td>([^<]*)</td><td>([^<]*)</td>",
                      withdrawn)
    assert rows and {(s, c) for _p, s, c in rows} == {("Withdrawn", "Veterinary")}
    assert all(p.startswith("EMEA-V-C-") for p, _s, _c in rows)
    by_atc = web.get("/medicines", params={"atc": "L04AB"}).text
    assert ">Humira</a>" in by_atc


def test_organisations_substances_and_the_atc_tree(web: httpx.Client) -> None:
    orgs = web.get("/organisations").text
    assert "AbbVie Deutschland GmbH &amp; Co. KG" in orgs and "medicines" in orgs
    assert "adalimumab" in web.get("/substances").text
    atc = web.get("/atc").text
    assert "L04AB04" in atc and "/medicines?atc=L04AB04" in atc


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_browser_search_to_product_to_holder_to_its_medicines(bundled_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright
    from test_serve_ui_browser import CHROMIUM_ARGS, WAIT_MS

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = chromium.new_page()
            page.set_default_timeout(WAIT_MS)
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(f"{bundled_server.url}/medicines")
            box = page.locator("form.site-search input[name=q]")
            box.fill("humira")
            suggestion = page.locator("#search-suggestions option").first
            suggestion.wait_for(state="attached")
            assert "Humira" in (suggestion.get_attribute("value") or "")
            box.press("Enter")
            page.wait_for_url(re.compile(r".*/search\?q=humira"))
            page.locator("li.result a.hit", has_text="Humira").first.click()
            page.wait_for_url(re.compile(r".*/product/EMEA-H-C-000481$"))
            assert page.inner_text("h1") == "Humira"
            page.locator("section.embedded a[href^='/organisation/']").first.click()
            page.wait_for_url(re.compile(r".*/organisation/.+"))
            held = page.locator("section.products").inner_text()
            assert "Humira" in held
            typo = chromium.new_page()
            typo.goto(f"{bundled_server.url}/search?q=adalimumb")
            assert "adalimumab" in typo.locator("ol.results").inner_text()
            assert [u for u in requests if not u.startswith(bundled_server.url)] == []
        finally:
            chromium.close()


def test_concept_pages_list_medicine_names_with_status_and_date(web: httpx.Client) -> None:
    page = web.get("/status/withdrawn").text
    section = page.split('class="medicines"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr><td><a href="/product/[^"]+">([^<]+)</a></td><td>([^<]*)</td><td class="date">([^<]*)</td>',
                      section)
    assert rows and {status for _n, status, _d in rows} == {"Withdrawn"}
    assert not any(name.startswith("Marketing authorisation") for name, _s, _d in rows)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) for _n, _s, date in rows if date)
    r = web.get("/sparql", params={"query": """PREFIX epar: <https://w3id.org/epar/ontology#>
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT (COUNT(DISTINCT ?p) AS ?n) { ?p a epar:MedicinalProduct ; epar:authorisation/epar:authorisationStatus
        <https://w3id.org/epar/status/withdrawn> }"""}, headers={"accept": "application/sparql-results+json"})
    assert len(rows) == int(r.json()["results"]["bindings"][0]["n"]["value"])
    atc = web.get("/atc/L04AB").text  # a group lists the medicines of its narrower codes
    assert ">Humira</a>" in atc.split('class="medicines"', 1)[1]


def test_entity_jsonld_is_compact_with_the_published_context(web: httpx.Client) -> None:
    from pyld import jsonld

    context = web.get("/context.jsonld").json()
    for path in ("/product/EMEA-H-C-004258", "/organisation/takeda-pharma-a-s", "/atc/L04",
                 "/change/EMEA-H-C-004258/2026-01-29/authorisationStatus", "/substance/adalimumab"):
        doc = web.get(path, headers={"accept": "application/ld+json"}).json()
        assert doc["@context"] == context["@context"]
        node = next(n for n in doc.get("@graph", [doc]) if n["id"].endswith(path))
        assert "type" in node and not any(k.startswith("http://www.w3.org/1999/02/22-rdf") for k in node)
        assert jsonld.compact(jsonld.expand(doc), context) == doc  # offline: the context is inline
    expanded = web.get("/product/EMEA-H-C-004258",
                       headers={"accept": 'application/ld+json;profile="http://www.w3.org/ns/json-ld#expanded"'})
    assert isinstance(expanded.json(), list) and "@context" not in expanded.text


def test_void_is_a_page_for_browsers_and_turtle_for_programs(web: httpx.Client) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = web.get("/.well-known/void", headers={"accept": browser})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    h1 = text.index("<h1>")
    assert text[h1:].startswith("<h1>epar-graph") and 'class="site"' in text
    assert "ema-medicines-report-2026-03-14.xlsx" in text and "changes between EMA" in text
    assert text.index("ema-medicines-report-2026-03-14.xlsx") < text.index("Subsets")
    for accept in ("text/turtle", "*/*", None):
        r = web.get("/.well-known/void", headers={"accept": accept} if accept else {})
        assert r.headers["content-type"].startswith("text/turtle") and "@prefix" in r.text
        assert "Accept" in r.headers["vary"]


def test_downloads_page_has_the_site_header(web: httpx.Client) -> None:
    page = web.get("/downloads/", headers={"accept": "text/html"}).text
    assert 'class="site"' in page and "changes.nt" in page and "search.sqlite" not in page


def test_example_catalogue_runs_and_every_example_returns_rows(web: httpx.Client, bundled_server: LiveServer) -> None:
    import rdflib

    from epar_graph.serve.ui import load_examples

    r = web.get("/.well-known/sparql-examples")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    g = rdflib.Graph().parse(data=r.text, format="turtle")
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    schema = rdflib.Namespace("https://schema.org/")
    executables = set(g.subjects(rdflib.RDF.type, sh.SPARQLExecutable))
    files = [e for e in load_examples() if not e.name.startswith("federated-")]
    assert len(executables) == len(load_examples())
    for ex in files:
        node = rdflib.URIRef(f"https://w3id.org/epar/sparql-examples/{ex.name.removesuffix('.rq')}")
        assert g.value(node, rdflib.RDFS.comment) and g.value(node, schema.target) == rdflib.URIRef(
            bundled_server.url + "/sparql")
        query = str(g.value(node, sh.select) or g.value(node, sh.construct) or g.value(node, sh.ask))
        assert query == ex.query
        answer = web.post("/sparql", data={"query": query}, headers={"accept": "application/sparql-results+json"})
        assert answer.status_code == 200, (ex.name, answer.text[:300])
        assert answer.json()["results"]["bindings"], ex.name


def test_product_page_key_facts_come_first(web: httpx.Client) -> None:
    page = web.get("/product/EMEA-H-C-004258").text
    facts = page.split('class="key-facts"', 1)[1].split("</section>", 1)[0]
    assert "status-withdrawn" in facts and ">Withdrawn<" in facts and ">Human<" in facts
    assert "Takeda Pharma A/S</a> (Denmark)" in facts
    assert "2018-03-23" in facts and "2024-12-13" in facts and "darvadstrocel" in facts
    assert re.search(r"L Antineoplastic and immunomodulating agents</a> › <a [^>]+>L04", facts)
    assert 'href="https://www.ema.europa.eu/en/medicines/human/EPAR/alofisel"' in facts and "#history" in facts
    assert page.index('class="key-facts"') < page.index('class="properties"')


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_product_page_fits_a_phone(bundled_server: LiveServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright
    from test_serve_ui_browser import CHROMIUM_ARGS, WAIT_MS, screenshot

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            phone = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                         is_mobile=True, has_touch=True)
            page = phone.new_page()
            page.set_default_timeout(WAIT_MS)
            for path in ("/product/EMEA-H-C-000481", "/product/EMEA-H-C-004258", "/medicines?letter=H"):
                page.goto(bundled_server.url + path)
                page.wait_for_load_state()
                screenshot(page, tmp_path / (path.strip("/").replace("/", "_") + ".png"), full_page=True)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
            assert (tmp_path / "product_EMEA-H-C-000481.png").stat().st_size > 10_000
        finally:
            chromium.close()
