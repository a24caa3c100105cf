"""Shared fixtures: the bundled build, a copy of the serve fixture build, and real servers on 127.0.0.1.

The bundled data is built once per run (:func:`bundled_result`) and shared read-only.
So are the SPARQL engines (:func:`engines`): each starts at most once per run.

A :class:`LiveServer` is the real app under uvicorn, in a thread of the test
process, on a socket bound to a free port. The query store is the real
embedded one (worker processes included), loaded from a temporary copy of
``tests/data/serve`` so no store cache is written into the repository.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from engines import Engines

from epar_graph.pipeline import BuildResult, build
from epar_graph.serve import create_app
from epar_graph.serve.limits import uvicorn_options
from epar_graph.serve.settings import Settings
from epar_graph.serve.store import OxigraphStore

SERVE_DATA = Path(__file__).parent / "data" / "serve"
#: The withdrawn product of the fixture and the one whose name is markup.
ALOFISEL = "https://w3id.org/epar/product/EMEA-H-C-004258"
SCRIPT_PRODUCT = "https://w3id.org/epar/product/EMEA-H-C-000666"
#: The link sets of the fixture build: the store loads each ``links-*.nt`` into its own named graph.
LINK_DUMPS = tuple(sorted(p.name for p in SERVE_DATA.glob("links-*.nt")))
#: The dumps whose union is the default graph: the data and every link set.
ALL_DUMPS = ("epar.nt", *LINK_DUMPS)


def link_graph(dump: str) -> str:
    """The named graph the store loads a link set into (written out, not taken from the code under test)."""
    return "https://w3id.org/epar/graph/" + dump.removesuffix(".nt")


#: One link set (two Wikidata links) and its graph, for the tests that choose a single graph.
LINKS_DUMP = "links-wikidata-orphan-conditions.nt"
LINKS_GRAPH = link_graph(LINKS_DUMP)
#: A query that would run for hours on the fixture (a five-way cross product of ~200 triples).
EXPLOSIVE_QUERY = (
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
)


@dataclass
class LiveServer:
    url: str
    settings: Settings
    store: OxigraphStore
    server: uvicorn.Server
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kwargs: object) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=60.0, **kwargs)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def start_live_server(settings: Settings) -> LiveServer:
    """Open the store, start uvicorn on a free 127.0.0.1 port, and wait until it answers."""
    store = OxigraphStore.open(
        settings.data_dir,
        store_dir=settings.resolved_store_dir,
        base=settings.base,
        workers=settings.workers,
        default_timeout=settings.query_timeout,
        slow_workers=settings.slow_workers,
        fast_lane_seconds=settings.fast_lane_seconds,
        answer_cache_bytes=settings.answer_cache_mb * 1024 * 1024,
    )
    app = create_app(settings, store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options(settings)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            store.close()
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", settings, store, server, thread)


@pytest.fixture(scope="session")
def serve_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the fixture build (the store cache is written next to it)."""
    target = tmp_path_factory.mktemp("serve-data") / "dist"
    shutil.copytree(SERVE_DATA, target)
    return target


@pytest.fixture(scope="session")
def engines(serve_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """Oxigraph server and Virtuoso holding the fixture build, each started once per run when first needed."""
    with Engines(serve_data_dir, tmp_path_factory.mktemp) as pool:
        yield pool


def serving(settings: Settings) -> Iterator[LiveServer]:
    """A live server for a fixture's lifetime."""
    server = start_live_server(settings)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(serve_data_dir: Path) -> Iterator[LiveServer]:
    """The app with default limits."""
    yield from serving(Settings(data_dir=serve_data_dir, workers=2))


@pytest.fixture(scope="session")
def limited_server(serve_data_dir: Path, live_server: LiveServer) -> Iterator[LiveServer]:
    """The app with tight limits: 1.5 s per query, 5 rows, 4 KiB requests, federation to ``live_server`` only."""
    settings = Settings(
        data_dir=serve_data_dir,
        workers=2,
        query_timeout=1.5,
        max_rows=5,
        max_request_bytes=4096,
        service_allowlist=frozenset({live_server.url + "/sparql"}),
    )
    server = start_live_server(settings)
    yield server
    server.stop()


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60.0) as c:
        yield c


@pytest.fixture
def limited_client(limited_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited_server.url, timeout=60.0) as c:
        yield c


def wait_until(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    """Poll ``condition`` until it holds or ``limit`` seconds pass (a bound, not an expectation)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _fingerprint(directory: Path) -> dict[str, str]:
    """Each file under ``directory`` (relative path) with the SHA-256 of its bytes."""
    return {
        str(f.relative_to(directory)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


@pytest.fixture(scope="session")
def bundled_result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    """The bundled data built once for the whole run, by the build `epar-graph build` runs.

    Shared by every test that needs the bundled build, so it is read-only: a test
    that changes a release copies this one first (``shutil.copytree``). The files
    are checked unchanged at the end of the run.
    """
    out = tmp_path_factory.mktemp("bundled-release") / "dist"
    result = build([], out)
    before = _fingerprint(out)
    yield result
    assert _fingerprint(out) == before, f"a test changed the shared bundled build in {out}"


@pytest.fixture(scope="session")
def bundled_release(bundled_result: BuildResult) -> Path:
    """The directory of the shared bundled build (read-only)."""
    return bundled_result.out


@pytest.fixture(scope="session")
def bundled_server(bundled_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app on the bundled release (its store cache kept out of the shared release)."""
    store_dir = tmp_path_factory.mktemp("bundled-store")
    yield from serving(Settings(data_dir=bundled_release, store_dir=store_dir, workers=2))
