"""EMA's exports: the real 2017 .xls, and JSON/.xlsx fixtures made from its rows."""

from __future__ import annotations

import collections
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from epar_graph import config
from epar_graph.model import ProductRecord
from epar_graph.read import common, ema_export, read_source

XLS = config.DATA_DIR / "ema-medicines-2017-02-13.xls"
FIXTURES = Path(__file__).parent / "data" / "read"
JSON_FIXTURE = FIXTURES / "ema-medicines.json"
XLSX_FIXTURE = FIXTURES / "ema-medicines.xlsx"
FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def xls() -> common.Outcome:
    return ema_export.read_xls(XLS)


def _by_number(records: list[ProductRecord]) -> dict[str, ProductRecord]:
    return {r.product_number: r for r in records}


# --- the real 2017 export -----------------------------------------------------------------


def test_xls_has_every_product_of_the_2017_snapshot(xls: common.Outcome) -> None:
    assert len(xls.records) == 1149
    assert xls.rejections == []
    statuses = collections.Counter(r.status for r in xls.records)
    assert statuses == {"Authorised": 943, "Withdrawn": 171, "Refused": 33, "Suspended": 2}
    assert len({r.product_number for r in xls.records}) == 1149


def test_xls_export_date_comes_from_the_letterhead(xls: common.Outcome) -> None:
    assert xls.metadata["export_date"] == "2017-02-13"


def test_xls_first_row_facts(xls: common.Outcome) -> None:
    first = xls.records[0]
    assert first.record == "12"  # header in sheet row 11, after the letterhead
    assert first.source == XLS.name
    assert (first.name, first.product_number) == (
        "Abasaglar (previously Abasria)",
        "EMEA/H/C/002835",
    )
    assert first.active_substances == ("insulin glargine",)
    assert first.atc_codes == ("A10AE04",)
    assert first.holder == "Eli Lilly Regional Operations GmbH"
    assert first.authorisation_date == dt.date(2014, 9, 9)
    assert first.revision_number == 4
    assert first.is_biosimilar is True and first.is_generic is False


def test_xls_quirks_are_normalised(xls: common.Outcome) -> None:
    by_number = _by_number(xls.records)
    # padded product number
    assert "EMEA/H/C/002691" in by_number
    # trailing NBSP and new lines after the holder name
    assert by_number["EMEA/H/C/000778"].holder == "Celgene Europe Ltd"
    # refused applications have "-" as authorisation date
    refused = [r for r in xls.records if r.status == "Refused"]
    assert refused and all(r.authorisation_date is None for r in refused)
    # "C10 AX10" is one ATC code with a stray space
    assert by_number["EMEA/H/C/002145"].atc_codes == ("C10AX10",)
    # a strain name with bare slashes is one substance
    aflunov = by_number["EMEA/H/C/002094"]
    assert len(aflunov.active_substances) == 1
    assert "A/turkey/Turkey/1/05" in aflunov.active_substances[0]


def test_xls_holder_with_address_lines(xls: common.Outcome) -> None:
    with_address = [r for r in xls.records if r.holder_address is not None]
    assert {r.holder_address.country_code for r in with_address if r.holder_address} == {
        "GBR",
        "SWE",
    }
    assert all("\n" not in (r.holder or "") for r in xls.records)


def test_xls_bad_atc_codes_are_warnings_not_rejections(xls: common.Outcome) -> None:
    records = {r.record: r for r in xls.records}
    assert any("'A10ABCD01'" in w.message for w in xls.warnings)
    for warning in xls.warnings:
        assert warning.field == "Atc code"
        assert "not an ATC code" in warning.message
        assert records[warning.record].atc_codes == ()  # the record is kept, the code left out
    assert all(common.ATC_RE.match(c) for r in xls.records for c in r.atc_codes)


