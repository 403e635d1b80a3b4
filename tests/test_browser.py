"""In a real browser (Debian's chromium, driven by Playwright; issue #12): a clerk signs in to the
internal app, opens a contract and its audit trail, holds the case under their own name, and is
refused a supervisor action; a customer pays through the pay link on the public app without any
sign-in, and the contract is active again. No page logs a Content-Security-Policy violation.

Both apps run on real 127.0.0.1 ports (uvicorn in this test's event loop) with a worker on the
Temporal dev server; the contract runs the seconds-long "demo-fast" plan until cover is suspended.

Screenshots go to the test's temporary directory; with SAVE_SCREENSHOTS=1 they replace the ones in
docs/img/ (the pages show dates and amounts of the run, so a normal run leaves the repository alone).
`make test` installs chromium when missing (Makefile target `browser`); never `playwright install`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import async_playwright
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.client import Client

from core.money import format_eur
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent
from models.case import CaseStage, CaseStatus
from models.ledger import Contract, Fee
from tests.apps import served_apps, signed_in_as
from tests.axe_check import Console
from tests.helpers import contract_status
from tests.test_end_to_end import newest_pay_link
from web.app import create_internal_app
from web.auth import accounts
from web.auth.principal import Principal
from web.deps import AppContext
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

CHROMIUM = Path("/usr/bin/chromium")
CONTRACT = "K-BROWSER-1"
CLERK = "mia.clerk"
PREMIUM_CENTS = 8_990
NOTICE_FEE_CENTS = 150
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium (make test does, as root)"
)


@dataclass
class Stack:
    settings: Settings
    engine: Engine
    client: Client
    internal_url: str
    public_url: str
    billing: httpx.AsyncClient  # the billing system's API client on the internal app
    shots: Path


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Dev server, worker and both apps on real ports, all in this test's event loop."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with served_apps(tmp_path, "browser") as served:
        settings = served.settings
        async with httpx.AsyncClient(
            base_url=settings.internal_base_url, timeout=30, headers={"Authorization": f"Bearer {served.billing_key}"}
        ) as billing:
            yield Stack(
                settings,
                served.engine,
                served.client,
                settings.internal_base_url,
                settings.public_base_url,
                billing,
                shots,
            )
    if os.environ.get("SAVE_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("*.png"):
            shutil.copyfile(shot, DOCS_IMG / shot.name)


# --- what the test looks at -------------------------------------------------------------------------


async def seed_overdue_contract(stack: Stack) -> None:
    """The billing system sends the contract and a premium due today; the premium falling due starts the case."""
    today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    contract = {
        "customer": {
            "customer_number": "C-BROWSER-1",
            "name": "Erika Mustermann",
            "street": "Heidestraße 17",
            "postal_code": "51147",
            "city": "Köln",
            "state": "NW",
            "email": "erika@example.org",
            "phone": "+4915112345678",
        },
        "product": "Hausrat",
        "dunning_plan": "demo-fast",
    }
    events = [
        {
            "type": "premium_booked",
            "event_id": "browser-1",
            "premium_id": "BROWSER-P1",
            "contract_number": CONTRACT,
            "period_start": today,
            "period_end": today,
            "due_date": today,
            "amount_cents": PREMIUM_CENTS,
        },
        {"type": "premium_due", "event_id": "browser-2", "premium_id": "BROWSER-P1"},
    ]
    assert (await stack.billing.put(f"/api/contracts/{CONTRACT}", json=contract)).status_code == 200
    for event in events:
        answer = await stack.billing.post("/api/ledger/events", json=event)
        assert answer.status_code == 200, answer.text


async def until_status(engine: Engine, wanted: str, seconds: float = 45) -> None:
    """Wait for the ledger (the demo plan's steps are seconds apart; the worker shares this loop)."""
    for _ in range(int(seconds * 4)):
        if contract_status(engine, CONTRACT) == wanted:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{CONTRACT} never became {wanted}; it is {contract_status(engine, CONTRACT)}")


async def case_status(client: Client) -> CaseStatus:
    return await client.get_workflow_handle(case_workflow_id(CONTRACT)).query(DunningCase.status)


def audit_rows(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(AuditEvent)).one())


def written_off_fees(engine: Engine) -> int:
    with session_scope(engine) as session:
        contract = session.exec(select(Contract).where(Contract.contract_number == CONTRACT)).one()
        fees = session.exec(select(Fee).where(Fee.contract_id == contract.id))
        return sum(1 for fee in fees if fee.written_off)


# --- the test ------------------------------------------------------------------------------------------


