"""Agency handover and court dunning: ledger tables and the payloads of the `AgentHandover` workflow.

Tables (migration 0004_agency_court):
- `agent_profiles`: the agent's supervisor and the hash of their sign-in token for the agent page
  (the team buddy is `agents.buddy_code` from the foundation);
- `agent_absences`: the availability calendar (sick, holiday), whole local days, both ends included;
- `customer_notes`: every contact, every failed attempt, every reassignment and escalation, as the
  insurer's procedures demand (DOMAIN.md §8);
- `contact_attempts`: the structured attempts behind the notes (who, when, how, reached or not);
- `court_events` and `court_documents`: the court dunning history and the documents prepared for
  review (application JSON + PDF, enforcement order application).

Rows written by a workflow step carry an idempotency key (workflow id + step + sequence).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from core.timezone import BUSINESS_TIMEZONE

# --- tables ----------------------------------------------------------------------------------


class AgentProfile(SQLModel, table=True):
    __tablename__ = "agent_profiles"
    id: int | None = Field(default=None, primary_key=True)
    agent_code: str = Field(unique=True, index=True)
    supervisor_code: str | None = None
    token_hash: str | None = None  # unused since issue #12 (agents sign in with staff accounts); kept for old rows
    token_issued_at: datetime | None = None


class AgentAbsence(SQLModel, table=True):
    __tablename__ = "agent_absences"
    id: int | None = Field(default=None, primary_key=True)
    agent_code: str = Field(index=True)
    starts_on: date
    ends_on: date  # inclusive
    reason: str = ""


class CustomerNote(SQLModel, table=True):
    __tablename__ = "customer_notes"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    contract_id: int = Field(foreign_key="contracts.id")
    case_id: str = Field(index=True)
    task_id: int | None = None
    author: str  # agent code or "system"
    kind: str  # handover | reassigned | call | contact | message | escalation | outcome | court
    text: str
    at: datetime


class ContactAttempt(SQLModel, table=True):
    __tablename__ = "contact_attempts"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    task_id: int = Field(index=True)
    case_id: str
    agent_code: str
    channel: str  # call | sms | email | visit
    reached: bool
    day: date  # the agent's local day (HandoverRules.timezone)
    at: datetime
    note: str = ""


class CourtEvent(SQLModel, table=True):
    __tablename__ = "court_events"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    case_id: str = Field(index=True)
    kind: str
    occurred_on: date | None = None
    state_after: str
    reference: str = ""  # the court's file number (Geschäftszeichen), if given
    note: str = ""
    recorded_at: datetime


class CourtDocument(SQLModel, table=True):
    __tablename__ = "court_documents"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    case_id: str = Field(index=True)
    kind: str  # application | enforcement_order_application
    record: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime


# --- the AgentHandover workflow ------------------------------------------------------------


class HandoverState(StrEnum):
    """Search attribute `HandoverState`."""

    WAITING = "waiting"  # assigned, no attempt yet
    CONTACTING = "contacting"  # attempts logged, customer not reached yet
    REACHED = "reached"  # reached, outcome not recorded yet
    ESCALATED = "escalated"  # a contact deadline was missed: the supervisor was told
    DONE = "done"  # an outcome was recorded and sent to the case
    CANCELLED = "cancelled"  # the case ended (paid, written off) or went to court first


class ContactChannel(StrEnum):
    CALL = "call"
    SMS = "sms"
    EMAIL = "email"
    VISIT = "visit"


class OutcomeKind(StrEnum):
    PROMISE_TO_PAY = "promise_to_pay"
    INSTALMENT_PLAN = "instalment_plan"
    DISPUTE = "dispute"
    NOT_REACHABLE = "not_reachable"
    COLLECTED = "collected"  # the agent collected the money (cash, card at the customer's)
    WRONG_CONTACT_DATA = "wrong_contact_data"


class HandoverRules(BaseModel):
    """The insurer's service routine (DOMAIN.md §8)."""

    contact_within: timedelta = timedelta(hours=24)
    calls_per_day: int = PydanticField(default=2, ge=1, le=5)
    unreachable_after_days: int = PydanticField(default=3, ge=1, le=30)  # days with the full routine, not reached
    timezone: str = BUSINESS_TIMEZONE
    max_promise_days: int = 90


