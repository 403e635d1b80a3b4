"""The ledger API: master data and billing events in, contract and case state out.

Every event carries an `event_id`; the same event again returns the first answer and changes
nothing, the same id with another payload is refused (409). Bad input gets 422 with a message
naming the field, the value and the rule (docs/input-rules.md: strict integer cents, bounded
dates, moments with a time zone, no control characters); nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from core.coverage import status_at
from core.languages import Language, default_language
from core.limits import MAX_REASON_CHARS, MAX_REFERENCE_CHARS
from ledger import service
from ledger.inbound import EventConflict
from models.case import CaseStatus
from models.inputs import BirthDate, BusinessDate, Cents, Line, Lines, PastMoment, QueryMoment
from models.ledger import Contract, ContractStatus, Customer, CustomerKind, Premium
from models.plans import BUILTIN_PLANS
from web.auth.principal import principal
from web.deps import AppContext, berlin_today, context, db_session
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

router = APIRouter(prefix="/api", tags=["ledger"])

Id = Annotated[str, Field(min_length=1, max_length=MAX_REFERENCE_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]


class Input(BaseModel):
    """A request body: unknown fields are refused, surrounding blanks stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- master data -----------------------------------------------------------------------------


class CustomerIn(Input):
    customer_number: Id
    kind: CustomerKind = CustomerKind.CONSUMER
    name: Line = Field(min_length=1, max_length=200)
    street: Line = Field(default="", max_length=200)
    postal_code: Line = Field(default="", max_length=10)
    city: Line = Field(default="", max_length=100)
    state: Line = Field(default="", max_length=3)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2, e.g. DE, DK
    # The language the customer is written to. Omitted (or null) for a new customer: by country,
    # else the plan's language (core/languages.py); omitted on an update: kept.
    language: Language | None = None
    birth_date: BirthDate | None = None  # the portal's step-up asks for it with the postcode (issue #14)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")


