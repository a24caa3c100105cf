"""Stage 1, read: turn input files into :class:`~epar_graph.model.ProductRecord` s.

:func:`read_source` detects each file's format from its content (never from
its name) and hands it to the reader for that format. Every input record ends
up either as a record or as a :class:`~epar_graph.model.Rejection`; the
``count`` of a :class:`ReadResult` is the number of records seen, so
``count == len(records) + len(rejections)`` always holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from epar_graph.model import ProductRecord, Rejection


@dataclass
class ReadResult:
    source: Path
    format: str
    records: list[ProductRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: the date the source states for itself (an export date), when it states one
    date: dt.date | None = None

    @property
    def count(self) -> int:
        return len(self.records) + len(self.rejections)
