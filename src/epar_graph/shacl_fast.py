"""SHACL Core checked by SPARQL queries on a pyoxigraph store, with pySHACL's results.

pySHACL walks the data graph in Python, focus node by focus node; on a full
release that is minutes. This engine compiles each constraint of the shapes
into one SPARQL query over the whole store that returns only the values that
may break it, keeps those of the shape's focus nodes, and decides each of them
exactly as pySHACL does. A valid release therefore costs one index scan per
constraint, done in Rust.

The results are pySHACL's, not just similar: the same focus node, path, value
(printed as rdflib prints it), source shape, constraint component, severity
and message, and the same conformance (``allow_warnings``: sh:Warning and
sh:Info results do not fail the data). ``tests/test_validate.py`` checks this
on a mutation of the fixture for every constraint of the shapes.

Where this engine cannot promise that, it raises :class:`Unsupported` and the
caller runs pySHACL instead: shapes that use anything outside the supported
subset (see :data:`SUPPORTED`), recursive shapes, and data that pySHACL itself
refuses (blank nodes compared by sh:lessThanOrEquals). Literals whose lexical
form is not canonical ("01"^^xsd:integer, "TRUE"^^xsd:boolean, other
datatypes) are rare and decided one by one by rdflib, which pySHACL uses.
What no engine on a pyoxigraph store can see: an explicit ``^^xsd:string``
(RDF 1.1 makes it the same literal as a plain one; rdflib prints it) and the
case of language tags (oxigraph lower-cases them); blank nodes get other
identifiers than rdflib's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyoxigraph import BlankNode, Literal, NamedNode, QuerySolutions, Store

SH = "http://www.w3.org/ns/shacl#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"

RDF_TYPE = RDF + "type"
RDF_FIRST, RDF_REST, RDF_NIL = RDF + "first", RDF + "rest", RDF + "nil"
RDF_LANGSTRING = RDF + "langString"
XSD_STRING, XSD_INTEGER, XSD_BOOLEAN, XSD_DATE = XSD + "string", XSD + "integer", XSD + "boolean", XSD + "date"
RDFS_LITERAL = RDFS + "Literal"

VIOLATION, WARNING, INFO = SH + "Violation", SH + "Warning", SH + "Info"
#: Severities that do not make the data non-conforming (pySHACL's ``allow_warnings=True``).
ALLOWED = frozenset({WARNING, INFO})

Term = NamedNode | BlankNode | Literal

#: Constraint parameter → the constraint component pySHACL reports.
SUPPORTED = {
    SH + "minCount": SH + "MinCountConstraintComponent",
    SH + "maxCount": SH + "MaxCountConstraintComponent",
    SH + "datatype": SH + "DatatypeConstraintComponent",
    SH + "class": SH + "ClassConstraintComponent",
    SH + "nodeKind": SH + "NodeKindConstraintComponent",
    SH + "pattern": SH + "PatternConstraintComponent",
    SH + "node": SH + "NodeConstraintComponent",
    SH + "hasValue": SH + "HasValueConstraintComponent",
    SH + "languageIn": SH + "LanguageInConstraintComponent",
    SH + "uniqueLang": SH + "UniqueLangConstraintComponent",
    SH + "lessThanOrEquals": SH + "LessThanOrEqualsConstraintComponent",
    SH + "minInclusive": SH + "MinInclusiveConstraintComponent",
    SH + "in": SH + "InConstraintComponent",
}
#: Constraints that pySHACL refuses on a node shape (it raises; so does this engine, by falling back).
PROPERTY_ONLY = {SH + p for p in ("minCount", "maxCount", "uniqueLang", "lessThanOrEquals")}
#: SHACL predicates of a shape that check nothing, or that this engine reads itself.
STRUCTURAL = {
    SH + p
    for p in (
        "path", "property", "severity", "message", "name", "description", "order", "group",
        "defaultValue", "deactivated", "flags", "targetClass", "targetNode", "targetSubjectsOf",
        "targetObjectsOf",
    )
}
TARGETS = ("targetClass", "targetNode", "targetSubjectsOf", "targetObjectsOf")
SHAPE_TYPES = (SH + "NodeShape", SH + "PropertyShape")
#: Parameters whose values are shapes (pySHACL treats their objects as shapes).
SHAPE_EXPECTING = (SH + "property", SH + "node", SH + "not", SH + "and", SH + "or", SH + "xone",
                   SH + "qualifiedValueShape")
NODE_KINDS = {
    SH + "IRI": "!isIRI(?v)",
    SH + "BlankNode": "!isBlank(?v)",
    SH + "Literal": "!isLiteral(?v)",
    SH + "BlankNodeOrIRI": "isLiteral(?v)",
    SH + "BlankNodeOrLiteral": "isIRI(?v)",
    SH + "IRIOrLiteral": "isBlank(?v)",
}
PREFIXES = f"PREFIX rdf: <{RDF}>\nPREFIX rdfs: <{RDFS}>\nPREFIX xsd: <{XSD}>\n"


class Unsupported(Exception):
    """Shapes or data that this engine cannot check exactly as pySHACL does."""


# ---------------------------------------------------------------------------
# Literals: canonical forms, and rdflib's view of the others
#
# A pyoxigraph store keeps strings as written and turns every valid XSD literal
# into its canonical form ("01"^^xsd:integer becomes "1"); rdflib normalises
# what Python can read. For integers, booleans and dates (all the project
# writes) the two agree, and a form the store keeps as written (it is not valid
# XSD: "TRUE", " 7", a date with a time zone) is the one rdflib read, so rdflib
# decides it exactly. Other datatypes lose their written form in the store:
# meeting one where it matters hands the run over to pySHACL.


_INTEGER = re.compile(r"(0|-?[1-9][0-9]*)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Datatypes whose every literal this engine reproduces as rdflib reads it.
KNOWN = (XSD_STRING, RDF_LANGSTRING, XSD_INTEGER, XSD_BOOLEAN, XSD_DATE)


def canonical(lit: Literal) -> bool:
    """Whether rdflib reads ``lit`` unchanged, as a value of its datatype's Python type.

    Strings always are; integers, booleans and dates in their canonical form
    are. Other literals of those three datatypes are decided by rdflib
    (:func:`_exact`); literals of other datatypes are :class:`Unsupported`.
    """
    datatype, text = lit.datatype.value, lit.value
    if datatype in (XSD_STRING, RDF_LANGSTRING):
        return True
    if datatype == XSD_INTEGER:
        return _INTEGER.fullmatch(text) is not None
    if datatype == XSD_BOOLEAN:
        return text in ("true", "false")
    if datatype == XSD_DATE and _DATE.fullmatch(text):
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return False
        return True
    return False


def _canonical_sparql(datatype: str, var: str = "?v") -> str:
    """A SPARQL condition true only for canonical literals of ``datatype`` (see :func:`canonical`)."""
    if datatype in (XSD_STRING, RDF_LANGSTRING):
        return "true"
    if datatype == XSD_INTEGER:
        return f"COALESCE(STR(xsd:integer(STR({var}))) = STR({var}), false)"
    if datatype == XSD_BOOLEAN:
        return f'(STR({var}) = "true" || STR({var}) = "false")'
    if datatype == XSD_DATE:
        return (f'(STRLEN(STR({var})) = 10 && !STRSTARTS(STR({var}), "0000") && '
                f"COALESCE(STR(xsd:date(STR({var}))) = STR({var}), false))")
    return "false"


def _value(lit: Literal) -> object:
    """The Python value rdflib gives a canonical literal."""
    datatype, text = lit.datatype.value, lit.value
    if datatype == XSD_INTEGER:
        return int(text)
    if datatype == XSD_BOOLEAN:
        return text == "true"
    if datatype == XSD_DATE:
        return dt.date.fromisoformat(text)
    return text


def _rdflib(term: Term) -> Any:
    """``term`` as an rdflib term (rdflib is imported only when a report or a rare literal needs it)."""
    import rdflib

    if isinstance(term, Literal):
        if term.language:
            return rdflib.Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        return rdflib.Literal(term.value, datatype=None if datatype == XSD_STRING else rdflib.URIRef(datatype))
    if isinstance(term, BlankNode):
        return rdflib.BNode(term.value)
    return rdflib.URIRef(term.value)


def _exact(lit: Literal) -> Any:
    """A literal that is not canonical, as rdflib reads it.

    :class:`Unsupported` when the store may have lost its spelling (a datatype
    other than the known ones), or when rdflib respells it ("TRUE" becomes
    "true"): rdflib then merges it with other literals in an order that only
    the file knows.
    """
    if lit.datatype.value not in KNOWN:
        raise Unsupported(f"a literal of datatype <{lit.datatype.value}>: pySHACL reads it as written")
    found = _rdflib(lit)
    if str(found) != lit.value:
        raise Unsupported(f"rdflib reads {lit} as {found.n3()}")
    return found


def _quote(text: str) -> str:
    """rdflib's ``Literal._quote_encode``."""
    if "\n" in text:
        encoded = text.replace("\\", "\\\\")
        if '"""' in text:
            encoded = encoded.replace('"""', '\\"\\"\\"')
        if encoded[-1] == '"' and encoded[-2] != "\\":
            encoded = encoded[:-1] + "\\" + '"'
        return '"""' + encoded.replace("\r", "\\r") + '"""'
    return '"' + text.replace("\n", "\\n").replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r") + '"'


