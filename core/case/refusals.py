"""Why a staff action cannot be accepted now: the update validators ask `refusal` and reject with
its text, so a bad request leaves nothing in the case's history. Pure, like the decider."""

from __future__ import annotations

from datetime import datetime, timedelta

from core import selfservice
from core.case import events as e
from core.case.decider import Case, due_step, stopped, today
from core.instalments import schedule_problem
from core.limits import (
    MAX_APPROVER_CHARS,
    MAX_HOLD,
    MAX_PAYMENT_SOURCE_CHARS,
    MAX_REASON_CHARS,
    MAX_REFERENCE_CHARS,
    MAX_REQUEST_CENTS,
    MAX_STAFF_NAME_CHARS,
)
from core.selfservice import Verdict
from models.case import CaseStage, CustomerArrangement
from models.plan import Anchor
from models.portal import RequestKind

MAX_PROMISE = timedelta(days=90)  # a promise to pay is due within 90 days; longer: an instalment plan


def text_problem(field: str, value: str, max_length: int = MAX_REASON_CHARS) -> str | None:
    if not value.strip():
        return f"{field} must not be empty"
    if len(value) > max_length:
        return f"{field} must be at most {max_length} characters, got {len(value)}"
    return None


def refusal(case: Case, action: e.StaffAction, now: datetime) -> str | None:
    """The reason `action` is refused, naming the field, the value and the rule; None: accepted."""
    state = case.state
    if case.closed:
        return f"case is closed ({state.stage}); nothing can change it"
    day = today(case, now)
    match action:
        case e.PaymentRecorded(request=request):
            if not 0 < request.amount_cents <= MAX_REQUEST_CENTS:
                return f"amount_cents must be between 1 and {MAX_REQUEST_CENTS}, got {request.amount_cents}"
            problem = text_problem("reference", request.reference, MAX_REFERENCE_CHARS) or text_problem(
                "source", request.source, MAX_PAYMENT_SOURCE_CHARS
            )
            if problem:
                return problem
            known = {i.premium_id for i in state.arrears.items}
            if request.premium_id is not None and request.premium_id not in known:
                return f"premium_id {request.premium_id!r} is not an open item of this case; open: {sorted(known)}"
        case e.HoldRequested(request=request):
            if problem := text_problem("reason", request.reason):
                return problem
            if request.until <= day:
                return f"until must be after today ({day}), got {request.until}"
            if request.until > day + MAX_HOLD:
                return f"until must be within a year, got {request.until}"
        case e.Resumed():
            if state.hold is None:
                return "case is not on hold, disputed or waiting for attention; nothing to resume"
        case e.Promised(request=request):
            if request.pay_by < day:
                return f"pay_by must be today or later ({day}), got {request.pay_by}"
            if request.pay_by > day + MAX_PROMISE:
                return f"pay_by must be within 90 days, got {request.pay_by}; agree an instalment plan instead"
            balance = state.arrears.balance_cents
            if request.amount_cents is not None and not 0 < request.amount_cents <= balance:
                return f"amount_cents must be between 1 and the open balance {balance}, got {request.amount_cents}"
        case e.InstalmentsAgreed(request=request):
            if problem := text_problem("by", request.by, MAX_STAFF_NAME_CHARS):
                return problem
            if state.stage == CaseStage.COURT_APPROVAL:
                return "the court application waits for approval: decide on it first"
            return schedule_problem(request.instalments, state.arrears.balance_cents, day)
        case e.Disputed(request=request) | e.WriteOffRequested(request=request) | e.CancelRequested(request=request):
            return text_problem("reason", request.reason)
        case e.EscalationRequested(request=request):
            return text_problem("reason", request.reason) or escalation_refusal(case, now)
        case e.CourtFilingApproved(request=request):
            if problem := text_problem("approver", request.approver, MAX_APPROVER_CHARS):
                return problem
            if state.stage != CaseStage.COURT_APPROVAL:
                return f"no court application waits for approval (stage is {state.stage})"
        case e.TerminationApproved(request=request) | e.TerminationDeclined(request=request):
            problem = text_problem("by", request.by, MAX_APPROVER_CHARS) or text_problem("note", request.note or "-")
            if problem:
                return problem
            if state.stage != CaseStage.TERMINATION_APPROVAL:
                return f"no termination waits for a decision (stage is {state.stage})"
        case e.CustomerArranged(request=request):
            verdict = customer_refusal(case, request, now)
            return verdict.message if verdict else None
        case e.CustomerAsked(request=request):
            if request.request_id < 1:
                return f"request_id must be a positive row id, got {request.request_id}"
            if request.kind not in REQUEST_KINDS:
                return f"kind must be one of {sorted(REQUEST_KINDS)}, got {request.kind!r}"
    return None


REQUEST_KINDS = frozenset(k.value for k in RequestKind)


def customer_refusal(case: Case, request: CustomerArrangement, now: datetime) -> Verdict | None:
    """Why the case does not take this arrangement from the customer (a code the portal translates);
    None: inside the guardrails, agreed."""
    state = case.state
    blocked = selfservice.case_blocks(state, case.closed)
    if blocked is not None:
        return blocked
    rules = state.plan.self_service
    verdict = selfservice.judge(
        rules, request, state.arrears.balance_cents, today(case, now), state.self_service_arrangements
    )
    return None if verdict.ok else verdict


def escalation_refusal(case: Case, now: datetime) -> str | None:
    state = case.state
    if stopped(case):
        return "automated dunning is stopped for this contract (see the hold): resume it first"
    if state.stage == CaseStage.COURT_APPROVAL:
        return "the court application waits for approval: use approve_court_filing"
    if state.stage == CaseStage.TERMINATION_APPROVAL:
        return "a termination waits for a decision: use approve_termination or decline_termination"
    step = due_step(case)
    if step is None:
        return "the plan has no further step; the case waits for payment"
    if step.after == Anchor.DEADLINE and state.deadline and now < state.deadline:
        # The customer was promised this deadline in a legal notice: nothing that depends on it
        # passing (suspension of cover above all) may happen earlier.
        return f"step {step.key} needs the notice deadline {state.deadline:%Y-%m-%d %H:%M} UTC to pass first"
    return None
