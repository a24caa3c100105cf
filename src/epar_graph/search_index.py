"""The search index of a release (``search.sqlite``): names people type, and the facts browse pages list.

Written with the release from the graph's own triples, so a result's label is
the label its page shows. One row per entity people look for (medicines,
organisations, substances, ATC codes, therapeutic areas, orphan conditions)
with the facts a list shows (status, category, holder, dates), and one
full-text row (SQLite FTS5, trigram tokenizer: any three letters of a word
match) per name it can be found by: its name, former names from the history,
INN, substances, product number, ATC codes. Typos are the server's business
(rapidfuzz over the same names); the index only has to hold them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from pyoxigraph import NamedNode, Triple

from epar_graph.history import Diff
from epar_graph.namespaces import EPAR, RDF, RDFS, SCHEMA, SKOS
from epar_graph.publish import LineObject, cut_line, split_line, term_object

INDEX_FILE = "search.sqlite"
SCHEMA_VERSION = "1"

#: Entity kinds, as the search filter and the reconciliation types name them.
MEDICINE, ORGANISATION, SUBSTANCE, ATC, AREA, CONDITION = (
    "medicine", "organisation", "substance", "atc", "therapeutic-area", "orphan-condition")
KINDS = (MEDICINE, ORGANISATION, SUBSTANCE, ATC, AREA, CONDITION)
#: Concept schemes whose concepts are searchable, by the kind they are.
_SCHEME_KINDS = {"atc": ATC, "atcvet": ATC, "therapeutic-area": AREA, "orphan-condition": CONDITION}
#: How much a match on each kind of name counts (a medicine found by its holder ranks low).
WEIGHTS = {"name": 1.0, "former name": 0.95, "number": 1.0, "inn": 0.9, "substance": 0.8, "code": 1.0,
           "atc": 0.6, "holder": 0.5, "area": 0.5}


@dataclass
class Entry:
    iri: str
    kind: str
    label: str
    terms: list[tuple[str, str]] = field(default_factory=list)  # (text, what it is)
    facts: dict[str, str] = field(default_factory=dict)


#: The properties the index reads: the lines of other properties are not even parsed.
READS = frozenset(p.value for p in (
    RDF.type, RDFS.label, SKOS.prefLabel, SKOS.altLabel, SKOS.notation, SKOS.inScheme, SCHEMA.name,
    EPAR.authorisation, EPAR.productNumber, EPAR.commonName, EPAR.activeSubstance, EPAR.atcCode,
    EPAR.atcVetCode, EPAR.therapeuticArea, EPAR.holder, EPAR.authorisationStatus, EPAR.category,
    EPAR.authorisationDate, EPAR.withdrawalDate,
))
_READS = frozenset(p.encode("utf-8") for p in READS)


def read_lines(lines: Iterable[bytes]) -> Iterator[tuple[str, str, LineObject]]:
    """The triples of N-Triples lines whose predicate the index reads, split (see :func:`publish.split_line`).

    A build's graph has well over a million lines and the index reads about a
    third of them: the predicate is looked up before the line is decoded.
    """
    for line in lines:
        parts = cut_line(line)
        if parts is None or parts[1] in _READS:  # a line of another shape is split, so it fails loudly
            yield split_line(line)


class Reading:
    """The triples the index reads, noted on their way to another consumer (the Turtle dump)."""

    def __init__(self) -> None:
        self.graph = _Graph(())
        #: each property the index reads, as one string shared by all its rows
        self._reads = {p: p for p in READS}

    def noting(self, triples: Iterable[Triple]) -> Iterator[Triple]:
        """Pass ``triples`` on, keeping those the index reads.

        The Turtle dump parses the N-Triples dump into triples anyway; the index
        notes what it needs on their way, rather than cutting every line a second time.
        """
        reads, add = self._reads, self.graph.add
        for t in triples:
            p = reads.get(t.predicate.value)
            if p is not None:
                add(cast(NamedNode, t.subject).value, p, term_object(t.object))  # no blank node, no quoted triple
            yield t

    def entries(self, former: Mapping[str, set[str]] | None = None) -> list[Entry]:
        """:func:`entries` of the triples noted."""
        return _entries(self.graph, former or {})


def former_names(diffs: Iterable[Diff]) -> dict[str, set[str]]:
    """Product number → the names the history says it had before."""
    former: dict[str, set[str]] = defaultdict(set)
    for d in diffs:
        for c in d.changes:
            if c.field == "name":
                former[c.product_number].update(str(v) for v in c.old)
    return dict(former)


def _is_iri(o: LineObject) -> bool:
    return o[0] == "@id"


class _Graph:
    """The triples the index reads, by subject, with the lookups it needs."""

    def __init__(self, triples: Iterable[tuple[str, str, LineObject]]) -> None:
        self.out: dict[str, dict[str, list[LineObject]]] = defaultdict(lambda: defaultdict(list))
        for s, p, o in triples:
            self.add(s, p, o)
        #: labels already looked up: holders, substances and areas are shared by many medicines
        self._labels: dict[str, str] = {}

    def add(self, s: str, p: str, o: LineObject) -> None:
        self.out[s][p].append(o)

    def objects(self, s: str, p: NamedNode) -> list[LineObject]:
        iri = p.value
        if iri not in READS:  # a property the reading skipped would look empty, not missing
            raise KeyError(f"{iri} is not among the properties the index reads (search_index.READS)")
        props = self.out.get(s)
        return props.get(iri, []) if props else []

    def one(self, s: str, p: NamedNode) -> str | None:
        """The least value (the same whatever the order of the lines)."""
        return min((o[1] for o in self.objects(s, p)), default=None)

    def label(self, s: str) -> str:
        known = self._labels.get(s)
        if known is None:
            known = self._labels[s] = self._label(s)
        return known

    def _label(self, s: str) -> str:
        for p in (RDFS.label, SKOS.prefLabel, SCHEMA.name, SKOS.notation):
            value = min((o[1] for o in self.objects(s, p) if not _is_iri(o)), default=None)
            if value is not None:
                return value
        return s.rsplit("/", 1)[-1]

    def iris(self, s: str, p: NamedNode) -> list[str]:
        return sorted(o[1] for o in self.objects(s, p) if _is_iri(o))


def entries(lines: Iterable[bytes], former: Mapping[str, set[str]] | None = None) -> list[Entry]:
    """The index rows of a release's N-Triples ``lines``: its searchable entities and the names each is found by.

    ``former`` names, by product number, what the history says a medicine was called before.
    """
    return _entries(_Graph(read_lines(lines)), former or {})


def _entries(g: _Graph, former: Mapping[str, set[str]]) -> list[Entry]:
    out: list[Entry] = []
    for s, props in sorted(g.out.items()):
        types = {o[1] for o in props.get(RDF.type.value, []) if _is_iri(o)}
        if EPAR.MedicinalProduct.value in types:
            out.append(_medicine(g, s, former))
        elif EPAR.Organisation.value in types:
            out.append(Entry(s, ORGANISATION, g.label(s), [(g.label(s), "name")]
                             + [(n, "name") for n in sorted(_texts(g, s, SKOS.altLabel))]))
        elif EPAR.ActiveSubstance.value in types:
            out.append(Entry(s, SUBSTANCE, g.label(s), [(g.label(s), "name")]))
        elif SKOS.Concept.value in types:
            scheme = (g.one(s, SKOS.inScheme) or "").rsplit("/", 1)[-1]
            kind = _SCHEME_KINDS.get(scheme)
            if kind is not None:
                label = g.label(s)
                code = g.one(s, SKOS.notation)
                terms = [(label, "name")] + ([(code, "code")] if code and code != label else [])
                out.append(Entry(s, kind, f"{code} {label}" if code and code != label else label, terms,
                                 {"code": code or ""}))
    return out


def _texts(g: _Graph, s: str, p: NamedNode) -> set[str]:
    return {o[1] for o in g.objects(s, p) if not _is_iri(o) and o[1]}


def _medicine(g: _Graph, s: str, former: Mapping[str, set[str]]) -> Entry:
    name = g.label(s)
    auth = g.one(s, EPAR.authorisation) or ""
    number = g.one(auth, EPAR.productNumber) or ""
    entry = Entry(s, MEDICINE, name, [(name, "name"), (number, "number")])
    entry.terms += [(n, "former name") for n in sorted(former.get(number, set()) - {name})]
    entry.terms += [(n, "inn") for n in sorted(_texts(g, s, EPAR.commonName))]
    entry.terms += [(g.label(x), "substance") for x in g.iris(s, EPAR.activeSubstance)]
    codes = [g.one(x, SKOS.notation) or g.label(x) for x in g.iris(s, EPAR.atcCode) + g.iris(s, EPAR.atcVetCode)]
    entry.terms += [(c, "atc") for c in codes]
    entry.terms += [(g.label(x), "area") for x in g.iris(s, EPAR.therapeuticArea)]
    holders = g.iris(auth, EPAR.holder)
    entry.terms += [(g.label(h), "holder") for h in holders]
    status = g.one(auth, EPAR.authorisationStatus)
    category = g.one(s, EPAR.category)
    entry.facts = {
        "number": number,
        "status": g.one(status, SKOS.notation) or "" if status else "",
        "category": g.label(category) if category else "",
        "atc": ";".join(codes),
        "holder": g.label(holders[0]) if holders else "",
        "holder_iri": holders[0] if holders else "",
        "authorised": g.one(auth, EPAR.authorisationDate) or "",
        "withdrawn": g.one(auth, EPAR.withdrawalDate) or "",
        "substances": "; ".join(g.label(x) for x in g.iris(s, EPAR.activeSubstance)),
    }
    return entry


_FACT_COLUMNS = ("number", "status", "category", "atc", "holder", "holder_iri", "authorised", "withdrawn",
                 "substances", "code")


def write_index(path: Path, rows: Iterable[Entry]) -> int:
    """Write ``search.sqlite`` at ``path`` (a new file); the number of entities."""
    db = sqlite3.connect(path)
    try:
        db.executescript(
            f"""
            PRAGMA journal_mode = OFF;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE entity (id INTEGER PRIMARY KEY, iri TEXT UNIQUE, kind TEXT, label TEXT, sort TEXT,
                                 {", ".join(f"{c} TEXT" for c in _FACT_COLUMNS)});
            CREATE INDEX entity_kind ON entity (kind, sort);
            CREATE INDEX entity_holder ON entity (holder_iri);
            CREATE TABLE name (entity INTEGER, text TEXT, what TEXT, weight REAL);
            CREATE VIRTUAL TABLE name_fts USING fts5(text, content='name', content_rowid='rowid',
                                                     tokenize='trigram');
            """
        )
        n = 0
        for e in rows:
            n += 1
            cur = db.execute(
                f"INSERT INTO entity (iri, kind, label, sort, {', '.join(_FACT_COLUMNS)}) "
                f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in _FACT_COLUMNS)})",
                (e.iri, e.kind, e.label, e.label.casefold(), *(e.facts.get(c, "") for c in _FACT_COLUMNS)),
            )
            seen: set[tuple[str, str]] = set()
            for text, what in e.terms:
                if text and (text.casefold(), what) not in seen:
                    seen.add((text.casefold(), what))
                    db.execute("INSERT INTO name (entity, text, what, weight) VALUES (?, ?, ?, ?)",
                               (cur.lastrowid, text, what, WEIGHTS.get(what, 0.5)))
        db.execute("INSERT INTO name_fts (name_fts) VALUES ('rebuild')")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", SCHEMA_VERSION), ("entities", str(n))])
        db.commit()
        return n
    finally:
        db.close()
