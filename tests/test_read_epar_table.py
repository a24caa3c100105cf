"""The 2017 EPAR search table (CSV) and its merged copy with the export's columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import config
from epar_graph.read import common, ema_export, epar_table, read_source

SCRAPE = config.DATA_DIR / "ema-epar-scrape-2017.csv"
MERGED = config.DATA_DIR / "ema-medicines-2017-wikidata-rxnorm.csv"
XLS = config.DATA_DIR / "ema-medicines-2017-02-13.xls"
HEADER = ["Name", "Active substance", "Date of authorisation / refusal", "Status",
          "Therapeutic area", "url"]
FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def scrape() -> common.Outcome:
    return epar_table.read_table(SCRAPE)


@pytest.fixture(scope="module")
def xls_numbers() -> dict[str, str]:
    """Product number → status, from EMA's own export of the same day."""
    return {r.product_number: r.status or "" for r in ema_export.read_xls(XLS).records}


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_scrape_accounts_for_every_row(scrape: common.Outcome) -> None:
    result = read_source(SCRAPE)
    assert result.format == "epar-table"
    assert result.count == 1149 == len(_raw_rows(SCRAPE))
    assert len(result.records) == len(scrape.records)


def test_scrape_rows_without_page_path_are_rejected(scrape: common.Outcome) -> None:
    raw = _raw_rows(SCRAPE)
    no_url = {str(i) for i, row in enumerate(raw, start=1) if not row["url"]}
    assert no_url  # Cabometyx, Kolbam, … have no page path in the table
    rejected = {r.record for r in scrape.rejections if "no page path" in r.message}
    assert rejected == no_url
    assert all(r.field == "url" and r.file == str(SCRAPE) for r in scrape.rejections)


def test_scrape_rows_sharing_a_page_are_rejected_not_guessed(
    scrape: common.Outcome, xls_numbers: dict[str, str]
) -> None:
    ambiguous = [r for r in scrape.rejections if "ambiguous" in r.message]
    raw = _raw_rows(SCRAPE)
    names = {raw[int(r.record) - 1]["Name"] for r in ambiguous}
    assert "Cimzia" in names and len(ambiguous) == 2 * len(names)
    # every accepted row's page-path number agrees with EMA's export on the status
    for rec in scrape.records:
        assert xls_numbers[rec.product_number] == rec.status, rec


def test_scrape_row_facts(scrape: common.Outcome) -> None:
    by_number = {r.product_number: r for r in scrape.records}
    abraxane = by_number["EMEA/H/C/000778"]
    assert abraxane.therapeutic_areas == (
        "Breast Neoplasms",
        "Carcinoma, Non-Small-Cell Lung",
        "Pancreatic Neoplasms",
    )
    assert abraxane.authorisation_date == dt.date(2008, 1, 11)
    assert abraxane.ema_url == (
        "https://www.ema.europa.eu/ema/index.jsp?curl=pages/medicines/human/medicines/"
        "000778/human_med_000620.jsp"
    )
    refused = [r for r in scrape.records if r.status == "Refused"]
    assert refused
    assert all(r.authorisation_date is None for r in refused)
    assert all(r.refusal_date is not None for r in refused)


def test_merged_table_reads_product_facts(xls_numbers: dict[str, str]) -> None:
    result = read_source(MERGED)
    assert result.format == "epar-table-merged"
    assert result.count == 1149 == len(result.records)
    assert {r.product_number for r in result.records} == set(xls_numbers)
    for rec in result.records:
        assert rec.status == xls_numbers[rec.product_number]
        # a page path is kept only where it belongs to this product
        if rec.ema_url:
            assert epar_table.page_number(rec.ema_url) == rec.product_number
    cimzia = [r for r in result.records if r.name == "Cimzia"]
    assert len(cimzia) == 2 and sum(1 for r in cimzia if r.ema_url) == 1
    abraxane = next(r for r in result.records if r.product_number == "EMEA/H/C/000778")
    assert abraxane.atc_codes == ("L01CD01",)
    assert (abraxane.indication or "").startswith("Abraxane monotherapy")


# --- bad input ----------------------------------------------------------------------------

