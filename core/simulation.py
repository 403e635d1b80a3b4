"""What-if simulation of dunning plans (issue #16): the recorded history of a slice of the
portfolio, replayed offline through a plan with the decision code the workflow uses.

Pure: no I/O, no clock, no Temporal. `ledger/simulation_input.py` reads the slice into the plain
data below (`ContractHistory`); this module replays it and reports.

Same decision code: every case is driven by `core.case.decider.decide` exactly as
`workflows/dunning.py` drives it — the same events (`Turn`, `Done`, `PremiumJoined`,
`PaymentReceived`, staff actions after `refusal`), the same depth-first performing of commands,
`WithLock` fed back as `Done`. Only the performers differ: activities act on `SimLedger` (an
in-memory ledger with the real ledger's rules: allocation by `core.allocation`, idempotent keys,
notice deadlines by `core.calendar`, a demand for nothing skipped), timers move a simulated clock,
child workflows (agency handover, court dunning) are recorded, not run.

What is replayed (`ContractHistory`): premiums falling due (the morning sweep joins each one the
day after its due date, at `SWEEP_HOUR` local time), payments on their recorded dates (allocated
by the simulated ledger, so a different plan's fees change what a payment clears), returned
debits, staff holds / promises / resumes / disputes. What is not: the children's own work (agent
calls, court events), staff decisions (termination and court approvals are counted as proposals),
portal arrangements, interest claims — docs/simulation.md.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.allocation import Debt, allocate
from core.calendar import expected_receipt, local_date, notice_deadline, termination_cure_deadline
from core.case import commands as c
from core.case import events as e
from core.case.decider import ALL_CHANGES, Case, Decision, Versions, decide, open_case
from core.case.decider import _Rules as DeciderRules  # the rules `decide` applies, see decide_owned
from core.case.refusals import refusal
from core.schedule import SUPPLEMENT
from core.steps import StepKind
from core.timezone import BUSINESS_TIMEZONE
from models.activities import CaseClosed, CourtApplicationPrepared, SendMessage, SentMessage
from models.case import (
    Arrears,
    Cancel,
    CaseInput,
    CaseStage,
    Dispute,
    DunningStopped,
    HoldRequest,
    OpenItem,
    PaymentBooked,
    PremiumOverdue,
    PromiseToPay,
    Resume,
    WriteOff,
)
from models.ledger import ContractStatus
from models.messages import DEMANDING_KINDS, Channel, MessageKind
from models.plan import DunningPlan

SWEEP_HOUR = time(6)  # the daily LedgerSweep Schedule: 06:00 Berlin (infra/runtime.py)
MAX_DECISIONS_PER_CASE = 20_000  # a plan that loops without progress is a defect, not a hang
LOCKED_ACTIONS = ("write-off", "cancel")  # staff actions whose commands the workflow performs at once


class SimulationError(ValueError):
    """Bad input to the simulation (the page and the CLI show the message; nothing changes)."""


# --- input: one contract's recorded history (plain data) -------------------------------------------


@dataclass(frozen=True)
class SimPremium:
    premium_id: str
    due_date: date
    amount_cents: int
    period: str = ""


@dataclass(frozen=True)
class SimPayment:
    ref: str
    amount_cents: int
    received_at: datetime
    designated_premium: str | None = None
    returned_at: datetime | None = None  # a returned debit: what it paid is open again from then
    return_code: str = ""
    return_stops_dunning: bool = False  # the reason code stops the contract (MD07): a person decides


@dataclass(frozen=True)
class SimStaffAction:
    """A staff action on the case as the audit trail recorded it (hold, promise, resume, dispute,
    write-off, cancel)."""

    at: datetime
    kind: str  # hold | promise | resume | dispute | write-off | cancel
    until: date | None = None  # hold: until; promise: pay by
    amount_cents: int | None = None  # promise
    reason: str = ""
    by: str = "staff"


@dataclass(frozen=True)
class ContractHistory:
    contract_number: str
    premiums: tuple[SimPremium, ...]
    payments: tuple[SimPayment, ...] = ()
    actions: tuple[SimStaffAction, ...] = ()
    has_email: bool = True
    has_phone: bool = True
    subdivision: str | None = None  # the customer's state (holidays in the notice deadline)
    agent_code: str | None = None
    product: str = ""
    plan_id: str = ""  # the plan the ledger says the contract is dunned on (for the slice)
    # When the ledger's cases started (from their case ids): billing's premium_due event may start a
    # case at another moment than the morning sweep. Each start duns what is overdue then.
    case_starts: tuple[datetime, ...] = ()


# --- output: what a plan did to one contract ----------------------------------------------------------


@dataclass(frozen=True)
class SimMessage:
    case_id: str
    key: str  # the ledger's idempotency key: <case id>:<step>:<channel>
    kind: MessageKind
    channel: Channel
    at: datetime
    total_cents: int
    fee_cents: int = 0


@dataclass(frozen=True)
class SimStatusChange:
    case_id: str
    key: str
    to_status: ContractStatus
    effective_at: datetime


@dataclass
class SimCase:
    case_id: str
    opened_at: datetime
    stage: CaseStage = CaseStage.OVERDUE
    closed_at: datetime | None = None
    closed_reason: str = ""
    handover: bool = False
    court_prepared: bool = False
    termination_proposed: bool = False
    refused: list[str] = field(default_factory=list)  # recorded staff actions the case refused
    steps: tuple[StepKind, ...] = ()  # the plan steps it ran, in order (supplementary notices left out)


@dataclass
class ContractOutcome:
    contract_number: str
    plan_id: str
    cases: list[SimCase] = field(default_factory=list)
    messages: list[SimMessage] = field(default_factory=list)
    status_changes: list[SimStatusChange] = field(default_factory=list)
    fees_cents: int = 0
    fees_paid_cents: int = 0
    paid_cents: int = 0  # payments allocated to premiums and fees (not credit)
    open_cents_at_end: int = 0
    suspended_days: float = 0.0
    decisions: int = 0

    @property
    def court_cases(self) -> int:
        return sum(1 for case in self.cases if case.court_prepared)

    @property
    def termination_proposals(self) -> int:
        return sum(1 for case in self.cases if case.termination_proposed)

    @property
    def handovers(self) -> int:
        return sum(1 for case in self.cases if case.handover)

    def messages_by(self) -> Counter[tuple[str, str]]:
        return Counter((m.kind.value, m.channel.value) for m in self.messages)


# --- the simulated ledger ------------------------------------------------------------------------


@dataclass
class _Premium:
    row: int
    premium_id: str
    due_date: date
    amount_cents: int
    period: str
    paid_cents: int = 0
    written_off: bool = False
    blocked: bool = False

    @property
    def open(self) -> bool:
        return not self.written_off and self.paid_cents < self.amount_cents


@dataclass
class _Fee:
    row: int
    key: str
    amount_cents: int
    premium_row: int | None
    paid_cents: int = 0
    written_off: bool = False


@dataclass
class _Payment:
    ref: str
    amount_cents: int
    received_at: datetime
    designated: str | None
    credit_cents: int = 0
    shares: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, row, cents)
    returned: bool = False


def ledger_date(moment: datetime) -> date:
    """The ledger's "as of" date for a moment (ledger/service.ledger_date: Berlin)."""
    return local_date(moment, BUSINESS_TIMEZONE)


