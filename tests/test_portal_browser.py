"""The customer portal in a real browser (issue #14, "What must be shown"): Debian's chromium driven by
Playwright at a phone's viewport, against the real stack — dev server, worker, both apps on real
ports (tests/apps.served_apps). Each customer's contract falls due through the billing API and runs
the seconds-long demo plan until the case has sent its SMS with the pay link; the scenarios start
from that SMS:

(a) SMS link → step-up → open items → the notice PDF (the recorded bytes) → 3 instalments within
    the guardrails → the case holds the instalment plan;
(b) a proposal outside the guardrails becomes a request for a clerk;
(c) a dispute with a PDF attachment pauses the case and opens a clerk's task;
(d) paying by TestPay: the page says cover is back, and the contract is active in the ledger;
(e) wrong step-up answers are rate-limited and reveal nothing personal;
(f) new bank details during a case go to a clerk; the master data stay as they were.

Every portal page visited passes the accessibility check (tests/axe_check.py: axe-core's WCAG 2.1
A/AA rules, the skip link first, every control reachable by Tab), in German and once in English,
and no page logs a Content-Security-Policy violation.

One browser for the module, a new context (a new phone, its own client address) per scenario. The
README's portal screenshots are taken here: they go to the test's temporary directory, and with
SAVE_SCREENSHOTS=1 (dev/scripts/portal_screenshots.py sets it) into docs/img/ (or
PORTAL_SCREENSHOTS_DIR) when every test of the module passed — the pages show the run's dates, so a
normal run leaves the repository alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from pypdf import PdfWriter
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.client import Client

from core.money import format_eur
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.banking import DebtorAccount
from models.case import CaseStatus, HoldKind
from models.ledger import Customer, Message
from models.plan import DunningPlan, StepKind
from models.plans import BUILTIN_PLANS
from models.portal import PortalUpload, RequestKind, RequestQueue, RequestStatus, ServiceRequest
from tests.apps import served_apps
from tests.axe_check import Console, assert_accessible
from tests.helpers import contract_status
from web.auth import accounts
from web.public.portal.i18n import MENU, money
from web.render import amount_input
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
BERLIN = ZoneInfo("Europe/Berlin")
NOTICE_FEE_CENTS = 150  # the qualified notice's letter fee (the German plan)
BIRTH_DATE = date(1980, 5, 17)
# A phone: what most customers open an SMS link on.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "de-DE",
    "timezone_id": "Europe/Berlin",
}
AGENT = "A-7"
CLERK = "mia.clerk"
WAIT_MS = 30_000  # for pages and selectors: generous, the machine may be busy

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium (make test does, as root)"
)
pytestmark = needs_chromium


# --- the plan: the demo plan's seconds up to the pay-link SMS, then nothing -------------------------

PORTAL_PLAN = "demo-portal"


def portal_plan() -> DunningPlan:
    """demo-fast (steps seconds apart) without the handover and court steps: the case sends reminder,
    notice and the SMS with the pay link, suspends cover, and then waits — so a scenario never races
    the court application (in which a person decides on arrangements, DOMAIN.md §11)."""
    base = BUILTIN_PLANS["demo-fast"]
    steps = [s for s in base.steps if s.kind not in (StepKind.AGENCY_HANDOVER, StepKind.COURT_DUNNING)]
    return base.model_copy(update={"id": PORTAL_PLAN, "title": "Demo (seconds, up to the SMS)", "steps": steps})


# --- the customers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A customer in dunning: master data as the billing system sends them."""

    key: str  # the scenario's letter
    premium_cents: int
    name: str
    postal_code: str
    email: str
    phone: str
    street: str = "Heidestraße 17"
    city: str = "Köln"
    language: str = "de"

    @property
    def contract(self) -> str:
        return f"K-PORTAL-{self.key}"

    @property
    def customer(self) -> str:
        return f"C-PORTAL-{self.key}"

    @property
    def balance_cents(self) -> int:
        return self.premium_cents + NOTICE_FEE_CENTS

    def personal_data(self) -> list[str]:
        """What no page may show before step-up (the birth date in both languages' notation too)."""
        return [
            self.name,
            *self.name.split(),
            self.email,
            self.phone,
            self.phone.replace("+49", "0"),
            self.postal_code,
            self.street,
            BIRTH_DATE.strftime("%d.%m.%Y"),
            BIRTH_DATE.isoformat(),
        ]


