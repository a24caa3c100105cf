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
from dataclasses import dataclass
from pathlib import Path

from python_calamine import CalamineWorkbook

from epar_graph.model import CATEGORIES, PROCEDURE_NUMBER_RE, ProductRecord
from epar_graph.read import common, workbook_limits
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
    # EPAR reports of 2018 and 2023 (30 columns)
    "therapeutic_area": "therapeutic_area_mesh",
    "authorisation_status": "medicine_status",
    "generic": "generic_or_hybrid",
    "date_of_refusal_of_marketing_authorisation": "refusal_of_marketing_authorisation_date",
    "marketing_authorisation_holder_company_name": "marketing_authorisation_developer_applicant_holder",
    "human_pharmacotherapeutic_group": "pharmacotherapeutic_group_human",
    "vet_pharmacotherapeutic_group": "pharmacotherapeutic_group_veterinary",
    "date_of_opinion": "opinion_adopted_date",
    "decision_date": "european_commission_decision_date",
    "condition_indication": "therapeutic_indication",
    "species": "species_veterinary",
    "atcvet_code": "atcvet_code_veterinary",
    "first_published": "first_published_date",
    "revision_date": "last_updated_date",
    "url": "medicine_url",
    # current .xlsx (39 columns)
    "international_non_proprietary_name_inn_common_name": (
        "international_non_proprietary_name_common_name"
    ),
}
NAME = "name_of_medicine"
NUMBER = "ema_product_number"
_WITHDRAWAL = "withdrawal_expiry_revocation_lapse_of_marketing_authorisation_date"
_REFUSAL = "refusal_of_marketing_authorisation_date"
_HOLDER = "marketing_authorisation_developer_applicant_holder"
_LAST_UPDATED = "last_updated_date"

#: Yes/no columns → the record field they fill.
FLAGS = {
    "orphan_medicine": "is_orphan",
    "generic_or_hybrid": "is_generic",
    "biosimilar": "is_biosimilar",
    "conditional_approval": "conditional_approval",
    "exceptional_circumstances": "exceptional_circumstances",
    "advanced_therapy": "is_advanced_therapy",
    "prime_priority_medicine": "is_prime",
    "accelerated_assessment": "accelerated_assessment",
    "additional_monitoring": "additional_monitoring",
    "patient_safety": "patient_safety",
}
#: Date columns → the record field they fill.
DATES = {
    "marketing_authorisation_date": "authorisation_date",
    _REFUSAL: "refusal_date",
    _WITHDRAWAL: "withdrawal_date",
    "european_commission_decision_date": "decision_date",
    "start_of_rolling_review_date": "rolling_review_start_date",
    "start_of_evaluation_date": "evaluation_start_date",
    "opinion_adopted_date": "opinion_date",
    "withdrawal_of_application_date": "application_withdrawal_date",
    "suspension_of_marketing_authorisation_date": "suspension_date",
    _LAST_UPDATED: "last_updated",
}
#: Every column the readers know, as canonical keys: a column outside this set is
#: reported (it would not reach the graph), never silently dropped.
KNOWN_COLUMNS = frozenset(
    {
        "category", NAME, NUMBER, "medicine_status", "opinion_status",
        "latest_procedure_affecting_product_information",
        "international_non_proprietary_name_common_name", "active_substance",
        "therapeutic_area_mesh", "species_veterinary", "atc_code_human", "atcvet_code_veterinary",
        "pharmacotherapeutic_group_human", "pharmacotherapeutic_group_veterinary",
        "therapeutic_indication", _HOLDER, "revision_number", "first_published_date", "medicine_url",
    }
    | set(FLAGS)
    | set(DATES)
)


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


@dataclass(frozen=True)
class Layout:
    """How one file writes its cells: what a reader must know beyond the header.

    ``semicolons``: lists are ";"-joined and a value's own commas are kept
    (EMA's current reports, the JSON); otherwise lists may be ", "-joined
    (the 2017 export, the EPAR reports of 2018 and 2023). ``headings``: the
    known MeSH headings (lower case) that decide how such a list splits.
    """

    semicolons: bool
    headings: frozenset[str] = frozenset()


def _category(text: str, label: str, warn: Warn) -> str | None:
    if not text:
        return None
    for known in CATEGORIES:
        if known.lower() == text.lower():
            return known
    warn(label, f"category {text!r} is not one EMA is known to use; kept as a new category concept")
    return text


