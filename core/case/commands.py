"""What the case decider asks the workflow to do, and what it does with each answer.

A command is data: the workflow (`workflows/dunning.py`) performs it as an activity, a timer, a
child workflow or a signal, with the request the decider built (so the activity names, arguments and
idempotency keys are decided here, once), and feeds the answer back as `Done(command, result)`.

Commands that produce an answer the case must act on carry `then`: a small value saying what the
decider does with it (`StepSent`, `Reactivated`, …). The workflow never looks inside `then`.

Order: the workflow performs a decision's commands one after another, and each command's own
follow-up commands before the next one (depth first), exactly as the code once awaited them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.activities import (
    ApproveCourtApplication,
    BookPayment,
    ChangeContractStatus,
    CloseCase,
    LoadArrears,
    OpenServiceRequest,
    PrepareCourtApplication,
    SendMessage,
    SentMessage,
)
from models.agency import HandoverInput
from models.case import (
    CaseStage,
    CustomerRequest,
    PaymentBooked,
    RecordPayment,
    StepRecord,
    TerminationDecision,
    WriteOff,
)
from models.court import CourtInput
from models.messages import MessageKind
from models.plan import PlanStep

# --- what happens with an answer (continuations) ---------------------------------------------


@dataclass(frozen=True)
class Then:
    """What the decider does when a command is done."""


@dataclass(frozen=True)
class StepThen(Then):
    """A part of running a plan step: a failed activity stops the step and asks a person."""

    step: PlanStep
    record: StepRecord


@dataclass(frozen=True)
class Refresh(Then):
    """Re-read the ledger, then answer the payments signalled meanwhile."""


@dataclass(frozen=True)
class AnswerPayments(Then):
    """Answer the next signalled payment (receipt, review, or nothing when the balance cleared)."""


@dataclass(frozen=True)
class AnswerNextPayment(Then):
    """The ledger was re-read for a payment that came in during the last receipt: answer it now."""


@dataclass(frozen=True)
class PaymentForwarded(Then):
    """The court child heard of the payment: now answer the customer."""

    payment: PaymentBooked


@dataclass(frozen=True)
class ReceiptSent(Then):
    payment: PaymentBooked


@dataclass(frozen=True)
class Settle(Then):
    """The balance is zero: reactivate, confirm, close."""


@dataclass(frozen=True)
class Reactivated(Then):
    """Cover is back (or the termination void), effective at `effective_at`."""

    effective_at: datetime
    note: str


@dataclass(frozen=True)
class Confirm(Then):
    """After the reactivation: send the confirmation that fits what happened, then close."""

    kind: MessageKind | None
    paid_at: datetime
    started_at: datetime


@dataclass(frozen=True)
class Close(Then):
    stage: CaseStage
    reason: str
    action: str  # paid | write_off | cancel (the ledger's closing action)


@dataclass(frozen=True)
class ClosedInLedger(Then):
    """The ledger has closed the case: end the agent's handover, then tell the court."""

    stage: CaseStage
    reason: str
    closed_at: datetime


@dataclass(frozen=True)
class EndCourt(Then):
    stage: CaseStage
    reason: str
    closed_at: datetime


@dataclass(frozen=True)
class Closed(Then):
    stage: CaseStage
    reason: str
    closed_at: datetime


@dataclass(frozen=True)
class Woken(Then):
    """The loop's sleep ended: the answer is True when the time came."""

    step: PlanStep | None


@dataclass(frozen=True)
class StepDue(Then):
    """The step's time came: re-read the ledger, then run it if anything is still open."""

    step: PlanStep


@dataclass(frozen=True)
class RunStep(Then):
    step: PlanStep


@dataclass(frozen=True)
class StepSent(StepThen):
    pass


@dataclass(frozen=True)
class StepSuspended(StepThen):
    pass


@dataclass(frozen=True)
class SuspensionChecked(StepThen):
    pass


@dataclass(frozen=True)
class HandoverStarted(StepThen):
    started_at: datetime = field(kw_only=True)


@dataclass(frozen=True)
class CourtPrepared(StepThen):
    pass


@dataclass(frozen=True)
class CourtStarted(StepThen):
    note: str = field(kw_only=True)


@dataclass(frozen=True)
class WatchRead(Then):
    """The ledger was read because a payment came in during a send: cover back at once if cleared."""


@dataclass(frozen=True)
class WriteOffRead(Then):
    request: WriteOff


