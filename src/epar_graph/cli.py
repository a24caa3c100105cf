"""The ``epar-graph`` command: one entry point for every job.

Each sub-command is a thin shell over the module that does the work, so the
same functions are usable from Python. Exit codes are part of the contract:
0 success, 1 the data is at fault (rejected records, violations), 2 the call
is at fault (usage, unreadable input).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from epar_graph import config

app = typer.Typer(
    name="epar-graph",
    help="Build, validate, query and serve the linked-data graph of EMA-evaluated medicines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def build(
    sources: Annotated[
        list[Path] | None,
        typer.Argument(help="Input files (EMA .xls/.xlsx/JSON export, EPAR table CSV, MedPath page); "
                       "none builds the bundled data. Formats are detected from content."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the release into.")] = config.DEFAULT_OUT,
    base: Annotated[
        str | None,
        typer.Option(envvar="EPAR_BASE", help="Base IRI for minted entities (default https://w3id.org/epar/); "
                     "the release records it, so validate and serve need not be told."),
    ] = None,
    gzip_nt: Annotated[bool, typer.Option("--gzip", help="Write epar.nt.gz instead of epar.nt.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_of: Annotated[
        list[str] | None,
        typer.Option("--as-of", help="Date an export: FILE=YYYY-MM-DD, or YYYY-MM-DD with one SOURCE; "
                     "overrides the date the export prints. Repeatable."),
    ] = None,
    accept_removals: Annotated[
        bool, typer.Option(help="Publish the history even when an export lacks >5% of the products or a "
                           "column of the one before it.")
    ] = False,
    max_input_mb: Annotated[
        int | None, typer.Option(help="Read input files up to this size (MB), over the default limit of "
                                 "each kind (200 MB for spreadsheets and JSON, 100 MB for tables).", min=1)
    ] = None,
) -> None:
    """Build the graph and write the dumps (Turtle, N-Triples, JSON-LD, VoID, changes.nt).

    Exit 0: every record accepted (warnings do not count); 1: some rejected (the
    rest is still written, with a rejection report); 2: usage error; 3: the
    exports look broken (products vanished, a column gone) and --accept-removals
    was not given: nothing is written; 4: no space left on the device (the previous
    release is untouched).
    """
    from epar_graph.pipeline import run_build

    dates = _as_of(as_of or [], sources or [])
    limit = max_input_mb * (1 << 20) if max_input_mb else None
    raise typer.Exit(run_build(sources or [], out, base=base, gzip_nt=gzip_nt, quiet=quiet, as_of=dates,
                               accept_removals=accept_removals, max_input_bytes=limit))


def _as_of(values: list[str], sources: list[Path]) -> dict[str, dt.date]:
    """``--as-of`` values → file name → date; a bad value is a usage error naming it."""
    dates: dict[str, dt.date] = {}
    for value in values:
        name, _, text = value.rpartition("=")
        if not name:
            if len(sources) != 1:
                raise typer.BadParameter(f"{value!r}: with several sources, say which: FILE=YYYY-MM-DD",
                                         param_hint="--as-of")
            name = sources[0].name
        try:
            dates[Path(name).name] = dt.date.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"{value!r}: {text!r} is not a date YYYY-MM-DD", param_hint="--as-of") from None
    return dates


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    turtle = "turtle"


@app.command()
def diff(
    old: Annotated[
        Path, typer.Argument(help="The older EMA export (.xls, .xlsx or JSON).", exists=True, dir_okay=False)
    ],
    new: Annotated[Path, typer.Argument(help="The newer EMA export.", exists=True, dir_okay=False)],
    format: Annotated[DiffFormat, typer.Option("--format", "-f", help="Report format.")] = DiffFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """The changes between two EMA exports: products added and removed, status, holder, ... changes.

    A summary counts changes per type. An alarm comes first when more than 5% of
    OLD's products are missing from NEW or a column of OLD is gone. Exit 0: compared
    (alarm or not: the alarm is in the report and on stderr); 2: a file is not a
    readable EMA export.
    """
    from epar_graph.changes_report import run_diff

    raise typer.Exit(run_diff(old, new, format.value, output))


class ReportFormat(StrEnum):
    text = "text"
    turtle = "turtle"
    json = "json"
    junit = "junit"


class Engine(StrEnum):
    fast = "fast"
    pyshacl = "pyshacl"


@app.command()
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="RDF files to check (any RDF syntax); none checks dist/epar.ttl."),
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")] = ReportFormat.text,
    shapes: Annotated[Path | None, typer.Option(help="SHACL shapes file (default: shapes/epar.shacl.ttl).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
    engine: Annotated[
        Engine,
        typer.Option(help="fast: SPARQL on pyoxigraph, the same results as pySHACL (which it hands over to for "
                     "shapes or input it cannot check exactly); pyshacl: the reference engine."),
    ] = Engine.fast,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Check RDF data against the SHACL shapes.

    Exit 0: conforms; 1: violations; 2: unreadable input.
    """
    from epar_graph.validate import run_validate

    raise typer.Exit(
        run_validate(
            files or [config.DEFAULT_OUT / "epar.ttl"], format.value, shapes, output, engine=engine.value, quiet=quiet
        )
    )


class QueryFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    sparql: Annotated[str, typer.Argument(help="A SPARQL query, or @FILE to read it from a file.")],
    data: Annotated[Path, typer.Option(help="A build directory (from `epar-graph build`).")] = config.DEFAULT_OUT,
    format: Annotated[QueryFormat, typer.Option("--format", "-f")] = QueryFormat.table,
) -> None:
    """Run a SPARQL query against a build. Exit 1 on a bad query, 2 on missing data."""
    from epar_graph.query import run_query

    raise typer.Exit(run_query(sparql, data, format.value))


@app.command()
def load(
    release_dir: Annotated[Path, typer.Argument(help="A build directory (e.g. dist).")],
    to: Annotated[str, typer.Option(help="The engine's SPARQL 1.1 Graph Store Protocol endpoint, "
                                    "e.g. http://localhost:7878/store for Oxigraph server.")],
    update: Annotated[str | None, typer.Option(help="The engine's SPARQL Update endpoint "
                                               "(default: beside an Oxigraph /store).")] = None,
    query: Annotated[str | None, typer.Option(help="The engine's SPARQL query endpoint "
                                              "(default: beside an Oxigraph /store).")] = None,
    user: Annotated[str | None, typer.Option(envvar="EPAR_ENGINE_USER",
                                             help="Login for the engine (HTTP digest), e.g. Virtuoso's dba.")] = None,
    password: Annotated[str | None, typer.Option(envvar="EPAR_ENGINE_PASSWORD", hidden=True)] = None,
) -> None:
    """Put a release into an existing SPARQL engine, then switch to it in one step.

    Queries see the previous release until the switch. Exit 0: loaded; 1: the engine
    refused or cannot be reached; 2: usage error (not a release, bad URL).
    """
    from epar_graph.load import run_load

    raise typer.Exit(run_load(release_dir, to, update, query, user, password))


@app.command()
def serve(
    data: Annotated[
        Path | None, typer.Option(help="A build directory; default builds the bundled data if needed.")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    query_timeout: Annotated[float, typer.Option(help="Seconds before a SPARQL query is stopped.")] = 30.0,
    access_log: Annotated[bool, typer.Option(help="Log every request (off: log at your reverse proxy).")] = False,
    store: Annotated[
        str | None,
        typer.Option(envvar="EPAR_STORE_URL", help="SPARQL 1.1 query endpoint of an engine holding the release "
                     "(see `epar-graph load`), instead of the embedded store."),
    ] = None,
) -> None:
    """Serve the graph: SPARQL endpoint, entity pages, query UI and downloads."""
    from epar_graph.serve import run_server

    raise typer.Exit(
        run_server(data=data, host=host, port=port, query_timeout=query_timeout, access_log=access_log,
                   store_url=store)
    )


def _register_links() -> None:
    from epar_graph.links.cli import links_app

    app.add_typer(links_app, name="links", help="Links to other drug knowledge bases.")


_register_links()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
