"""The billing ledger: SQLModel tables.

Amounts are integer cents. Every row that a workflow step or a provider event creates carries a
unique idempotency key (or external id), so a retried activity or a repeated webhook finds the
row it already wrote instead of writing a second one.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class ContractStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # in force, but no cover while arrears remain (§38(2) VVG)
    TERMINATED = "terminated"


class PremiumStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    WRITTEN_OFF = "written_off"


class CustomerKind(StrEnum):
    CONSUMER = "consumer"
    BUSINESS = "business"


class Agent(SQLModel, table=True):
    __tablename__ = "agents"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    name: str
    email: str
    phone: str | None = None  # shown to the agent's customers in the portal as a tel: link (E.164)
    buddy_code: str | None = None


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    id: int | None = Field(default=None, primary_key=True)
    customer_number: str = Field(unique=True, index=True)
    kind: CustomerKind = CustomerKind.CONSUMER
    name: str
    street: str = ""
    postal_code: str = ""
    city: str = ""
    state: str = ""  # Bundesland code (BY, NW, …) for regional holidays
    country: str = "DE"
    language: str = "de"
    birth_date: date | None = None  # the portal's step-up asks for it with the postcode (issue #14)
    email: str | None = None
    email_valid: bool = True
    phone: str | None = None
    phone_valid: bool = True


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"
    id: int | None = Field(default=None, primary_key=True)
    contract_number: str = Field(unique=True, index=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    agent_code: str | None = None
    product: str = ""
    currency: str = "EUR"
    status: ContractStatus = ContractStatus.ACTIVE
    payment_method: str = "self_payment"  # or direct_debit
    credit_cents: int = 0  # overpayments kept on the contract, refundable
    dunning_plan: str | None = None  # None: the configured default plan
    # Automated dunning stopped for the whole contract until a person releases it (DOMAIN.md §6: a
    # direct debit returned MD07, debtor deceased). While set, no case starts or joins and the
    # running case holds; the contract's premiums open at the stop are blocked with the code.
    dunning_stopped_code: str | None = None  # e.g. "MD07"
    dunning_stopped_reason: str | None = None
    dunning_stopped_at: datetime | None = None


class ContractStatusChange(SQLModel, table=True):
    """Every status change, so a claims handler can answer "covered on date X?"."""

    __tablename__ = "contract_status_changes"
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    from_status: ContractStatus | None
    to_status: ContractStatus
    effective_at: datetime  # when it takes legal effect: the coverage question reads this
    reason: str
    case_id: str | None = None
    idempotency_key: str = Field(unique=True)
    recorded_at: datetime | None = None  # when the engine wrote it (None: rows from before 2026-12)


class Premium(SQLModel, table=True):
    __tablename__ = "premiums"
    __table_args__ = (
        # The sweep reads only open premiums past due: keep that index narrow.
        Index("ix_premiums_open_due", "status", "due_date"),
    )
    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True)  # the billing system's id for this premium
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    period_start: date
    period_end: date
    due_date: date
    amount_cents: int
    paid_cents: int = 0
    status: PremiumStatus = PremiumStatus.OPEN
    # Not dunned: no case, notice, SMS, court application or interest claim counts it as arrears,
    # and a payment pays it only when the payer names it. Why, in dunning_block_reason:
    # "cancelled: …" (staff cancelled the case, e.g. booked in error; final) or a contract stop
    # code such as "MD07" (lifted when a person releases the contract).
    dunning_blocked: bool = False
    dunning_block_reason: str | None = None


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    id: int | None = Field(default=None, primary_key=True)
    external_ref: str = Field(unique=True)  # provider/bank/ledger reference: books once
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    amount_cents: int
    received_at: datetime
    source: str  # ledger | paylink | staff | bank | agent | testpay
    designated_premium: str | None = None  # remittance names a premium (§366(1) BGB)
    credit_cents: int = 0  # part not needed for open items, kept as credit
    returned: bool = False  # direct debit came back: allocations reversed
    return_reason: str | None = None


class Allocation(SQLModel, table=True):
    __tablename__ = "allocations"
    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", index=True)
    target: str  # fee | interest | premium
    target_id: int
    amount_cents: int


class Fee(SQLModel, table=True):
    """Dunning costs, booked once per case step (only actual costs: BGH VIII ZR 95/18)."""

    __tablename__ = "fees"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    premium_id: int | None = Field(default=None, foreign_key="premiums.id")
    case_id: str
    label: str
    amount_cents: int
    paid_cents: int = 0
    written_off: bool = False
    booked_at: datetime
    # cost (dunning costs) | interest (default interest the plan chose to claim, §288 BGB):
    # payments pay costs, then interest, then the premium (§367 BGB).
    kind: str = Field(default="cost", sa_column_kwargs={"server_default": "cost"})


class Message(SQLModel, table=True):
    """The outbox: every e-mail, SMS and letter the engine sends, with its content."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    case_id: str | None = Field(default=None, index=True)
    contract_id: int | None = Field(default=None, foreign_key="contracts.id")
    channel: str
    kind: str
    recipient: str  # e-mail address, phone number or postal address
    subject: str = ""
    body_text: str
    body_html: str = ""
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    total_cents: int | None = None  # the amount the message states, for audits
    status: str = "queued"  # queued | sent | delivered | failed
    created_at: datetime
    sent_at: datetime | None = None


class AgentTask(SQLModel, table=True):
    __tablename__ = "agent_tasks"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    case_id: str = Field(index=True)
    contract_id: int = Field(foreign_key="contracts.id")
    agent_code: str
    kind: str = "handover"
    status: str = "open"  # open | done | cancelled
    open_cents: int
    created_at: datetime
    due_at: datetime
    outcome: str | None = None


class PayLink(SQLModel, table=True):
    __tablename__ = "pay_links"
    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True)  # public id inside the signed token
    case_id: str = Field(index=True)
    contract_id: int = Field(foreign_key="contracts.id")
    step: str
    created_at: datetime
    expires_at: datetime


class TestPaySession(SQLModel, table=True):
    """A checkout at the built-in test payment provider (the embedded stand-in for Stripe)."""

    __tablename__ = "testpay_sessions"
    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(unique=True)
    pay_link_token_id: str
    contract_id: int = Field(foreign_key="contracts.id")
    case_id: str
    amount_cents: int
    status: str = "open"  # open | paid
    created_at: datetime
    # A checkout opened in the customer portal (issue #14): whose it is, and how its amount is shared
    # among the customer's contracts (ledger/portal_payments.Share rows). None: a pay link's checkout
    # for `contract_id` alone.
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    allocation: list[dict[str, object]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ProcessedEvent(SQLModel, table=True):
    """Ledger events and provider webhooks seen, for de-duplication by event id."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("source", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str
    event_id: str
    received_at: datetime
    result: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    # SHA-256 of the event as sent (canonical JSON): the same id with another payload is refused
    # (409) instead of answered with the first result. None for events recorded before 0010.
    payload_sha256: str | None = None


class CourtApplication(SQLModel, table=True):
    """Mahnbescheid application record (§690 ZPO), waiting for a person's approval."""

    __tablename__ = "court_applications"
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(unique=True)
    contract_id: int = Field(foreign_key="contracts.id")
    record: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = "prepared"  # prepared | approved | filed
    prepared_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
