"""Stage 3, graph: turn merged :class:`~epar_graph.model.Product` s (and orphan designations) into RDF triples.

The output is a set of N-Triples lines, one per triple (no blank nodes:
everything a user may link to has a minted IRI, see :mod:`epar_graph.iris`).
Lines, not term objects, because a build holds well over a million triples:
a line is one string where a triple is four objects, and the dump is these
lines sorted. Concepts
(statuses, sections, document types, ATC codes, therapeutic areas,
pharmacotherapeutic groups) are minted once per key across all products, so
two products with the same ATC code share one concept node.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph.config import DATA_DIR
from epar_graph.history import ADDED, REMOVED, Change, Diff, Snapshot, Value
from epar_graph.iris import Minter
from epar_graph.model import Address, DocumentListing, OrphanDesignation, Product
from epar_graph.namespaces import DCTERMS, EPAR, EU_COUNTRY_BASE, RDF, RDFS, SCHEMA, SKOS, SPDX, XSD

Object = NamedNode | Literal

#: Document types, recognised from the document title (first match wins).
DOCUMENT_TYPES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), key, label)
    for pattern, key, label in (
        (r"assessment report\s*-\s*variation", "variation-assessment-report", "Variation assessment report"),
        (r"orphan maintenance assessment report", "orphan-maintenance-assessment-report",
         "Orphan maintenance assessment report"),
        (r"public assessment report", "public-assessment-report", "Public assessment report"),
        (r"summary of (positive |negative )?opinion", "chmp-summary-of-opinion", "CHMP summary of opinion"),
        (r"procedural steps", "procedural-steps", "Procedural steps taken and scientific information"),
        (r"product information", "product-information", "Product information"),
        (r"authori[sz]ed presentations", "authorised-presentations", "All authorised presentations"),
        (r"summary for the public", "summary-for-the-public", "Summary for the public"),
        (r"risk[- ]management[- ]plan", "risk-management-plan-summary", "Risk-management-plan summary"),
        (r"withdrawal", "withdrawal-document", "Withdrawal document"),
        (r"refusal", "refusal-document", "Refusal document"),
        (r"assessment report", "assessment-report", "Assessment report"),
        (r".", "other-document", "Other document"),
    )
)

#: A procedure number in a document title: "Alofisel-H-C-004258-II-0051-G : …".
TITLE_PROCEDURE = re.compile(r"\bH-C-(\d{6})-((?:[A-Z0-9]+-)*[A-Z0-9]+)\s*:")

SCHEME_LABELS = {
    "status": "Marketing-authorisation statuses",
    "document-section": "EPAR document sections",
    "document-type": "EPAR document types",
    "atc": "Anatomical Therapeutic Chemical (ATC) classification codes",
    "therapeutic-area": "Therapeutic areas (MeSH headings)",
    "pharmacotherapeutic-group": "Pharmacotherapeutic groups",
    "category": "Categories of medicine (human, veterinary)",
    "atcvet": "Anatomical Therapeutic Chemical classification for veterinary medicinal products (ATCvet)",
    "species": "Target species of veterinary medicines",
    "opinion-status": "Opinion outcomes of EMA's scientific committees",
}
#: The scheme of the conditions orphan designations are for, made with the designations.
ORPHAN_SCHEME = "orphan-condition"
ORPHAN_SCHEME_LABEL = "Conditions of EU orphan designations"

#: The scheme of the history graph (``changes.nt``), written with the changes.
HISTORY_SCHEMES = {"change-type": "Kinds of change between EMA's exports"}
CHANGE_TYPE_LABELS = {
    "added": "Added to EMA's list",
    "removed": "Removed from EMA's list",
    "status": "Status",
    "opinion": "Opinion status",
    "holder": "Marketing-authorisation holder",
    "name": "Name",
    "atc": "ATC code",
    "substance": "Active substance",
    "indication": "Therapeutic indication",
    "flag": "Flag",
    "date": "Date",
    "revision": "Revision number",
}
#: A record field → the property that carries it, and whether it is said of the authorisation.
FIELD_PROPERTIES: dict[str, tuple[NamedNode, bool]] = {
    "status": (EPAR.authorisationStatus, True),
    "opinion_status": (EPAR.opinionStatus, True),
    "holder": (EPAR.holder, True),
    "name": (RDFS.label, False),
    "atc_codes": (EPAR.atcCode, False),
    "atcvet_codes": (EPAR.atcVetCode, False),
    "active_substances": (EPAR.activeSubstance, False),
    "indication": (EPAR.therapeuticIndication, False),
    "revision_number": (EPAR.revisionNumber, True),
    "is_orphan": (EPAR.isOrphan, False),
    "is_generic": (EPAR.isGeneric, False),
    "is_biosimilar": (EPAR.isBiosimilar, False),
    "conditional_approval": (EPAR.conditionalApproval, False),
    "exceptional_circumstances": (EPAR.exceptionalCircumstances, False),
    "is_advanced_therapy": (EPAR.isAdvancedTherapy, False),
    "is_prime": (EPAR.isPrime, False),
    "accelerated_assessment": (EPAR.acceleratedAssessment, False),
    "additional_monitoring": (EPAR.additionalMonitoring, False),
    "patient_safety": (EPAR.patientSafety, False),
    "authorisation_date": (EPAR.authorisationDate, True),
    "refusal_date": (EPAR.refusalDate, True),
    "withdrawal_date": (EPAR.withdrawalDate, True),
    "decision_date": (EPAR.decisionDate, True),
    "rolling_review_start_date": (EPAR.rollingReviewStartDate, True),
    "evaluation_start_date": (EPAR.evaluationStartDate, True),
    "opinion_date": (EPAR.opinionDate, True),
    "application_withdrawal_date": (EPAR.applicationWithdrawalDate, True),
    "suspension_date": (EPAR.suspensionDate, True),
}


def _atc_main_groups(path: Path = DATA_DIR / "atc-anatomical-main-groups.csv") -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["label"] for row in csv.DictReader(f)}


def _date(d: dt.date) -> Literal:
    return Literal(d.isoformat(), datatype=XSD.date)


_TRUE = Literal("true", datatype=XSD.boolean)
_FALSE = Literal("false", datatype=XSD.boolean)


def _bool(b: bool) -> Literal:
    return _TRUE if b else _FALSE


def _int(n: int) -> Literal:
    return Literal(str(n), datatype=XSD.integer)


def _en(text: str) -> Literal:
    return Literal(text, language="en")


def document_type(title: str) -> tuple[str, str]:
    """The (key, label) of a document's type, from its title."""
    body = title.split(" : ", 1)[-1] if " : " in title else title
    for pattern, key, label in DOCUMENT_TYPES:
        if pattern.search(body) or pattern.search(title):
            return key, label
    raise AssertionError("the catch-all document type always matches")  # pragma: no cover


