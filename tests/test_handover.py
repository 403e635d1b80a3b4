"""The agency handover (AgentHandover, a child of the case) on the time-skipping server:
the agent's contact routine over days, buddy fallback, SLA escalation, and what each outcome
does to the case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import add_absence, notes_for_case, set_supervisor
from core.calendar import is_working_day
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.agency import (
    ContactAttempt,
    HandoverData,
    HandoverState,
    LogAttempt,
    OutcomeKind,
    RecordOutcome,
)
from models.case import Cancel, CaseInput, CaseStage, CaseStatus, HoldKind, PremiumOverdue
from models.ledger import AgentTask, Payment
from models.plan import Anchor, DunningPlan, PlanStep, StepKind
from tests.conftest import seed_contract, settle
from tests.helpers import advance_until, berlin_today, messages, status
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase
from workflows.handover import AgentHandover

BERLIN = ZoneInfo("Europe/Berlin")
CONTRACT = "K-100001"


def agency_plan() -> DunningPlan:
    """Straight to the agent two days after the due date; court 30 days after the handover."""
    return DunningPlan(
        id="agency-test",
        version=1,
        title="Agency handover test plan",
        steps=[
            PlanStep(key="agency", kind=StepKind.AGENCY_HANDOVER, offset=timedelta(days=2)),
            PlanStep(key="court", kind=StepKind.COURT_DUNNING, after=Anchor.HANDOVER, offset=timedelta(days=30)),
        ],
    )


def seed_agency(engine: Engine, premium_due: date, cents: int = 20_000) -> None:
    """Agent A-7 (responsible) with buddy A-8 and supervisor S-1."""
    seed_contract(engine, CONTRACT, premiums=[("P-1", premium_due, cents)])
    with session_scope(engine) as session:
        service.upsert_agent(session, "A-8", name="Bea Buddy", email="bea.buddy@example.org")
        service.upsert_agent(session, "S-1", name="Sam Supervisor", email="sam.supervisor@example.org")
        service.upsert_agent(session, "A-7", buddy_code="A-8")
        set_supervisor(session, "A-7", "S-1")


async def start_case(
    env: WorkflowEnvironment, task_queue: str, plan: DunningPlan
) -> WorkflowHandle[DunningCase, CaseStatus]:
    return await env.client.start_workflow(
        DunningCase.run,
        CaseInput(contract_number=CONTRACT, plan=plan, premiums=[PremiumOverdue(premium_id="P-1")]),
        id=case_workflow_id(CONTRACT),
        task_queue=task_queue,
    )


async def child_handle(env: WorkflowEnvironment, case: WorkflowHandle[DunningCase, CaseStatus], kind: str) -> str:
    return f"{(await status(case)).case_id}/{kind}"


async def handover_status(env: WorkflowEnvironment, workflow_id: str) -> HandoverData:
    return await env.client.get_workflow_handle(workflow_id).query(AgentHandover.status)


async def until_handover(
    env: WorkflowEnvironment, case: WorkflowHandle[DunningCase, CaseStatus]
) -> tuple[str, HandoverData]:
    await advance_until(env, case, lambda s: s.stage == CaseStage.AGENCY, step=timedelta(hours=2))
    workflow_id = await child_handle(env, case, "handover")
    for _ in range(50):
        data = await handover_status(env, workflow_id)
        if data.task_id:
            return workflow_id, data
        await env.sleep(timedelta(minutes=1))
    raise AssertionError("the handover never created its task")


async def log(env: WorkflowEnvironment, workflow_id: str, reached: bool, by: str = "A-7") -> HandoverData:
    return await env.client.get_workflow_handle(workflow_id).execute_update(
        "log_attempt", LogAttempt(reached=reached, by=by, note="Anruf"), result_type=HandoverData
    )


async def outcome(env: WorkflowEnvironment, workflow_id: str, request: RecordOutcome) -> HandoverData:
    return await env.client.get_workflow_handle(workflow_id).execute_update(
        "record_outcome", request, result_type=HandoverData
    )


async def sleep_until(env: WorkflowEnvironment, moment: datetime) -> None:
    delay = moment - await env.get_current_time()
    assert delay > timedelta(0), f"{moment} is in the past"
    await env.sleep(delay)


def local_moment(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


@pytest_asyncio.fixture
async def children_cleanup(time_env: WorkflowEnvironment, worker: Worker) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    await end_case_and_children(time_env, ids)


async def end_case_and_children(time_env: WorkflowEnvironment, ids: list[str]) -> None:
    """End the test's case the way staff would (cancel), so its children end through the designed
    path while the worker still runs: nothing is left in flight to lock the test server's clock."""
    case = time_env.client.get_workflow_handle_for(DunningCase.run, case_workflow_id(CONTRACT))
    try:
        await case.execute_update("cancel", Cancel(reason="test finished"), result_type=CaseStatus)
    except (WorkflowUpdateFailedError, RPCError):
        pass  # closed already
    try:
        await asyncio.wait_for(case.result(), 20)
    except Exception:  # noqa: BLE001 - failed/terminated cases are fine here
        pass
    for workflow_id in ids:
        handle = time_env.client.get_workflow_handle(workflow_id)
        try:
            await asyncio.wait_for(handle.result(), 20)
        except Exception:  # noqa: BLE001 - never started, cancelled or timed out: make sure it is gone
            await settle(time_env.client, handle.id)
            try:
                await handle.terminate("test finished")
            except RPCError:
                pass


