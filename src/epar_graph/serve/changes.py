"""``/changes``: what changed between EMA's exports, for people (HTML), programs (JSON) and feed readers (Atom).

The changes are the ``epar:Change`` nodes of the build's ``changes.nt``, read
through the store interface like every other page. Filters (change type,
product, date range) are checked before they reach a query, pages are
bounded, and the newest change comes first: the date of a change is the date
the source gives for it (``epar:effectiveDate``), else that of the export
that first shows it.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from epar_graph.graph import CHANGE_TYPE_LABELS
from epar_graph.history import CHANGE_TYPES
from epar_graph.iris import Minter
from epar_graph.model import PRODUCT_NUMBER_RE
from epar_graph.serve import site_html
from epar_graph.serve.negotiation import negotiate

router = APIRouter()

PAGE_SIZE = 100
FEED_SIZE = 100
#: Pages beyond this are refused: a crawler walking every page must not cost more than the data.
MAX_PAGE = 1000
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class ChangeRow:
    iri: str
    href: str | None
    label: str
    type: str
    type_label: str
    product: str
    product_href: str | None
    product_label: str
    date: str  # effective date, else the date of the export that shows it
    effective_date: str | None
    from_snapshot: str
    to_snapshot: str


@dataclass(frozen=True)
class Filters:
    type: str | None = None
    product: str | None = None  # a product number
    since: dt.date | None = None
    until: dt.date | None = None

    def query_string(self, **more: object) -> str:
        params: dict[str, object] = {
            k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(self).items() if v
        }
        params.update({k: v for k, v in more.items() if v})
        return urlencode(params)


class BadFilter(ValueError):
    """A filter value that is not one the page knows (named in the 400 response)."""


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name}: {value!r} is not a date YYYY-MM-DD") from None


def parse_filters(request: Request) -> tuple[Filters, int]:
    """The filters and the page number of a request; :class:`BadFilter` names a bad one."""
    q = request.query_params
    kind = q.get("type") or None
    if kind is not None and kind not in CHANGE_TYPES:
        raise BadFilter(f"type: {kind!r} is not one of {', '.join(CHANGE_TYPES)}")
    product = re.sub(r"\s", "", q.get("product") or "").upper() or None
    if product is not None and not PRODUCT_NUMBER_RE.match(product):
        raise BadFilter(f"product: {product!r} is not a product number like EMEA/H/C/004258")
    page_text = q.get("page") or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise BadFilter(f"page: {page_text!r} is not a page number from 1 to {MAX_PAGE}")
    return Filters(kind, product, _date(q.get("since"), "since"), _date(q.get("until"), "until")), int(page_text)


def _where(filters: Filters, mint: Minter) -> str:
    """The graph pattern of the changes matching ``filters`` (values already checked)."""
    parts = [
        "?c a epar:Change ; rdfs:label ?label ; epar:changeType ?type ; epar:changedProduct ?product ;",
        "   epar:fromSnapshot/dcterms:issued ?from ; epar:toSnapshot/dcterms:issued ?to .",
        "OPTIONAL { ?c epar:effectiveDate ?eff }",
        "BIND (COALESCE(?eff, ?to) AS ?when)",
    ]
    if filters.type:
        parts.append(f"FILTER (?type = <{mint.concept('change-type', filters.type)}>)")
    if filters.product:
        parts.append(f"FILTER (?product = <{mint.product(filters.product)}>)")
    if filters.since:
        parts.append(f'FILTER (?when >= "{filters.since.isoformat()}"^^xsd:date)')
    if filters.until:
        parts.append(f'FILTER (?when <= "{filters.until.isoformat()}"^^xsd:date)')
    return "\n".join(parts)


def find_changes(request: Request, filters: Filters, limit: int, offset: int = 0) -> tuple[list[ChangeRow], int]:
    """One page of matching changes, newest first, and how many match in all."""
    base = site_html.settings_base(request)
    store = site_html.request_store(request)
    where = _where(filters, Minter(base))
    counted = site_html.select(store, f"SELECT (COUNT(?c) AS ?n) WHERE {{ {where} }}")
    total = int(counted[0]["n"].value) if counted and "n" in counted[0] else 0
    rows = site_html.select(
        store,
        f"SELECT ?c ?label ?type ?product ?from ?to ?eff ?when WHERE {{ {where} }} "
        f"ORDER BY DESC(?when) DESC(?to) ?product ?c LIMIT {int(limit)} OFFSET {int(offset)}",
    )
    labels = store.labels({r["product"].value for r in rows})
    out = []
    for r in rows:
        kind = r["type"].value.rsplit("/", 1)[-1]
        product = r["product"].value
        out.append(ChangeRow(
            iri=r["c"].value,
            href=site_html.local_href(r["c"].value, base),
            label=r["label"].value,
            type=kind,
            type_label=CHANGE_TYPE_LABELS.get(kind, kind),
            product=product,
            product_href=site_html.local_href(product, base),
            product_label=labels.get(product) or product[len(base):],
            date=r["when"].value,
            effective_date=r["eff"].value if "eff" in r else None,
            from_snapshot=r["from"].value,
            to_snapshot=r["to"].value,
        ))
    return out, total


def _bad(request: Request, why: str, wants_json: bool) -> Response:
    if wants_json:
        return JSONResponse({"error": why}, status_code=400)
    return site_html.render_html("changes.html", {"error": why, "rows": [], "total": 0, "filters": Filters(),
                                              "types": CHANGE_TYPE_LABELS, "page": 1, "pages": 1}, request, 400)


def _wants_json(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt:
        return fmt == "json"
    accept = request.headers.get("accept") or "text/html"
    return negotiate(accept, ["text/html", "application/json"]) == "application/json"


@router.get("/changes", include_in_schema=False)
def changes_page(request: Request) -> Response:
    """The changes between EMA's exports, newest first; ``?format=json`` (or Accept) for JSON."""
    wants_json = _wants_json(request)
    try:
        filters, page = parse_filters(request)
    except BadFilter as why:
        return _bad(request, str(why), wants_json)
    rows, total = find_changes(request, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages_total = max(1, -(-total // PAGE_SIZE))
    if wants_json:
        return JSONResponse(
            {"total": total, "page": page, "pages": pages_total, "changes": [asdict(r) for r in rows]},
            headers={"Vary": "Accept"},
        )
    context = {"rows": rows, "total": total, "filters": filters, "types": CHANGE_TYPE_LABELS, "page": page,
               "pages": pages_total, "error": None,
               "alternates": [{"label": "Atom feed", "type": "application/atom+xml",
                               "href": f"{site_html.root_path(request)}/changes.atom?{filters.query_string()}"}]}
    return site_html.render_html("changes.html", context, request)


def atom_feed(rows: list[ChangeRow], self_url: str, site_url: str) -> bytes:
    """An Atom 1.0 feed of ``rows`` (ElementTree escapes every text)."""
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    el(feed, "title", "EPAR graph: changes between EMA's exports")
    el(feed, "id", self_url)
    el(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    el(feed, "link", rel="alternate", href=f"{site_url}/changes", type="text/html")
    newest = rows[0].date if rows else "1970-01-01"
    el(feed, "updated", f"{newest}T00:00:00Z")
    author = el(feed, "author")
    el(author, "name", "epar-graph (data: European Medicines Agency)")
    for r in rows:
        entry = el(feed, "entry")
        el(entry, "id", r.iri)
        el(entry, "title", r.label)
        el(entry, "updated", f"{r.date}T00:00:00Z")
        if r.product_href:
            el(entry, "link", rel="alternate", href=f"{site_url}{r.product_href}#history", type="text/html")
        el(entry, "category", term=r.type, label=r.type_label)
        effective = f" Effective {r.effective_date}." if r.effective_date else ""
        el(entry, "summary", f"{r.label}.{effective} Seen between EMA's exports of {r.from_snapshot} and "
                             f"{r.to_snapshot}.")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


@router.get("/changes.atom", include_in_schema=False)
def changes_feed(request: Request) -> Response:
    """The newest changes as an Atom feed, with the same filters as ``/changes``."""
    try:
        filters, _page = parse_filters(request)
    except BadFilter as why:
        return Response(f"{why}\n", status_code=400, media_type="text/plain; charset=utf-8")
    rows, _total = find_changes(request, filters, FEED_SIZE)
    site = str(request.base_url).rstrip("/")
    query = filters.query_string()
    self_url = f"{site}/changes.atom" + (f"?{query}" if query else "")
    return Response(atom_feed(rows, self_url, site), media_type="application/atom+xml; charset=utf-8")