def test_read_source_detects_the_xls_by_content(tmp_path: Path) -> None:
    renamed = tmp_path / "looks-like-a.csv"
    renamed.write_bytes(XLS.read_bytes())
    result = read_source(renamed)
    assert result.format == "ema-xls"
    assert result.count == 1149
    assert result.metadata["export_date"] == "2017-02-13"
    assert result.date == dt.date(2017, 2, 13)


# --- the current formats (fixtures made from the 2017 rows) -------------------------------


@pytest.mark.parametrize(
    ("path", "fmt", "bad_record", "bad_field"),
    [
        (JSON_FIXTURE, "ema-json", "7", "marketing_authorisation_date"),
        (XLSX_FIXTURE, "ema-xlsx", "16", "Marketing authorisation date"),
    ],
)
def test_current_formats_agree_with_the_2017_export(
    xls: common.Outcome, path: Path, fmt: str, bad_record: str, bad_field: str
) -> None:
    result = read_source(path)
    assert result.format == fmt
    assert result.count == 7 == len(result.records) + len(result.rejections)
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), bad_record, bad_field)
    assert "impossible date" in bad.message
    old = _by_number(xls.records)
    for rec in result.records:
        before = old[rec.product_number]
        for name in ("name", "status", "active_substances", "common_name", "atc_codes",
                     "holder", "authorisation_date", "is_orphan", "is_generic",
                     "is_biosimilar", "conditional_approval", "exceptional_circumstances",
                     "indication", "revision_number"):
            assert getattr(rec, name) == getattr(before, name), (rec.product_number, name)
        assert rec.last_updated == dt.date(2017, 2, 13)


def test_json_fixture_details() -> None:
    result = read_source(JSON_FIXTURE)
    by_number = _by_number(result.records)
    assert [r.record for r in result.records] == ["1", "2", "3", "4", "5", "6"]
    eviplera = by_number["EMEA/H/C/002312"]
    assert eviplera.active_substances == (
        "emtricitabine",
        "rilpivirine hydrochloride",
        "tenofovir disoproxil fumarate",
    )
    assert by_number["EMEA/H/C/000601"].status == "Withdrawn"
    assert by_number["EMEA/H/C/002094"].therapeutic_areas == (
        "Disease Outbreaks",
        "Immunization",
        "Influenza, Human",
    )
    assert (by_number["EMEA/H/C/000740"].ema_url or "") == ""
    assert (by_number["EMEA/H/C/002835"].ema_url or "").startswith("https://www.ema.europa.eu/")
    assert result.metadata["meta.total_records"] == "7"
    assert result.date == dt.date(2017, 2, 13)  # from meta.export_date


def test_xlsx_fixture_has_a_preamble_and_sheet_row_ids() -> None:
    result = read_source(XLSX_FIXTURE)
    assert [r.record for r in result.records] == ["10", "11", "12", "13", "14", "15"]
    assert result.metadata["export_date"] == "2017-02-13"
    assert result.date == dt.date(2017, 2, 13)  # "Data extracted on 13/02/2017"


