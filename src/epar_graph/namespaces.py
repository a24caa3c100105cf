"""The one place where Python names RDF terms.

Every IRI the pipeline writes comes from here, so a typo fails at import time
instead of silently minting a new term, and ``tests/test_namespaces.py`` checks
that each ``epar:`` term listed here is declared in ``ontology/epar.ttl`` (and
the other way round).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pyoxigraph import NamedNode


class Vocabulary:
    """A closed set of terms under one namespace IRI.

    Attribute access returns a :class:`pyoxigraph.NamedNode`; an unknown name
    raises ``AttributeError`` rather than inventing an IRI.
    """

    def __init__(self, prefix: str, base: str, terms: Iterable[str]) -> None:
        self.prefix = prefix
        self.base = base
        self.terms: frozenset[str] = frozenset(terms)
        clash = self.terms & {"terms", "iri", "term", "_nodes"}
        if clash:
            raise ValueError(f"{prefix}: term names {sorted(clash)} clash with Vocabulary methods")
        self._nodes = {t: NamedNode(base + t) for t in self.terms}
        # Known terms become plain attributes (fast on hot paths); __getattr__ only
        # runs for unknown names, to refuse them. A term named like an attribute
        # (sh:prefix) is reached with term().
        self.__dict__.update({t: n for t, n in self._nodes.items() if t not in ("prefix", "base")})

    def term(self, name: str) -> NamedNode:
        """A term by name, also one whose name is an attribute of this object (``SH.term("prefix")``)."""
        try:
            return self._nodes[name]
        except KeyError:
            raise AttributeError(f"{self.prefix}:{name} is not a known term") from None

    def __getattr__(self, name: str) -> NamedNode:
        raise AttributeError(f"{self.prefix}:{name} is not a known term")

    def iri(self, name: str) -> str:
        """The IRI string of a term (checked)."""
        return self.term(name).value

    def __contains__(self, iri: object) -> bool:
        return isinstance(iri, str) and iri.startswith(self.base) and iri[len(self.base):] in self.terms


ONTOLOGY_IRI = "https://w3id.org/epar/ontology"
EPAR_NS = ONTOLOGY_IRI + "#"

EPAR_CLASSES = (
    "MedicinalProduct",
    "ActiveSubstance",
    "Organisation",
    "MarketingAuthorisation",
    "Document",
    "Procedure",
    "OrphanDesignation",
    "Snapshot",
    "Change",
)
EPAR_OBJECT_PROPERTIES = (
    "authorisation",
    "holder",
    "authorisationStatus",
    "procedure",
    "activeSubstance",
    "atcCode",
    "therapeuticArea",
    "pharmacotherapeuticGroup",
    "document",
    "documentSection",
    "documentType",
    "aboutProcedure",
    "overviewQuestion",
    "emaPage",
    "orphanDesignation",
    "designatedProduct",
    "orphanCondition",
    "sponsor",
    "category",
    "atcVetCode",
    "targetSpecies",
    "opinionStatus",
    "latestProcedure",
    "changeType",
    "changedProduct",
    "changedProperty",
    "fromSnapshot",
    "toSnapshot",
)
EPAR_DATATYPE_PROPERTIES = (
    "productNumber",
    "authorisationDate",
    "withdrawalDate",
    "refusalDate",
    "procedureNumber",
    "orphanDesignationDate",
    "isOrphan",
    "isGeneric",
    "isBiosimilar",
    "conditionalApproval",
    "exceptionalCircumstances",
    "therapeuticIndication",
    "revisionNumber",
    "commonName",
    "overviewSummary",
    "designationNumber",
    "designationDate",
    "recordsRead",
    "recordsAccepted",
    "recordsRejected",
    "warnings",
    "isAdvancedTherapy",
    "isPrime",
    "acceleratedAssessment",
    "additionalMonitoring",
    "patientSafety",
    "decisionDate",
    "rollingReviewStartDate",
    "evaluationStartDate",
    "opinionDate",
    "applicationWithdrawalDate",
    "suspensionDate",
    "firstPublished",
    "lastUpdated",
    "productNumberAsPublished",
    "atcCodeAsPublished",
    "effectiveDate",
)
#: Properties whose values are IRIs or literals alike (rdf:Property, range rdfs:Resource):
#: a change's old and new values, exactly as the graph has them.
EPAR_VALUE_PROPERTIES = (
    "oldValue",
    "newValue",
)

EPAR = Vocabulary(
    "epar", EPAR_NS, EPAR_CLASSES + EPAR_OBJECT_PROPERTIES + EPAR_DATATYPE_PROPERTIES + EPAR_VALUE_PROPERTIES
)

RDF = Vocabulary(
    "rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#", ["type", "Property", "first", "rest", "nil"]
)
RDFS = Vocabulary(
    "rdfs",
    "http://www.w3.org/2000/01/rdf-schema#",
    ["label", "comment", "subClassOf", "subPropertyOf", "domain", "range", "seeAlso", "Class"],
)
OWL = Vocabulary(
    "owl",
    "http://www.w3.org/2002/07/owl#",
    ["Ontology", "Class", "ObjectProperty", "DatatypeProperty", "versionInfo", "sameAs"],
)
XSD = Vocabulary(
    "xsd",
    "http://www.w3.org/2001/XMLSchema#",
    ["string", "date", "dateTime", "boolean", "integer", "anyURI", "decimal", "hexBinary"],
)
SKOS = Vocabulary(
    "skos",
    "http://www.w3.org/2004/02/skos/core#",
    [
        "Concept",
        "ConceptScheme",
        "prefLabel",
        "altLabel",
        "notation",
        "broader",
        "narrower",
        "inScheme",
        "hasTopConcept",
        "topConceptOf",
        "exactMatch",
        "closeMatch",
        "definition",
    ],
)
SCHEMA = Vocabulary(
    "schema",
    "https://schema.org/",
    [
        "Question",
        "Answer",
        "acceptedAnswer",
        "text",
        "name",
        "position",
        "PostalAddress",
        "address",
        "streetAddress",
        "postalCode",
        "addressLocality",
        "addressCountry",
        "Drug",
        "Organization",
        "DigitalDocument",
        "target",
        "keywords",
    ],
)
DCTERMS = Vocabulary(
    "dcterms",
    "http://purl.org/dc/terms/",
    [
        "title",
        "issued",
        "modified",
        "created",
        "source",
        "license",
        "description",
        "identifier",
        "publisher",
        "hasVersion",
        "conformsTo",
        "format",
    ],
)
VOID = Vocabulary(
    "void",
    "http://rdfs.org/ns/void#",
    [
        "Dataset",
        "Linkset",
        "triples",
        "entities",
        "distinctSubjects",
        "classes",
        "properties",
        "classPartition",
        "class",
        "dataDump",
        "sparqlEndpoint",
        "uriSpace",
        "vocabulary",
        "linkPredicate",
        "target",
        "subjectsTarget",
        "objectsTarget",
        "subset",
        "exampleResource",
        "rootResource",
    ],
)
DCAT = Vocabulary(
    "dcat",
    "http://www.w3.org/ns/dcat#",
    ["Dataset", "Distribution", "downloadURL", "mediaType", "byteSize", "accessURL", "distribution", "checksum"],
)
SPDX = Vocabulary(
    "spdx",
    "http://spdx.org/rdf/terms#",
    ["Checksum", "checksum", "algorithm", "checksumValue", "checksumAlgorithm_sha256"],
)
PROV = Vocabulary("prov", "http://www.w3.org/ns/prov#", ["wasDerivedFrom", "generatedAtTime"])

SH = Vocabulary(
    "sh",
    "http://www.w3.org/ns/shacl#",
    [
        "NodeShape",
        "PropertyShape",
        "targetClass",
        "targetNode",
        "targetSubjectsOf",
        "targetObjectsOf",
        "property",
        "path",
        "name",
        "description",
        "message",
        "severity",
        "order",
        "sparql",
        "select",
        "deactivated",
        "SPARQLExecutable",
        "SPARQLSelectExecutable",
        "SPARQLConstructExecutable",
        "SPARQLAskExecutable",
        "SPARQLDescribeExecutable",
        "construct",
        "ask",
        "describe",
        "declare",
        "PrefixDeclaration",
        "prefix",
        "namespace",
    ],
)

SD = Vocabulary(
    "sd",
    "http://www.w3.org/ns/sparql-service-description#",
    [
        "Service",
        "endpoint",
        "supportedLanguage",
        "SPARQL11Query",
        "resultFormat",
        "feature",
        "BasicFederatedQuery",
        "defaultDataset",
        "Dataset",
        "defaultGraph",
        "namedGraph",
        "NamedGraph",
        "Graph",
        "name",
        "graph",
    ],
)
FORMATS = Vocabulary(
    "formats",
    "http://www.w3.org/ns/formats/",
    [
        "SPARQL_Results_JSON",
        "SPARQL_Results_XML",
        "SPARQL_Results_CSV",
        "SPARQL_Results_TSV",
        "Turtle",
        "N-Triples",
        "JSON-LD",
        "RDF_XML",
    ],
)

ALL_VOCABULARIES = (EPAR, RDF, RDFS, OWL, XSD, SKOS, SCHEMA, DCTERMS, VOID, DCAT, SPDX, PROV, SH, SD, FORMATS)

PREFIXES: dict[str, str] = {v.prefix: v.base for v in ALL_VOCABULARIES}


def prefixed_name(
    iri: str, prefixes: Mapping[str, str] = PREFIXES, accept: Callable[[str], object] | None = None
) -> tuple[str, str] | None:
    """``(prefix, local name)`` of ``iri`` under the longest namespace of ``prefixes`` that it extends.

    The longest namespace wins so that ``epar:holder`` beats a shorter base that
    also fits (``https://w3id.org/epar/``). The local name is never empty, and
    ``accept`` (when given) can refuse one, so that the next longest namespace is
    tried: a report that must print valid CURIEs passes its grammar. None when no
    namespace fits. Every place that shortens an IRI (JSON-LD, reports, pages)
    calls this, so they all shorten the same way.
    """
    best: tuple[str, str] | None = None
    for prefix, namespace in prefixes.items():
        if (
            len(iri) > len(namespace)
            and iri.startswith(namespace)
            and (best is None or len(namespace) > len(prefixes[best[0]]))
            and (accept is None or accept(iri[len(namespace):]))
        ):
            best = (prefix, iri[len(namespace):])
    return best


def curie(iri: str, prefixes: Mapping[str, str] = PREFIXES) -> str:
    """``prefix:local`` for ``iri`` (see :func:`prefixed_name`), else the IRI itself."""
    name = prefixed_name(iri, prefixes)
    return iri if name is None else f"{name[0]}:{name[1]}"

EU_COUNTRY_BASE = "http://publications.europa.eu/resource/authority/country/"
