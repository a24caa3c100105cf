"""The Wikidata refresh against a real Oxigraph SPARQL server and misbehaving local HTTP servers."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph
import pytest
from engines import misbehaving_engine as http_server
from engines import reply
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from epar_graph.links import cli
from epar_graph.links import refresh as rf
from epar_graph.model import Product
from epar_graph.read import link_tables as lt

FIXTURES = Path(__file__).parent / "data" / "links"
TODAY = dt.date(2025, 3, 1)
OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")

PRODUCTS = [
    Product("EMEA/H/C/004258", "Alofisel", active_substances=("darvadstrocel",), atc_codes=("L04AX08",)),
    Product("EMEA/H/C/000471", "Abilify", active_substances=("aripiprazole",), atc_codes=("N05AX12", "N05A")),
    Product(
        "EMEA/H/C/003787",
        "Acrescent",
        active_substances=("memantine hydrochloride", "donepezil hydrochloride"),
        atc_codes=("N06DA53",),
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def oxigraph() -> Iterator[str]:
    """A real ``oxigraph serve`` (in memory) on 127.0.0.1 loaded with the Wikidata-shaped fixture."""
    port = free_port()
    proc = subprocess.Popen(
        [OXIGRAPH, "serve", "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # wait until it listens (bounded)
            try:
                httpx.get(base + "/", timeout=1.0)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError(f"oxigraph serve exited: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.05)
        r = httpx.post(
            base + "/store?default",
            content=(FIXTURES / "wikidata-fixture.ttl").read_bytes(),
            headers={"Content-Type": "text/turtle"},
            timeout=10.0,
        )
        assert r.status_code in (200, 201, 204), r.text
        yield base + "/query"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rows_of(path: Path) -> dict[tuple[str, str, str], lt.RefreshRow]:
    table = lt.read_refresh(path)
    assert table.rejections == []
    return {r.identity: r for r in table.rows}


def test_lookups_ask_number_full_atc_codes_substance_names_and_inn() -> None:
    clopidogrel = Product(
        "EMEA/H/C/001132", "Clopidogrel DURA", active_substances=("clopidogrel hydrochloride",),
        common_name="clopidogrel", atc_codes=("B01AC04", "B01A"),
    )
    combination = Product(
        "EMEA/H/C/000368", "Kaletra", active_substances=("lopinavir", "ritonavir"), common_name="lopinavir / ritonavir"
    )
    got = [(w.method, w.key) for w in rf.lookups([clopidogrel, combination])]
    assert got == [
        ("ema-number", "EMEA/H/C/001132"),
        ("atc", "B01AC04"),
        ("label", "clopidogrel hydrochloride"),
        ("label", "clopidogrel"),
        ("ema-number", "EMEA/H/C/000368"),
        ("label", "lopinavir"),
        ("label", "ritonavir"),
    ]


# -- against a real SPARQL server ------------------------------------------------------------------


def test_refresh_finds_items_by_ema_number_atc_code_and_label(oxigraph: str, tmp_path: Path) -> None:
    out = tmp_path / "wikidata-refresh.csv"
    result = rf.refresh(PRODUCTS, out, endpoint=oxigraph, today=TODAY, batch=2)
    rows = rows_of(out)
    alofisel = "EMEA/H/C/004258"
    assert rows[(alofisel, "ema-number", alofisel)].wikidata == ("Q900000001",)
    assert rows[(alofisel, "atc", "L04AX08")].wikidata == ("Q900000001",)
    assert rows[(alofisel, "label", "darvadstrocel")].wikidata == ("Q900000001",)  # not the @fr one
    abilify = "EMEA/H/C/000471"
    assert rows[(abilify, "label", "aripiprazole")].wikidata == ("Q411188",)
    assert rows[(abilify, "atc", "N05AX12")].wikidata == ("Q411188",)
    assert (abilify, "atc", "N05A") not in rows  # only full 7-character codes are asked
    acrescent = "EMEA/H/C/003787"
    assert rows[(acrescent, "label", "memantine hydrochloride")].wikidata == ("Q900000002", "Q900000003")
    assert (acrescent, "ema-number", acrescent) not in rows
    assert all(r.retrieved == TODAY and not r.curated for r in rows.values())
    assert len(result.diff.added) == len(rows) == 8 and result.diff.summary().startswith("8 added")
    assert result.asked == 10  # 3 + 3 + (number, code, two names)


def test_refresh_keeps_curated_rows_unless_forced(oxigraph: str, tmp_path: Path) -> None:
    out = tmp_path / "wikidata-refresh.csv"
    out.write_text(
        "product_number,method,key,wikidata,retrieved,curated\n"
        "EMEA/H/C/000471,label,aripiprazole,Q1,2020-01-01,yes\n"  # curated, Wikidata now says Q411188
        "EMEA/H/C/000471,atc,N05AX12,Q5,2020-01-01,no\n"  # not curated: simply updated
        "EMEA/H/C/000471,label,aripiprazole lauroxil,Q7,2020-01-01,yes\n"  # curated, nothing answers now
        "EMEA/H/C/004258,label,cx601,Q8,2020-01-01,no\n"  # not curated, nothing answers: removed
        "EMEA/H/C/004258,atc,L04AX08,Q900000001,2020-01-01,yes\n",  # curated and unchanged
        encoding="utf-8",
    )
    result = rf.refresh(PRODUCTS, out, endpoint=oxigraph, today=TODAY)
    rows = rows_of(out)
    assert rows[("EMEA/H/C/000471", "label", "aripiprazole")].wikidata == ("Q1",)
    assert rows[("EMEA/H/C/000471", "label", "aripiprazole")].retrieved == dt.date(2020, 1, 1)
    assert rows[("EMEA/H/C/000471", "atc", "N05AX12")].wikidata == ("Q411188",)
    assert rows[("EMEA/H/C/000471", "label", "aripiprazole lauroxil")].wikidata == ("Q7",)
    assert ("EMEA/H/C/004258", "label", "cx601") not in rows
    assert rows[("EMEA/H/C/004258", "atc", "L04AX08")].curated
    lines = result.diff.lines()
    held = "! EMEA/H/C/000471 label 'aripiprazole': curated Q1, Wikidata now Q411188; kept (--force replaces it)"
    assert held in lines
    assert "~ EMEA/H/C/000471 atc 'N05AX12': Q5 → Q411188" in lines
    assert "- EMEA/H/C/004258 label 'cx601': Q8" in lines
    assert len(result.diff.held) == 2

    forced = rf.refresh(PRODUCTS, out, endpoint=oxigraph, today=TODAY, force=True)
    rows = rows_of(out)
    assert rows[("EMEA/H/C/000471", "label", "aripiprazole")].wikidata == ("Q411188",)
    assert not rows[("EMEA/H/C/000471", "label", "aripiprazole")].curated
    assert ("EMEA/H/C/000471", "label", "aripiprazole lauroxil") not in rows
    assert forced.diff.held == [] and len(forced.diff.changed) == 1 and len(forced.diff.removed) == 1


def test_refresh_command_on_the_bundled_products(oxigraph: str, tmp_path: Path) -> None:
    out = tmp_path / "wikidata-refresh.csv"
    res = CliRunner().invoke(cli.links_app, ["refresh", "--endpoint", oxigraph, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "+ EMEA/H/C/000471 ema-number 'EMEA/H/C/000471' → Q411188" in res.stdout
    assert "+ EMEA/H/C/002755 ema-number 'EMEA/H/C/002755' → Q411188" in res.stdout
    assert "+ EMEA/H/C/004258 label 'darvadstrocel' → Q900000001" in res.stdout
    assert "+ EMEA/H/C/000471 atc 'N05AX12' → Q411188" in res.stdout
    rows = rows_of(out)
    assert {k[0] for k in rows} >= {"EMEA/H/C/000471", "EMEA/H/C/002755", "EMEA/H/C/004258"}
    # a second run changes nothing
    res = CliRunner().invoke(cli.links_app, ["refresh", "--endpoint", oxigraph, "--out", str(out)])
    assert res.exit_code == 0 and "0 added, 0 changed, 0 removed" in res.stdout


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=25), min_size=1, max_size=5, unique=True))
def test_query_text_is_valid_sparql_for_any_key(keys: list[str]) -> None:
    """Keys with quotes, backslashes or any Unicode are escaped: the store finds exactly them."""
    store = pyoxigraph.Store()
    for n, key in enumerate(keys, start=1):
        store.add(
            pyoxigraph.Quad(
                pyoxigraph.NamedNode(f"http://www.wikidata.org/entity/Q{n}"),
                pyoxigraph.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
                pyoxigraph.Literal(key, language="en"),
            )
        )
    found = {(s["key"].value, s["item"].value) for s in store.query(rf.query_text("label", keys))}
    assert found == {(k, f"http://www.wikidata.org/entity/Q{n}") for n, k in enumerate(keys, start=1)}


# -- failures leave the old table intact -----------------------------------------------------------


@pytest.fixture
def table(tmp_path: Path) -> Path:
    out = tmp_path / "wikidata-refresh.csv"
    out.write_text(
        "product_number,method,key,wikidata,retrieved,curated\nEMEA/H/C/000471,label,aripiprazole,Q411188,2020-01-01,yes\n",
        encoding="utf-8",
    )
    return out


def assert_fails(table: Path, endpoint: str, code: int, message: str, timeout: float = 10.0) -> None:
    before = table.read_bytes()
    with pytest.raises(rf.RefreshError) as err:
        rf.refresh(PRODUCTS, table, endpoint=endpoint, today=TODAY, timeout=timeout)
    assert err.value.exit_code == code
    assert message in err.value.message
    assert table.read_bytes() == before
    assert [p.name for p in table.parent.iterdir()] == [table.name]  # no temporary file left behind


def test_http_error_is_reported(table: Path) -> None:
    with http_server(reply(500, b"internal trouble", "text/plain")) as url:
        assert_fails(table, url, 1, "answered HTTP 500 Internal Server Error: internal trouble")


def test_timeout_is_reported(table: Path) -> None:
    release = threading.Event()

    def slow(h: http.server.BaseHTTPRequestHandler) -> None:
        release.wait(10)
        reply(200, b'{"results": {"bindings": []}}')(h)

    with http_server(slow) as url:
        try:
            assert_fails(table, url, 1, "no answer from", timeout=0.3)
        finally:
            release.set()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>rate limited</html>", "malformed answer (not SPARQL JSON results"),
        (b'{"head": {}}', "malformed answer"),
        (b'{"results": {"bindings": [{"key": {"value": "x"}}]}}', "without ?key and ?item"),
        (b'{"results": {"bindings": [{"key": {"value": "x"}, "item": {"value": "http://example.org/Q1"}}]}}',
         "is not a Wikidata item IRI"),
    ],
)
def test_malformed_answer_is_reported(table: Path, body: bytes, message: str) -> None:
    with http_server(reply(200, body)) as url:
        assert_fails(table, url, 1, message)


def test_unreachable_endpoint_is_reported(table: Path) -> None:
    assert_fails(table, f"http://127.0.0.1:{free_port()}/sparql", 1, "cannot reach")


def test_bad_endpoint_url_is_a_usage_error(table: Path) -> None:
    assert_fails(table, "ftp://127.0.0.1/sparql", 2, "not an http(s) SPARQL endpoint URL")


def test_unreadable_table_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "wikidata-refresh.csv"
    out.write_text(
        "product_number,method,key,wikidata,retrieved,curated\nEMEA/H/C/000471,label,aripiprazole,X1,2020-01-01,yes\n",
        encoding="utf-8",
    )
    assert_fails(out, "http://127.0.0.1:9/sparql", 2, "cannot be read")
    out.write_text("something else entirely\n", encoding="utf-8")
    assert_fails(out, "http://127.0.0.1:9/sparql", 2, "fix or move it")


def test_refresh_command_exit_codes(table: Path) -> None:
    runner = CliRunner()
    with http_server(reply(503, b"", "text/plain")) as url:
        res = runner.invoke(cli.links_app, ["refresh", "--endpoint", url, "--out", str(table)])
    assert res.exit_code == 1
    assert "error:" in res.stderr and "HTTP 503" in res.stderr
    res = runner.invoke(cli.links_app, ["refresh", "--endpoint", "not a url", "--out", str(table)])
    assert res.exit_code == 2 and "not an http(s) SPARQL endpoint URL" in res.stderr


# -- the federated example queries, against the same Wikidata-shaped server -------------------------

QUERIES = Path(__file__).parents[1] / "queries"
WIKIDATA_SPARQL = "<https://query.wikidata.org/sparql>"


@pytest.fixture(scope="module")
def small_graph() -> pyoxigraph.Store:
    """Our graph for Abilify and Alofisel with the link sets and orphan designations of the fixtures."""
    from epar_graph.graph import as_triples, build_graphs
    from epar_graph.iris import Minter
    from epar_graph.links.matching import link_products
    from epar_graph.links.sets import DESIGNATION_TABLE
    from epar_graph.model import place_designations
    from epar_graph.read.link_tables import read_designations

    products = [
        Product("EMEA/H/C/000471", "Abilify", active_substances=("aripiprazole",), atc_codes=("N05AX12",)),
        Product("EMEA/H/C/004258", "Alofisel", active_substances=("darvadstrocel",), atc_codes=("L04AX08",)),
    ]
    mint = Minter()
    table = read_designations(FIXTURES / DESIGNATION_TABLE)
    designations, _ = place_designations((r.designation for r in table.rows), products)
    result = link_products(products, mint, FIXTURES, table)
    lines, _ = build_graphs(products, [], mint, designations)
    triples = as_triples(lines)
    triples |= {t for ls in result.linksets for t in ls.triples}
    store = pyoxigraph.Store()
    store.extend(pyoxigraph.Quad(t.subject, t.predicate, t.object) for t in triples)
    return store


def run_federated(store: pyoxigraph.Store, name: str, endpoint: str) -> list[dict[str, str]]:
    text = (QUERIES / name).read_text(encoding="utf-8")
    assert WIKIDATA_SPARQL in text
    solutions = store.query(text.replace(WIKIDATA_SPARQL, f"<{endpoint}>"))
    variables = [v.value for v in solutions.variables]
    return [{v: s[v].value for v in variables if s[v] is not None} for s in solutions]


def test_federated_substances_drugbank(small_graph: pyoxigraph.Store, oxigraph: str) -> None:
    rows = run_federated(small_graph, "federated-substances-drugbank.rq", oxigraph)
    assert [(r["name"], r["item"], r["drugbank"]) for r in rows] == [
        ("aripiprazole", "http://www.wikidata.org/entity/Q411188", "DB01238")
    ]


def test_federated_products_by_ema_number(small_graph: pyoxigraph.Store, oxigraph: str) -> None:
    rows = run_federated(small_graph, "federated-products-by-ema-number.rq", oxigraph)
    got = {(r["name"], r["item"].rsplit("/", 1)[1], r["alsoLinkedViaSubstance"]) for r in rows}
    assert got == {("Abilify", "Q411188", "true"), ("Alofisel", "Q900000001", "false")}


def test_federated_orphan_conditions_omim(small_graph: pyoxigraph.Store, oxigraph: str) -> None:
    rows = run_federated(small_graph, "federated-orphan-conditions-omim.rq", oxigraph)
    assert [(r["name"], r["omimIds"], r["designations"]) for r in rows] == [("primary myelofibrosis", "254450", "1")]