def title_procedure(title: str) -> str | None:
    """The procedure number a document title names, e.g. EMEA/H/C/004258/II/0051/G."""
    m = TITLE_PROCEDURE.search(title)
    if not m:
        return None
    return f"EMEA/H/C/{m.group(1)}/" + m.group(2).replace("-", "/")


def section_label(code: str) -> str:
    """CHANGES_SINCE_INITIAL_AUTHORISATION → "Changes since initial authorisation"."""
    words = code.replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:]


def _code_chain(code: str, levels: tuple[int, ...]) -> list[str]:
    """A classification code and its ancestors (its prefixes of the given lengths), most specific first."""
    code = code.strip().upper()
    chain = [code[:n] for n in levels if n <= len(code)]
    if code not in chain:
        chain.append(code)
    return list(reversed(chain))


def atc_ancestors(code: str) -> list[str]:
    """An ATC code and its ancestors, most specific first: L04AX08 → L04AX, L04A, L04, L."""
    return _code_chain(code, (1, 3, 4, 5, 7))


def atcvet_ancestors(code: str) -> list[str]:
    """An ATCvet code and its ancestors, most specific first: QJ01CA04 → QJ01CA, QJ01C, QJ01, QJ.

    ATCvet is ATC with a leading Q, so each level is one character longer.
    """
    return _code_chain(code, (2, 4, 5, 6, 8))


