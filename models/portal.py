"""The customer portal (issue #14): step-up sessions, one-time codes, the requests customers send to
people (clerk, finance, agent) and the files they attach.

A portal session is server-side like a staff session: the cookie holds a random id whose SHA-256 is
the row's key. One-time codes are stored only as hashes. Personal data (a new e-mail address, an
IBAN, a message) lives in these rows only — never in a workflow payload, id, URL or log line: the
case hears of a request by its row id (models/case.CustomerRequest).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel


class StepUpMethod(StrEnum):
    EMAIL_CODE = "email_code"  # a one-time code to the e-mail address on file
    SMS_CODE = "sms_code"  # a one-time code to the mobile number on file
    POSTCODE_BIRTH_DATE = "postcode_birth_date"  # postcode and date of birth, as in the master data


class PortalSession(SQLModel, table=True):
    __tablename__ = "portal_sessions"
    id_hash: str = Field(primary_key=True)  # SHA-256 of the cookie's random id
    customer_id: int = Field(foreign_key="customers.id", index=True)
    pay_link_token_id: str  # the link the customer stepped up from (the audit trail names it)
    method: str  # StepUpMethod
    language: str  # "de" | "en" | "da": the customer's, switchable
    created_at: datetime
    expires_at: datetime  # absolute end (short-lived: PORTAL_SESSION_MINUTES)
    last_seen_at: datetime  # idle end: PORTAL_IDLE_MINUTES after this
    revoked_at: datetime | None = None


class ChallengePurpose(StrEnum):
    STEP_UP = "step_up"
    NEW_EMAIL = "new_email"
    NEW_PHONE = "new_phone"
    NEW_ADDRESS = "new_address"


class PortalChallenge(SQLModel, table=True):
    """A one-time code sent to the customer: to step up, or to confirm a new address or number."""

    __tablename__ = "portal_challenges"
    id: int | None = Field(default=None, primary_key=True)
    purpose: str  # ChallengePurpose
    customer_id: int = Field(foreign_key="customers.id", index=True)
    pay_link_token_id: str | None = None  # step-up: the link it was asked from
    channel: str  # email | sms | letter
    destination: str  # where the code went (the address/number on file, or the new one)
    new_value: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))  # contact changes
    code_hash: str  # SHA-256 of the code
    created_at: datetime
    expires_at: datetime
    attempts: int = 0  # wrong codes entered; the challenge dies at PORTAL_CODE_ATTEMPTS
    used_at: datetime | None = None


class RequestQueue(StrEnum):
    CLERK = "clerk"  # back office: arrangements outside the guardrails, disputes, bank details
    FINANCE = "finance"  # proofs of payment, payment questions (answer within 4 working days)
    AGENT = "agent"  # the customer's agent: messages, callbacks (answer within 24 hours)


class RequestKind(StrEnum):
    ARRANGEMENT = "arrangement"  # an instalment plan or deferral outside the guardrails
    DISPUTE = "dispute"  # the claim is disputed: the case pauses
    PROOF_OF_PAYMENT = "proof_of_payment"
    BANK_DETAILS = "bank_details"  # new IBAN / direct-debit mandate: never applied automatically
    CONTACT_CHANGE = "contact_change"  # confirmed by code; recorded for the back office
    MESSAGE = "message"
    CALLBACK = "callback"


class RequestStatus(StrEnum):
    PENDING = "pending"  # written by the portal, not yet accepted by the case (never shown in a queue)
    OPEN = "open"  # the case accepted it: waiting for a person
    ANSWERED = "answered"  # a person replied; the customer sees the answer
    DONE = "done"
    DISCARDED = "discarded"  # the case refused it: kept for the record, never in a queue


class ServiceRequest(SQLModel, table=True):
    """Something a customer asked a person for, in the queue of clerks, finance or the agent."""

    __tablename__ = "service_requests"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    case_id: str = Field(index=True)
    queue: str = Field(index=True)  # RequestQueue
    kind: str  # RequestKind
    status: str = Field(default=RequestStatus.PENDING, index=True)  # RequestStatus
    summary: str  # one line for the queue, no personal data beyond the masked contract
    details: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))  # the customer's words, values
    upload_id: int | None = Field(default=None, foreign_key="portal_uploads.id")
    agent_code: str | None = None  # queue agent: whose
    created_by: str  # "customer portal"
    created_at: datetime
    due_at: datetime | None = None  # set when the case accepts it
    answer: str | None = None  # a person's reply, shown to the customer
    handled_by: str | None = None
    handled_at: datetime | None = None
    escalated_at: datetime | None = None  # unanswered past its due date: the supervisor was told (daily sweep)


class PortalUpload(SQLModel, table=True):
    """A file a customer attached (PDF, JPEG or PNG, type checked by its content, size-limited)."""

    __tablename__ = "portal_uploads"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    content_type: str  # application/pdf | image/jpeg | image/png, from the bytes, never the browser's claim
    size: int
    sha256: str
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime
