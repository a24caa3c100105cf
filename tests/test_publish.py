"""The streaming writers of a release give the bytes the whole-graph functions give.

The build writes N-Triples through sorted runs and makes the JSON-LD, its
context and the VoID counts from the sorted lines, never holding the graph
twice; :func:`publish.sorted_ntriples`, :func:`publish.compact_jsonld`,
:func:`publish.jsonld_context` and :func:`publish.void_triples` on the triples
are the reference.
"""

from __future__ import annotations

import datetime as dt
import gc
import gzip
from pathlib import Path

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyoxigraph import Literal, NamedNode, Triple

from epar_graph import config, publish, release
from epar_graph.graph import Lines, build_triples, ntriples_line
from epar_graph.iris import Minter
from epar_graph.model import merge_sources
from epar_graph.namespaces import XSD
from epar_graph.pipeline import build
from epar_graph.read import read_source

REPORT = config.DATA_DIR / "ema-medicines-report-2026-03-14.xlsx"


@pytest.fixture(scope="module")
def graph() -> set[Triple]:
    """The graph of EMA's report of March 2026, with literals that need escaping added."""
    triples = build_triples(merge_sources([read_source(REPORT).for_merge()]), Minter())
    odd = NamedNode(Minter().product("odd"))
    p = NamedNode("https://w3id.org/epar/ontology#commonName")
    for text in ['quote " and \\ backslash', "new\nline\r\ttab", "bell \x07 del \x7f", "λ 😀 \u2028", '"', ""]:
        triples.add(Triple(odd, p, Literal(text)))
        triples.add(Triple(odd, p, Literal(text, language="en-gb")))
    triples.add(Triple(odd, p, Literal("7", datatype=NamedNode("urn:x:custom"))))
    return triples


def lines(triples: set[Triple]) -> Lines:
    return Lines(ntriples_line(t) for t in triples)


def test_sorted_lines_give_the_sorted_ntriples(graph: set[Triple], tmp_path: Path) -> None:
    expected = publish.sorted_ntriples(graph)
    unsorted = lines(graph)
    publish.write_sorted_lines(tmp_path / "epar.nt", unsorted, batch=5000)
    assert (tmp_path / "epar.nt").read_bytes() == expected
    assert not unsorted  # emptied on the way
    assert [p.name for p in tmp_path.iterdir()] == ["epar.nt"]


def test_sorted_lines_gzipped_give_the_same_bytes(graph: set[Triple], tmp_path: Path) -> None:
    publish.write_bytes(tmp_path / "whole.nt.gz", publish.sorted_ntriples(graph), gz=True)
    publish.write_sorted_lines(tmp_path / "epar.nt.gz", lines(graph), gz=True, batch=20000)
    assert (tmp_path / "epar.nt.gz").read_bytes() == (tmp_path / "whole.nt.gz").read_bytes()
    assert list(publish.read_lines(tmp_path / "epar.nt.gz")) == gzip.decompress(
        (tmp_path / "whole.nt.gz").read_bytes()
    ).splitlines(keepends=True)


def test_turtle_streamed_from_the_sorted_lines_is_the_turtle_of_the_graph(graph: set[Triple], tmp_path: Path) -> None:
    publish.write_sorted_lines(tmp_path / "epar.nt", lines(graph))
    publish.write_turtle(tmp_path / "epar.ttl", publish.read_ntriples(tmp_path / "epar.nt"))
    assert (tmp_path / "epar.ttl").read_bytes() == publish.turtle(graph)
    publish.write_turtle(tmp_path / "empty.ttl", [])
    assert (tmp_path / "empty.ttl").read_bytes() == publish.turtle([])


def test_turtle_of_a_dump_that_cannot_be_read_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        publish.write_turtle(tmp_path / "epar.ttl", publish.read_ntriples(tmp_path / "missing.nt"))
    assert list(tmp_path.iterdir()) == []


def test_an_empty_graph_writes_an_empty_file(tmp_path: Path) -> None:
    publish.write_sorted_lines(tmp_path / "epar.nt", Lines())
    assert (tmp_path / "epar.nt").read_bytes() == b""


