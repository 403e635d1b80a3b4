"""The abandoned-quote campaign: tables (consent proofs, persons, quotes, touchpoints, mails and
their events, experiment assignments, the frequency-cap ledger, suppressions) and the payloads
of its workflows and activities.

Personal data (e-mail address, IP, user agent) lives only in `campaign_persons` and
`consent_proofs`. Everything else — workflow ids, payloads, search attributes — carries the quote
id and the pseudonymous `person_key` (a keyed hash of the address), never the address itself.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from core.campaign import DEFAULT_PLAN, CampaignPlan, Segment

# --- tables ----------------------------------------------------------------------------------


class CampaignPerson(SQLModel, table=True):
    """One person across all campaigns, found by the keyed hash of the e-mail address."""

    __tablename__ = "campaign_persons"
    id: int | None = SQLField(default=None, primary_key=True)
    person_key: str = SQLField(unique=True, index=True)
    email: str | None = None  # None once purged
    unsubscribe_token_id: str = SQLField(unique=True)  # inside the signed one-click unsubscribe link
    created_at: datetime


class ConsentProof(SQLModel, table=True):
    """Proof of a double opt-in (UWG §7(2) Nr. 3, DOMAIN.md §9), one per quote."""

    __tablename__ = "consent_proofs"
    id: int | None = SQLField(default=None, primary_key=True)
    quote_id: str = SQLField(unique=True, index=True)
    person_key: str = SQLField(index=True)
    email: str | None = None  # the address the consent was given for; None once purged
    purpose: str
    consent_text_version: str
    source: str  # the page the form was on
    opt_in_at: datetime
    opt_in_ip: str | None = None
    opt_in_user_agent: str | None = None
    confirmation_token_id: str = SQLField(unique=True)
    confirmation_sent_at: datetime | None = None
    confirmed_at: datetime | None = None
    confirmed_ip: str | None = None
    confirmed_user_agent: str | None = None
    revoked_at: datetime | None = None
    purged_at: datetime | None = None


class QuoteStatus(StrEnum):
    NO_CONSENT = "no_consent"  # abandoned without opt-in: followed, never mailed
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PURGED = "purged"  # opt-in never confirmed; personal data deleted
    ACTIVE = "active"  # confirmed; reminders (or, in the holdout, none) running
    EXITED = "exited"  # touchpoint, unsubscribe, bounce or spam report ended the sequence
    FINISHED = "finished"  # sequence and conversion window over


class CampaignQuote(SQLModel, table=True):
    __tablename__ = "campaign_quotes"
    id: int | None = SQLField(default=None, primary_key=True)
    quote_id: str = SQLField(unique=True, index=True)
    person_key: str | None = SQLField(default=None, index=True)  # None when abandoned without opt-in
    workflow_id: str
    segment: str
    vehicle_age_years: int | None = None
    yearly_mileage_km: int | None = None
    calculator_step: str = ""  # where the person stopped; the resume link restores it
    resume_token_id: str = SQLField(unique=True)
    abandoned_at: datetime
    status: str = QuoteStatus.AWAITING_CONFIRMATION
    exit_reason: str | None = None
    exit_at: datetime | None = None
    converted_at: datetime | None = None  # first contract signature after abandoning
    conversion_channel: str | None = None
    # de | en | da: the language of the quote's mails (issue #17; migration 0019, German before it)
    language: str = SQLField(default="de", sa_column_kwargs={"server_default": "de"})


class CampaignEntry(SQLModel, table=True):
    """One accepted campaign entry (an abandoned quote with opt-in, a confirmation), counted per
    address and per IP within a window: the entry limits read these rows (ledger/campaign.py).
    `key` is a keyed hash of the address or IP, never the value itself."""

    __tablename__ = "campaign_entries"
    __table_args__ = (Index("ix_campaign_entries_scope_key_at", "scope", "key", "at"),)
    id: int | None = SQLField(default=None, primary_key=True)
    scope: str  # "quote:address", "quote:ip", "confirm:address", "confirm:ip"
    key: str
    at: datetime


class PersonWorkflow(SQLModel, table=True):
    """Which workflows run for a person: a touchpoint signals every one of them."""

    __tablename__ = "campaign_person_workflows"
    __table_args__ = (UniqueConstraint("person_key", "workflow_id"),)
    id: int | None = SQLField(default=None, primary_key=True)
    person_key: str = SQLField(index=True)
    workflow_id: str
    kind: str  # quote | onboarding | inspection
    created_at: datetime


class Touchpoint(SQLModel, table=True):
    """The single customer view's contacts: offer requested, contract signed, call centre, …"""

    __tablename__ = "campaign_touchpoints"
    id: int | None = SQLField(default=None, primary_key=True)
    event_id: str = SQLField(unique=True)
    person_key: str = SQLField(index=True)
    kind: str
    channel: str
    occurred_at: datetime
    recorded_at: datetime
    contract_number: str | None = None


class CampaignEmail(SQLModel, table=True):
    """A marketing (or confirmation) mail of one workflow step; the content is in `messages`."""

    __tablename__ = "campaign_emails"
    id: int | None = SQLField(default=None, primary_key=True)
    idempotency_key: str = SQLField(unique=True)  # workflow id + step
    workflow_id: str = SQLField(index=True)
    step: str
    kind: str
    person_key: str = SQLField(index=True)
    quote_id: str | None = SQLField(default=None, index=True)
    message_id: int | None = SQLField(default=None, foreign_key="messages.id")
    headers: dict[str, str] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    due_at: datetime  # when the step was due
    sent_at: datetime  # when it went out (later than due_at when quiet hours or the cap postponed it)
    postponed_reason: str | None = None


