"""Typed records: what the readers produce and what the graph stage consumes.

Readers turn each input record into either a :class:`ProductRecord` (one
source's view of one medicine) or a :class:`Rejection` that names file, record
and field. :func:`merge_records` then folds the records about the same product
number, from every source, into one :class:`Product`.

EU orphan designations are entities of their own (:class:`OrphanDesignation`);
:func:`place_designations` finds the medicine each designated product became.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from epar_graph.iris import normalise_name, normalise_organisation

#: EMA product numbers: ``EMEA/H/C/…`` for human, ``EMEA/V/C/…`` for veterinary medicines.
PRODUCT_NUMBER_RE = re.compile(r"^EMEA/[HV]/C/\d{6}$")
PROCEDURE_NUMBER_RE = re.compile(r"^EMEA/[HV]/C/\d{6}/[A-Z0-9]+(/[A-Z0-9]+)*$")

#: Statuses EMA uses, as they are spelled in its exports (2017 to 2026). A status
#: not listed here still loses no record: it becomes a concept minted from its
#: label, with a warning (and SHACL reports it at warning severity).
STATUSES = (
    "Authorised",
    "Withdrawn",
    "Refused",
    "Suspended",
    "Lapsed",
    "Expired",
    "Revoked",
    "Opinion",
    "Opinion under re-examination",
    "Application withdrawn",
    "Withdrawn from rolling review",
    "Not authorised",
    "Withdrawn application",
)

#: Categories of medicine EMA evaluates (the "Category" column).
CATEGORIES = ("Human", "Veterinary")


@dataclass(frozen=True)
class RecordNote:
    """Something said about one input record, naming its file, record and field."""

    file: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: record {self.record}: field {self.field!r}: {self.message}"


@dataclass(frozen=True)
class Rejection(RecordNote):
    """An input record that could not become part of the graph, and why."""


@dataclass(frozen=True)
class ReadWarning(RecordNote):
    """A problem in an accepted record: the record is kept, the value kept verbatim or left out."""


@dataclass(frozen=True)
class Address:
    """A postal address as printed by the source (country as ISO 3166 alpha-3)."""

    street: str | None = None
    postal_code: str | None = None
    locality: str | None = None
    country_code: str | None = None
    country_name: str | None = None


@dataclass(frozen=True)
class DocumentListing:
    """One line of a product's document list: a title, a date and a section."""

    title: str
    date: dt.date | None
    section: str | None
    url: str | None = None


@dataclass(frozen=True)
class QuestionAnswer:
    question: str
    answer: str


@dataclass(kw_only=True)
class MedicineFacts:
    """The facts a source may state about a medicine, all optional.

    Shared by :class:`ProductRecord` (one source's view) and :class:`Product`
    (the merge), so a new fact is declared once and merged automatically.
    """

    category: str | None = None
    status: str | None = None
    opinion_status: str | None = None
    #: e.g. "II/0044/G" as printed; the graph mints the full procedure number from it
    latest_procedure: str | None = None
    product_number_as_published: str | None = None
    active_substances: tuple[str, ...] = ()
    common_name: str | None = None
    atc_codes: tuple[str, ...] = ()
    #: ATC codes that are not well formed, kept verbatim (never dropped)
    atc_codes_as_published: tuple[str, ...] = ()
    atcvet_codes: tuple[str, ...] = ()
    target_species: tuple[str, ...] = ()
    holder: str | None = None
    holder_address: Address | None = None
    authorisation_date: dt.date | None = None
    withdrawal_date: dt.date | None = None
    refusal_date: dt.date | None = None
    decision_date: dt.date | None = None
    rolling_review_start_date: dt.date | None = None
    evaluation_start_date: dt.date | None = None
    opinion_date: dt.date | None = None
    application_withdrawal_date: dt.date | None = None
    suspension_date: dt.date | None = None
    first_published: dt.date | None = None
    therapeutic_areas: tuple[str, ...] = ()
    #: language tag → label, e.g. {"en": "Immunosuppressants", "zh": "免疫抑制剂"}
    pharmacotherapeutic_group: dict[str, str] = field(default_factory=dict)
    #: further groups the report lists ("Immunologicals for aves;Domestic fowl;..."):
    #: their order is not a hierarchy (the same groups come in other orders)
    other_pharmacotherapeutic_groups: tuple[str, ...] = ()
    orphan_designation_date: dt.date | None = None
    is_orphan: bool | None = None
    is_generic: bool | None = None
    is_biosimilar: bool | None = None
    conditional_approval: bool | None = None
    exceptional_circumstances: bool | None = None
    is_advanced_therapy: bool | None = None
    is_prime: bool | None = None
    accelerated_assessment: bool | None = None
    additional_monitoring: bool | None = None
    patient_safety: bool | None = None
    indication: str | None = None
    revision_number: int | None = None
    last_updated: dt.date | None = None
    ema_url: str | None = None
    overview: str | None = None
    documents: tuple[DocumentListing, ...] = ()
    questions: tuple[QuestionAnswer, ...] = ()


