"""Every fact on the seed MedPath page (Alofisel) is in the graph, asked through SPARQL."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph
import pytest

from epar_graph import config
from epar_graph.pipeline import build

SEED = config.DATA_DIR / "medpath" / "alofisel.txt"
PREFIXES = """
PREFIX epar: <https://w3id.org/epar/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX schema: <https://schema.org/>
PREFIX dcterms: <http://purl.org/dc/terms/>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> pyoxigraph.Store:
    out = tmp_path_factory.mktemp("seed") / "dist"
    result = build([SEED], out)
    assert not result.rejections
    s = pyoxigraph.Store()
    s.bulk_load(path=str(out / "epar.nt"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return s


def rows(store: pyoxigraph.Store, query: str) -> list[tuple[str, ...]]:
    result = store.query(PREFIXES + query)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    variables = result.variables
    return [tuple(str(getattr(sol[v], "value", "")) for v in variables) for sol in result]


def one(store: pyoxigraph.Store, query: str) -> tuple[str, ...]:
    found = rows(store, query)
    assert len(found) == 1, found
    return found[0]


def test_product_and_authorisation(store: pyoxigraph.Store) -> None:
    name, number, status, authorised, withdrawn = one(store, """
        SELECT ?name ?number ?status ?authorised ?withdrawn WHERE {
          ?p a epar:MedicinalProduct ; rdfs:label ?name ; epar:authorisation ?a .
          ?a epar:productNumber ?number ; epar:authorisationStatus/skos:notation ?status ;
             epar:authorisationDate ?authorised ; epar:withdrawalDate ?withdrawn .
        }""")
    assert (name, number, status) == ("Alofisel", "EMEA/H/C/004258", "Withdrawn")
    assert (authorised, withdrawn) == ("2018-03-23", "2024-12-13")


def test_holder_with_danish_address(store: pyoxigraph.Store) -> None:
    holder, street, code, locality, country = one(store, """
        SELECT ?holder ?street ?code ?locality ?country WHERE {
          ?a epar:holder ?h . ?h a epar:Organisation ; rdfs:label ?holder ; schema:address ?addr .
          ?addr schema:streetAddress ?street ; schema:postalCode ?code ;
                schema:addressLocality ?locality ; schema:addressCountry ?country .
        }""")
    assert holder == "Takeda Pharma A/S"
    assert (street, code, locality) == ("Delta Park 45", "2665", "Vallensbaek Strand")
    assert country == "http://publications.europa.eu/resource/authority/country/DNK"


def test_substance_atc_area_group(store: pyoxigraph.Store) -> None:
    assert one(store, "SELECT ?s WHERE { ?p epar:activeSubstance/rdfs:label ?s }") == ("darvadstrocel",)
    assert one(store, "SELECT ?c WHERE { ?p epar:atcCode/skos:notation ?c }") == ("L04",)
    assert one(store, "SELECT ?t WHERE { ?p epar:therapeuticArea/skos:prefLabel ?t }") == ("Rectal Fistula",)
    labels = rows(store, """SELECT ?l (LANG(?l) AS ?lang) WHERE {
        ?p epar:pharmacotherapeuticGroup/skos:prefLabel ?l }""")
    assert sorted(labels) == [("Immunosuppressants", "en"), ("免疫抑制剂", "zh")]


def test_orphan_designation_date(store: pyoxigraph.Store) -> None:
    assert one(store, "SELECT ?d WHERE { ?p epar:orphanDesignationDate ?d }") == ("2009-10-08",)


def test_documents_nine_distinct_twelve_listings_six_sections(store: pyoxigraph.Store) -> None:
    docs = rows(store, """SELECT ?d ?title ?date WHERE {
        ?p epar:document ?d . ?d dcterms:title ?title ; dcterms:issued ?date }""")
    assert len(docs) == 9
    listings = rows(store, "SELECT ?d ?s WHERE { ?p epar:document ?d . ?d epar:documentSection ?s }")
    assert len(listings) == 12
    sections = {s for (_, s) in listings}
    codes = {c for (c,) in rows(store, "SELECT DISTINCT ?c WHERE { ?d epar:documentSection/skos:notation ?c }")}
    assert len(sections) == 6
    assert "CHANGES_SINCE_INITIAL_AUTHORISATION" in codes and "RISK_MANAGEMENT_PLAN_SUMMARY" in codes
    par = rows(store, """SELECT ?s WHERE { ?d dcterms:title "Alofisel : EPAR - Public assessment report"@en ;
        dcterms:issued "2018-04-03"^^xsd:date ; epar:documentSection/skos:notation ?s }""")
    assert sorted(par) == [("CHANGES_SINCE_INITIAL_AUTHORISATION",), ("INITIAL_MARKETING_AUTHORISATION_DOCUMENTS",)]
    assert ("Alofisel : EPAR - Risk-management-plan summary", "2019-07-29") in {(t, d) for (_, t, d) in docs}


def test_variation_procedure(store: pyoxigraph.Store) -> None:
    (number,) = one(store, """SELECT ?n WHERE {
        ?a epar:productNumber "EMEA/H/C/004258" ; epar:procedure ?proc .
        ?proc a epar:Procedure ; epar:procedureNumber ?n .
        ?doc epar:aboutProcedure ?proc ; dcterms:issued "2025-03-26"^^xsd:date . }""")
    assert number == "EMEA/H/C/004258/II/0051/G"


def test_eight_questions_with_answers(store: pyoxigraph.Store) -> None:
    qa = rows(store, """SELECT ?q ?a WHERE {
        ?p epar:overviewQuestion ?qn . ?qn a schema:Question ; schema:name ?q ;
           schema:acceptedAnswer/schema:text ?a }""")
    assert len(qa) == 8
    questions = {q for q, _ in qa}
    assert "How is Alofisel used?" in questions
    assert all(len(a) > 40 for _, a in qa)


def test_seed_build_is_deterministic(tmp_path: Path) -> None:
    a = build([SEED], tmp_path / "a")
    b = build([SEED], tmp_path / "b")
    assert (a.out / "epar.nt").read_bytes() == (b.out / "epar.nt").read_bytes()
    lines = (a.out / "epar.nt").read_bytes().splitlines()
    assert lines == sorted(lines)
