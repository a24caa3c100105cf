"""The history: changes between EMA's exports, checked against the exports read a second way."""

from __future__ import annotations

import collections
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import ema_sheets
import jsonschema
import pytest
import rdflib
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from epar_graph import history
from epar_graph.changes_report import SCHEMA_FILE, load_snapshot
from epar_graph.files import sha256_file
from epar_graph.iris import Minter
from epar_graph.model import ProductRecord
from epar_graph.pipeline import EXIT_HISTORY_ALARM, build
from epar_graph.read import read_source
from epar_graph.validate import load_rdf, validate_graph

CUTS = Path(__file__).parent / "data" / "read"
CUT_JAN, CUT_MAR = (CUTS / f"ema-medicines-report-2026-{d}.xlsx" for d in ("01-29", "03-14"))
CUT_2018 = CUTS / "ema-epar-report-2018-12-23.xlsx"
CUT_2023 = CUTS / "ema-epar-report-2023-06.xlsx"
CLI = [sys.executable, "-m", "epar_graph.cli"]
ALOFISEL = "EMEA/H/C/004258"
JAN, MAR = ema_sheets.REPORTS[dt.date(2026, 1, 29)], ema_sheets.REPORTS[dt.date(2026, 3, 14)]


def _snapshot(path: Path) -> history.Snapshot:
    r = read_source(path)
    assert r.date is not None
    return history.snapshot(path.name, r.date, sha256_file(path), r.columns, r.records)


@pytest.fixture(scope="module")
def bundled_diffs() -> list[history.Diff]:
    return history.history(_snapshot(p) for p in ema_sheets.REPORTS.values())


# --- on the bundled exports -----------------------------------------------------------------


def test_snapshots_are_ordered_by_their_own_dates(bundled_diffs: list[history.Diff]) -> None:
    dates = [bundled_diffs[0].old.date, *(d.new.date for d in bundled_diffs)]
    assert dates == sorted(ema_sheets.REPORTS)
    backwards = history.history(_snapshot(p) for p in reversed(list(ema_sheets.REPORTS.values())))
    assert [(d.old.name, d.new.name, d.changes) for d in backwards] == [
        (d.old.name, d.new.name, d.changes) for d in bundled_diffs
    ]


def test_alofisel_withdrawal_is_one_change_with_its_date(bundled_diffs: list[history.Diff]) -> None:
    status = [c for d in bundled_diffs for c in d.changes if c.product_number == ALOFISEL and c.kind == "status"]
    assert len(status) == 1
    [change] = status
    assert (change.old, change.new) == (("Authorised",), ("Withdrawn",))
    assert (change.from_date, change.to_date) == (dt.date(2023, 6, 12), dt.date(2026, 1, 29))
    assert change.effective == dt.date(2024, 12, 13)


def test_the_two_2026_reports_diff_as_a_separate_reading_says() -> None:
    d = history.diff(_snapshot(JAN), _snapshot(MAR))
    jan = {ema_sheets.product_number(r): r for r in ema_sheets.rows(JAN)}
    mar = {ema_sheets.product_number(r): r for r in ema_sheets.rows(MAR)}
    assert {c.product_number for c in d.changes if c.kind == "added"} == set(mar) - set(jan)
    assert {c.product_number for c in d.changes if c.kind == "removed"} == set(jan) - set(mar)
    want = collections.Counter(
        (ema_sheets.status(jan[n]), ema_sheets.status(mar[n]))
        for n in set(jan) & set(mar)
        if ema_sheets.status(jan[n]) != ema_sheets.status(mar[n])
    )
    got = collections.Counter((c.old[0] if c.old else "", c.new[0] if c.new else "")
                              for c in d.changes if c.kind == "status")
    assert got == want and got[("Opinion", "Authorised")] > 0
    # "Generic or hybrid" became "Generic": only real differences of the cell are changes
    generic = {c.product_number for c in d.changes if c.field == "is_generic"}
    assert generic == {n for n in set(jan) & set(mar) if jan[n]["Generic or hybrid"] != mar[n]["Generic"]}
    assert d.alarms == []


# --- what is not a change ---------------------------------------------------------------------


