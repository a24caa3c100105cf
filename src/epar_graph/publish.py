"""Stage 5, publish: write a release directory (dumps, context, VoID/DCAT, rejections).

A release is written into a temporary sibling directory and swapped into place
only when complete, so a crash never leaves a half-written release: readers see
either the previous release or the new one.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gzip
import itertools
import json
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import pyoxigraph
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph.files import sha256_file
from epar_graph.graph import Lines
from epar_graph.iris import Minter
from epar_graph.model import ReadWarning, Rejection
from epar_graph.namespaces import (
    DCAT,
    DCTERMS,
    EPAR,
    ONTOLOGY_IRI,
    PREFIXES,
    RDF,
    RDFS,
    SPDX,
    VOID,
    XSD,
    curie,
    prefixed_name,
)

LICENCE = "https://creativecommons.org/licenses/by/4.0/"

MEDIA_TYPES = {
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".gz": "application/gzip",
    ".jsonld": "application/ld+json",
    ".csv": "text/csv",
}


@dataclass(frozen=True)
class SourceReport:
    """What one input file contributed: the counts that must add up."""

    path: Path
    format: str
    sha256: str
    date: dt.date | None
    read: int
    accepted: int
    rejected: int
    warnings: int = 0
    #: an EMA export (a dated snapshot of its whole list), and how its date was found
    snapshot: bool = False
    date_from: str | None = None


# -- serialisations --------------------------------------------------------


def sorted_ntriples(triples: Iterable[Triple]) -> bytes:
    """Canonical N-Triples, one line per triple, sorted: the same graph gives the same bytes."""
    data = pyoxigraph.serialize(triples, format=RdfFormat.N_TRIPLES)
    assert data is not None
    lines = sorted(set(data.splitlines(keepends=True)))
    return b"".join(lines)


def _subject(t: Triple) -> str:
    """The subject IRI (our graphs have neither blank nodes nor quoted triples)."""
    if not isinstance(t.subject, NamedNode):
        raise ValueError(f"unexpected subject {t.subject!r}")
    return t.subject.value


def _sort_key(t: Triple) -> tuple[str, str, str]:
    return (str(t.subject), str(t.predicate), str(t.object))


def in_ntriples_order(ntriples: bytes) -> list[Triple]:
    """Triples in the order of sorted N-Triples, so every dump lists them the same way.

    Parsing the already sorted bytes (in Rust) is far cheaper than sorting
    Python term objects again for each serialisation.
    """
    return [quad.triple for quad in pyoxigraph.parse(ntriples, format=RdfFormat.N_TRIPLES)]


def write_sorted_lines(path: Path, lines: Lines, gz: bool = False, batch: int = 100_000) -> None:
    """Write N-Triples ``lines`` sorted to ``path`` (gzipped if ``gz``), emptying them.

    The same bytes as :func:`sorted_ntriples` of their triples: sorting the
    strings sorts the UTF-8 bytes (code-point order is byte order, and no line
    is a prefix of another). Written a batch at a time, so the encoded copy is
    never whole in memory.
    """
    with open(path, "wb") as raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if gz else raw
        with out:
            chunk: list[bytes] = []
            for subject, rests in lines.drain_sorted():
                head = subject.encode("utf-8") + b" "  # lines encoded one by one: no wide string to encode
                chunk.extend([head + rest.encode("utf-8") for rest in rests])
                if len(chunk) >= batch:
                    out.write(b"\n".join(chunk) + b"\n")
                    chunk.clear()
            if chunk:
                out.write(b"\n".join(chunk) + b"\n")


def read_ntriples(path: Path) -> Iterator[Triple]:
    """The triples of an N-Triples file (gzipped or not), streamed."""
    with path.open("rb") as raw:
        f = cast(IO[bytes], gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw)
        for quad in pyoxigraph.parse(f, format=RdfFormat.N_TRIPLES):
            yield quad.triple


def read_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file (gzipped or not), streamed."""
    with path.open("rb") as raw:
        yield from cast(IO[bytes], gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw)


