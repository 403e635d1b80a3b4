"""Sending messages: render from the ledger's current figures, write to the outbox, once per key,
then hand e-mail and SMS to the configured provider (providers/: the outbox itself by default,
SendGrid and Twilio when configured).

Every amount in a message comes from the ledger inside this activity and is checked against
the ledger again just before the message is stored: a message that is off by a cent is never
written (a §38 notice with a wrong amount is void). A message not yet accepted by its provider
is re-rendered by a retry, so what finally goes out is what the ledger says then.

Provider answers: 4xx → non-retryable `ProviderRejected` (the case goes on an attention hold);
a refused recipient marks the contact data invalid and the step falls back to the next channel
(letter last); 5xx/timeouts → retried, and a retry after the provider may already have accepted
asks the provider first (`find_email`/`find_sms`) instead of sending twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ledger import non_retryable
from channels.render import RenderError, render_message
from core.calendar import expected_receipt, notice_deadline, termination_cure_deadline
from core.languages import fee_label, premium_label
from core.references import payment_reference
from core.tokens import derive_token_id, pay_link_url
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.interest_claims import claim_default_interest
from models.activities import SendMessage, SentMessage
from models.case import Arrears
from models.ledger import Contract, Customer, Message, PayLink
from models.messages import (
    CONFIRMATION_KINDS,
    DEMANDING_KINDS,
    Channel,
    Creditor,
    LineItem,
    MessageContext,
    MessageKind,
    RenderedMessage,
)
from models.providers import DeliveryStatus, ProviderDelivery
from providers import deliveries
from providers.base import OutgoingEmail, OutgoingSms, ProviderError, RecipientInvalid
from providers.registry import Providers, build_providers

log = logging.getLogger(__name__)
TWILIO_STATUS_PATH = "/webhooks/twilio/status"
SHORT_PAY_PATH = "/p/"


def sms_pay_url(base_url: str, pay_url: str, token_id: str) -> str:
    """The pay link as an SMS carries it: `/p/<token id>` (128 bits from an HMAC, unguessable),
    which redirects to the signed link. The signed form is ~75 characters longer and would push
    the pay-link SMS into a second segment (tests/test_providers_sms.py counts them)."""
    return f"{base_url.rstrip('/')}{SHORT_PAY_PATH}{token_id}" if pay_url else ""


# Messages that demand payment (the catalogue's rows, models/messages.py): never sent when nothing is open any more.
DUNNING_KINDS = DEMANDING_KINDS


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


@dataclass(frozen=True)
class Pending:
    """A stored e-mail or SMS still to be handed to its provider (after the transaction that stored it)."""

    message_id: int
    key: str
    case_id: str
    channel: Channel
    rendered: RenderedMessage
    to: str
    headers: Mapping[str, str] = field(default_factory=dict)
    track: bool = False


def provider_failure(error: ProviderError) -> ApplicationError:
    """4xx: non-retryable with the provider's reason; 5xx/network: retried by Temporal."""
    kind = "ProviderUnavailable" if error.retryable else "ProviderRejected"
    return ApplicationError(str(error), type=kind, non_retryable=not error.retryable)


