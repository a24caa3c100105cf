"""Several server processes on one listening socket, so the web layer uses every core.

One Python process parses HTTP, checks queries and encodes pages on one core,
whatever the number of query workers behind it. ``serve`` therefore runs
``Settings.processes`` replicas: the parent binds the socket, starts each replica
(a fresh interpreter: ``spawn``) with a copy of it, and the kernel hands each
new connection to a replica that is waiting in ``accept``. Each replica opens the
same on-disk store read-only with its own query workers, so the killable-query
guarantee holds per replica. A replica that dies is replaced; SIGINT or SIGTERM
stops them all, and a parent that is killed outright takes its replicas with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from epar_graph.serve.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between starts of a replacement for a replica that keeps dying (a crash loop must not spin).
RESTART_PAUSE = 2.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every replica accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_replica(settings: Settings, sock: socket.socket, access_log: bool) -> None:
    """One server process: its own store handle and workers, the shared socket (the store is opened in the
    app's lifespan for a remote engine, so its client lives on the server's event loop)."""
    import uvicorn

    from epar_graph.serve import create_app, open_embedded
    from epar_graph.serve.limits import uvicorn_options

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    store = None if settings.store_url else open_embedded(settings)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again; by default that ends the process on
    # the spot, before the store is closed, and each stop left its workers' answer folder in the temp dir.
    previous = signal.signal(signal.SIGTERM, _stop_replica)
    try:
        app = create_app(settings, store)
        config = uvicorn.Config(app, log_level="warning", access_log=access_log, **uvicorn_options(settings))
        uvicorn.Server(config).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if store is not None:
            store.close()


class _Stopped(Exception):
    """SIGTERM arrived outside uvicorn's own handling (after its graceful stop): the server is done."""


def _stop_replica(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Stopped


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies (even by SIGKILL), so no replica is orphaned."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _replica_main(settings: Settings, sock: socket.socket, access_log: bool, parent: int) -> None:
    _die_with_parent(parent)
    run_replica(settings, sock, access_log)


def serve_replicas(settings: Settings, sock: socket.socket, access_log: bool) -> int:
    """Run ``settings.processes`` replicas on ``sock`` until SIGINT/SIGTERM; returns the exit code."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> BaseProcess:
        process = ctx.Process(target=_replica_main, args=(settings, sock, access_log, os.getpid()),
                              name="epar-serve-replica")
        process.start()
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        stopping.set()
        for process in replicas:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    replicas = [start() for _ in range(settings.processes)]
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.is_set():
            for i, process in enumerate(replicas):
                process.join(0.2 / len(replicas))
                if process.exitcode is not None and not stopping.is_set():
                    print(f"warning: server process {process.pid} exited ({process.exitcode}); starting another",
                          file=sys.stderr)
                    time.sleep(RESTART_PAUSE)
                    replicas[i] = start()
        for process in replicas:
            process.join(30)
            if process.is_alive():
                process.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0
