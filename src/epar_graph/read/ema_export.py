"""EMA's own medicine exports: the legacy 2017 ``.xls``, the current JSON and ``.xlsx``.

All three carry the same facts under different column names, so each format
is turned into rows keyed by one canonical name (the current JSON key, e.g.
``ema_product_number``) and one function makes the record. Rejections name
the column as the source spells it ("Product Number", "EMA product number",
``ema_product_number``) so the user can find it in the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import xlrd
from openpyxl import load_workbook

from epar_graph.model import ProductRecord
from epar_graph.read import common
from epar_graph.read.common import FieldError, Outcome

#: Header labels (slugged) whose canonical key differs from the slug itself.
_ALIASES = {
    # legacy 2017 export
    "medicine_name": "name_of_medicine",
    "product_number": "ema_product_number",
    "common_name": "international_non_proprietary_name_common_name",
    "atc_code": "atc_code_human",
    "marketing_authorisation_holder": "marketing_authorisation_developer_applicant_holder",
    "status": "medicine_status",
    "authorisation_date": "marketing_authorisation_date",
    "indication": "therapeutic_indication",
    "condition_approval": "conditional_approval",
    "exceptional_circumstance": "exceptional_circumstances",
    "is_orphan": "orphan_medicine",
    "is_generic": "generic_or_hybrid",
    # current .xlsx
    "international_non_proprietary_name_inn_common_name": (
        "international_non_proprietary_name_common_name"
    ),
}
NAME = "name_of_medicine"
NUMBER = "ema_product_number"
_WITHDRAWAL = "withdrawal_expiry_revocation_lapse_of_marketing_authorisation_date"
_REFUSAL = "refusal_of_marketing_authorisation_date"


def canonical_key(label: object) -> str:
    """The canonical key of a header label: "EMA product number" → "ema_product_number"."""
    if isinstance(label, str):
        return _canonical_text_key(label)
    return _canonical_key(label)


@functools.lru_cache(maxsize=1024)
def _canonical_text_key(label: str) -> str:
    """Exports repeat the same few dozen keys on every row: compute each once."""
    return _canonical_key(label)


def _canonical_key(label: object) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", common.clean(label).lower()).strip("_")
    return _ALIASES.get(slug, slug)


Warn = Callable[[str, str], None]


def build_record(
    row: Mapping[str, object],
    label: Callable[[str], str],
    source: str,
    record: str,
    warn: Warn,
) -> ProductRecord:
    """One export row (canonical keys) → record; raises :class:`FieldError` naming the column.

    Only human medicines are modelled: a row whose category is given and is
    not "Human" (e.g. "Veterinary") is rejected with that reason, so the
    rejection report accounts for every row.
    """

    def text(key: str) -> str:
        return common.clean(row.get(key))

    category = text("category")
    if category and category.lower() != "human":
        raise FieldError(
            label("category"), f"category {category!r} is not a human medicine; not modelled"
        )
    name = common.required(row.get(NAME), label(NAME))
    number = common.product_number(row.get(NUMBER), label(NUMBER))
    status = common.status(row.get("medicine_status"), label("medicine_status"))
    atc, problems = common.split_atc(row.get("atc_code_human"), label("atc_code_human"))
    for problem in problems:
        warn(label("atc_code_human"), problem)
    holder, holder_address = common.holder(
        row.get("marketing_authorisation_developer_applicant_holder")
    )
    group = text("pharmacotherapeutic_group_human")
    withdrawal = common.parse_date(row.get(_WITHDRAWAL), label(_WITHDRAWAL))
    return ProductRecord(
        source=source,
        record=record,
        name=name,
        product_number=number,
        status=status,
        active_substances=common.split_substances(row.get("active_substance")),
        common_name=text("international_non_proprietary_name_common_name") or None,
        atc_codes=atc,
        holder=holder,
        holder_address=holder_address,
        authorisation_date=common.parse_date(
            row.get("marketing_authorisation_date"), label("marketing_authorisation_date")
        ),
        withdrawal_date=withdrawal if status == "Withdrawn" else None,
        refusal_date=common.parse_date(row.get(_REFUSAL), label(_REFUSAL)),
        therapeutic_areas=common.split_areas(row.get("therapeutic_area_mesh")),
        pharmacotherapeutic_group={"zh" if common.has_cjk(group) else "en": group} if group else {},
        is_orphan=common.parse_bool(row.get("orphan_medicine"), label("orphan_medicine")),
        is_generic=common.parse_bool(row.get("generic_or_hybrid"), label("generic_or_hybrid")),
        is_biosimilar=common.parse_bool(row.get("biosimilar"), label("biosimilar")),
        conditional_approval=common.parse_bool(
            row.get("conditional_approval"), label("conditional_approval")
        ),
        exceptional_circumstances=common.parse_bool(
            row.get("exceptional_circumstances"), label("exceptional_circumstances")
        ),
        indication=common.clean_block(row.get("therapeutic_indication")) or None,
        revision_number=common.parse_int(row.get("revision_number"), label("revision_number")),
        last_updated=common.parse_date(row.get("last_updated_date"), label("last_updated_date")),
        ema_url=text("medicine_url") or None,
    )


def _add_row(
    out: Outcome, file: str, source: str, record: str, row: Mapping[str, object],
    label: Callable[[str], str],
) -> None:
    warnings: list[tuple[str, str]] = []

    def warn(field_name: str, message: str) -> None:
        warnings.append((field_name, message))

    out.add(file, record, lambda: build_record(row, label, source, record, warn), warnings)


# --- spreadsheets (.xls and .xlsx) ------------------------------------------------------------


def _is_header(cells: Sequence[object]) -> bool:
    return NUMBER in {canonical_key(c) for c in cells}


def read_sheet_rows(
    rows: Iterable[tuple[int, Sequence[object]]], file: str, source: str
) -> Outcome:
    """Rows of a sheet as (sheet row number, cell values) → outcome.

    The header is the first row naming a product-number column, wherever it
    is: EMA puts a letterhead (address, export date) above it. A date in the
    letterhead is kept as ``metadata["export_date"]``. Blank rows are not
    records; every other row after the header is one, identified by its
    sheet row number.
    """
    out = _read_sheet(rows, file, source)
    if out is None:
        out = Outcome()
        out.file_error(file, "no header row with a product number column found", "Product Number")
    return out


def _read_sheet(
    rows: Iterable[tuple[int, Sequence[object]]], file: str, source: str
) -> Outcome | None:
    """Like :func:`read_sheet_rows`, but ``None`` when the sheet has no header row."""
    out = Outcome()
    header: list[str] | None = None
    label: Callable[[str], str] = str
    for number, cells in rows:
        values = list(cells)
        if header is None:
            if _is_header(values):
                header = [canonical_key(c) for c in values]
                label = _labeller(
                    {k: common.clean(c) for k, c in zip(header, values, strict=True) if k}
                )
            else:
                _note_letterhead(values, out.metadata)
            continue
        if all(common.clean(v) == "" for v in values):
            continue
        row = {k: v for k, v in zip(header, values, strict=False) if k}
        _add_row(out, file, source, str(number), row, label)
    return out if header is not None else None


def _labeller(labels: Mapping[str, str]) -> Callable[[str], str]:
    """Canonical key → the column's label as printed in this file (for rejections)."""
    return lambda key: labels.get(key, key)


