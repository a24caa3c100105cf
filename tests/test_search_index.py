"""The search index is made from a release's N-Triples lines: only the properties it reads are parsed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyoxigraph
import pytest
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple

from epar_graph import search_index
from epar_graph.graph import build_triples
from epar_graph.history import Change, Diff, Snapshot
from epar_graph.iris import Minter
from epar_graph.model import Product
from epar_graph.namespaces import DCTERMS, SCHEMA, XSD
from epar_graph.publish import sorted_ntriples

MINT = Minter()
PRODUCTS = [
    Product("EMEA/H/C/004258", "Alofisel", active_substances=("darvadstrocel",), atc_codes=("L04AX08",),
            holder="Takeda Pharma A/S", status="Authorised", authorisation_date=dt.date(2018, 3, 23)),
    Product("EMEA/H/C/000471", "Abilify", active_substances=("aripiprazole",), common_name="aripiprazole"),
]


def lines(triples: set[Triple]) -> list[bytes]:
    return sorted_ntriples(triples).splitlines(keepends=True)


def by_iri(entries: list[search_index.Entry]) -> dict[str, search_index.Entry]:
    return {e.iri: e for e in entries}


def test_a_medicine_is_found_by_its_names_and_shows_its_facts() -> None:
    found = by_iri(search_index.entries(lines(build_triples(PRODUCTS, MINT))))
    alofisel = found[MINT.product("EMEA/H/C/004258")]
    assert alofisel.kind == search_index.MEDICINE
    assert alofisel.label == "Alofisel"
    assert ("EMEA/H/C/004258", "number") in alofisel.terms
    assert ("darvadstrocel", "substance") in alofisel.terms
    assert ("L04AX08", "atc") in alofisel.terms
    assert alofisel.facts["status"] == "Authorised"
    assert alofisel.facts["holder"] == "Takeda Pharma A/S"
    assert alofisel.facts["authorised"] == "2018-03-23"
    assert ("aripiprazole", "inn") in found[MINT.product("EMEA/H/C/000471")].terms
    kinds = {e.kind for e in found.values()}
    assert {search_index.ORGANISATION, search_index.SUBSTANCE, search_index.ATC} <= kinds


def test_lines_of_other_properties_are_skipped_unread() -> None:
    s, o = NamedNode("urn:x:s"), Literal("text")
    read = sorted_ntriples([Triple(s, SCHEMA.name, o), Triple(s, DCTERMS.description, o)])
    assert list(search_index.read_lines(read.splitlines(keepends=True))) == [
        ("urn:x:s", SCHEMA.name.value, ("http://www.w3.org/2001/XMLSchema#string", "text"))
    ]


def test_triples_noted_on_their_way_give_the_entries_their_lines_give() -> None:
    """The build notes the index's triples while the Turtle dump is written: the same entries as from the lines."""
    data = lines(build_triples(PRODUCTS, MINT))
    triples = [q.triple for q in pyoxigraph.parse(b"".join(data), format=RdfFormat.N_TRIPLES)]
    reading = search_index.Reading()
    assert list(reading.noting(triples)) == triples  # every triple goes on, in its order
    former = {"EMEA/H/C/004258": {"Cx601"}}
    assert reading.entries(former) == search_index.entries(data, former)
    assert len(reading.entries()) >= 6


def test_a_language_tagged_or_typed_object_is_noted_as_a_line_gives_it() -> None:
    s = NamedNode("urn:x:s")
    for o in (Literal("text"), Literal('quote " \\ new\nline \x07 λ 😀'), Literal("Texte", language="fr"),
              Literal("2018-03-23", datatype=XSD.date),
              NamedNode("urn:x:o")):
        triple = Triple(s, SCHEMA.name, o)
        reading = search_index.Reading()
        list(reading.noting([triple]))
        assert reading.graph.out == search_index._Graph(search_index.read_lines(lines({triple}))).out


def test_asking_for_a_property_the_index_does_not_read_is_an_error() -> None:
    graph = search_index._Graph([])
    assert graph.objects("urn:x:s", SCHEMA.name) == []
    with pytest.raises(KeyError, match="READS"):
        graph.objects("urn:x:s", DCTERMS.description)


def test_former_names_come_from_the_history() -> None:
    old = Snapshot("a.json", dt.date(2023, 6, 1), "", frozenset(), {})
    new = Snapshot("b.json", dt.date(2026, 1, 29), "", frozenset(), {})
    renamed = Change("EMEA/H/C/004258", "name", "name", ("Cx601",), ("Alofisel",), old.date, new.date)
    former = search_index.former_names([Diff(old, new, [renamed], [])])
    assert former == {"EMEA/H/C/004258": {"Cx601"}}
    found = by_iri(search_index.entries(lines(build_triples(PRODUCTS, MINT)), former))
    assert ("Cx601", "former name") in found[MINT.product("EMEA/H/C/004258")].terms


def test_the_index_file_holds_every_entry(tmp_path: Path) -> None:
    rows = search_index.entries(lines(build_triples(PRODUCTS, MINT)))
    assert search_index.write_index(tmp_path / search_index.INDEX_FILE, rows) == len(rows)
