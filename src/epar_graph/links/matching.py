"""Stage 3b, link: match the graph's entities to other knowledge bases by name and identifier.

Fills the link sets of :mod:`epar_graph.links.sets` from the link tables. A
match is attached only to the node it is about. The match table gives one
Wikidata item per combination component, in the order of the components; it
lands on a substance only when that order can be checked against the
product's own substances, and the combination's own items land on the
product. When different products disagree about a substance, the item most
of them name wins, and a tie is left out and reported.

This module is pure: it reads the link tables and returns triples; writing
them is the publish stage's job.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pyoxigraph import NamedNode, Triple

from epar_graph import config, iris, model
from epar_graph.graph import ORPHAN_SCHEME, atc_ancestors
from epar_graph.iris import Minter
from epar_graph.links.sets import (
    ATC_BIOPORTAL,
    ATC_IDENTIFIERS_ORG,
    COUNTRY_TABLE,
    DESIGNATION_TABLE,
    MESH,
    MESH_TABLE,
    REFRESH_TABLE,
    RXNORM,
    SPEC_BY_NAME,
    SPECS,
    SUBSTANCE_TABLE,
    WIKIDATA,
    LinkResult,
    Linkset,
)
from epar_graph.namespaces import (
    EU_COUNTRY_BASE,
)
from epar_graph.read import link_tables as lt


class _Links:
    """Link triples per link set name, deduplicated, in a stable order."""

    def __init__(self) -> None:
        self.by_name: dict[str, dict[Triple, None]] = defaultdict(dict)

    def add(self, name: str, subject: str, obj: NamedNode) -> None:
        spec = SPEC_BY_NAME[name]
        self.by_name[name][Triple(NamedNode(subject), spec.predicate, obj)] = None


def _plurality(votes: Counter[str]) -> str | None:
    """The value most votes name; ``None`` when nothing was named or the top is a tie."""
    top = votes.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _sorted_qids(qids: Iterable[str]) -> list[str]:
    return sorted(qids, key=lambda q: int(q[1:]))


# -- substances and combinations --------------------------------------------------------------


def _align(components: Sequence[str], substances: Sequence[str]) -> list[str] | None:
    """The product's substance for each component of the match table, or ``None`` if not one-to-one.

    Names are compared after :func:`iris.normalise_name`, so spelling noise
    (case, punctuation) does not matter but a different substance does.
    """
    if len(components) != len(substances):
        return None
    by_key = {iris.normalise_name(s): s for s in substances}
    if len(by_key) != len(substances):
        return None
    aligned = [by_key.get(iris.normalise_name(c)) for c in components]
    if any(a is None for a in aligned) or len(set(aligned)) != len(aligned):
        return None
    return [a for a in aligned if a is not None]


def _link_substances(
    products: Mapping[str, model.Product],
    rows: Iterable[lt.SubstanceMatch],
    mint: Minter,
    out: _Links,
    notes: list[str],
) -> None:
    wd_votes: dict[str, Counter[str]] = defaultdict(Counter)
    rx_votes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    labels: dict[str, str] = {}
    product_wd: dict[str, Counter[str]] = defaultdict(Counter)
    product_rx: dict[str, Counter[str]] = defaultdict(Counter)

    def vote(substance: str, qid: str | None, rxcui: str | None) -> None:
        key = mint.substance(substance)
        labels.setdefault(key, substance)
        if qid:
            wd_votes[key][qid] += 1
            if rxcui:
                rx_votes[(key, qid)][rxcui] += 1

    for row in rows:
        product = products.get(row.product_number)
        if product is None:
            notes.append(f"{SUBSTANCE_TABLE} {row.record}: no product {row.product_number} ({row.name}) in the data")
            continue
        subs = product.active_substances
        prod_iri = mint.product(product.product_number)
        if len(subs) == 1:
            vote(subs[0], row.wikidata, row.rxnorm)
            if row.rxnorm_combination:
                product_rx[prod_iri][row.rxnorm_combination] += 1
            continue
        if not subs:
            continue
        parts = row.wikidata_parts or ()
        aligned = _align(row.substances, subs) if parts else None
        if parts and aligned is not None and len(parts) == len(aligned):
            rx_parts = row.rxnorm_parts if row.rxnorm_parts and len(row.rxnorm_parts) == len(parts) else None
            for i, substance in enumerate(aligned):
                vote(substance, parts[i], rx_parts[i] if rx_parts else None)
        elif parts:
            notes.append(
                f"{product.name} ({product.product_number}): per-component matches "
                f"{'; '.join(p or '-' for p in parts)} not placed: the table's components "
                f"{' / '.join(row.substances)} do not line up with the product's substances"
            )
        if row.wikidata and row.wikidata not in parts:
            # named for the combination as a whole: it is about the product, not a component
            product_wd[prod_iri][row.wikidata] += 1
            if row.rxnorm and not row.rxnorm_combination:
                product_rx[prod_iri][row.rxnorm] += 1
        if row.rxnorm_combination:
            product_rx[prod_iri][row.rxnorm_combination] += 1

    for key in sorted(wd_votes):
        winner = _plurality(wd_votes[key])
        if winner is None:
            candidates = ", ".join(f"{q} ×{n}" for q, n in sorted(wd_votes[key].items()))
            notes.append(f"substance {labels[key]!r}: products disagree on its Wikidata item ({candidates}); left out")
            continue
        out.add("wikidata-substances", key, WIKIDATA.node(winner))
        rx = _plurality(rx_votes.get((key, winner), Counter()))
        if rx:
            out.add("rxnorm-substances", key, RXNORM.node(rx))
    for prod_iri in sorted(product_wd):
        if q := _plurality(product_wd[prod_iri]):
            out.add("wikidata-combinations", prod_iri, WIKIDATA.node(q))
    for prod_iri in sorted(product_rx):
        if rx := _plurality(product_rx[prod_iri]):
            out.add("rxnorm-combinations", prod_iri, RXNORM.node(rx))


# -- concepts: ATC and therapeutic areas ------------------------------------------------------


def atc_codes(products: Iterable[model.Product]) -> list[str]:
    """Every ATC code the graph has a concept for: each code and all its ancestors."""
    return sorted({level for p in products for code in p.atc_codes for level in atc_ancestors(code)})


def therapeutic_areas(products: Iterable[model.Product]) -> list[str]:
    return sorted({area for p in products for area in p.therapeutic_areas})


def _link_atc(products: Iterable[model.Product], mint: Minter, out: _Links) -> None:
    for code in atc_codes(products):
        concept = mint.concept("atc", code)
        out.add("atc-identifiers-org", concept, ATC_IDENTIFIERS_ORG.node(code))
        out.add("atc-bioportal", concept, ATC_BIOPORTAL.node(code))


def _link_areas(
    products: Iterable[model.Product], headings: Iterable[lt.MeshHeading], mint: Minter, out: _Links
) -> None:
    table: dict[str, str] = {}
    for h in headings:
        if h.descriptor is None:
            continue
        table.setdefault(h.heading, h.descriptor)
        table.setdefault(h.heading.casefold(), h.descriptor)
    for area in therapeutic_areas(products):
        descriptor = table.get(area) or table.get(area.casefold())
        if descriptor:
            out.add("mesh-therapeutic-areas", mint.concept("therapeutic-area", area), MESH.node(descriptor))


# -- orphan conditions ------------------------------------------------------------------------


def _link_conditions(rows: Iterable[lt.DesignationRow], mint: Minter, out: _Links, notes: list[str]) -> None:
    """The designation table's matches of each condition (its author's), where they agree."""
    concepts: dict[str, str] = {}
    matches: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    wd_routes: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in sorted(rows, key=lambda r: model.designation_order(r.number)):
        concept_iri = mint.concept(ORPHAN_SCHEME, row.condition)
        concepts.setdefault(concept_iri, row.condition)
        for target, value in (("doid", row.doid), ("hpo", row.hpo), ("ordo", row.ordo), ("mesh", row.mesh)):
            if value:
                matches[concept_iri][target].add(value)
        for route, qid in (("doid", row.wikidata_via_doid), ("ordo", row.wikidata_via_ordo),
                           ("mesh", row.wikidata_via_mesh)):
            if qid:
                wd_routes[concept_iri].add((route, qid))

    for concept_iri in sorted(matches):
        for target, values in sorted(matches[concept_iri].items()):
            if len(values) > 1:
                notes.append(
                    f"condition {concepts[concept_iri]!r}: several {target.upper()} matches "
                    f"({', '.join(sorted(values))}); left out"
                )
                continue
            (value,) = values
            if target == "mesh":
                out.add("mesh-orphan-conditions", concept_iri, MESH.node(value))
            else:
                out.add(f"{target}-orphan-conditions", concept_iri, NamedNode(value))
    for concept_iri in sorted(wd_routes):
        votes = Counter(qid for _, qid in wd_routes[concept_iri])
        winner = _plurality(votes)
        if winner is None:
            notes.append(
                f"condition {concepts[concept_iri]!r}: identifier routes give different Wikidata items "
                f"({', '.join(_sorted_qids(votes))}); left out"
            )
            continue
        out.add("wikidata-orphan-conditions", concept_iri, WIKIDATA.node(winner))


# -- countries and the Wikidata refresh ---------------------------------------------------------


def _link_countries(products: Iterable[model.Product], rows: Iterable[lt.CountryItem], out: _Links) -> None:
    table = {r.code: r.wikidata for r in rows}
    used = {p.holder_address.country_code for p in products if p.holder_address}
    for code in sorted(c for c in used if c):
        if code in table:
            out.add("wikidata-countries", EU_COUNTRY_BASE + code, WIKIDATA.node(table[code]))


def _link_refresh(
    products: Mapping[str, model.Product], rows: Iterable[lt.RefreshRow], mint: Minter, out: _Links
) -> None:
    by_name: dict[str, str] = {}  # substance IRI → item, from a look-up of the substance's own name
    by_inn: dict[str, str] = {}  # substance IRI → item, from the INN of a single-substance product
    for row in rows:
        product = products.get(row.product_number)
        if product is None or len(row.wikidata) != 1:
            continue
        item = row.wikidata[0]
        if row.method == "ema-number" and row.key == product.product_number:
            out.add("wikidata-refresh-products", mint.product(product.product_number), WIKIDATA.node(item))
        elif row.method == "label":
            names = {iris.normalise_name(s): s for s in product.active_substances}
            key = iris.normalise_name(row.key)
            if name := names.get(key):
                by_name[mint.substance(name)] = item
            elif (
                len(product.active_substances) == 1
                and product.common_name
                and iris.normalise_name(product.common_name) == key
            ):
                by_inn.setdefault(mint.substance(product.active_substances[0]), item)
        elif row.method == "atc":
            codes = {c.strip().upper() for c in product.atc_codes}
            if row.key.upper() in codes:
                out.add("wikidata-refresh-atc", mint.concept("atc", row.key), WIKIDATA.node(item))
    for substance, item in sorted({**by_inn, **by_name}.items()):
        out.add("wikidata-refresh-substances", substance, WIKIDATA.node(item))


# -- the stage --------------------------------------------------------------------------------


def link_products(
    products: list[model.Product],
    mint: Minter,
    data_dir: Path = config.DATA_DIR,
    designations: lt.Table[lt.DesignationRow] | None = None,
) -> LinkResult:
    """Make every link set for ``products`` from the link tables under ``data_dir``.

    ``designations`` is the designation table when the caller has read it
    already (the designations themselves are entities of the graph stage).

    Raises :class:`~epar_graph.read.link_tables.LinkTableError` when a required
    table is missing or unusable; bad rows become ``rejections``.
    """
    by_number = {p.product_number: p for p in products}
    out = _Links()
    notes: list[str] = []
    rejections: list[model.Rejection] = []

    substances = lt.read_substance_matches(data_dir / SUBSTANCE_TABLE)
    designations = designations or lt.read_designations(data_dir / DESIGNATION_TABLE)
    headings = lt.read_mesh_headings(data_dir / MESH_TABLE)
    countries = lt.read_countries(data_dir / COUNTRY_TABLE)
    refresh_path = data_dir / REFRESH_TABLE
    refresh = lt.read_refresh(refresh_path) if refresh_path.is_file() else None
    for rejected in (substances.rejections, designations.rejections, headings.rejections, countries.rejections):
        rejections.extend(rejected)
    if refresh is not None:
        rejections.extend(refresh.rejections)

    _link_substances(by_number, substances.rows, mint, out, notes)
    _link_atc(products, mint, out)
    _link_areas(products, headings.rows, mint, out)
    _link_conditions(designations.rows, mint, out, notes)
    _link_countries(products, countries.rows, out)
    if refresh is not None:
        _link_refresh(by_number, refresh.rows, mint, out)
        old_items = {str(t.subject): str(t.object) for t in out.by_name.get("wikidata-substances", {})}
        for t in out.by_name.get("wikidata-refresh-substances", {}):
            was = old_items.get(str(t.subject))
            if was and was != str(t.object):
                notes.append(f"substance {t.subject}: the 2017 table says {was}, the refresh {t.object}")

    linksets = []
    for spec in SPECS:
        triples = list(out.by_name.get(spec.name, {}))
        if not triples:
            continue
        linksets.append(
            Linkset(
                name=spec.name,
                target=spec.target.iri,
                target_title=spec.target.title,
                predicate=spec.predicate,
                method=spec.method,
                source_files=tuple(data_dir / s for s in spec.sources),
                triples=triples,
            )
        )
    return LinkResult(linksets, notes, rejections)


def build_linksets(
    products: list[model.Product],
    mint: Minter,
    data_dir: Path = config.DATA_DIR,
    designations: lt.Table[lt.DesignationRow] | None = None,
) -> list[Linkset]:
    """The link sets of ``products`` (see :func:`link_products`)."""
    return link_products(products, mint, data_dir, designations).linksets
