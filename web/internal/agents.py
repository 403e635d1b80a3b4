"""The agent page: an agent's open handover tasks, the customer's case in brief, and forms to log
a contact attempt and record the outcome. The forms go to the AgentHandover child workflow as
updates, so its validators decide (a rejected form changes nothing and shows the reason).

Agents sign in like all staff (issue #12): an account with role agent and their agent code
(`starter.py staff add NAME --role agent --agent-code A-7`, or the insurer's OIDC with the agent-code
claim); the session is server-side, expiring and revocable. The policy table lets only agents in;
each handler shows and changes only the signed-in agent's own tasks. Agents reach a task from the
link in their handover e-mail (`/agents/tasks/<id>`) on the internal app.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.agency import HANDOVER_KIND, notes_for_case, supervisor_of
from core.money import parse_amount
from ledger import requests as service_requests
from ledger import service
from ledger.db import session_scope
from models.agency import ContactChannel, HandoverData, LogAttempt, OutcomeKind, RecordOutcome
from models.ledger import AgentTask, Contract
from web.auth.principal import principal
from web.deps import RowId, berlin_today, context
from web.internal.requests import answer_as, request_facts
from web.render import page
from workflows.handover import AgentHandover

router = APIRouter(prefix="/agents")
OUTCOME_LABELS = {
    OutcomeKind.PROMISE_TO_PAY: "Promise to pay (date)",
    OutcomeKind.INSTALMENT_PLAN: "Instalment plan agreed",
    OutcomeKind.DISPUTE: "Customer disputes the claim",
    OutcomeKind.NOT_REACHABLE: "Not reachable",
    OutcomeKind.COLLECTED: "Paid / collected by me",
    OutcomeKind.WRONG_CONTACT_DATA: "Wrong address or number",
}


class FormError(ValueError):
    pass


def signed_in(request: Request) -> str | None:
    """The agent code of the signed-in agent (the policy check let only agents in)."""
    return principal(request).agent_code


def to_sign_in(request: Request) -> Response:
    return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)


def handover_workflow_id(task: AgentTask) -> str:
    return f"{task.case_id}/handover"


def agent_page(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return page(request, name, status_code, headers=headers, agent=signed_in(request), **values)


# --- tasks -----------------------------------------------------------------------------------


@router.get("")
def my_tasks(request: Request) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    with session_scope(context(request).engine) as session:
        query = (
            select(AgentTask, Contract.contract_number)
            .join(Contract, col(Contract.id) == col(AgentTask.contract_id))
            .where(AgentTask.agent_code == agent, AgentTask.status == "open", AgentTask.kind == HANDOVER_KIND)
            .order_by(col(AgentTask.due_at), col(AgentTask.id))
        )
        rows = [(task, number) for task, number in session.exec(query)]
        waiting = service_requests.agent_requests(session, agent)
        for row, _ in waiting:
            session.expunge(row)
    return agent_page(request, "agents_tasks.html", rows=rows, customer_requests=waiting)


def _task_for(request: Request, agent: str, task_id: RowId) -> tuple[AgentTask, Contract] | None:
    """The task, if this agent may work on it: the assignee, or the assignee's supervisor."""
    with session_scope(context(request).engine) as session:
        task = session.get(AgentTask, task_id)
        if task is None or task.kind != HANDOVER_KIND:
            return None
        contract = session.get(Contract, task.contract_id)
        if contract is None:
            return None
        allowed = agent in (
            task.agent_code,
            supervisor_of(session, task.agent_code),
            supervisor_of(session, contract.agent_code or ""),
        )
        return (task, contract) if allowed else None


async def _handover(request: Request, task: AgentTask) -> HandoverData | None:
    handle = context(request).client.get_workflow_handle_for(AgentHandover.run, handover_workflow_id(task))
    try:
        return await handle.query(AgentHandover.status)
    except (RPCError, WorkflowQueryFailedError):
        return None


async def task_page(request: Request, agent: str, task_id: RowId, status_code: int = 200, **values: Any) -> Response:
    found = _task_for(request, agent, task_id)
    if found is None:
        return agent_page(request, "agents_tasks.html", 404, rows=[], error=f"Task {task_id} is not one of yours.")
    task, contract = found
    with session_scope(context(request).engine) as session:
        customer = service.get_customer(session, contract)
        arrears = service.arrears(session, contract.contract_number, berlin_today())
        notes = notes_for_case(session, task.case_id)
    return agent_page(
        request,
        "agents_task.html",
        status_code,
        task=task,
        contract=contract,
        customer=customer,
        arrears=arrears,
        notes=notes,
        handover=await _handover(request, task),
        outcomes=OUTCOME_LABELS,
        channels=list(ContactChannel),
        today=berlin_today(),
        **{"error": None, "done": request.query_params.get("done"), **values},
    )


