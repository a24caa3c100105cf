"""Workbooks whose cells reach far beyond their data are read to the data's end, in bounded memory.

The memory bomb (values in A1 and XFD1048576, 5 KB on disk) is read in a
child process under a 2 GB address-space limit, so a regression fails the
test instead of the machine.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from epar_graph.read import read_source, workbook_limits

CUT = Path(__file__).parent / "data" / "read" / "ema-medicines-report-2026-03-14.xlsx"
LIMIT = 2 << 30


def _bomb(path: Path, far: str = "XFD1048576") -> Path:
    book = Workbook()
    sheet = book.active
    sheet["A1"] = "EMA product number"
    sheet["A2"] = "EMEA/H/C/004258"
    sheet["B1"] = "Name of medicine"
    sheet["B2"] = "Alofisel"
    sheet[far] = "boom"
    book.save(path)
    return path


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_the_memory_bomb_is_read_to_the_end_of_its_data(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 10_000
    code = (
        "import sys; from pathlib import Path; from epar_graph.read import read_source;"
        "r = read_source(Path(sys.argv[1]));"
        "print(len(r.records), len(r.rejections), '|'.join(w.message for w in r.warnings))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limited)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records, rejections, warnings = proc.stdout.strip().split(" ", 2)
    assert (records, rejections) == ("1", "0")
    assert "XFD1048576" in warnings and "left out" in warnings


def test_far_cells_are_reported_with_where_the_data_ends(tmp_path: Path) -> None:
    result = read_source(_bomb(tmp_path / "far.xlsx", far="A900000"))
    assert [r.name for r in result.records] == ["Alofisel"]
    [warning] = result.warnings
    assert "A900000" in warning.message and "row 2" in warning.message


def test_real_reports_are_read_untouched() -> None:
    safe = workbook_limits.bounded(CUT)
    assert safe.path == CUT and safe.notes == ()


def test_data_too_large_to_read_is_refused_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook_limits, "MAX_CELLS", 100)  # the real limit is 20 million cells
    result = read_source(CUT)
    [rejection] = result.rejections
    assert "rows ×" in rejection.message and "over the 100 cells" in rejection.message


def test_a_damaged_workbook_says_why(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData>")
    [rejection] = read_source(path).rejections
    assert rejection.message.startswith("not a readable .xlsx workbook: ") and not rejection.message.endswith(": ")


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(1, 5000), min_size=1, max_size=30))
def test_the_data_ends_before_the_first_long_run_of_empty_rows(rows: set[int]) -> None:
    scan = workbook_limits.SheetScan("s", rows=rows, columns={1})
    last, _ = scan.extent()
    ordered = sorted(rows)
    assert last in rows
    inside = [r for r in ordered if r <= last]
    assert all(b - a <= workbook_limits.GAP_ROWS for a, b in zip(inside, inside[1:], strict=False))
    beyond = [r for r in ordered if r > last]
    assert not beyond or beyond[0] - last > workbook_limits.GAP_ROWS


@pytest.mark.parametrize(("letters", "n"), [("A", 1), ("Z", 26), ("AA", 27), ("AMJ", 1024), ("XFD", 16384)])
def test_column_numbers(letters: str, n: int) -> None:
    assert workbook_limits.column_number(letters) == n


def test_the_scan_counts_cells_that_hold_a_value_however_their_tags_are_written(tmp_path: Path) -> None:
    """A cell closed at once holds no value (a styled empty cell): it does not stretch the data."""
    sheet = (
        b'<worksheet><dimension ref="A1:XFD1048576"/><sheetData>'
        b'<row r="1"><c r="A1" t="s"><v>0</v></c><c s="3" r="C1" t="inlineStr"><is><t>x</t></is></c></row>'
        b'<row r="7"><c r="B7" s="1"/><c r="D7" s="1" /><c r="E7"\n t="n"><v>4</v></c></row>'
        b'<row r="1048576"><c r="XFD1048576" s="2"/></row>'
        b'<cols><col min="1" max="16384"/></cols><c\tr="F9">'
        b'</sheetData></worksheet>'
    )
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    with zipfile.ZipFile(path) as z:
        scan = workbook_limits.scan(z, z.getinfo("xl/worksheets/sheet1.xml"))
    assert scan.rows == {1, 7, 9}
    assert scan.columns == {1, 3, 5, 6}
    assert scan.extent() == (9, 6)
