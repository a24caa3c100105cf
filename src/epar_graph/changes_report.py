"""``epar-graph diff``: the changes between two EMA exports, for people and programs.

Text and Markdown for people, JSON (following ``schemas/changes.schema.json``)
and Turtle for programs. An alarm (many products gone, a column gone) comes
first in every format, and on stderr, because it usually means a broken
download rather than EMA's list changing.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from epar_graph import history, publish
from epar_graph.files import sha256_file
from epar_graph.graph import CHANGE_TYPE_LABELS, FIELD_PROPERTIES, GraphBuilder, change_label
from epar_graph.iris import Minter
from epar_graph.read import read_source

EXIT_OK, EXIT_UNREADABLE = 0, 2
SCHEMA_FILE = Path(__file__).parent / "schemas" / "changes.schema.json"


class NotAnExport(Exception):
    """A file given to ``diff`` that is not a readable EMA export."""


def load_snapshot(path: Path) -> history.Snapshot:
    """One export as a snapshot, dated as it says (else by the file's modification day)."""
    result = read_source(path)
    if not result.is_snapshot or not result.records:
        why = result.rejections[0].message if result.rejections else f"a {result.format} file, not an EMA export"
        raise NotAnExport(f"{path}: {why}")
    date = result.date or dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    return history.snapshot(path.name, date, sha256_file(path), result.columns, result.records)


def _shown(value: history.Value) -> str | bool | int:
    return value.isoformat() if isinstance(value, dt.date) else value


def to_json(d: history.Diff) -> dict[str, object]:
    """The diff as the JSON document ``schemas/changes.schema.json`` describes."""

    def side(s: history.Snapshot) -> dict[str, object]:
        return {"file": s.name, "date": s.date.isoformat(), "sha256": s.sha256, "products": len(s.products)}

    return {
        "old": side(d.old),
        "new": side(d.new),
        "alarms": [a.message for a in d.alarms],
        "summary": dict(sorted(d.counts().items())),
        "changes": [
            {
                "product_number": c.product_number,
                "name": c.name,
                "type": c.kind,
                "property": FIELD_PROPERTIES[c.field][0].value if c.field else None,
                "old": [_shown(v) for v in c.old],
                "new": [_shown(v) for v in c.new],
                "effective_date": c.effective.isoformat() if c.effective else None,
            }
            for c in d.changes
        ],
    }


def _summary_rows(d: history.Diff) -> list[tuple[str, int]]:
    counts = d.counts()
    return [(kind, counts[kind]) for kind in history.CHANGE_TYPES if counts[kind]]


def to_text(d: history.Diff) -> str:
    lines = [f"ALARM: {a.message}" for a in d.alarms]
    lines.append(f"{d.old.name} ({d.old.date}, {len(d.old.products)} products) → "
                 f"{d.new.name} ({d.new.date}, {len(d.new.products)} products): {len(d.changes)} changes")
    lines.extend(f"  {kind:<12} {n:>6}  {CHANGE_TYPE_LABELS[kind]}" for kind, n in _summary_rows(d))
    lines.append("")
    for c in d.changes:
        when = f"  (effective {c.effective.isoformat()})" if c.effective else ""
        lines.append(f"{c.kind:<11} {change_label(c)}{when}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(d: history.Diff) -> str:
    lines = [f"# Changes from {d.old.name} ({d.old.date}) to {d.new.name} ({d.new.date})", ""]
    lines.extend(f"> **Alarm:** {_md(a.message)}" for a in d.alarms)
    if d.alarms:
        lines.append("")
    lines += ["| change type | changes |", "|---|---:|"]
    lines.extend(f"| {CHANGE_TYPE_LABELS[kind]} (`{kind}`) | {n} |" for kind, n in _summary_rows(d))
    lines += ["", "| product | type | old | new | effective |", "|---|---|---|---|---|"]
    for c in d.changes:
        old = "; ".join(str(_shown(v)) for v in c.old)
        new = "; ".join(str(_shown(v)) for v in c.new)
        when = c.effective.isoformat() if c.effective else ""
        lines.append(f"| {_md(c.name)} ({c.product_number}) | {c.kind} | {_md(old)} | {_md(new)} | {when} |")
    return "\n".join(lines) + "\n"


def to_turtle(d: history.Diff, mint: Minter) -> str:
    builder = GraphBuilder(mint)
    builder.history([d])
    return publish.turtle(publish.in_ntriples_order(publish.sorted_ntriples(builder.triples)),
                          presorted=True).decode("utf-8")


def render(d: history.Diff, fmt: str, mint: Minter | None = None) -> str:
    if fmt == "json":
        return json.dumps(to_json(d), ensure_ascii=False, indent=1) + "\n"
    if fmt == "markdown":
        return to_markdown(d)
    if fmt == "turtle":
        return to_turtle(d, mint or Minter())
    return to_text(d)


def run_diff(old: Path, new: Path, fmt: str, output: Path | None = None) -> int:
    """The ``diff`` command: compare, print (or write) the report, return the exit code."""
    try:
        d = history.diff(load_snapshot(old), load_snapshot(new))
    except (NotAnExport, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for alarm in d.alarms:
        print(f"ALARM: {alarm.message}", file=sys.stderr)
    report = render(d, fmt)
    if output is not None:
        output.write_text(report, encoding="utf-8")
    else:
        sys.stdout.write(report)
    return EXIT_OK
