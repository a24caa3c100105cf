"""The command line starts fast: help never imports the modules that do the work.

``epar-graph --help`` (and the help of every sub-command) must not pay for
rdflib, pySHACL, pyoxigraph, the web stack or the Excel readers; each command
imports what it needs when it runs. Measured by the modules Python reports
with ``-X importtime``, not by the clock, so the test is the same on a slow
machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: Top-level modules that only the commands themselves may import.
HEAVY = {
    "rdflib",
    "pyshacl",
    "pyoxigraph",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "jinja2",
    "python_calamine",
    "openpyxl",
    "xlrd",
    "pycountry",
    # the links package itself is light (it re-exports lazily); its modules are not
    "epar_graph.links.sets",
    "epar_graph.links.matching",
    "epar_graph.links.coverage",
    "epar_graph.links.mesh",
    "epar_graph.links.refresh",
    "epar_graph.read",
    "epar_graph.pipeline",
    "epar_graph.validate",
    "epar_graph.serve",
}


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m epar_graph.cli ARGS`` and return the run and every module it imported."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "100"}
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "epar_graph.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    modules = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                modules.add(name)
    return run, modules


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", "--help"],
        ["build", "--help"],
        ["serve", "--help"],
        ["links", "--help"],
        ["links", "refresh", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    run, modules = imported_modules(*args)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Usage" in run.stdout
    assert "typer" in modules  # the parse worked: importtime reported the modules
    assert heavy(modules) == set()


def test_help_lists_every_command() -> None:
    run, _ = imported_modules("--help")
    for command in ("build", "validate", "query", "serve", "links"):
        assert command in run.stdout


def test_refresh_help_shows_its_defaults() -> None:
    """The defaults live in ``config`` so help can show them; they are the refresh module's."""
    from epar_graph import config
    from epar_graph.links import refresh, sets

    run, _ = imported_modules("links", "refresh", "--help")
    assert "query.wikidata.org" in run.stdout
    assert refresh.DEFAULT_ENDPOINT == config.REFRESH_ENDPOINT
    assert refresh.DEFAULT_OUT == config.REFRESH_TABLE
    assert refresh.BATCH == config.REFRESH_BATCH
    assert sets.MESH_TABLE == config.MESH_TABLE