async def test_contact_routine_over_two_days_with_buddy_fallback_and_sla_escalation(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1))
    day1 = today + timedelta(days=1)  # the handover day: 2 days after the due date
    with session_scope(engine) as session:
        add_absence(session, "A-7", today, day1, "holiday")
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, data = await until_handover(time_env, case)
    children_cleanup.append(workflow_id)
    assert data.assigned_at is not None and data.assigned_at.astimezone(BERLIN).date() == day1

    # Day 1: A-7 is on holiday, so the buddy A-8 gets the task and the e-mail with the agent-page link.
    assert (data.responsible_code, data.agent_code, data.supervisor_code) == ("A-7", "A-8", "S-1")
    assert data.state == HandoverState.WAITING
    assert data.contact_due_at == data.assigned_at + timedelta(hours=24)
    mails = [m for m in messages(engine, CONTRACT) if m.kind == "agent_handover"]
    assert [m.recipient for m in mails] == ["bea.buddy@example.org"]
    assert f"/agents/tasks/{data.task_id}" in mails[0].body_text

    # Nobody tries within 24 hours: the supervisor is told. On day 2 A-7 is back and gets the task back.
    await sleep_until(time_env, data.assigned_at + timedelta(hours=25))
    data = await handover_status(time_env, workflow_id)
    assert data.state == HandoverState.ESCALATED and len(data.escalations) == 1
    assert "SLA" in data.escalations[0] and not data.sla_met
    assert data.agent_code == "A-7"
    escalation = [m for m in messages(engine, CONTRACT) if m.kind == "agent_escalation"]
    assert [m.recipient for m in escalation] == ["sam.supervisor@example.org"]

    # Day 2: two calls, not reached → an SMS saying who calls and why; the next attempt is due tomorrow.
    day2 = day1 + timedelta(days=1)
    await sleep_until(time_env, local_moment(day2, 10))
    await log(time_env, workflow_id, reached=False)
    await time_env.sleep(timedelta(hours=3))
    data = await log(time_env, workflow_id, reached=False)
    assert data.unreached_days == [day2] and data.notified_days == [day2]
    assert data.contact_due_at == local_moment(day2 + timedelta(days=2), 0)
    notice = [m for m in messages(engine, CONTRACT) if m.kind == "agent_call_notice"]
    assert [(m.channel, m.recipient) for m in notice] == [("sms", "+4915112345678")]
    assert "Max Agent" in notice[0].body_text and "€" not in notice[0].body_text

    # Day 3: one more failed call, then reached: the customer promises to pay in a week.
    day3 = day2 + timedelta(days=1)
    await sleep_until(time_env, local_moment(day3, 10))
    await log(time_env, workflow_id, reached=False)
    data = await log(time_env, workflow_id, reached=True)
    assert data.state == HandoverState.REACHED and data.reached
    pay_by = day3 + timedelta(days=7)
    data = await outcome(time_env, workflow_id, RecordOutcome(kind=OutcomeKind.PROMISE_TO_PAY, pay_by=pay_by, by="A-7"))
    assert data.state == HandoverState.DONE
    result = await time_env.client.get_workflow_handle_for(AgentHandover.run, workflow_id).result()
    assert result.outcome is not None and result.outcome.kind == OutcomeKind.PROMISE_TO_PAY
    assert len(data.escalations) == 1  # the follow-ups were on time: no further escalation

    current = await advance_until(time_env, case, lambda s: s.hold is not None, step=timedelta(minutes=5))
    assert current.hold is not None and current.hold.kind == HoldKind.PROMISE
    assert current.hold.until is not None and current.hold.until.astimezone(BERLIN).date() == pay_by + timedelta(days=1)

    with session_scope(engine) as session:
        notes = [(n.kind, n.author) for n in notes_for_case(session, data.case_id)]
        attempts = session.exec(select(ContactAttempt)).all()
        task = session.exec(select(AgentTask)).one()
    assert notes == [
        ("handover", "system"),
        ("reassigned", "system"),  # day 2, midnight: back to A-7
        ("escalation", "system"),  # day 2, 24 hours after the handover
        ("call", "A-7"),
        ("call", "A-7"),
        ("message", "system"),
        ("call", "A-7"),
        ("contact", "A-7"),
        ("outcome", "A-7"),
    ]
    assert [(a.day, a.reached) for a in attempts] == [(day2, False), (day2, False), (day3, False), (day3, True)]
    assert (task.status, task.outcome, task.agent_code) == ("done", "promise_to_pay", "A-7")


