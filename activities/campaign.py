"""The campaign's I/O: consent confirmation mail, purge, experiment records, the frequency-cap
ledger, marketing mails into the outbox, outcomes, and the experiment report's data.

Every write carries a key derived from the workflow id and the step, so a retried activity finds
what its first attempt wrote. Campaign mails take the engine's one send path (activities/messaging.py
`Outbox.stage` / `hand_over`, the same as dunning mail): stored in the outbox (`messages`) with the
campaign's own row (`campaign_emails`: the step and the RFC 8058 headers) in one transaction, then,
with SendGrid configured, handed to it after the commit — `custom_args` the workflow id and the step,
the one-click unsubscribe headers, open/click tracking on marketing mail only (never on the
confirmation: no tracking before consent). In the embedded default the outbox row is the delivery.
A provider refusing the address counts as a bounce: the person is suppressed and the sequence ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging import Outbox, Pending
from channels.render import environment
from core.campaign import (
    CONFIRM_SALT,
    RESUME_SALT,
    UNSUBSCRIBE_SALT,
    CampaignPlan,
    ExperimentReport,
    QuoteOutcome,
    experiment_report,
    expiring_token,
    next_send_window,
    schedule_send,
)
from core.languages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES
from core.timezone import BUSINESS_TIMEZONE
from core.tokens import sign
from infra.config import Settings
from ledger.db import session_scope
from models.campaign import (
    CampaignEmail,
    CampaignPerson,
    CampaignQuote,
    CheckExit,
    ConsentProof,
    ContactSlot,
    ExitKind,
    ExitSignal,
    ExperimentAssignment,
    MailResult,
    QuoteStatus,
    RecordAssignments,
    RecordQuoteOutcome,
    ReserveSlot,
    SendCampaignMail,
    SendConfirmation,
    Suppression,
    SuppressionReason,
    Touchpoint,
)
from models.ledger import Contract, Customer, Message

# The campaign writes to a person in their quote's language (CampaignQuote.language, issue #17), the
# follow-ups of a signed contract in its customer's; German when neither is known.
CAMPAIGN_LANGUAGE = DEFAULT_LANGUAGE
RESUME_LINK_DAYS = 30
UNSUBSCRIBE_LINK_DAYS = 3650  # the unsubscribe link in a mail must keep working


class Slot(BaseModel):
    send_at: datetime
    postponed_reason: str | None = None  # "quiet hours" | "frequency cap"


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def german_holidays(first_year: int, last_year: int) -> frozenset[date]:
    """Nation-wide German public holidays (the person's state is not known to the campaign)."""
    return _holidays(first_year, last_year)


@lru_cache(maxsize=16)
def _holidays(first_year: int, last_year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DE", years=range(first_year, last_year + 1)).keys())


def render_campaign_mail(
    kind: str, values: dict[str, Any], language: str = CAMPAIGN_LANGUAGE
) -> tuple[str, str, str]:
    """(subject, text, html) of a campaign mail from templates/<language>/<kind>.email.*, rendered with
    the engine's one Jinja environment (channels/render.py). Dates among `values` are written as the
    language writes them (08.12.2026, 8 Dec 2026)."""
    env = environment(language)
    values = {k: env.filters["datum"](v) if isinstance(v, date) else v for k, v in values.items()}
    subject = " ".join(env.get_template(f"{kind}.email.subject.txt").render(values).split())
    values = dict(values, subject=subject)
    text = env.get_template(f"{kind}.email.txt").render(values).strip()
    html = env.get_template(f"{kind}.email.html").render(values).strip()
    return subject, text, html


def quote_language(session: Session, quote_id: str) -> str:
    """The language the quote's mails are written in (German for a quote stored before 0019)."""
    quote = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == quote_id)).first()
    return quote.language if quote is not None and quote.language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def contract_language(session: Session, contract_number: str) -> str:
    """A signed contract's follow-ups (onboarding, inspection): its customer's language, if the
    ledger knows the contract yet, else German."""
    found = session.exec(
        select(Customer.language)
        .join(Contract, col(Contract.customer_id) == col(Customer.id))
        .where(Contract.contract_number == contract_number)
    ).first()
    return found if found in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def mail_language(session: Session, request: SendCampaignMail) -> str:
    if request.quote_id is not None:
        return quote_language(session, request.quote_id)
    if request.contract_number:
        return contract_language(session, request.contract_number)
    return DEFAULT_LANGUAGE


