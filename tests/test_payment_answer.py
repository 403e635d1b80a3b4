"""A payment rides on the case's update `payment_booked_answer`, which also brings the answer (issue
#15 P2); when no worker takes it, the payment still reaches the case as a signal. Its own module: an
update no worker ever takes stays pending on the module's time-skipping server (tests/conftest.py)."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from infra.config import Settings
from ledger.inbound import Inbound
from tests.conftest import seed_contract, settle
from tests.helpers import berlin_today, open_case

CONTRACT = "K-100001"


async def test_a_payment_is_signalled_when_no_worker_takes_the_answering_update(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    """The payment rides on an update that also brings the answer; with no worker to take it within
    PAYMENT_ANSWER_SECONDS the payment goes as a signal (durable), the answer stays empty."""
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "P-1")  # no worker runs
    inbound = Inbound(engine, time_env.client, settings.model_copy(update={"payment_answer_seconds": 0.5}))

    result = await inbound.payment(
        contract_number=CONTRACT,
        external_ref="ledger:late-1",
        amount_cents=5_000,
        source="ledger",
        received_at=await time_env.get_current_time(),
        answer=True,
    )

    assert result.booked and result.outcome is None
    history = await handle.fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["premium_overdue", "payment_booked"]
    await settle(time_env.client, handle.id)
    await handle.terminate("test finished")
