"""The dunning case on the real time-skipping test server: weeks pass in milliseconds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config import Settings
from ledger.db import session_scope
from models.case import ApproveCourtFiling, CaseStage, RecordPayment
from models.ledger import AgentTask, ContractStatusChange, CourtApplication
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, contract_status, messages, open_case, status
from workflows.dunning import DunningCase


async def test_full_path_reaches_court_approval_and_payment_then_reactivates(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1")

    final = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.COURT_APPROVAL)

    assert [s.key for s in final.steps_done] == ["reminder", "notice", "suspend", "sms", "agency", "court"]
    assert final.balance_cents == 12_150  # premium + 1.50 EUR letter fee for the notice
    sent = [(m.kind, m.channel) for m in messages(engine, "K-100001")]
    assert sent == [
        ("reminder", "email"),
        ("qualified_notice", "letter"),
        ("qualified_notice", "email"),
        ("pay_link", "sms"),
        ("pay_link", "email"),
        ("agent_handover", "email"),
    ]
    assert contract_status(engine, "K-100001") == "suspended"
    with session_scope(engine) as session:
        task = session.exec(select(AgentTask)).one()
        assert (task.agent_code, task.status, task.open_cents) == ("A-7", "open", 12_150)
        assert session.exec(select(CourtApplication)).one().status == "prepared"

    approved = await handle.execute_update(DunningCase.approve_court_filing, ApproveCourtFiling(approver="J. Richter"))
    assert approved.stage == CaseStage.COURT_FILED

    await handle.execute_update(DunningCase.record_payment, RecordPayment(amount_cents=12_150, reference="counter-1"))
    result = await handle.result()
    assert result.stage == CaseStage.PAID and result.closed
    assert contract_status(engine, "K-100001") == "active"
    with session_scope(engine) as session:
        history = [(c.from_status, c.to_status) for c in session.exec(select(ContractStatusChange))]
        assert history == [("active", "suspended"), ("suspended", "active")]
        assert session.exec(select(AgentTask)).one().status == "done"
        assert session.exec(select(CourtApplication)).one().approved_by == "J. Richter"
    assert messages(engine, "K-100001")[-1].kind == "reactivation"
    assert (await status(handle)).closed
    _ = timedelta
