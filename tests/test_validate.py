"""SHACL validation: the shapes accept good data and every constraint can fire.

The central test breaks the valid fixture once per (shape, constraint) pair
of ``shapes/epar.shacl.ttl`` — delete the values for sh:minCount, add one for
sh:maxCount, give the wrong datatype, pattern, class, language, ... — and
checks that pySHACL reports exactly that shape and constraint. A constraint
that cannot fire protects nothing; a new kind of constraint fails
``test_every_constraint_kind_has_a_mutation`` until a mutation is added here.

Every mutation is also checked with the fast engine (SPARQL on pyoxigraph),
with pySHACL as the reference: the same results (focus node, path, value,
shape, constraint, severity, message), the same conformance and an isomorphic
results graph, nested ``sh:detail`` results included.
"""

from __future__ import annotations

import datetime as dt
import gc
import gzip
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Literal, URIRef
from rdflib.collection import Collection
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, SH

from epar_graph import config
from epar_graph.iris import Minter
from epar_graph.validate import (
    UnreadableInput,
    ValidationReport,
    load_rdf,
    render_json,
    render_junit,
    render_text,
    render_turtle,
    run_validate,
    validate_files,
    validate_graph,
)

DATA = Path(__file__).parent / "data" / "shapes"
VALID = DATA / "valid.ttl"
EPAR = "https://w3id.org/epar/ontology#"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
UNTYPED = URIRef("https://w3id.org/epar/untyped/thing")

#: Constraint parameter → the component pySHACL reports when it fails.
COMPONENTS: dict[URIRef, URIRef] = {
    SH.minCount: SH.MinCountConstraintComponent,
    SH.maxCount: SH.MaxCountConstraintComponent,
    SH.datatype: SH.DatatypeConstraintComponent,
    SH["class"]: SH.ClassConstraintComponent,
    SH.nodeKind: SH.NodeKindConstraintComponent,
    SH.pattern: SH.PatternConstraintComponent,
    SH.node: SH.NodeConstraintComponent,
    SH.hasValue: SH.HasValueConstraintComponent,
    SH.languageIn: SH.LanguageInConstraintComponent,
    SH.uniqueLang: SH.UniqueLangConstraintComponent,
    SH.lessThanOrEquals: SH.LessThanOrEqualsConstraintComponent,
    SH.minInclusive: SH.MinInclusiveConstraintComponent,
    SH["in"]: SH.InConstraintComponent,
}
#: Shape predicates that are not constraints.
NOT_CONSTRAINTS = {
    RDF.type,
    rdflib.RDFS.label,
    rdflib.RDFS.comment,
    SH.path,
    SH.message,
    SH.severity,
    SH.property,
    SH.targetClass,
    SH.targetSubjectsOf,
    SH.targetObjectsOf,
    SH.targetNode,
    SH.name,
    SH.description,
    SH.order,
}


def _shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(config.SHAPES_FILE, format="turtle")


SHAPES = _shapes()


@dataclass(frozen=True)
class Constraint:
    shape: URIRef
    parameter: URIRef

    @property
    def component(self) -> URIRef | None:
        return COMPONENTS.get(self.parameter)

    def __str__(self) -> str:
        name = str(self.shape).rsplit("#", 1)[-1]
        return f"{name}/{str(self.parameter).rsplit('#', 1)[-1]}"


def _constraints(shapes: rdflib.Graph) -> list[Constraint]:
    found = set()
    for kind in (SH.NodeShape, SH.PropertyShape):
        for shape in shapes.subjects(RDF.type, kind):
            assert isinstance(shape, URIRef), f"anonymous shape {shape}: name every shape"
            for parameter in shapes.predicates(shape, None):
                if parameter not in NOT_CONSTRAINTS:
                    assert isinstance(parameter, URIRef)
                    found.add(Constraint(shape, parameter))
    return sorted(found, key=str)


CONSTRAINTS = _constraints(SHAPES)


# --- graph helpers -------------------------------------------------------------


_FIXTURE = rdflib.Graph().parse(VALID, format="turtle")


def _fixture() -> rdflib.Graph:
    """A fresh copy of the valid fixture (parsed once: the mutation tests need ~150 copies)."""
    g = rdflib.Graph()
    for triple in _FIXTURE:
        g.add(triple)
    return g


def _predicates(path: rdflib.term.Node) -> list[URIRef]:
    """The predicates a (simple or alternative) SHACL path reads."""
    if isinstance(path, URIRef):
        return [path]
    alternatives = SHAPES.value(path, SH.alternativePath)
    if alternatives is None:
        raise NotImplementedError(f"no mutation for SHACL path {path}")
    return [p for p in Collection(SHAPES, alternatives) if isinstance(p, URIRef)]


def _values(g: rdflib.Graph, focus: rdflib.term.Node, path: rdflib.term.Node) -> list:
    return sorted({o for p in _predicates(path) for o in g.objects(focus, p)}, key=str)


def _set(g: rdflib.Graph, focus: rdflib.term.Node, path: rdflib.term.Node, values: list) -> None:
    for p in _predicates(path):
        g.remove((focus, p, None))
    for v in values:
        g.add((focus, _predicates(path)[0], v))


