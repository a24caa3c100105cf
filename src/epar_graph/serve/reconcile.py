"""``/reconcile``: the W3C Reconciliation Service API v0.2, the protocol OpenRefine speaks.

A spreadsheet column of medicine names (or substances, holders, ATC codes)
becomes links to this graph: the manifest, query batches with types and
property constraints, suggest (entities, types, properties), previews, and
data extension (status, holder, ATC, dates of matched medicines). Candidates
come from the release's search index (:mod:`epar_graph.serve.search`);
entity ids are the IRIs' paths (``product/EMEA-H-C-004258``).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from rapidfuzz import fuzz

from epar_graph.search_index import AREA, ATC, CONDITION, MEDICINE, ORGANISATION, SUBSTANCE
from epar_graph.serve import site_html
from epar_graph.serve.search import Hit, Index, index_for

router = APIRouter()

TYPES = {
    MEDICINE: "Medicine (EMA-evaluated medicinal product)",
    SUBSTANCE: "Active substance",
    ORGANISATION: "Organisation (marketing-authorisation holder, sponsor)",
    ATC: "ATC / ATCvet code",
    AREA: "Therapeutic area (MeSH heading)",
    CONDITION: "Orphan condition",
}
#: Properties of a medicine: for query constraints and data extension (id → name, index column, kind).
PROPERTIES: dict[str, tuple[str, str, str]] = {
    "number": ("EMA product number", "number", "str"),
    "status": ("Authorisation status", "status", "str"),
    "category": ("Category (human, veterinary)", "category", "str"),
    "holder": ("Marketing-authorisation holder", "holder", "entity"),
    "atc": ("ATC code", "atc", "str"),
    "substances": ("Active substances", "substances", "str"),
    "authorised": ("Marketing authorisation date", "authorised", "date"),
    "withdrawn": ("Withdrawal date", "withdrawn", "date"),
}
MAX_QUERIES = 100
MAX_CANDIDATES = 25
MAX_IDS = 500
MATCH_SCORE = 95.0
MATCH_MARGIN = 5.0
CORS = {"Access-Control-Allow-Origin": "*"}


class BadRequest(ValueError):
    """A reconciliation request that is not what the API allows (the 400 says why)."""


def _json(obj: object, status: int = 200) -> JSONResponse:
    return JSONResponse(obj, status_code=status, headers={**CORS, "Vary": "Accept"})


def _server(request: Request) -> str:
    return str(request.base_url).rstrip("/") + site_html.root_path(request)


def manifest(request: Request) -> dict[str, Any]:
    server = _server(request)
    base = site_html.settings_base(request)
    return {
        "versions": ["0.2"],
        "name": "EPAR graph: medicines evaluated by the European Medicines Agency",
        "identifierSpace": base,
        "schemaSpace": "https://w3id.org/epar/ontology#",
        "documentation": f"{server}/",
        "serviceVersion": "1",
        "view": {"url": f"{server}/{{{{id}}}}"},
        "defaultTypes": [{"id": k, "name": v} for k, v in TYPES.items()],
        "preview": {"url": f"{server}/reconcile/preview?id={{{{id}}}}", "width": 420, "height": 160},
        "suggest": {
            "entity": {"service_url": server, "service_path": "/reconcile/suggest/entity"},
            "type": {"service_url": server, "service_path": "/reconcile/suggest/type"},
            "property": {"service_url": server, "service_path": "/reconcile/suggest/property"},
        },
        "extend": {
            "propose_properties": {"service_url": server, "service_path": "/reconcile/propose_properties"},
            "property_settings": [],
        },
    }


def _id(iri: str, base: str) -> str:
    return iri[len(base):] if iri.startswith(base) else iri


@dataclass(frozen=True)
class Query:
    query: str
    types: frozenset[str] | None
    limit: int
    properties: tuple[tuple[str, str], ...]


def _parse_queries(raw: str) -> dict[str, Query]:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadRequest(f"queries: not JSON ({err.msg} at {err.pos})") from None
    if not isinstance(doc, dict) or len(doc) > MAX_QUERIES:
        raise BadRequest(f"queries: a JSON object of at most {MAX_QUERIES} queries")
    out = {}
    for key, q in doc.items():
        if not isinstance(q, dict) or not isinstance(q.get("query", ""), str):
            raise BadRequest(f"queries.{key}: an object with a string 'query'")
        kind = q.get("type")
        types = frozenset([kind] if isinstance(kind, str) else kind or []) & set(TYPES) or None
        limit = q.get("limit", 5)
        props = []
        for p in q.get("properties") or []:
            if isinstance(p, dict) and isinstance(p.get("pid"), str) and p.get("v") is not None:
                value = p["v"]
                if isinstance(value, dict):
                    value = value.get("name") or value.get("id") or ""
                props.append((p["pid"], str(value)))
        out[str(key)] = Query(q.get("query", ""), types,
                              max(1, min(int(limit) if isinstance(limit, int) else 5, MAX_CANDIDATES)), tuple(props))
    return out


def _facts(index: Index, iri: str) -> dict[str, str]:
    rows = index.rows("SELECT * FROM entity WHERE iri = ?", (iri,))
    if not rows:
        return {}
    row = rows[0]
    return {k: row[k] or "" for k in row.keys()}  # noqa: SIM118 (a Row iterates over its values)


def _constraint_score(facts: dict[str, str], pid: str, value: str) -> float:
    """How a property constraint moves a candidate's score: up when it agrees, down when not."""
    column = PROPERTIES.get(pid, ("", pid, ""))[1]
    have = facts.get(column, "")
    if not have or not value.strip():
        return 0.0
    if column == "atc":
        agree = any(code.startswith(value.strip().upper()) for code in have.split(";"))
    elif column == "number":
        agree = re.sub(r"\s", "", value).upper() == have
    else:
        agree = fuzz.token_set_ratio(value.casefold(), have.casefold()) >= 85
    return 10.0 if agree else -20.0