class ContractIn(Input):
    customer: CustomerIn
    agent_code: Id | None = None
    product: Line = Field(default="", max_length=100)
    payment_method: Literal["self_payment", "direct_debit"] = "self_payment"
    dunning_plan: str | None = None

    @field_validator("dunning_plan")
    @classmethod
    def _known_plan(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_PLANS:
            raise ValueError(f"dunning_plan must be one of {sorted(BUILTIN_PLANS)}, got {value!r}")
        return value


class BlockedPremiumOut(BaseModel):
    premium_id: str
    open_cents: int
    reason: str  # "cancelled: …" (staff, final) or a stop code such as "MD07" (lifted on release)


class DunningStopOut(BaseModel):
    code: str
    reason: str
    since: datetime


class ContractOut(BaseModel):
    contract_number: str
    status: ContractStatus
    payment_method: str
    balance_cents: int  # what is dunned: blocked premiums and their fees are not in it
    credit_cents: int
    open_premiums: list[str]
    history: list[dict[str, object]]
    case_workflow_id: str
    # Owed but not dunned, for staff: a payment pays these only when the payer names them.
    blocked_premiums: list[BlockedPremiumOut] = []
    dunning_stopped: DunningStopOut | None = None  # set while the contract waits for a person (MD07)


@router.put("/contracts/{contract_number}", response_model=ContractOut)
def put_contract(
    contract_number: Id,
    body: ContractIn,
    session: Annotated[Session, Depends(db_session)],
    ctx: Annotated[AppContext, Depends(context)],
) -> ContractOut:
    """Create or update a contract and its customer (master data from the policy system).

    An update changes only the fields the body names: an omitted `agent_code`, `email` or
    `dunning_plan` keeps its value; `null` clears it. A new contract gets the defaults. Demo plans
    (minutes, not legally effective) cannot be chosen in production."""
    if body.dunning_plan is not None and body.dunning_plan not in ctx.settings.selectable_plan_ids():
        raise HTTPException(
            status_code=422,
            detail=f"dunning_plan must be one of {ctx.settings.selectable_plan_ids()}, got {body.dunning_plan!r}",
        )
    customer_fields = body.customer.model_dump(exclude={"customer_number"}, exclude_unset=True)
    contract_fields = body.model_dump(exclude={"customer"}, exclude_unset=True)
    known_customer = session.exec(
        select(Customer).where(Customer.customer_number == body.customer.customer_number)
    ).first()
    known = session.exec(select(Contract).where(Contract.contract_number == contract_number)).first()
    plan_named = "dunning_plan" in body.model_fields_set
    plan_id = (body.dunning_plan if plan_named else known.dunning_plan if known else None) or ctx.settings.default_plan
    plan = BUILTIN_PLANS[plan_id]
    if customer_fields.get("language") is None:
        customer_fields.pop("language", None)
        if known_customer is None or "language" in body.customer.model_fields_set:
            customer_fields["language"] = default_language(body.customer.country, plan.language)
    if known is None or plan_named:
        # The contract books in its plan's currency (DKK on the Danish plan): amounts are printed in it.
        if known is not None and known.currency != plan.currency and _has_premiums(session, known):
            raise HTTPException(
                status_code=422,
                detail=f"dunning_plan {plan_id} books in {plan.currency}, but contract {contract_number} "
                f"already has premiums in {known.currency}: a contract cannot change its currency",
            )
        contract_fields["currency"] = plan.currency
    customer = service.upsert_customer(session, body.customer.customer_number, **customer_fields)
    service.upsert_contract(session, contract_number, customer, **contract_fields)
    return contract_out(session, contract_number)


def _has_premiums(session: Session, contract: Contract) -> bool:
    return session.exec(select(Premium.id).where(Premium.contract_id == contract.id)).first() is not None


@router.get("/contracts/{contract_number}", response_model=ContractOut)
def get_contract(contract_number: Id, session: Annotated[Session, Depends(db_session)]) -> ContractOut:
    return contract_out(session, contract_number)


def contract_out(session: Session, contract_number: str) -> ContractOut:
    contract = service.get_contract(session, contract_number)
    arrears = service.arrears(session, contract_number, berlin_today())
    return ContractOut(
        contract_number=contract_number,
        status=contract.status,
        payment_method=contract.payment_method,
        balance_cents=arrears.balance_cents,
        credit_cents=contract.credit_cents,
        open_premiums=[i.premium_id for i in arrears.items],
        history=[
            {"from": c.from_status, "to": c.to_status, "at": c.effective_at.isoformat(), "reason": c.reason}
            for c in service.status_history(session, contract_number)
        ],
        case_workflow_id=case_workflow_id(contract_number),
        blocked_premiums=[
            BlockedPremiumOut(
                premium_id=p.external_id, open_cents=p.amount_cents - p.paid_cents, reason=p.dunning_block_reason or ""
            )
            for p in service.blocked_premiums(session, contract_number)
        ],
        dunning_stopped=(
            DunningStopOut(
                code=contract.dunning_stopped_code or "",
                reason=contract.dunning_stopped_reason or "",
                since=contract.dunning_stopped_at,
            )
            if contract.dunning_stopped_at is not None
            else None
        ),
    )


class ReleaseIn(Input):
    """Who releases is the signed-in supervisor (the session), never a name in the body."""

    reason: Lines = Field(min_length=3, max_length=MAX_REASON_CHARS)


class ReleaseOut(BaseModel):
    contract_number: str
    code: str
    unblocked: list[str]
    still_blocked: dict[str, str]
    credit_used_cents: int
    tasks_closed: int
    note: str


@router.post("/contracts/{contract_number}/release-dunning", response_model=ReleaseOut)
def release_dunning(
    request: Request, contract_number: Id, body: ReleaseIn, session: Annotated[Session, Depends(db_session)]
) -> ReleaseOut:
    """A person releases a contract stopped for a person (MD07, debtor deceased): the premiums
    blocked for the stop are dunned again by the next sweep or event; those staff cancelled stay
    blocked. An unknown or not-stopped contract is refused and nothing changes."""
    by = principal(request).name
    released = service.release_dunning(session, contract_number, by=by, reason=body.reason, at=datetime.now(UTC))
    return ReleaseOut(
        **asdict(released),
        note="a case still running stays on hold until a person resumes it (starter.py resume)",
    )


class CoverageOut(BaseModel):
    contract_number: str
    at: datetime
    covered: bool
    status: ContractStatus
    since: datetime | None
    reason: str


@router.get("/contracts/{contract_number}/coverage", response_model=CoverageOut)
def coverage(contract_number: Id, at: QueryMoment, session: Annotated[Session, Depends(db_session)]) -> CoverageOut:
    """Was the contract covered at `at` (ISO 8601 with time zone, e.g. 2026-11-22T10:00:00+01:00)?"""
    answer = status_at(service.coverage_history(session, contract_number), at)
    return CoverageOut(contract_number=contract_number, at=at, **asdict(answer))


# --- billing events --------------------------------------------------------------------------


class PremiumBooked(Input):
    """A premium was booked (the normal billing run); if it is already past due, dunning starts."""

    type: Literal["premium_booked"]
    event_id: Id
    premium_id: Id
    contract_number: Id
    period_start: BusinessDate
    period_end: BusinessDate
    due_date: BusinessDate
    amount_cents: Cents

    @model_validator(mode="after")
    def _period(self) -> PremiumBooked:
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} must not be before period_start {self.period_start}")
        return self


