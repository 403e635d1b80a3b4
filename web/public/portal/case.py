"""How the portal talks to a contract's case: every customer action is a workflow update whose
validator decides (issue #14). A refusal comes back as a code the portal shows in the customer's
language (core/selfservice.Verdict codes, plus `no_case` and `refused`); nothing is half-applied.

A request for a person is written first as a `pending` row (its content, any attachment) and then
sent to the case by id; if the case refuses it, the row is discarded and never reaches a queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ledger import requests
from ledger.db import session_scope
from models.case import CaseStatus, CustomerArrangement, CustomerRequest
from web.deps import AppContext
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

BY = "customer portal"
STATUS_TIMEOUT = timedelta(seconds=10)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseAnswer:
    """What the contract's case said of itself: its status while it runs; `closed` when it has ended;
    `answered` False when it cannot say just now (the page then says so, the ledger's amounts stay)."""

    status: CaseStatus | None
    answered: bool = True
    closed: bool = False


async def case_status(client: Client, contract_number: str) -> CaseAnswer:
    """The running case's `status` query. A closed case is not asked (its query would wait for a
    worker to replay its history): Temporal rejects the query at once; the wait is bounded."""
    handle = client.get_workflow_handle(case_workflow_id(contract_number))
    try:
        status: CaseStatus = await handle.query(
            DunningCase.status, reject_condition=QueryRejectCondition.NOT_OPEN, rpc_timeout=STATUS_TIMEOUT
        )
    except WorkflowQueryRejectedError:
        return CaseAnswer(None, closed=True)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return CaseAnswer(None)
        log.warning("portal: case status query failed (%s)", error.status.name if error.status else "no status")
        return CaseAnswer(None, answered=False)
    except WorkflowQueryFailedError as error:
        log.warning("portal: case status query failed: %s", type(error).__name__)
        return CaseAnswer(None, answered=False)
    return CaseAnswer(status, closed=status.closed)


@dataclass(frozen=True)
class Refused:
    """The case said no: `code` selects the text (web/public/portal texts), `params` fill it."""

    code: str
    message: str  # English, as the validator said it (for logs without personal data)
    params: dict[str, Any] = field(default_factory=dict)


async def _update(client: Client, contract_number: str, update: Any, argument: Any) -> CaseStatus | Refused:
    handle = client.get_workflow_handle(case_workflow_id(contract_number))
    try:
        result: CaseStatus = await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type == "CustomerRefused" and cause.details:
            detail = cause.details[0] if isinstance(cause.details[0], dict) else {}
            return Refused(str(detail.get("code", "refused")), cause.message, dict(detail.get("params") or {}))
        message = getattr(cause, "message", None) or str(cause)
        return Refused("refused", message)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return Refused("no_case", "no running case for this contract")
        raise
    return result


async def arrange(ctx: AppContext, contract_number: str, arrangement: CustomerArrangement) -> CaseStatus | Refused:
    """The customer's own instalment plan or deferral; the case's validator judges the guardrails."""
    return await _update(ctx.client, contract_number, DunningCase.customer_arrangement, arrangement)


async def ask(ctx: AppContext, contract_number: str, request_id: int, kind: str) -> CaseStatus | Refused:
    """Send a pending request (already written by the portal) to the case; a refused one is discarded."""
    outcome = await _update(
        ctx.client, contract_number, DunningCase.customer_request, CustomerRequest(request_id=request_id, kind=kind)
    )
    if isinstance(outcome, Refused):
        with session_scope(ctx.engine) as session:
            requests.discard(session, request_id)
    return outcome