def _focus_nodes(g: rdflib.Graph, shape: rdflib.term.Node) -> list:
    """Nodes of ``g`` that ``shape`` (a node or property shape) is applied to."""
    owners = list(SHAPES.subjects(SH.property, shape)) or [shape]
    nodes: set = set()
    for owner in owners:
        for cls in SHAPES.objects(owner, SH.targetClass):
            nodes.update(g.subjects(RDF.type, cls))
        for prop in SHAPES.objects(owner, SH.targetSubjectsOf):
            nodes.update(g.subjects(prop, None))
        for referrer in SHAPES.subjects(SH.node, owner):  # reached through sh:node
            path = SHAPES.value(referrer, SH.path)
            for focus in _focus_nodes(g, referrer):
                nodes.update(_values(g, focus, path))
    return sorted(nodes, key=str)


def _variant(g: rdflib.Graph, value: rdflib.term.Node) -> rdflib.term.Node:
    """A second valid-looking value, different from ``value``."""
    if isinstance(value, URIRef):
        clone = URIRef(f"{value}-variant")
        for p, o in g.predicate_objects(value):
            g.add((clone, p, o))
        return clone
    assert isinstance(value, Literal)
    py = value.toPython()
    if isinstance(py, bool):
        return Literal(not py)
    if isinstance(py, dt.date):
        return Literal(py + dt.timedelta(days=1))
    if isinstance(py, int):
        return Literal(py + 1, datatype=value.datatype)
    return Literal(f"{value} (variant)", lang=value.language, datatype=value.datatype)


def _greater(value: Literal) -> Literal:
    py = value.toPython()
    if isinstance(py, dt.date):
        return Literal(py + dt.timedelta(days=1))
    if isinstance(py, int):
        return Literal(py + 1, datatype=value.datatype)
    raise NotImplementedError(f"no greater value for {value!r}")


def _other_of_same_type(g: rdflib.Graph, node: rdflib.term.Node) -> rdflib.term.Node:
    """Another existing node of the same class, so only the value itself is wrong."""
    for cls in g.objects(node, RDF.type):
        for other in sorted(g.subjects(RDF.type, cls), key=str):
            if other != node:
                return other
    return UNTYPED


def _break_node(g: rdflib.Graph, node_shape: rdflib.term.Node, value: rdflib.term.Node) -> None:
    """Make ``value`` fail ``node_shape`` (the concept-scheme membership shapes)."""
    for prop_shape in SHAPES.objects(node_shape, SH.property):
        expected = SHAPES.value(prop_shape, SH.hasValue)
        if expected is None:
            raise NotImplementedError(f"no mutation breaks {node_shape} via {prop_shape}")
        path = SHAPES.value(prop_shape, SH.path)
        _set(g, value, path, [_other_of_same_type(g, expected)])


def _mutate(g: rdflib.Graph, c: Constraint, focus: rdflib.term.Node) -> None:
    """Change ``g`` so that ``focus`` breaks constraint ``c``."""
    path = SHAPES.value(c.shape, SH.path)
    arg = SHAPES.value(c.shape, c.parameter)
    values = _values(g, focus, path)
    first = values[0] if values else None
    p = c.parameter
    if p == SH.minCount:
        _set(g, focus, path, [])
    elif p == SH.maxCount:
        _set(g, focus, path, [*values, _variant(g, first)])
    elif p == SH.datatype:
        wrong = Literal(str(first), lang="en") if arg == URIRef(XSD_NS + "string") else Literal(str(first))
        _set(g, focus, path, [wrong])
    elif p == SH["class"]:
        _set(g, focus, path, [UNTYPED])
    elif p == SH.nodeKind:
        if arg == SH.IRIOrLiteral:
            _set(g, focus, path, [rdflib.BNode("neither")])
        else:
            _set(g, focus, path, [Literal("not an IRI")] if arg == SH.IRI else [UNTYPED])
    elif p == SH.pattern:
        wrong = (
            URIRef("https://example.org/no-match")
            if isinstance(first, URIRef)
            else Literal("no match", datatype=first.datatype, lang=first.language)
        )
        _set(g, focus, path, [wrong])
    elif p == SH.node:
        _break_node(g, arg, first)
    elif p == SH.hasValue:
        _set(g, focus, path, [_other_of_same_type(g, arg)])
    elif p == SH.languageIn:
        _set(g, focus, path, [Literal(str(first), lang="xx")])
    elif p == SH.uniqueLang:
        _set(g, focus, path, [*values, Literal(f"{first} (variant)", lang=first.language)])
    elif p == SH.lessThanOrEquals:
        _set(g, focus, path, [_greater(g.value(focus, arg))])
    elif p == SH.minInclusive:
        _set(g, focus, path, [Literal(arg.toPython() - 1, datatype=arg.datatype)])
    elif p == SH["in"]:
        _set(g, focus, path, [_variant(g, first)])  # same kind of value, not one listed
    else:
        raise NotImplementedError(f"no mutation for {p}")


def _candidates(g: rdflib.Graph, c: Constraint) -> list:
    """Focus nodes where ``c`` can be broken: they have the values the mutation changes."""
    path = SHAPES.value(c.shape, SH.path)
    nodes = [f for f in _focus_nodes(g, c.shape) if _values(g, f, path)]
    if c.parameter == SH.lessThanOrEquals:
        other = SHAPES.value(c.shape, c.parameter)
        nodes = [f for f in nodes if g.value(f, other) is not None]
    if c.parameter == SH.uniqueLang:
        nodes = [f for f in nodes if any(getattr(v, "language", None) for v in _values(g, f, path))]
    return nodes


