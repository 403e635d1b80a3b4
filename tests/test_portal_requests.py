"""The customer's own arrangements and requests in the portal (issue #14, DOMAIN.md §§6, 11): inside the
plan's guardrails an arrangement is agreed by the case at once; outside them — or when the case says a
person decides — the same proposal becomes a clerk's request with a due date, and the case is unchanged.
A dispute pauses the case and lands in the clerk queue with its attachment; a proof of payment goes to
finance; new bank details go to a clerk and never touch the master data. Time-skipping server with the
real worker; both apps in one ASGI app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core import selfservice
from core.calendar import add_months
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent
from models.banking import DebtorAccount
from models.case import CaseStatus, CustomerArrangement, HoldKind, Instalment
from models.ledger import Customer
from models.plan import SelfServiceRules
from models.portal import PortalUpload, RequestStatus, ServiceRequest
from tests.apps import BothApps
from tests.conftest import settle
from tests.helpers import advance_until, berlin_today, form_post, hidden_fields, open_case, status
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from tests.test_portal_uploads import pdf_bytes
from web.deps import AppContext
from web.public.portal import i18n
from web.public.portal import requests as requests_module
from web.public.portal.case import Refused
from web.public.portal.i18n import Words
from workflows.dunning import DunningCase

CONTRACT = "K-100001"
MASKED = "•••••001"


@pytest_asyncio.fixture
async def apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> AsyncIterator[BothApps]:
    yield BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )


async def customer_in_dunning(
    env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    apps: BothApps,
    cents: int,
    language: str = "de",
) -> tuple[httpx.AsyncClient, WorkflowHandle[DunningCase, CaseStatus], date]:
    """A customer whose contract has a running case over `cents`, signed in to the portal."""
    today = berlin_today(await env.get_current_time())
    customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-1", today, cents)], language=language)
    handle = await open_case(env, worker.task_queue, CONTRACT, "P-1")
    await advance_until(env, handle, lambda s: s.balance_cents == cents, step=timedelta(minutes=1))
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    return portal_client(apps, portal_cookie(engine, customer_id, token_id, language)), handle, today


def requests_of(engine: Engine) -> list[ServiceRequest]:
    with session_scope(engine) as session:
        return list(session.exec(select(ServiceRequest).order_by(ServiceRequest.id)))  # type: ignore[arg-type]


def portal_notes(engine: Engine) -> list[dict[str, object]]:
    with session_scope(engine) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.contract_number == CONTRACT).order_by(AuditEvent.id)  # type: ignore[arg-type]
        ).all()
        return [dict(r.detail) for r in rows if "portal_action" in r.detail]


def contract_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        return str(service.get_contract(session, CONTRACT).id)


async def propose(
    client: httpx.AsyncClient, engine: Engine, step: str, fields: dict[str, str], note: str = ""
) -> httpx.Response:
    data = {"step": step, "contract": contract_id(engine), **fields}
    if note:
        data["note"] = note
    return await form_post(client, "/portal/arrangement", "/portal/arrangement", data)


def instalments(count: int, first_due: date) -> dict[str, str]:
    return {"kind": "instalments", "instalments": str(count), "first_due": first_due.isoformat()}


def text_of(page: httpx.Response) -> str:
    """The page's text without tags, whitespace collapsed (amounts contain no-break spaces)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)).replace("\xa0", " ")


async def test_three_instalments_within_the_guardrails_are_agreed_and_the_case_shows_the_schedule(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 50_000)
    form = await client.get("/portal/arrangement")
    assert form.status_code == 200, form.text
    shown = text_of(form)
    assert "Bis zu 4 monatliche Raten von mindestens 50,00 €" in shown and "500,00 €" in shown
    assert CONTRACT not in form.text and MASKED in form.text  # the number is never shown in full

    first_due = today + timedelta(days=7)
    preview = await propose(client, engine, "preview", instalments(3, first_due))
    assert preview.status_code == 200, preview.text
    shown = text_of(preview)
    assert "innerhalb der Grenzen" in shown
    assert "166,68 €" in shown and shown.count("166,66 €") == 2 and "500,00 €" in shown  # the odd cents first
    assert (await status(handle)).hold is None  # a preview changes nothing

    agreed = await propose(client, engine, "confirm", instalments(3, first_due))
    assert agreed.status_code == 200, agreed.text
    shown = text_of(agreed)
    assert "Das Mahnverfahren ruht, solange die Raten pünktlich eingehen" in shown
    assert "läuft das Mahnverfahren am nächsten Werktag weiter" in shown

    case = await status(handle)
    assert case.hold is not None and case.hold.kind == HoldKind.INSTALMENTS
    assert case.hold.schedule == [
        Instalment(due=add_months(first_due, month), amount_cents=cents)
        for month, cents in enumerate([16_668, 16_666, 16_666])
    ]
    assert sum(i.amount_cents for i in case.hold.schedule) == 50_000
    assert requests_of(engine) == []  # agreed by the case, no person needed
    assert portal_notes(engine) == [{"portal_action": "arrangement_instalments"}]  # filed under the contract
    await client.aclose()


