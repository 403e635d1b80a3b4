"""The campaign's ledger side (SPEC.md §5): the quote, the person and the consent proof stored once, the
entry limits (docs/input-rules.md: per address and per IP, keyed hashes, nothing written when refused),
and suppression (unsubscribe, spam report, bounce) with the workflows of the person to tell."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.campaign import CAMPAIGN_PLANS, person_key_for, segment_for
from core.tokens import derive_token_id
from infra.config import Settings
from models.campaign import (
    CampaignEmail,
    CampaignEntry,
    CampaignPerson,
    CampaignQuote,
    ConsentProof,
    EmailEvent,
    PersonWorkflow,
    QuoteInput,
    QuoteStatus,
    Suppression,
    SuppressionReason,
    Touchpoint,
    TouchpointKind,
)
from models.campaign_requests import SUPPRESSING_EVENTS, EmailEventIn, QuoteAbandonedIn, TouchpointIn
from workflows.campaign import inspection_workflow_id, onboarding_workflow_id, quote_workflow_id

CONSENT_PURPOSE = "E-Mail-Erinnerungen zu meinem gespeicherten Kfz-Versicherungsangebot"


# --- entry limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryLimit:
    scope: str
    limit: int
    window: timedelta
    what: str  # for the message


# Per address: enough for a person who abandons a few quotes a day; per IP: a busy office behind one
# address, not a script. Only accepted entries count; a refused one writes nothing.
QUOTE_PER_ADDRESS = EntryLimit("quote:address", 3, timedelta(hours=24), "quotes with e-mail reminders for this address")
QUOTE_PER_IP = EntryLimit("quote:ip", 20, timedelta(hours=1), "abandoned quotes from this IP address")
CONFIRM_PER_ADDRESS = EntryLimit("confirm:address", 3, timedelta(hours=24), "confirmations for this address")
CONFIRM_PER_IP = EntryLimit("confirm:ip", 20, timedelta(hours=1), "confirmations from this IP address")


class EntryLimited(Exception):
    """Too many entries in the window (HTTP 429); nothing was written."""

    def __init__(self, limit: EntryLimit, retry_after: timedelta) -> None:
        self.retry_after_seconds = max(1, int(retry_after.total_seconds()))
        minutes = max(1, self.retry_after_seconds // 60)
        super().__init__(
            f"too many {limit.what}: at most {limit.limit} per {int(limit.window.total_seconds() // 3600)} h; "
            f"please try again in about {minutes} minutes"
        )


def entry_key(secret: str, scope: str, value: str) -> str:
    """A keyed hash: the entry table holds no address and no IP."""
    return hmac.new(secret.encode(), f"entry|{scope}|{value.strip().lower()}".encode(), hashlib.sha256).hexdigest()[:32]


def count_entry(session: Session, secret: str, now: datetime, checks: list[tuple[EntryLimit, str | None]]) -> None:
    """Refuse (EntryLimited) if any limit is reached, else count one entry under each; call it
    before the entry writes anything, inside the same transaction."""
    keyed = [(limit, entry_key(secret, limit.scope, value)) for limit, value in checks if value]
    for limit, key in keyed:
        since = now - limit.window
        recent = session.exec(
            select(func.count(), func.min(CampaignEntry.at)).where(
                CampaignEntry.scope == limit.scope, CampaignEntry.key == key, CampaignEntry.at > since
            )
        ).one()
        if recent[0] >= limit.limit:
            oldest = recent[1] if recent[1].tzinfo else recent[1].replace(tzinfo=UTC)
            raise EntryLimited(limit, oldest + limit.window - now)
    for limit, key in keyed:
        session.add(CampaignEntry(scope=limit.scope, key=key, at=now))


# --- the database side -----------------------------------------------------------------------


class Registered(BaseModel):
    input: QuoteInput
    created: bool
    status: str
    language: str = "de"  # the quote's mail language (the first report's)


def register_quote(
    session: Session, settings: Settings, body: QuoteAbandonedIn, now: datetime, caller_ip: str | None = None
) -> Registered:
    """Store the quote, the person and the consent proof once; a repeat returns the first.
    A new quote counts against the entry limits (EntryLimited: nothing written): per visitor IP
    (`body.ip`, else the caller's) and, with opt-in, per address."""
    existing = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == body.quote_id)).first()
    if existing is not None:
        return Registered(
            input=QuoteInput(
                quote_id=existing.quote_id,
                person_key=existing.person_key,
                segment=segment_for(existing.vehicle_age_years, existing.yearly_mileage_km),
                abandoned_at=utc(existing.abandoned_at),
                plan=CAMPAIGN_PLANS[settings.campaign_plan],
            ),
            created=False,
            status=existing.status,
            language=existing.language,
        )
    address = str(body.email) if body.opt_in and body.email else None
    count_entry(
        session,
        settings.link_secret,
        now,
        [
            (QUOTE_PER_IP, body.ip or caller_ip),
            (QUOTE_PER_ADDRESS, person_key_for(settings.link_secret, address) if address else None),
        ],
    )
    abandoned_at = body.abandoned_at.astimezone(UTC) if body.abandoned_at else now
    segment = segment_for(body.vehicle_age_years, body.yearly_mileage_km)
    person_key: str | None = None
    workflow_id = quote_workflow_id(body.quote_id)
    if body.opt_in and body.email:
        person_key = person_key_for(settings.link_secret, str(body.email))
        person = session.exec(select(CampaignPerson).where(CampaignPerson.person_key == person_key)).first()
        if person is None:
            person = CampaignPerson(
                person_key=person_key,
                unsubscribe_token_id=derive_token_id(settings.link_secret, "unsubscribe", person_key),
                created_at=now,
            )
        person.email = str(body.email)
        session.add(person)
        session.add(
            ConsentProof(
                quote_id=body.quote_id,
                person_key=person_key,
                email=str(body.email),
                purpose=CONSENT_PURPOSE,
                consent_text_version=body.consent_text_version,
                source=body.source_page,
                opt_in_at=abandoned_at,
                opt_in_ip=body.ip,
                opt_in_user_agent=body.user_agent,
                confirmation_token_id=derive_token_id(settings.link_secret, "confirm", body.quote_id),
            )
        )
        session.add(PersonWorkflow(person_key=person_key, workflow_id=workflow_id, kind="quote", created_at=now))
    status = QuoteStatus.AWAITING_CONFIRMATION if person_key else QuoteStatus.NO_CONSENT
    session.add(
        CampaignQuote(
            quote_id=body.quote_id,
            person_key=person_key,
            workflow_id=workflow_id,
            segment=segment,
            vehicle_age_years=body.vehicle_age_years,
            yearly_mileage_km=body.yearly_mileage_km,
            language=body.mail_language(),
            calculator_step=body.calculator_step,
            resume_token_id=derive_token_id(settings.link_secret, "resume", body.quote_id),
            abandoned_at=abandoned_at,
            status=status,
        )
    )
    session.flush()
    return Registered(
        input=QuoteInput(
            quote_id=body.quote_id,
            person_key=person_key,
            segment=segment,
            abandoned_at=abandoned_at,
            plan=CAMPAIGN_PLANS[settings.campaign_plan],
        ),
        created=True,
        status=status,
        language=body.mail_language(),
    )


