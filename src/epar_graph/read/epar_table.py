"""The EPAR search-result table of 2017 (CSV) and its merged copy with link columns.

The scraped table (``Name, Active substance, Date of authorisation /
refusal, Status, Therapeutic area, url``) has no product-number column: the
number is the six digits in the EMA page path
(``…/medicines/002835/human_med_001790.jsp`` → EMEA/H/C/002835). The scraper
looked pages up by name, so where two products share a name (a refused
application and a later authorised one, e.g. Cimzia) both rows carry the same
page path and one of them would get the other's number. Such rows are
rejected rather than guessed.

The merged table (an unnamed index column, the same columns, plus ``atc``,
``emea`` and ``indication``, and Wikidata/RxNorm match columns) has the
product number in ``emea``; the page path is kept only where its digits agree
with that number. The match columns are left to the linking stage.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from epar_graph.model import ProductRecord
from epar_graph.read import common
from epar_graph.read.common import FieldError, Outcome

#: The historic absolute form of the table's relative page paths.
EMA_PAGE_BASE = "https://www.ema.europa.eu/ema/"
NAME = "Name"
SUBSTANCE = "Active substance"
DATE = "Date of authorisation / refusal"
STATUS = "Status"
AREA = "Therapeutic area"
URL = "url"
#: Columns that identify the table (in the scraped and the merged file alike).
REQUIRED_COLUMNS = (NAME, SUBSTANCE, DATE, STATUS, URL)
_PAGE_NUMBER = re.compile(r"/medicines/(\d{6})/")

SCRAPE = "scrape"
MERGED = "merged"


def table_kind(header: Sequence[str]) -> str | None:
    """"scrape", "merged" (has an ``emea`` column) or ``None`` when the header is neither."""
    names = {common.clean(h) for h in header}
    if not set(REQUIRED_COLUMNS) <= names:
        return None
    return MERGED if "emea" in names else SCRAPE


def page_number(url: str) -> str | None:
    """EMEA/H/C/dddddd from a page path's six-digit folder, if it has one."""
    m = _PAGE_NUMBER.search(url)
    return f"EMEA/H/C/{m[1]}" if m else None


def page_url(url: str) -> str | None:
    url = common.clean(url)
    if not url:
        return None
    return url if re.match(r"^https?://", url) else EMA_PAGE_BASE + url.lstrip("/")


def _record(
    row: Mapping[str, str], number: str, source: str, record: str, ema_url: str | None,
    atc: tuple[str, ...] = (), indication: str | None = None,
) -> ProductRecord:
    """Shared by both tables: the table's date is a refusal date when the status is Refused."""
    name = common.required(row.get(NAME), NAME)
    status = common.status(row.get(STATUS), STATUS)
    date = common.parse_date(row.get(DATE), DATE)
    refused = status == "Refused"
    return ProductRecord(
        source=source,
        record=record,
        name=name,
        product_number=number,
        status=status,
        active_substances=common.split_substances(row.get(SUBSTANCE)),
        atc_codes=atc,
        authorisation_date=None if refused else date,
        refusal_date=date if refused else None,
        therapeutic_areas=common.split_areas(row.get(AREA)),
        indication=indication,
        ema_url=ema_url,
    )


def _scrape_row(row: dict[str, str], source: str, record: str) -> ProductRecord:
    url = common.clean(row.get(URL))
    common.required(row.get(NAME), NAME)
    if not url:
        raise FieldError(URL, "no page path, so no product number")
    number = page_number(url)
    if number is None:
        raise FieldError(URL, f"no six-digit product folder in page path {url!r}")
    return _record(row, number, source, record, page_url(url))


def _reject_shared_pages(out: Outcome, file: str) -> None:
    """Turn accepted rows that point to the same page into rejections.

    Two otherwise valid rows with one page path are two products (same name,
    e.g. a refused application and a later authorisation) of which only one
    owns the page, and the table does not say which. A row already rejected
    for its own faults does not make the others ambiguous.
    """
    rows_by_url: dict[str, list[str]] = defaultdict(list)
    for rec in out.records:
        rows_by_url[rec.ema_url or ""].append(rec.record)
    shared = {url: rows for url, rows in rows_by_url.items() if url and len(rows) > 1}
    if not shared:
        return
    kept: list[ProductRecord] = []
    for rec in out.records:
        rows = shared.get(rec.ema_url or "")
        if rows is None:
            kept.append(rec)
            continue
        others = ", ".join(r for r in rows if r != rec.record)
        out.reject(
            file,
            rec.record,
            URL,
            f"page path also used by row(s) {others} (same-name products); "
            f"product number {rec.product_number} would be ambiguous",
        )
    out.records = kept
    out.rejections.sort(key=lambda r: int(r.record) if r.record.isdigit() else -1)


def _merged_row(row: dict[str, str], source: str, record: str) -> ProductRecord:
    common.required(row.get(NAME), NAME)
    number = common.product_number(row.get("emea"), "emea")
    url = common.clean(row.get(URL))
    ema_url = page_url(url) if url and page_number(url) == number else None
    atc = common.split_atc(row.get("atc"), "atc")[0]
    indication = common.clean_block(row.get("indication")) or None
    return _record(row, number, source, record, ema_url, atc, indication)


def read_table_text(text: str, file: str, source: str) -> Outcome:
    """Either table from its text; the kind is told by the header."""
    out = Outcome()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        rows = list(reader)
    except csv.Error as err:
        out.file_error(file, f"not a readable CSV table: {err}")
        return out
    kind = table_kind(header)
    if kind is None:
        missing = ", ".join(c for c in REQUIRED_COLUMNS if c not in header)
        out.file_error(file, f"missing column(s): {missing}", missing.split(", ")[0])
        return out
    for i, row in enumerate(rows, start=1):
        record = str(i)
        clean_row = {k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
        if kind == MERGED:
            problems = common.split_atc(clean_row.get("atc"), "atc")[1]
            out.add(
                file,
                record,
                partial(_merged_row, clean_row, source, record),
                [("atc", p) for p in problems],
            )
        else:
            out.add(file, record, partial(_scrape_row, clean_row, source, record))
    if kind == SCRAPE:
        _reject_shared_pages(out, file)
    return out


def read_table(path: Path) -> Outcome:
    return common.read_text_file(path, read_table_text, "the table as UTF-8 text")
