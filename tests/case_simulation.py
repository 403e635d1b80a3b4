"""A dunning case without Temporal: the pure decider (core/case) driven against an in-memory ledger.

`Simulation` plays the workflow's part (performs commands depth first, feeds every answer back,
sleeps by moving its clock) and lets scripted events happen while the case sleeps or while a send is
in flight. `FakeLedger` keeps money and contract status as the real ledger does in the respects the
case relies on: allocation oldest first, idempotent keys, a send that finds nothing open sends
nothing, a suspension is refused when nothing is open.

It records what the properties in tests/test_decider.py check: every message sent and the balance
the case had decided on, and every moment cover should have come back at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from core.case import commands as c
from core.case import events as e
from core.case.decider import ALL_CHANGES, Case, Versions, decide, open_case, stopped
from core.case.refusals import refusal
from models.activities import CourtApplicationPrepared, SendMessage, SentMessage
from models.case import (
    Arrears,
    CaseInput,
    DunningStopped,
    EscalateNow,
    HoldRequest,
    OpenItem,
    PaymentBooked,
    PremiumOverdue,
    PromiseToPay,
    Resume,
)
from models.ledger import ContractStatus
from models.messages import MessageKind
from models.plan import DunningPlan

DEMANDS = {MessageKind.REMINDER, MessageKind.QUALIFIED_NOTICE, MessageKind.PAY_LINK_SMS, MessageKind.TERMINATION_LETTER}
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday, 08:00 in Berlin


@dataclass
class Stored:
    key: str
    kind: MessageKind
    total_cents: int
    fee_cents: int
    balance_decided_cents: int  # what the case's last read showed when it decided to send
    money_moved: bool  # the ledger's money changed between that decision and the send


@dataclass
class Item:
    due: date
    open_cents: int


@dataclass
class FakeLedger:
    contract_number: str = "K-SIM-1"
    premiums: dict[str, Item] = field(default_factory=dict)
    fees_open_cents: int = 0
    status: ContractStatus = ContractStatus.ACTIVE
    dunning_stopped: bool = False
    version: int = 0  # bumped by every movement of money
    messages: dict[str, Stored] = field(default_factory=dict)
    status_keys: set[str] = field(default_factory=set)
    payments: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)  # ref → allocations
    closed_as: str | None = None

    @property
    def balance_cents(self) -> int:
        return sum(item.open_cents for item in self.premiums.values()) + self.fees_open_cents

    def oldest_first(self) -> list[tuple[str, Item]]:
        return sorted(self.premiums.items(), key=lambda pair: (pair[1].due, pair[0]))

    def arrears(self) -> Arrears:
        items = [
            OpenItem(premium_id=pid, period="2026", due_date=item.due, open_cents=item.open_cents)
            for pid, item in self.oldest_first()
            if item.open_cents > 0
        ]
        return Arrears(
            contract_number=self.contract_number,
            items=items,
            fees_open_cents=self.fees_open_cents,
            balance_cents=self.balance_cents,
            contract_status=self.status,
            dunning_stopped=self.dunning_stopped,
        )

    def join(self, premium_id: str, due: date, cents: int) -> None:
        self.premiums[premium_id] = Item(due, cents)
        self.version += 1

    def pay(self, ref: str, cents: int) -> None:
        """Oldest premium first, then fees; anything above the balance is credit (not modelled)."""
        allocations: list[tuple[str, int]] = []
        for pid, item in self.oldest_first():
            share = min(cents, item.open_cents)
            if share:
                item.open_cents -= share
                allocations.append((pid, share))
                cents -= share
        fee_share = min(cents, self.fees_open_cents)
        self.fees_open_cents -= fee_share
        allocations.append(("fees", fee_share))
        self.payments.append((ref, allocations))
        self.version += 1

    def return_last_debit(self) -> list[str]:
        """The bank returns the last payment: what it paid is open again. The premiums it re-opens."""
        if not self.payments:
            return []
        _, allocations = self.payments.pop()
        reopened = []
        for pid, share in allocations:
            if pid == "fees":
                self.fees_open_cents += share
            elif share:
                self.premiums[pid].open_cents += share
                reopened.append(pid)
        self.version += 1
        return reopened

    def send(self, request: SendMessage, decided_cents: int, decided_version: int) -> SentMessage:
        stored = self.messages.get(request.key)
        if stored is None:
            if request.kind in DEMANDS and self.balance_cents <= 0:
                return SentMessage(channel=request.channels[0], total_cents=0, skipped=True)
            channel = request.channels[0]
            fee = request.fees_cents.get(channel, 0)
            if fee:
                self.fees_open_cents += fee
            moved = self.version != decided_version
            stored = Stored(request.key, request.kind, self.balance_cents, fee, decided_cents, moved)
            self.messages[request.key] = stored
        deadline = request.now + timedelta(days=17) if request.notice_plan is not None else None
        return SentMessage(
            channel=request.channels[0],
            message_ids=[list(self.messages).index(request.key) + 1],
            total_cents=stored.total_cents,
            fee_cents=stored.fee_cents,
            deadline=deadline,
            deadline_date=deadline.date() if deadline else None,
            expected_receipt=(request.now + timedelta(days=3)).date(),
        )

    def change_status(self, to: ContractStatus, key: str, only_with_arrears: bool) -> bool:
        if key in self.status_keys:
            return False  # done by an earlier attempt
        if only_with_arrears and self.balance_cents <= 0:
            return False  # refused: nothing is open any more
        self.status_keys.add(key)
        self.status = to
        return True


@dataclass
class Action:
    """Something that happens to the case from outside, `after` the moment the case went to sleep
    (or, `during_send`, while its next watched send is in flight)."""

    kind: str  # pay | pay_all | join | return_debit | hold | resume | promise | stop | escalate | fail_next_step
    after: timedelta = timedelta(hours=1)
    fraction: float = 0.5  # pay: share of the balance
    during_send: bool = False
    during_step: str = ""  # during_send: only during this plan step's send ("": any watched send)
    send_first: bool = False  # during a send: the send read the ledger before the money came


class Quiet(Exception):
    """The case waits for something that will not happen any more (no actions left)."""


class StepFails(Exception):
    pass


@dataclass
class Simulation:
    plan: DunningPlan
    actions: list[Action]
    versions: Versions = ALL_CHANGES
    ledger: FakeLedger = field(default_factory=FakeLedger)
    now: datetime = START
    fail_next_step: bool = False
    payments: int = 0
    joins: int = 0
    problems: list[str] = field(default_factory=list)  # property violations, as sentences
    cover_checks: int = 0  # payments that cleared the balance during a send
    case: Case = field(init=False)

    def __post_init__(self) -> None:
        self.ledger.join("P-0", self.now.date(), 12_000)
        premiums = [PremiumOverdue(premium_id="P-0")]
        self.case = open_case(
            CaseInput(contract_number=self.ledger.contract_number, plan=self.plan, premiums=premiums),
            "dunning-K-SIM-1",
            self.now,
        )

    # --- the workflow's part ---------------------------------------------------------------------

    def run(self, max_turns: int = 400) -> Case:
        try:
            for _ in range(max_turns):
                if self.case.closed:
                    break
                self.perform_all(self.feed(e.Turn()))
        except Quiet:
            pass
        self.check_cover("the simulation ends")
        return self.case

    def feed(self, event: e.Event) -> list[c.Command]:
        decision = decide(self.case, event, self.now, self.versions)
        self.case = decision.case
        return decision.commands

    def perform_all(self, commands: list[c.Command]) -> None:
        for command in commands:
            if isinstance(command, c.WithLock):
                self.perform_all(self.feed(e.Done(command)))
                continue
            try:
                result = self.perform(command)
            except StepFails:
                self.perform_all(self.feed(e.Failed(command, "no such contract (simulated)")))
                continue
            self.perform_all(self.feed(e.Done(command, result)))

    def perform(self, command: c.Command) -> object:
        ledger = self.ledger
        if command.asks_person_on_failure and self.fail_next_step and isinstance(command, c.Send | c.ChangeStatus):
            self.fail_next_step = False
            raise StepFails
        match command:
            case c.ReadArrears():
                return ledger.arrears()
            case c.Send(request=request):
                return self.send(command, request)
            case c.ChangeStatus(request=request):
                return ledger.change_status(request.to_status, request.key, request.only_with_arrears)
            case c.PrepareCourt():
                return CourtApplicationPrepared(application_id=1, claimed_cents=ledger.balance_cents)
            case c.SignalCourt():
                return True
            case c.CloseInLedger(request=request):
                ledger.closed_as = request.action
                return None
            case c.Sleep(until=until):
                return self.sleep(until)
            case _:
                return None  # children, publishing, checkpoints: nothing the ledger sees

    def send(self, command: c.Send, request: SendMessage) -> SentMessage:
        if isinstance(command.then, c.StepSent):
            done = [r.key for r in self.case.state.steps_done]
            if command.then.step.key in done:
                self.problems.append(f"step {command.then.step.key} sent again after it was done")
        decided, version = self.case.state.arrears.balance_cents, self.ledger.version
        if not (command.watch_payments and self.actions and self.during(self.actions[0], command)):
            return self.ledger.send(request, decided, version)
        action = self.actions.pop(0)
        sent = self.ledger.send(request, decided, version) if action.send_first else None
        signals = self.case.payment_signals
        self.happen(action)
        if self.case.payment_signals != signals:  # the workflow wakes its watch
            self.perform_all(self.feed(e.PaymentsWhileBusy()))
            self.cover_checks += 1
            self.check_cover("a payment during a send")
        return sent if sent is not None else self.ledger.send(request, decided, version)

    @staticmethod
    def during(action: Action, command: c.Send) -> bool:
        if not action.during_send:
            return False
        return not action.during_step or (
            isinstance(command.then, c.StepSent) and command.then.step.key == action.during_step
        )

    def sleep(self, until: datetime | None) -> bool:
        self.check_cover("the case sleeps")
        if self.actions:
            action = self.actions[0]
            waits_for_a_send = action.during_send and until is not None
            if until is None or (self.now + action.after < until and not waits_for_a_send):
                self.actions.pop(0)
                self.now += action.after
                self.happen(action)
                return False
        if until is None:
            raise Quiet
        self.now = max(self.now, until)
        return True

    # --- the world's part ------------------------------------------------------------------------

    def happen(self, action: Action) -> None:
        ledger, today = self.ledger, self.now.date()
        match action.kind:
            case "pay" | "pay_all":
                balance = ledger.balance_cents
                if balance <= 0:
                    return
                cents = balance if action.kind == "pay_all" else max(1, int(balance * action.fraction))
                self.payments += 1
                ref = f"bank:{self.payments}"
                ledger.pay(ref, cents)
                self.feed_sync(
                    e.PaymentReceived(PaymentBooked(payment_ref=ref, amount_cents=cents, received_at=self.now))
                )
            case "join":
                self.joins += 1
                pid = f"P-{self.joins}"
                ledger.join(pid, today, 3_000)
                self.feed_sync(e.PremiumJoined(PremiumOverdue(premium_id=pid)))
            case "return_debit":
                for pid in ledger.return_last_debit():
                    self.feed_sync(e.PremiumJoined(PremiumOverdue(premium_id=pid, reason="direct_debit_returned")))
            case "hold":
                self.staff(e.HoldRequested(HoldRequest(until=today + timedelta(days=10), reason="in hospital")))
            case "resume":
                self.staff(e.Resumed(Resume(reason="checked")))
            case "promise":
                self.staff(e.Promised(PromiseToPay(pay_by=today + timedelta(days=7))))
            case "stop":
                ledger.dunning_stopped = True
                self.feed_sync(e.LedgerStoppedDunning(DunningStopped(code="MD07", reason="debtor deceased")))
            case "escalate":
                self.staff(e.EscalationRequested(EscalateNow(reason="customer asked")))
            case "fail_next_step":
                self.fail_next_step = True

    def staff(self, action: e.StaffAction) -> None:
        """As the update's validator: a refused action leaves the case unchanged."""
        if refusal(self.case, action, self.now) is None:
            self.feed_sync(action)

    def feed_sync(self, event: e.Event) -> None:
        """A signal or synchronous update: only the UI may follow at once."""
        for command in self.feed(event):
            if not isinstance(command, c.Publish):
                self.problems.append(f"{event!r} asked for {command!r} outside the loop")

    # --- properties ------------------------------------------------------------------------------

    def check_cover(self, when: str) -> None:
        """Whenever the case has caught up with the ledger, a zero balance means cover (unless a
        person must decide: automated dunning stopped)."""
        if self.ledger.balance_cents <= 0 and not stopped(self.case) and self.ledger.status != ContractStatus.ACTIVE:
            self.problems.append(f"balance zero but cover {self.ledger.status} when {when}")
