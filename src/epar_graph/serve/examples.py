"""``/.well-known/sparql-examples``: the example queries as data, the way UniProt and SIB publish theirs.

Each file of ``queries/`` is an ``sh:SPARQLExecutable`` (and the
``sh:SPARQLSelectExecutable`` … of its query form) with its title as
``rdfs:label``, its description as ``rdfs:comment``, the query text
(``sh:select``, ``sh:construct``, ``sh:ask``), ``schema:target`` (this
endpoint) and ``schema:keywords``, so tools that read such catalogues can
list and run them.
"""

from __future__ import annotations

import functools
import re

import pyoxigraph
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph.namespaces import PREFIXES, RDF, RDFS, SCHEMA, SH
from epar_graph.serve import site_html
from epar_graph.serve.ui import Example, load_examples

router = APIRouter()

_FORMS = {
    "SELECT": (SH.SPARQLSelectExecutable, SH.select),
    "CONSTRUCT": (SH.SPARQLConstructExecutable, SH.construct),
    "ASK": (SH.SPARQLAskExecutable, SH.ask),
    "DESCRIBE": (SH.SPARQLDescribeExecutable, SH.describe),
}
_FORM = re.compile(r"^\s*(SELECT|CONSTRUCT|ASK|DESCRIBE)\b", re.IGNORECASE | re.MULTILINE)
_STOP = {"with", "that", "their", "from", "each", "what", "which", "medicines", "medicine", "products", "of", "by"}


def query_form(query: str) -> str:
    """SELECT, CONSTRUCT, ASK or DESCRIBE: the first form keyword after the prologue and comments."""
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("#"))
    m = _FORM.search(body)
    return m[1].upper() if m else "SELECT"


def keywords(example: Example) -> list[str]:
    words = re.findall(r"[a-z][a-z0-9-]+", example.name.split("-", 1)[-1].removesuffix(".rq").lower())
    return sorted({w for w in words if len(w) > 3 and w not in _STOP})


def example_triples(base: str, endpoint: str) -> list[Triple]:
    out: list[Triple] = []
    for ex in load_examples():
        node = NamedNode(f"{base}sparql-examples/{ex.name.removesuffix('.rq')}")
        kind, text_property = _FORMS[query_form(ex.query)]
        out += [
            Triple(node, RDF.type, SH.SPARQLExecutable),
            Triple(node, RDF.type, kind),
            Triple(node, RDFS.label, Literal(ex.title, language="en")),
            Triple(node, RDFS.comment, Literal(ex.description or ex.title, language="en")),
            Triple(node, text_property, Literal(ex.query)),
            Triple(node, SCHEMA.target, NamedNode(endpoint)),
        ]
        out += [Triple(node, SCHEMA.keywords, Literal(k)) for k in keywords(ex)]
    return out


@functools.lru_cache(maxsize=8)
def _turtle(base: str, endpoint: str) -> bytes:
    prefixes = {p: PREFIXES[p] for p in ("rdf", "rdfs", "sh", "schema")}
    data = pyoxigraph.serialize(example_triples(base, endpoint), format=RdfFormat.TURTLE, prefixes=prefixes)
    return data or b""


@router.get("/.well-known/sparql-examples", include_in_schema=False)
def sparql_examples(request: Request) -> Response:
    endpoint = str(request.base_url).rstrip("/") + site_html.root_path(request) + "/sparql"
    return Response(_turtle(site_html.settings_base(request), endpoint), media_type="text/turtle; charset=utf-8",
                    headers={"Access-Control-Allow-Origin": "*"})
