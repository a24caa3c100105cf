"""Quality checks on the ontology and the shapes, in the spirit of the OBO
ontology development kit's report: the files parse, the header says what,
which version and under which licence, every term is labelled, explained and
typed, labels are unique, and the shapes only speak of declared terms.
"""

from __future__ import annotations

from collections import Counter

import pytest
import rdflib
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SH, SKOS

from epar_graph import config
from epar_graph.namespaces import EPAR_NS, ONTOLOGY_IRI, SCHEMA

VANN = rdflib.Namespace("http://purl.org/vocab/vann/")
#: Plain strings: pytest inspects module attributes, and rdflib's closed XSD namespace warns then.
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
ONTOLOGY = rdflib.URIRef(ONTOLOGY_IRI)
PROPERTY_TYPES = (OWL.ObjectProperty, OWL.DatatypeProperty, RDF.Property)
#: Ranges outside the epar: namespace that the data graph's shape allows.
EXTERNAL_RANGES = {
    SKOS.Concept,
    RDF.Property,
    rdflib.URIRef(SCHEMA.Question.value),
    OWL.Thing,
    RDFS.Resource,
    RDF.langString,
    *(rdflib.URIRef(XSD_NS + name) for name in ("string", "date", "boolean", "integer")),
}
#: Domains outside the epar: namespace: release statistics describe VoID datasets.
EXTERNAL_DOMAINS = {rdflib.URIRef("http://rdfs.org/ns/void#Dataset")}


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(config.ONTOLOGY_FILE, format="turtle")


@pytest.fixture(scope="module")
def shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(config.SHAPES_FILE, format="turtle")


def _epar_terms(ontology: rdflib.Graph, *kinds: rdflib.URIRef) -> list[rdflib.URIRef]:
    kinds = kinds or (OWL.Class, *PROPERTY_TYPES)
    return sorted(
        {
            s
            for kind in kinds
            for s in ontology.subjects(RDF.type, kind)
            if isinstance(s, rdflib.URIRef) and str(s).startswith(EPAR_NS)
        }
    )


def _english(graph: rdflib.Graph, subject: rdflib.URIRef, predicate: rdflib.URIRef) -> list[str]:
    return [
        str(o)
        for o in graph.objects(subject, predicate)
        if isinstance(o, rdflib.Literal) and o.language == "en"
    ]


# --- header -----------------------------------------------------------------


def test_header_names_title_description_version_and_licence(ontology: rdflib.Graph) -> None:
    assert (ONTOLOGY, RDF.type, OWL.Ontology) in ontology
    assert _english(ontology, ONTOLOGY, DCTERMS.title)
    assert _english(ontology, ONTOLOGY, DCTERMS.description)
    version = ontology.value(ONTOLOGY, OWL.versionInfo)
    assert version is not None and str(version).count(".") == 2
    version_iri = ontology.value(ONTOLOGY, OWL.versionIRI)
    assert isinstance(version_iri, rdflib.URIRef) and str(version_iri).endswith(str(version))
    assert isinstance(ontology.value(ONTOLOGY, DCTERMS.license), rdflib.URIRef)
    assert ontology.value(ONTOLOGY, DCTERMS.creator) is not None
    assert ontology.value(ONTOLOGY, DCTERMS.publisher) is not None
    assert str(ontology.value(ONTOLOGY, VANN.preferredNamespacePrefix)) == "epar"


def test_there_is_exactly_one_ontology_header(ontology: rdflib.Graph) -> None:
    assert list(ontology.subjects(RDF.type, OWL.Ontology)) == [ONTOLOGY]


# --- terms ------------------------------------------------------------------


def test_ontology_has_classes_and_properties(ontology: rdflib.Graph) -> None:
    assert _epar_terms(ontology, OWL.Class)
    assert _epar_terms(ontology, OWL.ObjectProperty)
    assert _epar_terms(ontology, OWL.DatatypeProperty)


def test_every_term_has_one_english_label_and_a_comment(ontology: rdflib.Graph) -> None:
    problems = []
    for term in _epar_terms(ontology):
        if len(_english(ontology, term, RDFS.label)) != 1:
            problems.append(f"{term}: needs exactly one rdfs:label@en")
        if not _english(ontology, term, RDFS.comment):
            problems.append(f"{term}: needs an rdfs:comment@en")
    assert problems == []


def test_every_property_has_a_declared_domain_and_range(ontology: rdflib.Graph) -> None:
    classes = set(_epar_terms(ontology, OWL.Class))
    problems = []
    for prop in _epar_terms(ontology, *PROPERTY_TYPES):
        domains = list(ontology.objects(prop, RDFS.domain))
        ranges = list(ontology.objects(prop, RDFS.range))
        if len(domains) != 1 or (domains[0] not in classes and domains[0] not in EXTERNAL_DOMAINS):
            problems.append(f"{prop}: rdfs:domain {domains} is not one known class")
        if len(ranges) != 1 or (ranges[0] not in classes and ranges[0] not in EXTERNAL_RANGES):
            problems.append(f"{prop}: rdfs:range {ranges} is not a known class or datatype")
    assert problems == []


def test_datatype_properties_range_over_datatypes(ontology: rdflib.Graph) -> None:
    for prop in _epar_terms(ontology, OWL.DatatypeProperty):
        rng = ontology.value(prop, RDFS.range)
        assert rng is not None and (str(rng).startswith(XSD_NS) or rng == RDF.langString), prop


