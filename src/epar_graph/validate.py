"""Check RDF data against the SHACL shapes and report what is wrong, in words.

The shapes (``shapes/epar.shacl.ttl``) are the contract of a release: every
constraint carries an ``sh:message``, so a report can be read without knowing
SHACL. This module loads RDF in any common syntax, checks it and turns the
results into typed :class:`Violation` records, which the renderers print as
text, Turtle, JSON or JUnit XML (for CI dashboards).

Two engines give the same results. ``fast`` (the default) loads the data into
a pyoxigraph store and runs the constraints as SPARQL queries
(:mod:`epar_graph.shacl_fast`); ``pyshacl`` parses with rdflib and runs pySHACL,
the reference. The fast engine hands over to pySHACL by itself for shapes or
input it cannot check exactly as pySHACL does.

pySHACL runs without inference and without SHACL-AF: the data graph states
every type explicitly, and skipping inference keeps a full release (tens of
thousands of triples) to seconds rather than minutes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epar_graph import config, iris, release, runtime
from epar_graph.iris import Minter
from epar_graph.namespaces import PREFIXES, prefixed_name

if TYPE_CHECKING:  # rdflib, pySHACL and pyoxigraph are imported where they are used: the CLI starts fast
    import rdflib
    from pyoxigraph import Store
    from rdflib.term import Node

    from epar_graph import shacl_fast

SH_NS = "http://www.w3.org/ns/shacl#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
ENGINES = ("fast", "pyshacl")
SHAPES_NS = "https://w3id.org/epar/shapes#"

#: File-name endings and the rdflib parser that reads them (longest first).
_FORMATS_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    (".jsonld", "json-ld"),
    (".json", "json-ld"),
    (".ttl", "turtle"),
    (".turtle", "turtle"),
    (".nt", "nt"),
    (".ntriples", "nt"),
    (".nq", "nquads"),
    (".trig", "trig"),
    (".n3", "n3"),
    (".rdf", "xml"),
    (".owl", "xml"),
    (".xml", "xml"),
)

#: Characters XML 1.0 cannot carry at all, even escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class UnreadableInput(Exception):
    """An input file that is missing, binary or not valid RDF in the syntax it claims."""

    def __init__(self, file: Path | str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = str(file)
        self.reason = reason


@dataclass(frozen=True)
class Violation:
    """One validation result.

    ``focus_node``, ``shape`` and ``constraint`` are IRIs; ``path`` is the
    property IRI (or a SPARQL-style path for complex SHACL paths); ``value``
    is the offending value in N-Triples notation, so literals keep their
    datatype and language.
    """

    focus_node: str
    path: str | None
    value: str | None
    shape: str
    constraint: str
    message: str
    severity: str


@dataclass
class ValidationReport:
    """The outcome of one validation run."""

    conforms: bool
    violations: list[Violation]
    #: Every named shape in the shapes graph: the JUnit report lists passing ones too.
    shapes: list[str] = field(default_factory=list)
    #: Size of the data graph that was checked.
    triples: int = 0
    #: The engine that produced the results ("fast" or "pyshacl").
    engine: str = "pyshacl"
    #: The base the data's entity IRIs were minted under (the release's ``void:uriSpace``).
    base: str = iris.DEFAULT_BASE
    #: The W3C results graph (pySHACL's own), or a function that makes it when first asked.
    _results: rdflib.Graph | Callable[[], rdflib.Graph] | None = field(default=None, repr=False, compare=False)

    @property
    def results_graph(self) -> rdflib.Graph:
        """The results as a W3C ``sh:ValidationReport`` graph (nested ``sh:detail`` results included)."""
        import rdflib

        if self._results is None:
            self._results = rdflib.Graph()
        elif not isinstance(self._results, rdflib.Graph):
            self._results = self._results()
        return self._results


# ---------------------------------------------------------------------------
# Loading RDF


def _format_for(name: str, text: str) -> str:
    """The rdflib parser for a file: by extension, else by a look at its first characters."""
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    for suffix, fmt in _FORMATS_BY_SUFFIX:
        if lower.endswith(suffix):
            return fmt
    head = text.lstrip("\ufeff \t\r\n")[:200]
    if head.startswith(("<?xml", "<rdf:RDF")):
        return "xml"
    if head.startswith(("{", "[")):
        return "json-ld"
    return "turtle"  # Turtle also reads N-Triples


def _read_text(path: Path) -> str:
    """The file's text, refusing binary content with a reason a user can act on."""
    if not path.exists():
        raise UnreadableInput(path, "no such file")
    if path.is_dir():
        raise UnreadableInput(path, "is a directory, not an RDF file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableInput(path, f"cannot be read ({exc.strerror or exc})") from None
    if path.name.lower().endswith(".gz") or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UnreadableInput(path, f"is not a valid gzip file ({exc})") from None
    if b"\x00" in raw[:8192]:
        raise UnreadableInput(path, "is a binary file, not RDF")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableInput(
            path, f"is not UTF-8 text (byte {exc.start}); RDF files must be UTF-8"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[:3])[:300]


def load_rdf(paths: Iterable[Path | str]) -> rdflib.Graph:
    """Parse RDF files (Turtle, N-Triples, gzipped N-Triples, JSON-LD, RDF/XML) into one rdflib graph.

    The syntax comes from the file extension, or from the content when the
    extension says nothing. Any file that cannot be parsed raises
    :class:`UnreadableInput` naming it, so the caller never shows a traceback.
    """
    import rdflib

    graph = rdflib.Graph()
    for item in paths:
        path = Path(item)
        text = _read_text(path)
        fmt = _format_for(path.name, text)
        part = rdflib.Graph()
        try:
            with warnings.catch_warnings():
                # rdflib's JSON-LD parser uses its own deprecated classes; not the user's concern
                warnings.simplefilter("ignore", DeprecationWarning)
                part.parse(data=text, format=fmt, publicID=path.resolve().as_uri())
        except Exception as exc:  # rdflib's parsers raise many unrelated exception types
            raise UnreadableInput(path, f"is not valid {fmt} ({_first_line(exc)})") from None
        graph += part
    return graph


#: IRIs under the default base that are vocabulary, not data: never rebased.
_VOCABULARY_BASES = (config.DEFAULT_BASE + "ontology", config.DEFAULT_BASE + "shapes")


def _rebased_iri(text: str, base: str) -> str:
    """A data IRI the shapes name (a scheme, a known status) moved under ``base``."""
    if text.startswith(config.DEFAULT_BASE) and not text.startswith(_VOCABULARY_BASES):
        return base + text[len(config.DEFAULT_BASE):]
    return text


def _rebase(term: Node, base: str) -> Node:
    from rdflib.term import URIRef

    return URIRef(_rebased_iri(str(term), base)) if isinstance(term, URIRef) else term


@lru_cache(maxsize=4)
def _shapes_graph(path: str, mtime: float, base: str) -> rdflib.Graph:
    """The parsed shapes file; cached because tests and the CLI validate many graphs.

    The shapes name the concept schemes under the default base IRI; a build
    minted under another base (``build --base``) gets shapes that name its schemes.
    """
    import rdflib

    del mtime  # part of the cache key only: an edited file is parsed again
    graph = load_rdf([path])
    if base == config.DEFAULT_BASE:
        return graph
    rebased = rdflib.Graph()
    for s, p, o in graph:
        rebased.add((_rebase(s, base), p, _rebase(o, base)))
    return rebased


def _shapes_key(shapes: Path | None, mint: Minter) -> tuple[str, float, str]:
    path = Path(shapes) if shapes is not None else config.SHAPES_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise UnreadableInput(path, "no such shapes file") from None
    return str(path.resolve()), mtime, mint.base


def load_shapes(shapes: Path | None = None, mint: Minter | None = None) -> rdflib.Graph:
    """The SHACL shapes graph (default: the project's ``shapes/epar.shacl.ttl``), for data minted by ``mint``."""
    return _shapes_graph(*_shapes_key(shapes, mint or Minter()))


@lru_cache(maxsize=4)
def _compiled_shapes(path: str, mtime: float, base: str) -> shacl_fast.CompiledShapes:
    """The shapes compiled for the fast engine (same rebasing as :func:`_shapes_graph`).

    Raises :class:`shacl_fast.Unsupported` when the fast engine cannot check
    them as pySHACL would, unreadable shapes included: pySHACL then runs and
    reports the problem in its words.
    """
    from pyoxigraph import NamedNode, parse

    from epar_graph import shacl_fast

    del mtime
    file = Path(path)
    try:
        text = _read_text(file)
        fmt = _oxigraph_formats()[_format_for(file.name, text)]
        triples = [
            (t.subject, t.predicate, t.object)
            for t in parse(text, format=fmt, base_iri=file.as_uri(), without_named_graphs=True)
        ]
    except (UnreadableInput, KeyError, SyntaxError, ValueError, OSError) as exc:
        raise shacl_fast.Unsupported(f"shapes not readable by pyoxigraph: {exc}") from None
    if not all(isinstance(p, NamedNode) for _, p, _ in triples):
        raise shacl_fast.Unsupported("generalised triples in the shapes")
    if base != config.DEFAULT_BASE:
        triples = shacl_fast.rebase_terms(triples, lambda iri: _rebased_iri(iri, base))  # type: ignore[arg-type]
    return shacl_fast.compile_shapes(triples)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Validation


def _node_text(node: Node | None) -> str | None:
    from rdflib.term import Literal

    if node is None:
        return None
    if isinstance(node, Literal):
        return node.n3()
    return str(node)


def _path_text(graph: rdflib.Graph, node: Node | None) -> str | None:
    """A SHACL property path as a SPARQL property path (plain IRI for a simple path)."""
    from rdflib.collection import Collection
    from rdflib.namespace import RDF, SH
    from rdflib.term import BNode, URIRef

    if node is None:
        return None
    if isinstance(node, URIRef):
        return str(node)
    if not isinstance(node, BNode):
        return str(node)

    def part(n: Node) -> str:
        text = _path_text(graph, n) or ""
        return f"<{text}>" if isinstance(n, URIRef) else f"({text})"

    if (node, RDF.first, None) in graph:
        return "/".join(part(n) for n in Collection(graph, node))
    alternatives = graph.value(node, SH.alternativePath)
    if alternatives is not None:
        return "|".join(part(n) for n in Collection(graph, alternatives))
    for predicate, suffix in (
        (SH.zeroOrMorePath, "*"),
        (SH.oneOrMorePath, "+"),
        (SH.zeroOrOnePath, "?"),
    ):
        inner = graph.value(node, predicate)
        if inner is not None:
            return part(inner) + suffix
    inverse = graph.value(node, SH.inversePath)
    if inverse is not None:
        return "^" + part(inverse)
    return str(node)


def _message(graph: rdflib.Graph, result: Node) -> str:
    """The result's message, preferring English when the shape gives several."""
    from rdflib.namespace import SH
    from rdflib.term import Literal

    messages = [m for m in graph.objects(result, SH.resultMessage) if isinstance(m, Literal)]
    if not messages:
        return ""
    english = [m for m in messages if m.language in (None, "en")]
    return str(sorted(english or messages)[0])


def _severity(node: Node | str | None) -> str:
    text = str(node) if node is not None else SH_NS + "Violation"
    return text[len(SH_NS):] if text.startswith(SH_NS) else text


def _violations(results: rdflib.Graph) -> list[Violation]:
    """Top-level results of a pySHACL report (nested ``sh:detail`` results stay in the graph)."""
    from rdflib.namespace import RDF, SH

    found = []
    for report in results.subjects(RDF.type, SH.ValidationReport):
        for result in results.objects(report, SH.result):
            found.append(
                Violation(
                    focus_node=_node_text(results.value(result, SH.focusNode)) or "",
                    path=_path_text(results, results.value(result, SH.resultPath)),
                    value=_node_text(results.value(result, SH.value)),
                    shape=_node_text(results.value(result, SH.sourceShape)) or "",
                    constraint=_node_text(results.value(result, SH.sourceConstraintComponent)) or "",
                    message=_message(results, result),
                    severity=_severity(results.value(result, SH.resultSeverity)),
                )
            )
    return _sorted(found)


def _sorted(violations: list[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda v: (v.shape, v.focus_node, v.path or "", v.value or "", v.constraint))


def _named_shapes(shapes: rdflib.Graph) -> list[str]:
    from rdflib.namespace import RDF, SH
    from rdflib.term import URIRef

    names = {
        str(s)
        for kind in (SH.NodeShape, SH.PropertyShape)
        for s in shapes.subjects(RDF.type, kind)
        if isinstance(s, URIRef)
    }
    return sorted(names)


def _pyshacl(data: rdflib.Graph, shapes: Path | None, mint: Minter) -> ValidationReport:
    """Validate with pySHACL, the reference engine."""
    import pyshacl  # slow to import; only the validate stage needs it
    import rdflib
    from pyshacl.errors import ReportableRuntimeError

    shapes_graph = load_shapes(shapes, mint)
    shapes_path = shapes if shapes is not None else config.SHAPES_FILE
    # pySHACL logs its own copy of every error to stderr; ours is the one-line message below
    log = logging.getLogger("pyshacl-validate")
    was_disabled, log.disabled = log.disabled, True
    try:
        conforms, results, _text = pyshacl.validate(
            data,
            shacl_graph=shapes_graph,
            inference="none",
            advanced=False,
            abort_on_first=False,
            allow_warnings=True,  # sh:Warning results are reported but do not fail the data
            allow_infos=False,
        )
    except ReportableRuntimeError as exc:  # a shapes file that parses but is not valid SHACL
        raise UnreadableInput(shapes_path, f"is not usable SHACL ({_first_line(exc)})") from None
    finally:
        log.disabled = was_disabled
    if not isinstance(results, rdflib.Graph):  # pySHACL hands back a ValidationFailure here
        raise UnreadableInput(shapes_path, f"could not be evaluated ({_first_line(results)})")
    return ValidationReport(
        conforms=bool(conforms),
        violations=_violations(results),
        shapes=_named_shapes(shapes_graph),
        triples=len(data),
        engine="pyshacl",
        base=mint.base,
        _results=results,
    )


def _fast(
    store: Store, compiled: shacl_fast.CompiledShapes, mint: Minter, step: Callable[[], None] | None = None
) -> ValidationReport:
    """Validate a store with the fast engine; raises ``shacl_fast.Unsupported`` to hand over to pySHACL."""
    from epar_graph import shacl_fast

    conforms, results = shacl_fast.validate_store(store, compiled, step)
    violations = [
        Violation(
            focus_node=shacl_fast.node_text(r.focus),
            path=r.shape.path.text if r.shape.path is not None else None,
            value=shacl_fast.node_text(r.value) if r.value is not None else None,
            shape=r.shape.name,
            constraint=r.component,
            message=shacl_fast.message(r.shape),
            severity=_severity(r.severity),
        )
        for r in results
    ]
    return ValidationReport(
        conforms=conforms,
        violations=_sorted(violations),
        shapes=list(compiled.names),
        triples=len(store),
        engine="fast",
        base=mint.base,
        _results=lambda: _results_graph(conforms, results),
    )


def _results_graph(conforms: bool, results: Sequence[shacl_fast.Result]) -> rdflib.Graph:
    """The fast engine's results as the W3C results graph pySHACL writes (``sh:detail`` for sh:node)."""
    import rdflib
    from rdflib.collection import Collection
    from rdflib.namespace import RDF, SH

    from epar_graph import shacl_fast

    graph = rdflib.Graph()
    report = rdflib.BNode()
    graph.add((report, RDF.type, SH.ValidationReport))
    graph.add((report, SH.conforms, rdflib.Literal(conforms)))

    def path_node(path: shacl_fast.Path) -> Node:
        if path.kind == "iri":
            return rdflib.URIRef(path.text)
        node = rdflib.BNode()
        parts = [path_node(p) for p in path.parts]
        if path.kind == "sequence":
            Collection(graph, node, parts)
        elif path.kind == "alternative":
            items = rdflib.BNode()
            Collection(graph, items, parts)
            graph.add((node, SH.alternativePath, items))
        else:
            graph.add((node, SH.inversePath, parts[0]))
        return node

    def add(r: shacl_fast.Result) -> Node:
        node = rdflib.BNode()
        graph.add((node, RDF.type, SH.ValidationResult))
        graph.add((node, SH.focusNode, shacl_fast._rdflib(r.focus)))
        graph.add((node, SH.resultSeverity, rdflib.URIRef(r.severity)))
        graph.add((node, SH.sourceConstraintComponent, rdflib.URIRef(r.component)))
        graph.add((node, SH.sourceShape, shacl_fast._rdflib(r.shape.node)))
        if r.value is not None:
            graph.add((node, SH.value, shacl_fast._rdflib(r.value)))
        if r.shape.path is not None:
            graph.add((node, SH.resultPath, path_node(r.shape.path)))
        for m in r.shape.messages:
            graph.add((node, SH.resultMessage, shacl_fast._rdflib(m)))
        for d in r.details:
            graph.add((node, SH.detail, add(d)))
        return node

    for r in results:
        graph.add((report, SH.result, add(r)))
    return graph


def validate_graph(
    data: rdflib.Graph, shapes: Path | None = None, engine: str = "fast", mint: Minter | None = None
) -> ValidationReport:
    """Validate an rdflib graph against the shapes file and return a typed report.

    ``engine`` is ``"fast"`` (pyoxigraph; pySHACL takes over for what it cannot
    check exactly) or ``"pyshacl"``. Raises :class:`UnreadableInput` if the
    shapes file cannot be read. ``mint`` is the base the data was minted under
    (default: the default base).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    mint = mint or Minter()
    if engine == "fast":
        from pyoxigraph import RdfFormat, Store

        from epar_graph import shacl_fast

        try:
            compiled = _compiled_shapes(*_shapes_key(shapes, mint))
            store = Store()
            store.load(data.serialize(format="nt", encoding="utf-8"), format=RdfFormat.N_TRIPLES)
            return _fast(store, compiled, mint)
        except shacl_fast.Unsupported:
            pass
    return _pyshacl(data, shapes, mint)


#: rdflib parser names (see :func:`_format_for`) that pyoxigraph reads the same way, as triples.
_OXIGRAPH_FORMATS: dict[str, Any] = {}


def _oxigraph_formats() -> dict[str, Any]:
    if not _OXIGRAPH_FORMATS:
        from pyoxigraph import RdfFormat

        _OXIGRAPH_FORMATS.update(
            {"turtle": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES, "json-ld": RdfFormat.JSON_LD,
             "xml": RdfFormat.RDF_XML}
        )
    return _OXIGRAPH_FORMATS


class _NotForOxigraph(Exception):
    """Input that pyoxigraph does not read as rdflib does: rdflib (and pySHACL) take it."""


class _Reader(io.RawIOBase):
    """A file handed to pyoxigraph: counts the bytes read (for the progress bar), skips a UTF-8 BOM."""

    def __init__(self, raw: io.BufferedReader, counted: Callable[[int], None] | None, skip: int) -> None:
        self.raw = raw
        self.counted = counted
        self.last = 0
        if skip:
            raw.read(skip)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        if self.counted is not None:
            position = self.raw.tell()
            self.counted(position - self.last)
            self.last = position
        return n


def _head(path: Path) -> tuple[bool, bytes]:
    """Whether ``path`` is gzipped, and the first 8 KiB of its (decompressed) content."""
    if not path.exists():
        raise UnreadableInput(path, "no such file")
    if path.is_dir():
        raise UnreadableInput(path, "is a directory, not an RDF file")
    try:
        with path.open("rb") as f:
            magic = f.read(2)
            f.seek(0)
            gz = path.name.lower().endswith(".gz") or magic == b"\x1f\x8b"
            head = gzip.GzipFile(fileobj=f).read(8192) if gz else f.read(8192)
    except (OSError, EOFError):
        raise _NotForOxigraph from None  # rdflib words the reason
    return gz, head


def load_store(paths: Sequence[Path | str], progress: Callable[[int], None] | None = None) -> Store:
    """Load RDF files into one in-memory pyoxigraph store (streamed; gzip, Turtle, N-Triples, JSON-LD, RDF/XML).

    ``progress`` is called with the number of (compressed) bytes read so far
    since the last call. Raises :class:`UnreadableInput` for a missing,
    directory or binary file, and ``_NotForOxigraph`` when pyoxigraph cannot
    read a file as rdflib would (another syntax, or an error: rdflib then has
    the last word on what is wrong).
    """
    from pyoxigraph import DefaultGraph, Quad, Store, parse

    store = Store()
    for index, item in enumerate(paths):
        path = Path(item)
        gz, head = _head(path)
        if b"\x00" in head:
            raise UnreadableInput(path, "is a binary file, not RDF")
        bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
        fmt = _oxigraph_formats().get(_format_for(path.name, head[bom:].decode("utf-8", "ignore")))
        if fmt is None:
            raise _NotForOxigraph
        raw = path.open("rb")
        try:
            counted = _Reader(raw, progress, 0) if gz else None
            stream: Any = gzip.GzipFile(fileobj=counted) if gz else _Reader(raw, progress, bom)
            if gz and bom:
                stream.read(bom)
            base = path.resolve().as_uri()
            if index == 0:
                store.bulk_load(stream, format=fmt, base_iri=base)
            else:  # blank nodes of different files are different nodes, as in rdflib
                store.extend(
                    Quad(q.subject, q.predicate, q.object, DefaultGraph())
                    for q in parse(stream, format=fmt, base_iri=base, rename_blank_nodes=True)
                )
        except (SyntaxError, ValueError, OSError, EOFError, UnicodeDecodeError):
            raise _NotForOxigraph from None
        finally:
            raw.close()
    return store


def validate_files(
    files: Sequence[Path],
    shapes: Path | None = None,
    engine: str = "fast",
    progress: _Phases | None = None,
    mint: Minter | None = None,
) -> ValidationReport:
    """Load ``files`` and validate them; the engine of :func:`run_validate`.

    The shapes name concepts under the base the data was minted under: ``mint``, else
    the base the files' release records (its ``void.ttl``), else the default base.
    Raises :class:`UnreadableInput` for input or shapes that cannot be read.
    """
    phases = progress or _Phases(quiet=True)
    mint = mint or _release_minter(files)
    if engine == "fast":
        from epar_graph import shacl_fast

        try:
            compiled = _compiled_shapes(*_shapes_key(shapes, mint))
            total = sum(Path(f).stat().st_size for f in files if Path(f).is_file())
            phases.start(f"parsing {_names(files)}", total)
            with runtime.no_cyclic_gc():
                store = load_store(files, phases.advance)
                phases.start("checking shapes", compiled.steps)
                return _fast(store, compiled, mint, phases.advance)
        except (shacl_fast.Unsupported, _NotForOxigraph):
            pass  # pySHACL decides (and words any error)
    import rdflib

    phases.start(f"parsing {_names(files)}", len(files))
    graph = rdflib.Graph()
    for f in files:
        graph += load_rdf([f])
        phases.advance(1)
    phases.start("checking shapes (pySHACL)", None)
    return _pyshacl(graph, shapes, mint)


def _release_minter(files: Sequence[Path]) -> Minter:
    """The base recorded by the release the files belong to (the ``void.ttl`` beside them)."""
    for f in files:
        try:
            mint = release.recorded_minter(Path(f).parent)
        except release.NotARelease as exc:
            raise UnreadableInput(Path(f).parent / release.VOID_FILE, str(exc)) from None
        if mint is not None:
            return mint
    return Minter()




def _names(files: Sequence[Path]) -> str:
    names = [Path(f).name for f in files]
    return names[0] if len(names) == 1 else f"{len(names)} files"


class _Phases:
    """A progress bar on stderr for the phases of a run (parse, check, report), shown on a terminal only."""

    def __init__(self, quiet: bool) -> None:
        self.progress: Any = None
        self.task: Any = None
        if quiet or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def __enter__(self) -> _Phases:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Take the bar off the terminal (before an error message is printed)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def start(self, description: str, total: float | None) -> None:
        """Begin a phase (``total`` None: of unknown length); the previous one is done."""
        if self.progress is None:
            return
        if self.task is not None:  # the phase before is complete
            done = self.progress.tasks[-1].total or 1
            self.progress.update(self.task, total=done, completed=done)
        self.task = self.progress.add_task(description, total=total)
        self.progress.refresh()

    def advance(self, amount: float = 1) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, amount)


# ---------------------------------------------------------------------------
# Rendering


def _namespaces(base: str) -> dict[str, str]:
    """Prefixes for the text report: the vocabularies', the shapes' and ``e:`` for our entities."""
    return {**PREFIXES, "sh": SH_NS, "eparsh": SHAPES_NS, "e": base}


_CURIE_LOCAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SHORT = 100


def _shorten(literal: str) -> str:
    """A long literal (an answer text, say) cut to one readable line, tag kept."""
    lexical, sep, tail = literal.rpartition('"')
    if len(lexical) <= _SHORT:
        return literal
    return lexical[:_SHORT] + "…" + sep + tail


def _compact(namespaces: dict[str, str], text: str | None) -> str:
    """A short, readable form of an IRI (``epar:atcCode``, ``e:atc/L04``) or of a
    literal's datatype (``"2018-03-23"^^xsd:date``); control characters are escaped
    so a report cannot garble the terminal."""
    if not text:
        return "-"
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    if text.startswith('"') and text.endswith(">") and '"^^<' in text:
        lexical, datatype = text.rsplit("^^<", 1)
        iri = datatype[:-1]
        short = _compact(namespaces, iri)
        return f"{_shorten(lexical)}^^{f'<{iri}>' if short == iri else short}"
    if text.startswith('"'):
        return _shorten(text)
    if not text.startswith(("http://", "https://")):
        return text
    # the longest namespace whose local name reads as a CURIE (``epar:`` beats ``e:``)
    name = prefixed_name(text, namespaces, accept=_CURIE_LOCAL.match)
    return f"{name[0]}:{name[1]}" if name else f"<{text}>"


def _constraint_name(constraint: str) -> str:
    name = constraint.removeprefix(SH_NS)
    return name.removesuffix("ConstraintComponent") if name != constraint else constraint


def _by_shape(report: ValidationReport) -> dict[str, list[Violation]]:
    groups: dict[str, list[Violation]] = {}
    for v in report.violations:
        groups.setdefault(v.shape, []).append(v)
    return groups


def _is_violation(v: Violation) -> bool:
    return v.severity == "Violation"


def _summary(report: ValidationReport) -> str:
    warnings = sum(1 for v in report.violations if not _is_violation(v))
    noted = f" ({warnings} warning(s))" if warnings else ""
    if report.conforms:
        return (
            f"Conforms: {report.triples} triples checked against {len(report.shapes)} shapes, "
            f"no violations{noted}."
        )
    violations = [v for v in report.violations if _is_violation(v)]
    groups = {v.shape for v in violations}
    return (
        f"Does not conform: {len(violations)} violation(s) of {len(groups)} shape(s) "
        f"in {report.triples} triples{noted}."
    )


#: How many results of a warning-only shape the text report lists before "… and N more".
WARNING_EXAMPLES = 5


def render_text(report: ValidationReport) -> str:
    """A human-readable report: violations grouped by shape, then a summary line."""
    ns = _namespaces(report.base)
    lines: list[str] = []
    for shape, violations in _by_shape(report).items():
        only_warnings = not any(_is_violation(v) for v in violations)
        kind = "warning(s)" if only_warnings else "violation(s)"
        lines.append(f"{_compact(ns, shape)} ({len(violations)} {kind})")
        messages = dict.fromkeys(v.message for v in violations if v.message)
        lines.extend(f"  {m}" for m in messages)
        shown = violations[:WARNING_EXAMPLES] if only_warnings else violations
        for v in shown:
            lines.append(
                f"  - focus {_compact(ns, v.focus_node)}  path {_compact(ns, v.path)}  "
                f"value {_compact(ns, v.value)}  [{_constraint_name(v.constraint)}, {v.severity}]"
            )
        if len(shown) < len(violations):
            lines.append(f"  … and {len(violations) - len(shown)} more")
        lines.append("")
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def render_turtle(report: ValidationReport) -> str:
    """pySHACL's results graph (a W3C ``sh:ValidationReport``) as Turtle."""
    graph = report.results_graph
    graph.bind("sh", SH_NS)
    graph.bind("eparsh", SHAPES_NS)
    for prefix, base in PREFIXES.items():
        graph.bind(prefix, base)
    return graph.serialize(format="turtle")


def render_json(report: ValidationReport) -> str:
    """The report as JSON: ``conforms``, counts and one object per violation."""
    payload = {
        "conforms": report.conforms,
        "triples": report.triples,
        "violationCount": len(report.violations),
        "violations": [asdict(v) for v in report.violations],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _xml_safe(text: str) -> str:
    """Text XML 1.0 can carry: ElementTree escapes ``<&"`` but not control characters."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def render_junit(report: ValidationReport) -> str:
    """JUnit XML: one ``<testcase>`` per shape, one ``<failure>`` per violation.

    CI systems show JUnit reports natively, so a broken release shows up as
    failed "tests" named after the shapes it breaks.
    """
    ns = _namespaces(report.base)
    groups = _by_shape(report)
    names = sorted(set(report.shapes) | set(groups))
    suite = ET.Element(
        "testsuite",
        {
            "name": "epar-graph SHACL validation",
            "tests": str(len(names)),
            "failures": str(sum(1 for n in names if n in groups)),
            "errors": "0",
            "skipped": "0",
        },
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "triples", "value": str(report.triples)})
    for name in names:
        case = ET.SubElement(
            suite,
            "testcase",
            {"name": _xml_safe(_compact(ns, name)), "classname": "epar-graph.shacl"},
        )
        for v in groups.get(name, []):
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "message": _xml_safe(v.message or _constraint_name(v.constraint)),
                    "type": _xml_safe(_constraint_name(v.constraint)),
                },
            )
            failure.text = _xml_safe(
                f"focus: {v.focus_node}\npath: {v.path or '-'}\nvalue: {v.value or '-'}\n"
                f"constraint: {v.constraint}\nseverity: {v.severity}\n"
            )
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


RENDERERS = {
    "text": render_text,
    "turtle": render_turtle,
    "json": render_json,
    "junit": render_junit,
}


# ---------------------------------------------------------------------------
# Command


def _error(message: str) -> None:
    print(f"epar-graph validate: error: {message}", file=sys.stderr)


def run_validate(
    files: Sequence[Path],
    fmt: str,
    shapes: Path | None,
    output: Path | None,
    *,
    engine: str = "fast",
    quiet: bool = False,
) -> int:
    """The ``epar-graph validate`` command.

    Returns 0 if the data conforms, 1 if it has violations and 2 if an input
    (data or shapes) cannot be read, the format or engine is unknown or the
    report cannot be written; errors are one line naming the file. A progress
    bar (parse, check, report) is shown on a terminal unless ``quiet``.
    """
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        _error(f"unknown report format {fmt!r} (choose from {', '.join(RENDERERS)})")
        return 2
    if engine not in ENGINES:
        _error(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
        return 2
    if not files:
        _error("no input files")
        return 2
    with _Phases(quiet) as phases:
        try:
            report = validate_files(files, shapes, engine, phases)
        except UnreadableInput as exc:
            phases.close()
            _error(str(exc))
            return 2
        phases.start("writing the report", 1)
        text = renderer(report)
        phases.advance(1)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _error(f"{output}: cannot write the report ({exc.strerror or exc})")
            return 2
        print(_summary(report), file=sys.stderr)
    return 0 if report.conforms else 1