@needs_chromium
async def test_a_clerk_signs_in_sees_the_audit_trail_is_refused_a_write_off_and_the_customer_pays_unsigned(
    stack: Stack,
) -> None:
    await seed_overdue_contract(stack)
    await until_status(stack.engine, "suspended")
    balance = PREMIUM_CENTS + NOTICE_FEE_CENTS  # the premium and the letter fee of the qualified notice
    with session_scope(stack.engine) as session:
        password = accounts.add_staff(session, CLERK, ["clerk"], "test")
    contract_page = f"{stack.internal_url}/contracts/{CONTRACT}"
    console = Console()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        staff = await browser.new_context()
        page = await console.watch(staff)

        # 1. Without a session the contract page sends the browser to sign in; the clerk types the
        #    one-time password and lands on the contract.
        await page.goto(contract_page)
        assert page.url.startswith(f"{stack.internal_url}/sign-in?next=")
        await page.fill("#name", CLERK)
        await page.fill("#password", password)
        async with page.expect_navigation():
            await page.click("button:has-text('Sign in')")
        assert page.url == contract_page
        assert await page.text_content("#status") == "suspended"
        assert format_eur(balance) in await page.inner_text("main")
        assert await page.locator("h2", has_text="Audit trail").count() == 1
        assert CLERK in await page.inner_text("header")

        # The clerk holds the case; the trail shows the clerk's name and the action.
        until = (datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=10)).isoformat()
        await page.fill("#hold-until", until)
        await page.fill("#hold-reason", "customer in hospital")
        async with page.expect_navigation():
            await page.click("button:has-text('Hold dunning')")
        assert page.url == f"{contract_page}?done=hold"
        assert "hold" in await page.inner_text("#action-done")
        trail = await page.inner_text("#audit-trail")
        assert CLERK in trail and "/case/hold" in trail and "customer in hospital" in trail
        held = await case_status(stack.client)
        assert held.hold is not None and held.hold.set_by == CLERK
        await page.screenshot(path=stack.shots / "contract-audit-trail.png", full_page=True)

        # 2. Supervisor decisions are not offered to a clerk ...
        assert await page.locator("#supervisor-actions").count() == 0
        assert await page.locator(f"form[action='/contracts/{CONTRACT}/case/write-off']").count() == 0
        rows_before, fees_before = audit_rows(stack.engine), written_off_fees(stack.engine)
        # ... and a write-off form put into the page by hand, with the page's valid CSRF token, is refused.
        async with page.expect_navigation() as navigation:
            await page.evaluate(
                """([action, reason]) => {
                    const form = document.createElement('form');
                    form.method = 'post';
                    form.action = action;
                    const token = document.querySelector('input[name=csrf_token]').cloneNode();
                    const why = document.createElement('input');
                    why.name = 'reason';
                    why.value = reason;
                    form.append(token, why);
                    document.body.append(form);
                    form.submit();
                }""",
                [f"/contracts/{CONTRACT}/case/write-off", "give up"],
            )
        refused = await navigation.value
        assert refused is not None and refused.status == 403
        assert refused.headers["content-type"].startswith("text/html")  # a page for a person, not raw JSON
        assert await page.text_content("h1") == "Not allowed"
        assert "needs supervisor" in await page.inner_text("main")
        await page.screenshot(path=stack.shots / "clerk-refused-write-off.png", full_page=True)
        after = await case_status(stack.client)
        assert not after.closed and after.stage == held.stage and after.stage != CaseStage.WRITTEN_OFF
        assert audit_rows(stack.engine) == rows_before and written_off_fees(stack.engine) == fees_before
        assert contract_status(stack.engine, CONTRACT) == "suspended"

        # 3. The customer: a fresh browser, no sign-in, the pay link from the newest message.
        customer = await browser.new_context()
        pay = await console.watch(customer)
        link = newest_pay_link(stack.engine)
        assert link.startswith(f"{stack.public_url}/pay/")
        opened = await pay.goto(link)
        assert opened is not None and opened.status == 200
        assert await pay.text_content("#balance") == format_eur(balance)
        await pay.screenshot(path=stack.shots / "pay-page-public.png", full_page=True)
        await pay.fill("#amount", format_eur(balance).replace(" €", ""))
        async with pay.expect_navigation():
            await pay.click("button:has-text('Weiter zur Zahlung')")
        assert "/testpay/checkout/" in pay.url and await pay.text_content("#amount") == format_eur(balance)
        async with pay.expect_navigation():
            await pay.click("button:has-text('Pay now')")
        assert await pay.text_content("h1") == "Zahlung eingegangen"
        assert await pay.text_content("#balance") == "Nichts offen – vielen Dank"
        await pay.screenshot(path=stack.shots / "pay-done-public.png", full_page=True)
        await until_status(stack.engine, "active")

        # The internal app's URLs do not exist on the public port.
        for path in (f"/contracts/{CONTRACT}", "/sign-in", f"/api/contracts/{CONTRACT}", "/docs"):
            answer = await pay.goto(f"{stack.public_url}{path}")
            assert answer is not None and answer.status == 404, path

        # The clerk sees the contract active again, and the payment in the trail.
        await page.goto(contract_page)
        assert await page.text_content("#status") == "active"
        await browser.close()

    assert console.csp_violations() == [], console.messages


async def test_a_refused_person_gets_a_page_on_staff_paths_while_programs_keep_json(
    engine: Engine, settings: Settings
) -> None:
    """The 403 page of the browser test, without a browser: staff paths answer a page in the back
    office's layout; /api/ and /codec/ keep their JSON for programs."""
    ctx = AppContext(engine, cast(Client, None), settings, cast(Inbound, None))  # refusals reach no workflow
    app = create_internal_app(ctx)
    app.state.ctx = ctx  # the lifespan would set it; ASGITransport runs none
    signed_in_as(app, Principal(kind="person", name="mia", roles=frozenset({"clerk"}), via="session"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as clerk:
        page = await clerk.get("/bank")  # finance only
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert "<h1>Not allowed</h1>" in page.text and "GET /bank needs finance" in page.text
        api = await clerk.post("/api/ledger/events", json={"type": "premium_due"})  # ledger:write only
        assert api.status_code == 403 and api.headers["content-type"] == "application/json"
        assert "needs" in api.json()["detail"]
    assert audit_rows(engine) == 0