def test_fixture_script_output_is_what_is_committed(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_json(module.rows(), tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text(encoding="utf-8") == JSON_FIXTURE.read_text(
        encoding="utf-8"
    )


# --- bad input ----------------------------------------------------------------------------

GOOD_ROW = {
    "category": "Human",
    "name_of_medicine": "Alofisel",
    "ema_product_number": "EMEA/H/C/004258",
    "medicine_status": "Withdrawn",
    "active_substance": "darvadstrocel",
    "atc_code_human": "L04",
    "marketing_authorisation_date": "23/03/2018",
    "withdrawal_expiry_revocation_lapse_of_marketing_authorisation_date": "13/12/2024",
    "orphan_medicine": "Yes",
    "revision_number": "4",
}


def _json(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name_of_medicine": ""}, "name_of_medicine", "missing"),
        ({"ema_product_number": None}, "ema_product_number", "missing"),
        ({"ema_product_number": "EU/1/18/1244"}, "ema_product_number", "not a product number"),
        ({"marketing_authorisation_date": "30/02/2018"}, "marketing_authorisation_date",
         "impossible date"),
        ({"orphan_medicine": "perhaps"}, "orphan_medicine", "not yes/no"),
        ({"revision_number": "4b"}, "revision_number", "not a whole number"),
        ({"atc_code_human": {"code": "L04"}}, "atc_code_human", "JSON object"),
    ],
)
def test_json_bad_rows_are_rejected_by_field(
    tmp_path: Path, change: dict[str, object], field: str, words: str
) -> None:
    path = _json(tmp_path, {"meta": {}, "data": [GOOD_ROW, {**GOOD_ROW, **change}]})
    result = read_source(path)
    assert result.count == 2 and len(result.records) == 1
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), "2", field)
    assert words in bad.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"medicine_status": "Pending"}, "medicine_status", "new status concept"),
        ({"category": "Plant"}, "category", "new category concept"),
        ({"ema_product_number": "EMEA/H/C004258"}, "ema_product_number", "read as"),
    ],
)
def test_json_odd_rows_are_kept_with_a_warning(
    tmp_path: Path, change: dict[str, object], field: str, words: str
) -> None:
    path = _json(tmp_path, {"meta": {}, "data": [{**GOOD_ROW, **change}]})
    result = read_source(path)
    assert result.count == 1 and len(result.records) == 1 and result.rejections == []
    [warning] = result.warnings
    assert (warning.file, warning.record, warning.field) == (str(path), "1", field)
    assert words in warning.message


def test_json_veterinary_row_is_a_medicine(tmp_path: Path) -> None:
    row = {**GOOD_ROW, "category": "Veterinary", "ema_product_number": "EMEA/V/C/004258"}
    [rec] = read_source(_json(tmp_path, {"data": [row]})).records
    assert rec.category == "Veterinary" and rec.product_number == "EMEA/V/C/004258"


def test_json_good_row(tmp_path: Path) -> None:
    [rec] = read_source(_json(tmp_path, {"data": [GOOD_ROW]})).records
    assert rec.withdrawal_date == dt.date(2024, 12, 13)
    assert rec.is_orphan is True and rec.revision_number == 4


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        ('{"meta": {}, "data": [{"name_of_medicine": "Alofisel", "ema_pro', "-", "not valid JSON"),
        ('{"meta": {}, "rows": []}', "data", "'data' list"),
        ("[]", None, None),
    ],
)
def test_json_file_level_problems(tmp_path: Path, content: str, field: str | None,
                                  words: str | None) -> None:
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    result = read_source(path)
    assert result.format == "ema-json"
    if field is None:
        assert result.count == 0
        return
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), "-", field)
    assert words and words in bad.message


def test_json_item_that_is_not_an_object(tmp_path: Path) -> None:
    result = read_source(_json(tmp_path, {"data": [GOOD_ROW, "Alofisel", 3]}))
    assert result.count == 3
    assert [(r.record, r.field) for r in result.rejections] == [("2", "-"), ("3", "-")]


def test_xlsx_without_a_header_row(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["just", "some", "cells"])
    path = tmp_path / "other.xlsx"
    book.save(path)
    result = read_source(path)
    assert result.format == "ema-xlsx"
    [bad] = result.rejections
    assert (bad.record, bad.field) == ("-", "Product Number")
    assert "no header row" in bad.message


def test_damaged_xls_is_a_rejection(tmp_path: Path) -> None:
    path = tmp_path / "cut.xls"
    path.write_bytes(XLS.read_bytes()[:5000])
    result = read_source(path)
    assert result.format == "ema-xls"
    [bad] = result.rejections
    assert (bad.file, bad.record) == (str(path), "-")


# --- properties ---------------------------------------------------------------------------