def _fired(report: ValidationReport) -> set[tuple[rdflib.term.Node, rdflib.term.Node]]:
    """(source shape, component) of every result, nested ``sh:detail`` results included."""
    results = report.results_graph
    return {
        (shape, results.value(r, SH.sourceConstraintComponent))
        for r, shape in results.subject_objects(SH.sourceShape)
    }


def _blank_values_alike(violations: list) -> list:
    """Violations with blank-node values made alike: each engine names blank nodes its own way."""
    import dataclasses

    def alike(v: object) -> object:
        value = getattr(v, "value", None)
        if value is not None and not value.startswith(("<", '"')):
            return dataclasses.replace(v, value="_:blank")  # type: ignore[type-var]
        return v

    return [alike(v) for v in violations]


def _on_both_engines(g: rdflib.Graph, mint: Minter | None = None) -> ValidationReport:
    """pySHACL's report on ``g``, after checking that the fast engine gives exactly the same."""
    reference = validate_graph(g, engine="pyshacl", mint=mint)
    fast = validate_graph(g, engine="fast", mint=mint)
    assert reference.engine == "pyshacl"
    assert fast.engine == "fast", "the fast engine handed over to pySHACL"
    assert _blank_values_alike(fast.violations) == _blank_values_alike(reference.violations)
    assert fast.conforms is reference.conforms
    assert fast.triples == reference.triples
    assert fast.shapes == reference.shapes
    assert _fired(fast) == _fired(reference)
    assert isomorphic(fast.results_graph, reference.results_graph)
    return reference


def _related(shape: URIRef) -> set[str]:
    """The shape, the sh:node constraints through which it is checked, and the
    shapes that compare their values with its path (sh:lessThanOrEquals) or
    read the same path."""
    related = {str(shape)}
    path = SHAPES.value(shape, SH.path)
    for owner in SHAPES.subjects(SH.property, shape):
        related.update(str(r) for r in SHAPES.subjects(SH.node, owner))
        for sibling in SHAPES.objects(owner, SH.property):
            if (sibling, SH.lessThanOrEquals, path) in SHAPES or (sibling, SH.path, path) in SHAPES:
                related.add(str(sibling))  # compares with, or sees the same values as, this shape
    return related


# --- the valid fixture --------------------------------------------------------


def test_valid_fixture_conforms() -> None:
    report = _on_both_engines(_fixture())
    assert report.violations == []
    assert report.conforms
    assert report.triples == len(_fixture())


def test_every_constraint_kind_has_a_mutation() -> None:
    unknown = sorted(str(c) for c in CONSTRAINTS if c.component is None)
    assert unknown == [], "add a mutation to tests/test_validate.py for these constraints"


def test_fixture_exercises_every_property_shape() -> None:
    """Each constraint needs a value in the fixture to break; extend valid.ttl if this fails."""
    g = _fixture()
    missing = [str(c) for c in CONSTRAINTS if c.component is not None and not _candidates(g, c)]
    assert missing == []


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=str)
def test_constraint_fires(constraint: Constraint) -> None:
    tried = []
    for focus in _candidates(_FIXTURE, constraint)[:4]:
        g = _fixture()
        _mutate(g, constraint, focus)
        report = _on_both_engines(g)
        fired = _fired(report)
        shapes = {v.shape for v in report.violations}
        tried.append((focus, sorted(str(s) for s in shapes)))
        if (constraint.shape, constraint.component) in fired and shapes <= _related(constraint.shape):
            severity = SHAPES.value(constraint.shape, SH.severity)
            results = report.results_graph
            mine = {results.value(r, SH.resultSeverity) for r in results.subjects(SH.sourceShape, constraint.shape)}
            assert mine == {severity}
            # Only a violation makes data non-conforming; a warning is reported, no more.
            assert report.conforms is (severity == SH.Warning)
            return
    pytest.fail(f"no mutation made only {constraint} fire; tried {tried}")


def test_every_shape_constraint_is_covered_by_a_test() -> None:
    """The parametrised test above runs once per (shape, constraint) pair of the shapes file."""
    pairs = {
        (shape, parameter)
        for shape in set(SHAPES.subjects(RDF.type, SH.PropertyShape))
        | set(SHAPES.subjects(RDF.type, SH.NodeShape))
        for parameter in SHAPES.predicates(shape, None)
        if parameter not in NOT_CONSTRAINTS
    }
    assert pairs == {(c.shape, c.parameter) for c in CONSTRAINTS}
    assert len(pairs) > 50


def test_shapes_follow_the_base_the_data_was_minted_under() -> None:
    """A build minted under another base validates: the scheme IRIs in the shapes move with it."""
    base = "http://example.org/epar/"

    def rebase(term: rdflib.term.Node) -> rdflib.term.Node:
        text = str(term)
        if (
            isinstance(term, URIRef)
            and text.startswith(config.DEFAULT_BASE)
            and not text.startswith(EPAR)  # the ontology keeps its IRI
        ):
            return URIRef(base + text[len(config.DEFAULT_BASE):])
        return term

    g = rdflib.Graph()
    for s, p, o in _FIXTURE:
        g.add((rebase(s), p, rebase(o)))
    assert _on_both_engines(g, Minter(base)).violations == []
    report = _on_both_engines(g)
    # Under the default base the concepts are in no known scheme, and no status is a known one.
    assert {(v.constraint, v.severity) for v in report.violations} == {
        (str(SH.NodeConstraintComponent), "Violation"),
        (str(SH.InConstraintComponent), "Warning"),
    }