async def test_the_agent_updates_reject_bad_input_and_change_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1))
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, before = await until_handover(time_env, case)
    children_cleanup.append(workflow_id)
    bad = [
        RecordOutcome(kind=OutcomeKind.PROMISE_TO_PAY, by="A-7"),
        RecordOutcome(kind=OutcomeKind.PROMISE_TO_PAY, pay_by=today - timedelta(days=1), by="A-7"),
        RecordOutcome(kind=OutcomeKind.PROMISE_TO_PAY, pay_by=today + timedelta(days=200), by="A-7"),
        RecordOutcome(kind=OutcomeKind.INSTALMENT_PLAN, instalments=1, first_instalment_on=today, by="A-7"),
        RecordOutcome(kind=OutcomeKind.COLLECTED, amount_cents=0, reference="Q-1", by="A-7"),
        RecordOutcome(kind=OutcomeKind.COLLECTED, amount_cents=500, by="A-7"),
        RecordOutcome(kind=OutcomeKind.DISPUTE, by="A-7"),
        RecordOutcome(kind=OutcomeKind.NOT_REACHABLE, by=" "),
    ]
    for request in bad:
        with pytest.raises(WorkflowUpdateFailedError):
            await outcome(time_env, workflow_id, request)
    with pytest.raises(WorkflowUpdateFailedError):
        await time_env.client.get_workflow_handle(workflow_id).execute_update(
            "log_attempt", LogAttempt(reached=False, by=""), result_type=HandoverData
        )
    after = await handover_status(time_env, workflow_id)
    assert after.attempts == [] and after.outcome is None and after.journal == before.journal


@pytest.mark.parametrize(
    "kind",
    [
        OutcomeKind.PROMISE_TO_PAY,
        OutcomeKind.INSTALMENT_PLAN,
        OutcomeKind.DISPUTE,
        OutcomeKind.WRONG_CONTACT_DATA,
        OutcomeKind.NOT_REACHABLE,
        OutcomeKind.COLLECTED,
    ],
)
async def test_each_outcome_steers_the_case(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    children_cleanup: list[str],
    kind: OutcomeKind,
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1), cents=20_000)
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, data = await until_handover(time_env, case)
    children_cleanup += [workflow_id, workflow_id.replace("/handover", "/court")]
    day = (await time_env.get_current_time()).astimezone(BERLIN).date()
    requests = {
        OutcomeKind.PROMISE_TO_PAY: RecordOutcome(kind=kind, pay_by=day + timedelta(days=10), by="A-7"),
        OutcomeKind.INSTALMENT_PLAN: RecordOutcome(
            kind=kind, instalments=3, first_instalment_on=day + timedelta(days=14), by="A-7"
        ),
        OutcomeKind.DISPUTE: RecordOutcome(kind=kind, note="says the contract was cancelled in May", by="A-7"),
        OutcomeKind.WRONG_CONTACT_DATA: RecordOutcome(kind=kind, note="number belongs to someone else", by="A-7"),
        OutcomeKind.NOT_REACHABLE: RecordOutcome(kind=kind, by="A-7"),
        OutcomeKind.COLLECTED: RecordOutcome(kind=kind, amount_cents=20_000, reference="Q-4711", by="A-7"),
    }
    await outcome(time_env, workflow_id, requests[kind])

    if kind == OutcomeKind.COLLECTED:  # the money is booked and the case is paid
        result = await case.result()
        assert result.stage == CaseStage.PAID and result.balance_cents == 0
        with session_scope(engine) as session:
            payment = session.exec(select(Payment)).one()
        assert (payment.source, payment.amount_cents, payment.external_ref) == (
            "agent",
            20_000,
            f"agent:{data.task_id}:Q-4711",
        )
        return
    if kind == OutcomeKind.NOT_REACHABLE:  # court dunning starts at once, not 30 days later
        current = await advance_until(
            time_env,
            case,
            lambda s: s.stage == CaseStage.COURT_APPROVAL,
            step=timedelta(minutes=10),
            limit=timedelta(hours=2),
        )
        assert [s.key for s in current.steps_done] == ["agency", "court"]
        return
    current = await advance_until(time_env, case, lambda s: s.hold is not None, step=timedelta(minutes=5))
    hold = current.hold
    assert hold is not None and hold.set_by == "agent A-7"
    if kind == OutcomeKind.PROMISE_TO_PAY:
        assert hold.kind == HoldKind.PROMISE and hold.until is not None
        assert hold.until.astimezone(BERLIN).date() == day + timedelta(days=11)  # the date + one day of grace
    elif kind == OutcomeKind.INSTALMENT_PLAN:
        # three monthly instalments over the whole 200.00, the odd cents in the first (issue #3's plan)
        assert hold.kind == HoldKind.INSTALMENTS
        assert [i.amount_cents for i in hold.schedule] == [6_668, 6_666, 6_666]
        assert hold.schedule[0].due == day + timedelta(days=14)
        assert hold.until is not None and hold.until.astimezone(BERLIN).date() == day + timedelta(days=15)
    elif kind == OutcomeKind.DISPUTE:
        assert hold.kind == HoldKind.DISPUTE and "cancelled in May" in hold.reason
    else:
        assert hold.kind == HoldKind.ATTENTION and "wrong contact data" in hold.reason
    assert current.stage == CaseStage.AGENCY  # nothing escalates while the hold lasts


