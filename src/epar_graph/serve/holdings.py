"""Which EMA exports the served release holds, and how old they are, read from its ``void.ttl``.

Every page says this (footer, home page), so a reader never mistakes an old
snapshot for EMA's current list. It is read from the release itself, never
written into a template, and read again when the release changes.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph
from pyoxigraph import Literal, NamedNode, RdfFormat

from epar_graph.namespaces import DCAT, DCTERMS, RDF, RDFS, VOID
from epar_graph.publish import holdings_text


@dataclass(frozen=True)
class Export:
    name: str
    date: dt.date


@dataclass(frozen=True)
class Holdings:
    """The release's EMA exports (oldest first) and how many other source files it read."""

    exports: tuple[Export, ...] = ()
    others: int = 0

    @property
    def newest(self) -> Export | None:
        return self.exports[-1] if self.exports else None

    def age_days(self, today: dt.date | None = None) -> int | None:
        newest = self.newest
        return None if newest is None else ((today or dt.date.today()) - newest.date).days

    def summary(self) -> str:
        """"EMA exports of 2017-02-13, … and 2026-03-14 plus 2 other source files"."""
        return holdings_text(sorted({e.date.isoformat() for e in self.exports}), self.others)


def read_holdings(void_file: Path) -> Holdings:
    """The holdings a ``void.ttl`` records; an absent or unreadable file holds nothing."""
    try:
        stat = void_file.stat()
    except OSError:
        return Holdings()
    return _cached(str(void_file), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> Holdings:
    del mtime_ns, size  # the cache key: a new release is read again
    try:
        quads = list(pyoxigraph.parse(path=path, format=RdfFormat.TURTLE))
    except (OSError, SyntaxError, ValueError):
        return Holdings()
    main = {q.subject for q in quads if q.predicate == VOID.uriSpace}  # the dataset, not its link sets
    sources = {
        q.object
        for q in quads
        if q.subject in main and q.predicate == DCTERMS.source and isinstance(q.object, NamedNode)
    }
    exports: list[Export] = []
    others = 0
    for src in sorted(sources, key=str):
        facts = [q for q in quads if q.subject == src]
        is_export = any(q.predicate == RDF.type and q.object == DCAT.Dataset for q in facts)
        labels = (q.object.value for q in facts if q.predicate == RDFS.label and isinstance(q.object, Literal))
        name = next(labels, src.value)
        issued = next((q.object.value for q in facts if q.predicate == DCTERMS.issued), None)
        if is_export and issued:
            try:
                exports.append(Export(name, dt.date.fromisoformat(issued)))
                continue
            except ValueError:
                pass
        others += 1
    return Holdings(tuple(sorted(exports, key=lambda e: (e.date, e.name))), others)
