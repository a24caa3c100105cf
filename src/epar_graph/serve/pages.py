"""Dereferenceable IRIs: every entity under the base IRI answers at its own path.

``https://w3id.org/epar/product/EMEA-H-C-004258`` is served at
``/product/EMEA-H-C-004258``: people get an HTML page (labels instead of IRIs,
links to related entities, the document list, the overview Q&A, who refers to
it); machines get Turtle, JSON-LD or N-Triples, chosen by ``Accept`` (q-values
honoured), by ``?format=`` or by a ``.ttl``/``.jsonld``/``.nt`` suffix.
``/ontology`` and ``/shapes`` publish the vocabulary and the SHACL shapes the
same way.

Only the :class:`~epar_graph.serve.store.SparqlStore` interface is used, so the
pages work unchanged over a remote SPARQL store.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader
from pyoxigraph import BlankNode, Literal, NamedNode, RdfFormat, Triple

from epar_graph import config, iris, publish
from epar_graph.namespaces import (
    DCTERMS,
    EPAR,
    EPAR_NS,
    ONTOLOGY_IRI,
    OWL,
    PREFIXES,
    RDF,
    RDFS,
    SCHEMA,
    SH,
    SKOS,
)
from epar_graph.serve import negotiation
from epar_graph.serve.holdings import Holdings, read_holdings
from epar_graph.serve.store import SparqlStore

router = APIRouter()
log = logging.getLogger(__name__)

#: A node of an RDF graph (what pyoxigraph yields as subject or object).
RdfTerm = NamedNode | BlankNode | Literal

TEMPLATES_DIR = Path(__file__).with_name("templates")

#: Jinja environment shared by the HTML views; autoescaping is on for every
#: template because every literal in the graph is untrusted text.
templates = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True)

#: Seconds a page's helper query may run; a page should never hang a worker.
PAGE_QUERY_TIMEOUT = 10.0
#: How many incoming links a page lists before saying "and N more".
MAX_INCOMING = 500

# ---------------------------------------------------------------------------
# Content negotiation

#: Output formats: short name → (media type, pyoxigraph format or None for HTML).
FORMATS: dict[str, tuple[str, RdfFormat | None]] = {
    "html": ("text/html", None),
    "ttl": ("text/turtle", RdfFormat.TURTLE),
    "jsonld": ("application/ld+json", RdfFormat.JSON_LD),
    "nt": ("application/n-triples", RdfFormat.N_TRIPLES),
}
FORMAT_NAMES = {
    "html": "html",
    "ttl": "ttl",
    "turtle": "ttl",
    "jsonld": "jsonld",
    "json-ld": "jsonld",
    "json": "jsonld",
    "nt": "nt",
    "ntriples": "nt",
    "n-triples": "nt",
}
#: Media types we answer, in server preference order (HTML first, so ``*/*`` gets a page).
OFFERS: tuple[tuple[str, str], ...] = (
    ("text/html", "html"),
    ("application/xhtml+xml", "html"),
    ("text/turtle", "ttl"),
    ("application/x-turtle", "ttl"),
    ("application/ld+json", "jsonld"),
    ("application/json", "jsonld"),
    ("application/n-triples", "nt"),
)
SUFFIXES = {".ttl": "ttl", ".jsonld": "jsonld", ".nt": "nt", ".html": "html"}
FORMAT_LABELS = {"ttl": "Turtle", "jsonld": "JSON-LD", "nt": "N-Triples"}


def negotiate(accept: str | None) -> str | None:
    """The format name to answer with, or None when nothing offered is acceptable."""
    chosen = negotiation.negotiate(accept, [media for media, _ in OFFERS])
    return None if chosen is None else dict(OFFERS)[chosen]


def _requested_format(request: Request, suffix_format: str | None) -> str | None:
    """``?format=`` beats a path suffix, which beats ``Accept``; '' means "unknown ?format"."""
    wanted = request.query_params.get("format")
    if wanted is not None:
        return FORMAT_NAMES.get(wanted.strip().lower(), "")
    if suffix_format:
        return suffix_format
    return negotiate(request.headers.get("accept"))


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


def local_href(iri: str, base: str) -> str | None:
    """The path on this server that serves ``iri``, or None for an outside IRI."""
    if iri.startswith(base):
        return "/" + iri[len(base):]
    return None


def settings_base(request: Request) -> str:
    """The base IRI the served graph was minted under (the release's, unless the settings say otherwise)."""
    return str(request.app.state.settings.iris.base)


def _store(request: Request) -> SparqlStore:
    store: SparqlStore = request.app.state.store
    return store


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _split_suffix(path: str) -> tuple[str, str | None]:
    for suffix, name in SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], name
    return path, None


