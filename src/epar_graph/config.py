"""Where things live and which base IRI is minted: the settings every stage shares."""

from __future__ import annotations

from pathlib import Path

from epar_graph import iris

_PACKAGE = Path(__file__).resolve().parent
#: Where ``ontology/``, ``shapes/``, ``queries/`` and ``data/`` are: inside an installed wheel
#: (``epar_graph/_resources``, see pyproject.toml), else the repository root of a checkout.
ROOT = _PACKAGE / "_resources" if (_PACKAGE / "_resources" / "ontology").is_dir() else _PACKAGE.parents[1]
DATA_DIR = ROOT / "data"
ONTOLOGY_DIR = ROOT / "ontology"
SHAPES_DIR = ROOT / "shapes"
QUERIES_DIR = ROOT / "queries"
ONTOLOGY_FILE = ONTOLOGY_DIR / "epar.ttl"
SHAPES_FILE = SHAPES_DIR / "epar.shacl.ttl"
DEFAULT_OUT = Path("dist")

#: The base IRI a build mints under unless ``--base`` (or ``EPAR_BASE``) says otherwise.
DEFAULT_BASE = iris.DEFAULT_BASE

#: Defaults of ``epar-graph links``, kept here so that the command line can show them
#: without importing the modules that do the work (see :mod:`epar_graph.links`).
REFRESH_ENDPOINT = "https://query.wikidata.org/sparql"
REFRESH_TABLE = DATA_DIR / "links" / "wikidata-refresh.csv"
REFRESH_TIMEOUT = 60.0
#: look-up keys per query: small enough for Wikidata's URL and time limits
REFRESH_BATCH = 200
MESH_TABLE = "links/mesh-therapeutic-areas.csv"


#: The sources the default build reads. Their order does not matter: the newest EMA
#: export that lists a product gives its current facts (see ``model.merge_sources``).
BUNDLED_SOURCES = (
    DATA_DIR / "ema-medicines-2017-02-13.xls",
    DATA_DIR / "ema-epar-report-2018-12-23.xlsx",
    DATA_DIR / "ema-epar-report-2023-06.xlsx",
    DATA_DIR / "ema-medicines-report-2026-01-29.xlsx",
    DATA_DIR / "ema-medicines-report-2026-03-14.xlsx",
    # the EPAR search table as merged by product number (the raw table,
    # ema-epar-scrape-2017.csv, leaves 19 rows without an unambiguous product number)
    DATA_DIR / "ema-medicines-2017-wikidata-rxnorm.csv",
    DATA_DIR / "medpath" / "alofisel.txt",
)
