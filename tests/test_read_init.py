"""Format detection from content, and ``read_source`` never raising on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import config
from epar_graph.model import ProductRecord, ReadWarning, Rejection
from epar_graph.read import FORMATS, detect_format, read_source
from epar_graph.read.common import FieldError, Outcome

FIXTURES = Path(__file__).parent / "data" / "read"
REAL = {
    config.DATA_DIR / "ema-medicines-2017-02-13.xls": "ema-xls",
    config.DATA_DIR / "ema-epar-scrape-2017.csv": "epar-table",
    config.DATA_DIR / "ema-medicines-2017-wikidata-rxnorm.csv": "epar-table-merged",
    config.DATA_DIR / "medpath" / "alofisel.txt": "medpath",
    FIXTURES / "ema-medicines.json": "ema-json",
    FIXTURES / "ema-medicines.xlsx": "ema-xlsx",
}


@pytest.mark.parametrize(("path", "fmt"), list(REAL.items()), ids=lambda p: getattr(p, "name", p))
def test_detects_format_from_content_not_name(tmp_path: Path, path: Path, fmt: str) -> None:
    assert detect_format(path) == fmt
    disguised = tmp_path / "data.bin"  # a name that says nothing
    shutil.copyfile(path, disguised)
    assert detect_format(disguised) == fmt
    misleading = tmp_path / "page.xls"  # a name that lies
    shutil.copyfile(path, misleading)
    assert detect_format(misleading) == fmt


def test_every_bundled_source_is_recognised() -> None:
    for path in config.BUNDLED_SOURCES:
        assert detect_format(path) != "unknown", path


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"  \n\t\n", "empty"),
        (b"\x00\x01\x02binary\xff\x00", "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"caf\xe9 latin-1 text", "not UTF-8"),
        (b"[build-system]\nrequires = []\n", "not a recognised format"),
        (b"PK\x03\x04 not really a zip", "ZIP"),
        (b"just some words\n", "not a recognised format"),
    ],
)
def test_unknown_input_is_one_rejection(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    result = read_source(path)
    assert result.format == "unknown" == detect_format(path)
    assert result.count == 1 and result.records == []
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), "-", "-")
    assert words in bad.message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.json", tmp_path):
        result = read_source(path)
        assert result.format == "unknown"
        [bad] = result.rejections
        assert bad.file == str(path) and "cannot read" in bad.message


def test_truncated_json_is_a_file_level_rejection(tmp_path: Path) -> None:
    whole = (FIXTURES / "ema-medicines.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(whole[: len(whole) // 2])
    result = read_source(path)
    assert result.format == "ema-json"
    [bad] = result.rejections
    assert (bad.file, bad.record, bad.field) == (str(path), "-", "-")
    assert "not valid JSON" in bad.message and "line" in bad.message


def test_rejection_reads_as_file_record_field() -> None:
    result = read_source(Path("no/such/file.json"))
    assert str(result.rejections[0]).startswith("no/such/file.json: record -: field '-':")


_SEEDS = [p.read_bytes()[:4096] for p in REAL if p.suffix != ".xls"]


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.binary(max_size=2048),
                 st.tuples(st.sampled_from(_SEEDS), st.integers(0, 4096), st.binary(max_size=64))
                 .map(lambda t: t[0][: t[1]] + t[2])))
def test_read_source_never_raises(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("any") / "input"
    path.write_bytes(data)
    result = read_source(path)
    assert result.format in FORMATS
    assert result.count == len(result.records) + len(result.rejections)
    if result.format == "unknown":
        assert result.count == 1 and result.rejections[0].record == "-"
    for bad in result.rejections:
        assert bad.file == str(path) and bad.field and bad.message


# --- hostile and careless input ------------------------------------------------------------


def test_utf16_text_is_read_not_called_binary(tmp_path: Path) -> None:
    """Spreadsheet programs save "Unicode text" as UTF-16: it is read like UTF-8."""
    table = config.DATA_DIR / "ema-epar-scrape-2017.csv"
    lines = table.read_text(encoding="utf-8").splitlines(keepends=True)[:4]
    utf8 = tmp_path / "table-utf8.csv"
    utf8.write_text("".join(lines), encoding="utf-8")
    for encoding in ("utf-16", "utf-16-le"):
        path = tmp_path / f"table-{encoding}.csv"
        path.write_text("".join(lines), encoding=encoding)
        got, want = read_source(path), read_source(utf8)
        assert got.format == want.format != "unknown"
        assert [(r.product_number, r.name) for r in got.records] == [(r.product_number, r.name) for r in want.records]


def test_binary_junk_is_still_binary(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(bytes(range(256)) * 8)
    [rejection] = read_source(path).rejections
    assert "binary" in rejection.message


def test_a_file_over_its_kind_limit_is_refused_with_a_way_out(tmp_path: Path) -> None:
    from epar_graph.read import SIZE_LIMITS

    path = tmp_path / "big.csv"
    table = Path(__file__).parents[1] / "data" / "ema-epar-scrape-2017.csv"
    path.write_bytes(table.read_bytes())
    small = path.stat().st_size // 2
    result = read_source(path, max_bytes=small)
    [rejection] = result.rejections
    assert "over the" in rejection.message and "--max-input-mb" in rejection.message
    assert result.records == []
    assert not any("over the" in r.message for r in read_source(path).rejections)
    assert path.stat().st_size < min(SIZE_LIMITS.values())


def test_detection_reads_only_the_start_of_a_file(tmp_path: Path) -> None:
    """A large unrecognised text file costs its first 64 KB, not several times its size."""
    path = tmp_path / "notes.txt"
    with path.open("w", encoding="utf-8") as f:
        for _ in range(200_000):
            f.write("just some words that are no table, page or export\n")
    import tracemalloc

    tracemalloc.start()
    result = read_source(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.format == "unknown" and "not a recognised format" in result.rejections[0].message
    assert peak < path.stat().st_size // 4


# -- warnings are not rejections ---------------------------------------------------------------


def test_warnings_of_a_read_are_their_own_type_and_not_counted() -> None:
    """A warned record is accepted: it is in ``records``, so counting its warning too would break the sum."""
    result = read_source(FIXTURES / "ema-medicines-report-2026-03-14.xlsx")
    assert result.warnings and all(type(w) is ReadWarning for w in result.warnings)
    assert not any(isinstance(w, Rejection) for w in result.warnings)
    assert result.count == len(result.records) + len(result.rejections) == 30
    assert {(w.record, w.field) for w in result.warnings} == {("22", "EMA product number"), ("37", "ATC code (human)")}
    assert {w.record for w in result.warnings} <= {r.record for r in result.records}


def _record() -> ProductRecord:
    return ProductRecord(source="f", record="1", name="X", product_number="EMEA/H/C/000001")


def _refused() -> ProductRecord:
    raise FieldError("Authorisation date", "impossible date '31/02/2010'")


def test_a_record_ends_as_a_record_with_its_warnings_or_as_one_rejection() -> None:
    out = Outcome()
    assert out.add("f", "1", _record, [("ATC code", "kept as published")])
    assert not out.add("f", "2", _refused, [("ATC code", "kept as published")])
    assert out.warnings == [ReadWarning("f", "1", "ATC code", "kept as published")]
    assert out.rejections == [Rejection("f", "2", "Authorisation date", "impossible date '31/02/2010'")]
    assert len(out.records) == 1