PEOPLE = {
    p.key: p
    for p in (
        Person("A", 35_000, "Erika Mustermann", "51147", "erika@example.org", "+4915112345601"),
        Person("B", 35_000, "Jonas Weber", "50667", "jonas@example.org", "+4915112345602"),
        Person("C", 12_000, "Leyla Yilmaz", "50823", "leyla@example.org", "+4915112345603"),
        Person("D", 8_990, "Paul Becker", "53111", "paul@example.org", "+4915112345604", language="en"),
        Person("E", 9_900, "Greta Schulz", "40210", "greta@example.org", "+4915112345605"),
        Person("F", 15_000, "Tobias Neumann", "44135", "tobias@example.org", "+4915112345606"),
        Person("G", 52_000, "Hanna Fischer", "45127", "hanna@example.org", "+4915112345607"),
        Person("H", 11_000, "Jan Hoffmann", "28195", "jan@example.org", "+4915112345608"),
    )
}


@dataclass
class PortalStack:
    settings: Settings
    engine: Engine
    client: Client
    public_url: str
    internal_url: str
    billing: httpx.AsyncClient
    browser: Browser
    shots: Path
    pay_links: dict[str, str] = field(default_factory=dict)  # scenario → the link in its SMS
    addresses: int = 0  # each phone its own client address (the step-up is rate-limited per address)

    async def phone(self, language: str = "de") -> tuple[BrowserContext, Page, Console]:
        """A new phone: its own cookies and client address (X-Forwarded-For, which uvicorn trusts
        from 127.0.0.1 as from a reverse proxy)."""
        self.addresses += 1
        options = dict(PHONE, locale="en-GB" if language == "en" else "de-DE")
        context = await self.browser.new_context(
            **options,  # type: ignore[arg-type]
            extra_http_headers={"X-Forwarded-For": f"198.51.100.{self.addresses}"},
            accept_downloads=True,
        )
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        console = Console()
        page = await console.watch(context)
        return context, page, console


async def seed(billing: httpx.AsyncClient, person: Person) -> None:
    """The billing system sends the contract with the customer's master data."""
    contract = {
        "customer": {
            "customer_number": person.customer,
            "name": person.name,
            "street": person.street,
            "postal_code": person.postal_code,
            "city": person.city,
            "state": "NW",
            "email": person.email,
            "phone": person.phone,
        },
        "product": "Hausrat",
        "agent_code": AGENT,
        "dunning_plan": PORTAL_PLAN,
    }
    answer = await billing.put(f"/api/contracts/{person.contract}", json=contract)
    assert answer.status_code == 200, answer.text


async def fall_due(billing: httpx.AsyncClient, person: Person) -> None:
    """A premium due today, and it falls due: that starts the case."""
    today = datetime.now(BERLIN).date().isoformat()
    premium = f"PORTAL-{person.key}-P1"
    for event in (
        {
            "type": "premium_booked",
            "event_id": f"portal-{person.key}-1",
            "premium_id": premium,
            "contract_number": person.contract,
            "period_start": today,
            "period_end": today,
            "due_date": today,
            "amount_cents": person.premium_cents,
        },
        {"type": "premium_due", "event_id": f"portal-{person.key}-2", "premium_id": premium},
    ):
        answer = await billing.post("/api/ledger/events", json=event)
        assert answer.status_code == 200, answer.text


def complete_master_data(engine: Engine, person: Person) -> None:
    """What the billing API does not carry: the birth date (one of the step-up answers) and language."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, person.contract)
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None
        customer.birth_date = BIRTH_DATE
        customer.language = person.language
        session.add(customer)


def sms_pay_link(engine: Engine, contract_number: str) -> str | None:
    """The pay link in the SMS the case sent for this contract, if sent yet: the short form
    `/p/<id>` (one SMS segment), which redirects to the signed link `/pay/<token>`."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        query = select(Message).where(Message.contract_id == contract.id, Message.channel == "sms")
        for message in session.exec(query.order_by(col(Message.id).desc())):
            found = re.search(r"https?://[^\s\"<>]+/p/[A-Za-z0-9._-]+", message.body_text)
            if found:
                return found.group(0)
    return None


