"""Readers of the link tables: strict value parsers (property-tested) and real rows."""

from __future__ import annotations

import datetime as dt
import html
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import config
from epar_graph.model import Rejection
from epar_graph.read import link_tables as lt
from epar_graph.read.common import FieldError, clean

FIXTURES = Path(__file__).parent / "data" / "links"

# -- the jammed trade-name cell ------------------------------------------------------------------

trade_names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -()."),
    min_size=1,
    max_size=30,
).map(str.strip).filter(lambda s: bool(s) and "EU/" not in s)


@given(
    name=trade_names,
    year=st.integers(0, 99),
    number=st.integers(1, 9999),
    date=st.dates(dt.date(1995, 1, 1), dt.date(2099, 12, 31)),
)
def test_trade_name_cell_round_trips(name: str, year: int, number: int, date: dt.date) -> None:
    eu = f"EU/1/{year:02d}/{number}"
    cell = f"{name}{eu}{date:%d/%m/%Y}"
    got = lt.trade_name(cell, "c")
    assert got == lt.TradeName(" ".join(name.split()), eu, date)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("WakixEU/1/15/106804/04/2016", ("Wakix", "EU/1/15/1068", dt.date(2016, 4, 4))),
        ("IMBRUVICAEU/1/14/94523/10/2014", ("IMBRUVICA", "EU/1/14/945", dt.date(2014, 10, 23))),
        ("CarbagluEU/1/02/24601/06/2011", ("Carbaglu", "EU/1/02/246", dt.date(2011, 6, 1))),
        ("Thalidomide CelgeneEU/1/08/44318/04/2008", ("Thalidomide Celgene", "EU/1/08/443", dt.date(2008, 4, 18))),
        ("", None),
    ],
)
def test_trade_name_real_cells(cell: str, expected: tuple[str, str, dt.date] | None) -> None:
    got = lt.trade_name(cell, "c")
    assert (got.name, got.eu_number, got.implemented_on) == expected if got else expected is None


@pytest.mark.parametrize(
    "cell", ["Wakix", "WakixEU/1/15/1068", "WakixEU/1/15/106831/02/2016", "EU/1/15/106804/04/2016"]
)
def test_trade_name_rejects_what_it_cannot_take_apart(cell: str) -> None:
    with pytest.raises(FieldError) as err:
        lt.trade_name(cell, "TradenameEU Centralised NrImplemented on")
    assert err.value.field == "TradenameEU Centralised NrImplemented on"


# -- lists and identifiers -------------------------------------------------------------------------

qids = st.integers(1, 10**9).map(lambda n: f"Q{n}")


@given(st.lists(st.one_of(st.none(), qids), min_size=1, max_size=6))
def test_pandas_list_cells_round_trip_with_gaps_in_place(items: list[str | None]) -> None:
    cell = "[" + ", ".join("None" if q is None else repr(q) for q in items) + "]"
    assert lt.id_list(cell, "wdid_mix", lt.qid) == tuple(items)


@given(st.lists(qids, min_size=1, max_size=6))
def test_semicolon_lists_parse(items: list[str]) -> None:
    assert lt.id_list(";".join(items), "c", lt.qid) == tuple(items)


@given(st.text(max_size=20))
def test_qid_parser_accepts_exactly_q_numbers(text: str) -> None:
    try:
        got = lt.qid(text, "wdid")
    except FieldError as err:
        assert err.field == "wdid" and repr(clean(text)) in err.message
    else:
        assert got is None or lt.QID_RE.fullmatch(got)


@pytest.mark.parametrize("cell", ["['Q1', 'Q2'", "['Q1' 'Q2']", "[Q1, Q2]", "['X1']", "Q1;X2"])
def test_malformed_lists_are_errors(cell: str) -> None:
    with pytest.raises(FieldError):
        lt.id_list(cell, "c", lt.qid)


def test_rxcui_accepts_spreadsheet_floats() -> None:
    assert lt.rxcui("89013.0", "rxcui") == "89013"
    with pytest.raises(FieldError):
        lt.rxcui("89013.5", "rxcui")


def _with_first_designation_date(tmp_path: Path, cell: str) -> Path:
    src = (FIXTURES / "eu-orphan-designations-2017-linked.csv").read_text(encoding="utf-8")
    path = tmp_path / "d.csv"
    path.write_text(src.replace(",25/08/2010,", f",{cell},", 1), encoding="utf-8")
    return path


@settings(max_examples=25, deadline=None)
@given(st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)))
def test_designation_dates_round_trip(tmp_path_factory: pytest.TempPathFactory, date: dt.date) -> None:
    table = lt.read_designations(_with_first_designation_date(tmp_path_factory.mktemp("d"), f"{date:%d/%m/%Y}"))
    assert table.rows[0].record == "1 (index 0)" and table.rows[0].date == date


