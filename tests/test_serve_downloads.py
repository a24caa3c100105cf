"""Downloads: the listing (HTML/JSON), files with ETag/Last-Modified/304, and the well-known paths."""

from __future__ import annotations

import email.utils
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import ALOFISEL, LINK_DUMPS, LiveServer

#: Files of the fixture build, with the media type each must be served as.
EXPECTED = {
    "epar.ttl": "text/turtle",
    "epar.nt": "application/n-triples",
    "epar.jsonld": "application/ld+json",
    "context.jsonld": "application/ld+json",
    "void.ttl": "text/turtle",
    "rejections.csv": "text/csv",
    **dict.fromkeys(LINK_DUMPS, "application/n-triples"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_listing_as_json(client: httpx.Client, live_server: LiveServer) -> None:
    r = client.get("/downloads/", headers={"Accept": "application/json"})
    assert r.status_code == 200
    files = {f["name"]: f for f in r.json()["files"]}
    assert set(files) == set(EXPECTED)
    data = live_server.settings.data_dir
    for name, entry in files.items():
        path = data / name
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == sha256(path)
        assert entry["mediaType"].split(";")[0] == EXPECTED[name]
        assert entry["url"] == f"{live_server.url}/downloads/{name}"
        assert entry["lastModified"].endswith("Z")
    assert not any(name.startswith(".") for name in files)  # the store cache is never listed


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def test_listing_as_html_links_every_file_with_its_checksum(client: httpx.Client, live_server: LiveServer) -> None:
    r = client.get("/downloads/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    parser = _Links()
    parser.feed(r.text)
    assert set(EXPECTED) <= set(parser.hrefs)
    for name in EXPECTED:
        assert sha256(live_server.settings.data_dir / name) in r.text


def test_listing_not_acceptable(client: httpx.Client) -> None:
    r = client.get("/downloads/", headers={"Accept": "image/png"})
    assert r.status_code == 406
    assert "accept" in r.headers["vary"].lower()  # another Accept gets another answer: caches must know


#: The headers every HTML page of the site answers with (see ``serve/site_html.py``).
PAGE_HEADERS = ("content-security-policy", "vary", "content-type")
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def site_header(html: str) -> str:
    """The shared top of a page: the site's header with its navigation and search box, and its script."""
    found = re.search(r'<header class="site">.*?</header>\s*<script [^>]*></script>', html, re.S)
    assert found is not None, "no site header"
    return found.group(0)


def test_listing_page_is_a_page_of_the_site(client: httpx.Client) -> None:
    listing = client.get("/downloads/", headers=BROWSER)
    entity = client.get("/" + ALOFISEL.removeprefix("https://w3id.org/epar/"), headers=BROWSER)
    assert listing.status_code == entity.status_code == 200
    assert {h: listing.headers.get(h) for h in PAGE_HEADERS} == {h: entity.headers.get(h) for h in PAGE_HEADERS}
    assert "default-src 'self'" in listing.headers["content-security-policy"]
    header = site_header(listing.text)
    assert header == site_header(entity.text)
    assert re.search(r'<form class="site-search" method="get" action="/search" role="search"', header)
    assert '<input name="q" type="search"' in header
    assert '<script src="/static/search.js" defer></script>' in header


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_download_with_validators(client: httpx.Client, live_server: LiveServer, name: str) -> None:
    path = live_server.settings.data_dir / name
    r = client.get(f"/downloads/{name}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.content == path.read_bytes()
    assert "content-encoding" not in r.headers  # the bytes match the published checksum
    assert r.headers["content-type"].split(";")[0] == EXPECTED[name]
    assert r.headers["etag"] == f'"{sha256(path)}"'
    modified = email.utils.parsedate_to_datetime(r.headers["last-modified"])
    assert int(modified.timestamp()) == int(path.stat().st_mtime)
    # conditional GETs
    assert client.get(f"/downloads/{name}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get(f"/downloads/{name}", headers={"If-None-Match": f'W/{r.headers["etag"]}'}).status_code == 304
    assert client.get(f"/downloads/{name}", headers={"If-None-Match": '"other", *'}).status_code == 304
    assert client.get(f"/downloads/{name}", headers={"If-None-Match": '"other"'}).status_code == 200
    since = r.headers["last-modified"]
    assert client.get(f"/downloads/{name}", headers={"If-Modified-Since": since}).status_code == 304
    long_ago = "Mon, 01 Jan 1990 00:00:00 GMT"
    assert client.get(f"/downloads/{name}", headers={"If-Modified-Since": long_ago}).status_code == 200
    # If-None-Match decides when both are sent
    both = {"If-None-Match": '"other"', "If-Modified-Since": since}
    assert client.get(f"/downloads/{name}", headers=both).status_code == 200
    assert client.get(f"/downloads/{name}", headers={"If-Modified-Since": "garbage"}).status_code == 200
    head = client.head(f"/downloads/{name}")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == r.headers["etag"]


def test_changed_file_gets_a_new_etag(client: httpx.Client, live_server: LiveServer) -> None:
    path = live_server.settings.data_dir / "rejections.csv"
    original = path.read_bytes()
    before = client.get("/downloads/rejections.csv").headers["etag"]
    try:
        path.write_bytes(original + b"other.csv,row 2,Name,empty\n")
        r = client.get("/downloads/rejections.csv", headers={"If-None-Match": before})
        assert r.status_code == 200
        assert r.headers["etag"] != before and r.content.endswith(b"empty\n")
    finally:
        path.write_bytes(original)


@pytest.mark.parametrize(
    "name",
    ["missing.nt", ".store", "..%2Fetc%2Fpasswd", "epar.nt.bak", "links-.nt", "%2e%2e", "epar.ttl%00"],
)
def test_only_release_files_are_served(client: httpx.Client, name: str) -> None:
    r = client.get(f"/downloads/{name}")
    assert r.status_code == 404


def test_well_known_paths(client: httpx.Client, live_server: LiveServer) -> None:
    data = live_server.settings.data_dir
    r = client.get("/context.jsonld")
    assert r.status_code == 200 and r.content == (data / "context.jsonld").read_bytes()
    assert r.headers["content-type"] == "application/ld+json"
    assert r.headers["etag"] == f'"{sha256(data / "context.jsonld")}"'
    r = client.get("/.well-known/void")
    assert r.status_code == 200 and r.content == (data / "void.ttl").read_bytes()
    assert r.headers["content-type"].startswith("text/turtle")
    assert client.get("/.well-known/void", headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_downloads_allow_cross_origin_use(client: httpx.Client) -> None:
    r = client.get("/downloads/void.ttl", headers={"Origin": "https://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "ETag" in r.headers["access-control-expose-headers"]


@pytest.mark.parametrize("path", ["/downloads/%0A", "/downloads%0A", "/sparql%0A", "/product/EMEA-H-C-004258%00"])
def test_a_path_with_a_control_character_is_no_page(client: httpx.Client, path: str) -> None:
    """A route's pattern would match it with the control character dropped (``$`` before a final newline)."""
    r = client.get(path, params={"query": "ASK {}"}, headers={"accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
