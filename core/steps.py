"""The catalogue: what every step kind and every case stage means, in one place (like Kill Bill's
overdue catalogue). Every other table derives from it: the plan validator's message steps, the stage
after a step, the metrics' stage counters, the Temporal UI's stage text and "what the case waits for".

A row per value; `tests/test_step_catalogue.py` fails when a value lacks its row, its text or, for a
message, a template in a supported language. The message kinds' rows live next to `MessageKind` in
`models/messages.py` (this module imports that enum, so it cannot also be imported from there) and are
re-exported here: `message_spec(kind)`.

Adding a step kind: docs/adding-a-step-kind.md. Adding a plan: docs/adding-a-plan.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from models.messages import MESSAGE_KINDS, MessageKind, MessageSpec


class StepKind(StrEnum):
    """What a plan step does. The meaning of each value is its row in `STEPS`."""

    REMINDER = "reminder"
    QUALIFIED_NOTICE = "qualified_notice"  # qualifizierte Mahnung, §38 VVG
    SUSPEND_COVER = "suspend_cover"
    PAY_LINK_SMS = "pay_link_sms"
    AGENCY_HANDOVER = "agency_handover"
    COURT_DUNNING = "court_dunning"  # gerichtliches Mahnverfahren, after a person approves
    TERMINATION = "termination"  # fristlose Kündigung §38(3) VVG: proposed, a person decides
    FINAL_REMINDER = "final_reminder"  # letzte Mahnung vor dem gerichtlichen Mahnverfahren


class CaseStage(StrEnum):
    """How far the escalation has come. The meaning of each value is its row in `STAGES`."""

    OVERDUE = "overdue"
    REMINDED = "reminded"
    NOTICE_SENT = "notice_sent"
    SUSPENDED = "suspended"
    SMS_SENT = "sms_sent"
    AGENCY = "agency"
    FINAL_REMINDER_SENT = "final_reminder_sent"
    COURT_APPROVAL = "court_approval"
    COURT_FILED = "court_filed"
    TERMINATION_APPROVAL = "termination_approval"
    TERMINATED = "terminated"
    PAID = "paid"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


class StepAction(StrEnum):
    """What the workflow does to run a step. A new message step kind needs no new action: the
    workflow sends the row's message kind (`send_message`)."""

    SEND_MESSAGE = "send_message"  # the row's message kind, on the plan step's channels
    SUSPEND_COVER = "suspend_cover"  # change the contract status to suspended (only with arrears)
    HAND_OVER = "hand_over"  # start the AgentHandover child
    PROPOSE_TERMINATION = "propose_termination"  # nothing happens until a person decides
    PREPARE_COURT_FILING = "prepare_court_filing"  # prepare the application, start the CourtDunning child


class LegalEffect(StrEnum):
    """What a step means in law (DOMAIN.md §2). Only `proposes_*` steps wait for a person."""

    NONE = "none"  # a request to pay; no legal consequence of its own
    STARTS_DEADLINE = "starts_deadline"  # §38(1) VVG: sets the payment deadline whose expiry has consequences
    SUSPENDS_COVER = "suspends_cover"  # §38(2) VVG: no cover for events after the deadline until paid
    PROPOSES_TERMINATION = "proposes_termination"  # §38(3) VVG; a person decides (Art. 22 GDPR)
    PROPOSES_COURT_FILING = "proposes_court_filing"  # Mahnbescheid (§§ 688 ff. ZPO); a person approves


@dataclass(frozen=True)
class StepSpec:
    """One step kind: what it does, what it sends, what it means, where the case stands after it."""

    title: str  # how a clerk names it; shown in the UI when a plan step has no summary of its own
    action: StepAction
    stage_after: CaseStage
    legal_effect: LegalEffect = LegalEffect.NONE
    message: MessageKind | None = None  # SEND_MESSAGE steps: the message kind sent to the customer


@dataclass(frozen=True)
class StageSpec:
    """One case stage: the UI's headline and what the case waits for while it is in this stage."""

    text: str  # the headline of the case's current details in the Temporal UI
    waits_for: str  # "Waiting for: …" when no plan step is due (the plan is through, or a person decides)
    closed: bool = False  # the case has ended
    needs_decision: bool = False  # no plan step runs until a person decides (updates named in waits_for)
    # Metrics (infra/observability.py): a finished activity that means a case entered this stage, and the
    # CloseCase action that closes a case in it. Stages entered by a step's message count on that message.
    entered_by_activity: str | None = None
    close_action: str | None = None


STEPS: Final = MappingProxyType(
    {
        StepKind.REMINDER: StepSpec(
            "Payment reminder", StepAction.SEND_MESSAGE, CaseStage.REMINDED, message=MessageKind.REMINDER
        ),
        StepKind.QUALIFIED_NOTICE: StepSpec(
            "Qualified notice (§38 VVG)",
            StepAction.SEND_MESSAGE,
            CaseStage.NOTICE_SENT,
            LegalEffect.STARTS_DEADLINE,
            MessageKind.QUALIFIED_NOTICE,
        ),
        StepKind.SUSPEND_COVER: StepSpec(
            "Suspend cover", StepAction.SUSPEND_COVER, CaseStage.SUSPENDED, LegalEffect.SUSPENDS_COVER
        ),
        StepKind.PAY_LINK_SMS: StepSpec(
            "SMS with pay link", StepAction.SEND_MESSAGE, CaseStage.SMS_SENT, message=MessageKind.PAY_LINK_SMS
        ),
        StepKind.AGENCY_HANDOVER: StepSpec("Hand over to the agent", StepAction.HAND_OVER, CaseStage.AGENCY),
        StepKind.COURT_DUNNING: StepSpec(
            "Court dunning (Mahnbescheid)",
            StepAction.PREPARE_COURT_FILING,
            CaseStage.COURT_APPROVAL,
            LegalEffect.PROPOSES_COURT_FILING,
        ),
        StepKind.TERMINATION: StepSpec(
            "Propose termination (§38(3) VVG)",
            StepAction.PROPOSE_TERMINATION,
            CaseStage.TERMINATION_APPROVAL,
            LegalEffect.PROPOSES_TERMINATION,
        ),
        StepKind.FINAL_REMINDER: StepSpec(
            "Final reminder before court",
            StepAction.SEND_MESSAGE,
            CaseStage.FINAL_REMINDER_SENT,
            message=MessageKind.FINAL_REMINDER,
        ),
    }
)

