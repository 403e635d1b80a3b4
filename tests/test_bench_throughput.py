"""The end-to-end throughput benchmark's baseline (dev/bench/throughput.py, issue #15 P6) has the
shape of a real case: on the time-skipping server one real case runs the `demo-fast` plan from
overdue to suspended, gets a partial and then a full payment (through the ledger's inbound path,
as the ledger API books them) and ends reactivated; `BenchScript`, built from that history, then
runs as many activities (local and regular), fired timers and signals. No timing is asserted."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from dev.bench.noop import BenchScript, Script
from dev.bench.throughput import Marks, NoopCases, RealCases, create_marks, drive, script_from, shape_of
from infra.config import Settings
from infra.runtime import PASSTHROUGH
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.ledger import ContractStatus
from workflows.client import case_workflow_id


class Paced:
    """Skips the server's clock a quarter second per poll, but never while a payment is on its way
    (so the plan's next step cannot overtake it)."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env
        self.paying = 0

    async def pause(self) -> None:
        if self.paying:
            await asyncio.sleep(0.05)
        else:
            await self.env.sleep(timedelta(seconds=0.25))


class InboundCases(RealCases):
    """The real cases, paid through `Inbound.payment` as the ledger API's handler calls it."""

    def __init__(self, env: WorkflowEnvironment, engine: Engine, settings: Settings, paced: Paced) -> None:
        super().__init__(env.client, engine, settings.task_queue, None)
        self.inbound = Inbound(engine, env.client, settings)
        self.paced = paced

    async def send(self, number: str, reference: str, cents: int) -> None:
        self.paced.paying += 1
        try:
            await self.inbound.payment(
                contract_number=number, external_ref=f"ledger:{reference}", amount_cents=cents, source="ledger"
            )
        finally:
            self.paced.paying -= 1


class SignalledNoop(NoopCases):
    def __init__(self, env: WorkflowEnvironment, queue: str, script: Script, marks: Path, paced: Paced) -> None:
        super().__init__(env.client, queue, script, marks)
        self.paced = paced

    async def pay(self, wid: str, n: int, amount: int | None) -> None:
        self.paced.paying += 1
        try:
            await super().pay(wid, n, amount)
        finally:
            self.paced.paying -= 1


async def test_the_no_op_script_has_the_shape_of_a_real_case(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    paced = Paced(time_env)
    real = InboundCases(time_env, engine, settings, paced)
    today = (await time_env.get_current_time()).date()
    (number,) = real.seed("KX", 1, today - timedelta(days=1))
    done = await drive([number], real.start, real.poll_for("KX"), real.pay, paced.pause)
    assert list(done.done) == [number]
    handle = time_env.client.get_workflow_handle(case_workflow_id(number))
    await handle.result()
    with session_scope(engine) as session:
        assert [h.to_status for h in service.status_history(session, number)] == [
            ContractStatus.SUSPENDED,
            ContractStatus.ACTIVE,
        ]
    real_shape = shape_of(await handle.fetch_history())
    script = script_from(await handle.fetch_history())
    assert real_shape.signals == 3  # the premium (signal-with-start) and two payments
    assert real_shape.activities.get("send_message", 0) >= 4  # reminder, notice, receipt, reactivation

    marks = tmp_path / "marks.sqlite3"
    create_marks(marks)
    queue = settings.task_queue + "-noop"
    noop = SignalledNoop(time_env, queue, script, marks, paced)
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    with ThreadPoolExecutor(4) as executor:
        async with Worker(
            time_env.client,
            task_queue=queue,
            workflows=[BenchScript],
            activities=[Marks(marks).step],
            activity_executor=executor,
            workflow_runner=runner,
        ):
            await drive(["bench-script-test"], noop.start, noop.poll, noop.pay, paced.pause)
            noop_handle = time_env.client.get_workflow_handle("bench-script-test")
            await noop_handle.result()
    noop_shape = shape_of(await noop_handle.fetch_history())

    local = [k for k in real_shape.activities if k.endswith("(local)")]
    assert noop_shape.activity_count == real_shape.activity_count
    assert noop_shape.activities.get("bench_step (local)", 0) == sum(real_shape.activities[k] for k in local)
    assert noop_shape.timers_fired == real_shape.timers_fired
    assert noop_shape.signals == real_shape.signals
    # A timer a payment cancels may not start at all when the payment is quicker than the case
    # (in either workflow): only its upper bound is the script's.
    assert noop_shape.timers_cancelled <= sum(1 for s in script.steps if s.kind == "wait")