# --- report content -----------------------------------------------------------


def _broken() -> rdflib.Graph:
    """The fixture with two faults: a malformed product number and a late authorisation date."""
    g = _fixture()
    auth = URIRef("https://w3id.org/epar/authorisation/EMEA-H-C-004258")
    g.set((auth, URIRef(EPAR + "productNumber"), Literal('EMEA/H/C/<4258> & "x"\x01')))
    g.set((auth, URIRef(EPAR + "authorisationDate"), Literal(dt.date(2025, 1, 1))))
    return g


@pytest.fixture(scope="module")
def broken_report() -> ValidationReport:
    return _on_both_engines(_broken())


def test_violations_name_focus_path_value_shape_and_message(broken_report: ValidationReport) -> None:
    assert not broken_report.conforms
    by_shape = {v.shape.rsplit("#", 1)[-1]: v for v in broken_report.violations}
    assert set(by_shape) == {
        "MarketingAuthorisation-productNumber",
        "MarketingAuthorisation-authorisationDate",
    }
    number = by_shape["MarketingAuthorisation-productNumber"]
    assert number.focus_node == "https://w3id.org/epar/authorisation/EMEA-H-C-004258"
    assert number.path == EPAR + "productNumber"
    assert number.value is not None and "4258" in number.value
    assert number.constraint == str(SH.PatternConstraintComponent)
    assert "EMEA/H/C/NNNNNN" in number.message
    assert number.severity == "Violation"
    date = by_shape["MarketingAuthorisation-authorisationDate"]
    assert date.constraint == str(SH.LessThanOrEqualsConstraintComponent)
    assert date.value == Literal(dt.date(2025, 1, 1)).n3()


def test_text_report_groups_by_shape_and_ends_with_a_summary(broken_report: ValidationReport) -> None:
    text = render_text(broken_report)
    assert "eparsh:MarketingAuthorisation-productNumber (1 violation(s))" in text
    assert "e:authorisation/EMEA-H-C-004258" in text
    assert "epar:productNumber" in text
    assert '"2025-01-01"^^xsd:date' in text
    assert "\\u0001" in text and "\x01" not in text  # control characters are escaped
    lines = text.strip().splitlines()
    assert lines[-1].startswith("Does not conform: 2 violation(s) of 2 shape(s)")


def test_text_report_of_conforming_data_says_so() -> None:
    assert render_text(validate_graph(_fixture())).startswith("Conforms:")


def test_json_report(broken_report: ValidationReport) -> None:
    payload = json.loads(render_json(broken_report))
    assert payload["conforms"] is False
    assert payload["violationCount"] == len(payload["violations"]) == 2
    assert {"focus_node", "path", "value", "shape", "constraint", "message", "severity"} <= set(
        payload["violations"][0]
    )


def test_turtle_report_is_a_shacl_validation_report(broken_report: ValidationReport) -> None:
    g = rdflib.Graph().parse(data=render_turtle(broken_report), format="turtle")
    reports = list(g.subjects(RDF.type, SH.ValidationReport))
    assert len(reports) == 1
    assert g.value(reports[0], SH.conforms) == Literal(False)
    assert len(list(g.objects(reports[0], SH.result))) == 2


def test_junit_report_escapes_values_and_lists_every_shape(broken_report: ValidationReport) -> None:
    suite = ET.fromstring(render_junit(broken_report))
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert len(cases) == len(broken_report.shapes) == int(suite.get("tests", "0"))
    failures = [f for case in cases for f in case.findall("failure")]
    assert len(failures) == 2 == int(suite.get("failures", "0"))
    text = "".join(f.text or "" for f in failures)
    assert 'EMEA/H/C/<4258> & \\"x\\"' in text or 'EMEA/H/C/<4258> & "x"' in text
    assert "\x01" not in text


# --- the fast engine: pySHACL's results, or pySHACL itself -----------------------

FIXTURE_TEXT = VALID.read_text(encoding="utf-8")
AUTH = "<https://w3id.org/epar/authorisation/EMEA-H-C-004258>"
PRODUCT = "<https://w3id.org/epar/product/EMEA-H-C-004258>"
QUESTION = "<https://w3id.org/epar/product/EMEA-H-C-004258/question/1>"
DATASET = "<https://w3id.org/epar/dataset>"


def _fixture_file(tmp_path: Path, extra: str, name: str = "data.ttl") -> Path:
    """The fixture as Turtle with ``extra`` statements: both engines parse the same text."""
    path = tmp_path / name
    path.write_text(FIXTURE_TEXT + "\n" + extra + "\n", encoding="utf-8")
    return path


def _files_on_both_engines(files: list[Path], engine: str = "fast") -> ValidationReport:
    """pySHACL's report on ``files``, after checking the fast path's (run by ``engine``) is the same."""
    reference = validate_files(files, engine="pyshacl")
    fast = validate_files(files, engine="fast")
    assert reference.engine == "pyshacl"
    assert fast.engine == engine
    assert fast.violations == reference.violations
    assert fast.conforms is reference.conforms
    assert fast.triples == reference.triples
    return reference


