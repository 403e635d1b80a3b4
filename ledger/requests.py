"""Customers' requests for a person (issue #14): written by the portal as `pending`, opened by the
case when its update accepted them (activities/portal.py), answered and closed by staff.

Due dates (DOMAIN.md §8, §11): the customer's agent answers within 24 hours; finance within four
working days; the back office (clerks) within two working days. A request not answered by then is
overdue and shows in the supervisors' view.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, func
from sqlmodel import Session, col, select

from core.calendar import add_working_days, local_date, start_of_day
from core.timezone import BUSINESS_TIMEZONE, as_utc
from models.agency import CustomerNote
from models.ledger import Contract
from models.portal import RequestKind, RequestQueue, RequestStatus, ServiceRequest

AGENT_ANSWER = timedelta(hours=24)
FINANCE_WORKING_DAYS = 4
CLERK_WORKING_DAYS = 2


def answer_due(queue: str, now: datetime) -> datetime:
    """When a request that joins `queue` at `now` must be answered (the end of the last working day)."""
    if queue == RequestQueue.AGENT:
        return now + AGENT_ANSWER
    days = FINANCE_WORKING_DAYS if queue == RequestQueue.FINANCE else CLERK_WORKING_DAYS
    last_day = add_working_days(local_date(now, BUSINESS_TIMEZONE), days)
    return start_of_day(last_day + timedelta(days=1), BUSINESS_TIMEZONE)


def open_request(
    session: Session, request_id: int, contract_number: str, case_id: str, now: datetime
) -> ServiceRequest:
    """The case accepted the request: it joins its queue with a due date, filed under the case that
    accepted it. Idempotent: a request opened before keeps its due date."""
    request = session.get(ServiceRequest, request_id)
    contract = session.get(Contract, request.contract_id) if request is not None else None
    if request is None or contract is None or contract.contract_number != contract_number:
        raise LookupError(f"service request {request_id} of contract {contract_number} does not exist")
    if request.status == RequestStatus.PENDING:
        request.status = RequestStatus.OPEN
        request.case_id = case_id
        request.due_at = answer_due(request.queue, now)
        session.add(request)
        session.flush()
    return request


def discard(session: Session, request_id: int) -> None:
    """The case refused the request: it never reaches a queue (kept for the record)."""
    request = session.get(ServiceRequest, request_id)
    if request is not None and request.status == RequestStatus.PENDING:
        request.status = RequestStatus.DISCARDED
        session.add(request)


# --- the portal's thread and the staff queues (web/public/portal/contact.py, web/internal/requests.py) ---

THREAD_KEY = "portal-thread"  # idempotency-key prefix of the customer notes that form the portal's thread
THREAD_NOTE_KIND = "message"
CUSTOMER_AUTHOR = "customer"
MAX_ANSWER_CHARS = 4000
QUEUE_PAGE_SIZE = 50
LIVE = (RequestStatus.OPEN, RequestStatus.ANSWERED)  # in a queue: a person still has it


class RequestClosed(ValueError):
    """The request is not (or no longer) waiting for a person: nothing was changed."""


class QueueView(StrEnum):
    CLERK = RequestQueue.CLERK.value
    FINANCE = RequestQueue.FINANCE.value
    AGENT = RequestQueue.AGENT.value
    OVERDUE = "overdue"  # open and past its due date, any queue: the supervisors' escalation (DOMAIN.md §11)


def is_overdue(request: ServiceRequest, now: datetime) -> bool:
    """Open (no person answered yet) and its due date has passed."""
    return request.status == RequestStatus.OPEN and request.due_at is not None and as_utc(request.due_at) < now


def due_for_escalation(session: Session, now: datetime) -> list[ServiceRequest]:
    """Open requests past their due date that no supervisor has been told of yet (DOMAIN.md §11)."""
    rows = session.exec(
        select(ServiceRequest).where(
            ServiceRequest.status == RequestStatus.OPEN,
            col(ServiceRequest.escalated_at).is_(None),
            col(ServiceRequest.due_at).is_not(None),
        )
    ).all()
    return [row for row in rows if is_overdue(row, now)]


def write_pending(
    session: Session,
    *,
    customer_id: int,
    contract_id: int,
    case_id: str,
    queue: RequestQueue,
    kind: RequestKind,
    summary: str,
    details: dict[str, str],
    now: datetime,
    agent_code: str | None = None,
    upload_id: int | None = None,
) -> ServiceRequest:
    """A customer's request as the portal writes it before the case hears of it (`pending`)."""
    row = ServiceRequest(
        customer_id=customer_id,
        contract_id=contract_id,
        case_id=case_id,
        queue=queue,
        kind=kind,
        summary=summary,
        details=details,
        agent_code=agent_code if queue == RequestQueue.AGENT else None,
        upload_id=upload_id,
        created_by="customer portal",
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def customer_wrote(session: Session, request_id: int, text: str, now: datetime) -> CustomerNote:
    """The customer's message joins the thread (once), after the case accepted the request."""
    row = session.get(ServiceRequest, request_id)
    if row is None:
        raise LookupError(f"service request {request_id} does not exist")
    return _note(session, row, f"{THREAD_KEY}:{request_id}:customer", CUSTOMER_AUTHOR, text, now)


def _note(session: Session, row: ServiceRequest, key: str, author: str, text: str, now: datetime) -> CustomerNote:
    existing = session.exec(select(CustomerNote).where(CustomerNote.idempotency_key == key)).first()
    if existing is not None:
        return existing
    note = CustomerNote(
        idempotency_key=key,
        customer_id=row.customer_id,
        contract_id=row.contract_id,
        case_id=row.case_id,
        author=author,
        kind=THREAD_NOTE_KIND,
        text=text,
        at=now,
    )
    session.add(note)
    session.flush()
    return note


def thread(session: Session, customer_id: int) -> list[CustomerNote]:
    """The customer's portal thread, oldest first: their messages and people's answers to their requests."""
    query = (
        select(CustomerNote)
        .where(
            CustomerNote.customer_id == customer_id,
            CustomerNote.kind == THREAD_NOTE_KIND,
            col(CustomerNote.idempotency_key).startswith(f"{THREAD_KEY}:"),
        )
        .order_by(col(CustomerNote.at), col(CustomerNote.id))
    )
    return list(session.exec(query))


def answer(session: Session, request_id: int, text: str, by: str, now: datetime) -> ServiceRequest:
    """A person answers: the answer is kept on the request and joins the customer's thread."""
    text = text.strip()
    if not text:
        raise ValueError("answer: write the answer the customer will read (it is empty)")
    if len(text) > MAX_ANSWER_CHARS:
        raise ValueError(f"answer: at most {MAX_ANSWER_CHARS} characters, got {len(text)}")
    row = session.get(ServiceRequest, request_id)
    if row is None:
        raise LookupError(f"service request {request_id} does not exist")
    if row.status not in LIVE:
        raise RequestClosed(f"request {request_id} is {row.status}: it takes no answer")
    answers = session.exec(
        select(CustomerNote).where(col(CustomerNote.idempotency_key).startswith(f"{THREAD_KEY}:{request_id}:answer:"))
    ).all()
    _note(session, row, f"{THREAD_KEY}:{request_id}:answer:{len(answers) + 1}", by, text, now)
    row.answer = text
    row.status = RequestStatus.ANSWERED
    row.handled_by, row.handled_at = by, now
    session.add(row)
    session.flush()
    return row


def close(session: Session, request_id: int, by: str, now: datetime) -> ServiceRequest:
    """Nothing more to do: the request leaves its queue."""
    row = session.get(ServiceRequest, request_id)
    if row is None:
        raise LookupError(f"service request {request_id} does not exist")
    if row.status not in LIVE:
        raise RequestClosed(f"request {request_id} is {row.status}: only an open or answered request can be closed")
    row.status = RequestStatus.DONE
    row.handled_by, row.handled_at = by, now
    session.add(row)
    session.flush()
    return row


def queue_page(
    session: Session, view: QueueView, now: datetime, page: int = 1, size: int = QUEUE_PAGE_SIZE
) -> tuple[list[tuple[ServiceRequest, str]], int]:
    """One page of a queue, earliest due first, with each request's contract number; and how many there are."""
    where: ColumnElement[bool]
    if view == QueueView.OVERDUE:
        where = and_(col(ServiceRequest.status) == RequestStatus.OPEN, col(ServiceRequest.due_at) < now)
    else:
        where = and_(col(ServiceRequest.status).in_(LIVE), col(ServiceRequest.queue) == view.value)
    total = int(session.exec(select(func.count()).select_from(ServiceRequest).where(where)).one())
    query = (
        select(ServiceRequest, Contract.contract_number)
        .join(Contract, col(Contract.id) == col(ServiceRequest.contract_id))
        .where(where)
        .order_by(col(ServiceRequest.due_at), col(ServiceRequest.id))
        .offset((max(page, 1) - 1) * size)
        .limit(size)
    )
    return [(row, number) for row, number in session.exec(query)], total


def agent_requests(session: Session, agent_code: str) -> list[tuple[ServiceRequest, str]]:
    """The agent's requests still waiting (open or answered, not closed), earliest due first."""
    query = (
        select(ServiceRequest, Contract.contract_number)
        .join(Contract, col(Contract.id) == col(ServiceRequest.contract_id))
        .where(
            ServiceRequest.queue == RequestQueue.AGENT,
            ServiceRequest.agent_code == agent_code,
            col(ServiceRequest.status).in_(LIVE),
        )
        .order_by(col(ServiceRequest.due_at), col(ServiceRequest.id))
    )
    return [(row, number) for row, number in session.exec(query)]
