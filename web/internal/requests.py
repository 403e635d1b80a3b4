"""Staff queues of customers' requests from the portal (issue #14): the back office (clerks), finance
and the agents' queue, and the supervisors' view of everything overdue — an open request whose due
date has passed (an unanswered message escalates to a supervisor, DOMAIN.md §11).

A person answers a request (the answer joins the customer's thread in the portal) or closes it. The
signed-in person is recorded as who did it, never a typed name. Agents answer their own requests on
the agent page (web/internal/agents.py), which shares `request_facts` and `answer_as` with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from core.references import mask_contract_number
from ledger import requests as service_requests
from ledger.db import session_scope
from ledger.requests import QueueView, RequestClosed
from models.auth import Role
from models.ledger import Contract, Customer
from models.portal import PortalUpload, RequestStatus, ServiceRequest
from web.auth import audit
from web.auth.principal import principal
from web.deps import RowId, context
from web.render import case_url, page

router = APIRouter()

VIEW_LABELS = {
    QueueView.CLERK: "Back office",
    QueueView.FINANCE: "Finance",
    QueueView.AGENT: "Agents",
    QueueView.OVERDUE: "Overdue (supervisors)",
}
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
ANSWERING_ROLES = frozenset({Role.CLERK, Role.SUPERVISOR, Role.FINANCE})  # as web/auth/policy.py lets answer
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class RequestFacts:
    """One request as its page shows it."""

    request: ServiceRequest
    contract_number: str
    masked: str
    customer_phone: str | None  # for a callback "on the number on file"
    upload: PortalUpload | None  # without its bytes' meaning: type and size for the link
    overdue: bool


def request_facts(request: Request, request_id: int) -> RequestFacts | None:
    """The request (never one still pending or discarded: those never reached a queue)."""
    now = datetime.now(UTC)
    with session_scope(context(request).engine) as db:
        row = db.get(ServiceRequest, request_id)
        if row is None or row.status in (RequestStatus.PENDING, RequestStatus.DISCARDED):
            return None
        contract = db.get(Contract, row.contract_id)
        customer = db.get(Customer, row.customer_id)
        upload = db.get(PortalUpload, row.upload_id) if row.upload_id is not None else None
        assert contract is not None and customer is not None  # foreign keys
        db.expunge(row)
        if upload is not None:
            db.expunge(upload)
        return RequestFacts(
            request=row,
            contract_number=contract.contract_number,
            masked=mask_contract_number(contract.contract_number),
            customer_phone=customer.phone,
            upload=upload,
            overdue=service_requests.is_overdue(row, now),
        )


def answer_as(request: Request, request_id: int, text: str) -> str | None:
    """Store the signed-in person's answer; None, or why it was not stored (nothing changed then)."""
    who = principal(request).name
    try:
        with session_scope(context(request).engine) as db:
            row = service_requests.answer(db, request_id, text, who, datetime.now(UTC))
            contract = db.get(Contract, row.contract_id)
            number = contract.contract_number if contract else None
    except (ValueError, LookupError) as error:
        return str(error)
    audit.note(request, contract_number=number, request_id=request_id, request_action="answer")
    return None


def _not_found(request: Request, request_id: int) -> Response:
    return page(request, "staff_error.html", 404, title="Not found", text=f"request {request_id} is not in a queue")


def request_page(request: Request, request_id: int, status_code: int = 200, **values: Any) -> Response:
    facts = request_facts(request, request_id)
    if facts is None:
        return _not_found(request, request_id)
    settings = context(request).settings
    return page(
        request,
        "request.html",
        status_code,
        headers=NO_STORE,
        facts=facts,
        case_link=case_url(settings, facts.contract_number),
        may_act=bool(principal(request).roles & ANSWERING_ROLES),
        **{"error": None, "done": request.query_params.get("done"), "text": "", **values},
    )


@router.get("/requests")
def queues(request: Request) -> Response:
    view_name = request.query_params.get("view", QueueView.CLERK.value)
    page_text = request.query_params.get("page", "1")
    if view_name not in {v.value for v in QueueView}:
        choices = ", ".join(v.value for v in QueueView)
        return page(request, "staff_error.html", 422, title="Unknown queue", text=f"view must be one of {choices}")
    if not page_text.isdigit() or not 1 <= int(page_text) <= 100_000:
        return page(request, "staff_error.html", 422, title="Bad page", text="page must be a number from 1")
    view, number = QueueView(view_name), int(page_text)
    now = datetime.now(UTC)
    with session_scope(context(request).engine) as db:
        rows, total = service_requests.queue_page(db, view, now, number)
        for row, _ in rows:
            db.expunge(row)
    size = service_requests.QUEUE_PAGE_SIZE
    shown = [
        (row, contract, mask_contract_number(contract), service_requests.is_overdue(row, now)) for row, contract in rows
    ]
    return page(
        request,
        "requests.html",
        headers=NO_STORE,
        view=view,
        views=VIEW_LABELS,
        rows=shown,
        total=total,
        page_number=number,
        pages=max(1, -(-total // size)),
        first=(number - 1) * size + 1,
    )


@router.get("/requests/{request_id}")
def request_detail(request: Request, request_id: RowId) -> Response:
    return request_page(request, request_id)


@router.get("/requests/{request_id}/attachment")
def attachment(request: Request, request_id: RowId) -> Response:
    facts = request_facts(request, request_id)
    if facts is None or facts.upload is None:
        return _not_found(request, request_id)
    upload = facts.upload
    name = f"request-{request_id}.{EXTENSIONS.get(upload.content_type, 'bin')}"
    return Response(
        upload.data,
        media_type=upload.content_type,
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/requests/{request_id}/answer")
def answer(request: Request, request_id: RowId, text: Annotated[str, Form()] = "") -> Response:
    if request_facts(request, request_id) is None:
        return _not_found(request, request_id)
    problem = answer_as(request, request_id, text)
    if problem is not None:
        return request_page(request, request_id, 422, error=problem, text=text)
    return RedirectResponse(f"/requests/{request_id}?done=answer", status_code=303)


@router.post("/requests/{request_id}/done")
def done(request: Request, request_id: RowId) -> Response:
    facts = request_facts(request, request_id)
    if facts is None:
        return _not_found(request, request_id)
    try:
        with session_scope(context(request).engine) as db:
            service_requests.close(db, request_id, principal(request).name, datetime.now(UTC))
    except (RequestClosed, LookupError) as error:
        return request_page(request, request_id, 409, error=str(error))
    audit.note(request, contract_number=facts.contract_number, request_id=request_id, request_action="done")
    return RedirectResponse(f"/requests/{request_id}?done=done", status_code=303)
