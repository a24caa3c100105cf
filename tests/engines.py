"""SPARQL engines the tests start on 127.0.0.1, each holding a build as ``serve`` lays it out.

Oxigraph server is the ``oxigraph`` package's command line (a test dependency); Virtuoso
Open Source 7 is the Debian package ``virtuoso-opensource-7`` (``.ci/run`` installs it). Both
get the build through ``epar-graph load``, the way a user puts a release into one.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from epar_graph.load import Engine, load

OXIGRAPH = Path(sys.executable).with_name("oxigraph")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def oxigraph_engine(data_dir: Path, tmp: Path) -> Iterator[str]:
    """Oxigraph server holding ``data_dir``, put there by ``epar-graph load``; yields its query URL."""
    with oxigraph_server(tmp / "oxigraph", read_only=False) as url:
        load(data_dir, Engine.at(url + "/store"), timeout=300)
        yield url + "/query"


VIRTUOSO = shutil.which("virtuoso-t")
_VIRTUOSO_INI = """[Database]
DatabaseFile = {dir}/virtuoso.db
ErrorLogFile = {dir}/virtuoso.log
LockFile = {dir}/virtuoso.lck
TransactionFile = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
TempStorage = TempDatabase
[TempDatabase]
DatabaseFile = {dir}/virtuoso-temp.db
TransactionFile = {dir}/virtuoso-temp.trx
[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
DirsAllowed = ., {dir}
NumberOfBuffers = 20000
MaxDirtyBuffers = 15000
CheckpointInterval = 0
[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = /var/lib/virtuoso-opensource-7/vsp
ServerThreads = 10
Charset = UTF-8
[SPARQL]
ResultSetMaxRows = 10000000
MaxQueryExecutionTime = 20
"""


@contextlib.contextmanager
def virtuoso_engine(data_dir: Path, tmp: Path) -> Iterator[str]:
    """Virtuoso Open Source 7 (the Debian package) holding ``data_dir``, put there by ``epar-graph load``.

    Its own database in ``tmp``, its SQL and HTTP ports on 127.0.0.1; yields its query URL.
    """
    assert VIRTUOSO, "virtuoso-t is not installed (.ci/run installs virtuoso-opensource-7)"
    home = tmp / "virtuoso"
    home.mkdir()
    http_port = free_port()
    ini = home / "virtuoso.ini"
    ini.write_text(_VIRTUOSO_INI.format(dir=home, sql_port=free_port(), http_port=http_port), encoding="utf-8")
    proc = subprocess.Popen([VIRTUOSO, "-f", "-c", str(ini)], cwd=home, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_for(url + "/sparql", proc, lambda: (home / "virtuoso.log").read_text(errors="replace")[-2000:])
        load(data_dir, Engine.at(url + "/sparql-graph-crud-auth", update=url + "/sparql-auth", query=url + "/sparql",
                                 user="dba", password="dba"), timeout=300)
        yield url + "/sparql"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


#: The engines the tests run the app on, by the name a test's parameter id shows.
ENGINES: dict[str, Callable[[Path, Path], contextlib.AbstractContextManager[str]]] = {
    "oxigraph-server": oxigraph_engine,
    "virtuoso": virtuoso_engine,
}


class Engines:
    """The engines of one test run: each started on first use, then shared by every module until the end.

    Starting one and loading the fixture build takes seconds (Virtuoso most), so a module that
    needs an engine asks here instead of starting its own. An engine that failed to start is
    not tried again: every later test that needs it fails at once with the same error.
    """

    def __init__(self, data_dir: Path, scratch: Callable[[str], Path]) -> None:
        self._data_dir = data_dir
        self._scratch = scratch
        self._stack = contextlib.ExitStack()
        self._endpoints: dict[str, str] = {}
        self._failed: dict[str, BaseException] = {}

    def endpoint(self, name: str) -> str:
        """The query URL of engine ``name`` holding the fixture build (started now if it is not yet)."""
        if name in self._failed:
            raise RuntimeError(f"{name} did not start earlier in this run") from self._failed[name]
        if name not in self._endpoints:
            try:
                self._endpoints[name] = self._stack.enter_context(ENGINES[name](self._data_dir, self._scratch(name)))
            except Exception as exc:
                self._failed[name] = exc
                raise
        return self._endpoints[name]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_for(endpoint: str, proc: subprocess.Popen[bytes], why: Callable[[], str]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(endpoint, params={"query": "ASK {}"}, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the engine did not start: {why()}") from None
            time.sleep(0.2)


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
        _wait_for(url + "/query", proc, lambda: proc.stderr.read().decode() if proc.stderr and proc.poll() else "")
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
