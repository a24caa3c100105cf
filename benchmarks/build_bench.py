"""Build benchmark: 1×, 4× and 16× the 2017 EMA export.

For each scale it writes the real 2017 rows, repeated under new product
numbers, as an EMA JSON export (the current format), then in a fresh process
runs ``epar-graph build`` on it and reports build time, triples/s, peak
memory and SHACL validation time, next to the time pyoxigraph takes to
bulk-load the same N-Triples (the yardstick: the goal is a build within 3×
of that load time).

    python benchmarks/build_bench.py [--scales 1 4 16] [--no-validate]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import xlrd

ROOT = Path(__file__).resolve().parents[1]
XLS = ROOT / "data" / "ema-medicines-2017-02-13.xls"

JSON_KEYS = {
    "Medicine Name": "name_of_medicine",
    "Product Number": "ema_product_number",
    "Active Substance": "active_substance",
    "Common name": "international_non_proprietary_name_common_name",
    "Atc code": "atc_code_human",
    "Marketing Authorisation Holder": "marketing_authorisation_developer_applicant_holder",
    "Status": "medicine_status",
    "Revision number": "revision_number",
    "Authorisation date": "marketing_authorisation_date",
    "Indication": "therapeutic_indication",
    "Condition Approval": "conditional_approval",
    "Exceptional Circumstance": "exceptional_circumstances",
    "Is Orphan": "orphan_medicine",
    "Is Generic": "generic_or_hybrid",
    "Biosimilar": "biosimilar",
}


def export_rows() -> list[dict[str, object]]:
    """The 2017 export's rows, keyed as in EMA's current JSON export."""
    sheet = xlrd.open_workbook(str(XLS)).sheet_by_index(0)
    header_row = next(i for i in range(sheet.nrows) if "Product Number" in sheet.row_values(i))
    header = [str(h) for h in sheet.row_values(header_row)]
    rows = []
    for i in range(header_row + 1, sheet.nrows):
        raw = dict(zip(header, sheet.row_values(i), strict=True))
        row: dict[str, object] = {"category": "Human"}
        for col, key in JSON_KEYS.items():
            value = raw.get(col, "")
            if isinstance(value, float):
                value = str(int(value))
            row[key] = value
        rows.append(row)
    return rows


def scaled_export(rows: list[dict[str, object]], scale: int, path: Path) -> int:
    """Write ``scale`` copies of the rows; copy k gets product numbers k*10000 + n."""
    data = []
    for k in range(scale):
        for row in rows:
            copy = dict(row)
            number = int(str(row["ema_product_number"]).rsplit("/", 1)[1])
            copy["ema_product_number"] = f"EMEA/H/C/{k * 10000 + number:06d}"
            if k:
                copy["name_of_medicine"] = f"{row['name_of_medicine']} (copy {k})"
            data.append(copy)
    path.write_text(json.dumps({"meta": {"total_records": len(data)}, "data": data}), encoding="utf-8")
    return len(data)


CHILD = """
import json, resource, sys, time
from pathlib import Path
from epar_graph.pipeline import build
t0 = time.perf_counter()
r = build([Path(sys.argv[1])], Path(sys.argv[2]), with_links=False)
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "triples": r.triples, "peak_mib": peak,
                  "rejected": len(r.rejections), "products": r.products}))
"""

VALIDATE = """
import sys, time
from pathlib import Path
from epar_graph.validate import load_rdf, validate_graph
t0 = time.perf_counter()
g = load_rdf([Path(sys.argv[1])])
t1 = time.perf_counter()
report = validate_graph(g)
print(f"{t1 - t0:.2f} {time.perf_counter() - t1:.2f} {len(report.violations)}")
"""

LOAD = """
import sys, time, pyoxigraph
t0 = time.perf_counter()
s = pyoxigraph.Store()
s.bulk_load(path=sys.argv[1], format=pyoxigraph.RdfFormat.N_TRIPLES)
print(f"{time.perf_counter() - t0:.3f} {len(s)}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-validate", action="store_true", help="skip the SHACL validation timing")
    args = parser.parse_args()
    rows = export_rows()
    print(f"{'scale':>5} {'records':>8} {'triples':>9} {'build s':>8} {'triples/s':>10} "
          f"{'peak MiB':>9} {'oxi load s':>10} {'build/load':>10} {'parse s':>8} {'shacl s':>8}")
    with tempfile.TemporaryDirectory(prefix="epar-bench-") as tmp:
        for scale in args.scales:
            src = Path(tmp) / f"export-{scale}x.json"
            n = scaled_export(rows, scale, src)
            out = Path(tmp) / f"dist-{scale}x"
            child = subprocess.run([sys.executable, "-c", CHILD, str(src), str(out)],
                                   capture_output=True, text=True, check=True)
            stats = json.loads(child.stdout.strip().splitlines()[-1])
            load = subprocess.run([sys.executable, "-c", LOAD, str(out / "epar.nt")],
                                  capture_output=True, text=True, check=True).stdout.split()
            load_s = float(load[0])
            parse_s = shacl_s = "-"
            if not args.no_validate:
                v = subprocess.run([sys.executable, "-c", VALIDATE, str(out / "epar.nt")],
                                   capture_output=True, text=True, check=True).stdout.split()
                parse_s, shacl_s = v[0], v[1]
            print(f"{scale:>5} {n:>8} {stats['triples']:>9} {stats['seconds']:>8.2f} "
                  f"{stats['triples'] / stats['seconds']:>10.0f} {stats['peak_mib']:>9.0f} "
                  f"{load_s:>10.2f} {stats['seconds'] / load_s:>9.1f}x {parse_s:>8} {shacl_s:>8}",
                  flush=True)


if __name__ == "__main__":
    main()
