"""Put a release into an existing SPARQL engine, then switch to it in one step.

``epar-graph load RELEASE_DIR --to URL`` is for users whose triple store outgrew one process
(``serve --store`` then queries it). Each dump lands in a graph of its own: the main one in
``<base>graph/epar``, each link set in ``<base>graph/links-…``, the history in
``<base>graph/changes``. Engines disagree about a default graph (Virtuoso has none of its own),
so ``serve`` names the dataset in every query instead (:class:`~epar_graph.serve.remote_store.Dataset`):
all of these graphs as the default graph, the link sets and the history as named graphs,
which is how the embedded store holds them.

Why two steps: a release is first written, file by file, into staging graphs named by its
version (``<base>graph/release/<version>/<file>``) through the SPARQL 1.1 Graph Store HTTP
Protocol. Queries go on seeing the previous release, whole, while that happens. Then one
SPARQL Update request replaces the public graphs with the staged ones; an engine runs one
update request as one transaction (Oxigraph does; Virtuoso too, by default), so a query sees
the old release or the new one, never a mixture. The staging graphs are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import httpx

from epar_graph import release
from epar_graph.iris import Minter

if TYPE_CHECKING:
    from epar_graph.serve.remote_store import Dataset

#: Bytes per request chunk when streaming a dump to the engine.
CHUNK = 1 << 20


class LoadError(Exception):
    """The engine refused or could not be reached; the message names the step and the file."""


@dataclass(frozen=True)
class Engine:
    """The endpoints a load needs (Graph Store Protocol, SPARQL Update, SPARQL query) and their login.

    Oxigraph server: ``…/store``, ``…/update``, ``…/query``, no login. Virtuoso:
    ``…/sparql-graph-crud-auth``, ``…/sparql-auth`` and ``…/sparql``, with HTTP digest login.
    """

    graph_store: str
    update: str
    query: str
    auth: httpx.Auth | None = None

    @classmethod
    def at(
        cls, url: str, update: str | None = None, query: str | None = None,
        user: str | None = None, password: str | None = None,
    ) -> Engine:
        """``--to URL``: Oxigraph's ``…/store`` implies ``…/update`` and ``…/query`` beside it; else name them."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--to must be an http(s) Graph Store Protocol URL, not {url!r}")
        root = url.rstrip("/").removesuffix("/store") if url.rstrip("/").endswith("/store") else None
        if update is None or query is None:
            if root is None:
                raise ValueError("give --update URL and --query URL: they cannot be guessed from " + url)
            update = update or root + "/update"
            query = query or root + "/query"
        auth = httpx.DigestAuth(user, password or "") if user else None
        return cls(url, update, query, auth)


@dataclass(frozen=True)
class Part:
    """One dump of the release and the graphs it goes to."""

    path: Path
    staging: str
    public: str


@dataclass(frozen=True)
class Plan:
    version: str
    parts: tuple[Part, ...]
    base: str

    def stale(self, present: Iterable[str]) -> list[str]:
        """Our graphs in the engine that this release does not have (a link set since dropped, old staging)."""
        ours = f"{self.base}graph/"
        keep = {p.public for p in self.parts} | {p.staging for p in self.parts}
        return sorted(g for g in present if g.startswith(ours) and g not in keep)

    def switch(self, stale: Iterable[str] = ()) -> str:
        """The one update request that makes the staged release the public one (``stale``: graphs it drops)."""
        ops = [f"DROP SILENT GRAPH <{g}>" for g in stale]
        ops += [f"COPY <{p.staging}> TO <{p.public}>" for p in self.parts]
        return " ;\n".join(ops)

    def dataset(self) -> Dataset:
        """What ``serve --store`` names in each query: every graph as the default, all but the main one named."""
        from epar_graph.serve.remote_store import Dataset

        public = tuple(p.public for p in self.parts)
        return Dataset(default=public, named=public[1:])

    def cleanup(self) -> str:
        return " ;\n".join(f"DROP SILENT GRAPH <{p.staging}>" for p in self.parts)


