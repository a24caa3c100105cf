"""SPARQL text for people: the common prefixes predeclared, and syntax errors a person can read.

A query may use ``epar:``, ``rdf:``, ``rdfs:``, ``xsd:``, ``owl:``, ``skos:``,
``dcterms:``, ``schema:``, ``void:`` and ``wd:`` without declaring them (as the
Wikidata Query Service does for its own). A syntax error is one line, with
the line and column in the query as written, and a caret under the spot,
instead of the parser's list of every character it would have accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyoxigraph
from pyoxigraph import RdfFormat

from epar_graph.namespaces import PREFIXES

#: Prefixes every query may use undeclared.
COMMON_PREFIXES: dict[str, str] = {
    **{p: PREFIXES[p] for p in ("epar", "rdf", "rdfs", "xsd", "owl", "skos", "dcterms", "schema", "void")},
    "wd": "http://www.wikidata.org/entity/",
}
_DECLARED = re.compile(r"\bPREFIX\s+([A-Za-z][\w.-]*)?\s*:", re.IGNORECASE)
_POSITION = re.compile(r"error at (\d+):(\d+):?\s*(.*)", re.DOTALL)
MAX_MESSAGE = 160


@dataclass(frozen=True)
class Prepared:
    """A query with the missing common prefixes declared on lines before it."""

    text: str
    added_lines: int


#: Characters that cannot stand in an IRI reference between ``<`` and ``>``.
_NOT_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def with_common_prefixes(query: str, base: str | None = None) -> Prepared:
    """The query with the common prefixes it does not declare itself, and ``base`` as its base IRI.

    A base lets a query use relative IRIs (``<s>``): the protocol endpoint passes its own URL, as
    the SPARQL Protocol's tests expect. A query's own ``BASE`` still wins (a relative one resolved
    against ours, as RFC 3986 says), but it is resolved here and sent as the one ``BASE``, first:
    Virtuoso refuses a ``BASE`` anywhere else in the prologue, or a second one.
    """
    declared = {m[1] or "" for m in _DECLARED.finditer(query)}
    lines = [f"PREFIX {p}: <{iri}>" for p, iri in COMMON_PREFIXES.items() if p not in declared]
    if base is not None and not _NOT_IRI.search(base):
        own = _resolve_prologue(query, base)
        if own is not None:
            query, base = own
        lines.insert(0, f"BASE <{base}>")
    if not lines:
        return Prepared(query, 0)
    return Prepared("\n".join(lines) + "\n" + query, len(lines))


#: One declaration of a prologue, after any white space and comments: ``BASE <iri>`` or ``PREFIX p: <iri>``.
_DECLARATION = re.compile(
    r"(?:\s|#[^\n\r]*)*(?:(?P<base>BASE)|PREFIX\s*(?:[A-Za-z][\w.-]*)?\s*:)\s*<(?P<iri>[^<>\"{}|^`\\\x00-\x20]*)>",
    re.IGNORECASE,
)


#: The keyword ``BASE`` anywhere in a query (a cheap first look: in a name or string it only costs the full reading).
_BASE_WORD = re.compile("base", re.IGNORECASE)


def _resolve_prologue(query: str, base: str) -> tuple[str, str] | None:
    """The query without its ``BASE`` declarations, and the base its body is read against.

    Each ``BASE`` is resolved against the one before it (the first against ``base``), and each
    ``PREFIX`` IRI against the base in force where it stands, so the text means what it meant
    with its own declarations. A ``BASE`` becomes blanks of the same length, so a syntax error
    is still reported at the line and column the client wrote. ``None`` when the query declares
    no ``BASE`` (or one that cannot be read: the parser then says what is wrong with it).
    """
    if _BASE_WORD.search(query) is None:  # most queries: no declaration to resolve, none parsed
        return None
    parts: list[str] = []
    position = 0
    seen_base = False
    while (m := _DECLARATION.match(query, position)) is not None:
        resolved = resolve_iri(base, m["iri"])
        if resolved is None:
            return None
        if m["base"]:
            seen_base, base = True, resolved
            parts += [query[position : m.start("base")], re.sub(r"[^\n\r]", " ", query[m.start("base") : m.end()])]
        else:
            parts += [query[position : m.start("iri")], resolved, ">"]
        position = m.end()
    return ("".join(parts) + query[position:], base) if seen_base else None


def resolve_iri(base: str, reference: str) -> str | None:
    """``reference`` resolved against ``base`` as the query parser does (RFC 3986); None if either is no IRI."""
    try:
        (quad,) = pyoxigraph.parse(f"<{reference}> <{base}> <{base}> .".encode(), RdfFormat.TURTLE, base_iri=base)
    except (SyntaxError, ValueError):
        return None
    return quad.subject.value if isinstance(quad.subject, pyoxigraph.NamedNode) else None


def _short(expected: str) -> str:
    """The parser's message without its list of every acceptable character."""
    text = " ".join(expected.split())
    text = re.sub(r"\[[^\]]{40,}\]", "a name", text)
    text = re.sub(r"'\\u\{[0-9A-Fa-f]+\}'\s*\.\.=\s*'\\u\{[0-9A-Fa-f]+\}'", "", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


#: How parsers say a prefix was not declared: pyoxigraph's words, then Virtuoso's.
_UNKNOWN_PREFIX = ("Prefix not found", "Undefined namespace prefix")
_PNAME_BEFORE = re.compile(r"([A-Za-z][\w.-]*)?:[\w.-]*\s*$")
_PNAME_AT = re.compile(r"([A-Za-z][\w.-]*)?:")


def _prefixed_name_at(text: str, column: int) -> re.Match[str] | None:
    """The prefixed name ending at ``column`` (where pyoxigraph points) or starting there (Virtuoso)."""
    return _PNAME_BEFORE.search(text[:column]) or _PNAME_AT.match(text, column)


def explain(error: Exception, prepared: Prepared, original: str) -> str:
    """A syntax error as "line L, column C: what" plus the offending line and a caret under the spot."""
    message = str(error)
    m = _POSITION.search(message)
    if not m:
        return _short(message)
    line = int(m[1]) - prepared.added_lines
    column = int(m[2])
    lines = original.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return f"line {max(line, 1)}, column {column}: {_short(m[3])}"
    text = lines[line - 1]
    caret_at = max(0, min(column - 1, len(text)))
    what = _short(m[3])
    if any(words in m[3] for words in _UNKNOWN_PREFIX):
        used = _prefixed_name_at(text, caret_at)
        name = (used[1] or "") if used else ""
        what = f"unknown prefix {name}: (declare it: PREFIX {name}: <…>)"
        caret_at = used.start() if used else caret_at
    return f"line {line}, column {column}: {what}\n  {text}\n  {' ' * caret_at}^"


# --- what a remote engine needs to be told -----------------------------------------------------

#: A comment, a string (long or short) or an IRI reference: text in which keywords are not keywords.
_OPAQUE = re.compile(
    r"#[^\n\r]*|'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\""
    r"|'(?:[^'\\\n\r]|\\.)*'|\"(?:[^\"\\\n\r]|\\.)*\"|<[^<>\"{}|^`\\\x00-\x20]*>",
    re.DOTALL,
)
_FORM = re.compile(r"(SELECT|ASK|CONSTRUCT|DESCRIBE)(?![\w:-])", re.IGNORECASE)
_PROLOGUE = re.compile(r"\s*(?:(?:PREFIX\s*(?:[A-Za-z][\w.-]*)?\s*:|BASE)\s*)*", re.IGNORECASE)
_FROM = re.compile(r"(?<![\w:?$])FROM(?![\w:-])", re.IGNORECASE)


def _keywords_text(query: str) -> str:
    """The query with comments, strings and IRIs blanked out, so only its own words remain."""
    return _OPAQUE.sub(" ", query)


def query_form(query: str) -> str | None:
    """``SELECT``, ``ASK``, ``CONSTRUCT`` or ``DESCRIBE``: which kind of answer to ask an engine for.

    The form is the first word after the prologue (``PREFIX``/``BASE`` declarations), comments,
    strings and IRIs aside; ``None`` when it is none of these, e.g. for an update, even one whose
    ``WHERE`` holds a sub-``SELECT``.
    """
    text = _keywords_text(query)
    prologue = _PROLOGUE.match(text)
    m = _FORM.match(text, prologue.end() if prologue else 0)
    return m[1].upper() if m else None


def names_a_dataset(query: str) -> bool:
    """Whether the query chooses its own graphs (``FROM`` / ``FROM NAMED``).

    ``FROM`` is a keyword only in dataset clauses, so a ``FROM`` outside comments, strings and
    IRIs is one; a prefixed name (``ex:FROM``) or a variable (``?from``) is not.
    """
    return _FROM.search(_keywords_text(query)) is not None
