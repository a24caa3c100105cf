"""Mixed load: cheap lookups with a few runaway queries among them, against ``epar-graph serve``.

The server is started on 127.0.0.1 over a build directory (by default ``dist/``;
when it holds no dump, the bundled data is built into a temporary directory
first). ``--clients`` threads, each with one keep-alive connection, send
queries at ``--rate`` requests/s in all (Poisson arrivals; ``--rate 0``: a
closed loop, each client sending as fast as it can, which measures a saturated
server rather than latency): with probability ``--runaway`` a query that would run
for hours (a cross product over every triple, stopped by the server's
``--query-timeout``), otherwise a cheap lookup (a product by its number, an ASK
or a label of a random product). Each runaway query differs by a comment
(``--disguise``: by a constant, so that no two texts are alike).

Printed: for cheap lookups the count, p50/p90/p99/max latency and errors by
status; for runaway queries how they ended. The goal of the serving limits:
with 5% runaway queries, cheap lookups keep p99 < 100 ms and get no 503.

    python benchmarks/mixed_load.py [--data dist] [--clients 32] [--rate 200] [--runaway 0.05]
                                    [--requests 6000] [--seconds 20] [--query-timeout 5] [--workers 0] [--seed 1]

Loops are bounded in count (``--requests``) and time (``--seconds``, then every
client finishes its request in flight, which the server bounds by the query
timeout); only loopback addresses are used, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
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
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from epar_graph.cli import main; sys.argv[0] = 'epar-graph'; main()"
JSON = "application/sparql-results+json"

PREFIXES = """PREFIX epar: <https://w3id.org/epar/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""
PRODUCTS = PREFIXES + """SELECT ?product ?number WHERE {
  ?product a epar:MedicinalProduct ; epar:authorisation ?authorisation .
  ?authorisation epar:productNumber ?number .
} ORDER BY ?number LIMIT 500"""
BY_NUMBER = PREFIXES + """SELECT ?product ?name ?status WHERE {{
  ?authorisation epar:productNumber "{number}" ; epar:authorisationStatus ?status .
  ?product epar:authorisation ?authorisation ; rdfs:label ?name .
}}"""
ASK = "ASK {{ <{product}> ?p ?o }}"
LABEL = PREFIXES + "SELECT ?label WHERE {{ <{product}> rdfs:label ?label }}"
RUNAWAY = "# runaway {n}\nSELECT (COUNT(*) AS ?n) WHERE {{ ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }}"
#: The same, differing by a constant rather than a comment (``--disguise``): no two texts are alike.
DISGUISED = "SELECT (COUNT(*) AS ?n) WHERE {{ ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l FILTER(?l != {n}) }}"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get(conn: http.client.HTTPConnection, query: str) -> tuple[int, bytes]:
    conn.request("GET", "/sparql?" + urllib.parse.urlencode({"query": query}), headers={"Accept": JSON})
    response = conn.getresponse()
    return response.status, response.read()


def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 300.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                if get(conn, "ASK {}")[0] == 200:
                    return
            finally:
                conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {limit:.0f} s")


