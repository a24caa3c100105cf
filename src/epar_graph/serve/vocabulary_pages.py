"""The vocabulary pages: ``/ontology`` and ``/shapes``, and what the site reads from those files.

``ontology/epar.ttl`` and ``shapes/epar.shacl.ttl`` are served as they are to
RDF clients (Turtle byte for byte, other formats re-serialised) and as readable
pages to people: a table of classes and properties, a list of node shapes with
their constraints and messages. The ontology index also gives every other page
the labels of properties and classes, read once per file version.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph import config
from epar_graph.namespaces import (
    DCTERMS,
    EPAR_NS,
    ONTOLOGY_IRI,
    OWL,
    PREFIXES,
    RDF,
    RDFS,
    SH,
    SKOS,
    curie,
)
from epar_graph.serve import rdf_responses
from epar_graph.serve.negotiation import Format
from epar_graph.serve.site_html import RdfTerm, local_href, render_html

router = APIRouter()
log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# The ontology: labels for properties and classes


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


def best_literal(values: Iterable[RdfTerm | Triple]) -> str | None:
    """English first, then untagged, then anything: the text a page shows."""
    lits = sorted((v for v in values if isinstance(v, Literal)), key=lambda lit: lit.value)
    for wanted in ("en", None):
        for lit in lits:
            if lit.language == wanted:
                return lit.value
    return lits[0].value if lits else None


Index = dict[RdfTerm, dict[str, list[RdfTerm]]]


def index_triples(triples: Iterable[Triple]) -> Index:
    """subject → predicate IRI → objects: enough to walk a small file's graph."""
    idx: Index = {}
    for t in triples:
        if isinstance(t.subject, Triple) or isinstance(t.object, Triple):
            continue  # RDF-star statements: not part of this project's graphs
        idx.setdefault(t.subject, {}).setdefault(t.predicate.value, []).append(t.object)
    return idx


def parse_file(path: Path) -> tuple[Triple, ...]:
    """The triples of a Turtle file of the repository, relative IRIs resolved against the file."""
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
    triples = parse_file(path)
    idx = index_triples(triples)
    labels: dict[str, str] = {}
    terms: list[OntologyTerm] = []
    for subject, props in idx.items():
        if not isinstance(subject, NamedNode):
            continue
        label = best_literal(props.get(RDFS.label.value, []))
        comment = best_literal(props.get(RDFS.comment.value, []))
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
        title=best_literal(head.get(DCTERMS.title.value, [])) or "EPAR ontology",
        description=best_literal(head.get(DCTERMS.description.value, [])) or "",
        version=best_literal(head.get(OWL.versionInfo.value, [])) or "",
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
# Serving a vocabulary file, and /ontology


def _file_response(
    request: Request, path: Path, template: str, context_fn: Callable[[Path], dict[str, Any]]
) -> Response:
    """Serve a vocabulary file as RDF by ``Accept``/``?format=``, or as a readable page."""
    try:
        fmt = rdf_responses.requested_format(request, None)
    except rdf_responses.UnknownPageFormat:
        return rdf_responses.bad_format(request)
    if not path.is_file():
        return rdf_responses.not_found(request, None, fmt)
    if fmt is None:
        return rdf_responses.not_acceptable(request)
    here = request.url.path
    if fmt == Format.TURTLE:  # the file itself, byte for byte
        return rdf_responses.rdf_response(path.read_bytes(), fmt, here)
    try:
        if fmt != Format.HTML:
            return rdf_responses.rdf_response(rdf_responses.serialize(parse_file(path), fmt), fmt, here)
        context = context_fn(path)
    except (VocabularyFileError, SyntaxError) as exc:
        log.error("%s", exc)
        return Response(
            f"{path.name} cannot be read: {exc}\n", status_code=500, media_type="text/plain; charset=utf-8"
        )
    context.update({"alternates": rdf_responses.alternates(here), "path": here})
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
        self.idx = index_triples(triples)
        own = {p: ns for p, ns in (prefixes or {}).items() if p and ns not in PREFIXES.values()}
        self.prefixes = {**PREFIXES, **own}

    def name(self, iri: str) -> str:
        return curie(iri, self.prefixes)

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
        return best_literal(self.idx.get(node, {}).get(pred.value, [])) or ""

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
    return {"shapes": build_shapes(parse_file(path), prefixes), "file": path.name}


@router.get("/shapes", include_in_schema=False)
def shapes_page(request: Request) -> Response:
    """The SHACL shapes: Turtle (and other RDF) by Accept, a readable list for people."""
    return _file_response(request, config.SHAPES_FILE, "shapes.html", _shapes_context)
