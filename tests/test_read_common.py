"""The shared value checks: substance splitting, strict dates, flags, ATC codes, addresses."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph.model import Address
from epar_graph.read import common
from epar_graph.read.common import FieldError

FAST = settings(max_examples=60, deadline=None)

# --- substances ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("efavirenz / emtricitabine / tenofovir disoproxil fumarate",
         ("efavirenz", "emtricitabine", "tenofovir disoproxil fumarate")),
        ("emtricitabine / rilpivirine hydrochloride /tenofovir disoproxil fumarate",
         ("emtricitabine", "rilpivirine hydrochloride", "tenofovir disoproxil fumarate")),
        ("rosiglitazone / metformin hydrochloride,", ("rosiglitazone", "metformin hydrochloride")),
        ("split influenza virus, inactivated, containing antigen: A/VietNam/1194/2004 (H5N1)",
         ("split influenza virus, inactivated, containing antigen: A/VietNam/1194/2004 (H5N1)",)),
        ("  / darvadstrocel /  ", ("darvadstrocel",)),
        ("", ()),
    ],
)
def test_split_substances_examples(text: str, expected: tuple[str, ...]) -> None:
    assert common.split_substances(text) == expected


#: Words of plain text: markup ("<b>", "&amp;") is decoded by ``clean``, tested on its own below.
_word = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="<>&"),
    min_size=1,
    max_size=12,
).filter(lambda w: "/" not in w and w.strip(",") and not any(ch.isspace() for ch in w))


@FAST
@given(st.text(max_size=200))
def test_split_substances_never_yields_empty_names(text: str) -> None:
    for name in common.split_substances(text):
        assert name.strip(" ,") == name
        assert name
        assert " / " not in name


@FAST
@given(st.lists(_word, min_size=2, max_size=5))
def test_bare_slash_never_splits(parts: list[str]) -> None:
    strain = "/".join(parts)
    assert common.split_substances(strain) == (strain.strip(","),)


@FAST
@given(st.lists(st.lists(_word, min_size=1, max_size=3).map(" ".join), min_size=1, max_size=4,
                unique_by=str.lower))
def test_substances_round_trip_through_spaced_slashes(names: list[str]) -> None:
    joined = " / ".join(names)
    expected = tuple(dict.fromkeys(n.strip(",").strip() for n in names if n.strip(",").strip()))
    assert common.split_substances(joined) == expected


# --- dates --------------------------------------------------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _spellings(d: dt.date) -> list[str]:
    month = _MONTHS[d.month - 1]
    return [
        d.strftime("%d/%m/%Y"),
        d.isoformat(),
        f"{month} {d.day}, {d.year}",
        f"{d.day} {month} {d.year}",
    ]


@FAST
@given(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_dates_round_trip_in_every_spelling(d: dt.date) -> None:
    for text in _spellings(d):
        assert common.parse_date(text, "f") == d
    assert common.parse_date(dt.datetime(d.year, d.month, d.day, 13, 5), "f") == d


@FAST
@given(st.integers(1000, 9999), st.integers(1, 12), st.integers(29, 31))
def test_impossible_dates_are_errors_naming_the_field(year: int, month: int, day: int) -> None:
    try:
        dt.date(year, month, day)
    except ValueError:
        for text in (f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}",
                     f"{_MONTHS[month - 1]} {day}, {year}"):
            with pytest.raises(FieldError) as err:
                common.parse_date(text, "authorisation_date")
            assert err.value.field == "authorisation_date"
            assert "impossible" in err.value.message


@pytest.mark.parametrize("text", ["February 30, 2018", "30/02/2018", "2018-02-30", "31 April 2020"])
def test_impossible_date_examples(text: str) -> None:
    with pytest.raises(FieldError, match="impossible date"):
        common.parse_date(text, "x")


@pytest.mark.parametrize("text", ["", "-", "  ", None])
def test_no_date(text: str | None) -> None:
    assert common.parse_date(text, "x") is None


@pytest.mark.parametrize("text", ["13.02.2017", "2017/02/13", "yesterday", "Feb 2017", "13/02/17"])
def test_malformed_dates_are_errors(text: str) -> None:
    with pytest.raises(FieldError, match="not a date"):
        common.parse_date(text, "x")


@FAST
@given(st.text(max_size=60))
def test_parse_date_raises_only_field_errors(text: str) -> None:
    try:
        common.parse_date(text, "f")
    except FieldError as err:
        assert err.field == "f"


def test_dates_in_prose() -> None:
    text = ("On 13 December 2024, the European Commission withdrew it; "
            "it was granted on March 23, 2018.")
    assert common.dates_in_text(text, "x") == [dt.date(2024, 12, 13), dt.date(2018, 3, 23)]


# --- flags, numbers, codes, areas ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("Yes", True), ("NO", False), (True, True), ("", None), (None, None)],
)
def test_parse_bool(value: object, expected: bool | None) -> None:
    assert common.parse_bool(value, "f") is expected


def test_parse_bool_rejects_other_words() -> None:
    with pytest.raises(FieldError, match="not yes/no"):
        common.parse_bool("maybe", "Is Orphan")


@FAST
@given(st.integers(0, 10_000))
def test_revision_numbers_in_every_spelling(n: int) -> None:
    for value in (n, float(n), str(n), f"{n}.0"):
        assert common.parse_int(value, "f") == n


@pytest.mark.parametrize("value", [4.5, "four", "4.5", True])
def test_parse_int_rejects_non_integers(value: object) -> None:
    with pytest.raises(FieldError):
        common.parse_int(value, "Revision number")


def test_split_atc_joins_inner_spaces_and_reports_bad_codes() -> None:
    codes, problems = common.split_atc("C10 AX10", "atc")
    assert codes == ("C10AX10",) and problems == []
    codes, problems = common.split_atc("A10ABCD01", "atc")
    assert codes == () and "A10ABCD01" in problems[0]
    assert common.split_atc("L04AX08; L04 ", "atc") == (("L04AX08", "L04"), [])


def test_split_areas_keeps_commas_inside_headings() -> None:
    assert common.split_areas("Breast Neoplasms  Carcinoma, Non-Small-Cell Lung") == (
        "Breast Neoplasms",
        "Carcinoma, Non-Small-Cell Lung",
    )
    assert common.split_areas("Anemia; Kidney Failure, Chronic") == (
        "Anemia",
        "Kidney Failure, Chronic",
    )


def test_status_is_a_closed_list() -> None:
    assert common.status("withdrawn", "Status") == "Withdrawn"
    with pytest.raises(FieldError, match="unknown status"):
        common.status("Pending", "Status")


def test_product_number_whitespace_is_normalised() -> None:
    assert common.product_number("EMEA/H/C/002691            ", "pn") == "EMEA/H/C/002691"
    with pytest.raises(FieldError, match="not a product number"):
        common.product_number("EMEA/X/C/002691", "pn")
    assert common.product_number("EMEA/V/C/002691", "pn") == "EMEA/V/C/002691"
    with pytest.raises(FieldError, match="missing"):
        common.product_number("  ", "pn")


# --- organisations ------------------------------------------------------------------------


def test_holder_cell_with_address_lines() -> None:
    name, address = common.holder(
        "Samsung Bioepis UK Limited (SBUK)\nRegus Building\u00a0\n3000 Hillswood Drive\u00a0\n"
        "Surrey\u00a0\nChertsey KT16 0RS\nUnited Kingdom"
    )
    assert name == "Samsung Bioepis UK Limited (SBUK)"
    assert address == Address(
        "Regus Building, 3000 Hillswood Drive, Surrey", "KT16 0RS", "Chertsey", "GBR",
        "United Kingdom",
    )


def test_holder_cell_without_address() -> None:
    assert common.holder("Celgene Europe Ltd\n\u00a0") == ("Celgene Europe Ltd", None)
    assert common.holder("") == (None, None)


def test_address_with_postal_code_before_locality() -> None:
    assert common.address(["Delta Park 45", "2665 Vallensbaek Strand", "Denmark"]) == Address(
        "Delta Park 45", "2665", "Vallensbaek Strand", "DNK", "Denmark"
    )
    assert common.address(["Vasagatan 7", "111 20 Stockholm", "Sweden"]) == Address(
        "Vasagatan 7", "111 20", "Stockholm", "SWE", "Sweden"
    )


def test_unknown_country_keeps_the_text_in_the_street() -> None:
    address = common.address(["Main Street 1", "1234 Town", "Atlantis"])
    assert address is not None
    assert address.country_code is None and address.country_name is None
    assert address.street is not None and "Atlantis" in address.street
    assert (address.postal_code, address.locality) == ("1234", "Town")


@FAST
@given(st.lists(st.text(max_size=30), max_size=6))
def test_address_never_raises(parts: list[str]) -> None:
    address = common.address(parts)
    if address is not None:
        assert address.country_code is None or len(address.country_code) == 3


def test_cjk_detection() -> None:
    assert common.has_cjk("免疫抑制剂")
    assert not common.has_cjk("Immunosuppressants")


# --- EMA's reports of 2018-2026: entities, lists, codes, numbers --------------------------


def test_html_entities_are_decoded_and_tags_stripped() -> None:
    # Wegovy's indication in the 2026 report, and a tag-wrapped cell
    assert common.clean("BMI &lt;30 kg/m2&nbsp;and") == "BMI <30 kg/m2 and"
    assert common.clean("<p>Treatment of <strong>adults</strong></p>") == "Treatment of adults"
    assert common.clean("&amp;lt;") == "&lt;"  # decoded once, as a browser shows it


@FAST
@given(st.text(alphabet=st.sampled_from("ab1 /'\"=-\u00a0"), max_size=40))
def test_text_published_as_html_reads_as_the_text(text: str) -> None:
    """EMA's web text is the text escaped, maybe wrapped in tags: the reader gets the text back."""
    escaped = html.escape(text).replace("\u00a0", "&nbsp;")
    assert common.clean(f"<p>{escaped}</p>") == common.clean(text) == " ".join(text.replace("\u00a0", " ").split())


