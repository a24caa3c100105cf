"""Put a release into an existing SPARQL engine, then switch to it in one step.

``epar-graph load RELEASE_DIR --to URL`` is for users whose triple store outgrew one process
(``serve --store`` then queries it). The release lands as the embedded store holds it: every
dump in the default graph, and each link set and the history also in its own named graph
(``<base>graph/links-wikidata``, ``<base>graph/changes``).

Why two steps: a release is first written, file by file, into staging graphs named by its
version (``<base>graph/release/<version>/<file>``) through the SPARQL 1.1 Graph Store HTTP
Protocol. Queries go on seeing the previous release, whole, while that happens. Then one
SPARQL Update request replaces the public graphs with the staged ones; an engine runs one
update request as one transaction (Oxigraph does; Virtuoso too, by default), so a query sees
the old release or the new one, never a mixture. The staging graphs are dropped afterwards.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from epar_graph import release
from epar_graph.iris import Minter

#: Bytes per request chunk when streaming a dump to the engine.
CHUNK = 1 << 20


class LoadError(Exception):
    """The engine refused or could not be reached; the message names the step and the file."""


@dataclass(frozen=True)
class Engine:
    """The two endpoints a load needs: the Graph Store Protocol one and the SPARQL Update one."""

    graph_store: str
    update: str

    @classmethod
    def at(cls, url: str, update: str | None = None) -> Engine:
        """``--to URL``: Oxigraph's ``…/store`` implies its ``…/update`` beside it; else say ``--update``."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--to must be an http(s) Graph Store Protocol URL, not {url!r}")
        if update is None:
            if not url.rstrip("/").endswith("/store"):
                raise ValueError("give --update URL: the SPARQL Update endpoint cannot be guessed from " + url)
            update = url.rstrip("/").removesuffix("/store") + "/update"
        return cls(url, update)


@dataclass(frozen=True)
class Part:
    """One dump of the release and the graphs it goes to."""

    path: Path
    staging: str
    named: str | None  # the public named graph, for link sets and the history


@dataclass(frozen=True)
class Plan:
    version: str
    parts: tuple[Part, ...]

    def switch(self) -> str:
        """The one update request that makes the staged release the public one."""
        ops = ["DROP SILENT DEFAULT"]
        ops += [f"DROP SILENT GRAPH <{p.named}>" for p in self.parts if p.named]
        ops += [f"ADD <{p.staging}> TO DEFAULT" for p in self.parts]
        ops += [f"COPY <{p.staging}> TO <{p.named}>" for p in self.parts if p.named]
        return " ;\n".join(ops)

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
    for i, path in enumerate(files):
        stem = path.name.removesuffix(".gz").removesuffix(".nt")
        staging = f"{mint.base}graph/release/{version}/{stem}"
        parts.append(Part(path, staging, graph_iri(mint.base, stem) if i else None))
    return Plan(version, tuple(parts))


def _chunks(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def load(release_dir: Path, engine: Engine, *, timeout: float = 3600.0) -> Plan:
    """Stage every dump, then switch in one update; returns what was done. Raises :class:`LoadError`."""
    the_plan = plan(release_dir)
    update = {"content-type": "application/sparql-update; charset=utf-8"}
    kept = "; the engine still serves the release it had"
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        for part in the_plan.parts:
            _send(client, "PUT", engine.graph_store, f"staging {part.path.name}", kept, params={"graph": part.staging},
                  content=_chunks(part.path), headers={"content-type": "application/n-triples"})
        _send(client, "POST", engine.update, "switching to the new release", kept,
              content=the_plan.switch().encode(), headers=update)
        _send(client, "POST", engine.update, "dropping the staging graphs",
              f"; the new release is live, its staging graphs <{the_plan.parts[0].staging}>… are left",
              content=the_plan.cleanup().encode(), headers=update)
    return the_plan


def _send(client: httpx.Client, method: str, url: str, step: str, state: str, **kwargs: object) -> None:
    try:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise LoadError(f"{step}: {url} cannot be reached ({type(exc).__name__}){state}") from None
    if response.status_code >= 300:
        message = response.text.strip().splitlines()[0][:300] if response.text.strip() else "(no message)"
        raise LoadError(f"{step}: {url} answered HTTP {response.status_code}: {message}{state}")


def run_load(release_dir: Path, to: str, update: str | None) -> int:
    """The ``epar-graph load`` command: 0 loaded and switched, 1 the engine failed, 2 usage error."""
    import sys

    try:
        engine = Engine.at(to, update)
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
