"""What a customer- or agent-facing message says, independent of channel and language.

The workflow decides *which* message goes out; an activity fills a `MessageContext` from the
ledger (so every amount equals the ledger to the cent) and `channels.render` turns it into
e-mail, SMS or a PDF letter.
"""

from __future__ import annotations

from datetime import date, datetime
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
    TERMINATION_LETTER = "termination_letter"  # Kündigung ohne Frist, §38(3) VVG: amount, cure month, pay link
    # Balance cleared: what the customer is told depends on what happened to the contract (DOMAIN §2).
    PAID_IN_FULL = "paid_in_full"  # never suspended: thanks, cover went on unchanged
    REACTIVATION = "reactivation"  # suspended, cover restored from the payment (§38(2) VVG)
    TERMINATION_VOID = "termination_void"  # terminated, paid within the month: termination void (§38(3))
    PAID_AFTER_TERMINATION = "paid_after_termination"  # paid after the month: settled, termination stands
    AGENT_HANDOVER = "agent_handover"  # to the agent, not the customer


# Confirmations of a cleared balance: no items, no amounts, no pay link.
CONFIRMATION_KINDS = frozenset(
    {
        MessageKind.PAID_IN_FULL,
        MessageKind.REACTIVATION,
        MessageKind.TERMINATION_VOID,
        MessageKind.PAID_AFTER_TERMINATION,
    }
)
# Declarations with legal effect that must reach the customer in text form (§126b BGB), never by SMS,
# with their legal part visibly set apart and proof of receipt kept (ledger/evidence.py).
TEXT_FORM_KINDS = frozenset({MessageKind.QUALIFIED_NOTICE, MessageKind.TERMINATION_LETTER})


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
    # Confirmations: when the clearing payment was received (time-zone aware); cover is back from then.
    paid_at: datetime | None = None
    terminated_on: date | None = None  # termination letter and its confirmations: the day it takes effect
    # Termination letter: last day on which paying everything voids it; confirmations check paid_at against it.
    cure_until: date | None = None
    timezone: str = "Europe/Berlin"  # the plan's zone: paid_at is printed in local time
    credit_cents: int = 0  # overpayment kept as credit
    # Qualified notice: pay by this date. Termination letter and confirmations (optional): the notice's
    # deadline whose expiry opened the gap without cover, printed where the gap is mentioned.
    deadline: date | None = None
    legal_basis: str = "vvg38"  # which law the notice follows (the plan's LegalBasis): its consequences text
    pay_url: str = ""
    payment_reference: str = ""  # RF creditor reference for bank transfers
    creditor: Creditor
    agent_name: str = ""  # agent handover: who the task is for; paid after termination: the customer's agent
    # Paid after termination: how to reach the agent or back office for new cover (phone, e-mail).
    contact_lines: list[str] = Field(default_factory=list)
    task_url: str = ""  # agent handover: link to the task


class RenderedMessage(BaseModel):
    subject: str = ""
    text: str
    html: str = ""
    pdf: bytes | None = None
