"""Staff pages of the internal app (English): overview, outbox, agent tasks and the contract page. Every
route needs a signed-in person (web/auth/policy.py); the case actions on the contract page post to
web/internal/case_actions.py, which shows this page again with its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from infra.config import Settings
from ledger import audit, service
from ledger.db import session_scope
from ledger.overview import LIST_LIMIT, contracts_overview
from models.ledger import AgentTask, Contract, Fee, Message, PayLink, Payment, Premium
from web.auth.principal import principal
from web.deps import RowId, berlin_today, context
from web.render import as_utc, case_url, links_in, page, pay_url

router = APIRouter()


# --- staff pages (no authentication yet: embedded default only, see module docstring) ----------


def staff_not_found(request: Request, what: str) -> Response:
    return page(request, "staff_error.html", 404, title="Not found", text=what)


@router.get("/", response_class=HTMLResponse)
def staff_index(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        contracts, total = contracts_overview(session, berlin_today())
    return page(request, "index.html", contracts=contracts, total=total, limit=LIST_LIMIT)


@dataclass(frozen=True)
class MessageRow:
    message: Message
    contract_number: str | None


def _contract_numbers(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(Contract.id, Contract.contract_number).where(col(Contract.id).in_(wanted))
    return {int(cid or 0): number for cid, number in session.exec(query)}


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        messages = list(
            session.exec(
                select(Message).order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(LIST_LIMIT)
            )
        )
        numbers = _contract_numbers(session, [m.contract_id for m in messages])
    rows = [MessageRow(m, numbers.get(m.contract_id) if m.contract_id else None) for m in messages]
    return page(request, "outbox.html", rows=rows, limit=LIST_LIMIT)


@router.get("/outbox/{message_id}", response_class=HTMLResponse)
def outbox_message(request: Request, message_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        message = session.get(Message, message_id)
        numbers = _contract_numbers(session, [message.contract_id] if message else [])
    if message is None:
        return staff_not_found(request, f"message {message_id} is not in the outbox")
    # Links in the sandboxed preview open in a new tab (the sandbox allows only that).
    preview = f'<base target="_blank">{message.body_html}' if message.body_html else ""
    return page(
        request,
        "message.html",
        message=message,
        contract_number=numbers.get(message.contract_id or 0),
        preview=preview,
        links=links_in(message.body_text, message.body_html),
        has_pdf=message.pdf is not None,
    )


@router.get("/outbox/{message_id}/pdf", response_model=None)
def outbox_pdf(request: Request, message_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        message = session.get(Message, message_id)
    if message is None or message.pdf is None:
        return staff_not_found(request, f"message {message_id} has no PDF (only letters have one)")
    return Response(
        content=message.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="message-{message_id}.pdf"'},
    )


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        query = (
            select(AgentTask, Contract.contract_number)
            .join(Contract, col(Contract.id) == col(AgentTask.contract_id))
            .order_by(col(AgentTask.created_at).desc(), col(AgentTask.id).desc())
            .limit(LIST_LIMIT)
        )
        rows = [(task, number) for task, number in session.exec(query)]
    return page(request, "tasks.html", rows=rows, limit=LIST_LIMIT)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_detail(request: Request, task_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        task = session.get(AgentTask, task_id)
        contract = session.get(Contract, task.contract_id) if task else None
        agent = service.get_agent(session, task.agent_code) if task else None
    if task is None or contract is None:
        return staff_not_found(request, f"agent task {task_id} does not exist")
    return page(
        request,
        "task.html",
        task=task,
        contract_number=contract.contract_number,
        agent_name=agent.name if agent else None,
        case_url=case_url(ctx.settings, contract.contract_number),
    )


@dataclass(frozen=True)
class PayLinkView:
    url: str
    step: str
    created_at: datetime
    expires_at: datetime
    expired: bool


def newest_pay_link(session: Session, settings: Settings, contract_id: int) -> PayLinkView | None:
    link = session.exec(
        select(PayLink)
        .where(PayLink.contract_id == contract_id)
        .order_by(col(PayLink.created_at).desc(), col(PayLink.id).desc())
    ).first()
    if link is None:
        return None
    return PayLinkView(
        url=pay_url(settings, link.token_id),
        step=link.step,
        created_at=link.created_at,
        expires_at=link.expires_at,
        expired=as_utc(link.expires_at) <= datetime.now(UTC),
    )


@router.get("/contracts/{contract_number}", response_class=HTMLResponse)
def contract_page(request: Request, contract_number: str, done: str = "") -> Response:
    return render_contract(request, contract_number, done=done[:40])


def render_contract(
    request: Request, contract_number: str, status_code: int = 200, error: str | None = None, done: str = ""
) -> Response:
    """The contract page; case actions (web/internal/case_actions.py) show it again with their error."""
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        try:
            contract = service.get_contract(session, contract_number)
        except service.NotFound:
            return staff_not_found(request, f"contract {contract_number!r} is not in the ledger")
        assert contract.id is not None
        arrears = service.arrears(session, contract_number, berlin_today())
        history = service.status_history(session, contract_number)
        premiums = list(
            session.exec(
                select(Premium)
                .where(Premium.contract_id == contract.id)
                .order_by(col(Premium.due_date).desc(), col(Premium.id))
            )
        )
        payments = list(
            session.exec(
                select(Payment)
                .where(Payment.contract_id == contract.id)
                .order_by(col(Payment.received_at).desc(), col(Payment.id))
            )
        )
        fees = list(session.exec(select(Fee).where(Fee.contract_id == contract.id).order_by(col(Fee.booked_at).desc())))
        messages = list(
            session.exec(
                select(Message)
                .where(Message.contract_id == contract.id)
                .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                .limit(50)
            )
        )
        link = newest_pay_link(session, ctx.settings, contract.id)
        trail = audit.for_contract(session, contract_number)
    return page(
        request,
        "contract.html",
        status_code,
        audit_trail=trail,
        roles=principal(request).roles,
        error=error,
        done=done,
        contract=contract,
        arrears=arrears,
        history=history,
        premiums=premiums,
        payments=payments,
        fees=fees,
        messages=messages,
        pay_link=link,
        case_url=case_url(ctx.settings, contract_number),
    )
