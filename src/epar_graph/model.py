"""Typed records: what the readers produce and what the graph stage consumes.

Readers turn each input record into either a :class:`ProductRecord` (one
source's view of one medicine) or a :class:`Rejection` that names file, record
and field. :func:`merge_records` then folds the records about the same product
number, from every source, into one :class:`Product`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

PRODUCT_NUMBER_RE = re.compile(r"^EMEA/H/C/\d{6}$")
PROCEDURE_NUMBER_RE = re.compile(r"^EMEA/H/C/\d{6}/[A-Z0-9]+(/[A-Z0-9]+)*$")

#: Statuses EMA uses for human medicines, as they are spelled in its exports.
STATUSES = (
    "Authorised",
    "Withdrawn",
    "Refused",
    "Suspended",
    "Not authorised",
    "Opinion",
    "Lapsed",
    "Expired",
    "Revoked",
    "Withdrawn application",
)


@dataclass(frozen=True)
class Rejection:
    """An input record that could not become part of the graph, and why."""

    file: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: record {self.record}: field {self.field!r}: {self.message}"


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

    status: str | None = None
    active_substances: tuple[str, ...] = ()
    common_name: str | None = None
    atc_codes: tuple[str, ...] = ()
    holder: str | None = None
    holder_address: Address | None = None
    authorisation_date: dt.date | None = None
    withdrawal_date: dt.date | None = None
    refusal_date: dt.date | None = None
    therapeutic_areas: tuple[str, ...] = ()
    #: language tag → label, e.g. {"en": "Immunosuppressants", "zh": "免疫抑制剂"}
    pharmacotherapeutic_group: dict[str, str] = field(default_factory=dict)
    orphan_designation_date: dt.date | None = None
    is_orphan: bool | None = None
    is_generic: bool | None = None
    is_biosimilar: bool | None = None
    conditional_approval: bool | None = None
    exceptional_circumstances: bool | None = None
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


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return tuple(seen)


def merge_records(records: Iterable[ProductRecord]) -> list[Product]:
    """Fold records into one product per product number, sorted by number.

    A scalar field keeps the first non-empty value in input order (so the
    order of sources is their priority); tuples are united in order; language
    maps are united with the first label per language winning.
    """
    products: dict[str, Product] = {}
    for rec in records:
        prod = products.get(rec.product_number)
        if prod is None:
            prod = products[rec.product_number] = Product(rec.product_number, rec.name)
        prod.sources.append(f"{rec.source}#{rec.record}")
        for name in _MERGED_FIELDS:
            new = getattr(rec, name)
            old = getattr(prod, name)
            if isinstance(new, tuple):
                if name == "documents" or name == "questions":
                    setattr(prod, name, tuple(dict.fromkeys(old + new)))
                else:
                    setattr(prod, name, _unique(old + new))
            elif isinstance(new, dict):
                merged = dict(new)
                merged.update(old)
                setattr(prod, name, merged)
            elif old is None and new is not None:
                setattr(prod, name, new)
    return [products[k] for k in sorted(products)]
