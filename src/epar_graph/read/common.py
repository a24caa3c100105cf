"""Checks and clean-ups every reader shares.

The sources spell the same facts in different ways (``dd/mm/yyyy`` or ISO or
"March 23, 2018"; "yes"/"Yes"/``True``; holder names with trailing
non-breaking spaces and address lines). Normalising them here means that two
sources stating the same fact produce equal values, so merging by product
number works, and that a bad value is reported the same way whichever reader
met it.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pycountry

from epar_graph.config import DATA_DIR
from epar_graph.model import PRODUCT_NUMBER_RE, STATUSES, Address, ProductRecord, ReadWarning, Rejection


class FieldError(ValueError):
    """A value that stops a record from being accepted; names the field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


#: Metadata key of the date a file's data was exported (ISO ``yyyy-mm-dd``).
EXPORT_DATE = "export_date"


@dataclass
class Outcome:
    """What a reader found in one file, before it is wrapped in a ``ReadResult``."""

    records: list[ProductRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: Problems in accepted records (the value kept verbatim or left out); counted in neither list.
    warnings: list[ReadWarning] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def reject(self, file: str, record: str, field_name: str, message: str) -> None:
        self.rejections.append(Rejection(file, record, field_name, message))

    def warn(self, file: str, record: str, field_name: str, message: str) -> None:
        self.warnings.append(ReadWarning(file, record, field_name, message))

    def file_error(self, file: str, message: str, field_name: str = "-") -> None:
        """A fault in the file as a whole (no record to blame): one rejection for record "-"."""
        self.reject(file, "-", field_name, message)

    def add(
        self,
        file: str,
        record: str,
        build: Callable[[], ProductRecord],
        warnings: Iterable[tuple[str, str]] = (),
    ) -> bool:
        """Run one record's builder; a :class:`FieldError` becomes a rejection, not an exception.

        ``warnings`` (field, message) are kept only when the record is accepted:
        a rejected record is reported once, for the reason it was rejected.
        """
        try:
            self.records.append(build())
        except FieldError as err:
            self.reject(file, record, err.field, err.message)
            return False
        self.warnings.extend(ReadWarning(file, record, f, m) for f, m in warnings)
        return True


def source_name(path: Path) -> str:
    """The provenance stored on records: the file name, not the machine-specific path."""
    return path.name


#: Byte-order marks → the encoding they announce (spreadsheet programs save "Unicode text" as UTF-16).
BOMS = ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8-sig"))


def text_encoding(head: bytes) -> str:
    """The encoding of a text file from its first bytes: a BOM, UTF-16 without one, else UTF-8."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    sample = head[:512]
    if len(sample) >= 4 and sample.count(0) * 3 >= len(sample):  # every other byte NUL: ASCII as UTF-16
        return "utf-16-le" if sample[1] == 0 else "utf-16-be"
    return "utf-8"


def read_text_file(path: Path, parse: Callable[[str, str, str], Outcome], what: str) -> Outcome:
    """Decode a UTF-8 (or UTF-16, by its BOM) file and hand its text to ``parse(text, file, source)``.

    A file that cannot be read or decoded becomes one file-level rejection
    saying it could not be read as ``what``.
    """
    file = str(path)
    try:
        data = path.read_bytes()
        text = data.decode(text_encoding(data[:512]))
    except (OSError, UnicodeDecodeError) as err:
        out = Outcome()
        out.file_error(file, f"cannot read {what}: {err}")
        return out
    return parse(text, file, source_name(path))


_SPACE = re.compile(r"\s+")
#: An HTML tag as EMA's web exports leave them in text ("<p>", "</sup>", "<br />").
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")


def plain_text(text: str) -> str:
    """Text as a person reads it: HTML tags stripped, then entities decoded.

    EMA's current reports carry web-page text ("&lt;30 kg/m2", "&nbsp;"). Tags
    go first so that a decoded "<30" is never mistaken for a tag.
    """
    if "<" in text:
        text = _TAG.sub(" ", text)
    return html.unescape(text) if "&" in text else text


def clean(value: object) -> str:
    """A cell or JSON value as tidy plain text: no tags, entities or NBSPs, single spaces, stripped.

    Whole floats print as integers ("4.0" → "4") because spreadsheets store
    every number as a float. ``None`` → "".

    Most cells are tidy already and a large report has millions of them, so
    those are recognised first (no markup, no entity, no whitespace but single
    spaces) and returned as they are.
    """
    if type(value) is str and "<" not in value and "&" not in value and " ".join(value.split()) == value:
        return value
    return _clean(value)


def _clean(value: object) -> str:
    """:func:`clean`, every step taken."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACE.sub(" ", plain_text(str(value)).replace("\u00a0", " ")).strip()


def clean_block(value: object) -> str:
    """Like :func:`clean` but keeps line breaks (as single "\\n") for multi-line prose."""
    if value is None:
        return ""
    lines = (clean(line) for line in plain_text(str(value)).replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def required(value: object, field_name: str) -> str:
    text = clean(value)
    if not text:
        raise FieldError(field_name, "required value is missing")
    return text


def product_number(value: object, field_name: str) -> str:
    """A product number ``EMEA/H/C/dddddd``, whitespace removed (exports pad it with spaces)."""
    text = _SPACE.sub("", clean(value))
    if not text:
        raise FieldError(field_name, "required product number is missing")
    if not PRODUCT_NUMBER_RE.match(text):
        raise FieldError(field_name, f"{clean(value)!r} is not a product number EMEA/H/C/dddddd")
    return text


#: A product number whose slashes were lost or doubled: "EMEA/H/C005201".
_LOOSE_NUMBER = re.compile(r"^EMEA/*([HV])/*C/*(\d{6})$", re.IGNORECASE)


def normalised_product_number(value: object, field_name: str) -> tuple[str, str | None]:
    """A product number, and the published form when it had to be mended (else ``None``).

    EMA's report of 2026 prints one number as ``EMEA/H/C005201``: the lost
    slash is put back so the product joins its other records, and the caller
    keeps the published form and reports it.
    """
    text = _SPACE.sub("", clean(value))
    if PRODUCT_NUMBER_RE.match(text):
        return text, None
    if m := _LOOSE_NUMBER.match(text):
        return f"EMEA/{m[1].upper()}/C/{m[2]}", clean(value)
    return product_number(value, field_name), None


def status_label(value: object) -> tuple[str | None, str | None]:
    """A status in EMA's spelling, and a warning when it is not one EMA is known to use.

    An unknown status is kept (as its own concept): a status EMA adds later
    must not lose the record.
    """
    text = clean(value)
    if not text:
        return None, None
    for known in STATUSES:
        if known.lower() == text.lower():
            return known, None
    return text, f"status {text!r} is not one EMA is known to use; kept as a new status concept"


def status(value: object, field_name: str) -> str | None:
    """One of :data:`model.STATUSES` in EMA's spelling; an unknown word is an error."""
    text = clean(value)
    if not text:
        return None
    for known in STATUSES:
        if known.lower() == text.lower():
            return known
    raise FieldError(field_name, f"unknown status {text!r} (expected one of {', '.join(STATUSES)})")


# --- dates --------------------------------------------------------------------------------

_MONTHS = {
    name.lower(): i
    for i, name in enumerate(
        ["January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"],
        start=1,
    )
}
_MONTH_NAMES = "|".join(_MONTHS)
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?")
_MONTH_DAY_YEAR = re.compile(rf"({_MONTH_NAMES})\s+(\d{{1,2}}),?\s+(\d{{4}})", re.IGNORECASE)
_DAY_MONTH_YEAR = re.compile(rf"(\d{{1,2}})\s+({_MONTH_NAMES})\s+(\d{{4}})", re.IGNORECASE)
#: A date inside prose, in either of the spellings EMA and MedPath use.
DATE_IN_TEXT = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTH_NAMES})\s+\d{{4}}|(?:{_MONTH_NAMES})\s+\d{{1,2}},?\s+\d{{4}})\b",
    re.IGNORECASE,
)
#: Values the exports put where a date is not applicable.
_NO_DATE = {"", "-", "n/a", "na"}