@FAST
@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from("ab <>&;#\t\n\u00a0\u2028\x1c")), st.none(),
                 st.floats(allow_nan=False), st.integers(), st.booleans()))
def test_a_tidy_cell_kept_as_it_is_reads_as_every_step_would_read_it(value: object) -> None:
    assert common.clean(value) == common._clean(value)


def test_lost_slash_in_a_product_number_is_mended_and_reported() -> None:
    assert common.normalised_product_number("EMEA/H/C005201", "n") == ("EMEA/H/C/005201", "EMEA/H/C005201")
    assert common.normalised_product_number("EMEA/V/C/006821", "n") == ("EMEA/V/C/006821", None)
    with pytest.raises(FieldError, match="not a product number"):
        common.normalised_product_number("EMEA/H/C/05201", "n")


@FAST
@given(st.sampled_from("HV"), st.integers(0, 999_999), st.sampled_from(["/C/", "/C", "C/", "//C//"]))
def test_any_loose_product_number_reads_as_one_number(kind: str, n: int, middle: str) -> None:
    printed = f"EMEA/{kind}{middle}{n:06d}"
    number, published = common.normalised_product_number(printed, "n")
    assert number == f"EMEA/{kind}/C/{n:06d}"
    assert published == (None if printed == number else printed)


def test_codes_split_by_kind_and_malformed_ones_are_kept_verbatim() -> None:
    assert common.split_codes("A10AB01; A10AC01") == (("A10AB01", "A10AC01"), (), ())
    assert common.split_codes("QJ01CA04") == ((), ("QJ01CA04",), ())
    assert common.split_codes("A10ABCD01, J07BBOI") == ((), (), ("A10ABCD01", "J07BBOI"))
    assert common.split_codes("Not yet assigned") == ((), (), ())


