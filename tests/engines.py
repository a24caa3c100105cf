"""SPARQL engines the tests start on 127.0.0.1, each holding a build as ``serve`` lays it out.

Oxigraph server is the ``oxigraph`` package's command line (a test dependency); the main
dump and every link set go to the default graph, and each link set and the history to its
own named graph, as the embedded store has them.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from epar_graph.release import find_dump
from epar_graph.serve.store import graph_files, graph_iri

OXIGRAPH = Path(sys.executable).with_name("oxigraph")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nt")


def load_with_oxigraph_cli(data_dir: Path, location: Path, base: str) -> None:
    """The build's dumps into an on-disk Oxigraph database, in the embedded store's layout."""
    dump = find_dump(data_dir)
    assert dump is not None, data_dir
    files = [dump, *graph_files(data_dir)]
    for path in files:
        subprocess.run([str(OXIGRAPH), "load", "--location", str(location), "--file", str(path)],
                       check=True, capture_output=True)
        if path != files[0]:
            subprocess.run([str(OXIGRAPH), "load", "--location", str(location), "--file", str(path),
                            "--graph", graph_iri(base, _stem(path))], check=True, capture_output=True)


@contextlib.contextmanager
def oxigraph_server(location: Path, *, read_only: bool = True) -> Iterator[str]:
    """``oxigraph serve`` on a free port; yields its base URL (``/query``, ``/update``, ``/store``)."""
    port = free_port()
    command = "serve-read-only" if read_only else "serve"
    # the engine's own limit, so a query we gave up on does not run on there for ever
    proc = subprocess.Popen([str(OXIGRAPH), command, "--location", str(location), "--bind", f"127.0.0.1:{port}",
                             "--timeout-s", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/query", params={"query": "ASK {}"}, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    failed = proc.stderr.read().decode() if proc.stderr else "oxigraph did not start"
                    raise RuntimeError(failed) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


def reply(status: int, body: bytes, content_type: str = "application/sparql-results+json") -> Handler:
    """A handler that answers every request with ``body``."""

    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


@contextlib.contextmanager
def misbehaving_engine(answer: Handler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 whose every POST/GET is answered by ``answer`` (a broken engine)."""

    class _Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            answer(self)

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def app_server(app: object) -> Iterator[str]:
    """A FastAPI app under uvicorn in a thread, on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
