"""The Python vocabulary and the OWL ontology name the same ``epar:`` terms.

``namespaces.py`` is what the code writes; ``ontology/epar.ttl`` is what the
published graph promises. A term in one and not the other is either an
undocumented predicate in the data or a documented one nothing produces.
"""

from __future__ import annotations

import pytest
import rdflib
from rdflib.namespace import OWL, RDF

from epar_graph import config
from epar_graph.namespaces import (
    EPAR,
    EPAR_CLASSES,
    EPAR_DATATYPE_PROPERTIES,
    EPAR_NS,
    EPAR_OBJECT_PROPERTIES,
    EPAR_VALUE_PROPERTIES,
    ONTOLOGY_IRI,
    PREFIXES,
    curie,
    prefixed_name,
)

OWL_TYPE_OF_GROUP = {
    "class": (EPAR_CLASSES, OWL.Class),
    "object property": (EPAR_OBJECT_PROPERTIES, OWL.ObjectProperty),
    "datatype property": (EPAR_DATATYPE_PROPERTIES, OWL.DatatypeProperty),
    "value property": (EPAR_VALUE_PROPERTIES, RDF.Property),
}
DECLARATION_TYPES = (
    OWL.Class,
    OWL.ObjectProperty,
    OWL.DatatypeProperty,
    OWL.AnnotationProperty,
    RDF.Property,
)


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(config.ONTOLOGY_FILE, format="turtle")


def _epar_iris_in(graph: rdflib.Graph) -> set[str]:
    """Every IRI in the epar: namespace mentioned anywhere in the graph."""
    return {
        str(term)
        for triple in graph
        for term in triple
        if isinstance(term, rdflib.URIRef) and str(term).startswith(EPAR_NS)
    }


@pytest.mark.parametrize(
    ("group", "name"),
    [(group, name) for group, (names, _) in OWL_TYPE_OF_GROUP.items() for name in names],
)
def test_vocabulary_term_is_declared_with_its_owl_type(
    ontology: rdflib.Graph, group: str, name: str
) -> None:
    _, owl_type = OWL_TYPE_OF_GROUP[group]
    iri = rdflib.URIRef(EPAR.iri(name))
    assert (iri, RDF.type, owl_type) in ontology, f"epar:{name} is not declared as an OWL {group}"


def test_ontology_declares_no_term_missing_from_the_vocabulary(ontology: rdflib.Graph) -> None:
    declared = {
        str(s)
        for kind in DECLARATION_TYPES
        for s in ontology.subjects(RDF.type, kind)
        if str(s).startswith(EPAR_NS)
    }
    unknown = sorted(iri for iri in declared if iri not in EPAR)
    assert not unknown, f"declared in the ontology but not in namespaces.py: {unknown}"


def test_ontology_uses_only_declared_epar_terms(ontology: rdflib.Graph) -> None:
    used = _epar_iris_in(ontology)
    declared = {
        str(s) for kind in DECLARATION_TYPES for s in ontology.subjects(RDF.type, kind)
    }
    assert sorted(used - declared) == []


def test_each_term_has_exactly_one_kind() -> None:
    names = EPAR_CLASSES + EPAR_OBJECT_PROPERTIES + EPAR_DATATYPE_PROPERTIES + EPAR_VALUE_PROPERTIES
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []


def test_ontology_iri_is_the_namespace_without_its_hash(ontology: rdflib.Graph) -> None:
    assert EPAR_NS == ONTOLOGY_IRI + "#"
    assert (rdflib.URIRef(ONTOLOGY_IRI), RDF.type, OWL.Ontology) in ontology


def test_vocabulary_is_closed() -> None:
    with pytest.raises(AttributeError, match="epar:holdr is not a known term"):
        _ = EPAR.holdr
    assert EPAR.holder.value == EPAR_NS + "holder"
    assert EPAR_NS + "holder" in EPAR
    assert EPAR_NS + "holdr" not in EPAR


# -- shortening IRIs ------------------------------------------------------------------------


def test_curie_of_a_known_term() -> None:
    assert curie(EPAR_NS + "holder") == "epar:holder"
    assert curie("http://www.w3.org/2001/XMLSchema#date") == "xsd:date"


def test_curie_of_an_iri_with_no_known_prefix_is_the_iri() -> None:
    assert curie("https://example.org/thing") == "https://example.org/thing"
    assert prefixed_name("https://example.org/thing") is None


def test_a_namespace_alone_has_no_curie() -> None:
    """``epar:`` with an empty local name would read as the prefix, not a term."""
    assert curie(EPAR_NS) == EPAR_NS


def test_the_longest_namespace_wins_whatever_the_order() -> None:
    iri = EPAR_NS + "holder"
    for prefixes in ({"e": "https://w3id.org/epar/", "epar": EPAR_NS}, {"epar": EPAR_NS, "e": "https://w3id.org/epar/"}):
        assert prefixed_name(iri, prefixes) == ("epar", "holder")
    assert curie("https://w3id.org/epar/product/x", {"e": "https://w3id.org/epar/", "epar": EPAR_NS}) == "e:product/x"


def test_a_refused_local_name_falls_back_to_a_shorter_namespace() -> None:
    prefixes = {"a": "http://x.org/a/", "x": "http://x.org/"}
    assert prefixed_name("http://x.org/a/-b", prefixes) == ("a", "-b")
    assert prefixed_name("http://x.org/a/-b", prefixes, accept=lambda local: not local.startswith("-")) == ("x", "a/-b")
    assert prefixed_name("http://x.org/a/-b", prefixes, accept=lambda local: False) is None


def test_no_vocabulary_namespace_is_inside_another() -> None:
    """So the first vocabulary that fits is also the longest: JSON-LD terms and pages agree."""
    bases = list(PREFIXES.values())
    assert not [(a, b) for a in bases for b in bases if a != b and a.startswith(b)]