def working_days_after(start: date, count: int) -> date:
    from core.calendar import add_working_days

    return add_working_days(start, count)


async def test_six_instalments_for_500_eur_are_outside_the_guardrails_and_become_a_clerk_request(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 50_000)
    before = await status(handle)
    proposal = instalments(6, today + timedelta(days=7))
    preview = await propose(client, engine, "preview", proposal)
    assert preview.status_code == 200, preview.text
    shown = text_of(preview)
    assert "Diesen Vorschlag können Sie nicht selbst vereinbaren" in shown
    assert "höchstens 4 Raten von mindestens 50,00 €" in shown
    assert shown.count("83,35 €") == 1 and shown.count("83,33 €") == 5  # the exact schedule all the same
    assert "Verbindlich vereinbaren" not in shown  # nothing to agree, only to ask

    # A forged confirm of the same proposal is judged again and agrees nothing.
    forged = await propose(client, engine, "confirm", proposal)
    assert forged.status_code == 200 and "nicht selbst vereinbaren" in text_of(forged)

    sent = await propose(client, engine, "request", proposal, note="Ich bin gerade arbeitslos.")
    assert sent.status_code == 200, sent.text
    [row] = requests_of(engine)
    assert (row.queue, row.kind, row.status) == ("clerk", "arrangement", RequestStatus.OPEN)
    assert row.details["instalments"] == "6" and row.details["note"] == "Ich bin gerade arbeitslos."
    assert row.details["outside_guardrails"] == "too_many_instalments"
    assert MASKED in row.summary and CONTRACT not in row.summary and row.upload_id is None
    assert row.due_at is not None and row.case_id == before.case_id
    answer_by = working_days_after(today, 2)
    assert "innerhalb von zwei Werktagen" in text_of(sent)
    assert f"spätestens am {answer_by.day}." in text_of(sent)  # the row's due date, in words

    after = await status(handle)
    assert after.hold is None and after.stage == before.stage and after.balance_cents == 50_000
    assert portal_notes(engine)[-1] == {"portal_action": "arrangement", "request_id": row.id}
    await client.aclose()


async def test_a_second_self_service_arrangement_in_the_same_case_goes_to_a_clerk(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 50_000)
    first = await propose(client, engine, "confirm", instalments(2, today + timedelta(days=3)))
    assert first.status_code == 200 and "Ihre Ratenzahlung ist vereinbart" in first.text
    agreed = await status(handle)

    # Inside the guardrails by the plan, so the preview offers it; the case knows it is the second.
    second = {"kind": "deferral", "pay_by": (today + timedelta(days=10)).isoformat()}
    refused = await propose(client, engine, "confirm", second)
    assert refused.status_code == 200, refused.text
    shown = text_of(refused)
    assert "über eine weitere entscheidet eine Sachbearbeiterin" in shown and "An eine Sachbearbeiterin" in shown
    assert (await status(handle)).hold == agreed.hold  # the first arrangement stands, untouched

    # The page's own form sends the proposal on, with what the case said.
    sent = await client.post("/portal/arrangement", data=hidden_fields(refused.text, "/portal/arrangement"))
    assert sent.status_code == 200, sent.text
    [row] = requests_of(engine)
    assert (row.kind, row.status, row.details["pay_by"]) == ("arrangement", RequestStatus.OPEN, second["pay_by"])
    assert row.details["outside_guardrails"] == "already_used"
    await client.aclose()