def unsubscribe_url(settings: Settings, token_id: str, now: datetime) -> str:
    token = expiring_token(
        settings.link_secret, UNSUBSCRIBE_SALT, token_id, now + timedelta(days=UNSUBSCRIBE_LINK_DAYS)
    )
    return f"{settings.public_base_url.rstrip('/')}/campaign/unsubscribe/{token}"


def resume_url(settings: Settings, token_id: str, expires_at: datetime) -> str:
    token = expiring_token(settings.link_secret, RESUME_SALT, token_id, expires_at)
    return f"{settings.public_base_url.rstrip('/')}/campaign/resume/{token}"


def confirm_url(settings: Settings, token_id: str) -> str:
    return (
        f"{settings.public_base_url.rstrip('/')}/campaign/confirm/{sign(settings.link_secret, CONFIRM_SALT, token_id)}"
    )


def active_exit(session: Session, person_key: str, since: datetime | None) -> ExitSignal | None:
    """What forbids mailing this person now: a suppression, or (for quote sequences) any
    touchpoint at or after `since`."""
    suppression = session.exec(select(Suppression).where(Suppression.person_key == person_key)).first()
    if suppression is not None:
        return ExitSignal(kind=ExitKind(suppression.reason), occurred_at=_utc(suppression.created_at))
    if since is not None:
        touch = session.exec(
            select(Touchpoint)
            .where(Touchpoint.person_key == person_key, Touchpoint.occurred_at >= since)
            .order_by(col(Touchpoint.occurred_at))
        ).first()
        if touch is not None:
            return ExitSignal(kind=ExitKind.TOUCHPOINT, occurred_at=_utc(touch.occurred_at), detail=touch.kind)
    return None


