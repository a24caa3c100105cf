"""The VoID/DCAT description of a release (``void.ttl``) as a page people can read.

Our dataset comes first (counts, sources with their dates, downloads), then
its subsets (the history, each link set) and the datasets they link to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph
from pyoxigraph import Literal, NamedNode, RdfFormat

from epar_graph.namespaces import DCAT, DCTERMS, EPAR, RDFS, VOID


@dataclass
class Row:
    label: str
    values: dict[str, str] = field(default_factory=dict)
    iri: str = ""


@dataclass
class VoidView:
    title: str = ""
    description: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    sources: list[Row] = field(default_factory=list)
    downloads: list[Row] = field(default_factory=list)
    subsets: list[Row] = field(default_factory=list)


def read_void(path: Path) -> VoidView | None:
    try:
        quads = list(pyoxigraph.parse(path=str(path), format=RdfFormat.TURTLE))
    except (OSError, SyntaxError, ValueError):
        return None
    props: dict[str, dict[str, list[object]]] = {}
    for q in quads:
        if isinstance(q.subject, NamedNode):
            props.setdefault(q.subject.value, {}).setdefault(q.predicate.value, []).append(q.object)

    def one(s: str, p: NamedNode) -> str:
        values = sorted(o.value for o in props.get(s, {}).get(p.value, []) if isinstance(o, Literal | NamedNode))
        return values[0] if values else ""

    def many(s: str, p: NamedNode) -> list[str]:
        return sorted(o.value for o in props.get(s, {}).get(p.value, []) if isinstance(o, NamedNode))

    main = next((s for s, p in props.items() if VOID.uriSpace.value in p and DCAT.distribution.value in p), None)
    if main is None:
        return None
    view = VoidView(one(main, DCTERMS.title) or one(main, RDFS.label), one(main, DCTERMS.description))
    for label, p in (("Triples", VOID.triples), ("Entities", VOID.entities), ("Classes", VOID.classes),
                     ("Properties", VOID.properties), ("Newest export", DCTERMS.modified),
                     ("Built", DCTERMS.created), ("Records read", EPAR.recordsRead),
                     ("Records rejected", EPAR.recordsRejected), ("Warnings", EPAR.warnings),
                     ("Licence", DCTERMS.license), ("SPARQL endpoint", VOID.sparqlEndpoint)):
        if value := one(main, p):
            view.facts.append((label, value))
    for src in many(main, DCTERMS.source):
        view.sources.append(Row(one(src, RDFS.label) or src, {
            "format": one(src, DCTERMS.format), "date": one(src, DCTERMS.issued),
            "read": one(src, EPAR.recordsRead), "rejected": one(src, EPAR.recordsRejected),
            "warnings": one(src, EPAR.warnings)}, src))
    for dist in many(main, DCAT.distribution):
        view.downloads.append(Row(one(dist, RDFS.label) or dist, {
            "type": one(dist, DCAT.mediaType), "bytes": one(dist, DCAT.byteSize)}, one(dist, DCAT.downloadURL)))
    for sub in many(main, VOID.subset):
        view.subsets.append(Row(one(sub, RDFS.label) or one(sub, DCTERMS.title) or sub, {
            "triples": one(sub, VOID.triples), "target": one(one(sub, VOID.objectsTarget), DCTERMS.title)
            if one(sub, VOID.objectsTarget) else "",
            "description": one(sub, DCTERMS.description)}, sub))
    view.sources.sort(key=lambda r: (r.values["date"] == "", r.values["date"], r.label))
    return view
