"""Staff actions on a case from the contract page (internal app, issue #12).

Each form posts to its own URL, so the policy table (web/auth/policy.py) names who may do it:
clerks and supervisors hold, resume, record promises and disputes and escalate; only supervisors
write off, cancel, approve a court filing or decide a termination. The handler passes the signed-in
person's name — never a name typed into the form — as the update's `by`, so the case's journal, the
Temporal history and the audit trail agree on who did it. The workflow's validators decide: a
rejected action shows the reason on the page and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from core.limits import MAX_REASON_CHARS
from core.money import parse_amount
from models.case import (
    ApproveCourtFiling,
    Cancel,
    Dispute,
    EscalateNow,
    HoldRequest,
    PromiseToPay,
    Resume,
    TerminationDecision,
    WriteOff,
)
from web.auth.audit import note
from web.auth.principal import principal
from web.deps import context
from web.internal.staff import render_contract
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

router = APIRouter(prefix="/contracts/{contract_number}/case", tags=["case actions"])

Text = Annotated[str, Form(max_length=MAX_REASON_CHARS)]


class ActionError(ValueError):
    """Bad form input: the page shows the message, nothing is sent to the case."""


def _reason(value: str) -> str:
    reason = " ".join(value.split())
    if not reason:
        raise ActionError("Please give a reason: it goes into the case's journal.")
    if any(ord(c) < 32 for c in value if c not in "\r\n\t"):
        raise ActionError("The reason contains control characters.")
    return reason


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ActionError(f"{what}: {value[:20]!r} is not a date (YYYY-MM-DD).") from None


async def _run(
    request: Request, contract_number: str, action: str, build: Callable[[str], BaseModel], update: Any
) -> Response:
    who = principal(request)
    try:
        argument = build(who.name)
    except ActionError as error:
        return render_contract(request, contract_number, 422, error=str(error))
    handle = context(request).client.get_workflow_handle(case_workflow_id(contract_number))
    try:
        await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as error:
        reason = getattr(error.cause, "message", None) or str(error.cause)
        return render_contract(request, contract_number, 422, error=f"The case refused {action}: {reason}")
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return render_contract(request, contract_number, 409, error="There is no running case for this contract.")
        raise
    note(request, contract_number=contract_number, case_action=action, **_public_fields(argument))
    return RedirectResponse(f"/contracts/{contract_number}?done={action}", status_code=303)


def _public_fields(argument: BaseModel) -> dict[str, Any]:
    """What the audit row keeps of the action (the reason is the staff member's own words)."""
    return {k: str(v) for k, v in argument.model_dump().items() if k not in ("by", "approver") and v not in (None, "")}


@router.post("/hold")
async def hold(request: Request, contract_number: str, until: Text = "", reason: Text = "") -> Response:
    return await _run(
        request,
        contract_number,
        "hold",
        lambda by: HoldRequest(until=_date(until, "Hold until"), reason=_reason(reason), by=by),
        DunningCase.hold,
    )


@router.post("/resume")
async def resume(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request, contract_number, "resume", lambda by: Resume(reason=_reason(reason), by=by), DunningCase.resume
    )


@router.post("/promise")
async def promise(
    request: Request, contract_number: str, pay_by: Text = "", amount: Text = "", reason: Text = ""
) -> Response:
    def build(by: str) -> PromiseToPay:
        cents = None
        if amount.strip():
            try:
                cents = parse_amount(amount.strip())
            except ValueError as error:
                raise ActionError(f"Amount: {error}") from None
        return PromiseToPay(pay_by=_date(pay_by, "Pay by"), amount_cents=cents, note=" ".join(reason.split()), by=by)

    return await _run(request, contract_number, "promise", build, DunningCase.promise_to_pay)


@router.post("/dispute")
async def dispute(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request, contract_number, "dispute", lambda by: Dispute(reason=_reason(reason), by=by), DunningCase.dispute
    )


@router.post("/escalate")
async def escalate(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request,
        contract_number,
        "escalate",
        lambda by: EscalateNow(reason=_reason(reason), by=by),
        DunningCase.escalate_now,
    )


@router.post("/write-off")
async def write_off(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request, contract_number, "write-off", lambda by: WriteOff(reason=_reason(reason), by=by), DunningCase.write_off
    )


@router.post("/cancel")
async def cancel(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request, contract_number, "cancel", lambda by: Cancel(reason=_reason(reason), by=by), DunningCase.cancel
    )


@router.post("/approve-court-filing")
async def approve_court_filing(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request,
        contract_number,
        "approve-court-filing",
        lambda by: ApproveCourtFiling(approver=by, note=" ".join(reason.split())),
        DunningCase.approve_court_filing,
    )


@router.post("/approve-termination")
async def approve_termination(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request,
        contract_number,
        "approve-termination",
        lambda by: TerminationDecision(by=by, note=" ".join(reason.split())),
        DunningCase.approve_termination,
    )


@router.post("/decline-termination")
async def decline_termination(request: Request, contract_number: str, reason: Text = "") -> Response:
    return await _run(
        request,
        contract_number,
        "decline-termination",
        lambda by: TerminationDecision(by=by, note=_reason(reason)),
        DunningCase.decline_termination,
    )