# ---------------------------------------------------------------------------
# The ontology: labels for properties and classes, and the /ontology page


@dataclass(frozen=True)
class OntologyTerm:
    """One class or property of the ontology, as the HTML pages show it."""

    iri: str
    kind: str
    label: str
    comment: str
    domain: tuple[str, ...] = ()
    range: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        return self.iri.rsplit("#", 1)[-1]


@dataclass(frozen=True)
class OntologyIndex:
    """What the pages need from ``ontology/epar.ttl``: labels, and the epar: terms described."""

    labels: dict[str, str]
    terms: tuple[OntologyTerm, ...]
    title: str
    description: str
    version: str


def _best_literal(values: Iterable[RdfTerm | Triple]) -> str | None:
    """English first, then untagged, then anything: the text a page shows."""
    lits = sorted((v for v in values if isinstance(v, Literal)), key=lambda lit: lit.value)
    for wanted in ("en", None):
        for lit in lits:
            if lit.language == wanted:
                return lit.value
    return lits[0].value if lits else None


Index = dict[RdfTerm, dict[str, list[RdfTerm]]]


def _index(triples: Iterable[Triple]) -> Index:
    """subject → predicate IRI → objects: enough to walk a small file's graph."""
    idx: Index = {}
    for t in triples:
        if isinstance(t.subject, Triple) or isinstance(t.object, Triple):
            continue  # RDF-star statements: not part of this project's graphs
        idx.setdefault(t.subject, {}).setdefault(t.predicate.value, []).append(t.object)
    return idx


def _parse_file(path: Path) -> tuple[Triple, ...]:
    with path.open("rb") as f:
        quads = pyoxigraph.parse(f, RdfFormat.TURTLE, base_iri=path.resolve().as_uri())
        return tuple(Triple(q.subject, q.predicate, q.object) for q in quads)


_KINDS = {
    OWL.Class.value: "class",
    OWL.ObjectProperty.value: "object property",
    OWL.DatatypeProperty.value: "datatype property",
    RDF.Property.value: "value property",
}


@functools.lru_cache(maxsize=4)
def _load_ontology(path: Path, mtime: float) -> OntologyIndex:
    triples = _parse_file(path)
    idx = _index(triples)
    labels: dict[str, str] = {}
    terms: list[OntologyTerm] = []
    for subject, props in idx.items():
        if not isinstance(subject, NamedNode):
            continue
        label = _best_literal(props.get(RDFS.label.value, []))
        comment = _best_literal(props.get(RDFS.comment.value, []))
        if label:
            labels[subject.value] = label
        kinds = [_KINDS[t.value] for t in props.get(RDF.type.value, []) if t.value in _KINDS]
        if kinds and subject.value.startswith(EPAR_NS):

            def iris_of(pred: str, _props: dict[str, list[RdfTerm]] = props) -> tuple[str, ...]:
                return tuple(sorted(o.value for o in _props.get(pred, []) if isinstance(o, NamedNode)))

            terms.append(
                OntologyTerm(
                    iri=subject.value,
                    kind=kinds[0],
                    label=label or subject.value.rsplit("#", 1)[-1],
                    comment=comment or "",
                    domain=iris_of(RDFS.domain.value),
                    range=iris_of(RDFS.range.value),
                    parents=iris_of(RDFS.subClassOf.value),
                )
            )
    head = idx.get(NamedNode(ONTOLOGY_IRI), {})
    return OntologyIndex(
        labels=labels,
        terms=tuple(sorted(terms, key=lambda t: (t.kind, t.label.lower()))),
        title=_best_literal(head.get(DCTERMS.title.value, [])) or "EPAR ontology",
        description=_best_literal(head.get(DCTERMS.description.value, [])) or "",
        version=_best_literal(head.get(OWL.versionInfo.value, [])) or "",
    )


