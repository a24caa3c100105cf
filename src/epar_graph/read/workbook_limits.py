"""How far an .xlsx sheet's data really reaches, found before any reader allocates its grid.

Spreadsheet readers (python-calamine, like most) hold a sheet as a dense grid
from its first to its last cell. A 5 KB workbook with values in A1 and
XFD1048576 is then a grid of 17 billion cells: hundreds of gigabytes, and the
process dies. So the sheet XML is scanned first, in chunks, for the cells that
hold a value. The data ends where a long run of empty rows (or columns)
begins; cells beyond are left out, with a warning, by reading a copy of the
workbook without them. A sheet whose real data is still too large, or whose
XML is, is refused with its size named.
"""

from __future__ import annotations

import operator
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

#: A run of this many empty rows (columns) after data ends the sheet's data.
GAP_ROWS = 1000
GAP_COLUMNS = 256
#: The largest grid (rows × columns of real data) read: about 24 bytes a cell in memory.
MAX_CELLS = 20_000_000
#: The largest uncompressed sheet XML scanned (a zip bomb stops here), and trimmed in memory.
MAX_SHEET_XML = 2 << 30
MAX_TRIMMED_XML = 256 << 20
_CHUNK = 1 << 20
#: The reference of a cell element's start tag, unless the tag closes at once (then the cell holds no value).
#: The rest of the tag is matched greedily, then looked behind: a third faster than a lazy match up to "/>".
_VALUED_CELL_TAG = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"[^>]*(?<!/)>')
_CELL = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"[^>]*?(?:/>|>.*?</c>)', re.S)
_DIMENSION = re.compile(rb"<dimension\b[^>]*/>")


class WorkbookTooLarge(Exception):
    """A sheet whose data (or XML) is over what a build reads; the message names the size."""


def column_number(letters: bytes | str) -> int:
    """"A" → 1, "Z" → 26, "AA" → 27, "XFD" → 16384."""
    n = 0
    for ch in letters.decode() if isinstance(letters, bytes) else letters:
        n = n * 26 + (ord(ch) - 64)
    return n


@dataclass
class SheetScan:
    """The cells of one sheet that hold a value: which rows and columns they use."""

    member: str
    rows: set[int] = field(default_factory=set)
    columns: set[int] = field(default_factory=set)
    far: list[str] = field(default_factory=list)  # a few references beyond the data, for the message

    def extent(self) -> tuple[int, int]:
        """(last row, last column) of the data: before the first long run of empty rows / columns."""
        return _before_gap(self.rows, GAP_ROWS), _before_gap(self.columns, GAP_COLUMNS)


def _before_gap(used: set[int], gap: int) -> int:
    last = 0
    for n in sorted(used):
        if last and n - last > gap:
            break
        last = n
    return last


def _sheet_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in archive.infolist() if re.fullmatch(r"xl/worksheets/[^/]+\.xml", i.filename)]


def scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> SheetScan:
    """Every valued cell's row and column, read in chunks (the XML is never held whole).

    A large report has over a million cells in a few thousand rows and a few
    dozen columns: the references are gathered as they are written and each
    distinct one is turned into a number once.
    """
    if info.file_size > MAX_SHEET_XML:
        raise WorkbookTooLarge(f"sheet {info.filename} is {info.file_size >> 20} MB of XML, over the "
                               f"{MAX_SHEET_XML >> 20} MB a build reads")
    rows: set[bytes] = set()
    columns: set[bytes] = set()

    def note(xml: bytes) -> None:
        valued = _VALUED_CELL_TAG.findall(xml)
        rows.update(map(operator.itemgetter(1), valued))
        columns.update(map(operator.itemgetter(0), valued))

    tail = b""
    with archive.open(info) as f:
        while chunk := f.read(_CHUNK):
            data = tail + chunk
            cut = data.rfind(b"<")  # a tag may straddle the chunks: keep it for the next round
            body, tail = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            note(body)
            if len(tail) > _CHUNK:  # no tag closes for a whole chunk: not a sheet a reader can take
                raise WorkbookTooLarge(f"sheet {info.filename} has a tag longer than {_CHUNK >> 20} MB")
    note(tail)
    return SheetScan(info.filename, {int(r) for r in rows}, {column_number(c) for c in columns})


@dataclass(frozen=True)
class Bounded:
    """A workbook safe to hand to a reader: ``path`` (the original or a trimmed copy) and what was left out."""

    path: Path
    notes: tuple[str, ...] = ()
    tmp_dir: Path | None = None

    def cleanup(self) -> None:
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)


def _trim(xml: bytes, last_row: int, last_col: int) -> tuple[bytes, list[str]]:
    dropped: list[str] = []

    def keep(m: re.Match[bytes]) -> bytes:
        if int(m[2]) > last_row or column_number(m[1]) > last_col:
            if len(dropped) < 5:
                dropped.append(f"{m[1].decode()}{m[2].decode()}")
            return b""
        return m[0]

    return _DIMENSION.sub(b"", _CELL.sub(keep, xml)), dropped


def bounded(path: Path) -> Bounded:
    """``path`` itself when its sheets' data is compact; else a copy without the cells beyond the data.

    Raises :class:`WorkbookTooLarge` when even the data is too large, and
    :class:`zipfile.BadZipFile` for a damaged file.
    """
    with zipfile.ZipFile(path) as archive:
        scans = {info.filename: (info, scan(archive, info)) for info in _sheet_members(archive)}
        trims: dict[str, tuple[int, int]] = {}
        for name, (info, s) in scans.items():
            last_row, last_col = s.extent()
            if last_row * last_col > MAX_CELLS:
                raise WorkbookTooLarge(
                    f"sheet {name} has {last_row:,} rows × {last_col:,} columns of data, over the "
                    f"{MAX_CELLS:,} cells a build reads"
                )
            if (s.rows and max(s.rows) > last_row) or (s.columns and max(s.columns) > last_col):
                if info.file_size > MAX_TRIMMED_XML:
                    raise WorkbookTooLarge(f"sheet {name} has cells far beyond its data and is "
                                           f"{info.file_size >> 20} MB of XML: too large to trim")
                trims[name] = (last_row, last_col)
        if not trims:
            return Bounded(path)
        tmp_dir = Path(tempfile.mkdtemp(prefix="epar-trimmed-"))
        copy = tmp_dir / path.name
        notes = []
        with zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as out:
            for info in archive.infolist():
                data = archive.read(info)
                if info.filename in trims:
                    last_row, last_col = trims[info.filename]
                    data, dropped = _trim(data, last_row, last_col)
                    notes.append(
                        f"cells beyond the data of {info.filename} left out ({', '.join(dropped)}"
                        f"{', …' if len(dropped) == 5 else ''}): the data ends at row {last_row}, column "
                        f"{last_col}, where a run of over {GAP_ROWS} empty rows or {GAP_COLUMNS} empty columns begins"
                    )
                out.writestr(info, data)
    return Bounded(copy, tuple(notes), tmp_dir)
