"""HTTP content negotiation: which representation a client gets.

Clients of a SPARQL endpoint send anything from ``*/*`` to long weighted lists
(``application/sparql-results+json;q=0.9, */*;q=0.1``), so the ``Accept``
header is parsed properly (RFC 9110 §12.5.1): quoted parameters, q-values,
and the most specific matching range deciding an offer's weight. Malformed
elements are skipped rather than failing the request, because a sloppy client
should still get *something*.

Ties between offers of equal weight go to the one whose range the client listed
first, then to the server's preference order.

:class:`Format` is the one vocabulary of representation names: the endpoint,
the entity and vocabulary pages and the store all name formats by it, and the
short names users type (``?format=ttl``, a ``.nt`` suffix) map onto it here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_RANGE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*")
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*")
_QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
_SEPARATOR = re.compile(r"\s*,\s*")
# The rest of a malformed element, up to and including the next comma outside quotes.
_SKIP = re.compile(r'(?:[^",]++|"(?:[^"\\]++|\\.)*+(?:"|\Z))*+,?', re.S)
#: Media ranges read from one Accept header; later ones are ignored (browsers send fewer than ten).
MAX_RANGES = 64
#: Parameters read from one media range.
MAX_PARAMS = 16


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()
    q: float = 1.0

    def matches(self, media_type: str) -> int:
        """How specifically this range matches ``media_type``: 3/2/1, or 0 for no match."""
        mtype, _, msub = media_type.partition(";")[0].strip().lower().partition("/")
        if self.type == "*" and self.subtype == "*":
            return 1
        if self.type != mtype:
            return 0
        if self.subtype == "*":
            return 2
        return 3 if self.subtype == msub else 0


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in the client's order.

    An absent, empty or wholly malformed header means ``*/*`` (anything goes). Reading is linear in the
    header's length and stops after :data:`MAX_RANGES` ranges.
    """
    if header is None or not header.strip():
        return [MediaRange("*", "*")]
    ranges: list[MediaRange] = []
    pos = 0
    text = header
    for _ in range(4 * MAX_RANGES):  # elements looked at, malformed ones included
        if pos >= len(text) or len(ranges) >= MAX_RANGES:
            break
        element, pos = _parse_element(text, pos)
        if element is not None:
            ranges.append(element)
        sep = _SEPARATOR.match(text, pos)
        # after a malformed element, skip to the next comma outside quotes
        pos = sep.end() if sep and sep.end() > pos else _skip_to_comma(text, pos)
    return ranges or [MediaRange("*", "*")]


def _parse_element(text: str, pos: int) -> tuple[MediaRange | None, int]:
    m = _RANGE.match(text, pos)
    if not m:
        return None, pos
    mtype, msub = m.group(1).lower(), m.group(2).lower()
    if mtype == "*" and msub != "*":
        return None, m.end()
    pos = m.end()
    params: list[tuple[str, str]] = []
    q = 1.0
    seen_q = False
    for _ in range(MAX_PARAMS):
        p = _PARAM.match(text, pos)
        if not p:
            break
        pos = p.end()
        name, value = p.group(1).lower(), p.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if seen_q:
            continue  # accept-extensions after q carry no meaning for matching
        if name == "q":
            if not _QVALUE.fullmatch(value):
                return None, pos
            q = float(value)
            seen_q = True
        else:
            params.append((name, value))
    if pos < len(text) and text[pos] != ",":
        return None, pos
    return MediaRange(mtype, msub, tuple(params), q), pos


def _skip_to_comma(text: str, pos: int) -> int:
    m = _SKIP.match(text, pos)
    return max(m.end() if m else len(text), pos + 1)


