"""The SPARQL 1.1 Service Description served at ``GET /sparql`` (no query).

https://www.w3.org/TR/sparql11-service-description/ — tells a client what the
endpoint speaks (SPARQL 1.1 Query, which result formats, whether federation is
on) and what it holds (the default dataset, its size, its named graphs, and a
link to the VoID description at ``/.well-known/void``), and the prefixes every
query may use undeclared, as SHACL prefix declarations (``sh:declare``, the way
UniProt's and SIB's endpoints publish theirs). The description has no
blank nodes: its nodes are fragment IRIs of the endpoint URL, so it can be
merged with other data without surprises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread
from fastapi import Request
from pyoxigraph import Literal, NamedNode, QuerySolutions, Triple

from epar_graph.namespaces import DCTERMS, FORMATS, RDF, RDFS, SD, SH, VOID, XSD
from epar_graph.serve.following import FollowingStore
from epar_graph.serve.negotiation import Format
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import (
    OxigraphStore,
    QueryFailed,
    QueryTimeout,
    SparqlStore,
    StoreInfo,
    serialize_triples,
)
from epar_graph.sparql_text import COMMON_PREFIXES

RESULT_FORMATS = (
    FORMATS.SPARQL_Results_JSON,
    FORMATS.SPARQL_Results_XML,
    FORMATS.SPARQL_Results_CSV,
    FORMATS.SPARQL_Results_TSV,
    FORMATS.Turtle,
    getattr(FORMATS, "N-Triples"),
    getattr(FORMATS, "JSON-LD"),
    FORMATS.RDF_XML,
)


@dataclass(frozen=True)
class Counts:
    """Triples in the default graph and in each named graph, as the description states them."""

    triples: int
    named_graphs: dict[str, int]


#: Seconds an engine's counts are reused: counting asks the engine to scan, so not on every request.
COUNTS_SECONDS = 300.0
_COUNT_DEFAULT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
_COUNT_NAMED = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


def counted(store: SparqlStore, timeout: float) -> Counts | None:
    """The counts of a store that records none (an engine behind ``serve --store``); None when it cannot say."""
    try:
        default = store.query(_COUNT_DEFAULT, timeout=timeout)
        named = store.query(_COUNT_NAMED, timeout=timeout)
    except (QueryFailed, QueryTimeout, SyntaxError, ValueError):
        return None
    if not isinstance(default, QuerySolutions) or not isinstance(named, QuerySolutions):
        return None
    rows = [(row["g"], row["n"]) for row in named]
    totals = [row["n"] for row in default]
    if len(totals) != 1 or not isinstance(totals[0], Literal):
        return None
    graphs = {g.value: int(n.value) for g, n in rows if isinstance(g, NamedNode) and isinstance(n, Literal)}
    return Counts(int(totals[0].value), graphs)


def description(endpoint: str, site: str, settings: Settings, info: Counts | None) -> list[Triple]:
    """The description of the endpoint at ``endpoint`` on the site rooted at ``site``."""
    service = NamedNode(endpoint)
    dataset = NamedNode(endpoint + "#dataset")
    default_graph = NamedNode(endpoint + "#default-graph")
    void_doc = NamedNode(site + ".well-known/void")
    triples = [
        Triple(service, RDF.type, SD.Service),
        Triple(service, SD.endpoint, service),
        Triple(service, SD.supportedLanguage, SD.SPARQL11Query),
        Triple(service, RDFS.label, Literal("EPAR knowledge graph SPARQL endpoint", language="en")),
        Triple(service, SD.defaultDataset, dataset),
        Triple(dataset, RDF.type, SD.Dataset),
        Triple(dataset, RDFS.seeAlso, void_doc),
        Triple(dataset, DCTERMS.title, Literal("EPAR knowledge graph", language="en")),
        Triple(dataset, SD.defaultGraph, default_graph),
        Triple(default_graph, RDF.type, SD.Graph),
    ]
    triples += [Triple(service, SD.resultFormat, fmt) for fmt in RESULT_FORMATS]
    if settings.service_allowlist:
        triples.append(Triple(service, SD.feature, SD.BasicFederatedQuery))
    triples += prefix_declarations(service, endpoint)
    if info is not None:
        triples.append(Triple(default_graph, VOID.triples, Literal(str(info.triples), datatype=XSD.integer)))
        for index, (iri, count) in enumerate(sorted(info.named_graphs.items())):
            named = NamedNode(f"{endpoint}#named-graph-{index + 1}")
            graph = NamedNode(f"{endpoint}#graph-{index + 1}")
            triples += [
                Triple(dataset, SD.namedGraph, named),
                Triple(named, RDF.type, SD.NamedGraph),
                Triple(named, SD.name, NamedNode(iri)),
                Triple(named, SD.graph, graph),
                Triple(graph, RDF.type, SD.Graph),
                Triple(graph, VOID.triples, Literal(str(count), datatype=XSD.integer)),
            ]
    return triples


def prefix_declarations(service: NamedNode, endpoint: str) -> list[Triple]:
    """The predefined prefixes, each a ``sh:PrefixDeclaration`` node named by a fragment of the endpoint."""
    triples: list[Triple] = []
    for prefix, namespace in COMMON_PREFIXES.items():
        node = NamedNode(f"{endpoint}#prefix-{prefix}")
        triples += [
            Triple(service, SH.declare, node),
            Triple(node, RDF.type, SH.PrefixDeclaration),
            Triple(node, SH.term("prefix"), Literal(prefix)),
            Triple(node, SH.namespace, Literal(namespace, datatype=XSD.anyURI)),
        ]
    return triples


async def counts_of(request: Request) -> Counts | None:
    """The embedded store's recorded counts, or an engine's, counted off the event loop and reused a while."""
    store = request.app.state.store
    if isinstance(store, (OxigraphStore, FollowingStore)):
        info: StoreInfo = store.info
        return Counts(info.triples, info.named_graphs)
    state = request.app.state
    kept: tuple[float, Counts | None] | None = getattr(state, "service_counts", None)
    if kept is None or time.monotonic() - kept[0] > COUNTS_SECONDS:
        timeout = min(request.app.state.settings.query_timeout, 30.0)
        kept = state.service_counts = (time.monotonic(), await anyio.to_thread.run_sync(counted, store, timeout))
    return kept[1]


async def render(request: Request, rdf_format: Format) -> bytes:
    """The description for the endpoint ``request`` reached, in one of the RDF formats."""
    endpoint = str(request.url.replace(query="", fragment=""))
    site = str(request.base_url)
    counts = await counts_of(request)
    return serialize_triples(description(endpoint, site, request.app.state.settings, counts), rdf_format)