def plan(release_dir: Path) -> Plan:
    """What goes where, from the release's own files and recorded base (its ``void.ttl``)."""
    from epar_graph.serve.store import graph_files, graph_iri, no_dump, store_key

    try:
        mint = release.recorded_minter(release_dir) or Minter()
    except release.NotARelease as exc:
        raise ValueError(str(exc)) from None
    dump = release.find_dump(release_dir)
    if dump is None:
        raise ValueError(str(no_dump(release_dir)))
    files = [dump, *graph_files(release_dir)]
    version = store_key(files, mint.base)[:16]
    parts = []
    for path in files:
        stem = path.name.removesuffix(".gz").removesuffix(".nt")
        parts.append(Part(path, f"{mint.base}graph/release/{version}/{stem}", graph_iri(mint.base, stem)))
    return Plan(version, tuple(parts), mint.base)


@contextlib.contextmanager
def _plain(path: Path) -> Iterator[BinaryIO]:
    """The dump as a plain file: sent with its length, since some engines (Virtuoso 7) store nothing
    from a chunked upload. A gzipped dump is unpacked to a temporary file first."""
    if not path.name.endswith(".gz"):
        with open(path, "rb") as f:
            yield f
        return
    with tempfile.TemporaryFile() as tmp, gzip.open(path, "rb") as packed:
        shutil.copyfileobj(packed, tmp, CHUNK)
        tmp.seek(0)
        yield cast(BinaryIO, tmp)


def load(release_dir: Path, engine: Engine, *, timeout: float = 3600.0) -> Plan:
    """Stage every dump, then switch in one update; returns what was done. Raises :class:`LoadError`."""
    the_plan = plan(release_dir)
    update = {"content-type": "application/x-www-form-urlencoded"}
    kept = "; the engine still serves the release it had"
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), auth=engine.auth) as client:
        if engine.auth is not None:
            # a digest login needs the server's challenge first; with it in hand, the streamed
            # dumps go out signed on their first try (a stream cannot be sent twice)
            _send(client, "GET", engine.graph_store, "logging in", kept, params={"graph": the_plan.parts[0].staging},
                  ok=(200, 404))
        for part in the_plan.parts:
            with _plain(part.path) as body:
                _send(client, "PUT", engine.graph_store, f"staging {part.path.name}", kept,
                      params={"graph": part.staging}, content=body, headers={"content-type": "application/n-triples"})
        present = _graphs(client, engine, kept)
        _send(client, "POST", engine.update, "switching to the new release", kept,
              data={"update": the_plan.switch(the_plan.stale(present))}, headers=update)
        _send(client, "POST", engine.update, "dropping the staging graphs",
              f"; the new release is live, its staging graphs <{the_plan.parts[0].staging}>… are left",
              data={"update": the_plan.cleanup()}, headers=update)
    return the_plan


def _graphs(client: httpx.Client, engine: Engine, state: str) -> list[str]:
    """The named graphs the engine holds now (to drop ours that the new release no longer has)."""
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    try:
        response = client.post(engine.query, data={"query": query},
                               headers={"accept": "application/sparql-results+json"})
        rows = response.json()["results"]["bindings"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        rows = None
    if rows is None:
        raise LoadError(f"listing the engine's graphs: {engine.query} gave no SPARQL JSON answer{state}")
    return [r["g"]["value"] for r in rows if isinstance(r, dict) and "g" in r]


def _send(
    client: httpx.Client, method: str, url: str, step: str, state: str, ok: tuple[int, ...] = (), **kwargs: object
) -> None:
    try:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise LoadError(f"{step}: {url} cannot be reached ({type(exc).__name__}){state}") from None
    if response.status_code >= 300 and response.status_code not in ok:
        message = response.text.strip().splitlines()[0][:300] if response.text.strip() else "(no message)"
        raise LoadError(f"{step}: {url} answered HTTP {response.status_code}: {message}{state}")


def run_load(
    release_dir: Path, to: str, update: str | None, query: str | None = None,
    user: str | None = None, password: str | None = None,
) -> int:
    """The ``epar-graph load`` command: 0 loaded and switched, 1 the engine failed, 2 usage error."""
    import sys

    try:
        engine = Engine.at(to, update, query, user, password)
        the_plan = plan(release_dir)
    except ValueError as exc:
        print(f"epar-graph load: error: {exc}", file=sys.stderr)
        return 2
    try:
        load(release_dir, engine)
    except LoadError as exc:
        print(f"epar-graph load: error: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(p.path.name for p in the_plan.parts)
    print(f"loaded release {the_plan.version} ({names}) into {engine.graph_store} and switched to it")
    return 0
