"""The entity view: every entity under the base IRI answers at its own path.

``https://w3id.org/epar/product/EMEA-H-C-004258`` is served at
``/product/EMEA-H-C-004258``: people get an HTML page (labels instead of IRIs,
links to related entities, the key facts of a product, the document list, the
overview Q&A, a concept's medicines, who refers to it); machines get Turtle,
JSON-LD or N-Triples, chosen by ``Accept`` (q-values honoured), by
``?format=`` or by a ``.ttl``/``.jsonld``/``.nt`` suffix.

Only the :class:`~epar_graph.serve.store.SparqlStore` interface is used, so the
pages work unchanged over a remote SPARQL store.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pyoxigraph import Literal, NamedNode, Triple

from epar_graph import iris, publish
from epar_graph.namespaces import DCTERMS, EPAR, OWL, RDF, RDFS, SCHEMA, SKOS
from epar_graph.serve.negotiation import Format
from epar_graph.serve.rdf_responses import (
    SUFFIXES,
    UnknownPageFormat,
    alternates,
    bad_format,
    not_acceptable,
    not_found,
    rdf_response,
    requested_format,
    serialize,
)
from epar_graph.serve.site_html import (
    RdfTerm,
    local_href,
    page_timeout,
    prefix_header,
    render_html,
    request_store,
    root_path,
    select,
    settings_base,
)
from epar_graph.serve.store import SparqlStore
from epar_graph.serve.vocabulary_pages import OntologyIndex, best_literal, curie, load_ontology, term_href, term_label

router = APIRouter()

#: How many incoming links a page lists before saying "and N more".
MAX_INCOMING = 500

# ---------------------------------------------------------------------------
# IRIs and paths

#: Characters that may not appear in a SPARQL IRIREF; a request path holding one
#: cannot name an entity, and rejecting it keeps it out of every query string.
_BAD_IRI_CHARS = re.compile(r'[\x00-\x20<>"{}|^`\\]')

#: First path segments of entity IRIs (concept schemes included).
ENTITY_ROOTS: tuple[str, ...] = (
    "product",
    "authorisation",
    "procedure",
    "document",
    "organisation",
    "substance",
    "orphan-designation",
    "scheme",
    "change",
    "snapshot",
    *iris.SCHEMES,
)


def is_safe_iri(iri: str) -> bool:
    """True when ``iri`` can be written between ``<`` and ``>`` in SPARQL unescaped."""
    return not _BAD_IRI_CHARS.search(iri)


def _split_suffix(path: str) -> tuple[str, Format | None]:
    """The path without a format suffix, and the format the suffix names (None without one)."""
    for suffix, name in SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], name
    return path, None


# ---------------------------------------------------------------------------
# The RDF of an entity: its triples, the labels of what it links, JSON-LD compacted


def label_triples(store: SparqlStore, iris_: Iterable[str]) -> list[Triple]:
    """rdfs:label triples of the given IRIs, so an entity's RDF reads without lookups."""
    values = " ".join(str(NamedNode(i)) for i in sorted(set(iris_)) if is_safe_iri(i))
    if not values:
        return []
    result = store.query(
        prefix_header()
        + f"CONSTRUCT {{ ?o rdfs:label ?l }} WHERE {{ VALUES ?o {{ {values} }} ?o rdfs:label ?l }}",
        timeout=page_timeout(store),
    )
    if isinstance(result, pyoxigraph.QueryTriples):
        return list(result)
    return []


def _object_iris(triples: Iterable[Triple]) -> set[str]:
    """The IRIs an entity points at (its classes left out): those whose labels its page and RDF show."""
    return {t.object.value for t in triples if isinstance(t.object, NamedNode) and t.predicate != RDF.type}


#: The JSON-LD profiles a client may ask for (``Accept: application/ld+json;profile=…``).
JSONLD_EXPANDED = "http://www.w3.org/ns/json-ld#expanded"
JSONLD_COMPACTED = "http://www.w3.org/ns/json-ld#compacted"
_PROFILE = re.compile(r'application/ld\+json\s*;[^,]*?profile\s*=\s*"?([^",;]+)', re.IGNORECASE)


def jsonld_profile(accept: str | None) -> str:
    """The JSON-LD profile the client asked for: compacted (the default) or expanded."""
    for profile in _PROFILE.findall(accept or "")[:8]:
        for uri in profile.split():
            if uri in (JSONLD_EXPANDED, JSONLD_COMPACTED):
                return uri
    return JSONLD_COMPACTED


