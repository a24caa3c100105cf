"""Links from the graph to other drug knowledge bases: Wikidata, RxNorm, ATC, MeSH, DOID, HPO, ORDO.

One package because its parts change together: a new link set is a
definition (:mod:`.sets`), the matching that fills it during the build
(:mod:`.matching`), rows of the coverage report (:mod:`.coverage`) and, for
the mapping tables this project makes itself, the code that remakes them
(:mod:`.mesh` for the MeSH table of therapeutic areas, :mod:`.refresh` for the
Wikidata table) and the ``epar-graph links`` commands (:mod:`.cli`).

The names below are re-exported lazily: importing the package imports none
of its modules, so ``epar-graph links --help``, which reaches :mod:`.cli`
through it, does not pay for pyoxigraph or the link tables. ``coverage`` is
the module; its function of that name is ``epar_graph.links.coverage.coverage``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from epar_graph.links.coverage import CoverageReport, Entities, TargetCoverage, coverage_of
    from epar_graph.links.matching import atc_codes, build_linksets, link_products, therapeutic_areas
    from epar_graph.links.mesh import MESH_TABLE_HEADER, MeshTableRow, mesh_table
    from epar_graph.links.sets import (
        DESIGNATION_TABLE,
        MESH_TABLE,
        REFRESH_TABLE,
        SPECS,
        SUBSTANCE_TABLE,
        TARGETS,
        LinkResult,
        Linkset,
        LinksetSpec,
        Target,
        linkset_name,
        void_description,
    )

#: the module under this package that defines each re-exported name
_HOMES: dict[str, tuple[str, ...]] = {
    "sets": (
        "DESIGNATION_TABLE",
        "MESH_TABLE",
        "REFRESH_TABLE",
        "SPECS",
        "SUBSTANCE_TABLE",
        "TARGETS",
        "LinkResult",
        "Linkset",
        "LinksetSpec",
        "Target",
        "linkset_name",
        "void_description",
    ),
    "matching": ("atc_codes", "build_linksets", "link_products", "therapeutic_areas"),
    "coverage": ("CoverageReport", "Entities", "TargetCoverage", "coverage_of"),
    "mesh": ("MESH_TABLE_HEADER", "MeshTableRow", "mesh_table"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "DESIGNATION_TABLE",
    "MESH_TABLE",
    "MESH_TABLE_HEADER",
    "REFRESH_TABLE",
    "SPECS",
    "SUBSTANCE_TABLE",
    "TARGETS",
    "CoverageReport",
    "Entities",
    "LinkResult",
    "Linkset",
    "LinksetSpec",
    "MeshTableRow",
    "Target",
    "TargetCoverage",
    "atc_codes",
    "build_linksets",
    "coverage_of",
    "link_products",
    "linkset_name",
    "mesh_table",
    "therapeutic_areas",
    "void_description",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use, so that the package itself stays light."""
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