@dataclass(frozen=True)
class FilingApproved(Then):
    approver: str
    note: str


@dataclass(frozen=True)
class FilingRecorded(Then):
    approver: str


@dataclass(frozen=True)
class TerminationLetterSent(Then):
    request: TerminationDecision


@dataclass(frozen=True)
class Terminated(Then):
    """The termination is recorded in the ledger, effective `effective_at`; paying everything
    before `cure_until` voids it."""

    request: TerminationDecision
    effective_at: datetime
    cure_until: datetime | None = None  # None: computed from `effective_at` (cases before the letter)
    letter: SentMessage | None = None  # the termination letter, when one was sent


@dataclass(frozen=True)
class RequestOpened(Then):
    """The customer's request is in its queue: note it in the journal; a dispute pauses the case."""

    request: CustomerRequest


@dataclass(frozen=True)
class StaffPaymentBooked(Then):
    request: RecordPayment


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    then: Then | None = field(default=None, kw_only=True)

    @property
    def asks_person_on_failure(self) -> bool:
        """An activity of a plan step failed for good (bad master data): the case holds for a person."""
        return isinstance(self.then, StepThen)


@dataclass(frozen=True)
class ReadArrears(Command):
    """`LedgerActivities.load_arrears`: the ledger, not the case, holds the money."""

    request: LoadArrears


@dataclass(frozen=True)
class Send(Command):
    """`Outbox.send_message`. `watch_payments`: while it runs, a payment re-reads the ledger and a
    cleared balance restores cover at once (`PaymentsWhileBusy`)."""

    request: SendMessage
    summary: str
    watch_payments: bool = True


@dataclass(frozen=True)
class ChangeStatus(Command):
    """`LedgerActivities.change_contract_status`; the answer is whether the ledger changed it."""

    request: ChangeContractStatus
    summary: str


@dataclass(frozen=True)
class PrepareCourt(Command):
    request: PrepareCourtApplication
    summary: str = "Prepare court application"


@dataclass(frozen=True)
class StartHandover(Command):
    """Start the `AgentHandover` child (ParentClosePolicy.ABANDON: the case ends it itself). The
    workflow fills in its own id as `parent_workflow_id`."""

    input: HandoverInput
    workflow_id: str
    summary: str


@dataclass(frozen=True)
class StartCourt(Command):
    """Start the `CourtDunning` child (ABANDON, as the handover)."""

    input: CourtInput
    workflow_id: str
    summary: str


@dataclass(frozen=True)
class EndHandover(Command):
    """Cancel the agent's handover (it closes its task itself); `wait`: until it has ended."""

    workflow_id: str
    wait: bool


@dataclass(frozen=True)
class SignalCourt(Command):
    """Signal the court child; the answer is False when it had ended already."""

    workflow_id: str
    signal: str
    arg: Any


@dataclass(frozen=True)
class AwaitCourt(Command):
    """Wait until the court child started by this run has ended (none after continue-as-new)."""


@dataclass(frozen=True)
class CloseInLedger(Command):
    request: CloseCase
    summary: str


@dataclass(frozen=True)
class ApproveFiling(Command):
    request: ApproveCourtApplication
    summary: str = "Record approval and file"


@dataclass(frozen=True)
class RecordStaffPayment(Command):
    request: BookPayment
    summary: str = "Book the staff payment"


@dataclass(frozen=True)
class OpenRequest(Command):
    """`PortalActivities.open_service_request`: the customer's request joins a person's queue."""

    request: OpenServiceRequest
    summary: str = "Open the customer's request for a person"


@dataclass(frozen=True)
class Publish(Command):
    """Search attributes and the current details follow the state (the next step and its time)."""

    step: PlanStep | None
    at: datetime | None


@dataclass(frozen=True)
class Sleep(Command):
    """Publish, then wait until `until` (None: until something happens). The answer: True when the
    time came, False when a signal or update changed something first."""

    until: datetime | None
    step: PlanStep | None
    summary: str


@dataclass(frozen=True)
class Continue(Command):
    """Nothing to perform: feed `then` back at once (a point where the next decision needs the
    state as it is after the commands before it)."""


@dataclass(frozen=True)
class WithLock(Command):
    """Take the case's lock (one ledger-changing action at a time: the loop or a staff action), then
    feed `then` back and perform what follows while holding it."""


@dataclass(frozen=True)
class Checkpoint(Command):
    """A point where the case may continue as new (nothing half done, no payment unanswered)."""