#: Values the fast engine reads as rdflib does, and decides itself (each added to the fixture).
EXACT = {
    "ill-typed date": f'{AUTH} epar:authorisationDate "2018-02-30"^^xsd:date .',
    "year zero": f'{AUTH} epar:authorisationDate "0000-03-01"^^xsd:date .',
    "integer spelled 01": f'{QUESTION} schema:position "01"^^xsd:integer .',
    "integer spelled +0": f'{QUESTION} schema:position "+0"^^xsd:integer .',
    "integer beyond 64 bits": f'{QUESTION} schema:position "99999999999999999999999"^^xsd:integer .',
    "boolean spelled 1": f'{PRODUCT} epar:isOrphan "1"^^xsd:boolean .',
    "boolean revision number": f"{AUTH} epar:revisionNumber true .",
    "date revision number": f'{AUTH} epar:revisionNumber "2020-01-01"^^xsd:date .',
    "negative count": f"{DATASET} epar:recordsRejected -1 .",
    "string withdrawal date": f'{AUTH} epar:withdrawalDate "2024-12-13" .',
    "IRI withdrawal date": f"{AUTH} epar:withdrawalDate <urn:x:later> .",
    "integer withdrawal date": f"{AUTH} epar:withdrawalDate 5 .",
    "number with a final newline": f'{AUTH} epar:productNumber "EMEA/H/C/004258\\n" .',  # Python's $ takes it
    "quotes, newline, backslash": f'{AUTH} epar:productNumber "EMEA \\"x\\"\\nline2 \\\\ end\\"" .',
    "carriage return": f'{AUTH} epar:productNumber "EMEA\\r/x" .',
    "tagged product number": f'{AUTH} epar:productNumber "EMEA/H/C/004258"@en .',
    "integer product number": f'{AUTH} epar:productNumber "004258"^^xsd:integer .',
    "full-width digits": f'{AUTH} epar:productNumber "EMEA/H/C/\uff10\uff10\uff14\uff12\uff15\uff18" .',
    "IRI common name": f"{PRODUCT} epar:commonName <urn:x:name> .",
    "regional language tag": f'{PRODUCT} epar:therapeuticIndication "x"@en-gb .',
    "untagged indication": f'{PRODUCT} epar:therapeuticIndication "x" .',
    "literal authorisation": f'{PRODUCT} epar:authorisation "not a node" .',
    "blank node holder": f"{AUTH} epar:holder [ a epar:Organisation ; rdfs:label \"x\" ] .",
    "unknown status": f"{AUTH} epar:authorisationStatus <https://w3id.org/epar/status/paused> .",
}


@pytest.mark.parametrize("extra", EXACT.values(), ids=EXACT.keys())
def test_fast_engine_decides_odd_values_as_pyshacl(tmp_path: Path, extra: str) -> None:
    _files_on_both_engines([_fixture_file(tmp_path, extra)])


#: Values whose spelling rdflib changes, or that the store keeps only in canonical form: pySHACL checks them.
HANDED_OVER = {
    "boolean spelled TRUE": f'{PRODUCT} epar:isOrphan "TRUE"^^xsd:boolean .',
    "date with a time zone": f'{AUTH} epar:authorisationDate "2025-03-01Z"^^xsd:date .',
    "integer with a space": f'{QUESTION} schema:position " 2"^^xsd:integer .',
    "decimal count": f'{DATASET} epar:recordsRead "5.0"^^xsd:decimal .',
    "dateTime withdrawal": f'{AUTH} epar:withdrawalDate "2010-01-01T00:00:00"^^xsd:dateTime .',
    "custom datatype": f'{PRODUCT} epar:commonName "x"^^<urn:x:datatype> .',
}


@pytest.mark.parametrize("extra", HANDED_OVER.values(), ids=HANDED_OVER.keys())
def test_fast_engine_hands_over_values_it_cannot_read_as_rdflib(tmp_path: Path, extra: str) -> None:
    _files_on_both_engines([_fixture_file(tmp_path, extra)], engine="pyshacl")


def test_fast_engine_takes_subclasses_into_account(tmp_path: Path) -> None:
    """sh:targetClass and sh:class reach instances of subclasses (rdfs:subClassOf in the data)."""
    extra = """
    <urn:x:Special> rdfs:subClassOf epar:MedicinalProduct .
    <urn:x:SpecialAuthorisation> rdfs:subClassOf epar:MarketingAuthorisation .
    <urn:x:p1> a <urn:x:Special> .
    <urn:x:p2> a <urn:x:Special> ; rdfs:label "p2" ; epar:authorisation <urn:x:a2> .
    <urn:x:a2> a <urn:x:SpecialAuthorisation> ; rdfs:label "a2" ; epar:productNumber "EMEA/H/C/999999" .
    """
    report = _files_on_both_engines([_fixture_file(tmp_path, extra)])
    focus = {v.focus_node for v in report.violations}
    assert "urn:x:p1" in focus and "urn:x:a2" in focus  # targeted through the subclass
    assert not any(v.focus_node == "urn:x:p2" and v.constraint.endswith("#ClassConstraintComponent")
                   for v in report.violations)  # urn:x:a2 is a MarketingAuthorisation through its class