def procedure_number(product_number: str, printed: str) -> str:
    """The full number of a procedure a report names by its tail: II/0044/G → EMEA/H/C/004258/II/0044/G."""
    return printed if printed.startswith(product_number + "/") else f"{product_number}/{printed}"


class Lines:
    """A graph's N-Triples lines (each without its newline), kept by subject.

    A subject's lines are contiguous in the sorted dump: sorting the subjects,
    then each one's few lines, gives the order of sorting every line, in about
    half the time, and each subject's text is held once, not once per line.
    """

    def __init__(self, lines: Iterable[str] = ()) -> None:
        #: a subject's N-Triples text ("<iri>") → the rest of each of its lines ("<predicate> object .")
        self.by_subject: dict[str, set[str]] = {}
        for line in lines:
            subject, _, rest = line.partition(" ")
            self.of(subject).add(rest)

    def of(self, subject: str) -> set[str]:
        """The rests of the lines of ``subject`` (its N-Triples text), to add to."""
        rests = self.by_subject.get(subject)
        if rests is None:
            rests = self.by_subject[subject] = set()
        return rests

    def __len__(self) -> int:
        return sum(map(len, self.by_subject.values()))

    def __iter__(self) -> Iterator[str]:
        for subject, rests in self.by_subject.items():
            for rest in rests:
                yield f"{subject} {rest}"

    def drain_sorted(self) -> Iterator[tuple[str, list[str]]]:
        """Each subject and the rests of its lines, in the order of the sorted lines; emptied on the way.

        A subject's text ends with ">" (or is a blank node's label, which holds
        no space), and a line goes on with a space, below any character of a
        subject: so comparing subjects compares their lines.
        """
        for subject in sorted(self.by_subject):
            yield subject, sorted(self.by_subject.pop(subject))


