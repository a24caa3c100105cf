"""Cut small real fixtures from EMA's Excel reports of 2018, 2023 and 2026.

The reader tests need EMA's own rows, quirks and all, without reading the
2,000-row reports each time. From each report under ``data/`` this keeps the
letterhead rows, the header row and a few real rows, unchanged:

* the products named in :data:`PICKED` that the report lists (Alofisel, Humira
  with eight MeSH headings, Wegovy with "&lt;30 kg/m2", the number printed as
  ``EMEA/H/C005201``, Graspa's ATC code ``LX1XX02``, ...);
* the first row of every (category, status) pair, so every status EMA uses
  is there, the empty one of 2023 included;
* the first row without a holder and the first veterinary row with species
  and an ATCvet code.

Run ``python tests/data/read/cut_reports.py`` from the repository root; the
output is deterministic, so re-running it changes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import Workbook
from python_calamine import CalamineWorkbook

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "data"
REPORTS = (
    "ema-epar-report-2018-12-23.xlsx",
    "ema-epar-report-2023-06.xlsx",
    "ema-medicines-report-2026-01-29.xlsx",
    "ema-medicines-report-2026-03-14.xlsx",
)
PICKED = (
    "EMEA/H/C/004258",  # Alofisel: withdrawn in 2024, advanced therapy
    "EMEA/H/C/000481",  # Humira: eight MeSH headings, some with commas
    "EMEA/H/C/005422",  # Wegovy: "&lt;30 kg/m2" in its indication
    "EMEA/H/C005201",  # the number with a lost slash (2026-03-14)
    "EMEA/H/C/004736",  # Graspa: ATC code printed LX1XX02
    "EMEA/H/C/005845",  # CureVac: withdrawn from rolling review
    "EMEA/H/C/002070",  # Enzepi: suspended, then withdrawn
    "EMEA/V/C/006821",  # VeroBlue-3: veterinary opinion, two species
    "EMEA/H/C/000262",  # Enbrel: holder "Pfizer Europe MA EEIG"
    "EMEA/H/C/002250",  # Elelyso: holder "Pfizer Ltd. " (one node with "Pfizer Limited")
    "EMEA/H/C/002294",  # Vyndaqel: holder "Pfizer Ltd" in 2018
)


def _header_index(rows: list[list[object]]) -> int:
    return next(i for i, row in enumerate(rows) if "Category" in row)


def _picked_rows(header: list[object], rows: list[list[object]]) -> list[list[object]]:
    def column(*words: str) -> int:
        return next(i for i, h in enumerate(header) if all(w in str(h).lower() for w in words))

    number = column("product number")
    status = column("status")  # "Authorisation status" / "Medicine status"
    holder = column("holder")
    species = column("species")
    atcvet = column("atcvet")
    keep: list[int] = []
    seen: set[tuple[object, object]] = set()
    for i, row in enumerate(rows):
        pair = (row[0], row[status])
        if str(row[number]).strip() in PICKED or pair not in seen:
            keep.append(i)
        seen.add(pair)
    keep.append(next(i for i, row in enumerate(rows) if not str(row[holder]).strip()))
    keep.append(next(i for i, row in enumerate(rows) if row[species] and row[atcvet]))
    return [rows[i] for i in sorted(set(keep))]


def cut(report: Path, out: Path) -> int:
    """Write the cut of ``report`` to ``out``; the number of data rows kept."""
    rows = CalamineWorkbook.from_path(str(report)).get_sheet_by_index(0).to_python()
    h = _header_index(rows)
    kept = _picked_rows(rows[h], rows[h + 1:])
    book = Workbook()
    sheet = book.active
    sheet.title = "Worksheet 1"
    for row in [*rows[: h + 1], *kept]:
        sheet.append([None if cell == "" else cell for cell in row])
    fixed = dt.datetime(2026, 3, 14)
    book.properties.created = fixed
    book.properties.modified = fixed
    book.save(out)
    return len(kept)


def main() -> None:
    for name in REPORTS:
        print(name, cut(DATA / name, HERE / name), "rows")


if __name__ == "__main__":
    main()
