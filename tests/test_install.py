"""A plain ``pip install`` works: the wheel carries the ontology, shapes, queries and data.

The wheel is built from this checkout and installed into a directory of its own; the
commands then run from another directory, with that directory first on the path, so
nothing can come from the source tree. It builds the bundled data, validates it, and
serves it on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RESOURCES = ("ontology", "shapes", "queries", "data")


def test_every_package_and_resource_folder_is_in_the_wheel_list() -> None:
    """The wheel's package list is explicit (it maps the resource folders in): a new package must join it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src" / "epar_graph").rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert {mapped[f"epar_graph._resources.{name}"] for name in RESOURCES} == set(RESOURCES)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, installed (without its dependencies, which the test environment has)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("epar_graph-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPAR_")}
    env["PYTHONPATH"] = str(site)
    return env


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "epar_graph.cli", *args], cwd=cwd, env=_env(site),
                          capture_output=True, text=True, timeout=900)


def test_the_installed_package_is_the_wheel_with_its_resources(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import epar_graph, epar_graph.config as c; print(epar_graph.__file__); print(c.ROOT);"
        "print(all(p.is_file() for p in (c.ONTOLOGY_FILE, c.SHAPES_FILE, *c.BUNDLED_SOURCES)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=_env(installed), capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[0].startswith(str(installed)) and out[1].startswith(str(installed)), out
    assert out[2] == "True"
    assert sorted(p.name for p in (installed / "epar_graph" / "_resources" / "queries").glob("*.rq")) == sorted(
        p.name for p in (ROOT / "queries").glob("*.rq")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``epar-graph build`` then ``epar-graph serve``, from a directory that is not the checkout."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    built = _run(installed, work, "build", "-q")
    assert built.returncode == 0, built.stderr[-3000:]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "epar_graph.cli", "serve", "--data", "dist", "--port", str(port)],
                            cwd=work, env=_env(installed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(url + "/sparql?query=ASK%7B%7D", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    failed = proc.stderr.read().decode() if proc.stderr else "serve did not start"
                    raise AssertionError(failed) from None
                time.sleep(0.5)
        yield url, work
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_build_validate_and_serve_from_the_wheel(installed: Path, served: tuple[str, Path]) -> None:
    url, work = served
    assert (work / "dist" / "epar.ttl").is_file() and not (work / "dist").resolve().is_relative_to(ROOT)
    checked = _run(installed, work, "validate", "dist/epar.nt")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    with httpx.Client(base_url=url, timeout=60) as c:
        product = c.get("/product/EMEA-H-C-004258", headers={"accept": "text/html"})
        assert product.status_code == 200 and "Alofisel" in product.text
        assert c.get("/ontology", headers={"accept": "text/html"}).status_code == 200
        assert c.get("/shapes", headers={"accept": "text/html"}).status_code == 200
        examples = c.get("/.well-known/sparql-examples", headers={"accept": "text/turtle"})
        assert examples.status_code == 200 and "SPARQLExecutable" in examples.text
        answer = c.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?p a epar:MedicinalProduct }"},
                       headers={"accept": "application/sparql-results+json"})
        assert int(answer.json()["results"]["bindings"][0]["n"]["value"]) > 1000