def node_text(term: Term) -> str:
    """A term as the validation report prints it: IRIs bare, literals as rdflib's ``n3()``."""
    if not isinstance(term, Literal):
        return term.value
    if not canonical(term):
        return str(_exact(term).n3())
    if term.language:
        return f"{_quote(term.value)}@{term.language}"
    datatype = term.datatype.value
    if datatype == XSD_STRING:
        return _quote(term.value)
    return f"{_quote(term.value)}^^<{datatype}>"


def _sparql_term(term: Term) -> str:
    if isinstance(term, BlankNode):
        raise Unsupported("a blank node as a constraint argument")
    return str(term)


# ---------------------------------------------------------------------------
# The shapes graph


class ShapesGraph:
    """The triples of a shapes file, indexed for the compiler."""

    def __init__(self, triples: Iterable[tuple[Term, NamedNode, Term]]) -> None:
        self.out: dict[Term, dict[str, list[Term]]] = {}
        self.into: dict[tuple[str, Term], list[Term]] = {}
        for s, p, o in triples:
            self.out.setdefault(s, {}).setdefault(p.value, []).append(o)
            self.into.setdefault((p.value, o), []).append(s)

    def objects(self, s: Term, p: str) -> list[Term]:
        return self.out.get(s, {}).get(p, [])

    def subjects(self, p: str, o: Term) -> list[Term]:
        return self.into.get((p, o), [])

    def one(self, s: Term, p: str) -> Term | None:
        values = self.objects(s, p)
        if len(values) > 1:
            raise Unsupported(f"several values of <{p}> on {s}")
        return values[0] if values else None

    def items(self, node: Term) -> list[Term]:
        """The members of an RDF list."""
        found: list[Term] = []
        seen: set[Term] = set()
        while not (isinstance(node, NamedNode) and node.value == RDF_NIL):
            if node in seen:
                raise Unsupported("a cyclic RDF list")
            seen.add(node)
            first, rest = self.objects(node, RDF_FIRST), self.objects(node, RDF_REST)
            if len(first) != 1 or len(rest) != 1:
                raise Unsupported("a malformed RDF list")
            found.append(first[0])
            node = rest[0]
        return found


