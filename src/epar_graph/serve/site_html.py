"""What every HTML page of the site shares: templates, security headers, paths and helper queries.

Entity pages, ``/ontology``, ``/shapes``, search, browse, changes, downloads and the
query page all render through :func:`render_html`, so they carry the same site
header, search box, footer and Content-Security-Policy. The request helpers say
where the site is mounted and which base IRI the served graph uses; the query
helpers run a page's small SELECTs with a timeout that never hangs a worker.

Only the :class:`~epar_graph.serve.store.SparqlStore` interface is used, so the
pages work unchanged over a remote SPARQL store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyoxigraph
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from pyoxigraph import BlankNode, Literal, NamedNode

from epar_graph.namespaces import PREFIXES
from epar_graph.serve.holdings import Holdings, read_holdings
from epar_graph.serve.store import SparqlStore

#: A node of an RDF graph (what pyoxigraph yields as subject or object).
RdfTerm = NamedNode | BlankNode | Literal

TEMPLATES_DIR = Path(__file__).with_name("templates")

#: Jinja environment shared by the HTML views; autoescaping is on for every
#: template because every literal in the graph is untrusted text.
templates = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True)

#: Seconds a page's helper query may run; a page should never hang a worker.
PAGE_QUERY_TIMEOUT = 10.0

#: What our HTML may load: only this server. Literals are escaped anyway; the policy is the
#: second fence, and it keeps the query page from calling out to other hosts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"
)
HTML_HEADERS = {"Vary": "Accept", "Content-Security-Policy": CONTENT_SECURITY_POLICY}


def render_html(name: str, context: dict[str, Any], request: Request, status: int = 200) -> HTMLResponse:
    """A page from ``templates/`` with the security headers every page carries."""
    settings = getattr(request.app.state, "settings", None)
    data_dir = getattr(settings, "data_dir", None)
    held = read_holdings(Path(data_dir) / "void.ttl") if data_dir is not None else Holdings()
    html = templates.get_template(name).render(root=root_path(request), holdings=held, **context)
    return HTMLResponse(html, status_code=status, headers=HTML_HEADERS)


# ---------------------------------------------------------------------------
# Requests and paths


def local_href(iri: str, base: str) -> str | None:
    """The path on this server that serves ``iri``, or None for an outside IRI."""
    if iri.startswith(base):
        return "/" + iri[len(base):]
    return None


def settings_base(request: Request) -> str:
    """The base IRI the served graph was minted under (the release's, unless the settings say otherwise)."""
    return str(request.app.state.settings.iris.base)


def request_store(request: Request) -> SparqlStore:
    """The app's store, typed: routers use only the :class:`SparqlStore` interface."""
    store: SparqlStore = request.app.state.store
    return store


def root_path(request: Request) -> str:
    """Where the app is mounted (a reverse proxy's prefix), without a trailing slash, for links."""
    return str(request.scope.get("root_path", "")).rstrip("/")


# ---------------------------------------------------------------------------
# A page's helper queries


def page_timeout(store: SparqlStore) -> float:
    """Seconds a page's helper query may run: :data:`PAGE_QUERY_TIMEOUT`, or less when the server's limit is."""
    return min(PAGE_QUERY_TIMEOUT, float(getattr(store, "default_timeout", PAGE_QUERY_TIMEOUT)))


def prefix_header() -> str:
    """The project's PREFIX lines, so a page's query can use ``epar:``, ``skos:`` and the rest."""
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items())


def select(store: SparqlStore, sparql: str) -> list[dict[str, RdfTerm]]:
    """Run a page's SELECT and return rows as dicts (unbound variables left out)."""
    result = store.query(prefix_header() + sparql, timeout=page_timeout(store))
    if not isinstance(result, pyoxigraph.QuerySolutions):
        return []
    names = [v.value for v in result.variables]
    rows = []
    for solution in result:
        row: dict[str, RdfTerm] = {}
        for name in names:
            term = solution[name]
            if term is not None:
                row[name] = term
        rows.append(row)
    return rows
