"""Put a release into an existing SPARQL engine, then switch to it in one step.

``epar-graph load RELEASE_DIR --to URL`` is for users whose triple store outgrew one process
(``serve --store`` then queries it). The release lands as the embedded store holds it: the
whole of it (main dump, link sets, history) in ``<base>graph/epar``, and each link set and the
history also in a graph of its own (``<base>graph/links-…``, ``<base>graph/changes``). Engines
disagree about a default graph (Virtuoso has none of its own), so ``serve`` names the dataset in
every query instead (:class:`~epar_graph.serve.remote_store.Dataset`): ``<base>graph/epar`` as
the default graph, the others as named graphs. ``<base>graph/registry`` lists our graphs, so a
load finds those to drop without scanning every quad in the engine.

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
from epar_graph.namespaces import RDF, SD

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

    @property
    def main(self) -> str:
        """The public graph that holds the whole release, as the embedded store's default graph does."""
        return self.parts[0].public

    @property
    def registry(self) -> str:
        """The small graph that lists our graphs in the engine, so finding them needs no scan of every quad."""
        return f"{self.base}graph/registry"

    def stale(self, present: Iterable[str]) -> list[str]:
        """Our graphs in the engine that this release does not have (a link set since dropped, old staging)."""
        ours = f"{self.base}graph/"
        keep = {p.public for p in self.parts} | {p.staging for p in self.parts} | {self.registry}
        return sorted(g for g in present if g.startswith(ours) and g not in keep)

    def _registered(self, graphs: Iterable[str]) -> str:
        rows = " ".join(f"<{g}> {RDF.type} {SD.NamedGraph} ." for g in graphs)
        return f"INSERT DATA {{ GRAPH <{self.registry}> {{ {rows} }} }}"

    def register_staging(self) -> str:
        """Recorded before staging starts: a load that dies half-way leaves graphs the next one can find."""
        return self._registered(p.staging for p in self.parts)

    def switch(self, stale: Iterable[str] = ()) -> str:
        """The one update request that makes the staged release the public one (``stale``: graphs it drops).

        The main public graph gets every dump (a graph is a set: a triple in two dumps counts once, as in
        the embedded store's default graph); each link set and the history also get a graph of their own.
        """
        ops = [f"DROP SILENT GRAPH <{g}>" for g in stale]
        ops += [f"COPY <{p.staging}> TO <{p.public}>" for p in self.parts]
        ops += [f"ADD <{p.staging}> TO <{self.main}>" for p in self.parts[1:]]
        ops += [f"DROP SILENT GRAPH <{self.registry}>", self._registered(p.public for p in self.parts)]
        return " ;\n".join(ops)

    def dataset(self) -> Dataset:
        """What ``serve --store`` names in each query: the main graph as the default, the others as named."""
        from epar_graph.serve.remote_store import Dataset

        return Dataset(default=(self.main,), named=tuple(p.public for p in self.parts[1:]))

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
        _send(client, "POST", engine.update, "recording the staging graphs", kept,
              data={"update": the_plan.register_staging()}, headers=update)
        for part in the_plan.parts:
            with _plain(part.path) as body:
                _send(client, "PUT", engine.graph_store, f"staging {part.path.name}", kept,
                      params={"graph": part.staging}, content=body, headers={"content-type": "application/n-triples"})
        present = _graphs(client, engine, the_plan.registry, kept)
        _send(client, "POST", engine.update, "switching to the new release", kept,
              data={"update": the_plan.switch(the_plan.stale(present))}, headers=update)
        _send(client, "POST", engine.update, "dropping the staging graphs",
              f"; the new release is live, its staging graphs <{the_plan.parts[0].staging}>… are left",
              data={"update": the_plan.cleanup()}, headers=update)
    return the_plan


def _graphs(client: httpx.Client, engine: Engine, registry: str, state: str) -> list[str]:
    """Our graphs the engine holds now, as the registry lists them (to drop those the new release lacks)."""
    query = f"SELECT DISTINCT ?g WHERE {{ GRAPH <{registry}> {{ ?g a {SD.NamedGraph} }} }}"
    why = ""
    try:
        response = client.post(engine.query, data={"query": query},
                               headers={"accept": "application/sparql-results+json"})
        why = f" (HTTP {response.status_code}: {response.text.strip()[:200]})"
        rows = response.json()["results"]["bindings"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        rows = None
    if rows is None:
        raise LoadError(f"listing the engine's graphs: {engine.query} gave no SPARQL JSON answer{why}{state}")
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
