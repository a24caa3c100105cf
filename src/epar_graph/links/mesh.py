"""The MeSH table of therapeutic areas: EMA's headings resolved to MeSH descriptors by name.

EMA takes its therapeutic areas from MeSH, so a heading should be some
descriptor's preferred name. :func:`mesh_table` makes
``data/links/mesh-therapeutic-areas.csv`` (``epar-graph links mesh-table``)
without guessing; the build reads that table, never MeSH itself, so a build
needs no MeSH download and every link names the table it came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from epar_graph.read import link_tables as lt


@dataclass(frozen=True)
class MeshTableRow:
    """One row of ``data/links/mesh-therapeutic-areas.csv``."""

    heading: str
    descriptor: str | None
    descriptor_name: str
    match: str
    source: str
    orphan_evidence: str

    def as_csv(self) -> list[str]:
        return [
            self.heading, self.descriptor or "", self.descriptor_name, self.match, self.source, self.orphan_evidence
        ]


MESH_TABLE_HEADER = ["heading", "descriptor", "descriptor_name", "match", "source", "orphan_evidence"]


def mesh_table(
    headings: Iterable[str],
    descriptors: Iterable[lt.MeshDescriptor],
    source: str,
    designations: Iterable[lt.DesignationRow] = (),
) -> list[MeshTableRow]:
    """Resolve therapeutic-area headings to MeSH descriptors by name, without guessing.

    A heading resolves when it is a descriptor's preferred name, exactly or
    apart from case (and then only if one descriptor has that name); anything
    else stays unresolved (``match`` "none"). ``orphan_evidence`` records
    whether an orphan condition of the same name was matched to the same
    descriptor in the orphan designation table (an independent match).
    """
    exact: dict[str, lt.MeshDescriptor] = {}
    folded: dict[str, list[lt.MeshDescriptor]] = defaultdict(list)
    for d in descriptors:
        exact.setdefault(d.name, d)
        folded[d.name.casefold()].append(d)
    orphan: dict[str, set[str]] = defaultdict(set)
    for row in designations:
        if row.mesh:
            for name in (row.condition, row.condition_key or ""):
                if name:
                    orphan[name.casefold()].add(row.mesh)
    rows = []
    for heading in sorted(set(headings), key=lambda h: (h.casefold(), h)):
        found: lt.MeshDescriptor | None = exact.get(heading)
        match = "exact" if found else "none"
        if found is None and len(folded.get(heading.casefold(), [])) == 1:
            found, match = folded[heading.casefold()][0], "case-insensitive"
        evidence = ""
        if ids := orphan.get(heading.casefold()):
            agrees = found is not None and ids == {found.descriptor}
            evidence = "agrees" if agrees else "orphan table: " + ";".join(sorted(ids))
        rows.append(
            MeshTableRow(
                heading,
                found.descriptor if found else None,
                found.name if found else "",
                match,
                source,
                evidence,
            )
        )
    return rows
