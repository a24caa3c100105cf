"""The query page (``GET /``): a YASGUI SPARQL editor preloaded with the example queries.

YASGUI is served from this package (``static/yasgui/``, MIT licence, from the
npm package ``@triply/yasgui``), never from a CDN: the page must work on an
air-gapped machine and must not leak what people query. Its autocompleters
that would call prefix.cc and LOV are replaced by local lists built from our
namespaces and ontology.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import pyoxigraph
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from epar_graph import config
from epar_graph.namespaces import EPAR, PREFIXES, RDF, RDFS
from epar_graph.serve import site_html, vocabulary_pages
from epar_graph.serve.store import SparqlStore

router = APIRouter()
log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")

#: The first comment lines of an example query: ``# title: …`` and ``# description: …``.
_HEADER = re.compile(r"^#\s*(?P<key>[A-Za-z-]+)\s*:\s*(?P<value>.*?)\s*$")


class ExampleError(ValueError):
    """An example query file without the header the query page needs."""


@dataclass(frozen=True)
class Example:
    """One example query: file name, the title shown in the menu, what it answers, the SPARQL."""

    name: str
    title: str
    description: str
    query: str


def parse_example(path: Path) -> Example:
    """Read ``path``; its leading comment lines must give at least ``# title: …``.

    A ``# description:`` line may continue on further comment lines. A missing
    title is an error that names the file, because an untitled entry in the
    menu is useless.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExampleError(f"{path}: cannot read example query: {exc}") from exc
    fields: dict[str, str] = {}
    last_key: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                break
            continue
        match = _HEADER.match(stripped)
        if match:
            last_key = match["key"].lower()
            fields[last_key] = match["value"]
        elif last_key == "description":
            fields["description"] += " " + stripped.lstrip("#").strip()
    title = fields.get("title", "").strip()
    if not title:
        raise ExampleError(f"{path}: line 1: field 'title': the query must start with '# title: …'")
    return Example(
        name=path.stem,
        title=title,
        description=fields.get("description", "").strip(),
        query=text.strip() + "\n",
    )


def load_examples(directory: Path | None = None) -> list[Example]:
    """Every ``*.rq`` of the examples folder, in file-name order (the files are numbered)."""
    directory = directory or config.QUERIES_DIR
    if not directory.is_dir():
        return []
    return [parse_example(p) for p in sorted(directory.glob("*.rq"))]


def _vocabulary_completions() -> tuple[list[str], list[str], list[str]]:
    """Prefix declarations, property IRIs and class IRIs for offline autocompletion."""
    prefixes = sorted(f"{p}: <{ns}>" for p, ns in PREFIXES.items())
    onto = vocabulary_pages.load_ontology()
    properties = {RDF.type.value, RDFS.label.value}
    classes: set[str] = set()
    if onto is not None:
        for term in onto.terms:
            (classes if term.kind == "class" else properties).add(term.iri)
    else:
        properties |= {EPAR.iri(t) for t in EPAR.terms if t[0].islower()}
        classes |= {EPAR.iri(t) for t in EPAR.terms if t[0].isupper()}
    return prefixes, sorted(properties), sorted(classes)


def _start_entity(store: SparqlStore) -> tuple[str, str] | None:
    """A product with overview questions (the richest kind of page), to invite browsing."""
    sparql = (
        f"SELECT ?p ?l WHERE {{ ?p a <{EPAR.MedicinalProduct.value}> ; "
        f"<{EPAR.overviewQuestion.value}> ?q ; <{RDFS.label.value}> ?l }} ORDER BY ?p LIMIT 1"
    )
    try:
        result = store.query(sparql, timeout=site_html.page_timeout(store))
    except Exception as exc:  # the invitation is optional; the page must render without it
        log.warning("no example entity for the query page: %s", exc)
        return None
    if isinstance(result, pyoxigraph.QuerySolutions):
        for row in result:
            iri, label = row["p"], row["l"]
            if iri is not None and label is not None:
                return iri.value, label.value
    return None


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def query_page(request: Request) -> Response:
    """The SPARQL editor with the example queries, and the ways into the data."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    try:
        examples = load_examples()
        error = ""
    except ExampleError as exc:
        examples, error = [], str(exc)
    prefixes, properties, classes = _vocabulary_completions()
    start = _start_entity(request.app.state.store)
    start_link = None
    if start is not None:
        href = site_html.local_href(start[0], site_html.settings_base(request))
        if href:
            start_link = {"href": root + href, "label": start[1]}
    data = {
        "endpoint": root + "/sparql",
        "base": site_html.settings_base(request),
        "root": root,
        "examples": [asdict(e) for e in examples],
        "prefixes": prefixes,
        "properties": properties,
        "classes": classes,
    }
    context = {
        "examples": examples,
        "data": data,
        "error": error,
        "start": start_link,
        "sparql_get": lambda q: f"{root}/sparql?query={quote(q)}",
    }
    return site_html.render_html("index.html", context, request)


@router.get("/static/{path:path}", include_in_schema=False)
def static_file(path: str) -> Response:
    """Files under ``static/`` (stylesheet, page script, the vendored YASGUI build).

    Paths are resolved and checked to stay inside the folder, so ``..`` cannot
    reach anything else on disk.
    """
    root = STATIC_DIR.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return Response("Not found\n", status_code=404, media_type="text/plain; charset=utf-8")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})