class SimLedger:
    """One contract's ledger in memory, with the rules of ledger/service.py the case relies on."""

    def __init__(self, history: ContractHistory) -> None:
        self.history = history
        self.premiums: dict[str, _Premium] = {}
        self.fees: list[_Fee] = []
        self.fee_keys: dict[str, _Fee] = {}
        self.payments: dict[str, _Payment] = {}
        self.credit_cents = 0
        self.status = ContractStatus.ACTIVE
        self.status_keys: set[str] = set()
        self.last_effective: datetime | None = None
        self.stopped = False
        self.message_keys: dict[str, int] = {}
        self.outcome_messages: list[SimMessage] = []
        self.outcome_status: list[SimStatusChange] = []
        self.court_applications = 0
        # Every change in order, for a caller that writes the same history into a real ledger
        # (dev/demo_history.py): ("premium", SimPremium) · ("payment", SimPayment) ·
        # ("return", ref, at) · ("fee", key, case_id, cents, at) · ("message", SimMessage, SendMessage) ·
        # ("status", ChangeContractStatus-like tuple) · ("court", case_id, at) · ("close", action, as_of) ·
        # ("read", LoadArrears) (a case's reads: the first opens its register row) · ("closed", CloseCase).
        self.log: list[tuple[object, ...]] | None = None

    # --- reading --------------------------------------------------------------------------

    def _dunned(self, as_of: date) -> list[_Premium]:
        found = [p for p in self.premiums.values() if p.open and not p.blocked and p.due_date <= as_of]
        return sorted(found, key=lambda p: (p.due_date, p.row))

    def _open_fees(self) -> list[_Fee]:
        blocked = {p.row for p in self.premiums.values() if p.blocked}
        return [
            f
            for f in self.fees
            if not f.written_off and f.paid_cents < f.amount_cents and f.premium_row not in blocked
        ]

    def arrears(self, as_of: date) -> Arrears:
        # model_construct: the values are the ledger's own, already valid (validation is a third of a read)
        items = [
            OpenItem.model_construct(
                premium_id=p.premium_id, period=p.period, due_date=p.due_date, open_cents=p.amount_cents - p.paid_cents
            )
            for p in self._dunned(as_of)
        ]
        fees = sum(f.amount_cents - f.paid_cents for f in self._open_fees())
        return Arrears.model_construct(
            contract_number=self.history.contract_number,
            items=items,
            fees_open_cents=fees,
            balance_cents=sum(i.open_cents for i in items) + fees,
            credit_cents=self.credit_cents,
            contract_status=self.status,
            agent_code=self.history.agent_code,
            has_email=self.history.has_email,
            has_phone=self.history.has_phone,
            dunning_stopped=self.stopped,
        )

    def balance(self, as_of: date) -> int:
        return sum(p.amount_cents - p.paid_cents for p in self._dunned(as_of)) + sum(
            f.amount_cents - f.paid_cents for f in self._open_fees()
        )

    def _debts(self, as_of: date, designated: str | None = None) -> list[Debt]:
        dunned = self._dunned(as_of)
        oldest = dunned[0] if dunned else None
        by_row = {p.row: p for p in dunned}
        if designated is not None:
            named = self.premiums.get(designated)
            if named is not None and named.open and named.due_date <= as_of:
                by_row[named.row] = named
        debts: list[Debt] = []
        for fee in self._open_fees():
            owner = by_row.get(fee.premium_row) if fee.premium_row is not None else None
            owner = owner or oldest
            debts.append(
                Debt(
                    "fee",
                    fee.row,
                    owner.premium_id if owner else "",
                    owner.due_date if owner else date.min,
                    fee.amount_cents - fee.paid_cents,
                )
            )
        for p in by_row.values():
            debts.append(Debt("premium", p.row, p.premium_id, p.due_date, p.amount_cents - p.paid_cents))
        return debts

    # --- money in and out -------------------------------------------------------------------

    def book_premium(self, premium: SimPremium) -> None:
        if premium.premium_id in self.premiums:
            return
        if self.log is not None:
            self.log.append(("premium", premium))
        row = len(self.premiums) + 1
        self.premiums[premium.premium_id] = _Premium(
            row, premium.premium_id, premium.due_date, premium.amount_cents, premium.period
        )
        if self.credit_cents > 0:
            self.apply_credit(premium.due_date)

    def _write(self, payment: _Payment, shares: list[tuple[str, int, int]]) -> None:
        premiums = {p.row: p for p in self.premiums.values()}
        for kind, row, cents in shares:
            if kind == "premium":
                premiums[row].paid_cents += cents
            else:
                self.fees[row - 1].paid_cents += cents
            payment.shares.append((kind, row, cents))

    def book_payment(self, payment: SimPayment) -> bool:
        if payment.ref in self.payments:
            return False
        if self.log is not None:
            self.log.append(("payment", payment))
        as_of = ledger_date(payment.received_at)
        named = payment.designated_premium
        result = allocate(payment.amount_cents, self._debts(as_of, named), named)
        booked = _Payment(payment.ref, payment.amount_cents, payment.received_at, payment.designated_premium)
        booked.credit_cents = result.credit_cents
        self._write(booked, [(s.debt.kind, s.debt.id, s.cents) for s in result.shares])
        self.payments[payment.ref] = booked
        self.credit_cents += result.credit_cents
        return True

    def apply_credit(self, as_of: date) -> None:
        carriers = sorted(
            (p for p in self.payments.values() if not p.returned and p.credit_cents > 0),
            key=lambda p: p.received_at,
        )
        for payment in carriers:
            debts = self._debts(as_of)
            if not any(d.open_cents > 0 for d in debts):
                break
            result = allocate(payment.credit_cents, debts)
            self._write(payment, [(s.debt.kind, s.debt.id, s.cents) for s in result.shares])
            payment.credit_cents -= result.allocated_cents
            self.credit_cents -= result.allocated_cents

    def reverse_payment(self, ref: str, at: datetime) -> list[str]:
        """A returned debit: what it paid is open again; credit from other payments pays first."""
        payment = self.payments.get(ref)
        if payment is None or payment.returned:
            return []
        if self.log is not None:
            self.log.append(("return", ref, at))
        premiums = {p.row: p for p in self.premiums.values()}
        reopened: list[str] = []
        for kind, row, cents in payment.shares:
            if kind == "premium":
                premiums[row].paid_cents -= cents
                reopened.append(premiums[row].premium_id)
            else:
                self.fees[row - 1].paid_cents -= cents
        self.credit_cents -= payment.credit_cents
        payment.returned = True
        self.apply_credit(ledger_date(at))
        return [pid for pid in reopened if self.premiums[pid].open]

    def book_fee(self, key: str, case_id: str, cents: int, at: datetime) -> None:
        if key in self.fee_keys:
            return
        if self.log is not None:
            self.log.append(("fee", key, case_id, cents, at))
        oldest = next(iter(self._dunned(ledger_date(at))), None)
        fee = _Fee(len(self.fees) + 1, key, cents, oldest.row if oldest else None)
        self.fees.append(fee)
        self.fee_keys[key] = fee

    # --- what the activities do ---------------------------------------------------------------

    def send(self, request: SendMessage) -> SentMessage:
        """Outbox.send_message without rendering: channel, fee, total, deadline, the stored rows."""
        h = self.history
        usable = {Channel.EMAIL: h.has_email, Channel.SMS: h.has_phone, Channel.LETTER: True}
        channel = next((ch for ch in request.channels if usable[ch]), Channel.LETTER)
        copies = [ch for ch in request.copies if ch != channel and usable[ch]]
        if request.kind in DEMANDING_KINDS and self.balance(request.as_of) <= 0:
            return SentMessage(channel=channel, total_cents=0, skipped=True)
        fee_cents = request.fees_cents.get(channel, 0)
        if fee_cents:
            self.book_fee(f"{request.key}:fee", request.case_id, fee_cents, request.now)
        total = self.balance(request.as_of)
        deadline_date, deadline, receipt = None, None, None
        if request.kind == MessageKind.TERMINATION_LETTER and request.notice_plan is not None:
            plan = request.notice_plan
            receipt = expected_receipt(plan, request.now, channel, h.subdivision)
            deadline_date, deadline = termination_cure_deadline(plan, request.now, channel, h.subdivision)
        elif request.notice_plan is not None:
            deadline_date, deadline = notice_deadline(request.notice_plan, request.now, channel, h.subdivision)
        ids: list[int] = []
        for ch in [channel, *copies]:
            key = f"{request.key}:{ch}"
            if key not in self.message_keys:
                self.message_keys[key] = len(self.message_keys) + 1
                fee = fee_cents if ch == channel else 0
                message = SimMessage(request.case_id, key, request.kind, ch, request.now, total, fee)
                self.outcome_messages.append(message)
                if self.log is not None:
                    self.log.append(("message", message, request))
            ids.append(self.message_keys[key])
        return SentMessage(
            channel=channel,
            copies=copies,
            message_ids=ids,
            total_cents=total,
            fee_cents=fee_cents,
            deadline_date=deadline_date,
            deadline=deadline,
            expected_receipt=receipt,
        )

    def change_status(
        self, to: ContractStatus, key: str, case_id: str, at: datetime, recorded: datetime, only_with_arrears: bool
    ) -> bool:
        if key in self.status_keys or self.status == to:
            return False
        if only_with_arrears and self.balance(ledger_date(recorded)) <= 0:
            return False
        effective = at if self.last_effective is None else max(at, self.last_effective)
        if self.log is not None:
            self.log.append(("status", to, key, case_id, at, recorded, only_with_arrears))
        self.status_keys.add(key)
        self.status, self.last_effective = to, effective
        self.outcome_status.append(SimStatusChange(case_id, key, to, effective))
        return True

    def close(self, action: str, as_of: date) -> CaseClosed:
        if self.log is not None:
            self.log.append(("close", action, as_of))
        closed = CaseClosed()
        if action == "write_off":
            for p in self._dunned(as_of):
                closed.written_off_cents += p.amount_cents - p.paid_cents
                p.written_off = True
            for f in self._open_fees():
                closed.written_off_cents += f.amount_cents - f.paid_cents
                f.written_off = True
        elif action == "cancel":
            for p in self._dunned(as_of):
                p.blocked = True
                closed.blocked_premiums.append(p.premium_id)
        return closed


