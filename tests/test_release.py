"""Atomic releases: whenever a build dies, ``dist`` is the old release or the new one, whole.

The build is killed with SIGKILL at random moments (bounded: 20 times, a
few seconds each) while a real server on 127.0.0.1 keeps serving the
release; a full disk is a real, tiny tmpfs where this machine allows mounting
one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rdflib
from conftest import start_live_server

from epar_graph import config, release
from epar_graph.pipeline import EXIT_NO_SPACE, build
from epar_graph.serve.settings import Settings

CUT = Path(__file__).parent / "data" / "read" / "ema-medicines-report-2026-03-14.xlsx"
MEDPATH = Path(__file__).parents[1] / "data" / "medpath" / "alofisel.txt"
CLI = [sys.executable, "-m", "epar_graph.cli"]
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")


def assert_complete(dist: Path) -> str:
    """``dist`` is a whole release: every file void.ttl lists is there with its recorded sha256."""
    void = rdflib.Graph().parse(dist / "void.ttl")
    checked = 0
    for dist_node, checksum in void.subject_objects(SPDX.checksum):
        name = str(dist_node).rsplit("/", 1)[-1]
        if "/downloads/" not in str(dist_node):
            continue
        recorded = str(void.value(checksum, SPDX.checksumValue))
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == recorded, name
        checked += 1
    assert checked >= 4
    return hashlib.sha256((dist / "epar.nt").read_bytes()).hexdigest()


def test_a_release_is_a_link_switched_whole(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build([MEDPATH], dist, with_links=False)
    first = dist.resolve()
    assert dist.is_symlink() and first.parent == release.releases_root(dist).resolve()
    build([CUT], dist, with_links=False)
    assert dist.resolve() != first and first.is_dir()  # the one before is kept for a server still on it
    for _ in range(release.KEEP + 1):
        build([MEDPATH], dist, with_links=False)
    kept = [p for p in release.releases_root(dist).iterdir() if not p.name.startswith(".")]
    assert len(kept) == release.KEEP + 1
    assert_complete(dist)


def test_releases_are_readable_as_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        build([MEDPATH], tmp_path / "dist", with_links=False)
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "dist").resolve().stat().st_mode)
    assert mode == 0o755
    assert stat.S_IMODE((tmp_path / "dist" / "epar.nt").stat().st_mode) == 0o644


def test_an_older_plain_directory_release_is_replaced_atomically(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build([MEDPATH], tmp_path / "first", with_links=False)
    os.rename((tmp_path / "first").resolve(), dist)  # a release as older versions wrote it: a directory
    build([CUT], dist, with_links=False)
    assert dist.is_symlink()
    assert_complete(dist)
    legacy = [p for p in release.releases_root(dist).iterdir() if "legacy" in p.name]
    assert len(legacy) == 1 and (legacy[0] / "void.ttl").is_file()


def test_stale_leftovers_are_cleaned_at_the_next_build(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build([MEDPATH], dist, with_links=False)
    root = release.releases_root(dist)
    (root / "tmp-killed").mkdir()
    (root / "tmp-killed" / "epar.nt").write_text("half", encoding="utf-8")
    os.symlink("nowhere", tmp_path / ".dist.link-999999")
    (tmp_path / ".dist.old-123").mkdir()
    build([MEDPATH], dist, with_links=False)
    assert not (root / "tmp-killed").exists()
    assert not (tmp_path / ".dist.link-999999").is_symlink() and not (tmp_path / ".dist.old-123").exists()


def test_a_link_elsewhere_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    os.symlink(tmp_path / "mine", tmp_path / "dist")
    proc = subprocess.run([*CLI, "build", str(MEDPATH), "--out", str(tmp_path / "dist")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "not to one of its releases" in " ".join(proc.stderr.split())


@contextlib.contextmanager
def _watch(url: str) -> Iterator[list[int]]:
    """Poll the server while the block runs; yields the status codes seen."""
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=30.0) as c:
            while not stop.is_set():
                for path, accept in (("/sparql?query=ASK%7B%7D", "application/sparql-results+json"),
                                     ("/.well-known/void", "text/turtle"),
                                     ("/product/EMEA-H-C-004258", "text/html")):
                    try:
                        seen.append(c.get(path, headers={"accept": accept}).status_code)
                    except httpx.HTTPError:
                        seen.append(0)
                time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=30)


def test_kill_9_at_any_moment_leaves_a_whole_release_and_the_server_answers(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build([CUT], dist, with_links=False)
    started = time.monotonic()
    proc = subprocess.run([*CLI, "build", str(CUT), "--out", str(dist), "-q"], capture_output=True)
    took = time.monotonic() - started
    assert proc.returncode == 0
    rng = random.Random(20261203)
    server = start_live_server(Settings(data_dir=dist, workers=1))
    outcomes = set()
    try:
        with _watch(server.url) as seen:
            for _ in range(20):
                before = assert_complete(dist)
                child = subprocess.Popen([*CLI, "build", str(CUT), str(MEDPATH), "--out", str(dist), "-q"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.0, took * 1.2))
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                after = assert_complete(dist)
                outcomes.add("new" if after != before else "old")
    finally:
        server.stop()
    assert seen and set(seen) == {200}, sorted(set(seen))
    assert outcomes  # each kill left a whole release (old or new); which one depends on the moment


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, where this machine lets the tests mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_has_its_own_exit_code_and_keeps_the_old_release(tiny_disk: Path) -> None:
    dist = tiny_disk / "dist"
    build([MEDPATH], dist, with_links=False)
    before = assert_complete(dist)
    big = Path(__file__).parents[1] / "data" / "ema-medicines-report-2026-03-14.xlsx"  # a 20 MB release
    proc = subprocess.run([*CLI, "build", str(big), "--out", str(dist), "-q"], capture_output=True, text=True)
    assert proc.returncode == EXIT_NO_SPACE, proc.stderr
    assert "no space left" in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert assert_complete(dist) == before
    assert not [p for p in release.releases_root(dist).iterdir() if p.name.startswith("tmp-")]


# --- the base IRI travels with the release --------------------------------------------------


def _env_without_base() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "EPAR_BASE"}


def test_a_release_built_under_another_base_validates_and_serves_under_it(tmp_path: Path) -> None:
    """``--base`` is given once, at build: validate and serve read it from the release's void.ttl."""
    base = "https://example.org/x/"
    out = tmp_path / "d"
    env = _env_without_base()
    proc = subprocess.run([*CLI, "build", str(CUT), "--base", base, "--out", str(out), "-q"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    mint = release.recorded_minter(out)
    assert mint is not None and mint.base == base
    proc = subprocess.run([*CLI, "validate", str(out / "epar.ttl")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    settings = Settings.from_env(out, environ={})
    assert settings.base == base and settings.iris.product("EMEA/H/C/004258").startswith(base)
    server = start_live_server(Settings(data_dir=out, workers=1))
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as c:
            page = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/turtle"})
            assert page.status_code == 200
            assert f"<{base}product/EMEA-H-C-004258>" in page.text
            void = c.get("/.well-known/void", headers={"accept": "text/turtle"}).text
            assert base in void
    finally:
        server.stop()


def test_the_default_base_is_recorded_too(tmp_path: Path) -> None:
    out = tmp_path / "d"
    build([MEDPATH], out, with_links=False)
    mint = release.recorded_minter(out)
    assert mint is not None and mint.base == "https://w3id.org/epar/"
    assert release.recorded_minter(tmp_path) is None  # not a release: no void.ttl


def test_a_void_without_a_base_is_a_clear_validate_error(tmp_path: Path) -> None:
    (tmp_path / "epar.ttl").write_text("<http://example.org/a> <http://example.org/b> 1 .\n")
    (tmp_path / "void.ttl").write_text("<http://example.org/ds> a <http://rdfs.org/ns/void#Dataset> .\n")
    proc = subprocess.run([*CLI, "validate", str(tmp_path / "epar.ttl")], capture_output=True, text=True,
                          env=_env_without_base())
    assert proc.returncode == 2
    assert "void.ttl" in proc.stderr and "uriSpace" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_base_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "build", str(MEDPATH), "--base", "not an iri", "--out", str(tmp_path / "d")],
                          capture_output=True, text=True, env=_env_without_base())
    assert proc.returncode == 2 and "--base" in proc.stderr and "Traceback" not in proc.stderr


# -- finding a build's dump ------------------------------------------------------------------


def test_find_dump_prefers_the_plain_dump(tmp_path: Path) -> None:
    assert release.find_dump(tmp_path) is None
    (tmp_path / "epar.nt.gz").write_bytes(b"")
    assert release.find_dump(tmp_path) == tmp_path / "epar.nt.gz"
    (tmp_path / "epar.nt").write_bytes(b"")
    assert release.find_dump(tmp_path) == tmp_path / "epar.nt"


def test_find_dump_ignores_what_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "epar.nt").mkdir()
    (tmp_path / "epar.ttl").write_bytes(b"")  # the Turtle dump is not what the store and query load
    assert release.find_dump(tmp_path) is None
    assert release.find_dump(tmp_path / "missing") is None


def test_a_gzip_build_is_found_where_the_build_wrote_it(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    build([config.DATA_DIR / "medpath" / "alofisel.txt"], out, gzip_nt=True, quiet=True)
    assert release.find_dump(out) == out / "epar.nt.gz"
