"""The model stage: orphan designations placed on the medicines they became."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from epar_graph.model import (
    OrphanDesignation,
    Product,
    TradeName,
    place_designations,
    product_name_keys,
)

WAKIX = TradeName("Wakix", "EU/1/15/1068", dt.date(2016, 4, 4))


def designation(number: str, trade: TradeName | None = WAKIX) -> OrphanDesignation:
    return OrphanDesignation(number, "pitolisant", "Treatment of narcolepsy", "narcolepsy", "Bioprojet Pharma",
                             dt.date(2007, 7, 10), trade)


def test_a_trade_name_that_fits_one_product_places_the_designation() -> None:
    placed, notes = place_designations([designation("EU/3/07/459")], [Product("EMEA/H/C/002616", "Wakix")])
    assert [d.medicine for d in placed] == ["EMEA/H/C/002616"]
    assert notes == []


def test_a_former_name_counts_as_the_products_name() -> None:
    products = [Product("EMEA/H/C/002616", "Pitolix (previously Wakix)")]
    placed, _ = place_designations([designation("EU/3/07/459")], products)
    assert placed[0].medicine == "EMEA/H/C/002616"
    assert product_name_keys("Abasaglar (previously Abasria)") == ["abasaglar previously abasria", "abasaglar",
                                                                      "abasria"]


def test_a_refused_namesake_gives_way_to_the_authorised_product() -> None:
    products = [Product("EMEA/H/C/000464", "Wakix", status="Refused"),
                Product("EMEA/H/C/000773", "Wakix", status="Authorised")]
    placed, notes = place_designations([designation("EU/3/07/459")], products)
    assert placed[0].medicine == "EMEA/H/C/000773" and notes == []


def test_two_authorised_namesakes_are_told_apart_by_the_day_of_authorisation_or_left_apart() -> None:
    a = Product("EMEA/H/C/000001", "Wakix", status="Authorised", authorisation_date=dt.date(2016, 4, 4))
    b = Product("EMEA/H/C/000002", "Wakix", status="Authorised", authorisation_date=dt.date(2017, 1, 1))
    placed, _ = place_designations([designation("EU/3/07/459")], [a, b])
    assert placed[0].medicine == "EMEA/H/C/000001"
    b.authorisation_date = a.authorisation_date
    placed, notes = place_designations([designation("EU/3/07/459")], [a, b])
    assert placed[0].medicine is None
    assert notes == ["designation EU/3/07/459: trade name 'Wakix' fits several products "
                     "(EMEA/H/C/000001, EMEA/H/C/000002); not linked"]


def test_an_unknown_trade_name_is_noted_and_a_missing_one_is_not() -> None:
    placed, notes = place_designations([designation("EU/3/07/459"), designation("EU/3/01/1", trade=None)], [])
    assert [d.medicine for d in placed] == [None, None]
    assert notes == ["designation EU/3/07/459: trade name 'Wakix' (EU/1/15/1068) matches no product in the data"]


@given(st.lists(st.tuples(st.integers(0, 99), st.integers(1, 3000)), unique=True, max_size=20))
def test_designations_come_in_the_order_they_were_granted(numbers: list[tuple[int, int]]) -> None:
    given_ = [designation(f"EU/3/{y:02d}/{n}", trade=None) for y, n in numbers]
    placed, _ = place_designations(given_, [])
    assert [d.number for d in placed] == [d.number for d in sorted(given_, key=lambda d: (
        int(d.number.split("/")[2]), int(d.number.split("/")[3])))]