class HandoverInput(BaseModel):
    case_id: str
    contract_number: str
    parent_workflow_id: str
    key: str  # idempotency base, `<case id>:<step>`
    balance_cents: int = 0
    rules: HandoverRules = PydanticField(default_factory=HandoverRules)


class LogAttempt(BaseModel):
    """An agent's contact attempt (from the agent page, the CLI or the Temporal UI)."""

    reached: bool
    channel: ContactChannel = ContactChannel.CALL
    note: str = ""
    by: str  # the agent code


class RecordOutcome(BaseModel):
    kind: OutcomeKind
    pay_by: date | None = None  # promise to pay
    amount_cents: int | None = None  # promise (None: all) or collected amount
    instalments: int | None = None  # instalment plan: number of instalments
    first_instalment_on: date | None = None
    reference: str = ""  # collected: the agent's receipt number
    note: str = ""
    by: str


class HandoverOutcome(BaseModel):
    """What the agent achieved, sent to the case (signal `handover_outcome`)."""

    kind: OutcomeKind
    task_id: int
    by: str
    pay_by: date | None = None
    amount_cents: int | None = None
    instalments: int | None = None
    payment_ref: str | None = None  # collected: the booked payment's ledger reference
    note: str = ""


class AttemptView(BaseModel):
    at: datetime
    day: date
    channel: ContactChannel
    reached: bool
    by: str
    note: str = ""


class HandoverAssigned(BaseModel):
    task_id: int
    agent_code: str
    responsible_code: str
    supervisor_code: str
    why: str


class HandoverData(BaseModel):
    """The whole state of a handover (the `status` query returns it)."""

    case_id: str
    contract_number: str
    parent_workflow_id: str
    key: str
    rules: HandoverRules
    state: HandoverState = HandoverState.WAITING
    task_id: int = 0
    responsible_code: str = ""
    agent_code: str = ""  # who has the task now (the responsible agent, the buddy, or the supervisor)
    supervisor_code: str = ""
    assigned_at: datetime | None = None
    contact_due_at: datetime | None = None  # the next attempt is due by then (first: the 24 h SLA)
    sla_met: bool = False
    escalations: list[str] = PydanticField(default_factory=list)
    attempts: list[AttemptView] = PydanticField(default_factory=list)
    unreached_days: list[date] = PydanticField(default_factory=list)
    notified_days: list[date] = PydanticField(default_factory=list)  # "who calls and why" sent
    reached: bool = False
    last_day_checked: date | None = None
    outcome: HandoverOutcome | None = None
    journal: list[str] = PydanticField(default_factory=list)


# --- activity payloads ---------------------------------------------------------------------


class OpenHandover(BaseModel):
    case_id: str
    contract_number: str
    key: str
    now: datetime
    day: date
    contact_due_at: datetime


class CheckAssignee(BaseModel):
    case_id: str
    task_id: int
    responsible_code: str
    current_code: str
    day: date
    now: datetime
    key: str


class Assignee(BaseModel):
    agent_code: str
    changed: bool
    why: str = ""


class WriteAttempt(BaseModel):
    case_id: str
    task_id: int
    agent_code: str
    channel: ContactChannel
    reached: bool
    note: str
    day: date
    now: datetime
    key: str


class NotifyCustomer(BaseModel):
    """After the day's failed calls: tell the customer who calls and why (SMS, else e-mail)."""

    case_id: str
    contract_number: str
    task_id: int
    agent_code: str
    now: datetime
    key: str


class Escalate(BaseModel):
    case_id: str
    contract_number: str
    task_id: int
    agent_code: str
    supervisor_code: str
    reason: str
    now: datetime
    key: str


class CloseHandoverTask(BaseModel):
    case_id: str
    task_id: int
    outcome: str
    note: str
    by: str
    now: datetime
    key: str
