"""How much of the graph is linked: per kind of entity and target, the share with a link.

The entities come either from the products of a build in progress
(:func:`entities_from_products`) or from a built graph
(:func:`entities_from_store`), so that ``epar-graph links report`` can judge a
release without re-running the link stage; the report lists what stayed
unlinked, and the notes on what could not be placed, so a gap can be chased
down rather than only counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyoxigraph import NamedNode

from epar_graph import model
from epar_graph.graph import ORPHAN_SCHEME, atc_ancestors
from epar_graph.iris import Minter
from epar_graph.links.sets import Linkset
from epar_graph.namespaces import EU_COUNTRY_BASE


@dataclass
class Entities:
    """The linkable entities of a graph (IRI → label) and the edges coverage needs."""

    products: dict[str, str] = field(default_factory=dict)
    substances: dict[str, str] = field(default_factory=dict)
    atc_codes: dict[str, str] = field(default_factory=dict)
    therapeutic_areas: dict[str, str] = field(default_factory=dict)
    orphan_conditions: dict[str, str] = field(default_factory=dict)
    orphan_designations: dict[str, str] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    product_substances: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    holder_countries: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    designated: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class TargetCoverage:
    """How many entities of one kind have a link to one target, and which have none."""

    kind: str
    target: str
    linked: int
    total: int
    unlinked: tuple[tuple[str, str], ...]  # (label, IRI), sorted by label

    @property
    def share(self) -> float:
        return self.linked / self.total if self.total else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "target": self.target,
            "linked": self.linked,
            "total": self.total,
            "share": round(self.share, 4),
            "unlinked": [{"label": label, "iri": iri} for label, iri in self.unlinked],
        }


@dataclass(frozen=True)
class CoverageReport:
    """Shares of entities linked per target, the unlinked ones, and what could not be placed."""

    rows: tuple[TargetCoverage, ...]
    notes: tuple[str, ...] = ()

    def get(self, kind: str, target: str) -> TargetCoverage:
        for row in self.rows:
            if row.kind == kind and row.target == target:
                return row
        raise KeyError(f"no coverage row for {kind} → {target}")

    def to_json(self) -> dict[str, object]:
        return {"coverage": [r.to_json() for r in self.rows], "notes": list(self.notes)}

    def to_text(self, limit: int | None = 20) -> str:
        lines = [f"{'entities':<20} {'target':<28} {'linked':>13} {'share':>7}"]
        for r in self.rows:
            lines.append(f"{r.kind:<20} {r.target:<28} {f'{r.linked}/{r.total}':>13} {r.share:>7.1%}")
        for r in self.rows:
            if not r.unlinked:
                continue
            shown = r.unlinked if limit is None else r.unlinked[:limit]
            lines.append("")
            lines.append(f"{r.kind} without a link to {r.target} ({len(r.unlinked)}):")
            lines.extend(f"  {label}" for label, _ in shown)
            if len(shown) < len(r.unlinked):
                lines.append(f"  … and {len(r.unlinked) - len(shown)} more (--all lists every one)")
        if self.notes:
            lines.append("")
            lines.append(f"notes ({len(self.notes)}):")
            shown_notes = self.notes if limit is None else self.notes[:limit]
            lines.extend(f"  {n}" for n in shown_notes)
            if len(shown_notes) < len(self.notes):
                lines.append(f"  … and {len(self.notes) - len(shown_notes)} more (--all lists every one)")
        return "\n".join(lines) + "\n"


def linked_subjects(linksets: Iterable[Linkset]) -> dict[str, set[str]]:
    """Subject IRIs per link set name."""
    out: dict[str, set[str]] = defaultdict(set)
    for ls in linksets:
        out[ls.name].update(t.subject.value for t in ls.triples if isinstance(t.subject, NamedNode))
    return out


def _keep(found: dict[str, str], iri: str, label: str) -> None:
    """Record ``label`` for ``iri``; of several spellings of one node the smallest wins (deterministic)."""
    old = found.get(iri)
    found[iri] = label if old is None else min(old, label)


def entities_from_products(
    products: Iterable[model.Product], mint: Minter, designations: Iterable[model.OrphanDesignation] = ()
) -> Entities:
    """The entities the graph stage mints for ``products`` and ``designations``."""
    ents = Entities()
    for p in products:
        prod = mint.product(p.product_number)
        _keep(ents.products, prod, p.name)
        for name in p.active_substances:
            sub = mint.substance(name)
            _keep(ents.substances, sub, name)
            ents.product_substances[prod].add(sub)
        for code in p.atc_codes:
            for level in atc_ancestors(code):
                _keep(ents.atc_codes, mint.concept("atc", level), level)
        for area in p.therapeutic_areas:
            _keep(ents.therapeutic_areas, mint.concept("therapeutic-area", area), area)
        if p.holder:
            holder = mint.organisation(p.holder)
            _keep(ents.holders, holder, p.holder)
            if p.holder_address and p.holder_address.country_code:
                ents.holder_countries[holder].add(EU_COUNTRY_BASE + p.holder_address.country_code)
    for d in designations:
        node = mint.orphan_designation(d.number)
        ents.orphan_designations.setdefault(node, f"Orphan designation {d.number}")
        ents.orphan_conditions.setdefault(mint.concept(ORPHAN_SCHEME, d.condition), d.condition)
        if d.medicine:
            ents.designated.add(node)
    return ents


_ENTITY_QUERIES = {
    "products": "SELECT ?e ?l { ?e a epar:MedicinalProduct . OPTIONAL { ?e rdfs:label ?l } }",
    "substances": "SELECT ?e ?l { ?e a epar:ActiveSubstance . OPTIONAL { ?e rdfs:label ?l } }",
    "atc_codes": "SELECT DISTINCT ?e ?l { ?p epar:atcCode/skos:broader* ?e . OPTIONAL { ?e skos:notation ?l } }",
    "therapeutic_areas": "SELECT DISTINCT ?e ?l { ?p epar:therapeuticArea ?e . OPTIONAL { ?e rdfs:label ?l } }",
    "orphan_conditions": "SELECT DISTINCT ?e ?l { ?d epar:orphanCondition ?e . OPTIONAL { ?e rdfs:label ?l } }",
    "orphan_designations": "SELECT ?e ?l { ?e a epar:OrphanDesignation . OPTIONAL { ?e rdfs:label ?l } }",
    "holders": "SELECT DISTINCT ?e ?l { ?a epar:holder ?e . OPTIONAL { ?e rdfs:label ?l } }",
}
_PREFIXES = (
    "PREFIX epar: <https://w3id.org/epar/ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
    "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> PREFIX schema: <https://schema.org/> "
)


def entities_from_store(store: object) -> Entities:
    """The same entities, read from a built graph loaded into a pyoxigraph ``Store``."""
    ents = Entities()

    def rows(query: str) -> Iterable[tuple[str, str | None]]:
        for sol in store.query(_PREFIXES + query):  # type: ignore[attr-defined]
            e, label = sol[0], sol[1]
            yield e.value, (label.value if label is not None else None)

    for attr, query in _ENTITY_QUERIES.items():
        found: dict[str, str] = getattr(ents, attr)
        unlabelled: set[str] = set()
        for iri, label in rows(query):
            if label is None:
                unlabelled.add(iri)
            else:
                _keep(found, iri, label)
        for iri in unlabelled - found.keys():
            found[iri] = iri
    for p, s in rows("SELECT ?p ?s { ?p a epar:MedicinalProduct ; epar:activeSubstance ?s }"):
        if s:
            ents.product_substances[p].add(s)
    for h, c in rows("SELECT ?h ?c { ?a epar:holder ?h . ?h schema:address/schema:addressCountry ?c }"):
        if c:
            ents.holder_countries[h].add(c)
    for d, _ in rows("SELECT DISTINCT ?d ?p { ?d epar:designatedProduct ?p }"):
        ents.designated.add(d)
    return ents


def _row(kind: str, target: str, entities: Mapping[str, str], linked: set[str]) -> TargetCoverage:
    unlinked = sorted(
        ((label, iri) for iri, label in entities.items() if iri not in linked), key=lambda x: (x[0].casefold(), x[1])
    )
    return TargetCoverage(kind, target, len(entities) - len(unlinked), len(entities), tuple(unlinked))


def coverage_of(ents: Entities, linked: Mapping[str, set[str]], notes: Iterable[str] = ()) -> CoverageReport:
    """Coverage rows from entities and the subjects of each link set."""

    def union(*names: str) -> set[str]:
        return set().union(*(linked.get(n, set()) for n in names))

    wd_subs = union("wikidata-substances", "wikidata-refresh-substances")
    rx_subs = union("rxnorm-substances")
    wd_prods = union("wikidata-combinations", "wikidata-refresh-products") | {
        p for p, subs in ents.product_substances.items() if subs & wd_subs
    }
    rx_prods = union("rxnorm-combinations") | {p for p, subs in ents.product_substances.items() if subs & rx_subs}
    countries = union("wikidata-countries")
    holders = {h for h, cs in ents.holder_countries.items() if cs & countries}
    rows = (
        _row("products", "Wikidata", ents.products, wd_prods),
        _row("products", "RxNorm", ents.products, rx_prods),
        _row("substances", "Wikidata", ents.substances, wd_subs),
        _row("substances", "RxNorm", ents.substances, rx_subs),
        _row("atc-codes", "identifiers.org ATC", ents.atc_codes, union("atc-identifiers-org")),
        _row("atc-codes", "BioPortal ATC", ents.atc_codes, union("atc-bioportal")),
        _row("atc-codes", "Wikidata", ents.atc_codes, union("wikidata-refresh-atc")),
        _row("therapeutic-areas", "MeSH", ents.therapeutic_areas, union("mesh-therapeutic-areas")),
        _row("orphan-conditions", "DOID", ents.orphan_conditions, union("doid-orphan-conditions")),
        _row("orphan-conditions", "ORDO", ents.orphan_conditions, union("ordo-orphan-conditions")),
        _row("orphan-conditions", "HPO", ents.orphan_conditions, union("hpo-orphan-conditions")),
        _row("orphan-conditions", "MeSH", ents.orphan_conditions, union("mesh-orphan-conditions")),
        _row("orphan-conditions", "Wikidata", ents.orphan_conditions, union("wikidata-orphan-conditions")),
        _row("orphan-designations", "EPAR product", ents.orphan_designations, ents.designated),
        _row("holders", "Wikidata (country)", ents.holders, holders),
    )
    return CoverageReport(rows, tuple(notes))


def coverage(
    products: list[model.Product],
    linksets: Iterable[Linkset],
    mint: Minter | None = None,
    designations: Iterable[model.OrphanDesignation] = (),
    notes: Iterable[str] = (),
) -> CoverageReport:
    """Shares of products, substances, ATC codes, conditions and holders linked, per target."""
    ents = entities_from_products(products, mint or Minter(), designations)
    return coverage_of(ents, linked_subjects(linksets), notes)
