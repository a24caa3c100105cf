"""The whole build on the bundled data: counts add up, dumps agree, data validates.

Counts are checked against EMA's files read a second way (``ema_sheets``).
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import ema_sheets
import pyoxigraph
import pytest
import rdflib

from epar_graph import config, pipeline, search_index
from epar_graph.iris import Minter
from epar_graph.namespaces import EPAR
from epar_graph.pipeline import BuildResult, build

CLI = [sys.executable, "-m", "epar_graph.cli"]
LINK_TABLE = config.DATA_DIR / "ema-medicines-2017-wikidata-rxnorm.csv"
ALOFISEL = "EMEA/H/C/004258"
CUT_2026 = Path(__file__).parent / "data" / "read" / "ema-medicines-report-2026-03-14.xlsx"
STATUS_QUERY = """
    PREFIX epar: <https://w3id.org/epar/ontology#>
    PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
    PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
    SELECT ?num ?category ?status WHERE {
      ?p epar:authorisation ?a .
      ?a epar:productNumber ?num .
      OPTIONAL { ?p epar:category/skos:prefLabel ?category }
      OPTIONAL { ?a epar:authorisationStatus/skos:notation ?status }
    }"""


@pytest.fixture(scope="module")
def bundled(bundled_result: BuildResult) -> BuildResult:
    """The session's bundled build (tests/conftest.py), read-only."""
    return bundled_result


