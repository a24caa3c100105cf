"""Checks of a SPARQL query's text made before any query worker sees it.

* **Shape.** pyoxigraph's parser and evaluator recurse once per level of a
  query's tree: 2,240 nested ``{``, 4,700 nested ``(`` or 2,700 ``MINUS`` in a
  row overflow a worker's 8 MB stack and kill it. A query nesting ``{``, ``(``,
  ``[`` or ``<<`` deeper than :data:`MAX_NESTING`, chaining more than
  :data:`MAX_NESTING` ``!``, or made of more than :data:`MAX_TERMS` terms is
  refused (400). Within those bounds the worker's own stack (see ``store.py``)
  has room to spare for every shape measured.
* **Federation.** Every endpoint a ``SERVICE`` clause may call is read twice, and
  a query is refused when either reading names one the allow-list does not hold:

  - from the query's **parse tree**, made by tree-sitter with its SPARQL 1.1
    grammar (C, linear time, no recursion limit: 10,000 nested groups parse in
    milliseconds). Each ``service_graph_pattern`` gives its endpoint: an IRI
    resolved against the ``BASE`` in force, a prefixed name expanded with the
    ``PREFIX`` declared, or a variable (unknown). A tree with syntax errors is
    not read: pyoxigraph, which runs the query, parses SPARQL 1.2 and some glued
    forms (``SERVICEex:s``) this grammar does not;
  - from the **text**, by a lexer that puts strings, comments and IRIs out of
    the way and takes a ``SERVICE`` that is not part of a variable or prefixed
    name as the keyword, glued to its neighbours or not. It covers what the
    tree does not read, and it is a floor: a difference between this grammar
    and the engine's can only add refusals, never open a hole.

  pyoxigraph does not expose its own algebra, and rdflib's parser gives up
  (RecursionError) on 100 nested groups, so neither can be the reader. Both
  readings see the query as sent and with ``\\u`` escapes decoded. When in
  doubt the answer errs towards "a SERVICE is there, endpoint unknown": a
  refused harmless query is a nuisance, an unnoticed federated call is a hole.

Every step is linear in the query's length: each regular expression either
runs over disjoint stretches of text or looks at most :data:`WINDOW`
characters around a match, at most :data:`MAX_SERVICE_MENTIONS` mentions of
"service" are looked at, and an unterminated string is scanned once, not once
per quote inside it; only a query with the word "service" is parsed. A 1 MB
query is checked in well under a second; the web layer runs the check of long
queries in a thread, off the event loop.
"""

from __future__ import annotations

import re
import urllib.parse
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tree_sitter

#: Deepest nesting of ``{``, ``(``, ``[`` and ``<<`` accepted (real queries rarely pass 10).
MAX_NESTING = 128
#: Most terms (names, literals, punctuation) in one query.
MAX_TERMS = 100_000
#: Most mentions of "service" read before the query is taken as unverifiable.
MAX_SERVICE_MENTIONS = 1_000
#: Characters looked at around a mention; longer names count as "cannot be checked".
WINDOW = 256


@dataclass(frozen=True)
class Refusal:
    """Why a query is not run: the HTTP status and a message for the client."""

    status: int
    message: str


# --- reading the text -------------------------------------------------------------------------

_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_SPECIAL = re.compile(r"[\"'<#]")
_IRI = re.compile(r"<([^<>\"{}|^`\\\x00-\x20]*+)>")
_COMMENTS = re.compile(r"(?:#[^\n\r]*+\s*+)++")  # a run of comment lines, read as one piece
# String bodies, possessive: each scan stops where the string ends or cannot go on.
_LONG_BODY = {
    '"': re.compile(r'(?:(?:""|")?+(?:[^"\\]|\\.))*+', re.S),
    "'": re.compile(r"(?:(?:''|')?+(?:[^'\\]|\\.))*+", re.S),
}
_SHORT_BODY = {
    '"': re.compile(r'(?:[^"\\\n\r]|\\.)*+', re.S),
    "'": re.compile(r"(?:[^'\\\n\r]|\\.)*+", re.S),
}


def unescape_codepoints(text: str) -> str:
    r"""Replace ``\uXXXX`` / ``\UXXXXXXXX`` escapes by the characters they stand for."""

    def repl(m: re.Match[str]) -> str:
        code = int(m.group(1) or m.group(2), 16)
        return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else m.group(0)

    return _UNICODE_ESCAPE.sub(repl, text)


