"""The one file checksum every stage states: it is SHA-256 of the file's bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epar_graph.files import sha256_file
from epar_graph.serve import downloads


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4096))
def test_checksum_is_sha256_of_the_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "checksum.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_checksum_of_a_file_larger_than_one_block(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000 + b"tail"  # ~10 MB, several read blocks
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_download_listing_reuses_the_digest_while_size_and_mtime_stay(tmp_path: Path) -> None:
    path = tmp_path / "epar.nt"
    path.write_bytes(b"<urn:a> <urn:b> <urn:c> .\n")
    first = downloads.dump_file(tmp_path, "epar.nt")
    assert first is not None and first.sha256 == sha256_file(path)
    stat = path.stat()
    path.write_bytes(b"<urn:a> <urn:b> <urn:d> .\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cached = downloads.dump_file(tmp_path, "epar.nt")
    assert cached is not None and cached.sha256 == first.sha256
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    fresh = downloads.dump_file(tmp_path, "epar.nt")
    assert fresh is not None and fresh.sha256 == sha256_file(path) != first.sha256
