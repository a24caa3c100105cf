"""EMA's Excel reports of 2018, 2023 and 2026: every column reaches the graph.

The fixtures under ``tests/data/read/`` are real rows cut from the reports
(``cut_reports.py``). Each header of each layout is mapped here to the
property that carries it, and every non-empty cell of every fixture row is
looked up in the built graph under that property. A column EMA adds fails
``test_every_header_has_a_property`` until it is mapped here and modelled.
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ema_sheets
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from rdflib import RDFS, SKOS, Literal, URIRef

from epar_graph import iris
from epar_graph.iris import Minter
from epar_graph.namespaces import EPAR, SCHEMA
from epar_graph.pipeline import build
from epar_graph.read import read_source

FIXTURES = Path(__file__).parent / "data" / "read"
CUTS = sorted(FIXTURES.glob("ema-*-20*.xlsx"))
PRODUCT, AUTHORISATION = "product", "authorisation"


@dataclass(frozen=True)
class Column:
    """Where a column's value lands: on the product or its authorisation, under which properties."""

    on: str
    properties: tuple[str, ...]
    kind: str  # text, date, flag, int, iri, concept, substance, holder, procedure, number


def _col(on: str, kind: str, *names: str) -> Column:
    return Column(on, tuple(EPAR.iri(n) for n in names), kind)


_P, _A = PRODUCT, AUTHORISATION
#: Every header of the 2018/2023 layout (30 columns) and the 2026 layout (39 columns).
COLUMNS: dict[str, Column] = {
    "Category": _col(_P, "concept", "category"),
    "Medicine name": _col(_P, "label"),
    "Name of medicine": _col(_P, "label"),
    "Product number": _col(_A, "number", "productNumber"),
    "EMA product number": _col(_A, "number", "productNumber"),
    "Authorisation status": _col(_A, "concept", "authorisationStatus"),
    "Medicine status": _col(_A, "concept", "authorisationStatus"),
    "Opinion status": _col(_A, "concept", "opinionStatus"),
    "Latest procedure affecting product information": _col(_A, "procedure", "latestProcedure"),
    "International non-proprietary name (INN) / common name": _col(_P, "text", "commonName"),
    "Active substance": _col(_P, "substance", "activeSubstance"),
    "Therapeutic area": _col(_P, "concept", "therapeuticArea"),
    "Therapeutic area (MeSH)": _col(_P, "concept", "therapeuticArea"),
    "Species": _col(_P, "concept", "targetSpecies"),
    "Species\n(veterinary)": _col(_P, "concept", "targetSpecies"),
    "Patient safety": _col(_P, "flag", "patientSafety"),
    "ATC code": _col(_P, "concept", "atcCode", "atcCodeAsPublished"),
    "ATC code (human)": _col(_P, "concept", "atcCode", "atcCodeAsPublished"),
    "ATCvet code": _col(_P, "concept", "atcVetCode", "atcCodeAsPublished"),
    "ATCvet code (veterinary)": _col(_P, "concept", "atcVetCode", "atcCodeAsPublished"),
    "Human pharmacotherapeutic group": _col(_P, "concept", "pharmacotherapeuticGroup"),
    "Vet pharmacotherapeutic group": _col(_P, "concept", "pharmacotherapeuticGroup"),
    "Pharmacotherapeutic group\n(human)": _col(_P, "concept", "pharmacotherapeuticGroup"),
    "Pharmacotherapeutic group\n(veterinary)": _col(_P, "concept", "pharmacotherapeuticGroup"),
    "Condition / indication": _col(_P, "text", "therapeuticIndication"),
    "Therapeutic indication": _col(_P, "text", "therapeuticIndication"),
    "Additional monitoring": _col(_P, "flag", "additionalMonitoring"),
    "Accelerated assessment": _col(_P, "flag", "acceleratedAssessment"),
    "Advanced therapy": _col(_P, "flag", "isAdvancedTherapy"),
    "PRIME: priority medicine": _col(_P, "flag", "isPrime"),
    "Generic": _col(_P, "flag", "isGeneric"),
    "Generic or hybrid": _col(_P, "flag", "isGeneric"),
    "Biosimilar": _col(_P, "flag", "isBiosimilar"),
    "Conditional approval": _col(_P, "flag", "conditionalApproval"),
    "Exceptional circumstances": _col(_P, "flag", "exceptionalCircumstances"),
    "Orphan medicine": _col(_P, "flag", "isOrphan"),
    "Marketing authorisation holder/company name": _col(_A, "holder", "holder"),
    "Marketing authorisation developer / applicant / holder": _col(_A, "holder", "holder"),
    "Decision date": _col(_A, "date", "decisionDate"),
    "European Commission decision date": _col(_A, "date", "decisionDate"),
    "Start of rolling review date": _col(_A, "date", "rollingReviewStartDate"),
    "Start of evaluation date": _col(_A, "date", "evaluationStartDate"),
    "Date of opinion": _col(_A, "date", "opinionDate"),
    "Opinion adopted date": _col(_A, "date", "opinionDate"),
    "Withdrawal of application date": _col(_A, "date", "applicationWithdrawalDate"),
    "Marketing authorisation date": _col(_A, "date", "authorisationDate"),
    "Date of refusal of marketing authorisation": _col(_A, "date", "refusalDate"),
    "Refusal of marketing authorisation date": _col(_A, "date", "refusalDate"),
    "Withdrawal / expiry / revocation / lapse of marketing authorisation date": _col(_A, "date", "withdrawalDate"),
    "Suspension of marketing authorisation date": _col(_A, "date", "suspensionDate"),
    "Revision number": _col(_A, "int", "revisionNumber"),
    "First published": _col(_P, "date", "firstPublished"),
    "First published date": _col(_P, "date", "firstPublished"),
    "Revision date": _col(_P, "date", "lastUpdated"),
    "Last updated date": _col(_P, "date", "lastUpdated"),
    "URL": _col(_P, "iri", "emaPage"),
    "Medicine URL": _col(_P, "iri", "emaPage"),
}
COLUMNS["Medicine name"] = Column(_P, (str(RDFS.label),), "text")
COLUMNS["Name of medicine"] = Column(_P, (str(RDFS.label),), "text")