@dataclass(frozen=True)
class Code:
    """Query text with strings blanked (``""``), comments removed and IRIs replaced by ``<n>`` placeholders."""

    text: str
    iris: list[str]


class TooManyTerms(Exception):
    """Reading stopped: the query has more than :data:`MAX_TERMS` terms."""


def code_of(query: str, *, bounded: bool = False) -> Code:
    """The query's :class:`Code`, in one pass over the text.

    With ``bounded``, raise :class:`TooManyTerms` as soon as the query is known to have more than
    :data:`MAX_TERMS` terms: every piece read is a term (an IRI, a string, a lone quote or ``<``) except
    a run of comments, and two such runs have a term between them, so more than ``2 * MAX_TERMS + 1``
    pieces mean too many terms. That bounds the work on any input.
    """
    limit = 2 * MAX_TERMS + 1 if bounded else len(query) + 1
    pieces = 0
    parts: list[str] = []
    iris: list[str] = []
    # Where an unterminated string of each kind stopped: a later quote of the same kind before that point
    # starts a string that stops there too (the earlier scan passed it as an escape), so it is not rescanned.
    dead_until = {'"': -1, "'": -1, '"""': -1, "'''": -1}
    pos, end = 0, len(query)
    while pos < end:
        m = _SPECIAL.search(query, pos)
        if m is None:
            parts.append(query[pos:])
            break
        start = m.start()
        if start > pos:
            parts.append(query[pos:start])
        pieces += 1
        if pieces > limit:
            raise TooManyTerms
        ch = query[start]
        if ch == "#":
            pos = _COMMENTS.match(query, start).end()  # type: ignore[union-attr]
            parts.append(" ")
            continue
        if ch == "<":
            iri = _IRI.match(query, start)
            if iri is None:
                parts.append("<")
                pos = start + 1
            else:
                parts.append(f"<{len(iris)}>")
                value = iri.group(1)
                iris.append(unescape_codepoints(value) if "\\" in value else value)
                pos = iri.end()
            continue
        triple = query.startswith(ch * 3, start)
        kind = ch * 3 if triple else ch
        if start < dead_until[kind]:
            parts.append(ch)
            pos = start + 1
            continue
        body_start = start + len(kind)
        body = (_LONG_BODY if triple else _SHORT_BODY)[ch].match(query, body_start)
        stop = body.end() if body else body_start
        if query.startswith(kind, stop):
            parts.append('""')
            pos = stop + len(kind)
        else:  # unterminated: the quote is read as code, like anything the parser would reject
            dead_until[kind] = stop
            parts.append(ch)
            pos = start + 1
    return Code("".join(parts), iris)


def readings(query: str) -> list[str]:
    """The query as sent and, when it has ``\\u`` escapes, as decoded."""
    decoded = unescape_codepoints(query) if "\\u" in query or "\\U" in query else query
    return [query] if decoded == query else [query, decoded]


# --- shape ------------------------------------------------------------------------------------

_NON_BRACKET = re.compile(r"<<|>>|[{}()\[\]]|[^{}()\[\]<>]+|[<>]")
_NOT_RUN = re.compile(r"(?:!(?!=)\s*+)++")
_TERM = re.compile(r"<\d+>|\"\"|[?$][\w\u00B7\u0300-\u036F\u203F-\u2040]*+|[\w.\-:%\\]++|\S")
_DELTA = {"{": 1, "(": 1, "[": 1, "<<": 1, "}": -1, ")": -1, "]": -1, ">>": -1}


def nesting_depth(code: str) -> int:
    """The deepest nesting of brackets in query code (strings and IRIs already out of the way)."""
    brackets = [t for t in _NON_BRACKET.findall(code) if t in _DELTA]
    return max(accumulate(_DELTA[t] for t in brackets), default=0)


