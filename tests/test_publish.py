"""Writing a release: what the build does around the serialisations."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from epar_graph import config, publish
from epar_graph.pipeline import build


def test_build_gives_the_collector_back(tmp_path: Path) -> None:
    """The build turns Python's cycle collector off for speed, and on again when done, even on failure."""
    assert gc.isenabled()
    build([config.DATA_DIR / "medpath" / "alofisel.txt"], tmp_path / "dist")
    assert gc.isenabled()
    with pytest.raises(publish.NotARelease):
        (tmp_path / "not-a-release").mkdir()
        (tmp_path / "not-a-release" / "notes.txt").write_text("keep", encoding="utf-8")
        build([config.DATA_DIR / "medpath" / "alofisel.txt"], tmp_path / "not-a-release")
    assert gc.isenabled()