#: N-Triples escapes, as pyoxigraph writes them.
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_ESCAPED = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1] or m[2], 16)) if m[3] is None else _ESCAPED[m[3]], text)


#: An object of a line: ("@id", IRI) or (datatype IRI, lexical form) or ("@lang", lexical form, language).
LineObject = tuple[str, ...]


#: A line as pyoxigraph writes N-Triples: subject and predicate IRIs, then an IRI or a literal.
_LINE = re.compile(r'<([^>]*)> <([^>]*)> (?:<([^>]*)>|"(.*)"(?:@(\S+)|\^\^<([^>]*)>)?) \.\n?', re.S)


def cut_line(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(subject IRI, predicate IRI, object term) of an N-Triples line of the usual shape; None for another shape.

    The usual shape is what pyoxigraph writes for our graphs: ``<s> <p> object .``.
    An IRI holds no ">" or space, so the first "> <" ends the subject and the
    next "> " the predicate. Nothing is decoded: a caller that needs only the
    shape of a line (a count, a predicate to filter on) pays for no more.
    """
    cut = data.find(b"> <")
    after = data.find(b"> ", cut + 3)
    end = len(data) - (3 if data.endswith(b" .\n") else 2)
    if data.startswith(b"<") and cut > 0 and after > 0 and data.startswith(b" .", end):
        return data[1:cut], data[cut + 3:after], data[after + 2:end]
    return None


def split_line(data: bytes) -> tuple[str, str, LineObject]:
    """(subject IRI, predicate IRI, object) of an N-Triples line as pyoxigraph writes it (no blank nodes).

    Every dump is written from the lines, so this runs a few million times per
    build: a line of the usual shape is cut where :func:`cut_line` cuts it, on
    the decoded text (one decoding, not three: a tenth faster), and its object,
    often one shared by many lines (a type, a status), is read once. Any other
    shape gets the full reading.
    """
    text = data.decode("utf-8")
    end = len(text) - 1 if text.endswith("\n") else len(text)
    cut = text.find("> <")
    after = text.find("> ", cut + 3)
    if text.startswith("<") and cut > 0 and after > 0 and text.endswith(" .", 0, end):
        obj = _line_object(text[after + 2:end - 2])  # a language tag or datatype holds no quote
        if obj is not None:
            return text[1:cut], text[cut + 3:after], obj
    return _split_line_fully(text)


@functools.lru_cache(maxsize=65536)
def _line_object(text: str) -> LineObject | None:
    """The object of a line from its text, or ``None`` where the text is not of the usual shape."""
    if text.startswith("<") and text.endswith(">") and " " not in text:
        return ("@id", text[1:-1])
    close = text.rfind('"')
    if not text.startswith('"') or close < 1:
        return None
    value, tail = _unescape(text[1:close]), text[close + 1:]
    if not tail:
        return (XSD.string.value, value)
    if tail.startswith("@") and " " not in tail:
        return ("@lang", value, tail[1:])
    if tail.startswith("^^<") and tail.endswith(">") and " " not in tail:
        return (tail[3:-1], value)
    return None


def term_object(o: object) -> LineObject:
    """The object of a parsed triple as :func:`split_line` gives the object of its line."""
    if isinstance(o, NamedNode):
        return ("@id", o.value)
    if isinstance(o, Literal):
        return ("@lang", o.value, o.language) if o.language else (o.datatype.value, o.value)
    raise ValueError(f"unexpected object {o!r} in a release's graph")


def _split_line_fully(text: str) -> tuple[str, str, LineObject]:
    """:func:`split_line` by the full pattern of a line."""
    m = _LINE.fullmatch(text)
    if m is None:
        raise ValueError(f"unexpected N-Triples line {text!r}")
    s, p, iri, literal, lang, datatype = m.groups()
    if iri is not None:
        return s, p, ("@id", iri)
    literal = _unescape(literal)
    if lang is not None:
        return s, p, ("@lang", literal, lang)
    return s, p, (datatype or XSD.string.value, literal)


@dataclass
class GraphStats:
    """What the VoID description counts, gathered in one pass over the lines."""

    triples: int = 0
    subjects: list[str] = field(default_factory=list)
    predicates: set[str] = field(default_factory=set)
    classes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def stats_and_context(lines: Iterable[bytes]) -> tuple[GraphStats, dict[str, object]]:
    """The VoID counts and the JSON-LD context (as :func:`jsonld_context`) of sorted N-Triples lines.

    Only the shape of each line matters here (its subject, predicate, and the
    kind of its object), so the bytes are cut (:func:`cut_line`), not decoded and unescaped.
    """
    stats = GraphStats()
    tails: dict[bytes, set[bytes]] = defaultdict(set)  # predicate → what follows its objects' text
    classes: dict[bytes, set[str]] = defaultdict(set)
    rdf_type = RDF.type.value.encode("utf-8")
    last, subject = b"", ""
    for line in lines:
        parts = cut_line(line)
        if parts is None:  # every line of ours has the usual shape
            raise ValueError(f"unexpected N-Triples line {line!r}")
        s, p, obj = parts
        stats.triples += 1
        if s != last:  # the lines of one subject are contiguous
            last, subject = s, s.decode("utf-8")
            stats.subjects.append(subject)
        if obj.startswith(b"<"):
            if p == rdf_type:
                classes[obj[1:-1]].add(subject)
            else:
                tails[p].add(b"@id")
        else:
            tails[p].add(obj[obj.rfind(b'"') + 1:])
    kinds: dict[str, set[str]] = {p.decode("utf-8"): {_kind(t) for t in ts} for p, ts in tails.items()}
    stats.predicates = {p.decode("utf-8") for p in tails}
    if classes:
        stats.predicates.add(RDF.type.value)
    stats.classes.update((c.decode("utf-8"), members) for c, members in classes.items())
    return stats, _context(kinds, set(stats.classes))


def _kind(tail: bytes) -> str:
    """The kind of an object from what follows its text: "@id", "@lang" or the datatype IRI."""
    if tail in (b"@id", b""):
        return "@id" if tail else XSD.string.value
    if tail.startswith(b"@"):
        return "@lang"
    return tail[3:-1].decode("utf-8")  # ^^<datatype>


def jsonld_lines(lines: Iterable[bytes], context: dict[str, object]) -> Iterator[tuple[str, str]]:
    """(subject, JSON text of its node object) for sorted N-Triples lines, as :func:`compact_jsonld` makes them."""
    ctx = context["@context"]
    assert isinstance(ctx, dict)
    by_iri = _terms(ctx)
    rdf_type, xsd_string = RDF.type.value, XSD.string.value
    #: predicate → (its term, the @type its definition coerces to, that type expanded)
    plan: dict[str, tuple[str, object, str | None]] = {}
    for iri, (term, definition) in by_iri.items():
        coerced = definition.get("@type") if isinstance(definition, dict) else None
        plan[iri] = (term, coerced, _expand(str(coerced), ctx) if coerced else None)
    encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode  # json.dumps's own encoder
    for subject, group in itertools.groupby(map(split_line, lines), key=operator.itemgetter(0)):
        node: dict[str, list[object]] = defaultdict(list)
        for _, p, o in group:
            kind = o[0]
            if kind == "@id" and p == rdf_type:
                node["type"].append(by_iri[o[1]][0] if o[1] in by_iri else o[1])
                continue
            term, coerced, expanded = plan.get(p) or (p, None, None)
            value: object
            if kind == "@id":
                value = o[1] if coerced == "@id" else {"@id": o[1]}
            elif kind == "@lang":
                value = {"@value": o[1], "@language": o[2]}
            elif kind == xsd_string or coerced and expanded == kind:
                value = o[1]
            else:
                value = {"@value": o[1], "@type": kind}
            node[term].append(value)
        obj: dict[str, object] = {"id": subject}
        for key, values in sorted(node.items()):
            obj[key] = values[0] if len(values) == 1 else values
        yield subject, encode(obj)


def write_jsonld(path: Path, context: dict[str, object], nodes: Iterable[tuple[str, str]]) -> None:
    """The compact JSON-LD document, byte for byte as :func:`write_json` writes :func:`compact_jsonld`'s."""
    texts = dict(nodes)
    head = json.dumps({"@context": context["@context"]}, ensure_ascii=False)[:-1]
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + ', "@graph": [')
        for i, subject in enumerate(sorted(texts)):
            f.write(texts[subject] if i == 0 else ", " + texts[subject])
        f.write("]}\n")


