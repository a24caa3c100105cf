"""A MedPath "EMA Approval" page saved as text: one product with documents and Q&A.

The page has no markup left, only lines. It is read as a sequence of
sections: a header block (name, ATC codes, pharmacotherapeutic group in
Chinese and English, substances, therapeutic areas), "Overview Summary",
and sections whose headings carry a count — "Authorisations (1)",
"Active Substances (1)", "Documents (12)", "Overview Q&A (8)". The counts
are checked against what is found, so a page that was cut off or changed
layout is rejected instead of silently losing items.

Some facts are only stated in prose (withdrawal date in the overview,
orphan designation date in the Q&A); they are taken from the sentence that
states them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from epar_graph.model import (
    PRODUCT_NUMBER_RE,
    Address,
    DocumentListing,
    ProductRecord,
    QuestionAnswer,
)
from epar_graph.read import common
from epar_graph.read.common import FieldError, Outcome

RECORD = "page"
MARKER = "EMA Approval"
_OVERVIEW_START = "Comprehensive product overview and regulatory summary"
_COUNTED = re.compile(r"^(?P<title>[A-Za-z][A-Za-z &]*?)\s*\((?P<n>\d+)\)$")
_SECTION_CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
#: Lines that end the page body (MedPath's footer).
_FOOTER = re.compile(r"^(MedPath|©.*MedPath.*|.* - EMA Approval \| MedPath)$")
#: Headings of the uncounted parts of the page.
_PLAIN_HEADINGS = {
    "Basic Information",
    "EMA regulatory identification and product classification information",
    "EMA Identifiers",
    "EMA European Classification",
    "Overview Summary",
    _OVERVIEW_START,
}


def looks_like_medpath(text: str) -> bool:
    """Content test used by format detection: the marker line and a counted section."""
    lines = _lines(text)
    return MARKER in lines[:10] and any(_COUNTED.match(line) for line in lines)


def _lines(text: str) -> list[str]:
    return [line for line in (common.clean(raw) for raw in text.splitlines()) if line]


@dataclass
class _Page:
    """The page cut into its parts, before any value is checked."""

    header: list[str]
    plain: list[str]
    overview: list[str]
    counted: dict[str, tuple[int, list[str]]]


def _split(lines: list[str]) -> _Page:
    """Cut the lines into header, overview and counted sections (by heading)."""
    start = lines.index(MARKER) + 1 if MARKER in lines else len(lines)
    page = _Page(header=[], plain=[], overview=[], counted={})
    current: list[str] = page.header
    for line in lines[start:]:
        if _FOOTER.match(line):
            break
        counted = _COUNTED.match(line)
        if counted:
            title = counted["title"].strip().lower()
            current = []
            page.counted.setdefault(title, (int(counted["n"]), current))
        elif line == _OVERVIEW_START:
            current = page.overview
        elif line in _PLAIN_HEADINGS:
            current = page.plain
        else:
            current.append(line)
    return page


def _section(page: _Page, title: str) -> tuple[int, list[str]] | None:
    return page.counted.get(title)


# --- the counted sections ---------------------------------------------------------------------


@dataclass
class _Authorisation:
    product_number: str
    holder: str | None
    address: Address | None
    status: str | None
    date: dt.date | None


def _authorisation(page: _Page) -> _Authorisation:
    """The first authorisation block: number, "holder,street,postcode town,country", status, date.

    The status and the date are recognised by their form, so the order of
    the lines does not matter; the first other line is the holder.
    """
    found = _section(page, "authorisations")
    if found is None:
        raise FieldError("product_number", "no 'Authorisations (n)' section on the page")
    n, lines = found
    starts = [i for i, line in enumerate(lines) if PRODUCT_NUMBER_RE.match(re.sub(r"\s", "", line))]
    if len(starts) != n:
        raise FieldError(
            "product_number",
            f"'Authorisations ({n})' lists {len(starts)} product number(s)",
        )
    if not starts:
        raise FieldError("product_number", "required product number is missing")
    block = lines[starts[0] : starts[1] if len(starts) > 1 else len(lines)]
    number = common.product_number(block[0], "product_number")
    holder_name = address = status = date = None
    for line in block[1:]:
        if status is None and _is_status(line):
            status = common.status(line, "status")
        elif date is None and common.is_date_shaped(line):
            date = common.parse_date(line, "authorisation_date")
        elif holder_name is None:
            holder_name, address = _holder_line(line)
        elif status is None:
            status = common.status(line, "status")  # an unknown word: rejected, naming status
        else:
            raise FieldError("authorisations", f"unexpected line {line!r} in the authorisation")
    return _Authorisation(number, holder_name, address, status, date)


def _holder_line(line: str) -> tuple[str, Address | None]:
    """"Takeda Pharma A/S,Delta Park 45,2665 Vallensbaek Strand,Denmark" → name, address.

    MedPath joins the parts with a bare comma, while company names keep
    theirs followed by a space ("Almirall, S.A."), so only bare commas split;
    a line without any is split at every comma.
    """
    parts = [p.strip() for p in re.split(r",(?!\s)", line)]
    if len(parts) == 1:
        parts = [p.strip() for p in line.split(",")]
    return parts[0], common.address(parts[1:])


def _is_status(line: str) -> bool:
    try:
        return common.status(line, "status") is not None
    except FieldError:
        return False


def _substances(page: _Page) -> tuple[str, ...] | None:
    found = _section(page, "active substances")
    if found is None:
        return None
    n, lines = found
    names: list[str] = []
    for line in lines:
        names.extend(common.split_substances(line))
    if len(lines) != n:
        raise FieldError("active_substances", f"'Active Substances ({n})' lists {len(lines)}")
    return common.unique(names)


def _documents(page: _Page) -> tuple[DocumentListing, ...]:
    """Title, date, section code triples; the heading's count must match."""
    found = _section(page, "documents")
    if found is None:
        return ()
    n, lines = found
    docs: list[DocumentListing] = []
    i = 0
    while i < len(lines):
        title = lines[i]
        where = f"document {len(docs) + 1} ({title!r})"
        if i + 1 >= len(lines) or not common.is_date_shaped(lines[i + 1]):
            raise FieldError("documents", f"{where} has no date")
        try:
            date = common.parse_date(lines[i + 1], "documents")
        except FieldError as err:
            raise FieldError("documents", f"{where}: {err.message}") from None
        section = None
        i += 2
        if i < len(lines) and _SECTION_CODE.match(lines[i]):
            section = lines[i]
            i += 1
        docs.append(DocumentListing(title=title, date=date, section=section))
    if len(docs) != n:
        raise FieldError("documents", f"'Documents ({n})' lists {len(docs)} document(s)")
    return tuple(docs)