@functools.lru_cache(maxsize=4)
def _published_context(path: str, mtime_ns: int) -> dict[str, object] | None:
    del mtime_ns  # part of the cache key: a new release is read again
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("@context"), dict) else None


def published_context(request: Request) -> dict[str, object] | None:
    """The release's ``context.jsonld`` (the one ``epar.jsonld`` uses), or None without one."""
    data_dir = getattr(getattr(request.app.state, "settings", None), "data_dir", None)
    if data_dir is None:
        return None
    path = Path(data_dir) / "context.jsonld"
    try:
        return _published_context(str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return None


def compact_entity(triples: Iterable[Triple], context: dict[str, object]) -> bytes:
    """An entity as compact JSON-LD with the published context: the node shape of ``epar.jsonld``."""
    ordered = publish.in_ntriples_order(publish.sorted_ntriples(set(triples)))
    doc = publish.compact_jsonld(ordered, context, presorted=True, as_processor=True)
    graph = doc.get("@graph")
    if isinstance(graph, list) and len(graph) == 1:  # one node is the document itself, as compaction gives it
        doc = {"@context": doc["@context"], **graph[0]}
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


# ---------------------------------------------------------------------------
# The HTML view of an entity


@dataclass(frozen=True)
class Value:
    """One object of a triple as a page shows it: a link, or text with its language."""

    text: str
    href: str | None = None
    external: bool = False
    iri: str | None = None
    lang: str | None = None
    datatype: str | None = None

    @property
    def long(self) -> bool:
        return len(self.text) > 160


@dataclass
class PropertyRow:
    iri: str
    label: str
    curie: str
    href: str | None
    values: list[Value]


@dataclass
class Embedded:
    """A closely tied entity (authorisation, address, answer) shown inside the page."""

    heading: str
    href: str | None
    property_label: str
    rows: list[PropertyRow]


@dataclass(frozen=True)
class DocumentRow:
    title: str
    href: str | None
    date: str
    sections: tuple[Value, ...]
    doc_type: Value | None


@dataclass(frozen=True)
class QuestionAnswer:
    position: int
    question: str
    answer: str
    href: str | None


@dataclass
class KeyFacts:
    """What a reader of a product page wants first: status, category, holder and where, dates, substances, ATC."""

    status: str = ""
    category: str = ""
    holder: Value | None = None
    country: str = ""
    authorised: str = ""
    withdrawn: str = ""
    substances: list[Value] = field(default_factory=list)
    atc: list[tuple[Value, list[Value]]] = field(default_factory=list)  # a code, and its path from the top
    ema_page: str = ""


@dataclass(frozen=True)
class MedicineRow:
    name: str
    href: str | None
    status: str
    date: str


@dataclass(frozen=True)
class HistoryRow:
    """One change of a product, for its History section."""

    date: str
    kind: str
    kind_label: str
    text: str
    href: str | None
    span: str


@dataclass
class IncomingGroup:
    property_label: str
    property_href: str | None
    values: list[Value]


@dataclass
class EntityPage:
    iri: str
    path: str
    title: str
    types: list[Value]
    rows: list[PropertyRow]
    embedded: list[Embedded] = field(default_factory=list)
    documents: list[DocumentRow] = field(default_factory=list)
    questions: list[QuestionAnswer] = field(default_factory=list)
    products: list[Value] = field(default_factory=list)
    incoming: list[IncomingGroup] = field(default_factory=list)
    incoming_truncated: bool = False
    external: list[Value] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    #: the product number, for the link to all of a product's changes
    product_number: str = ""
    key_facts: KeyFacts | None = None
    #: on a concept's page (a status, an area, an ATC code): the medicines it applies to
    medicines: list[MedicineRow] = field(default_factory=list)
    medicines_truncated: bool = False


#: Predicates shown in their own section rather than in the property table.
_SECTION_PREDICATES = {EPAR.document.value, EPAR.overviewQuestion.value, RDF.type.value}
#: Objects of these predicates are described inline (they have no life of their own).
_EMBED_PREDICATES = (EPAR.authorisation.value, SCHEMA.address.value, SCHEMA.acceptedAnswer.value)
#: Links to the same thing elsewhere, listed under "Elsewhere".
_EXTERNAL_PREDICATES = {
    SKOS.exactMatch.value,
    SKOS.closeMatch.value,
    OWL.sameAs.value,
    RDFS.seeAlso.value,
    EPAR.emaPage.value,
}
#: Properties that come first in the table, in this order.
_FIRST = (
    RDFS.label.value,
    SCHEMA.name.value,
    SKOS.prefLabel.value,
    SKOS.notation.value,
    EPAR.productNumber.value,
    EPAR.commonName.value,
    EPAR.activeSubstance.value,
    EPAR.holder.value,
    EPAR.authorisationStatus.value,
    EPAR.authorisationDate.value,
    EPAR.withdrawalDate.value,
    EPAR.refusalDate.value,
)
_SHORT_DATATYPES = {"date", "boolean", "integer", "decimal", "dateTime", "anyURI"}


def _value(term: RdfTerm | Triple, base: str, labels: dict[str, str]) -> Value:
    if isinstance(term, NamedNode):
        iri = term.value
        href = local_href(iri, base)
        if href is not None:
            return Value(text=labels.get(iri) or iri[len(base):], href=href, iri=iri)
        web = iri.startswith(("http://", "https://"))
        return Value(text=labels.get(iri) or iri, href=iri if web else None, external=web, iri=iri)
    if isinstance(term, Literal):
        dt = term.datatype.value.rsplit("#", 1)[-1] if term.datatype else None
        return Value(
            text=term.value,
            lang=term.language,
            datatype=dt if dt in _SHORT_DATATYPES else None,
        )
    return Value(text=str(term))


def _value_key(v: Value) -> tuple[int, str]:
    return (0 if v.lang in (None, "en") else 1, v.text.lower())


def _rows(
    triples: Sequence[Triple],
    base: str,
    labels: dict[str, str],
    onto: OntologyIndex | None,
    skip: Collection[str] = frozenset(),
) -> list[PropertyRow]:
    grouped: dict[str, list[Value]] = {}
    for t in triples:
        if t.predicate.value in skip:
            continue
        grouped.setdefault(t.predicate.value, []).append(_value(t.object, base, labels))
    rows = [
        PropertyRow(
            iri=p,
            label=term_label(p, onto),
            curie=curie(p),
            href=term_href(p, base),
            values=sorted(vs, key=_value_key),
        )
        for p, vs in grouped.items()
    ]
    order = {p: i for i, p in enumerate(_FIRST)}
    rows.sort(key=lambda r: (order.get(r.iri, len(order)), r.label.lower()))
    return rows


def _types(triples: Sequence[Triple], base: str, onto: OntologyIndex | None) -> list[Value]:
    return [
        Value(text=term_label(t.object.value, onto), href=term_href(t.object.value, base), iri=t.object.value)
        for t in triples
        if t.predicate == RDF.type and isinstance(t.object, NamedNode)
    ]


def _title(iri: str, triples: Sequence[Triple], labels: dict[str, str], base: str) -> str:
    own = best_literal(
        t.object for t in triples if t.predicate in (RDFS.label, SKOS.prefLabel, SCHEMA.name)
    )
    return own or labels.get(iri) or iri[len(base):]


def _embedded(
    store: SparqlStore, triples: Sequence[Triple], base: str, onto: OntologyIndex | None
) -> list[Embedded]:
    out: list[Embedded] = []
    for pred in _EMBED_PREDICATES:
        for t in triples:
            if t.predicate.value != pred or not isinstance(t.object, NamedNode):
                continue
            inner = store.describe(t.object.value)
            if not inner:
                continue
            labels = store.labels(_object_iris(inner) | {t.object.value})
            out.append(
                Embedded(
                    heading=_title(t.object.value, inner, labels, base),
                    href=local_href(t.object.value, base),
                    property_label=term_label(pred, onto),
                    rows=_rows(inner, base, labels, onto, skip={RDF.type.value}),
                )
            )
    return out


def _documents(store: SparqlStore, iri: str, base: str) -> list[DocumentRow]:
    """The product's documents with title, date, sections and type, oldest first."""
    rows = select(store, f"SELECT ?doc ?p ?o WHERE {{ <{iri}> epar:document ?doc . ?doc ?p ?o }}")
    docs: dict[str, dict[str, list[RdfTerm]]] = {}
    for row in rows:
        doc, pred = row["doc"].value, row["p"].value
        docs.setdefault(doc, {}).setdefault(pred, []).append(row["o"])
    concept_iris = {
        o.value
        for props in docs.values()
        for p in (EPAR.documentSection.value, EPAR.documentType.value)
        for o in props.get(p, [])
    }
    labels = store.labels(concept_iris)
    out = []
    for doc, props in docs.items():
        title = best_literal(props.get(DCTERMS.title.value, [])) or best_literal(
            props.get(RDFS.label.value, [])
        )
        dates = sorted(o.value for o in props.get(DCTERMS.issued.value, []))
        types = [_value(o, base, labels) for o in props.get(EPAR.documentType.value, [])]
        out.append(
            DocumentRow(
                title=title or doc[len(base):],
                href=local_href(doc, base),
                date=dates[0] if dates else "",
                sections=tuple(
                    sorted(
                        (_value(o, base, labels) for o in props.get(EPAR.documentSection.value, [])),
                        key=_value_key,
                    )
                ),
                doc_type=types[0] if types else None,
            )
        )
    out.sort(key=lambda d: (d.date == "", d.date, d.title.lower()))
    return out


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _questions(store: SparqlStore, iri: str, base: str) -> list[QuestionAnswer]:
    """The overview questions of a product with their answers, in their published order."""
    rows = select(
        store,
        f"""SELECT ?q ?name ?pos ?text WHERE {{
          <{iri}> epar:overviewQuestion ?q .
          OPTIONAL {{ ?q schema:name ?name }}
          OPTIONAL {{ ?q schema:position ?pos }}
          OPTIONAL {{ ?q schema:acceptedAnswer ?a . ?a schema:text ?text }}
        }}""",
    )
    found: dict[str, dict[str, list[RdfTerm]]] = {}
    for row in rows:
        entry = found.setdefault(row["q"].value, {})
        for key in ("name", "pos", "text"):
            if key in row:
                entry.setdefault(key, []).append(row[key])
    out = []
    for q, entry in found.items():
        pos = entry.get("pos", [])
        out.append(
            QuestionAnswer(
                position=_int_or(pos[0].value if pos else None, 10**6),
                question=best_literal(entry.get("name", [])) or q[len(base):],
                answer=best_literal(entry.get("text", [])) or "",
                href=local_href(q, base),
            )
        )
    out.sort(key=lambda qa: (qa.position, qa.question))
    return out


def _country_name(iri: str) -> str:
    """The English name of an EU country-authority IRI (``…/country/DNK`` → Denmark)."""
    import pycountry

    code = iri.rsplit("/", 1)[-1]
    country = pycountry.countries.get(alpha_3=code) if len(code) == 3 else None
    return str(country.name) if country is not None else code


def _key_facts(store: SparqlStore, iri: str, base: str) -> KeyFacts:
    rows = select(store, f"""SELECT ?status ?category ?holder ?holderName ?country ?authorised ?withdrawn ?page
      WHERE {{
        <{iri}> epar:authorisation ?a .
        OPTIONAL {{ ?a epar:authorisationStatus/skos:notation ?status }}
        OPTIONAL {{ <{iri}> epar:category/skos:prefLabel ?category }}
        OPTIONAL {{ ?a epar:holder ?holder . ?holder rdfs:label ?holderName .
                   OPTIONAL {{ ?holder schema:address/schema:addressCountry ?country }} }}
        OPTIONAL {{ ?a epar:authorisationDate ?authorised }}
        OPTIONAL {{ ?a epar:withdrawalDate ?withdrawn }}
        OPTIONAL {{ <{iri}> epar:emaPage ?page }}
      }} LIMIT 5""")
    facts = KeyFacts()
    if rows:
        r = rows[0]
        facts.status = r["status"].value if "status" in r else ""
        facts.category = r["category"].value if "category" in r else ""
        if "holder" in r:
            facts.holder = Value(r["holderName"].value, local_href(r["holder"].value, base), iri=r["holder"].value)
        facts.country = _country_name(r["country"].value) if "country" in r else ""
        facts.authorised = r["authorised"].value if "authorised" in r else ""
        facts.withdrawn = r["withdrawn"].value if "withdrawn" in r else ""
        facts.ema_page = r["page"].value if "page" in r else ""
    subs = select(store, f"SELECT ?s ?l WHERE {{ <{iri}> epar:activeSubstance ?s . ?s rdfs:label ?l }} ORDER BY ?l")
    facts.substances = [Value(s["l"].value, local_href(s["s"].value, base), iri=s["s"].value) for s in subs]
    codes = select(store, f"""SELECT ?code ?level ?label ?n WHERE {{
        <{iri}> epar:atcCode|epar:atcVetCode ?code . ?code skos:broader* ?level .
        ?level skos:notation ?n . OPTIONAL {{ ?level skos:prefLabel ?label }} }} ORDER BY ?code STRLEN(?n)""")
    by_code: dict[str, list[Value]] = {}
    for c in codes:
        text = c["n"].value + (f" {c['label'].value}" if "label" in c else "")
        by_code.setdefault(c["code"].value, []).append(Value(text, local_href(c["level"].value, base),
                                                            iri=c["level"].value))
    facts.atc = [(path[-1], path) for path in by_code.values() if path]
    return facts


#: Medicines listed on a concept's page (the rest are a query away).
MAX_CONCEPT_MEDICINES = 1000


def _concept_medicines(store: SparqlStore, iri: str, base: str) -> tuple[list[MedicineRow], bool]:
    """The medicines a concept applies to, by name, with status and authorisation (or withdrawal) date.

    Directly (an area, a category), through the authorisation (a status) or
    through a narrower ATC code.
    """
    rows = select(
        store,
        f"""SELECT DISTINCT ?p ?name ?status ?date WHERE {{
          {{ SELECT DISTINCT ?p WHERE {{
            <{iri}> skos:narrower* ?c .
            {{ ?p ?prop ?c }} UNION {{ ?p epar:authorisation ?held . ?held ?prop2 ?c }}
          }} }}
          ?p a epar:MedicinalProduct ; rdfs:label ?name ; epar:authorisation ?auth .
          OPTIONAL {{ ?auth epar:authorisationStatus/skos:notation ?status }}
          OPTIONAL {{ ?auth epar:withdrawalDate|epar:authorisationDate ?date }}
        }} ORDER BY LCASE(STR(?name)) ?p LIMIT {MAX_CONCEPT_MEDICINES * 2 + 2}""",
    )
    seen: dict[str, MedicineRow] = {}
    for r in rows:
        product = r["p"].value
        if product not in seen:
            seen[product] = MedicineRow(r["name"].value, local_href(product, base),
                                        r["status"].value if "status" in r else "",
                                        r["date"].value if "date" in r else "")
    listed = list(seen.values())
    return listed[:MAX_CONCEPT_MEDICINES], len(listed) > MAX_CONCEPT_MEDICINES


#: Changes shown in a product's History section (the oldest beyond it are on /changes).
MAX_HISTORY = 200


def _history(store: SparqlStore, iri: str, base: str) -> list[HistoryRow]:
    """The product's changes between EMA's exports, newest first, dated as ``/changes`` dates them."""
    rows = select(
        store,
        f"""SELECT ?c ?label ?type ?typeLabel ?from ?to ?when WHERE {{
          ?c epar:changedProduct <{iri}> ; a epar:Change ; rdfs:label ?label ; epar:changeType ?type ;
             epar:fromSnapshot/dcterms:issued ?from ; epar:toSnapshot/dcterms:issued ?to .
          OPTIONAL {{ ?type skos:prefLabel ?typeLabel }}
          OPTIONAL {{ ?c epar:effectiveDate ?eff }}
          BIND (COALESCE(?eff, ?to) AS ?when)
        }} ORDER BY DESC(?when) ?c LIMIT {MAX_HISTORY}""",
    )
    out = []
    for r in rows:
        label = r["label"].value
        text = label.split("): ", 1)[1] if "): " in label else label  # the product is the page's own
        out.append(HistoryRow(
            date=r["when"].value,
            kind=r["type"].value.rsplit("/", 1)[-1],
            kind_label=r["typeLabel"].value if "typeLabel" in r else r["type"].value.rsplit("/", 1)[-1],
            text=text,
            href=local_href(r["c"].value, base),
            span=f"{r['from'].value} → {r['to'].value}",
        ))
    return out


def _held_products(store: SparqlStore, iri: str, base: str) -> list[Value]:
    """Medicines whose marketing authorisation this organisation holds."""
    rows = select(
        store,
        f"SELECT DISTINCT ?p WHERE {{ ?a epar:holder <{iri}> . ?p epar:authorisation ?a }}",
    )
    iris_ = [r["p"].value for r in rows if "p" in r]
    labels = store.labels(iris_)
    return sorted((_value(NamedNode(i), base, labels) for i in iris_), key=_value_key)


def _incoming(
    store: SparqlStore, iri: str, base: str, onto: OntologyIndex | None
) -> tuple[list[IncomingGroup], bool]:
    """Who points at this entity ("referenced by"), grouped by property."""
    rows = select(
        store,
        f"SELECT ?s ?p WHERE {{ ?s ?p <{iri}> . FILTER(isIRI(?s)) }} ORDER BY ?p ?s "
        f"LIMIT {MAX_INCOMING + 1}",
    )
    truncated = len(rows) > MAX_INCOMING
    rows = rows[:MAX_INCOMING]
    labels = store.labels({r["s"].value for r in rows})
    groups: dict[str, IncomingGroup] = {}
    for row in rows:
        pred = row["p"].value
        group = groups.setdefault(
            pred, IncomingGroup(term_label(pred, onto), term_href(pred, base), [])
        )
        group.values.append(_value(row["s"], base, labels))
    for g in groups.values():
        g.values.sort(key=_value_key)
    return sorted(groups.values(), key=lambda g: g.property_label.lower()), truncated


def build_entity_page(store: SparqlStore, iri: str, triples: Sequence[Triple], base: str) -> EntityPage:
    """Everything the entity template shows, gathered with a handful of queries."""
    onto = load_ontology()
    labels = store.labels(_object_iris(triples) | {iri})
    predicates = {t.predicate.value for t in triples}
    page = EntityPage(
        iri=iri,
        path=local_href(iri, base) or "/",
        title=_title(iri, triples, labels, base),
        types=_types(triples, base, onto),
        rows=_rows(triples, base, labels, onto, skip=_SECTION_PREDICATES),
    )
    page.external = sorted(
        (
            _value(t.object, base, labels)
            for t in triples
            if t.predicate.value in _EXTERNAL_PREDICATES and isinstance(t.object, NamedNode)
        ),
        key=lambda v: v.text,
    )
    page.embedded = _embedded(store, triples, base, onto)
    if EPAR.document.value in predicates:
        page.documents = _documents(store, iri, base)
    if EPAR.overviewQuestion.value in predicates:
        page.questions = _questions(store, iri, base)
    if any(t.predicate == RDF.type and t.object == EPAR.Organisation for t in triples):
        page.products = _held_products(store, iri, base)
    if any(t.predicate == RDF.type and t.object == SKOS.Concept for t in triples):
        page.medicines, page.medicines_truncated = _concept_medicines(store, iri, base)
    if any(t.predicate == RDF.type and t.object == EPAR.MedicinalProduct for t in triples):
        page.history = _history(store, iri, base)
        page.key_facts = _key_facts(store, iri, base)
        page.product_number = iri[len(base):].removeprefix("product/").replace("-", "/")
    page.incoming, page.incoming_truncated = _incoming(store, iri, base, onto)
    return page


# ---------------------------------------------------------------------------
# Routes


def entity(request: Request) -> Response:
    """Serve the entity whose IRI is the base plus this request's path."""
    base = settings_base(request)
    raw_path = request.url.path
    rel = raw_path[len(root_path(request)):] if raw_path.startswith(root_path(request)) else raw_path
    stem, suffix_format = _split_suffix(rel.lstrip("/"))
    try:
        fmt = requested_format(request, suffix_format)
    except UnknownPageFormat:
        return bad_format(request)
    store = request_store(request)
    iri = base + rel.lstrip("/")
    triples: list[Triple] = store.describe(iri) if is_safe_iri(iri) else []
    if not triples and suffix_format and is_safe_iri(base + stem):
        iri = base + stem
        triples = store.describe(iri)
    if not triples:
        return not_found(request, iri if is_safe_iri(iri) else None, fmt)
    if fmt is None:
        return not_acceptable(request)
    path = root_path(request) + (local_href(iri, base) or "/")
    if fmt != Format.HTML:
        described = [*triples, *label_triples(store, _object_iris(triples))]
        context = published_context(request) if fmt == Format.JSONLD else None
        if context is not None and jsonld_profile(request.headers.get("accept")) == JSONLD_COMPACTED:
            return rdf_response(compact_entity(described, context), fmt, path)
        return rdf_response(serialize(described, fmt), fmt, path)
    page = build_entity_page(store, iri, triples, base)
    return render_html(
        "entity.html", {"page": page, "alternates": alternates(path), "path": path}, request
    )


for _root in ENTITY_ROOTS:
    router.add_api_route(
        f"/{_root}/{{rest:path}}",
        entity,
        methods=["GET", "HEAD"],
        include_in_schema=False,
        name=f"entity-{_root}",
    )