def load_ontology(path: Path | None = None) -> OntologyIndex | None:
    """The ontology index, read once per file version; None when the file is missing.

    Pages fall back to readable local names when there is no ontology, so a
    missing file degrades the labels instead of breaking every page.
    """
    path = path or config.ONTOLOGY_FILE
    try:
        return _load_ontology(path, path.stat().st_mtime)
    except OSError:
        return None
    except SyntaxError as exc:
        log.error("%s: the ontology cannot be parsed, pages show local names: %s", path, exc)
        return None


# ---------------------------------------------------------------------------
# Labels for terms the ontology does not name

_KNOWN_LABELS = {
    RDF.type.value: "type",
    RDFS.label.value: "label",
    RDFS.comment.value: "comment",
    RDFS.seeAlso.value: "see also",
    SKOS.prefLabel.value: "preferred label",
    SKOS.altLabel.value: "alternative label",
    SKOS.notation.value: "notation",
    SKOS.inScheme.value: "in scheme",
    SKOS.topConceptOf.value: "top concept of",
    SKOS.hasTopConcept.value: "top concept",
    SKOS.exactMatch.value: "exact match",
    SKOS.closeMatch.value: "close match",
    DCTERMS.issued.value: "date issued",
    DCTERMS.modified.value: "last updated",
    OWL.sameAs.value: "same as",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def curie(iri: str) -> str:
    """``epar:holder`` for a known namespace, else the IRI itself."""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns):]}"
    return iri


def term_label(iri: str, onto: OntologyIndex | None) -> str:
    """The ontology's label for a class or property, else a readable local name."""
    if onto and iri in onto.labels:
        return onto.labels[iri]
    if iri in _KNOWN_LABELS:
        return _KNOWN_LABELS[iri]
    local = re.split(r"[#/]", iri.rstrip("/#"))[-1]
    return _CAMEL.sub(" ", local).lower() or iri


def term_href(iri: str, base: str) -> str | None:
    """Where a property or class is explained: our /ontology, or the term's own IRI."""
    if iri.startswith(EPAR_NS):
        return "/ontology#" + iri[len(EPAR_NS):]
    return local_href(iri, base) or (iri if iri.startswith(("http://", "https://")) else None)


# ---------------------------------------------------------------------------
# Store helpers


def page_timeout(store: SparqlStore) -> float:
    """Seconds a page's helper query may run: :data:`PAGE_QUERY_TIMEOUT`, or less when the server's limit is."""
    return min(PAGE_QUERY_TIMEOUT, float(getattr(store, "default_timeout", PAGE_QUERY_TIMEOUT)))


def _prefix_header() -> str:
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items())


def _select(store: SparqlStore, sparql: str) -> list[dict[str, RdfTerm]]:
    """Run a page's SELECT and return rows as dicts (unbound variables left out)."""
    result = store.query(_prefix_header() + sparql, timeout=page_timeout(store))
    if not isinstance(result, pyoxigraph.QuerySolutions):
        return []
    names = [v.value for v in result.variables]
    rows = []
    for solution in result:
        row: dict[str, RdfTerm] = {}
        for name in names:
            term = solution[name]
            if term is not None:
                row[name] = term
        rows.append(row)
    return rows


