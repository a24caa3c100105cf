"""``serve`` as several processes on one socket (``serve/replicas.py``), started as a user starts it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SERVE_DATA, wait_until
from engines import free_port

from epar_graph.serve.settings import Settings, SettingsError

CLI = "import sys; from epar_graph.cli import main; sys.argv[0] = 'epar-graph'; main()"
LABELS = "SELECT ?p ?l WHERE { ?p <http://www.w3.org/2000/01/rdf-schema#label> ?l } ORDER BY ?p ?l"


def replicas(parent: int) -> set[int]:
    """The server processes ``parent`` started (spawned interpreters), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except OSError:
        return True
    return state == "Z"


@contextlib.contextmanager
def serving(tmp_path: Path, processes: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``epar-graph serve`` with ``processes`` server processes, its temp files under ``tmp_path / "tmp"``."""
    data = tmp_path / "dist"
    shutil.copytree(SERVE_DATA, data)
    (tmp_path / "tmp").mkdir()
    port = free_port()
    env = dict(os.environ, EPAR_SERVER_PROCESSES=str(processes), EPAR_QUERY_WORKERS="1", EPAR_SLOW_QUERIES="0",
               TMPDIR=str(tmp_path / "tmp"))
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--data", str(data), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/sparql", params={"query": "ASK {}"}).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None

    try:
        assert wait_until(up, limit=120) and proc.poll() is None
        if processes > 1:
            assert wait_until(lambda: len(replicas(proc.pid)) == processes, limit=60)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with serving(tmp_path, 2) as running:
        yield running


def leftovers(tmp_path: Path) -> list[str]:
    """What the server left in its temp dir (the query workers' answer folders, if not removed)."""
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


def answers(url: str, n: int) -> list[int]:
    """Status codes of ``n`` queries, each on a new connection (so the kernel may pick any replica)."""
    codes = []
    for _ in range(n):
        with httpx.Client(base_url=url, timeout=30) as c:
            codes.append(c.get("/sparql", params={"query": LABELS}).status_code)
    return codes


def test_replicas_share_the_port_and_a_dead_one_is_replaced(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = server
    first = replicas(proc.pid)
    assert answers(url, 40) == [200] * 40
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(replicas(proc.pid)) == 2 and victim not in replicas(proc.pid), limit=90)
    assert wait_until(lambda: answers(url, 1) == [200], limit=60)
    assert answers(url, 40) == [200] * 40


def test_sigterm_stops_every_replica(server: tuple[subprocess.Popen[bytes], str], tmp_path: Path) -> None:
    proc, _ = server
    started = replicas(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert wait_until(lambda: all(gone(pid) for pid in started), limit=30)
    assert wait_until(lambda: not leftovers(tmp_path), limit=30), leftovers(tmp_path)


def test_sigterm_stops_one_server_process_cleanly(tmp_path: Path) -> None:
    with serving(tmp_path, 1) as (proc, url):
        assert answers(url, 1) == [200]
        assert any(name.startswith("epar-answers-") for name in leftovers(tmp_path))  # the workers' folder
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert leftovers(tmp_path) == []


def test_replicas_end_with_a_parent_killed_outright(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, _ = server
    started = replicas(proc.pid)
    proc.kill()
    proc.wait(timeout=30)
    assert wait_until(lambda: all(gone(pid) for pid in started), limit=30)


def test_processes_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="server processes"):
        Settings.from_env(tmp_path, {"EPAR_SERVER_PROCESSES": "0"})
    assert Settings.from_env(tmp_path, {"EPAR_SERVER_PROCESSES": "3"}).processes == 3
    assert Settings(data_dir=tmp_path).processes >= 1