def release_reserved(session: Session, workflow_id: str) -> int:
    """Free the cap slots a workflow reserved but will not use (it exited while waiting)."""
    result = session.execute(
        delete(ContactSlot).where(col(ContactSlot.workflow_id) == workflow_id, col(ContactSlot.status) == "reserved")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: an https URL the mail client POSTs `List-Unsubscribe=One-Click` to."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class CampaignActivities:
    def __init__(self, engine: Engine, settings: Settings, outbox: Outbox | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.outbox = outbox or Outbox(engine, settings)

    def _refused(self, keys: list[str], person_key: str, now: datetime) -> ExitSignal | None:
        """The provider refused the address (hand_over's answer): suppressed like a bounce."""
        if not keys:
            return None
        from ledger.campaign import suppress  # ledger.campaign → workflows.campaign → this module

        with session_scope(self.engine) as session:
            suppress(session, person_key, SuppressionReason.BOUNCE, now)
        return ExitSignal(kind=ExitKind.BOUNCE, occurred_at=now, detail="address refused by the provider")

    @activity.defn
    def send_confirmation(self, request: SendConfirmation) -> int | None:
        """The double opt-in mail: a confirmation link, no advertising. None if already purged."""
        with session_scope(self.engine) as session:
            consent = session.exec(select(ConsentProof).where(ConsentProof.quote_id == request.quote_id)).first()
            if consent is None:
                raise ApplicationError(
                    f"quote {request.quote_id} has no consent proof", type="InvalidInput", non_retryable=True
                )
            if consent.email is None:
                return None
            subject, text, html = render_campaign_mail(
                "quote_confirmation",
                {
                    "insurer": self.settings.creditor_name,
                    "insurer_address": self.settings.creditor_address,
                    "source_page": consent.source,
                    "confirm_url": confirm_url(self.settings, consent.confirmation_token_id),
                    "retention_days": request.retention_days,
                    "unsubscribe_url": "",
                },
                quote_language(session, request.quote_id),
            )
            pending = self.outbox.stage(  # no advertising, no tracking before consent, no unsubscribe header
                session,
                Message(
                    idempotency_key=request.key,
                    case_id=request.key.rsplit(":", 1)[0],
                    channel="email",
                    kind="quote_confirmation",
                    recipient=consent.email,
                    subject=subject,
                    body_text=text,
                    body_html=html,
                    created_at=request.now,
                ),
            )
            message = session.exec(select(Message).where(Message.idempotency_key == request.key)).one()
            if session.exec(select(CampaignEmail).where(CampaignEmail.idempotency_key == request.key)).first() is None:
                session.add(
                    CampaignEmail(
                        idempotency_key=request.key,
                        workflow_id=request.key.rsplit(":", 1)[0],
                        step="confirmation",
                        kind="quote_confirmation",
                        person_key=consent.person_key,
                        quote_id=request.quote_id,
                        message_id=message.id,
                        headers={},
                        due_at=request.now,
                        sent_at=request.now,
                    )
                )
            consent.confirmation_sent_at = consent.confirmation_sent_at or request.now
            session.add(consent)
            message_id, person_key = message.id, consent.person_key
        if self._refused(self.outbox.hand_over([pending]), person_key, request.now) is not None:
            return None  # the address does not exist: the workflow waits for a confirmation that cannot come
        return message_id

    @activity.defn
    def purge_unconfirmed(self, request: RecordQuoteOutcome) -> bool:
        """Delete the personal data of an opt-in that was never confirmed. False if it was
        confirmed after all (the confirmation and the retention timer raced)."""
        with session_scope(self.engine) as session:
            consent = session.exec(select(ConsentProof).where(ConsentProof.quote_id == request.quote_id)).one()
            if consent.confirmed_at is not None:
                return False
            if consent.purged_at is None:
                consent.email = None
                consent.opt_in_ip = None
                consent.opt_in_user_agent = None
                consent.purged_at = request.at
                session.add(consent)
                for message in session.exec(
                    select(Message).where(Message.case_id == f"quote-{request.quote_id}", Message.channel == "email")
                ):
                    message.recipient = "(gelöscht)"
                    session.add(message)
                still_needed = session.exec(
                    select(ConsentProof).where(
                        ConsentProof.person_key == consent.person_key,
                        col(ConsentProof.purged_at).is_(None),
                        col(ConsentProof.revoked_at).is_(None),
                    )
                ).first()
                if still_needed is None:
                    person = session.exec(
                        select(CampaignPerson).where(CampaignPerson.person_key == consent.person_key)
                    ).first()
                    if person is not None:
                        person.email = None
                        session.add(person)
            self._set_status(session, request)
            return True

    @activity.defn
    def record_assignments(self, request: RecordAssignments) -> None:
        with session_scope(self.engine) as session:
            for experiment, arm in request.arms.items():
                existing = session.exec(
                    select(ExperimentAssignment).where(
                        ExperimentAssignment.quote_id == request.quote_id, ExperimentAssignment.experiment == experiment
                    )
                ).first()
                if existing is None:
                    session.add(
                        ExperimentAssignment(
                            quote_id=request.quote_id, experiment=experiment, arm=arm, assigned_at=request.now
                        )
                    )
            quote = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == request.quote_id)).one()
            if quote.status == QuoteStatus.AWAITING_CONFIRMATION:
                quote.status = QuoteStatus.ACTIVE
                session.add(quote)

    @activity.defn
    def check_exit(self, request: CheckExit) -> ExitSignal | None:
        with session_scope(self.engine) as session:
            return active_exit(session, request.person_key, request.since)

    @activity.defn
    def reserve_slot(self, request: ReserveSlot) -> Slot:
        """Book the person's next allowed send moment in the cap ledger (quiet hours + cap).

        One transaction per person (the person row is locked), so two campaigns of the same
        person cannot both take the last slot. A retry returns the slot booked the first time.
        """
        plan = request.plan
        with session_scope(self.engine) as session:
            session.exec(
                select(CampaignPerson).where(CampaignPerson.person_key == request.person_key).with_for_update()
            ).first()
            existing = session.exec(select(ContactSlot).where(ContactSlot.idempotency_key == request.key)).first()
            if existing is not None:
                return Slot(send_at=_utc(existing.send_at), postponed_reason=_reason(request, _utc(existing.send_at)))
            others = [
                _utc(slot.send_at)
                for slot in session.exec(select(ContactSlot).where(ContactSlot.person_key == request.person_key))
            ]
            days = german_holidays(request.due.year, request.due.year + 1)
            send_at = schedule_send(request.due, others, days, plan)
            session.add(
                ContactSlot(
                    idempotency_key=request.key,
                    person_key=request.person_key,
                    workflow_id=request.workflow_id,
                    send_at=send_at,
                    created_at=request.now,
                )
            )
            return Slot(send_at=send_at, postponed_reason=_reason(request, send_at))

    @activity.defn
    def send_campaign_mail(self, request: SendCampaignMail) -> MailResult:
        """Send one marketing mail with its one-click unsubscribe headers through the engine's send
        path — unless the person is suppressed or (for quote sequences) has been in touch meanwhile.
        A retry whose first attempt stored the mail but never got it to the provider checks again."""
        with session_scope(self.engine) as session:
            blocked = active_exit(session, request.person_key, request.since if request.stop_on_touchpoint else None)
            done = session.exec(select(CampaignEmail).where(CampaignEmail.idempotency_key == request.key)).first()
            if done is not None:
                stored = session.get(Message, done.message_id) if done.message_id else None
                if stored is None or stored.status != "queued":
                    return MailResult(sent=True, message_id=done.message_id)
                if blocked is not None:  # stored, never handed over, and the person left meanwhile
                    stored.status = "withheld"
                    session.add(stored)
                    session.delete(done)
                    release_reserved(session, request.workflow_id)
                    return MailResult(sent=False, blocked_by=blocked)
                pending = self.outbox.stage(session, stored, headers=done.headers, track=True)
                message_id = stored.id
            elif blocked is not None:
                release_reserved(session, request.workflow_id)
                return MailResult(sent=False, blocked_by=blocked)
            else:
                pending, message_id = self._store(session, request)
        return self._hand_over(pending, request, message_id)

    def _store(self, session: Session, request: SendCampaignMail) -> tuple[Pending | None, int | None]:
        """The new mail and its campaign row, in the caller's transaction (with the exit check)."""
        person = session.exec(select(CampaignPerson).where(CampaignPerson.person_key == request.person_key)).first()
        if person is None or person.email is None:
            raise ApplicationError(
                f"person {request.person_key} has no e-mail address on file",
                type="InvalidInput",
                non_retryable=True,
            )
        values: dict[str, Any] = {
            "insurer": self.settings.creditor_name,
            "insurer_address": self.settings.creditor_address,
            "unsubscribe_url": unsubscribe_url(self.settings, person.unsubscribe_token_id, request.now),
            "segment": request.segment.value,
            "reminder_number": request.reminder_number,
            "onboarding_number": request.reminder_number,
            "contract_number": request.contract_number or "",
            "inspection_due": request.inspection_due or "",  # a date: written as the language writes it
        }
        if request.quote_id is not None:
            quote = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == request.quote_id)).one()
            expires = request.now + timedelta(days=RESUME_LINK_DAYS)
            values["resume_url"] = resume_url(self.settings, quote.resume_token_id, expires)
            values["link_valid_until"] = expires.astimezone(ZoneInfo(BUSINESS_TIMEZONE)).date()
        subject, text, html = render_campaign_mail(request.kind, values, mail_language(session, request))
        headers = unsubscribe_headers(values["unsubscribe_url"])
        pending = self.outbox.stage(
            session,
            Message(
                idempotency_key=request.key,
                case_id=request.workflow_id,
                channel="email",
                kind=request.kind,
                recipient=person.email,
                subject=subject,
                body_text=text,
                body_html=html,
                created_at=request.now,
            ),
            headers=headers,
            track=True,  # marketing mail with consent: opens and clicks feed the step's events
        )
        message = session.exec(select(Message).where(Message.idempotency_key == request.key)).one()
        session.add(
            CampaignEmail(
                idempotency_key=request.key,
                workflow_id=request.workflow_id,
                step=request.step,
                kind=request.kind,
                person_key=request.person_key,
                quote_id=request.quote_id,
                message_id=message.id,
                headers=headers,
                due_at=request.due_at,
                sent_at=request.now,
                postponed_reason=request.postponed_reason,
            )
        )
        slot = session.exec(select(ContactSlot).where(ContactSlot.idempotency_key == request.key)).first()
        if slot is not None:  # the ledger keeps the real moment: a timer can fire a little late
            slot.status = "sent"
            slot.send_at = request.now
            session.add(slot)
        return pending, message.id

    def _hand_over(self, pending: Pending | None, request: SendCampaignMail, message_id: int | None) -> MailResult:
        refused = self._refused(self.outbox.hand_over([pending]), request.person_key, request.now)
        if refused is not None:
            return MailResult(sent=False, blocked_by=refused, message_id=message_id)
        return MailResult(sent=True, message_id=message_id)

    @activity.defn
    def record_outcome(self, request: RecordQuoteOutcome) -> None:
        with session_scope(self.engine) as session:
            self._set_status(session, request)
            release_reserved(session, f"quote-{request.quote_id}")

    @activity.defn
    def release_slots(self, workflow_id: str) -> int:
        with session_scope(self.engine) as session:
            return release_reserved(session, workflow_id)

    @staticmethod
    def _set_status(session: Session, request: RecordQuoteOutcome) -> None:
        quote = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == request.quote_id)).one()
        quote.status = request.status
        if request.exit is not None and quote.exit_reason is None:
            quote.exit_reason = (
                request.exit.kind if not request.exit.detail else f"{request.exit.kind}:{request.exit.detail}"
            )
            quote.exit_at = request.exit.occurred_at
        session.add(quote)


