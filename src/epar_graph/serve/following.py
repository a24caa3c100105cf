"""The embedded store following its release: a new build in ``dist/`` is served without a restart.

``epar-graph build`` switches ``dist`` to a complete new release in one rename
(``release.py``). The server looks every few seconds (a ``readlink`` and a few
``stat`` calls), loads a release it has not seen into a store of its own while
it goes on answering from the current one, and then switches in one step.

A request keeps the store it started with until its last byte is sent
(:meth:`FollowingStore.pinned`, applied to every request by :class:`PinRelease`),
so every answer, even a page built from several lookups, comes from one release.
The previous store is closed when its last request ends. A release that cannot
be loaded is logged and skipped: the server keeps the one it has.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyoxigraph

from epar_graph.release import find_dump
from epar_graph.serve.store import (
    EncodedResult,
    OxigraphStore,
    QueryResult,
    StoreError,
    StoreInfo,
    graph_files,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

#: What identifies the release a data directory shows: the directory its link resolves to, and the
#: name, size and modification time of each dump the store is loaded from.
Signature = tuple[str, tuple[tuple[str, int, int], ...]]


def release_signature(data_dir: Path) -> Signature:
    """The release ``data_dir`` shows now; cheap enough to ask every second.

    For a ``dist`` link the resolved directory changes with each build. A plain
    directory whose files are replaced is noticed by their sizes and times.
    """
    resolved = data_dir.resolve()
    dump = find_dump(resolved)
    files = [dump, *graph_files(resolved)] if dump is not None else []
    stats = []
    for path in files:
        st = path.stat()
        stats.append((path.name, st.st_size, st.st_mtime_ns))
    return str(resolved), tuple(stats)


@dataclass
class _Held:
    """A store with the requests still using it; ``retired`` once a newer release took its place."""

    store: OxigraphStore
    signature: Signature
    users: int = 0
    retired: bool = False


_pinned: ContextVar[tuple[FollowingStore, _Held] | None] = ContextVar("epar_pinned_release", default=None)


def _close_in_background(store: OxigraphStore) -> None:
    """Stopping workers waits on processes: never on the event loop."""
    threading.Thread(target=store.close, name="epar-retire-store", daemon=True).start()


class FollowingStore:
    """The embedded store of whichever release ``data_dir`` shows; a drop-in :class:`OxigraphStore`.

    ``open_store`` loads (or reuses) the store of one release directory. With
    ``interval`` > 0 a thread checks for a new release that often; :meth:`refresh`
    checks once, now.
    """

    def __init__(self, data_dir: Path, open_store: Callable[[Path], OxigraphStore], *, interval: float = 2.0) -> None:
        self.data_dir = data_dir
        self._open = open_store
        self._lock = threading.Lock()
        signature = release_signature(data_dir)
        self._current = _Held(open_store(Path(signature[0])), signature)
        self._skipped: Signature | None = None
        self.switches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval > 0:
            self._thread = threading.Thread(target=self._watch, args=(interval,), name="epar-release-follower",
                                            daemon=True)
            self._thread.start()

    # following -----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Serve the release ``data_dir`` shows now, if it is a new one; True when the server switched."""
        try:
            signature = release_signature(self.data_dir)
        except OSError:  # caught between a release's files: look again next time
            return False
        if signature == self._current.signature or signature == self._skipped or not signature[1]:
            return False
        try:
            store = self._open(Path(signature[0]))
        except StoreError as exc:
            log.error("not serving the new release in %s: %s; still serving the previous one", signature[0], exc)
            self._skipped = signature
            return False
        with self._lock:
            old, self._current = self._current, _Held(store, signature)
            old.retired = True
            unused = old.users == 0
            self.switches += 1
        log.info("now serving %s (%d triples)", signature[0], store.info.triples)
        if unused:
            _close_in_background(old.store)
        return True

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # the follower must outlive any one bad release
                log.exception("checking %s for a new release failed", self.data_dir)

    # pinning -------------------------------------------------------------------------------

    def _hold(self) -> _Held:
        with self._lock:
            held = self._current
            held.users += 1
        return held

    def _let_go(self, held: _Held) -> None:
        with self._lock:
            held.users -= 1
            done = held.retired and held.users == 0
        if done:
            _close_in_background(held.store)

    def _pinned_here(self) -> _Held | None:
        """The release an enclosing block pinned for this store, if any."""
        outer = _pinned.get()
        return outer[1] if outer is not None and outer[0] is self else None

    @contextlib.contextmanager
    def pinned(self) -> Iterator[OxigraphStore]:
        """Use one release for the whole block, even if a newer one is switched in meanwhile."""
        outer = self._pinned_here()
        if outer is not None:  # already pinned by an enclosing block
            yield outer.store
            return
        held = self._hold()
        token = _pinned.set((self, held))
        try:
            yield held.store
        finally:
            _pinned.reset(token)
            self._let_go(held)

    @property
    def current(self) -> OxigraphStore:
        """The store of the latest release loaded (a pinned request may still use an older one)."""
        return self._current.store

    # SparqlStore, EncodingStore: each call on one release ----------------------------------------

    def query(self, sparql: str, **options: Any) -> QueryResult:
        with self.pinned() as store:
            return store.query(sparql, **options)

    def describe(self, iri: str) -> list[pyoxigraph.Triple]:
        with self.pinned() as store:
            return store.describe(iri)

    def labels(self, iris: Iterable[str]) -> dict[str, str]:
        with self.pinned() as store:
            return store.labels(iris)

    def triples(self) -> Iterator[pyoxigraph.Triple]:
        outer = self._pinned_here()
        if outer is not None:
            yield from outer.store.triples()
            return
        held = self._hold()  # a generator may be resumed in other contexts: hold without the context variable
        try:
            yield from held.store.triples()
        finally:
            self._let_go(held)

    def query_encoded(self, sparql: str, **options: Any) -> EncodedResult:
        with self.pinned() as store:
            return store.query_encoded(sparql, **options)

    async def aquery_encoded(self, sparql: str, **options: Any) -> EncodedResult:
        with self.pinned() as store:
            return await store.aquery_encoded(sparql, **options)

    @property
    def info(self) -> StoreInfo:
        return (self._pinned_here() or self._current).store.info

    # lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            current = self._current
        current.store.close()

    def __enter__(self) -> FollowingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PinRelease:
    """ASGI middleware: each request is answered from one release, to its last byte.

    Pinning here, around the whole app, covers streamed answers (spooled files of
    a worker pool) and pages that ask the store several times.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope.get("app")
        store = getattr(getattr(app, "state", None), "store", None)
        if scope["type"] != "http" or not isinstance(store, FollowingStore):
            await self.app(scope, receive, send)
            return
        with store.pinned():
            await self.app(scope, receive, send)

