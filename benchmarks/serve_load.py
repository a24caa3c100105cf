"""Load test of the SPARQL endpoint: ``epar-graph serve`` next to ``oxigraph serve`` on the same dump.

Both servers run on 127.0.0.1 only, loaded with the same N-Triples dump (by
default ``dist/epar.nt``; build it first with ``epar-graph build``). For each of
two queries — a product lookup by product number, and an aggregate (documents
per type) — and for 1, 8 and 32 concurrent clients, a fixed number of GET
requests is sent (stopping early after ``--max-seconds``), and requests/s, p50
and p99 latency are printed for both servers. The clients share the machine
with the servers, so absolute numbers are only comparable within one run.

    python benchmarks/serve_load.py [--dump dist/epar.nt] [--requests 2000] [--max-seconds 10]
                                    [--concurrency 1 8 32] [--workers 2]

Every loop is bounded in count and time, and only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from epar_graph.cli import main; sys.argv[0] = 'epar-graph'; main()"

QUERIES = {
    "product lookup": """
PREFIX epar: <https://w3id.org/epar/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?product ?name ?status WHERE {
  ?authorisation epar:productNumber "EMEA/H/C/004258" ;
                 epar:authorisationStatus ?status .
  ?product epar:authorisation ?authorisation ; rdfs:label ?name .
}""",
    "documents per type": """
PREFIX epar: <https://w3id.org/epar/ontology#>
SELECT ?type (COUNT(?document) AS ?documents) WHERE {
  ?document a epar:Document ; epar:documentType ?type .
} GROUP BY ?type ORDER BY DESC(?documents) ?type""",
}


@dataclass
class Cell:
    server: str
    query: str
    clients: int
    done: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering: {url}")
        try:
            r = httpx.get(url, params={"query": "ASK {}"}, headers={"Accept": "application/sparql-results+json"})
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not answer within {limit:.0f} s: {url}")


@contextmanager
def running(cmd: list[str], url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_ready(url, proc)
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def oxigraph_cli() -> str:
    found = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
    if not Path(found).exists():
        raise SystemExit("the `oxigraph` command is missing: pip install oxigraph")
    return found


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(
    url: str, query: str, clients: int, requests: int, max_seconds: float
) -> tuple[int, int, float, list[float]]:
    """Send up to ``requests`` queries from ``clients`` threads (one keep-alive connection each), for at most
    ``max_seconds``. Plain ``http.client`` keeps the client's own cost small next to the servers'."""
    parts = urllib.parse.urlsplit(url)
    target = f"{parts.path}?{urllib.parse.urlencode({'query': query})}"
    headers = {"Accept": "application/sparql-results+json"}
    latencies: list[float] = []
    errors = 0
    issued = 0
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def loop() -> None:
        nonlocal issued, errors
        conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=max_seconds + 30)
        try:
            while True:
                with lock:
                    if issued >= requests or time.monotonic() >= deadline:
                        return
                    issued += 1
                started = time.perf_counter()
                try:
                    conn.request("GET", target, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    conn.close()
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), errors, time.perf_counter() - started, sorted(latencies)


def answers(url: str, query: str) -> list[tuple[tuple[str, str], ...]]:
    r = httpx.get(url, params={"query": query}, headers={"Accept": "application/sparql-results+json"}, timeout=60)
    r.raise_for_status()
    rows = r.json()["results"]["bindings"]
    return sorted(tuple(sorted((k, v["value"]) for k, v in row.items())) for row in rows)


def run(args: argparse.Namespace) -> list[Cell]:
    dump = args.dump.resolve()
    if not dump.is_file():
        raise SystemExit(f"{dump}: no such dump (run `epar-graph build` first, or pass --dump)")
    work = Path(tempfile.mkdtemp(prefix="epar-serve-load-"))
    try:
        data = work / "data"
        data.mkdir()
        (data / dump.name).symlink_to(dump)
        subprocess.run(
            [oxigraph_cli(), "load", "--location", str(work / "oxigraph"), "--file", str(dump)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ours_port, oxi_port = free_port(), free_port()
        ours = f"http://{HOST}:{ours_port}/sparql"
        oxi = f"http://{HOST}:{oxi_port}/query"
        env = dict(os.environ, EPAR_QUERY_WORKERS=str(args.workers))
        ours_cmd = [sys.executable, "-c", CLI, "serve", "--data", str(data), "--host", HOST, "--port", str(ours_port)]
        oxi_cmd = [oxigraph_cli(), "serve", "--location", str(work / "oxigraph"), "--bind", f"{HOST}:{oxi_port}"]
        cells: list[Cell] = []
        with running(ours_cmd, ours, work / "ours.log", env), running(oxi_cmd, oxi, work / "oxigraph.log"):
            for name, query in QUERIES.items():
                mine, theirs = answers(ours, query), answers(oxi, query)
                if mine != theirs:
                    raise SystemExit(f"the servers disagree on {name!r}: {len(mine)} vs {len(theirs)} rows")
                print(f"{name}: {len(mine)} row(s), same answer from both servers", file=sys.stderr)
            for name, query in QUERIES.items():
                for clients in args.concurrency:
                    for server, url in (("epar-graph", ours), ("oxigraph", oxi)):
                        measure(url, query, clients, min(50, args.requests), 5)  # warm-up
                        done, errors, elapsed, lat = measure(url, query, clients, args.requests, args.max_seconds)
                        cell = Cell(server, name, clients, done, errors, elapsed,
                                    percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000)
                        cells.append(cell)
                        print(f"  {server:<10} {name:<18} c={clients:<3} {cell.rps:8.1f} req/s", file=sys.stderr)
        return cells
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(cells: list[Cell]) -> str:
    header = (
        f"| {'query':<18} | {'clients':>7} | {'server':<10} | {'req/s':>8} | {'p50 ms':>8} | {'p99 ms':>8} "
        f"| {'ok':>5} | {'errors':>6} |"
    )
    rule = "|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|"
    lines = [header, rule]
    for c in cells:
        lines.append(
            f"| {c.query:<18} | {c.clients:>7} | {c.server:<10} | {c.rps:>8.1f} | {c.p50_ms:>8.2f} | "
            f"{c.p99_ms:>8.2f} | {c.done:>5} | {c.errors:>6} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, default=ROOT / "dist" / "epar.nt", help="N-Triples dump to serve")
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell (upper bound)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="time bound per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="query worker processes of epar-graph serve")
    args = parser.parse_args()
    if args.requests < 1 or args.max_seconds <= 0 or min(args.concurrency) < 1:
        parser.error("--requests, --max-seconds and --concurrency must be positive")
    cells = run(args)
    print(table(cells))


if __name__ == "__main__":
    main()