def _reason(request: ReserveSlot, send_at: datetime) -> str | None:
    if send_at == request.due:
        return None
    days = german_holidays(request.due.year, request.due.year + 1)
    return "quiet hours" if send_at == next_send_window(request.due, days, request.plan) else "frequency cap"


# --- the experiment report's data --------------------------------------------------------------


def quote_outcomes(session: Session) -> list[QuoteOutcome]:
    """Every quote with recorded experiment arms, its abandonment and its conversion."""
    arms: dict[str, dict[str, str]] = {}
    for row in session.exec(select(ExperimentAssignment)):
        arms.setdefault(row.quote_id, {})[row.experiment] = row.arm
    outcomes = []
    for quote in session.exec(select(CampaignQuote).where(col(CampaignQuote.quote_id).in_(list(arms)))):
        outcomes.append(
            QuoteOutcome(
                quote_id=quote.quote_id,
                arms=arms[quote.quote_id],
                abandoned_at=_utc(quote.abandoned_at),
                converted_at=_utc(quote.converted_at) if quote.converted_at else None,
            )
        )
    return outcomes


def campaign_report(engine: Engine, plan: CampaignPlan, as_of: datetime) -> list[ExperimentReport]:
    with session_scope(engine) as session:
        outcomes = quote_outcomes(session)
    return [
        experiment_report(experiment, outcomes, plan.conversion_window, as_of, plan.holdout.name)
        for experiment in plan.experiments
    ]
