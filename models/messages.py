"""What a customer- or agent-facing message says, independent of channel and language.

The workflow decides *which* message goes out; an activity fills a `MessageContext` from the
ledger (so every amount equals the ledger to the cent) and `channels.render` turns it into
e-mail, SMS or a PDF letter.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"


class MessageKind(StrEnum):
    """One template family per kind, under templates/<language>/<kind>.<channel>.*"""

    REMINDER = "reminder"
    QUALIFIED_NOTICE = "qualified_notice"  # qualifizierte Mahnung, §38 VVG
    PAY_LINK_SMS = "pay_link"
    PAYMENT_RECEIPT = "payment_receipt"  # partial payment: new balance + fresh pay link
    REACTIVATION = "reactivation"  # balance cleared, cover restored
    AGENT_HANDOVER = "agent_handover"  # to the agent, not the customer


class LineItem(BaseModel):
    """One itemised line of arrears. Amounts in integer cents."""

    label: str  # e.g. "Beitrag 01.10.2026 – 31.10.2026"
    due_date: date | None = None
    amount_cents: int
    kind: str = "premium"  # premium | fee | interest


class Creditor(BaseModel):
    name: str
    iban: str
    bic: str = ""
    address_lines: list[str] = Field(default_factory=list)


class MessageContext(BaseModel):
    kind: MessageKind
    language: str = "de"
    letter_date: date
    case_id: str
    contract_number: str
    product: str = ""
    salutation_name: str  # "Erika Mustermann"
    address_lines: list[str] = Field(default_factory=list)  # postal address for letters
    items: list[LineItem] = Field(default_factory=list)
    total_cents: int = 0  # what the customer owes now; equals the sum of items
    paid_cents: int = 0  # for receipts: the payment just received
    credit_cents: int = 0  # overpayment kept as credit
    deadline: date | None = None  # qualified notice: pay by this date
    legal_basis: str = "vvg38"  # which law the notice follows (the plan's LegalBasis): its consequences text
    pay_url: str = ""
    payment_reference: str = ""  # RF creditor reference for bank transfers
    creditor: Creditor
    agent_name: str = ""  # agent handover: who the task is for
    task_url: str = ""  # agent handover: link to the task


class RenderedMessage(BaseModel):
    subject: str = ""
    text: str
    html: str = ""
    pdf: bytes | None = None
