"""Inputs and results of activities. No personal data: ids, amounts, channels and dates only."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from core.languages import FEE_LABEL
from core.timezone import BUSINESS_TIMEZONE
from models.ledger import ContractStatus
from models.messages import Channel, MessageKind
from models.plan import DunningPlan


class LoadArrears(BaseModel):
    contract_number: str
    as_of: date
    # The reading case (None: another reader, e.g. the channel fallback): its first read opens the
    # case's row in the case register (models/analytics.py) with the balance claimed at opening.
    case_id: str | None = None
    plan_id: str | None = None
    opened_at: datetime | None = None


class SendMessage(BaseModel):
    """Send one message of a case step, on the first usable channel plus copies."""

    case_id: str
    contract_number: str
    key: str  # idempotency key base: case id + step (+ payment ref for receipts)
    kind: MessageKind
    channels: list[Channel]
    copies: list[Channel] = Field(default_factory=list)
    fees_cents: dict[Channel, int] = Field(default_factory=dict)
    fee_label: str = FEE_LABEL  # the ledger label; messages print it in the customer's language
    now: datetime
    as_of: date
    paid_cents: int = 0  # receipts and confirmations: the payment(s) this message answers
    paid_at: datetime | None = None  # confirmations: when the clearing payment was received
    terminated_on: date | None = None  # confirmations after a §38(3) termination: when it took effect
    cure_until: date | None = None  # confirmations after a termination: the last day of the cure month
    notice_deadline: date | None = None  # termination letter: the expired deadline of the §38 notice
    legal_basis: str = "vvg38"  # the plan's: what a confirmation may say about cover (§37 vs §38 VVG)
    timezone: str = BUSINESS_TIMEZONE  # the plan's: moments are printed in local time
    # Set for a qualified notice (the deadline comes from it) and for a termination letter (the cure
    # month and the effective date come from it).
    notice_plan: DunningPlan | None = None


class SentMessage(BaseModel):
    channel: Channel
    copies: list[Channel] = Field(default_factory=list)
    message_ids: list[int] = Field(default_factory=list)
    total_cents: int
    fee_cents: int = 0
    deadline_date: date | None = None
    deadline: datetime | None = None
    expected_receipt: date | None = None  # termination letter: the day it takes effect
    # Nothing was open any more when the step came to send (a payment cleared the balance while
    # the case was busy): nothing was stored, no fee booked.
    skipped: bool = False


class ChangeContractStatus(BaseModel):
    contract_number: str
    to_status: ContractStatus
    reason: str
    key: str
    case_id: str
    at: datetime  # when the case recorded it
    # When it takes legal effect, if not `at`: a reactivation at the moment the clearing payment was
    # received (§38(2) VVG), however late a worker records it.
    effective_at: datetime | None = None
    only_with_arrears: bool = False  # suspension: refused (False) when nothing is open any more


class BookPayment(BaseModel):
    contract_number: str
    external_ref: str
    amount_cents: int
    received_at: datetime
    source: str
    premium_id: str | None = None


class PrepareCourtApplication(BaseModel):
    case_id: str
    contract_number: str
    now: datetime


class CourtApplicationPrepared(BaseModel):
    application_id: int
    claimed_cents: int
    # State of the central dunning court (setting `court_state`): its holidays extend the court
    # periods (§222(2) ZPO). The case passes it into CourtInput. None: nation-wide holidays only.
    court_state: str | None = None


class ApproveCourtApplication(BaseModel):
    case_id: str
    approver: str
    now: datetime


class CloseCase(BaseModel):
    """Side effects of ending a case: write-off or cancel in the ledger, open tasks closed."""

    case_id: str
    contract_number: str
    action: str  # paid | write_off | cancel
    reason: str
    now: datetime
    as_of: date
    stage: str | None = None  # the CaseStage reached before closing, for the case register (analytics)


class CaseClosed(BaseModel):
    written_off_cents: int = 0
    blocked_premiums: list[str] = Field(default_factory=list)
    tasks_closed: int = 0
    # This call closed the case's register row (False on a repeat: a local activity runs again when
    # its workflow task is retried). Business counters count a closing once (infra/observability.py).
    closed_now: bool = False


class SweepRequest(BaseModel):
    as_of: date | None = None  # None: the schedule's fire date (BUSINESS_TIMEZONE)


class SweepResult(BaseModel):
    as_of: date
    premiums_seen: int
    cases_signalled: int


class OpenServiceRequest(BaseModel):
    """The case accepted a customer's request: it joins its queue with a due date (issue #14)."""

    request_id: int
    case_id: str
    contract_number: str
    kind: str
    now: datetime
    key: str  # idempotency: the case and the request


class EscalateRequests(BaseModel):
    """The daily sweep: customers' requests unanswered past their due date go to a supervisor."""

    now: datetime


class RequestsEscalated(BaseModel):
    escalated: int  # requests newly marked escalated
    mailed: int  # of them, e-mailed to the agent's supervisor (the rest show in the back office's overdue view)