class EmailEvent(SQLModel, table=True):
    """Delivery and engagement events (open, click, bounce, …) per mail, i.e. per workflow step."""

    __tablename__ = "campaign_email_events"
    id: int | None = SQLField(default=None, primary_key=True)
    event_id: str = SQLField(unique=True)
    email_key: str = SQLField(index=True)
    workflow_id: str = SQLField(index=True)
    step: str
    event: str
    occurred_at: datetime
    recorded_at: datetime


class ExperimentAssignment(SQLModel, table=True):
    __tablename__ = "campaign_experiment_assignments"
    __table_args__ = (UniqueConstraint("quote_id", "experiment"),)
    id: int | None = SQLField(default=None, primary_key=True)
    quote_id: str = SQLField(index=True)
    experiment: str
    arm: str
    assigned_at: datetime


class ContactSlot(SQLModel, table=True):
    """The frequency-cap ledger: every marketing mail of a person, reserved before it waits."""

    __tablename__ = "campaign_contact_slots"
    id: int | None = SQLField(default=None, primary_key=True)
    idempotency_key: str = SQLField(unique=True)  # workflow id + step
    person_key: str = SQLField(index=True)
    workflow_id: str
    send_at: datetime
    status: str = "reserved"  # reserved | sent
    created_at: datetime


class SuppressionReason(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    SPAM_REPORT = "spam_report"


class Suppression(SQLModel, table=True):
    __tablename__ = "campaign_suppressions"
    __table_args__ = (UniqueConstraint("person_key", "reason"),)
    id: int | None = SQLField(default=None, primary_key=True)
    person_key: str = SQLField(index=True)
    reason: str
    created_at: datetime


# --- payloads (workflow inputs, signals, activities): ids and dates only ------------------------


class TouchpointKind(StrEnum):
    OFFER_REQUESTED = "offer_requested"
    CONTRACT_SIGNED = "contract_signed"
    CALL_CENTRE = "call_centre"
    BRANCH = "branch"
    AGENT = "agent"
    WEB = "web"


class ExitKind(StrEnum):
    TOUCHPOINT = "touchpoint"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    SPAM_REPORT = "spam_report"


class CampaignStage(StrEnum):
    """The `CampaignStage` search attribute and the status query's stage."""

    NO_CONSENT = "no_consent"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PURGED = "purged"
    WAITING = "waiting"  # waiting for the next reminder (or, in the holdout, for the window to close)
    POSTPONED = "postponed"  # reminder due, held by quiet hours or the frequency cap
    EXITED = "exited"
    FINISHED = "finished"


class QuoteInput(BaseModel):
    quote_id: str
    person_key: str | None  # None: abandoned without opt-in
    segment: Segment
    abandoned_at: datetime
    plan: CampaignPlan = Field(default_factory=lambda: DEFAULT_PLAN)


class ExitSignal(BaseModel):
    kind: ExitKind
    occurred_at: datetime
    detail: str = ""  # e.g. the touchpoint kind; never personal data


class ConsentConfirmed(BaseModel):
    confirmed_at: datetime


class SentMail(BaseModel):
    step: str
    due_at: datetime
    sent_at: datetime
    postponed_reason: str | None = None


class QuoteStatusView(BaseModel):
    """Everything the UI or the CLI needs about one quote workflow."""

    quote_id: str
    stage: CampaignStage
    segment: Segment
    arms: dict[str, str] = Field(default_factory=dict)
    confirmed_at: datetime | None = None
    mails: list[SentMail] = Field(default_factory=list)
    next_mail_at: datetime | None = None
    exit: ExitSignal | None = None
    journal: list[str] = Field(default_factory=list)


class SendConfirmation(BaseModel):
    quote_id: str
    key: str
    now: datetime
    retention_days: int


class RecordAssignments(BaseModel):
    quote_id: str
    arms: dict[str, str]
    now: datetime


class ReserveSlot(BaseModel):
    person_key: str
    key: str
    workflow_id: str
    due: datetime
    plan: CampaignPlan
    now: datetime


class SendCampaignMail(BaseModel):
    """One marketing mail of a workflow step. The activity re-checks suppressions and touchpoints
    just before storing it: a signal that is still on its way cannot let a mail slip out."""

    key: str
    workflow_id: str
    step: str
    kind: str  # template family under templates/de/
    person_key: str
    quote_id: str | None = None
    since: datetime  # touchpoints at or after this end a quote sequence
    stop_on_touchpoint: bool = True
    segment: Segment = Segment.STANDARD
    reminder_number: int = 0
    contract_number: str | None = None
    inspection_due: date | None = None
    due_at: datetime
    now: datetime
    postponed_reason: str | None = None


class MailResult(BaseModel):
    sent: bool
    blocked_by: ExitSignal | None = None
    message_id: int | None = None


class CheckExit(BaseModel):
    person_key: str
    since: datetime


class RecordQuoteOutcome(BaseModel):
    quote_id: str
    status: QuoteStatus
    at: datetime
    exit: ExitSignal | None = None


class FollowUpInput(BaseModel):
    """Onboarding (`onboarding-<contract>`) and inspection reminder (`inspection-<contract>`)."""

    contract_number: str
    person_key: str
    signed_at: datetime
    inspection_due: date | None = None
    plan: CampaignPlan = Field(default_factory=lambda: DEFAULT_PLAN)


class FollowUpResult(BaseModel):
    mails: list[SentMail] = Field(default_factory=list)
    stopped_by: ExitSignal | None = None
