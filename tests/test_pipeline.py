"""The whole build on the bundled data: counts add up, dumps agree, data validates."""

from __future__ import annotations

import collections
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
import xlrd

from epar_graph import config
from epar_graph.namespaces import EPAR
from epar_graph.pipeline import BuildResult, build

XLS = config.DATA_DIR / "ema-medicines-2017-02-13.xls"
CLI = [sys.executable, "-m", "epar_graph.cli"]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build([], tmp_path_factory.mktemp("bundled") / "dist")


@pytest.fixture(scope="module")
def store(bundled: BuildResult) -> pyoxigraph.Store:
    s = pyoxigraph.Store()
    s.bulk_load(path=str(bundled.out / "epar.nt"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return s


def source_status_counts() -> collections.Counter[str]:
    """Per-status counts read straight from EMA's spreadsheet, independently of our readers."""
    sheet = xlrd.open_workbook(str(XLS)).sheet_by_index(0)
    header = next(i for i in range(sheet.nrows) if "Product Number" in sheet.row_values(i))
    col = sheet.row_values(header).index("Status")
    return collections.Counter(sheet.cell_value(i, col) for i in range(header + 1, sheet.nrows))


def test_counts_add_up(bundled: BuildResult) -> None:
    assert bundled.read == bundled.accepted + len(bundled.rejections)
    assert not bundled.rejections  # the bundled data builds cleanly: `epar-graph build` exits 0
    assert bundled.products == 1150  # the 1,149 products of the 2017 export + Alofisel
    for src in bundled.sources:
        assert src.read == src.accepted + src.rejected
    void = rdflib.Graph().parse(bundled.out / "void.ttl")
    read = int(void.value(rdflib.URIRef(config.base_iri() + "dataset"), rdflib.URIRef(EPAR.iri("recordsRead"))))
    assert read == bundled.read


def test_per_status_counts_match_source(store: pyoxigraph.Store) -> None:
    expected = source_status_counts()
    result = store.query("""
        PREFIX epar: <https://w3id.org/epar/ontology#>
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT ?status (COUNT(DISTINCT ?a) AS ?n) WHERE {
          ?a epar:productNumber ?num ; epar:authorisationStatus/skos:notation ?status .
          FILTER (?num != "EMEA/H/C/004258")  # the MedPath page is not part of the 2017 export
        } GROUP BY ?status""")
    assert isinstance(result, pyoxigraph.QuerySolutions)
    got = {sol["status"].value: int(sol["n"].value) for sol in result}
    assert got == dict(expected)
    assert sum(got.values()) == 1149


def test_dumps_are_isomorphic(bundled: BuildResult) -> None:
    nt = rdflib.Graph().parse(bundled.out / "epar.nt", format="nt")
    ttl = rdflib.Graph().parse(bundled.out / "epar.ttl", format="turtle")
    jsonld = rdflib.Graph().parse(bundled.out / "epar.jsonld", format="json-ld")
    assert len(nt) == bundled.triples
    assert set(nt) == set(ttl) == set(jsonld)
    assert not any(isinstance(t, rdflib.BNode) for triple in nt for t in triple)


def test_jsonld_uses_published_context(bundled: BuildResult) -> None:
    doc = json.loads((bundled.out / "epar.jsonld").read_text(encoding="utf-8"))
    ctx = json.loads((bundled.out / "context.jsonld").read_text(encoding="utf-8"))
    assert doc["@context"] == ctx["@context"]
    assert ctx["@context"]["authorisationDate"] == {"@id": "epar:authorisationDate", "@type": "xsd:date"}


def test_bundled_data_conforms_to_shapes(bundled: BuildResult) -> None:
    from epar_graph.validate import load_rdf, validate_graph

    report = validate_graph(load_rdf([bundled.out / "epar.nt"]))
    assert report.conforms, [str(v) for v in report.violations[:5]]


def test_every_term_used_is_declared_in_the_ontology(bundled: BuildResult) -> None:
    onto = rdflib.Graph().parse(config.ONTOLOGY_FILE)
    declared = {str(s) for s in onto.subjects() if str(s).startswith(EPAR.base)}
    data = rdflib.Graph().parse(bundled.out / "epar.nt", format="nt")
    used = {str(p) for p in data.predicates()} | {str(o) for o in data.objects(None, rdflib.RDF.type)}
    for link in bundled.out.glob("links-*.nt"):
        used |= {str(p) for p in rdflib.Graph().parse(link, format="nt").predicates()}
    undeclared = {t for t in used if t.startswith(EPAR.base)} - declared
    assert not undeclared


def test_same_input_same_bytes(bundled: BuildResult, tmp_path: Path) -> None:
    again = build([], tmp_path / "again", gzip_nt=True)
    with gzip.open(again.out / "epar.nt.gz", "rb") as f:
        assert f.read() == (bundled.out / "epar.nt").read_bytes()


def test_cli_rejects_bad_records_and_still_writes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good = config.DATA_DIR / "ema-epar-scrape-2017.csv"
    lines = good.read_text(encoding="utf-8").splitlines()
    header, row = lines[0], lines[2]
    rows = [header, row, ",aspirin,2010-01-01,Authorised,Pain,x", row.replace("2004-06-04", "2004-02-30")]
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "dist"
    proc = subprocess.run([*CLI, "build", str(bad), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bad.csv" in proc.stderr and "record" in proc.stderr
    reports = list(out.glob("*reject*"))
    assert len(reports) == 1
    assert (out / "epar.nt").stat().st_size > 0
    assert "read 3 = accepted 1 + rejected 2" in proc.stdout


def test_cli_binary_file_is_rejected_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    proc = subprocess.run([*CLI, "build", str(junk), "--out", str(tmp_path / "d")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "junk.bin" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "build", str(tmp_path / "missing.xls")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "missing.xls" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_build_leaves_previous_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "dist"
    build([config.DATA_DIR / "medpath" / "alofisel.txt"], out)
    before = (out / "epar.nt").read_bytes()

    def crash(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("epar_graph.publish.turtle", crash)
    with pytest.raises(RuntimeError):
        build([config.DATA_DIR / "ema-epar-scrape-2017.csv"], out)
    assert (out / "epar.nt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dist.tmp")]


def test_build_refuses_to_replace_a_directory_that_is_not_a_release(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    seed = config.DATA_DIR / "medpath" / "alofisel.txt"
    proc = subprocess.run([*CLI, "build", str(seed), "--out", str(precious)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "refusing" in proc.stderr and "Traceback" not in proc.stderr
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
