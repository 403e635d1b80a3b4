"""The pay link's error pages in Danish in a real browser (issue #17): Debian's chromium at a phone's
viewport with a Danish browser (Accept-Language da-DK) against the served stack (tests/apps.served_apps).
An invalid link reads "Ugyldigt link", a Danish customer's expired one "Linket er udløbet" — <html
lang="da">, axe-core clean, no Content-Security-Policy violation. Screenshots in the test's temporary
directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from core.tokens import PAY_LINK_SALT, sign
from ledger import service
from ledger.db import session_scope
from tests.apps import served_apps
from tests.axe_check import Console, assert_accessible
from tests.browser_support import CHROMIUM, DANISH_PHONE, phone_context
from tests.portal_support import make_pay_link, seed_portal_customer
from web.deps import berlin_today

CONTRACT = "K-DK-LINK-1"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium")


async def test_invalid_and_expired_pay_links_read_danish_in_chromium(tmp_path: Path) -> None:
    async with served_apps(tmp_path, "dk-link-browser") as served:
        engine, settings = served.engine, served.settings
        due = berlin_today() - timedelta(days=1)
        seed_portal_customer(engine, CONTRACT, premiums=[("P-DK-L1", due, 45_000)], language="da")
        token, token_id = make_pay_link(engine, settings, CONTRACT)
        with session_scope(engine) as session:
            link = service.find_pay_link(session, token_id)
            assert link is not None
            link.expires_at = datetime.now(UTC) - timedelta(minutes=1)
            session.add(link)
        forged = sign(settings.link_secret, PAY_LINK_SALT, "tok-never-issued")
        base = settings.public_base_url

        async with async_playwright() as playwright:
            browser, context = await phone_context(playwright, DANISH_PHONE)
            console = Console()
            page = await console.watch(context)

            invalid = await page.goto(f"{base}/pay/{forged}")
            assert invalid is not None and invalid.status == 404
            await page.get_by_role("heading", name="Ugyldigt link", level=1).wait_for()
            assert await page.get_attribute("html", "lang") == "da"
            assert "Brug linket fra din seneste besked." in await page.locator("main").inner_text()
            await assert_accessible(page, "invalid pay link (Danish)", skip_link=False)
            await page.screenshot(path=tmp_path / "link-invalid-da.png", full_page=True)

            expired = await page.goto(f"{base}/pay/{token}")
            assert expired is not None and expired.status == 410
            await page.get_by_role("heading", name="Linket er udløbet", level=1).wait_for()
            text = await page.locator("main").inner_text()
            assert "bankoverførsel" in text and "Zahlungslink" not in text
            await assert_accessible(page, "expired pay link (Danish)", skip_link=False)
            await page.screenshot(path=tmp_path / "link-expired-da.png", full_page=True)
            await browser.close()
        assert console.csp_violations() == [], console.messages
        print(f"screenshots: {tmp_path}")