@dataclass
class GraphBuilder:
    """Accumulates triples; concepts are minted once however often they are used."""

    iris: Minter
    #: the triples, as N-Triples lines
    lines: Lines = field(default_factory=Lines)
    _concepts: set[str] = field(default_factory=set)
    #: concept IRI → language → its one preferred label (later spellings become altLabels)
    _pref: dict[str, dict[str, str]] = field(default_factory=dict)
    #: entity IRI → the first spelling of its name (later spellings become altLabels)
    _names: dict[str, str] = field(default_factory=dict)
    _atc_names: dict[str, str] = field(default_factory=_atc_main_groups)
    #: (scheme, key) → the concept's IRI and node: most concepts are used by many products
    _minted: dict[tuple[str, str], tuple[str, NamedNode]] = field(default_factory=dict)

    #: the last subject and its lines, and each predicate's N-Triples text: most lines repeat both
    _subject: tuple[NamedNode | None, set[str]] = (None, set())
    _predicates: dict[NamedNode, str] = field(default_factory=dict)

    def add(self, s: NamedNode, p: NamedNode, o: Object) -> None:
        # Formatting a term costs a call into pyoxigraph; a product's lines share their subject node.
        node, rests = self._subject
        if s is not node:
            rests = self.lines.of(str(s))
            self._subject = (s, rests)
        predicate = self._predicates.get(p)
        if predicate is None:
            predicate = self._predicates[p] = str(p)
        rests.add(f"{predicate} {o!s} .")

    def take_lines(self) -> Lines:
        """The lines so far; the builder goes on with none (its concepts stay minted)."""
        taken, self.lines, self._subject = self.lines, Lines(), (None, set())
        return taken

    @property
    def triples(self) -> set[Triple]:
        """The triples as term objects (for small graphs: tests, a single change report)."""
        return as_triples(self.lines)

    def node(self, iri: str) -> NamedNode:
        return NamedNode(iri)

    # -- concepts ---------------------------------------------------------

    def concept(
        self,
        scheme: str,
        key: str,
        labels: dict[str, str] | None = None,
        notation: str | None = None,
        broader: str | None = None,
    ) -> NamedNode:
        minted = self._minted.get((scheme, key))
        if minted is None:
            iri = self.iris.concept(scheme, key)
            minted = self._minted[(scheme, key)] = (iri, NamedNode(iri))
        iri, node = minted
        pref = self._pref.setdefault(iri, {})
        for lang, text in (labels or {}).items():
            known = pref.get(lang)
            if known is None:  # added once: the set would only drop the repeats
                pref[lang] = text
                self.add(node, SKOS.prefLabel, Literal(text, language=lang))
            elif known != text:
                self.add(node, SKOS.altLabel, Literal(text, language=lang))
        if iri in self._concepts:
            return node
        self._concepts.add(iri)
        scheme_node = NamedNode(self.iris.scheme(scheme))
        self.add(node, RDF.type, SKOS.Concept)
        self.add(node, SKOS.inScheme, scheme_node)
        en = (labels or {}).get("en")
        self.add(node, RDFS.label, _en(en) if en else Literal(notation or key))
        if notation:
            self.add(node, SKOS.notation, Literal(notation))
        if broader:
            self.add(node, SKOS.broader, NamedNode(broader))
            self.add(NamedNode(broader), SKOS.narrower, node)
        else:
            self.add(node, SKOS.topConceptOf, scheme_node)
            self.add(scheme_node, SKOS.hasTopConcept, node)
        return node

    def atc(self, code: str) -> NamedNode:
        chain = atc_ancestors(code)
        parent: str | None = None
        for level in reversed(chain):
            name = self._atc_names.get(level)
            self.concept("atc", level, {"en": name} if name else None, notation=level, broader=parent)
            parent = self.iris.concept("atc", level)
        return NamedNode(self.iris.concept("atc", chain[0]))

    def atcvet(self, code: str) -> NamedNode:
        chain = atcvet_ancestors(code)
        parent: str | None = None
        for level in reversed(chain):
            self.concept("atcvet", level, None, notation=level, broader=parent)
            parent = self.iris.concept("atcvet", level)
        return NamedNode(self.iris.concept("atcvet", chain[0]))

    def schemes(self) -> None:
        for name, label in SCHEME_LABELS.items():
            node = NamedNode(self.iris.scheme(name))
            self.add(node, RDF.type, SKOS.ConceptScheme)
            self.add(node, RDFS.label, _en(label))

    # -- entities ---------------------------------------------------------

    def named(self, iri: str, cls: NamedNode, name: str) -> NamedNode:
        """A node for a named entity whose spellings merge under one normalised name.

        The first spelling is the label; other spellings of the same normalised
        name are kept as skos:altLabel so every node has exactly one label.
        """
        node = NamedNode(iri)
        first = self._names.get(iri)
        if first is None:  # added once: the set would only drop the repeats
            self._names[iri] = name
            self.add(node, RDF.type, cls)
            self.add(node, RDFS.label, Literal(name))
        elif first != name:
            self.add(node, SKOS.altLabel, Literal(name))
        return node

    def organisation(self, name: str, address: Address | None) -> NamedNode:
        iri = self.iris.organisation(name)
        node = self.named(iri, EPAR.Organisation, name)
        self.add(node, SCHEMA.name, Literal(self._names[iri]))
        addr_iri = self.iris.address(name)
        if address is not None and addr_iri not in self._names:
            self._names[addr_iri] = name
            addr = NamedNode(addr_iri)
            self.add(node, SCHEMA.address, addr)
            self.add(addr, RDF.type, SCHEMA.PostalAddress)
            locality = " ".join(x for x in (address.postal_code, address.locality) if x)
            parts = [x for x in (address.street, locality, address.country_name) if x]
            self.add(addr, RDFS.label, Literal(", ".join(parts) or name))
            if address.street:
                self.add(addr, SCHEMA.streetAddress, Literal(address.street))
            if address.postal_code:
                self.add(addr, SCHEMA.postalCode, Literal(address.postal_code))
            if address.locality:
                self.add(addr, SCHEMA.addressLocality, Literal(address.locality))
            if address.country_code:
                self.add(addr, SCHEMA.addressCountry, NamedNode(EU_COUNTRY_BASE + address.country_code))
        return node

    def substance(self, name: str) -> NamedNode:
        return self.named(self.iris.substance(name), EPAR.ActiveSubstance, name)

    def procedure(self, auth: NamedNode, number: str) -> NamedNode:
        node = NamedNode(self.iris.procedure(number))
        self.add(node, RDF.type, EPAR.Procedure)
        self.add(node, RDFS.label, Literal(number))
        self.add(node, EPAR.procedureNumber, Literal(number))
        self.add(auth, EPAR.procedure, node)
        return node

    def documents(self, product: Product, prod: NamedNode, auth: NamedNode) -> None:
        merged: dict[tuple[str, dt.date | None], list[DocumentListing]] = {}
        for listing in product.documents:
            merged.setdefault((listing.title, listing.date), []).append(listing)
        for (title, date), listings in merged.items():
            node = NamedNode(self.iris.document(product.product_number, title, date))
            self.add(prod, EPAR.document, node)
            self.add(node, RDF.type, EPAR.Document)
            self.add(node, RDFS.label, _en(title))
            self.add(node, DCTERMS.title, _en(title))
            if date:
                self.add(node, DCTERMS.issued, _date(date))
            for listing in listings:
                if listing.section:
                    code = listing.section.strip()
                    section = self.concept(
                        "document-section", code, {"en": section_label(code)}, notation=code
                    )
                    self.add(node, EPAR.documentSection, section)
                if listing.url:
                    self.add(node, RDFS.seeAlso, NamedNode(listing.url))
            key, label = document_type(title)
            self.add(node, EPAR.documentType, self.concept("document-type", key, {"en": label}, notation=key))
            number = title_procedure(title)
            if number and number.startswith(product.product_number + "/"):
                self.add(node, EPAR.aboutProcedure, self.procedure(auth, number))

    def questions(self, product: Product, prod: NamedNode) -> None:
        for n, qa in enumerate(product.questions, start=1):
            q = NamedNode(self.iris.question(product.product_number, n))
            a = NamedNode(self.iris.answer(product.product_number, n))
            self.add(prod, EPAR.overviewQuestion, q)
            self.add(q, RDF.type, SCHEMA.Question)
            self.add(q, RDFS.label, _en(qa.question))
            self.add(q, SCHEMA.name, _en(qa.question))
            self.add(q, SCHEMA.position, _int(n))
            self.add(q, SCHEMA.acceptedAnswer, a)
            self.add(a, RDF.type, SCHEMA.Answer)
            self.add(a, RDFS.label, _en(f"Answer: {qa.question}"))
            self.add(a, SCHEMA.text, _en(qa.answer))

    def product(self, product: Product) -> None:
        number = product.product_number
        prod = NamedNode(self.iris.product(number))
        auth = NamedNode(self.iris.authorisation(number))
        add = self.add
        add(prod, RDF.type, EPAR.MedicinalProduct)
        add(prod, RDFS.label, Literal(product.name))
        add(prod, EPAR.authorisation, auth)
        add(auth, RDF.type, EPAR.MarketingAuthorisation)
        add(auth, RDFS.label, _en(f"Marketing authorisation {number}"))
        add(auth, EPAR.productNumber, Literal(number))
        if product.status:
            add(auth, EPAR.authorisationStatus,
                self.concept("status", product.status, {"en": product.status}, notation=product.status))
        if product.opinion_status:
            add(auth, EPAR.opinionStatus, self.concept(
                "opinion-status", product.opinion_status, {"en": product.opinion_status}))
        if product.holder:
            add(auth, EPAR.holder, self.organisation(product.holder, product.holder_address))
        if product.product_number_as_published:
            add(auth, EPAR.productNumberAsPublished, Literal(product.product_number_as_published))
        if product.latest_procedure:
            add(auth, EPAR.latestProcedure,
                self.procedure(auth, procedure_number(number, product.latest_procedure)))
        for prop, value in (
            (EPAR.authorisationDate, product.authorisation_date),
            (EPAR.withdrawalDate, product.withdrawal_date),
            (EPAR.refusalDate, product.refusal_date),
            (EPAR.decisionDate, product.decision_date),
            (EPAR.rollingReviewStartDate, product.rolling_review_start_date),
            (EPAR.evaluationStartDate, product.evaluation_start_date),
            (EPAR.opinionDate, product.opinion_date),
            (EPAR.applicationWithdrawalDate, product.application_withdrawal_date),
            (EPAR.suspensionDate, product.suspension_date),
        ):
            if value:
                add(auth, prop, _date(value))
        if product.revision_number is not None:
            add(auth, EPAR.revisionNumber, _int(product.revision_number))
        if product.category:
            add(prod, EPAR.category, self.concept("category", product.category, {"en": product.category}))
        for name in product.active_substances:
            add(prod, EPAR.activeSubstance, self.substance(name))
        if product.common_name:
            add(prod, EPAR.commonName, Literal(product.common_name))
        for code in product.atc_codes:
            add(prod, EPAR.atcCode, self.atc(code))
        for code in product.atcvet_codes:
            add(prod, EPAR.atcVetCode, self.atcvet(code))
        for printed in product.atc_codes_as_published:
            add(prod, EPAR.atcCodeAsPublished, Literal(printed))
        for species in product.target_species:
            add(prod, EPAR.targetSpecies, self.concept("species", species, {"en": species}))
        for area in product.therapeutic_areas:
            add(prod, EPAR.therapeuticArea, self.concept("therapeutic-area", area, {"en": area}))
        if product.pharmacotherapeutic_group:
            en = product.pharmacotherapeutic_group.get("en") or next(iter(product.pharmacotherapeutic_group.values()))
            add(prod, EPAR.pharmacotherapeuticGroup,
                self.concept("pharmacotherapeutic-group", en, product.pharmacotherapeutic_group))
        for other in product.other_pharmacotherapeutic_groups:
            add(prod, EPAR.pharmacotherapeuticGroup, self.concept("pharmacotherapeutic-group", other, {"en": other}))
        if product.orphan_designation_date:
            add(prod, EPAR.orphanDesignationDate, _date(product.orphan_designation_date))
        for prop, flag in (
            (EPAR.isOrphan, product.is_orphan),
            (EPAR.isGeneric, product.is_generic),
            (EPAR.isBiosimilar, product.is_biosimilar),
            (EPAR.conditionalApproval, product.conditional_approval),
            (EPAR.exceptionalCircumstances, product.exceptional_circumstances),
            (EPAR.isAdvancedTherapy, product.is_advanced_therapy),
            (EPAR.isPrime, product.is_prime),
            (EPAR.acceleratedAssessment, product.accelerated_assessment),
            (EPAR.additionalMonitoring, product.additional_monitoring),
            (EPAR.patientSafety, product.patient_safety),
        ):
            if flag is not None:
                add(prod, prop, _bool(flag))
        if product.indication:
            add(prod, EPAR.therapeuticIndication, _en(product.indication))
        if product.overview:
            add(prod, EPAR.overviewSummary, _en(product.overview))
        if product.ema_url:
            with contextlib.suppress(ValueError):  # not an IRI: the page is optional, the graph stays valid
                add(prod, EPAR.emaPage, NamedNode(product.ema_url))
        for prop, value in ((EPAR.firstPublished, product.first_published), (EPAR.lastUpdated, product.last_updated)):
            if value:
                add(prod, prop, _date(value))
        self.documents(product, prod, auth)
        self.questions(product, prod)

    # -- orphan designations ----------------------------------------------

    def designations(self, designations: Iterable[OrphanDesignation], holders: set[str]) -> None:
        """The designations, their condition concepts and sponsors, and the medicines they became.

        A sponsor that is not a holder gets one name, the first seen; a holder
        is already described by its products.
        """
        scheme = NamedNode(self.iris.scheme(ORPHAN_SCHEME))
        self.add(scheme, RDF.type, SKOS.ConceptScheme)
        self.add(scheme, RDFS.label, _en(ORPHAN_SCHEME_LABEL))
        conditions: set[str] = set()
        sponsors: set[str] = set()
        for d in designations:
            node = NamedNode(self.iris.orphan_designation(d.number))
            self.add(node, RDF.type, EPAR.OrphanDesignation)
            self.add(node, RDFS.label, _en(f"Orphan designation {d.number}"))
            self.add(node, EPAR.designationNumber, Literal(d.number))
            self.add(node, DCTERMS.description, _en(f"{d.product}: {d.indication}"))
            if d.date:
                self.add(node, EPAR.designationDate, _date(d.date))
            concept_iri = self.iris.concept(ORPHAN_SCHEME, d.condition)
            concept = NamedNode(concept_iri)
            self.add(node, EPAR.orphanCondition, concept)
            if concept_iri not in conditions:
                conditions.add(concept_iri)
                label = _en(d.condition)
                self.add(concept, RDF.type, SKOS.Concept)
                self.add(concept, RDFS.label, label)
                self.add(concept, SKOS.prefLabel, label)
                self.add(concept, SKOS.inScheme, scheme)
                self.add(concept, SKOS.topConceptOf, scheme)
                self.add(scheme, SKOS.hasTopConcept, concept)
            if d.sponsor:
                org_iri = self.iris.organisation(d.sponsor)
                org = NamedNode(org_iri)
                self.add(node, EPAR.sponsor, org)
                if org_iri not in holders and org_iri not in sponsors:
                    sponsors.add(org_iri)
                    self.add(org, RDF.type, EPAR.Organisation)
                    self.add(org, RDFS.label, Literal(d.sponsor))
                    self.add(org, SCHEMA.name, Literal(d.sponsor))
            if d.medicine:
                prod = NamedNode(self.iris.product(d.medicine))
                self.add(node, EPAR.designatedProduct, prod)
                self.add(prod, EPAR.orphanDesignation, node)

    # -- history ----------------------------------------------------------

    def snapshot(self, snap: Snapshot) -> NamedNode:
        node = NamedNode(self.iris.snapshot(snap.date))
        self.add(node, RDF.type, EPAR.Snapshot)
        self.add(node, RDFS.label, _en(f"EMA export of {snap.date.isoformat()} ({snap.name})"))
        self.add(node, DCTERMS.issued, _date(snap.date))
        self.add(node, DCTERMS.source, NamedNode(self.iris.source(snap.name)))
        if snap.sha256:
            checksum = NamedNode(node.value + "#sha256")
            self.add(node, SPDX.checksum, checksum)
            self.add(checksum, RDF.type, SPDX.Checksum)
            self.add(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256)
            self.add(checksum, SPDX.checksumValue, Literal(snap.sha256, datatype=XSD.hexBinary))
        return node

    def value(self, field_name: str, value: Value) -> NamedNode | Literal:
        """A changed value as the graph writes it: the same node or literal a product would have."""
        text = str(value)
        if field_name == "status":
            return self.concept("status", text, {"en": text}, notation=text)
        if field_name == "opinion_status":
            return self.concept("opinion-status", text, {"en": text})
        if field_name == "holder":
            return self.organisation(text, None)
        if field_name == "atc_codes":
            return self.atc(text)
        if field_name == "atcvet_codes":
            return self.atcvet(text)
        if field_name == "active_substances":
            return self.substance(text)
        if field_name == "indication":
            return _en(text)
        if isinstance(value, bool):
            return _bool(value)
        if isinstance(value, int):
            return _int(value)
        if isinstance(value, dt.date):
            return _date(value)
        return Literal(text)

    def change(self, change: Change) -> NamedNode:
        number = change.product_number
        prop: NamedNode | None = None
        if change.kind in (ADDED, REMOVED):
            what = change.kind
        else:
            prop = FIELD_PROPERTIES[change.field][0]
            what = prop.value.rsplit("#", 1)[-1]
        node = NamedNode(self.iris.change(number, change.to_date, what))
        kind = self.concept("change-type", change.kind, {"en": CHANGE_TYPE_LABELS[change.kind]}, notation=change.kind)
        self.add(node, RDF.type, EPAR.Change)
        self.add(node, EPAR.changeType, kind)
        self.add(node, EPAR.changedProduct, NamedNode(self.iris.product(number)))
        self.add(node, EPAR.fromSnapshot, NamedNode(self.iris.snapshot(change.from_date)))
        self.add(node, EPAR.toSnapshot, NamedNode(self.iris.snapshot(change.to_date)))
        if prop is not None:
            self.add(node, EPAR.changedProperty, prop)
        for value in change.old:
            self.add(node, EPAR.oldValue, self.value(change.field, value))
        for value in change.new:
            self.add(node, EPAR.newValue, self.value(change.field, value))
        if change.effective:
            self.add(node, EPAR.effectiveDate, _date(change.effective))
        self.add(node, RDFS.label, _en(change_label(change)))
        return node

    def history(self, diffs: Iterable[Diff]) -> None:
        for name, label in HISTORY_SCHEMES.items():
            node = NamedNode(self.iris.scheme(name))
            self.add(node, RDF.type, SKOS.ConceptScheme)
            self.add(node, RDFS.label, _en(label))
        for d in diffs:
            self.snapshot(d.old)
            self.snapshot(d.new)
            for change in d.changes:
                self.change(change)