def turtle(triples: Iterable[Triple], presorted: bool = False) -> bytes:
    ordered = triples if presorted else sorted(triples, key=_sort_key)
    data = pyoxigraph.serialize(ordered, format=RdfFormat.TURTLE, prefixes=PREFIXES)
    assert data is not None
    return data


def write_turtle(path: Path, triples: Iterable[Triple]) -> None:
    """The Turtle of sorted ``triples``, as :func:`turtle` makes it, streamed to ``path``.

    The file is created once the first triple is read: a source that cannot
    be read at all leaves nothing behind.
    """
    stream = iter(triples)
    first = next(stream, None)
    with open(path, "wb") as f:
        pyoxigraph.serialize(itertools.chain([first] if first is not None else [], stream), f, format=RdfFormat.TURTLE,
                             prefixes=PREFIXES)


def _term_name(iri: str) -> tuple[str, str]:
    """(prefix, local name) of a vocabulary IRI; KeyError for any other."""
    name = prefixed_name(iri)
    if name is None:
        raise KeyError(iri)
    return name


def jsonld_context(triples: Iterable[Triple]) -> dict[str, object]:
    """A JSON-LD context giving every predicate and class used a short, typed name.

    Local names are used as terms (``authorisationDate``); a local name used in
    two vocabularies is written as a CURIE instead. A property whose values are
    all IRIs is typed ``@id``; one whose values all share a datatype gets it.
    """
    kinds: dict[str, set[str]] = defaultdict(set)
    classes: set[str] = set()
    for t in triples:
        p = t.predicate.value
        o = t.object
        if p == RDF.type.value and isinstance(o, NamedNode):
            classes.add(o.value)
        elif isinstance(o, NamedNode):
            kinds[p].add("@id")
        elif isinstance(o, Literal):
            kinds[p].add("@lang" if o.language else o.datatype.value)
    return _context(kinds, classes)


