"""Inputs, state and results of the dunning case workflow.

Every signal/update input is its own small model with defaults for optional fields, so fields
can be added later without breaking running cases. Amounts are integer cents.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

# Case stages, which of them are closed and the stage after each step kind live in the catalogue;
# imported here under their old names, so `from models.case import CaseStage` keeps working.
from core.steps import CLOSED_STAGES as CLOSED_STAGES
from core.steps import STAGE_AFTER_STEP as STAGE_AFTER_STEP
from core.steps import CaseStage as CaseStage
from models.messages import Channel
from models.plan import DunningPlan, SelfServiceRules, StepKind


class HoldKind(StrEnum):
    HOLD = "hold"
    PROMISE = "promise_to_pay"
    DISPUTE = "dispute"  # manual review: no end date, only `resume` ends it
    ATTENTION = "attention"  # a step failed on bad data: a person fixes it, then `resume` retries
    SMALL_SHORTFALL = "small_shortfall"  # a payment left only a few cents: a person decides, no escalation
    INSTALMENTS = "instalment_plan"  # escalation pauses while the agreed instalments arrive on time
    STOPPED = "stopped"  # automated dunning stopped (MD07, debtor deceased): only a person goes on


class Instalment(BaseModel):
    due: date
    amount_cents: int


class Hold(BaseModel):
    kind: HoldKind
    reason: str
    until: datetime | None = None  # None: until resumed
    promised_cents: int | None = None
    balance_at_promise_cents: int = 0
    set_by: str = ""
    schedule: list[Instalment] = Field(default_factory=list)  # instalment plan: what is due when
    instalment: int = 0  # instalment plan: index of the instalment the hold waits for


# --- ledger snapshots (what activities return) ---------------------------------------------


class OpenItem(BaseModel):
    """One unpaid premium as the ledger holds it now."""

    premium_id: str  # the billing system's external id
    period: str
    due_date: date
    open_cents: int


class Arrears(BaseModel):
    """The contract's arrears at one moment, read from the ledger."""

    contract_number: str
    items: list[OpenItem] = Field(default_factory=list)
    fees_open_cents: int = 0
    balance_cents: int = 0  # premiums + fees open; what the customer owes
    credit_cents: int = 0
    contract_status: str = "active"
    agent_code: str | None = None
    has_email: bool = False
    has_phone: bool = False
    # Automated dunning is stopped for the contract (MD07) until a person releases it: the case
    # holds even if it reads the ledger before the stop signal arrives.
    dunning_stopped: bool = False


# --- workflow input and state --------------------------------------------------------------


class StepRecord(BaseModel):
    key: str
    kind: StepKind
    at: datetime
    channel: Channel | None = None
    copies: list[Channel] = Field(default_factory=list)
    total_cents: int | None = None
    fee_cents: int = 0
    message_ids: list[int] = Field(default_factory=list)
    deadline: datetime | None = None
    note: str = ""


class CaseEvent(BaseModel):
    """A line in the case's own journal, shown by the `status` query."""

    at: datetime
    text: str


class CaseState(BaseModel):
    """The whole state of a case: passed as-is on continue-as-new."""

    case_id: str
    contract_number: str
    plan: DunningPlan
    stage: CaseStage = CaseStage.OVERDUE
    opened_at: datetime
    arrears: Arrears
    joined_at: dict[str, datetime] = Field(default_factory=dict)  # premium id → when it joined
    next_step: int = 0  # index into plan.steps; only moves forward, one step at a time
    steps_done: list[StepRecord] = Field(default_factory=list)
    deadline: datetime | None = None
    # Premiums the last qualified notice itemised. None: a case from before supplementary notices
    # existed (treated as "all noticed", so old cases never send one they did not plan).
    noticed_items: list[str] | None = None
    supplements: int = 0  # supplementary notices sent for premiums that joined after the notice
    handover_at: datetime | None = None
    reactivated_at: datetime | None = None  # cover restored, effective when the clearing payment came
    terminated_at: datetime | None = None  # the termination takes effect (the letter's expected receipt)
    cure_until: datetime | None = None  # paying everything before this voids the termination
    hold: Hold | None = None
    escalate_requested: bool = False
    court_approved_by: str | None = None
    payments_seen: list[str] = Field(default_factory=list)
    receipts_sent: int = 0
    self_service_arrangements: int = 0  # made by the customer in the portal (the plan allows a number)
    closed_at: datetime | None = None
    closed_reason: str = ""
    journal: list[CaseEvent] = Field(default_factory=list)


class PremiumOverdue(BaseModel):
    """A premium of this contract is overdue (from the ledger API or the sweep)."""

    premium_id: str
    reason: str = "overdue"  # overdue | direct_debit_returned


