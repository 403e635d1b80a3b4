"""Collections analytics (issue #16, DOMAIN.md §12, docs/analytics.md): aggregate queries over the
ledger, the same on SQLite and PostgreSQL, that stay fast on a million cases (dev/bench/analytics.py).

Every figure is one GROUP BY in the database; Python only shapes the few result rows. The case
facts come from the case register (`case_records`, models/analytics.py), joined by case id to the
outbox (`messages`), the status history, agent tasks and contact attempts, court applications and
events; money recovered comes from `payments` (what a payment paid, not the part kept as credit).

Filters: the case's pinned plan, the contract's product, and the period in which cases opened
(`opened_from`..`opened_to`, whole UTC days). The ageing of open premiums is a snapshot at `as_of`
and the bank queue is everyone's: the period does not apply to them (plan and product do to ageing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import DateTime, and_, case, distinct, extract, func, literal_column, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from core.steps import STEPS, CaseStage
from models.agency import ContactAttempt, CourtEvent
from models.analytics import CaseRecord
from models.banking import LineStatus, StatementLine
from models.ledger import (
    AgentTask,
    Contract,
    ContractStatus,
    ContractStatusChange,
    CourtApplication,
    Message,
    Payment,
    Premium,
    PremiumStatus,
)
from models.messages import Channel

MONTHS = 12  # the recovery curve: after 1 … 12 months
AGEING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–30", 0, 30),
    ("31–60", 31, 60),
    ("61–90", 61, 90),
    ("91–180", 91, 180),
    ("> 180", 181, None),
)
BANK_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("0–3", 0, 3), ("4–7", 4, 7), ("> 7", 8, None))
# The customer-facing messages a plan step sends (not receipts or confirmations, which follow a payment).
DUNNING_KINDS = tuple(sorted({str(spec.message) for spec in STEPS.values() if spec.message} | {"termination_letter"}))
# The stages in the order a plan usually reaches them; `reached` says which ledger fact proves each.
STAGE_ORDER = (
    CaseStage.OVERDUE,
    CaseStage.REMINDED,
    CaseStage.NOTICE_SENT,
    CaseStage.SUSPENDED,
    CaseStage.SMS_SENT,
    CaseStage.AGENCY,
    CaseStage.FINAL_REMINDER_SENT,
    CaseStage.COURT_APPROVAL,
    CaseStage.COURT_FILED,
    CaseStage.TERMINATION_APPROVAL,
    CaseStage.TERMINATED,
)
KIND_STAGE = {str(spec.message): spec.stage_after for spec in STEPS.values() if spec.message}


# --- two expressions the dialects spell differently ----------------------------------------------


class _Utc(FunctionElement[datetime]):
    """A stored moment as a UTC wall-clock time (SQLite stores UTC already; PostgreSQL's timestamptz
    would otherwise be read in the session's time zone)."""

    type = DateTime()
    inherit_cache = True
    name = "utc"


@compiles(_Utc)
def _utc_default(element: _Utc, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_Utc, "postgresql")
def _utc_postgresql(element: _Utc, compiler: SQLCompiler, **kw: Any) -> str:
    return f"timezone('UTC', {compiler.process(element.clauses, **kw)})"


class _DaysBefore(FunctionElement[datetime]):
    """moment − n days (n a literal integer)."""

    type = DateTime()
    inherit_cache = True
    name = "days_before"


@compiles(_DaysBefore)
def _days_before_sqlite(element: _DaysBefore, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    return f"datetime({compiler.process(moment, **kw)}, '-' || {compiler.process(days, **kw)} || ' days')"


@compiles(_DaysBefore, "postgresql")
def _days_before_postgresql(element: _DaysBefore, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    return f"({compiler.process(moment, **kw)} - make_interval(days => {compiler.process(days, **kw)}))"


def days_before(moment: Any, days: int) -> _DaysBefore:
    return _DaysBefore(moment, literal_column(str(int(days))))


def _part(field: str, moment: Any) -> Any:
    return extract(field, _Utc(moment))


# --- filters ---------------------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter that cannot be applied (named in the message)."""


@dataclass(frozen=True)
class Filters:
    as_of: date  # the report's day: payments and closes up to its end, cases opened by then
    plan: str | None = None  # the case's pinned plan id
    product: str | None = None  # the contract's product
    opened_from: date | None = None  # cases opened on or after this day (UTC)
    opened_to: date | None = None  # … and on or before this day

    def __post_init__(self) -> None:
        if self.opened_from and self.opened_to and self.opened_from > self.opened_to:
            raise FilterError(f"period: from {self.opened_from} is after to {self.opened_to}")
        if self.opened_from and self.opened_from > self.as_of:
            raise FilterError(f"period: from {self.opened_from} is after the report date {self.as_of}")

    @property
    def end(self) -> datetime:
        """The first moment after the report day (UTC)."""
        return _start_of(self.as_of + timedelta(days=1))

    def as_dict(self) -> dict[str, str | None]:
        return {
            "as_of": self.as_of.isoformat(),
            "plan": self.plan,
            "product": self.product,
            "opened_from": self.opened_from.isoformat() if self.opened_from else None,
            "opened_to": self.opened_to.isoformat() if self.opened_to else None,
        }


def _q(session: Session, statement: Any) -> Any:
    """Run a Core statement in the session's transaction."""
    return session.connection().execute(statement)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _cases(statement: Any, f: Filters) -> Any:
    """Restrict a statement over `case_records` to the filtered cases."""
    opened = col(CaseRecord.opened_at)
    statement = statement.where(opened < f.end)
    if f.opened_from:
        statement = statement.where(opened >= _start_of(f.opened_from))
    if f.opened_to:
        statement = statement.where(opened < _start_of(f.opened_to + timedelta(days=1)))
    if f.plan:
        statement = statement.where(col(CaseRecord.plan_id) == f.plan)
    if f.product:
        statement = statement.join(Contract, col(Contract.id) == col(CaseRecord.contract_id)).where(
            col(Contract.product) == f.product
        )
    return statement


def ratio(part: int, whole: int) -> Decimal | None:
    if whole <= 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# --- the figures -----------------------------------------------------------------------------------


class Totals(BaseModel):
    cases: int
    open: int
    paid: int
    written_off: int
    cancelled: int
    claimed_cents: int  # claimed at opening, cases with a known claim


class CohortRow(BaseModel):
    cohort: str  # YYYY-MM, the month the cases opened (UTC)
    cases: int
    claimed_cents: int
    recovered_cents: list[int | None]  # after 1 … 12 months; None: not every case is that old yet
    rates: list[Decimal | None]


class StageRow(BaseModel):
    stage: str
    reached: int | None  # cases that reached the stage (None: the ledger has no fact for it)
    cured: int  # paid in full while this was the stage reached last
    rate: Decimal | None


class ChannelRow(BaseModel):
    channel: str
    cases_messaged: int  # cases with at least one dunning message on the channel
    cured_within: int  # paid in full within the window after a message on the channel
    rate: Decimal | None


class Kept(BaseModel):
    reactivated: int  # paid after the contract was suspended: cover restored
    paid_before_suspension: int  # paid while the contract was still active
    written_off: int  # contract kept active, arrears written off
    terminated: int  # the case ended with the contract terminated
    cancelled: int  # booked in error: neither kept nor lost
    kept: int  # reactivated + paid before suspension + written off (DOMAIN.md §12)
    acquisition_cost_cents: int
    sales_cost_saved_cents: int


class AgeingRow(BaseModel):
    bucket: str  # days past due
    premiums: int
    contracts: int
    open_cents: int


class CountRow(BaseModel):
    name: str
    cases: int


class AgentRow(BaseModel):
    agent_code: str
    tasks: int
    sla_kept: int  # first contact attempt by the task's contact deadline (24 h, DOMAIN.md §8)
    sla_missed: int  # first attempt late, or none and the deadline passed
    pending: int  # no attempt yet, deadline still ahead
    rate: Decimal | None  # kept ÷ (kept + missed)


class BankBucket(BaseModel):
    bucket: str  # days since the booking date
    lines: int
    amount_cents: int


class BankBacklog(BaseModel):
    lines: int
    amount_cents: int
    oldest_booking_date: date | None
    buckets: list[BankBucket]


class Report(BaseModel):
    filters: dict[str, str | None]
    totals: Totals
    recovery: list[CohortRow]
    cure_by_stage: list[StageRow]
    cure_window_days: int
    cure_by_channel: list[ChannelRow]
    kept: Kept
    ageing: list[AgeingRow]
    court_outcomes: list[CountRow]
    agent_sla: list[AgentRow]
    agent_outcomes: list[CountRow]
    bank_backlog: BankBacklog


def totals(session: Session, f: Filters) -> Totals:
    closed = or_(col(CaseRecord.closed_at).is_(None), col(CaseRecord.closed_at) >= f.end)
    statement = _cases(
        select(
            func.count(),
            func.sum(case((closed, 1), else_=0)),
            func.sum(case((and_(~closed, col(CaseRecord.outcome) == "paid"), 1), else_=0)),
            func.sum(case((and_(~closed, col(CaseRecord.outcome) == "write_off"), 1), else_=0)),
            func.sum(case((and_(~closed, col(CaseRecord.outcome) == "cancel"), 1), else_=0)),
            func.coalesce(func.sum(col(CaseRecord.claimed_cents)), 0),
        ).select_from(CaseRecord),
        f,
    )
    n, open_, paid, written_off, cancelled, claimed = _q(session, statement).one()
    return Totals(
        cases=int(n or 0),
        open=int(open_ or 0),
        paid=int(paid or 0),
        written_off=int(written_off or 0),
        cancelled=int(cancelled or 0),
        claimed_cents=int(claimed or 0),
    )


def _not_cancelled() -> Any:
    """A cancelled case was booked in error: its claim was never owed, so it is no recovery's base."""
    return or_(col(CaseRecord.outcome).is_(None), col(CaseRecord.outcome) != "cancel")


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def recovery_curve(session: Session, f: Filters) -> list[CohortRow]:
    """Per opening month: recovered ÷ claimed at opening after 1 … 12 months (DOMAIN.md §12).

    A case's recovery is what the contract's payments paid (amount minus the part kept as credit,
    returned debits excluded) from its opening until it closed, capped at what it claimed (a premium
    that joined later is paid too, but was not in the claim). "After k months" counts a payment
    whose whole months since opening (calendar months, then the day of the month) are fewer than k.
    A cohort's point k is shown once every case in it is k months old at the report date.
    """
    year, month = _part("year", col(CaseRecord.opened_at)), _part("month", col(CaseRecord.opened_at))
    claimed_rows = _q(
        session,
        _cases(
            select(year, month, func.count(), func.sum(col(CaseRecord.claimed_cents)))
            .select_from(CaseRecord)
            .where(col(CaseRecord.claimed_cents) > 0, _not_cancelled()),
            f,
        ).group_by(year, month),
    ).all()
    # Three steps, so each costly expression runs once per row: (1) per payment of a case, the whole
    # months elapsed since opening (materialized: a database that inlined it would take the dates
    # apart again for every one of the twelve sums); (2) per case, cumulative after 1 … 12 months;
    # (3) per cohort, the sums, each case capped at its claim. Measured: dev/bench/analytics.py.
    received, opened = col(Payment.received_at), col(CaseRecord.opened_at)
    elapsed = (
        (_part("year", received) - _part("year", opened)) * 12
        + (_part("month", received) - _part("month", opened))
        - case((_part("day", received) < _part("day", opened), 1), else_=0)
    ).label("e")
    by_payment = (
        _cases(
            select(
                col(CaseRecord.id).label("case_row"),
                opened.label("opened_at"),
                col(CaseRecord.claimed_cents).label("claimed"),
                elapsed,
                (col(Payment.amount_cents) - col(Payment.credit_cents)).label("amount"),
            )
            .select_from(CaseRecord)
            .join(
                Payment,
                and_(
                    col(Payment.contract_id) == col(CaseRecord.contract_id),
                    received >= opened,
                    received < f.end,
                    or_(col(CaseRecord.closed_at).is_(None), received <= col(CaseRecord.closed_at)),
                    col(Payment.returned).is_(False),
                ),
            )
            .where(col(CaseRecord.claimed_cents) > 0, _not_cancelled()),
            f,
        )
        .cte("by_payment")
        .prefix_with("MATERIALIZED")
    )
    cumulative = [
        func.sum(case((by_payment.c.e < k, by_payment.c.amount), else_=0)).label(f"r{k}") for k in range(1, MONTHS + 1)
    ]
    per_case = (
        select(by_payment.c.opened_at, by_payment.c.claimed, *cumulative)
        .where(by_payment.c.e < MONTHS)
        .group_by(by_payment.c.case_row, by_payment.c.opened_at, by_payment.c.claimed)
        .subquery()
    )
    y, m = _part("year", per_case.c.opened_at), _part("month", per_case.c.opened_at)
    capped = [
        func.sum(case((per_case.c[f"r{k}"] > per_case.c.claimed, per_case.c.claimed), else_=per_case.c[f"r{k}"]))
        for k in range(1, MONTHS + 1)
    ]
    recovered = {
        (int(row[0]), int(row[1])): [int(v or 0) for v in row[2:]]
        for row in _q(session, select(y, m, *capped).group_by(y, m)).all()
    }
    rows: list[CohortRow] = []
    for y, m, n, claimed in sorted((int(a), int(b), int(c), int(d or 0)) for a, b, c, d in claimed_rows):
        amounts = recovered.get((y, m), [0] * MONTHS)
        first_of_next = _add_months(date(y, m, 1), 1)
        shown: list[int | None] = [
            amounts[k - 1] if _add_months(first_of_next, k) <= f.as_of + timedelta(days=1) else None
            for k in range(1, MONTHS + 1)
        ]
        rows.append(
            CohortRow(
                cohort=f"{y:04d}-{m:02d}",
                cases=n,
                claimed_cents=claimed,
                recovered_cents=shown,
                rates=[ratio(v, claimed) if v is not None else None for v in shown],
            )
        )
    return rows


def _sent(message: type[Message] = Message) -> Any:
    return func.coalesce(col(message.sent_at), col(message.created_at))


def _messages_of_cases(f: Filters) -> Any:
    """Dunning messages of the filtered cases (not failed), by case."""
    return (
        col(Message.kind).in_(DUNNING_KINDS),
        col(Message.status) != "failed",
        _sent() < f.end,
    )


@dataclass(frozen=True)
class MessageFacts:
    """What the outbox says about the filtered cases, from one pass over their dunning messages."""

    kinds: dict[str, int]  # message kind → cases with at least one sent
    channels: dict[str, tuple[int, int]]  # channel → (cases messaged there, of those paid within the window)


def message_facts(session: Session, f: Filters, window_days: int) -> MessageFacts:
    """One pass: per case, which dunning kinds and channels it got and whether a message on a channel
    came within `window_days` before its clearing payment; then the sums. (Counting distinct cases per
    kind and per channel separately would read the outbox twice.)"""
    case_key, paid_at = col(CaseRecord.case_id), col(CaseRecord.paid_at)
    cured_by_it = and_(
        col(CaseRecord.outcome) == "paid",
        col(CaseRecord.closed_at) < f.end,
        _sent() <= paid_at,
        _sent() >= days_before(paid_at, window_days),
    )
    kind, channel = col(Message.kind), col(Message.channel)
    kinds, channels = list(KIND_STAGE), [c.value for c in Channel]
    flags = [func.max(case((kind == k, 1), else_=0)).label(f"k{n}") for n, k in enumerate(kinds)]
    flags += [func.max(case((channel == c, 1), else_=0)).label(f"c{n}") for n, c in enumerate(channels)]
    flags += [
        func.max(case((and_(channel == c, cured_by_it), 1), else_=0)).label(f"w{n}") for n, c in enumerate(channels)
    ]
    per_case = (
        _cases(
            select(*flags)
            .select_from(CaseRecord)
            .join(Message, col(Message.case_id) == case_key)
            .where(*_messages_of_cases(f)),
            f,
        )
        .group_by(case_key)
        .subquery()
    )
    sums = _q(session, select(*[func.coalesce(func.sum(c), 0) for c in per_case.c])).one()
    n_kinds, n_channels = len(kinds), len(channels)
    return MessageFacts(
        kinds={k: int(sums[n]) for n, k in enumerate(kinds)},
        channels={
            c: (int(sums[n_kinds + n]), int(sums[n_kinds + n_channels + n]))
            for n, c in enumerate(channels)
            if int(sums[n_kinds + n])
        },
    )


def cure_by_stage(
    session: Session, f: Filters, cases: int | None = None, facts: MessageFacts | None = None
) -> list[StageRow]:
    """Per stage: cases that reached it (the ledger fact that proves it) and cases paid in full while
    it was the stage reached last (the register's stage at close) — DOMAIN.md §12."""
    closed = and_(col(CaseRecord.outcome) == "paid", col(CaseRecord.closed_at) < f.end)
    cured = {
        str(stage): int(n)
        for stage, n in _q(
            session,
            _cases(
                select(col(CaseRecord.stage_at_close), func.count()).select_from(CaseRecord).where(closed), f
            ).group_by(col(CaseRecord.stage_at_close)),
        ).all()
    }
    reached: dict[str, int] = {CaseStage.OVERDUE.value: totals(session, f).cases if cases is None else cases}
    case_key = col(CaseRecord.case_id)
    facts = facts or message_facts(session, f, 7)
    for kind, n in facts.kinds.items():
        reached[KIND_STAGE[kind].value] = n
    reached[CaseStage.SUSPENDED.value] = reached[CaseStage.TERMINATED.value] = 0
    for to_status, n in _q(  # suspended and terminated in one pass over the status history
        session,
        _cases(
            select(col(ContractStatusChange.to_status), func.count(distinct(col(ContractStatusChange.case_id))))
            .select_from(CaseRecord)
            .join(ContractStatusChange, col(ContractStatusChange.case_id) == case_key)
            .where(
                col(ContractStatusChange.to_status).in_([ContractStatus.SUSPENDED, ContractStatus.TERMINATED]),
                col(ContractStatusChange.effective_at) < f.end,
            ),
            f,
        ).group_by(col(ContractStatusChange.to_status)),
    ).all():
        stage = CaseStage.SUSPENDED if ContractStatus(to_status) == ContractStatus.SUSPENDED else CaseStage.TERMINATED
        reached[stage.value] = int(n)
    reached[CaseStage.AGENCY.value] = int(
        _q(
            session,
            _cases(
                select(func.count(distinct(col(AgentTask.case_id))))
                .select_from(CaseRecord)
                .join(AgentTask, col(AgentTask.case_id) == case_key)
                .where(col(AgentTask.kind) == "handover", col(AgentTask.created_at) < f.end),
                f,
            ),
        ).scalar_one()
    )
    prepared, approved = _q(
        session,
        _cases(
            select(
                func.count(),
                func.sum(case((col(CourtApplication.approved_at) < f.end, 1), else_=0)),
            )
            .select_from(CaseRecord)
            .join(CourtApplication, col(CourtApplication.case_id) == case_key)
            .where(col(CourtApplication.prepared_at) < f.end),
            f,
        ),
    ).one()
    reached[CaseStage.COURT_APPROVAL.value] = int(prepared or 0)
    reached[CaseStage.COURT_FILED.value] = int(approved or 0)
    rows = []
    for stage in STAGE_ORDER:
        known = reached.get(stage.value) if stage != CaseStage.TERMINATION_APPROVAL else None
        if known is None and stage in KIND_STAGE.values():
            known = 0  # a message stage no case reached
        n = cured.get(stage.value, 0)
        rows.append(StageRow(stage=stage.value, reached=known, cured=n, rate=ratio(n, known) if known else None))
    return rows


def cure_by_channel(
    session: Session, f: Filters, window_days: int, facts: MessageFacts | None = None
) -> list[ChannelRow]:
    """Per channel: cases with a dunning message on it, and cases whose clearing payment came within
    `window_days` after such a message (DOMAIN.md §12: 7 days)."""
    facts = facts or message_facts(session, f, window_days)
    return [
        ChannelRow(channel=c, cases_messaged=n, cured_within=cured, rate=ratio(cured, n))
        for c, (n, cured) in sorted(facts.channels.items())
    ]


def kept_contracts(session: Session, f: Filters, acquisition_cost_cents: int) -> Kept:
    """Closed cases by how the contract came out (DOMAIN.md §12); kept ones save a new customer's
    acquisition cost."""
    counts = {"reactivated": 0, "paid_before_suspension": 0, "written_off": 0, "terminated": 0, "cancelled": 0}
    for outcome, status, suspended, n in _q(
        session,
        _cases(
            select(
                col(CaseRecord.outcome),
                col(CaseRecord.contract_status_at_close),
                col(CaseRecord.suspended),
                func.count(),
            )
            .select_from(CaseRecord)
            .where(col(CaseRecord.closed_at) < f.end),
            f,
        ).group_by(col(CaseRecord.outcome), col(CaseRecord.contract_status_at_close), col(CaseRecord.suspended)),
    ).all():
        if outcome == "cancel":
            key = "cancelled"
        elif status == ContractStatus.TERMINATED.value:
            key = "terminated"
        elif outcome == "write_off":
            key = "written_off"
        elif outcome == "paid":
            key = "reactivated" if suspended else "paid_before_suspension"
        else:
            continue
        counts[key] += int(n)
    kept = counts["reactivated"] + counts["paid_before_suspension"] + counts["written_off"]
    return Kept(
        **counts,
        kept=kept,
        acquisition_cost_cents=acquisition_cost_cents,
        sales_cost_saved_cents=kept * acquisition_cost_cents,
    )


def _bucket(day_column: Any, as_of: date, buckets: tuple[tuple[str, int, int | None], ...]) -> Any:
    """The bucket label of a date column by days before `as_of` (thresholds computed here, so the
    database compares dates only)."""
    whens = [(day_column >= as_of - timedelta(days=high), label) for label, _low, high in buckets if high is not None]
    return case(*whens, else_=buckets[-1][0])


def ageing(session: Session, f: Filters, default_plan: str) -> list[AgeingRow]:
    """Open premiums past due at `as_of` (not blocked), in buckets of days past due (DOMAIN.md §12)."""
    bucket = _bucket(col(Premium.due_date), f.as_of, AGEING_BUCKETS).label("bucket")
    statement = (
        select(
            bucket,
            func.count(),
            func.count(distinct(col(Premium.contract_id))),
            func.sum(col(Premium.amount_cents) - col(Premium.paid_cents)),
        )
        .select_from(Premium)
        .where(
            col(Premium.status) == PremiumStatus.OPEN,
            col(Premium.dunning_blocked).is_(False),
            col(Premium.due_date) < f.as_of,
        )
    )
    if f.plan or f.product:
        statement = statement.join(Contract, col(Contract.id) == col(Premium.contract_id))
        if f.plan:
            statement = statement.where(func.coalesce(col(Contract.dunning_plan), default_plan) == f.plan)
        if f.product:
            statement = statement.where(col(Contract.product) == f.product)
    found = {str(b): (int(n), int(c), int(s or 0)) for b, n, c, s in _q(session, statement.group_by(bucket)).all()}
    rows = []
    for label, _low, _high in AGEING_BUCKETS:
        premiums, contracts, cents = found.get(label, (0, 0, 0))
        rows.append(AgeingRow(bucket=label, premiums=premiums, contracts=contracts, open_cents=cents))
    return rows


def court_outcomes(session: Session, f: Filters) -> list[CountRow]:
    """Cases in court dunning by where they stand: the state after the court's last event, or the
    application's status while no event came yet."""
    case_key = col(CaseRecord.case_id)
    last = (
        select(col(CourtEvent.case_id).label("case_id"), func.max(col(CourtEvent.id)).label("last_id"))
        .where(col(CourtEvent.recorded_at) < f.end)
        .group_by(col(CourtEvent.case_id))
        .subquery()
    )
    counts: dict[str, int] = {}
    for state, n in _q(
        session,
        _cases(
            select(col(CourtEvent.state_after), func.count())
            .select_from(CaseRecord)
            .join(last, last.c.case_id == case_key)
            .join(CourtEvent, col(CourtEvent.id) == last.c.last_id),
            f,
        ).group_by(col(CourtEvent.state_after)),
    ).all():
        counts[str(state)] = int(n)
    for status, n in _q(
        session,
        _cases(
            select(col(CourtApplication.status), func.count())
            .select_from(CaseRecord)
            .join(CourtApplication, col(CourtApplication.case_id) == case_key)
            .outerjoin(last, last.c.case_id == case_key)
            .where(last.c.last_id.is_(None), col(CourtApplication.prepared_at) < f.end),
            f,
        ).group_by(col(CourtApplication.status)),
    ).all():
        name = f"application {status}"
        counts[name] = counts.get(name, 0) + int(n)
    return [CountRow(name=k, cases=v) for k, v in sorted(counts.items())]


def agent_sla(session: Session, f: Filters, now: datetime) -> tuple[list[AgentRow], list[CountRow]]:
    """Handover tasks per agent: first contact attempt by the contact deadline (DOMAIN.md §8: 24 h),
    and the outcomes agents recorded (the task's outcome; open tasks as "open")."""
    case_key = col(CaseRecord.case_id)
    first = (
        select(col(ContactAttempt.task_id).label("task_id"), func.min(col(ContactAttempt.at)).label("first_at"))
        .group_by(col(ContactAttempt.task_id))
        .subquery()
    )
    due = col(AgentTask.due_at)
    kept = case((and_(first.c.first_at.is_not(None), first.c.first_at <= due), 1), else_=0)
    missed = case((or_(first.c.first_at > due, and_(first.c.first_at.is_(None), due < now)), 1), else_=0)
    pending = case((and_(first.c.first_at.is_(None), due >= now), 1), else_=0)
    base = (
        select(col(AgentTask.agent_code), func.count(), func.sum(kept), func.sum(missed), func.sum(pending))
        .select_from(CaseRecord)
        .join(AgentTask, col(AgentTask.case_id) == case_key)
        .outerjoin(first, first.c.task_id == col(AgentTask.id))
        .where(col(AgentTask.kind) == "handover", col(AgentTask.created_at) < f.end)
    )
    rows = [
        AgentRow(
            agent_code=str(code),
            tasks=int(n),
            sla_kept=int(k or 0),
            sla_missed=int(m or 0),
            pending=int(p or 0),
            rate=ratio(int(k or 0), int(k or 0) + int(m or 0)),
        )
        for code, n, k, m, p in _q(session, _cases(base, f).group_by(col(AgentTask.agent_code))).all()
    ]
    outcome = func.coalesce(col(AgentTask.outcome), "open")
    outcomes = [
        CountRow(name=str(name), cases=int(n))
        for name, n in _q(
            session,
            _cases(
                select(outcome, func.count())
                .select_from(CaseRecord)
                .join(AgentTask, col(AgentTask.case_id) == case_key)
                .where(col(AgentTask.kind) == "handover", col(AgentTask.created_at) < f.end),
                f,
            ).group_by(outcome),
        ).all()
    ]
    return sorted(rows, key=lambda r: r.agent_code), sorted(outcomes, key=lambda r: r.name)


def bank_backlog(session: Session, as_of: date) -> BankBacklog:
    """Credits waiting in the manual queue (finance's backlog), by days since their booking date."""
    bucket = _bucket(col(StatementLine.booking_date), as_of, BANK_BUCKETS).label("bucket")
    base = (
        select(
            bucket, func.count(), func.sum(col(StatementLine.amount_cents)), func.min(col(StatementLine.booking_date))
        )
        .select_from(StatementLine)
        .where(col(StatementLine.status) == LineStatus.QUEUED)
        .group_by(bucket)
    )
    # A line without a booking date falls in the oldest bucket (camt.053 gives one for every entry).
    found = {str(b): (int(n), int(s or 0), o) for b, n, s, o in _q(session, base).all()}
    oldest = [o for _n, _s, o in found.values() if o is not None]
    return BankBacklog(
        lines=sum(n for n, _s, _o in found.values()),
        amount_cents=sum(s for _n, s, _o in found.values()),
        oldest_booking_date=min(oldest) if oldest else None,
        buckets=[
            BankBucket(
                bucket=label,
                lines=found[label][0] if label in found else 0,
                amount_cents=found[label][1] if label in found else 0,
            )
            for label, _low, _high in BANK_BUCKETS
        ],
    )


def report(
    session: Session,
    f: Filters,
    *,
    acquisition_cost_cents: int,
    default_plan: str,
    cure_window_days: int = 7,
    now: datetime | None = None,
) -> Report:
    """Every figure of the analytics page for the filters."""
    moment = now or min(datetime.now(UTC), f.end)
    sla, outcomes = agent_sla(session, f, moment)
    counted = totals(session, f)
    facts = message_facts(session, f, cure_window_days)
    return Report(
        filters=f.as_dict(),
        totals=counted,
        recovery=recovery_curve(session, f),
        cure_by_stage=cure_by_stage(session, f, counted.cases, facts),
        cure_window_days=cure_window_days,
        cure_by_channel=cure_by_channel(session, f, cure_window_days, facts),
        kept=kept_contracts(session, f, acquisition_cost_cents),
        ageing=ageing(session, f, default_plan),
        court_outcomes=court_outcomes(session, f),
        agent_sla=sla,
        agent_outcomes=outcomes,
        bank_backlog=bank_backlog(session, f.as_of),
    )