@dataclass
class ProductRecord(MedicineFacts):
    """One source's statement about one medicine.

    ``source`` and ``record`` say where it came from (file name and row number
    or page); every other field is optional except ``name`` and
    ``product_number``, which the readers check before creating one.
    """

    source: str
    record: str
    name: str
    product_number: str


@dataclass
class Product(MedicineFacts):
    """Everything known about one medicine after merging all its records."""

    product_number: str
    name: str
    sources: list[str] = field(default_factory=list)


_MERGED_FIELDS = [f.name for f in fields(MedicineFacts)]
#: Lists that are gathered from every source rather than taken from the best one.
_GATHERED = frozenset({"documents", "questions"})


@dataclass(frozen=True)
class SourceRecords:
    """The records of one input file, with what the merge needs to rank the file.

    ``snapshot`` is the date of an EMA export (a dated copy of EMA's whole
    list); ``None`` marks a source that only adds facts (a table, a page).
    """

    name: str
    records: Sequence[ProductRecord]
    snapshot: dt.date | None = None
    is_snapshot: bool = False


def source_rank(source: SourceRecords) -> tuple[int, int, str]:
    """Newest snapshot first, then undated snapshots, then other sources; by name within a rank.

    The rank depends only on what the files say, never on the order they were
    given in, so the same inputs in any order give the same graph.
    """
    if source.is_snapshot:
        return (0 if source.snapshot else 1, -(source.snapshot.toordinal() if source.snapshot else 0), source.name)
    return (2, 0, source.name)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return tuple(seen)


def _fold(prod: Product, rec: ProductRecord, unite: bool) -> None:
    """Add one record's facts to a product: empty facts are filled, set facts kept.

    With ``unite`` the lists of both are joined; otherwise a list is taken
    whole from the first record that has one, so an old source's therapeutic
    areas are not mixed into a newer source's.
    """
    prod.sources.append(f"{rec.source}#{rec.record}")
    for name in _MERGED_FIELDS:
        new = getattr(rec, name)
        if new is None:  # most facts of most records: nothing to add
            continue
        old = getattr(prod, name)
        if isinstance(new, tuple):
            if name in _GATHERED:
                setattr(prod, name, tuple(dict.fromkeys(old + new)))
            elif unite:
                setattr(prod, name, _unique(old + new))
            elif not old:
                setattr(prod, name, new)
        elif isinstance(new, dict):
            merged = dict(new)
            merged.update(old)
            setattr(prod, name, merged)
        elif old is None:
            setattr(prod, name, new)


def merge_records(records: Iterable[ProductRecord]) -> list[Product]:
    """Fold records into one product per product number, sorted by number.

    A scalar field keeps the first non-empty value in input order (so the
    order of records is their priority); tuples are united in order; language
    maps are united with the first label per language winning.
    """
    products: dict[str, Product] = {}
    for rec in records:
        prod = products.get(rec.product_number)
        if prod is None:
            prod = products[rec.product_number] = Product(rec.product_number, rec.name)
        _fold(prod, rec, unite=True)
    return [products[k] for k in sorted(products)]


def _keep_holder_address(prod: Product, older: ProductRecord) -> None:
    """An older export's address of the same holder: EMA's reports since 2018 print none."""
    if (
        prod.holder_address is None
        and older.holder_address is not None
        and prod.holder
        and older.holder
        and normalise_organisation(prod.holder) == normalise_organisation(older.holder)
    ):
        prod.holder_address = older.holder_address


