"""The build: read → model → graph → publish, with counts that add up.

This module only sequences the stages and reports; each stage lives in its own
module and knows nothing of the others' internals.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import Triple
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from epar_graph import config, history, publish, release, runtime, search_index
from epar_graph.files import sha256_file
from epar_graph.graph import Lines, build_graphs
from epar_graph.iris import IriError, Minter
from epar_graph.links.matching import build_linksets
from epar_graph.links.sets import DESIGNATION_TABLE, Linkset, void_description
from epar_graph.model import OrphanDesignation, ReadWarning, Rejection, merge_sources, place_designations
from epar_graph.read import EXPORT_DATE, ReadResult, read_source
from epar_graph.read.link_tables import read_designations

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_HISTORY_ALARM, EXIT_NO_SPACE = 0, 1, 2, 3, 4
#: How an export's date was set when ``--as-of`` gave it (metadata ``export_date_from``).
FROM_AS_OF = "--as-of option"


class HistoryAlarm(Exception):
    """The exports look broken (products vanished, columns gone): the history is not published."""

    def __init__(self, diffs: Sequence[history.Diff]) -> None:
        self.alarms = [(d.old.name, d.new.name, a.message) for d in diffs for a in d.alarms]
        super().__init__("; ".join(message for _old, _new, message in self.alarms))


class SameDateExports(ValueError):
    """Two exports carry the same date, so their order, and the history, is unknown."""


@dataclass
class BuildResult:
    """What a build produced, for callers that want more than an exit code."""

    out: Path
    sources: list[publish.SourceReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[ReadWarning] = field(default_factory=list)
    products: int = 0
    triples: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    #: the diffs between consecutive exports, oldest first
    diffs: list[history.Diff] = field(default_factory=list)

    @property
    def changes(self) -> Counter[str]:
        return Counter(c.kind for d in self.diffs for c in d.changes)

    @property
    def read(self) -> int:
        return sum(s.read for s in self.sources)

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.sources)


def _progress(quiet: bool, console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    )




def build(
    sources: Sequence[Path],
    out: Path,
    *,
    base: str | None = None,
    gzip_nt: bool = False,
    quiet: bool = True,
    with_links: bool | None = None,
    console: Console | None = None,
    as_of: Mapping[str, dt.date] | None = None,
    accept_removals: bool = False,
    max_input_bytes: int | None = None,
    links_dir: Path | None = None,
) -> BuildResult:
    """Build a release from ``sources`` (the bundled data when empty) into ``out``.

    Links to other knowledge bases come from the link tables in ``links_dir``
    (the bundled ones, :data:`config.DATA_DIR`, by default); they are added
    when building the bundled data, or when ``with_links`` says so. The folder
    is a parameter so tests and users can link against their own tables (a
    small subset, or a newer match table) with the same file names.
    ``as_of`` dates exports by file name (or path), over the date they print.
    A history whose exports look broken (see :mod:`history`) raises
    :class:`HistoryAlarm` before anything is written, unless ``accept_removals``.
    """
    console = console or Console(stderr=True)
    mint = Minter(base) if base else Minter()
    paths = list(sources) or list(config.BUNDLED_SOURCES)
    if with_links is None:
        with_links = not sources
    links_dir = links_dir or config.DATA_DIR
    result = BuildResult(out=out)
    results: list[ReadResult] = []
    with _progress(quiet, console) as progress, runtime.no_cyclic_gc():
        task = progress.add_task("reading", total=len(paths))
        for path in paths:
            progress.update(task, description=f"reading {path.name}")
            results.append(_dated(read_source(path, max_bytes=max_input_bytes), as_of or {}))
            progress.advance(task)
        progress.update(task, description="comparing exports")
        result.diffs = history.history(_snapshots(results))
        if not accept_removals and any(d.alarms for d in result.diffs):
            raise HistoryAlarm(result.diffs)
        progress.update(task, description="building graph")
        products = merge_sources(r.for_merge() for r in results)
        for r in results:
            result.sources.append(
                publish.SourceReport(
                    path=r.source,
                    format=r.format,
                    sha256=sha256_file(r.source) if r.source.is_file() else "",
                    date=r.date,
                    read=r.count,
                    accepted=len(r.records),
                    rejected=len(r.rejections),
                    warnings=len(r.warnings),
                    snapshot=r.is_snapshot,
                    date_from=r.metadata.get("export_date_from"),
                )
            )
            result.rejections.extend(r.rejections)
            result.warnings.extend(r.warnings)
        del results  # the records: only the merged products are needed from here
        designations: list[OrphanDesignation] | None = None
        if with_links:
            table = read_designations(links_dir / DESIGNATION_TABLE)
            designations, _ = place_designations((row.designation for row in table.rows), products)
        lines, changes = build_graphs(products, result.diffs, mint, designations)
        linksets: list[Linkset] = []
        if with_links:
            progress.update(task, description="linking")
            linksets = build_linksets(products, mint, links_dir, table)
        progress.update(task, description="writing")
        result.products = len(products)
        result.triples = len(lines)
        del products  # only the lines are needed from here
        result.files = _write(out, mint, lines, linksets, result, gzip_nt, changes)
    return result


def _dated(result: ReadResult, as_of: Mapping[str, dt.date]) -> ReadResult:
    """The result with the date ``--as-of`` gives its file, if any."""
    date = as_of.get(result.source.name) or as_of.get(str(result.source))
    if date is not None and result.is_snapshot:
        result.metadata[EXPORT_DATE] = date.isoformat()
        result.metadata["export_date_from"] = FROM_AS_OF
    return result


def _snapshots(results: Sequence[ReadResult]) -> list[history.Snapshot]:
    """The dated exports as snapshots; two of one date are an error (their order is unknown).

    A single export has nothing to be compared with: no snapshot is made of it.
    """
    dated = [r for r in results if r.is_snapshot and r.date and r.records]
    if len(dated) < 2:
        return []
    snaps: dict[dt.date, history.Snapshot] = {}
    for r in dated:
        assert r.date is not None
        if r.date in snaps:
            raise SameDateExports(
                f"{snaps[r.date].name} and {r.source.name} are both dated {r.date.isoformat()}: "
                "give one its date with --as-of FILE=DATE"
            )
        sha = sha256_file(r.source) if r.source.is_file() else ""
        snaps[r.date] = history.snapshot(r.source.name, r.date, sha, r.columns, r.records)
    return list(snaps.values())


#: From how many triples the Turtle dump and the search index are written by a second process.
BESIDE_FROM = 200_000


def _write(
    out: Path,
    mint: Minter,
    lines: Lines,
    linksets: list[Linkset],
    result: BuildResult,
    gzip_nt: bool,
    changes: Lines,
) -> dict[str, Path]:
    """Write the release; ``lines`` is emptied on the way (it is most of the memory).

    Every dump is written from the sorted N-Triples: once that file is down,
    the Turtle dump and the search index are made from it by a second process
    (on a large graph and with a second core) while this one writes the
    JSON-LD and the rest.
    """
    built = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with release.release_dir(out) as tmp, _Beside(enabled=len(lines) >= BESIDE_FROM) as beside:
        files: dict[str, Path] = {}
        plain, compressed = release.DUMP_NAMES
        nt_name = compressed if gzip_nt else plain
        files[nt_name] = tmp / nt_name
        files["epar.ttl"] = tmp / "epar.ttl"
        begin = beside.turtle_and_index(files[nt_name], files["epar.ttl"], tmp / search_index.INDEX_FILE)
        publish.write_sorted_lines(files[nt_name], lines, gz=gzip_nt)  # empties them
        begin(search_index.former_names(result.diffs))
        stats, context = publish.stats_and_context(publish.read_lines(files[nt_name]))
        files["context.jsonld"] = tmp / "context.jsonld"
        publish.write_json(files["context.jsonld"], context)
        files["epar.jsonld"] = tmp / "epar.jsonld"
        nodes = publish.jsonld_lines(publish.read_lines(files[nt_name]), context)
        publish.write_jsonld(files["epar.jsonld"], context, nodes)
        for ls in linksets:
            name = f"links-{ls.name}.nt"
            files[name] = tmp / name
            publish.write_bytes(files[name], publish.sorted_ntriples(ls.triples))
        history_void: list[Triple] = []
        if result.diffs:
            files[publish.CHANGES_FILE] = tmp / publish.CHANGES_FILE
            n_changes = len(changes)
            publish.write_sorted_lines(files[publish.CHANGES_FILE], changes)
            dates = sorted({d.old.date for d in result.diffs} | {d.new.date for d in result.diffs})
            history_void = publish.history_void(mint, n_changes, result.changes, dates)
        if result.rejections:
            files["rejections.csv"] = tmp / "rejections.csv"
            publish.write_rejections(files["rejections.csv"], result.rejections)
        if result.warnings:
            files["warnings.csv"] = tmp / "warnings.csv"
            publish.write_rejections(files["warnings.csv"], result.warnings)
        beside.wait()  # the VoID states the checksums of every dump, the Turtle one included
        void = publish.void_triples(
            mint, stats, result.sources, dict(files), built, [*void_description(linksets, mint), *history_void]
        )
        (tmp / "void.ttl").write_bytes(publish.turtle(void))
        files["void.ttl"] = tmp / "void.ttl"
    return {name: out / name for name in files}


def _turtle_and_index(nt: Path, ttl: Path, index: Path, former: Mapping[str, set[str]]) -> None:
    """Write the Turtle dump and the search index of the sorted N-Triples dump ``nt``."""
    reading = search_index.Reading()
    with runtime.no_cyclic_gc():
        publish.write_turtle(ttl, reading.noting(publish.read_ntriples(nt)))  # one parse serves both
        search_index.write_index(index, reading.entries(former))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


class BesideFailed(RuntimeError):
    """The second process of a build failed for a reason other than the file system's."""