@pytest.mark.parametrize("cell", ["31/02/2010", "00/01/2010", "2010-13-01", "soon"])
def test_bad_designation_dates_are_rejections_naming_the_column(tmp_path: Path, cell: str) -> None:
    """Dates go through the readers' one parser (``read.common.parse_date``): strict, never a guess."""
    table = lt.read_designations(_with_first_designation_date(tmp_path, cell))
    first = table.rejections[0]  # (the fixture's row 12 has an impossible date of its own)
    assert (first.record, first.field) == ("1 (index 0)", "Designation date") and isinstance(first, Rejection)
    assert table.rows[0].record != "1 (index 0)"


def test_link_table_errors_are_the_readers_field_errors() -> None:
    """One error type for a bad value, whichever reader finds it."""
    with pytest.raises(FieldError) as err:
        lt.qid("P31", "wdid")
    assert err.value.field == "wdid" and err.value.message == "'P31' is not a Wikidata item id (Q…)"


@pytest.mark.parametrize(
    ("indication", "condition"),
    [
        ("Treatment of primary myelofibrosis", "primary myelofibrosis"),
        ("Prevention of graft rejection following solid organ transplantation",
         "graft rejection following solid organ transplantation"),
        ("Diagnosis of gastric cancer", "gastric cancer"),
        ("treatment of angioedema", "angioedema"),
        ("Treatment in haematopoietic stem cell transplantation", "haematopoietic stem cell transplantation"),
        ("'Treatment of choroideremia", "choroideremia"),
        ("Treatment of Cushing’s syndrome.", "Cushing's syndrome"),
        ("Treatment of Beh&ccedil;et's disease", "Behçet's disease"),
        ("AIDS wasting", "AIDS wasting"),
        ("Treatment of", ""),
        ("Treatment offered to patients", "Treatment offered to patients"),
    ],
)
def test_condition_names(indication: str, condition: str) -> None:
    assert lt.condition_name(indication) == condition


@given(st.text(min_size=1, max_size=60))
def test_condition_name_is_empty_only_for_an_empty_indication(text: str) -> None:
    """Any indication with a letter or digit names a condition (unless it is a bare purpose phrase),
    as tidy single-spaced text."""
    name = lt.condition_name(text)
    source = " ".join(html.unescape(text).split())
    bare_purpose = re.fullmatch(r"\W*(treatment|prevention|diagnosis)\s+(of|in|for|to)\W*", source, re.IGNORECASE)
    if any(c.isalnum() for c in source) and not bare_purpose:
        assert any(c.isalnum() for c in name)
    assert name == " ".join(name.split())


# -- real tables ----------------------------------------------------------------------------------


def test_substance_matches_on_real_rows() -> None:
    table = lt.read_substance_matches(FIXTURES / "ema-medicines-2017-wikidata-rxnorm.csv")
    by = {(r.product_number, r.name): r for r in table.rows}
    abilify = by[("EMEA/H/C/000471", "Abilify")]
    assert (abilify.substances, abilify.wikidata, abilify.rxnorm) == (("aripiprazole",), "Q411188", "89013")
    assert abilify.wikidata_parts is None and abilify.record == "1 (index 1)"
    atripla = by[("EMEA/H/C/000797", "Atripla")]
    assert atripla.substances == ("efavirenz", "emtricitabine", "tenofovir disoproxil fumarate")
    assert atripla.wikidata_parts == ("Q422645", "Q422604", "Q27132754")
    assert atripla.rxnorm_parts == ("195085", "276237", "322248")
    azarga = by[("EMEA/H/C/000960", "Azarga")]
    assert azarga.rxnorm_parts == ("194881", None)
    kaletra = by[("EMEA/H/C/000368", "Kaletra")]
    assert (kaletra.wikidata, kaletra.rxnorm_combination) == ("Q3836750", "284640")
    assert [(r.record, r.field) for r in table.rejections] == [("22 (index 9999)", "wdid")]
    assert str(table.rejections[0]).startswith("ema-medicines-2017-wikidata-rxnorm.csv: record 22 (index 9999)")


def test_designations_on_real_rows() -> None:
    table = lt.read_designations(FIXTURES / "eu-orphan-designations-2017-linked.csv")
    by = {r.number: r for r in table.rows}
    pmf = by["EU/3/10/768"]
    assert pmf.condition == "primary myelofibrosis" and pmf.condition_key == "primary myelofibrosis"
    assert pmf.sponsor == "CTI Life Sciences Ltd" and pmf.date == dt.date(2010, 8, 25)
    assert (pmf.doid, pmf.hpo, pmf.ordo, pmf.mesh) == (
        "http://purl.obolibrary.org/obo/DOID_4971", None, "http://www.orpha.net/ORDO/Orphanet_824", "D055728"
    )
    assert (pmf.wikidata_via_doid, pmf.wikidata_via_ordo, pmf.wikidata_via_mesh) == ("Q1752571", None, "Q1752571")
    assert pmf.trade is None
    wakix = by["EU/3/07/459"]
    assert wakix.trade == lt.TradeName("Wakix", "EU/1/15/1068", dt.date(2016, 4, 4))
    assert [(r.record, r.field) for r in table.rejections] == [("12 (index 9999)", "Designation date")]


