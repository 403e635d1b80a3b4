"""Replay: every saved DunningCase history (tests/histories/*.json) must replay on today's
workflow code, so a change that would break running cases fails here, not in production.

Also the one patch so far (`write-off-rereads-ledger`, docs/workflow-versioning.md): a history
recorded before it still replays, would not replay without the `workflow.patched` guard, and the
new behaviour (a write-off racing a full payment ends the case as paid) holds for new cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from infra.config import Settings
from infra.runtime import PASSTHROUGH, WORKFLOWS
from ledger import service
from ledger.db import session_scope
from models.case import CaseStage, CaseStatus, WriteOff
from models.ledger import Fee, Message, Premium
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, open_case
from tests.histories.record import SCENARIOS
from workflows.dunning import LEDGER_LOCAL, WRITE_OFF_REREADS_LEDGER

HISTORIES = Path(__file__).resolve().parent / "histories"
SAVED = sorted(HISTORIES.glob("*.json"))
BEFORE_PATCH = HISTORIES / "write_off_before_patch.json"


def replayer() -> Replayer:
    """The worker's workflows, converter and sandbox (infra/runtime.py), without a server."""
    return Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )


def saved(path: Path) -> WorkflowHistory:
    """A file written by tests/histories/record.py: the workflow id and the events."""
    recorded = json.loads(path.read_text())
    return WorkflowHistory.from_json(recorded["workflowId"], {"events": recorded["events"]})


def test_every_scenario_has_a_saved_history() -> None:
    assert {p.stem for p in SAVED} >= set(SCENARIOS) | {BEFORE_PATCH.stem}


@pytest.mark.parametrize("path", SAVED, ids=lambda p: p.stem)
async def test_saved_history_replays_on_todays_workflow_code(path: Path) -> None:
    result = await replayer().replay_workflow(saved(path))  # raises on any nondeterminism
    assert result.replay_failure is None


async def test_the_old_write_off_history_would_not_replay_without_the_patch_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the change had been made without `workflow.patched`: the new code path always runs.
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)
    with pytest.raises(workflow.NondeterminismError):
        await replayer().replay_workflow(saved(BEFORE_PATCH))


def patches_in(path: Path) -> set[str]:
    """Ids of the patches a history's markers record (the SDK stores {"id": …} as a payload)."""
    found: set[str] = set()
    for event in saved(path).events:
        if event.HasField("marker_recorded_event_attributes"):
            for payloads in event.marker_recorded_event_attributes.details.values():
                for payload in payloads.payloads:
                    data = json.loads(payload.data)
                    if isinstance(data, dict) and "id" in data:
                        found.add(str(data["id"]))
    return found


def test_histories_recorded_since_the_patch_carry_its_marker_and_the_old_one_does_not() -> None:
    assert WRITE_OFF_REREADS_LEDGER not in patches_in(BEFORE_PATCH)
    assert WRITE_OFF_REREADS_LEDGER in patches_in(HISTORIES / "written_off.json")


def test_only_histories_recorded_since_ledger_calls_local_carry_its_marker() -> None:
    # The other files keep the activity path replaying (docs/workflow-versioning.md, issue #15 P2).
    local = {p.stem for p in SAVED if LEDGER_LOCAL in patches_in(p)}
    assert local == {"suspended_then_reactivated_local", "partial_payment_then_cleared_local"}
    assert any(
        event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        for event in saved(HISTORIES / "suspended_then_reactivated_local.json").events
    )


async def test_a_write_off_that_races_a_full_payment_closes_the_case_as_paid(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, "K-RACE-1", premiums=[("P-RACE-1", today, 6_000)])
    handle = await open_case(time_env, settings.task_queue, "K-RACE-1", "P-RACE-1")
    case = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    # The bank feed booked the whole balance; its signal has not reached the case yet.
    with session_scope(engine) as session:
        service.book_payment(
            session,
            contract_number="K-RACE-1",
            external_ref="bank:race-1",
            amount_cents=case.balance_cents,
            received_at=await time_env.get_current_time(),
            source="bank",
        )

    after = await handle.execute_update("write_off", WriteOff(reason="uneconomic", by="clerk"), result_type=CaseStatus)

    assert after.stage == CaseStage.PAID and after.balance_cents == 0
    with session_scope(engine) as session:
        assert all(f.paid_cents == f.amount_cents and not f.written_off for f in session.exec(select(Fee)))
        assert all(p.status == "paid" for p in session.exec(select(Premium)))
        # Paid at the notice, never suspended: the one confirmation says "paid", not "cover restored".
        confirmations = [m.kind for m in session.exec(select(Message)) if m.kind in ("reactivation", "paid_in_full")]
        assert confirmations == ["paid_in_full"]
