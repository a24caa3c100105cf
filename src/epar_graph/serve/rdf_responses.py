"""One resource, several representations: what entity and vocabulary pages answer besides the page.

A dereferenceable IRI (an entity, ``/ontology``, ``/shapes``) answers people
with HTML and machines with Turtle, JSON-LD or N-Triples, chosen by
``?format=``, a path suffix or ``Accept`` (q-values honoured). This module
decides which, writes the RDF answer with ``Link`` headers to the other
representations, and gives the 400/404/406 answers those pages share, so the
entity view and the vocabulary pages cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph
from fastapi import Request
from fastapi.responses import Response
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph.namespaces import PREFIXES
from epar_graph.serve import negotiation
from epar_graph.serve.site_html import render_html

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


def requested_format(request: Request, suffix_format: str | None) -> str | None:
    """``?format=`` beats a path suffix, which beats ``Accept``; '' means "unknown ?format"."""
    wanted = request.query_params.get("format")
    if wanted is not None:
        return FORMAT_NAMES.get(wanted.strip().lower(), "")
    if suffix_format:
        return suffix_format
    return negotiate(request.headers.get("accept"))


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


def _link_header(path: str, current: str) -> str:
    """The ``Link`` header naming every other representation, so a client finds them without the page."""
    links = [
        f'<{path}?format={name}>; rel="alternate"; type="{FORMATS[name][0]}"'
        for name in ("html", "ttl", "jsonld", "nt")
        if name != current
    ]
    return ", ".join(links)


def rdf_response(data: bytes, fmt: str, path: str) -> Response:
    """An RDF answer that varies by ``Accept`` and links its alternates (JSON is UTF-8 by definition)."""
    media = FORMATS[fmt][0]
    charset = "" if fmt == "jsonld" else "; charset=utf-8"
    return Response(
        data,
        media_type=media + charset,
        headers={"Vary": "Accept", "Link": _link_header(path, fmt)},
    )


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
    """406 listing what is offered, so a client can fix its ``Accept``."""
    offered = ", ".join(m for m, _ in OFFERS)
    return Response(
        f"None of the requested media types is available; offered: {offered}\n",
        status_code=406,
        media_type="text/plain; charset=utf-8",
        headers={"Vary": "Accept"},
    )


def bad_format(request: Request) -> Response:
    """400 naming the values ``?format=`` takes: an unknown one is a typo, not a reason for HTML."""
    return Response(
        f"Unknown format {request.query_params.get('format')!r}; use html, ttl, jsonld or nt\n",
        status_code=400,
        media_type="text/plain; charset=utf-8",
        headers={"Vary": "Accept"},
    )


def alternates(path: str) -> list[dict[str, str]]:
    """The ``<link rel="alternate">`` entries of a page: its RDF representations, by ``?format=``."""
    return [
        {"label": FORMAT_LABELS[name], "href": f"{path}?format={name}", "type": FORMATS[name][0]}
        for name in ("ttl", "jsonld", "nt")
    ]