@dataclass(frozen=True)
class Path:
    """A SHACL property path: as a SPARQL path, and as the report prints it."""

    sparql: str
    text: str
    #: the path node in the shapes graph (an IRI, or the blank node of a complex path)
    node: Term
    #: a single predicate: its values need no DISTINCT
    simple: bool
    #: "iri", "sequence", "alternative" or "inverse", and the steps of a complex path
    kind: str = "iri"
    parts: tuple[Path, ...] = ()


def _path(g: ShapesGraph, node: Term, depth: int = 0) -> Path:
    if depth > 20:
        raise Unsupported("a path nested too deeply")
    if isinstance(node, NamedNode):
        return Path(f"<{node.value}>", node.value, node, True)
    if not isinstance(node, BlankNode):
        raise Unsupported(f"a literal as sh:path: {node}")

    def part(n: Term) -> Path:
        return _path(g, n, depth + 1)

    def shown(p: Path) -> str:
        return f"<{p.text}>" if p.simple else f"({p.text})"

    props = g.out.get(node, {})
    if RDF_FIRST in props:
        parts = [part(n) for n in g.items(node)]
        if len(parts) < 2:
            raise Unsupported("a sequence path of fewer than two steps")
        return Path("(" + "/".join(p.sparql for p in parts) + ")", "/".join(shown(p) for p in parts), node, False,
                    "sequence", tuple(parts))
    if set(props) == {SH + "alternativePath"}:
        parts = [part(n) for n in g.items(props[SH + "alternativePath"][0])] if len(
            props[SH + "alternativePath"]) == 1 else []
        if len(parts) < 2:
            raise Unsupported("an alternative path of fewer than two choices")
        return Path("(" + "|".join(p.sparql for p in parts) + ")", "|".join(shown(p) for p in parts), node, False,
                    "alternative", tuple(parts))
    if set(props) == {SH + "inversePath"} and len(props[SH + "inversePath"]) == 1:
        inner = part(props[SH + "inversePath"][0])
        return Path(f"^{inner.sparql}", "^" + shown(inner), node, False, "inverse", (inner,))
    raise Unsupported(f"a SHACL path this engine does not evaluate: {sorted(props)}")


@dataclass(frozen=True)
class Constraint:
    parameter: str
    component: str
    arg: Any


@dataclass(eq=False)
class Shape:
    node: Term
    path: Path | None
    severity: str
    messages: list[Literal]
    constraints: list[Constraint] = field(default_factory=list)
    properties: list[Shape] = field(default_factory=list)
    targets: list[tuple[str, Term]] = field(default_factory=list)
    deactivated: bool = False

    @property
    def name(self) -> str:
        return self.node.value


@dataclass
class CompiledShapes:
    """The shapes this engine evaluates: top-level ones (with targets) and every shape they use."""

    top: list[Shape]
    names: list[str]

    @property
    def steps(self) -> int:
        """How many constraint evaluations a run makes at the top level (for a progress bar)."""
        return sum(
            len(s.constraints) + sum(len(p.constraints) for p in s.properties) for s in self.top if not s.deactivated
        )


def _int_arg(value: Term | None, parameter: str) -> int:
    if not (isinstance(value, Literal) and value.datatype.value == XSD_INTEGER and canonical(value)):
        raise Unsupported(f"{parameter} is not a canonical xsd:integer")  # pySHACL decides what to say
    number = int(value.value)
    if number < 0:
        raise Unsupported(f"{parameter} is negative")
    return number