def _questions(page: _Page) -> tuple[QuestionAnswer, ...]:
    """"Question", the question, "Answer", paragraphs… — answers joined by blank lines."""
    found = next((v for k, v in page.counted.items() if k.endswith("q&a")), None)
    if found is None:
        return ()
    n, lines = found
    pairs: list[QuestionAnswer] = []
    i = 0
    while i < len(lines):
        if lines[i] != "Question" or i + 2 >= len(lines) or lines[i + 2] != "Answer":
            raise FieldError("questions", f"question {len(pairs) + 1}: expected 'Question' and "
                             f"'Answer' labels, found {lines[i]!r}")
        question = lines[i + 1]
        j = i + 3
        while j < len(lines) and lines[j] != "Question":
            j += 1
        answer = "\n\n".join(lines[i + 3 : j])
        if not answer:
            raise FieldError("questions", f"question {len(pairs) + 1} ({question!r}) has no answer")
        pairs.append(QuestionAnswer(question, answer))
        i = j
    if len(pairs) != n:
        raise FieldError("questions", f"'Overview Q&A ({n})' lists {len(pairs)} question(s)")
    return tuple(pairs)


# --- facts stated in prose --------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _sentences(paragraphs: list[str]) -> list[str]:
    return [s for p in paragraphs for s in _SENTENCE.split(p)]


def _date_in_sentence(sentences: list[str], must: tuple[str, ...], field_name: str) -> dt.date | None:
    """The first date in the first sentence that mentions every word in ``must``."""
    for sentence in sentences:
        lower = sentence.lower()
        if all(word in lower for word in must):
            dates = common.dates_in_text(sentence, field_name)
            if dates:
                return dates[0]
    return None


