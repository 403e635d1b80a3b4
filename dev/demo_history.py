"""A closed demo history for `make run` (issue #16): a few thousand dunning cases over the last
twelve months, so the analytics and the what-if simulation show something on the first start.

How it stays honest: each contract's premiums and payments are made up (seeded random, the same on
every machine), but what the *cases* did — messages, fees, suspensions, reactivations, court
applications — is produced by the simulation (core/simulation.py), i.e. by the workflow's own
decider driving an in-memory ledger. The in-memory ledger logs every change in order, and this
module writes that log into the real ledger with the ledger's own functions (ledger/service.py:
book_premium, book_payment, book_fee, set_contract_status, add_message; ledger/debit_returns.py for
returned debits), the same functions billing, the bank and the activities use. So the replay check
(the plan actually used replays to what the ledger holds) must pass on it.

Every premium ends paid or written off (a supervisor writes off half of the claims that reach court
approval; a last payment clears what is left before today), so no overdue premium is left for the
morning sweep: not one Temporal workflow is started. Messages are stored with a
short text body (nothing is rendered or sent). Seeds once per database (event `demo-history-v1`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.calendar import add_months
from core.simulation import (
    ContractHistory,
    ContractRun,
    SimMessage,
    SimPayment,
    SimPremium,
    SimStaffAction,
    sweep_moment,
)
from core.timezone import BUSINESS_TIMEZONE
from ledger import case_register, debit_returns, service
from ledger.db import session_scope
from models.activities import CloseCase, LoadArrears, SendMessage
from models.auth import AuditEvent
from models.ledger import Contract, ContractStatus, CourtApplication, Customer, Message
from models.plans import get_plan

HISTORY_EVENT = "demo-history-v1"
CONTRACTS = 1_600
PLANS = (("de-follow-up", 0.6), ("de-follow-up-terminate", 0.25), ("de-follow-up-final-reminder", 0.15))
PRODUCTS = ("Hausratversicherung", "Privathaftpflicht", "Kfz-Versicherung", "Wohngebäudeversicherung")
STATES = ("BE", "BY", "NW", "HH", "SN", "HE")
LATE_RATE = 0.4  # share of premiums paid late (a case each): a dunning portfolio, not the whole book
RETURN_RATE = 0.03  # share of direct debits that come back (AM04: no funds)
BATCH = 20  # contracts per transaction: short write locks for the live stack meanwhile
HOLD_RATE = 0.05  # share of late premiums whose case a clerk holds for two weeks
WRITE_OFF_SHARE = 0.5  # of the cases that reach court approval: written off instead of paid
ZONE = ZoneInfo(BUSINESS_TIMEZONE)
SUSPENDED_REASON = "Notice deadline passed with arrears (§38(2) VVG)"


@dataclass(frozen=True)
class Contracted:
    """One made-up contract: master data and its history as the simulation takes it."""

    index: int
    history: ContractHistory
    plan_id: str
    direct_debit: bool
    name: str


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=ZONE).astimezone(UTC)


def _late_delay(rng: random.Random) -> tuple[int, int | None]:
    """Days after the due date the money comes: (first payment, the rest for a partial payer)."""
    r = rng.random()
    if r < 0.35:
        return rng.randint(4, 11), None  # after the reminder
    if r < 0.65:
        return rng.randint(14, 30), None  # after the qualified notice
    if r < 0.80:
        return rng.randint(32, 55), None  # after the suspension
    if r < 0.90:
        return rng.randint(60, 100), None  # the agency
    if r < 0.95:
        return rng.randint(100, 160), None  # the court application waits for approval
    return rng.randint(18, 30), rng.randint(40, 70)  # half, then the rest


def period(today: date) -> tuple[date, date]:
    """Premiums fall due on the first of a month, quarterly, in the twelve months before this one."""
    this_month = today.replace(day=1)
    return add_months(this_month, -12), this_month


def make_contract(index: int, today: date, end: datetime) -> Contracted:
    rng = random.Random(index)
    number = f"V-{index:05d}"  # after the live demo's K-10xx in every list sorted by contract number
    plan_id = rng.choices([p for p, _ in PLANS], [w for _, w in PLANS])[0]
    direct_debit = rng.random() < 0.4
    amount = rng.choice((1_290, 2_990, 4_990, 8_990, 12_900))
    first, last = period(today)
    premiums: list[SimPremium] = []
    payments: list[SimPayment] = []  # amount 0: "whatever is open then" (filled in by `settle`)
    actions: list[SimStaffAction] = []
    latest = end - timedelta(days=1)
    due = add_months(first, index % 3)  # quarterly, spread over the months
    n = 0
    while due < last and due <= today - timedelta(days=3):
        n += 1
        pid = f"{number}-P{n:02d}"
        premiums.append(SimPremium(pid, due, amount * 3, f"{due:%m/%Y}"))
        if rng.random() < LATE_RATE:
            first_days, rest_days = _late_delay(rng)
            pay_at = min(_at(due + timedelta(days=first_days), 10, rng.randint(0, 59)), latest)
            if first_days >= 100 and rng.random() < WRITE_OFF_SHARE and pay_at < latest:
                # Waiting for court approval, a supervisor writes the claim off instead of filing.
                actions.append(SimStaffAction(pay_at, "write-off", None, None, "uneinbringlich", "demo-supervisor"))
                due = add_months(due, 3)
                continue
            payments.append(SimPayment(f"demo-hist:{pid}:1", -2 if rest_days else 0, pay_at, None))
            if rest_days:
                rest_at = min(_at(due + timedelta(days=rest_days), 15, rng.randint(0, 59)), latest)
                payments.append(SimPayment(f"demo-hist:{pid}:2", 0, max(rest_at, pay_at + timedelta(hours=1))))
            if first_days >= 14 and rng.random() < HOLD_RATE / LATE_RATE * 0.5:
                held = sweep_moment(due) + timedelta(days=5, hours=5)
                until = (held + timedelta(days=14)).date()
                actions.append(SimStaffAction(held, "hold", until, None, "im Krankenhaus", "demo-clerk"))
        elif direct_debit:
            ref = f"sepa:{pid}"
            returned = rng.random() < RETURN_RATE
            back = _at(due + timedelta(days=4), 9) if returned else None
            payments.append(SimPayment(ref, amount * 3, _at(due, 7), None, back, "AM04" if returned else ""))
            if back is not None:
                payments.append(SimPayment(f"demo-hist:{pid}:after-return", 0, min(back + timedelta(days=20), latest)))
        else:
            # On the due date: paid earlier, the money would wait as credit until the next premium
            # is booked (ledger/service.apply_credit), and the premium would be dunned meanwhile.
            paid_at = _at(due, rng.randint(8, 19), rng.randint(0, 59))
            payments.append(SimPayment(f"demo-hist:{pid}:0", amount * 3, paid_at))
        due = add_months(due, 3)
    history = ContractHistory(
        contract_number=number,
        premiums=tuple(premiums),
        payments=tuple(payments),
        actions=tuple(actions),
        has_email=rng.random() < 0.85,
        has_phone=rng.random() < 0.7,
        subdivision=rng.choice(STATES),
        agent_code="A-100" if rng.random() < 0.7 else None,
        product=rng.choice(PRODUCTS),
        plan_id=plan_id,
    )
    return Contracted(index, history, plan_id, direct_debit, f"Demo-Kunde {index}")


def settle(contract: Contracted, start: datetime, end: datetime) -> ContractRun:
    """Fill in the amounts that depend on the case ("what is open then", half of it), add a last
    payment if anything is still open at the end, and run the contract once more with the log on."""
    history, plan = contract.history, get_plan(contract.plan_id)
    fixed: list[SimPayment] = []
    for payment in sorted(history.payments, key=lambda p: p.received_at):
        if payment.amount_cents > 0:
            fixed.append(payment)
            continue
        before = replace(history, payments=tuple(fixed))
        probe = ContractRun(before, plan, start, payment.received_at)
        probe.run()
        open_cents = probe.outcome.open_cents_at_end
        cents = open_cents // 2 if payment.amount_cents == -2 else open_cents
        if cents > 0:
            fixed.append(replace(payment, amount_cents=cents))
    history = replace(history, payments=tuple(fixed))
    run = ContractRun(history, plan, start, end)
    outcome = run.run()
    if outcome.open_cents_at_end > 0:
        last = SimPayment(
            f"demo-hist:{history.contract_number}:last", outcome.open_cents_at_end, end - timedelta(hours=20)
        )
        history = replace(history, payments=(*fixed, last))
    run = ContractRun(history, plan, start, end, log=True)
    run.run()
    return run


def _audit_detail(action: SimStaffAction) -> dict[str, object]:
    """What web/internal/case_actions.py keeps of a case action in the audit trail."""
    detail: dict[str, object] = {"case_action": action.kind, "reason": action.reason}
    if action.until is not None:
        detail["until"] = str(action.until)
    return detail


def _recipient(channel: str, customer: Customer) -> str:
    if channel == "email":
        return customer.email or ""
    if channel == "sms":
        return customer.phone or ""
    return f"{customer.name}\nMusterweg 1\n10115 Berlin"


def write(session: Session, contract: Contracted, run: ContractRun) -> None:
    """The master data, then the simulated ledger's log, change by change, through ledger/service.py."""
    h = contract.history
    customer = service.upsert_customer(
        session,
        f"C-{h.contract_number}",
        name=contract.name,
        street="Musterweg 1",
        postal_code="10115",
        city="Berlin",
        state=h.subdivision or "",
        email=f"kunde{contract.index}@example.org" if h.has_email else None,
        phone=f"+49151{contract.index:08d}" if h.has_phone else None,
    )
    row = service.upsert_contract(
        session,
        h.contract_number,
        customer,
        agent_code=h.agent_code,
        product=h.product,
        dunning_plan=contract.plan_id,
        payment_method="direct_debit" if contract.direct_debit else "self_payment",
    )
    for action in h.actions:
        session.add(
            AuditEvent(
                at=action.at,
                actor_kind="person",
                actor=action.by,
                via="session",
                action=f"POST /contracts/{{contract_number}}/case/{action.kind}",
                contract_number=h.contract_number,
                detail=_audit_detail(action),
                source="demo history",
                status_code=303,
            )
        )
    assert run.ledger.log is not None
    for entry in run.ledger.log:
        _apply(session, row, customer, entry)


