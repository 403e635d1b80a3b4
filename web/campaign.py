"""The abandoned-quote campaign on the web (DOMAIN.md §9, SPEC.md §5).

- `POST /api/campaign/quotes/abandoned` — the calculator reports an abandoned quote (with or
  without opt-in); one workflow per quote, a second report joins the first.
- `GET|POST /campaign/confirm/{token}` — the double-opt-in link (the POST records the proof).
- `POST /api/campaign/touchpoints` — the single customer view: every running workflow of the
  person is signalled; a signed contract starts onboarding and the inspection reminder once.
- `GET /campaign/resume/{token}` — signed, expiring, no personal data: the quote and its step.
- `POST /campaign/unsubscribe/{token}` — RFC 8058 one-click: no cookies, 200, no redirect.
- `POST /api/campaign/email-events` — delivery/engagement events per mail (de-duplicated).
- `GET /campaign/report`, `GET /api/campaign/report` — results per experiment.

Order of effects everywhere: the database first (idempotent), then Temporal (idempotent), so a
retry after a crash in between is harmless.

Entry limits (docs/input-rules.md): a new abandoned quote and a confirmation are counted per
address and per IP in `campaign_entries` (keyed hashes, no address or IP stored there); beyond the
limit the request gets 429 and nothing is written, so nobody can flood an inbox through us.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.campaign import campaign_report
from core.campaign import (
    CONFIRM_SALT,
    DEFAULT_PLAN,
    RESUME_SALT,
    UNSUBSCRIBE_SALT,
    ExperimentReport,
    TokenExpired,
    person_key_for,
    read_expiring_token,
    segment_for,
)
from core.tokens import derive_token_id, unsign
from infra.config import Settings
from ledger.db import session_scope, transaction_in_thread
from models.campaign import (
    CampaignEmail,
    CampaignEntry,
    CampaignPerson,
    CampaignQuote,
    CampaignStage,
    ConsentConfirmed,
    ConsentProof,
    EmailEvent,
    ExitKind,
    ExitSignal,
    FollowUpInput,
    PersonWorkflow,
    QuoteInput,
    QuoteStatus,
    Suppression,
    SuppressionReason,
    Touchpoint,
    TouchpointKind,
)
from models.inputs import BusinessDate, Line, PastMoment, QueryMoment
from web.deps import AppContext, context
from web.render import customer_page, page
from workflows import search_attributes as sa
from workflows.campaign import (
    InspectionReminder,
    OnboardingSequence,
    QuoteReactivation,
    inspection_workflow_id,
    onboarding_workflow_id,
    quote_workflow_id,
)

log = logging.getLogger(__name__)
router = APIRouter()
CONSENT_PURPOSE = "E-Mail-Erinnerungen zu meinem gespeicherten Kfz-Versicherungsangebot"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


# --- inputs ----------------------------------------------------------------------------------


class QuoteAbandonedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_id: str = Field(pattern=ID_PATTERN)
    vehicle_age_years: StrictInt | None = Field(default=None, ge=0, le=100)
    yearly_mileage_km: StrictInt | None = Field(default=None, ge=0, le=300_000)
    calculator_step: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")
    email: EmailStr | None = None
    opt_in: StrictBool = False
    consent_text_version: Line = Field(default="", max_length=64)
    ip: str | None = Field(default=None, max_length=45)  # the visitor's address, as the calculator saw it
    user_agent: Line | None = Field(default=None, max_length=512)
    source_page: Line = Field(default="", max_length=500)
    abandoned_at: PastMoment | None = None  # with a UTC offset; at most 10 years ago, not in the future

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # raises "… does not appear to be an IPv4 or IPv6 address"
        return value

    @model_validator(mode="after")
    def _consent(self) -> QuoteAbandonedIn:
        if self.opt_in:
            missing = [
                name
                for name, value in (
                    ("email", self.email),
                    ("consent_text_version", self.consent_text_version.strip()),
                    ("source_page", self.source_page.strip()),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"opt_in=true needs {', '.join(missing)} (the consent proof, DOMAIN.md §9)")
        return self


class TouchpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Line = Field(min_length=1, max_length=128)
    email: EmailStr | None = None
    person_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    kind: TouchpointKind
    channel: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")  # phone, branch, agent, web, …
    occurred_at: PastMoment
    contract_number: str | None = Field(default=None, pattern=ID_PATTERN)
    inspection_due: BusinessDate | None = None

    @model_validator(mode="after")
    def _who(self) -> TouchpointIn:
        if (self.email is None) == (self.person_key is None):
            raise ValueError("give exactly one of email or person_key")
        if self.kind == TouchpointKind.CONTRACT_SIGNED and not self.contract_number:
            raise ValueError("a contract_signed touchpoint needs contract_number")
        if self.inspection_due is not None and self.kind != TouchpointKind.CONTRACT_SIGNED:
            raise ValueError("inspection_due belongs to a contract_signed touchpoint")
        return self


EMAIL_EVENTS = {
    "processed",
    "delivered",
    "deferred",
    "open",
    "click",
    "bounce",
    "dropped",
    "spam_report",
    "unsubscribe",
}
SUPPRESSING_EVENTS = {
    "bounce": SuppressionReason.BOUNCE,
    "spam_report": SuppressionReason.SPAM_REPORT,
    "unsubscribe": SuppressionReason.UNSUBSCRIBE,
}


class EmailEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Line = Field(min_length=1, max_length=128)
    email_key: Line = Field(min_length=1, max_length=200)
    event: str
    occurred_at: PastMoment

    @field_validator("event")
    @classmethod
    def _event(cls, value: str) -> str:
        if value not in EMAIL_EVENTS:
            raise ValueError(f"event must be one of {', '.join(sorted(EMAIL_EVENTS))}, got {value!r}")
        return value


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


def too_many(error: EntryLimited) -> JSONResponse:
    return JSONResponse(
        status_code=429, content={"detail": str(error)}, headers={"Retry-After": str(error.retry_after_seconds)}
    )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- the database side -----------------------------------------------------------------------


class Registered(BaseModel):
    input: QuoteInput
    created: bool
    status: str


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
                abandoned_at=_utc(existing.abandoned_at),
            ),
            created=False,
            status=existing.status,
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
            calculator_step=body.calculator_step,
            resume_token_id=derive_token_id(settings.link_secret, "resume", body.quote_id),
            abandoned_at=abandoned_at,
            status=status,
        )
    )
    session.flush()
    return Registered(
        input=QuoteInput(quote_id=body.quote_id, person_key=person_key, segment=segment, abandoned_at=abandoned_at),
        created=True,
        status=status,
    )


def _utc(moment: datetime) -> datetime:
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


# --- the Temporal side -----------------------------------------------------------------------


async def start_quote(client: Client, task_queue: str, input: QuoteInput) -> None:
    """One workflow per quote, ever: a running one is joined, a finished one is not restarted."""
    try:
        await client.start_workflow(
            QuoteReactivation.run,
            input,
            id=quote_workflow_id(input.quote_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Abandoned quote {input.quote_id} · segment {input.segment.value}",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(
                        sa.CAMPAIGN_STAGE,
                        CampaignStage.AWAITING_CONFIRMATION if input.person_key else CampaignStage.NO_CONSENT,
                    )
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran and finished: abandoning again never starts a second one


async def start_follow_up(client: Client, task_queue: str, kind: str, input: FollowUpInput) -> None:
    """Onboarding / inspection reminder, each started exactly once per contract."""
    run: Any = OnboardingSequence.run if kind == "onboarding" else InspectionReminder.run
    workflow_id = (onboarding_workflow_id if kind == "onboarding" else inspection_workflow_id)(input.contract_number)
    try:
        await client.start_workflow(
            run,
            input,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{kind.capitalize()} for contract {input.contract_number}",
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.CAMPAIGN_STAGE, CampaignStage.WAITING)]),
        )
    except WorkflowAlreadyStartedError:
        pass


async def signal_all(client: Client, workflow_ids: list[str], signal: ExitSignal) -> int:
    """Signal every workflow of the person; finished ones are skipped. Returns how many got it."""
    delivered = 0
    for workflow_id in workflow_ids:
        try:
            await client.get_workflow_handle(workflow_id).signal("exit_sequence", signal)
            delivered += 1
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    return delivered


# --- routes: the calculator --------------------------------------------------------------------


@router.post(
    "/api/campaign/quotes/abandoned",
    response_model=None,
    responses={429: {"description": "entry limit per address or IP reached; nothing written"}},
)
async def quote_abandoned(body: QuoteAbandonedIn, request: Request) -> dict[str, Any] | JSONResponse:
    ctx = context(request)
    now = datetime.now(UTC)
    try:
        registered = await transaction_in_thread(
            ctx.engine, lambda s: register_quote(s, ctx.settings, body, now, client_ip(request))
        )
    except EntryLimited as limited:
        return too_many(limited)
    await start_quote(ctx.client, ctx.settings.task_queue, registered.input)
    return {
        "quote_id": body.quote_id,
        "workflow_id": quote_workflow_id(body.quote_id),
        "created": registered.created,
        "status": registered.status,
        "segment": registered.input.segment.value,
    }


def _confirm_consent(
    session: Session, secret: str, token_id: str, request: Request, now: datetime
) -> tuple[str, ConsentProof | None]:
    consent = session.exec(select(ConsentProof).where(ConsentProof.confirmation_token_id == token_id)).first()
    if consent is None:
        return "unknown", None
    if consent.purged_at is not None:
        return "purged", consent
    if consent.revoked_at is not None:
        return "revoked", consent
    if consent.confirmed_at is not None:
        return "already", consent
    count_entry(session, secret, now, [(CONFIRM_PER_IP, client_ip(request)), (CONFIRM_PER_ADDRESS, consent.person_key)])
    consent.confirmed_at = now
    consent.confirmed_ip = client_ip(request)
    consent.confirmed_user_agent = (request.headers.get("user-agent") or "")[:512] or None
    session.add(consent)
    return "confirmed", consent


def _message_page(
    request: Request, title: str, text: str, status_code: int = 200, action: str = "", button: str = ""
) -> Response:
    return customer_page(
        request, "campaign_message.html", status_code, title=title, text=text, action=action, button=button
    )


@router.get("/campaign/confirm/{token}")
def confirm_form(request: Request, token: str) -> Response:
    """Mail scanners follow links: the GET only shows the button, the POST confirms."""
    if unsign(context(request).settings.link_secret, CONFIRM_SALT, token) is None:
        return _message_page(request, "Link ungültig", "Dieser Bestätigungslink ist nicht gültig.", 404)
    return _message_page(
        request,
        "E-Mail-Adresse bestätigen",
        "Bitte bestätigen Sie, dass wir Sie per E-Mail an Ihr gespeichertes Angebot erinnern dürfen.",
        action=f"/campaign/confirm/{token}",
        button="Jetzt bestätigen",
    )


@router.post("/campaign/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    ctx = context(request)
    token_id = unsign(ctx.settings.link_secret, CONFIRM_SALT, token)
    if token_id is None:
        return _message_page(request, "Link ungültig", "Dieser Bestätigungslink ist nicht gültig.", 404)
    now = datetime.now(UTC)
    try:
        outcome, consent = await transaction_in_thread(
            ctx.engine, lambda s: _confirm_consent(s, ctx.settings.link_secret, token_id, request, now)
        )
    except EntryLimited as limited:
        response = _message_page(
            request,
            "Zu viele Versuche",
            "Für diese Adresse oder von Ihrer Verbindung kamen gerade zu viele Bestätigungen. Bitte versuchen Sie "
            f"es in etwa {max(1, limited.retry_after_seconds // 60)} Minuten noch einmal.",
            429,
        )
        response.headers["Retry-After"] = str(limited.retry_after_seconds)
        return response
    if outcome == "unknown" or consent is None:
        return _message_page(request, "Link ungültig", "Dieser Bestätigungslink ist nicht gültig.", 404)
    if outcome == "purged":
        return _message_page(
            request,
            "Link abgelaufen",
            "Die Frist zur Bestätigung ist abgelaufen; wir haben Ihre Adresse gelöscht.",
            410,
        )
    if outcome == "revoked":
        return _message_page(request, "Abgemeldet", "Sie haben sich abgemeldet; wir schreiben Ihnen nicht.", 409)
    confirmed_at = _utc(consent.confirmed_at) if consent.confirmed_at else now
    await signal_confirmed(ctx.client, quote_workflow_id(consent.quote_id), confirmed_at)
    return _message_page(request, "Vielen Dank!", "Ihre E-Mail-Adresse ist bestätigt.")


async def signal_confirmed(client: Client, workflow_id: str, confirmed_at: datetime) -> None:
    try:
        await client.get_workflow_handle(workflow_id).signal(
            QuoteReactivation.consent_confirmed, ConsentConfirmed(confirmed_at=confirmed_at)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


@router.get("/campaign/resume/{token}")
def resume(request: Request, token: str) -> JSONResponse:
    """The calculator restores the quote from this: no personal data in the link or the answer."""
    ctx = context(request)
    try:
        token_id = read_expiring_token(ctx.settings.link_secret, RESUME_SALT, token, datetime.now(UTC))
    except TokenExpired:
        return JSONResponse(status_code=410, content={"detail": "this link has expired; please start a new quote"})
    if token_id is None:
        return JSONResponse(status_code=404, content={"detail": "unknown link"})
    with session_scope(ctx.engine) as session:
        quote = session.exec(select(CampaignQuote).where(CampaignQuote.resume_token_id == token_id)).first()
        if quote is None:
            return JSONResponse(status_code=404, content={"detail": "unknown link"})
        return JSONResponse(
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
            content={
                "quote_id": quote.quote_id,
                "calculator_step": quote.calculator_step,
                "vehicle_age_years": quote.vehicle_age_years,
                "yearly_mileage_km": quote.yearly_mileage_km,
                "segment": quote.segment,
            },
        )


# --- routes: unsubscribe -----------------------------------------------------------------------


def _unsubscribe_token_id(settings: Settings, token: str) -> str | None:
    try:
        return read_expiring_token(settings.link_secret, UNSUBSCRIBE_SALT, token, datetime.now(UTC))
    except TokenExpired:
        return None


@router.get("/campaign/unsubscribe/{token}")
def unsubscribe_form(request: Request, token: str) -> Response:
    if _unsubscribe_token_id(context(request).settings, token) is None:
        return _message_page(request, "Link ungültig", "Dieser Abmeldelink ist nicht gültig.", 404)
    return _message_page(
        request,
        "Keine E-Mails mehr",
        "Mit einem Klick melden Sie sich von allen Werbe-E-Mails ab; die Abmeldung wirkt sofort.",
        action=f"/campaign/unsubscribe/{token}",
        button="Abmelden",
    )


@router.post("/campaign/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058 one-click: the mail client POSTs `List-Unsubscribe=One-Click`, without cookies.
    The answer is 200 with a page, never a redirect; the person is suppressed at once."""
    ctx = context(request)
    token_id = _unsubscribe_token_id(ctx.settings, token)
    if token_id is None:
        return _message_page(request, "Link ungültig", "Dieser Abmeldelink ist nicht gültig.", 404)
    now = datetime.now(UTC)

    def work(session: Session) -> tuple[str, list[str]] | None:
        person = session.exec(select(CampaignPerson).where(CampaignPerson.unsubscribe_token_id == token_id)).first()
        if person is None:
            return None
        return person.person_key, suppress(session, person.person_key, SuppressionReason.UNSUBSCRIBE, now)

    found = await transaction_in_thread(ctx.engine, work)
    if found is None:
        return _message_page(request, "Link ungültig", "Dieser Abmeldelink ist nicht gültig.", 404)
    await signal_all(ctx.client, found[1], ExitSignal(kind=ExitKind.UNSUBSCRIBE, occurred_at=now))
    return _message_page(request, "Abgemeldet", "Sie erhalten von uns keine Werbe-E-Mails mehr.")