LEGACY_HEADER = ["Medicine Name", "Product Number", "Active Substance", "Common name", "Atc code",
                 "Marketing Authorisation Holder", "Status", "Revision number",
                 "Authorisation date", "Indication", "Condition Approval",
                 "Exceptional Circumstance", "Is Orphan", "Is Generic", "Biosimilar"]

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
_name = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=1,
                max_size=20)
_number = st.integers(0, 999_999).map(lambda n: f"EMEA/H/C/{n:06d}")
_date = st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2030, 12, 31))
_flag = st.sampled_from(["yes", "no", "Yes", "No"])


@st.composite
def _valid_row(draw: st.DrawFn) -> list[object]:
    return [
        draw(_name), draw(_number), draw(_name), draw(_name), "L04AX08", draw(_name),
        draw(st.sampled_from(["Authorised", "Withdrawn", "Refused", "Suspended"])),
        float(draw(st.integers(0, 99))), draw(_date).strftime("%d/%m/%Y"), draw(_text),
        draw(_flag), draw(_flag), draw(_flag), draw(_flag), draw(_flag),
    ]


_any_cell = st.one_of(_text, st.floats(allow_nan=True), st.none(), st.integers(), _date)


@FAST
@given(
    preamble=st.lists(st.lists(_text, max_size=3), max_size=4),
    valid=st.lists(_valid_row(), max_size=6),
    junk=st.lists(st.lists(_any_cell, min_size=1, max_size=16), max_size=6),
)
def test_sheet_reader_never_raises_and_accounts_for_every_row(
    preamble: list[list[object]], valid: list[list[object]], junk: list[list[object]]
) -> None:
    rows = [*preamble, LEGACY_HEADER, *valid, *junk]
    numbered = [(i, r) for i, r in enumerate(rows, start=1)]
    out = ema_export.read_sheet_rows(numbered, "f.xls", "f.xls")
    non_blank = [r for r in [*valid, *junk] if any(common.clean(c) for c in r)]
    assert len(out.records) + len(out.rejections) == len(non_blank)
    for rec, row in zip(out.records[: len(valid)], valid, strict=True):
        assert rec.name == row[0]
        assert rec.product_number == row[1]
        assert rec.status == row[6]
        assert rec.revision_number == int(float(str(row[7])))
        assert rec.authorisation_date == dt.datetime.strptime(str(row[8]), "%d/%m/%Y").date()
        assert rec.is_orphan is (str(row[12]).lower() == "yes")
    for rejection in out.rejections:
        assert rejection.file == "f.xls" and rejection.field and rejection.message


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(list(GOOD_ROW) + ["x"]),
                                st.one_of(_text, st.floats(), st.none(), st.integers(),
                                          st.booleans(), st.lists(_text, max_size=2)),
                                max_size=10), max_size=8))
def test_json_reader_never_raises(items: list[dict[str, object]]) -> None:
    out = ema_export.read_json_text(json.dumps({"data": items}), "f.json", "f.json")
    assert len(out.records) + len(out.rejections) == len(items)


@settings(max_examples=8, deadline=None)
@given(st.lists(_valid_row(), min_size=1, max_size=4), st.integers(0, 5))
def test_xlsx_round_trip(tmp_path_factory: pytest.TempPathFactory, rows: list[list[object]],
                         blank_rows: int) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["European Medicines Agency"])
    for _ in range(blank_rows):
        sheet.append([])
    sheet.append(LEGACY_HEADER)
    for row in rows:  # a worksheet cannot hold control characters
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in row])
    path = tmp_path_factory.mktemp("xlsx") / "rows.xlsx"
    book.save(path)
    result = read_source(path)
    assert result.format == "ema-xlsx"
    assert result.count == len(rows) == len(result.records)
    header_row = 2 + blank_rows
    for i, (rec, row) in enumerate(zip(result.records, rows, strict=True), start=1):
        assert rec.record == str(header_row + i)
        assert (rec.name, rec.product_number) == (row[0], row[1])