def _make_date(year: str, month: int | str, day: str, raw: str, field_name: str) -> dt.date:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        raise FieldError(field_name, f"impossible date {raw!r}") from None


def parse_date(value: object, field_name: str) -> dt.date | None:
    """A date from a cell or text, strictly: a malformed or impossible date is an error.

    Accepts ``date``/``datetime`` objects (spreadsheet cells), ``dd/mm/yyyy``,
    ISO ``yyyy-mm-dd`` (optionally with a time), "March 23, 2018" and
    "23 March 2018". Empty and "-" mean "no date".
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = clean(value)
    if text.lower() in _NO_DATE:
        return None
    if m := _DMY.fullmatch(text):
        return _make_date(m[3], m[2], m[1], text, field_name)
    if m := _ISO.fullmatch(text):
        return _make_date(m[1], m[2], m[3], text, field_name)
    if m := _MONTH_DAY_YEAR.fullmatch(text):
        return _make_date(m[3], _MONTHS[m[1].lower()], m[2], text, field_name)
    if m := _DAY_MONTH_YEAR.fullmatch(text):
        return _make_date(m[3], _MONTHS[m[2].lower()], m[1], text, field_name)
    raise FieldError(field_name, f"{text!r} is not a date")


def is_date_shaped(text: str) -> bool:
    """Written like a date, even an impossible one ("February 30, 2018"), so it gets checked."""
    return bool(
        _DMY.fullmatch(text)
        or _ISO.fullmatch(text)
        or _MONTH_DAY_YEAR.fullmatch(text)
        or _DAY_MONTH_YEAR.fullmatch(text)
    )


def dates_in_text(text: str, field_name: str) -> list[dt.date]:
    """Every date written out in a piece of prose, in order of appearance."""
    return [d for m in DATE_IN_TEXT.finditer(text) if (d := parse_date(m[0], field_name))]


# --- flags and numbers --------------------------------------------------------------------

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def parse_bool(value: object, field_name: str) -> bool | None:
    """"yes"/"no" in any case (or a real bool) → bool; empty → unknown (``None``)."""
    if isinstance(value, bool):
        return value
    text = clean(value).lower()
    if not text or text == "-":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(field_name, f"{clean(value)!r} is not yes/no")


def parse_int(value: object, field_name: str) -> int | None:
    """A whole number; spreadsheets give "4.0", JSON gives "4" or 4."""
    if isinstance(value, bool):
        raise FieldError(field_name, f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise FieldError(field_name, f"{value!r} is not a whole number")
    text = clean(value)
    if not text or text == "-":
        return None
    if m := re.fullmatch(r"(\d+)(?:\.0+)?", text):
        return int(m[1])
    raise FieldError(field_name, f"{text!r} is not a whole number")


# --- lists inside one cell ----------------------------------------------------------------

#: A slash with whitespace on at least one side separates substances; a bare slash
#: (``A/VietNam/1194/2004``) is part of a strain name.
_SUBSTANCE_SEP = re.compile(r"\s+/\s*|\s*/\s+")


def split_substances(text: object) -> tuple[str, ...]:
    """"a / b / c" → three substances; strain names with bare slashes stay whole."""
    parts = (clean(p).strip(",").strip() for p in _SUBSTANCE_SEP.split(clean(text)))
    return tuple(dict.fromkeys(p for p in parts if p))


def split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets: "a (b, c), d" → ["a (b, c)", "d"]."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(separator)
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += n
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


#: Words that continue a substance name after a comma ("Mycoplasma synoviae, strain
#: K588A, Live", "human rotavirus, live attenuated"): not the start of another substance.
_QUALIFIER = re.compile(
    r"^(?:live|inactivated|attenuated|recombinant|strains?|serotypes?|subtypes?|serovar|serogroups?|subsp\.?"
    r"|types?|expressing|encoding|containing|produced|replaced|adsorbed|conjugated|split|whole|purified"
    r"|fragmented|surface antigens?|haemagglutinin|modified|cell[- ]free)\b",
    re.IGNORECASE,
)


def split_listed_substances(text: object, semicolons: bool) -> tuple[str, ...]:
    """Substances of an export cell: ";"-joined in current reports, ", "-joined in older ones.

    Separators inside brackets never split ("(live, attenuated)"); in a
    ", "-joined cell a part that continues a name (a strain, a qualifier
    such as "live") stays with the substance before it. " / " separates
    substances in every layout, as in the 2017 export.
    """
    raw = clean(text)
    if not raw:
        return ()
    pieces: list[str] = []
    for chunk in split_top_level(raw, ";"):
        if semicolons or ";" in raw:
            pieces.append(chunk)
            continue
        for part in split_top_level(chunk, ", "):
            part = part.strip()
            if pieces and part and _QUALIFIER.match(part):
                pieces[-1] = f"{pieces[-1]}, {part}"
            else:
                pieces.append(part)
    out: list[str] = []
    for piece in pieces:
        out.extend(split_substances(piece))
    return unique(p.strip(" ,") for p in out)


def split_values(text: object, semicolons: bool) -> tuple[str, ...]:
    """Plain values of a list cell (target species): ";"-joined, or ", "-joined in the 2018 layout."""
    raw = clean(text)
    if not raw:
        return ()
    sep = ";" if semicolons or ";" in raw else ","
    return unique(clean(p) for p in split_top_level(raw, sep))


#: The MeSH heading table shipped with the link tables: its headings decide how an
#: old report's ", "-joined therapeutic areas split.
HEADING_TABLE = DATA_DIR / "links" / "mesh-therapeutic-areas.csv"


@functools.lru_cache(maxsize=4)
def known_headings(path: Path = HEADING_TABLE) -> frozenset[str]:
    """The therapeutic-area headings known to be real headings, lower case (empty if no table)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return frozenset(clean(row.get("heading")).lower() for row in csv.DictReader(f) if row.get("heading"))
    except OSError:
        return frozenset()


