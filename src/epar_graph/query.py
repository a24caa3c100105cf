"""``epar-graph query``: ask a build a SPARQL question from the command line."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pyoxigraph
from pyoxigraph import QueryBoolean, QueryResultsFormat, QuerySolutions, RdfFormat, Store
from rich.console import Console
from rich.table import Table

from epar_graph import sparql_text
from epar_graph.release import find_dump

EXIT_OK, EXIT_BAD_QUERY, EXIT_NO_DATA = 0, 1, 2


def dump_files(data: Path, history: bool = True) -> list[Path]:
    """The N-Triples dumps of a build: the main graph, every link set and (``history``) the changes."""
    main = find_dump(data)
    if main is None:
        return []
    changes = [data / "changes.nt"] if history and (data / "changes.nt").is_file() else []
    return [main, *sorted(data.glob("links-*.nt")), *changes]


def load_build(data: Path, history: bool = True) -> Store:
    """An in-memory store holding a build's dumps (a few seconds for the bundled data).

    Without ``history`` it holds today's graph only: no past holders or substances of the changes.
    """
    files = dump_files(data, history)
    if not files:
        raise FileNotFoundError(f"no epar.nt in {data}: run `epar-graph build --out {data}` first")
    store = Store()
    for path in files:
        if path.suffix == ".gz":
            store.bulk_load(gzip.decompress(path.read_bytes()), RdfFormat.N_TRIPLES)
        else:
            store.bulk_load(path=str(path), format=RdfFormat.N_TRIPLES)
    return store


def _cell(term: object) -> str:
    if term is None:
        return ""
    value = getattr(term, "value", None)
    return str(value) if value is not None else str(term)


def run_query(sparql: str, data: Path, fmt: str) -> int:
    """Run ``sparql`` (or ``@file``) against the build in ``data`` and print the answer."""
    err = Console(stderr=True)
    if sparql.startswith("@"):
        try:
            sparql = Path(sparql[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            err.print(f"error: cannot read query file {sparql[1:]}: {exc}", markup=False)
            return EXIT_NO_DATA
    try:
        store = load_build(data)
    except (FileNotFoundError, OSError, SyntaxError) as exc:
        err.print(f"error: {exc}", markup=False)
        return EXIT_NO_DATA
    prepared = sparql_text.with_common_prefixes(sparql)
    try:
        result = store.query(prepared.text)
    except SyntaxError as exc:
        err.print(f"error: malformed query: {sparql_text.explain(exc, prepared, sparql)}", markup=False,
                  highlight=False, soft_wrap=True)
        return EXIT_BAD_QUERY
    out = sys.stdout
    if isinstance(result, QueryBoolean):
        if fmt == "json":
            out.write('{"head": {}, "boolean": %s}\n' % ("true" if bool(result) else "false"))
        else:
            out.write(("true" if bool(result) else "false") + "\n")
        return EXIT_OK
    if isinstance(result, QuerySolutions):
        if fmt in ("csv", "json"):
            rf = QueryResultsFormat.CSV if fmt == "csv" else QueryResultsFormat.JSON
            data_bytes = result.serialize(format=rf)
            out.write((data_bytes or b"").decode("utf-8"))
            if fmt == "json":
                out.write("\n")
            return EXIT_OK
        variables = [v.value for v in result.variables]
        table = Table(*variables, show_lines=False)
        rows = 0
        for solution in result:
            table.add_row(*(_cell(solution[v]) for v in variables))
            rows += 1
        Console().print(table)
        err.print(f"{rows} row(s)")
        return EXIT_OK
    rdf_format = RdfFormat.JSON_LD if fmt == "json" else RdfFormat.TURTLE
    data_bytes = pyoxigraph.serialize(result, format=rdf_format)
    out.write((data_bytes or b"").decode("utf-8"))
    return EXIT_OK