#: How the second process tells a file-system error (errno and message on its first line of stderr).
_OS_ERROR = 75


class _Beside:
    """Work done by a second process while this one goes on; done here and now on a single core.

    The process is a fresh interpreter (``python -m epar_graph.pipeline``), not
    a fork: it holds nothing of the build's memory, and a caller's script is
    never run again in it, as multiprocessing's "spawn" would. Its failure is
    raised here, at :meth:`wait` or on leaving the block: a file-system error
    as the same :class:`OSError`, anything else as :class:`BesideFailed`.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and _cores() > 1 and bool(sys.executable)  # an embedded Python has none
        #: each process, and the file beside its inputs where it says what went wrong
        self._running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def __enter__(self) -> _Beside:
        return self

    def turtle_and_index(self, nt: Path, ttl: Path, index: Path) -> Callable[[Mapping[str, set[str]]], None]:
        """:func:`_turtle_and_index`, beside: it begins when the function returned is called with the former names.

        The process is started at once, and waits for those names on its
        standard input: its interpreter starts while ``nt`` is being written.
        """
        if not self.enabled:
            return functools.partial(_turtle_and_index, nt, ttl, index)
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        said = nt.with_name(f".beside-{len(self._running)}.stderr")
        with open(said, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "epar_graph.pipeline", str(nt), str(ttl), str(index)],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env)
        self._running.append((proc, said))

        def begin(former: Mapping[str, set[str]]) -> None:
            assert proc.stdin is not None
            with proc.stdin:
                proc.stdin.write(json.dumps({k: sorted(v) for k, v in former.items()}).encode("utf-8"))

        return begin

    def wait(self) -> None:
        """Wait for the work handed over so far; its first failure is raised."""
        running, self._running = self._running, []
        failure: Exception | None = None
        for proc, said_file in running:
            code = proc.wait()
            said = said_file.read_text(encoding="utf-8", errors="replace").strip()
            said_file.unlink()
            if code == _OS_ERROR and failure is None:
                number, _, message = said.partition(" ")
                failure = OSError(int(number) if number.isdigit() else errno.EIO, message)
            elif code and failure is None:
                failure = BesideFailed(f"the second process of the build failed (exit code {code}): {said[-2000:]}")
        if failure is not None:
            raise failure

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.wait()
            return
        for proc, _ in self._running:  # the release is abandoned: its second half too
            proc.kill()
        with contextlib.suppress(Exception):  # the failure that ended the block is the one to report
            self.wait()


def _beside_main(args: Sequence[str]) -> int:
    """The second process: ``python -m epar_graph.pipeline NT TTL INDEX``, the former names as JSON on stdin."""
    nt, ttl, index = (Path(a) for a in args)
    former = {number: set(names) for number, names in json.load(sys.stdin).items()}
    try:
        _turtle_and_index(nt, ttl, index, former)
    except OSError as exc:
        print(f"{exc.errno or ''} {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return _OS_ERROR
    return EXIT_OK


def run_build(
    sources: Sequence[Path],
    out: Path,
    *,
    base: str | None = None,
    gzip_nt: bool = False,
    quiet: bool = False,
    as_of: Mapping[str, dt.date] | None = None,
    accept_removals: bool = False,
    max_input_bytes: int | None = None,
) -> int:
    """The ``epar-graph build`` command: build, report, and return the exit code."""
    console = Console(stderr=True)
    missing = [p for p in sources if not p.exists()]
    if missing:
        for p in missing:
            console.print(f"error: no such file: {p}", markup=False)
        return EXIT_USAGE
    dirs = [p for p in sources if p.is_dir()]
    if dirs:
        console.print(f"error: {dirs[0]} is a directory; name the files to read", markup=False)
        return EXIT_USAGE
    try:
        if base:
            Minter(base)
    except IriError as exc:
        console.print(f"error: --base: {exc}", markup=False)
        return EXIT_USAGE
    try:
        release.check_replaceable(out)
        result = build(sources, out, base=base, gzip_nt=gzip_nt, quiet=quiet, console=console,
                       as_of=as_of, accept_removals=accept_removals, max_input_bytes=max_input_bytes)
    except HistoryAlarm as alarm:
        for old, new, message in alarm.alarms:
            console.print(f"ALARM: {old} → {new}: {message}", markup=False, style="bold red")
        console.print(
            "error: the history of these exports is not published: check the newer export, "
            "or build with --accept-removals if EMA's list really changed so", markup=False)
        return EXIT_HISTORY_ALARM
    except SameDateExports as exc:
        console.print(f"error: {exc}", markup=False)
        return EXIT_USAGE
    except release.NotARelease as exc:
        console.print(f"error: {exc}", markup=False)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            console.print(f"error: no space left to write the release to {out} ({exc.strerror}); "
                          "the previous release is untouched", markup=False)
            return EXIT_NO_SPACE
        console.print(f"error: cannot write the release to {out}: {exc.strerror or exc}", markup=False)
        return EXIT_USAGE
    for r in result.rejections:
        print(f"rejected: {r}", file=sys.stderr)
    if result.warnings:
        print(f"{len(result.warnings)} warning(s), listed in {out}/warnings.csv", file=sys.stderr)
    for s in result.sources:
        dated = f" ({s.date.isoformat()})" if s.date else ""
        warned = f"; {s.warnings} warning(s)" if s.warnings else ""
        print(f"{s.path}: {s.format}{dated}: read {s.read} = accepted {s.accepted} + rejected {s.rejected}{warned}")
    print(
        f"total: read {result.read} = accepted {result.accepted} + rejected {len(result.rejections)}; "
        f"{result.products} products, {result.triples} triples → {out}/"
    )
    if result.diffs:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.changes.items()))
        print(f"history: {len(result.diffs) + 1} exports, {sum(result.changes.values())} changes ({kinds}) "
              f"→ {out}/{publish.CHANGES_FILE}")
    return EXIT_REJECTED if result.rejections else EXIT_OK


if __name__ == "__main__":
    sys.exit(_beside_main(sys.argv[1:]))