# --- routes: the single customer view and the mail provider ------------------------------------


@router.post("/api/campaign/touchpoints")
async def touchpoint(body: TouchpointIn, request: Request) -> dict[str, Any]:
    """A contact in any channel ends every running sequence of the person at once."""
    ctx = context(request)
    now = datetime.now(UTC)
    person_key = body.person_key or person_key_for(ctx.settings.link_secret, str(body.email))
    occurred_at = body.occurred_at.astimezone(UTC)

    def work(session: Session) -> tuple[bool, list[str], bool]:
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

    duplicate, workflow_ids, follow_up = await transaction_in_thread(ctx.engine, work)
    started: list[str] = []
    if follow_up and body.contract_number:
        follow = FollowUpInput(
            contract_number=body.contract_number,
            person_key=person_key,
            signed_at=occurred_at,
            inspection_due=body.inspection_due,
            plan=DEFAULT_PLAN,
        )
        await start_follow_up(ctx.client, ctx.settings.task_queue, "onboarding", follow)
        started.append(onboarding_workflow_id(body.contract_number))
        if body.inspection_due:
            await start_follow_up(ctx.client, ctx.settings.task_queue, "inspection", follow)
            started.append(inspection_workflow_id(body.contract_number))
    quote_ids = [w for w in workflow_ids if w.startswith("quote-")]
    signalled = await signal_all(
        ctx.client, quote_ids, ExitSignal(kind=ExitKind.TOUCHPOINT, occurred_at=occurred_at, detail=body.kind.value)
    )
    return {"event_id": body.event_id, "duplicate": duplicate, "signalled": signalled, "follow_ups": started}


