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

from fastapi import Request
from pyoxigraph import Literal, NamedNode, Triple

from epar_graph.namespaces import DCTERMS, FORMATS, RDF, RDFS, SD, SH, VOID, XSD
from epar_graph.serve.following import FollowingStore
from epar_graph.serve.negotiation import Format
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import OxigraphStore, StoreInfo, serialize_triples
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


def description(endpoint: str, site: str, settings: Settings, info: StoreInfo | None) -> list[Triple]:
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


def render(request: Request, rdf_format: Format) -> bytes:
    """The description for the endpoint ``request`` reached, in one of the RDF formats."""
    endpoint = str(request.url.replace(query="", fragment=""))
    site = str(request.base_url)
    store = request.app.state.store
    info = store.info if isinstance(store, (OxigraphStore, FollowingStore)) else None
    return serialize_triples(description(endpoint, site, request.app.state.settings, info), rdf_format)