def test_jsonld_context_and_counts_from_lines(graph: set[Triple], tmp_path: Path) -> None:
    publish.write_sorted_lines(tmp_path / "epar.nt", lines(graph))
    ordered = list(publish.read_ntriples(tmp_path / "epar.nt"))
    stats, context = publish.stats_and_context(publish.read_lines(tmp_path / "epar.nt"))
    assert context == publish.jsonld_context(ordered)
    reference = publish.graph_stats(graph)
    assert stats.triples == reference.triples == len(graph)
    assert sorted(stats.subjects) == reference.subjects
    assert stats.predicates == reference.predicates
    assert stats.classes == reference.classes

    whole = publish.compact_jsonld(ordered, context, presorted=True)
    publish.write_json(tmp_path / "whole.jsonld", whole, pretty=False)
    publish.write_jsonld(
        tmp_path / "epar.jsonld", context, publish.jsonld_lines(publish.read_lines(tmp_path / "epar.nt"), context)
    )
    assert (tmp_path / "epar.jsonld").read_bytes() == (tmp_path / "whole.jsonld").read_bytes()

    built = dt.datetime(2026, 3, 14, 6, 0, tzinfo=dt.UTC)
    files = {"epar.nt": tmp_path / "epar.nt"}
    assert publish.void_triples(Minter(), stats, [], files, built) == publish.void_triples(
        Minter(), graph, [], files, built
    )


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    lang=st.sampled_from([None, "en", "en-gb", "zh"]),
    datatype=st.sampled_from([None, XSD.date.value, "urn:x:custom"]),
)
def test_split_line_reads_back_what_pyoxigraph_writes(text: str, lang: str | None, datatype: str | None) -> None:
    if lang:
        obj = Literal(text, language=lang)
    elif datatype:
        obj = Literal(text, datatype=NamedNode(datatype))
    else:
        obj = Literal(text)
    line = pyoxigraph.serialize([Triple(NamedNode("urn:x:s"), NamedNode("urn:x:p"), obj)],
                                format=pyoxigraph.RdfFormat.N_TRIPLES)
    assert line is not None
    s, p, o = publish.split_line(line)
    assert (s, p) == ("urn:x:s", "urn:x:p")
    if lang:
        assert o == ("@lang", text, lang)
    else:
        assert o == (datatype or XSD.string.value, text)


def test_split_line_cuts_every_line_as_the_full_pattern_reads_it(graph: set[Triple]) -> None:
    data = publish.sorted_ntriples(graph)
    for line in data.splitlines(keepends=True):
        assert publish.split_line(line) == publish._split_line_fully(line.decode("utf-8"))
        parts = publish.cut_line(line)
        assert parts is not None and (parts[0].decode(), parts[1].decode()) == publish.split_line(line)[:2]
    assert publish.cut_line(b'_:b <urn:x:p> "x" .\n') is None
    iri_object = b"<urn:x:s> <urn:x:p> <urn:x:o> .\n"
    assert publish.split_line(iri_object) == ("urn:x:s", "urn:x:p", ("@id", "urn:x:o"))


def test_split_line_refuses_blank_nodes() -> None:
    with pytest.raises(ValueError):
        publish.split_line(b'_:b <urn:x:p> "x" .\n')


def test_build_gives_the_collector_back(tmp_path: Path) -> None:
    """The build turns Python's cycle collector off for speed, and on again when done, even on failure."""
    assert gc.isenabled()
    build([config.DATA_DIR / "medpath" / "alofisel.txt"], tmp_path / "dist")
    assert gc.isenabled()
    with pytest.raises(release.NotARelease):
        (tmp_path / "not-a-release").mkdir()
        (tmp_path / "not-a-release" / "notes.txt").write_text("keep", encoding="utf-8")
        build([config.DATA_DIR / "medpath" / "alofisel.txt"], tmp_path / "not-a-release")
    assert gc.isenabled()