def negotiate(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers, or None when every offer is unacceptable (q=0 or unmatched).

    ``offers`` are media types in the server's order of preference.
    """
    ranges = parse_accept(accept)
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for offer_index, offer in enumerate(offers):
        weight = _weight(ranges, offer)
        if weight is None or weight[0] <= 0:
            continue
        key = (weight[0], -weight[1], -offer_index)
        if best is None or key > best:
            best, chosen = key, offer
    return chosen


def _weight(ranges: Sequence[MediaRange], offer: str) -> tuple[float, int] | None:
    """(q, position in Accept) of the most specific range matching ``offer``."""
    found: tuple[int, int, MediaRange] | None = None
    for index, r in enumerate(ranges):
        spec = r.matches(offer)
        if spec and (found is None or spec > found[0]):
            found = (spec, index, r)
    if found is None:
        return None
    return found[2].q, found[1]


# --- format names -----------------------------------------------------------------------


class Format(StrEnum):
    """The name of each representation this server writes, the same in every module.

    The values are what the endpoint's ``format`` parameter takes and its
    documentation lists; :data:`URL_NAMES` gives the shorter names of links.
    """

    HTML = "html"
    TURTLE = "turtle"
    NTRIPLES = "ntriples"
    JSONLD = "jsonld"
    RDFXML = "rdfxml"


# --- SPARQL result formats --------------------------------------------------------------

#: Short names usable in the ``format`` parameter, for SELECT/ASK results.
RESULT_FORMATS: dict[str, str] = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
#: Media types of the RDF formats, for CONSTRUCT/DESCRIBE results and entity pages alike.
RDF_FORMATS: dict[Format, str] = {
    Format.TURTLE: "text/turtle",
    Format.NTRIPLES: "application/n-triples",
    Format.JSONLD: "application/ld+json",
    Format.RDFXML: "application/rdf+xml",
}
#: Every format's media type (an HTML page is ``text/html``).
MEDIA_TYPES: dict[Format, str] = {Format.HTML: "text/html", **RDF_FORMATS}
#: What a format is called in URLs: the path suffix (``.ttl``) and the ``?format=`` value links carry.
URL_NAMES: dict[Format, str] = {
    Format.HTML: "html",
    Format.TURTLE: "ttl",
    Format.JSONLD: "jsonld",
    Format.NTRIPLES: "nt",
    Format.RDFXML: "rdfxml",
}
#: How a format is titled where people choose one.
FORMAT_LABELS: dict[Format, str] = {
    Format.HTML: "HTML",
    Format.TURTLE: "Turtle",
    Format.JSONLD: "JSON-LD",
    Format.NTRIPLES: "N-Triples",
    Format.RDFXML: "RDF/XML",
}
#: ``format`` values naming a graph format: the names, the URL names, and ``json``/``xml``
#: (which mean JSON-LD and RDF/XML for a graph).
_FORMAT_VALUES: dict[str, Format] = {
    **{f.value: f for f in Format},
    **{name: f for f, name in URL_NAMES.items()},
    "json": Format.JSONLD,
    "xml": Format.RDFXML,
}


def format_named(value: str) -> Format | None:
    """The format a ``format`` value names (``ttl`` and ``turtle`` both mean Turtle), or None."""
    return _FORMAT_VALUES.get(value.strip().lower())

#: Media types offered for solutions and booleans, best first, with the format each one means.
RESULT_OFFERS: tuple[tuple[str, str], ...] = (
    ("application/sparql-results+json", "json"),
    ("application/sparql-results+xml", "xml"),
    ("text/csv", "csv"),
    ("text/tab-separated-values", "tsv"),
    ("application/json", "json"),
    ("application/xml", "xml"),
    ("text/xml", "xml"),
)
#: Media types offered for graphs, best first.
RDF_OFFERS: tuple[tuple[str, Format], ...] = (
    ("text/turtle", Format.TURTLE),
    ("application/n-triples", Format.NTRIPLES),
    ("application/ld+json", Format.JSONLD),
    ("application/rdf+xml", Format.RDFXML),
    ("application/x-turtle", Format.TURTLE),
    ("application/json", Format.JSONLD),
    ("text/plain", Format.NTRIPLES),
)


class UnknownFormat(ValueError):
    """The ``format`` parameter names no format this endpoint writes."""


#: A format's name: a :class:`Format` for graphs, a short name of :data:`RESULT_FORMATS` for results.
NameT = TypeVar("NameT", bound=str)


@dataclass(frozen=True)
class Choice(Generic[NameT]):
    """A format to write and the Content-Type to announce it with."""

    name: NameT
    media_type: str


def content_type(media_type: str) -> str:
    """``media_type`` with ``charset=utf-8`` added to textual types that need it."""
    if media_type.startswith("text/") and "charset" not in media_type:
        return media_type + "; charset=utf-8"
    return media_type


@functools.lru_cache(maxsize=512)
def choose_formats(
    accept: str | None, format_param: str | None
) -> tuple[Choice[str] | None, Choice[Format] | None]:
    """The format for SELECT/ASK results and the one for CONSTRUCT/DESCRIBE results.

    ``format_param`` (a short name or a media type) overrides ``Accept``. Either
    side may be None: the query kind decides later whether that is a 406.
    Remembered: a server sees the same few Accept headers over and over.
    """
    if format_param is not None:
        return _from_format_param(format_param.strip())
    return _pick(accept, RESULT_OFFERS), _pick(accept, RDF_OFFERS)


def _pick(accept: str | None, offers: Sequence[tuple[str, NameT]]) -> Choice[NameT] | None:
    chosen = negotiate(accept, [media for media, _ in offers])
    if chosen is None:
        return None
    name = dict(offers)[chosen]
    return Choice(name, content_type(chosen))


def _from_format_param(value: str) -> tuple[Choice[str] | None, Choice[Format] | None]:
    if "/" in value:  # a media type in the parameter: negotiate as if it were the Accept header
        element, end = _parse_element(value, 0)
        if element is None or end != len(value):  # no lenient fallback to */* here: the client named a type
            raise UnknownFormat(value)
        result, graph = _pick(value, RESULT_OFFERS), _pick(value, RDF_OFFERS)
        if result is None and graph is None:
            raise UnknownFormat(value)
        return result, graph
    name = value.lower()
    result = Choice(name, content_type(RESULT_FORMATS[name])) if name in RESULT_FORMATS else None
    rdf = format_named(name)
    graph = Choice(rdf, content_type(RDF_FORMATS[rdf])) if rdf in RDF_FORMATS else None
    if result is None and graph is None:
        raise UnknownFormat(value)
    return result, graph


def format_names() -> list[str]:
    """Every value the ``format`` parameter accepts by name (for error messages and docs)."""
    return [*RESULT_FORMATS, *(f.value for f in RDF_FORMATS)]
