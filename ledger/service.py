"""Ledger operations. Each function runs inside one transaction given by the caller and is
idempotent on its key: calling it again with the same key returns what the first call did.

Errors raised here are `LedgerError` with a message that names the field, the value and the
rule; the transaction is rolled back, so nothing is half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Enum as SAEnum
from sqlalchemy import func, literal, or_
from sqlmodel import Session, col, select

from core.allocation import Debt, Share, allocate
from core.calendar import local_date
from core.coverage import StatusChange
from core.limits import MAX_LEDGER_CENTS
from core.timezone import BUSINESS_TIMEZONE
from models.case import Arrears, OpenItem, PaymentResult
from models.ledger import (
    Agent,
    AgentTask,
    Allocation,
    Contract,
    ContractStatus,
    ContractStatusChange,
    CourtApplication,
    Customer,
    Fee,
    Message,
    PayLink,
    Payment,
    Premium,
    PremiumStatus,
    ProcessedEvent,
)

# The insurer books in Berlin: "as of" dates for a moment are Berlin dates, not UTC dates (a payment
# at 00:30 Berlin on the day a premium falls due is paid on that day, not the day before).
LEDGER_TIMEZONE = BUSINESS_TIMEZONE


def ledger_date(moment: datetime) -> date:
    return local_date(moment if moment.tzinfo else moment.replace(tzinfo=UTC), LEDGER_TIMEZONE)


class LedgerError(ValueError):
    """Bad input or a conflict with what the ledger already holds."""


class NotFound(LedgerError):
    pass


# --- lookups ---------------------------------------------------------------------------------


def get_contract(session: Session, contract_number: str, *, lock: bool = False) -> Contract:
    query = select(Contract).where(Contract.contract_number == contract_number)
    if lock:
        query = query.with_for_update()
    contract = session.exec(query).first()
    if contract is None:
        raise NotFound(f"contract_number {contract_number!r} is not in the ledger")
    return contract


def get_customer(session: Session, contract: Contract) -> Customer:
    customer = session.get(Customer, contract.customer_id)
    if customer is None:  # foreign key makes this impossible; keep mypy and readers honest
        raise NotFound(f"customer of contract {contract.contract_number} is missing")
    return customer


def get_agent(session: Session, code: str | None) -> Agent | None:
    if not code:
        return None
    return session.exec(select(Agent).where(Agent.code == code)).first()


# --- master data -----------------------------------------------------------------------------


def upsert_customer(session: Session, customer_number: str, **fields: Any) -> Customer:
    customer = session.exec(select(Customer).where(Customer.customer_number == customer_number)).first()
    if customer is None:
        customer = Customer(customer_number=customer_number, **fields)
    else:
        for name, value in fields.items():
            setattr(customer, name, value)
    session.add(customer)
    session.flush()
    return customer


def upsert_agent(session: Session, code: str, **fields: Any) -> Agent:
    agent = session.exec(select(Agent).where(Agent.code == code)).first()
    if agent is None:
        agent = Agent(code=code, **fields)
    else:
        for name, value in fields.items():
            setattr(agent, name, value)
    session.add(agent)
    session.flush()
    return agent


def upsert_contract(session: Session, contract_number: str, customer: Customer, **fields: Any) -> Contract:
    contract = session.exec(select(Contract).where(Contract.contract_number == contract_number)).first()
    if contract is None:
        assert customer.id is not None
        contract = Contract(contract_number=contract_number, customer_id=customer.id, **fields)
    else:
        if contract.customer_id != customer.id:
            raise LedgerError(f"contract_number {contract_number!r} belongs to another customer")
        for name, value in fields.items():
            setattr(contract, name, value)
    session.add(contract)
    session.flush()
    return contract


# --- premiums --------------------------------------------------------------------------------


def book_premium(
    session: Session,
    *,
    external_id: str,
    contract_number: str,
    period_start: date,
    period_end: date,
    due_date: date,
    amount_cents: int,
) -> tuple[Premium, bool]:
    """Book a premium once. The same premium again is a no-op; different data under the same
    id is a conflict (the billing system must send a correction, not a silent overwrite)."""
    if not 0 < amount_cents <= MAX_LEDGER_CENTS:
        raise LedgerError(f"amount_cents must be in 1..{MAX_LEDGER_CENTS}, got {amount_cents}")
    if period_end < period_start:
        raise LedgerError(f"period_end {period_end} must not be before period_start {period_start}")
    contract = get_contract(session, contract_number)
    existing = session.exec(select(Premium).where(Premium.external_id == external_id)).first()
    if existing is not None:
        same = (
            existing.contract_id == contract.id
            and existing.amount_cents == amount_cents
            and existing.due_date == due_date
            and existing.period_start == period_start
            and existing.period_end == period_end
        )
        if not same:
            raise LedgerError(f"premium_id {external_id!r} was booked before with different data")
        return existing, False
    assert contract.id is not None
    premium = Premium(
        external_id=external_id,
        contract_id=contract.id,
        period_start=period_start,
        period_end=period_end,
        due_date=due_date,
        amount_cents=amount_cents,
    )
    session.add(premium)
    session.flush()
    if contract.credit_cents > 0:  # money the customer already paid covers the new premium
        apply_credit(session, get_contract(session, contract_number, lock=True), due_date)
    return premium, True


def get_premium(session: Session, external_id: str) -> Premium:
    premium = session.exec(select(Premium).where(Premium.external_id == external_id)).first()
    if premium is None:
        raise NotFound(f"premium_id {external_id!r} is not in the ledger")
    return premium


def period_label(premium: Premium) -> str:
    return f"{premium.period_start:%d.%m.%Y} – {premium.period_end:%d.%m.%Y}"


# --- arrears ---------------------------------------------------------------------------------


# Why a premium is blocked (Premium.dunning_block_reason). A cancellation by staff (the premium was
# booked in error, the case was cancelled) is final; a contract stop (MD07) is lifted by a person.
CANCELLED = "cancelled"
# The back-office task a contract stop opens ("a person decides"); releasing the contract closes it.
STOP_REVIEW_TASK = "manual_review"


def cancellation_reason(reason: str) -> str:
    """The block reason for a premium staff cancelled: "cancelled: <why>" (kept as given when it
    already says it was cancelled, e.g. the case's "Cancelled by mia: booked in error")."""
    return reason if is_cancellation(reason) else f"{CANCELLED}: {reason}"


def is_cancellation(reason: str | None) -> bool:
    return bool(reason) and str(reason).lower().startswith(CANCELLED)


def _open_premiums(session: Session, contract_id: int, as_of: date, *, include_blocked: bool = False) -> list[Premium]:
    """Open premiums due by `as_of`, oldest first: what the insurer duns.

    A blocked premium is not arrears (a notice stating it would overstate the amount and be void,
    BGH VersR 1992, 1501), so it is left out unless the caller manages the blocks themselves.
    """
    query = (
        select(Premium)
        .where(Premium.contract_id == contract_id, Premium.status == PremiumStatus.OPEN, Premium.due_date <= as_of)
        .order_by(col(Premium.due_date), col(Premium.id))
    )
    if not include_blocked:
        query = query.where(Premium.dunning_blocked == False)  # noqa: E712
    return list(session.exec(query))


def open_fees(session: Session, contract_id: int) -> list[Fee]:
    """Unpaid costs and claimed interest. Those booked for a blocked premium are left out: the
    costs of dunning something the insurer no longer duns are not claimed either."""
    query = (
        select(Fee)
        .outerjoin(Premium, col(Premium.id) == col(Fee.premium_id))
        .where(
            Fee.contract_id == contract_id,
            Fee.written_off == False,  # noqa: E712
            or_(col(Premium.id).is_(None), col(Premium.dunning_blocked).is_(False)),
        )
        .order_by(col(Fee.id))
    )
    return [f for f in session.exec(query) if f.paid_cents < f.amount_cents]


def blocked_premiums(session: Session, contract_number: str) -> list[Premium]:
    """Open premiums nobody duns, with the reason: for staff (they are owed, but not claimed)."""
    contract = get_contract(session, contract_number)
    assert contract.id is not None
    query = (
        select(Premium)
        .where(
            Premium.contract_id == contract.id,
            Premium.status == PremiumStatus.OPEN,
            Premium.dunning_blocked == True,  # noqa: E712
        )
        .order_by(col(Premium.due_date), col(Premium.id))
    )
    return list(session.exec(query))


def arrears(session: Session, contract_number: str, as_of: date) -> Arrears:
    """What the customer owes and is dunned for: open, unblocked premiums due by `as_of` and their
    open fees. Notices, SMS, receipts, the pay page, the court application and the case all read
    this, so each states the same amount to the cent."""
    contract = get_contract(session, contract_number)
    customer = get_customer(session, contract)
    assert contract.id is not None
    premiums = _open_premiums(session, contract.id, as_of)
    fees = open_fees(session, contract.id)
    items = [
        OpenItem(
            premium_id=p.external_id,
            period=period_label(p),
            due_date=p.due_date,
            open_cents=p.amount_cents - p.paid_cents,
        )
        for p in premiums
    ]
    fees_open = sum(f.amount_cents - f.paid_cents for f in fees)
    return Arrears(
        contract_number=contract_number,
        items=items,
        fees_open_cents=fees_open,
        balance_cents=sum(i.open_cents for i in items) + fees_open,
        credit_cents=contract.credit_cents,
        contract_status=contract.status,
        agent_code=contract.agent_code,
        has_email=bool(customer.email) and customer.email_valid,
        has_phone=bool(customer.phone) and customer.phone_valid,
        dunning_stopped=contract.dunning_stopped_at is not None,
    )


# --- payments --------------------------------------------------------------------------------


def _debts(session: Session, contract_id: int, as_of: date, designated_premium: str | None = None) -> list[Debt]:
    """What a payment may pay. A blocked premium only when the payer names it (§366(1) BGB):
    otherwise the money stays credit, shown to staff, rather than silently settling something the
    insurer cancelled or stopped dunning."""
    dunned = _open_premiums(session, contract_id, as_of)
    oldest = dunned[0] if dunned else None  # fees whose premium is settled go with the oldest debt
    premiums = {p.id: p for p in dunned}
    if designated_premium is not None:
        named = session.exec(
            select(Premium).where(
                Premium.external_id == designated_premium,
                Premium.contract_id == contract_id,
                Premium.status == PremiumStatus.OPEN,
                Premium.due_date <= as_of,
            )
        ).first()
        if named is not None:
            premiums[named.id] = named
    debts: list[Debt] = []
    for fee in open_fees(session, contract_id):
        owner = premiums.get(fee.premium_id) or oldest
        assert fee.id is not None
        debts.append(
            Debt(
                kind="interest" if fee.kind == "interest" else "fee",
                id=fee.id,
                premium_key=owner.external_id if owner else "",
                due_date=owner.due_date if owner else date.min,
                open_cents=fee.amount_cents - fee.paid_cents,
            )
        )
    for p in premiums.values():
        assert p.id is not None
        debts.append(Debt("premium", p.id, p.external_id, p.due_date, p.amount_cents - p.paid_cents))
    return debts


def book_payment(
    session: Session,
    *,
    contract_number: str,
    external_ref: str,
    amount_cents: int,
    received_at: datetime,
    source: str,
    designated_premium: str | None = None,
) -> PaymentResult:
    """Book a payment and allocate it (costs → interest → principal, oldest first).

    Booking is keyed by `external_ref`: the same reference again books nothing and reports
    `booked=False`. Whatever is not needed for due items becomes credit on the contract.
    """
    if not 0 < amount_cents <= MAX_LEDGER_CENTS:
        raise LedgerError(f"amount_cents must be in 1..{MAX_LEDGER_CENTS}, got {amount_cents}")
    if not external_ref or len(external_ref) > 200:
        raise LedgerError("reference must be 1..200 characters")
    contract = get_contract(session, contract_number, lock=True)
    assert contract.id is not None
    as_of = ledger_date(received_at)
    existing = session.exec(select(Payment).where(Payment.external_ref == external_ref)).first()
    if existing is not None:
        if existing.contract_id != contract.id or existing.amount_cents != amount_cents:
            raise LedgerError(f"reference {external_ref!r} was booked before for another contract or amount")
        balance = arrears(session, contract_number, as_of).balance_cents
        return PaymentResult(
            payment_ref=external_ref,
            booked=False,
            allocated_cents=existing.amount_cents - existing.credit_cents,
            credit_cents=existing.credit_cents,
            balance_cents=balance,
        )
    if designated_premium is not None:
        premium = get_premium(session, designated_premium)
        if premium.contract_id != contract.id:
            raise LedgerError(f"premium_id {designated_premium!r} does not belong to contract {contract_number}")
    # Only what is due is allocated; the rest is credit on the contract (shown, refundable).
    result = allocate(amount_cents, _debts(session, contract.id, as_of, designated_premium), designated_premium)
    payment = Payment(
        external_ref=external_ref,
        contract_id=contract.id,
        amount_cents=amount_cents,
        received_at=received_at,
        source=source,
        designated_premium=designated_premium,
        credit_cents=result.credit_cents,
    )
    session.add(payment)
    session.flush()
    assert payment.id is not None
    _write_allocations(session, payment.id, result.shares)
    contract.credit_cents += result.credit_cents
    session.add(contract)
    session.flush()
    return PaymentResult(
        payment_ref=external_ref,
        booked=True,
        allocated_cents=result.allocated_cents,
        credit_cents=result.credit_cents,
        balance_cents=arrears(session, contract_number, as_of).balance_cents,
    )


def _write_allocations(session: Session, payment_id: int, shares: tuple[Share, ...]) -> None:
    for share in shares:
        session.add(
            Allocation(payment_id=payment_id, target=share.debt.kind, target_id=share.debt.id, amount_cents=share.cents)
        )
        if share.debt.kind == "premium":
            premium_row = session.get(Premium, share.debt.id)
            assert premium_row is not None
            premium_row.paid_cents += share.cents
            if premium_row.paid_cents >= premium_row.amount_cents:
                premium_row.status = PremiumStatus.PAID
            session.add(premium_row)
        elif share.debt.kind in ("fee", "interest"):  # both live in the fees table
            fee = session.get(Fee, share.debt.id)
            assert fee is not None
            fee.paid_cents += share.cents
            session.add(fee)
    session.flush()


def apply_credit(session: Session, contract: Contract, as_of: date) -> int:
    """Credit on the contract pays what is due (oldest first): nobody is dunned for an amount the
    insurer already holds. The cents are taken from the payments that carry the credit, oldest
    first, and allocated under those payments, so each stays traceable (and a later return of
    that payment undoes exactly what it paid). The caller holds the contract lock."""
    if contract.credit_cents <= 0:
        return 0
    assert contract.id is not None
    carriers = session.exec(
        select(Payment)
        .where(Payment.contract_id == contract.id, col(Payment.returned).is_(False), Payment.credit_cents > 0)
        .order_by(col(Payment.received_at), col(Payment.id))
    ).all()
    used = 0
    for payment in carriers:
        assert payment.id is not None
        debts = _debts(session, contract.id, as_of)
        if not any(d.open_cents > 0 for d in debts):
            break
        result = allocate(payment.credit_cents, debts)
        _write_allocations(session, payment.id, result.shares)
        payment.credit_cents -= result.allocated_cents
        contract.credit_cents -= result.allocated_cents
        used += result.allocated_cents
        session.add(payment)
    session.add(contract)
    session.flush()
    return used


def find_payment(session: Session, external_ref: str) -> Payment | None:
    return session.exec(select(Payment).where(Payment.external_ref == external_ref)).first()


def reverse_payment(
    session: Session, external_ref: str, reason_code: str, as_of: date | None = None
) -> tuple[Payment, list[str], bool]:
    """A returned direct debit: undo the payment's allocations, re-open what it had paid.

    Returns the payment, the premium ids re-opened and whether anything changed (a second
    return of the same debit changes nothing).
    """
    found = session.exec(select(Payment).where(Payment.external_ref == external_ref)).first()
    if found is None:
        raise NotFound(f"payment_ref {external_ref!r} is not in the ledger")
    owner = session.get(Contract, found.contract_id)
    assert owner is not None
    # Lock the contract like book_payment does, then read the payment again under the lock:
    # a payment booked (or the same return processed) meanwhile must not be overwritten.
    contract = get_contract(session, owner.contract_number, lock=True)
    session.refresh(found)
    payment = found
    if payment.returned:
        return payment, [], False
    assert payment.id is not None
    reopened: list[str] = []
    for allocation in session.exec(select(Allocation).where(Allocation.payment_id == payment.id)):
        if allocation.target == "premium":
            premium = session.get(Premium, allocation.target_id)
            assert premium is not None
            premium.paid_cents -= allocation.amount_cents
            premium.status = PremiumStatus.OPEN
            reopened.append(premium.external_id)
            session.add(premium)
        elif allocation.target in ("fee", "interest"):
            fee = session.get(Fee, allocation.target_id)
            assert fee is not None
            fee.paid_cents -= allocation.amount_cents
            session.add(fee)
    contract.credit_cents -= payment.credit_cents
    payment.returned = True
    payment.return_reason = reason_code
    session.add(contract)
    session.add(payment)
    session.flush()
    # Credit from other payments pays the re-opened items first; only what is left is dunned.
    apply_credit(session, contract, as_of or ledger_date(datetime.now(UTC)))
    reopened = [p for p in reopened if get_premium(session, p).status == PremiumStatus.OPEN]
    return payment, reopened, True


def write_off(session: Session, contract_number: str, as_of: date) -> int:
    """Write off everything dunned (blocked premiums stay as they are: they were never claimed);
    returns the cents written off."""
    contract = get_contract(session, contract_number, lock=True)
    assert contract.id is not None
    total = 0
    for premium in _open_premiums(session, contract.id, as_of):
        total += premium.amount_cents - premium.paid_cents
        premium.status = PremiumStatus.WRITTEN_OFF
        session.add(premium)
    for fee in open_fees(session, contract.id):
        total += fee.amount_cents - fee.paid_cents
        fee.written_off = True
        session.add(fee)
    session.flush()
    return total


def block_dunning(session: Session, contract_number: str, as_of: date, reason: str) -> list[str]:
    """Stop dunning the contract's open premiums due by `as_of`, and record why.

    Staff cancelled the case ("cancelled: …") or the contract was stopped (a stop code such as
    "MD07"). Blocked premiums leave the arrears, so no later notice, sweep or event brings them back.
    A cancellation is final: it replaces a stop code (a person decided), and a stop code never
    replaces a cancellation. Returns every premium now blocked, so a retried call answers the same.
    """
    if not reason.strip():
        raise LedgerError("reason must say why dunning stops, got an empty text")
    contract = get_contract(session, contract_number)
    assert contract.id is not None
    blocked = []
    for premium in _open_premiums(session, contract.id, as_of, include_blocked=True):
        keeps_its_reason = premium.dunning_blocked and (
            is_cancellation(premium.dunning_block_reason) or not is_cancellation(reason)
        )
        if not keeps_its_reason:
            premium.dunning_blocked = True
            premium.dunning_block_reason = reason
            session.add(premium)
        blocked.append(premium.external_id)
    session.flush()
    return blocked


def dunning_stopped_note(contract: Contract) -> str | None:
    """Why no case may start or join for this contract, or None when automated dunning may run."""
    if contract.dunning_stopped_at is None:
        return None
    return (
        f"automated dunning is stopped for contract {contract.contract_number} "
        f"since {ledger_date(contract.dunning_stopped_at):%Y-%m-%d} "
        f"({contract.dunning_stopped_code}: {contract.dunning_stopped_reason}); a person must release it"
    )


def stop_dunning(session: Session, contract_number: str, *, code: str, reason: str, at: datetime) -> list[str]:
    """Stop automated dunning for the whole contract until a person releases it (DOMAIN.md §6:
    MD07, debtor deceased, goes to a person). Every open premium is blocked with the code, and no
    case may start or join while the stop lasts. Stopping a stopped contract keeps the first stop
    (its time and reason). Returns the premiums blocked by the stop."""
    if not code.strip() or not reason.strip():
        raise LedgerError(f"code and reason must not be empty, got code={code!r} reason={reason!r}")
    contract = get_contract(session, contract_number, lock=True)
    if contract.dunning_stopped_at is None:
        contract.dunning_stopped_code, contract.dunning_stopped_reason = code, reason
        contract.dunning_stopped_at = at
        session.add(contract)
    return block_dunning(session, contract_number, date.max, contract.dunning_stopped_code or code)


@dataclass(frozen=True)
class DunningReleased:
    contract_number: str
    code: str  # the stop that was released, e.g. "MD07"
    unblocked: list[str]  # premiums dunned again from now on
    still_blocked: dict[str, str]  # premium id → reason: cancelled by staff, they stay out
    credit_used_cents: int  # credit the insurer held that paid the unblocked premiums at once
    tasks_closed: int


def release_dunning(session: Session, contract_number: str, *, by: str, reason: str, at: datetime) -> DunningReleased:
    """A person releases a stopped contract: the stop is cleared and the premiums blocked for it are
    dunned again (by the next sweep or event); premiums staff cancelled stay blocked. Credit the
    insurer holds pays them first (nobody is dunned for money already received). The back-office
    review the stop opened is closed with who released it and why.

    Refused, changing nothing: an unknown contract, a contract that is not stopped, an empty
    `by` or `reason`.
    """
    if not by.strip():
        raise LedgerError("by must name who releases the contract, got an empty text")
    if not reason.strip():
        raise LedgerError("reason must say why automated dunning may resume, got an empty text")
    contract = get_contract(session, contract_number, lock=True)
    if contract.dunning_stopped_at is None or contract.dunning_stopped_code is None:
        raise LedgerError(f"contract_number {contract_number!r} is not stopped: there is nothing to release")
    assert contract.id is not None
    code = contract.dunning_stopped_code
    unblocked: list[str] = []
    still_blocked: dict[str, str] = {}
    for premium in blocked_premiums(session, contract_number):
        if premium.dunning_block_reason == code:
            premium.dunning_blocked, premium.dunning_block_reason = False, None
            session.add(premium)
            unblocked.append(premium.external_id)
        else:
            still_blocked[premium.external_id] = premium.dunning_block_reason or ""
    contract.dunning_stopped_code = contract.dunning_stopped_reason = None
    contract.dunning_stopped_at = None
    session.add(contract)
    tasks = session.exec(
        select(AgentTask).where(
            AgentTask.contract_id == contract.id,
            AgentTask.kind == STOP_REVIEW_TASK,
            AgentTask.status == "open",
        )
    ).all()
    for task in tasks:
        task.status, task.outcome = "done", f"dunning released by {by.strip()}: {reason.strip()}"
        session.add(task)
    session.flush()
    credit_used = apply_credit(session, contract, ledger_date(at))
    return DunningReleased(contract_number, code, unblocked, still_blocked, credit_used, len(tasks))


# --- fees ------------------------------------------------------------------------------------


def book_fee(
    session: Session, *, key: str, contract_number: str, case_id: str, label: str, amount_cents: int, at: datetime
) -> Fee:
    existing = session.exec(select(Fee).where(Fee.idempotency_key == key)).first()
    if existing is not None:
        return existing
    contract = get_contract(session, contract_number)
    assert contract.id is not None
    oldest = next(iter(_open_premiums(session, contract.id, ledger_date(at))), None)  # a dunned premium
    fee = Fee(
        idempotency_key=key,
        contract_id=contract.id,
        premium_id=oldest.id if oldest else None,
        case_id=case_id,
        label=label,
        amount_cents=amount_cents,
        booked_at=at,
    )
    session.add(fee)
    session.flush()
    return fee


def interest_claimed(session: Session, premium_id: int) -> int:
    """Default interest already booked as a claim for this premium (never claim a day twice)."""
    rows = session.exec(select(Fee).where(Fee.premium_id == premium_id, Fee.kind == "interest")).all()
    return sum(f.amount_cents for f in rows)


def book_interest(
    session: Session, *, key: str, premium: Premium, case_id: str, label: str, amount_cents: int, at: datetime
) -> Fee:
    """Book claimed default interest for one premium, once per key (a notice step)."""
    existing = session.exec(select(Fee).where(Fee.idempotency_key == key)).first()
    if existing is not None:
        return existing
    if amount_cents <= 0:
        raise LedgerError(f"interest must be > 0 cents, got {amount_cents}")
    fee = Fee(
        idempotency_key=key,
        contract_id=premium.contract_id,
        premium_id=premium.id,
        case_id=case_id,
        label=label,
        amount_cents=amount_cents,
        booked_at=at,
        kind="interest",
    )
    session.add(fee)
    session.flush()
    return fee


# --- contract status -------------------------------------------------------------------------


def set_contract_status(
    session: Session,
    *,
    contract_number: str,
    to_status: ContractStatus,
    reason: str,
    key: str,
    at: datetime,
    case_id: str | None = None,
    recorded_at: datetime | None = None,
    only_with_arrears: bool = False,
) -> bool:
    """Change the status and write the history entry, once per key. Returns whether it changed.

    `at` is when the change takes legal effect (a reactivation: when the clearing payment was
    received, §38(2) VVG), `recorded_at` when the engine wrote it; the history keeps both. The
    effective time never goes back before the contract's last change, so the history stays one
    ordered story ("covered at X?" has one answer). With `only_with_arrears` (a case suspending
    cover) nothing changes when nothing is open any more: a suspension that arrives after the
    balance cleared would take cover from a customer who paid.
    """
    if session.exec(select(ContractStatusChange).where(ContractStatusChange.idempotency_key == key)).first():
        return False
    contract = get_contract(session, contract_number, lock=True)
    if contract.status == to_status:
        return False
    assert contract.id is not None
    recorded = recorded_at or datetime.now(UTC)
    if only_with_arrears and arrears(session, contract_number, ledger_date(recorded)).balance_cents <= 0:
        return False
    last = session.exec(
        select(ContractStatusChange)
        .where(ContractStatusChange.contract_id == contract.id)
        .order_by(col(ContractStatusChange.effective_at).desc(), col(ContractStatusChange.id).desc())
    ).first()
    effective = at
    if last is not None:
        previous = last.effective_at if last.effective_at.tzinfo else last.effective_at.replace(tzinfo=UTC)
        effective = max(effective, previous)
    session.add(
        ContractStatusChange(
            contract_id=contract.id,
            from_status=contract.status,
            to_status=to_status,
            effective_at=effective,
            reason=reason,
            case_id=case_id,
            idempotency_key=key,
            recorded_at=recorded,
        )
    )
    contract.status = to_status
    session.add(contract)
    session.flush()
    return True


def status_history(session: Session, contract_number: str) -> list[ContractStatusChange]:
    contract = get_contract(session, contract_number)
    query = (
        select(ContractStatusChange)
        .where(ContractStatusChange.contract_id == contract.id)
        .order_by(col(ContractStatusChange.effective_at), col(ContractStatusChange.id))
    )
    return list(session.exec(query))


def coverage_history(session: Session, contract_number: str) -> list[StatusChange]:
    """The status history as the coverage question needs it (SQLite returns naive UTC times)."""
    return [
        StatusChange(
            c.effective_at if c.effective_at.tzinfo else c.effective_at.replace(tzinfo=UTC),
            c.from_status,
            c.to_status,
            c.reason,
        )
        for c in status_history(session, contract_number)
    ]


# --- outbox, tasks, court --------------------------------------------------------------------


def add_message(session: Session, message: Message) -> tuple[Message, bool]:
    existing = session.exec(select(Message).where(Message.idempotency_key == message.idempotency_key)).first()
    if existing is not None:
        return existing, False
    session.add(message)
    session.flush()
    return message, True


def find_pay_link(session: Session, token_id: str) -> PayLink | None:
    return session.exec(select(PayLink).where(PayLink.token_id == token_id)).first()


def add_agent_task(session: Session, task: AgentTask) -> tuple[AgentTask, bool]:
    existing = session.exec(select(AgentTask).where(AgentTask.idempotency_key == task.idempotency_key)).first()
    if existing is not None:
        return existing, False
    session.add(task)
    session.flush()
    return task, True


def close_agent_tasks(session: Session, case_id: str, outcome: str) -> int:
    tasks = list(session.exec(select(AgentTask).where(AgentTask.case_id == case_id, AgentTask.status == "open")))
    for task in tasks:
        task.status = "done"
        task.outcome = outcome
        session.add(task)
    session.flush()
    return len(tasks)


def add_court_application(session: Session, application: CourtApplication) -> CourtApplication:
    existing = session.exec(select(CourtApplication).where(CourtApplication.case_id == application.case_id)).first()
    if existing is not None:
        return existing
    session.add(application)
    session.flush()
    return application


def approve_court_application(session: Session, case_id: str, approver: str, at: datetime) -> CourtApplication:
    application = session.exec(select(CourtApplication).where(CourtApplication.case_id == case_id)).first()
    if application is None:
        raise NotFound(f"no court application prepared for case {case_id}")
    if application.status == "prepared":
        application.status = "approved"
        application.approved_by = approver
        application.approved_at = at
        session.add(application)
        session.flush()
    return application


# --- events ----------------------------------------------------------------------------------


def seen_event(session: Session, source: str, event_id: str) -> ProcessedEvent | None:
    return session.exec(
        select(ProcessedEvent).where(ProcessedEvent.source == source, ProcessedEvent.event_id == event_id)
    ).first()


def record_event(
    session: Session,
    source: str,
    event_id: str,
    at: datetime,
    result: dict[str, object],
    payload_sha256: str | None = None,
) -> None:
    session.add(
        ProcessedEvent(source=source, event_id=event_id, received_at=at, result=result, payload_sha256=payload_sha256)
    )
    session.flush()


# --- the sweep -------------------------------------------------------------------------------


def overdue_premiums(
    session: Session, as_of: date, after_id: int = 0, limit: int = 500
) -> list[tuple[int, str, str, str | None]]:
    """Open, unblocked premiums of contracts not stopped, due before `as_of`: (row id, contract
    number, premium id, plan), by id.

    Walks the (status, id) index, so its cost follows the number of open premiums, not the paid
    history. The statuses are literals in the SQL text: PostgreSQL's generic plan for the prepared
    statement (psycopg prepares after 5 runs) misjudges `status = $1` and walks the primary key
    or every contract instead (make bench showed 1 s per page at 1,000,000 rows).
    """
    query = (
        select(Premium.id, Contract.contract_number, Premium.external_id, Contract.dunning_plan)
        .join(Contract, col(Contract.id) == col(Premium.contract_id))
        .where(
            col(Premium.status) == literal(PremiumStatus.OPEN, SAEnum(PremiumStatus), literal_execute=True),
            Premium.due_date < as_of,
            Premium.dunning_blocked == False,  # noqa: E712
            col(Contract.dunning_stopped_at).is_(None),  # a stopped contract waits for a person
            col(Premium.id) > after_id,
            col(Contract.status) != literal(ContractStatus.TERMINATED, SAEnum(ContractStatus), literal_execute=True),
        )
        .order_by(col(Premium.id))
        .limit(limit)
    )
    return [(int(pid or 0), number, ext, plan) for pid, number, ext, plan in session.exec(query)]


def count_rows(session: Session, model: type[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())
