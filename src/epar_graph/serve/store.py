"""The one small interface between the web layer and the triple store.

The server only talks to a :class:`SparqlStore`. The embedded
:class:`OxigraphStore` implements it today; a remote SPARQL 1.1 store (Oxigraph
server, Fuseki, Virtuoso, QLever) can implement the same four methods later
without touching the routers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import pyoxigraph

#: What a SPARQL query returns: solutions (SELECT), a boolean (ASK) or triples (CONSTRUCT/DESCRIBE).
QueryResult = pyoxigraph.QuerySolutions | pyoxigraph.QueryBoolean | pyoxigraph.QueryTriples


class QueryTimeout(Exception):
    """The query ran past its time limit and was stopped."""


class SparqlStore(Protocol):
    def query(
        self,
        sparql: str,
        *,
        timeout: float | None = None,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> QueryResult:
        """Run a read-only query; raise ``SyntaxError`` for a malformed one, QueryTimeout when too slow."""
        ...

    def describe(self, iri: str) -> list[pyoxigraph.Triple]:
        """Every triple whose subject is ``iri`` (empty when the IRI is unknown)."""
        ...

    def labels(self, iris: Iterable[str]) -> dict[str, str]:
        """An rdfs:label (or skos:prefLabel) for each IRI that has one, English preferred."""
        ...

    def triples(self) -> Iterator[pyoxigraph.Triple]:
        """All triples of the default graph (for dumps and tests)."""
        ...
