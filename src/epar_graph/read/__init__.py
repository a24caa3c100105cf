"""Stage 1, read: turn input files into :class:`~epar_graph.model.ProductRecord` s.

:func:`read_source` detects each file's format from its content (never from
its name) and hands it to the reader for that format. Every input record ends
up either as a record or as a :class:`~epar_graph.model.Rejection`; the
``count`` of a :class:`ReadResult` is the number of records seen, so
``count == len(records) + len(rejections)`` always holds.

Formats (the ``format`` of a result):

==================  ==========================================================
``ema-xls``         EMA's legacy "download results to spreadsheet" export (2017)
``ema-xlsx``        EMA's current medicines export, ``.xlsx``
``ema-json``        EMA's current medicines export, JSON ``{"meta", "data"}``
``epar-table``      the EPAR search-result table (CSV, page paths, MeSH areas)
``epar-table-merged`` the same table merged with the export (``emea`` column)
``medpath``         a MedPath "EMA Approval" page saved as text
``unknown``         anything else: one rejection, record "-", field "-"
==================  ==========================================================
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from epar_graph.model import ProductRecord, ReadWarning, Rejection, SourceRecords
from epar_graph.read import ema_export, epar_table, medpath
from epar_graph.read.common import EXPORT_DATE, Outcome, text_encoding

EMA_XLS = "ema-xls"
EMA_XLSX = "ema-xlsx"
EMA_JSON = "ema-json"
EPAR_TABLE = "epar-table"
EPAR_TABLE_MERGED = "epar-table-merged"
MEDPATH = "medpath"
UNKNOWN = "unknown"
#: The formats of EMA's own exports (snapshots of its whole list).
SNAPSHOT_FORMATS = frozenset({EMA_XLS, EMA_XLSX, EMA_JSON})
FORMATS = (EMA_XLS, EMA_XLSX, EMA_JSON, EPAR_TABLE, EPAR_TABLE_MERGED, MEDPATH, UNKNOWN)

_MB = 1 << 20
#: The largest file of each kind read by default. Readers hold a file's rows (a text file
#: takes several times its size in memory), so a file over its limit is refused with a
#: message; ``epar-graph build --max-input-mb`` raises every limit. EMA's reports are ~1 MB.
SIZE_LIMITS = {
    EMA_XLS: 200 * _MB,
    EMA_XLSX: 200 * _MB,
    EMA_JSON: 200 * _MB,
    EPAR_TABLE: 100 * _MB,
    EPAR_TABLE_MERGED: 100 * _MB,
    MEDPATH: 20 * _MB,
}
_KIND_NAMES = {
    EMA_XLS: "EMA .xls export", EMA_XLSX: "EMA .xlsx report", EMA_JSON: "EMA JSON export",
    EPAR_TABLE: "EPAR table", EPAR_TABLE_MERGED: "EPAR table", MEDPATH: "MedPath page",
}

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_SNIFF = 64 * 1024


@dataclass
class ReadResult:
    source: Path
    format: str
    records: list[ProductRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: Problems in accepted records: the bad value was left out, the record kept.
    #: Not part of ``count`` (each of these records is already in ``records``).
    warnings: list[ReadWarning] = field(default_factory=list)
    #: Facts about the file itself, e.g. ``export_date`` (ISO) from the .xls letterhead.
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.records) + len(self.rejections)

    @property
    def is_snapshot(self) -> bool:
        """An EMA export: a dated copy of EMA's whole list, not a source of extra facts."""
        return self.format in SNAPSHOT_FORMATS

    def for_merge(self) -> SourceRecords:
        return SourceRecords(self.source.name, self.records, self.date, self.is_snapshot)

    @property
    def columns(self) -> frozenset[str]:
        """The columns of an export (canonical keys); empty for other formats."""
        return frozenset(self.metadata.get(ema_export.COLUMNS, "").split())

    @property
    def date(self) -> dt.date | None:
        """The date of the data, when the file states it (an export's date); else ``None``."""
        value = self.metadata.get(EXPORT_DATE)
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            return None


class _Unknown(Exception):
    """Why a file's format could not be told (the message goes into the rejection)."""


