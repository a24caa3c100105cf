"""EMA's spreadsheets read a second way, with openpyxl and xlrd, for tests to compare against.

The project reads EMA's files with python-calamine; these helpers take the
rows as another library sees them, so a count or a value checked against them
is not the reader checking itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path

import openpyxl
import xlrd

from epar_graph import config

#: EMA's reports, oldest first, by the date EMA printed on them.
REPORTS = {
    dt.date(2017, 2, 13): config.DATA_DIR / "ema-medicines-2017-02-13.xls",
    dt.date(2018, 12, 23): config.DATA_DIR / "ema-epar-report-2018-12-23.xlsx",
    dt.date(2023, 6, 12): config.DATA_DIR / "ema-epar-report-2023-06.xlsx",
    dt.date(2026, 1, 29): config.DATA_DIR / "ema-medicines-report-2026-01-29.xlsx",
    dt.date(2026, 3, 14): config.DATA_DIR / "ema-medicines-report-2026-03-14.xlsx",
}
HEADER_WORDS = ("Category", "Medicine Name")


@functools.cache
def rows(path: Path) -> tuple[dict[str, object], ...]:
    """The data rows of an EMA spreadsheet as header → cell ("" for an empty cell)."""
    if path.suffix == ".xls":
        sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
        table = [sheet.row_values(i) for i in range(sheet.nrows)]
    else:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        table = [["" if c is None else c for c in row] for row in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    h = next(i for i, row in enumerate(table) if any(w in row for w in HEADER_WORDS))
    header = [str(c) for c in table[h]]
    return tuple(dict(zip(header, row, strict=False)) for row in table[h + 1:] if any(str(c).strip() for c in row))


def column(row: dict[str, object], *words: str) -> object:
    """The cell whose header has all ``words`` (case-insensitive): the layouts name columns differently."""
    for header, value in row.items():
        if all(w.lower() in header.lower() for w in words):
            return value
    raise KeyError(words)


def product_number(row: dict[str, object]) -> str:
    """The product number, with the one lost slash of 2026 put back."""
    text = re.sub(r"\s", "", str(column(row, "product number")))
    return re.sub(r"^EMEA/([HV])/C/?(\d{6})$", r"EMEA/\1/C/\2", text)


def status(row: dict[str, object]) -> str:
    """The authorisation status: "Status" (2017), "Authorisation status" (2018, 2023), "Medicine status"."""
    for header in ("Status", "Authorisation status", "Medicine status"):
        if header in row:
            return str(row[header]).strip()
    raise KeyError("status")


def category(row: dict[str, object]) -> str:
    return str(row.get("Category", "Human")).strip()  # the 2017 export lists human medicines only