def _shown(values: tuple[Value, ...]) -> str:
    return "; ".join(
        v.isoformat() if isinstance(v, dt.date) else ("yes" if v else "no") if isinstance(v, bool) else str(v)
        for v in values
    ) or "none"


def change_label(change: Change) -> str:
    """"Alofisel (EMEA/H/C/004258): status Authorised → Withdrawn (2023-06-12 → 2026-01-29)"."""
    span = f"({change.from_date.isoformat()} → {change.to_date.isoformat()})"
    who = f"{change.name} ({change.product_number})" if change.name else change.product_number
    if change.kind in (ADDED, REMOVED):
        return f"{who}: {CHANGE_TYPE_LABELS[change.kind].lower()} {span}"
    what = change.field.replace("_", " ")
    if change.kind in ("indication",):
        return f"{who}: {what} changed {span}"
    return f"{who}: {what} {_shown(change.old)} → {_shown(change.new)} {span}"


def ntriples_line(t: Triple) -> str:
    """A triple's N-Triples line, without the newline, as pyoxigraph's serialiser writes it."""
    return f"{t.subject} {t.predicate} {t.object} ."


def as_triples(lines: Iterable[str]) -> set[Triple]:
    """Term objects of N-Triples lines (each without its newline)."""
    data = "\n".join(lines).encode("utf-8")
    return {quad.triple for quad in pyoxigraph.parse(data, format=RdfFormat.N_TRIPLES)}


def build_triples(products: Iterable[Product], iris: Minter) -> set[Triple]:
    """All triples for ``products`` (and the concept schemes they use)."""
    builder = GraphBuilder(iris)
    builder.schemes()
    for product in products:
        builder.product(product)
    return builder.triples


def build_graphs(
    products: Sequence[Product],
    diffs: Iterable[Diff],
    iris: Minter,
    designations: Iterable[OrphanDesignation] | None = None,
) -> tuple[Lines, Lines]:
    """The lines of the current graph of ``products`` (and ``designations``, when given) and of the history graph.

    One builder makes both, so a value in a change (an old holder, a status
    no product has today) is the same node as in the current graph, and each
    node is described once across the two.
    """
    builder = GraphBuilder(iris)
    builder.schemes()
    for product in products:
        builder.product(product)
    if designations is not None:
        builder.designations(designations, {iris.organisation(p.holder) for p in products if p.holder})
    current = builder.take_lines()
    builder.history(diffs)
    return current, builder.take_lines()