def split_headings(text: object, headings: frozenset[str], semicolons: bool) -> tuple[str, ...]:
    """MeSH headings of a therapeutic-area cell, each a real heading.

    Current reports join headings with ";" and keep the heading's own commas
    ("Arthritis, Psoriatic;Psoriasis"). Older ones use the same character for
    both: ", " in 2018 ("Spondylitis, Ankylosing, Colitis, Ulcerative") and
    ";" in 2023 ("Arthritis; Rheumatoid"). There the pieces are joined back
    into the longest run that is a known heading (``headings``, lower case);
    a piece that starts no known heading stays a value on its own.
    """
    raw = clean(text)
    if not raw:
        return ()
    if semicolons:
        return unique(clean(p) for p in raw.split(";"))
    tokens = [t for t in (clean(p) for p in re.split(r"[;,]", raw)) if t]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for j in range(len(tokens), i, -1):
            candidate = ", ".join(tokens[i:j])
            if j == i + 1 or candidate.lower() in headings:
                out.append(candidate)
                i = j
                break
    return unique(out)


def pharmacotherapeutic_groups(text: object, semicolons: bool) -> tuple[str, ...]:
    """The pharmacotherapeutic groups a report lists for one product.

    Current reports join them with ";" ("Antineoplastic agents;Protein kinase
    inhibitors"). The order is no hierarchy: the same groups come in other
    orders ("Immunologicals for aves;Live viral vaccines;Domestic fowl"), and
    "Other systemic hemostatics;Antihemorrhagics" lists the narrower first, so
    each is a group of its own. Older reports join with ", " and leave empty
    levels and a trailing comma ("Antineoplastic agents, , protein kinase
    inhibitor, "), where a group's own commas cannot be told from the joins:
    that text is kept as one group.
    """
    raw = clean(text)
    if not raw:
        return ()
    if semicolons or ";" in raw:
        return unique(clean(p) for p in raw.split(";"))
    return (", ".join(p for p in (clean(x) for x in raw.split(",")) if p),)