class CaseInput(BaseModel):
    """Start a case. From the Temporal UI: {"contract_number": "K-100001"} is enough."""

    contract_number: str
    plan_id: str | None = None  # a built-in plan; None: the contract's or the default plan
    plan: DunningPlan | None = None  # or a whole plan, pinned as given
    premiums: list[PremiumOverdue] = Field(default_factory=list)
    state: CaseState | None = None  # set only by continue-as-new


# --- signals -------------------------------------------------------------------------------


class PaymentBooked(BaseModel):
    """The ledger booked a payment for this contract (pay link, bank, agent, billing)."""

    payment_ref: str
    amount_cents: int
    # When the money was received (the ledger's `received_at`): cover returns from this instant
    # (§38(2) VVG), however late a worker gets to it. None (older senders): when the case saw it.
    received_at: datetime | None = None


class PaymentAwaited(BaseModel):
    """Which booked payment a caller waits for (update `payment_outcome`): it was signalled first."""

    payment_ref: str = Field(min_length=1, max_length=200)


class PaymentOutcome(BaseModel):
    """What a payment did to the case, once the case has read the ledger after it and acted: the
    balance left, the contract's status, and whether cover came back (the answer a payer sees)."""

    payment_ref: str
    balance_cents: int
    contract_status: str  # active, suspended, terminated (models.ledger.ContractStatus)
    cover_restored: bool  # this case restored cover (suspension or termination ended)
    on_hold: bool  # a person decides next (dispute, stop, small shortfall): nothing automatic follows
    closed: bool


class DunningStopped(BaseModel):
    """Automated dunning must stop for this contract (e.g. a direct debit returned with MD07,
    debtor deceased): the running case holds for a person; nothing more goes to the customer."""

    code: str  # e.g. "MD07"
    reason: str


# --- staff actions (updates) ---------------------------------------------------------------


class RecordPayment(BaseModel):
    amount_cents: int
    reference: str
    premium_id: str | None = None  # remittance names a premium
    source: str = "staff"
    note: str = ""


class HoldRequest(BaseModel):
    until: date
    reason: str
    by: str = "staff"


class Resume(BaseModel):
    reason: str = ""
    by: str = "staff"


class PromiseToPay(BaseModel):
    pay_by: date
    amount_cents: int | None = None  # None: the whole balance
    note: str = ""
    by: str = "staff"


class AgreeInstalments(BaseModel):
    """An instalment plan over the whole open balance: amounts add up to it to the cent."""

    instalments: list[Instalment]
    note: str = ""
    by: str = "staff"


class Dispute(BaseModel):
    reason: str
    by: str = "staff"


class CustomerArrangement(BaseModel):
    """What a customer arranges alone in the portal, within the plan's guardrails (issue #14,
    DOMAIN.md §11): monthly instalments over the whole balance, or the whole balance by a date."""

    kind: Literal["instalments", "deferral"]
    instalments: int = 0  # instalments: how many (monthly, from first_due)
    first_due: date | None = None  # instalments: the first one's date
    pay_by: date | None = None  # deferral: everything by this date
    by: str = "customer portal"


class CustomerRequest(BaseModel):
    """A customer asked a person for something in the portal. What they wrote (and any file) is in
    the ledger's service_requests row: only its id travels through the case, no personal data."""

    request_id: int
    kind: str  # models.portal.RequestKind
    by: str = "customer portal"


class RequestOpened(BaseModel):
    request_id: int
    queue: str
    due_at: datetime | None


class WriteOff(BaseModel):
    reason: str
    by: str = "staff"


class EscalateNow(BaseModel):
    reason: str
    by: str = "staff"


class Cancel(BaseModel):
    reason: str
    by: str = "staff"


class TerminationDecision(BaseModel):
    """A person approves or declines the proposed termination (Art. 22 GDPR: never automatic)."""

    by: str
    note: str = ""


class ApproveCourtFiling(BaseModel):
    approver: str
    note: str = ""


class PaymentResult(BaseModel):
    payment_ref: str
    booked: bool  # False: this reference was booked before, nothing changed
    allocated_cents: int
    credit_cents: int
    balance_cents: int
    # The case's answer, when the caller waited for it (ledger API, pay pages): cover restored or not.
    outcome: PaymentOutcome | None = None


class CaseStatus(BaseModel):
    """Everything a UI or the CLI needs about a case, in one object (the `status` query)."""

    case_id: str
    contract_number: str
    plan_id: str
    plan_version: int
    stage: CaseStage
    closed: bool
    hold: Hold | None
    balance_cents: int
    credit_cents: int
    items: list[OpenItem]
    deadline: datetime | None
    next_step: str | None
    next_step_at: datetime | None
    steps_done: list[StepRecord]
    journal: list[CaseEvent]
    # The portal's guardrails as pinned in the case, how many the customer used, and why the case takes
    # no self-service arrangement now (a core/selfservice.Verdict code), so its preview agrees with the case.
    self_service: SelfServiceRules | None = None
    self_service_arrangements: int = 0
    self_service_blocked: str | None = None