def _plain(value: object) -> str:
    """Text as a reader of the page sees it: entities decoded, tags gone, spaces collapsed."""
    text = html.unescape(re.sub(r"<[^>]*>", " ", str(value)))
    return " ".join(text.replace("\u00a0", " ").split())


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    m = re.search(r"(\d{2})/(\d{2})/(\d{4})", str(value))  # 2018 wraps dates: ", ,  26/07/2018, ,"
    assert m, value
    return dt.date(int(m[3]), int(m[2]), int(m[1]))


def _names(g: rdflib.Graph, node: rdflib.term.Node) -> set[str]:
    """Every name a node has (labels, notations, schema names), lower-cased."""
    if isinstance(node, Literal):
        return {str(node).lower()}
    preds = (RDFS.label, SKOS.prefLabel, SKOS.altLabel, SKOS.notation, URIRef(SCHEMA.iri("name")))
    return {str(o).lower() for p in preds for o in g.objects(node, p)}


def _check(g: rdflib.Graph, col: Column, cell: object, values: list[rdflib.term.Node]) -> str | None:
    """Why ``values`` do not carry ``cell`` (None when they do)."""
    text = _plain(cell)
    if not values:
        return "no value"
    if col.kind == "text":
        return None if [str(v) for v in values] == [text] else f"{values} != {text!r}"
    if col.kind == "date":
        return None if [v.toPython() for v in values] == [_date(cell)] else f"{values} != {cell!r}"
    if col.kind == "flag":
        return None if [v.toPython() for v in values] == [text.lower() == "yes"] else f"{values} != {text!r}"
    if col.kind == "int":
        return None if [v.toPython() for v in values] == [int(float(text))] else f"{values} != {text!r}"
    if col.kind == "iri":
        return None if [str(v) for v in values] == [text] else f"{values} != {text!r}"
    if col.kind == "number":
        return None if [str(v).replace("/", "") for v in values] == [text.replace("/", "")] else f"{values}"
    if col.kind == "procedure":
        numbers = [str(n) for v in values for n in g.objects(v, URIRef(EPAR.iri("procedureNumber")))]
        return None if len(numbers) == 1 and numbers[0].endswith("/" + text) else f"{numbers} !~ {text!r}"
    # concept, substance, holder: every value is named in the cell, and nothing in the cell is lost
    folded = text.lower()
    unnamed = [v for v in values if not any(name in folded for name in _names(g, v))]
    if unnamed:
        return f"{unnamed} not named in {text!r}"
    names = sorted({n for v in values for n in _names(g, v)}, key=len, reverse=True)
    covered = re.sub("|".join(re.escape(n) for n in names), "", folded)
    leftover = re.sub(r"[\s;,/+&()-]|\band\b", "", covered)
    if col.kind != "holder" and len(leftover) > len(folded) // 3:
        return f"{text!r} only partly carried by {values} (left: {leftover!r})"
    return None


@pytest.fixture(scope="module", params=CUTS, ids=lambda p: p.stem)
def cut(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rdflib.Graph]:
    path: Path = request.param
    out = tmp_path_factory.mktemp(path.stem) / "dist"
    result = build([path], out, with_links=False)
    assert result.read == result.accepted and not result.rejections
    return path, rdflib.Graph().parse(out / "epar.nt", format="nt")


def test_every_header_has_a_property(cut: tuple[Path, rdflib.Graph]) -> None:
    path, _ = cut
    headers = set(ema_sheets.rows(path)[0])
    assert sorted(headers - set(COLUMNS)) == []
    assert len(headers) in (30, 39)  # the 2018/2023 and 2026 layouts


def test_the_column_map_names_declared_terms() -> None:
    terms = {p for col in COLUMNS.values() for p in col.properties}
    assert all(p == str(RDFS.label) or p.startswith(EPAR.base) for p in terms)
    assert {EPAR.iri(n) for n in ("category", "atcVetCode", "targetSpecies", "latestProcedure")} <= terms