def decide_owned(case: Case, event: e.Event, now: datetime, versions: Versions = ALL_CHANGES) -> Decision:
    """`decide` for a caller that owns `case` and never reads the old one again (this simulation):
    the same rules (`decide`'s own `_Rules`) applied to `case` itself, without the defensive deep
    copy, which is most of a decision's cost (the pinned plan and the journal). The returned case is
    `case`, changed. tests/test_simulation.py checks that both give the same outcomes."""
    rules = DeciderRules(case, now, versions)
    rules.handle(event)
    return Decision(rules.case, rules.out)


# --- the contract's timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Happening:
    at: datetime
    order: int  # ties: premiums fall due, then money moves, then people act
    kind: str  # due | start | premium | pay | return | staff
    premium: SimPremium | None = None
    payment: SimPayment | None = None
    action: SimStaffAction | None = None


@lru_cache(maxsize=4096)
def sweep_moment(due: date, tz: str = BUSINESS_TIMEZONE) -> datetime:
    """When the morning sweep first finds a premium overdue: 06:00 local the day after it fell due."""
    return datetime.combine(due + timedelta(days=1), SWEEP_HOUR, tzinfo=ZoneInfo(tz)).astimezone(UTC)


@lru_cache(maxsize=4096)
def booking_moment(due: date) -> datetime:
    """When billing books a premium, by convention: 14 days before it falls due (the ledger does not
    record when; a payment made before the premium is booked waits as credit, as in the ledger)."""
    return datetime.combine(due - timedelta(days=14), time.min, tzinfo=ZoneInfo(BUSINESS_TIMEZONE)).astimezone(UTC)