class _Compiler:
    def __init__(self, g: ShapesGraph) -> None:
        self.g = g
        self.shapes: dict[Term, Shape] = {}
        self.building: set[Term] = set()

    def shape(self, node: Term) -> Shape:
        if node in self.shapes:
            return self.shapes[node]
        if node in self.building:
            raise Unsupported(f"recursive shapes ({node})")
        self.building.add(node)
        try:
            shape = self._build(node)
        finally:
            self.building.discard(node)
        self.shapes[node] = shape
        return shape

    def _build(self, node: Term) -> Shape:
        g = self.g
        if isinstance(node, Literal):
            raise Unsupported("a literal as a shape")
        props = g.out.get(node, {})
        for p in props:
            if p.startswith(SH) and p not in STRUCTURAL and p not in SUPPORTED:
                raise Unsupported(f"<{p}>")
        if NamedNode(RDFS + "Class") in g.objects(node, RDF_TYPE):
            raise Unsupported("implicit class targets")
        path_node = g.one(node, SH + "path")
        path = _path(g, path_node) if path_node is not None else None
        severity = g.one(node, SH + "severity")
        if severity is not None and not isinstance(severity, NamedNode):
            raise Unsupported("a severity that is not an IRI")
        messages = g.objects(node, SH + "message")
        if not all(isinstance(m, Literal) for m in messages):
            raise Unsupported("a message that is not a literal")
        deactivated = g.one(node, SH + "deactivated")
        if deactivated is not None and not (
            isinstance(deactivated, Literal) and deactivated.datatype.value == XSD_BOOLEAN and canonical(deactivated)
        ):
            raise Unsupported("sh:deactivated that is not a boolean")
        shape = Shape(
            node=node,
            path=path,
            severity=severity.value if severity is not None else VIOLATION,
            messages=[m for m in messages if isinstance(m, Literal)],
            deactivated=deactivated is not None and deactivated.value == "true",
        )
        for t in TARGETS:
            for value in g.objects(node, SH + t):
                if isinstance(value, Literal) and t != "targetNode":
                    raise Unsupported(f"sh:{t} {value}")
                if isinstance(value, BlankNode):
                    raise Unsupported(f"a blank node as sh:{t}")
                shape.targets.append((t, value))
        for parameter, component in SUPPORTED.items():
            if parameter not in props:
                continue
            if path is None and parameter in PROPERTY_ONLY:
                raise Unsupported(f"<{parameter}> on a node shape")
            shape.constraints.append(Constraint(parameter, component, self._argument(shape, parameter)))
        if shape.constraints and not shape.messages:
            raise Unsupported(f"no sh:message on {node}: pySHACL words its own")
        for prop in g.objects(node, SH + "property"):
            child = self.shape(prop)
            if child.path is None:
                raise Unsupported("sh:property naming a shape without sh:path")
            if child.properties:
                raise Unsupported("sh:property on a property shape")
            shape.properties.append(child)
        return shape

    def _argument(self, shape: Shape, parameter: str) -> Any:
        g, node = self.g, shape.node
        value = g.one(node, parameter)
        assert value is not None
        name = parameter[len(SH):]
        if name in ("minCount", "maxCount"):
            number = _int_arg(value, name)
            if name == "minCount" and number > 1:  # rdflib may count fewer values than the store keeps
                raise Unsupported("sh:minCount above 1")
            return number
        if name in ("datatype", "class", "nodeKind", "lessThanOrEquals"):
            if not isinstance(value, NamedNode):
                raise Unsupported(f"sh:{name} {value}")
            if name == "nodeKind" and value.value not in NODE_KINDS:
                raise Unsupported(f"sh:nodeKind {value}")
            if name == "datatype" and value.value == RDFS + "Datatype":
                raise Unsupported("sh:datatype rdfs:Datatype")
            return value.value
        if name == "pattern":
            flags = g.one(node, SH + "flags")
            if not isinstance(value, Literal) or (flags is not None and not isinstance(flags, Literal)):
                raise Unsupported("sh:pattern or sh:flags that is not a literal")
            re_flags = 0
            if flags is not None:
                text = flags.value.lower()
                re_flags |= re.I if "i" in text else 0
                re_flags |= re.M if "m" in text else 0
            try:
                compiled = re.compile(value.value, re_flags)
            except re.error as exc:
                raise Unsupported(f"sh:pattern {value.value!r}: {exc}") from None
            return (compiled, value.value if flags is None and _simple_pattern(value.value) else None)
        if name == "node":
            target = self.shape(value)
            if target.path is not None:
                raise Unsupported("sh:node naming a property shape")
            return target
        if name == "hasValue":
            if not isinstance(value, NamedNode):
                raise Unsupported("sh:hasValue that is not an IRI")
            return value
        if name == "in":
            members = g.items(value)
            if not all(isinstance(m, NamedNode) or (isinstance(m, Literal) and canonical(m)) for m in members):
                raise Unsupported("sh:in with a blank node or a non-canonical literal")
            return frozenset(members)
        if name == "languageIn":
            tags = g.items(value)
            if not all(isinstance(t, Literal) and t.datatype.value == XSD_STRING for t in tags):
                raise Unsupported("sh:languageIn members that are not strings")
            return frozenset(t.value.lower() for t in tags)
        if name == "uniqueLang":
            if not (isinstance(value, Literal) and value.datatype.value == XSD_BOOLEAN and canonical(value)):
                raise Unsupported("sh:uniqueLang that is not a boolean")
            return value.value == "true"
        if name == "minInclusive":
            numeric = isinstance(value, Literal) and value.datatype.value in (XSD_INTEGER, XSD_DATE)
            if not (numeric and isinstance(value, Literal) and canonical(value)):
                raise Unsupported("sh:minInclusive that is not a canonical integer or date")
            return value
        raise Unsupported(parameter)  # pragma: no cover - SUPPORTED and this function agree