def reconcile(index: Index, q: Query, base: str) -> list[dict[str, Any]]:
    hits: list[Hit] = index.search(q.query, q.types, max(q.limit, 10))
    scored = []
    for h in hits:
        score = h.score
        if q.properties:
            facts = _facts(index, h.iri)
            score += sum(_constraint_score(facts, pid, v) for pid, v in q.properties)
        scored.append((max(0.0, min(score, 100.0)), h))
    scored.sort(key=lambda s: (-s[0], s[1].label.casefold()))
    scored = scored[: q.limit]
    out = []
    for rank, (score, h) in enumerate(scored):
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        sure = rank == 0 and score >= MATCH_SCORE and score - runner_up >= MATCH_MARGIN
        description = " · ".join(x for x in (h.number, h.status, h.holder) if x)
        out.append({
            "id": _id(h.iri, base), "name": h.label, "description": description, "score": round(score, 1),
            "match": sure, "type": [{"id": h.kind, "name": TYPES.get(h.kind, h.kind)}],
            "features": [{"id": "name_score", "value": h.score}],
        })
    return out


def _ids(raw: object) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_IDS or not all(isinstance(i, str) for i in raw):
        raise BadRequest(f"extend.ids: a list of at most {MAX_IDS} entity ids")
    return raw


def extend(index: Index, raw: str, base: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadRequest(f"extend: not JSON ({err.msg} at {err.pos})") from None
    if not isinstance(doc, dict):
        raise BadRequest("extend: a JSON object with 'ids' and 'properties'")
    ids = _ids(doc.get("ids"))
    wanted = [str(p.get("id")) for p in doc.get("properties") or [] if isinstance(p, dict)]
    unknown = [p for p in wanted if p not in PROPERTIES]
    if unknown:
        raise BadRequest(f"extend.properties: unknown {', '.join(map(str, unknown))}; known: {', '.join(PROPERTIES)}")
    rows: dict[str, dict[str, list[dict[str, str]]]] = {}
    for entity_id in ids:
        facts = _facts(index, base + entity_id)
        row: dict[str, list[dict[str, str]]] = {}
        for pid in wanted:
            _name, column, kind = PROPERTIES[pid]
            value = facts.get(column, "")
            if not value:
                row[pid] = []
            elif kind == "entity":
                row[pid] = [{"id": _id(facts.get("holder_iri", ""), base), "name": value}]
            elif kind == "date":
                row[pid] = [{"date": f"{value}T00:00:00+00:00"}]
            else:
                row[pid] = [{"str": v} for v in value.split(";")] if column == "atc" else [{"str": value}]
        rows[entity_id] = row
    meta = []
    for pid in wanted:
        name, _column, kind = PROPERTIES[pid]
        entry: dict[str, Any] = {"id": pid, "name": name}
        if kind == "entity":
            entry["type"] = {"id": ORGANISATION, "name": TYPES[ORGANISATION]}
        meta.append(entry)
    return {"meta": meta, "rows": rows}


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


@router.api_route("/reconcile", methods=["GET", "POST"], include_in_schema=False)
async def reconcile_endpoint(request: Request) -> Response:
    """The manifest (no parameters), a query batch (``queries``) or a data extension (``extend``)."""
    params = await _params(request)
    index = index_for(request)
    base = site_html.settings_base(request)
    if "queries" not in params and "extend" not in params:
        return _json(manifest(request))
    if index is None:
        return _json({"error": "this release has no search index"}, 503)
    try:
        if "extend" in params:
            return _json(extend(index, params["extend"], base))
        queries = _parse_queries(params["queries"])
    except BadRequest as why:
        return _json({"error": str(why)}, 400)
    return _json({key: {"result": reconcile(index, q, base)} for key, q in queries.items()})


@router.get("/reconcile/suggest/entity", include_in_schema=False)
def suggest_entity(request: Request) -> Response:
    index = index_for(request)
    if index is None:
        return _json({"error": "this release has no search index"}, 503)
    base = site_html.settings_base(request)
    kind = request.query_params.get("type")
    hits = index.search(request.query_params.get("prefix", ""), frozenset([kind]) if kind in TYPES else None, 10)
    return _json({"result": [
        {"id": _id(h.iri, base), "name": h.label,
         "description": " · ".join(x for x in (h.number, h.status, h.holder) if x),
         "notable": [{"id": h.kind, "name": TYPES.get(h.kind, h.kind)}]}
        for h in hits
    ]})


def _prefixed(items: dict[str, str], prefix: str) -> list[dict[str, str]]:
    p = prefix.casefold().strip()
    return [{"id": k, "name": v} for k, v in items.items() if not p or p in k or p in v.casefold()]


@router.get("/reconcile/suggest/type", include_in_schema=False)
def suggest_type(request: Request) -> Response:
    return _json({"result": _prefixed(TYPES, request.query_params.get("prefix", ""))})


@router.get("/reconcile/suggest/property", include_in_schema=False)
def suggest_property(request: Request) -> Response:
    names = {k: v[0] for k, v in PROPERTIES.items()}
    return _json({"result": _prefixed(names, request.query_params.get("prefix", ""))})


@router.get("/reconcile/propose_properties", include_in_schema=False)
def propose_properties(request: Request) -> Response:
    kind = request.query_params.get("type", MEDICINE)
    props = [{"id": k, "name": v[0]} for k, v in PROPERTIES.items()] if kind == MEDICINE else []
    limit = request.query_params.get("limit", "")
    if limit.isdigit():
        props = props[: int(limit)]
    return _json({"type": kind, "properties": props})


@router.get("/reconcile/preview", include_in_schema=False)
def preview(request: Request) -> Response:
    """A small HTML card of one entity, for OpenRefine's preview pop-up."""
    index = index_for(request)
    base = site_html.settings_base(request)
    entity_id = request.query_params.get("id", "")
    facts = _facts(index, base + entity_id) if index is not None and entity_id else {}
    if not facts:
        return Response("Not found\n", status_code=404, media_type="text/plain; charset=utf-8")
    lines = [f"<strong>{html.escape(facts['label'])}</strong> <em>{html.escape(TYPES.get(facts['kind'], ''))}</em>"]
    for pid in ("number", "status", "holder", "atc", "authorised", "withdrawn"):
        if facts.get(pid):
            lines.append(f"{html.escape(PROPERTIES[pid][0])}: {html.escape(facts[pid])}")
    href = html.escape(f"{_server(request)}/{entity_id}", quote=True)
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(facts["label"])}'
            f'</title></head><body style="font: 13px sans-serif; margin: 6px">{"<br>".join(lines)}'
            f'<br><a href="{href}" target="_blank" rel="noopener">Open</a></body></html>')
    return HTMLResponse(body, headers={**CORS, **site_html.HTML_HEADERS})

