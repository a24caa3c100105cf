"""Common prefixes predeclared, and SPARQL syntax errors a person can read (checked with pyoxigraph's parser)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import sparql_text

CLI = [sys.executable, "-m", "epar_graph.cli"]


def _error(query: str) -> str:
    prepared = sparql_text.with_common_prefixes(query)
    with pytest.raises(SyntaxError) as exc:
        pyoxigraph.Store().query(prepared.text)
    return sparql_text.explain(exc.value, prepared, query)


def test_common_prefixes_need_no_declaration() -> None:
    prepared = sparql_text.with_common_prefixes("SELECT * { ?s a epar:MedicinalProduct ; rdfs:label ?l ; wd:P31 ?x }")
    assert list(pyoxigraph.Store().query(prepared.text)) == []
    own = sparql_text.with_common_prefixes("PREFIX epar: <http://example.org/> SELECT * { ?s a epar:X }")
    assert own.text.count("PREFIX epar:") == 1  # a query's own declaration wins


def test_an_unknown_prefix_is_named_with_a_caret_under_it() -> None:
    message = _error("SELECT ?p WHERE {\n  ?p a foo:Thing .\n}")
    first, text, caret = message.splitlines()
    assert first.startswith("line 2, column ") and "unknown prefix foo:" in first
    assert text == "    ?p a foo:Thing ." and caret.index("^") == text.index("foo:")
    assert len(message) < 300 and "\\u{" not in message


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6))
def test_the_line_of_an_error_is_the_line_as_written(before: int, after: int) -> None:
    query = "\n".join(["# a comment"] * before + ["SELECT * WHERE { ?s ?p ?o } LIMIT x"] + ["# more"] * after)
    first = _error(query).splitlines()[0]
    assert first.startswith(f"line {before + 1}, column ")


def test_the_cli_prints_the_readable_error(tmp_path: Path) -> None:
    from epar_graph.pipeline import build

    out = build([Path(__file__).parents[1] / "data" / "medpath" / "alofisel.txt"], tmp_path / "dist", with_links=False)
    ok = subprocess.run([*CLI, "query", 'SELECT ?p { ?p rdfs:label "Alofisel" }', "--data", str(out.out),
                         "--format", "csv"], capture_output=True, text=True)
    assert ok.returncode == 0 and "product/EMEA-H-C-004258" in ok.stdout
    bad = subprocess.run([*CLI, "query", "SELECT ?p {\n ?p a nope:X }", "--data", str(out.out)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "line 2, column" in bad.stderr and "unknown prefix nope:" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr) < 400


_REFERENCES = st.sampled_from(["a/", "../b/", "c#", "", "http://example.org/x/y/", "/root/", "?q", "../../z/"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _REFERENCES), max_size=5), st.sampled_from(["s", "../t", "#f", ""]))
def test_the_query_s_own_base_is_resolved_as_the_parser_would(
    declarations: list[tuple[bool, str]], reference: str
) -> None:
    """Sent with one BASE, first (all Virtuoso takes), a query means what it means with its own declarations."""
    endpoint = "http://127.0.0.1:8000/sparql"
    prologue = " ".join(f"BASE <{iri}>" if is_base else f"PREFIX p{n}: <{iri}>"
                        for n, (is_base, iri) in enumerate(declarations))
    names = [f"(p{n}:e AS ?p{n})" for n, (is_base, _) in enumerate(declarations) if not is_base]
    query = f"{prologue}\nSELECT (<{reference}> AS ?x) {' '.join(names)} {{}}"
    prepared = sparql_text.with_common_prefixes(query, endpoint)
    assert prepared.text.startswith("BASE <") and prepared.text.upper().count("BASE") == 1
    (expected,) = pyoxigraph.Store().query(query, base_iri=endpoint)
    (got,) = pyoxigraph.Store().query(prepared.text)
    assert got == expected
    sent = prepared.text.split("\n")[prepared.added_lines :]
    assert sent[1:] == query.split("\n")[1:]
    if all(is_base for is_base, _ in declarations):  # a BASE becomes blanks: columns stay where they were
        assert len(sent[0]) == len(query.split("\n")[0])
