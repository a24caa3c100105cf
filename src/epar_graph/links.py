"""Stage 4, link: connect the graph to other drug knowledge bases, with provenance.

Every link is a SKOS mapping from one of our entities to an IRI of another
knowledge base, and every group of links with one target and one predicate is
a :class:`Linkset` that the publish stage dumps as ``links-<name>.nt`` and
describes in ``void.ttl`` (see :func:`void_description`).

How strong a link is follows from how it was made, never from wishful
thinking:

* ``skos:exactMatch`` where the sources assert identity: an ATC concept and
  the same code at identifiers.org/BioPortal, a therapeutic area (which EMA
  takes from MeSH) and the MeSH descriptor of that heading, a country of the
  EU authority table and its Wikidata item;
* ``skos:closeMatch`` for everything matched by name, which covers all of the
  third-party substance and condition matches (their authors looked names up
  in Wikidata, DOID, HPO, ORDO and MeSH);
* ``owl:sameAs`` is never used: a near-identity claim should not make a
  reasoner merge two descriptions.

A match is attached only to the node it is about. The match table gives one
Wikidata item per combination component, in the order of the components; it
lands on a substance only when that order can be checked against the
product's own substances, and the combination's own items land on the
product. When different products disagree about a substance, the item most
of them name wins, and a tie is left out and reported.

This module is pure: it reads the link tables and returns triples; writing
them is the publish stage's job.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import Literal, NamedNode, Triple

from epar_graph import config, iris, model
from epar_graph.files import sha256_file
from epar_graph.graph import atc_ancestors
from epar_graph.iris import Minter
from epar_graph.namespaces import (
    DCTERMS,
    EPAR,
    EU_COUNTRY_BASE,
    RDF,
    RDFS,
    SCHEMA,
    SKOS,
    SPDX,
    VOID,
    XSD,
)
from epar_graph.read import link_tables as lt

SUBSTANCE_TABLE = "ema-medicines-2017-wikidata-rxnorm.csv"
DESIGNATION_TABLE = "eu-orphan-designations-2017-linked.csv"
MESH_TABLE = config.MESH_TABLE
COUNTRY_TABLE = "links/countries-wikidata.csv"
REFRESH_TABLE = "links/wikidata-refresh.csv"

ORPHAN_SCHEME = "orphan-condition"
ORPHAN_SCHEME_LABEL = "Conditions of EU orphan designations"


@dataclass(frozen=True)
class Target:
    """A knowledge base we link to: its dataset IRI and the IRI space its entities live in."""

    key: str
    iri: str
    title: str
    uri_space: str

    def node(self, local_id: str) -> NamedNode:
        return NamedNode(self.uri_space + local_id)


WIKIDATA = Target("wikidata", "http://www.wikidata.org/", "Wikidata", "http://www.wikidata.org/entity/")
#: RxNorm concepts under the NCBO BioPortal PURLs: the IRIs RxNorm's RDF edition uses,
#: so a query can join our links with other RDF that uses RxNorm (identifiers.org
#: IRIs are resolver addresses, not the concepts' own IRIs).
RXNORM = Target(
    "rxnorm",
    "http://purl.bioontology.org/ontology/RXNORM/",
    "RxNorm (US National Library of Medicine), NCBO BioPortal edition",
    "http://purl.bioontology.org/ontology/RXNORM/",
)
ATC_IDENTIFIERS_ORG = Target(
    "atc-identifiers-org",
    "https://bioregistry.io/registry/atc",
    "WHO ATC classification, identifiers.org / Bioregistry prefix atc",
    "https://identifiers.org/atc:",
)
ATC_BIOPORTAL = Target(
    "atc-bioportal",
    "http://purl.bioontology.org/ontology/ATC/",
    "WHO ATC classification, NCBO BioPortal edition",
    "http://purl.bioontology.org/ontology/ATC/",
)
MESH = Target("mesh", "http://id.nlm.nih.gov/mesh/", "Medical Subject Headings (MeSH), NLM", "http://id.nlm.nih.gov/mesh/")
DOID = Target(
    "doid", "http://purl.obolibrary.org/obo/doid.owl", "Human Disease Ontology (DOID)", "http://purl.obolibrary.org/obo/DOID_"
)
HPO = Target("hpo", "http://purl.obolibrary.org/obo/hp.owl", "Human Phenotype Ontology (HPO)", "http://purl.obolibrary.org/obo/HP_")
ORDO = Target(
    "ordo", "http://www.orpha.net/ORDO/", "Orphanet Rare Disease Ontology (ORDO)", "http://www.orpha.net/ORDO/Orphanet_"
)
EU_COUNTRIES = Target(
    "eu-countries",
    "http://publications.europa.eu/resource/authority/country",
    "EU Publications Office country authority table",
    EU_COUNTRY_BASE,
)
TARGETS = {
    t.key: t for t in (WIKIDATA, RXNORM, ATC_IDENTIFIERS_ORG, ATC_BIOPORTAL, MESH, DOID, HPO, ORDO, EU_COUNTRIES)
}

_M_SUBSTANCE = (
    "Name match of the active substance (or, first, the product name) to the English label, alias or "
    "WHO INN of Wikidata drug items, made by the fagan2888/ema project in 2017 (scrape/drugs.py); "
    "attached to a substance only where the product has that one substance or the combination's "
    "components could be aligned by name, the item most products name winning; ties left out."
)
_M_RXNORM = (
    "RxNorm concept that Wikidata (property P3345) gives for the name-matched Wikidata item of the "
    "substance, as recorded by the fagan2888/ema project in 2017; same placement rules as the "
    "Wikidata substance links."
)
_M_WD_COMBO = (
    "Wikidata item name-matched (by product name or the whole substance list) to a product with several "
    "substances and not one of its per-component items, from the fagan2888/ema match table of 2017; "
    "attached to the product because it cannot be told which substance it would belong to."
)
_M_RX_COMBO = (
    "RxNorm concept (multiple-ingredient or brand name) that RxNav relates to every ingredient of "
    "the combination, from the fagan2888/ema match table of 2017; otherwise the RxNorm concept of "
    "the combination's own Wikidata item."
)
_M_ATC = "Same ATC code: the IRI is minted from the code of the concept, at every level of the hierarchy."
_M_MESH = (
    "EMA's therapeutic areas are MeSH headings; each heading is looked up by its exact name (case "
    "aside) among MeSH descriptors' preferred names in data/links/mesh-therapeutic-areas.csv, "
    "made by `epar-graph links mesh-table` from a packaged MeSH descriptor list."
)


def _m_condition(what: str) -> str:
    return (
        f"Name match of the designated condition (indication without 'Treatment of' etc., normalised) to "
        f"{what}, made by the fagan2888/ema project in 2017 (orphan/match_indications.ipynb); a condition "
        "with two different matches gets none."
    )


_M_WD_CONDITION = (
    "Wikidata item that carries the DOID, Orphanet or MeSH identifier of the condition's name match "
    "(properties P699, P1550, P486), from the fagan2888/ema table of 2017; when the routes disagree the "
    "item most routes give wins and a tie gets none."
)
_M_COUNTRY = (
    "Curated table data/links/countries-wikidata.csv of ISO 3166-1 alpha-3 codes (as used by the EU "
    "country authority table) and Wikidata country items."
)


@dataclass(frozen=True)
class LinksetSpec:
    """What a link set links (``subjects``: a kind of entity), to which target, how it was made."""

    name: str
    subjects: str
    target: Target
    predicate: NamedNode
    method: str
    sources: tuple[str, ...]


SPECS: tuple[LinksetSpec, ...] = (
    LinksetSpec("wikidata-substances", "substances", WIKIDATA, SKOS.closeMatch, _M_SUBSTANCE, (SUBSTANCE_TABLE,)),
    LinksetSpec("rxnorm-substances", "substances", RXNORM, SKOS.closeMatch, _M_RXNORM, (SUBSTANCE_TABLE,)),
    LinksetSpec("wikidata-combinations", "products", WIKIDATA, SKOS.closeMatch, _M_WD_COMBO, (SUBSTANCE_TABLE,)),
    LinksetSpec("rxnorm-combinations", "products", RXNORM, SKOS.closeMatch, _M_RX_COMBO, (SUBSTANCE_TABLE,)),
    LinksetSpec("atc-identifiers-org", "atc-codes", ATC_IDENTIFIERS_ORG, SKOS.exactMatch, _M_ATC, ()),
    LinksetSpec("atc-bioportal", "atc-codes", ATC_BIOPORTAL, SKOS.exactMatch, _M_ATC, ()),
    LinksetSpec("mesh-therapeutic-areas", "therapeutic-areas", MESH, SKOS.exactMatch, _M_MESH, (MESH_TABLE,)),
    LinksetSpec(
        "doid-orphan-conditions", "orphan-conditions", DOID, SKOS.closeMatch,
        _m_condition("Human Disease Ontology labels and synonyms"), (DESIGNATION_TABLE,),
    ),
    LinksetSpec(
        "hpo-orphan-conditions", "orphan-conditions", HPO, SKOS.closeMatch,
        _m_condition("Human Phenotype Ontology labels and synonyms"), (DESIGNATION_TABLE,),
    ),
    LinksetSpec(
        "ordo-orphan-conditions", "orphan-conditions", ORDO, SKOS.closeMatch,
        _m_condition("Orphanet (ORDO) preferred labels and synonyms"), (DESIGNATION_TABLE,),
    ),
    LinksetSpec(
        "mesh-orphan-conditions", "orphan-conditions", MESH, SKOS.closeMatch,
        _m_condition("MeSH descriptor headings and entry terms"), (DESIGNATION_TABLE,),
    ),
    LinksetSpec(
        "wikidata-orphan-conditions", "orphan-conditions", WIKIDATA, SKOS.closeMatch, _M_WD_CONDITION,
        (DESIGNATION_TABLE,),
    ),
    LinksetSpec("wikidata-countries", "countries", WIKIDATA, SKOS.exactMatch, _M_COUNTRY, (COUNTRY_TABLE,)),
    LinksetSpec(
        "wikidata-refresh-products", "products", WIKIDATA, SKOS.closeMatch,
        "Wikidata items whose 'European Medicines Agency product number' (P3637) is the product's number, "
        "from `epar-graph links refresh` (data/links/wikidata-refresh.csv); only where one item answers.",
        (REFRESH_TABLE,),
    ),
    LinksetSpec(
        "wikidata-refresh-substances", "substances", WIKIDATA, SKOS.closeMatch,
        "Wikidata items whose English label is the substance name (or, for a single-substance product, "
        "its INN), from `epar-graph links refresh` (data/links/wikidata-refresh.csv); only where one "
        "item answers.",
        (REFRESH_TABLE,),
    ),
    LinksetSpec(
        "wikidata-refresh-atc", "atc-codes", WIKIDATA, SKOS.closeMatch,
        "The Wikidata item that carries the ATC code (P267), from `epar-graph links refresh` "
        "(data/links/wikidata-refresh.csv); only where one item answers.",
        (REFRESH_TABLE,),
    ),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class Linkset:
    """One link set: one target, one predicate, one method; dumped as ``links-<name>.nt``."""

    name: str
    target: str
    target_title: str
    predicate: NamedNode
    method: str
    source_files: tuple[Path, ...]
    triples: list[Triple]


@dataclass
class LinkResult:
    """Everything the link stage made, and what it could not place (``notes``)."""

    linksets: list[Linkset]
    triples: list[Triple]
    notes: list[str] = field(default_factory=list)
    rejections: list[model.Rejection] = field(default_factory=list)


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


# -- orphan designations ----------------------------------------------------------------------

_PREVIOUSLY = re.compile(r"\s*\((?:previously|formerly)\s+(?P<old>[^)]*)\)\s*$", re.IGNORECASE)


def product_name_keys(name: str) -> list[str]:
    """The names a product may be called by: "Abasaglar (previously Abasria)" → abasaglar…, abasria."""
    keys = [iris.normalise_name(name)]
    if m := _PREVIOUSLY.search(name):
        keys.append(iris.normalise_name(name[: m.start()]))
        keys.extend(iris.normalise_name(old) for old in re.split(r"\s*(?:,|\band\b)\s*", m["old"]) if old)
    return [k for k in dict.fromkeys(keys) if k]


#: statuses of applications that never got an EU register number (EU/1/…)
NEVER_AUTHORISED = frozenset({"Refused", "Withdrawn application", "Not authorised"})


def match_trade_name(
    trade: lt.TradeName, index: Mapping[str, set[str]], products: Mapping[str, model.Product]
) -> tuple[str | None, list[str]]:
    """The product a designation's trade name is, or ``None`` and the candidates when not exactly one.

    Two products can share a name (an application refused, then a later one
    authorised). The trade name comes with an EU register number, which only
    an authorised product has, so never-authorised candidates are dropped; a
    remaining tie is broken by the authorisation date being the date the
    designation was implemented on, and is otherwise left unresolved.
    """
    candidates = sorted(index.get(iris.normalise_name(trade.name), set()))
    if len(candidates) > 1:
        authorised = [n for n in candidates if products[n].status not in NEVER_AUTHORISED]
        if len(authorised) > 1:
            same_day = [n for n in authorised if products[n].authorisation_date == trade.implemented_on]
            authorised = same_day or authorised
        if len(authorised) == 1:
            return authorised[0], candidates
    return (candidates[0] if len(candidates) == 1 else None), candidates


def _designation_key(number: str) -> tuple[int, ...]:
    return tuple(int(x) for x in number.split("/")[2:])


def _literal_date(value: object) -> Literal:
    return Literal(str(value), datatype=XSD.date)


def _link_designations(
    products: Sequence[model.Product],
    rows: Iterable[lt.DesignationRow],
    mint: Minter,
    out: _Links,
    triples: dict[Triple, None],
    notes: list[str],
) -> None:
    def add(s: NamedNode, p: NamedNode, o: NamedNode | Literal) -> None:
        triples[Triple(s, p, o)] = None

    index: dict[str, set[str]] = defaultdict(set)
    for p in products:
        for key in product_name_keys(p.name):
            index[key].add(p.product_number)
    holders = {mint.organisation(p.holder) for p in products if p.holder}
    by_number = {p.product_number: p for p in products}
    scheme = NamedNode(mint.scheme(ORPHAN_SCHEME))
    add(scheme, RDF.type, SKOS.ConceptScheme)
    add(scheme, RDFS.label, Literal(ORPHAN_SCHEME_LABEL, language="en"))

    concepts: dict[str, str] = {}
    matches: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    wd_routes: dict[str, set[tuple[str, str]]] = defaultdict(set)
    sponsors: set[str] = set()
    for row in sorted(rows, key=lambda r: _designation_key(r.number)):
        node = NamedNode(mint.orphan_designation(row.number))
        add(node, RDF.type, EPAR.OrphanDesignation)
        add(node, RDFS.label, Literal(f"Orphan designation {row.number}", language="en"))
        add(node, EPAR.designationNumber, Literal(row.number))
        add(node, DCTERMS.description, Literal(f"{row.product}: {row.indication}", language="en"))
        if row.date:
            add(node, EPAR.designationDate, _literal_date(row.date.isoformat()))
        concept_iri = mint.concept(ORPHAN_SCHEME, row.condition)
        concept = NamedNode(concept_iri)
        add(node, EPAR.orphanCondition, concept)
        if concept_iri not in concepts:
            concepts[concept_iri] = row.condition
            label = Literal(row.condition, language="en")
            add(concept, RDF.type, SKOS.Concept)
            add(concept, RDFS.label, label)
            add(concept, SKOS.prefLabel, label)
            add(concept, SKOS.inScheme, scheme)
            add(concept, SKOS.topConceptOf, scheme)
            add(scheme, SKOS.hasTopConcept, concept)
        for target, value in (("doid", row.doid), ("hpo", row.hpo), ("ordo", row.ordo), ("mesh", row.mesh)):
            if value:
                matches[concept_iri][target].add(value)
        for route, qid in (("doid", row.wikidata_via_doid), ("ordo", row.wikidata_via_ordo),
                           ("mesh", row.wikidata_via_mesh)):
            if qid:
                wd_routes[concept_iri].add((route, qid))
        if row.sponsor:
            org_iri = mint.organisation(row.sponsor)
            org = NamedNode(org_iri)
            add(node, EPAR.sponsor, org)
            if org_iri not in holders and org_iri not in sponsors:
                # holders are described by the graph stage; a sponsor gets one name, the first seen
                sponsors.add(org_iri)
                add(org, RDF.type, EPAR.Organisation)
                add(org, RDFS.label, Literal(row.sponsor))
                add(org, SCHEMA.name, Literal(row.sponsor))
        if row.trade:
            number, candidates = match_trade_name(row.trade, index, by_number)
            if number:
                prod = NamedNode(mint.product(number))
                add(node, EPAR.designatedProduct, prod)
                add(prod, EPAR.orphanDesignation, node)
            elif candidates:
                notes.append(
                    f"designation {row.number}: trade name {row.trade.name!r} fits several products "
                    f"({', '.join(candidates)}); not linked"
                )
            else:
                notes.append(
                    f"designation {row.number}: trade name {row.trade.name!r} ({row.trade.eu_number}) "
                    "matches no product in the data"
                )

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
    products: list[model.Product], mint: Minter, data_dir: Path = config.DATA_DIR
) -> LinkResult:
    """Make every link set for ``products`` from the link tables under ``data_dir``.

    Raises :class:`~epar_graph.read.link_tables.LinkTableError` when a required
    table is missing or unusable; bad rows become ``rejections``.
    """
    by_number = {p.product_number: p for p in products}
    out = _Links()
    extra: dict[Triple, None] = {}
    notes: list[str] = []
    rejections: list[model.Rejection] = []

    substances = lt.read_substance_matches(data_dir / SUBSTANCE_TABLE)
    designations = lt.read_designations(data_dir / DESIGNATION_TABLE)
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
    _link_designations(products, designations.rows, mint, out, extra, notes)
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
    return LinkResult(linksets, list(extra), notes, rejections)


def build_linksets(
    products: list[model.Product], mint: Minter, data_dir: Path = config.DATA_DIR
) -> tuple[list[Linkset], list[Triple]]:
    """The link sets, and the entity triples that belong in the main graph.

    The entity triples describe the orphan designations (with their condition
    concepts and sponsor organisations) and the product↔designation edges.
    """
    result = link_products(products, mint, data_dir)
    return result.linksets, result.triples


# -- VoID ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str | None:
    """The file's checksum, or None when it cannot be read (the description then has none)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def void_description(linksets: Iterable[Linkset], mint: Minter, dataset: str | None = None) -> list[Triple]:
    """``void:Linkset`` descriptions of ``linksets`` (no blank nodes).

    Each link set is a subset of the dataset (``mint.dataset()`` unless
    ``dataset`` says otherwise) with its subjects' and objects' targets, link
    predicate, size, dump, method (``dcterms:description``) and the source
    files it was made from, each with its SHA-256.
    """
    ds = NamedNode(dataset or mint.dataset())
    out: dict[Triple, None] = {}

    def add(s: NamedNode, p: NamedNode, o: NamedNode | Literal) -> None:
        out[Triple(s, p, o)] = None

    def describe_target(t: Target) -> NamedNode:
        node = NamedNode(t.iri)
        add(node, RDF.type, VOID.Dataset)
        add(node, RDFS.label, Literal(t.title, language="en"))
        add(node, DCTERMS.title, Literal(t.title, language="en"))
        add(node, VOID.uriSpace, Literal(t.uri_space))
        return node

    for ls in linksets:
        spec = SPEC_BY_NAME.get(ls.name)
        node = NamedNode(mint.linkset(ls.name))
        target = NamedNode(ls.target)
        if spec is not None and spec.target.iri == ls.target:
            describe_target(spec.target)
        subjects = describe_target(EU_COUNTRIES) if spec is not None and spec.subjects == "countries" else ds
        add(ds, VOID.subset, node)
        add(node, RDF.type, VOID.Linkset)
        add(node, RDFS.label, Literal(f"Links to {ls.target_title} ({ls.name})", language="en"))
        add(node, DCTERMS.title, Literal(f"Links to {ls.target_title} ({ls.name})", language="en"))
        add(node, DCTERMS.description, Literal(ls.method, language="en"))
        add(node, VOID.subjectsTarget, subjects)
        add(node, VOID.objectsTarget, target)
        add(node, VOID.target, subjects)
        add(node, VOID.target, target)
        add(node, VOID.linkPredicate, ls.predicate)
        add(node, VOID.triples, Literal(str(len(ls.triples)), datatype=XSD.integer))
        add(node, VOID.dataDump, NamedNode(mint.download(f"links-{ls.name}.nt")))
        for path in ls.source_files:
            src = NamedNode(mint.source(path.name))
            add(node, DCTERMS.source, src)
            add(src, RDFS.label, Literal(path.name))
            digest = _sha256(path)
            if digest:
                checksum = NamedNode(src.value + "#sha256")
                add(src, SPDX.checksum, checksum)
                add(checksum, RDF.type, SPDX.Checksum)
                add(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256)
                add(checksum, SPDX.checksumValue, Literal(digest, datatype=XSD.hexBinary))
    return list(out)


