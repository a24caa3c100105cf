"""Autocomplete latency of ``/search`` on a build: p50 and p99 of the JSON answers as a user types.

Starts ``epar-graph serve`` on 127.0.0.1 (a free port) over a build directory
(default ``dist/``; build it first with ``epar-graph build``), then types every
prefix (3 to 10 letters) of a sample of real medicine and substance names,
with a few typos, one request at a time as a browser does, bounded in count.

    python benchmarks/search_bench.py [--data dist] [--names 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("dist"))
    ap.add_argument("--names", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    db = sqlite3.connect(args.data / "search.sqlite")
    labels = [r[0] for r in db.execute("SELECT label FROM entity WHERE kind IN ('medicine', 'substance')")]
    rng = random.Random(args.seed)
    sample = rng.sample(labels, min(args.names, len(labels)))
    typed = [name[:n] for name in sample for n in range(3, min(len(name), 10) + 1)]
    typed += [_typo(rng, name) for name in sample]
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "epar_graph.cli", "serve", "--data", str(args.data),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as c:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if c.get("/search", params={"q": "warm"}).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            times = []
            for q in typed:
                t = time.perf_counter()
                r = c.get("/search", params={"q": q, "limit": 8}, headers={"accept": "application/json"})
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
        times.sort()
        print(f"/search autocomplete: {len(times)} requests, p50 {times[len(times) // 2]:.1f} ms, "
              f"p99 {times[int(len(times) * 0.99)]:.1f} ms, max {times[-1]:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
