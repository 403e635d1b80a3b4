"""What a customer- or agent-facing message says, independent of channel and language.

The workflow decides *which* message goes out; an activity fills a `MessageContext` from the
ledger (so every amount equals the ledger to the cent) and `channels.render` turns it into
e-mail, SMS or a PDF letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel, Field

from core.timezone import BUSINESS_TIMEZONE


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"


class MessageKind(StrEnum):
    """One template family per kind, under templates/<language>/<kind>.<channel>.*; what each kind
    is: its row in `MESSAGE_KINDS` below."""

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
    AGENT_PORTAL_REQUEST = "agent_portal_request"  # to the agent: a customer's message or callback (portal)
    AGENT_REQUEST_OVERDUE = "agent_request_overdue"  # to the agent's supervisor: a portal request unanswered
    FINAL_REMINDER = "final_reminder"  # letzte Mahnung: court dunning follows without further notice


class Audience(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


@dataclass(frozen=True)
class MessageSpec:
    """One message kind in the catalogue (core/steps.py re-exports these rows): who reads it, on
    which channels it can go (a template exists for each, in every supported language: checked by
    tests/test_step_catalogue.py) and what it is in law."""

    channels: frozenset[Channel]
    demands_payment: bool = False  # never sent when nothing is open any more (a demand for nothing is untrue)
    # A declaration with legal effect that must reach the customer in text form (§126b BGB), never by
    # SMS, with its legal part visibly set apart and proof of receipt kept (ledger/evidence.py).
    text_form: bool = False
    confirmation: bool = False  # confirms a cleared balance: no items, no amounts, no pay link
    audience: Audience = Audience.CUSTOMER


_EMAIL_LETTER = frozenset({Channel.EMAIL, Channel.LETTER})
_ALL = frozenset(Channel)

MESSAGE_KINDS: Final = MappingProxyType(
    {
        MessageKind.REMINDER: MessageSpec(_EMAIL_LETTER, demands_payment=True),
        MessageKind.QUALIFIED_NOTICE: MessageSpec(_EMAIL_LETTER, demands_payment=True, text_form=True),
        MessageKind.PAY_LINK_SMS: MessageSpec(_ALL, demands_payment=True),
        MessageKind.PAYMENT_RECEIPT: MessageSpec(_ALL),
        MessageKind.TERMINATION_LETTER: MessageSpec(_EMAIL_LETTER, demands_payment=True, text_form=True),
        MessageKind.PAID_IN_FULL: MessageSpec(_ALL, confirmation=True),
        MessageKind.REACTIVATION: MessageSpec(_ALL, confirmation=True),
        MessageKind.TERMINATION_VOID: MessageSpec(_ALL, confirmation=True),
        MessageKind.PAID_AFTER_TERMINATION: MessageSpec(_ALL, confirmation=True),
        MessageKind.AGENT_HANDOVER: MessageSpec(frozenset({Channel.EMAIL}), audience=Audience.AGENT),
        MessageKind.AGENT_PORTAL_REQUEST: MessageSpec(frozenset({Channel.EMAIL}), audience=Audience.AGENT),
        MessageKind.AGENT_REQUEST_OVERDUE: MessageSpec(frozenset({Channel.EMAIL}), audience=Audience.AGENT),
        MessageKind.FINAL_REMINDER: MessageSpec(_EMAIL_LETTER, demands_payment=True),
    }
)

# Derived from the rows above.
CONFIRMATION_KINDS: Final = frozenset(kind for kind, spec in MESSAGE_KINDS.items() if spec.confirmation)
TEXT_FORM_KINDS: Final = frozenset(kind for kind, spec in MESSAGE_KINDS.items() if spec.text_form)
DEMANDING_KINDS: Final = frozenset(kind for kind, spec in MESSAGE_KINDS.items() if spec.demands_payment)


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
    timezone: str = BUSINESS_TIMEZONE  # the plan's zone: paid_at is printed in local time
    credit_cents: int = 0  # overpayment kept as credit
    # The contract's currency (ISO 4217): every amount of the message is printed in it (DKK on the
    # Danish plan); cents are its hundredths (øre). Languages only decide the notation.
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
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