def merge_sources(sources: Iterable[SourceRecords]) -> list[Product]:
    """One product per product number from many files: the newest export that lists it wins.

    A product's facts come from the newest EMA export that lists it (older
    exports' records of it are history, not current facts); sources that are
    not exports (the EPAR table, MedPath pages) then fill facts still missing.
    A product that only an old export lists keeps that export's facts. The one
    fact taken from an older export is the holder's address (the 2017 export
    prints it, later ones do not) when the holder is still the same.
    """
    products: dict[str, Product] = {}
    current: dict[str, str] = {}  # product number -> the snapshot that gives its facts
    for source in sorted(sources, key=source_rank):
        for rec in source.records:
            number = rec.product_number
            if source.is_snapshot and current.setdefault(number, source.name) != source.name:
                _keep_holder_address(products[number], rec)
                continue
            prod = products.get(number)
            if prod is None:
                prod = products[number] = Product(number, rec.name)
            _fold(prod, rec, unite=False)
    return [products[k] for k in sorted(products)]


# -- orphan designations ----------------------------------------------------------------------


@dataclass(frozen=True)
class TradeName:
    """The name a designated product was authorised under, its EU register number and the day it was."""

    name: str
    eu_number: str
    implemented_on: dt.date


@dataclass(frozen=True)
class OrphanDesignation:
    """One EU orphan designation: a sponsor's product designated for a rare condition.

    ``medicine`` is the product number of the medicine the designated product
    became, once :func:`place_designations` has found exactly one.
    """

    number: str
    product: str
    indication: str
    condition: str
    sponsor: str | None = None
    date: dt.date | None = None
    trade: TradeName | None = None
    medicine: str | None = None


#: Statuses of applications that never got an EU register number (EU/1/…).
NEVER_AUTHORISED = frozenset({"Refused", "Withdrawn application", "Not authorised"})

_PREVIOUSLY = re.compile(r"\s*\((?:previously|formerly)\s+(?P<old>[^)]*)\)\s*$", re.IGNORECASE)


def product_name_keys(name: str) -> list[str]:
    """The names a product may be called by: "Abasaglar (previously Abasria)" → abasaglar…, abasria."""
    keys = [normalise_name(name)]
    if m := _PREVIOUSLY.search(name):
        keys.append(normalise_name(name[: m.start()]))
        keys.extend(normalise_name(old) for old in re.split(r"\s*(?:,|\band\b)\s*", m["old"]) if old)
    return [k for k in dict.fromkeys(keys) if k]


def match_trade_name(
    trade: TradeName, index: Mapping[str, set[str]], products: Mapping[str, Product]
) -> tuple[str | None, list[str]]:
    """The product a designation's trade name is, or ``None`` and the candidates when not exactly one.

    Two products can share a name (an application refused, then a later one
    authorised). The trade name comes with an EU register number, which only
    an authorised product has, so never-authorised candidates are dropped; a
    remaining tie is broken by the authorisation date being the date the
    designation was implemented on, and is otherwise left unresolved.
    """
    candidates = sorted(index.get(normalise_name(trade.name), set()))
    if len(candidates) > 1:
        authorised = [n for n in candidates if products[n].status not in NEVER_AUTHORISED]
        if len(authorised) > 1:
            same_day = [n for n in authorised if products[n].authorisation_date == trade.implemented_on]
            authorised = same_day or authorised
        if len(authorised) == 1:
            return authorised[0], candidates
    return (candidates[0] if len(candidates) == 1 else None), candidates


def designation_order(number: str) -> tuple[int, ...]:
    """EU/3/09/672 → (9, 672): designations in the order they were granted."""
    return tuple(int(x) for x in number.split("/")[2:])


def place_designations(
    designations: Iterable[OrphanDesignation], products: Sequence[Product]
) -> tuple[list[OrphanDesignation], list[str]]:
    """The designations in number order, each with the medicine its trade name is; notes on those left apart.

    A designation whose trade name fits several products, or none, keeps no
    medicine: a wrong link would be worse than a missing one.
    """
    index: dict[str, set[str]] = defaultdict(set)
    for p in products:
        for key in product_name_keys(p.name):
            index[key].add(p.product_number)
    by_number = {p.product_number: p for p in products}
    placed: list[OrphanDesignation] = []
    notes: list[str] = []
    for d in sorted(designations, key=lambda d: designation_order(d.number)):
        trade = d.trade
        if trade is not None:
            number, candidates = match_trade_name(trade, index, by_number)
            if number:
                d = replace(d, medicine=number)
            elif candidates:
                notes.append(
                    f"designation {d.number}: trade name {trade.name!r} fits several products "
                    f"({', '.join(candidates)}); not linked"
                )
            else:
                notes.append(
                    f"designation {d.number}: trade name {trade.name!r} ({trade.eu_number}) "
                    "matches no product in the data"
                )
        placed.append(d)
    return placed, notes
