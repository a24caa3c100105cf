"""The link sets: which knowledge bases the graph links to, with which predicate, made how.

Every link is a SKOS mapping from one of our entities to an IRI of another
knowledge base, and every group of links with one target and one predicate is
a :class:`Linkset` that the publish stage dumps as ``links-<name>.nt`` and
describes in ``void.ttl`` (see :func:`void_description`). The definitions live
apart from the matching so that the build, the VoID description and the
coverage report all read the same names, targets and method texts.

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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import Literal, NamedNode, Triple

from epar_graph import config, model
from epar_graph.files import sha256_file
from epar_graph.iris import Minter
from epar_graph.namespaces import DCTERMS, EU_COUNTRY_BASE, RDF, RDFS, SKOS, SPDX, VOID, XSD

SUBSTANCE_TABLE = "ema-medicines-2017-wikidata-rxnorm.csv"
DESIGNATION_TABLE = "eu-orphan-designations-2017-linked.csv"
MESH_TABLE = config.MESH_TABLE
COUNTRY_TABLE = "links/countries-wikidata.csv"
REFRESH_TABLE = "links/wikidata-refresh.csv"



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
    *(
        LinksetSpec(f"{name}-orphan-conditions", "orphan-conditions", target, SKOS.closeMatch,
                    _m_condition(matched_against), (DESIGNATION_TABLE,))
        for name, target, matched_against in (
            ("doid", DOID, "Human Disease Ontology labels and synonyms"),
            ("hpo", HPO, "Human Phenotype Ontology labels and synonyms"),
            ("ordo", ORDO, "Orphanet (ORDO) preferred labels and synonyms"),
            ("mesh", MESH, "MeSH descriptor headings and entry terms"),
        )
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
    notes: list[str] = field(default_factory=list)
    rejections: list[model.Rejection] = field(default_factory=list)


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


def linkset_name(path: Path) -> str | None:
    """``links-wikidata-substances.nt`` → ``wikidata-substances``."""
    name = path.name
    if name.startswith("links-") and name.endswith(".nt"):
        return name[len("links-") : -len(".nt")]
    return None
