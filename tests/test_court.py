"""Court dunning (CourtDunning, a child of the case) on the time-skipping server: the paths with
and without objection, the six-month limit, years of monitoring with continue-as-new, and a
payment during court that settles the case and reactivates the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.calendar import add_years
from core.court_dates import initial_limitation
from infra.config import Settings
from ledger.db import session_scope
from models.agency import CourtDocument, CourtEvent
from models.case import ApproveCourtFiling, CaseStage, CaseStatus, HoldKind
from models.court import CourtApproval, CourtData, CourtEventInput, CourtEventKind, CourtState
from models.ledger import CourtApplication
from models.plan import DunningPlan, PlanStep, StepKind
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, contract_status, open_case, status
from tests.test_dunning_case import pay
from tests.test_handover import CONTRACT, end_case_and_children, start_case
from workflows.court import CourtDunning
from workflows.dunning import DunningCase

K = CourtEventKind


@pytest_asyncio.fixture
async def children_cleanup(time_env: WorkflowEnvironment, worker: Worker) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    await end_case_and_children(time_env, ids)


def court_plan() -> DunningPlan:
    return DunningPlan(
        id="court-test",
        version=1,
        title="Court dunning test plan",
        steps=[PlanStep(key="court", kind=StepKind.COURT_DUNNING, offset=timedelta(days=2))],
    )


async def court_case(
    env: WorkflowEnvironment, worker: Worker, engine: Engine, cleanup: list[str], cents: int = 30_000
) -> tuple[WorkflowHandle[DunningCase, CaseStatus], WorkflowHandle[CourtDunning, CourtData]]:
    """A case on the court plan, its application approved and filed."""
    today = berlin_today(await env.get_current_time())
    seed_contract(engine, CONTRACT, premiums=[("P-1", today - timedelta(days=1), cents)])
    case = await start_case(env, worker.task_queue, court_plan())
    reached = await advance_until(env, case, lambda s: s.stage == CaseStage.COURT_APPROVAL, step=timedelta(hours=4))
    court: WorkflowHandle[CourtDunning, CourtData] = env.client.get_workflow_handle_for(
        CourtDunning.run, f"{reached.case_id}/court"
    )
    cleanup.append(court.id)
    await until_state(env, court, CourtState.APPLICATION_PREPARED)
    approved = await case.execute_update(
        "approve_court_filing", ApproveCourtFiling(approver="J. Richter"), result_type=CaseStatus
    )
    assert approved.stage == CaseStage.COURT_FILED
    await until_state(env, court, CourtState.FILED)
    return case, court


async def until_state(
    env: WorkflowEnvironment,
    court: WorkflowHandle[CourtDunning, CourtData],
    state: CourtState,
    step: timedelta = timedelta(minutes=10),
) -> CourtData:
    for _ in range(100):
        data = await court.query(CourtDunning.status)
        if data.state == state:
            return data
        await env.sleep(step)
    raise AssertionError(f"court never reached {state}: {data.state} {data.journal}")


async def event(
    court: WorkflowHandle[CourtDunning, CourtData], kind: CourtEventKind, on: date, note: str = ""
) -> CourtData:
    return await court.execute_update(
        "record_event", CourtEventInput(kind=kind, occurred_on=on, note=note), result_type=CourtData
    )


async def today_of(env: WorkflowEnvironment) -> date:
    return berlin_today(await env.get_current_time())


async def test_court_path_without_objection_to_title_enforcement_and_monitoring(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, children_cleanup: list[str]
) -> None:
    case, court = await court_case(time_env, worker, engine, children_cleanup)
    with session_scope(engine) as session:
        application = session.exec(select(CourtApplication)).one()
        document = session.exec(select(CourtDocument)).one()
    assert (application.status, application.approved_by) == ("filed", "J. Richter")
    assert document.kind == "application" and document.pdf is not None and document.pdf.startswith(b"%PDF")
    assert document.record["claimed_cents"] == 30_000 and document.record["principal"]

    today = await today_of(time_env)
    await event(court, K.ISSUED, today)
    data = await event(court, K.SERVED, today)
    assert data.state == CourtState.SERVED and data.served_on == today
    with pytest.raises(WorkflowUpdateFailedError):  # no enforcement order before the window has passed
        await court.execute_update(
            "apply_for_enforcement_order", CourtApproval(approver="J. Richter"), result_type=CourtData
        )

    await time_env.sleep(timedelta(days=16))  # two weeks, no objection
    data = await until_state(time_env, court, CourtState.ENFORCEMENT_ORDER_DUE)
    assert data.enforcement_order_deadline is not None
    data = await court.execute_update(
        "apply_for_enforcement_order", CourtApproval(approver="J. Richter"), result_type=CourtData
    )
    assert data.state == CourtState.ENFORCEMENT_ORDER_APPLIED
    today = await today_of(time_env)
    await event(court, K.ENFORCEMENT_ORDER_ISSUED, today)
    await event(court, K.ENFORCEMENT_ORDER_SERVED, today)
    await time_env.sleep(timedelta(days=16))  # no Einspruch: the order becomes a final title
    # Two weeks end on the next working day when they end on a holiday (§222 ZPO): served e.g. on 18 December,
    # they end on 4 January, after New Year — so wait in steps that cover a holiday season.
    data = await until_state(time_env, court, CourtState.ENFORCEMENT, step=timedelta(hours=6))
    assert data.title_final_on is not None and data.limitation_date == add_years(data.title_final_on, 30)
    data = await event(court, K.ENFORCEMENT_UNSUCCESSFUL, await today_of(time_env), note="bailiff: no assets")
    assert data.state == CourtState.LONG_TERM_MONITORING and data.next_check_at is not None

    with session_scope(engine) as session:
        kinds = [e.kind for e in session.exec(select(CourtEvent).order_by(CourtEvent.id))]  # type: ignore[arg-type]
        enforcement = session.exec(
            select(CourtDocument).where(CourtDocument.kind == "enforcement_order_application")
        ).one()
    assert kinds == [
        "filed",
        "issued",
        "served",
        "objection_window_passed",
        "enforcement_order_issued",
        "enforcement_order_served",
        "title_final",
        "enforcement_started",
        "enforcement_unsuccessful",
    ]
    assert data.served_on is not None and enforcement.record["payment_order_served_on"] == data.served_on.isoformat()
    journal = [e.text for e in (await status(case)).journal]
    assert any("Court: Enforcement started" in t for t in journal)  # the case hears of every step
    assert (await status(case)).stage == CaseStage.COURT_FILED


async def test_court_path_with_objection_goes_to_lawsuit_and_rejects_impossible_events(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, children_cleanup: list[str]
) -> None:
    case, court = await court_case(time_env, worker, engine, children_cleanup)
    today = await today_of(time_env)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await event(court, K.OBJECTION, today)
    assert "not possible in state filed" in str(rejected.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await event(court, K.ISSUED, today + timedelta(days=3))
    assert "must not be in the future" in str(rejected.value.cause)
    await event(court, K.ISSUED, today)
    await event(court, K.SERVED, today)
    await time_env.sleep(timedelta(days=5))
    data = await event(court, K.OBJECTION, await today_of(time_env), note="Widerspruch")
    assert data.state == CourtState.LAWSUIT
    await time_env.sleep(timedelta(days=30))  # no enforcement deadline runs during the lawsuit
    data = await court.query(CourtDunning.status)
    assert data.state == CourtState.LAWSUIT
    with pytest.raises(WorkflowUpdateFailedError):
        await court.execute_update(
            "apply_for_enforcement_order", CourtApproval(approver="J. Richter"), result_type=CourtData
        )
    # A court feed signals an event the state does not allow: recorded, ignored, nothing lost or changed.
    await court.signal(CourtDunning.court_event, CourtEventInput(kind=K.ENFORCEMENT_ORDER_SERVED, occurred_on=today))
    judgment_day = await today_of(time_env)
    data = await event(court, K.JUDGMENT_FINAL, judgment_day)
    assert data.state == CourtState.ENFORCEMENT
    assert data.title_final_on == judgment_day and data.limitation_date == add_years(judgment_day, 30)
    assert any("Ignored court event enforcement_order_served" in line.text for line in data.journal)
    assert (await status(case)).hold is None


async def test_a_missed_six_month_deadline_lets_the_order_lapse_and_asks_a_person(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, children_cleanup: list[str]
) -> None:
    case, court = await court_case(time_env, worker, engine, children_cleanup)
    served = await today_of(time_env)
    await event(court, K.SERVED, served)
    await time_env.sleep(timedelta(days=16))
    data = await until_state(time_env, court, CourtState.ENFORCEMENT_ORDER_DUE)
    deadline = data.enforcement_order_deadline
    assert deadline is not None and timedelta(days=180) <= deadline - data.journal[0].at <= timedelta(days=190)

    # nobody applies: six months after service the order lapses
    result = await until_state(time_env, court, CourtState.LAPSED, step=timedelta(days=7))
    assert result.journal[-1].at >= deadline
    with session_scope(engine) as session:
        kinds = [e.kind for e in session.exec(select(CourtEvent))]
    assert kinds[-1] == "enforcement_order_limit_missed"
    current = await advance_until(time_env, case, lambda s: s.hold is not None, step=timedelta(minutes=10))
    assert current.hold is not None and current.hold.kind == HoldKind.ATTENTION and "lapsed" in current.hold.reason


async def test_five_years_of_monitoring_continue_as_new_without_losing_a_signal(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    case, court = await court_case(time_env, worker, engine, children_cleanup, cents=100_000)
    today = await today_of(time_env)
    await event(court, K.SERVED, today)
    await event(court, K.OBJECTION, today)
    await event(court, K.JUDGMENT_FINAL, today)
    await event(court, K.ENFORCEMENT_UNSUCCESSFUL, today)
    data = await court.query(CourtDunning.status)
    assert data.state == CourtState.LONG_TERM_MONITORING and data.run == 1
    rules = data.rules

    notes: list[str] = []
    payments: list[tuple[str, date]] = []
    for month in range(61):  # five years, a month at a time; signals land on check and run boundaries too
        note = f"info {month:02d}"
        notes.append(note)
        await court.signal(
            CourtDunning.court_event,
            CourtEventInput(kind=K.DEBTOR_INFORMATION, occurred_on=await today_of(time_env), note=note),
        )
        if month % 6 == 3:  # a small partial payment now and then, through the case
            ref = f"pay-{month}"
            await pay(time_env, engine, settings, ref, 1_000)
            payments.append((ref, await today_of(time_env)))
        await time_env.sleep(timedelta(days=30))

    data = await court.query(CourtDunning.status)
    checks = (61 * 30) // rules.monitoring_interval.days
    assert data.checks_done == checks == 20
    assert data.run == 1 + checks // rules.checks_per_run == 3  # continued as new after checks 8 and 16
    assert data.state == CourtState.LONG_TERM_MONITORING
    assert [line.split(": ", 1)[1] for line in data.debtor_information] == notes  # every signal, in order
    assert data.payments == [ref for ref, _ in payments]
    assert data.limitation_date == add_years(payments[-1][1], 30)  # the last partial payment restarted it
    with session_scope(engine) as session:
        rows = list(session.exec(select(CourtEvent)))
    assert [r.kind for r in rows].count("monitoring_check") == 20
    assert [r.kind for r in rows].count("debtor_information") == 61
    assert [r.kind for r in rows].count("partial_payment") == len(payments)


async def test_a_payment_during_court_settles_the_case_and_reactivates_the_contract(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, children_cleanup: list[str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, CONTRACT, premiums=[("P-1", today, 12_000)])
    case = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")  # the full German plan
    reached = await advance_until(time_env, case, lambda s: s.stage == CaseStage.COURT_APPROVAL)
    court: WorkflowHandle[CourtDunning, CourtData] = time_env.client.get_workflow_handle_for(
        CourtDunning.run, f"{reached.case_id}/court"
    )
    children_cleanup.append(court.id)
    assert contract_status(engine, CONTRACT) == "suspended"
    await case.execute_update("approve_court_filing", ApproveCourtFiling(approver="J. Richter"), result_type=CaseStatus)
    await until_state(time_env, court, CourtState.FILED)
    await event(court, K.ISSUED, await today_of(time_env))
    await event(court, K.SERVED, await today_of(time_env))

    await pay(time_env, engine, settings, "court-pay-1", 5_000)  # partial: limitation restarts, court goes on
    data = await court.query(CourtDunning.status)
    for _ in range(20):
        if data.payments:
            break
        await time_env.sleep(timedelta(minutes=1))
        data = await court.query(CourtDunning.status)
    assert data.payments == ["court-pay-1"] and data.state == CourtState.SERVED
    assert data.limitation_date == add_years(await today_of(time_env), 3)
    assert data.limitation_date != initial_limitation(today)

    await pay(time_env, engine, settings, "court-pay-2", reached.balance_cents - 5_000)
    result = await case.result()
    assert result.stage == CaseStage.PAID and result.closed
    assert contract_status(engine, CONTRACT) == "active"
    court_result = await court.result()
    assert court_result.state == CourtState.SETTLED
