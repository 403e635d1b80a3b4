"""Payloads and state of the `CourtDunning` workflow (gerichtliches Mahnverfahren, §§688ff ZPO).

The state machine is DOMAIN.md §5; its transitions are the table `TRANSITIONS` in
`workflows/court.py`. Tables for court events and documents live in `models/agency.py`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field


class CourtState(StrEnum):
    """Search attribute `CourtState`."""

    APPLICATION_PREPARED = "application_prepared"  # JSON + PDF ready; a person must approve
    FILED = "filed"
    ISSUED = "issued"  # Mahnbescheid issued
    SERVED = "served"  # objection window (2 weeks, §692 ZPO) running
    NOT_SERVED = "not_served"  # address research, then refile
    ENFORCEMENT_ORDER_DUE = "enforcement_order_due"  # window passed: apply within 6 months of service (§701 ZPO)
    ENFORCEMENT_ORDER_APPLIED = "enforcement_order_applied"
    ENFORCEMENT_ORDER_SERVED = "enforcement_order_served"  # Einspruch window (2 weeks, §§700, 339 ZPO)
    LAWSUIT = "lawsuit"  # objection: contested proceedings (streitiges Verfahren)
    TITLE_FINAL = "title_final"
    ENFORCEMENT = "enforcement"
    LONG_TERM_MONITORING = "long_term_monitoring"
    SETTLED = "settled"  # paid in full
    LAPSED = "lapsed"  # six months after service without an enforcement order application
    CLOSED = "closed"  # lawsuit lost, withdrawn, written off or cancelled


FINAL_STATES = {CourtState.SETTLED, CourtState.LAPSED, CourtState.CLOSED}


class CourtEventKind(StrEnum):
    """What the court (or a bailiff) reports. Staff record them, or a court feed signals them."""

    ISSUED = "issued"
    SERVED = "served"
    NOT_SERVED = "not_served"
    REFILED = "refiled"  # after address research
    OBJECTION = "objection"  # Widerspruch against the Mahnbescheid
    ENFORCEMENT_ORDER_ISSUED = "enforcement_order_issued"
    ENFORCEMENT_ORDER_SERVED = "enforcement_order_served"
    ENFORCEMENT_OBJECTION = "enforcement_objection"  # Einspruch against the Vollstreckungsbescheid
    JUDGMENT_FINAL = "judgment_final"  # the lawsuit ended with a final title
    LAWSUIT_LOST = "lawsuit_lost"
    ENFORCEMENT_UNSUCCESSFUL = "enforcement_unsuccessful"
    DEBTOR_INFORMATION = "debtor_information"  # new address, employer, …: kept, no state change


class CourtRules(BaseModel):
    objection_window: timedelta = timedelta(days=14)  # §692(1) Nr. 3 ZPO
    enforcement_order_limit_months: int = 6  # §701 ZPO
    enforcement_objection_window: timedelta = timedelta(days=14)  # §§700(1), 339(1) ZPO
    enforcement_period: timedelta = timedelta(days=90)  # no result by then: long-term monitoring
    monitoring_interval: timedelta = timedelta(days=90)
    checks_per_run: int = Field(default=8, ge=1)  # continue-as-new after this many checks
    limitation_warning: timedelta = timedelta(days=180)


class CourtEventInput(BaseModel):
    kind: CourtEventKind
    occurred_on: date
    reference: str = ""
    note: str = ""
    by: str = "staff"


class PaymentForwarded(BaseModel):
    """The case booked a payment while in court; `balance_cents` is what is still open after it."""

    payment_ref: str
    balance_cents: int
    paid_on: date


class CourtApproval(BaseModel):
    approver: str
    note: str = ""


class CaseEnded(BaseModel):
    """The case closed (paid, written off, cancelled): the court dunning ends with it."""

    stage: str
    reason: str


class CourtMessage(BaseModel):
    """One queued input; kept in the state so that nothing is lost on continue-as-new."""

    kind: str  # event | payment | approve_filing | apply_enforcement | case_ended
    number: int = 0  # arrival order; an update waits until its message is processed
    event: CourtEventInput | None = None
    payment: PaymentForwarded | None = None
    approval: CourtApproval | None = None
    ended: CaseEnded | None = None


class CourtJournalLine(BaseModel):
    at: datetime
    state: CourtState
    text: str


class CourtData(BaseModel):
    """The whole state of the court dunning; passed as-is on continue-as-new."""

    case_id: str
    contract_number: str
    parent_workflow_id: str
    application_id: int
    claimed_cents: int
    oldest_due: date
    rules: CourtRules = Field(default_factory=CourtRules)
    state: CourtState = CourtState.APPLICATION_PREPARED
    pdf_document_id: int | None = None
    approved_by: str | None = None
    court_reference: str = ""
    served_on: date | None = None
    objection_window_ends: datetime | None = None
    enforcement_order_deadline: datetime | None = None  # six months after service
    enforcement_objection_window_ends: datetime | None = None
    enforcement_ends: datetime | None = None
    title_final_on: date | None = None
    limitation_date: date | None = None
    # State (Bundesland) of the court, e.g. "NW": its public holidays extend court periods
    # (§222(2) ZPO). None: nation-wide holidays only.
    court_state: str | None = None
    next_check_at: datetime | None = None
    checks_done: int = 0
    checks_this_run: int = 0
    run: int = 1
    sequence: int = 0  # numbers every recorded event: idempotency keys
    received: int = 0  # messages queued so far (signals and updates)
    processed: int = 0  # messages handled so far
    pending: list[CourtMessage] = Field(default_factory=list)
    payments: list[str] = Field(default_factory=list)
    debtor_information: list[str] = Field(default_factory=list)
    journal: list[CourtJournalLine] = Field(default_factory=list)


class CourtInput(BaseModel):
    case_id: str
    contract_number: str
    parent_workflow_id: str
    application_id: int
    claimed_cents: int
    oldest_due: date
    rules: CourtRules = Field(default_factory=CourtRules)
    court_state: str | None = None  # the court's state (holidays, §222(2) ZPO); None: nation-wide only
    state: CourtData | None = None  # set only by continue-as-new


class CourtProgress(BaseModel):
    """Sent to the case on every court state change (signal `court_progress`)."""

    state: CourtState
    text: str


# --- activity payloads ---------------------------------------------------------------------


class RenderCourtApplication(BaseModel):
    case_id: str
    now: datetime
    key: str


class FileCourtApplication(BaseModel):
    case_id: str
    approver: str
    now: datetime


class RecordCourtEvent(BaseModel):
    case_id: str
    kind: str
    occurred_on: date | None
    state_after: CourtState
    reference: str = ""
    note: str = ""
    now: datetime
    key: str


class ApplyEnforcementOrder(BaseModel):
    case_id: str
    contract_number: str
    approver: str
    served_on: date
    now: datetime
    key: str


class MonitoringCheck(BaseModel):
    case_id: str
    contract_number: str
    as_of: date
    limitation_date: date | None
    now: datetime
    key: str


class MonitoringResult(BaseModel):
    balance_cents: int
    contract_status: str
    limitation_warning: bool
