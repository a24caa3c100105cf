"""``/changes`` (HTML, JSON, Atom) and the History section of product pages.

A real build of four reports cut from EMA's own (2018, 2023, January and
March 2026) is served by uvicorn on 127.0.0.1; the Atom feed is read with
feedparser, and a real browser (Debian chromium) follows a change to the
product's History section.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
import rdflib
from conftest import LiveServer, start_live_server

from epar_graph.pipeline import BuildResult, build
from epar_graph.serve.changes import FEED_SIZE, PAGE_SIZE
from epar_graph.serve.settings import Settings

CUTS = Path(__file__).parent / "data" / "read"
SOURCES = [CUTS / name for name in (
    "ema-epar-report-2018-12-23.xlsx", "ema-epar-report-2023-06.xlsx",
    "ema-medicines-report-2026-01-29.xlsx", "ema-medicines-report-2026-03-14.xlsx",
)]
ALOFISEL = "EMEA/H/C/004258"
EPAR = rdflib.Namespace("https://w3id.org/epar/ontology#")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    # the cuts list different products, which sounds the removal alarm: accepted here
    return build(SOURCES, tmp_path_factory.mktemp("changes") / "dist", with_links=False, accept_removals=True)


@pytest.fixture(scope="module")
def live_server(release: BuildResult) -> Iterator[LiveServer]:
    """This module's server (conftest's ``client`` talks to it): the build of the cut reports."""
    live = start_live_server(Settings(data_dir=release.out, workers=1))
    yield live
    live.stop()


def _json(client: httpx.Client, **params: str) -> dict:
    r = client.get("/changes", params={**params, "format": "json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_every_change_is_listed_newest_first(client: httpx.Client, release: BuildResult) -> None:
    total = sum(release.changes.values())
    doc = _json(client)
    assert doc["total"] == total and doc["pages"] == -(-total // PAGE_SIZE)
    dates = [c["date"] for c in doc["changes"]]
    assert dates == sorted(dates, reverse=True) and len(dates) == min(total, PAGE_SIZE)
    html = client.get("/changes").text
    assert f"{total} changes" in html
    assert client.get("/changes", headers={"accept": "application/json"}).json()["total"] == total


def test_filters_by_type_product_and_date(client: httpx.Client, release: BuildResult) -> None:
    status = _json(client, type="status")
    assert status["total"] == release.changes["status"] > 0
    assert {c["type"] for c in status["changes"]} == {"status"}
    alofisel = _json(client, product=ALOFISEL)
    assert alofisel["total"] > 0 and {c["product_label"] for c in alofisel["changes"]} == {"Alofisel"}
    [withdrawn] = _json(client, product=ALOFISEL, type="status")["changes"]
    assert (withdrawn["effective_date"], withdrawn["to_snapshot"]) == ("2024-12-13", "2026-01-29")
    window = _json(client, since="2024-12-01", until="2024-12-31")
    assert window["total"] > 0
    assert all("2024-12-01" <= c["date"] <= "2024-12-31" for c in window["changes"])
    html = client.get("/changes", params={"type": "status", "product": ALOFISEL}).text
    assert html.count('class="change"') == 1 and "Authorised → Withdrawn" in html


@pytest.mark.parametrize(("params", "words"), [
    ({"type": "bogus"}, "type"),
    ({"product": "EU/1/18/1244"}, "product"),
    ({"since": "2024-13-01"}, "since"),
    ({"page": "0"}, "page"),
    ({"page": "10000000"}, "page"),
])
def test_bad_filters_are_a_clear_400(client: httpx.Client, params: dict[str, str], words: str) -> None:
    for fmt in ("html", "json"):
        r = client.get("/changes", params={**params, "format": fmt})
        assert r.status_code == 400
        assert words in r.text
    assert client.get("/changes.atom", params=params).status_code == 400


def test_markup_in_a_filter_comes_back_escaped(client: httpx.Client) -> None:
    r = client.get("/changes", params={"product": "<script>alert(1)</script>"})
    text = r.text.lower()
    assert r.status_code == 400 and "<script>alert" not in text and "&lt;script&gt;alert" in text


def test_atom_feed_parses_with_a_real_feed_parser(client: httpx.Client, release: BuildResult) -> None:
    r = client.get("/changes.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert len(feed.entries) == min(FEED_SIZE, sum(release.changes.values()))
    first = feed.entries[0]
    assert first.id.startswith("https://w3id.org/epar/change/")
    assert re.search(r"/product/EMEA-[HV]-C-\d{6}#history$", first.link)
    assert client.get(first.link.split("#")[0].replace(str(client.base_url), "")).status_code == 200
    filtered = feedparser.parse(client.get("/changes.atom", params={"type": "status"}).content)
    assert {e.tags[0].term for e in filtered.entries} == {"status"}


def test_product_page_has_its_history(client: httpx.Client, release: BuildResult) -> None:
    g = rdflib.Graph().parse(release.out / "changes.nt", format="nt")
    product = rdflib.URIRef("https://w3id.org/epar/product/EMEA-H-C-004258")
    labels = {str(g.value(c, rdflib.RDFS.label)) for c in g.subjects(EPAR.changedProduct, product)}
    page = client.get("/product/EMEA-H-C-004258").text
    section = page.split('id="history"', 1)[1].split("</section>", 1)[0]
    assert section.count('class="change"') == len(labels) > 0
    for label in labels:
        assert label.split("): ", 1)[1].replace("→", "&rarr;") in section or label.split("): ", 1)[1] in section
    change = client.get("/change/EMEA-H-C-004258/2026-01-29/authorisationStatus")
    assert change.status_code == 200 and "Withdrawn" in change.text
    snapshot = client.get("/snapshot/2026-01-29", headers={"accept": "text/turtle"})
    assert snapshot.status_code == 200 and "2026-01-29" in snapshot.text


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_browser_follows_a_change_to_the_history_section(live_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright
    from test_serve_ui_browser import CHROMIUM_ARGS, WAIT_MS

    assert shutil.which(CHROMIUM)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = chromium.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{live_server.url}/changes")
            page.select_option("select[name=type]", "status")
            page.fill("input[name=product]", ALOFISEL)
            page.click("form.filters button[type=submit]")
            page.wait_for_url(re.compile(r".*/changes\?.*type=status.*"))
            row = page.locator("tr.change").first
            text = row.locator("td").nth(3).inner_text()
            assert "Authorised → Withdrawn" in text
            row.locator("a.product").click()
            page.wait_for_url(re.compile(r".*/product/EMEA-H-C-004258#history$"))
            history = page.locator("#history")
            assert history.is_visible()
            assert "status Authorised → Withdrawn" in history.inner_text()
            assert "2024-12-13" in history.inner_text()
        finally:
            chromium.close()


def test_dates_shown_are_dates(client: httpx.Client) -> None:
    for c in _json(client)["changes"]:
        dt.date.fromisoformat(c["date"])