def shape_problem(query: str) -> Refusal | None:
    """A 400 for a query nested or long enough to exhaust a worker's stack; None when it is fine."""
    too_many = Refusal(400, f"The query has more than {MAX_TERMS} terms. Split it into smaller ones.")
    for text in readings(query):
        openers = sum(text.count(c) for c in "{([<!")
        if openers <= MAX_NESTING and len(text) <= MAX_TERMS:
            continue  # cannot be too deep or too long, whatever the strings hold
        try:
            code = code_of(text, bounded=True).text
        except TooManyTerms:
            return too_many
        if _TERM.subn("", code)[1] > MAX_TERMS:
            return too_many
        depth = nesting_depth(code)
        if depth > MAX_NESTING:
            return Refusal(
                400,
                f"The query nests {depth} levels deep ({{ }}, ( ), [ ] or OPTIONAL/UNION groups); "
                f"at most {MAX_NESTING} are accepted. Flatten it.",
            )
        nots = max((run.count("!") for run in _NOT_RUN.findall(code)), default=0)
        if nots > MAX_NESTING:
            return Refusal(400, f"The query chains {nots} '!' operators; at most {MAX_NESTING} are accepted.")
    return None


# --- federation -------------------------------------------------------------------------------

_SERVICE_MENTION = re.compile(r"service", re.I)
_DECLARATION = re.compile(r"\s*+(?:(PREFIX)\s*+([^\s:<]*+):\s*+<(\d+)>|(BASE)\s*+<(\d+)>)", re.I)
_SILENT = re.compile(r"\s*+(?:SILENT)?\s*+", re.I)
_IRI_PLACEHOLDER = re.compile(r"<(\d+)>")
_PNAME = re.compile(rf"([^\s:<>{{}}()]{{0,{WINDOW}}}):((?:[\w.\-:%]|\\.){{0,{WINDOW * 16}}})")
_PNAME_GOES_ON = re.compile(r"[\w.\-:%\\]")
# Read backwards from a mention (on the reversed text before it): a variable name, a prefixed name.
_VARIABLE_BEHIND = re.compile(r"[\w\u00B7\u0300-\u036F\u203F-\u2040]*+[?$]")
_PNAME_BEHIND = re.compile(r"[\w.\-%\\]*+:")


@dataclass
class _Prologue:
    end: int
    prefixes: dict[str, set[str]]
    bases: list[str]


def _prologue(code: Code) -> _Prologue:
    """The leading PREFIX/BASE declarations: the only place SPARQL allows them."""
    prefixes: dict[str, set[str]] = {}
    bases: list[str] = []
    pos = 0
    while (m := _DECLARATION.match(code.text, pos)) is not None:
        if m.group(1):
            prefixes.setdefault(m.group(2), set()).add(code.iris[int(m.group(3))])
        else:
            bases.append(code.iris[int(m.group(5))])
        pos = m.end()
    return _Prologue(pos, prefixes, bases)


def service_endpoints(query: str) -> set[str | None]:
    """Every endpoint a ``SERVICE`` clause of ``query`` may call; None for one that cannot be known."""
    found: set[str | None] = set()
    texts = readings(query)
    for text in texts:
        if _SERVICE_MENTION.search(text):
            found |= _service_endpoints(code_of(text))
    if _SERVICE_MENTION.search(texts[-1]):  # the parser reads the text with its escapes decoded, as SPARQL says
        found |= parsed_service_endpoints(texts[-1])
    return found


# --- the parse tree ---------------------------------------------------------------------------


@cache
def _grammar() -> tuple[tree_sitter.Language, tree_sitter.Query]:
    """The SPARQL grammar, and a tree query for the nodes the federation check reads."""
    import tree_sitter
    import tree_sitter_sparql

    # The grammar package hands out its language as a bare pointer, which tree-sitter still takes but calls
    # deprecated (newer grammar packages hand out a capsule); the warning is about that, not about us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        language = tree_sitter.Language(tree_sitter_sparql.language())
    nodes = tree_sitter.Query(
        language, "(base_declaration) @base (prefix_declaration) @prefix (service_graph_pattern) @service"
    )
    return language, nodes


def parsed_service_endpoints(text: str) -> set[str | None]:
    """The endpoints of the SERVICE clauses in ``text``'s parse tree; empty when the text does not parse.

    Declarations are read in order, as the parser resolves them: a ``PREFIX`` IRI against the ``BASE``
    before it, a ``SERVICE`` IRI against the last ``BASE``.
    """
    import tree_sitter

    language, nodes = _grammar()
    root = tree_sitter.Parser(language).parse(text.encode("utf-8")).root_node
    if root.has_error:
        return set()
    captures = tree_sitter.QueryCursor(nodes).captures(root)
    declared = sorted(captures.get("base", []) + captures.get("prefix", []), key=lambda n: n.start_byte)
    base: str | None = None
    prefixes: dict[str, str | None] = {}
    for node in declared:
        iri = _node_iri(node)
        if node.type == "base_declaration":
            base = _resolved(iri, base) if iri is not None else None
        else:
            namespace = node.named_children[0] if node.named_children else None
            name = _text(namespace).removesuffix(":") if namespace is not None else ""
            prefixes[name] = _resolved(iri, base) if iri is not None else None
    found: set[str | None] = set()
    for service in captures.get("service", []):
        found.add(_service_target(service, prefixes, base))
    return found


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _node_iri(node: tree_sitter.Node) -> str | None:
    for child in node.named_children:
        if child.type == "iri_reference":
            return _text(child)[1:-1]
    return None


