"""The committed serve fixture (``tests/data/serve``) is exactly what its generator makes.

The serve tests trust the fixture to be a real build; a fixture edited by hand,
or left behind by a change to the build, would test something the pipeline
does not make. Regenerating it is one command (``make_serve_fixture.COMMAND``).
"""

from __future__ import annotations

from pathlib import Path

import make_serve_fixture as fixture


def _names(directory: Path) -> set[str]:
    """The names of the files in ``directory`` (the fixture is flat)."""
    return {p.name for p in directory.iterdir()}


def test_committed_fixture_is_its_generated_form(tmp_path: Path) -> None:
    fresh = tmp_path / "serve"
    fixture.generate(fresh)
    regenerate = f"the committed fixture differs from its generated form: regenerate it with {fixture.COMMAND}"
    made, committed = _names(fresh), _names(fixture.SERVE_DATA)
    assert committed == made, (
        f"{regenerate} (files only committed: {sorted(committed - made)}, only generated: {sorted(made - committed)})"
    )
    for name in sorted(made):
        assert (fixture.SERVE_DATA / name).read_bytes() == (fresh / name).read_bytes(), f"{name}: {regenerate}"


def test_the_fixture_has_link_sets() -> None:
    """The serve tests need named graphs: the small link tables must still give some."""
    assert any(name.startswith("links-") for name in _names(fixture.SERVE_DATA))