def test_fast_engine_evaluates_other_shapes_it_supports(tmp_path: Path) -> None:
    """Targets, paths and node-level constraints the project's shapes do not use, checked against pySHACL."""
    shapes = tmp_path / "shapes.ttl"
    shapes.write_text(
        "@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
        "@prefix epar: <https://w3id.org/epar/ontology#> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<urn:s:Holder> a sh:NodeShape ; sh:targetObjectsOf epar:holder ;\n"
        "  sh:class epar:Organisation ; sh:nodeKind sh:IRI ; sh:message \"holder\"@en ;\n"
        "  sh:property <urn:s:Holds> .\n"
        "<urn:s:Holds> a sh:PropertyShape ; sh:path [ sh:inversePath epar:holder ] ;\n"
        "  sh:minCount 1 ; sh:class epar:MarketingAuthorisation ; sh:message \"holds\"@en .\n"
        "<urn:s:Named> a sh:NodeShape ; sh:targetNode <urn:x:nowhere> , <https://w3id.org/epar/status/withdrawn> ;\n"
        "  sh:in ( <https://w3id.org/epar/status/withdrawn> ) ; sh:severity sh:Info ; sh:message \"named\"@en ;\n"
        "  sh:property <urn:s:Label> .\n"
        "<urn:s:Label> a sh:PropertyShape ; sh:path rdfs:label ; sh:minCount 1 ; sh:message \"label\"@en .\n"
        "<urn:s:Chain> a sh:PropertyShape ; sh:targetClass epar:MedicinalProduct ;\n"
        "  sh:path ( epar:authorisation epar:holder rdfs:label ) ; sh:maxCount 0 ; sh:severity sh:Warning ;\n"
        "  sh:message \"chain\"@en , \"Kette\"@de .\n"
        "<urn:s:Off> a sh:NodeShape ; sh:targetClass epar:MedicinalProduct ; sh:deactivated true ;\n"
        "  sh:nodeKind sh:Literal ; sh:message \"off\"@en .\n"
        "<urn:s:Case> a sh:PropertyShape ; sh:targetClass epar:MarketingAuthorisation ; sh:path epar:productNumber ;\n"
        "  sh:pattern \"^emea/h\" ; sh:flags \"i\" ; sh:message \"case\"@en .\n",
        encoding="utf-8",
    )
    data = [_fixture_file(tmp_path, "")]
    reference = validate_files(data, shapes, engine="pyshacl")
    fast = validate_files(data, shapes, engine="fast")
    assert fast.engine == "fast"
    assert (fast.conforms, fast.violations) == (reference.conforms, reference.violations)
    assert {v.shape for v in reference.violations} >= {"urn:s:Chain", "urn:s:Named", "urn:s:Label", "urn:s:Case"}


@pytest.mark.parametrize(
    "shape",
    [
        "sh:or ( [ sh:path rdfs:label ; sh:minCount 1 ] [ sh:path epar:commonName ; sh:minCount 1 ] )",
        "sh:closed true",
        "sh:property [ sh:path [ sh:zeroOrMorePath rdfs:label ] ; sh:minCount 2 ; sh:message \"m\" ]",
        "sh:property [ sh:path rdfs:label ; sh:minCount 2 ; sh:message \"m\" ]",
        "sh:property [ sh:path rdfs:label ; sh:maxCount 0 ]",  # no message: pySHACL words its own
    ],
    ids=["or", "closed", "zero-or-more path", "minCount 2", "no message"],
)
def test_fast_engine_hands_over_shapes_outside_its_subset(tmp_path: Path, shape: str) -> None:
    shapes = tmp_path / "shapes.ttl"
    shapes.write_text(
        "@prefix sh: <http://www.w3.org/ns/shacl#> .\n@prefix epar: <https://w3id.org/epar/ontology#> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        f"<urn:s:S> a sh:NodeShape ; sh:targetClass epar:MedicinalProduct ; sh:message \"m\"@en ; {shape} .\n",
        encoding="utf-8",
    )
    fast = validate_files([VALID], shapes, engine="fast")
    reference = validate_files([VALID], shapes, engine="pyshacl")
    assert fast.engine == "pyshacl"
    assert (fast.conforms, fast.violations) == (reference.conforms, reference.violations)


SYNTAXES = {
    "g.nt": "nt",
    "g.ttl": "turtle",
    "g.jsonld": "json-ld",
    "g.rdf": "xml",
    "g-no-extension": "turtle",
}


@pytest.mark.parametrize("name", [*SYNTAXES, "g.nt.gz", "bom.ttl"])
def test_fast_engine_reads_every_syntax_itself(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    g = _broken()
    auth = URIRef("https://w3id.org/epar/authorisation/EMEA-H-C-004258")
    g.set((auth, URIRef(EPAR + "productNumber"), Literal('EMEA/H/C/<4258> & "x"')))  # XML 1.0 cannot carry \x01
    if name == "g.nt.gz":
        path.write_bytes(gzip.compress(g.serialize(format="nt").encode("utf-8")))
    elif name == "bom.ttl":
        path.write_bytes(b"\xef\xbb\xbf" + g.serialize(format="turtle").encode("utf-8"))
    else:
        path.write_text(g.serialize(format=SYNTAXES[name]), encoding="utf-8")
    report = _files_on_both_engines([path])
    assert len(report.violations) == 2


def test_fast_engine_gives_the_collector_back(tmp_path: Path) -> None:
    """The fast engine turns Python's cycle collector off while it runs, and on again, even on failure."""
    assert gc.isenabled()
    assert validate_files([VALID]).engine == "fast"
    assert gc.isenabled()
    with pytest.raises(UnreadableInput):
        validate_files([VALID, tmp_path / "absent.ttl"])
    assert gc.isenabled()


def test_blank_nodes_of_different_files_stay_apart(tmp_path: Path) -> None:
    """As in rdflib, ``_:b`` in one file is not ``_:b`` in another."""
    first = _fixture_file(tmp_path, "_:b a epar:ActiveSubstance .", "first.ttl")
    second = tmp_path / "second.ttl"
    second.write_text('_:b <http://www.w3.org/2000/01/rdf-schema#label> "named" .\n', encoding="utf-8")
    reference = validate_files([first, second], engine="pyshacl")
    fast = validate_files([first, second], engine="fast")
    assert fast.engine == "fast"
    blank = [(v.shape, v.constraint) for v in reference.violations]
    assert blank == [(v.shape, v.constraint) for v in fast.violations]  # blank node ids differ, not the results
    assert blank == [("https://w3id.org/epar/shapes#ActiveSubstance-label", str(SH.MinCountConstraintComponent))]
    assert fast.triples == reference.triples


# --- loading ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("g.nt", "nt"), ("g.jsonld", "json-ld"), ("g.rdf", "xml"), ("g.xml", "xml"), ("g.ttl", "turtle")],
)
def test_load_rdf_reads_each_syntax(tmp_path: Path, name: str, fmt: str) -> None:
    original = _fixture()
    path = tmp_path / name
    path.write_text(original.serialize(format=fmt), encoding="utf-8")
    assert isomorphic(load_rdf([path]), original)