def label_triples(store: SparqlStore, iris_: Iterable[str]) -> list[Triple]:
    """rdfs:label triples of the given IRIs, so an entity's RDF reads without lookups."""
    values = " ".join(str(NamedNode(i)) for i in sorted(set(iris_)) if is_safe_iri(i))
    if not values:
        return []
    result = store.query(
        _prefix_header()
        + f"CONSTRUCT {{ ?o rdfs:label ?l }} WHERE {{ VALUES ?o {{ {values} }} ?o rdfs:label ?l }}",
        timeout=page_timeout(store),
    )
    if isinstance(result, pyoxigraph.QueryTriples):
        return list(result)
    return []


def _object_iris(triples: Iterable[Triple]) -> set[str]:
    return {t.object.value for t in triples if isinstance(t.object, NamedNode) and t.predicate != RDF.type}


# ---------------------------------------------------------------------------
# Serialisation


def _used_prefixes(triples: Iterable[Triple]) -> dict[str, str]:
    """The project prefixes some IRI of ``triples`` starts with (a short header, not all of them)."""
    iris_ = {
        term.value
        for t in triples
        for term in (t.subject, t.predicate, t.object)
        if isinstance(term, NamedNode)
    }
    iris_ |= {t.object.datatype.value for t in triples if isinstance(t.object, Literal)}
    return {p: ns for p, ns in PREFIXES.items() if any(i.startswith(ns) for i in iris_)}


def serialize(triples: Iterable[Triple], fmt: str) -> bytes:
    """Triples in one of the RDF formats of :data:`FORMATS` (subjects sorted: stable output)."""
    rdf_format = FORMATS[fmt][1]
    assert rdf_format is not None
    ordered = sorted(set(triples), key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))
    prefixes = _used_prefixes(ordered) if fmt == "ttl" else None
    data = pyoxigraph.serialize(ordered, format=rdf_format, prefixes=prefixes)
    assert data is not None
    return data


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


def _link_header(path: str, current: str) -> str:
    links = [
        f'<{path}?format={name}>; rel="alternate"; type="{FORMATS[name][0]}"'
        for name in ("html", "ttl", "jsonld", "nt")
        if name != current
    ]
    return ", ".join(links)


def _rdf_response(data: bytes, fmt: str, path: str) -> Response:
    media = FORMATS[fmt][0]
    charset = "" if fmt == "jsonld" else "; charset=utf-8"
    return Response(
        data,
        media_type=media + charset,
        headers={"Vary": "Accept", "Link": _link_header(path, fmt)},
    )


#: What our HTML may load: only this server. Literals are escaped anyway; the policy is the
#: second fence, and it keeps the query page from calling out to other hosts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"
)
HTML_HEADERS = {"Vary": "Accept", "Content-Security-Policy": CONTENT_SECURITY_POLICY}


def render_html(name: str, context: dict[str, Any], request: Request, status: int = 200) -> HTMLResponse:
    """A page from ``templates/`` with the security headers every page carries."""
    settings = getattr(request.app.state, "settings", None)
    data_dir = getattr(settings, "data_dir", None)
    held = read_holdings(Path(data_dir) / "void.ttl") if data_dir is not None else Holdings()
    html = templates.get_template(name).render(root=_root_path(request), holdings=held, **context)
    return HTMLResponse(html, status_code=status, headers=HTML_HEADERS)


def not_found(request: Request, iri: str | None, fmt: str | None) -> Response:
    """404 as a page for people, as plain text for RDF clients."""
    if fmt not in (None, "html", ""):
        return Response(
            f"Not found: {iri or request.url.path}\n",
            status_code=404,
            media_type="text/plain; charset=utf-8",
            headers={"Vary": "Accept"},
        )
    return render_html("not_found.html", {"iri": iri, "path": request.url.path}, request, 404)


