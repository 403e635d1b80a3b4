"""Starting and signalling the campaign's workflows from outside Temporal (web apps, CLI): one workflow per
quote and per contract follow-up, ever; a finished one is never restarted; signals skip finished ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.campaign import CampaignStage, ConsentConfirmed, ExitSignal, FollowUpInput, QuoteInput
from workflows import search_attributes as sa
from workflows.campaign import (
    InspectionReminder,
    OnboardingSequence,
    QuoteReactivation,
    inspection_workflow_id,
    onboarding_workflow_id,
    quote_workflow_id,
)

# --- the Temporal side -----------------------------------------------------------------------


async def start_quote(client: Client, task_queue: str, input: QuoteInput) -> None:
    """One workflow per quote, ever: a running one is joined, a finished one is not restarted."""
    try:
        await client.start_workflow(
            QuoteReactivation.run,
            input,
            id=quote_workflow_id(input.quote_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Abandoned quote {input.quote_id} · segment {input.segment.value}",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(
                        sa.CAMPAIGN_STAGE,
                        CampaignStage.AWAITING_CONFIRMATION if input.person_key else CampaignStage.NO_CONSENT,
                    )
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran and finished: abandoning again never starts a second one


async def start_follow_up(client: Client, task_queue: str, kind: str, input: FollowUpInput) -> None:
    """Onboarding / inspection reminder, each started exactly once per contract."""
    run: Any = OnboardingSequence.run if kind == "onboarding" else InspectionReminder.run
    workflow_id = (onboarding_workflow_id if kind == "onboarding" else inspection_workflow_id)(input.contract_number)
    try:
        await client.start_workflow(
            run,
            input,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{kind.capitalize()} for contract {input.contract_number}",
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.CAMPAIGN_STAGE, CampaignStage.WAITING)]),
        )
    except WorkflowAlreadyStartedError:
        pass


async def signal_all(client: Client, workflow_ids: list[str], signal: ExitSignal) -> int:
    """Signal every workflow of the person; finished ones are skipped. Returns how many got it."""
    delivered = 0
    for workflow_id in workflow_ids:
        try:
            await client.get_workflow_handle(workflow_id).signal("exit_sequence", signal)
            delivered += 1
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    return delivered


async def signal_confirmed(client: Client, workflow_id: str, confirmed_at: datetime) -> None:
    try:
        await client.get_workflow_handle(workflow_id).signal(
            QuoteReactivation.consent_confirmed, ConsentConfirmed(confirmed_at=confirmed_at)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
