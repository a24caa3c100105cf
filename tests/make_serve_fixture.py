"""Generate ``tests/data/serve``, the small build the serve tests run against.

The fixture is what the real pipeline (:func:`epar_graph.pipeline.build`, as
``epar-graph build`` runs it) makes of three inputs:

* a real fixture input: MedPath's page for Alofisel (``data/medpath/alofisel.txt``);
* :data:`MADE_UP_RECORDS`: plain records in EMA's JSON export format (a generic,
  a refused medicine, and one record without a product number, which is rejected);
* :data:`HOSTILE_RECORDS`: deliberately hostile records, markup and script in
  names, holders and indications (entity-escaped, as a page's text would carry
  it), for the tests that check such text stays text.

The made-up and hostile records are written together as one EMA JSON export
(an export is a whole snapshot, so they cannot come as two). The link sets
(``links-*.nt``) come from :data:`LINK_TABLES`, small link tables whose rows are
copied verbatim from the bundled ones (see the README there): the bundled
designation table alone would add ~12,000 triples. Generate with::

    .venv/bin/python tests/make_serve_fixture.py [TARGET]   # TARGET defaults to tests/data/serve

``tests/test_serve_fixture.py`` checks the committed copy equals what this
makes, so a change to the build shows up as a failing test until the fixture
is regenerated (and the change to it reviewed).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from epar_graph import config
from epar_graph.pipeline import build

HERE = Path(__file__).parent
SERVE_DATA = HERE / "data" / "serve"
#: The link tables the fixture is linked against (the bundled tables' layout, a few of their rows).
LINK_TABLES = HERE / "data" / "serve-inputs" / "links"
#: The real fixture input.
REAL_INPUTS = (config.DATA_DIR / "medpath" / "alofisel.txt",)
#: The date the generated export carries.
EXPORT_DATE = "14/03/2026"
#: The files of a build the serve tests use (the rest of a release is not needed to serve),
#: besides the link sets (``links-*.nt``), which are whichever the link tables give.
FILES = ("epar.nt", "epar.ttl", "epar.jsonld", "context.jsonld", "void.ttl", "rejections.csv")
#: The build time written in the fixture's void.ttl (the build writes its clock time).
BUILT = "2026-03-14T00:00:00+00:00"
COMMAND = ".venv/bin/python tests/make_serve_fixture.py"

_NO = {"orphan_medicine": "No", "generic_or_hybrid": "No", "biosimilar": "No",
       "conditional_approval": "No", "exceptional_circumstances": "No"}

#: Plain made-up records: made-up medicines under the numbers of real ones (001234 is Ristaben's,
#: 000666 Acomplia's); the fixture's link tables hold no rows of those numbers, so nothing links them.
MADE_UP_RECORDS: list[dict[str, object]] = [
    {"category": "Human", "name_of_medicine": "Examplor", "ema_product_number": "EMEA/H/C/001234",
     "medicine_status": "Authorised", "international_non_proprietary_name_common_name": "examplorin",
     "active_substance": "examplorin", "pharmacotherapeutic_group_human": "Immunosuppressants",
     "atc_code_human": "L04", "marketing_authorisation_developer_applicant_holder": "Takeda Pharma A/S",
     "marketing_authorisation_date": "20/01/2011", **_NO, "generic_or_hybrid": "Yes"},
    {"category": "Human", "name_of_medicine": "Refusix", "ema_product_number": "EMEA/H/C/005555",
     "medicine_status": "Refused", "international_non_proprietary_name_common_name": "refusinib",
     "active_substance": "refusinib", "refusal_of_marketing_authorisation_date": "22/07/2021", **_NO},
    # no product number: the build rejects it (rejections.csv)
    {"category": "Human", "name_of_medicine": "Numberless", "ema_product_number": "",
     "medicine_status": "Authorised", "active_substance": "nothing", **_NO},
]

#: Deliberately hostile records: what a page must show as text, never run.
HOSTILE_RECORDS: list[dict[str, object]] = [
    {"category": "Human", "name_of_medicine": "&lt;script&gt;alert(1)&lt;/script&gt;",
     "ema_product_number": "EMEA/H/C/000666", "medicine_status": "Authorised",
     "international_non_proprietary_name_common_name": "adalimumab", "active_substance": "adalimumab",
     "pharmacotherapeutic_group_human": "Immunosuppressants", "atc_code_human": "L04AB04",
     # prose is unescaped twice on reading (as a block, then per line): escaped twice here
     "therapeutic_indication": "Rheumatoid arthritis &amp; \"psoriasis\" &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;.",
     "marketing_authorisation_developer_applicant_holder": "Evil &amp; Co &lt;b&gt;",
     "marketing_authorisation_date": "14/06/2019", **_NO, "biosimilar": "Yes"},
]


def export(records: list[dict[str, object]], path: Path) -> Path:
    """``records`` as an EMA JSON export at ``path``."""
    doc = {"meta": {"total_records": len(records), "export_date": EXPORT_DATE}, "data": records}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def generate(target: Path) -> None:
    """Build the fixture from its inputs and write its files (:func:`fixture_files`) into ``target`` (replaced)."""
    with tempfile.TemporaryDirectory(prefix="serve-fixture-") as tmp, contextlib.chdir(tmp):
        # relative names, so the files name the inputs the same wherever they are generated
        made = export(MADE_UP_RECORDS + HOSTILE_RECORDS, Path("ema-medicines.json"))
        result = build(
            [*REAL_INPUTS, made], Path(tmp) / "dist", base=config.DEFAULT_BASE, with_links=True, links_dir=LINK_TABLES
        )
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in fixture_files(result.files):
            shutil.copyfile(result.files[name], target / name)
        pin_build_time(target / "void.ttl")


def fixture_files(built: Iterable[str]) -> list[str]:
    """The names of a build's files the fixture keeps: :data:`FILES` and every link set."""
    names = set(built)
    missing = [name for name in FILES if name not in names]
    if missing:
        raise RuntimeError(f"the build no longer writes {', '.join(missing)}")
    return [*FILES, *sorted(n for n in names if n.startswith("links-") and n.endswith(".nt"))]


def pin_build_time(void: Path) -> None:
    """Replace the build's clock time in ``void.ttl`` by a fixed one, so generating twice gives the same bytes."""
    text = void.read_text(encoding="utf-8")
    pinned, n = re.subn(r'dcterms:created "[^"]*"', f'dcterms:created "{BUILT}"', text)
    if n != 1:
        raise RuntimeError(f"{void} no longer has one dcterms:created to pin")
    void.write_text(pinned, encoding="utf-8")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else SERVE_DATA)
