"""Customers' requests for a person (issue #14): written by the portal as `pending`, opened by the
case when its update accepted them (activities/portal.py), answered and closed by staff.

Due dates (DOMAIN.md §8, §11): the customer's agent answers within 24 hours; finance within four
working days; the back office (clerks) within two working days. A request not answered by then is
overdue and shows in the supervisors' view.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from core.calendar import add_working_days, local_date, start_of_day
from core.timezone import BUSINESS_TIMEZONE
from models.ledger import Contract
from models.portal import RequestQueue, RequestStatus, ServiceRequest

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
