"""The leaderboard app in a real browser: headless Chromium driven by playwright.

The app is served on 127.0.0.1 from a temp folder of runs. Chromium is Debian's
(``apt-get install chromium``), never a playwright download; set ``TP_CHROMIUM`` to use
another binary. Screenshots are kept in each test's ``tmp_path``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.publishing.browser import CHROMIUM_ARGS, TIMEOUT_MS, chromium
from tests.publishing.runs import RANKED, write_run
from tp_harness.publishing import leaderboard as lb

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# gradio's own table code calls pandas APIs that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, serving a toy run and a second dataset's run."""
    pytest.importorskip("gradio", reason="gradio not installed (pip install 'tp-harness[space]')")
    from tp_harness.publishing.leaderboard_app import build_app

    root = tmp_path_factory.mktemp("runs")
    write_run(root / "toy")
    write_run(root / "other", dataset="other", models={"vit": 0.03, "tfidf": 0.01})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(root)
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, url: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh page on the leaderboard, table loaded; a final screenshot in ``tmp_path``."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)
    pg.locator("#lb-table [role=gridcell]").first.wait_for(state="attached")
    wait_for(pg, lambda: len(table(pg)) > 1, "the table to fill")
    yield pg
    pg.screenshot(path=str(tmp_path / "final.png"), full_page=True)
    pg.close()


def table(page: Any) -> list[list[str]]:
    """Cell texts of the visible data rows of the leaderboard table (hidden copies skipped)."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#lb-table [role=grid] [role=row]",
        "rows => rows.filter(r => r.offsetParent !== null)"
        ".map(r => Array.from(r.querySelectorAll('[role=gridcell]')).map(c => c.innerText.trim()))"
        ".filter(cells => cells.length > 0)",
    )
    return rows


def headers(page: Any) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "#lb-table [role=grid] thead th", "ths => ths.map(t => t.getAttribute('title'))"
    )
    return found


def wait_for(page: Any, check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until true (the app answers each widget change with a round trip)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; table: {table(page)}")
        page.wait_for_timeout(200)


def column(page: Any, name: str) -> list[str]:
    i = headers(page).index(name)
    return [r[i] for r in table(page)]


def test_table_shows_ranked_rows(page: Any, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    cols = headers(page)
    assert cols[:2] == [lb.RANK, lb.MODEL] and lb.DATASET in cols  # two datasets: shown
    expected = 2 * 2 * 2 + 5 * 2 * 2  # (other: 2 models, toy: 5) x priors x T, probe ridge q=2
    count = page.locator("#lb-table [role=grid]").first.get_attribute("aria-rowcount")
    assert int(count) == expected + 1  # + header
    rows = table(page)  # the grid renders the rows in view (virtual scrolling)
    assert len(rows) >= 13
    at = {
        c: cols.index(c)
        for c in (lb.RANK, lb.MODEL, lb.DATASET, lb.PRIOR, lb.TEMPERATURE, lb.PROBE)
    }
    key = [
        (
            r[at[lb.DATASET]],
            r[at[lb.PRIOR]],
            r[at[lb.TEMPERATURE]],
            r[at[lb.MODEL]],
            r[at[lb.RANK]],
            r[at[lb.PROBE]],
        )
        for r in rows
    ]
    other = [
        ("other", prior, t, m, str(rank), "ridge q=2")
        for prior in ("labels", "mini@layer2")
        for t in ("0.1", "1")
        for rank, m in ((1, "vit"), (2, "tfidf"))
    ]
    toy = [
        ("toy", "labels", "0.1", m, str(rank), "ridge q=2")
        for rank, m in enumerate(RANKED, start=1)
    ]
    assert key[:13] == other + toy  # datasets, priors, T sorted; ranked within each group


def test_filters_and_search_narrow_the_table(page: Any, tmp_path: Path) -> None:
    page.locator("#lb-dataset").get_by_label("other", exact=True).uncheck()
    page.locator("#lb-prior").get_by_label("mini@layer2", exact=True).uncheck()
    page.locator("#lb-temperature").get_by_label("1", exact=True).uncheck()
    wait_for(page, lambda: len(table(page)) == 5, "5 rows after filtering")
    assert column(page, lb.MODEL) == RANKED
    assert column(page, lb.RANK) == ["1", "2", "3", "4", "5"]
    page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)

    page.locator("#lb-modality").get_by_label("image", exact=True).uncheck()
    wait_for(page, lambda: len(table(page)) == 4, "text models only")
    assert "vit" not in column(page, lb.MODEL)

    page.locator("#lb-search").get_by_role("textbox").fill("layer1, TFIDF")
    wait_for(page, lambda: len(table(page)) == 2, "2 rows after searching")
    assert column(page, lb.MODEL) == ["mini@layer1", "tfidf"]
    assert column(page, lb.RANK) == ["1", "5"]  # ranks stay those of the full board

    with page.expect_download() as download:
        page.locator("#lb-download").click()
    csv = tmp_path / "board.csv"
    download.value.save_as(csv)
    got = lb.read_csv(csv)
    assert got[lb.MODEL].tolist() == ["mini@layer1", "tfidf"]
    assert list(got.columns) == headers(page)


def test_column_choice(page: Any) -> None:
    assert lb.RANKME in headers(page)
    token = page.locator(f"#lb-columns div:has(> span:text-is('{lb.RANKME}'))")
    token.locator("> [role=button]").click()  # the chip's remove cross
    wait_for(page, lambda: lb.RANKME not in headers(page), "RankMe column removed")
    assert headers(page)[:2] == [lb.RANK, lb.MODEL]


def test_plots_render(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Plots").click()
    for key in ("alignment", "layers", "probes"):
        img = page.locator(f"#plot-{key} img").first
        img.wait_for(state="visible")
        box = img.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, key
        natural = img.evaluate("i => i.complete ? i.naturalWidth : 0")
        assert natural > 300, key
    page.screenshot(path=str(tmp_path / "plots.png"), full_page=True)
    page.get_by_role("tab", name="About").click()
    about = page.locator("#lb-about")
    about.wait_for(state="visible")
    assert "closed form" in about.inner_text()
    assert about.locator(".katex").count() >= 2  # both formulas typeset


def test_empty_selections_show_an_empty_table(page: Any, tmp_path: Path) -> None:
    """Issue 16, finding 9: a search matching nothing, or every box unchecked, raised
    ``KeyError: 'probe'`` in the callback (an empty mask selected no columns)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.locator("#lb-search").get_by_role("textbox").fill("no-such-model")
    wait_for(page, lambda: len(table(page)) == 0, "an empty table after the search")
    page.locator("#lb-search").get_by_role("textbox").fill("")
    wait_for(page, lambda: len(table(page)) > 1, "the table back")
    for label in ("0.1", "1"):
        page.locator("#lb-temperature").get_by_label(label, exact=True).uncheck()
    wait_for(page, lambda: len(table(page)) == 0, "an empty table with no temperature")
    assert lb.MODEL in headers(page)
    assert page.locator(".toast-body.error").count() == 0 and not errors
    page.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