async def test_a_deferral_within_14_days_for_150_eur_is_a_promise_to_pay(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 15_000)
    form = text_of(await client.get("/portal/arrangement"))
    assert "nur mit einer Sachbearbeiterin oder einem Sachbearbeiter möglich" in form  # no instalments below 200 EUR
    pay_by = today + timedelta(days=14)
    deferral = {"kind": "deferral", "pay_by": pay_by.isoformat()}
    preview = await propose(client, engine, "preview", deferral)
    assert "150,00 € bis spätestens" in text_of(preview) and "innerhalb der Grenzen" in text_of(preview)
    # One day more than the plan allows is outside the guardrails: the preview offers a clerk instead.
    longer = await propose(
        client, engine, "preview", {"kind": "deferral", "pay_by": (pay_by + timedelta(1)).isoformat()}
    )
    assert "Ein Aufschub ist hier bis zu 14 Tage möglich" in text_of(longer)
    assert "An eine Sachbearbeiterin" in text_of(longer)
    agreed = await propose(client, engine, "confirm", deferral)
    assert agreed.status_code == 200, agreed.text
    assert "Ihr Aufschub ist vereinbart: bitte zahlen Sie 150,00 €" in text_of(agreed)
    case = await status(handle)
    assert case.hold is not None and case.hold.kind == HoldKind.PROMISE
    assert case.hold.until is not None and case.hold.until.date() >= pay_by
    assert requests_of(engine) == []

    # Another arrangement in this case is for a clerk: the preview says so up front (the case's count).
    again = await propose(client, engine, "preview", {"kind": "deferral", "pay_by": (pay_by).isoformat()})
    shown = text_of(again)
    assert "schon 1 Vereinbarung selbst getroffen" in shown and "An eine Sachbearbeiterin" in shown
    await client.aclose()


async def test_bad_arrangement_input_is_named_and_changes_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 50_000)
    not_a_date = await propose(
        client, engine, "confirm", {"kind": "instalments", "instalments": "3", "first_due": "soon"}
    )
    assert not_a_date.status_code == 422 and "„Erste Rate am“ ist kein Datum" in not_a_date.text
    assert 'aria-invalid="true" aria-describedby="form-error"' in not_a_date.text
    past = await propose(client, engine, "confirm", instalments(3, today - timedelta(days=1)))
    assert past.status_code == 422 and "nicht in der Vergangenheit" in past.text
    one = await propose(client, engine, "confirm", instalments(1, today + timedelta(days=1)))
    assert one.status_code == 422 and "mindestens 2 Raten" in one.text
    other = await form_post(
        client,
        "/portal/arrangement",
        "/portal/arrangement",
        {"step": "confirm", "contract": "999", **instalments(3, today)},
    )
    assert other.status_code == 422 and "einen Ihrer Verträge" in other.text
    assert (await status(handle)).hold is None and requests_of(engine) == []
    await client.aclose()


async def test_a_refusal_reads_in_english_when_the_customer_chose_english(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, _, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 50_000, language="en")
    preview = await propose(client, engine, "preview", instalments(6, today + timedelta(days=7)))
    shown = text_of(preview)
    assert '<html lang="en">' in preview.text
    assert "You cannot agree this proposal yourself" in shown
    assert "At most 4 instalments of at least €50.00 are possible here." in shown
    late = await propose(
        client, engine, "preview", {"kind": "deferral", "pay_by": (today + timedelta(days=30)).isoformat()}
    )
    latest = today + timedelta(days=14)
    assert f"A deferral is possible here for up to 14 days, that is until {latest.day} " in text_of(late)
    await client.aclose()