GOOD = ["Alofisel", "darvadstrocel", "2018-03-23", "Withdrawn", "Rectal Fistula",
        "index.jsp?curl=pages/medicines/human/medicines/004258/human_med_002205.jsp"]


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("index", "value", "field", "words"),
    [
        (0, "", "Name", "missing"),
        (5, "", "url", "no page path"),
        (5, "index.jsp?curl=pages/medicines/human/medicines/4258/x.jsp", "url", "six-digit"),
        (2, "2018-02-30", "Date of authorisation / refusal", "impossible date"),
        (2, "23 Mar 18", "Date of authorisation / refusal", "not a date"),
        (3, "Pending", "Status", "unknown status"),
    ],
)
def test_bad_rows_are_rejected_by_field(
    tmp_path: Path, index: int, value: str, field: str, words: str
) -> None:
    bad = list(GOOD)
    bad[index] = value
    other = list(GOOD)
    other[5] = other[5].replace("004258", "000001")
    path = tmp_path / "table.csv"
    path.write_text(_csv([other, bad]), encoding="utf-8")
    result = read_source(path)
    assert result.format == "epar-table"
    assert result.count == 2 and len(result.records) == 1
    [rejection] = result.rejections
    assert (rejection.file, rejection.record, rejection.field) == (str(path), "2", field)
    assert words in rejection.message


def test_rows_sharing_a_page(tmp_path: Path) -> None:
    refused = ["Alofisel", "darvadstrocel", "2016-01-01", "Refused", "", GOOD[5]]
    broken = [*GOOD[:2], "2018-02-30", *GOOD[3:]]
    path = tmp_path / "table.csv"
    # two valid rows, one page: which product owns it is unknown, so both are rejected
    path.write_text(_csv([GOOD, refused]), encoding="utf-8")
    result = read_source(path)
    assert result.records == []
    assert [(r.record, r.field) for r in result.rejections] == [("1", "url"), ("2", "url")]
    assert "row(s) 2" in result.rejections[0].message
    # a row rejected for its own fault leaves the other one unambiguous
    path.write_text(_csv([GOOD, broken]), encoding="utf-8")
    result = read_source(path)
    assert [r.record for r in result.records] == ["1"]
    [bad] = result.rejections
    assert (bad.record, bad.field) == ("2", "Date of authorisation / refusal")


def test_merged_table_needs_a_product_number(tmp_path: Path) -> None:
    header = ["", *HEADER, "atc", "emea", "indication"]
    path = tmp_path / "merged.csv"
    path.write_text(_csv([["0", *GOOD, "L04", "", "x"], ["1", *GOOD, "L 04", "EMEA/H/C/004258 ",
                                                         ""]], header), encoding="utf-8")
    result = read_source(path)
    assert result.format == "epar-table-merged"
    [rejection] = result.rejections
    assert (rejection.record, rejection.field) == ("1", "emea")
    [rec] = result.records
    assert rec.product_number == "EMEA/H/C/004258" and rec.atc_codes == ("L04",)


def test_table_without_required_columns_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(_csv([GOOD[:5]], HEADER[:5]), encoding="utf-8")
    result = read_source(path)
    assert result.format == "unknown"
    assert result.count == 1 and result.rejections[0].record == "-"


# --- properties ---------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_name = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=1,
                max_size=20)
_area = st.lists(_name, min_size=1, max_size=3).map(" ".join)


@st.composite
def _valid(draw: st.DrawFn) -> list[str]:
    folder = draw(st.integers(0, 999_999))
    return [
        draw(_name),
        " / ".join(draw(st.lists(_name, min_size=1, max_size=3, unique=True))),
        draw(st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2030, 1, 1))).isoformat(),
        draw(st.sampled_from(["Authorised", "Withdrawn", "Refused", "Suspended"])),
        "  ".join(draw(st.lists(_area, max_size=3, unique=True))),
        f"index.jsp?curl=pages/medicines/human/medicines/{folder:06d}/human_med_{folder}.jsp",
    ]


@FAST
@given(st.lists(_valid(), max_size=6, unique_by=lambda r: r[5]),
       st.lists(st.lists(_text, min_size=0, max_size=7), max_size=6))
def test_table_reader_never_raises_and_round_trips(
    valid: list[list[str]], junk: list[list[str]]
) -> None:
    text = _csv([*valid, *junk])
    out = epar_table.read_table_text(text, "t.csv", "t.csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(out.records) + len(out.rejections) == len(rows)
    by_id = {r.record: r for r in out.records}
    for i, row in enumerate(valid, start=1):
        rec = by_id.get(str(i))
        if rec is None:  # a junk row may share its page path
            assert any(r.record == str(i) and "ambiguous" in r.message for r in out.rejections)
            continue
        assert rec.name == row[0]
        assert rec.active_substances == tuple(row[1].split(" / "))
        date = dt.date.fromisoformat(row[2])
        assert (rec.refusal_date if row[3] == "Refused" else rec.authorisation_date) == date
        assert rec.therapeutic_areas == tuple(a for a in row[4].split("  ") if a)
        assert rec.product_number == f"EMEA/H/C/{row[5].split('/')[-2]}"


@FAST
@given(_text)
def test_any_text_after_a_table_header_never_raises(tail: str) -> None:
    out = epar_table.read_table_text(",".join(HEADER) + "\n" + tail, "t.csv", "t.csv")
    assert all(r.file == "t.csv" for r in out.rejections)