_ATC = st.from_regex(r"[A-PR-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?", fullmatch=True)
_ATCVET = st.from_regex(r"Q[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?", fullmatch=True)


@FAST
@given(st.lists(st.one_of(_ATC, _ATCVET), min_size=1, max_size=5), st.sampled_from(["; ", ";", ", ", "\n"]))
def test_every_code_of_a_list_lands_in_its_kind(codes: list[str], sep: str) -> None:
    atc, vet, bad = common.split_codes(sep.join(codes))
    assert bad == ()
    assert set(atc) == {c for c in codes if not c.startswith("Q")}
    assert set(vet) == {c for c in codes if c.startswith("Q")}


def test_substances_split_by_layout() -> None:
    assert common.split_listed_substances("sitagliptin;metformin hydrochloride", True) == (
        "sitagliptin", "metformin hydrochloride")
    assert common.split_listed_substances("sitagliptin, metformin hydrochloride", False) == (
        "sitagliptin", "metformin hydrochloride")
    assert common.split_listed_substances("measles virus (live, attenuated)", False) == (
        "measles virus (live, attenuated)",)


@FAST
@given(st.lists(st.from_regex(r"[a-z]{3,10}( [a-z]{3,10})?( \([a-z]{3,8}, [a-z]{3,8}\))?", fullmatch=True),
                min_size=1, max_size=4, unique=True))
