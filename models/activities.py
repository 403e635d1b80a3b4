"""Inputs and results of activities. No personal data: ids, amounts, channels and dates only."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from models.ledger import ContractStatus
from models.messages import Channel, MessageKind
from models.plan import DunningPlan


class LoadArrears(BaseModel):
    contract_number: str
    as_of: date


class SendMessage(BaseModel):
    """Send one message of a case step, on the first usable channel plus copies."""

    case_id: str
    contract_number: str
    key: str  # idempotency key base: case id + step (+ payment ref for receipts)
    kind: MessageKind
    channels: list[Channel]
    copies: list[Channel] = Field(default_factory=list)
    fees_cents: dict[Channel, int] = Field(default_factory=dict)
    fee_label: str = "Mahnkosten"
    now: datetime
    as_of: date
    paid_cents: int = 0
    notice_plan: DunningPlan | None = None  # set for a qualified notice: the deadline comes from it


class SentMessage(BaseModel):
    channel: Channel
    copies: list[Channel] = Field(default_factory=list)
    message_ids: list[int] = Field(default_factory=list)
    total_cents: int
    fee_cents: int = 0
    deadline_date: date | None = None
    deadline: datetime | None = None


class ChangeContractStatus(BaseModel):
    contract_number: str
    to_status: ContractStatus
    reason: str
    key: str
    case_id: str
    at: datetime


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


class CaseClosed(BaseModel):
    written_off_cents: int = 0
    blocked_premiums: list[str] = Field(default_factory=list)
    tasks_closed: int = 0


class SweepRequest(BaseModel):
    as_of: date | None = None  # None: the schedule's fire date (Europe/Berlin)


class SweepResult(BaseModel):
    as_of: date
    premiums_seen: int
    cases_signalled: int