async def until(what: str, check: Callable[[], Awaitable[bool]] | Callable[[], bool], seconds: float = 120) -> None:
    """Poll a condition (the worker shares this event loop, so waiting yields to it)."""
    for _ in range(int(seconds * 4)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"waited {seconds} s: {what}")


async def case_status(client: Client, contract_number: str) -> CaseStatus:
    return await client.get_workflow_handle(case_workflow_id(contract_number)).query(DunningCase.status)


def recorded_notice_pdf(engine: Engine, contract_number: str) -> bytes:
    """The qualified notice's letter as the outbox recorded it when the case sent it."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        query = select(Message).where(
            Message.contract_id == contract.id, Message.kind == "qualified_notice", Message.channel == "letter"
        )
        letter = session.exec(query).one()
        assert letter.pdf is not None
        return letter.pdf


def requests_of(engine: Engine, contract_number: str) -> list[ServiceRequest]:
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        query = select(ServiceRequest).where(ServiceRequest.contract_id == contract.id)
        return list(session.exec(query.order_by(col(ServiceRequest.id))))


def master_data(engine: Engine, contract_number: str) -> dict[str, object]:
    """The customer's and the contract's rows and the accounts learned for the contract."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None
        accounts = session.exec(select(DebtorAccount).where(DebtorAccount.contract_id == contract.id))
        return {
            "customer": customer.model_dump(),
            "contract": contract.model_dump(),
            "accounts": [a.model_dump() for a in accounts],
        }


def a_pdf() -> bytes:
    """A one-page PDF, as a customer's scanned letter would be (checked by its content, not its name)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def money_de(cents: int) -> str:
    return money("de", cents)


def money_en(cents: int) -> str:
    return money("en", cents)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- fixtures: one stack, one browser, all customers seeded at once --------------------------------


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[PortalStack]:
    tmp_path = tmp_path_factory.mktemp("portal-browser")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    BUILTIN_PLANS[PORTAL_PLAN] = portal_plan()  # the worker runs in this process (models pass the sandbox)
    try:
        async with served_apps(tmp_path, "portal") as served:
            async with httpx.AsyncClient(
                base_url=served.settings.internal_base_url,
                timeout=30,
                headers={"Authorization": f"Bearer {served.billing_key}"},
            ) as billing:
                with session_scope(served.engine) as session:  # the insurer's agent (the agency's data)
                    service.upsert_agent(session, AGENT, name="Max Agent", email="max.agent@example.org")
                for person in PEOPLE.values():
                    await seed(billing, person)
                    complete_master_data(served.engine, person)
                for person in PEOPLE.values():
                    await fall_due(billing, person)
                found = PortalStack(
                    served.settings,
                    served.engine,
                    served.client,
                    served.settings.public_base_url,
                    served.settings.internal_base_url,
                    billing,
                    browser,
                    shots,
                )
                for person in PEOPLE.values():
                    await until(
                        f"the case of {person.contract} sends its SMS with the pay link",
                        lambda p=person: sms_pay_link(served.engine, p.contract) is not None,
                    )
                    link = sms_pay_link(served.engine, person.contract)
                    assert link is not None and link.startswith(f"{found.public_url}/p/")
                    found.pay_links[person.key] = link
                yield found
    finally:
        del BUILTIN_PLANS[PORTAL_PLAN]
    if os.environ.get("SAVE_SCREENSHOTS") and request.session.testsfailed == 0:
        keep = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or DOCS_IMG)
        keep.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("portal-*.png"):
            shutil.copyfile(shot, keep / shot.name)


async def checked(page: Page, console: Console, where: str, skip_link: bool = True) -> None:
    """The page as a customer meets it: accessible, and nothing blocked by the CSP."""
    await assert_accessible(page, where, skip_link)
    assert console.csp_violations() == [], console.messages


# --- the customer's way in ---------------------------------------------------------------------------


def shows_nothing_personal(person: Person, html: str, text: str) -> None:
    leaked = [item for item in person.personal_data() if item in html or item in text]
    assert leaked == [], f"personal data on a page before step-up: {leaked}"


async def open_sms_link(stack: PortalStack, page: Page, console: Console, person: Person, shot: str = "") -> None:
    """The customer taps the link in the SMS: /p/<id> redirects to the pay page, which shows the
    masked contract and the amount, nothing personal, and the way to step up."""
    opened = await page.goto(stack.pay_links[person.key])
    assert opened is not None and opened.status == 200 and "/pay/" in page.url
    shows_nothing_personal(person, await page.content(), await page.inner_text("body"))
    await checked(page, console, "GET /pay/{token}")  # the pay page is in the portal's frame: skip link first
    if shot:
        await page.screenshot(path=stack.shots / shot, full_page=True)


async def to_step_up(stack: PortalStack, page: Page, console: Console, person: Person, shot: str = "") -> None:
    await page.locator("#portal-link").click()
    await page.wait_for_url(re.compile(r"/verify/[^/]+$"))
    shows_nothing_personal(person, await page.content(), await page.inner_text("body"))
    await checked(page, console, "GET /verify/{token}")
    if shot:
        await page.screenshot(path=stack.shots / shot, full_page=True)


def newest_code(engine: Engine, contract_number: str, channel: str) -> str | None:
    """The one-time code as the customer's phone or mailbox got it (the outbox row is the delivery
    in the embedded default)."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        query = select(Message).where(
            Message.contract_id == contract.id, Message.kind == "portal_code", Message.channel == channel
        )
        message = session.exec(query.order_by(col(Message.id).desc())).first()
        found = re.search(r"\b(\d{6})\b", message.body_text) if message is not None else None
        return found.group(1) if found else None