def test_every_cell_reaches_its_property(cut: tuple[Path, rdflib.Graph]) -> None:
    path, g = cut
    problems = []
    rows = ema_sheets.rows(path)
    for row in rows:
        number = ema_sheets.product_number(row)
        subject = {
            PRODUCT: URIRef(Minter().product(number)),
            AUTHORISATION: URIRef(Minter().authorisation(number)),
        }
        for header, cell in row.items():
            if not _plain(cell) or _plain(cell).lower() in {"not yet assigned", "-"}:
                continue
            col = COLUMNS[header]
            values = sorted({o for p in col.properties for o in g.objects(subject[col.on], URIRef(p))}, key=str)
            why = _check(g, col, cell, values)
            if why:
                problems.append(f"{path.name} {number} {header!r}: {why}")
    assert problems == []
    assert len(rows) >= 14


# --- counts against a separate reading of the real reports -------------------------------


@pytest.mark.parametrize("date", list(ema_sheets.REPORTS)[1:], ids=str)
def test_reader_counts_per_category_and_status(date: dt.date) -> None:
    path = ema_sheets.REPORTS[date]
    rows = ema_sheets.rows(path)
    result = read_source(path)
    assert result.count == len(rows) == len(result.records)
    assert result.rejections == []
    assert result.date == date
    got = collections.Counter((r.category, r.status or "") for r in result.records)
    want = collections.Counter((ema_sheets.category(row), ema_sheets.status(row)) for row in rows)
    assert got == want


# --- the reader on any selection of real rows ---------------------------------------------


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


_ALL_ROWS = [(cut, row) for cut in CUTS for row in ema_sheets.rows(cut)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picked=st.lists(st.sampled_from(range(len(_ALL_ROWS))), min_size=1, max_size=12),
       layout=st.sampled_from(CUTS))
def test_reader_accounts_for_any_selection_of_real_rows(
    tmp_path: Path, picked: list[int], layout: Path
) -> None:
    """Rows of one layout, picked and repeated in any order: each is read, and read as itself."""
    header = list(ema_sheets.rows(layout)[0])
    rows = [row for cut, row in (_ALL_ROWS[i] for i in picked) if list(row) == header]
    path = tmp_path / "report.xlsx"
    _write(path, header, [[None if v == "" else v for v in row.values()] for row in rows])
    result = read_source(path)
    assert result.count == len(rows) == len(result.records) + len(result.rejections)
    assert result.rejections == []
    assert [r.product_number for r in result.records] == [ema_sheets.product_number(r) for r in rows]
    assert [r.record for r in result.records] == [str(i) for i in range(2, len(rows) + 2)]


def test_cut_script_output_is_what_is_committed(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("cut_reports", FIXTURES / "cut_reports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for committed in CUTS:
        module.cut(module.DATA / committed.name, tmp_path / committed.name)
        again: Callable[[Path], tuple[dict[str, object], ...]] = ema_sheets.rows.__wrapped__
        assert again(tmp_path / committed.name) == again(committed)


def test_holder_spellings_of_one_legal_form_are_one_node(cut: tuple[Path, rdflib.Graph]) -> None:
    """"Pfizer Ltd" and "Pfizer Ltd. " (2018) are one organisation; "Pfizer Europe MA EEIG" another."""
    path, g = cut
    holders: dict[str, set[rdflib.term.Node]] = collections.defaultdict(set)
    for row in ema_sheets.rows(path):
        name = _plain(str(ema_sheets.column(row, "holder")).split("\n")[0])
        if name.lower().startswith("pfizer"):
            a = URIRef(Minter().authorisation(ema_sheets.product_number(row)))
            holders[iris.normalise_organisation(name)].update(g.objects(a, URIRef(EPAR.iri("holder"))))
    assert all(len(nodes) == 1 for nodes in holders.values())
    assert len({n for nodes in holders.values() for n in nodes}) == len(holders)


def test_a_column_ema_adds_is_a_warning_and_loses_no_row(tmp_path: Path) -> None:
    cut = FIXTURES / "ema-medicines-report-2026-03-14.xlsx"
    rows = ema_sheets.rows(cut)
    header = [*rows[0], "Shelf life"]
    path = tmp_path / "report.xlsx"
    _write(path, header, [[None if v == "" else v for v in row.values()] + ["24 months"] for row in rows])
    result = read_source(path)
    assert len(result.records) == len(rows) and result.rejections == []
    [warning] = [w for w in result.warnings if w.field == "Shelf life"]
    assert "not known" in warning.message


def test_renamed_generic_column_reads_the_same() -> None:
    """"Generic or hybrid" (January 2026) became "Generic" (March 2026): both give epar:isGeneric."""
    jan, mar = (FIXTURES / f"ema-medicines-report-2026-{d}.xlsx" for d in ("01-29", "03-14"))
    assert "Generic or hybrid" in ema_sheets.rows(jan)[0] and "Generic" in ema_sheets.rows(mar)[0]
    for path, header in ((jan, "Generic or hybrid"), (mar, "Generic")):
        records = {r.product_number: r for r in read_source(path).records}
        for row in ema_sheets.rows(path):
            assert records[ema_sheets.product_number(row)].is_generic == (str(row[header]).strip() == "Yes")
