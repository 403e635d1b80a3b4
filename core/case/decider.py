"""The dunning case as a pure decision function: `decide(case, event, now, versions)`.

Given the case (its state with the pinned plan, plus what has been signalled and not yet acted on),
the time and one event, it returns the new case and the commands to perform. No I/O, no clock, no
randomness: the workflow (`workflows/dunning.py`) performs the commands and feeds their answers
back; tests and a portfolio simulation can drive it without Temporal.

`versions(change)` says whether a recorded behaviour change applies (docs/workflow-versioning.md):
the workflow passes `workflow.patched`, which the decider asks at exactly the point where the change
makes a difference, so the marker lands where it always did; tests and simulations pass `ALL_CHANGES`.

The rules, in the words of the plan (DOMAIN.md):
- the loop: re-read the arrears if something happened → settle if the balance is zero → otherwise
  wait until the next step is due (or something happens) → re-read → run the step once → move on by one;
- a payment re-reads the ledger: a partial one gets a receipt, a cleared balance restores cover at
  once (even while a letter is being sent), confirms what happened and closes the case;
- holds, promises and instalment plans pause the escalation until they end or break;
- nothing with legal effect happens without a person (termination, court filing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

from core import selfservice
from core.calendar import add_months, local_date, start_of_day
from core.case import commands as c
from core.case import events as e
from core.case.commands import Command, Then
from core.instalments import due_so_far, equal_instalments, schedule_problem
from core.schedule import is_supplement, next_step, payment_hold_end, step_due_at
from core.steps import DECISION_STAGES, StepAction, sets_deadline, stage_after, step_spec
from models.activities import (
    ApproveCourtApplication,
    BookPayment,
    ChangeContractStatus,
    CloseCase,
    CourtApplicationPrepared,
    LoadArrears,
    OpenServiceRequest,
    PrepareCourtApplication,
    SendMessage,
    SentMessage,
)
from models.agency import HandoverInput, HandoverOutcome, OutcomeKind
from models.case import (
    CLOSED_STAGES,
    Arrears,
    CaseEvent,
    CaseInput,
    CaseStage,
    CaseState,
    CaseStatus,
    CustomerArrangement,
    CustomerRequest,
    Hold,
    HoldKind,
    Instalment,
    PaymentBooked,
    PaymentOutcome,
    PaymentResult,
    PremiumOverdue,
    StepRecord,
    TerminationDecision,
)
from models.court import FINAL_STATES as COURT_FINAL_STATES
from models.court import CaseEnded, CourtApproval, CourtInput, CourtState
from models.court import PaymentForwarded as CourtPaymentForwarded
from models.ledger import ContractStatus
from models.messages import MessageKind
from models.plan import PlanStep, StepKind
from models.plans import get_plan

Versions = Callable[[str], bool]

# Recorded behaviour changes (docs/workflow-versioning.md): histories recorded before a change
# replay on the old path. Each is asked where its change makes a difference.
WRITE_OFF_REREADS_LEDGER = "write-off-rereads-ledger"  # since 2026-11; old history: write_off_before_patch.json
SUPPLEMENTARY_NOTICES = "supplementary-notices"  # since 2026-11: premiums joining after the notice get one
# Since 2026-12 (issue #11): a payment signal during a send re-reads the ledger at once, and a
# cleared balance reactivates whatever the case was doing; receipts re-read before each answer.
PAYMENTS_REREAD_LEDGER = "payments-reread-ledger"
# Since 2026-12: the confirmation says what happened (never suspended / restored / termination void /
# termination stands), and an approved termination is sent as a termination letter (§38(3) VVG).
CONFIRMATION_PER_SITUATION = "confirmation-per-situation"
TERMINATION_LETTER = "termination-letter"


def ALL_CHANGES(change: str) -> bool:  # noqa: N802 - reads as a constant where it is passed
    """Every recorded change applies (new cases, tests, simulations)."""
    return True


HANDOVER_FINISHED = "; outcome "  # marks the agency step record once the handover child has finished


class Case(BaseModel):
    """The case as the decider sees it: the persisted state (passed on continue-as-new) plus what has
    been signalled and not yet acted on."""

    state: CaseState
    needs_refresh: bool = False  # something happened that the arrears read last does not show
    pending_payments: list[PaymentBooked] = Field(default_factory=list)  # signalled, not yet answered
    clearing: list[PaymentBooked] = Field(default_factory=list)  # answered by the confirmation
    unread_payments: int = 0  # payments signalled since the ledger was last read
    payment_signals: int = 0  # bumped by every new payment: a send in flight re-reads the ledger
    changes: int = 0  # bumped by everything that happens from outside: the loop re-evaluates
    court_state: CourtState | None = None  # as last reported by the court child

    @property
    def closed(self) -> bool:
        return self.state.stage in CLOSED_STAGES


@dataclass
class Decision:
    case: Case
    commands: list[Command] = field(default_factory=list)


def open_case(input: CaseInput, workflow_id: str, now: datetime) -> Case:
    """A new case (or the same case continued as new). Raises KeyError for an unknown plan id."""
    if input.state is not None:
        return Case(state=input.state)
    plan = input.plan or get_plan(input.plan_id or "de-follow-up")
    state = CaseState(
        case_id=f"{workflow_id}/{now:%Y%m%dT%H%M%S}",
        contract_number=input.contract_number,
        plan=plan,
        opened_at=now,
        arrears=Arrears(contract_number=input.contract_number),
    )
    rules = _Rules(Case(state=state, needs_refresh=True), now, ALL_CHANGES)
    for premium in input.premiums:
        rules.join(premium)
    rules.note(f"Case opened on plan {plan.id} v{plan.version}")
    return rules.case


def decide(case: Case, event: e.Event, now: datetime, versions: Versions = ALL_CHANGES) -> Decision:
    """The new case and the commands to perform, for one event at `now`. `case` is not changed.

    Reads the holiday calendar (due times): the workflow calls it inside `sandbox_unrestricted`."""
    rules = _Rules(case.model_copy(deep=True), now, versions)
    rules.handle(event)
    return Decision(rules.case, rules.out)


# --- questions about a case (pure, for the loop, the UI and validators) ---------------------------


def due_step(case: Case) -> PlanStep | None:
    """The step the case waits for, or None (a person decides first, or the plan is through)."""
    if case.state.stage in DECISION_STAGES:
        return None
    return next_step(case.state)


def stopped(case: Case) -> bool:
    """Automated dunning stopped (MD07): only a person moves the case on."""
    return case.state.hold is not None and case.state.hold.kind == HoldKind.STOPPED


def wake_at(case: Case, step: PlanStep | None, now: datetime) -> datetime | None:
    """When the case acts next by itself: a hold's end, the step's time, or never (None)."""
    hold = case.state.hold
    if hold is not None:
        return hold.until
    if step is None:
        return None
    if case.state.escalate_requested:
        return now
    return step_due_at(case.state, step, now)


def case_status(case: Case, now: datetime) -> CaseStatus:
    state = case.state
    step = due_step(case) if not case.closed else None
    return CaseStatus(
        case_id=state.case_id,
        contract_number=state.contract_number,
        plan_id=state.plan.id,
        plan_version=state.plan.version,
        stage=state.stage,
        closed=case.closed,
        hold=state.hold,
        balance_cents=state.arrears.balance_cents,
        credit_cents=state.arrears.credit_cents,
        items=state.arrears.items,
        deadline=state.deadline,
        next_step=step.key if step else None,
        next_step_at=wake_at(case, step, now) if step else None,
        steps_done=state.steps_done,
        journal=state.journal,
        self_service=state.plan.self_service,
        self_service_arrangements=state.self_service_arrangements,
        self_service_blocked=blocked.code if (blocked := selfservice.case_blocks(state, case.closed)) else None,
    )


def payment_outcome(case: Case, payment_ref: str) -> PaymentOutcome | None:
    """What a signalled payment did, or None while the case is still acting on it: not yet read from
    the ledger, or the balance is cleared and cover is about to come back (the status change runs).
    A closed case has nothing left to do; a stopped one waits for a person, so both answer at once."""
    state = case.state
    if not case.closed and any(p.payment_ref == payment_ref for p in case.pending_payments):
        return None
    status = state.arrears.contract_status
    if not case.closed and state.arrears.balance_cents <= 0 and not stopped(case):
        restoring = status == ContractStatus.SUSPENDED or (
            status == ContractStatus.TERMINATED and state.cure_until is not None and state.reactivated_at is None
        )
        if restoring:
            return None
    return PaymentOutcome(
        payment_ref=payment_ref,
        balance_cents=state.arrears.balance_cents,
        contract_status=str(status),
        cover_restored=state.reactivated_at is not None and status == ContractStatus.ACTIVE,
        on_hold=state.hold is not None,
        closed=case.closed,
    )


def today(case: Case, now: datetime) -> date:
    return local_date(now, case.state.plan.timezone)


def child_id(case: Case, kind: str) -> str:
    return f"{case.state.case_id}/{kind}"


def confirmation_kind(state: CaseState, paid_at: datetime) -> MessageKind:
    """What the customer is told when the balance clears depends on what happened (DOMAIN.md §2)."""
    if state.arrears.contract_status == ContractStatus.TERMINATED:
        voided = state.cure_until is not None and paid_at < state.cure_until
        return MessageKind.TERMINATION_VOID if voided else MessageKind.PAID_AFTER_TERMINATION
    if state.arrears.contract_status == ContractStatus.SUSPENDED or state.reactivated_at is not None:
        return MessageKind.REACTIVATION
    return MessageKind.PAID_IN_FULL


# --- the rules ------------------------------------------------------------------------------------


class _Rules:
    """One decision: the rules applied to a private copy of the case at one moment, collecting the
    commands. The methods read like the process; every `self.out.append` is something done outside."""

    def __init__(self, case: Case, now: datetime, versions: Versions) -> None:
        self.case, self.state, self.now, self.versions = case, case.state, now, versions
        self.out: list[Command] = []

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, event: e.Event) -> None:
        match event:
            case e.Turn():
                self.turn()
            case e.Done(command=command, result=result):
                self.done(command, result)
            case e.Failed(command=command, cause=cause):
                self.step_failed(command, cause)
            case e.PaymentsWhileBusy():
                if self.versions(PAYMENTS_REREAD_LEDGER):
                    self.read(c.WatchRead())
            case e.PremiumJoined(premium=premium):
                if not self.case.closed:
                    self.join(premium)
            case e.PaymentReceived(payment=payment):
                self.payment(payment)
            case e.LedgerStoppedDunning(stop=stop):
                if not self.case.closed and not stopped(self.case):
                    self.hold_for_person(stop.code, stop.reason)
                    self.case.needs_refresh = True  # the ledger no longer counts the blocked premiums
            case e.AgentReported(outcome=outcome):
                if not self.case.closed:
                    self.agent_outcome(outcome)
            case e.CourtReported(progress=progress):
                if not self.case.closed:
                    self.court_progress(progress.state, progress.text)
            case e.StaffAction():
                self.staff(event)
            case _:
                raise ValueError(f"unknown event {event!r}")

    def done(self, command: Command, result: object) -> None:
        """What every answer of its kind means, then what this one was for (`then`)."""
        match command:
            case c.ReadArrears():
                assert isinstance(result, Arrears)
                self.arrears_read(result)
            case c.ChangeStatus(request=request):
                if result or not request.only_with_arrears:
                    self.state.arrears.contract_status = request.to_status
            case c.SignalCourt(signal=signal) if not result:
                self.note(f"Court dunning has ended; {signal} not delivered")
        if command.then is not None:
            self.proceed(command.then, result)

    def proceed(self, then: Then, result: object) -> None:
        match then:
            case c.Refresh():
                self.read(c.AnswerPayments())
            case c.AnswerPayments():
                self.answer_payments()
            case c.AnswerNextPayment():
                self.answer_next_payment()
            case c.PaymentForwarded(payment=payment):
                self.answer_payment(payment)
            case c.ReceiptSent(payment=payment):
                open_cents = self.state.arrears.balance_cents
                self.note(f"Partial payment {payment.payment_ref}: receipt sent, {open_cents} cents still open")
                self.answer_payments()
            case c.Settle():
                self.settle()
            case c.Reactivated(effective_at=effective_at, note=text):
                self.state.reactivated_at = effective_at
                self.note(text)
            case c.Confirm():
                self.confirm(then)
            case c.Close(stage=stage, reason=reason, action=action):
                self.close(stage, reason, action)
            case c.ClosedInLedger(stage=stage, reason=reason, closed_at=closed_at):
                self.end_handover(wait=True)
                self.out.append(c.Continue(then=c.EndCourt(stage, reason, closed_at)))
            case c.EndCourt(stage=stage, reason=reason, closed_at=closed_at):
                self.tell_court("case_ended", CaseEnded(stage=stage.value, reason=reason))
                if self.step_done(StepKind.COURT_DUNNING):
                    self.out.append(c.AwaitCourt())
                self.out.append(c.Continue(then=c.Closed(stage, reason, closed_at)))
            case c.Closed(stage=stage, reason=reason, closed_at=closed_at):
                self.state.closed_at, self.state.closed_reason, self.state.hold = closed_at, reason, None
                self.enter(stage, reason)
                self.case.changes += 1
            case c.Woken(step=step):
                self.woken(step, bool(result))
            case c.StepDue(step=step):
                self.read(c.RunStep(step))
            case c.RunStep(step=step):
                if self.state.arrears.balance_cents > 0 and not self.case.closed and not self.case.pending_payments:
                    self.run_step(step)
            case c.StepSent(step=step, record=record):
                assert isinstance(result, SentMessage)
                self.step_sent(step, record.model_copy(), result)
            case c.StepSuspended(step=step, record=record):
                if result:
                    self.complete_step(step, record.model_copy())
                else:  # refused (paid meanwhile) or done by an earlier attempt
                    self.read(c.SuspensionChecked(step, record))
            case c.SuspensionChecked(step=step, record=record):
                if self.state.arrears.contract_status != ContractStatus.SUSPENDED:
                    self.note(f"Step {step.key}: cover not suspended, nothing is open any more")
                else:
                    self.complete_step(step, record.model_copy())
            case c.HandoverStarted(step=step, record=record, started_at=started_at):
                self.state.handover_at = started_at
                self.complete_step(
                    step, record.model_copy(update={"note": f"handover {child_id(self.case, 'handover')}"})
                )
            case c.CourtPrepared(step=step, record=record):
                assert isinstance(result, CourtApplicationPrepared)
                self.start_court(step, record.model_copy(update={"total_cents": result.claimed_cents}), result)
            case c.CourtStarted(step=step, record=record, note=text):
                self.complete_step(step, record.model_copy(update={"note": text}))
            case c.WatchRead():
                if self.state.arrears.balance_cents <= 0 and not stopped(self.case):
                    self.reactivate("Arrears paid: cover restored", self.cleared_at())
            case c.WriteOffRead(request=request):
                if self.state.arrears.balance_cents <= 0:
                    self.settle()
                else:
                    self.write_off(request.reason, request.by)
            case c.FilingApproved(approver=approver, note=text):
                self.tell_court("approve_filing_requested", CourtApproval(approver=approver, note=text))
                self.out.append(c.Continue(then=c.FilingRecorded(approver)))
            case c.FilingRecorded(approver=approver):
                self.state.court_approved_by = approver
                self.case.changes += 1
                self.enter(CaseStage.COURT_FILED, f"Court filing approved by {approver}")
            case c.TerminationLetterSent(request=request):
                assert isinstance(result, SentMessage)
                self.termination_letter_sent(request, result)
            case c.Terminated():
                self.terminated(then)
            case c.RequestOpened(request=request):
                self.customer_request_opened(request)
            case c.StaffPaymentBooked(request=request):
                assert isinstance(result, PaymentResult)
                if result.booked:
                    booked = PaymentBooked(
                        payment_ref=result.payment_ref, amount_cents=request.amount_cents, received_at=self.now
                    )
                    self.payment(booked)
            case _:
                raise ValueError(f"unknown continuation {then!r}")

    # --- the loop -----------------------------------------------------------------------------

    def turn(self) -> None:
        if self.case.closed:
            return
        if self.case.needs_refresh or self.case.pending_payments:
            self.out.append(c.WithLock(then=c.Refresh()))
        elif self.state.arrears.balance_cents <= 0 and not stopped(self.case):
            self.out.append(c.WithLock(then=c.Settle()))
        else:
            step = due_step(self.case)
            until = wake_at(self.case, step, self.now)
            what = "hold ends" if self.state.hold else (step.key if step else "")
            summary = f"{what} at {until:%Y-%m-%d %H:%M} UTC" if until else ""
            self.out.append(c.Sleep(until, step, summary, then=c.Woken(step)))

    def woken(self, step: PlanStep | None, fired: bool) -> None:
        if not fired or self.release_expired_hold() or step is None:
            return  # something changed (or a hold ended): the loop re-evaluates before acting
        self.out += [c.WithLock(then=c.StepDue(step)), c.Checkpoint()]

    def read(self, then: Then) -> None:
        """Re-read the arrears: the ledger, not the case, holds the money. Payments signalled from
        here on are not in what the read returns: they wake the case again."""
        self.case.needs_refresh = False
        self.case.unread_payments = 0
        state = self.state
        request = LoadArrears(
            contract_number=state.contract_number,
            as_of=today(self.case, self.now),
            case_id=state.case_id,
            plan_id=state.plan.id,
            opened_at=state.opened_at,
        )
        self.out.append(c.ReadArrears(request, then=then))

    def arrears_read(self, arrears: Arrears) -> None:
        for item in arrears.items:
            self.state.joined_at.setdefault(item.premium_id, self.now)
        self.state.arrears = arrears
        if arrears.dunning_stopped and not stopped(self.case):
            # The ledger stopped the contract (MD07) before its signal reached the case: hold now,
            # or the premiums it blocked would look like a cleared balance.
            self.hold_for_person("stopped", "automated dunning stopped for this contract in the ledger")

    # --- running a plan step --------------------------------------------------------------------

    def run_step(self, step: PlanStep) -> None:
        """Run the step once; the pointer moves on by one when it is done (`complete_step`)."""
        state, now = self.state, self.now
        record = StepRecord(key=step.key, kind=step.kind, at=now)
        key = f"{state.case_id}:{step.key}"
        spec = step_spec(step.kind)
        match spec.action:
            case StepAction.SEND_MESSAGE:
                assert spec.message is not None
                request = SendMessage(
                    case_id=state.case_id,
                    contract_number=state.contract_number,
                    key=key,
                    kind=spec.message,
                    channels=step.channels,
                    copies=step.copies,
                    fees_cents=step.fees_cents,
                    now=now,
                    as_of=today(self.case, now),
                    notice_plan=state.plan if sets_deadline(step.kind) else None,
                )
                summary = f"{step.key}: {step.summary or step.kind}"
                self.out.append(c.Send(request, summary, then=c.StepSent(step, record)))
            case StepAction.SUSPEND_COVER:
                self.change_status(
                    ContractStatus.SUSPENDED,
                    "Notice deadline passed with arrears (§38(2) VVG)",
                    key,
                    "Suspend cover",
                    only_with_arrears=True,
                    then=c.StepSuspended(step, record),
                )
            case StepAction.HAND_OVER:
                # The agent's routine is its own child workflow (workflows/handover.py); its outcome
                # comes back as `AgentReported`. The case ends it itself (`end_handover`).
                handover = HandoverInput(
                    case_id=state.case_id,
                    contract_number=state.contract_number,
                    parent_workflow_id=workflow_id_of(state.case_id),
                    key=key,
                    balance_cents=state.arrears.balance_cents,
                )
                self.out.append(
                    c.StartHandover(
                        handover,
                        child_id(self.case, "handover"),
                        f"Agency handover of case {state.case_id}",
                        then=c.HandoverStarted(step, record, started_at=now),
                    )
                )
            case StepAction.PROPOSE_TERMINATION:
                # Art. 22 GDPR: a decision with legal effect is never automatic. The case waits for
                # approve_termination / decline_termination (DunningStage='termination_approval').
                record.note = "termination proposed: waits for a person's decision"
                self.complete_step(step, record)
            case StepAction.PREPARE_COURT_FILING:
                request_court = PrepareCourtApplication(
                    case_id=state.case_id, contract_number=state.contract_number, now=now
                )
                self.out.append(c.PrepareCourt(request_court, then=c.CourtPrepared(step, record)))

    def step_sent(self, step: PlanStep, record: StepRecord, sent: SentMessage) -> None:
        state = self.state
        if sent.skipped:  # paid while the case was busy: nothing was sent, the case settles
            self.case.needs_refresh = True
            self.note(f"Step {step.key} not sent: nothing is open any more")
            return
        record.channel, record.copies, record.total_cents = sent.channel, sent.copies, sent.total_cents
        record.fee_cents, record.message_ids, record.deadline = sent.fee_cents, sent.message_ids, sent.deadline
        if sent.deadline is not None and not (is_supplement(step) and self.suspended()):
            state.deadline = sent.deadline  # a later, consolidated deadline before suspension governs
        if sets_deadline(step.kind) and self.versions(SUPPLEMENTARY_NOTICES):
            itemised = {i.premium_id for i in state.arrears.items}
            state.noticed_items = sorted(itemised.union(state.noticed_items or []))
        self.complete_step(step, record)

    def start_court(self, step: PlanStep, record: StepRecord, prepared: CourtApplicationPrepared) -> None:
        """The court lifecycle (DOMAIN.md §5), years of monitoring included, is a child workflow;
        the agent's handover ends (it closes its task itself)."""
        state = self.state
        self.end_handover(wait=False)
        due_dates = [item.due_date for item in state.arrears.items]
        court_id = child_id(self.case, "court")
        court = CourtInput(
            case_id=state.case_id,
            contract_number=state.contract_number,
            parent_workflow_id=workflow_id_of(state.case_id),
            application_id=prepared.application_id,
            claimed_cents=prepared.claimed_cents,
            oldest_due=min(due_dates) if due_dates else today(self.case, self.now),
            court_state=prepared.court_state,
        )
        note = f"application {prepared.application_id} waits for approval ({court_id})"
        self.out.append(
            c.StartCourt(
                court, court_id, f"Court dunning of case {state.case_id}", then=c.CourtStarted(step, record, note=note)
            )
        )

    def complete_step(self, step: PlanStep, record: StepRecord) -> None:
        state = self.state
        state.steps_done.append(record)
        self.case.needs_refresh = True  # fees booked by the step change the balance
        state.escalate_requested = False
        if is_supplement(step):  # not a plan step: the pointer and the stage stay where they are
            state.supplements += 1
            self.note(f"Supplementary notice {step.key} sent for premiums that joined after the notice")
            return
        state.next_step += 1
        self.enter(stage_after(step.kind), f"Step {step.key} done" + (f" ({record.note})" if record.note else ""))

    def step_failed(self, command: Command, cause: str) -> None:
        """Bad master data (no such contract, an amount that does not add up): stop here and ask a
        person; `resume` tries the same step again with the same key."""
        assert isinstance(command.then, c.StepThen)
        key = command.then.step.key
        self.state.hold = Hold(kind=HoldKind.ATTENTION, reason=f"step {key} failed: {cause}")
        self.note(f"Step {key} failed and needs a person: {cause}")

    def suspended(self) -> bool:
        return self.step_done(StepKind.SUSPEND_COVER)

    def step_done(self, kind: StepKind) -> bool:
        return any(record.kind == kind for record in self.state.steps_done)

    # --- payments -----------------------------------------------------------------------------

    def payment(self, payment: PaymentBooked) -> None:
        if self.case.closed or payment.payment_ref in self.state.payments_seen:
            return  # the same payment event twice changes nothing
        self.state.payments_seen.append(payment.payment_ref)
        if payment.received_at is None:
            payment = payment.model_copy(update={"received_at": self.now})
        self.case.pending_payments.append(payment)
        self.case.payment_signals += 1
        self.case.unread_payments += 1
        self.case.changes += 1

    def answer_payments(self) -> None:
        """A receipt with that payment's own amount, the new balance and a fresh pay link for each
        partial payment. A payment that came in while the last receipt went out is answered from a
        fresh read of the ledger (it may have cleared the balance: then the confirmation)."""
        if not self.case.pending_payments:
            return
        if self.case.unread_payments and self.versions(PAYMENTS_REREAD_LEDGER):
            self.read(c.AnswerNextPayment())
        else:
            self.answer_next_payment()

    def answer_next_payment(self) -> None:
        payment = self.case.pending_payments.pop(0)
        # A payment during court dunning: partial restarts limitation there, full settles it.
        forwarded = CourtPaymentForwarded(
            payment_ref=payment.payment_ref,
            balance_cents=self.state.arrears.balance_cents,
            paid_on=today(self.case, self.now),
        )
        if not self.tell_court("payment_forwarded", forwarded, then=c.PaymentForwarded(payment)):
            self.answer_payment(payment)

    def answer_payment(self, payment: PaymentBooked) -> None:
        state = self.state
        if state.arrears.balance_cents <= 0:
            self.case.clearing.append(payment)  # the settlement sends the one confirmation
        elif self.small_shortfall():
            self.review_shortfall(payment.payment_ref)
        elif stopped(self.case):
            self.note(f"Payment {payment.payment_ref} noted; automated dunning is stopped: no receipt")
        else:
            state.receipts_sent += 1
            request = SendMessage(
                case_id=state.case_id,
                contract_number=state.contract_number,
                key=f"{state.case_id}:receipt:{payment.payment_ref}",
                kind=MessageKind.PAYMENT_RECEIPT,
                channels=state.plan.confirmation_channels,
                now=self.now,
                as_of=today(self.case, self.now),
                paid_cents=payment.amount_cents,
                paid_at=payment.received_at,
                legal_basis=state.plan.legal_basis.value,
                timezone=state.plan.timezone,
            )
            self.out.append(c.Send(request, "Receipt for a partial payment", then=c.ReceiptSent(payment)))
            return
        self.answer_payments()

    def small_shortfall(self) -> bool:
        balance, threshold = self.state.arrears.balance_cents, self.state.plan.small_shortfall_cents
        return bool(self.state.payments_seen) and 0 < balance < threshold

    def review_shortfall(self, ref: str) -> None:
        """Nearly paid: no receipt, no escalation; a person resumes, writes off or books the rest."""
        if self.state.hold is None or self.state.hold.kind != HoldKind.SMALL_SHORTFALL:
            balance = self.state.arrears.balance_cents
            self.state.hold = Hold(kind=HoldKind.SMALL_SHORTFALL, reason=f"only {balance} cents open after {ref}")
            self.enter(self.state.stage, f"Small shortfall of {balance} cents after payment {ref}: manual review")

    def cleared_at(self) -> datetime:
        """When the balance cleared: the latest receipt time of the payments that cleared it (cover
        returns for events after that moment, §38(2) VVG), or now when no payment did."""
        paid = self.case.clearing + self.case.pending_payments
        moments = [p.received_at for p in paid if p.received_at is not None]
        return min(max(moments), self.now) if moments else self.now

    # --- settling and closing -----------------------------------------------------------------

    def settle(self) -> None:
        """Balance cleared: reactivate at once (effective when the money came), confirm, close."""
        paid_at = self.cleared_at()
        kind = confirmation_kind(self.state, paid_at)
        self.reactivate("Arrears paid: cover restored", paid_at)
        self.out.append(c.Continue(then=c.Confirm(kind, paid_at, self.now)))

    def confirm(self, then: c.Confirm) -> None:
        state, kind = self.state, then.kind
        if not self.versions(CONFIRMATION_PER_SITUATION):
            kind = None if state.arrears.contract_status == ContractStatus.TERMINATED else MessageKind.REACTIVATION
        if kind is None or kind == MessageKind.PAID_AFTER_TERMINATION:
            # Paid after the cure month: the termination stands, no "cover restored".
            self.note("Balance cleared after the cure month: the termination stands")
        if kind is not None and (state.steps_done or state.payments_seen):
            paid = self.case.clearing + self.case.pending_payments
            tz = state.plan.timezone
            request = SendMessage(
                case_id=state.case_id,
                contract_number=state.contract_number,
                key=f"{state.case_id}:paid",
                kind=kind,
                channels=state.plan.confirmation_channels,
                now=then.started_at,
                as_of=today(self.case, self.now),
                paid_cents=sum(p.amount_cents for p in paid),
                paid_at=then.paid_at,
                terminated_on=local_date(state.terminated_at, tz) if state.terminated_at else None,
                cure_until=self.last_day(state.cure_until),
                legal_basis=state.plan.legal_basis.value,
                timezone=tz,
            )
            self.out.append(c.Send(request, f"Confirmation: balance cleared ({kind})", watch_payments=False))
        self.out.append(c.Continue(then=c.Close(CaseStage.PAID, "Balance cleared", "paid")))

    def reactivate(self, reason: str, effective_at: datetime | None = None) -> None:
        """Arrears gone: cover back at once (once per case, whichever way the balance cleared),
        effective when the clearing payment was received."""
        state = self.state
        effective_at = effective_at or self.now
        if state.arrears.contract_status == ContractStatus.TERMINATED and state.cure_until is not None:
            if effective_at < state.cure_until:
                self.change_status(
                    ContractStatus.ACTIVE,
                    "Termination void: arrears paid within one month (§38(3) VVG); no cover for events in between",
                    f"{state.case_id}:termination-void",
                    "Termination void: reactivate",
                    effective_at=effective_at,
                    then=c.Reactivated(
                        effective_at, "Termination void: paid within the cure month, contract active again"
                    ),
                )
            return
        if state.arrears.contract_status == ContractStatus.SUSPENDED:
            self.change_status(
                ContractStatus.ACTIVE,
                reason,
                f"{state.case_id}:reactivate",
                "Reactivate the contract",
                effective_at=effective_at,
                then=c.Reactivated(
                    effective_at, f"Contract reactivated effective {effective_at:%Y-%m-%d %H:%M:%S} UTC: {reason}"
                ),
            )

    def change_status(
        self,
        to: ContractStatus,
        reason: str,
        key: str,
        summary: str,
        *,
        effective_at: datetime | None = None,
        only_with_arrears: bool = False,
        then: Then | None = None,
    ) -> None:
        request = ChangeContractStatus(
            contract_number=self.state.contract_number,
            to_status=to,
            reason=reason,
            key=key,
            case_id=self.state.case_id,
            at=self.now,
            effective_at=effective_at,
            only_with_arrears=only_with_arrears,
        )
        self.out.append(c.ChangeStatus(request, summary, then=then))

    def close(self, stage: CaseStage, reason: str, action: str) -> None:
        request = CloseCase(
            case_id=self.state.case_id,
            contract_number=self.state.contract_number,
            action=action,
            reason=reason,
            now=self.now,
            as_of=today(self.case, self.now),
            stage=self.state.stage.value,
        )
        self.out.append(
            c.CloseInLedger(request, f"Close case: {action}", then=c.ClosedInLedger(stage, reason, self.now))
        )

    def write_off(self, reason: str, by: str) -> None:
        self.reactivate(f"Arrears written off: {reason}")
        self.out.append(c.Continue(then=c.Close(CaseStage.WRITTEN_OFF, f"Written off by {by}: {reason}", "write_off")))

    # --- children: agency handover and court dunning ---------------------------------------------

    def handover_running(self) -> bool:
        """Started, no outcome yet (marked on its step record, which survives continue-as-new),
        and not already ended by the court step."""
        records = [r for r in self.state.steps_done if r.kind == StepKind.AGENCY_HANDOVER]
        if not records or HANDOVER_FINISHED in records[-1].note:
            return False
        return not self.step_done(StepKind.COURT_DUNNING)

    def end_handover(self, wait: bool) -> None:
        """The case moves on (court) or ends: the agent's routine stops and its task is closed."""
        if self.handover_running():
            self.out.append(c.EndHandover(child_id(self.case, "handover"), wait))

    def tell_court(self, signal: str, arg: object, then: Then | None = None) -> bool:
        """Signal the court child if there is one still running; False when there is none."""
        if not self.step_done(StepKind.COURT_DUNNING) or self.case.court_state in COURT_FINAL_STATES:
            return False
        self.out.append(c.SignalCourt(child_id(self.case, "court"), signal, arg, then=then))
        return True

    def agent_outcome(self, outcome: HandoverOutcome) -> None:
        state, plan = self.state, self.state.plan
        for record in state.steps_done:
            if record.kind == StepKind.AGENCY_HANDOVER and HANDOVER_FINISHED not in record.note:
                record.note += f"{HANDOVER_FINISHED}{outcome.kind}"
        by = f"agent {outcome.by}"
        balance = state.arrears.balance_cents
        if outcome.kind in (OutcomeKind.PROMISE_TO_PAY, OutcomeKind.INSTALMENT_PLAN) and outcome.pay_by:
            promised = outcome.amount_cents
            reason = outcome.note or "promise to pay (agent)"
            if outcome.kind == OutcomeKind.INSTALMENT_PLAN and outcome.instalments:
                schedule = (
                    equal_instalments(balance, outcome.instalments, outcome.pay_by)
                    if 2 <= outcome.instalments <= balance
                    else []
                )
                if schedule and schedule_problem(schedule, balance, today(self.case, self.now)) is None:
                    self.agree_instalments(schedule, by, outcome.note or "instalment plan (agent)")
                    self.case.changes += 1
                    return
                # Hold until the first instalment; if it is not paid, dunning resumes (court).
                promised = -(-balance // outcome.instalments)
                reason = f"instalment plan agreed: {outcome.instalments} instalments from {outcome.pay_by}"
            state.hold = Hold(
                kind=HoldKind.PROMISE,
                reason=reason,
                until=payment_hold_end(outcome.pay_by, plan, self.now),
                promised_cents=promised,
                balance_at_promise_cents=balance,
                set_by=by,
            )
            text = f"Agent outcome {outcome.kind}: hold until {outcome.pay_by:%d.%m.%Y}"
        elif outcome.kind == OutcomeKind.DISPUTE:
            state.hold = Hold(kind=HoldKind.DISPUTE, reason=outcome.note or "disputed (agent)", set_by=by)
            text = "Agent outcome: customer disputes the claim (manual review)"
        elif outcome.kind == OutcomeKind.WRONG_CONTACT_DATA:
            reason = f"wrong contact data: {outcome.note}; fix the master data, then resume"
            state.hold = Hold(kind=HoldKind.ATTENTION, reason=reason, set_by=by)
            text = "Agent outcome: wrong contact data (needs a person)"
        elif outcome.kind == OutcomeKind.COLLECTED and outcome.payment_ref:
            self.payment(PaymentBooked(payment_ref=outcome.payment_ref, amount_cents=outcome.amount_cents or 0))
            text = f"Agent collected {outcome.amount_cents} cents (payment {outcome.payment_ref})"
        else:  # not reachable: court dunning now
            if state.hold is None or state.hold.kind != HoldKind.ATTENTION:
                state.hold = None
                state.escalate_requested = True
            text = f"Agent outcome {outcome.kind}: escalate to court dunning"
        self.case.changes += 1
        self.enter(state.stage, text)

    def court_progress(self, court_state: CourtState, text: str) -> None:
        self.case.court_state = court_state
        if court_state == CourtState.FILED and self.state.stage == CaseStage.COURT_APPROVAL:
            self.state.stage = CaseStage.COURT_FILED
        if court_state in (CourtState.LAPSED, CourtState.CLOSED):
            self.state.hold = Hold(kind=HoldKind.ATTENTION, reason=f"court dunning {court_state}: {text}")
        self.case.changes += 1
        self.enter(self.state.stage, f"Court: {text}")

    # --- holds ----------------------------------------------------------------------------------

    def release_expired_hold(self) -> bool:
        """The hold's time came: a kept promise or instalment goes on; anything else resumes dunning."""
        hold = self.state.hold
        if hold is None or hold.until is None or self.now < hold.until:
            return False
        self.state.hold = None
        if hold.kind == HoldKind.PROMISE:
            paid = hold.balance_at_promise_cents - self.state.arrears.balance_cents
            promised = hold.promised_cents or hold.balance_at_promise_cents
            if paid < promised:
                self.note(f"Promise to pay broken ({paid} of {promised} cents paid): dunning resumes")
                return True
        if hold.kind == HoldKind.INSTALMENTS:
            paid = hold.balance_at_promise_cents - self.state.arrears.balance_cents
            owed, number, count = due_so_far(hold.schedule, hold.instalment), hold.instalment + 1, len(hold.schedule)
            if paid < owed:
                self.note(f"Instalment {number} of {count} missed ({paid} of {owed} cents paid): dunning resumes")
                return True
            if number < count:
                following = hold.schedule[number]
                until = payment_hold_end(following.due, self.state.plan)
                self.state.hold = hold.model_copy(update={"instalment": number, "until": until})
                self.note(
                    f"Instalment {number} of {count} on time; next {following.amount_cents} cents by {following.due}"
                )
                return True
        self.note("Hold ended: dunning resumes")
        return True

    def hold_for_person(self, code: str, reason: str) -> None:
        self.state.hold = Hold(kind=HoldKind.STOPPED, reason=f"{code}: {reason}", set_by=f"ledger {code}")
        self.state.escalate_requested = False
        self.case.changes += 1
        self.enter(self.state.stage, f"Automated dunning stopped ({code}): {reason}; a person decides")

    def agree_instalments(self, schedule: list[Instalment], by: str, note: str) -> None:
        self.state.hold = Hold(
            kind=HoldKind.INSTALMENTS,
            reason=note or "instalment plan",
            until=payment_hold_end(schedule[0].due, self.state.plan),
            balance_at_promise_cents=self.state.arrears.balance_cents,
            set_by=by,
            schedule=schedule,
        )
        last = schedule[-1]
        self.enter(
            self.state.stage, f"Instalment plan agreed by {by}: {len(schedule)} instalments, the last on {last.due}"
        )

    # --- staff actions ----------------------------------------------------------------------------

    def staff(self, action: e.StaffAction) -> None:
        state = self.state
        match action:
            case e.HoldRequested(request=request):
                until = start_of_day(request.until, state.plan.timezone)
                state.hold = Hold(kind=HoldKind.HOLD, reason=request.reason, until=until, set_by=request.by)
                self.case.changes += 1
                self.enter(state.stage, f"On hold until {request.until:%d.%m.%Y} by {request.by}: {request.reason}")
            case e.Resumed(request=request):
                previous, state.hold = state.hold, None
                self.case.changes += 1
                kind = previous.kind if previous else "hold"
                why = f": {request.reason}" if request.reason else ""
                self.enter(state.stage, f"Resumed from {kind} by {request.by}{why}")
            case e.Promised(request=request):
                state.hold = Hold(
                    kind=HoldKind.PROMISE,
                    reason=request.note or "promise to pay",
                    until=payment_hold_end(request.pay_by, state.plan, self.now),
                    promised_cents=request.amount_cents,
                    balance_at_promise_cents=state.arrears.balance_cents,
                    set_by=request.by,
                )
                self.case.changes += 1
                self.enter(state.stage, f"Promise to pay by {request.pay_by:%d.%m.%Y} recorded by {request.by}")
            case e.InstalmentsAgreed(request=request):
                self.agree_instalments(request.instalments, request.by, request.note)
                self.case.changes += 1
            case e.Disputed(request=request):
                state.hold = Hold(kind=HoldKind.DISPUTE, reason=request.reason, set_by=request.by)
                self.case.changes += 1
                self.enter(state.stage, f"Disputed (manual review) by {request.by}: {request.reason}")
            case e.EscalationRequested(request=request):
                state.escalate_requested = True
                state.hold = None
                self.case.changes += 1
                self.enter(state.stage, f"Escalation requested by {request.by}: {request.reason}")
            case e.TerminationDeclined(request=request):
                back = CaseStage.SUSPENDED if self.suspended() else CaseStage.NOTICE_SENT
                self.case.changes += 1
                self.enter(
                    back, f"Termination declined by {request.by}" + (f": {request.note}" if request.note else "")
                )
            case e.WriteOffRequested(request=request):
                if self.case.closed:
                    return
                if self.versions(WRITE_OFF_REREADS_LEDGER):
                    # A payment may have cleared the balance since the case last read the ledger (its
                    # signal still queued behind this update): then the case is paid, not written off.
                    self.read(c.WriteOffRead(request))
                else:
                    self.write_off(request.reason, request.by)
            case e.CancelRequested(request=request):
                if not self.case.closed:
                    self.close(CaseStage.CANCELLED, f"Cancelled by {request.by}: {request.reason}", "cancel")
            case e.CourtFilingApproved(request=request):
                approval = ApproveCourtApplication(case_id=state.case_id, approver=request.approver, now=self.now)
                # The court child files and runs the court lifecycle from here (workflows/court.py).
                self.out.append(c.ApproveFiling(approval, then=c.FilingApproved(request.approver, request.note)))
            case e.TerminationApproved(request=request):
                if state.stage != CaseStage.TERMINATION_APPROVAL:
                    return  # decided meanwhile (the validator ran before the lock)
                if self.versions(TERMINATION_LETTER):
                    self.send_termination_letter(request)
                else:
                    self.change_status(
                        ContractStatus.TERMINATED,
                        f"Terminated without notice (§38(3) VVG), approved by {request.by}",
                        f"{state.case_id}:terminate",
                        "Terminate the contract",
                        then=c.Terminated(request, self.now),
                    )
            case e.CustomerArranged(request=request):
                self.customer_arrangement(request)
            case e.CustomerAsked(request=request):
                self.customer_asked(request)
            case e.PaymentRecorded(request=request):
                booking = BookPayment(
                    contract_number=state.contract_number,
                    external_ref=f"{request.source}:{request.reference}",
                    amount_cents=request.amount_cents,
                    received_at=self.now,
                    source=request.source,
                    premium_id=request.premium_id,
                )
                self.out.append(c.RecordStaffPayment(booking, then=c.StaffPaymentBooked(request)))
            case _:
                raise ValueError(f"unknown staff action {action!r}")

    def customer_arrangement(self, request: CustomerArrangement) -> None:
        """The customer's own arrangement (the validator judged it inside the guardrails). A broken
        one resumes dunning like any other; the next one then needs a clerk (`self_service_arrangements`)."""
        state = self.state
        if self.case.closed:
            return
        balance = state.arrears.balance_cents
        if request.kind == "instalments":
            plan = selfservice.schedule(request, balance)
            self.agree_instalments(plan, request.by, "self-service instalment plan (customer portal)")
        else:
            assert request.pay_by is not None  # judged
            state.hold = Hold(
                kind=HoldKind.PROMISE,
                reason="self-service deferral (customer portal)",
                until=payment_hold_end(request.pay_by, state.plan, self.now),
                balance_at_promise_cents=balance,
                set_by=request.by,
            )
            self.enter(state.stage, f"Deferral until {request.pay_by:%d.%m.%Y} agreed by {request.by} (self-service)")
        state.self_service_arrangements += 1
        self.case.changes += 1

    def customer_asked(self, request: CustomerRequest) -> None:
        """A request for a person joins its queue first; only then does the case note it (and a
        dispute pause escalation), so a request the ledger cannot open changes nothing."""
        state = self.state
        if self.case.closed:
            return
        opening = OpenServiceRequest(
            request_id=request.request_id,
            case_id=state.case_id,
            contract_number=state.contract_number,
            kind=request.kind,
            now=self.now,
            key=f"{state.case_id}:request:{request.request_id}",
        )
        self.out.append(c.OpenRequest(opening, then=c.RequestOpened(request)))

    def customer_request_opened(self, request: CustomerRequest) -> None:
        state = self.state
        if request.kind == "dispute" and (state.hold is None or state.hold.kind != HoldKind.DISPUTE):
            reason = f"disputed by the customer (portal request #{request.request_id}): a person reviews it"
            state.hold = Hold(kind=HoldKind.DISPUTE, reason=reason, set_by=request.by)
            self.case.changes += 1
            self.enter(state.stage, f"Disputed by {request.by} (request #{request.request_id}): escalation paused")
        else:
            self.note(f"Customer request #{request.request_id} ({request.kind}) for a person, via {request.by}")

    def send_termination_letter(self, request: TerminationDecision) -> None:
        """The termination is a declaration the customer must receive (§38(3) VVG, text form): the
        letter goes out first; the contract ends when it is expected to arrive, and paying
        everything within one month of that voids it."""
        state = self.state
        notice = next(s for s in state.plan.steps if sets_deadline(s.kind))
        letter = SendMessage(
            case_id=state.case_id,
            contract_number=state.contract_number,
            key=f"{state.case_id}:termination_letter",
            kind=MessageKind.TERMINATION_LETTER,
            channels=notice.channels,
            copies=notice.copies,
            now=self.now,
            as_of=today(self.case, self.now),
            notice_plan=state.plan,
            notice_deadline=self.last_day(state.deadline),
            timezone=state.plan.timezone,
        )
        self.out.append(c.Send(letter, "Termination letter (§38(3) VVG)", then=c.TerminationLetterSent(request)))

    def termination_letter_sent(self, request: TerminationDecision, sent: SentMessage) -> None:
        state = self.state
        if sent.skipped or sent.expected_receipt is None or sent.deadline is None:
            self.case.needs_refresh = True
            self.note("Termination not sent: nothing is open any more")
            return
        effective = self.now if state.plan.demo else start_of_day(sent.expected_receipt, state.plan.timezone)
        self.change_status(
            ContractStatus.TERMINATED,
            f"Terminated without notice (§38(3) VVG), approved by {request.by}; letter {sent.message_ids}",
            f"{state.case_id}:terminate",
            "Terminate the contract",
            effective_at=effective,
            then=c.Terminated(request, effective, sent.deadline, sent),
        )

    def terminated(self, then: c.Terminated) -> None:
        state, tz = self.state, self.state.plan.timezone
        state.terminated_at = then.effective_at
        if then.cure_until is not None:
            state.cure_until = then.cure_until
        else:  # before the termination letter: one month from the approval
            state.cure_until = start_of_day(add_months(local_date(then.effective_at, tz), 1) + timedelta(days=1), tz)
        sent = then.letter
        if sent is not None:
            for record in state.steps_done:
                if record.kind == StepKind.TERMINATION:
                    record.channel, record.copies, record.message_ids = sent.channel, sent.copies, sent.message_ids
                    record.total_cents, record.deadline = sent.total_cents, sent.deadline
        self.case.changes += 1
        cure_day = local_date(state.cure_until - timedelta(seconds=1), tz)
        self.enter(
            CaseStage.TERMINATED,
            f"Termination approved by {then.request.by}; void if everything is paid by {cure_day:%d.%m.%Y}",
        )

    # --- journal and UI ---------------------------------------------------------------------------

    def join(self, premium: PremiumOverdue) -> None:
        if premium.premium_id not in self.state.joined_at:
            self.state.joined_at[premium.premium_id] = self.now
            if premium.reason != "overdue":
                self.note(f"Premium {premium.premium_id} joined: {premium.reason}")
        self.case.needs_refresh = True
        self.case.changes += 1

    def enter(self, stage: CaseStage, why: str) -> None:
        """The one place a stage changes: journal, search attributes and details follow."""
        self.state.stage = stage
        self.note(why)
        step = due_step(self.case) if not self.case.closed else None
        self.out.append(c.Publish(step, wake_at(self.case, step, self.now) if step or self.state.hold else None))

    def note(self, text: str) -> None:
        self.state.journal.append(CaseEvent(at=self.now, text=text))
        del self.state.journal[:-100]  # the journal is a view; the history keeps everything

    def last_day(self, expires: datetime | None) -> date | None:
        """The last day of a period that expires at `expires` (the start of the following day)."""
        return local_date(expires - timedelta(seconds=1), self.state.plan.timezone) if expires else None


def workflow_id_of(case_id: str) -> str:
    """The case's workflow id (`dunning-<contract>`): its case id is `<workflow id>/<start time>`."""
    return case_id.rsplit("/", 1)[0]