def _first_published(value: object, field_name: str) -> dt.date | None:
    """The first-published date; the 2018 report wraps it in commas (", ,   26/07/2018, , ")."""
    if isinstance(value, dt.date):
        return common.parse_date(value, field_name)
    parts = [p for p in (common.clean(x) for x in common.clean(value).split(",")) if p]
    dates = [d for p in parts if (d := common.parse_date(p, field_name))]
    return min(dates) if dates else None


def _latest_procedure(text: str, number: str, label: str, warn: Warn) -> str | None:
    """The procedure number as printed ("II/0044/G"), or ``None`` for "-" or an unreadable one."""
    value = re.sub(r"\s+", "", text).upper()
    if value in ("", "-"):
        return None
    full = value if value.startswith(number + "/") else f"{number}/{value}"
    if not PROCEDURE_NUMBER_RE.match(full):
        warn(label, f"{text!r} is not a procedure number; left out")
        return None
    return value


def build_record(
    row: Mapping[str, object],
    label: Callable[[str], str],
    source: str,
    record: str,
    warn: Warn,
    layout: Layout = Layout(semicolons=True),
) -> ProductRecord:
    """One export row (canonical keys) → record; raises :class:`FieldError` naming the column.

    Human and veterinary medicines alike; a value that cannot be read as
    what its column holds either rejects the record (a missing name or
    product number, an impossible date) or is kept verbatim with a warning
    (a malformed ATC code, a new status, a mended product number).
    """

    def text(key: str) -> str:
        return common.clean(row.get(key))

    category = _category(text("category"), label("category"), warn)
    name = common.required(row.get(NAME), label(NAME))
    number, published = common.normalised_product_number(row.get(NUMBER), label(NUMBER))
    if published is not None:
        warn(label(NUMBER), f"product number {published!r} read as {number}")
    status, problem = common.status_label(row.get("medicine_status"))
    if problem:
        warn(label("medicine_status"), problem)
    elif status is None and label("medicine_status") != "medicine_status":
        warn(label("medicine_status"), "no status given; the record is kept without one")
    atc, atcvet, bad = common.split_codes(row.get("atc_code_human"))
    vet_atc, vet_vet, vet_bad = common.split_codes(row.get("atcvet_code_veterinary"))
    atcvet = common.unique((*atcvet, *vet_vet))
    atc = common.unique((*atc, *vet_atc))
    for value in bad:
        warn(label("atc_code_human"), f"{value!r} is not an ATC code; kept as published")
    for value in vet_bad:
        warn(label("atcvet_code_veterinary"), f"{value!r} is not an ATCvet code; kept as published")
    holder, holder_address = common.holder(row.get(_HOLDER))
    group = common.pharmacotherapeutic_groups(
        row.get("pharmacotherapeutic_group_human") or row.get("pharmacotherapeutic_group_veterinary"),
        layout.semicolons,
    )
    facts: dict[str, object] = {
        key: common.parse_date(row.get(column), label(column)) for column, key in DATES.items()
    }
    facts.update(
        (key, common.parse_bool(row.get(column), label(column))) for column, key in FLAGS.items()
    )
    opinion = text("opinion_status")
    return ProductRecord(
        source=source,
        record=record,
        name=name,
        product_number=number,
        product_number_as_published=published,
        category=category,
        status=status,
        opinion_status=opinion or None,
        latest_procedure=_latest_procedure(
            text("latest_procedure_affecting_product_information"),
            number,
            label("latest_procedure_affecting_product_information"),
            warn,
        ),
        active_substances=common.split_listed_substances(row.get("active_substance"), layout.semicolons),
        common_name=text("international_non_proprietary_name_common_name") or None,
        atc_codes=atc,
        atc_codes_as_published=bad + vet_bad,
        atcvet_codes=atcvet,
        target_species=common.split_values(row.get("species_veterinary"), layout.semicolons),
        holder=holder,
        holder_address=holder_address,
        therapeutic_areas=common.split_headings(
            row.get("therapeutic_area_mesh"), layout.headings, layout.semicolons
        ),
        pharmacotherapeutic_group={"zh" if common.has_cjk(group[0]) else "en": group[0]} if group else {},
        other_pharmacotherapeutic_groups=group[1:],
        indication=common.clean_block(row.get("therapeutic_indication")) or None,
        revision_number=common.parse_int(row.get("revision_number"), label("revision_number")),
        first_published=_first_published(row.get("first_published_date"), label("first_published_date")),
        ema_url=text("medicine_url") or None,
        **facts,  # type: ignore[arg-type]
    )


