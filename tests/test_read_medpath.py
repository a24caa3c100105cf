"""A MedPath "EMA Approval" page saved as text (the real Alofisel page, and variations of it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import config
from epar_graph.model import Address, ProductRecord
from epar_graph.read import medpath, read_source

PAGE = config.DATA_DIR / "medpath" / "alofisel.txt"
TEXT = PAGE.read_text(encoding="utf-8")
FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def alofisel() -> ProductRecord:
    result = read_source(PAGE)
    assert result.format == "medpath"
    assert result.rejections == []
    assert result.date is None  # the page states no date for itself
    [record] = result.records
    return record


def test_identity(alofisel: ProductRecord) -> None:
    assert (alofisel.name, alofisel.product_number) == ("Alofisel", "EMEA/H/C/004258")
    assert (alofisel.source, alofisel.record) == ("alofisel.txt", "page")


def test_classification(alofisel: ProductRecord) -> None:
    assert alofisel.atc_codes == ("L04",)
    assert alofisel.pharmacotherapeutic_group == {"zh": "免疫抑制剂", "en": "Immunosuppressants"}
    assert alofisel.active_substances == ("darvadstrocel",)
    assert alofisel.therapeutic_areas == ("Rectal Fistula",)


def test_authorisation(alofisel: ProductRecord) -> None:
    assert alofisel.holder == "Takeda Pharma A/S"
    assert alofisel.holder_address == Address(
        street="Delta Park 45",
        postal_code="2665",
        locality="Vallensbaek Strand",
        country_code="DNK",
        country_name="Denmark",
    )
    assert alofisel.status == "Withdrawn"
    assert alofisel.authorisation_date == dt.date(2018, 3, 23)


def test_dates_stated_in_prose(alofisel: ProductRecord) -> None:
    assert alofisel.withdrawal_date == dt.date(2024, 12, 13)
    assert alofisel.orphan_designation_date == dt.date(2009, 10, 8)
    assert alofisel.is_orphan is True


def test_overview(alofisel: ProductRecord) -> None:
    overview = alofisel.overview or ""
    paragraphs = overview.split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("On 13 December 2024, the European Commission withdrew")
    assert paragraphs[1].endswith("is no longer valid.")
    assert "Authorisations" not in overview


def test_documents_keep_every_listing(alofisel: ProductRecord) -> None:
    docs = alofisel.documents
    assert len(docs) == 12
    assert docs[0].title == "Alofisel : EPAR - Public assessment report"
    assert docs[0].date == dt.date(2018, 4, 3)
    assert docs[0].section == "CHANGES_SINCE_INITIAL_AUTHORISATION"
    # the same report is listed under two sections; both listings are kept
    same = [d for d in docs if d.title == docs[0].title and d.date == docs[0].date]
    assert {d.section for d in same} == {
        "CHANGES_SINCE_INITIAL_AUTHORISATION",
        "INITIAL_MARKETING_AUTHORISATION_DOCUMENTS",
    }
    assert docs[-1].date == dt.date(2019, 7, 29)
    assert all(d.section and d.section.isupper() for d in docs)


def test_questions_and_multi_paragraph_answers(alofisel: ProductRecord) -> None:
    qs = alofisel.questions
    assert len(qs) == 8
    assert qs[0].question == "How is Alofisel used?"
    assert qs[0].answer.count("\n\n") == 2
    assert qs[0].answer.endswith("For further information, see the package leaflet.")
    assert qs[-1].question == "What is Alofisel and what is it used for?"
    assert "MedPath" not in qs[-1].answer
    assert all(q.answer and q.answer != "Question" for q in qs)


# --- damaged pages ------------------------------------------------------------------------


def _page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("EMA Approval\n\nAlofisel\n", "EMA Approval\n\n", "name", ""),
        ("\nEMEA/H/C/004258\n", "\n\n", "product_number", ""),
        ("March 23, 2018", "February 30, 2018", "authorisation_date", "impossible date"),
        ("Documents (12)", "Documents (13)", "documents", "lists 12"),
        ("July 29, 2019", "July 32, 2019", "documents", "impossible date"),
        ("Overview Q&A (8)", "Overview Q&A (9)", "questions", "lists 8"),
        ("Authorisations (1)", "Authorisations (2)", "product_number", "lists 1"),
        ("\nWithdrawn\n", "\nPending\n", "status", "unknown status"),
    ],
)
def test_damaged_page_is_rejected_naming_the_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in TEXT
    path = _page(tmp_path, TEXT.replace(old, new, 1))
    result = read_source(path)
    assert result.format == "medpath"
    assert result.count == 1 and result.records == []
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), "page", field)
    assert words in bad.message


@pytest.mark.parametrize(
    ("line", "name", "street", "country"),
    [
        ("Almirall, S.A.,Ronda General Mitre 151,08022 Barcelona,Spain", "Almirall, S.A.",
         "Ronda General Mitre 151", "ESP"),
        ("Takeda Pharma A/S, Delta Park 45, 2665 Vallensbaek Strand, Denmark",
         "Takeda Pharma A/S", "Delta Park 45", "DNK"),
        ("Takeda Pharma A/S", "Takeda Pharma A/S", None, None),
    ],
)
def test_holder_line_variants(
    tmp_path: Path, line: str, name: str, street: str | None, country: str | None
) -> None:
    old = "Takeda Pharma A/S,Delta Park 45,2665 Vallensbaek Strand,Denmark"
    [rec] = read_source(_page(tmp_path, TEXT.replace(old, line))).records
    assert rec.holder == name
    address = rec.holder_address
    assert (address.street if address else None) == street
    assert (address.country_code if address else None) == country


def test_page_without_the_section_counts_is_not_a_medpath_page(tmp_path: Path) -> None:
    result = read_source(_page(tmp_path, "MedPath\nEMA Approval\nAlofisel\n"))
    assert result.format == "unknown"


# --- properties ---------------------------------------------------------------------------

_word = st.text(alphabet=st.characters(codec="ascii", categories=("Lu", "Ll")), min_size=2,
                max_size=10)
_phrase = st.lists(_word, min_size=1, max_size=5).map(" ".join)
_date = st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2035, 12, 31))
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _us(d: dt.date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _prose(d: dt.date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


@st.composite
def _page_text(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    name = draw(_word).capitalize()
    number = f"EMEA/H/C/{draw(st.integers(0, 999_999)):06d}"
    substance = draw(_phrase).lower()
    area = draw(_phrase).title()
    holder = draw(_phrase)
    auth, withdrawn, designated = draw(_date), draw(_date), draw(_date)
    docs = draw(st.lists(st.tuples(_phrase, _date, st.sampled_from(
        ["OVERVIEW_DOCUMENT", "DRUG_PRODUCT_INFORMATION"])), max_size=5))
    qas = draw(st.lists(st.tuples(_phrase, st.lists(_phrase, min_size=1, max_size=3)),
                        max_size=4))
    lines = ["MedPath", "EMA Approval", name, "L04AX08", "免疫抑制剂", "Immunosuppressants",
             substance, area, "Basic Information", "Overview Summary",
             "Comprehensive product overview and regulatory summary",
             f"On {_prose(withdrawn)}, the European Commission withdrew the marketing "
             f"authorisation for {name}.",
             "Authorisations (1)", number, f"{holder},Delta Park 45,2665 Lyngby,Denmark",
             "Withdrawn", _us(auth), "Active Substances (1)", substance,
             f"Documents ({len(docs)})"]
    for title, date, section in docs:
        lines += [title, _us(date), section]
    lines.append(f"Overview Q&A ({len(qas) + 1})")
    for question, answer in qas:
        lines += ["Question", question + "?", "Answer", *answer]
    lines += ["Question", "Other information", "Answer",
              f"{name} was designated an orphan medicine on {_prose(designated)}."]
    lines += ["MedPath", "© 2025 MedPath, Inc. All rights reserved."]
    facts = dict(name=name, number=number, substance=substance, area=area, holder=holder,
                 auth=auth, withdrawn=withdrawn, designated=designated, docs=docs, qas=qas)
    return "\n\n".join(lines) + "\n", facts


@FAST
@given(_page_text())
def test_generated_pages_round_trip(page: tuple[str, dict[str, object]]) -> None:
    text, facts = page
    out = medpath.read_medpath_text(text, "p.txt", "p.txt")
    assert out.rejections == []
    [rec] = out.records
    assert rec.name == facts["name"]
    assert rec.product_number == facts["number"]
    assert rec.active_substances == (facts["substance"],)
    assert rec.therapeutic_areas == (facts["area"],)
    assert rec.holder == facts["holder"]
    assert rec.authorisation_date == facts["auth"]
    assert rec.withdrawal_date == facts["withdrawn"]
    assert rec.orphan_designation_date == facts["designated"]
    docs = facts["docs"]
    assert isinstance(docs, list)
    assert [(d.title, d.date, d.section) for d in rec.documents] == docs
    qas = facts["qas"]
    assert isinstance(qas, list)
    assert [(q.question, q.answer) for q in rec.questions[:-1]] == [
        (q + "?", "\n\n".join(a)) for q, a in qas
    ]


@FAST
@given(st.lists(st.integers(0, TEXT.count("\n")), max_size=8, unique=True))
def test_pages_with_lines_removed_never_raise(drop: list[int]) -> None:
    lines = TEXT.split("\n")
    text = "\n".join(line for i, line in enumerate(lines) if i not in set(drop))
    out = medpath.read_medpath_text(text, "p.txt", "p.txt")
    assert len(out.records) + len(out.rejections) == 1
    for bad in out.rejections:
        assert (bad.file, bad.record) == ("p.txt", "page") and bad.field != "-"


@FAST
@given(st.text(max_size=300))
def test_any_text_never_raises(text: str) -> None:
    out = medpath.read_medpath_text("EMA Approval\n" + text, "p.txt", "p.txt")
    assert len(out.records) + len(out.rejections) == 1