def test_load_rdf_reads_gzipped_ntriples(tmp_path: Path) -> None:
    original = _fixture()
    path = tmp_path / "epar.nt.gz"
    path.write_bytes(gzip.compress(original.serialize(format="nt").encode("utf-8")))
    assert isomorphic(load_rdf([path]), original)


def test_load_rdf_guesses_syntax_from_content(tmp_path: Path) -> None:
    original = _fixture()
    for fmt in ("json-ld", "xml", "turtle"):
        path = tmp_path / f"dump-{fmt}"
        path.write_text(original.serialize(format=fmt), encoding="utf-8")
        assert isomorphic(load_rdf([path]), original), fmt


def test_load_rdf_merges_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ttl", tmp_path / "b.nt"
    a.write_text("<urn:x:a> <urn:x:p> 1 .\n", encoding="utf-8")
    b.write_text("<urn:x:b> <urn:x:p> <urn:x:a> .\n", encoding="utf-8")
    assert len(load_rdf([a, b])) == 2


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.ttl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("latin1.ttl", "<urn:x:a> <urn:x:p> \"caf\xe9\" .".encode("latin-1"), "UTF-8"),
        ("broken.ttl", b"<urn:x:a> <urn:x:p> .\n", "not valid turtle"),
        ("broken.jsonld", b'{"@id": ', "not valid json-ld"),
        ("broken.rdf", b"<rdf:RDF><oops>", "not valid xml"),
        ("broken.nt.gz", b"\x1f\x8b\x08\x00truncated", "gzip"),
    ],
)
def test_unreadable_input_names_the_file(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableInput) as info:
        load_rdf([path])
    assert info.value.file == str(path)
    assert reason in info.value.reason
    assert name in str(info.value)


def test_missing_file_and_directory_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput, match="no such file"):
        load_rdf([tmp_path / "absent.ttl"])
    with pytest.raises(UnreadableInput, match="directory"):
        load_rdf([tmp_path])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda s: s.encode("utf-8")),
        st.sampled_from(["<urn:x:a> <urn:x:p> ", '{"@id": "urn:x:a"', "<?xml version='1.0'?><rdf"]).map(
            lambda s: s.encode("utf-8")
        ),
    ),
    suffix=st.sampled_from([".ttl", ".nt", ".nt.gz", ".jsonld", ".rdf", ""]),
)
def test_load_rdf_returns_a_graph_or_raises_unreadable_input(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        try:
            graph = load_rdf([path])
        except UnreadableInput as exc:
            assert exc.file == str(path)
        else:
            assert isinstance(graph, rdflib.Graph)


# --- run_validate and the command line ------------------------------------------


def test_run_validate_unreadable_shapes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shapes = tmp_path / "shapes.ttl"
    shapes.write_bytes(b"\x00\x01\x02")
    assert run_validate([VALID], "text", shapes, None) == 2
    err = capsys.readouterr().err
    assert str(shapes) in err and len(err.strip().splitlines()) == 1


def test_run_validate_shapes_that_are_not_shacl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shapes = tmp_path / "shapes.ttl"
    shapes.write_text(
        "@prefix sh: <http://www.w3.org/ns/shacl#> .\n"
        f"<urn:x:S> a sh:NodeShape ; sh:targetClass <{EPAR}MedicinalProduct> ;\n"
        "  sh:property [ sh:path <urn:x:p> ; sh:minCount \"many\" ] .\n",
        encoding="utf-8",
    )
    assert run_validate([VALID], "text", shapes, None) == 2
    err = capsys.readouterr().err
    assert str(shapes) in err and "SHACL" in err
    assert len(err.strip().splitlines()) == 1


def test_run_validate_rejects_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_validate([VALID], "yaml", None, None) == 2
    assert "yaml" in capsys.readouterr().err


def test_run_validate_rejects_unknown_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_validate([VALID], "text", None, None, engine="turbo") == 2
    assert "turbo" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.ttl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("latin1.ttl", "<urn:x:a> <urn:x:p> \"caf\xe9\" .".encode("latin-1"), "UTF-8"),
        ("broken.ttl", b"<urn:x:a> <urn:x:p> .\n", "not valid turtle"),
        ("broken.jsonld", b'{"@id": ', "not valid json-ld"),
        ("broken.rdf", b"<rdf:RDF><oops>", "not valid xml"),
        ("broken.nt.gz", b"\x1f\x8b\x08\x00truncated", "gzip"),
        ("folder", None, "directory"),
        ("absent.ttl", None, "no such file"),
    ],
)
@pytest.mark.parametrize("engine", ["fast", "pyshacl"])
def test_run_validate_words_unreadable_input_alike_on_both_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, reason: str, engine: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "folder":
        path.mkdir()
    assert run_validate([VALID, path], "text", None, None, engine=engine) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err and reason in err