#: Characters of a regular expression on which Python's ``re`` and XPath (SPARQL ``REGEX``) agree,
#: except that Python's ``$`` also matches before a final newline (Python accepts more: see below).
_SIMPLE_PATTERN = re.compile(r"(?:[A-Za-z0-9 _/:#@,;'%&=~<>!\"-]|\\[./\\?*+(){}\[\]|^$-]|[\^$.()|?*+{}\[\]])*")


def _simple_pattern(pattern: str) -> bool:
    """A pattern that SPARQL may use to pass values (only Python then checks the rest)."""
    return _SIMPLE_PATTERN.fullmatch(pattern) is not None and "\\d" not in pattern


def compile_shapes(triples: Iterable[tuple[Term, NamedNode, Term]]) -> CompiledShapes:
    """The shapes of a shapes graph, or :class:`Unsupported`."""
    g = ShapesGraph(triples)
    if g.subjects(RDF_TYPE, NamedNode(SH + "ConstraintComponent")):
        raise Unsupported("custom constraint components")
    compiler = _Compiler(g)
    candidates: set[Term] = set()
    for t in SHAPE_TYPES:
        candidates.update(g.subjects(RDF_TYPE, NamedNode(t)))
    for s, props in g.out.items():
        if any(SH + t in props for t in TARGETS):
            candidates.add(s)
    top = []
    for node in sorted(candidates, key=str):
        shape = compiler.shape(node)
        if shape.targets:
            top.append(shape)
    names = sorted(
        {s.value for t in SHAPE_TYPES for s in g.subjects(RDF_TYPE, NamedNode(t)) if isinstance(s, NamedNode)}
    )
    return CompiledShapes(top=top, names=names)


# ---------------------------------------------------------------------------
# Evaluation


@dataclass(eq=False)
class Result:
    """One validation result, as pySHACL makes it."""

    focus: Term
    value: Term | None
    shape: Shape
    component: str
    details: list[Result] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return self.shape.severity


_STRINGS = (XSD_STRING, RDF_LANGSTRING)


def _is_string(term: Term) -> bool:
    """pySHACL compares IRIs and string literals as strings."""
    return isinstance(term, NamedNode) or (isinstance(term, Literal) and term.datatype.value in _STRINGS)