async def test_a_dispute_with_a_pdf_pauses_the_case_and_waits_in_the_clerk_queue_with_its_file(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, _ = await customer_in_dunning(time_env, worker, engine, settings, apps, 30_000)
    form = await client.get("/portal/dispute")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    sent = await form_post(
        client,
        "/portal/dispute",
        "/portal/dispute",
        {"reason": "Der Vertrag war zum 31.5. gekündigt."},
        files={"attachment": ("kündigung.pdf", pdf_bytes(), "application/pdf")},
    )
    assert sent.status_code == 200, sent.text
    assert "Das Mahnverfahren ruht, solange eine Sachbearbeiterin oder ein Sachbearbeiter" in text_of(sent)

    case = await status(handle)
    assert case.hold is not None and case.hold.kind == HoldKind.DISPUTE
    [row] = requests_of(engine)
    assert (row.queue, row.kind, row.status) == ("clerk", "dispute", RequestStatus.OPEN)
    assert row.details == {"reason": "Der Vertrag war zum 31.5. gekündigt."} and row.due_at is not None
    with session_scope(engine) as session:
        upload = session.get(PortalUpload, row.upload_id)
        assert upload is not None and upload.content_type == "application/pdf" and upload.data == pdf_bytes()
    note = portal_notes(engine)[-1]
    assert note == {"portal_action": "dispute", "request_id": row.id}  # no reason, no file name

    # A reason with control characters, or none, is named and changes nothing.
    bad = await form_post(client, "/portal/dispute", "/portal/dispute", {"reason": "paid\x00\x1b[2J"})
    assert bad.status_code == 422 and "Steuerzeichen" in bad.text
    empty = await form_post(client, "/portal/dispute", "/portal/dispute", {"reason": "   "})
    assert empty.status_code == 422 and "Bitte füllen Sie „Begründung“ aus" in empty.text
    assert len(requests_of(engine)) == 1
    await client.aclose()


async def test_a_request_the_case_refuses_leaves_no_request_in_a_queue_and_no_file(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, _ = await customer_in_dunning(time_env, worker, engine, settings, apps, 30_000)
    await settle(time_env.client, handle.id)
    await handle.terminate("ended elsewhere")  # the case is gone between page and post
    sent = await form_post(
        client,
        "/portal/proof",
        "/portal/proof",
        {"note": "bezahlt"},
        files={"attachment": ("beleg.pdf", pdf_bytes(), "application/pdf")},
    )
    assert sent.status_code == 409, sent.text
    with session_scope(engine) as session:
        assert session.exec(select(PortalUpload)).all() == []
    assert all(r.status == RequestStatus.DISCARDED for r in requests_of(engine))
    await client.aclose()


async def test_new_bank_details_go_to_a_clerk_and_the_master_data_stays_as_it_was(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, _ = await customer_in_dunning(time_env, worker, engine, settings, apps, 30_000)

    def master_data() -> tuple[object, ...]:
        with session_scope(engine) as session:
            contract = service.get_contract(session, CONTRACT)
            customer = session.get(Customer, contract.customer_id)
            accounts = session.exec(select(DebtorAccount)).all()
            return (
                contract.model_dump(),
                customer.model_dump() if customer else None,
                [a.model_dump() for a in accounts],
            )

    before, case_before = master_data(), await status(handle)
    wrong = await form_post(
        client,
        "/portal/bank",
        "/portal/bank",
        {"iban": "DE89 3704 0044 0532 0130 01", "holder": "Erika Mustermann", "mandate": "yes"},
    )
    assert wrong.status_code == 422 and "Die Prüfziffern der IBAN stimmen nicht" in wrong.text
    outside = await form_post(
        client, "/portal/bank", "/portal/bank", {"iban": "US64SVBKUS6S3300958879", "holder": "E", "mandate": "no"}
    )
    assert outside.status_code == 422 and ("kein Ländercode" in outside.text or "SEPA" in outside.text)
    no_choice = await form_post(
        client, "/portal/bank", "/portal/bank", {"iban": "DE89370400440532013000", "holder": "Erika Mustermann"}
    )
    assert no_choice.status_code == 422 and "SEPA-Lastschriftmandat" in no_choice.text
    assert requests_of(engine) == []

    sent = await form_post(
        client,
        "/portal/bank",
        "/portal/bank",
        {"iban": "de89 3704 0044 0532 0130 00", "holder": "Erika Mustermann", "mandate": "yes"},
    )
    assert sent.status_code == 200, sent.text
    assert "Wir ändern Ihre Bankverbindung erst, wenn sie geprüft ist" in text_of(sent)
    [row] = requests_of(engine)
    assert (row.queue, row.kind, row.status) == ("clerk", "bank_details", RequestStatus.OPEN)
    assert row.details == {"iban": "DE89370400440532013000", "holder": "Erika Mustermann", "mandate": "yes"}
    assert "DE89" not in row.summary and "Erika" not in row.summary
    assert master_data() == before  # never applied automatically (DOMAIN.md §6)
    after = await status(handle)
    assert (after.hold, after.stage) == (case_before.hold, case_before.stage)
    note = portal_notes(engine)[-1]
    assert note == {"portal_action": "bank_details", "request_id": row.id}
    await client.aclose()


def test_every_refusal_of_the_case_has_words_in_both_languages_with_its_params_filled() -> None:
    source = Path(selfservice.__file__).read_text()
    codes = (set(re.findall(r'Verdict\(\s*"([a-z_]+)"', source)) - {"ok"}) | {"no_case", "refused"}
    assert len(codes) >= 15, codes
    catalog = i18n.catalog()
    assert {f"portal.refused.{code}" for code in codes} <= set(catalog), codes
    # Real verdicts with their params, through the same formatting the pages use.
    rules, today = SelfServiceRules(), date(2026, 3, 2)

    def plan(count: int, days: int, balance: int, used: int = 0) -> selfservice.Verdict:
        arrangement = CustomerArrangement(kind="instalments", instalments=count, first_due=today + timedelta(days))
        return selfservice.judge(rules, arrangement, balance, today, used)

    def defer(days: int, balance: int) -> selfservice.Verdict:
        arrangement = CustomerArrangement(kind="deferral", pay_by=today + timedelta(days))
        return selfservice.judge(rules, arrangement, balance, today, 0)

    verdicts = [
        plan(3, 0, 50_000, used=1),
        defer(30, 50_000),
        defer(0, 50_000),
        defer(3, 200_000),
        plan(3, 0, 15_000),
        plan(6, 0, 50_000),
        plan(3, 40, 50_000),
    ]
    assert [v.code for v in verdicts] == [
        "already_used",
        "deferral_too_long",
        "date_not_future",
        "no_deferral",
        "no_instalments",
        "too_many_instalments",
        "first_due_too_late",
    ]
    english = Words("en")
    texts = [requests_module._refusal_text(english, Refused(v.code, v.message, dict(v.params))) for v in verdicts]
    assert texts[1] == "A deferral is possible here for up to 14 days, that is until 16 March 2026."
    assert texts[5] == "At most 4 instalments of at least €50.00 are possible here."
    assert "€2,000.00" in texts[3] and "€150.00" in texts[4] and "16 March 2026" in texts[6]
    german = [requests_module._refusal_text(Words("de"), Refused(v.code, v.message, dict(v.params))) for v in verdicts]
    assert "höchstens 4 Raten von mindestens 50,00" in german[5]
    assert not any("{" in text for text in texts + german)


async def test_a_customer_with_two_contracts_picks_one_and_a_contract_without_a_running_case_is_refused(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    client, handle, today = await customer_in_dunning(time_env, worker, engine, settings, apps, 30_000)
    with session_scope(engine) as session:  # a second contract of the same customer, with a pay link, no case
        customer = session.get(Customer, service.get_contract(session, CONTRACT).customer_id)
        assert customer is not None
        service.upsert_contract(session, "K-200002", customer, agent_code="A-7", product="Kfz")
    make_pay_link(engine, settings, "K-200002")
    with session_scope(engine) as session:
        second = str(service.get_contract(session, "K-200002").id)

    page = await client.get("/portal/dispute")
    assert '<select id="contract" name="contract"' in page.text and '<label for="contract">' in page.text
    assert "•••••001" in page.text and "•••••002" in page.text and "K-200002" not in page.text
    refused = await form_post(
        client, "/portal/dispute", "/portal/dispute", {"contract": second, "reason": "Nie abgeschlossen."}
    )
    assert refused.status_code == 409 and "Für diesen Vertrag läuft kein Mahnverfahren" in text_of(refused)
    assert f'<option value="{second}" selected>' in refused.text  # the choice is kept
    assert requests_of(engine) == [] and (await status(handle)).hold is None

    switched = await client.get(f"/portal/arrangement?contract={second}")
    assert switched.status_code == 200 and "Für diesen Vertrag läuft kein Mahnverfahren" in text_of(switched)
    stranger = await client.get("/portal/arrangement?contract=424242")
    assert stranger.status_code == 422 and "einen Ihrer Verträge" in stranger.text
    await client.aclose()