def _command() -> list[str]:
    script = Path(sys.executable).parent / "epar-graph"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from epar_graph.cli import main; main()"]


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    _broken().serialize(d / "broken.ttl", format="turtle")
    (d / "binary.ttl").write_bytes(bytes(range(256)) * 4)
    (d / "malformed.ttl").write_text("<urn:x:a> <urn:x:p> \"unterminated .\n", encoding="utf-8")
    return d


CLI_CASES = {
    "valid": ["{valid}"],
    "text": ["{dir}/broken.ttl"],
    "pyshacl": ["{dir}/broken.ttl", "--engine", "pyshacl"],
    "bad-engine": ["{dir}/broken.ttl", "--engine", "turbo"],
    "turtle": ["{dir}/broken.ttl", "--format", "turtle"],
    "json": ["{dir}/broken.ttl", "--format", "json"],
    "junit": ["{dir}/broken.ttl", "-f", "junit", "--output", "{dir}/out/report.xml"],
    "binary": ["{valid}", "{dir}/binary.ttl"],
    "malformed": ["{dir}/malformed.ttl"],
}


@pytest.fixture(scope="module")
def cli(cli_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every command-line case at once (they are independent), then collect the results."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = {}
    for name, args in CLI_CASES.items():
        argv = [a.format(valid=VALID, dir=cli_dir) for a in args]
        procs[name] = subprocess.Popen(
            [*_command(), "validate", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def test_cli_exit_0_when_data_conforms(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert cli["valid"].returncode == 0, cli["valid"].stderr
    assert cli["valid"].stdout.startswith("Conforms:")
    assert cli["valid"].stderr == ""  # no progress bar when stderr is not a terminal


def test_fast_engine_needs_neither_rdflib_nor_pyshacl(cli_dir: Path) -> None:
    """On data it reads itself, the fast engine imports neither (they take longer to import than it runs)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "epar_graph.cli", "validate", str(cli_dir / "broken.ttl"),
         "-f", "json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert json.loads(run.stdout)["violationCount"] == 2
    modules = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "pyoxigraph" in modules
    assert not {m for m in modules if m.split(".")[0] in ("rdflib", "pyshacl")}


def test_cli_engines_print_the_same_report(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert cli["pyshacl"].returncode == cli["text"].returncode == 1
    assert cli["pyshacl"].stdout == cli["text"].stdout


def test_cli_refuses_an_unknown_engine(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert cli["bad-engine"].returncode == 2
    assert "turbo" in cli["bad-engine"].stderr


def test_cli_exit_1_with_text_report(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = cli["text"]
    assert run.returncode == 1, run.stderr
    assert "MarketingAuthorisation-productNumber" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("Does not conform")


def test_cli_turtle_format(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = cli["turtle"]
    assert run.returncode == 1, run.stderr
    g = rdflib.Graph().parse(data=run.stdout, format="turtle")
    assert len(list(g.subjects(RDF.type, SH.ValidationResult))) >= 2


def test_cli_json_format(cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = cli["json"]
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["violationCount"] == 2


def test_cli_junit_format_written_to_output_file(
    cli: dict[str, subprocess.CompletedProcess[str]], cli_dir: Path
) -> None:
    run = cli["junit"]
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Does not conform" in run.stderr
    suite = ET.parse(cli_dir / "out" / "report.xml").getroot()
    assert suite.tag == "testsuite"
    assert len(suite.findall("testcase/failure")) == 2


def _on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run the command in a pseudo-terminal (so it sees a TTY) and return its exit code and output."""
    import pty

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "100", "TERM": "xterm"}
    command = [*_command(), "validate", *args]
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execve(command[0], command, env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("engine", ["fast", "pyshacl"])
def test_cli_shows_a_progress_bar_on_a_terminal(cli_dir: Path, engine: str) -> None:
    code, output = _on_a_terminal([str(cli_dir / "broken.ttl"), "--engine", engine])
    assert code == 1
    for phase in ("parsing broken.ttl", "checking shapes", "writing the report"):
        assert phase in output
    assert "Does not conform" in output


def test_cli_quiet_hides_the_progress_bar(cli_dir: Path) -> None:
    code, output = _on_a_terminal([str(VALID), "--quiet"])
    assert code == 0
    assert "Conforms:" in output
    assert "checking shapes" not in output


def test_cli_progress_bar_leaves_errors_readable(cli_dir: Path) -> None:
    code, output = _on_a_terminal([str(cli_dir / "malformed.ttl")])
    assert code == 2
    assert "malformed.ttl" in output and "Traceback" not in output


@pytest.mark.parametrize("case", ["binary", "malformed"])
def test_cli_exit_2_on_unreadable_input(
    cli: dict[str, subprocess.CompletedProcess[str]], cli_dir: Path, case: str
) -> None:
    run = cli[case]
    assert run.returncode == 2
    assert f"{case}.ttl" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""