async def test_a_broken_promise_from_the_agent_sends_the_case_to_court(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1))
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, _ = await until_handover(time_env, case)
    children_cleanup += [workflow_id, workflow_id.replace("/handover", "/court")]
    day = (await time_env.get_current_time()).astimezone(BERLIN).date()
    await outcome(
        time_env,
        workflow_id,
        RecordOutcome(kind=OutcomeKind.PROMISE_TO_PAY, pay_by=day + timedelta(days=5), by="A-7"),
    )
    current = await advance_until(time_env, case, lambda s: s.stage == CaseStage.COURT_APPROVAL)
    assert any("Promise to pay broken" in e.text for e in current.journal)


async def test_not_reached_on_three_days_of_the_routine_goes_to_court(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1))
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, data = await until_handover(time_env, case)
    children_cleanup += [workflow_id, workflow_id.replace("/handover", "/court")]
    assert data.assigned_at is not None
    first = data.assigned_at.astimezone(BERLIN).date()
    for offset in range(3):
        await sleep_until(time_env, local_moment(first + timedelta(days=offset), 10))
        await log(time_env, workflow_id, reached=False)
        await log(time_env, workflow_id, reached=False)
    result = await time_env.client.get_workflow_handle_for(AgentHandover.run, workflow_id).result()
    assert result.outcome is not None and result.outcome.kind == OutcomeKind.NOT_REACHABLE
    assert result.outcome.by == "system" and len(result.notified_days) == 2  # no message on the last day
    assert result.escalations == []  # the routine was followed
    current = await advance_until(
        time_env,
        case,
        lambda s: s.stage == CaseStage.COURT_APPROVAL,
        step=timedelta(minutes=10),
        limit=timedelta(hours=2),
    )
    assert current.steps_done[-1].key == "court"


async def test_the_daily_check_runs_on_working_mornings_only_as_a_local_activity(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    """Issue #15 (P3): the routine's morning check skips weekends and holidays and leaves one marker
    per morning in the history instead of an activity's three events, so a month of handover stays
    well under 200 events."""
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1))
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, _ = await until_handover(time_env, case)
    children_cleanup.append(workflow_id)

    await time_env.sleep(timedelta(days=9))  # nobody acts: the SLA escalates, then only mornings remain

    history = await time_env.client.get_workflow_handle(workflow_id).fetch_history()
    mornings = [
        e.event_time.ToDatetime(tzinfo=ZoneInfo("UTC")).astimezone(BERLIN)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    ]
    mornings = [m for m in mornings if (m.hour, m.minute) == (0, 0)]
    assert len(mornings) >= 5 and all(is_working_day(m.date()) for m in mornings), mornings
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert "check_assignee" not in scheduled
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) >= len(mornings)  # one local-activity marker per morning (and the patch marker)
    assert len(history.events) < 120, len(history.events)