async def step_up_by_sms_code(stack: PortalStack, page: Page, console: Console, person: Person) -> None:
    """A one-time code by SMS to the number on file, typed in: the portal's overview."""
    await page.get_by_label("per SMS an die bei uns hinterlegte Mobilnummer").check()
    await page.get_by_role("button", name="Code senden").click()
    code_field = page.get_by_label("Code", exact=True)
    await code_field.wait_for()
    shows_nothing_personal(person, await page.content(), await page.inner_text("body"))
    await checked(page, console, "GET /verify/{token} (code sent)")
    code = newest_code(stack.engine, person.contract, "sms")
    assert code is not None, "no code in the outbox"
    await code_field.fill(code)
    await page.get_by_role("button", name="Code bestätigen").click()
    await page.wait_for_url(f"{stack.public_url}/portal")


async def step_up_by_postcode(
    stack: PortalStack, page: Page, person: Person, postcode: str = "", birth_date: str = "", english: bool = False
) -> None:
    """Postcode and date of birth (the customer's own unless given)."""
    await page.get_by_label("Postcode of your address" if english else "Postleitzahl Ihrer Anschrift").fill(
        postcode or person.postal_code
    )
    await page.get_by_label("Date of birth" if english else "Geburtsdatum").fill(birth_date or BIRTH_DATE.isoformat())
    await page.get_by_role("button", name="Confirm" if english else "Bestätigen", exact=True).click()


# --- the scenarios ---------------------------------------------------------------------------------


