"""What happens to a case: the one event `decide` takes at a time.

From outside (signals and staff updates), from the workflow's own loop (`Turn`, a payment during a
send), and the answers to the decider's own commands (`Done`, `Failed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.case.commands import Command
from models.agency import HandoverOutcome
from models.case import (
    AgreeInstalments,
    ApproveCourtFiling,
    Cancel,
    CustomerArrangement,
    CustomerRequest,
    Dispute,
    DunningStopped,
    EscalateNow,
    HoldRequest,
    PaymentBooked,
    PremiumOverdue,
    PromiseToPay,
    RecordPayment,
    Resume,
    TerminationDecision,
    WriteOff,
)
from models.court import CourtProgress


@dataclass(frozen=True)
class Event:
    pass


# --- the workflow's own loop -----------------------------------------------------------------


@dataclass(frozen=True)
class Turn(Event):
    """The loop turns: what now? Re-read the ledger, settle, or sleep until the next step."""


@dataclass(frozen=True)
class PaymentsWhileBusy(Event):
    """A payment was signalled while a send is still running."""


@dataclass(frozen=True)
class Done(Event):
    """A command finished; `result` is what the activity, timer or signal returned."""

    command: Command
    result: Any = None


@dataclass(frozen=True)
class Failed(Event):
    """An activity of a plan step failed for good (`Command.asks_person_on_failure`)."""

    command: Command
    cause: str


# --- from the ledger, the agent and the court (signals) ----------------------------------------


@dataclass(frozen=True)
class PremiumJoined(Event):
    premium: PremiumOverdue


@dataclass(frozen=True)
class PaymentReceived(Event):
    payment: PaymentBooked


@dataclass(frozen=True)
class LedgerStoppedDunning(Event):
    """A returned debit with MD07, a debtor deceased: only a person moves the case on."""

    stop: DunningStopped


@dataclass(frozen=True)
class AgentReported(Event):
    outcome: HandoverOutcome


@dataclass(frozen=True)
class CourtReported(Event):
    progress: CourtProgress


# --- staff actions (updates; their validators ask `refusal` first) ----------------------------


@dataclass(frozen=True)
class StaffAction(Event):
    pass


@dataclass(frozen=True)
class HoldRequested(StaffAction):
    request: HoldRequest


@dataclass(frozen=True)
class Resumed(StaffAction):
    request: Resume


@dataclass(frozen=True)
class Promised(StaffAction):
    request: PromiseToPay


@dataclass(frozen=True)
class InstalmentsAgreed(StaffAction):
    request: AgreeInstalments


@dataclass(frozen=True)
class Disputed(StaffAction):
    request: Dispute


@dataclass(frozen=True)
class EscalationRequested(StaffAction):
    request: EscalateNow


@dataclass(frozen=True)
class TerminationDeclined(StaffAction):
    request: TerminationDecision


@dataclass(frozen=True)
class TerminationApproved(StaffAction):
    request: TerminationDecision


@dataclass(frozen=True)
class CourtFilingApproved(StaffAction):
    request: ApproveCourtFiling


@dataclass(frozen=True)
class WriteOffRequested(StaffAction):
    request: WriteOff


@dataclass(frozen=True)
class CancelRequested(StaffAction):
    request: Cancel


@dataclass(frozen=True)
class PaymentRecorded(StaffAction):
    request: RecordPayment


# --- customer actions (portal updates; validated like staff actions, issue #14) ---------------


@dataclass(frozen=True)
class CustomerArranged(StaffAction):
    """The customer agreed instalments or a deferral alone, within the plan's guardrails."""

    request: CustomerArrangement


@dataclass(frozen=True)
class CustomerAsked(StaffAction):
    """The customer asked a person (a clerk, finance or their agent) for something."""

    request: CustomerRequest