def _apply(session: Session, contract: Contract, customer: Customer, entry: tuple[object, ...]) -> None:
    number = contract.contract_number
    match entry:
        case ("premium", SimPremium() as p):
            service.book_premium(
                session,
                external_id=p.premium_id,
                contract_number=number,
                period_start=p.due_date,
                period_end=add_months(p.due_date, 3) - timedelta(days=1),
                due_date=p.due_date,
                amount_cents=p.amount_cents,
            )
        case ("payment", SimPayment() as pay):
            service.book_payment(
                session,
                contract_number=number,
                external_ref=pay.ref,
                amount_cents=pay.amount_cents,
                received_at=pay.received_at,
                source="direct_debit" if pay.ref.startswith("sepa:") else "bank",
                designated_premium=pay.designated_premium,
            )
        case ("return", str() as ref, datetime() as at):
            outcome = debit_returns.apply_return(session, ref, "AM04", at)
            result: dict[str, object] = {"payment_ref": ref, "reopened": outcome.reopened, "actions": outcome.actions}
            service.record_event(session, "ledger", f"demo-history:return:{ref}", at, result)
        case ("fee", str() as key, str() as case_id, int() as cents, datetime() as at):
            service.book_fee(
                session, key=key, contract_number=number, case_id=case_id, label="Mahnkosten", amount_cents=cents, at=at
            )
        case ("message", SimMessage() as m, SendMessage()):
            service.add_message(
                session,
                Message(
                    idempotency_key=m.key,
                    case_id=m.case_id,
                    contract_id=contract.id,
                    channel=m.channel,
                    kind=m.kind,
                    recipient=_recipient(m.channel, customer),
                    subject=f"Demo-Verlauf: {m.kind}",
                    body_text=f"Demo history (simulated, never sent): {m.kind} by {m.channel}, {m.total_cents} cents",
                    total_cents=m.total_cents,
                    created_at=m.at,
                    sent_at=m.at,
                    status="sent",
                ),
            )
        case ("status", ContractStatus() as to, str() as key, str() as case_id, datetime() as at, *more):
            rec = more[0] if more and isinstance(more[0], datetime) else at
            only = bool(len(more) > 1 and more[1])
            reason = SUSPENDED_REASON if to == ContractStatus.SUSPENDED else "Arrears paid: cover restored"
            changed = service.set_contract_status(
                session,
                contract_number=number,
                to_status=to,
                reason=reason,
                key=key,
                at=at,
                case_id=case_id,
                recorded_at=rec,
                only_with_arrears=only,
            )
            if not changed:
                raise RuntimeError(f"{number}: the ledger refused the simulated status change {key}")
        case ("court", str() as case_id, datetime() as at, int() as claimed):
            service.add_court_application(
                session,
                CourtApplication(
                    case_id=case_id,
                    contract_id=contract.id or 0,
                    record={"case_id": case_id, "claimed_cents": claimed, "demo_history": True},
                    prepared_at=at,
                ),
            )
        case ("close", str() as action, date() as as_of):
            if action == "write_off":
                service.write_off(session, number, as_of)
        case ("read", LoadArrears() as read):
            # The case register (ledger/case_register.py), as LedgerActivities.load_arrears keeps it:
            # the case's first read opens its row with the balance it claimed.
            register_id: str | None = getattr(read, "case_id", None)
            opened: datetime | None = getattr(read, "opened_at", None)
            if register_id and case_register.find(session, register_id) is None:
                case_register.open_case(
                    session,
                    case_id=register_id,
                    contract=contract,
                    plan_id=getattr(read, "plan_id", None),
                    opened_at=opened or case_register.opened_at_of(register_id) or datetime.now(UTC),
                    claimed_cents=service.arrears(session, number, read.as_of).balance_cents,
                )
        case ("closed", CloseCase() as closing):
            case_register.close_case(
                session,
                case_id=closing.case_id,
                contract=service.get_contract(session, number),
                action=closing.action,
                stage=getattr(closing, "stage", None),
                now=closing.now,
            )
        case _:
            raise ValueError(f"unknown ledger change {entry!r}")