def _rewrite(src: Path, out: Path, rename: dict[str, str], as_dates: bool) -> Path:
    """The same rows, with columns renamed and dd/mm/yyyy text turned into date cells."""
    rows = ema_sheets.rows(src)
    book = Workbook()
    sheet = book.active
    sheet.append(["Content type:", "Medicine", "Output automatically generated on:", "20/03/2026 - 06:00"])
    sheet.append([rename.get(h, h) for h in rows[0]])
    for row in rows:
        cells: list[object] = []
        for value in row.values():
            if as_dates and isinstance(value, str) and len(value) == 10 and value[2] == "/" and value[5] == "/":
                d, m, y = value.split("/")
                cells.append(dt.datetime(int(y), int(m), int(d)))
            else:
                cells.append(None if value == "" else value)
        sheet.append(cells)
    book.save(out)
    return out


def test_renamed_columns_and_reformatted_dates_make_no_changes(tmp_path: Path) -> None:
    again = _rewrite(CUT_JAN, tmp_path / "again.xlsx", {"Generic or hybrid": "Generic"}, as_dates=True)
    d = history.diff(_snapshot(CUT_JAN), _snapshot(again))
    assert d.changes == [] and d.alarms == []


def _record(number: str, **facts: object) -> ProductRecord:
    return ProductRecord(source="x", record="1", name=str(facts.pop("name", "Medicine")), product_number=number,
                         **facts)  # type: ignore[arg-type]


def _snap(date: dt.date, records: list[ProductRecord], columns: frozenset[str] | None = None) -> history.Snapshot:
    cols = columns if columns is not None else frozenset(c for t in history.TRACKED for c in t.columns)
    return history.snapshot(f"export-{date}.xlsx", date, "", cols, records)


def test_a_respelled_holder_is_not_a_transfer() -> None:
    a = _snap(dt.date(2020, 1, 1), [_record("EMEA/H/C/000001", holder="Pfizer Ltd"),
                                    _record("EMEA/H/C/000002", holder="Pfizer Limited")])
    b = _snap(dt.date(2021, 1, 1), [_record("EMEA/H/C/000001", holder="PFIZER LIMITED"),
                                    _record("EMEA/H/C/000002", holder="Pfizer Inc")])
    changes = history.diff(a, b).changes
    assert [(c.product_number, c.kind, c.old, c.new) for c in changes] == [
        ("EMEA/H/C/000002", "holder", ("Pfizer Limited",), ("Pfizer Inc",))
    ]


def test_a_fact_is_compared_only_where_both_exports_have_its_column() -> None:
    both = frozenset(c for t in history.TRACKED for c in t.columns)
    a = _snap(dt.date(2020, 1, 1), [_record("EMEA/H/C/000001", is_prime=None)], both - {"prime_priority_medicine"})
    b = _snap(dt.date(2021, 1, 1), [_record("EMEA/H/C/000001", is_prime=True)], both)
    assert history.diff(a, b).changes == []
    assert [a.message for a in history.diff(b, a).alarms] == [
        f"columns of {b.name} missing from {a.name}: prime_priority_medicine"
    ]


_NUMBERS = st.integers(1, 40).map(lambda n: f"EMEA/H/C/{n:06d}")


@settings(max_examples=40, deadline=None)
@given(st.sets(_NUMBERS, min_size=1, max_size=20), st.sets(_NUMBERS, min_size=1, max_size=20))
def test_added_and_removed_are_the_set_differences(old: set[str], new: set[str]) -> None:
    a = _snap(dt.date(2020, 1, 1), [_record(n, status="Authorised") for n in sorted(old)])
    b = _snap(dt.date(2021, 1, 1), [_record(n, status="Authorised") for n in sorted(new)])
    d = history.diff(a, b)
    assert {c.product_number for c in d.changes if c.kind == "added"} == new - old
    assert {c.product_number for c in d.changes if c.kind == "removed"} == old - new
    assert all(c.kind in ("added", "removed") for c in d.changes)
    assert history.diff(a, a).changes == []
    assert bool(d.alarms) == (len(old - new) / len(old) > history.REMOVAL_ALARM_SHARE)


# --- the build: changes.nt ----------------------------------------------------------------------


def test_changes_dump_is_the_same_for_any_argument_order_and_validates(tmp_path: Path) -> None:
    sources = [CUT_2018, CUT_2023, CUT_JAN, CUT_MAR]
    # the cuts hold different products, which would sound the alarm: accept it
    first = build(sources, tmp_path / "a", with_links=False, accept_removals=True)
    second = build(list(reversed(sources)), tmp_path / "b", with_links=False, accept_removals=True)
    data = (first.out / "changes.nt").read_bytes()
    assert data and data == (second.out / "changes.nt").read_bytes()
    report = validate_graph(load_rdf([first.out / "epar.nt", first.out / "changes.nt"]))
    assert [v for v in report.violations if v.severity == "Violation"] == []
    g = rdflib.Graph().parse(first.out / "changes.nt", format="nt")
    epar = rdflib.Namespace("https://w3id.org/epar/ontology#")
    assert len(set(g.subjects(rdflib.RDF.type, epar.Change))) == sum(first.changes.values())
    assert len(set(g.subjects(rdflib.RDF.type, epar.Snapshot))) == 4
    void = rdflib.Graph().parse(first.out / "void.ttl")
    subset = rdflib.URIRef(Minter().dataset("changes"))
    assert int(void.value(subset, rdflib.URIRef("http://rdfs.org/ns/void#triples"))) == len(g)