def _add_row(
    out: Outcome, file: str, source: str, record: str, row: Mapping[str, object],
    label: Callable[[str], str], layout: Layout,
) -> None:
    warnings: list[tuple[str, str]] = []

    def warn(field_name: str, message: str) -> None:
        warnings.append((field_name, message))

    out.add(file, record, lambda: build_record(row, label, source, record, warn, layout), warnings)


def _unknown_columns(out: Outcome, file: str, labels: Mapping[str, str]) -> None:
    """A column no reader knows would not reach the graph: say so (once per file)."""
    for key, printed in labels.items():
        if key and key not in KNOWN_COLUMNS:
            out.warn(file, "-", printed, "column not known to the reader; its values are not in the graph")


# --- spreadsheets (.xls and .xlsx) ------------------------------------------------------------

#: The columns a file has, as canonical keys (metadata ``columns``, space-separated): a
#: comparison of two exports must know a value is missing from a layout, not from a row.
COLUMNS = "columns"
#: How a file's export date was found (metadata ``export_date_from``).
FROM_LETTERHEAD = "letterhead"
FROM_LAST_UPDATED = "latest last-updated date"
EXPORT_DATE_FROM = "export_date_from"


def _is_header(cells: Sequence[object]) -> bool:
    return NUMBER in {canonical_key(c) for c in cells}


def read_sheet_rows(
    rows: Iterable[tuple[int, Sequence[object]]], file: str, source: str,
    headings: frozenset[str] | None = None,
) -> Outcome:
    """Rows of a sheet as (sheet row number, cell values) → outcome.

    The header is the first row naming a product-number column, wherever it
    is: EMA puts a letterhead (address, export date) above it. A date in the
    letterhead is kept as ``metadata["export_date"]``. Blank rows are not
    records; every other row after the header is one, identified by its
    sheet row number.
    """
    out = _read_sheet(rows, file, source, headings)
    if out is None:
        out = Outcome()
        out.file_error(file, "no header row with a product number column found", "Product Number")
    return out


def _layout(labels: Mapping[str, str], headings: frozenset[str] | None) -> Layout:
    """Current reports name the column "EMA product number"; older layouts "Product number"."""
    current = labels.get(NUMBER, "").lower() == "ema product number"
    return Layout(semicolons=current, headings=common.known_headings() if headings is None else headings)


def _read_sheet(
    rows: Iterable[tuple[int, Sequence[object]]], file: str, source: str,
    headings: frozenset[str] | None = None,
) -> Outcome | None:
    """Like :func:`read_sheet_rows`, but ``None`` when the sheet has no header row."""
    out = Outcome()
    header: list[str] | None = None
    label: Callable[[str], str] = str
    layout = Layout(semicolons=True)
    for number, cells in rows:
        values = list(cells)
        if header is None:
            if _is_header(values):
                header = [canonical_key(c) for c in values]
                labels = {k: common.clean(c) for k, c in zip(header, values, strict=True) if k}
                label = _labeller(labels)
                layout = _layout(labels, headings)
                _unknown_columns(out, file, labels)
                out.metadata[COLUMNS] = " ".join(sorted(labels))
            else:
                _note_letterhead(values, out.metadata)
            continue
        if all(common.clean(v) == "" for v in values):
            continue
        row = {k: v for k, v in zip(header, values, strict=False) if k}
        _add_row(out, file, source, str(number), row, label, layout)
    if header is None:
        return None
    _date_from_rows(out)
    return out


def _date_from_rows(out: Outcome) -> None:
    """A file without a dated letterhead (EMA's report of June 2023) is as new as its newest row.

    The export date then is the latest last-updated (revision) date of its
    records, and ``export_date_from`` says so.
    """
    if common.EXPORT_DATE in out.metadata:
        out.metadata.setdefault(EXPORT_DATE_FROM, FROM_LETTERHEAD)
        return
    dates = [r.last_updated for r in out.records if r.last_updated]
    if dates:
        out.metadata[common.EXPORT_DATE] = max(dates).isoformat()
        out.metadata[EXPORT_DATE_FROM] = FROM_LAST_UPDATED