def _context(kinds: dict[str, set[str]], classes: set[str]) -> dict[str, object]:
    """The context for these predicates (with the kinds of their values) and classes."""
    ctx: dict[str, object] = {prefix: base for prefix, base in sorted(PREFIXES.items())}
    ctx["type"] = "@type"
    ctx["id"] = "@id"
    names: dict[str, list[str]] = defaultdict(list)
    for iri in sorted(set(kinds) | classes):
        with contextlib.suppress(KeyError):
            names[_term_name(iri)[1]].append(iri)
    for local, owners in sorted(names.items()):
        if len(owners) != 1 or local in ctx:
            continue
        iri = owners[0]
        prefix, _ = _term_name(iri)
        short = f"{prefix}:{local}"
        kind = kinds.get(iri, set())
        if iri in classes or not kind:
            ctx[local] = short
        elif kind == {"@id"}:
            ctx[local] = {"@id": short, "@type": "@id"}
        elif len(kind) == 1 and kind != {"@lang"} and next(iter(kind)) != XSD.string.value:
            ctx[local] = {"@id": short, "@type": curie(next(iter(kind)))}
        else:
            ctx[local] = short
    return {"@context": ctx}


def compact_jsonld(
    triples: Iterable[Triple], context: dict[str, object], presorted: bool = False, as_processor: bool = False
) -> dict[str, object]:
    """Node objects grouped by subject, keyed by the context's terms.

    ``as_processor`` also writes what the context has no term for the way a
    JSON-LD processor compacts it (CURIEs, the context's aliases of ``@id``
    and ``@type``), so compacting the result again gives the same document:
    the entity pages' JSON-LD. The dump keeps full IRIs there.
    """
    ctx = context["@context"]
    assert isinstance(ctx, dict)
    by_iri = _terms(ctx)
    # a property the context does not name is written as a CURIE where a prefix fits, and
    # an IRI value with the context's alias of "@id": as a JSON-LD processor compacts them
    # (built namespace → prefix first, so that a namespace named twice keeps its last prefix)
    by_namespace = {str(v): k for k, v in ctx.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    prefixes = {k: v for v, k in by_namespace.items()} if as_processor else {}
    id_key = next((k for k, v in ctx.items() if v == "@id"), "@id") if as_processor else "@id"
    type_key = next((k for k, v in ctx.items() if v == "@type"), "@type") if as_processor else "@type"
    nodes: dict[str, dict[str, list[object]]] = defaultdict(lambda: defaultdict(list))
    for t in triples if presorted else sorted(triples, key=_sort_key):
        s = _subject(t)
        p = t.predicate.value
        o = t.object
        node = nodes[s]
        if p == RDF.type.value and isinstance(o, NamedNode):
            node["type"].append(by_iri[o.value][0] if o.value in by_iri else curie(o.value, prefixes))
            continue
        term, definition = by_iri.get(p) or (curie(p, prefixes), p)
        coerced = definition.get("@type") if isinstance(definition, dict) else None
        value: object
        if isinstance(o, NamedNode):
            iri = curie(o.value, prefixes)
            value = iri if coerced == "@id" else {id_key: iri}
        elif isinstance(o, Literal):
            if o.language:
                value = {"@value": o.value, "@language": o.language}
            elif o.datatype.value == XSD.string.value or coerced and _expand(str(coerced), ctx) == o.datatype.value:
                value = o.value
            else:
                value = {"@value": o.value, type_key: curie(o.datatype.value, prefixes)}
        else:  # pragma: no cover - the graph has no blank nodes
            raise ValueError(f"unexpected term {o!r}")
        node[term].append(value)
    graph = []
    for s in sorted(nodes):
        obj: dict[str, object] = {"id": s}
        for key, values in sorted(nodes[s].items()):
            obj[key] = values[0] if len(values) == 1 else values
        graph.append(obj)
    return {"@context": ctx, "@graph": graph}


def _terms(ctx: dict[str, object]) -> dict[str, tuple[str, dict[str, object] | str]]:
    """Full IRI → (term, definition) for the context's terms."""
    by_iri: dict[str, tuple[str, dict[str, object] | str]] = {}
    for term, definition in ctx.items():
        if isinstance(definition, dict) and term not in ("type", "id"):
            by_iri[_expand(str(definition["@id"]), ctx)] = (term, definition)
        elif isinstance(definition, str) and ":" in definition and not definition.startswith("http"):
            by_iri[_expand(definition, ctx)] = (term, definition)
    return by_iri


def _expand(curie: str, ctx: dict[str, object]) -> str:
    prefix, _, local = curie.partition(":")
    base = ctx.get(prefix)
    return base + local if isinstance(base, str) else curie


# -- VoID / DCAT -----------------------------------------------------------


def _lit_int(n: int) -> Literal:
    return Literal(str(n), datatype=XSD.integer)


def graph_stats(triples: Iterable[Triple]) -> GraphStats:
    """The VoID counts of a set of triples."""
    stats = GraphStats()
    subjects: set[str] = set()
    for t in triples:
        stats.triples += 1
        subjects.add(_subject(t))
        stats.predicates.add(t.predicate.value)
        if t.predicate == RDF.type and isinstance(t.object, NamedNode):
            stats.classes[t.object.value].add(_subject(t))
    stats.subjects = sorted(subjects)
    return stats


def void_triples(
    mint: Minter,
    triples: set[Triple] | GraphStats,
    sources: list[SourceReport],
    files: dict[str, Path],
    built: dt.datetime,
    extra: Iterable[Triple] = (),
) -> list[Triple]:
    """VoID + DCAT description of the release: counts, sources, dumps, licence.

    ``triples`` is the graph, or its :class:`GraphStats` when they were counted already.
    """
    ds = NamedNode(mint.dataset())
    out: list[Triple] = []

    def add(s: NamedNode, p: NamedNode, o: NamedNode | Literal) -> None:
        out.append(Triple(s, p, o))

    stats = triples if isinstance(triples, GraphStats) else graph_stats(triples)
    subjects, classes, predicates = stats.subjects, stats.classes, stats.predicates
    add(ds, RDF.type, VOID.Dataset)
    add(ds, RDF.type, DCAT.Dataset)
    add(ds, RDFS.label, Literal("epar-graph", language="en"))
    add(ds, DCTERMS.title, Literal("epar-graph: EMA European Public Assessment Reports as linked data", language="en"))
    add(ds, DCTERMS.description, Literal(
        "Medicines evaluated by the European Medicines Agency, human and veterinary (products, active "
        "substances, holders, marketing authorisations, documents, overview Q&A) as RDF. Source data: "
        f"European Medicines Agency; {holdings(sources)}.", language="en"))
    add(ds, DCTERMS.license, NamedNode(LICENCE))
    add(ds, DCTERMS.created, Literal(built.isoformat(timespec="seconds"), datatype=XSD.dateTime))
    add(ds, VOID.triples, _lit_int(stats.triples))
    add(ds, VOID.entities, _lit_int(sum(1 for s in subjects if mint.owns(s))))
    add(ds, VOID.distinctSubjects, _lit_int(len(subjects)))
    add(ds, VOID.classes, _lit_int(len(classes)))
    add(ds, VOID.properties, _lit_int(len(predicates)))
    add(ds, VOID.uriSpace, Literal(mint.base))
    add(ds, VOID.vocabulary, NamedNode(ONTOLOGY_IRI))
    add(ds, VOID.sparqlEndpoint, NamedNode(mint.sparql_endpoint()))
    for cls in sorted(classes):
        part = NamedNode(mint.dataset(f"class/{_term_name(cls)[1] if _known(cls) else len(cls)}"))
        add(ds, VOID.classPartition, part)
        add(part, getattr(VOID, "class"), NamedNode(cls))
        add(part, VOID.entities, _lit_int(len(classes[cls])))
    total_read = sum(s.read for s in sources)
    add(ds, EPAR.recordsRead, _lit_int(total_read))
    add(ds, EPAR.recordsAccepted, _lit_int(sum(s.accepted for s in sources)))
    add(ds, EPAR.recordsRejected, _lit_int(sum(s.rejected for s in sources)))
    add(ds, EPAR.warnings, _lit_int(sum(s.warnings for s in sources)))
    newest = max((s.date for s in sources if s.snapshot and s.date), default=None)
    if newest:
        add(ds, DCTERMS.modified, Literal(newest.isoformat(), datatype=XSD.date))
    for src in sources:
        node = NamedNode(mint.source(src.path.name))
        add(ds, DCTERMS.source, node)
        add(node, RDFS.label, Literal(src.path.name))
        add(node, DCTERMS.format, Literal(src.format))
        if src.date:
            add(node, DCTERMS.issued, Literal(src.date.isoformat(), datatype=XSD.date))
        add(node, EPAR.recordsRead, _lit_int(src.read))
        add(node, EPAR.recordsAccepted, _lit_int(src.accepted))
        add(node, EPAR.recordsRejected, _lit_int(src.rejected))
        add(node, EPAR.warnings, _lit_int(src.warnings))
        if src.snapshot:
            add(node, RDF.type, DCAT.Dataset)
        if src.date_from:
            add(node, RDFS.comment, Literal(f"date from the file's {src.date_from}", language="en"))
        _checksum(add, node, src.sha256)
    for name, path in sorted(files.items()):
        dist = NamedNode(mint.download(name))
        add(ds, DCAT.distribution, dist)
        if name.startswith("epar.nt") or name == "epar.ttl":
            add(ds, VOID.dataDump, dist)
        add(dist, RDF.type, DCAT.Distribution)
        add(dist, RDFS.label, Literal(name))
        add(dist, DCAT.downloadURL, dist)
        suffix = "".join(path.suffixes[-1:])
        add(dist, DCAT.mediaType, Literal(MEDIA_TYPES.get(suffix, "application/octet-stream")))
        add(dist, DCAT.byteSize, Literal(str(path.stat().st_size), datatype=XSD.decimal))
        add(dist, DCTERMS.license, NamedNode(LICENCE))
        _checksum(add, dist, sha256_file(path))
    out.extend(extra)
    return out


#: The history graph's dump and its subset of the dataset.
CHANGES_FILE = "changes.nt"


def history_void(
    mint: Minter, triples: int, counts: Mapping[str, int], snapshots: Sequence[dt.date]
) -> list[Triple]:
    """VoID of the history: a subset of the dataset with its size, snapshots and changes per type."""
    ds = NamedNode(mint.dataset())
    node = NamedNode(mint.dataset("changes"))
    dump = NamedNode(mint.download(CHANGES_FILE))
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    span = f" from {snapshots[0].isoformat()} to {snapshots[-1].isoformat()}" if snapshots else ""
    return [
        Triple(ds, VOID.subset, node),
        Triple(node, RDF.type, VOID.Dataset),
        Triple(node, RDFS.label, Literal("epar-graph history: changes between EMA's exports", language="en")),
        Triple(node, DCTERMS.description, Literal(
            f"Every difference in a medicine's facts between consecutive EMA exports ({len(snapshots)} snapshots"
            f"{span}), one epar:Change each: {kinds or 'none'}.", language="en")),
        Triple(node, VOID.triples, _lit_int(triples)),
        Triple(node, VOID.entities, _lit_int(sum(counts.values()))),
        Triple(node, VOID.dataDump, dump),
        Triple(node, VOID.vocabulary, NamedNode(ONTOLOGY_IRI)),
    ]


def holdings(sources: Iterable[SourceReport]) -> str:
    """Which EMA exports a release holds, in words: "EMA exports of 2017-02-13 and 2026-03-14"."""
    sources = list(sources)
    dates = sorted({s.date.isoformat() for s in sources if s.snapshot and s.date})
    return holdings_text(dates, sum(1 for s in sources if not (s.snapshot and s.date)))


def holdings_text(dates: Sequence[str], others: int) -> str:
    """The words for a release's holdings, shared by ``void.ttl`` and the pages that show them."""
    parts = []
    if dates:
        joined = dates[0] if len(dates) == 1 else ", ".join(dates[:-1]) + " and " + dates[-1]
        parts.append(f"EMA export{'s' if len(dates) > 1 else ''} of {joined}")
    if others:
        parts.append(f"{others} other source file{'s' if others > 1 else ''}")
    return " plus ".join(parts) or "no source files recorded"


def _known(iri: str) -> bool:
    try:
        _term_name(iri)
    except KeyError:
        return False
    return True


def _checksum(add: Callable[[NamedNode, NamedNode, NamedNode | Literal], None], node: NamedNode, digest: str) -> None:
    checksum = NamedNode(node.value + "#sha256")
    add(node, SPDX.checksum, checksum)
    add(checksum, RDF.type, SPDX.Checksum)
    add(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256)
    add(checksum, SPDX.checksumValue, Literal(digest, datatype=XSD.hexBinary))


def write_bytes(path: Path, data: bytes, gz: bool = False) -> None:
    if gz:
        # mtime=0 keeps the gzip bytes identical for identical input
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_rejections(path: Path, rejections: Sequence[Rejection | ReadWarning]) -> None:
    """The rejection (or warning) report: one row per record and field, as CSV."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "record", "field", "message"])
        for r in rejections:
            w.writerow([r.file, r.record, r.field, r.message])


def write_json(path: Path, obj: object, pretty: bool = True) -> None:
    """JSON as UTF-8; large documents are written compactly (the C encoder is much faster)."""
    text = json.dumps(obj, ensure_ascii=False, indent=1 if pretty else None)
    path.write_text(text + "\n", encoding="utf-8")
