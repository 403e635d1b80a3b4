"""Bank statements: camt.053 upload (API and staff page) and the manual queue of lines no rule
could match. Staff book a queued line to a contract or dismiss it with a reason.

The queue pages and sorts (`limit`, `offset`, `order`: newest, oldest, largest, smallest,
imported) and says how many lines wait in all (`X-Total-Count`), so a flood of junk lines cannot
hide the real ones."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from banking import service as bank
from banking.inbound import BankStatements
from banking.service import QUEUE_PAGE, QUEUE_PAGE_MAX, QueueOrder
from core.limits import MAX_REASON_CHARS, MAX_REFERENCE_CHARS
from ledger.db import session_scope
from ledger.service import LedgerError
from models.banking import LineStatus
from models.inputs import Line, Lines
from web.auth.principal import principal
from web.deps import RowId, context, db_session
from web.render import page

router = APIRouter(tags=["bank"])


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AssignIn(Input):
    """Who books the line is the signed-in person (the session), never a name in the body."""

    contract_number: Line = Field(min_length=1, max_length=MAX_REFERENCE_CHARS)
    premium_id: Line | None = Field(default=None, min_length=1, max_length=MAX_REFERENCE_CHARS)


class DismissIn(Input):
    reason: Lines = Field(min_length=3, max_length=MAX_REASON_CHARS)


class LineOut(BaseModel):
    id: int
    entry_ref: str
    booking_date: str | None
    amount_cents: int
    currency: str
    status: LineStatus
    reason: str
    creditor_reference: str | None
    end_to_end_id: str | None
    remittance: str
    has_debtor_iban: bool


def who(request: Request) -> str:
    """Recorded with the line: the signed-in person or the API client (issue #12), never typed."""
    return principal(request).label


def statements(request: Request) -> BankStatements:
    return BankStatements(context(request).inbound)


@router.post("/api/bank/statements")
async def import_statement(request: Request) -> dict[str, object]:
    """Body: the camt.053 XML file as is (Content-Type application/xml). Recorded as imported by the
    calling API client or signed-in person."""
    report = await statements(request).import_camt053(await request.body(), who(request))
    return report.as_dict()


@router.get("/api/bank/queue", response_model=list[LineOut])
def manual_queue(
    response: Response,
    session: Annotated[Session, Depends(db_session)],
    limit: Annotated[int, Query(ge=1, le=QUEUE_PAGE_MAX)] = QUEUE_PAGE,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    order: QueueOrder = QueueOrder.NEWEST,
) -> list[LineOut]:
    """One page of the manual queue; the header X-Total-Count says how many lines wait in all."""
    response.headers["X-Total-Count"] = str(bank.queue_size(session))
    return [
        LineOut(
            id=line.id or 0,
            entry_ref=line.entry_ref,
            booking_date=line.booking_date.isoformat() if line.booking_date else None,
            amount_cents=line.amount_cents,
            currency=line.currency,
            status=line.status,
            reason=line.reason,
            creditor_reference=line.creditor_reference,
            end_to_end_id=line.end_to_end_id,
            remittance=line.remittance,
            has_debtor_iban=line.debtor_iban is not None,
        )
        for line in bank.queue(session, limit, offset, order)
    ]


@router.post("/api/bank/lines/{line_id}/assign")
async def assign(request: Request, line_id: RowId, body: AssignIn) -> dict[str, object]:
    booked = await statements(request).assign(line_id, body.contract_number, who(request), body.premium_id)
    return {"line_id": line_id, "contract_number": booked.contract_number, "payment_ref": booked.payment_ref}


@router.post("/api/bank/lines/{line_id}/dismiss")
async def dismiss(request: Request, line_id: RowId, body: DismissIn) -> dict[str, object]:
    await statements(request).dismiss(line_id, body.reason, who(request))
    return {"line_id": line_id, "status": LineStatus.DISMISSED.value}


# --- staff page ------------------------------------------------------------------------------


def bank_page(
    request: Request,
    message: str = "",
    error: str = "",
    status_code: int = 200,
    offset: int = 0,
    order: QueueOrder = QueueOrder.NEWEST,
) -> Response:
    with session_scope(context(request).engine) as session:
        lines = bank.queue(session, QUEUE_PAGE, offset, order)
        total = bank.queue_size(session)
        return page(
            request,
            "bank.html",
            status_code,
            lines=lines,
            message=message,
            error=error,
            total=total,
            offset=offset,
            page_size=QUEUE_PAGE,
            order=order.value,
            orders=[o.value for o in QueueOrder],
        )


def done(message: str) -> Response:
    return RedirectResponse(f"/bank?message={quote(message)}", status_code=303)


@router.get("/bank", response_class=HTMLResponse)
def bank_index(
    request: Request,
    message: str = "",
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    order: QueueOrder = QueueOrder.NEWEST,
) -> Response:
    return bank_page(request, message=message[:200], offset=offset, order=order)


@router.post("/bank/import", response_class=HTMLResponse)
async def bank_import(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    try:
        report = await statements(request).import_camt053(await file.read(), who(request))
    except LedgerError as error:
        return bank_page(request, error=f"Nothing imported: {error}", status_code=422)
    text = (
        f"Imported {report.lines} lines: {report.booked} booked, {report.queued} to the queue, "
        f"{report.ignored} ignored, {report.duplicates} already imported."
    )
    return done(text)


@router.post("/bank/lines/{line_id}/assign", response_class=HTMLResponse)
async def bank_assign(
    request: Request,
    line_id: RowId,
    contract_number: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = AssignIn(contract_number=contract_number)
        booked = await statements(request).assign(line_id, body.contract_number, who(request))
    except (LedgerError, ValueError) as error:
        return bank_page(request, error=f"Line {line_id} not booked: {error}", status_code=422)
    return done(f"Line {line_id} booked to {booked.contract_number}.")


@router.post("/bank/lines/{line_id}/dismiss", response_class=HTMLResponse)
async def bank_dismiss(request: Request, line_id: RowId, reason: Annotated[str, Form()] = "") -> Response:
    try:
        body = DismissIn(reason=reason)
        await statements(request).dismiss(line_id, body.reason, who(request))
    except (LedgerError, ValueError) as error:
        return bank_page(request, error=f"Line {line_id} not dismissed: {error}", status_code=422)
    return done(f"Line {line_id} dismissed.")