def test_semicolon_joined_substances_come_back_whole(names: list[str]) -> None:
    assert common.split_listed_substances(";".join(names), True) == tuple(names)


_HEADINGS = frozenset({"spondylitis, ankylosing", "colitis, ulcerative", "psoriasis", "arthritis, psoriatic",
                       "arthritis", "crohn disease"})


def test_comma_joined_headings_split_into_known_headings() -> None:
    cell = "Spondylitis, Ankylosing, Colitis, Ulcerative, Psoriasis, Arthritis, Psoriatic"
    assert common.split_headings(cell, _HEADINGS, False) == (
        "Spondylitis, Ankylosing", "Colitis, Ulcerative", "Psoriasis", "Arthritis, Psoriatic")
    assert common.split_headings("Arthritis, Psoriatic;Crohn Disease", _HEADINGS, True) == (
        "Arthritis, Psoriatic", "Crohn Disease")


@FAST
@given(st.lists(st.sampled_from(sorted(_HEADINGS)), min_size=1, max_size=6, unique=True),
       st.sampled_from([", ", "; ", ";  "]))
def test_known_headings_joined_any_way_come_back(headings: list[str], sep: str) -> None:
    titled = [h.title() for h in headings]
    got = common.split_headings(sep.join(titled), _HEADINGS, False)
    # greedy longest match: "Arthritis" then "Psoriatic..." can only merge into a known heading
    assert [g.lower() for g in got] == headings or {g.lower() for g in got} <= _HEADINGS


def test_species_and_groups() -> None:
    assert common.split_values("Chickens;Turkeys", True) == ("Chickens", "Turkeys")
    assert common.split_values("Cattle, Sheep", False) == ("Cattle", "Sheep")
    assert common.pharmacotherapeutic_groups("Immunologicals for aves;Domestic fowl", True) == (
        "Immunologicals for aves", "Domestic fowl")
    assert common.pharmacotherapeutic_groups("Antineoplastic agents, , protein kinase inhibitor, ", False) == (
        "Antineoplastic agents, protein kinase inhibitor",)


def test_a_new_status_is_kept_with_a_warning() -> None:
    assert common.status_label("application withdrawn") == ("Application withdrawn", None)
    label, warning = common.status_label("Under conditional review")
    assert label == "Under conditional review" and warning and "new status" in warning
    assert common.status_label("  ") == (None, None)