def _timeline(history: ContractHistory, start: datetime) -> list[_Happening]:
    out: list[_Happening] = []
    for p in history.premiums:
        out.append(_Happening(booking_moment(p.due_date), 0, "premium", premium=p))
        out.append(_Happening(sweep_moment(p.due_date), 1, "due", premium=p))
    for moment in history.case_starts:
        # A case id carries its start to the second: what happened within that second (a payment
        # booked just before the case started) came first.
        out.append(_Happening(moment.replace(microsecond=999_999), 1, "start"))
    for pay in history.payments:
        out.append(_Happening(pay.received_at, 2, "pay", payment=pay))
        if pay.returned_at is not None:
            out.append(_Happening(pay.returned_at, 3, "return", payment=pay))
    for action in history.actions:
        out.append(_Happening(action.at, 4, "staff", action=action))
    out.sort(key=lambda h: (h.at, h.order))
    return out


class _Quiet(Exception):
    """The case waits for a person or the period ended: nothing more happens in the simulation."""


class ContractRun:
    """One contract over the period: the ledger's events in order, a case whenever one is due, each
    case driven by the decider exactly as workflows/dunning.py drives it."""

    def __init__(
        self,
        history: ContractHistory,
        plan: DunningPlan,
        start: datetime,
        end: datetime,
        *,
        copy: bool = False,
        log: bool = False,
    ) -> None:
        self.history, self.plan, self.start, self.end = history, plan, start, end
        self.decide = decide if copy else decide_owned  # the same rules; `decide` copies the case first
        self.ledger = SimLedger(history)
        if log:
            self.ledger.log = []
        self.happenings = deque(_timeline(history, start))
        self.now = (self.happenings[0].at if self.happenings else start).astimezone(UTC)
        self.case: Case | None = None
        self.sim_case: SimCase | None = None
        self.outcome = ContractOutcome(history.contract_number, plan.id)

    # --- the world ------------------------------------------------------------------------------

    def run(self) -> ContractOutcome:
        while self.happenings and self.happenings[0].at < self.end:
            happening = self.happenings.popleft()
            self.now = max(self.now, happening.at.astimezone(UTC))
            case, changes = self.case, self.case.changes if self.case is not None else 0
            self.happen(happening)
            # A quiet case (waiting for a person, or past the period) wakes only when something
            # changed for it, as the workflow's wait_condition does; a new case starts its loop.
            woken = self.case is not case or (self.case is not None and self.case.changes != changes)
            if self.case is not None and not self.case.closed and woken:
                self.drive()
        self.finish()
        return self.outcome

    def happen(self, h: _Happening) -> None:
        ledger = self.ledger
        if h.kind == "premium" and h.premium is not None:
            ledger.book_premium(h.premium)
        elif h.kind == "due" and h.premium is not None:
            premium = ledger.premiums.get(h.premium.premium_id)
            if premium is not None and premium.open and not premium.blocked and not ledger.stopped:
                self.dun(PremiumOverdue(premium_id=h.premium.premium_id))
        elif h.kind == "pay" and h.payment is not None:
            if ledger.book_payment(h.payment):
                self.signal(
                    e.PaymentReceived(
                        PaymentBooked(
                            payment_ref=h.payment.ref,
                            amount_cents=h.payment.amount_cents,
                            received_at=h.payment.received_at,
                        )
                    )
                )
        elif h.kind == "return" and h.payment is not None:
            reopened = ledger.reverse_payment(h.payment.ref, h.at)
            if h.payment.return_stops_dunning:
                if not ledger.stopped:
                    ledger.stopped = True
                    for p in ledger.premiums.values():
                        if p.open and p.due_date <= ledger_date(h.at):
                            p.blocked = True
                    stop = DunningStopped(code=h.payment.return_code, reason="direct debit returned")
                    self.signal(e.LedgerStoppedDunning(stop))
            else:
                why = f"direct debit returned ({h.payment.return_code})"
                for premium_id in reopened:
                    self.dun(PremiumOverdue(premium_id=premium_id, reason=why))
        elif h.kind == "start":
            # A recorded case start (billing's premium_due, a person): what is open and due by then.
            due = sorted(
                (p for p in ledger.premiums.values() if p.open and not p.blocked and p.due_date <= ledger_date(h.at)),
                key=lambda p: (p.due_date, p.row),
            )
            if due and not ledger.stopped:
                self.dun(*(PremiumOverdue(premium_id=p.premium_id) for p in due))
        elif h.kind == "staff" and h.action is not None:
            self.staff(h.action)

    def dun(self, *premiums: PremiumOverdue) -> None:
        """start_or_join_case: the running case gets the premiums, or a new case starts with them."""
        if self.case is not None and not self.case.closed:
            for premium in premiums:
                self.signal(e.PremiumJoined(premium))
            return
        if self.case is not None and self.sim_case is not None:
            self._close_case_record(self.case, self.sim_case)
        workflow_id = f"dunning-{self.history.contract_number}"
        self.case = open_case(
            CaseInput(contract_number=self.history.contract_number, plan=self.plan, premiums=list(premiums)),
            workflow_id,
            self.now,
        )
        self.sim_case = SimCase(self.case.state.case_id, self.now)
        self.outcome.cases.append(self.sim_case)

    def signal(self, event: e.Event) -> None:
        """A signal to the running case (no case: nothing to tell, as `_signal_running_case`)."""
        if self.case is None or self.case.closed:
            return
        self.feed(event)  # a signal's decision only publishes (workflows/dunning.py `_apply`)

    def staff(self, action: SimStaffAction) -> None:
        if self.case is None or self.case.closed:
            return
        event: e.StaffAction
        if action.kind == "hold" and action.until is not None:
            event = e.HoldRequested(HoldRequest(until=action.until, reason=action.reason or "hold", by=action.by))
        elif action.kind == "promise" and action.until is not None:
            event = e.Promised(
                PromiseToPay(pay_by=action.until, amount_cents=action.amount_cents, note=action.reason, by=action.by)
            )
        elif action.kind == "resume":
            event = e.Resumed(Resume(reason=action.reason, by=action.by))
        elif action.kind == "dispute":
            event = e.Disputed(Dispute(reason=action.reason or "dispute", by=action.by))
        elif action.kind == "write-off":
            event = e.WriteOffRequested(WriteOff(reason=action.reason or "written off", by=action.by))
        elif action.kind == "cancel":
            event = e.CancelRequested(Cancel(reason=action.reason or "cancelled", by=action.by))
        else:
            return
        problem = refusal(self.case, event, self.now)
        if problem is not None:
            assert self.sim_case is not None
            self.sim_case.refused.append(f"{action.kind} at {action.at:%Y-%m-%d}: {problem}")
            return
        if action.kind in LOCKED_ACTIONS:  # touches the ledger: performed under the case's lock (`_act`)
            self.perform_all(self.feed(event))
            return
        self.feed(event)

    # --- the workflow's part (workflows/dunning.py, with a simulated clock) -----------------------

    def drive(self) -> None:
        try:
            while self.case is not None and not self.case.closed:
                self.perform_all(self.feed(e.Turn()))
        except _Quiet:
            pass

    def feed(self, event: e.Event) -> list[c.Command]:
        assert self.case is not None
        self.outcome.decisions += 1
        if self.outcome.decisions > MAX_DECISIONS_PER_CASE * max(1, len(self.outcome.cases)):
            raise SimulationError(f"contract {self.history.contract_number}: the case makes no progress")
        decision = self.decide(self.case, event, self.now, ALL_CHANGES)
        self.case = decision.case
        return decision.commands

    def perform_all(self, commands: list[c.Command]) -> None:
        for command in commands:
            if isinstance(command, c.WithLock):
                self.perform_all(self.feed(e.Done(command)))
                continue
            result = self.perform(command)
            self.perform_all(self.feed(e.Done(command, result)))

    def perform(self, command: c.Command) -> object:
        assert self.case is not None and self.sim_case is not None
        ledger, now = self.ledger, self.now
        match command:
            case c.ReadArrears(request=request):
                if ledger.log is not None:
                    ledger.log.append(("read", request))
                return ledger.arrears(request.as_of)
            case c.Send(request=request):
                return ledger.send(request)
            case c.ChangeStatus(request=request):
                return ledger.change_status(
                    request.to_status,
                    request.key,
                    request.case_id,
                    request.effective_at or request.at,
                    request.at,
                    request.only_with_arrears,
                )
            case c.PrepareCourt(request=request):
                if ledger.log is not None:
                    ledger.log.append(("court", request.case_id, request.now, ledger.balance(ledger_date(now))))
                ledger.court_applications += 1
                self.sim_case.court_prepared = True
                return CourtApplicationPrepared(
                    application_id=ledger.court_applications, claimed_cents=ledger.balance(ledger_date(now))
                )
            case c.StartHandover():
                self.sim_case.handover = True
                return None
            case c.SignalCourt():
                return True
            case c.CloseInLedger(request=request):
                closed = ledger.close(request.action, request.as_of)
                if ledger.log is not None:
                    ledger.log.append(("closed", request))
                return closed
            case c.Sleep(until=until):
                return self.sleep(until)
            case c.ApproveFiling() | c.RecordStaffPayment() | c.OpenRequest():
                raise SimulationError(f"{type(command).__name__} is a person's action: not simulated")
            case _:
                return None  # children started or ended, publishing, checkpoints, continue

    def sleep(self, until: datetime | None) -> bool:
        """The timer or the next event from outside, whichever comes first (events at the very
        moment the timer fires come after it)."""
        assert self.case is not None
        if until is not None and until <= self.now:
            return True
        seen = self.case.changes
        while self.happenings:
            nxt = self.happenings[0]
            if nxt.at >= self.end or (until is not None and nxt.at >= until):
                break
            self.happenings.popleft()
            self.now = max(self.now, nxt.at.astimezone(UTC))
            self.happen(nxt)
            if self.case is None or self.case.changes != seen:
                return False
        if until is None or until >= self.end:
            raise _Quiet  # waits for a person, or beyond the period
        self.now = until.astimezone(UTC)  # the workflow's clock is UTC (workflow.now())
        return True

    def finish(self) -> None:
        out, ledger = self.outcome, self.ledger
        if self.case is not None and self.sim_case is not None:
            self._close_case_record(self.case, self.sim_case)
        out.messages = ledger.outcome_messages
        out.status_changes = ledger.outcome_status
        out.fees_cents = sum(f.amount_cents for f in ledger.fees)
        out.fees_paid_cents = sum(f.paid_cents for f in ledger.fees)
        out.paid_cents = sum(
            cents for p in ledger.payments.values() if not p.returned for _, _, cents in p.shares
        )
        out.open_cents_at_end = ledger.balance(ledger_date(self.end))
        out.suspended_days = suspended_days(out.status_changes, self.start, self.end)

    def _close_case_record(self, case: Case, sim_case: SimCase) -> None:
        sim_case.stage = case.state.stage
        sim_case.closed_at, sim_case.closed_reason = case.state.closed_at, case.state.closed_reason
        sim_case.steps = tuple(r.kind for r in case.state.steps_done if not is_supplement_key(r.key))
        kinds = set(sim_case.steps)
        sim_case.termination_proposed = StepKind.TERMINATION in kinds
        sim_case.handover = sim_case.handover or StepKind.AGENCY_HANDOVER in kinds


def is_supplement_key(key: str) -> bool:
    return SUPPLEMENT in key


def suspended_days(changes: list[SimStatusChange], start: datetime, end: datetime) -> float:
    """Days without cover (suspended) inside [start, end), from the status changes."""
    total = timedelta(0)
    since: datetime | None = None
    for change in sorted(changes, key=lambda ch: ch.effective_at):
        if change.to_status == ContractStatus.SUSPENDED and since is None:
            since = change.effective_at
        elif change.to_status != ContractStatus.SUSPENDED and since is not None:
            total += max(timedelta(0), min(change.effective_at, end) - max(since, start))
            since = None
    if since is not None:
        total += max(timedelta(0), end - max(since, start))
    return round(total.total_seconds() / 86_400, 2)


def simulate_contract(
    history: ContractHistory, plan: DunningPlan, start: datetime, end: datetime, *, copy: bool = False
) -> ContractOutcome:
    """One contract's cases over [start, end) under `plan`. `copy`: drive `decide` (the workflow's
    entry point, copying the case at every decision) instead of `decide_owned` (the same rules in
    place, about ten times faster); both give the same outcome."""
    return ContractRun(history, plan, start, end, copy=copy).run()
