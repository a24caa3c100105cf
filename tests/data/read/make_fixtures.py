"""Write the current-format EMA export fixtures from real rows of the 2017 export.

EMA now publishes its medicine list as JSON and .xlsx with other column names
than the 2017 .xls. To test those readers on real facts, this script takes a
handful of rows from ``data/ema-medicines-2017-02-13.xls`` (plus their
therapeutic areas and page paths from ``data/ema-epar-scrape-2017.csv``) and
writes them in the current layouts:

* a biosimilar (Abasaglar), a withdrawn product (Ablavar), a combination
  (Eviplera, one slash without a space), a vaccine whose substance has a
  strain name with bare slashes (Aflunov), a refused application without a
  date (Cimzia, EMEA/H/C/000740) and an orphan with conditional approval
  (Adcetris);
* one bad row: Glybera with an impossible authorisation date (31/02/2012).

Run ``python tests/data/read/make_fixtures.py`` from the repository root;
the output is deterministic, so re-running it changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import xlrd
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
XLS = ROOT / "data" / "ema-medicines-2017-02-13.xls"
SCRAPE = ROOT / "data" / "ema-epar-scrape-2017.csv"
PICKED = (
    "EMEA/H/C/002835",  # Abasaglar: biosimilar
    "EMEA/H/C/000601",  # Ablavar: withdrawn
    "EMEA/H/C/002312",  # Eviplera: combination of three
    "EMEA/H/C/002094",  # Aflunov: strain name with slashes
    "EMEA/H/C/000740",  # Cimzia: refused, no date
    "EMEA/H/C/002455",  # Adcetris: orphan, conditional approval
)
BAD = "EMEA/H/C/002145"  # Glybera, written with an impossible date
BAD_DATE = "31/02/2012"

#: Current JSON key → (2017 column index, label in the current .xlsx).
COLUMNS = {
    "category": (None, "Category"),
    "name_of_medicine": (0, "Name of medicine"),
    "ema_product_number": (1, "EMA product number"),
    "medicine_status": (6, "Medicine status"),
    "international_non_proprietary_name_common_name": (
        3,
        "International non-proprietary name (INN) / common name",
    ),
    "active_substance": (2, "Active substance"),
    "therapeutic_area_mesh": (None, "Therapeutic area (MeSH)"),
    "pharmacotherapeutic_group_human": (None, "Pharmacotherapeutic group (human)"),
    "atc_code_human": (4, "ATC code (human)"),
    "therapeutic_indication": (9, "Therapeutic indication"),
    "marketing_authorisation_developer_applicant_holder": (
        5,
        "Marketing authorisation developer / applicant / holder",
    ),
    "marketing_authorisation_date": (8, "Marketing authorisation date"),
    "orphan_medicine": (12, "Orphan medicine"),
    "generic_or_hybrid": (13, "Generic or hybrid"),
    "biosimilar": (14, "Biosimilar"),
    "conditional_approval": (10, "Conditional approval"),
    "exceptional_circumstances": (11, "Exceptional circumstances"),
    "revision_number": (7, "Revision number"),
    "last_updated_date": (None, "Last updated date"),
    "medicine_url": (None, "Medicine URL"),
}


def _tidy(value: object) -> str:
    return " ".join(str(value).replace("\u00a0", " ").split())


def _scrape_by_number() -> dict[str, dict[str, str]]:
    """Scrape rows by the product number in their page path (unambiguous ones only)."""
    rows: dict[str, list[dict[str, str]]] = {}
    with SCRAPE.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            m = re.search(r"/medicines/(\d{6})/", row["url"])
            if m:
                rows.setdefault(f"EMEA/H/C/{m[1]}", []).append(row)
    return {k: v[0] for k, v in rows.items() if len(v) == 1}


def rows() -> list[dict[str, object]]:
    """The picked 2017 rows (and the bad one, last) as current JSON objects."""
    sheet = xlrd.open_workbook(str(XLS)).sheet_by_index(0)
    by_number = {_tidy(sheet.cell_value(r, 1)): sheet.row_values(r) for r in range(sheet.nrows)}
    scrape = _scrape_by_number()
    out = []
    for number in (*PICKED, BAD):
        old = by_number[number]
        row: dict[str, object] = {}
        for key, (index, _label) in COLUMNS.items():
            row[key] = "" if index is None else old[index]
        page = scrape.get(number, {})
        row["category"] = "Human"
        row["ema_product_number"] = number
        row["marketing_authorisation_developer_applicant_holder"] = _tidy(
            old[5].split("\n")[0]
        )
        row["atc_code_human"] = _tidy(old[4])
        row["therapeutic_area_mesh"] = "; ".join(
            a for a in re.split(r"\s{2,}", page.get("Therapeutic area", "")) if a
        )
        date = _tidy(old[8])
        row["marketing_authorisation_date"] = "" if date == "-" else date
        for key in ("orphan_medicine", "generic_or_hybrid", "biosimilar",
                    "conditional_approval", "exceptional_circumstances"):
            row[key] = _tidy(row[key]).capitalize()
        row["revision_number"] = int(old[7])
        row["last_updated_date"] = "13/02/2017"  # the 2017 export's date
        row["medicine_url"] = (
            "https://www.ema.europa.eu/ema/" + page["url"] if page.get("url") else ""
        )
        if number == BAD:
            row["marketing_authorisation_date"] = BAD_DATE
        out.append(row)
    return out


def write_json(data: list[dict[str, object]], path: Path) -> None:
    doc = {"meta": {"total_records": len(data), "export_date": "13/02/2017"}, "data": data}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _cell(key: str, value: object) -> object:
    """Dates as real date cells (as Excel users save them), except an impossible one."""
    if key.endswith("_date") and isinstance(value, str) and value and value != BAD_DATE:
        day, month, year = (int(x) for x in value.split("/"))
        return dt.datetime(year, month, day)
    return value


def write_xlsx(data: list[dict[str, object]], path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Medicines"
    sheet.append(["Medicines output: European public assessment reports (EPAR)"])
    sheet.append(["Data extracted on 13/02/2017"])
    for _ in range(6):
        sheet.append([])
    sheet.append([label for _index, label in COLUMNS.values()])
    for row in data:
        sheet.append([_cell(key, row[key]) for key in COLUMNS])
    fixed = dt.datetime(2017, 2, 13)
    book.properties.created = fixed
    book.properties.modified = fixed
    book.save(path)


def main() -> None:
    data = rows()
    write_json(data, HERE / "ema-medicines.json")
    write_xlsx(data, HERE / "ema-medicines.xlsx")


if __name__ == "__main__":
    main()
