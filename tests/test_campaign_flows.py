"""Abandoned-quote campaigns end to end on the time-skipping server: the real FastAPI routes, the
real workflows and activities, a SQLite ledger. Every scenario of issue #6's "What must be shown".

The server's clock is shared by the module and runs ahead of the wall clock once a test skips
time, so every abandonment and touchpoint carries the server's time explicitly.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from typer.testing import CliRunner

import starter
from activities.campaign import campaign_report, german_holidays
from cli import campaign as campaign_cli
from core.campaign import DEFAULT_PLAN, assign_all, may_send_at
from infra.config import Settings
from infra.runtime import PASSTHROUGH
from ledger.db import session_scope
from ledger.inbound import Inbound
from models import inputs
from models.campaign import (
    CampaignEmail,
    CampaignPerson,
    CampaignQuote,
    CampaignStage,
    ConsentProof,
    EmailEvent,
    ExitKind,
    ExitSignal,
    ExperimentAssignment,
    FollowUpResult,
    PersonWorkflow,
    QuoteStatusView,
    Suppression,
)
from models.ledger import Message
from tests.apps import BothApps
from tests.helpers import form_post
from web.deps import AppContext
from web.internal.campaign import event_signature
from workflows.campaign import QuoteReactivation

BERLIN = ZoneInfo("Europe/Berlin")
T = TypeVar("T")
PLAN = DEFAULT_PLAN


@pytest_asyncio.fixture
async def api(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # The requests carry the time-skipping server's clock (abandoned_at, occurred_at), which runs
    # ahead of the wall clock the app checks "not in the future" against: allow that here only.
    monkeypatch.setattr(inputs, "CLOCK_SKEW", timedelta(days=100 * 366))
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    app = BothApps(ctx)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield http
    with session_scope(engine) as session:  # the server outlives the test: end what it started
        ids = {row.workflow_id for row in session.exec(select(PersonWorkflow))}
        ids |= {row.workflow_id for row in session.exec(select(CampaignQuote))}
    await end_all(time_env, sorted(ids))


async def end_all(env: WorkflowEnvironment, workflow_ids: list[str]) -> None:
    """End what the test left running by the workflows' own exit path, while the worker is still
    there. (Terminating a workflow whose task is in flight leaves the shared time-skipping
    server's clock locked for the next test.)"""
    stop = ExitSignal(kind=ExitKind.UNSUBSCRIBE, occurred_at=await now(env), detail="test finished")
    running = []
    for workflow_id in workflow_ids:
        target = env.client.get_workflow_handle(workflow_id)
        try:
            if (await target.describe()).status == WorkflowExecutionStatus.RUNNING:
                await target.signal("exit_sequence", stop)
                running.append(target)
        except RPCError:
            pass  # never started
    for target in running:
        for _ in range(50):
            if (await target.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await env.sleep(timedelta(minutes=1))


# --- helpers -----------------------------------------------------------------------------------


def quote_id_with(**wanted: str) -> str:
    """A fresh quote id whose deterministic arms are the wanted ones (e.g. holdout="holdout")."""
    wanted = {key.replace("_", "-"): value for key, value in wanted.items()}
    prefix = uuid.uuid4().hex[:8]
    for i in range(10_000):
        quote_id = f"Q-{prefix}-{i}"
        arms = assign_all(quote_id, PLAN)
        if all(arms[name] == arm for name, arm in wanted.items()):
            return quote_id
    raise AssertionError(f"no quote id with arms {wanted}")


def new_email() -> str:
    return f"kunde-{uuid.uuid4().hex[:10]}@example.org"


async def now(env: WorkflowEnvironment) -> datetime:
    return (await env.get_current_time()).astimezone(UTC)


async def abandon(
    http: httpx.AsyncClient,
    env: WorkflowEnvironment,
    quote_id: str,
    email: str | None,
    *,
    opt_in: bool = True,
    vehicle_age_years: int | None = 6,
    yearly_mileage_km: int | None = 12_000,
) -> dict[str, Any]:
    body = {
        "quote_id": quote_id,
        "vehicle_age_years": vehicle_age_years,
        "yearly_mileage_km": yearly_mileage_km,
        "calculator_step": "tarifwahl",
        "email": email,
        "opt_in": opt_in,
        "consent_text_version": "dsgvo-2026-11" if opt_in else "",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Test)",
        "source_page": "https://www.example-versicherung.de/kfz/rechner" if opt_in else "",
        "abandoned_at": (await now(env)).isoformat(),
    }
    response = await http.post("/api/campaign/quotes/abandoned", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outbox(engine: Engine, workflow_id: str) -> list[Message]:
    with session_scope(engine) as session:
        return list(session.exec(select(Message).where(Message.case_id == workflow_id).order_by(col(Message.id))))


def campaign_mails(engine: Engine, workflow_id: str) -> list[CampaignEmail]:
    with session_scope(engine) as session:
        return list(
            session.exec(
                select(CampaignEmail).where(CampaignEmail.workflow_id == workflow_id).order_by(col(CampaignEmail.id))
            )
        )


def reminders(engine: Engine, quote_id: str) -> list[CampaignEmail]:
    return [m for m in campaign_mails(engine, f"quote-{quote_id}") if m.step.startswith("reminder-")]


async def confirmation_mail(env: WorkflowEnvironment, engine: Engine, quote_id: str) -> Message:
    """The double-opt-in mail, once the workflow has sent it (it starts asynchronously)."""
    await advance_until(
        env, quote_id, lambda v: any("Confirmation mail sent" in line for line in v.journal), step=timedelta(seconds=1)
    )
    return outbox(engine, f"quote-{quote_id}")[0]


async def confirm(http: httpx.AsyncClient, engine: Engine, quote_id: str, env: WorkflowEnvironment) -> None:
    """Click the link of the confirmation mail, like the person would."""
    mail = await confirmation_mail(env, engine, quote_id)
    assert mail.kind == "quote_confirmation"
    match = re.search(r"http://test\.invalid(/campaign/confirm/\S+)", mail.body_text)
    assert match, mail.body_text
    form = await http.get(match.group(1))
    assert form.status_code == 200 and "Jetzt bestätigen" in form.text
    done = await form_post(http, match.group(1), match.group(1), headers={"User-Agent": "Mozilla/5.0 (Click)"})
    assert done.status_code == 200 and "bestätigt" in done.text


def handle(env: WorkflowEnvironment, quote_id: str) -> WorkflowHandle[QuoteReactivation, QuoteStatusView]:
    return env.client.get_workflow_handle_for(QuoteReactivation.run, f"quote-{quote_id}")


async def status(env: WorkflowEnvironment, quote_id: str) -> QuoteStatusView:
    return await handle(env, quote_id).query(QuoteReactivation.status)


async def advance_until(
    env: WorkflowEnvironment,
    quote_id: str,
    done: Callable[[QuoteStatusView], bool],
    step: timedelta = timedelta(hours=6),
    limit: timedelta = timedelta(days=40),
) -> QuoteStatusView:
    waited = timedelta(0)
    current = await status(env, quote_id)
    while not done(current):
        assert waited < limit, f"quote never got there: {current.stage} {current.journal}"
        await env.sleep(step)
        waited += step
        current = await status(env, quote_id)
    return current


async def finish(env: WorkflowEnvironment, quote_id: str) -> QuoteStatusView:
    """Let the workflow run to its end (the server skips the waits)."""
    return await result_of(env, handle(env, quote_id))


async def result_of(
    env: WorkflowEnvironment, running: WorkflowHandle[Any, T], step: timedelta = timedelta(hours=12)
) -> T:
    """Skip time in steps until the workflow has ended, then read its result. (Unlocking the
    server's automatic skipping around `result()` also works, but lets the idle server's clock
    run years ahead afterwards.)"""
    waited = timedelta(0)
    while (await running.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert waited < timedelta(days=60), f"{running.id} still running after {waited}"
        await env.sleep(step)
        waited += step
    return await running.result()


def quote_row(engine: Engine, quote_id: str) -> CampaignQuote:
    with session_scope(engine) as session:
        return session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == quote_id)).one()


def consent_row(engine: Engine, quote_id: str) -> ConsentProof:
    with session_scope(engine) as session:
        return session.exec(select(ConsentProof).where(ConsentProof.quote_id == quote_id)).one()


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- consent -----------------------------------------------------------------------------------


async def test_no_opt_in_sends_nothing_and_keeps_no_address(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id, email = quote_id_with(), new_email()
    answer = await abandon(api, time_env, quote_id, email, opt_in=False)
    assert answer["status"] == "no_consent"
    view = await finish(time_env, quote_id)
    assert view.stage == CampaignStage.NO_CONSENT
    assert outbox(engine, f"quote-{quote_id}") == []
    with session_scope(engine) as session:
        assert session.exec(select(CampaignPerson)).first() is None
        assert session.exec(select(ConsentProof)).first() is None
        assert session.exec(select(ExperimentAssignment)).first() is None
    assert quote_row(engine, quote_id).person_key is None


async def test_opt_in_without_an_address_is_refused_and_stores_nothing(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    response = await api.post(
        "/api/campaign/quotes/abandoned", json={"quote_id": "Q-bad-1", "opt_in": True, "consent_text_version": "v1"}
    )
    assert response.status_code == 422
    assert "opt_in=true needs email" in response.text and "source_page" in response.text
    with session_scope(engine) as session:
        assert session.exec(select(CampaignQuote)).first() is None


async def test_unconfirmed_opt_in_is_purged_when_its_retention_ends(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id, email = quote_id_with(), new_email()
    await abandon(api, time_env, quote_id, email)
    await confirmation_mail(time_env, engine, quote_id)
    mails = outbox(engine, f"quote-{quote_id}")
    assert [m.kind for m in mails] == ["quote_confirmation"] and mails[0].recipient == email
    assert "Werbung" in mails[0].body_text  # it says it carries none …
    assert (
        "Vollkasko" not in mails[0].body_text and "Angebot ist gespeichert" not in mails[0].body_text
    )  # … and it doesn't
    started = await now(time_env)

    view = await finish(time_env, quote_id)

    assert view.stage == CampaignStage.PURGED
    assert await now(time_env) - started >= PLAN.confirmation_retention - timedelta(minutes=1)
    consent = consent_row(engine, quote_id)
    assert consent.email is None and consent.opt_in_ip is None and consent.opt_in_user_agent is None
    assert consent.purged_at is not None and consent.confirmed_at is None
    assert consent.consent_text_version == "dsgvo-2026-11"  # the fact of the opt-in stays, without the person
    with session_scope(engine) as session:
        assert session.exec(select(CampaignPerson)).one().email is None
    assert [m.recipient for m in outbox(engine, f"quote-{quote_id}")] == ["(gelöscht)"]
    assert quote_row(engine, quote_id).status == "purged"
    link = re.search(r"http://test\.invalid(/campaign/confirm/\S+)", mails[0].body_text)
    assert link is not None
    late = await form_post(api, link.group(1), link.group(1))
    assert late.status_code == 410
    assert consent_row(engine, quote_id).confirmed_at is None


async def test_a_contact_before_confirming_ends_the_quote_and_purges_the_address_at_once(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id, email = quote_id_with(), new_email()
    await abandon(api, time_env, quote_id, email)
    await confirmation_mail(time_env, engine, quote_id)
    response = await api.post(
        "/api/campaign/touchpoints",
        json={
            "event_id": f"cc-{quote_id}",
            "email": email,
            "kind": "call_centre",
            "channel": "phone",
            "occurred_at": (await now(time_env)).isoformat(),
        },
    )
    assert response.status_code == 200
    view = await finish(time_env, quote_id)
    assert view.stage == CampaignStage.EXITED and view.exit is not None and view.exit.detail == "call_centre"
    assert consent_row(engine, quote_id).email is None
    assert quote_row(engine, quote_id).exit_reason == "touchpoint:call_centre"
    assert [m.kind for m in outbox(engine, f"quote-{quote_id}")] == ["quote_confirmation"]


# --- the normal sequence -----------------------------------------------------------------------


async def test_confirmed_quotes_get_their_arm_s_reminders_with_segment_content(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    new_car = quote_id_with(holdout="treated", wait_times="short", content="tailored")
    frequent = quote_id_with(holdout="treated", wait_times="long", content="tailored")
    generic = quote_id_with(holdout="treated", wait_times="short", content="generic")
    await abandon(api, time_env, new_car, new_email(), vehicle_age_years=0, yearly_mileage_km=8_000)
    await abandon(api, time_env, frequent, new_email(), vehicle_age_years=7, yearly_mileage_km=35_000)
    await abandon(api, time_env, generic, new_email(), vehicle_age_years=0, yearly_mileage_km=8_000)
    for quote_id in (new_car, frequent, generic):
        await confirm(api, engine, quote_id, time_env)
    earlier = await api.post(  # a contact *before* abandoning does not stop the reminders
        "/api/campaign/touchpoints",
        json={
            "event_id": f"old-{new_car}",
            "person_key": quote_row(engine, new_car).person_key,
            "kind": "branch",
            "channel": "branch",
            "occurred_at": (as_utc(quote_row(engine, new_car).abandoned_at) - timedelta(days=1)).isoformat(),
        },
    )
    assert earlier.status_code == 200 and earlier.json()["signalled"] == 1
    confirmed_at = {q: (await status(time_env, q)).confirmed_at for q in (new_car, frequent, generic)}

    views = {q: await finish(time_env, q) for q in (new_car, frequent, generic)}

    days = german_holidays(2026, 2030)
    for quote_id, view in views.items():
        assert view.stage == CampaignStage.FINISHED and view.exit is None
        assert view.arms == assign_all(quote_id, PLAN)
        waits = PLAN.wait_times.arm(view.arms["wait-times"]).waits
        sent = reminders(engine, quote_id)
        assert [m.step for m in sent] == ["reminder-1", "reminder-2"]
        confirmed = confirmed_at[quote_id]
        assert confirmed is not None
        for mail, wait in zip(sent, waits, strict=True):
            assert as_utc(mail.due_at) == confirmed + wait
            assert as_utc(mail.sent_at) >= as_utc(mail.due_at)
            assert may_send_at(as_utc(mail.sent_at), days, PLAN)
            assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert re.fullmatch(r"<http://test\.invalid/campaign/unsubscribe/\S+>", mail.headers["List-Unsubscribe"])
    subjects = {q: [m.subject for m in outbox(engine, f"quote-{q}")][1:] for q in views}
    assert all("neues Auto" in s for s in subjects[new_car])
    assert all("Viel unterwegs" in s for s in subjects[frequent])
    assert all(s == "Ihr Angebot für die Kfz-Versicherung ist gespeichert" for s in subjects[generic])
    new_car_text = outbox(engine, f"quote-{new_car}")[1].body_text
    assert "Neuwertentschädigung" in new_car_text and "Schutzbrief" not in new_car_text
    assert "Schutzbrief" in outbox(engine, f"quote-{frequent}")[1].body_text
    assert "Neuwertentschädigung" not in outbox(engine, f"quote-{generic}")[1].body_text
    with session_scope(engine) as session:
        rows = session.exec(select(ExperimentAssignment).where(ExperimentAssignment.quote_id == new_car)).all()
        assert {r.experiment: r.arm for r in rows} == assign_all(new_car, PLAN)

    # the resume link restores the quote at its step and carries no personal data
    match = re.search(r"http://test\.invalid(/campaign/resume/\S+)", outbox(engine, f"quote-{new_car}")[1].body_text)
    assert match is not None and "example.org" not in match.group(1)
    resumed = await api.get(match.group(1))
    assert resumed.status_code == 200
    assert resumed.json() == {
        "quote_id": new_car,
        "calculator_step": "tarifwahl",
        "vehicle_age_years": 0,
        "yearly_mileage_km": 8_000,
        "segment": "new_car",
    }
    assert (await api.get(match.group(1)[:-3] + "xyz")).status_code == 404


async def test_abandoning_twice_joins_the_one_workflow_with_the_same_arms(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id, email = quote_id_with(holdout="treated"), new_email()
    first = await abandon(api, time_env, quote_id, email, vehicle_age_years=0)
    run_id = (await handle(time_env, quote_id).describe()).run_id
    second = await abandon(api, time_env, quote_id, new_email(), vehicle_age_years=9, yearly_mileage_km=40_000)
    assert first["created"] and not second["created"]
    assert second["workflow_id"] == first["workflow_id"] and second["segment"] == first["segment"] == "new_car"
    assert (await handle(time_env, quote_id).describe()).run_id == run_id
    await confirm(api, engine, quote_id, time_env)
    view = await advance_until(time_env, quote_id, lambda v: bool(v.arms))
    await abandon(api, time_env, quote_id, email)
    assert (await status(time_env, quote_id)).arms == view.arms == assign_all(quote_id, PLAN)
    assert [m.kind for m in outbox(engine, f"quote-{quote_id}")] == ["quote_confirmation"]
    assert consent_row(engine, quote_id).email == email  # the first registration stands
    with session_scope(engine) as session:
        assert len(session.exec(select(CampaignQuote)).all()) == 1
        assert len(session.exec(select(ExperimentAssignment)).all()) == 3


# --- exits -------------------------------------------------------------------------------------


async def test_contract_signed_by_phone_after_reminder_1_stops_mail_and_starts_follow_ups_once(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id, email = quote_id_with(holdout="treated", wait_times="short"), new_email()
    await abandon(api, time_env, quote_id, email)
    await confirm(api, engine, quote_id, time_env)
    await advance_until(time_env, quote_id, lambda v: len(v.mails) == 1)
    signed_at = await now(time_env)
    inspection_due = (signed_at + timedelta(days=90)).astimezone(BERLIN).date()
    touch = {
        "event_id": f"crm-{uuid.uuid4().hex[:8]}",
        "email": email.upper(),  # the customer view spells it its own way: same person
        "kind": "contract_signed",
        "channel": "phone",
        "occurred_at": signed_at.isoformat(),
        "contract_number": f"KFZ-{uuid.uuid4().hex[:6]}",
        "inspection_due": inspection_due.isoformat(),
    }
    first = await api.post("/api/campaign/touchpoints", json=touch)
    again = await api.post("/api/campaign/touchpoints", json=touch)
    other = await api.post("/api/campaign/touchpoints", json={**touch, "event_id": touch["event_id"] + "-b"})
    assert first.status_code == again.status_code == other.status_code == 200, first.text
    assert first.json()["signalled"] == 1 and not first.json()["duplicate"] and again.json()["duplicate"]

    view = await finish(time_env, quote_id)

    assert view.stage == CampaignStage.EXITED
    assert view.exit is not None and view.exit.kind == ExitKind.TOUCHPOINT and view.exit.detail == "contract_signed"
    assert [m.step for m in reminders(engine, quote_id)] == ["reminder-1"]
    row = quote_row(engine, quote_id)
    assert row.status == "exited" and row.exit_reason == "touchpoint:contract_signed"
    assert as_utc(row.converted_at or datetime.min) == signed_at and row.conversion_channel == "phone"

    contract = touch["contract_number"]
    onboarding = await result_of(
        time_env, time_env.client.get_workflow_handle(f"onboarding-{contract}", result_type=FollowUpResult)
    )
    inspection: FollowUpResult = await result_of(
        time_env, time_env.client.get_workflow_handle(f"inspection-{contract}", result_type=FollowUpResult)
    )
    assert [m.step for m in onboarding.mails] == ["onboarding-1", "onboarding-2"]
    assert [m.kind for m in outbox(engine, f"onboarding-{contract}")] == ["quote_onboarding"] * 2
    assert [m.step for m in inspection.mails] == ["inspection"]
    reminder_due = datetime.combine(inspection_due - PLAN.inspection_lead, datetime.min.time(), BERLIN)
    assert as_utc(inspection.mails[0].sent_at) >= reminder_due
    inspection_mail = outbox(engine, f"inspection-{contract}")[0]
    assert inspection_due.strftime("%d.%m.%Y") in inspection_mail.subject
    # a third report of the signature, after everything finished, starts nothing new
    late = await api.post("/api/campaign/touchpoints", json={**touch, "event_id": touch["event_id"] + "-c"})
    assert late.status_code == 200
    described = await time_env.client.get_workflow_handle(f"onboarding-{contract}").describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert len(outbox(engine, f"onboarding-{contract}")) == 2


async def test_offer_requested_before_the_first_mail_exits_holdout_and_treated_alike(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    treated, held = quote_id_with(holdout="treated"), quote_id_with(holdout="holdout")
    emails = {treated: new_email(), held: new_email()}
    for quote_id, email in emails.items():
        await abandon(api, time_env, quote_id, email)
        await confirm(api, engine, quote_id, time_env)
    abandoned_at = as_utc(quote_row(engine, treated).abandoned_at)
    for quote_id, email in emails.items():
        await advance_until(time_env, quote_id, lambda v: bool(v.arms), step=timedelta(minutes=1))
        response = await api.post(
            "/api/campaign/touchpoints",
            json={
                "event_id": f"web-{quote_id}",
                "email": email,
                "kind": "offer_requested",
                "channel": "web",
                "occurred_at": (await now(time_env)).isoformat(),
            },
        )
        assert response.status_code == 200 and response.json()["signalled"] == 1

    for quote_id in emails:
        view = await finish(time_env, quote_id)
        assert view.stage == CampaignStage.EXITED and view.mails == []
        assert view.exit is not None and view.exit.detail == "offer_requested"
        assert reminders(engine, quote_id) == []
        assert quote_row(engine, quote_id).exit_reason == "touchpoint:offer_requested"
    report = {
        r.experiment: r
        for r in campaign_report(engine, PLAN, abandoned_at + PLAN.conversion_window + timedelta(hours=1))
    }
    arms = {a.arm: a for a in report["holdout"].arms}
    assert (arms["holdout"].quotes, arms["holdout"].conversions) == (1, 0)
    assert (arms["treated"].quotes, arms["treated"].conversions) == (1, 0)


async def test_one_click_unsubscribe_ends_the_sequence_at_once(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    quote_id = quote_id_with(holdout="treated")
    await abandon(api, time_env, quote_id, new_email())
    await confirm(api, engine, quote_id, time_env)
    await advance_until(time_env, quote_id, lambda v: len(v.mails) == 1)
    header = reminders(engine, quote_id)[0].headers["List-Unsubscribe"]
    path = header.strip("<>").removeprefix("http://test.invalid")

    looked = await api.get(path)  # a link scanner or a person opening the link: nothing happens yet
    assert looked.status_code == 200 and "Abmelden" in looked.text
    assert (await status(time_env, quote_id)).exit is None

    api.cookies.clear()
    response = await api.post(
        path, content="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200 and not response.is_redirect and "set-cookie" not in response.headers
    view = await finish(time_env, quote_id)
    assert view.stage == CampaignStage.EXITED and view.exit is not None and view.exit.kind == ExitKind.UNSUBSCRIBE
    assert len(reminders(engine, quote_id)) == 1
    assert consent_row(engine, quote_id).revoked_at is not None
    with session_scope(engine) as session:
        assert [s.reason for s in session.exec(select(Suppression))] == ["unsubscribe"]
    assert (await api.post(path)).status_code == 200  # twice is harmless
    assert (await api.post("/campaign/unsubscribe/forged")).status_code == 404


async def post_events(api: httpx.AsyncClient, settings: Settings, events: list[dict[str, str]]) -> httpx.Response:
    body = json.dumps(events).encode()
    signature = event_signature(settings.campaign_events_secret, body)
    return await api.post(
        "/api/campaign/email-events",
        content=body,
        headers={"Content-Type": "application/json", "X-Campaign-Signature": signature},
    )


async def test_a_bounce_ends_the_sequence_and_events_are_kept_per_step(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    quote_id = quote_id_with(holdout="treated")
    await abandon(api, time_env, quote_id, new_email())
    await confirm(api, engine, quote_id, time_env)
    await advance_until(time_env, quote_id, lambda v: len(v.mails) == 1)
    key = reminders(engine, quote_id)[0].idempotency_key
    at = (await now(time_env)).isoformat()
    unknown = await post_events(
        api,
        settings,
        [
            {"event_id": "e-0", "email_key": key, "event": "open", "occurred_at": at},
            {"event_id": "e-x", "email_key": "quote-nope:reminder-1", "event": "open", "occurred_at": at},
        ],
    )
    assert unknown.status_code == 422 and "quote-nope:reminder-1" in unknown.text
    with session_scope(engine) as session:
        assert session.exec(select(EmailEvent)).first() is None  # nothing half-recorded

    events = [
        {"event_id": "e-1", "email_key": key, "event": "open", "occurred_at": at},
        {"event_id": "e-2", "email_key": key, "event": "click", "occurred_at": at},
        {"event_id": "e-3", "email_key": key, "event": "bounce", "occurred_at": at},
    ]
    forged = await api.post("/api/campaign/email-events", json=events, headers={"X-Campaign-Signature": "sha256=00"})
    assert forged.status_code == 401
    bad = await post_events(api, settings, [{**events[0], "event": "exploded"}])
    assert bad.status_code == 422 and "exploded" in bad.text
    response = await post_events(api, settings, events)
    assert response.json() == {"recorded": 3, "duplicates": 0}
    assert (await post_events(api, settings, events)).json() == {"recorded": 0, "duplicates": 3}

    view = await finish(time_env, quote_id)
    assert view.exit is not None and view.exit.kind == ExitKind.BOUNCE
    assert len(reminders(engine, quote_id)) == 1
    with session_scope(engine) as session:
        rows = session.exec(select(EmailEvent).order_by(col(EmailEvent.id))).all()
        assert [(r.step, r.event) for r in rows] == [
            ("reminder-1", "open"),
            ("reminder-1", "click"),
            ("reminder-1", "bounce"),
        ]
        assert {r.workflow_id for r in rows} == {f"quote-{quote_id}"}


# --- sending rules -----------------------------------------------------------------------------


def next_dst_change(after: datetime) -> datetime:
    """The Sunday (Berlin) of the next daylight-saving change after `after`."""
    day = after.astimezone(BERLIN).date()
    while True:
        day += timedelta(days=1)
        before = datetime.combine(day, datetime.min.time(), BERLIN).utcoffset()
        after_change = datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN).utcoffset()
        if before != after_change:
            return datetime.combine(day, datetime.min.time(), BERLIN)


async def test_a_reminder_due_on_the_saturday_night_before_a_dst_change_goes_at_08_00_local_after_it(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    change = next_dst_change(await now(time_env) + timedelta(days=3))
    thursday_night = (change - timedelta(days=3)).replace(hour=21)  # reminder-1 (+2 days) is due Saturday 21:00
    await time_env.sleep(thursday_night.astimezone(UTC) - await now(time_env))
    quote_id = quote_id_with(holdout="treated", wait_times="short")
    await abandon(api, time_env, quote_id, new_email())
    await confirm(api, engine, quote_id, time_env)

    await advance_until(time_env, quote_id, lambda v: len(v.mails) == 1)

    mail = reminders(engine, quote_id)[0]
    due, sent = as_utc(mail.due_at).astimezone(BERLIN), as_utc(mail.sent_at).astimezone(BERLIN)
    assert due.weekday() == 5 and due.hour == 21  # Saturday night, before the change
    assert mail.postponed_reason == "quiet hours"
    holidays = german_holidays(change.year, change.year)
    first_day = change.date() + timedelta(days=1)
    while first_day in holidays:  # the March change can fall on Easter Sunday: Easter Monday is a holiday
        first_day += timedelta(days=1)
    assert sent.date() == first_day and (sent.hour, sent.minute) == (8, 0)
    assert sent.utcoffset() != due.utcoffset()  # the wall clock moved, the mail still went at 08:00 local
    offset_hours = int((sent.utcoffset() or timedelta(0)).total_seconds() // 3600)
    assert as_utc(mail.sent_at).hour == 8 - offset_hours


async def test_the_frequency_cap_postpones_across_campaigns_and_never_drops(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine
) -> None:
    email = new_email()  # one person, two quotes: four reminders, at most two in any seven days
    first, second = (
        quote_id_with(holdout="treated", wait_times="short"),
        quote_id_with(holdout="treated", wait_times="short"),
    )
    for quote_id in (first, second):
        await abandon(api, time_env, quote_id, email)
        await confirm(api, engine, quote_id, time_env)

    views = [await finish(time_env, q) for q in (first, second)]

    assert all(v.stage == CampaignStage.FINISHED for v in views)
    mails = reminders(engine, first) + reminders(engine, second)
    assert len(mails) == 4  # postponed, never dropped
    assert any(m.postponed_reason == "frequency cap" for m in mails)
    for mail in mails:
        if mail.postponed_reason == "frequency cap":
            assert as_utc(mail.sent_at) - as_utc(mail.due_at) >= timedelta(days=1)
    times = sorted(as_utc(m.sent_at) for m in mails)
    for start in times:
        assert len([t for t in times if start <= t < start + PLAN.cap_window]) <= PLAN.cap_max_mails
    postponed = [v for v in views if any(m.postponed_reason == "frequency cap" for m in v.mails)]
    assert postponed and any("postponed by frequency cap" in line for line in postponed[0].journal)
    # the recorded histories replay without non-determinism (the sandbox set up like the worker's)
    replayer = Replayer(
        workflows=[QuoteReactivation],
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
    for quote_id in (first, second):
        result = await replayer.replay_workflow(
            await handle(time_env, quote_id).fetch_history(), raise_on_replay_failure=False
        )
        assert result.replay_failure is None, result.replay_failure


# --- results -----------------------------------------------------------------------------------


async def test_report_page_api_and_cli_show_the_same_figures(
    api: httpx.AsyncClient,
    time_env: WorkflowEnvironment,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quote_id = quote_id_with(holdout="treated", wait_times="short", content="tailored")
    email = new_email()
    await abandon(api, time_env, quote_id, email)
    await confirm(api, engine, quote_id, time_env)
    await advance_until(time_env, quote_id, lambda v: bool(v.arms), step=timedelta(minutes=1))
    signed = await now(time_env)
    await api.post(
        "/api/campaign/touchpoints",
        json={
            "event_id": f"sign-{quote_id}",
            "email": email,
            "kind": "contract_signed",
            "channel": "web",
            "occurred_at": signed.isoformat(),
            "contract_number": f"KFZ-{quote_id}",
        },
    )
    after = (signed + PLAN.conversion_window + timedelta(days=1)).isoformat()
    data = (await api.get("/api/campaign/report", params={"as_of": after})).json()
    by_name = {r["experiment"]: r for r in data}
    treated = {a["arm"]: a for a in by_name["holdout"]["arms"]}["treated"]
    assert (treated["quotes"], treated["conversions"], treated["rate"]) == (1, 1, 1.0)
    assert "collecting: 0 of 4685" in by_name["holdout"]["verdict"]
    bad = await api.get("/api/campaign/report", params={"as_of": "2026-11-22T10:00:00"})
    assert bad.status_code == 422 and "as_of" in bad.text and "timezone" in bad.text
    page = await api.get("/campaign/report")
    assert page.status_code == 200 and "wait-times" in page.text and "holdout" in page.text

    monkeypatch.setattr(campaign_cli, "get_settings", lambda: settings)
    result = CliRunner().invoke(starter.app, ["campaign", "report", "--as-of", after, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == data
    table = CliRunner().invoke(starter.app, ["campaign", "report", "--as-of", after])
    assert table.exit_code == 0 and "Experiment holdout" in table.output and "collecting" in table.output
    naive = CliRunner().invoke(starter.app, ["campaign", "report", "--as-of", "2026-11-22T10:00"])
    assert naive.exit_code == 2 and "UTC offset" in naive.output
