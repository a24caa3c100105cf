"""Search and browse for people who do not write SPARQL: ``/search``, ``/medicines`` and friends.

Both read the release's ``search.sqlite`` (see :mod:`epar_graph.search_index`).
A query is matched three ways and the best score per entity wins: the whole
name or its start (in memory), any part of a name (SQLite FTS5 with trigrams),
and names a typo away (rapidfuzz). Each match is weighed by what kind of name
it was (a medicine's own name counts more than its holder's).
"""

from __future__ import annotations

import bisect
import functools
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from rapidfuzz import fuzz, process

from epar_graph.search_index import INDEX_FILE, KINDS, MEDICINE
from epar_graph.serve.negotiation import negotiate
from epar_graph.serve.site_html import local_href, render_html, settings_base

router = APIRouter()

MAX_QUERY = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
BROWSE_PAGE = 200
#: Names starting with the query that are looked at (a one-letter query matches thousands).
MAX_PREFIX_HITS = 500
_KIND_BONUS = {MEDICINE: 2.0}


@dataclass(frozen=True)
class Hit:
    iri: str
    kind: str
    label: str
    score: float
    matched: str
    what: str
    number: str = ""
    status: str = ""
    holder: str = ""
    holder_iri: str = ""
    code: str = ""


class Index:
    """One release's search index, its names held in memory for prefix and typo matching."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        db = self._db()
        rows = db.execute("SELECT n.rowid, n.entity, n.text, n.what, n.weight, e.kind FROM name n "
                          "JOIN entity e ON e.id = n.entity").fetchall()
        self.names = [r[2] for r in rows]
        self.folded = [r[2].casefold() for r in rows]
        self.meta = [(r[0], r[1], r[3], r[4], r[5]) for r in rows]  # rowid, entity, what, weight, kind
        self.by_rowid = {r[0]: i for i, r in enumerate(rows)}
        order = sorted(range(len(rows)), key=lambda i: self.folded[i])
        self.sorted_names = [self.folded[i] for i in order]
        self.sorted_index = order

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                 check_same_thread=False)
            self._local.db = db
        return db

    def search(self, q: str, kinds: frozenset[str] | None = None, limit: int = DEFAULT_LIMIT) -> list[Hit]:
        text = " ".join(q.split())[:MAX_QUERY]
        folded = text.casefold()
        if not folded:
            return []
        best: dict[int, tuple[float, int]] = {}

        def offer(i: int, score: float) -> None:
            _rowid, entity, _what, weight, kind = self.meta[i]
            if kinds and kind not in kinds:
                return
            s = score * weight + _KIND_BONUS.get(kind, 0.0)
            if entity not in best or s > best[entity][0]:
                best[entity] = (s, i)

        start = bisect.bisect_left(self.sorted_names, folded)
        for pos in range(start, min(start + MAX_PREFIX_HITS, len(self.sorted_names))):
            name = self.sorted_names[pos]
            if not name.startswith(folded):
                break
            offer(self.sorted_index[pos], 100.0 if name == folded else 92.0 + 6.0 * len(folded) / len(name))
        if len(folded) >= 3:
            phrase = '"' + text.replace('"', '""') + '"'
            for (rowid,) in self._db().execute("SELECT rowid FROM name_fts WHERE name_fts MATCH ? LIMIT 2000",
                                               (phrase,)):
                found = self.by_rowid.get(rowid)
                if found is not None:
                    offer(found, 80.0 + 10.0 * len(folded) / max(len(self.folded[found]), 1))
        if len(folded) >= 4:  # a typo in a shorter word is another word
            for _name, score, i in process.extract(folded, self.folded, scorer=fuzz.QRatio, limit=40,
                                                   score_cutoff=80):
                offer(i, float(score) * 0.9)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], self.names[kv[1][1]].casefold()))[:limit]
        return [self._hit(entity, score, i) for entity, (score, i) in ranked]

    def _hit(self, entity: int, score: float, i: int) -> Hit:
        row = self._db().execute("SELECT iri, kind, label, number, status, holder, holder_iri, code FROM entity "
                                 "WHERE id = ?", (entity,)).fetchone()
        return Hit(row[0], row[1], row[2], round(min(score, 100.0), 1), self.names[i], self.meta[i][2],
                   row[3] or "", row[4] or "", row[5] or "", row[6] or "", row[7] or "")

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        db = self._db()
        db.row_factory = sqlite3.Row
        try:
            return list(db.execute(sql, params))
        finally:
            db.row_factory = None


@functools.lru_cache(maxsize=4)
def _open(path: str, mtime_ns: int) -> Index:
    del mtime_ns  # part of the cache key: a new release is opened anew
    return Index(Path(path))


def index_for(request: Request) -> Index | None:
    """The search index of the release being served, or None when the release has none."""
    data_dir = getattr(request.app.state.settings, "data_dir", None)
    if data_dir is None:
        return None
    path = Path(data_dir) / INDEX_FILE
    try:
        return _open(str(path.resolve()), path.stat().st_mtime_ns)
    except (OSError, sqlite3.Error):
        return None


def _wants_json(request: Request) -> bool:
    if request.query_params.get("format"):
        return request.query_params["format"] == "json"
    return negotiate(request.headers.get("accept") or "text/html", ["text/html", "application/json"]) == \
        "application/json"


def _kinds(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    kinds = frozenset(k for k in value.split(",") if k in KINDS)
    return kinds or None


def _limit(value: str | None) -> int:
    return min(int(value), MAX_LIMIT) if value and value.isdigit() and int(value) > 0 else DEFAULT_LIMIT


def _unavailable(wants_json: bool) -> Response:
    why = "This release has no search index (build it again with this version)."
    if wants_json:
        return JSONResponse({"error": why}, status_code=503)
    return Response(why + "\n", status_code=503, media_type="text/plain; charset=utf-8")


@router.get("/search", include_in_schema=False)
def search_page(request: Request) -> Response:
    """Search names, substances, holders, numbers, ATC codes, areas and conditions; JSON for autocomplete."""
    wants_json = _wants_json(request)
    idx = index_for(request)
    if idx is None:
        return _unavailable(wants_json)
    q = request.query_params.get("q", "")
    kinds = _kinds(request.query_params.get("kind"))
    hits = idx.search(q, kinds, _limit(request.query_params.get("limit")))
    base = settings_base(request)
    if wants_json:
        return JSONResponse({"q": q, "results": [{**asdict(h), "href": local_href(h.iri, base)} for h in hits]},
                            headers={"Vary": "Accept"})
    rows = [(h, local_href(h.iri, base), local_href(h.holder_iri, base) if h.holder_iri else None)
            for h in hits]
    return render_html("search.html", {"q": q, "rows": rows, "kind": request.query_params.get("kind", ""),
                                             "kinds": KINDS}, request)


_LETTER = re.compile(r"^[A-Z#]$")


@router.get("/medicines", include_in_schema=False)
def medicines_page(request: Request) -> Response:
    """All medicines A–Z, filterable by category, status, ATC group and holder."""
    idx = index_for(request)
    if idx is None:
        return _unavailable(False)
    q = request.query_params
    where, params = ["kind = ?"], [MEDICINE]
    letter = (q.get("letter") or "").upper()
    if letter and _LETTER.match(letter):
        if letter == "#":
            where.append("NOT (upper(substr(label, 1, 1)) BETWEEN 'A' AND 'Z')")
        else:
            where.append("upper(substr(label, 1, 1)) = ?")
            params.append(letter)
    for column in ("category", "status"):
        if q.get(column):
            where.append(f"{column} = ?")
            params.append(q[column][:100])
    if q.get("atc"):
        where.append("(';' || atc) LIKE ?")
        params.append("%;" + re.sub(r"[^A-Za-z0-9]", "", q["atc"])[:7].upper() + "%")
    if q.get("holder"):
        where.append("holder_iri = ?")
        params.append(q["holder"][:500])
    rows = idx.rows(f"SELECT * FROM entity WHERE {' AND '.join(where)} ORDER BY sort LIMIT {BROWSE_PAGE + 1}",
                    tuple(params))
    facets = {
        column: [r[0] for r in idx.rows(f"SELECT DISTINCT {column} FROM entity WHERE kind = ? AND {column} != '' "
                                        f"ORDER BY {column}", (MEDICINE,))]
        for column in ("category", "status")
    }
    base = settings_base(request)
    items = [(r, local_href(r["iri"], base), local_href(r["holder_iri"], base) if r["holder_iri"] else None)
             for r in rows[:BROWSE_PAGE]]
    return render_html("medicines.html", {
        "items": items, "more": len(rows) > BROWSE_PAGE, "facets": facets, "filters": dict(q),
        "letters": [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["#"],
    }, request)


def _browse(request: Request, title: str, intro: str, items: Callable[[Index, str], list[tuple[Any, ...]]],
            tree: bool = False) -> Response:
    """A browse page: a list of (label, href, note, note href[, depth]) made from the index."""
    idx = index_for(request)
    if idx is None:
        return _unavailable(False)
    listed = items(idx, settings_base(request))
    return render_html("browse.html", {"title": title, "intro": intro, "items": listed, "tree": tree}, request)


def _organisations(idx: Index, base: str) -> list[tuple[Any, ...]]:
    rows = idx.rows("SELECT o.iri, o.label, COUNT(m.id) AS n FROM entity o JOIN entity m ON m.holder_iri = o.iri "
                    "WHERE o.kind = 'organisation' AND m.kind = 'medicine' GROUP BY o.iri ORDER BY o.sort")
    return [(r["label"], local_href(r["iri"], base), f"{r['n']} medicine{'s' if r['n'] != 1 else ''}",
             f"/medicines?holder={r['iri']}") for r in rows]


@router.get("/organisations", include_in_schema=False)
def organisations_page(request: Request) -> Response:
    """Marketing-authorisation holders with how many medicines each holds."""
    return _browse(request, "Organisations", "Marketing-authorisation holders and the number of medicines each "
                   "holds.", _organisations)


@router.get("/substances", include_in_schema=False)
def substances_page(request: Request) -> Response:
    def items(idx: Index, base: str) -> list[tuple[Any, ...]]:
        rows = idx.rows("SELECT iri, label FROM entity WHERE kind = 'substance' ORDER BY sort")
        return [(r["label"], local_href(r["iri"], base), "", None) for r in rows]

    return _browse(request, "Active substances", "Every active substance of a medicine in the graph.", items)


def _atc_tree(idx: Index, base: str) -> list[tuple[Any, ...]]:
    codes = idx.rows("SELECT iri, label, code FROM entity WHERE kind = 'atc' AND code != '' ORDER BY code")
    counts: dict[str, int] = {}
    for (atc,) in idx.rows("SELECT atc FROM entity WHERE kind = 'medicine' AND atc != ''"):
        for code in {c for full in atc.split(";") for c in _prefixes(full)}:
            counts[code] = counts.get(code, 0) + 1
    return [(r["label"], local_href(r["iri"], base),
             f"{counts.get(r['code'], 0)} medicine{'s' if counts.get(r['code'], 0) != 1 else ''}",
             f"/medicines?atc={r['code']}", _depth(r["code"])) for r in codes]


@router.get("/atc", include_in_schema=False)
def atc_page(request: Request) -> Response:
    """The ATC (and ATCvet) codes of the graph's medicines as a tree, with medicine counts."""
    return _browse(request, "ATC codes", "The Anatomical Therapeutic Chemical codes (ATCvet codes start with Q) "
                   "of the medicines, as a tree; each links to its medicines.", _atc_tree, tree=True)


def _prefixes(code: str) -> list[str]:
    levels = (2, 4, 5, 6, 8) if code.startswith("Q") else (1, 3, 4, 5, 7)
    return [code[:n] for n in levels if n <= len(code)]


def _depth(code: str) -> int:
    levels = (2, 4, 5, 6, 8) if code.startswith("Q") else (1, 3, 4, 5, 7)
    return max(0, sum(1 for n in levels if n <= len(code)) - 1)