async def test_a_from_the_sms_link_a_customer_steps_up_sees_the_items_downloads_the_notice_and_agrees_3_instalments(
    stack: PortalStack,
) -> None:
    person = PEOPLE["A"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person, shot="portal-pay-link.png")
    await to_step_up(stack, page, console, person, shot="portal-step-up.png")
    await step_up_by_sms_code(stack, page, console, person)

    # The overview: the open items like the notice, to the cent, and the case in plain words.
    main = await page.inner_text("main")
    assert await page.text_content("#total") == money_de(person.balance_cents)
    items = page.get_by_role("table", name="Offene Posten")
    assert money_de(person.premium_cents) in await items.inner_text()
    assert money_de(NOTICE_FEE_CENTS) in await items.inner_text()
    assert "K-PORTAL-A" not in main  # the contract number is shown masked
    await checked(page, console, "GET /portal")
    await page.screenshot(path=stack.shots / "portal-overview.png", full_page=True)

    # The notice as a PDF: the very bytes the case recorded when it sent the letter.
    notice_link = page.get_by_role("link", name=re.compile(r"Qualifizierte Mahnung .* herunterladen \(PDF\)"))
    async with page.expect_download() as waiting:
        await notice_link.click()
    download = await waiting.value
    downloaded = Path(await download.path()).read_bytes()
    assert downloaded.startswith(b"%PDF")
    assert sha256(downloaded) == sha256(recorded_notice_pdf(stack.engine, person.contract))

    # Three monthly instalments, inside the guardrails (351,50 €: up to 4 of at least 50 €).
    await page.get_by_role("link", name="Raten oder Aufschub", exact=True).click()
    await page.wait_for_url(f"{stack.public_url}/portal/arrangement")
    await checked(page, console, "GET /portal/arrangement")
    await page.get_by_label("Monatliche Raten").check()
    await page.get_by_label("Anzahl der Raten").fill("3")
    first_due = datetime.now(BERLIN).date() + timedelta(days=7)
    await page.get_by_label("Erste Rate am").fill(first_due.isoformat())
    await page.get_by_role("button", name="Vorschau anzeigen").click()
    await page.get_by_role("button", name="Verbindlich vereinbaren").wait_for()
    schedule = page.get_by_role("table", name="Ratenplan")
    assert await schedule.locator("tbody tr").count() == 3
    assert money_de(person.balance_cents) in await schedule.locator("tfoot").inner_text()
    await checked(page, console, "POST /portal/arrangement (preview)")
    await page.screenshot(path=stack.shots / "portal-arrangement.png", full_page=True)
    await page.get_by_role("button", name="Verbindlich vereinbaren").click()
    await page.get_by_role("heading", name="Vereinbart", level=1).wait_for()
    await checked(page, console, "POST /portal/arrangement (agreed)")
    await page.screenshot(path=stack.shots / "portal-arrangement-agreed.png", full_page=True)

    # The case holds the plan: three instalments adding up to the balance, the first on the chosen day.
    status = await case_status(stack.client, person.contract)
    assert status.hold is not None and status.hold.kind == HoldKind.INSTALMENTS
    assert [i.due for i in status.hold.schedule][:1] == [first_due] and len(status.hold.schedule) == 3
    assert sum(i.amount_cents for i in status.hold.schedule) == person.balance_cents
    # ... and the overview shows it.
    await page.get_by_role("link", name="Übersicht", exact=True).click()
    plan = page.get_by_role("table", name="Ihr Ratenplan")
    assert await plan.locator("tbody tr").count() == 3
    await context.close()
    assert console.csp_violations() == [], console.messages