# -- coverage -----------------------------------------------------------------------------------


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
    products: Iterable[model.Product], mint: Minter, entity_triples: Iterable[Triple] = ()
) -> Entities:
    """The entities the graph stage mints for ``products``, plus the designations in ``entity_triples``."""
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
    labels: dict[str, str] = {}
    designations: set[str] = set()
    conditions: set[str] = set()
    for t in entity_triples:
        if not isinstance(t.subject, NamedNode):
            continue
        s, pred, o = t.subject.value, t.predicate, t.object
        if pred == RDFS.label and isinstance(o, Literal):
            _keep(labels, s, o.value)
        elif pred == RDF.type and o == EPAR.OrphanDesignation:
            designations.add(s)
        elif pred == EPAR.orphanCondition and isinstance(o, NamedNode):
            conditions.add(o.value)
        elif pred == EPAR.designatedProduct:
            ents.designated.add(s)
    ents.orphan_designations = {d: labels.get(d, d) for d in designations}
    ents.orphan_conditions = {c: labels.get(c, c) for c in conditions}
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
    entity_triples: Iterable[Triple] = (),
    notes: Iterable[str] = (),
) -> CoverageReport:
    """Shares of products, substances, ATC codes, conditions and holders linked, per target."""
    ents = entities_from_products(products, mint or Minter(), entity_triples)
    return coverage_of(ents, linked_subjects(linksets), notes)


def linkset_name(path: Path) -> str | None:
    """``links-wikidata-substances.nt`` → ``wikidata-substances``."""
    name = path.name
    if name.startswith("links-") and name.endswith(".nt"):
        return name[len("links-") : -len(".nt")]
    return None


# -- the MeSH table of therapeutic areas --------------------------------------------------------


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