class Engine:
    """Validates one store against compiled shapes."""

    def __init__(self, store: Store, shapes: CompiledShapes) -> None:
        self.store = store
        self.shapes = shapes
        self.subclasses = bool(self.store.query(PREFIXES + "ASK { ?a rdfs:subClassOf ?b }"))
        self._instances: dict[str, set[Term]] = {}
        self._rows: dict[str, list[tuple[Term, ...]]] = {}
        self._node_results: dict[tuple[int, Term], list[Result]] = {}
        self._having: dict[tuple[int, str], set[Term]] = {}

    # -- queries ------------------------------------------------------------------

    def rows(self, query: str) -> list[tuple[Term, ...]]:
        solutions = self.store.query(PREFIXES + query)
        assert isinstance(solutions, QuerySolutions)
        return [tuple(s) for s in solutions]  # type: ignore[misc]

    def _cached(self, query: str) -> list[tuple[Term, ...]]:
        """Rows of a query, asked once: shapes that check the same path the same way share them."""
        if query not in self._rows:
            self._rows[query] = self.rows(query)
        return self._rows[query]

    def _type_path(self) -> str:
        return "rdf:type/rdfs:subClassOf*" if self.subclasses else "rdf:type"

    def instances(self, cls: str) -> set[Term]:
        if cls not in self._instances:
            self._instances[cls] = {
                r[0] for r in self.rows(f"SELECT DISTINCT ?f WHERE {{ ?f {self._type_path()} <{cls}> }}")
            }
        return self._instances[cls]

    def focus_nodes(self, shape: Shape) -> set[Term]:
        found: set[Term] = set()
        for kind, value in shape.targets:
            if kind == "targetClass":
                found |= self.instances(value.value)
            elif kind == "targetNode":
                found.add(value)
            elif kind == "targetSubjectsOf":
                found.update(r[0] for r in self.rows(f"SELECT DISTINCT ?f WHERE {{ ?f <{value.value}> ?o }}"))
            else:
                found.update(r[0] for r in self.rows(f"SELECT DISTINCT ?f WHERE {{ ?s <{value.value}> ?f }}"))
        return found

    # -- the run ------------------------------------------------------------------

    def run(self, step: Callable[[], None] | None = None) -> tuple[bool, list[Result]]:
        """All top-level results, and whether the data conforms."""
        conforms = True
        results: list[Result] = []
        for shape in self.shapes.top:
            if shape.deactivated:
                continue
            focus = self.focus_nodes(shape)
            found = self.evaluate(shape, focus, step)
            if shape.severity not in ALLOWED and any(r.severity not in ALLOWED for r in found):
                conforms = False
            results.extend(found)
        return conforms, results

    def evaluate(self, shape: Shape, focus: set[Term], step: Callable[[], None] | None = None) -> list[Result]:
        """The results of ``shape`` on ``focus`` (its own constraints, then its property shapes')."""
        found: list[Result] = []
        if shape.deactivated or not focus:
            if step:
                for _ in range(len(shape.constraints) + sum(len(p.constraints) for p in shape.properties)):
                    step()
            return found
        for c in shape.constraints:
            found.extend(self.constraint(shape, c, focus))
            if step:
                step()
        for prop in shape.properties:
            if prop.deactivated:
                if step:
                    for _ in prop.constraints:
                        step()
                continue
            for c in prop.constraints:
                found.extend(self.constraint(prop, c, focus))
                if step:
                    step()
        return found

    def node_results(self, shape: Shape, nodes: set[Term]) -> dict[Term, list[Result]]:
        """Results of ``shape`` per node (for sh:node: a node fails if it has any, warnings too)."""
        todo = {n for n in nodes if (id(shape), n) not in self._node_results}
        if todo:
            per: dict[Term, list[Result]] = {n: [] for n in todo}
            for r in self.evaluate(shape, todo):
                per[r.focus].append(r)
            for n, rs in per.items():
                self._node_results[(id(shape), n)] = rs
        return {n: self._node_results[(id(shape), n)] for n in nodes}

    # -- constraints --------------------------------------------------------------

    def constraint(self, shape: Shape, c: Constraint, focus: set[Term]) -> list[Result]:
        name = c.parameter[len(SH):]
        if shape.path is None:
            return self._node_level(shape, c, focus)
        path = shape.path
        make = self._maker(shape, c)
        if name == "minCount":
            return [make(f, None) for f in sorted(self._too_few(path, c.arg, focus), key=str)]
        if name == "maxCount":
            rows = self._cached(
                f"SELECT ?f WHERE {{ ?f {path.sparql} ?v }} GROUP BY ?f HAVING (COUNT(DISTINCT ?v) > {c.arg})"
            )
            over = {r[0] for r in rows if r[0] in focus}
            if over:  # rdflib may see fewer values, merging spellings that the store keeps apart
                for f, v in self._cached(f"SELECT ?f ?v WHERE {{ ?f {path.sparql} ?v }}"):
                    if f in over and isinstance(v, Literal) and not canonical(v):
                        _exact(v)
            return [make(f, None) for f in over]
        if name == "hasValue":
            having = {r[0] for r in self._cached(
                f"SELECT DISTINCT ?f WHERE {{ ?f {path.sparql} {_sparql_term(c.arg)} }}"
            )}
            return [make(f, None) for f in sorted(focus - having, key=str)]
        if name == "uniqueLang":
            if not c.arg:
                return []
            rows = self._cached(
                f"SELECT ?f ?l WHERE {{ ?f {path.sparql} ?v FILTER(isLiteral(?v) && LANG(?v) != \"\") "
                f"BIND(LCASE(LANG(?v)) AS ?l) }} GROUP BY ?f ?l HAVING (COUNT(DISTINCT ?v) > 1)"
            )
            return [make(r[0], None) for r in rows if r[0] in focus]
        if name == "lessThanOrEquals":
            return self._less_than_or_equals(shape, c, focus, make)
        if name == "node":
            return self._node(shape, c, focus, make)
        # value constraints: SPARQL finds the values that may break the constraint, Python decides
        # (the class test is exact in SPARQL already)
        bad = self._value_check(c) if name != "class" else None
        distinct = "" if path.simple else "DISTINCT "
        rows = self._cached(
            f"SELECT {distinct}?f ?v WHERE {{ ?f {path.sparql} ?v FILTER({self._candidates(c)}) }}"
        )
        return [make(f, v) for f, v in rows if f in focus and (bad is None or bad(v))]

    def _maker(self, shape: Shape, c: Constraint) -> Callable[[Term, Term | None], Result]:
        return lambda f, v: Result(f, v, shape, c.component)

    def _too_few(self, path: Path, n: int, focus: set[Term]) -> set[Term]:
        if n == 0:
            return set()
        key = (n, path.sparql)
        if key not in self._having:
            if n == 1:
                query = f"SELECT DISTINCT ?f WHERE {{ ?f {path.sparql} ?v }}"
            else:
                query = f"SELECT ?f WHERE {{ ?f {path.sparql} ?v }} GROUP BY ?f HAVING (COUNT(DISTINCT ?v) >= {n})"
            self._having[key] = {r[0] for r in self.rows(query)}
        return focus - self._having[key]

    def _node(self, shape: Shape, c: Constraint, focus: set[Term], make: Callable[..., Result]) -> list[Result]:
        assert shape.path is not None
        path = shape.path
        target: Shape = c.arg
        values = {r[0] for r in self._cached(
            f"SELECT DISTINCT ?v WHERE {{ ?f {path.sparql} ?v }}"
        )}
        failing = {v: rs for v, rs in self.node_results(target, values).items() if rs}
        if not failing:
            return []
        distinct = "" if path.simple else "DISTINCT "
        pairs = self._cached(f"SELECT {distinct}?f ?v WHERE {{ ?f {path.sparql} ?v }}")
        found = []
        for f, v in pairs:
            if f in focus and v in failing:
                r = make(f, v)
                r.details = list(failing[v])
                found.append(r)
        return found

    def _less_than_or_equals(
        self, shape: Shape, c: Constraint, focus: set[Term], make: Callable[..., Result]
    ) -> list[Result]:
        assert shape.path is not None
        path, other = shape.path, c.arg
        sure = " || ".join(
            f"(datatype(?v) = <{d}> && datatype(?w) = <{d}> && {_canonical_sparql(d, '?v')} && "
            f"{_canonical_sparql(d, '?w')} && ?v <= ?w)"
            for d in (XSD_INTEGER, XSD_DATE)
        )
        strings = ("((isIRI(?v) || datatype(?v) IN (xsd:string, rdf:langString)) && "
                   "(isIRI(?w) || datatype(?w) IN (xsd:string, rdf:langString)) && STR(?v) <= STR(?w))")
        distinct = "" if path.simple else "DISTINCT "
        rows = self._cached(
            f"SELECT {distinct}?f ?v ?w WHERE {{ ?f {path.sparql} ?v . ?f <{other}> ?w "
            f"FILTER(!(COALESCE({strings} || (isLiteral(?v) && isLiteral(?w) && ({sure})), false))) }}"
        )
        return [make(f, v) for f, v, w in rows if f in focus and not _less_or_equal(v, w)]

    def _node_level(self, shape: Shape, c: Constraint, focus: set[Term]) -> list[Result]:
        """A constraint on a node shape: the value node is the focus node itself."""
        make = self._maker(shape, c)
        name = c.parameter[len(SH):]
        if name == "hasValue":
            return [make(f, None) for f in sorted(focus, key=str) if f != c.arg]
        if name == "node":
            failing = self.node_results(c.arg, focus)
            found = []
            for f in sorted(focus, key=str):
                if failing[f]:
                    r = make(f, f)
                    r.details = list(failing[f])
                    found.append(r)
            return found
        bad = self._value_check(c)
        return [make(f, f) for f in sorted(focus, key=str) if bad(f)]

    def _candidates(self, c: Constraint) -> str:
        """A SPARQL filter on ``?v`` that keeps every value that may break ``c`` (and few others)."""
        name, arg = c.parameter[len(SH):], c.arg
        if name == "class":
            return f"NOT EXISTS {{ ?v {self._type_path()} <{arg}> }}"
        if name == "datatype":
            if arg == RDFS_LITERAL:
                return "!isLiteral(?v)"
            return f"!isLiteral(?v) || datatype(?v) != <{arg}> || !{_canonical_sparql(arg)}"
        if name == "nodeKind":
            return NODE_KINDS[arg]
        if name == "pattern":
            _compiled, sparql = arg
            if sparql is None:
                return "true"
            return (f"isBlank(?v) || (isLiteral(?v) && datatype(?v) != xsd:string && datatype(?v) != rdf:langString)"
                    f" || !REGEX(STR(?v), {_quote_sparql(sparql)})")
        if name == "in":
            members = " || ".join(f"sameTerm(?v, {_sparql_term(m)})" for m in sorted(arg, key=str))
            return f"!({members or 'false'})"
        if name == "languageIn":
            if "*" in arg:
                return '!isLiteral(?v) || LANG(?v) = ""'
            tags = ", ".join(_quote_sparql(t) for t in sorted(arg))
            return (f'!isLiteral(?v) || LANG(?v) = "" || !(LCASE(LANG(?v)) IN ({tags}) || '
                    f'LCASE(STRBEFORE(CONCAT(LANG(?v), "-"), "-")) IN ({tags}))')
        if name == "minInclusive":
            d = arg.datatype.value
            return f"!COALESCE(isLiteral(?v) && datatype(?v) = <{d}> && {_canonical_sparql(d)} && ?v >= {arg}, false)"
        raise Unsupported(name)  # pragma: no cover

    def _value_check(self, c: Constraint) -> Callable[[Term], bool]:
        """Whether a value breaks ``c``, decided as pySHACL decides."""
        name, arg = c.parameter[len(SH):], c.arg
        if name == "class":
            return lambda v: isinstance(v, Literal) or v not in self.instances(arg)
        if name == "datatype":
            return lambda v: _breaks_datatype(v, arg)
        if name == "nodeKind":
            return {
                SH + "IRI": lambda v: not isinstance(v, NamedNode),
                SH + "BlankNode": lambda v: not isinstance(v, BlankNode),
                SH + "Literal": lambda v: not isinstance(v, Literal),
                SH + "BlankNodeOrIRI": lambda v: isinstance(v, Literal),
                SH + "BlankNodeOrLiteral": lambda v: isinstance(v, NamedNode),
                SH + "IRIOrLiteral": lambda v: isinstance(v, BlankNode),
            }[arg]
        if name == "pattern":
            compiled = arg[0]
            return lambda v: _breaks_pattern(v, compiled)
        if name == "in":
            return lambda v: _breaks_in(v, arg)
        if name == "languageIn":
            return lambda v: _breaks_language_in(v, arg)
        if name == "minInclusive":
            return lambda v: _breaks_min_inclusive(v, arg)
        raise Unsupported(name)  # pragma: no cover