def _labeller(labels: Mapping[str, str]) -> Callable[[str], str]:
    """Canonical key → the column's label as printed in this file (for rejections)."""
    return lambda key: labels.get(key, key)


_LETTERHEAD_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b")


def _note_letterhead(cells: Sequence[object], metadata: dict[str, str]) -> None:
    """Keep the first date above the header ("13/02/2017", "… on: 29/01/2026 - 06:00") as export date."""
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
            metadata[EXPORT_DATE_FROM] = FROM_LETTERHEAD
            return


def _sheets(path: Path) -> Iterable[list[tuple[int, list[object]]]]:
    """Every sheet's rows, numbered as the spreadsheet numbers them (leading blank rows kept).

    python-calamine (Rust) reads both .xls and .xlsx, and is more than ten
    times faster than openpyxl on EMA's reports.
    """
    book = CalamineWorkbook.from_path(str(path))
    for index in range(len(book.sheet_names)):
        rows = book.get_sheet_by_index(index).to_python(skip_empty_area=False)
        yield [(i, list(values)) for i, values in enumerate(rows, start=1)]


def _first_sheet_with_header(
    sheets: Iterable[list[tuple[int, list[object]]]], file: str, source: str,
    headings: frozenset[str] | None,
) -> Outcome:
    """The first sheet that has a header row (EMA's exports have one sheet, but be lenient)."""
    for rows in sheets:
        out = _read_sheet(rows, file, source, headings)
        if out is not None:
            return out
    return read_sheet_rows([], file, source, headings)


def _read_workbook(path: Path, kind: str, headings: frozenset[str] | None) -> Outcome:
    file = str(path)
    safe = workbook_limits.Bounded(path)
    try:
        if kind == ".xlsx":  # a grid is allocated from first to last cell: know the real extent first
            safe = workbook_limits.bounded(path)
        sheets = list(_sheets(safe.path))
    except workbook_limits.WorkbookTooLarge as err:
        out = Outcome()
        out.file_error(file, f"not read: {err}")
        return out
    except Exception as err:  # calamine raises several kinds of error on a damaged file
        out = Outcome()
        out.file_error(file, f"not a readable {kind} workbook: {type(err).__name__}: {err or 'no detail'}")
        return out
    finally:
        safe.cleanup()
    out = _first_sheet_with_header(sheets, file, common.source_name(path), headings)
    for note in safe.notes:
        out.warn(file, "-", "-", note)
    return out


def read_xls(path: Path, headings: frozenset[str] | None = None) -> Outcome:
    """EMA's legacy "download results to spreadsheet" export (BIFF ``.xls``)."""
    return _read_workbook(path, ".xls", headings)


def read_xlsx(path: Path, headings: frozenset[str] | None = None) -> Outcome:
    """EMA's ``.xlsx`` reports (2018 to today; letterhead rows above the header are allowed)."""
    return _read_workbook(path, ".xlsx", headings)


# --- JSON -------------------------------------------------------------------------------------


def _json_value(key: str, value: object) -> object:
    """Lists (some exports give several codes as a list) become one separated string."""
    if isinstance(value, list):
        return ";".join(common.clean(v) for v in value)
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
    layout = Layout(semicolons=True, headings=common.known_headings())
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if isinstance(meta, dict):
        _note_meta(meta, out.metadata)
    keys: set[str] = set()
    for i, item in enumerate(data, start=1):
        record = str(i)
        if isinstance(item, dict):
            keys.update(canonical_key(k) for k in item)
        if not isinstance(item, dict):
            out.reject(file, record, "-", f"expected a JSON object, found {type(item).__name__}")
            continue
        try:
            row = _json_row(item)
        except FieldError as err:
            out.reject(file, record, err.field, err.message)
            continue
        _add_row(out, file, source, record, row, lambda k: k, layout)
    out.metadata[COLUMNS] = " ".join(sorted(k for k in keys if k))
    _date_from_rows(out)
    return out


def read_json(path: Path) -> Outcome:
    return common.read_text_file(path, read_json_text, "as UTF-8 JSON")
