"""``/reconcile`` (Reconciliation Service API v0.2) on the bundled release, over real HTTP.

Every response is validated against the API's own JSON Schemas (copied with
their origin under ``tests/data/reconciliation-api-0.2/``), and a real
spreadsheet column, the 2017 export's "Medicine Name", reconciles to the
right products.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ema_sheets
import httpx
import jsonschema
import pytest
import referencing
from conftest import LiveServer
from referencing.jsonschema import DRAFT7

SCHEMAS = Path(__file__).parent / "data" / "reconciliation-api-0.2"


def _registry() -> referencing.Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        resources.append((doc["$id"], referencing.Resource.from_contents(doc, default_specification=DRAFT7)))
    return referencing.Registry().with_resources(resources)


REGISTRY = _registry()


def valid(doc: object, schema: str) -> None:
    body = json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(body, registry=REGISTRY).validate(doc)


@pytest.fixture
def web(bundled_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bundled_server.url, timeout=120.0) as c:
        yield c


def _reconcile(web: httpx.Client, queries: dict[str, dict], post: bool = True) -> dict:
    payload = {"queries": json.dumps(queries)}
    r = web.post("/reconcile", data=payload) if post else web.get("/reconcile", params=payload)
    assert r.status_code == 200, r.text
    doc = r.json()
    valid(doc, "reconciliation-result-batch.json")
    return doc


def test_manifest(web: httpx.Client, bundled_server: LiveServer) -> None:
    r = web.get("/reconcile")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    doc = r.json()
    valid(doc, "manifest.json")
    assert doc["view"]["url"] == f"{bundled_server.url}/{{{{id}}}}"
    assert {t["id"] for t in doc["defaultTypes"]} >= {"medicine", "substance", "organisation", "atc"}


def test_the_2017_medicine_name_column_reconciles_top_1(web: httpx.Client) -> None:
    rows = ema_sheets.rows(ema_sheets.REPORTS[min(ema_sheets.REPORTS)])
    names = [(str(r["Medicine Name"]), ema_sheets.product_number(r)) for r in rows]
    right = 0
    for start in range(0, len(names), 100):
        chunk = names[start:start + 100]
        doc = _reconcile(web, {f"q{i}": {"query": n, "type": "medicine"} for i, (n, _) in enumerate(chunk)})
        for i, (_name, number) in enumerate(chunk):
            result = doc[f"q{i}"]["result"]
            if result and result[0]["id"] == "product/" + number.replace("/", "-"):
                right += 1
    assert right / len(names) >= 0.98, f"{right} of {len(names)}"


def test_types_and_property_constraints(web: httpx.Client) -> None:
    doc = _reconcile(web, {
        "plain": {"query": "Humira"},
        "typed": {"query": "adalimumab", "type": "substance", "limit": 3},
        "atc": {"query": "Humira", "type": "medicine", "properties": [{"pid": "atc", "v": "L04AB"}]},
        "wrong": {"query": "Humira", "type": "medicine", "properties": [{"pid": "holder", "v": "Pfizer Limited"}]},
    }, post=False)
    assert doc["plain"]["result"][0]["name"] == "Humira" and doc["plain"]["result"][0]["match"] is True
    typed = doc["typed"]["result"]
    assert len(typed) <= 3 and {t["id"] for c in typed for t in c["type"]} == {"substance"}
    assert doc["atc"]["result"][0]["score"] >= doc["wrong"]["result"][0]["score"] + 20
    assert doc["wrong"]["result"][0]["match"] is False


def test_suggest_preview_and_data_extension_round_trip(web: httpx.Client) -> None:
    entity = web.get("/reconcile/suggest/entity", params={"prefix": "alofis"}).json()
    valid(entity, "suggest-entities-response.json")
    [alofisel] = [e for e in entity["result"] if e["name"] == "Alofisel"]
    valid(web.get("/reconcile/suggest/type", params={"prefix": "med"}).json(), "suggest-types-response.json")
    valid(web.get("/reconcile/suggest/property", params={"prefix": "hold"}).json(), "suggest-properties-response.json")
    proposal = web.get("/reconcile/propose_properties", params={"type": "medicine"}).json()
    valid(proposal, "data-extension-property-proposal.json")
    wanted = [{"id": p["id"]} for p in proposal["properties"]]
    query = {"ids": [alofisel["id"], "product/EMEA-H-C-000481"], "properties": wanted}
    valid(query, "data-extension-query.json")
    r = web.post("/reconcile", data={"extend": json.dumps(query)})
    assert r.status_code == 200, r.text
    doc = r.json()
    valid(doc, "data-extension-response.json")
    row = doc["rows"][alofisel["id"]]
    assert row["status"] == [{"str": "Withdrawn"}] and row["withdrawn"] == [{"date": "2024-12-13T00:00:00+00:00"}]
    assert row["holder"][0]["name"].startswith("Takeda")
    preview = web.get("/reconcile/preview", params={"id": alofisel["id"]})
    assert preview.status_code == 200 and "Alofisel" in preview.text and "Withdrawn" in preview.text


@pytest.mark.parametrize("payload", [
    {"queries": "{not json"},
    {"queries": json.dumps({f"q{i}": {"query": "x"} for i in range(500)})},
    {"queries": json.dumps({"q0": {"query": 42}})},
    {"extend": json.dumps({"ids": "product/x", "properties": []})},
    {"extend": json.dumps({"ids": ["product/EMEA-H-C-000481"], "properties": [{"id": "nonsense"}]})},
])
def test_bad_requests_are_a_clear_400(web: httpx.Client, payload: dict[str, str]) -> None:
    r = web.post("/reconcile", data=payload)
    assert r.status_code == 400 and r.json()["error"]


CHROMIUM = "/usr/bin/chromium"

#: What a browser-based client (the reconciliation test bench, a notebook) does, run from a page of
#: *another origin* (localhost versus 127.0.0.1), so the answers must carry CORS headers to be read.
ROUND_TRIP_JS = """async (server) => {
  const manifest = await (await fetch(server + "/reconcile")).json();
  const medicine = manifest.defaultTypes.find(t => t.name.startsWith("Medicine")).id;
  const post = async (params) => (await fetch(server + "/reconcile", {
    method: "POST", body: new URLSearchParams(params),
  })).json();
  const batch = await post({queries: JSON.stringify({q0: {query: "Humira", type: medicine, limit: 3}})});
  const top = batch.q0.result[0];
  const properties = await (await fetch(
    server + "/reconcile/propose_properties?type=" + encodeURIComponent(medicine))).json();
  const extended = await post({extend: JSON.stringify({ids: [top.id], properties: properties.properties.slice(0, 3)})});
  return {manifest, batch, properties, extended, top};
}"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_browser_reconciliation_round_trip(bundled_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright
    from test_serve_ui_browser import CHROMIUM_ARGS, WAIT_MS

    server = bundled_server.url
    other_origin = server.replace("127.0.0.1", "localhost")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # our pages allow connections to their own origin only; the client page is somebody else's
            page = chromium.new_context(bypass_csp=True).new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(other_origin + "/medicines")
            got = page.evaluate(ROUND_TRIP_JS, server)
            valid(got["manifest"], "manifest.json")
            valid(got["batch"], "reconciliation-result-batch.json")
            valid(got["extended"], "data-extension-response.json")
            top = got["top"]
            assert top["name"] == "Humira" and top["match"] is True
            assert got["extended"]["rows"][top["id"]]  # the matched medicine's facts came back
            # the manifest's preview and view templates open this entity's pages
            page.goto(got["manifest"]["preview"]["url"].replace("{{id}}", top["id"]))
            assert "Humira" in page.inner_text("body")
            page.goto(got["manifest"]["view"]["url"].replace("{{id}}", top["id"]))
            assert page.inner_text("h1") == "Humira"
        finally:
            chromium.close()
