"""The example queries of ``queries/`` answer their question on the bundled build.

The session's one build of the bundled data (tests/conftest.py), loaded into an
in-memory pyoxigraph store; every example must carry its title and
description, and every one that needs no remote endpoint must return rows
whose columns are all filled.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph
import pytest
from pyoxigraph import Literal, RdfFormat, Store

from epar_graph import config
from epar_graph.serve.ui import Example, load_examples

EXAMPLES = load_examples(config.QUERIES_DIR)
BY_NAME = {e.name: e for e in EXAMPLES}
_SERVICE = re.compile(r"^[^#\n]*\bSERVICE\b", re.IGNORECASE | re.MULTILINE)


def is_federated(example: Example) -> bool:
    """A query with a SERVICE clause needs a remote endpoint (tests/test_links_refresh.py runs those
    against a local stand-in); everything else must answer from the bundled build alone."""
    return bool(_SERVICE.search(example.query))


LOCAL = [e for e in EXAMPLES if not is_federated(e)]


@pytest.fixture(scope="session")
def bundled_store(bundled_release: Path) -> Store:
    """The session's bundled build (tests/conftest.py) in an in-memory store."""
    out = bundled_release
    store = Store()
    for dump in [out / "epar.nt", *sorted(out.glob("links-*.nt")), out / "changes.nt"]:
        store.bulk_load(path=str(dump), format=RdfFormat.N_TRIPLES)
    return store


def rows(store: Store, example: Example) -> list[dict[str, pyoxigraph.NamedNode | Literal]]:
    result = store.query(example.query)
    assert isinstance(result, pyoxigraph.QuerySolutions), f"{example.name} is not a SELECT"
    names = [v.value for v in result.variables]
    out = []
    for solution in result:
        row = {}
        for name in names:
            term = solution[name]
            if term is not None:
                row[name] = term
        out.append(row)
    return out


def number(term: object) -> int:
    assert isinstance(term, Literal)
    return int(term.value)


def test_there_are_at_least_twelve_examples_with_titles_and_descriptions() -> None:
    assert len(LOCAL) >= 12
    for e in EXAMPLES:
        assert e.title and e.description, e.name
        assert e.query.lstrip().startswith("# title:"), e.name
    assert len({e.title for e in EXAMPLES}) == len(EXAMPLES)


@pytest.mark.parametrize("example", LOCAL, ids=[e.name for e in LOCAL])
def test_example_returns_rows_with_every_column_used(bundled_store: Store, example: Example) -> None:
    result = bundled_store.query(example.query)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    variables = [v.value for v in result.variables]
    found = rows(bundled_store, example)
    assert found, f"{example.name} returned no rows on the bundled build"
    for var in variables:
        assert any(var in row for row in found), f"{example.name}: column ?{var} is never bound"


def count(store: Store, sparql: str) -> int:
    result = store.query(sparql)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    return sum(number(s[0]) for s in result)


PREFIXES = """PREFIX epar: <https://w3id.org/epar/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""


def test_status_counts_add_up_to_the_products(bundled_store: Store) -> None:
    per_status = rows(bundled_store, BY_NAME["12-medicines-per-status"])
    total = count(bundled_store, PREFIXES + "SELECT (COUNT(?p) AS ?n) { ?p a epar:MedicinalProduct }")
    assert sum(number(r["medicines"]) for r in per_status) == total
    assert {r["status"].value for r in per_status} >= {"Authorised", "Withdrawn", "Refused"}


def test_withdrawn_by_year_counts_every_dated_withdrawn_medicine(bundled_store: Store) -> None:
    by_year = rows(bundled_store, BY_NAME["01-withdrawn-by-year"])
    expected = count(
        bundled_store,
        PREFIXES + """SELECT (COUNT(DISTINCT ?p) AS ?n) {
          ?p epar:authorisation ?a . ?a epar:authorisationStatus/skos:notation "Withdrawn" ;
          epar:authorisationDate ?d }""",
    )
    assert sum(number(r["withdrawn"]) for r in by_year) == expected
    assert sum(number(r["withKnownWithdrawalDate"]) for r in by_year) >= 1  # Alofisel


def test_atc_groups_are_first_level_codes(bundled_store: Store) -> None:
    groups = rows(bundled_store, BY_NAME["03-medicines-per-atc-group"])
    codes = [r["code"].value for r in groups]
    assert all(len(c) == 1 and c.isalpha() for c in codes), codes
    assert "L" in codes


def test_documents_of_alofisel_are_sorted_by_date(bundled_store: Store) -> None:
    docs = rows(bundled_store, BY_NAME["05-documents-of-a-product"])
    dates = [r["date"].value for r in docs if "date" in r]
    assert len(docs) >= 5
    assert dates == sorted(dates)


def test_combination_medicines_have_several_substances(bundled_store: Store) -> None:
    combos = rows(bundled_store, BY_NAME["11-combination-medicines"])
    for r in combos:
        assert number(r["substances"]) > 1
        assert r["composition"].value.count(" + ") == number(r["substances"]) - 1


def test_questions_come_in_page_order(bundled_store: Store) -> None:
    qa = rows(bundled_store, BY_NAME["14-questions-about-a-product"])
    positions = [number(r["position"]) for r in qa]
    assert positions == list(range(1, len(qa) + 1))