def build(today: date, now: datetime, count: int = CONTRACTS) -> Iterable[tuple[Contracted, ContractRun]]:
    first, _ = period(today)
    start = datetime.combine(first, clock.min, tzinfo=ZONE).astimezone(UTC)
    for index in range(1, count + 1):
        contract = make_contract(index, today, now)
        yield contract, settle(contract, start, now)


def _write_batch(engine: Engine, batch: list[tuple[Contracted, ContractRun]]) -> None:
    """One transaction per batch: small sessions keep SQLAlchemy's flushes cheap. A contract
    seeded before (a start cut short) is skipped, so the next start completes the history."""
    with session_scope(engine) as session:
        for contract, run in batch:
            number = contract.history.contract_number
            if session.exec(select(Contract).where(Contract.contract_number == number)).first():
                continue
            write(session, contract, run)


def seed_history(
    engine: Engine, today: date | None = None, now: datetime | None = None, count: int = CONTRACTS
) -> str:
    """Seed once per database; answers what it did (and how long it took)."""
    with session_scope(engine) as session:
        if service.seen_event(session, "demo", HISTORY_EVENT) is not None:
            return "demo history: already seeded"
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    today = today or service.ledger_date(now)
    cases = contracts = 0
    batch: list[tuple[Contracted, ContractRun]] = []
    for contract, run in build(today, now, count):
        batch.append((contract, run))
        contracts += 1
        cases += len(run.outcome.cases)
        if len(batch) == BATCH:
            _write_batch(engine, batch)
            batch = []
    _write_batch(engine, batch)
    with session_scope(engine) as session:  # last: a seeding cut short is completed on the next start
        service.record_event(session, "demo", HISTORY_EVENT, now, {"contracts": contracts, "cases": cases})
    took = time.perf_counter() - began
    return f"demo history: {contracts} contracts, {cases} closed cases over twelve months, seeded in {took:.0f} s"
