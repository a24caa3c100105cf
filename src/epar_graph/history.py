"""What changed between EMA's exports: typed changes between consecutive snapshots.

EMA's exports are snapshots of its whole list on the day each was made. This
stage compares the products of each two consecutive snapshots (by date, never
by argument order) and records every difference in a tracked fact as a
:class:`Change`. It works on typed records, so a column renamed between two
layouts ("Generic or hybrid" → "Generic"), dates stored as Excel datetimes
in one and text in the other, or lists joined with ", " in one and ";" in the
other make no changes; a fact is compared only when both exports have its
column. A holder respelled with the same name and legal form is not a transfer.

The graph stage turns changes into ``epar:Change`` nodes; the current graph
keeps each product's facts from its newest snapshot.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from epar_graph import model
from epar_graph.iris import normalise_name, normalise_organisation

#: Change types (concepts of the change-type scheme), in the order reports list them.
ADDED, REMOVED = "added", "removed"
CHANGE_TYPES = (ADDED, REMOVED, "status", "holder", "name", "atc", "substance", "indication", "flag", "date",
                "revision", "opinion")

#: Share of the older snapshot's products that may vanish before a diff raises the alarm.
REMOVAL_ALARM_SHARE = 0.05

Value = str | bool | int | dt.date


@dataclass(frozen=True)
class Tracked:
    """A fact compared between snapshots: the record field, its change type, the columns that carry it."""

    field: str
    kind: str
    columns: frozenset[str]


def _t(name: str, kind: str, *columns: str) -> Tracked:
    return Tracked(name, kind, frozenset(columns))


#: The facts whose changes are recorded. Columns are the readers' canonical keys.
TRACKED: tuple[Tracked, ...] = (
    _t("status", "status", "medicine_status"),
    _t("opinion_status", "opinion", "opinion_status"),
    _t("holder", "holder", "marketing_authorisation_developer_applicant_holder"),
    _t("name", "name", "name_of_medicine"),
    _t("atc_codes", "atc", "atc_code_human"),
    _t("atcvet_codes", "atc", "atcvet_code_veterinary"),
    _t("active_substances", "substance", "active_substance"),
    _t("indication", "indication", "therapeutic_indication"),
    _t("revision_number", "revision", "revision_number"),
    _t("is_orphan", "flag", "orphan_medicine"),
    _t("is_generic", "flag", "generic_or_hybrid"),
    _t("is_biosimilar", "flag", "biosimilar"),
    _t("conditional_approval", "flag", "conditional_approval"),
    _t("exceptional_circumstances", "flag", "exceptional_circumstances"),
    _t("is_advanced_therapy", "flag", "advanced_therapy"),
    _t("is_prime", "flag", "prime_priority_medicine"),
    _t("accelerated_assessment", "flag", "accelerated_assessment"),
    _t("additional_monitoring", "flag", "additional_monitoring"),
    _t("patient_safety", "flag", "patient_safety"),
    _t("authorisation_date", "date", "marketing_authorisation_date"),
    _t("refusal_date", "date", "refusal_of_marketing_authorisation_date"),
    _t("withdrawal_date", "date", "withdrawal_expiry_revocation_lapse_of_marketing_authorisation_date"),
    _t("decision_date", "date", "european_commission_decision_date"),
    _t("rolling_review_start_date", "date", "start_of_rolling_review_date"),
    _t("evaluation_start_date", "date", "start_of_evaluation_date"),
    _t("opinion_date", "date", "opinion_adopted_date"),
    _t("application_withdrawal_date", "date", "withdrawal_of_application_date"),
    _t("suspension_date", "date", "suspension_of_marketing_authorisation_date"),
)

#: A new status → the record field that dates it.
STATUS_DATES = {
    "Authorised": "authorisation_date",
    "Withdrawn": "withdrawal_date",
    "Lapsed": "withdrawal_date",
    "Expired": "withdrawal_date",
    "Revoked": "withdrawal_date",
    "Refused": "refusal_date",
    "Suspended": "suspension_date",
    "Application withdrawn": "application_withdrawal_date",
    "Withdrawn from rolling review": "application_withdrawal_date",
    "Opinion": "opinion_date",
}


@dataclass(frozen=True)
class Snapshot:
    """One export: its date, file, checksum, columns, and its products by number."""

    name: str
    date: dt.date
    sha256: str
    columns: frozenset[str]
    products: dict[str, model.Product] = field(compare=False, repr=False)

    @property
    def categories(self) -> frozenset[str]:
        """The kinds of medicine this export lists (the 2017 export lists human ones only)."""
        return frozenset(_category(p) for p in self.products.values())


def snapshot(name: str, date: dt.date, sha256: str, columns: Iterable[str],
             records: Iterable[model.ProductRecord]) -> Snapshot:
    """A snapshot of one export's records (several rows of one number fold into one product)."""
    products = {p.product_number: p for p in model.merge_records(records)}
    return Snapshot(name, date, sha256, frozenset(columns), products)