STAGES: Final = MappingProxyType(
    {
        CaseStage.OVERDUE: StageSpec("Overdue, nothing sent yet", "the first step of the plan"),
        CaseStage.REMINDED: StageSpec("Reminder sent", "payment"),
        CaseStage.NOTICE_SENT: StageSpec(
            "Qualified notice sent (§38 VVG), deadline running", "payment by the notice deadline"
        ),
        CaseStage.SUSPENDED: StageSpec(
            "Deadline passed: cover suspended", "payment: cover returns from the moment it is received (§38(2) VVG)"
        ),
        CaseStage.SMS_SENT: StageSpec("SMS with pay link sent", "payment through the pay link or by transfer"),
        CaseStage.AGENCY: StageSpec(
            "Handed over to the agent",
            "the agent's outcome or a payment",
            entered_by_activity="open_handover",  # the AgentHandover child assigns the task
        ),
        CaseStage.FINAL_REMINDER_SENT: StageSpec(
            "Final reminder before court sent", "payment before the court application is prepared"
        ),
        CaseStage.COURT_APPROVAL: StageSpec(
            "Court application prepared: waiting for approval",
            "a person approves the court filing (update `approve_court_filing`)",
            needs_decision=True,
            entered_by_activity="prepare_court_application",
        ),
        CaseStage.COURT_FILED: StageSpec(
            "Court dunning filed",
            "the court's answer or a payment",
            entered_by_activity="approve_court_application",
        ),
        CaseStage.TERMINATION_APPROVAL: StageSpec(
            "Termination proposed (§38(3) VVG): waiting for a decision",
            "a person approves or declines the termination (update `approve_termination` or `decline_termination`)",
            needs_decision=True,
        ),
        CaseStage.TERMINATED: StageSpec(
            "Contract terminated (§38(3) VVG)",
            "payment of everything within the cure month, which voids the termination",
        ),
        CaseStage.PAID: StageSpec("Paid: contract active", "nothing: the case is closed", True, close_action="paid"),
        CaseStage.WRITTEN_OFF: StageSpec("Written off", "nothing: the case is closed", True, close_action="write_off"),
        CaseStage.CANCELLED: StageSpec(
            "Cancelled by staff", "nothing: the case is closed", True, close_action="cancel"
        ),
    }
)

MESSAGES: Final = MESSAGE_KINDS  # the message kinds' rows (models/messages.py)


def step_spec(kind: StepKind) -> StepSpec:
    return STEPS[kind]


def stage_spec(stage: CaseStage) -> StageSpec:
    return STAGES[stage]


def message_spec(kind: MessageKind) -> MessageSpec:
    return MESSAGES[kind]


def stage_after(kind: StepKind) -> CaseStage:
    """Where the case stands once a step of this kind is done."""
    return STEPS[kind].stage_after


def message_kind(kind: StepKind) -> MessageKind | None:
    """The message a step of this kind sends to the customer, None for steps that send none."""
    return STEPS[kind].message


def stage_text(stage: CaseStage) -> str:
    return STAGES[stage].text


def waits_for(stage: CaseStage) -> str:
    """What a case in this stage waits for when no plan step is due."""
    return STAGES[stage].waits_for


def is_message_step(kind: StepKind) -> bool:
    return STEPS[kind].action == StepAction.SEND_MESSAGE


def sets_deadline(kind: StepKind) -> bool:
    """Does a step of this kind start the payment deadline (the qualified notice)? The workflow passes
    the plan to such a send, so the deadline is computed and printed, and interest is claimed if the
    plan says so; deadline-anchored steps may only follow such a step."""
    return STEPS[kind].legal_effect == LegalEffect.STARTS_DEADLINE


# --- derived tables --------------------------------------------------------------------------

MESSAGE_STEPS: Final = frozenset(kind for kind in StepKind if is_message_step(kind))
STAGE_AFTER_STEP: Final = MappingProxyType({kind: spec.stage_after for kind, spec in STEPS.items()})
CLOSED_STAGES: Final = frozenset(stage for stage, spec in STAGES.items() if spec.closed)
# No plan step runs in these stages: a person decides first.
DECISION_STAGES: Final = frozenset(stage for stage, spec in STAGES.items() if spec.needs_decision)
# Which finished activity means a case entered a stage (infra/observability.py counts them).
STAGE_OF_MESSAGE: Final = MappingProxyType(
    {spec.message: spec.stage_after for spec in STEPS.values() if spec.message is not None}
)
STAGE_OF_ACTIVITY: Final = MappingProxyType(
    {spec.entered_by_activity: stage for stage, spec in STAGES.items() if spec.entered_by_activity}
)
STAGE_OF_CLOSE_ACTION: Final = MappingProxyType(
    {spec.close_action: stage for stage, spec in STAGES.items() if spec.close_action}
)