@router.get("/tasks/{task_id}")
async def task_detail(request: Request, task_id: RowId) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    return await task_page(request, agent, task_id)


async def _update(request: Request, agent: str, task_id: RowId, update: Any, arg: Any, done: str) -> Response:
    found = _task_for(request, agent, task_id)
    if found is None:
        return agent_page(request, "agents_tasks.html", 404, rows=[], error=f"Task {task_id} is not one of yours.")
    handle = context(request).client.get_workflow_handle_for(AgentHandover.run, handover_workflow_id(found[0]))
    try:
        await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as error:
        message = getattr(error.cause, "message", None) or str(error.cause)
        return await task_page(request, agent, task_id, 422, error=message)
    except RPCError as error:
        return await task_page(request, agent, task_id, 409, error=f"The handover is not running: {error.message}")
    return RedirectResponse(f"/agents/tasks/{task_id}?done={done}", status_code=303)


@router.post("/tasks/{task_id}/attempts")
async def log_attempt(
    request: Request,
    task_id: RowId,
    reached: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "call",
    note: Annotated[str, Form()] = "",
) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    if reached not in ("yes", "no") or channel not in {c.value for c in ContactChannel}:
        return await task_page(request, agent, task_id, 422, error="Choose whether the customer was reached, and how.")
    attempt = LogAttempt(reached=reached == "yes", channel=ContactChannel(channel), note=note.strip(), by=agent)
    return await _update(request, agent, task_id, AgentHandover.log_attempt, attempt, "attempt")


def _date(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FormError(f"{field} must be a date like 2026-12-01, got {text!r}") from None


def _cents(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        return parse_amount(text.strip())
    except ValueError as error:
        raise FormError(f"amount: {error}") from None


@router.post("/tasks/{task_id}/outcome")
async def record_outcome(
    request: Request,
    task_id: RowId,
    kind: Annotated[str, Form()] = "",
    pay_by: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    instalments: Annotated[str, Form()] = "",
    first_instalment_on: Annotated[str, Form()] = "",
    reference: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    try:
        if kind not in {k.value for k in OutcomeKind}:
            raise FormError("Choose an outcome.")
        if instalments.strip() and not instalments.strip().isdigit():
            raise FormError(f"instalments must be a whole number, got {instalments!r}")
        outcome = RecordOutcome(
            kind=OutcomeKind(kind),
            pay_by=_date(pay_by, "pay by"),
            amount_cents=_cents(amount),
            instalments=int(instalments) if instalments.strip() else None,
            first_instalment_on=_date(first_instalment_on, "first instalment"),
            reference=reference.strip(),
            note=note.strip(),
            by=agent,
        )
    except FormError as error:
        return await task_page(request, agent, task_id, 422, error=str(error))
    return await _update(request, agent, task_id, AgentHandover.record_outcome, outcome, "outcome")


# --- customers' requests from the portal (issue #14) --------------------------------------------


def _may_handle(request: Request, facts: Any, agent: str) -> bool:
    """The request's agent, or that agent's supervisor (who is e-mailed when it goes unanswered)."""
    if facts is None:
        return False
    with session_scope(context(request).engine) as session:
        return agent in (facts.request.agent_code, supervisor_of(session, facts.request.agent_code or ""))


def _request_page(request: Request, agent: str, request_id: RowId, status_code: int = 200, **values: Any) -> Response:
    """The request, if it is in this agent's queue (or their supervisor's); anyone else's is not found (404)."""
    facts = request_facts(request, request_id)
    if not _may_handle(request, facts, agent):
        return agent_page(
            request, "agents_tasks.html", 404, rows=[], error=f"Request {request_id} is not one of yours."
        )
    values = {"error": None, "done": request.query_params.get("done"), "text": "", **values}
    return agent_page(request, "agents_request.html", status_code, facts=facts, **values)


@router.get("/requests/{request_id}")
def request_detail(request: Request, request_id: RowId) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    return _request_page(request, agent, request_id)


@router.post("/requests/{request_id}/answer")
def answer_request(request: Request, request_id: RowId, text: Annotated[str, Form()] = "") -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_sign_in(request)
    if not _may_handle(request, request_facts(request, request_id), agent):
        return _request_page(request, agent, request_id)
    problem = answer_as(request, request_id, text)
    if problem is not None:
        return _request_page(request, agent, request_id, 422, error=problem, text=text)
    return RedirectResponse(f"/agents/requests/{request_id}?done=answer", status_code=303)
