"""A slice of the portfolio as plain data for the what-if simulation (core/simulation.py).

Reads, never writes: contracts (filtered by plan, product, contract numbers), their premiums due in
the period, the payments received in it (from a month before, so a payment made ahead still
counts), when a debit came back (the ledger event that returned it), the staff holds, promises,
resumes and disputes the audit trail recorded — and, for the replay check, what the ledger recorded
the cases doing (their messages and the contract's status changes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.simulation import ContractHistory, SimPayment, SimPremium, SimStaffAction, SimulationError
from core.simulation_report import CASE_KINDS, RecordedContract, RecordedMessage, RecordedStatus
from core.timezone import BUSINESS_TIMEZONE
from ledger.debit_returns import RETURN_RULES
from ledger.service import period_label
from models.auth import AuditEvent
from models.ledger import Contract, ContractStatusChange, Customer, Message, Payment, Premium, ProcessedEvent
from models.plans import BUILTIN_PLANS

MAX_PERIOD_DAYS = 400  # a year and a bit: the simulation is for "what would this plan have done last year"
PAYMENTS_BEFORE = timedelta(days=31)  # money paid ahead of a premium in the period still pays it
RETURN_FALLBACK = timedelta(days=3)  # a returned debit whose return event is not in the ledger
STAFF_ACTIONS = ("hold", "promise", "resume", "dispute", "write-off", "cancel")
CHUNK = 500
STOP_CODES = frozenset(code for code, rule in RETURN_RULES.items() if rule.stop)  # MD07: a person decides

T = TypeVar("T")


@dataclass(frozen=True)
class Slice:
    """Which contracts and which period (dates in Berlin, `end` exclusive)."""

    start: date
    end: date
    plan_id: str | None = None  # the plan the contracts are dunned on (None: any)
    product: str | None = None
    contracts: tuple[str, ...] = ()  # only these contract numbers (empty: all that match)
    limit: int = 5_000

    def check(self) -> None:
        if self.end <= self.start:
            raise SimulationError(f"the period must end after it starts, got {self.start} .. {self.end}")
        if (self.end - self.start).days > MAX_PERIOD_DAYS:
            days = (self.end - self.start).days
            raise SimulationError(f"the period may span at most {MAX_PERIOD_DAYS} days, got {days}")
        if self.plan_id is not None and self.plan_id not in BUILTIN_PLANS:
            raise SimulationError(f"unknown dunning plan {self.plan_id!r}, known: {', '.join(sorted(BUILTIN_PLANS))}")
        if self.limit < 1:
            raise SimulationError(f"limit must be at least 1, got {self.limit}")

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=ZoneInfo(BUSINESS_TIMEZONE)).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time.min, tzinfo=ZoneInfo(BUSINESS_TIMEZONE)).astimezone(UTC)


@dataclass(frozen=True)
class SliceData:
    histories: list[ContractHistory]
    recorded: list[RecordedContract]
    truncated: bool  # more contracts matched than `limit`


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _cents(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def read_slice(session: Session, part: Slice, default_plan: str) -> SliceData:
    """The slice's contracts (at most `part.limit`, by contract number) as simulation input."""
    part.check()
    query = select(Contract, Customer).join(Customer, col(Customer.id) == col(Contract.customer_id))
    if part.product:
        query = query.where(Contract.product == part.product)
    if part.contracts:
        query = query.where(col(Contract.contract_number).in_(part.contracts))
    if part.plan_id is not None:
        if part.plan_id == default_plan:
            query = query.where(
                (col(Contract.dunning_plan) == part.plan_id) | col(Contract.dunning_plan).is_(None)
            )
        else:
            query = query.where(Contract.dunning_plan == part.plan_id)
    # Only contracts with a premium due in the period: the rest have nothing to replay.
    due_in = select(Premium.contract_id).where(Premium.due_date >= part.start, Premium.due_date < part.end)
    query = query.where(col(Contract.id).in_(due_in)).order_by(col(Contract.contract_number)).limit(part.limit + 1)
    rows = list(session.exec(query))
    truncated = len(rows) > part.limit
    rows = rows[: part.limit]
    ids = [contract.id or 0 for contract, _ in rows]
    premiums: dict[int, list[SimPremium]] = defaultdict(list)
    payments: dict[int, list[Payment]] = defaultdict(list)
    messages: dict[int, list[RecordedMessage]] = defaultdict(list)
    statuses: dict[int, list[RecordedStatus]] = defaultdict(list)
    starts: dict[int, set[str]] = defaultdict(set)  # the case ids the ledger saw
    start_at, end_at = part.start_at, part.end_at
    for chunk in _chunks(ids):
        for p in session.exec(
            select(Premium)
            .where(col(Premium.contract_id).in_(chunk), Premium.due_date >= part.start, Premium.due_date < part.end)
            .order_by(col(Premium.due_date), col(Premium.id))
        ):
            premiums[p.contract_id].append(SimPremium(p.external_id, p.due_date, p.amount_cents, period_label(p)))
        for pay in session.exec(
            select(Payment)
            .where(
                col(Payment.contract_id).in_(chunk),
                Payment.received_at >= start_at - PAYMENTS_BEFORE,
                Payment.received_at < end_at,
            )
            .order_by(col(Payment.received_at), col(Payment.id))
        ):
            payments[pay.contract_id].append(pay)
        for m in session.exec(
            select(Message).where(
                col(Message.contract_id).in_(chunk),
                col(Message.case_id).is_not(None),
                Message.created_at >= start_at,
                Message.created_at < end_at,
                col(Message.kind).in_([k.value for k in CASE_KINDS]),
            )
        ):
            messages[m.contract_id or 0].append(RecordedMessage(m.kind, m.channel, _aware(m.created_at)))
            starts[m.contract_id or 0].add(m.case_id or "")
        for s in session.exec(
            select(ContractStatusChange).where(
                col(ContractStatusChange.contract_id).in_(chunk),
                ContractStatusChange.effective_at >= start_at,
                ContractStatusChange.effective_at < end_at,
            )
        ):
            statuses[s.contract_id].append(RecordedStatus(str(s.to_status), _aware(s.effective_at)))
            starts[s.contract_id].add(s.case_id or "")
    returns = _return_moments(session, [p for ps in payments.values() for p in ps if p.returned], start_at)
    numbers = [contract.contract_number for contract, _ in rows]
    actions = _staff_actions(session, numbers, start_at, end_at)
    histories: list[ContractHistory] = []
    recorded: list[RecordedContract] = []
    for contract, customer in rows:
        cid = contract.id or 0
        sim_payments = tuple(
            SimPayment(
                ref=p.external_ref,
                amount_cents=p.amount_cents,
                received_at=_aware(p.received_at),
                designated_premium=p.designated_premium,
                returned_at=_returned_at(p, returns),
                return_code=p.return_reason or "",
                return_stops_dunning=(p.return_reason or "").upper() in STOP_CODES,
            )
            for p in payments[cid]
        )
        histories.append(
            ContractHistory(
                contract_number=contract.contract_number,
                premiums=tuple(premiums[cid]),
                payments=sim_payments,
                actions=tuple(actions.get(contract.contract_number, ())),
                has_email=bool(customer.email) and customer.email_valid,
                has_phone=bool(customer.phone) and customer.phone_valid,
                subdivision=customer.state or None,
                agent_code=contract.agent_code,
                product=contract.product,
                plan_id=contract.dunning_plan or default_plan,
                case_starts=tuple(sorted(filter(None, (case_start(case_id) for case_id in starts[cid])))),
            )
        )
        recorded.append(RecordedContract(contract.contract_number, tuple(messages[cid]), tuple(statuses[cid])))
    return SliceData(histories, recorded, truncated)


