"""Sending messages: render from the ledger's current figures, write to the outbox, once per key.

Every amount in a message comes from the ledger inside this activity and is checked against
the ledger again just before the message is stored: a message that is off by a cent is never
written (a §38 notice with a wrong amount is void).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ledger import non_retryable
from channels.render import RenderError, render_message
from config import Settings
from core.calendar import notice_deadline
from core.references import rf_reference
from core.tokens import derive_token_id, pay_link_url
from ledger import service
from ledger.db import session_scope
from models.activities import SendMessage, SentMessage
from models.case import Arrears
from models.ledger import Contract, Customer, Message, PayLink
from models.messages import Channel, Creditor, LineItem, MessageContext, MessageKind, RenderedMessage


class AmountMismatch(ApplicationError):
    pass


def usable(channel: Channel, customer: Customer) -> bool:
    if channel == Channel.EMAIL:
        return bool(customer.email) and customer.email_valid
    if channel == Channel.SMS:
        return bool(customer.phone) and customer.phone_valid
    return True  # a letter can always be sent; the postal address is master data


def recipient(channel: Channel, customer: Customer) -> str:
    if channel == Channel.EMAIL:
        return customer.email or ""
    if channel == Channel.SMS:
        return customer.phone or ""
    return "\n".join(address_lines(customer))


def address_lines(customer: Customer) -> list[str]:
    return [
        line for line in (customer.name, customer.street, f"{customer.postal_code} {customer.city}".strip()) if line
    ]


class Outbox:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    # --- helpers shared by the activities ------------------------------------------------

    def creditor(self) -> Creditor:
        s = self.settings
        return Creditor(
            name=s.creditor_name, iban=s.creditor_iban, bic=s.creditor_bic, address_lines=[s.creditor_address]
        )

    def pay_link(self, session: Session, contract: Contract, case_id: str, key: str, now: datetime) -> str:
        """The case's personal pay link for this step (the same link again on a retry)."""
        token_id = derive_token_id(self.settings.link_secret, case_id, key)
        if service.find_pay_link(session, token_id) is None:
            session.add(
                PayLink(
                    token_id=token_id,
                    case_id=case_id,
                    contract_id=contract.id or 0,
                    step=key,
                    created_at=now,
                    expires_at=now + timedelta(days=self.settings.pay_link_days),
                )
            )
            session.flush()
        return pay_link_url(self.settings.public_base_url, self.settings.link_secret, token_id)

    def itemise(self, session: Session, contract: Contract, arrears: Arrears) -> list[LineItem]:
        """Every open premium and fee as its own line: the lines add up to the ledger balance."""
        premiums = [
            LineItem(label=f"Beitrag {i.period}", due_date=i.due_date, amount_cents=i.open_cents) for i in arrears.items
        ]
        fees = service.open_fees(session, contract.id or 0)
        return premiums + [
            LineItem(label=f.label, amount_cents=f.amount_cents - f.paid_cents, kind="fee") for f in fees
        ]

    def store(
        self,
        session: Session,
        *,
        key: str,
        case_id: str,
        contract: Contract,
        customer: Customer,
        channel: Channel,
        kind: MessageKind,
        rendered: RenderedMessage,
        total_cents: int | None,
        now: datetime,
    ) -> int:
        message, _ = service.add_message(
            session,
            Message(
                idempotency_key=key,
                case_id=case_id,
                contract_id=contract.id,
                channel=channel,
                kind=kind,
                recipient=recipient(channel, customer),
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                pdf=rendered.pdf,
                total_cents=total_cents,
                created_at=now,
                sent_at=now,
                status="sent",
            ),
        )
        return message.id or 0

    # --- activities ----------------------------------------------------------------------

    @activity.defn
    def send_message(self, request: SendMessage) -> SentMessage:
        try:
            return self._send(request)
        except (service.LedgerError, RenderError) as error:
            raise non_retryable(error) from error

    def _send(self, request: SendMessage) -> SentMessage:
        with session_scope(self.engine) as session:
            contract = service.get_contract(session, request.contract_number)
            customer = service.get_customer(session, contract)
            channel = next((c for c in request.channels if usable(c, customer)), Channel.LETTER)
            copies = [c for c in request.copies if c != channel and usable(c, customer)]
            fee_cents = request.fees_cents.get(channel, 0)
            if fee_cents:
                service.book_fee(
                    session,
                    key=f"{request.key}:fee",
                    contract_number=request.contract_number,
                    case_id=request.case_id,
                    label=request.fee_label,
                    amount_cents=fee_cents,
                    at=request.now,
                )
            arrears = service.arrears(session, request.contract_number, request.as_of)
            items = self.itemise(session, contract, arrears)
            total = sum(i.amount_cents for i in items)
            if total != arrears.balance_cents:
                raise AmountMismatch(
                    f"itemised {total} cents != ledger balance {arrears.balance_cents} cents", non_retryable=True
                )
            wants_link = request.kind != MessageKind.REACTIVATION and total > 0
            pay_url = self.pay_link(session, contract, request.case_id, request.key, request.now) if wants_link else ""
        deadline_date, deadline = None, None
        if request.notice_plan is not None:
            deadline_date, deadline = notice_deadline(request.notice_plan, request.now, channel, customer.state or None)
        context = MessageContext(
            kind=request.kind,
            language=customer.language,
            letter_date=request.as_of,
            case_id=request.case_id,
            contract_number=contract.contract_number,
            product=contract.product,
            salutation_name=customer.name,
            address_lines=address_lines(customer),
            items=items if request.kind != MessageKind.REACTIVATION else [],
            total_cents=total,
            paid_cents=request.paid_cents,
            credit_cents=arrears.credit_cents,
            deadline=deadline_date,
            pay_url=pay_url,
            payment_reference=rf_reference(contract.contract_number),
            creditor=self.creditor(),
        )
        rendered = {c: render_message(c, context) for c in [channel, *copies]}
        with session_scope(self.engine) as session:
            # The ledger may have moved while we rendered (a payment came in): never store a
            # message whose amount is no longer true. The retry renders the new figures.
            now_balance = service.arrears(session, request.contract_number, request.as_of).balance_cents
            if now_balance != total:
                raise ApplicationError(
                    f"balance changed from {total} to {now_balance} cents while rendering; re-rendering"
                )
            ids = [
                self.store(
                    session,
                    key=f"{request.key}:{c}",
                    case_id=request.case_id,
                    contract=contract,
                    customer=customer,
                    channel=c,
                    kind=request.kind,
                    rendered=r,
                    total_cents=total,
                    now=request.now,
                )
                for c, r in rendered.items()
            ]
        return SentMessage(
            channel=channel,
            copies=copies,
            message_ids=ids,
            total_cents=total,
            fee_cents=fee_cents,
            deadline_date=deadline_date,
            deadline=deadline,
        )

    def notify_agent(self, case_id: str, contract_number: str, task_id: int, key: str, now: datetime) -> int:
        """E-mail to the responsible agent about a new handover task (no customer contact data)."""
        with session_scope(self.engine) as session:
            contract = service.get_contract(session, contract_number)
            agent = service.get_agent(session, contract.agent_code)
            arrears = service.arrears(session, contract_number, now.date())
            context = MessageContext(
                kind=MessageKind.AGENT_HANDOVER,
                letter_date=now.date(),
                case_id=case_id,
                contract_number=contract_number,
                product=contract.product,
                salutation_name=agent.name if agent else "Backoffice",
                items=self.itemise(session, contract, arrears),
                total_cents=arrears.balance_cents,
                creditor=self.creditor(),
                agent_name=agent.name if agent else "Backoffice",
                task_url=f"{self.settings.public_base_url}/tasks/{task_id}",
            )
            rendered = render_message(Channel.EMAIL, context)
            message, _ = service.add_message(
                session,
                Message(
                    idempotency_key=key,
                    case_id=case_id,
                    contract_id=contract.id,
                    channel=Channel.EMAIL,
                    kind=MessageKind.AGENT_HANDOVER,
                    recipient=agent.email if agent else "backoffice@example.invalid",
                    subject=rendered.subject,
                    body_text=rendered.text,
                    body_html=rendered.html,
                    total_cents=arrears.balance_cents,
                    created_at=now,
                    sent_at=now,
                    status="sent",
                ),
            )
            return message.id or 0