EVENT_SIGNATURE_HEADER = "X-Campaign-Signature"
_EVENTS = TypeAdapter(list[EmailEventIn])


def event_signature(secret: str, body: bytes) -> str:
    """The value of the X-Campaign-Signature header for a body (what the event sender computes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.post("/api/campaign/email-events")
async def email_events(request: Request) -> JSONResponse:
    """Events of the mail provider, per mail (= per workflow step), de-duplicated by event id.

    Signed with `campaign_events_secret` (HMAC-SHA256 of the raw body): a forged "bounce" would
    otherwise silence a person. A provider adapter with its own signature scheme (SendGrid's
    signed event webhook) verifies that and calls `record_email_events` directly.
    """
    ctx = context(request)
    body = await request.body()
    given = request.headers.get(EVENT_SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given, event_signature(ctx.settings.campaign_events_secret, body)):
        return JSONResponse(status_code=401, content={"detail": f"missing or wrong {EVENT_SIGNATURE_HEADER}"})
    try:
        events = _EVENTS.validate_json(body)
    except ValidationError as error:
        return JSONResponse(status_code=422, content={"detail": error.errors(include_url=False, include_context=False)})
    result = await record_email_events(ctx, events)
    if isinstance(result, str):
        return JSONResponse(status_code=422, content={"detail": result})
    return JSONResponse(content={"recorded": result[0], "duplicates": result[1]})


async def record_email_events(ctx: AppContext, events: list[EmailEventIn]) -> tuple[int, int] | str:
    """Record the events once each; bounces, spam reports and unsubscribes suppress the person and
    end their sequences. An unknown mail rejects the whole batch (the reason is returned), so
    nothing is half-recorded."""
    now = datetime.now(UTC)
    if not events:
        return "no events given"

    def work(session: Session) -> tuple[int, int, list[tuple[SuppressionReason, list[str]]]] | str:
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

    result = await transaction_in_thread(ctx.engine, work)
    if isinstance(result, str):
        return result
    recorded, duplicates, to_signal = result
    for reason, workflow_ids in to_signal:
        await signal_all(ctx.client, workflow_ids, ExitSignal(kind=ExitKind(reason.value), occurred_at=now))
    return recorded, duplicates


# --- routes: results -------------------------------------------------------------------------


@router.get("/api/campaign/report")
def report_json(request: Request, as_of: Annotated[QueryMoment | None, Query()] = None) -> JSONResponse:
    """Results per experiment as of `as_of` (with a UTC offset; default: now)."""
    reports = campaign_report(context(request).engine, DEFAULT_PLAN, as_of or datetime.now(UTC))
    return JSONResponse(content=[r.model_dump(mode="json") for r in reports])


@router.get("/campaign/report")
def report_page(request: Request) -> Response:
    reports: list[ExperimentReport] = campaign_report(context(request).engine, DEFAULT_PLAN, datetime.now(UTC))
    return page(
        request,
        "campaign_report.html",
        reports=reports,
        window_days=DEFAULT_PLAN.conversion_window.days,
    )