def _store(out: Path) -> pyoxigraph.Store:
    s = pyoxigraph.Store()
    s.bulk_load(path=str(out / "epar.nt"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return s


@pytest.fixture(scope="module")
def store(bundled: BuildResult) -> pyoxigraph.Store:
    return _store(bundled.out)


def _statuses(store: pyoxigraph.Store) -> dict[str, tuple[str, str]]:
    """Product number → (category, status) as the graph has them."""
    result = store.query(STATUS_QUERY)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    return {
        sol["num"].value: tuple(sol[k].value if sol[k] else "" for k in ("category", "status"))  # type: ignore[misc]
        for sol in result
    }


def _newest_listing() -> dict[str, tuple[str, str]]:
    """Product number → (category, status) in the newest of EMA's exports that lists it."""
    newest: dict[str, tuple[str, str]] = {}
    for date in sorted(ema_sheets.REPORTS):
        for row in ema_sheets.rows(ema_sheets.REPORTS[date]):
            newest[ema_sheets.product_number(row)] = (ema_sheets.category(row), ema_sheets.status(row))
    return newest


def test_counts_add_up(bundled: BuildResult) -> None:
    assert bundled.read == bundled.accepted + len(bundled.rejections)
    assert not bundled.rejections  # the bundled data builds cleanly: `epar-graph build` exits 0
    with LINK_TABLE.open(encoding="utf-8", newline="") as f:
        in_table = {row["emea"].strip() for row in csv.DictReader(f) if row["emea"].strip()}
    assert bundled.products == len(set(_newest_listing()) | in_table | {ALOFISEL})
    for src in bundled.sources:
        assert src.read == src.accepted + src.rejected
    void = rdflib.Graph().parse(bundled.out / "void.ttl")
    dataset = rdflib.URIRef(Minter().dataset())
    read = int(void.value(dataset, rdflib.URIRef(EPAR.iri("recordsRead"))))
    assert read == bundled.read == sum(len(ema_sheets.rows(p)) for p in ema_sheets.REPORTS.values()) + sum(
        src.read for src in bundled.sources if src.path not in ema_sheets.REPORTS.values()
    )


def test_the_build_holds_all_five_exports(bundled: BuildResult) -> None:
    void = rdflib.Graph().parse(bundled.out / "void.ttl")
    exports = {
        str(s).rsplit("/", 1)[-1]: o.toPython()
        for s, o in void.subject_objects(rdflib.DCTERMS.issued)
        if "/dataset/source/" in str(s)
        and (s, rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/dcat#Dataset")) in void
    }
    assert exports == {path.name: date for date, path in ema_sheets.REPORTS.items()}
    dataset = rdflib.URIRef(Minter().dataset())
    assert void.value(dataset, rdflib.DCTERMS.modified).toPython() == max(ema_sheets.REPORTS)


def test_current_status_comes_from_the_newest_export(store: pyoxigraph.Store) -> None:
    newest = _newest_listing()
    got = _statuses(store)
    assert {n: got[n] for n in newest} == newest
    counts = collections.Counter(newest.values())
    assert counts[("Veterinary", "Authorised")] > 0 and counts[("Human", "Application withdrawn")] > 0


def test_alofisel_current_facts_come_from_march_2026(store: pyoxigraph.Store) -> None:
    [row] = [r for r in ema_sheets.rows(ema_sheets.REPORTS[max(ema_sheets.REPORTS)])
             if ema_sheets.product_number(r) == ALOFISEL]
    result = store.query(f"""
        PREFIX epar: <https://w3id.org/epar/ontology#>
        SELECT ?revision ?decision ?withdrawal ?latest ?updated WHERE {{
          ?p epar:authorisation ?a ; epar:lastUpdated ?updated .
          ?a epar:productNumber "{ALOFISEL}" ; epar:revisionNumber ?revision ; epar:decisionDate ?decision ;
             epar:withdrawalDate ?withdrawal ; epar:latestProcedure/epar:procedureNumber ?latest .
        }}""")
    assert isinstance(result, pyoxigraph.QuerySolutions)
    [sol] = list(result)

    def day(value: object) -> str:
        d, m, y = str(value).split("/")
        return f"{y}-{m}-{d}"

    assert int(sol["revision"].value) == int(row["Revision number"])
    assert sol["decision"].value == day(row["European Commission decision date"])
    assert sol["withdrawal"].value == day(
        row["Withdrawal / expiry / revocation / lapse of marketing authorisation date"])
    assert sol["updated"].value == day(row["Last updated date"])  # not the MedPath page's date
    assert sol["latest"].value == f"{ALOFISEL}/{row['Latest procedure affecting product information']}"


def test_a_product_only_in_an_old_export_is_kept(tmp_path: Path) -> None:
    """The 2017 export next to a cut of the 2026 report: old-only products stay, shared ones are current."""
    old = ema_sheets.REPORTS[min(ema_sheets.REPORTS)]
    # a cut of 30 rows lacks most of the 2017 products: the removal alarm is expected, and accepted
    first = build([old, CUT_2026], tmp_path / "a", with_links=False, accept_removals=True)
    second = build([CUT_2026, old], tmp_path / "b", with_links=False, accept_removals=True)
    assert (first.out / "epar.nt").read_bytes() == (second.out / "epar.nt").read_bytes()  # order is no matter
    got = _statuses(_store(first.out))
    in_2017 = {ema_sheets.product_number(r): ema_sheets.status(r) for r in ema_sheets.rows(old)}
    in_2026 = {ema_sheets.product_number(r): ema_sheets.status(r) for r in ema_sheets.rows(CUT_2026)}
    only_old = set(in_2017) - set(in_2026)
    assert only_old and all(got[n][1] == in_2017[n] for n in only_old)
    assert all(got[n][1] == in_2026[n] for n in in_2026)
    assert any(in_2017.get(n) not in (None, in_2026[n]) for n in in_2026)  # a status that changed
    assert first.products == len(set(in_2017) | set(in_2026))


def test_a_single_export_is_not_snapshot_for_a_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One export has nothing to be compared with: the build makes no snapshot of it, and no changes."""
    made: list[str] = []
    snapshot = pipeline.history.snapshot
    monkeypatch.setattr(pipeline.history, "snapshot", lambda name, *a: made.append(name) or snapshot(name, *a))
    alone = build([CUT_2026], tmp_path / "one", with_links=False)
    assert made == [] and alone.diffs == [] and "changes.nt" not in {p.name for p in alone.out.iterdir()}
    old = ema_sheets.REPORTS[min(ema_sheets.REPORTS)]
    two = build([old, CUT_2026], tmp_path / "two", with_links=False, accept_removals=True)
    assert sorted(made) == sorted([old.name, CUT_2026.name]) and len(two.diffs) == 1


def test_warnings_are_reported_and_counted(bundled: BuildResult) -> None:
    with (bundled.out / "warnings.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"file", "record", "field", "message"}
    assert len(rows) == len(bundled.warnings) == sum(src.warnings for src in bundled.sources)
    void = rdflib.Graph().parse(bundled.out / "void.ttl")
    dataset = rdflib.URIRef(Minter().dataset())
    assert int(void.value(dataset, rdflib.URIRef(EPAR.iri("warnings")))) == len(rows)
    assert any("EMEA/H/C005201" in r["message"] for r in rows)


@pytest.mark.parametrize("date", list(ema_sheets.REPORTS)[1:], ids=str)
def test_each_report_builds_whole_and_validates(date: dt.date, tmp_path: Path) -> None:
    """`epar-graph build REPORT`: nothing rejected, counts as a separate reading, no violation."""
    from epar_graph.validate import load_rdf, validate_graph

    path = ema_sheets.REPORTS[date]
    result = build([path], tmp_path / "dist", with_links=False)
    rows = ema_sheets.rows(path)
    assert result.read == result.accepted == len(rows) and not result.rejections
    got = collections.Counter(_statuses(_store(result.out)).values())
    assert got == collections.Counter((ema_sheets.category(r), ema_sheets.status(r)) for r in rows)
    report = validate_graph(load_rdf([result.out / "epar.nt"]))
    assert [v for v in report.violations if v.severity == "Violation"] == []
    assert report.conforms


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


def _release_bytes(out: Path) -> dict[str, bytes]:
    """The files of a release, the build time in its VoID left out."""
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    files["void.ttl"] = b"\n".join(line for line in files["void.ttl"].splitlines() if b"dcterms:created" not in line)
    return files


def test_a_second_process_writes_what_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_cores", lambda: 1)
    alone = build([CUT_2026], tmp_path / "alone")
    monkeypatch.setattr(pipeline, "_cores", lambda: 2)
    monkeypatch.setattr(pipeline, "BESIDE_FROM", 0)
    beside = build([CUT_2026], tmp_path / "beside")
    assert "epar.ttl" in _release_bytes(alone.out) and search_index.INDEX_FILE in _release_bytes(alone.out)
    assert _release_bytes(beside.out) == _release_bytes(alone.out)


@pytest.mark.parametrize("cores", [1, 2])
def test_a_file_system_error_beside_is_raised_as_itself(
    cores: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "_cores", lambda: cores)
    with pytest.raises(FileNotFoundError), pipeline._Beside() as beside:
        beside.turtle_and_index(tmp_path / "missing.nt", tmp_path / "epar.ttl", tmp_path / "search.sqlite")({})
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing left behind


def test_without_an_interpreter_to_start_the_work_is_done_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_cores", lambda: 2)
    assert pipeline._Beside().enabled
    monkeypatch.setattr(sys, "executable", "")  # as in a Python embedded in another program
    assert not pipeline._Beside().enabled


def test_any_other_failure_beside_is_raised_with_what_the_process_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "_cores", lambda: 2)
    (tmp_path / "epar.nt").write_bytes(b"this is no N-Triples\n")
    with pytest.raises(pipeline.BesideFailed, match="(?s)exit code 1.*SyntaxError"), pipeline._Beside() as beside:
        beside.turtle_and_index(tmp_path / "epar.nt", tmp_path / "epar.ttl", tmp_path / "search.sqlite")({})


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
    from epar_graph.release import releases_root

    assert not [p for p in releases_root(out).iterdir() if p.name.startswith("tmp-")]


def test_build_refuses_to_replace_a_directory_that_is_not_a_release(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    seed = config.DATA_DIR / "medpath" / "alofisel.txt"
    proc = subprocess.run([*CLI, "build", str(seed), "--out", str(precious)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "refusing" in proc.stderr and "Traceback" not in proc.stderr
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