def utc(moment: datetime) -> datetime:
    """A stored moment as an aware UTC datetime (SQLite hands it back without a zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def suppress(session: Session, person_key: str, reason: SuppressionReason, now: datetime) -> list[str]:
    """Suppress the person (once per reason), revoke consents on unsubscribe/spam report, and
    return the workflows to signal."""
    if (
        session.exec(
            select(Suppression).where(Suppression.person_key == person_key, Suppression.reason == reason.value)
        ).first()
        is None
    ):
        session.add(Suppression(person_key=person_key, reason=reason.value, created_at=now))
    if reason != SuppressionReason.BOUNCE:
        for consent in session.exec(
            select(ConsentProof).where(ConsentProof.person_key == person_key, col(ConsentProof.revoked_at).is_(None))
        ):
            consent.revoked_at = now
            session.add(consent)
    session.flush()
    return person_workflows(session, person_key)


def person_workflows(session: Session, person_key: str) -> list[str]:
    return [
        row.workflow_id for row in session.exec(select(PersonWorkflow).where(PersonWorkflow.person_key == person_key))
    ]


def record_touchpoint(
    session: Session, body: TouchpointIn, person_key: str, now: datetime
) -> tuple[bool, list[str], bool]:
    """Record a contact once (by event id); a signed contract converts the person's open quotes
    abandoned before it and lists the follow-up workflows for the person. Returns (duplicate, the
    person's workflows, whether follow-ups start: only for a person with an address)."""
    occurred_at = body.occurred_at.astimezone(UTC)
    duplicate = session.exec(select(Touchpoint).where(Touchpoint.event_id == body.event_id)).first() is not None
    if not duplicate:
        session.add(
            Touchpoint(
                event_id=body.event_id,
                person_key=person_key,
                kind=body.kind.value,
                channel=body.channel,
                occurred_at=occurred_at,
                recorded_at=now,
                contract_number=body.contract_number,
            )
        )
    follow_up = False
    if body.kind == TouchpointKind.CONTRACT_SIGNED and body.contract_number:
        for quote in session.exec(
            select(CampaignQuote).where(
                CampaignQuote.person_key == person_key,
                col(CampaignQuote.converted_at).is_(None),
                col(CampaignQuote.abandoned_at) <= occurred_at,
            )
        ):
            quote.converted_at = occurred_at
            quote.conversion_channel = body.channel
            session.add(quote)
        person = session.exec(select(CampaignPerson).where(CampaignPerson.person_key == person_key)).first()
        follow_up = person is not None and person.email is not None
        if follow_up:
            ids = [onboarding_workflow_id(body.contract_number)]
            if body.inspection_due:
                ids.append(inspection_workflow_id(body.contract_number))
            known = set(person_workflows(session, person_key))
            for workflow_id in ids:
                if workflow_id not in known:
                    session.add(
                        PersonWorkflow(
                            person_key=person_key,
                            workflow_id=workflow_id,
                            kind=workflow_id.split("-")[0],
                            created_at=now,
                        )
                    )
    session.flush()
    return duplicate, person_workflows(session, person_key), follow_up


def record_email_events(
    session: Session, events: list[EmailEventIn], now: datetime
) -> tuple[int, int, list[tuple[SuppressionReason, list[str]]]] | str:
    """Record each event once (by event id); bounces, spam reports and unsubscribes suppress the
    person. Returns (recorded, duplicates, the suppressions with the workflows to tell), or the
    reason the whole batch is refused (an unknown mail): then nothing is written."""
    mails: dict[str, CampaignEmail] = {}
    for event in events:
        mail = session.exec(select(CampaignEmail).where(CampaignEmail.idempotency_key == event.email_key)).first()
        if mail is None:
            return f"unknown email_key {event.email_key!r} (event {event.event_id})"
        mails[event.email_key] = mail
    recorded = duplicates = 0
    to_signal: list[tuple[SuppressionReason, list[str]]] = []
    for event in events:
        if session.exec(select(EmailEvent).where(EmailEvent.event_id == event.event_id)).first() is not None:
            duplicates += 1
            continue
        mail = mails[event.email_key]
        session.add(
            EmailEvent(
                event_id=event.event_id,
                email_key=event.email_key,
                workflow_id=mail.workflow_id,
                step=mail.step,
                event=event.event,
                occurred_at=event.occurred_at.astimezone(UTC),
                recorded_at=now,
            )
        )
        session.flush()
        recorded += 1
        reason = SUPPRESSING_EVENTS.get(event.event)
        if reason is not None:
            to_signal.append((reason, suppress(session, mail.person_key, reason, now)))
    return recorded, duplicates, to_signal
