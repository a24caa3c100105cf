"""Load test of the SPARQL endpoint: ``epar-graph serve`` next to ``oxigraph serve`` on the same dump.

Three servers on 127.0.0.1 only, with the same N-Triples dump (by default
``dist/epar.nt``; build it first with ``epar-graph build``): ``epar-graph
serve`` on its embedded store ("embedded"), ``epar-graph serve --store`` in
front of a second Oxigraph server that ``epar-graph load`` filled ("remote"),
and ``oxigraph serve`` itself ("oxigraph"). For each of three queries — a
product lookup by product number (the same one each time, as a page or a polling
client sends it), a lookup of each product in turn (a different one each time, and
a text no earlier measurement sent, so no server answers from a cache),
and an aggregate (documents per type) — and for 1, 8 and 32 concurrent clients,
a fixed number of GET requests is sent (stopping early after ``--max-seconds``);
requests/s, p50 and p99 latency are printed for each server, then each mode's
requests/s as a multiple of oxigraph's. The clients share the machine with the
servers, so absolute numbers are only comparable within one run.

    python benchmarks/serve_load.py [--dump dist/epar.nt] [--requests 2000] [--max-seconds 10]
                                    [--concurrency 1 8 32] [--workers 2] [--processes N]

Every loop is bounded in count and time, and only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
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

#: A product's name and status by its product number (``{number}``).
LOOKUP = """
PREFIX epar: <https://w3id.org/epar/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?product ?name ?status WHERE {
  ?authorisation epar:productNumber "{number}" ;
                 epar:authorisationStatus ?status .
  ?product epar:authorisation ?authorisation ; rdfs:label ?name .
}"""

QUERIES = {
    "product lookup": LOOKUP.replace("{number}", "EMEA/H/C/004258"),
    "any product lookup": LOOKUP,
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


def product_numbers(dump: Path) -> list[str]:
    """Every product number in the dump, in a fixed shuffled order (so lookups spread over the data)."""
    pattern = re.compile(r'<https://w3id\.org/epar/ontology#productNumber> "([^"]+)"')
    with dump.open(encoding="utf-8") as f:
        numbers = sorted({m.group(1) for line in f if (m := pattern.search(line))})
    random.Random(7).shuffle(numbers)
    return numbers


def queries_of(query: str, numbers: list[str]) -> list[str]:
    """The query, or one per product number when it has a ``{number}`` slot."""
    return [query.replace("{number}", n) for n in numbers] if "{number}" in query else [query]


def measure(
    url: str, query: str | list[str], clients: int, requests: int, max_seconds: float
) -> tuple[int, int, float, list[float]]:
    """Send up to ``requests`` queries from ``clients`` threads (one keep-alive connection each), for at most
    ``max_seconds``; a list of queries is sent in turn. Plain ``http.client`` keeps the client's own cost small
    next to the servers'."""
    parts = urllib.parse.urlsplit(url)
    texts = [query] if isinstance(query, str) else query
    targets = [f"{parts.path}?{urllib.parse.urlencode({'query': q})}" for q in texts]
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
                    target = targets[issued % len(targets)]
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
        ours_port, oxi_port, engine_port, remote_port = free_port(), free_port(), free_port(), free_port()
        ours = f"http://{HOST}:{ours_port}/sparql"
        oxi = f"http://{HOST}:{oxi_port}/query"
        engine = f"http://{HOST}:{engine_port}"
        remote = f"http://{HOST}:{remote_port}/sparql"
        env = dict(os.environ, EPAR_QUERY_WORKERS=str(args.workers))
        if args.processes > 0:
            env["EPAR_SERVER_PROCESSES"] = str(args.processes)
        serve = [sys.executable, "-c", CLI, "serve", "--data", str(data), "--host", HOST]
        ours_cmd = [*serve, "--port", str(ours_port)]
        remote_cmd = [*serve, "--port", str(remote_port), "--store", engine + "/query"]
        oxi_cmd = [oxigraph_cli(), "serve", "--location", str(work / "oxigraph"), "--bind", f"{HOST}:{oxi_port}"]
        engine_cmd = [oxigraph_cli(), "serve", "--location", str(work / "engine"), "--bind", f"{HOST}:{engine_port}"]
        cells: list[Cell] = []
        with running(oxi_cmd, oxi, work / "oxigraph.log"), running(engine_cmd, engine + "/query", work / "engine.log"):
            # the remote mode's engine holds the release as `epar-graph load` puts it there
            subprocess.run([sys.executable, "-c", CLI, "load", str(data), "--to", engine + "/store"], check=True,
                           stdout=subprocess.DEVNULL)
            with running(ours_cmd, ours, work / "ours.log", env), running(remote_cmd, remote, work / "remote.log", env):
                servers = (("embedded", ours), ("remote", remote), ("oxigraph", oxi))
                numbers = product_numbers(dump)
                for name, query in QUERIES.items():
                    query = queries_of(query, numbers)[0]
                    theirs = answers(oxi, query)
                    for server, url in servers[:2]:
                        mine = answers(url, query)
                        if mine != theirs:
                            raise SystemExit(f"{server} and oxigraph disagree on {name!r}: {len(mine)} vs "
                                             f"{len(theirs)} rows")
                    print(f"{name}: {len(theirs)} row(s), the same answer from every server", file=sys.stderr)
                cells = _measure_all(servers, args, numbers)
        return cells
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure_all(servers: tuple[tuple[str, str], ...], args: argparse.Namespace, numbers: list[str]) -> list[Cell]:
    cells: list[Cell] = []
    for name, query in QUERIES.items():
        for clients in args.concurrency:
            for server, url in servers:
                texts = queries_of(query, numbers)
                if len(texts) > 1:  # lookups of each product: texts no earlier cell sent, so no answer is cached
                    texts = [f"{text}\n# cell {len(cells)}" for text in texts]
                measure(url, texts[-1], clients, min(50, args.requests), 5)  # warm-up (a query not measured)
                done, errors, elapsed, lat = measure(url, texts, clients, args.requests, args.max_seconds)
                cell = Cell(server, name, clients, done, errors, elapsed,
                            percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000)
                cells.append(cell)
                print(f"  {server:<10} {name:<18} c={clients:<3} {cell.rps:8.1f} req/s", file=sys.stderr)
    return cells


def ratios(cells: list[Cell]) -> str:
    """Each mode's requests/s as a multiple of oxigraph's, per query and client count."""
    theirs = {(c.query, c.clients): c.rps for c in cells if c.server == "oxigraph"}
    lines = []
    for c in cells:
        base = theirs.get((c.query, c.clients))
        if c.server != "oxigraph" and base:
            lines.append(f"{c.server:<10} {c.query:<18} c={c.clients:<3} {c.rps / base:5.2f}x oxigraph")
    return "\n".join(lines)


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
    parser.add_argument("--processes", type=int, default=0,
                        help="server processes of epar-graph serve (0: the server's default)")
    args = parser.parse_args()
    if args.requests < 1 or args.max_seconds <= 0 or min(args.concurrency) < 1:
        parser.error("--requests, --max-seconds and --concurrency must be positive")
    cells = run(args)
    print(table(cells))
    print(ratios(cells))


if __name__ == "__main__":
    main()