class PremiumDue(Input):
    """The premium fell due and is unpaid: start or join the contract's case now."""

    type: Literal["premium_due"]
    event_id: Id
    premium_id: Id


class PaymentReceived(Input):
    type: Literal["payment_received"]
    event_id: Id
    contract_number: Id
    payment_ref: Id
    amount_cents: Cents
    received_at: PastMoment | None = None
    premium_id: Id | None = None  # the remittance names a premium


class DirectDebitReturned(Input):
    type: Literal["direct_debit_returned"]
    event_id: Id
    payment_ref: Id
    reason_code: str = Field(pattern=r"^[A-Za-z]{2}[0-9]{2}$")


LedgerEvent = Annotated[PremiumBooked | PremiumDue | PaymentReceived | DirectDebitReturned, Field(discriminator="type")]


class EventResult(BaseModel):
    event_id: str
    duplicate: bool
    result: dict[str, object]


def payload_digest(event: BaseModel) -> str:
    """SHA-256 of the event as validated (canonical JSON): spacing and key order do not matter."""
    canonical = json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post("/ledger/events", response_model=EventResult, responses={409: {"description": "event_id reused"}})
async def ledger_event(event: LedgerEvent, ctx: Annotated[AppContext, Depends(context)]) -> EventResult:
    """One billing event. Idempotent by `event_id`: a repeat returns the first answer; the same
    `event_id` with another payload is refused with 409 and changes nothing."""
    inbound = ctx.inbound
    digest = payload_digest(event)
    try:
        seen = await inbound.duplicate("ledger", event.event_id, digest)
    except EventConflict as conflict:
        raise HTTPException(409, str(conflict)) from None
    if seen is not None:
        return EventResult(event_id=event.event_id, duplicate=True, result=seen)
    result: dict[str, object]
    if isinstance(event, PremiumBooked):
        result = await inbound.premium_booked(
            premium_id=event.premium_id,
            contract_number=event.contract_number,
            period_start=event.period_start,
            period_end=event.period_end,
            due_date=event.due_date,
            amount_cents=event.amount_cents,
            today=berlin_today(),
        )
    elif isinstance(event, PremiumDue):
        result = await inbound.premium_due(premium_id=event.premium_id)
    elif isinstance(event, PaymentReceived):
        paid = await inbound.payment(
            contract_number=event.contract_number,
            external_ref=f"ledger:{event.payment_ref}",
            amount_cents=event.amount_cents,
            source="ledger",
            received_at=event.received_at,
            premium_id=event.premium_id,
            answer=True,  # the billing system learns at once whether cover is back (`outcome`)
        )
        result = paid.model_dump(mode="json")
    else:
        # The billing system names the debit as it reported it: payment_received booked it as
        # "ledger:<ref>"; debits from other feeds (bank, demo) carry their own prefix.
        ref = await inbound.known_payment_ref(f"ledger:{event.payment_ref}", event.payment_ref)
        result = await inbound.direct_debit_returned(payment_ref=ref, reason_code=event.reason_code)
    await inbound.done("ledger", event.event_id, result, digest)
    return EventResult(event_id=event.event_id, duplicate=False, result=result)


# --- cases -----------------------------------------------------------------------------------


QUERY_TIMEOUT = timedelta(seconds=10)


def case_handle(client: Client, contract_number: str) -> WorkflowHandle[DunningCase, CaseStatus]:
    return client.get_workflow_handle_for(DunningCase.run, case_workflow_id(contract_number))


@router.get("/cases/{contract_number}", response_model=CaseStatus)
async def case_status(contract_number: Id, ctx: Annotated[AppContext, Depends(context)]) -> CaseStatus:
    """The `status` query of the contract's (latest) dunning case."""
    try:
        return await case_handle(ctx.client, contract_number).query(DunningCase.status, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no dunning case for contract_number {contract_number!r}") from error
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE):
            # No worker answered (all stopped or overloaded): say so instead of a bare 500 after a long wait.
            raise HTTPException(
                503, f"the case for contract_number {contract_number!r} did not answer in time; is a worker running?"
            ) from error
        raise


@router.get("/plans")
async def plans(ctx: Annotated[AppContext, Depends(context)]) -> dict[str, object]:
    """The plans a contract may be given (in production without the demo plans)."""
    return {plan_id: BUILTIN_PLANS[plan_id].model_dump(mode="json") for plan_id in ctx.settings.selectable_plan_ids()}
