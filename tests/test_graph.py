"""The graph stage: concepts minted once, ATC hierarchy, document types and procedures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from pyoxigraph import Literal, NamedNode, Triple

from epar_graph.graph import (
    Lines,
    as_triples,
    atc_ancestors,
    atcvet_ancestors,
    build_graphs,
    build_triples,
    document_type,
    procedure_number,
    section_label,
    title_procedure,
)
from epar_graph.iris import Minter
from epar_graph.links.sets import DESIGNATION_TABLE
from epar_graph.model import Address, DocumentListing, Product, place_designations
from epar_graph.namespaces import EPAR, RDF, RDFS, SCHEMA, SKOS, XSD
from epar_graph.read.link_tables import read_designations

BASE = "https://example.org/epar/"
MINT = Minter(BASE)


def product(number: str, **kw: object) -> Product:
    return Product(number, kw.pop("name", f"Medicine {number[-6:]}"), **kw)  # type: ignore[arg-type]


def test_atc_ancestors_follow_the_code() -> None:
    assert atc_ancestors("L04AX08") == ["L04AX08", "L04AX", "L04A", "L04", "L"]
    assert atc_ancestors("l04") == ["L04", "L"]


@given(st.from_regex(r"[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}", fullmatch=True))
def test_every_atc_ancestor_is_a_prefix(code: str) -> None:
    chain = atc_ancestors(code)
    assert chain[0] == code and chain[-1] == code[0]
    assert all(code.startswith(level) for level in chain)
    assert len(chain) == len(set(chain)) == 5


def test_atcvet_ancestors_follow_the_code() -> None:
    assert atcvet_ancestors("QJ01CA04") == ["QJ01CA04", "QJ01CA", "QJ01C", "QJ01", "QJ"]
    assert atcvet_ancestors("qi04aa02") == ["QI04AA02", "QI04AA", "QI04A", "QI04", "QI"]


@given(st.from_regex(r"Q[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}", fullmatch=True))
def test_every_atcvet_ancestor_is_a_prefix(code: str) -> None:
    chain = atcvet_ancestors(code)
    assert chain[0] == code and chain[-1] == code[:2]
    assert all(code.startswith(level) for level in chain)
    assert len(chain) == len(set(chain)) == 5


def test_latest_procedure_gets_its_full_number() -> None:
    assert procedure_number("EMEA/H/C/004258", "II/0044/G") == "EMEA/H/C/004258/II/0044/G"
    assert procedure_number("EMEA/H/C/004258", "EMEA/H/C/004258/II/0044/G") == "EMEA/H/C/004258/II/0044/G"


def test_veterinary_product_facts() -> None:
    triples = build_triples(
        [product("EMEA/V/C/006821", category="Veterinary", atcvet_codes=("QI04AA02",),
                 target_species=("Sheep", "Cattle"), latest_procedure="IB/0001")],
        MINT,
    )
    prod = NamedNode(MINT.product("EMEA/V/C/006821"))
    objects = {(t.predicate, t.object) for t in triples if t.subject == prod}
    assert (EPAR.category, NamedNode(MINT.concept("category", "Veterinary"))) in objects
    assert (EPAR.atcVetCode, NamedNode(MINT.concept("atcvet", "QI04AA02"))) in objects
    assert {o for p, o in objects if p == EPAR.targetSpecies} == {
        NamedNode(MINT.concept("species", s)) for s in ("Sheep", "Cattle")
    }
    latest = NamedNode(MINT.procedure("EMEA/V/C/006821/IB/0001"))
    assert any(t.predicate == EPAR.latestProcedure and t.object == latest for t in triples)
    qi = NamedNode(MINT.concept("atcvet", "QI"))
    assert any(t.subject == qi and t.predicate == SKOS.topConceptOf for t in triples)


@given(st.from_regex(r"[A-Z][a-z]{2,12}( [A-Z][a-z]{2,12}){0,2}", fullmatch=True),
       st.sampled_from([("Ltd", "Limited"), ("Ltd.", "Limited"), ("SA", "S.A."), ("B.V.", "BV"),
                        ("Corp", "Corporation")]))
def test_one_legal_form_spelled_two_ways_is_one_organisation(name: str, forms: tuple[str, str]) -> None:
    a, b = (MINT.organisation(f"{name} {form}") for form in forms)
    assert a == b
    assert MINT.organisation(f"{name} Inc") != a  # another legal form, another company


def test_one_concept_per_atc_code_across_products() -> None:
    triples = build_triples(
        [product("EMEA/H/C/000001", atc_codes=("L04AX08",)), product("EMEA/H/C/000002", atc_codes=("L04AX01",))],
        MINT,
    )
    l04 = NamedNode(MINT.concept("atc", "L04"))
    assert sum(1 for t in triples if t.subject == l04 and t.predicate == RDF.type) == 1
    narrower = {t.object for t in triples if t.subject == NamedNode(MINT.concept("atc", "L04AX"))
                and t.predicate == SKOS.narrower}
    children = {NamedNode(MINT.concept("atc", code)) for code in ("L04AX08", "L04AX01")}
    assert narrower == children


def test_document_types_from_titles() -> None:
    assert document_type("Alofisel : EPAR - Public assessment report")[0] == "public-assessment-report"
    assert document_type("Alofisel-H-C-004258-II-0051-G : EPAR - Assessment report - Variation")[0] == (
        "variation-assessment-report")
    assert document_type("CHMP summary of positive opinion for Alofisel")[0] == "chmp-summary-of-opinion"
    assert document_type("Alofisel : EPAR - Risk-management-plan summary")[0] == "risk-management-plan-summary"
    assert document_type("Something else entirely")[0] == "other-document"


def test_procedure_from_title() -> None:
    assert title_procedure("Alofisel-H-C-004258-II-0051-G : EPAR - Assessment report - Variation") == (
        "EMEA/H/C/004258/II/0051/G")
    assert title_procedure("Alofisel : EPAR - Public assessment report") is None


def test_section_label() -> None:
    assert section_label("CHANGES_SINCE_INITIAL_AUTHORISATION") == "Changes since initial authorisation"


def test_same_title_and_date_in_two_sections_is_one_document() -> None:
    day = dt.date(2018, 4, 3)
    docs = (
        DocumentListing("X : EPAR - Public assessment report", day, "A_SECTION"),
        DocumentListing("X : EPAR - Public assessment report", day, "B_SECTION"),
        DocumentListing("X : EPAR - Public assessment report", dt.date(2019, 1, 1), "A_SECTION"),
    )
    triples = build_triples([product("EMEA/H/C/000003", documents=docs)], MINT)
    documents = {t.object for t in triples if t.predicate == EPAR.document}
    assert len(documents) == 2
    sections = [t for t in triples if t.predicate == EPAR.documentSection]
    assert len(sections) == 3


def test_holders_with_spelling_variants_share_a_node() -> None:
    triples = build_triples(
        [
            product("EMEA/H/C/000004", holder="Takeda Pharma A/S"),
            product("EMEA/H/C/000005", holder="TAKEDA PHARMA A/S", holder_address=Address(country_code="DNK")),
        ],
        MINT,
    )
    holders = {t.object for t in triples if t.predicate == EPAR.holder}
    assert holders == {NamedNode(MINT.organisation("Takeda Pharma A/S"))}


def test_no_blank_nodes_and_every_subject_labelled() -> None:
    p = product(
        "EMEA/H/C/000006",
        status="Authorised",
        active_substances=("a", "b"),
        therapeutic_areas=("Diabetes Mellitus",),
        pharmacotherapeutic_group={"en": "Drugs used in diabetes"},
        holder="Lab", holder_address=Address("1 Road", "1000", "Town", "BEL", "Belgium"),
    )
    triples = build_triples([p], MINT)
    assert all(isinstance(t.subject, NamedNode) and not isinstance(t.object, tuple) for t in triples)
    subjects = {t.subject for t in triples}
    labelled = {t.subject for t in triples if t.predicate.value.endswith("#label")}
    assert subjects == labelled
    assert any(t.object == Literal("false", datatype=NamedNode("http://www.w3.org/2001/XMLSchema#boolean"))
               for t in build_triples([product("EMEA/H/C/000007", is_generic=False)], MINT))


# -- orphan designations ----------------------------------------------------------------------

LINK_TABLES = Path(__file__).parent / "data" / "links"


def designation_graph() -> tuple[list[Product], set[Triple]]:
    """The fixture designation table through read → model → graph, with products some designations became."""
    products = [
        product("EMEA/H/C/002616", name="Wakix", holder="Bioprojet Pharma", status="Authorised"),
        product("EMEA/H/C/000773", name="Yondelis", status="Authorised",
                authorisation_date=dt.date(2007, 9, 17)),
        product("EMEA/H/C/000464", name="Yondelis", status="Refused"),
    ]
    table = read_designations(LINK_TABLES / DESIGNATION_TABLE)
    placed, _ = place_designations((r.designation for r in table.rows), products)
    current, _ = build_graphs(products, [], MINT, placed)
    return products, as_triples(current)


def facts(triples: set[Triple], iri: str) -> set[tuple[str, object]]:
    return {(t.predicate.value, t.object) for t in triples if t.subject.value == iri}


def test_orphan_designation_is_an_entity_with_condition_sponsor_and_medicine() -> None:
    _, triples = designation_graph()
    d = MINT.orphan_designation("EU/3/07/459")
    got = facts(triples, d)
    assert (RDF.type.value, EPAR.OrphanDesignation) in got
    assert (EPAR.designationNumber.value, Literal("EU/3/07/459")) in got
    assert (EPAR.designationDate.value, Literal("2007-07-10", datatype=XSD.date)) in got
    assert (RDFS.label.value, Literal("Orphan designation EU/3/07/459", language="en")) in got
    condition = MINT.concept("orphan-condition", "narcolepsy")
    assert (EPAR.orphanCondition.value, NamedNode(condition)) in got
    assert (EPAR.sponsor.value, NamedNode(MINT.organisation("Bioprojet Pharma"))) in got
    # Wakix (WakixEU/1/15/106804/04/2016) is product EMEA/H/C/002616, linked both ways
    assert (EPAR.designatedProduct.value, NamedNode(MINT.product("EMEA/H/C/002616"))) in got
    assert (EPAR.orphanDesignation.value, NamedNode(d)) in facts(triples, MINT.product("EMEA/H/C/002616"))
    c = facts(triples, condition)
    assert (SKOS.prefLabel.value, Literal("narcolepsy", language="en")) in c
    assert (SKOS.inScheme.value, NamedNode(MINT.scheme("orphan-condition"))) in c


def test_a_sponsor_is_described_once_and_a_holder_only_by_its_products() -> None:
    _, triples = designation_graph()
    holder = facts(triples, MINT.organisation("Bioprojet Pharma"))
    assert [o for p, o in holder if p == RDFS.label.value] == [Literal("Bioprojet Pharma")]
    assert facts(triples, MINT.organisation("CTI Life Sciences Ltd")) == {
        (RDF.type.value, EPAR.Organisation),
        (RDFS.label.value, Literal("CTI Life Sciences Ltd")),
        (SCHEMA.name.value, Literal("CTI Life Sciences Ltd")),
    }


def test_no_designations_no_orphan_scheme() -> None:
    current, _ = build_graphs([product("EMEA/H/C/000001")], [], MINT)
    assert not any(t.subject.value == MINT.scheme("orphan-condition") for t in as_triples(current))


_IRI_TEXT = st.text(alphabet="ab/:-é😀", max_size=6)


@given(st.lists(st.tuples(_IRI_TEXT, _IRI_TEXT, st.one_of(_IRI_TEXT.map(lambda t: NamedNode(f"urn:o:{t}")),
                                                          st.text(max_size=5).map(Literal))), max_size=40))
def test_lines_kept_by_subject_drain_in_the_order_of_the_sorted_lines(
    rows: list[tuple[str, str, NamedNode | Literal]],
) -> None:
    """Subjects that are prefixes of one another ("urn:s:a" and "urn:s:a/b") still come out in line order."""
    lines = {f"{NamedNode('urn:s:' + s)} {NamedNode('urn:p:' + p)} {o} ." for s, p, o in rows}
    kept = Lines(lines)
    assert len(kept) == len(lines)
    assert sorted(kept) == sorted(lines)
    drained = [f"{subject} {rest}" for subject, rests in kept.drain_sorted() for rest in rests]
    assert drained == sorted(lines)
    assert not kept.by_subject