def test_the_bundled_tables_read_without_rejections() -> None:
    substances = lt.read_substance_matches(config.DATA_DIR / "ema-medicines-2017-wikidata-rxnorm.csv")
    designations = lt.read_designations(config.DATA_DIR / "eu-orphan-designations-2017-linked.csv")
    assert (len(substances.rows), substances.rejections) == (1149, [])
    assert (len(designations.rows), designations.rejections) == (1426, [])
    assert sum(1 for d in designations.rows if d.trade) == 110
    countries = lt.read_countries(config.DATA_DIR / "links" / "countries-wikidata.csv")
    assert countries.rejections == [] and {c.code: c.wikidata for c in countries.rows}["DNK"] == "Q35"


def test_indication_without_a_condition_is_rejected(tmp_path: Path) -> None:
    src = (FIXTURES / "eu-orphan-designations-2017-linked.csv").read_text(encoding="utf-8")
    path = tmp_path / "d.csv"
    path.write_text(src.replace("Treatment of primary myelofibrosis", "Treatment of ...", 1), encoding="utf-8")
    table = lt.read_designations(path)
    assert [(r.record, r.field, r.message) for r in table.rejections][0] == (
        "2 (index 1)", "Designated Orphan Indication", "'Treatment of ...' names no condition"
    )


def test_duplicate_designation_is_rejected(tmp_path: Path) -> None:
    src = (FIXTURES / "eu-orphan-designations-2017-linked.csv").read_text(encoding="utf-8")
    lines = src.splitlines(keepends=True)
    path = tmp_path / "d.csv"
    path.write_text(src + lines[1], encoding="utf-8")
    table = lt.read_designations(path)
    assert [r.message for r in table.rejections][-1] == "designation EU/3/10/767 occurs twice"


def test_surplus_cells_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "countries.csv"
    path.write_text("code,name,wikidata\nDNK,Denmark,Q35\nDEU,Germany,Q183,extra\n", encoding="utf-8")
    table = lt.read_countries(path)
    assert [c.code for c in table.rows] == ["DNK"]
    assert [(r.record, r.field) for r in table.rejections] == [("2", "-")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read link table"),
        (b"a,b\n1,2\n", "missing column(s) 'code', 'name', 'wikidata'"),
        (b"code,name,wikidata\n\xff\xfe,x,Q1\n", "not UTF-8"),
    ],
)
def test_unusable_tables_are_clear_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(lt.LinkTableError) as err:
        lt.read_countries(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_mesh_headings_table_requires_consistent_match(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "heading,descriptor,descriptor_name,match,source,orphan_evidence\n"
        "Rectal Fistula,D012003,Rectal Fistula,exact,p==1,\n"
        "Cancer,,,none,p==1,\n"
        "Diseases,D000001,,none,p==1,\n"
        "Glioma,,Glioma,exact,p==1,\n",
        encoding="utf-8",
    )
    table = lt.read_mesh_headings(path)
    assert [(r.heading, r.descriptor) for r in table.rows] == [("Rectal Fistula", "D012003"), ("Cancer", None)]
    assert [r.record for r in table.rejections] == ["3", "4"]


def test_mesh_descriptors_from_csv_and_wheel(tmp_path: Path) -> None:
    text = (
        "id,scheme,subject\r\nhttps://id.nlm.nih.gov/mesh/D012003,MeSH,Rectal Fistula\r\n"
        "https://id.nlm.nih.gov/mesh/Q1,MeSH,Bad\r\n"
    )
    csv_path = tmp_path / "subjects_mesh.csv"
    csv_path.write_text(text, encoding="utf-8", newline="")
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/vocabularies/subjects_mesh.csv", text)
    for path in (csv_path, wheel):
        table = lt.read_mesh_descriptors(path)
        assert table.rows == [lt.MeshDescriptor("D012003", "Rectal Fistula")]
        assert [r.record for r in table.rejections] == ["2"]
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("x.txt", "")
    with pytest.raises(lt.LinkTableError, match="no subjects_mesh.csv"):
        lt.read_mesh_descriptors(empty)


def test_refresh_table_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "product_number,method,key,wikidata,retrieved,curated\n"
        "EMEA/H/C/004258,ema-number,EMEA/H/C/004258,Q42;Q7,2025-01-02,yes\n"
        "EMEA/H/C/004258,ema-number,EMEA/H/C/004258,Q42,2025-01-02,no\n"
        "EMEA/H/C/004258,color,x,Q1,,\n"
        "EMEA/H/C/004258,atc,L04AX08,Q1,02/01/2025,no\n",
        encoding="utf-8",
    )
    table = lt.read_refresh(path)
    assert len(table.rows) == 1
    row = table.rows[0]
    assert (row.wikidata, row.retrieved, row.curated) == (("Q7", "Q42"), dt.date(2025, 1, 2), True)
    assert sorted(r.field for r in table.rejections) == ["key", "method", "retrieved"]
