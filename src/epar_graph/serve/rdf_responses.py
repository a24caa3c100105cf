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
from pyoxigraph import Literal, NamedNode, Triple

from epar_graph.namespaces import PREFIXES
from epar_graph.serve import negotiation
from epar_graph.serve.negotiation import Format
from epar_graph.serve.site_html import render_html
from epar_graph.serve.store import RDF_FORMATS

#: The formats an entity or vocabulary page answers in; HTML first, as its links list them.
PAGE_FORMATS: tuple[Format, ...] = (Format.HTML, Format.TURTLE, Format.JSONLD, Format.NTRIPLES)
#: The RDF representations a page links to as alternates.
RDF_PAGE_FORMATS: tuple[Format, ...] = PAGE_FORMATS[1:]
#: Spellings ``?format=`` takes on pages only: a page's JSON is JSON-LD.
_PAGE_SPELLINGS: dict[str, Format] = {"json-ld": Format.JSONLD, "n-triples": Format.NTRIPLES, "json": Format.JSONLD}
#: Media types we answer, in server preference order (HTML first, so ``*/*`` gets a page).
OFFERS: tuple[tuple[str, Format], ...] = (
    ("text/html", Format.HTML),
    ("application/xhtml+xml", Format.HTML),
    ("text/turtle", Format.TURTLE),
    ("application/x-turtle", Format.TURTLE),
    ("application/ld+json", Format.JSONLD),
    ("application/json", Format.JSONLD),
    ("application/n-triples", Format.NTRIPLES),
)
#: Path suffixes naming a format (``/product/X.ttl``): the URL names of :data:`PAGE_FORMATS`.
SUFFIXES: dict[str, Format] = {"." + negotiation.URL_NAMES[f]: f for f in PAGE_FORMATS}


class UnknownPageFormat(ValueError):
    """``?format=`` names no format the pages answer in (a 400, not a reason to send HTML)."""


def page_format_named(value: str) -> Format | None:
    """The page format a ``?format=`` value names (``ttl``, ``turtle``, ``json-ld``, …), or None."""
    wanted = value.strip().lower()
    fmt = _PAGE_SPELLINGS.get(wanted) or negotiation.format_named(wanted)
    return fmt if fmt in PAGE_FORMATS else None


def negotiate(accept: str | None) -> Format | None:
    """The format to answer with, or None when nothing offered is acceptable."""
    chosen = negotiation.negotiate(accept, [media for media, _ in OFFERS])
    return None if chosen is None else dict(OFFERS)[chosen]


def requested_format(request: Request, suffix_format: Format | None) -> Format | None:
    """``?format=`` beats a path suffix, which beats ``Accept``; None when nothing offered is acceptable.

    Raises :class:`UnknownPageFormat` for a ``?format=`` value no page answers in.
    """
    wanted = request.query_params.get("format")
    if wanted is not None:
        fmt = page_format_named(wanted)
        if fmt is None:
            raise UnknownPageFormat(wanted)
        return fmt
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


def serialize(triples: Iterable[Triple], fmt: Format) -> bytes:
    """Triples in one of the RDF formats (subjects sorted: stable output; Turtle with the prefixes it uses)."""
    ordered = sorted(set(triples), key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))
    prefixes = _used_prefixes(ordered) if fmt == Format.TURTLE else None
    data = pyoxigraph.serialize(ordered, format=RDF_FORMATS[fmt], prefixes=prefixes)
    assert data is not None
    return data


def _link_header(path: str, current: Format) -> str:
    """The ``Link`` header naming every other representation, so a client finds them without the page."""
    links = [
        f'<{path}?format={negotiation.URL_NAMES[f]}>; rel="alternate"; type="{negotiation.MEDIA_TYPES[f]}"'
        for f in PAGE_FORMATS
        if f != current
    ]
    return ", ".join(links)


def rdf_response(data: bytes, fmt: Format, path: str) -> Response:
    """An RDF answer that varies by ``Accept`` and links its alternates (JSON is UTF-8 by definition)."""
    media = negotiation.MEDIA_TYPES[fmt]
    charset = "" if fmt == Format.JSONLD else "; charset=utf-8"
    return Response(
        data,
        media_type=media + charset,
        headers={"Vary": "Accept", "Link": _link_header(path, fmt)},
    )


def not_found(request: Request, iri: str | None, fmt: Format | None) -> Response:
    """404 as a page for people, as plain text for RDF clients."""
    if fmt is not None and fmt != Format.HTML:
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
        f"Unknown format {request.query_params.get('format')!r}; use {_page_format_names()}\n",
        status_code=400,
        media_type="text/plain; charset=utf-8",
        headers={"Vary": "Accept"},
    )


def _page_format_names() -> str:
    """``html, ttl, jsonld or nt``: the ``?format=`` values a 400 suggests."""
    names = [negotiation.URL_NAMES[f] for f in PAGE_FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]


def alternates(path: str) -> list[dict[str, str]]:
    """The ``<link rel="alternate">`` entries of a page: its RDF representations, by ``?format=``."""
    return [
        {
            "label": negotiation.FORMAT_LABELS[f],
            "href": f"{path}?format={negotiation.URL_NAMES[f]}",
            "type": negotiation.MEDIA_TYPES[f],
        }
        for f in RDF_PAGE_FORMATS
    ]
