"""The analytics page in a real browser (Debian's chromium, driven by Playwright; issue #16): a
supervisor opens /analytics on a book of a few thousand cases (written by the benchmark's generator,
dev/bench/analytics.py), filters it, and every chart loads as an image next to its table, under the
strict CSP without a single violation; axe-core finds no WCAG 2.1 A/AA problem in the page's content.

The screenshot goes to the test's temporary directory; with SAVE_SCREENSHOTS=1 it replaces
docs/img/analytics.png. Never `playwright install`: chromium comes from Debian.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import cast

import pytest
import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy import Engine
from temporalio.client import Client

from dev.bench import analytics as book
from infra.config import Settings
from ledger.inbound import Inbound
from tests.apps import BothApps, free_port
from tests.axe_check import axe_violations
from web.auth.principal import Principal
from web.deps import AppContext

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
SUPERVISOR = Principal(kind="person", name="sam.supervisor", roles=frozenset({"supervisor"}), via="test")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium")
async def test_a_supervisor_reads_the_analytics_page_in_a_browser(engine: Engine, tmp_path: Path) -> None:
    book.build(engine, cases=4_000, contracts=1_000)
    settings = Settings(data_dir=tmp_path)
    ctx = AppContext(engine, cast(Client, None), settings, Inbound(engine, cast(Client, None), settings))
    apps = BothApps(ctx, who=SUPERVISOR)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(apps, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM))
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            query = "as_of=2026-11-30&from=2025-11-01&to=2026-04-30&plan=de-follow-up"
            answer = await page.goto(f"http://127.0.0.1:{port}/analytics?{query}")
            assert answer is not None and answer.status == 200
            assert await page.locator("h1").inner_text() == "Collections analytics"
            assert await page.locator("#f-plan").input_value() == "de-follow-up"
            charts = page.locator("main img")
            assert await charts.count() == 5
            for n in range(5):
                loaded = await charts.nth(n).evaluate("img => img.complete && img.naturalWidth > 300")
                assert loaded, f"chart {n} did not load"
            cohorts = await page.locator("table").first.locator("tbody th").all_inner_texts()
            assert cohorts == ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04"]
            assert not [m for m in console if "Content Security Policy" in m], console
            problems = [str(v) for v in await axe_violations(page)]
            assert problems == []
            shot = tmp_path / "analytics.png"
            await page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("SAVE_SCREENSHOTS") == "1":
                DOCS_IMG.mkdir(exist_ok=True)
                shutil.copy(shot, DOCS_IMG / "analytics.png")
            await browser.close()
    finally:
        server.should_exit = True
        await serving
