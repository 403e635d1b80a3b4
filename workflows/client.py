"""How the outside world (ledger API, webhooks, sweep, CLI) talks to dunning cases."""

from __future__ import annotations

import asyncio

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from core.case_view import summary_line
from models.case import (
    CaseInput,
    CaseStatus,
    DunningStopped,
    PaymentAwaited,
    PaymentBooked,
    PaymentOutcome,
    PremiumOverdue,
)
from workflows import search_attributes as sa
from workflows.dunning import DunningCase


def case_workflow_id(contract_number: str) -> str:
    return f"dunning-{contract_number}"


async def start_or_join_case(
    client: Client, task_queue: str, contract_number: str, premium: PremiumOverdue, plan_id: str
) -> WorkflowHandle[DunningCase, CaseStatus]:
    """Signal-with-start: the contract's running case gets the premium, or a new case starts.

    Idempotent: the case ignores a premium it already holds, so the same event twice (or a
    sweep run twice) changes nothing.
    """
    return await client.start_workflow(
        DunningCase.run,
        CaseInput(contract_number=contract_number, plan_id=plan_id),
        id=case_workflow_id(contract_number),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="premium_overdue",
        start_signal_args=[premium],
        static_summary=summary_line(contract_number, plan_id),
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.CONTRACT_NUMBER, contract_number), SearchAttributePair(sa.DUNNING_PLAN, plan_id)]
        ),
    )


async def _signal_running_case(client: Client, contract_number: str, signal: str, arg: object) -> bool:
    """Signal the contract's running case; False when none runs (a closed case ignores signals)."""
    handle = client.get_workflow_handle(case_workflow_id(contract_number))
    try:
        await handle.signal(signal, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def notify_payment(client: Client, contract_number: str, payment: PaymentBooked) -> bool:
    """Tell the contract's running case about a booked payment. False when no case runs."""
    return await _signal_running_case(client, contract_number, "payment_booked", payment)


async def notify_payment_and_answer(
    client: Client, contract_number: str, payment: PaymentBooked, timeout: float
) -> PaymentOutcome | None:
    """Tell the contract's running case about a booked payment and wait up to `timeout` seconds for
    its answer, in one update (`payment_booked_answer`); None when no case runs or no answer came.
    Whatever goes wrong with the update (no worker admits it in time, the call is cut off), the
    payment is then signalled — durable without a worker; the case ignores a reference it has seen, so
    an update that did arrive and the signal count once."""
    handle = client.get_workflow_handle_for(DunningCase.run, case_workflow_id(contract_number))
    try:
        answer = await asyncio.wait_for(
            handle.execute_update("payment_booked_answer", payment, result_type=PaymentOutcome), max(timeout, 0.1)
        )
        return answer
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None  # no case runs: nothing to tell
    except (TimeoutError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        pass
    await notify_payment(client, contract_number, payment)
    return None


async def await_payment_outcome(
    client: Client, contract_number: str, payment_ref: str, timeout: float
) -> PaymentOutcome | None:
    """The case's answer to a payment signalled before (`notify_payment`): balance left, contract
    status, cover restored. None when no case runs, it refused (it never saw that payment), or it has
    not answered within `timeout` seconds — the signal stands and the case answers by itself."""
    if timeout <= 0:
        return None
    handle = client.get_workflow_handle_for(DunningCase.run, case_workflow_id(contract_number))
    try:
        return await asyncio.wait_for(
            handle.execute_update(
                "payment_outcome", PaymentAwaited(payment_ref=payment_ref), result_type=PaymentOutcome
            ),
            timeout,
        )
    except (TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None


async def notify_dunning_stopped(client: Client, contract_number: str, stop: DunningStopped) -> bool:
    """Tell the contract's running case that automated dunning must stop. False when no case runs
    (nothing to stop; the contract-level block keeps new automated cases from starting)."""
    return await _signal_running_case(client, contract_number, "dunning_stopped", stop)