def not_acceptable(request: Request) -> Response:
    offered = ", ".join(m for m, _ in OFFERS)
    return Response(
        f"None of the requested media types is available; offered: {offered}\n",
        status_code=406,
        media_type="text/plain; charset=utf-8",
        headers={"Vary": "Accept"},
    )


def bad_format(request: Request) -> Response:
    return Response(
        f"Unknown format {request.query_params.get('format')!r}; use html, ttl, jsonld or nt\n",
        status_code=400,
        media_type="text/plain; charset=utf-8",
        headers={"Vary": "Accept"},
    )


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
    own = _best_literal(
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
    rows = _select(store, f"SELECT ?doc ?p ?o WHERE {{ <{iri}> epar:document ?doc . ?doc ?p ?o }}")
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
        title = _best_literal(props.get(DCTERMS.title.value, [])) or _best_literal(
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
    rows = _select(
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
                question=_best_literal(entry.get("name", [])) or q[len(base):],
                answer=_best_literal(entry.get("text", [])) or "",
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
    rows = _select(store, f"""SELECT ?status ?category ?holder ?holderName ?country ?authorised ?withdrawn ?page
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
    subs = _select(store, f"SELECT ?s ?l WHERE {{ <{iri}> epar:activeSubstance ?s . ?s rdfs:label ?l }} ORDER BY ?l")
    facts.substances = [Value(s["l"].value, local_href(s["s"].value, base), iri=s["s"].value) for s in subs]
    codes = _select(store, f"""SELECT ?code ?level ?label ?n WHERE {{
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
    rows = _select(
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
    rows = _select(
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
    rows = _select(
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
    rows = _select(
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


def _alternates(path: str) -> list[dict[str, str]]:
    return [
        {"label": FORMAT_LABELS[name], "href": f"{path}?format={name}", "type": FORMATS[name][0]}
        for name in ("ttl", "jsonld", "nt")
    ]


# ---------------------------------------------------------------------------
# Routes


def entity(request: Request) -> Response:
    """Serve the entity whose IRI is the base plus this request's path."""
    base = settings_base(request)
    raw_path = request.url.path
    rel = raw_path[len(_root_path(request)):] if raw_path.startswith(_root_path(request)) else raw_path
    stem, suffix_format = _split_suffix(rel.lstrip("/"))
    fmt = _requested_format(request, suffix_format)
    if fmt == "":
        return bad_format(request)
    store = _store(request)
    iri = base + rel.lstrip("/")
    triples: list[Triple] = store.describe(iri) if is_safe_iri(iri) else []
    if not triples and suffix_format and is_safe_iri(base + stem):
        iri = base + stem
        triples = store.describe(iri)
    if not triples:
        return not_found(request, iri if is_safe_iri(iri) else None, fmt)
    if fmt is None:
        return not_acceptable(request)
    path = _root_path(request) + (local_href(iri, base) or "/")
    if fmt != "html":
        described = [*triples, *label_triples(store, _object_iris(triples))]
        context = published_context(request) if fmt == "jsonld" else None
        if context is not None and jsonld_profile(request.headers.get("accept")) == JSONLD_COMPACTED:
            return _rdf_response(compact_entity(described, context), fmt, path)
        return _rdf_response(serialize(described, fmt), fmt, path)
    page = build_entity_page(store, iri, triples, base)
    return render_html(
        "entity.html", {"page": page, "alternates": _alternates(path), "path": path}, request
    )


for _root in ENTITY_ROOTS:
    router.add_api_route(
        f"/{_root}/{{rest:path}}",
        entity,
        methods=["GET", "HEAD"],
        include_in_schema=False,
        name=f"entity-{_root}",
    )


def _file_response(
    request: Request, path: Path, template: str, context_fn: Callable[[Path], dict[str, Any]]
) -> Response:
    """Serve a vocabulary file as RDF by ``Accept``/``?format=``, or as a readable page."""
    fmt = _requested_format(request, None)
    if fmt == "":
        return bad_format(request)
    if not path.is_file():
        return not_found(request, None, fmt)
    if fmt is None:
        return not_acceptable(request)
    here = request.url.path
    if fmt == "ttl":
        return _rdf_response(path.read_bytes(), fmt, here)
    try:
        if fmt != "html":
            return _rdf_response(serialize(_parse_file(path), fmt), fmt, here)
        context = context_fn(path)
    except (VocabularyFileError, SyntaxError) as exc:
        log.error("%s", exc)
        return Response(
            f"{path.name} cannot be read: {exc}\n", status_code=500, media_type="text/plain; charset=utf-8"
        )
    context.update({"alternates": _alternates(here), "path": here})
    return render_html(template, context, request)


class VocabularyFileError(Exception):
    """A vocabulary file of the repository (ontology, shapes) is not valid Turtle."""


def _ontology_context(path: Path) -> dict[str, Any]:
    onto = load_ontology(path)
    if onto is None:
        raise VocabularyFileError(f"{path}: not valid Turtle")
    groups = [
        (title, [t for t in onto.terms if t.kind == kind])
        for title, kind in (
            ("Classes", "class"),
            ("Object properties", "object property"),
            ("Datatype properties", "datatype property"),
            ("Properties with IRI or literal values", "value property"),
        )
    ]
    return {"onto": onto, "groups": groups, "label_of": lambda i: term_label(i, onto), "curie": curie}


@router.get("/ontology", include_in_schema=False)
def ontology_page(request: Request) -> Response:
    """The EPAR ontology: Turtle (and other RDF) by Accept, a table of terms for people."""
    return _file_response(request, config.ONTOLOGY_FILE, "ontology.html", _ontology_context)


# ---------------------------------------------------------------------------
# /shapes


@dataclass
class ConstraintView:
    """One property shape: its path, the constraints on it, and what a violation says."""

    path: str
    name: str
    constraints: list[str]
    message: str
    severity: str


@dataclass
class ShapeView:
    name: str
    title: str
    anchor: str
    targets: list[str]
    description: str
    message: str
    severity: str
    constraints: list[str]
    properties: list[ConstraintView]
    sparql: list[tuple[str, str]]


_SHAPE_META = {
    RDF.type.value,
    SH.targetClass.value,
    SH.targetNode.value,
    SH.targetSubjectsOf.value,
    SH.targetObjectsOf.value,
    SH.property.value,
    SH.path.value,
    SH.name.value,
    SH.description.value,
    SH.message.value,
    SH.severity.value,
    SH.order.value,
    SH.sparql.value,
    RDFS.label.value,
    RDFS.comment.value,
}


def _rdf_list(idx: Index, node: RdfTerm) -> list[RdfTerm] | None:
    """The members of an RDF collection, or None when ``node`` is not one."""
    items: list[RdfTerm] = []
    seen: set[RdfTerm] = set()
    while node != RDF.nil:
        props = idx.get(node)
        if props is None or RDF.first.value not in props or node in seen:
            return None
        seen.add(node)
        items.append(props[RDF.first.value][0])
        rest = props.get(RDF.rest.value)
        if not rest:
            return None
        node = rest[0]
    return items


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_TURTLE_PREFIX = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.MULTILINE)


def turtle_prefixes(text: str) -> dict[str, str]:
    """The prefixes a Turtle file declares, so its own terms read as it writes them."""
    return {m.group(1) or "": m.group(2) for m in _TURTLE_PREFIX.finditer(text)}


class _ShapeReader:
    """Renders the terms of a shapes graph compactly, with the file's own prefixes."""

    def __init__(self, triples: Iterable[Triple], prefixes: dict[str, str] | None = None) -> None:
        self.idx = _index(triples)
        own = {p: ns for p, ns in (prefixes or {}).items() if p and ns not in PREFIXES.values()}
        self.prefixes = {**PREFIXES, **own}

    def name(self, iri: str) -> str:
        for prefix, ns in self.prefixes.items():
            if iri.startswith(ns) and len(iri) > len(ns):
                return f"{prefix}:{iri[len(ns):]}"
        return iri

    def term(self, node: RdfTerm, depth: int = 0) -> str:
        """A term inside a shape: names, quoted strings, ( lists ) and [ nested shapes ]."""
        if isinstance(node, NamedNode):
            return self.name(node.value)
        if isinstance(node, Literal):
            quoted = node.language or node.datatype.value == _XSD_STRING
            return f'"{node.value}"' if quoted else node.value
        members = _rdf_list(self.idx, node)
        if members is not None:
            return "(" + " ".join(self.term(m, depth + 1) for m in members) + ")"
        props = self.idx.get(node, {})
        if depth > 4 or not props:
            return "[]"
        parts = [f"{self.name(p)} {self.term(o, depth + 1)}" for p, objs in sorted(props.items()) for o in objs]
        return "[" + "; ".join(parts) + "]"

    def constraints(self, node: RdfTerm) -> list[str]:
        props = self.idx.get(node, {})
        return [
            f"{self.name(p)} {self.term(o)}"
            for p, objs in sorted(props.items())
            if p not in _SHAPE_META
            for o in objs
        ]

    def text(self, node: RdfTerm, pred: NamedNode) -> str:
        return _best_literal(self.idx.get(node, {}).get(pred.value, [])) or ""

    def severity(self, node: RdfTerm) -> str:
        sev = self.idx.get(node, {}).get(SH.severity.value, [])
        return sev[0].value.rsplit("#", 1)[-1] if sev else ""

    def property_view(self, shape: RdfTerm) -> ConstraintView:
        paths = self.idx.get(shape, {}).get(SH.path.value, [])
        return ConstraintView(
            path=self.term(paths[0]) if paths else "",
            name=self.text(shape, SH.name),
            constraints=self.constraints(shape),
            message=self.text(shape, SH.message),
            severity=self.severity(shape),
        )

    def shape_view(self, node: RdfTerm) -> ShapeView:
        props = self.idx.get(node, {})
        ident = self.name(node.value) if isinstance(node, NamedNode) else "(anonymous shape)"
        targets = [
            f"{self.name(p.value)} {self.term(o)}"
            for p in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
            for o in props.get(p.value, [])
        ]
        return ShapeView(
            name=ident,
            title=self.text(node, RDFS.label) or ident,
            anchor=re.sub(r"[^A-Za-z0-9_-]", "-", ident.split(":")[-1]),
            targets=targets,
            description=self.text(node, SH.description) or self.text(node, RDFS.comment),
            message=self.text(node, SH.message),
            severity=self.severity(node),
            constraints=self.constraints(node),
            properties=sorted(
                (self.property_view(ps) for ps in props.get(SH.property.value, [])), key=lambda c: c.path
            ),
            sparql=[
                (self.text(s, SH.message), self.text(s, SH.select)) for s in props.get(SH.sparql.value, [])
            ],
        )


def build_shapes(triples: Iterable[Triple], prefixes: dict[str, str] | None = None) -> list[ShapeView]:
    """Every node shape with its targets, property constraints, SPARQL checks and messages."""
    reader = _ShapeReader(triples, prefixes)
    shapes = [
        reader.shape_view(node)
        for node, props in reader.idx.items()
        if SH.NodeShape in props.get(RDF.type.value, [])
    ]
    return sorted(shapes, key=lambda s: s.name)


def _shapes_context(path: Path) -> dict[str, Any]:
    prefixes = turtle_prefixes(path.read_text(encoding="utf-8"))
    return {"shapes": build_shapes(_parse_file(path), prefixes), "file": path.name}


@router.get("/shapes", include_in_schema=False)
def shapes_page(request: Request) -> Response:
    """The SHACL shapes: Turtle (and other RDF) by Accept, a readable list for people."""
    return _file_response(request, config.SHAPES_FILE, "shapes.html", _shapes_context)
