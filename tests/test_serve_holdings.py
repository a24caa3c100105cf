"""Every page says which EMA exports the served release holds and how old they are.

The figures come from the build's own ``void.ttl``: a real build of two cut
reports is served under uvicorn, and a rebuild shows on the next page.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from conftest import start_live_server

from epar_graph import config
from epar_graph.iris import Minter
from epar_graph.pipeline import build
from epar_graph.serve.holdings import read_holdings
from epar_graph.serve.settings import Settings

CUTS = Path(__file__).parent / "data" / "read"
OLD = CUTS / "ema-epar-report-2018-12-23.xlsx"
NEW = CUTS / "ema-medicines-report-2026-03-14.xlsx"


def _text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_holdings_are_read_from_the_release(tmp_path: Path) -> None:
    sources = [NEW, OLD, config.DATA_DIR / "medpath" / "alofisel.txt"]
    result = build(sources, tmp_path / "dist", with_links=False, accept_removals=True)
    held = read_holdings(result.out / "void.ttl")
    assert [(e.name, e.date) for e in held.exports] == sorted(
        ((s.path.name, s.date) for s in result.sources if s.snapshot and s.date), key=lambda e: e[1]
    )
    assert held.others == 1  # the MedPath page
    assert held.newest is not None and held.age_days(held.newest.date + dt.timedelta(days=3)) == 3
    assert read_holdings(tmp_path / "missing" / "void.ttl").exports == ()


def test_home_page_and_footer_say_what_the_release_holds(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    result = build([OLD, NEW], out, with_links=False, accept_removals=True)
    dates = sorted(s.date.isoformat() for s in result.sources if s.date)
    server = start_live_server(Settings(data_dir=out, workers=1))
    try:
        client = server.client()
        home = _text(client.get("/").text)
        for date in dates:
            assert date in home
        age = (dt.date.today() - max(s.date for s in result.sources if s.date)).days
        assert f"{age} days old" in home
        product = Minter().product("EMEA/H/C/004258")
        page = client.get(product.removeprefix(config.DEFAULT_BASE.rstrip("/")), headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "<footer" in page.text
        footer = _text(page.text.rsplit("<footer", 1)[-1])
        assert dates[-1] in footer and f"{age} days old" in footer

        build([OLD], out, with_links=False, accept_removals=True)  # a new release: the next page says so
        footer = _text(client.get("/").text.rsplit("<footer", 1)[-1])
        assert dates[0] in footer and dates[-1] not in footer
    finally:
        server.stop()


@pytest.mark.parametrize("void", ["", "not turtle {", "@prefix void: <http://rdfs.org/ns/void#> ."])
def test_an_unreadable_void_holds_nothing(tmp_path: Path, void: str) -> None:
    path = tmp_path / "void.ttl"
    path.write_text(void, encoding="utf-8")
    assert read_holdings(path).exports == () and read_holdings(path).summary()