def test_as_of_dates_an_export(tmp_path: Path) -> None:
    """--as-of makes the March cut the older export: the history runs the other way."""
    out = tmp_path / "dist"
    result = build([CUT_JAN, CUT_MAR], out, with_links=False, as_of={CUT_MAR.name: dt.date(2025, 12, 1)},
                   accept_removals=True)
    [d] = result.diffs
    assert (d.old.name, d.old.date, d.new.name) == (CUT_MAR.name, dt.date(2025, 12, 1), CUT_JAN.name)


def _short_copy(src: Path, out: Path, keep: int) -> Path:
    rows = ema_sheets.rows(src)
    book = Workbook()
    sheet = book.active
    sheet.append(["Content type:", "Medicine", "Output automatically generated on:", "20/03/2026 - 06:00"])
    sheet.append(list(rows[0]))
    for row in rows[:keep]:
        sheet.append([None if v == "" else v for v in row.values()])
    book.save(out)
    return out


def test_build_refuses_a_history_with_vanished_products_unless_accepted(tmp_path: Path) -> None:
    short = _short_copy(CUT_MAR, tmp_path / "short.xlsx", keep=10)
    out = tmp_path / "dist"
    proc = subprocess.run([*CLI, "build", str(CUT_MAR), str(short), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == EXIT_HISTORY_ALARM, proc.stderr
    assert "ALARM" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    proc = subprocess.run([*CLI, "build", str(CUT_MAR), str(short), "--out", str(out), "--accept-removals"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "changes.nt").is_file()


# --- epar-graph diff ----------------------------------------------------------------------------


def _diff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "diff", *args], capture_output=True, text=True)


def test_diff_json_follows_its_schema_and_agrees_with_the_library() -> None:
    proc = _diff(str(CUT_JAN), str(CUT_MAR), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    d = history.diff(load_snapshot(CUT_JAN), load_snapshot(CUT_MAR))
    assert doc["summary"] == dict(sorted(d.counts().items()))
    assert len(doc["changes"]) == len(d.changes) > 0
    pairs = {(tuple(c["old"]), tuple(c["new"])) for c in doc["changes"] if c["type"] == "status"}
    assert (("Opinion",), ("Authorised",)) in pairs
    assert doc["alarms"] == [a.message for a in d.alarms]  # the cuts list different products


def test_diff_text_markdown_and_turtle(tmp_path: Path) -> None:
    text = _diff(str(CUT_JAN), str(CUT_MAR)).stdout
    summary = next(line for line in text.splitlines() if not line.startswith("ALARM"))
    assert summary.endswith("changes") and "status" in text
    md = _diff(str(CUT_JAN), str(CUT_MAR), "-f", "markdown").stdout
    assert md.startswith("# Changes from") and "| change type | changes |" in md
    ttl = _diff(str(CUT_JAN), str(CUT_MAR), "-f", "turtle", "-o", str(tmp_path / "d.ttl"))
    assert ttl.returncode == 0
    g = rdflib.Graph().parse(tmp_path / "d.ttl", format="turtle")
    assert len(set(g.subjects(rdflib.RDF.type, rdflib.URIRef("https://w3id.org/epar/ontology#Change")))) > 0


def test_diff_sounds_the_alarm_first(tmp_path: Path) -> None:
    short = _short_copy(CUT_MAR, tmp_path / "short.xlsx", keep=10)
    proc = _diff(str(CUT_MAR), str(short))
    assert proc.returncode == 0
    assert proc.stdout.startswith("ALARM: ") and "ALARM" in proc.stderr
    assert "missing from short.xlsx" in proc.stdout.splitlines()[0]


def test_diff_of_a_file_that_is_not_an_export_is_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "page.txt"
    other.write_text("hello", encoding="utf-8")
    proc = _diff(str(other), str(CUT_MAR))
    assert proc.returncode == 2
    assert "page.txt" in proc.stderr and "Traceback" not in proc.stderr