_LETTERHEAD_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b")


def _note_letterhead(cells: Sequence[object], metadata: dict[str, str]) -> None:
    """Keep the first date above the header ("13/02/2017", "Data extracted on …") as export date."""
    if common.EXPORT_DATE in metadata:
        return
    for cell in cells:
        found: object = cell if isinstance(cell, dt.date) else None
        if found is None and (m := _LETTERHEAD_DATE.search(common.clean(cell))):
            found = m[0]
        try:
            date = common.parse_date(found, "-") if found is not None else None
        except FieldError:
            continue
        if date:
            metadata[common.EXPORT_DATE] = date.isoformat()
            return


def _xls_rows(book: xlrd.book.Book) -> Iterable[list[tuple[int, list[object]]]]:
    for sheet in book.sheets():
        rows: list[tuple[int, list[object]]] = []
        for r in range(sheet.nrows):
            cells: list[object] = []
            for cell in sheet.row(r):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        cells.append(xlrd.xldate_as_datetime(cell.value, book.datemode))
                    except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                        cells.append(cell.value)
                else:
                    cells.append(cell.value)
            rows.append((r + 1, cells))
        yield rows


def _first_sheet_with_header(
    sheets: Iterable[list[tuple[int, list[object]]]], file: str, source: str
) -> Outcome:
    """The first sheet that has a header row (EMA's exports have one sheet, but be lenient)."""
    for rows in sheets:
        out = _read_sheet(rows, file, source)
        if out is not None:
            return out
    return read_sheet_rows([], file, source)