@contextmanager
def server(data: Path, port: int, args: argparse.Namespace, log: Path) -> Iterator[None]:
    env = dict(os.environ, **({"EPAR_QUERY_WORKERS": str(args.workers)} if args.workers else {}))
    cmd = [sys.executable, "-c", CLI, "serve", "--data", str(data), "--host", HOST, "--port", str(port),
           "--query-timeout", str(args.query_timeout)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_ready(port, proc)
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def has_dump(path: Path) -> bool:
    return (path / "epar.nt").is_file() or (path / "epar.nt.gz").is_file()


def products(port: int) -> list[tuple[str, str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        status, body = get(conn, PRODUCTS)
    finally:
        conn.close()
    if status != 200:
        raise SystemExit(f"listing products failed: {status} {body[:200]!r}")
    rows = json.loads(body)["results"]["bindings"]
    if not rows:
        raise SystemExit("the build holds no products")
    return [(row["product"]["value"], row["number"]["value"]) for row in rows]


def load(port: int, args: argparse.Namespace, sample: list[tuple[str, str]]) -> tuple[Tally, Tally, float]:
    cheap, runaway = Tally(), Tally()
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + args.seconds

    def client(index: int) -> None:
        nonlocal issued
        rng = random.Random(args.seed * 1000 + index)
        conn = http.client.HTTPConnection(HOST, port, timeout=args.query_timeout + 30)
        mean_gap = args.clients / args.rate if args.rate > 0 else 0.0
        due = time.monotonic()
        try:
            while True:
                if mean_gap:  # open loop: Poisson arrivals at --rate in all; a client that fell behind sends at once
                    due += rng.expovariate(1 / mean_gap)
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                with lock:
                    if issued >= args.requests or time.monotonic() >= deadline:
                        return
                    issued += 1
                    n = issued
                slow = rng.random() < args.runaway
                product, number = rng.choice(sample)
                if slow:
                    query = (DISGUISED if args.disguise else RUNAWAY).format(n=n)
                else:
                    query = rng.choice((BY_NUMBER, ASK, LABEL)).format(product=product, number=number)
                started = time.perf_counter()
                try:
                    status, _ = get(conn, query)
                    outcome = str(status)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    outcome = type(exc).__name__
                elapsed = time.perf_counter() - started
                tally = runaway if slow else cheap
                with lock:
                    tally.statuses[outcome] += 1
                    if outcome == "200" or not slow:
                        tally.latencies.append(elapsed)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + args.query_timeout + 60)
    return cheap, runaway, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(cheap: Tally, runaway: Tally, seconds: float, args: argparse.Namespace) -> str:
    lat = [x * 1000 for x in cheap.latencies]
    cheap_total = sum(cheap.statuses.values())
    errors = {k: v for k, v in sorted(cheap.statuses.items()) if k != "200"}
    offered = f"{args.rate:g} requests/s offered" if args.rate > 0 else "closed loop"
    offered += ", runaways disguised" if args.disguise else ""
    lines = [
        f"mixed load: {args.clients} clients, {offered}, {args.runaway:.0%} runaway, "
        f"query timeout {args.query_timeout:g} s, {args.workers or 'default'} workers, {seconds:.1f} s",
        f"cheap lookups: {cheap_total} sent, {cheap.statuses.get('200', 0)} ok, "
        f"{cheap_total / seconds:.1f}/s",
        f"  latency ms (all cheap requests): p50 {percentile(lat, 0.5):.1f}  p90 {percentile(lat, 0.9):.1f}  "
        f"p99 {percentile(lat, 0.99):.1f}  max {max(lat, default=float('nan')):.1f}",
        f"  errors: {sum(errors.values())}" + (f" ({', '.join(f'{k}: {v}' for k, v in errors.items())})"
                                              if errors else ""),
        f"  503s: {cheap.statuses.get('503', 0)}",
        f"runaway queries: {sum(runaway.statuses.values())} sent; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(runaway.statuses.items())),
    ]
    goal = cheap.statuses.get("503", 0) == 0 and percentile(lat, 0.99) < 100
    lines.append(f"goal (cheap p99 < 100 ms, no 503): {'met' if goal else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "dist", help="build directory to serve")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--runaway", type=float, default=0.05, help="share of runaway queries (0..1)")
    parser.add_argument("--requests", type=int, default=6000, help="requests in all (upper bound)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound for sending")
    parser.add_argument("--query-timeout", type=float, default=5.0, help="the server's --query-timeout")
    parser.add_argument("--workers", type=int, default=0,
                        help="fast query workers (EPAR_QUERY_WORKERS); 0: the server's default")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="requests/s offered in all, as Poisson arrivals; 0: each client sends as fast as it can")
    parser.add_argument("--disguise", action="store_true",
                        help="make each runaway query differ by a constant, not only by a comment")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1 or args.seconds <= 0 or not 0 <= args.runaway <= 1 or args.rate < 0:
        parser.error("--clients, --requests and --seconds must be positive, --rate not negative, --runaway in 0..1")
    work = Path(tempfile.mkdtemp(prefix="epar-mixed-load-"))
    try:
        data = args.data.resolve()
        if not has_dump(data):
            data = work / "dist"
            print(f"{args.data}: no dump; building the bundled data into {data}", file=sys.stderr)
            build = [sys.executable, "-c", CLI, "build", "--quiet", "--out", str(data)]
            subprocess.run(build, check=False, stdout=subprocess.DEVNULL, timeout=1800)
            if not has_dump(data):
                raise SystemExit("the build produced no dump")
        port = free_port()
        with server(data, port, args, work / "server.log"):
            sample = products(port)
            print(f"serving {data} on {HOST}:{port}; {len(sample)} products to look up", file=sys.stderr)
            cheap, runaway, seconds = load(port, args, sample)
        print(report(cheap, runaway, seconds, args))
        log = (work / "server.log").read_text(encoding="utf-8", errors="replace")
        tracebacks = log.count("Traceback")
        print(f"server log: {len(log.splitlines())} lines, {tracebacks} traceback(s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