def _quote_sparql(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _breaks_datatype(v: Term, datatype: str) -> bool:
    if not isinstance(v, Literal):
        return True
    if datatype == RDFS_LITERAL:
        return False
    if v.datatype.value != datatype:
        return True
    if datatype in _STRINGS or canonical(v):
        return False
    lit = _exact(v)
    if getattr(lit, "ill_typed", None) is True:
        return True
    return not _actual_datatype(lit.value, datatype)


def _actual_datatype(value: object, datatype: str) -> bool:
    """pySHACL's ``DatatypeConstraintComponent._assert_actual_datatype``."""
    from decimal import Decimal

    checks: dict[str, type | tuple[type, ...]] = {
        XSD_STRING: (str, bytes),
        RDF_LANGSTRING: (str, bytes),
        XSD_INTEGER: int,
        XSD + "float": float,
        XSD + "decimal": Decimal,
        XSD_BOOLEAN: bool,
        XSD_DATE: dt.date,
        XSD + "time": dt.time,
        XSD + "dateTime": dt.datetime,
    }
    kind = checks.get(datatype)
    return True if kind is None else isinstance(value, kind)


def _string_of(v: Term) -> str:
    """pySHACL's ``value_node_to_string`` (strings are canonical: their text is their value)."""
    if isinstance(v, Literal) and not canonical(v):
        return str(_exact(v))
    return v.value


def _breaks_pattern(v: Term, compiled: re.Pattern[str]) -> bool:
    if isinstance(v, BlankNode):
        return True
    text = _string_of(v)
    return not (compiled.match(text) or compiled.search(text))


def _breaks_in(v: Term, members: frozenset[Term]) -> bool:
    if v in members:
        return False
    if isinstance(v, Literal) and not canonical(v):
        return _exact(v) not in {_rdflib(m) for m in members}
    return True


def _breaks_language_in(v: Term, tags: frozenset[str]) -> bool:
    if not isinstance(v, Literal) or not v.language:
        return True
    lang = v.language.lower()
    return not ("*" in tags or lang in tags or lang.split("-")[0] in tags)


def _breaks_min_inclusive(v: Term, minimum: Literal) -> bool:
    if not isinstance(v, Literal):
        return True
    if canonical(v):
        if _is_string(v):
            return True  # a string is never compared with a number or a date
        if v.datatype == minimum.datatype:
            return bool(_value(v) < _value(minimum))  # type: ignore[operator]
    from pyshacl.rdfutil.compare import compare_literal  # rare: literals of other types

    lit = _exact(v) if not canonical(v) else _rdflib(v)
    if isinstance(lit.value, str):
        return True
    try:
        return bool(compare_literal(lit, _rdflib(minimum)) < 0)
    except (TypeError, NotImplementedError):
        return True


def _less_or_equal(v: Term, w: Term) -> bool:
    """pySHACL's ``LessThanOrEqualsConstraintComponent._compare_ltoe`` for one pair."""
    if isinstance(v, BlankNode) or isinstance(w, BlankNode):
        raise Unsupported("sh:lessThanOrEquals on a blank node (pySHACL refuses it)")
    if all(isinstance(t, NamedNode) or (isinstance(t, Literal) and canonical(t)) for t in (v, w)):
        v_string, w_string = _is_string(v), _is_string(w)
        if v_string != w_string:
            return False
        if v_string:
            return v.value <= w.value
        assert isinstance(v, Literal) and isinstance(w, Literal)
        if v.datatype == w.datatype:
            return bool(_value(v) <= _value(w))  # type: ignore[operator]
    a, b = (_exact(t) if isinstance(t, Literal) and not canonical(t) else _rdflib(t) for t in (v, w))
    a_string = not isinstance(v, Literal) or isinstance(a.value, str)
    b_string = not isinstance(w, Literal) or isinstance(b.value, str)
    if a_string != b_string:
        return False
    if a_string:
        return str(a.value if isinstance(v, Literal) else a) <= str(b.value if isinstance(w, Literal) else b)
    try:
        return bool(a <= b)
    except TypeError:
        raise Unsupported("literals rdflib cannot compare") from None


def validate_store(
    store: Store, shapes: CompiledShapes, step: Callable[[], None] | None = None
) -> tuple[bool, list[Result]]:
    """Validate ``store`` against ``shapes``: (conforms, top-level results)."""
    return Engine(store, shapes).run(step)


def message(shape: Shape) -> str:
    """The result message, as ``validate._message`` picks it from pySHACL's report."""
    messages = shape.messages
    english = [m for m in messages if m.language in (None, "", "en")] or list(messages)
    if not english:
        return ""
    return sorted(english, key=lambda m: (m.value, m.language or ""))[0].value


def rebase_terms(
    triples: Sequence[tuple[Term, NamedNode, Term]], rebase: Callable[[str], str]
) -> list[tuple[Term, NamedNode, Term]]:
    """The triples with every IRI subject and object passed through ``rebase``."""

    def move(t: Term) -> Term:
        if isinstance(t, NamedNode):
            moved = rebase(t.value)
            return t if moved == t.value else NamedNode(moved)
        return t

    return [(move(s), p, move(o)) for s, p, o in triples]