def read_xls(path: Path) -> Outcome:
    """EMA's legacy "download results to spreadsheet" export (BIFF ``.xls``)."""
    file = str(path)
    try:
        book = xlrd.open_workbook(file_contents=path.read_bytes(), on_demand=False)
    except Exception as err:  # xlrd raises many kinds of error on a damaged file
        out = Outcome()
        out.file_error(file, f"not a readable .xls workbook: {err}")
        return out
    return _first_sheet_with_header(_xls_rows(book), file, common.source_name(path))


def _xlsx_rows(path: Path) -> Iterable[list[tuple[int, list[object]]]]:
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in book.worksheets:
            yield [
                (i, list(values))
                for i, values in enumerate(sheet.iter_rows(values_only=True), start=1)
            ]
    finally:
        book.close()


def read_xlsx(path: Path) -> Outcome:
    """EMA's current ``.xlsx`` export (title rows above the header are allowed)."""
    file = str(path)
    try:
        sheets = list(_xlsx_rows(path))
    except Exception as err:  # openpyxl raises many kinds of error on a damaged file
        out = Outcome()
        out.file_error(file, f"not a readable .xlsx workbook: {err}")
        return out
    return _first_sheet_with_header(sheets, file, common.source_name(path))


# --- JSON -------------------------------------------------------------------------------------


def _json_value(key: str, value: object) -> object:
    """Lists (some exports give several codes as a list) become one separated string."""
    if isinstance(value, list):
        sep = " / " if key == "active_substance" else "; "
        return sep.join(common.clean(v) for v in value)
    if isinstance(value, dict):
        raise FieldError(key, "expected text, found a JSON object")
    return value


def _json_row(item: Mapping[str, object]) -> dict[str, object]:
    keys = {k: canonical_key(k) for k in item}
    return {keys[k]: _json_value(keys[k], v) for k, v in item.items()}


def _note_meta(meta: Mapping[str, object], metadata: dict[str, str]) -> None:
    """Keep the export's "meta" values; the first dated one (…date…) is the export date."""
    for key, value in meta.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        metadata[f"meta.{key}"] = str(value)
        if "date" in key.lower() and common.EXPORT_DATE not in metadata:
            try:
                date = common.parse_date(value, key)
            except FieldError:
                continue
            if date:
                metadata[common.EXPORT_DATE] = date.isoformat()


def read_json_text(text: str, file: str, source: str) -> Outcome:
    """EMA's JSON export ``{"meta": {…}, "data": [{…}, …]}`` (a bare list is accepted too)."""
    out = Outcome()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        out.file_error(file, f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}")
        return out
    data = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(data, list):
        out.file_error(file, "expected a 'data' list of medicines", "data")
        return out
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if isinstance(meta, dict):
        _note_meta(meta, out.metadata)
    for i, item in enumerate(data, start=1):
        record = str(i)
        if not isinstance(item, dict):
            out.reject(file, record, "-", f"expected a JSON object, found {type(item).__name__}")
            continue
        try:
            row = _json_row(item)
        except FieldError as err:
            out.reject(file, record, err.field, err.message)
            continue
        _add_row(out, file, source, record, row, lambda k: k)
    return out


def read_json(path: Path) -> Outcome:
    return common.read_text_file(path, read_json_text, "as UTF-8 JSON")