def _withdrawal_date(overview: list[str]) -> dt.date | None:
    """"On 13 December 2024, the European Commission withdrew the marketing authorisation…"."""
    return _date_in_sentence(
        _sentences(overview), ("withdr", "marketing authorisation"), "withdrawal_date"
    )


def _orphan_designation_date(texts: list[str]) -> dt.date | None:
    """"…was designated an ‘orphan medicine’ … on 8 October 2009"."""
    return _date_in_sentence(_sentences(texts), ("designated", "orphan"), "orphan_designation_date")


# --- header block -----------------------------------------------------------------------------


def _header(
    page: _Page, substances: tuple[str, ...] | None
) -> tuple[str, tuple[str, ...], dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """Name, ATC codes, group labels by language, substances and therapeutic areas.

    The header lists, in this order: name, ATC codes, the pharmacotherapeutic
    group (a Chinese line, then the English one), substances, therapeutic
    areas. When the page has an "Active Substances (n)" section, the
    substance lines are known, which tells where the group ends and the
    areas begin; without it the English group line is only recognised after
    a Chinese one, and one substance line is assumed.
    """
    if not page.header:
        raise FieldError("name", f"required name is missing (no line after {MARKER!r})")
    name = common.required(page.header[0], "name")
    if common.ATC_RE.match(name) or common.has_cjk(name):
        raise FieldError("name", f"required name is missing (line after {MARKER!r} is {name!r})")
    rest = page.header[1:]
    atc: list[str] = []
    while rest and common.ATC_RE.match(rest[0]):
        atc.append(rest.pop(0))
    for line in page.plain:  # "ATC CodeL04" in the identifiers block
        if m := re.fullmatch(r"ATC Code\s*(\S.*)", line):
            atc.extend(common.split_atc(m[1], "atc_codes")[0])
    known = set(substances or ())

    def is_substance(line: str) -> bool:
        parts = set(common.split_substances(line))
        return bool(parts) and parts <= known

    group: dict[str, str] = {}
    if rest and common.has_cjk(rest[0]):
        group["zh"] = rest.pop(0)
    if rest and not is_substance(rest[0]) and ("zh" in group or substances is not None):
        group["en"] = rest.pop(0)
    header_substances: list[str] = []
    # a therapeutic area may be spelled like a substance: stop once all substances are seen
    while rest and (
        (is_substance(rest[0]) and not known <= set(header_substances))
        or (substances is None and not header_substances)
    ):
        header_substances.extend(common.split_substances(rest.pop(0)))
    found = substances if substances is not None else common.unique(header_substances)
    return name, common.unique(atc), group, found, tuple(rest)


def build_record(text: str, source: str) -> ProductRecord:
    """The whole page → one record; raises :class:`FieldError` naming the field at fault."""
    lines = _lines(text)
    if MARKER not in lines:
        raise FieldError("name", f"no {MARKER!r} line, so no product name")
    page = _split(lines)
    substances = _substances(page)
    name, atc, group, all_substances, areas = _header(page, substances)
    auth = _authorisation(page)
    questions = _questions(page)
    orphan_date = _orphan_designation_date(page.overview + [qa.answer for qa in questions])
    return ProductRecord(
        source=source,
        record=RECORD,
        name=name,
        product_number=auth.product_number,
        status=auth.status,
        active_substances=all_substances,
        common_name=None,
        atc_codes=atc,
        holder=auth.holder,
        holder_address=auth.address,
        authorisation_date=auth.date,
        withdrawal_date=_withdrawal_date(page.overview),
        therapeutic_areas=areas,
        pharmacotherapeutic_group=group,
        orphan_designation_date=orphan_date,
        is_orphan=True if orphan_date else None,
        overview="\n\n".join(page.overview) or None,
        documents=_documents(page),
        questions=questions,
    )


def read_medpath_text(text: str, file: str, source: str) -> Outcome:
    out = Outcome()
    out.add(file, RECORD, lambda: build_record(text, source))
    return out


def read_medpath(path: Path) -> Outcome:
    return common.read_text_file(path, read_medpath_text, "the page as UTF-8 text")
