"""The query page and entity pages in a real browser (Debian chromium, headless).

A real uvicorn server on 127.0.0.1 (random port) serves the real routers over
the fixture graph; playwright drives ``/usr/bin/chromium``. Every request the
browser makes is recorded, so a page that reaches for another host fails.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Dialog, Page, sync_playwright

from epar_graph.serve import ui

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds playwright waits for an element; generous for a 2-core machine, never asserted on.
WAIT_MS = 30_000

if not Path(CHROMIUM).exists():  # pragma: no cover - the CI image has it
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def screenshot(page: Page, path: Path, *, full_page: bool) -> Path:
    """Save a screenshot of ``page`` at ``path`` (a test's ``tmp_path``) and check it is a PNG image."""
    page.screenshot(path=str(path), full_page=full_page)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1_000, (path, len(data))
    return path


@dataclass
class Server:
    url: str
    thread: threading.Thread
    server: uvicorn.Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from test_serve_pages import serve_fixture

    with serve_fixture(tmp_path_factory.mktemp("browser")) as app:
        yield from _serve(app)


def _serve(app: FastAPI) -> Iterator[Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", thread, srv)
    srv.should_exit = True
    thread.join(10)
    sock.close()


@dataclass
class Browser:
    """A browser page plus what it did: every request URL and every dialog it opened."""

    page: Page
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    assert shutil.which(CHROMIUM)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Chromium) -> Iterator[Browser]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    b = Browser(page)
    page.on("request", lambda req: b.requests.append(req.url))

    def on_dialog(dialog: Dialog) -> None:
        b.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: b.errors.append(str(exc)))
    yield b
    context.close()


def only_local(requests: list[str], origin: str) -> list[str]:
    """Requests that went anywhere but our server (data: URLs are not requests to a host)."""
    return [u for u in requests if not (u.startswith(origin + "/") or u.startswith(("data:", "blob:")))]


def test_query_page_runs_an_example_and_shows_the_table(server: Server, browser: Browser, tmp_path: Path) -> None:
    page = browser.page
    page.goto(server.url + "/")
    page.wait_for_selector(".yasqe .CodeMirror")
    example = next(e for e in ui.load_examples() if e.name.startswith("05-"))
    page.select_option("#examples", example.name)
    assert page.inner_text("#example-description") == example.description
    page.click("#example-run")
    rows = page.locator(".yasr table.dataTable tbody tr")
    rows.first.wait_for()
    titles = rows.all_inner_texts()
    # the fixture has three Alofisel documents; each is a row of the result table
    assert len(titles) == 3
    assert any("Public assessment report" in t for t in titles)
    editor_text = page.evaluate("() => window.eparYasgui.getTab().getQuery()")
    assert editor_text == example.query
    screenshot(page, tmp_path / "epar-ui-query.png", full_page=False)
    # entity IRIs in the results open here, not at w3id.org
    page.get_by_label("Ellipse").uncheck()  # show whole cells, so the link itself takes the click
    link = page.locator(".yasr table.dataTable tbody a[href*='/document/']").first
    with page.context.expect_page() as opened:
        link.click()
    doc = opened.value
    doc.wait_for_load_state()
    assert doc.url.startswith(server.url + "/document/EMEA-H-C-004258/")
    assert "Alofisel" in doc.inner_text("h1")
    doc.close()
    assert only_local(browser.requests, server.url) == []
    assert any(u.startswith(server.url + "/sparql") for u in browser.requests)
    assert browser.dialogs == []
    assert browser.errors == []


def test_product_page_links_to_its_holder(server: Server, browser: Browser, tmp_path: Path) -> None:
    page = browser.page
    page.goto(server.url + "/product/EMEA-H-C-004258")
    assert page.inner_text("h1") == "Alofisel"
    screenshot(page, tmp_path / "epar-ui-product.png", full_page=True)
    page.click("a[href='/organisation/takeda-pharma-a-s']")
    page.wait_for_url(server.url + "/organisation/takeda-pharma-a-s")
    assert page.inner_text("h1") == "Takeda Pharma A/S"
    held = page.locator("section.products li").all_inner_texts()
    assert sorted(held) == ["Alofisel", "Entyvio"]
    screenshot(page, tmp_path / "epar-ui-holder.png", full_page=True)
    assert only_local(browser.requests, server.url) == []


def test_hostile_product_renders_as_text_without_dialogs(server: Server, browser: Browser, tmp_path: Path) -> None:
    page = browser.page
    page.goto(server.url + "/product/EMEA-H-C-999999")
    assert page.inner_text("h1") == "<script>alert(1)</script>"
    assert page.title() == "<script>alert(1)</script> · EPAR graph"
    body = page.inner_text("main")
    assert "Evil & Co <svg onload=alert(5)>" in body
    assert "<b>bold</b> & <i onmouseover=alert(4)>hover</i>" in body
    page.hover("main")
    screenshot(page, tmp_path / "epar-ui-xss.png", full_page=True)
    assert browser.dialogs == []
    assert page.locator("main script, main img, main svg").count() == 0


