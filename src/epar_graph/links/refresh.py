"""Refresh the Wikidata mapping table from a SPARQL endpoint (Wikidata's, by default).

The bundled matches are a 2017 snapshot; Wikidata keeps growing. A refresh
asks the endpoint, for every product, which items carry

* its EMA product number (property P3637, "European Medicines Agency product number"),
* its ATC code (P267, full 7-character codes only: shorter ones are classes), and
* the name of each of its active substances, and the INN (common name) of a
  single-substance product, as English label,

and writes ``data/links/wikidata-refresh.csv`` with the retrieval date. The
build turns the rows where exactly one item answered into link sets.

The table is curated data, so a refresh is careful with it: it prints what it
adds, changes and removes; rows marked ``curated`` are kept as they are
unless ``force`` is given; and nothing is written unless every query
succeeded, and then atomically (a new file moved into place), so a failed or
interrupted refresh leaves the old table intact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from epar_graph import config, model
from epar_graph.read import link_tables as lt

DEFAULT_ENDPOINT = config.REFRESH_ENDPOINT
DEFAULT_OUT = config.REFRESH_TABLE
DEFAULT_TIMEOUT = config.REFRESH_TIMEOUT
#: look-up keys per query: small enough for Wikidata's URL and time limits
BATCH = config.REFRESH_BATCH
EMA_NUMBER_PROPERTY = "P3637"
ATC_PROPERTY = "P267"
USER_AGENT = "epar-graph/0.1 (Wikidata link refresh; https://w3id.org/epar/)"
ENTITY = "http://www.wikidata.org/entity/"
PREFIXES = (
    "PREFIX wd: <http://www.wikidata.org/entity/>\n"
    "PREFIX wdt: <http://www.wikidata.org/prop/direct/>\n"
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class RefreshError(Exception):
    """A refresh that could not be completed; ``exit_code`` 1: the endpoint failed, 2: the call is wrong."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Lookup:
    """One question to ask: which items have ``key`` under ``method`` (for ``product_number``)."""

    product_number: str
    method: str
    key: str


def lookups(products: Iterable[model.Product]) -> list[Lookup]:
    """What to ask about each product: its number, its full ATC codes, its substances' names and INN."""
    out: dict[Lookup, None] = {}
    for p in products:
        out[Lookup(p.product_number, "ema-number", p.product_number)] = None
        for code in p.atc_codes:
            code = code.strip().upper()
            if len(code) == 7:
                out[Lookup(p.product_number, "atc", code)] = None
        for name in p.active_substances:
            out[Lookup(p.product_number, "label", name)] = None
        if p.common_name and len(p.active_substances) == 1:
            # the INN, when it differs from the substance as named (a salt, a hydrate)
            out[Lookup(p.product_number, "label", p.common_name)] = None
    return list(out)


def _string(text: str) -> str:
    """A SPARQL string literal (JSON escaping is valid SPARQL escaping for these characters)."""
    return json.dumps(text, ensure_ascii=False)