async def test_e_wrong_step_up_answers_are_rate_limited_and_reveal_nothing(stack: PortalStack) -> None:
    person = PEOPLE["E"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    await to_step_up(stack, page, console, person)
    verify_url = page.url
    wrong = [("40211", BIRTH_DATE.isoformat()), (person.postal_code, "1980-05-18"), ("99999", "1999-01-01")]
    allowed = stack.settings.portal_step_up_failures  # wrong answers per link and hour (5): the last one locks
    assert allowed <= 5  # and the per-address limit (5 a minute) lets them all through
    answers: list[int] = []
    for attempt in range(allowed):
        postcode, birth = wrong[attempt % len(wrong)]
        async with page.expect_response(lambda r: r.request.method == "POST") as posted:
            await step_up_by_postcode(stack, page, person, postcode, birth)
        answers.append((await posted.value).status)
        alert = await page.get_by_role("alert").inner_text()
        assert "nicht gepasst" in alert or "Zu viele Versuche" in alert
        shows_nothing_personal(person, await page.content(), await page.inner_text("body"))
        if attempt == 0:
            await checked(page, console, "POST /verify/{token} (did not match)")
    assert answers == [422] * (allowed - 1) + [429]
    assert "Zu viele Versuche" in await page.get_by_role("alert").inner_text()
    await checked(page, console, "POST /verify/{token} (locked)")
    await page.screenshot(path=stack.shots / "portal-step-up-locked.png", full_page=True)

    # Now even the right answer gets nowhere, from this phone ...
    await page.goto(verify_url)
    assert await page.get_by_label("Postleitzahl Ihrer Anschrift").count() == 0  # the form is gone
    again = await page.request.post(
        verify_url, form={"method": "postcode_birth_date", "postcode": person.postal_code, "birth_date": "x"}
    )
    assert again.status == 429  # the per-address limit on POST /verify (5 a minute), or else the link's lock
    # ... or from another one: the link itself is locked for step-up.
    other, other_page, other_console = await stack.phone()
    locked = await other_page.goto(verify_url)
    assert locked is not None and locked.status == 429
    shows_nothing_personal(person, await other_page.content(), await other_page.inner_text("body"))
    assert "Zu viele Versuche" in await other_page.get_by_role("alert").inner_text()
    portal = await other_page.goto(f"{stack.public_url}/portal")
    assert portal is not None and other_page.url == f"{stack.public_url}/portal/ended"
    await other.close()
    await context.close()
    assert console.csp_violations() == other_console.csp_violations() == [], console.messages


async def test_the_accessibility_check_finds_unlabelled_fields_low_contrast_and_a_missing_skip_link(
    browser: Browser,
) -> None:
    """The check is not vacuous: a page with the usual mistakes fails it, naming each."""
    context = await browser.new_context(**PHONE)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.set_content(
        '<html lang="de"><head><title>Falsch</title></head><body><main>'
        '<h1>Raten</h1><p style="color:#bbb;background:#fff">Kaum lesbar</p>'
        '<input id="n" type="number"><button type="submit">Senden</button></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        await assert_accessible(page, "a bad page")
    report = str(failed.value)
    assert "color-contrast (serious)" in report and "label (critical)" in report and "#n" in report
    assert "not the skip link" in report
    await context.close()


async def test_b_a_proposal_outside_the_guardrails_becomes_a_request_for_a_clerk(stack: PortalStack) -> None:
    person = PEOPLE["B"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    await to_step_up(stack, page, console, person)
    await step_up_by_postcode(stack, page, person)
    await page.wait_for_url(f"{stack.public_url}/portal")

    # Six instalments for 351,50 €: the plan allows up to four in this band.
    await page.get_by_role("link", name="Raten oder Aufschub", exact=True).click()
    await page.get_by_label("Monatliche Raten").check()
    await page.get_by_label("Anzahl der Raten").fill("6")
    await page.get_by_label("Erste Rate am").fill((datetime.now(BERLIN).date() + timedelta(days=7)).isoformat())
    await page.get_by_role("button", name="Vorschau anzeigen").click()
    send = page.get_by_role("button", name="An eine Sachbearbeiterin / einen Sachbearbeiter senden")
    await send.wait_for()
    assert "nicht selbst vereinbaren" in await page.locator("#outside").inner_text()
    await checked(page, console, "POST /portal/arrangement (outside the guardrails)")
    await page.screenshot(path=stack.shots / "portal-arrangement-outside.png", full_page=True)
    await page.get_by_label("Nachricht an uns").fill("Ich bin gerade arbeitslos; ab März geht es wieder.")
    await send.click()
    await page.get_by_role("heading", name="Ihre Anfrage ist angekommen", level=1).wait_for()
    assert "Sachbearbeiter" in await page.get_by_role("status").inner_text()
    await checked(page, console, "POST /portal/arrangement (sent to a clerk)")

    # A request open in the clerks' queue, with a due date; the case holds no instalment plan.
    [request] = requests_of(stack.engine, person.contract)
    assert (request.queue, request.kind, request.status) == (
        RequestQueue.CLERK,
        RequestKind.ARRANGEMENT,
        RequestStatus.OPEN,
    )
    assert request.due_at is not None and request.created_by == "customer portal"
    status = await case_status(stack.client, person.contract)
    assert status.hold is None or status.hold.kind != HoldKind.INSTALMENTS
    await context.close()
    assert console.csp_violations() == [], console.messages


async def test_c_a_dispute_with_a_pdf_pauses_the_case_and_opens_a_clerk_task(
    stack: PortalStack, tmp_path: Path
) -> None:
    person = PEOPLE["C"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    await to_step_up(stack, page, console, person)
    await step_up_by_postcode(stack, page, person)
    await page.wait_for_url(f"{stack.public_url}/portal")

    await page.get_by_role("link", name="Forderung bestreiten", exact=True).click()
    await page.wait_for_url(f"{stack.public_url}/portal/dispute")
    await checked(page, console, "GET /portal/dispute")
    scan = tmp_path / "kontoauszug.pdf"
    scan.write_bytes(a_pdf())
    await page.get_by_label("Begründung").fill("Ich habe den Beitrag am 2. des Monats überwiesen, siehe Kontoauszug.")
    await page.get_by_label("Beleg").set_input_files(scan)
    await page.screenshot(path=stack.shots / "portal-dispute.png", full_page=True)
    await page.get_by_role("button", name="Absenden").click()
    await page.get_by_role("heading", name="Ihre Anfrage ist angekommen", level=1).wait_for()
    assert "Das Mahnverfahren ruht" in await page.get_by_role("status").inner_text()
    await checked(page, console, "POST /portal/dispute (sent)")

    # The case is paused under a dispute, and a clerk has the task with the file, byte for byte.
    status = await case_status(stack.client, person.contract)
    assert status.hold is not None and status.hold.kind == HoldKind.DISPUTE
    [request] = requests_of(stack.engine, person.contract)
    assert (request.queue, request.kind, request.status) == (
        RequestQueue.CLERK,
        RequestKind.DISPUTE,
        RequestStatus.OPEN,
    )
    assert request.upload_id is not None and request.due_at is not None
    with session_scope(stack.engine) as session:
        upload = session.get(PortalUpload, request.upload_id)
        assert upload is not None
        assert (upload.content_type, upload.sha256) == ("application/pdf", sha256(scan.read_bytes()))
    await context.close()
    assert console.csp_violations() == [], console.messages

    # The clerk signs in on the internal app and finds the task in the back office's queue, with the file.
    with session_scope(stack.engine) as session:
        password = accounts.add_staff(session, CLERK, ["clerk"], "test")
    office = await stack.browser.new_context(accept_downloads=True)
    desk = await office.new_page()
    await desk.goto(f"{stack.internal_url}/requests")
    await desk.fill("#name", CLERK)
    await desk.fill("#password", password)
    await desk.get_by_role("button", name="Sign in").click()
    await desk.wait_for_url(f"{stack.internal_url}/requests")
    await desk.get_by_role("link", name=f"Request {request.id}", exact=True).click()
    await desk.wait_for_url(f"{stack.internal_url}/requests/{request.id}")
    async with desk.expect_download() as waiting:
        await desk.locator(f"a[href='/requests/{request.id}/attachment']").first.click()
    attachment = Path(await (await waiting.value).path()).read_bytes()
    assert sha256(attachment) == sha256(scan.read_bytes())
    await office.close()


async def test_d_paying_by_testpay_the_page_says_cover_is_restored_and_the_contract_is_active_in_english(
    stack: PortalStack,
) -> None:
    """Paul's language on file is English: the step-up and portal pages speak it (the one English walk)."""
    person = PEOPLE["D"]
    context, page, console = await stack.phone(language="en")
    await open_sms_link(stack, page, console, person)
    await page.locator("#portal-link").click()
    await page.get_by_role("heading", name="Confirm it is you", level=1).wait_for()
    await checked(page, console, "GET /verify/{token} (English)")
    await step_up_by_postcode(stack, page, person, english=True)
    await page.wait_for_url(f"{stack.public_url}/portal")
    assert await page.text_content("#total") == money_en(person.balance_cents)
    assert await page.get_attribute("html", "lang") == "en"
    await checked(page, console, "GET /portal (English)")

    await page.get_by_role("link", name="Pay", exact=True).click()
    await page.wait_for_url(f"{stack.public_url}/portal/pay")
    await checked(page, console, "GET /portal/pay (English)")
    await page.get_by_label(f"Everything at once: {money_en(person.balance_cents)}").check()
    await page.get_by_label("TestPay (test mode)").check()
    await page.screenshot(path=stack.shots / "portal-pay.png", full_page=True)
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(re.compile(r"/testpay/checkout/"))
    assert await page.text_content("#amount") == format_eur(person.balance_cents)
    await page.get_by_role("button", name="Pay now").click()
    await page.wait_for_url(re.compile(r"/portal/pay/result"))

    # The page waited for the case's answer (issue #15 P2): cover restored, and the ledger says so already.
    assert contract_status(stack.engine, person.contract) == "active"
    result = await page.locator("#contract-1").inner_text()
    assert "Your cover is restored" in result and "Nothing is open on this contract any more" in result
    assert f"Paid: {money_en(person.balance_cents)}" in result
    await checked(page, console, "GET /portal/pay/result (English)")
    await page.screenshot(path=stack.shots / "portal-pay-result.png", full_page=True)
    await context.close()
    assert console.csp_violations() == [], console.messages


async def test_h_paying_everything_by_the_sms_pay_link_the_next_page_says_cover_is_restored(
    stack: PortalStack,
) -> None:
    """No step-up: the SMS's pay link, the amount as offered, TestPay — and the page after paying says
    cover is back, because it is (issue #15 P2: the page waits for the case's answer)."""
    person = PEOPLE["H"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    assert await page.input_value("#amount") == amount_input(person.balance_cents)
    await page.get_by_role("button", name="Weiter zur Zahlung").click()
    await page.wait_for_url(re.compile(r"/testpay/checkout/"))
    await page.get_by_role("button", name="Pay now").click()
    await page.wait_for_url(re.compile(r"/pay/[^/]+/done"))

    assert contract_status(stack.engine, person.contract) == "active"
    cover = await page.locator("#cover").inner_text()
    assert "Ihr Versicherungsschutz ist wiederhergestellt" in cover
    assert await page.text_content("#balance") == "Nichts offen – vielen Dank"
    await checked(page, console, "GET /pay/{token}/done")
    await page.screenshot(path=stack.shots / "portal-pay-link-done.png", full_page=True)
    await context.close()
    assert console.csp_violations() == [], console.messages


async def test_f_new_bank_details_during_a_case_go_to_a_clerk_and_leave_the_master_data_alone(
    stack: PortalStack,
) -> None:
    person = PEOPLE["F"]
    before = master_data(stack.engine, person.contract)
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    await to_step_up(stack, page, console, person)
    await step_up_by_postcode(stack, page, person)
    await page.wait_for_url(f"{stack.public_url}/portal")

    await page.get_by_role("link", name="Bankverbindung", exact=True).click()
    await page.wait_for_url(f"{stack.public_url}/portal/bank")
    await checked(page, console, "GET /portal/bank")
    await page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    await page.get_by_label("Kontoinhaber").fill(person.name)
    await page.locator("#mandate-yes").check()
    await page.get_by_role("button", name="Absenden").click()
    await page.get_by_role("heading", name="Ihre Anfrage ist angekommen", level=1).wait_for()
    assert "erst, wenn sie geprüft ist" in await page.get_by_role("status").inner_text()
    await checked(page, console, "POST /portal/bank (sent)")

    [request] = requests_of(stack.engine, person.contract)
    assert (request.queue, request.kind, request.status) == (
        RequestQueue.CLERK,
        RequestKind.BANK_DETAILS,
        RequestStatus.OPEN,
    )
    assert request.details["iban"] == "DE89370400440532013000"
    assert master_data(stack.engine, person.contract) == before  # never applied automatically (DOMAIN.md §6)
    assert not (await case_status(stack.client, person.contract)).closed
    await context.close()
    assert console.csp_violations() == [], console.messages


async def test_every_page_of_the_portal_menu_passes_the_check_in_german_and_after_switching_to_english(
    stack: PortalStack,
) -> None:
    person = PEOPLE["G"]
    context, page, console = await stack.phone()
    await open_sms_link(stack, page, console, person)
    await to_step_up(stack, page, console, person)
    await step_up_by_postcode(stack, page, person)
    await page.wait_for_url(f"{stack.public_url}/portal")
    for language in ("de", "en"):
        for path, _key in MENU:
            opened = await page.goto(f"{stack.public_url}{path}")
            assert opened is not None and opened.status == 200, path
            assert await page.get_attribute("html", "lang") == language
            await checked(page, console, f"GET {path} ({language})")
            if path == "/portal/contact" and language == "de":
                await page.screenshot(path=stack.shots / "portal-contact.png", full_page=True)
            if path == "/portal/messages" and language == "de":
                await page.screenshot(path=stack.shots / "portal-messages.png", full_page=True)
        if language == "de":  # the language switch in the page's header
            await page.get_by_label("Sprache").select_option("en")
            await page.get_by_role("button", name="Wechseln").click()
            await page.get_by_role("button", name="Switch").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{stack.public_url}/portal/ended")
    await checked(page, console, "GET /portal/ended (en)")
    left = await page.goto(f"{stack.public_url}/portal")
    assert left is not None and page.url == f"{stack.public_url}/portal/ended"  # the session is over
    await context.close()
    assert console.csp_violations() == [], console.messages