def test_hostile_labels_in_query_results_stay_text(server: Server, browser: Browser) -> None:
    page = browser.page
    page.goto(server.url + "/")
    page.wait_for_selector(".yasqe .CodeMirror")
    query = (
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
        'SELECT ?s ?label WHERE { ?s rdfs:label ?label FILTER(CONTAINS(?label, "<")) }'
    )
    page.evaluate("(q) => { window.eparYasgui.getTab().setQuery(q); }", query)
    page.evaluate("() => { window.eparYasgui.getTab().query(); }")
    rows = page.locator(".yasr table.dataTable tbody tr")
    rows.first.wait_for()
    text = " ".join(rows.all_inner_texts())
    assert "<script>alert(1)</script>" in text
    assert browser.dialogs == []
    assert only_local(browser.requests, server.url) == []


def test_editor_completes_prefixes_and_terms_without_other_hosts(server: Server, browser: Browser) -> None:
    page = browser.page
    page.goto(server.url + "/")
    page.wait_for_selector(".yasqe .CodeMirror")
    page.evaluate("() => { window.eparYasgui.getTab().setQuery(''); }")
    page.click(".yasqe .CodeMirror-code")
    page.keyboard.type("PREFIX ep")
    hints = page.locator(".CodeMirror-hints li")
    hints.first.wait_for()
    assert "epar: <https://w3id.org/epar/ontology#>" in hints.all_inner_texts()
    page.keyboard.press("Escape")
    query = "PREFIX epar: <https://w3id.org/epar/ontology#>\nSELECT * WHERE { ?a "
    page.evaluate(
        "(q) => { const y = window.eparYasgui.getTab().getYasqe();"
        " y.setValue(q); y.setCursor(y.lineCount(), 0); y.focus(); }",
        query,
    )
    page.keyboard.type("epar:hol")
    page.keyboard.press("Control+Space")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.CodeMirror-hints li')]"
        ".some(li => li.textContent === 'epar:holder')"
    )
    assert only_local(browser.requests, server.url) == []


def test_results_show_plain_values_local_links_and_come_into_view(
    server: Server, chromium: Chromium, tmp_path: Path
) -> None:
    """A phone-sized screen: undeclared common prefixes work, the answer scrolls into view,
    cells show plain values with a subdued datatype or language, and IRIs link here."""
    context = chromium.new_context(viewport={"width": 390, "height": 700})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    try:
        page.goto(server.url + "/")
        page.wait_for_selector(".yasqe .CodeMirror")
        query = (
            "SELECT ?product (COUNT(?doc) AS ?documents) (STRLANG(\"x\", \"en\") AS ?tag) WHERE {\n"
            "  ?product a epar:MedicinalProduct ; rdfs:label \"Alofisel\" .\n"
            "  OPTIONAL { ?product epar:document ?doc }\n"
            "} GROUP BY ?product"
        )
        page.evaluate("(q) => { window.eparYasgui.getTab().setQuery(q); }", query)
        page.evaluate("() => { window.scrollTo(0, 0); window.eparYasgui.getTab().query(); }")
        row = page.locator(".yasr table.dataTable tbody tr").first
        row.wait_for()
        page.wait_for_function("() => document.querySelector('.yasr').getBoundingClientRect().top < innerHeight")
        cells = row.locator("td").all_inner_texts()
        assert not any('"^^' in c or "^^<" in c for c in cells), cells
        metas = row.locator(".literal-meta").all_inner_texts()
        assert "xsd:integer" in metas and "@en" in metas, metas
        link = row.locator("a.iri").first
        assert link.evaluate("a => a.href") == server.url + "/product/EMEA-H-C-004258"
        assert link.get_attribute("title") == "https://w3id.org/epar/product/EMEA-H-C-004258"
        assert link.inner_text() != ""
        screenshot(page, tmp_path / "epar-ui-phone.png", full_page=False)
        assert only_local(requests, server.url) == []
    finally:
        context.close()


def test_syntax_error_points_at_the_place(server: Server, browser: Browser) -> None:
    page = browser.page
    page.goto(server.url + "/")
    page.wait_for_selector(".yasqe .CodeMirror")
    page.evaluate("(q) => { window.eparYasgui.getTab().setQuery(q); }", "SELECT * WHERE {\n  ?s foo:bar ?o }")
    page.evaluate("() => { window.eparYasgui.getTab().query(); }")
    message = page.locator(".yasr .errorMessage, .yasr .errorResult").first
    message.wait_for()
    text = page.locator(".yasr").inner_text()
    assert "foo:" in text and "^" in text, text
    assert browser.dialogs == []
