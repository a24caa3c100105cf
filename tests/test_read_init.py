"""Format detection from content, and ``read_source`` never raising on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph import config
from epar_graph.read import FORMATS, detect_format, read_source

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