_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")  # an IRI with a scheme


def _resolved(iri: str, base: str | None) -> str | None:
    """``iri`` against ``base``: None for a relative IRI with no base (then the endpoint is unknown)."""
    if _ABSOLUTE.match(iri):
        return iri
    return urllib.parse.urljoin(base, iri) if base is not None else None


def _service_target(service: tree_sitter.Node, prefixes: dict[str, str | None], base: str | None) -> str | None:
    """The endpoint of one ``service_graph_pattern``: None for a variable or anything unresolvable."""
    for child in service.named_children:
        if child.type == "iri_reference":
            return _resolved(_text(child)[1:-1], base)
        if child.type == "prefixed_name":
            parts = {c.type: _text(c) for c in child.named_children}
            namespace = prefixes.get(parts.get("namespace", ":").removesuffix(":"))
            if namespace is None:
                return None
            return namespace + re.sub(r"\\(.)", r"\1", parts.get("pn_local", ""))
        if child.type != "comment":
            return None  # a variable, or a node this reading does not know
    return None


# --- the text ---------------------------------------------------------------------------------


def _service_endpoints(code: Code) -> set[str | None]:
    text = code.text
    prologue = _prologue(code)
    found: set[str | None] = set()
    for count, m in enumerate(_SERVICE_MENTION.finditer(text, prologue.end)):
        if count >= MAX_SERVICE_MENTIONS:
            found.add(None)  # too many to look at: cannot be checked
            break
        behind = text[max(0, m.start() - WINDOW) : m.start()][::-1]
        if _VARIABLE_BEHIND.match(behind) or _PNAME_BEHIND.match(behind):
            continue  # the letters belong to a longer variable or prefixed name
        silent = _SILENT.match(text, m.end())
        found |= _endpoint_at(text, silent.end() if silent else m.end(), code.iris, prologue)
    return found


def _endpoint_at(text: str, pos: int, iris: list[str], prologue: _Prologue) -> set[str | None]:
    placeholder = _IRI_PLACEHOLDER.match(text, pos)
    if placeholder:
        return _absolute(iris[int(placeholder.group(1))], prologue.bases)
    pname = _PNAME.match(text, pos)
    if pname and pname.end() > pos:
        if _PNAME_GOES_ON.match(text, pname.end()):
            return {None}  # longer than the window: cannot be checked
        namespaces = prologue.prefixes.get(pname.group(1))
        if not namespaces:
            return {None}
        local = re.sub(r"\\(.)", r"\1", pname.group(2))
        out: set[str | None] = set()
        for ns in namespaces:
            out |= _absolute(ns + local, prologue.bases)
        return out
    return {None}  # a variable, or something unreadable: cannot be checked


def _absolute(iri: str, bases: Sequence[str]) -> set[str | None]:
    candidates: Sequence[str | None] = bases or [None]
    return {_resolved(iri, base) for base in candidates}


def refused_services(query: str, allowlist: frozenset[str]) -> list[str]:
    """The SERVICE endpoints of ``query`` that the allow-list does not permit (described for a message)."""
    refused = []
    for endpoint in service_endpoints(query):
        if endpoint is None:
            refused.append("(an endpoint given by a variable, an undeclared prefix or unreadable text)")
        elif endpoint not in allowlist:
            refused.append(f"<{endpoint}>")
    return sorted(refused)


def check(query: str, allowlist: frozenset[str]) -> Refusal | None:
    """Every check, in order: shape (400), then federation (403). None: the query may run."""
    problem = shape_problem(query)
    if problem is not None:
        return problem
    refused = refused_services(query, allowlist)
    if refused:
        return Refusal(403, "Federated queries to these endpoints are not allowed here: " + ", ".join(refused) + ".")
    return None
