"""The customer portal in Danish in a real browser (issue #17): Debian's chromium at a phone's viewport
against the served stack (tests/apps.served_apps). A Danish-speaking customer with a DKK contract in
dunning (a portal session as a passed step-up leaves it) reads the overview, pays everything by
TestPay and reads the result — in Danish, amounts in kroner, every page passing the accessibility
check (tests/axe_check.py) without a Content-Security-Policy violation. The screenshots go to the
test's temporary directory (kept by pytest, to look at)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from sqlmodel import select

from ledger import service
from ledger.db import session_scope
from models.ledger import Payment
from tests.apps import served_apps
from tests.axe_check import Console, assert_accessible
from tests.browser_support import CHROMIUM, DANISH_PHONE, phone_context
from tests.portal_support import make_pay_link, portal_cookie, seed_portal_customer
from web.deps import berlin_today
from web.public.portal.i18n import money

CONTRACT = "K-DK-BROWSER-1"
PREMIUM_CENTS = 45_000  # 450,00 kr.

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium")


async def test_a_danish_customer_sees_overview_pay_and_result_in_danish_with_kroner(tmp_path: Path) -> None:
    kroner = money("da", PREMIUM_CENTS, "DKK")
    assert kroner == "450,00 kr."
    async with served_apps(tmp_path, "dk-browser") as served:
        engine, settings = served.engine, served.settings
        due = berlin_today() - timedelta(days=1)
        customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-DK-B1", due, PREMIUM_CENTS)], language="da")
        with session_scope(engine) as session:
            contract = service.get_contract(session, CONTRACT)
            contract.currency = "DKK"
            session.add(contract)
        _, token_id = make_pay_link(engine, settings, CONTRACT)
        cookies = portal_cookie(engine, customer_id, token_id, "da")
        base = settings.public_base_url

        async with async_playwright() as playwright:
            browser, context = await phone_context(playwright, DANISH_PHONE)
            await context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
            console = Console()
            page = await console.watch(context)

            await page.goto(f"{base}/portal")
            await page.get_by_role("heading", name="Din oversigt", level=1).wait_for()
            assert await page.get_attribute("html", "lang") == "da"
            assert await page.text_content("#total") == kroner
            assert await page.locator("#portal-language option[selected]").inner_text() == "Dansk"
            overview = await page.locator("main").inner_text()
            assert "Skyldige poster" in overview and "Præmie" in overview and "€" not in overview
            await assert_accessible(page, "GET /portal (Danish)")
            await page.screenshot(path=tmp_path / "portal-da-overview.png", full_page=True)

            await page.get_by_role("link", name="Betal", exact=True).click()
            await page.wait_for_url(f"{base}/portal/pay")
            await page.get_by_role("heading", name="Betal", level=1).wait_for()
            await page.get_by_label(f"Det hele på én gang: {kroner}").check()
            await page.get_by_label("TestPay (testtilstand)").check()
            await assert_accessible(page, "GET /portal/pay (Danish)")
            await page.screenshot(path=tmp_path / "portal-da-pay.png", full_page=True)
            await page.get_by_role("button", name="Fortsæt").click()
            await page.wait_for_url(re.compile(r"/testpay/checkout/"))
            assert await page.text_content("#amount") == "450,00 DKK"  # TestPay's own (German) notation
            await page.get_by_role("button", name="Pay now").click()
            await page.wait_for_url(re.compile(r"/portal/pay/result"))

            result = await page.locator("#contract-1").inner_text()
            assert f"Betalt: {kroner}" in result
            assert "Betalingen er bogført." in result
            assert "Der er ikke længere noget skyldigt på denne police." in result
            await assert_accessible(page, "GET /portal/pay/result (Danish)")
            await page.screenshot(path=tmp_path / "portal-da-pay-result.png", full_page=True)
            await context.close()
            await browser.close()
        assert console.csp_violations() == [], console.messages
        with session_scope(engine) as session:
            assert service.arrears(session, CONTRACT, berlin_today()).balance_cents == 0
            assert [p.amount_cents for p in session.exec(select(Payment))] == [PREMIUM_CENTS]