@dataclass(frozen=True)
class Change:
    """One fact of one product that differs between two consecutive snapshots.

    ``old`` and ``new`` are the values as the records hold them (a status
    label, a holder's name, an ATC code, a date ...); the graph stage makes
    them the nodes and literals the graph uses.
    """

    product_number: str
    kind: str
    field: str  # the record field; "" for a product added or removed
    old: tuple[Value, ...]
    new: tuple[Value, ...]
    from_date: dt.date
    to_date: dt.date
    effective: dt.date | None = None
    name: str = ""  # the product's name, for reports


@dataclass(frozen=True)
class Alarm:
    """Why a diff looks like a broken export rather than EMA's list changing."""

    message: str


@dataclass
class Diff:
    """The changes between two snapshots, with what is alarming about them."""

    old: Snapshot
    new: Snapshot
    changes: list[Change]
    alarms: list[Alarm]

    def counts(self) -> Counter[str]:
        return Counter(c.kind for c in self.changes)


def _category(product: model.Product) -> str:
    return product.category or "Human"


def _values(value: object) -> tuple[Value, ...]:
    if value is None or value == () or value == "":
        return ()
    if isinstance(value, tuple):
        return tuple(value)
    assert isinstance(value, str | bool | int | dt.date)
    return (value,)


def _key(tracked: Tracked, value: Value) -> object:
    """What must differ for a value to have changed: spelling and spacing of names do not count."""
    if tracked.kind == "holder":
        return normalise_organisation(str(value))
    if tracked.kind == "substance":
        return normalise_name(str(value))
    if tracked.kind in ("indication", "name"):
        return " ".join(str(value).split())
    if tracked.kind == "atc":
        return str(value).upper()
    return value


def _compare(tracked: Tracked, old: model.Product, new: model.Product, a: Snapshot, b: Snapshot) -> Change | None:
    before, after = _values(getattr(old, tracked.field)), _values(getattr(new, tracked.field))
    if {_key(tracked, v) for v in before} == {_key(tracked, v) for v in after}:
        return None
    if tracked.kind == "holder" and not (before and after):
        return None  # EMA stopped (or started) printing a holder: no transfer is known
    effective: dt.date | None = None
    if tracked.kind == "status" and after:
        dated = getattr(new, STATUS_DATES.get(str(after[0]), ""), None)
        effective = dated if isinstance(dated, dt.date) else None
    elif tracked.kind == "date" and after and isinstance(after[0], dt.date):
        effective = after[0]
    return Change(new.product_number, tracked.kind, tracked.field, before, after, a.date, b.date, effective, new.name)


def diff(a: Snapshot, b: Snapshot) -> Diff:
    """The changes from snapshot ``a`` to the later snapshot ``b``, in a stable order.

    A product is added or removed only among the kinds of medicine both list;
    a fact is compared only when both exports have its column.
    """
    both = a.categories & b.categories
    tracked = [t for t in TRACKED if t.columns & a.columns and t.columns & b.columns]
    changes: list[Change] = []
    for number in sorted(set(a.products) | set(b.products)):
        old, new = a.products.get(number), b.products.get(number)
        if old is None and new is not None:
            if _category(new) in both:
                changes.append(Change(number, ADDED, "", (), (), a.date, b.date, None, new.name))
        elif new is None and old is not None:
            if _category(old) in both:
                changes.append(Change(number, REMOVED, "", (), (), a.date, b.date, None, old.name))
        elif old is not None and new is not None:
            changes.extend(c for t in tracked if (c := _compare(t, old, new, a, b)) is not None)
    return Diff(a, b, changes, _alarms(a, b, changes, both))


def _alarms(a: Snapshot, b: Snapshot, changes: Sequence[Change], both: frozenset[str]) -> list[Alarm]:
    alarms: list[Alarm] = []
    listed = sum(1 for p in a.products.values() if _category(p) in both)
    removed = sum(1 for c in changes if c.kind == REMOVED)
    if listed and removed / listed > REMOVAL_ALARM_SHARE:
        alarms.append(Alarm(
            f"{removed} of {listed} products of {a.name} ({removed / listed:.0%}) are missing from {b.name}: "
            f"more than {REMOVAL_ALARM_SHARE:.0%}, as if the newer export were cut short"
        ))
    gone = sorted(a.columns - b.columns)
    if gone:
        alarms.append(Alarm(f"columns of {a.name} missing from {b.name}: {', '.join(gone)}"))
    return alarms


def history(snapshots: Iterable[Snapshot]) -> list[Diff]:
    """The diffs between each two consecutive snapshots, oldest first (by date, then file name)."""
    ordered = sorted(snapshots, key=lambda s: (s.date, s.name))
    return [diff(a, b) for a, b in itertools.pairwise(ordered)]