def test_object_properties_range_over_classes(ontology: rdflib.Graph) -> None:
    for prop in _epar_terms(ontology, OWL.ObjectProperty):
        rng = ontology.value(prop, RDFS.range)
        assert rng is not None and not str(rng).startswith(XSD_NS) and rng != RDF.langString, prop


def test_no_term_is_both_a_class_and_a_property(ontology: rdflib.Graph) -> None:
    classes = set(_epar_terms(ontology, OWL.Class))
    properties = set(_epar_terms(ontology, *PROPERTY_TYPES))
    assert classes & properties == set()
    both = set(_epar_terms(ontology, OWL.ObjectProperty)) & set(
        _epar_terms(ontology, OWL.DatatypeProperty)
    )
    assert both == set()


def test_labels_are_unique(ontology: rdflib.Graph) -> None:
    labels = Counter(
        label for term in _epar_terms(ontology) for label in _english(ontology, term, RDFS.label)
    )
    assert [label for label, n in labels.items() if n > 1] == []


def test_classes_are_aligned_to_external_vocabularies(ontology: rdflib.Graph) -> None:
    """Each class says what it corresponds to elsewhere (schema.org, FHIR, IDMP)."""
    for cls in _epar_terms(ontology, OWL.Class):
        anchors = [
            *ontology.objects(cls, RDFS.subClassOf),
            *ontology.objects(cls, SKOS.closeMatch),
            *ontology.objects(cls, SKOS.broadMatch),
            *ontology.objects(cls, SKOS.exactMatch),
        ]
        assert any(not str(a).startswith(EPAR_NS) for a in anchors), cls


def test_ontology_has_no_blank_nodes(ontology: rdflib.Graph) -> None:
    assert not any(isinstance(t, rdflib.BNode) for triple in ontology for t in triple)


# --- shapes -----------------------------------------------------------------


def _property_shapes(shapes: rdflib.Graph) -> list[rdflib.term.Node]:
    found = set(shapes.subjects(RDF.type, SH.PropertyShape)) | set(shapes.objects(None, SH.property))
    found |= set(shapes.subjects(SH.path, None))
    return sorted(found, key=str)


def test_shapes_file_has_shapes(shapes: rdflib.Graph) -> None:
    assert list(shapes.subjects(RDF.type, SH.NodeShape))
    assert _property_shapes(shapes)


def test_every_property_shape_has_a_message_and_severity(shapes: rdflib.Graph) -> None:
    problems = []
    for shape in _property_shapes(shapes):
        message = shapes.value(shape, SH.message)
        if not isinstance(message, rdflib.Literal) or not str(message).strip():
            problems.append(f"{shape}: no sh:message")
        # sh:Warning is for what EMA publishes but a careful record would not
        # (no holder, a status first seen in this export): the record stays.
        if shapes.value(shape, SH.severity) not in (SH.Violation, SH.Warning):
            problems.append(f"{shape}: sh:severity is neither sh:Violation nor sh:Warning")
        if shapes.value(shape, SH.path) is None:
            problems.append(f"{shape}: no sh:path")
    assert problems == []


def test_every_property_shape_belongs_to_a_node_shape(shapes: rdflib.Graph) -> None:
    orphans = [s for s in _property_shapes(shapes) if (None, SH.property, s) not in shapes]
    assert orphans == []


def test_shapes_use_only_declared_epar_terms(shapes: rdflib.Graph, ontology: rdflib.Graph) -> None:
    declared = set(_epar_terms(ontology))
    used = {
        t
        for triple in shapes
        for t in triple
        if isinstance(t, rdflib.URIRef) and str(t).startswith(EPAR_NS)
    }
    assert sorted(used - declared) == []


def test_every_epar_class_and_property_is_constrained(
    shapes: rdflib.Graph, ontology: rdflib.Graph
) -> None:
    targeted = set(shapes.objects(None, SH.targetClass))
    paths = set(shapes.objects(None, SH.path))
    assert [c for c in _epar_terms(ontology, OWL.Class) if c not in targeted] == []
    assert [p for p in _epar_terms(ontology, *PROPERTY_TYPES) if p not in paths] == []


def test_shape_targets_agree_with_property_domains(
    shapes: rdflib.Graph, ontology: rdflib.Graph
) -> None:
    """A property constrained on class C's node shape has rdfs:domain C in the ontology."""
    problems = []
    for node_shape in shapes.subjects(SH.targetClass, None):
        targets = set(shapes.objects(node_shape, SH.targetClass))
        for prop_shape in shapes.objects(node_shape, SH.property):
            path = shapes.value(prop_shape, SH.path)
            if not (isinstance(path, rdflib.URIRef) and str(path).startswith(EPAR_NS)):
                continue
            domain = ontology.value(path, RDFS.domain)
            if domain not in targets:
                problems.append(f"{prop_shape}: {path} has domain {domain}, shape targets {targets}")
    assert problems == []


def test_datatype_constraints_agree_with_property_ranges(
    shapes: rdflib.Graph, ontology: rdflib.Graph
) -> None:
    problems = []
    for prop_shape, datatype in shapes.subject_objects(SH.datatype):
        path = shapes.value(prop_shape, SH.path)
        if isinstance(path, rdflib.URIRef) and str(path).startswith(EPAR_NS):
            rng = ontology.value(path, RDFS.range)
            if rng != datatype:
                problems.append(f"{prop_shape}: sh:datatype {datatype} but rdfs:range {rng}")
    assert problems == []