def _text(head: bytes) -> str:
    """The text of a file's first bytes (a character cut at the end is dropped, not an error)."""
    encoding = text_encoding(head)
    if encoding == "utf-8" and b"\x00" in head:
        raise _Unknown("binary content (NUL bytes), not a recognised format")
    try:
        return codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError as err:
        name = "UTF-16" if encoding.startswith("utf-16") else "UTF-8"
        raise _Unknown(f"not {name} text ({err.reason} at byte {err.start})") from None


def _detect(path: Path) -> str:
    """The format name, or :class:`_Unknown` saying why there is none.

    Only the first bytes are read: detection never holds a whole file.
    """
    try:
        with path.open("rb") as f:
            data = f.read(_SNIFF)
    except OSError as err:
        raise _Unknown(f"cannot read file: {err.strerror or err}") from None
    if not data.strip(b" \t\r\n\x00\xff\xfe\xef\xbb\xbf"):
        raise _Unknown("file is empty")
    if data.startswith(_OLE2):
        return EMA_XLS
    if data.startswith(_ZIP):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile as err:
            raise _Unknown(f"damaged ZIP archive: {err}") from None
        if "xl/workbook.xml" in names:
            return EMA_XLSX
        raise _Unknown("a ZIP archive that is not an .xlsx workbook")
    text = _text(data)
    stripped = text.lstrip()
    if stripped[:1] == "{" or (stripped[:1] == "[" and stripped[1:].lstrip()[:1] in ("{", "]")):
        return EMA_JSON
    if medpath.looks_like_medpath(text):
        return MEDPATH
    try:
        header = next(csv.reader(io.StringIO(stripped, newline="")), [])
    except csv.Error:
        header = []
    kind = epar_table.table_kind(header)
    if kind == epar_table.MERGED:
        return EPAR_TABLE_MERGED
    if kind == epar_table.SCRAPE:
        return EPAR_TABLE
    raise _Unknown("not a recognised format (EMA export, EPAR table or MedPath page)")


def detect_format(path: Path) -> str:
    """The format of ``path`` told from its content: one of :data:`FORMATS`."""
    try:
        return _detect(path)
    except _Unknown:
        return UNKNOWN


_READERS: dict[str, Callable[[Path], Outcome]] = {
    EMA_XLS: ema_export.read_xls,
    EMA_XLSX: ema_export.read_xlsx,
    EMA_JSON: ema_export.read_json,
    EPAR_TABLE: epar_table.read_table,
    EPAR_TABLE_MERGED: epar_table.read_table,
    MEDPATH: medpath.read_medpath,
}


def too_big(path: Path, fmt: str, max_bytes: int | None = None) -> str | None:
    """Why ``path`` is too large to read as ``fmt`` (``max_bytes`` replaces the kind's limit), or None."""
    limit = max_bytes if max_bytes is not None else SIZE_LIMITS.get(fmt)
    size = path.stat().st_size
    if limit is None or size <= limit:
        return None
    return (f"file is {size / _MB:.1f} MB, over the {limit / _MB:.0f} MB limit for a {_KIND_NAMES.get(fmt, fmt)}; "
            "raise it with --max-input-mb if the file is right")


def read_source(path: Path, headings: frozenset[str] | None = None, max_bytes: int | None = None) -> ReadResult:
    """Read one input file, whatever its format; never raises for bad input.

    A file that cannot be read or recognised gives a result of format
    "unknown" with one rejection (record "-", field "-") saying why.
    ``headings`` (lower case) replaces the shipped MeSH heading table that
    decides how an old export's therapeutic areas split.
    """
    path = Path(path)
    try:
        fmt = _detect(path)
    except _Unknown as why:
        return ReadResult(path, UNKNOWN, rejections=[Rejection(str(path), "-", "-", str(why))])
    if (why_not := too_big(path, fmt, max_bytes)) is not None:
        return ReadResult(path, fmt, rejections=[Rejection(str(path), "-", "-", why_not)])
    try:
        if fmt in (EMA_XLS, EMA_XLSX):
            out = (ema_export.read_xls if fmt == EMA_XLS else ema_export.read_xlsx)(path, headings)
        else:
            out = _READERS[fmt](path)
    except Exception as err:  # a reader bug or a library failing on odd input: still a report
        out = Outcome()
        out.file_error(str(path), f"could not be read as {fmt}: {type(err).__name__}: {err}")
    return ReadResult(path, fmt, out.records, out.rejections, out.warnings, out.metadata)