class Outbox:
    def __init__(self, engine: Engine, settings: Settings, providers: Providers | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.providers = providers or build_providers(settings)

    def external(self, channel: Channel) -> bool:
        """Does this channel go to a real provider (else the outbox row is the delivery)?"""
        if channel == Channel.EMAIL:
            return self.providers.email.external
        if channel == Channel.SMS:
            return self.providers.sms.external
        return False  # letters: printed from the outbox

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

    def itemise(self, session: Session, contract: Contract, arrears: Arrears, language: str = "de") -> list[LineItem]:
        """Every open premium and fee as its own line: the lines add up to the ledger balance. The
        engine's own words in a line ("Beitrag", "Mahnkosten") are written in `language`."""
        premiums = [
            LineItem(label=premium_label(i.period, language), due_date=i.due_date, amount_cents=i.open_cents)
            for i in arrears.items
        ]
        fees = service.open_fees(session, contract.id or 0)
        return premiums + [
            LineItem(
                label=fee_label(f.label, language),
                amount_cents=f.amount_cents - f.paid_cents,
                kind=f.kind.replace("cost", "fee"),
            )
            for f in fees
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
        queued = self.external(channel)
        message, created = service.add_message(
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
                sent_at=None if queued else now,
                status="queued" if queued else "sent",
            ),
        )
        if not created and message.status == "queued":
            # Never accepted by its provider: a retry sends what the ledger says now.
            message.recipient = recipient(channel, customer)
            message.subject, message.body_text, message.body_html = rendered.subject, rendered.text, rendered.html
            message.total_cents = total_cents
            session.add(message)
        return message.id or 0

    # --- activities ----------------------------------------------------------------------

    @activity.defn
    def send_message(self, request: SendMessage) -> SentMessage:
        try:
            return self._send(request)
        except (service.LedgerError, RenderError) as error:
            raise non_retryable(error) from error
        except ProviderError as error:
            raise provider_failure(error) from error

    def _send(self, request: SendMessage) -> SentMessage:
        with session_scope(self.engine) as session:
            # Locked like a payment booking: a payment lands either before this check (nothing is
            # sent, no fee booked) or after the message is stored (the case answers it then).
            contract = service.get_contract(session, request.contract_number, lock=True)
            customer = service.get_customer(session, contract)
            channel = next((c for c in request.channels if usable(c, customer)), Channel.LETTER)
            copies = [c for c in request.copies if c != channel and usable(c, customer)]
            open_now = service.arrears(session, request.contract_number, request.as_of).balance_cents
            if request.kind in DUNNING_KINDS and open_now <= 0:
                # Paid while the case was busy with this step: a demand for nothing would be untrue.
                return SentMessage(channel=channel, total_cents=0, skipped=True)
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
            if request.notice_plan is not None and request.notice_plan.claim_interest:
                claim_default_interest(  # the plan claims interest: booked before it is itemised
                    session,
                    contract_number=request.contract_number,
                    case_id=request.case_id,
                    key=request.key,
                    as_of=request.as_of,
                    at=request.now,
                )
            arrears = service.arrears(session, request.contract_number, request.as_of)
            items = self.itemise(session, contract, arrears, customer.language)
            total = sum(i.amount_cents for i in items)
            if total != arrears.balance_cents:
                raise AmountMismatch(
                    f"itemised {total} cents != ledger balance {arrears.balance_cents} cents", non_retryable=True
                )
            wants_link = request.kind not in CONFIRMATION_KINDS and total > 0
            pay_url = self.pay_link(session, contract, request.case_id, request.key, request.now) if wants_link else ""
        deadline_date, deadline, receipt = None, None, None
        terminated_on = request.terminated_on
        if request.kind == MessageKind.TERMINATION_LETTER and request.notice_plan is not None:
            # §38(3) VVG: the termination takes effect when the customer receives it, and paying
            # everything within one month of that voids it.
            plan, state = request.notice_plan, customer.state or None
            receipt = terminated_on = expected_receipt(plan, request.now, channel, state)
            deadline_date, deadline = termination_cure_deadline(plan, request.now, channel, state)
        elif request.notice_plan is not None:
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
            items=items if request.kind not in CONFIRMATION_KINDS else [],
            total_cents=total,
            paid_cents=request.paid_cents,
            paid_at=request.paid_at,
            terminated_on=terminated_on,
            cure_until=deadline_date if request.kind == MessageKind.TERMINATION_LETTER else request.cure_until,
            credit_cents=arrears.credit_cents,
            currency=contract.currency,
            deadline=deadline_date if request.kind != MessageKind.TERMINATION_LETTER else request.notice_deadline,
            legal_basis=request.notice_plan.legal_basis.value if request.notice_plan else request.legal_basis,
            timezone=request.timezone,
            pay_url=pay_url,
            payment_reference=payment_reference(contract.contract_number),
            creditor=self.creditor(),
        )
        short = sms_pay_url(
            self.settings.public_base_url,
            pay_url,
            derive_token_id(self.settings.link_secret, request.case_id, request.key),
        )
        sms_context = context.model_copy(update={"pay_url": short})
        rendered = {c: render_message(c, sms_context if c == Channel.SMS else context) for c in [channel, *copies]}
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
        for (c, r), message_id in zip(rendered.items(), ids, strict=True):
            if not self.external(c):
                continue
            try:
                self.deliver(
                    message_id,
                    f"{request.key}:{c}",
                    request.case_id,
                    c,
                    r,
                    recipient(c, customer),
                    request=request if c == channel else None,
                )
            except RecipientInvalid as error:
                log.warning(
                    "%s refused the %s recipient of %s:%s; contact marked invalid", error.provider, c, request.key, c
                )
                if c == channel:  # the step's main channel: send it on the next usable one
                    return self._send(request)
        return SentMessage(
            channel=channel,
            copies=copies,
            message_ids=ids,
            total_cents=total,
            fee_cents=fee_cents,
            deadline_date=deadline_date,
            deadline=deadline,
            expected_receipt=receipt,
        )

    def deliver(
        self,
        message_id: int,
        message_key: str,
        case_id: str,
        channel: Channel,
        rendered: RenderedMessage,
        to: str,
        *,
        request: SendMessage | None,
        headers: Mapping[str, str] | None = None,
        track: bool = False,
    ) -> str:
        """Hand one stored message to its provider, once: returns the provider's message id.
        `headers` and `track` go with an e-mail (marketing mail: RFC 8058 headers, tracking).

        The delivery row is committed before the provider is called, so a retry after a crash or
        a timeout knows an earlier attempt may have got through and asks the provider first.
        """
        provider = self.providers.email.name if channel == Channel.EMAIL else self.providers.sms.name
        started = datetime.now(UTC)
        with session_scope(self.engine) as session:
            delivery = deliveries.find_by_key(session, message_key)
            if delivery is not None and delivery.status != DeliveryStatus.SENDING and delivery.provider_message_id:
                return delivery.provider_message_id  # accepted before (maybe delivered or failed since)
            earlier_attempt = delivery.attempt_started_at if delivery is not None else None
            if delivery is None:
                message = session.get(Message, message_id)
                assert message is not None
                session.add(
                    ProviderDelivery(
                        message_key=message_key,
                        message_id=message_id,
                        case_id=case_id,
                        contract_id=message.contract_id,
                        channel=channel,
                        provider=provider,
                        is_primary=request is not None,
                        request=request.model_dump(mode="json") if request is not None else {},
                        attempt_started_at=started,
                    )
                )
        step = message_key.removeprefix(f"{case_id}:")
        provider_id: str | None = None
        try:
            if channel == Channel.EMAIL:
                email = OutgoingEmail(
                    to=to,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    case_id=case_id,
                    step=step,
                    headers=dict(headers or {}),
                    track=track,
                )
                if earlier_attempt is not None:
                    provider_id = self.providers.email.find_email(email, earlier_attempt)
                provider_id = provider_id or self.providers.email.send_email(email)
            else:
                sms = OutgoingSms(to=to, body=rendered.text, case_id=case_id, step=step)
                if earlier_attempt is not None:
                    provider_id = self.providers.sms.find_sms(sms, earlier_attempt)
                callback = f"{self.settings.public_base_url.rstrip('/')}{TWILIO_STATUS_PATH}"
                provider_id = provider_id or self.providers.sms.send_sms(sms, callback)
        except RecipientInvalid as error:
            with session_scope(self.engine) as session:
                delivery = deliveries.find_by_key(session, message_key)
                assert delivery is not None
                delivery.request = {}  # the activity falls back itself; no second fallback later
                session.add(delivery)
                deliveries.record_outcome(
                    session,
                    delivery,
                    DeliveryStatus.FAILED,
                    f"rejected/{error.status}",
                    datetime.now(UTC),
                    contact_invalid=True,
                )
            raise
        with session_scope(self.engine) as session:
            delivery = deliveries.find_by_key(session, message_key)
            assert delivery is not None
            deliveries.accept(session, delivery, provider_id, datetime.now(UTC))
        return provider_id

    # --- the one send path for every other message (campaign, agents, call notices) ---------------

    def stage(
        self, session: Session, draft: Message, *, headers: Mapping[str, str] | None = None, track: bool = False
    ) -> Pending | None:
        """Store an e-mail or SMS once by its key, inside the caller's transaction. With a real provider
        for its channel it is stored `queued` and returned, to be handed over by `hand_over` once the
        transaction has committed; in the embedded default the outbox row is the delivery (`sent`,
        None returned). A retry finds the row its first attempt stored: still queued, it is returned
        again (and `deliver` asks the provider before sending twice)."""
        channel = Channel(draft.channel)
        if self.external(channel):
            draft.status, draft.sent_at = "queued", None
        else:
            draft.status, draft.sent_at = "sent", draft.sent_at or draft.created_at
        message, _ = service.add_message(session, draft)
        if message.status != "queued":
            return None
        rendered = RenderedMessage(subject=message.subject, text=message.body_text, html=message.body_html)
        return Pending(
            message_id=message.id or 0,
            key=message.idempotency_key,
            case_id=message.case_id or "",
            channel=channel,
            rendered=rendered,
            to=message.recipient,
            headers=dict(headers or {}),
            track=track,
        )

    def hand_over(self, pending: Iterable[Pending | None]) -> list[str]:
        """Hand staged messages to their provider, each once. Returns the keys whose recipient the
        provider refused (their delivery and message are marked failed; the caller decides what that
        means: a campaign suppresses the address). Other provider errors: 4xx non-retryable, 5xx retried."""
        refused: list[str] = []
        for item in pending:
            if item is None:
                continue
            try:
                self.deliver(
                    item.message_id,
                    item.key,
                    item.case_id,
                    item.channel,
                    item.rendered,
                    item.to,
                    request=None,
                    headers=item.headers,
                    track=item.track,
                )
            except RecipientInvalid as error:
                log.warning("%s refused the recipient of %s", error.provider, item.key)
                refused.append(item.key)
            except ProviderError as error:
                raise provider_failure(error) from error
        return refused

    def agent_mail(
        self,
        session: Session,
        contract: Contract,
        agent_code: str | None,
        case_id: str,
        task_url: str,
        key: str,
        now: datetime,
        kind: MessageKind = MessageKind.AGENT_HANDOVER,
    ) -> tuple[Message, RenderedMessage]:
        """The e-mail to an agent about a task: the case in brief and the link, no customer contact data.
        Not stored yet: the caller decides how it is delivered."""
        agent = service.get_agent(session, agent_code)
        arrears = service.arrears(session, contract.contract_number, service.ledger_date(now))
        customer = service.get_customer(session, contract)
        context = MessageContext(
            kind=kind,
            # Agents have no language of their own in the master data: the customer's stands for the
            # market the contract belongs to (a Danish contract's agent reads Danish).
            language=customer.language,
            currency=contract.currency,
            letter_date=service.ledger_date(now),
            case_id=case_id,
            contract_number=contract.contract_number,
            product=contract.product,
            salutation_name=agent.name if agent else "Backoffice",
            items=self.itemise(session, contract, arrears, customer.language),
            total_cents=arrears.balance_cents,
            creditor=self.creditor(),
            agent_name=agent.name if agent else "Backoffice",
            task_url=task_url,
        )
        rendered = render_message(Channel.EMAIL, context)
        message = Message(
            idempotency_key=key,
            case_id=case_id,
            contract_id=contract.id,
            channel=Channel.EMAIL,
            kind=kind,
            recipient=agent.email if agent else "backoffice@example.invalid",
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            total_cents=arrears.balance_cents,
            created_at=now,
            sent_at=now,
            status="sent",
        )
        return message, rendered

    def notify_agent(self, case_id: str, contract_number: str, task_id: int, key: str, now: datetime) -> int:
        """E-mail to the responsible agent about a new handover task (no customer contact data)."""
        task_url = f"{self.settings.public_base_url}/tasks/{task_id}"
        return self.mail_agent(case_id, contract_number, None, task_url, key, now)

    def notify_agent_of_request(
        self, case_id: str, contract_number: str, agent_code: str, url: str, key: str, now: datetime
    ) -> int:
        """E-mail to the customer's agent: a message or callback request from the portal waits (issue #14)."""
        return self.mail_agent(case_id, contract_number, agent_code, url, key, now, MessageKind.AGENT_PORTAL_REQUEST)

    def mail_agent(
        self,
        case_id: str,
        contract_number: str,
        agent_code: str | None,
        task_url: str,
        key: str,
        now: datetime,
        kind: MessageKind = MessageKind.AGENT_HANDOVER,
    ) -> int:
        """One e-mail to an agent (the contract's, or `agent_code`), sent once per `key`."""
        with session_scope(self.engine) as session:
            contract = service.get_contract(session, contract_number)
            agent = agent_code or contract.agent_code
            draft, rendered = self.agent_mail(session, contract, agent, case_id, task_url, key, now, kind)
            if self.external(Channel.EMAIL):  # the agent's e-mail goes through the e-mail provider too
                draft.status, draft.sent_at = "queued", None
            message, _ = service.add_message(session, draft)
            message_id, status = message.id or 0, message.status
        if status == "queued":
            try:
                self.deliver(message_id, key, case_id, Channel.EMAIL, rendered, message.recipient, request=None)
            except ProviderError as error:
                raise provider_failure(error) from error
        return message_id