def query_text(method: str, keys: Sequence[str]) -> str:
    """The SPARQL query for one batch of keys of one method; it answers ``?key ?item`` pairs."""
    if method == "label":
        values = " ".join(f"{_string(k)}@en" for k in keys)
        pattern = "?item rdfs:label ?key ."
    else:
        prop = EMA_NUMBER_PROPERTY if method == "ema-number" else ATC_PROPERTY
        values = " ".join(_string(k) for k in keys)
        pattern = f"?item wdt:{prop} ?key ."
    return f"{PREFIXES}SELECT ?key ?item WHERE {{\n  VALUES ?key {{ {values} }}\n  {pattern}\n}}\n"


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def parse_answer(body: bytes, endpoint: str) -> list[tuple[str, str]]:
    """``(key, QID)`` pairs from SPARQL JSON results; anything else is a malformed answer."""
    try:
        doc = json.loads(body)
        bindings = doc["results"]["bindings"]
        if not isinstance(bindings, list):
            raise TypeError("bindings is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        snippet = body[:80].decode("utf-8", "replace").strip()
        raise RefreshError(
            f"{endpoint} sent a malformed answer (not SPARQL JSON results: {exc}); it began {snippet!r}"
        ) from None
    pairs = []
    for b in bindings:
        try:
            key = b["key"]["value"]
            item = b["item"]["value"]
        except (KeyError, TypeError):
            raise RefreshError(f"{endpoint} sent a malformed answer: a result without ?key and ?item") from None
        if not isinstance(key, str) or not isinstance(item, str) or not item.startswith(ENTITY):
            raise RefreshError(f"{endpoint} sent a malformed answer: {item!r} is not a Wikidata item IRI")
        qid = item[len(ENTITY) :]
        if not lt.QID_RE.fullmatch(qid):
            raise RefreshError(f"{endpoint} sent a malformed answer: {item!r} is not a Wikidata item IRI")
        pairs.append((key, qid))
    return pairs


def ask(client: httpx.Client, endpoint: str, query: str, timeout: float) -> list[tuple[str, str]]:
    """POST one query; every way it can fail becomes a :class:`RefreshError` with a plain message."""
    try:
        response = client.post(
            endpoint,
            data={"query": query},
            headers={"Accept": "application/sparql-results+json", "User-Agent": USER_AGENT},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise RefreshError(f"no answer from {endpoint} within {timeout:g} s") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise RefreshError(f"{endpoint} is not a usable endpoint URL: {exc}", EXIT_USAGE) from None
    except httpx.HTTPError as exc:
        raise RefreshError(f"cannot reach {endpoint}: {exc}") from None
    if response.status_code >= 400:
        detail = response.text[:200].strip()
        raise RefreshError(
            f"{endpoint} answered HTTP {response.status_code} {response.reason_phrase}"
            + (f": {detail}" if detail else "")
        )
    return parse_answer(response.content, endpoint)


def fetch(
    endpoint: str,
    wanted: Sequence[Lookup],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    batch: int = BATCH,
    client: httpx.Client | None = None,
) -> dict[tuple[str, str], set[str]]:
    """Items per ``(method, key)`` for every look-up in ``wanted``."""
    by_method: dict[str, list[str]] = defaultdict(list)
    for w in wanted:
        if w.key not in by_method[w.method]:
            by_method[w.method].append(w.key)
    answers: dict[tuple[str, str], set[str]] = defaultdict(set)
    own = client is None
    http = client or httpx.Client()
    try:
        for method in ("ema-number", "atc", "label"):
            keys = by_method.get(method, [])
            for chunk in _batches(keys, batch):
                asked = set(chunk)
                for key, qid in ask(http, endpoint, query_text(method, chunk), timeout):
                    if key in asked:
                        answers[(method, key)].add(qid)
    finally:
        if own:
            http.close()
    return answers


def fresh_rows(
    wanted: Iterable[Lookup], answers: dict[tuple[str, str], set[str]], today: dt.date
) -> list[lt.RefreshRow]:
    """Rows for every look-up that found at least one item."""
    rows = []
    for w in wanted:
        items = answers.get((w.method, w.key))
        if items:
            rows.append(
                lt.RefreshRow(
                    product_number=w.product_number,
                    method=w.method,
                    key=w.key,
                    wikidata=tuple(sorted(items, key=lambda q: int(q[1:]))),
                    retrieved=today,
                    curated=False,
                )
            )
    return rows


@dataclass
class Diff:
    """What a refresh does to the table."""

    added: list[lt.RefreshRow] = field(default_factory=list)
    changed: list[tuple[lt.RefreshRow, lt.RefreshRow]] = field(default_factory=list)
    removed: list[lt.RefreshRow] = field(default_factory=list)
    #: curated rows the refresh disagrees with, kept because ``force`` was not given
    held: list[tuple[lt.RefreshRow, lt.RefreshRow | None]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.held)

    def lines(self) -> list[str]:
        def name(r: lt.RefreshRow) -> str:
            return f"{r.product_number} {r.method} {r.key!r}"

        def items(r: lt.RefreshRow | None) -> str:
            return ";".join(r.wikidata) if r is not None and r.wikidata else "(nothing)"

        out = [f"+ {name(r)} → {items(r)}" for r in self.added]
        out += [f"~ {name(old)}: {items(old)} → {items(new)}" for old, new in self.changed]
        out += [f"- {name(r)}: {items(r)}" for r in self.removed]
        out += [
            f"! {name(old)}: curated {items(old)}, Wikidata now {items(new)}; kept (--force replaces it)"
            for old, new in self.held
        ]
        return out

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged, {len(self.held)} curated rows kept"
        )


def merge(
    old: Iterable[lt.RefreshRow], new: Iterable[lt.RefreshRow], force: bool = False
) -> tuple[list[lt.RefreshRow], Diff]:
    """The refreshed table and the diff from the old one; curated rows survive unless ``force``."""
    old_by = {r.identity: r for r in old}
    new_by = {r.identity: r for r in new}
    diff = Diff()
    merged: list[lt.RefreshRow] = []
    for ident, fresh in new_by.items():
        prev = old_by.get(ident)
        if prev is None:
            diff.added.append(fresh)
            merged.append(fresh)
        elif prev.wikidata == fresh.wikidata:
            diff.unchanged += 1
            merged.append(prev if prev.curated else fresh)
        elif prev.curated and not force:
            diff.held.append((prev, fresh))
            merged.append(prev)
        else:
            diff.changed.append((prev, fresh))
            merged.append(fresh)
    for ident, prev in old_by.items():
        if ident in new_by:
            continue
        if prev.curated and not force:
            diff.held.append((prev, None))
            merged.append(prev)
        else:
            diff.removed.append(prev)
    merged.sort(key=lambda r: (r.product_number, lt.REFRESH_METHODS.index(r.method), r.key))
    return merged, diff


def table_bytes(rows: Iterable[lt.RefreshRow]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(lt.REFRESH_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.product_number,
                r.method,
                r.key,
                ";".join(r.wikidata),
                r.retrieved.isoformat() if r.retrieved else "",
                "yes" if r.curated else "no",
            ]
        )
    return buf.getvalue().encode("utf-8")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_existing(path: Path) -> list[lt.RefreshRow]:
    """The current table; an unreadable one stops the refresh rather than being overwritten."""
    if not path.exists():
        return []
    try:
        table = lt.read_refresh(path)
    except lt.LinkTableError as exc:
        raise RefreshError(f"{exc}; fix or move it before refreshing", EXIT_USAGE) from None
    if table.rejections:
        first = table.rejections[0]
        raise RefreshError(
            f"{first}; {len(table.rejections)} row(s) of the existing table cannot be read — fix them "
            "before refreshing so that no curated row is lost",
            EXIT_USAGE,
        )
    return table.rows


@dataclass
class RefreshResult:
    rows: list[lt.RefreshRow]
    diff: Diff
    asked: int


def refresh(
    products: Iterable[model.Product],
    out: Path = DEFAULT_OUT,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    batch: int = BATCH,
    today: dt.date | None = None,
    client: httpx.Client | None = None,
) -> RefreshResult:
    """Query ``endpoint``, merge with the table at ``out`` and write it (only if every query succeeded)."""
    if not endpoint.startswith(("http://", "https://")):
        raise RefreshError(f"{endpoint!r} is not an http(s) SPARQL endpoint URL", EXIT_USAGE)
    if batch < 1:
        raise RefreshError("batch size must be at least 1", EXIT_USAGE)
    old = read_existing(out)
    wanted = lookups(products)
    answers = fetch(endpoint, wanted, timeout=timeout, batch=batch, client=client)
    rows, diff = merge(old, fresh_rows(wanted, answers, today or dt.date.today()), force=force)
    try:
        write_atomic(out, table_bytes(rows))
    except OSError as exc:
        raise RefreshError(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE) from None
    return RefreshResult(rows, diff, len(wanted))
