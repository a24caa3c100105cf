"""The embedded store follows ``dist/`` to each new build without a restart (``serve/following.py``).

Releases are published the way ``epar-graph build`` publishes them (``release.release_dir``:
written aside, then ``dist`` switched in one rename), from the serve fixture plus extra triples.
Counts are computed from the files written, not written down.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph
import pytest
from conftest import ALL_DUMPS, ALOFISEL, SERVE_DATA, wait_until
from engines import app_server

from epar_graph.release import release_dir
from epar_graph.serve import create_app, open_embedded
from epar_graph.serve.following import FollowingStore
from epar_graph.serve.settings import Settings

COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"


def publish(out: Path, extra: int = 0, *, broken: bool = False) -> int:
    """A new release of the fixture with ``extra`` more products in ``out``; its default-graph triple count."""
    with release_dir(out) as tmp:
        for source in SERVE_DATA.iterdir():
            shutil.copy2(source, tmp / source.name)
        with open(tmp / "epar.nt", "a", encoding="utf-8") as f:
            f.writelines(f'<https://w3id.org/epar/product/EMEA-H-C-9{n:05d}> {LABEL} "New {n}" .\n'
                         for n in range(extra))
            if broken:
                f.write("<https://w3id.org/epar/product/broken> this is not N-Triples\n")
    triples: set[pyoxigraph.Triple] = set()
    for dump in ALL_DUMPS:
        if not broken:
            triples |= {q.triple for q in pyoxigraph.parse(path=str(out / dump),
                                                             format=pyoxigraph.RdfFormat.N_TRIPLES)}
    return len(triples)


def count(store: FollowingStore) -> int:
    result = store.query(COUNT_ALL)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    term = next(iter(result))["n"]
    assert isinstance(term, pyoxigraph.Literal)
    return int(term.value)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed worker not yet reaped is a zombie: gone for our purpose
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return tmp_path / "dist"


@pytest.fixture
def follower(dist: Path) -> Iterator[FollowingStore]:
    """A store on the first release that looks for new ones only when asked (``refresh``)."""
    publish(dist)
    with open_embedded(Settings(data_dir=dist, workers=1, slow_workers=0, follow_seconds=0)) as store:
        yield store


def test_a_new_build_is_served_without_a_restart(dist: Path, follower: FollowingStore) -> None:
    first = count(follower)
    assert follower.refresh() is False  # nothing new yet
    newer = publish(dist, extra=50)
    assert newer == first + 50
    assert follower.refresh() is True
    assert count(follower) == newer and follower.switches == 1
    assert follower.info.triples == newer
    assert follower.describe("https://w3id.org/epar/product/EMEA-H-C-900049")


def test_a_request_keeps_its_release_and_the_old_store_closes_after_it(
    dist: Path, follower: FollowingStore
) -> None:
    first = count(follower)
    with follower.pinned() as old:
        old_pids = old.worker_pids()
        newer = publish(dist, extra=10)
        assert follower.refresh() is True
        assert count(follower) == first  # still the release this block started with
        others: list[int] = []
        outside = threading.Thread(target=lambda: others.append(count(follower)))
        outside.start()
        outside.join(60)
        assert others == [newer]  # a request started after the switch sees the new release
        assert all(alive(pid) for pid in old_pids)
    assert wait_until(lambda: not any(alive(pid) for pid in old_pids), 30)
    assert count(follower) == newer


def test_a_release_that_cannot_be_loaded_is_skipped(
    dist: Path, follower: FollowingStore, caplog: pytest.LogCaptureFixture
) -> None:
    first = count(follower)
    publish(dist, extra=5, broken=True)
    with caplog.at_level(logging.ERROR, logger="epar_graph.serve.following"):
        assert follower.refresh() is False
    assert "not valid N-Triples" in caplog.text and "still serving the previous one" in caplog.text
    assert count(follower) == first
    assert follower.refresh() is False  # the bad release is not loaded again and again
    fixed = publish(dist, extra=5)
    assert follower.refresh() is True and count(follower) == fixed


def test_a_release_swap_under_load_fails_no_request(dist: Path) -> None:
    """8 clients query the server while a bigger release is built and switched in: every answer is whole."""
    old = publish(dist)
    settings = Settings(data_dir=dist, workers=2, follow_seconds=0.1)
    app = create_app(settings)
    seen: set[int] = set()
    failures: list[str] = []
    answers = 0
    lock = threading.Lock()
    stop = threading.Event()

    def client(url: str, number: int) -> None:
        nonlocal answers
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(5000):  # bounded; ends when told to
                if stop.is_set():
                    return
                if number % 2:
                    r = c.get("/sparql", params={"query": COUNT_ALL},
                              headers={"accept": "application/sparql-results+json"})
                    ok = r.status_code == 200
                    value = int(r.json()["results"]["bindings"][0]["n"]["value"]) if ok else None
                else:
                    r = c.get(ALOFISEL.removeprefix("https://w3id.org/epar"), headers={"accept": "text/turtle"})
                    ok, value = r.status_code == 200 and "Alofisel" in r.text, None
                with lock:
                    answers += 1
                    if not ok:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    if value is not None:
                        seen.add(value)

    with app_server(app) as url:
        store = app.state.store
        assert isinstance(store, FollowingStore)
        old_pids = store.current.worker_pids()
        threads = [threading.Thread(target=client, args=(url, n), daemon=True) for n in range(8)]
        for t in threads:
            t.start()
        try:
            assert wait_until(lambda: old in seen, 30)
            new = publish(dist, extra=20_000)  # big enough that loading it takes a while under load
            assert wait_until(lambda: new in seen, 120), seen
            before = answers
            assert wait_until(lambda: answers > before + 50, 30)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert failures == []
        assert seen == {old, new}
        assert store.switches == 1
        assert wait_until(lambda: not any(alive(pid) for pid in old_pids), 30)