_AREA_SEP = re.compile(r"\s*;\s*|\s*\n\s*|\s{2,}")


def split_areas(text: object) -> tuple[str, ...]:
    """MeSH headings: separated by two spaces (2017 table), ";" or new lines (current exports).

    A single space or a comma is part of a heading ("Carcinoma, Non-Small-Cell Lung").
    """
    raw = "" if text is None else str(text).replace("\u00a0", " ")
    parts = (clean(p) for p in _AREA_SEP.split(raw))
    return tuple(dict.fromkeys(p for p in parts if p))


#: ATC codes at any level: L, L04, L04A, L04AX, L04AX08.
ATC_RE = re.compile(r"^[A-Z](\d\d([A-Z]([A-Z](\d\d)?)?)?)?$")


#: ATCvet codes: the ATC code prefixed with Q (QJ, QJ01, QJ01C, QJ01CA, QJ01CA04).
ATCVET_RE = re.compile(r"^Q[A-Z](\d\d([A-Z]([A-Z](\d\d)?)?)?)?$")
#: What the exports write where a code has not been given.
_NO_CODE = {"", "-", "n/a", "na", "not yet assigned", "not assigned", "none"}


def split_codes(text: object) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(ATC codes, ATCvet codes, malformed values kept verbatim) from one cell.

    Codes are separated by ";", "," or new lines; spaces inside a code are
    dropped ("C10 AX10"). A value that is neither kind of code is returned as
    printed, so the caller can keep it rather than lose it.
    """
    atc: list[str] = []
    vet: list[str] = []
    bad: list[str] = []
    for part in re.split(r"[,;\n]", "" if text is None else plain_text(str(text))):
        printed = clean(part)
        if printed.lower() in _NO_CODE:
            continue
        code = _SPACE.sub("", printed).upper()
        if ATC_RE.match(code):
            atc.append(code)
        elif ATCVET_RE.match(code):
            vet.append(code)
        else:
            bad.append(printed)
    return unique(atc), unique(vet), unique(bad)


def split_atc(text: object, field_name: str) -> tuple[tuple[str, ...], list[str]]:
    """ATC codes (comma/semicolon/newline separated, inner spaces dropped: "C10 AX10").

    Returns the valid codes and a list of messages about values that are not
    ATC codes, which the caller reports without rejecting the whole record.
    """
    codes: list[str] = []
    problems: list[str] = []
    for part in re.split(r"[,;\n]", "" if text is None else str(text)):
        code = _SPACE.sub("", part.replace("\u00a0", "")).upper()
        if not code:
            continue
        if ATC_RE.match(code):
            codes.append(code)
        else:
            problems.append(f"{clean(part)!r} is not an ATC code; left out")
    return tuple(dict.fromkeys(codes)), problems


# --- organisations ------------------------------------------------------------------------

_UK_POSTCODE = re.compile(r"^(?P<locality>.*?)\s+(?P<postal>[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$")
_LEADING_POSTCODE = re.compile(
    r"^(?P<postal>(?:[A-Z]{1,3}-)?\d[\d\s-]*\d|\d+)\s+(?P<locality>\D.*)$"
)


def country(name: str) -> tuple[str | None, str | None]:
    """(ISO 3166 alpha-3 code, name as printed) for a country name or code pycountry knows."""
    text = clean(name)
    for candidate in (text, re.sub(r"^the\s+", "", text, flags=re.IGNORECASE)):
        try:
            found = pycountry.countries.lookup(candidate)
        except LookupError:
            continue
        return str(found.alpha_3), text
    return None, text or None


def address(parts: Sequence[str]) -> Address | None:
    """An address from its printed parts: street lines…, "postal-code locality", country.

    The country is the last part when pycountry recognises it. The part
    holding the postal code is the last one that starts with digits ("2665
    Vallensbaek Strand", "111 20 Stockholm") or ends with a UK postcode
    ("Chertsey KT16 0RS"); everything before it is the street.
    """
    items = [clean(p) for p in parts if clean(p)]
    if not items:
        return None
    code, country_name = country(items[-1])
    if code:
        items = items[:-1]
    else:
        country_name = None
    postal = locality = None
    for i in range(len(items) - 1, -1, -1):
        m = _LEADING_POSTCODE.match(items[i]) or _UK_POSTCODE.match(items[i])
        if m and (i > 0 or len(items) == 1):
            postal = _SPACE.sub(" ", m["postal"]).strip()
            locality = m["locality"].strip() or None
            items = items[:i] + items[i + 1 :]
            break
    if not postal and len(items) > 1:
        locality = items.pop()
    street = ", ".join(items) or None
    if not any((street, postal, locality, code)):
        return None
    return Address(street, postal, locality, code, country_name)


def holder(value: object) -> tuple[str | None, Address | None]:
    """Holder name and address from an export cell.

    The 2017 export mostly holds just the name (with trailing NBSPs), but a
    few cells carry the whole address on the following lines.
    """
    lines = clean_block(value).split("\n")
    lines = [line for line in lines if line]
    if not lines:
        return None, None
    rest: list[str] = []
    for line in lines[1:]:
        rest.extend(p for p in (clean(x) for x in line.split(",")) if p)
    return lines[0], address(rest) if rest else None


# --- text detection -----------------------------------------------------------------------


_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def has_cjk(text: str) -> bool:
    """True when the text holds CJK ideographs (the Chinese label of a MedPath page)."""
    return bool(_CJK.search(text))


def unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))
