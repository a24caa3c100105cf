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
    the SPARQL Protocol's tests expect. A query's own ``BASE`` comes later in the prologue, so it
    still wins (a relative one is resolved against ours, as RFC 3986 says).
    """
    declared = {m[1] or "" for m in _DECLARED.finditer(query)}
    lines = [f"PREFIX {p}: <{iri}>" for p, iri in COMMON_PREFIXES.items() if p not in declared]
    if base is not None and not _NOT_IRI.search(base):
        lines.insert(0, f"BASE <{base}>")
    if not lines:
        return Prepared(query, 0)
    return Prepared("\n".join(lines) + "\n" + query, len(lines))


def _short(expected: str) -> str:
    """The parser's message without its list of every acceptable character."""
    text = " ".join(expected.split())
    text = re.sub(r"\[[^\]]{40,}\]", "a name", text)
    text = re.sub(r"'\\u\{[0-9A-Fa-f]+\}'\s*\.\.=\s*'\\u\{[0-9A-Fa-f]+\}'", "", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


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
    if "Prefix not found" in m[3]:
        used = re.search(r"([A-Za-z][\w.-]*)?:[\w.-]*\s*$", text[:caret_at])
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