def case_start(case_id: str) -> datetime | None:
    """The start moment a case id carries (`dunning-<contract>/<YYYYmmddTHHMMSS>`, UTC), or None."""
    try:
        return datetime.strptime(case_id.rsplit("/", 1)[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def _returned_at(payment: Payment, returns: dict[str, datetime]) -> datetime | None:
    if not payment.returned:
        return None
    return returns.get(payment.external_ref, _aware(payment.received_at) + RETURN_FALLBACK)


def _return_moments(session: Session, returned: Iterable[Payment], since: datetime) -> dict[str, datetime]:
    """When each returned debit came back: the ledger event (processed_events) that returned it."""
    refs = {p.external_ref for p in returned}
    if not refs:
        return {}
    found: dict[str, datetime] = {}
    query = select(ProcessedEvent).where(
        ProcessedEvent.source == "ledger", ProcessedEvent.received_at >= since - PAYMENTS_BEFORE
    )
    for event in session.exec(query):
        result: dict[str, Any] = dict(event.result or {})
        ref = result.get("payment_ref")
        if isinstance(ref, str) and ref in refs and "reopened" in result:
            found.setdefault(ref, _aware(event.received_at))
    return found


def _staff_actions(
    session: Session, numbers: Sequence[str], start_at: datetime, end_at: datetime
) -> dict[str, list[SimStaffAction]]:
    """Holds, promises, resumes and disputes on the cases, as the audit trail recorded them."""
    out: dict[str, list[SimStaffAction]] = defaultdict(list)
    for chunk in _chunks(numbers):
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.contract_number).in_(chunk), AuditEvent.at >= start_at, AuditEvent.at < end_at)
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        )
        for event in session.exec(query):
            detail = dict(event.detail or {})
            kind = detail.get("case_action")
            if kind not in STAFF_ACTIONS or (event.status_code or 303) >= 400:
                continue
            until = _date(detail.get("until") or detail.get("pay_by"))
            amount = _cents(detail["amount_cents"]) if detail.get("amount_cents") else None
            out[event.contract_number or ""].append(
                SimStaffAction(
                    at=_aware(event.at),
                    kind=str(kind),
                    until=until,
                    amount_cents=amount,
                    reason=str(detail.get("reason") or detail.get("note") or ""),
                    by=event.actor or "staff",
                )
            )
    return out
