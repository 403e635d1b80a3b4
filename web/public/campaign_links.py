"""The campaign's links in the customer's mail (public app; signed, expiring, no personal data):
- `GET|POST /campaign/confirm/{token}` — the double-opt-in link (the POST records the proof);
- `GET /campaign/resume/{token}` — the quote and its step;
- `GET|POST /campaign/unsubscribe/{token}` — RFC 8058 one-click: no cookies, 200, no redirect.
Order of effects: the database first (idempotent), then Temporal (idempotent)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session, col, select

from core.campaign import CONFIRM_SALT, RESUME_SALT, UNSUBSCRIBE_SALT, TokenExpired, read_expiring_token
from core.tokens import unsign
from infra.config import Settings
from ledger.campaign import CONFIRM_PER_ADDRESS, CONFIRM_PER_IP, EntryLimited, count_entry, suppress, utc
from ledger.db import session_scope, transaction_in_thread
from models.campaign import CampaignPerson, CampaignQuote, ConsentProof, ExitKind, ExitSignal, SuppressionReason
from web.deps import client_ip, context
from web.public.portal.i18n import page_language, portal_page, t, texts
from workflows.campaign import quote_workflow_id
from workflows.campaign_client import signal_all, signal_confirmed

log = logging.getLogger(__name__)
router = APIRouter()


def _confirm_consent(
    session: Session, secret: str, token_id: str, request: Request, now: datetime
) -> tuple[str, ConsentProof | None]:
    user_agent = (request.headers.get("user-agent") or "")[:512] or None
    return confirm_consent(session, secret, token_id, client_ip(request), user_agent, now)


def confirm_consent(
    session: Session, secret: str, token_id: str, ip: str | None, user_agent: str | None, now: datetime
) -> tuple[str, ConsentProof | None]:
    """Record the confirmation in the consent proof (once; the entry limits count it). Returns what
    happened: confirmed, already, purged, revoked or unknown."""
    consent = session.exec(select(ConsentProof).where(ConsentProof.confirmation_token_id == token_id)).first()
    if consent is None:
        return "unknown", None
    if consent.purged_at is not None:
        return "purged", consent
    if consent.revoked_at is not None:
        return "revoked", consent
    if consent.confirmed_at is not None:
        return "already", consent
    count_entry(session, secret, now, [(CONFIRM_PER_IP, ip), (CONFIRM_PER_ADDRESS, consent.person_key)])
    consent.confirmed_at = now
    consent.confirmed_ip = ip
    consent.confirmed_user_agent = user_agent
    session.add(consent)
    return "confirmed", consent


def _message_page(
    request: Request,
    key: str,
    language: str | None = None,
    status_code: int = 200,
    action: str = "",
    **params: int,
) -> Response:
    """One card: `<key>.title`, `<key>.text` (and `<key>.button` with an action) in the quote's language,
    else the browser's (Accept-Language), else German (issue #17). The portal's language cookie is not
    read: these pages are the campaign's, not the customer portal's."""
    chosen = page_language(request, language, cookie=False)
    return portal_page(
        request,
        "campaign_message.html",
        chosen,
        status_code,
        title=t(chosen, f"{key}.title"),
        text=t(chosen, f"{key}.text", **params),
        action=action,
        button=t(chosen, f"{key}.button") if action else "",
    )


def confirm_language(session: Session, token_id: str) -> str | None:
    """The language of the quote whose confirmation link this is (None for an unknown link)."""
    quote = session.exec(
        select(CampaignQuote)
        .join(ConsentProof, col(ConsentProof.quote_id) == col(CampaignQuote.quote_id))
        .where(ConsentProof.confirmation_token_id == token_id)
    ).first()
    return quote.language if quote is not None else None


def unsubscribe_language(session: Session, token_id: str) -> str | None:
    """The language of the person's latest quote (None for an unknown link or a person without one)."""
    quote = session.exec(
        select(CampaignQuote)
        .join(CampaignPerson, col(CampaignPerson.person_key) == col(CampaignQuote.person_key))
        .where(CampaignPerson.unsubscribe_token_id == token_id)
        .order_by(col(CampaignQuote.abandoned_at).desc(), col(CampaignQuote.id).desc())
    ).first()
    return quote.language if quote is not None else None


@router.get("/campaign/confirm/{token}")
def confirm_form(request: Request, token: str) -> Response:
    """Mail scanners follow links: the GET only shows the button, the POST confirms."""
    ctx = context(request)
    token_id = unsign(ctx.settings.link_secret, CONFIRM_SALT, token)
    if token_id is None:
        return _message_page(request, "campaign.invalid_confirm", None, 404)
    with session_scope(ctx.engine) as session:
        language = confirm_language(session, token_id)
    return _message_page(request, "campaign.confirm", language, action=f"/campaign/confirm/{token}")


@router.post("/campaign/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    ctx = context(request)
    token_id = unsign(ctx.settings.link_secret, CONFIRM_SALT, token)
    if token_id is None:
        return _message_page(request, "campaign.invalid_confirm", None, 404)
    now = datetime.now(UTC)
    with session_scope(ctx.engine) as session:
        language = confirm_language(session, token_id)
    try:
        outcome, consent = await transaction_in_thread(
            ctx.engine, lambda s: _confirm_consent(s, ctx.settings.link_secret, token_id, request, now)
        )
    except EntryLimited as limited:
        response = _message_page(
            request, "campaign.too_many", language, 429, minutes=max(1, limited.retry_after_seconds // 60)
        )
        response.headers["Retry-After"] = str(limited.retry_after_seconds)
        return response
    if outcome == "unknown" or consent is None:
        return _message_page(request, "campaign.invalid_confirm", language, 404)
    if outcome == "purged":
        return _message_page(request, "campaign.purged", language, 410)
    if outcome == "revoked":
        return _message_page(request, "campaign.revoked", language, 409)
    confirmed_at = utc(consent.confirmed_at) if consent.confirmed_at else now
    await signal_confirmed(ctx.client, quote_workflow_id(consent.quote_id), confirmed_at)
    return _message_page(request, "campaign.confirmed", language)


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
    ctx = context(request)
    token_id = _unsubscribe_token_id(ctx.settings, token)
    if token_id is None:
        return _message_page(request, "campaign.invalid_unsubscribe", None, 404)
    with session_scope(ctx.engine) as session:
        language = unsubscribe_language(session, token_id)
    return _message_page(request, "campaign.unsubscribe", language, action=f"/campaign/unsubscribe/{token}")


@router.post("/campaign/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058 one-click: the mail client POSTs `List-Unsubscribe=One-Click`, without cookies.
    The answer is 200 with a page, never a redirect; the person is suppressed at once."""
    ctx = context(request)
    token_id = _unsubscribe_token_id(ctx.settings, token)
    if token_id is None:
        return _message_page(request, "campaign.invalid_unsubscribe", None, 404)
    now = datetime.now(UTC)

    def work(session: Session) -> tuple[str | None, list[str]] | None:
        person = session.exec(select(CampaignPerson).where(CampaignPerson.unsubscribe_token_id == token_id)).first()
        if person is None:
            return None
        language = unsubscribe_language(session, token_id)
        return language, suppress(session, person.person_key, SuppressionReason.UNSUBSCRIBE, now)

    found = await transaction_in_thread(ctx.engine, work)
    if found is None:
        return _message_page(request, "campaign.invalid_unsubscribe", None, 404)
    await signal_all(ctx.client, found[1], ExitSignal(kind=ExitKind.UNSUBSCRIBE, occurred_at=now))
    return _message_page(request, "campaign.unsubscribed", found[0])


texts(
    {
        # The campaign's public pages (campaign_message.html), in the quote's language (issue #17).
        "campaign.invalid_confirm.title": ("Link ungültig", "Invalid link", "Ugyldigt link"),
        "campaign.invalid_confirm.text": (
            "Dieser Bestätigungslink ist nicht gültig.",
            "This confirmation link is not valid.",
            "Dette bekræftelseslink er ikke gyldigt.",
        ),
        "campaign.confirm.title": (
            "E-Mail-Adresse bestätigen",
            "Confirm your e-mail address",
            "Bekræft din e-mailadresse",
        ),
        "campaign.confirm.text": (
            "Bitte bestätigen Sie, dass wir Sie per E-Mail an Ihr gespeichertes Angebot erinnern dürfen.",
            "Please confirm that we may remind you of your saved quote by e-mail.",
            "Bekræft, at vi må minde dig om dit gemte tilbud pr. e-mail.",
        ),
        "campaign.confirm.button": ("Jetzt bestätigen", "Confirm now", "Bekræft nu"),
        "campaign.too_many.title": ("Zu viele Versuche", "Too many attempts", "For mange forsøg"),
        "campaign.too_many.text": (
            "Für diese Adresse oder von Ihrer Verbindung kamen gerade zu viele Bestätigungen. Bitte versuchen Sie "
            "es in etwa {minutes} Minuten noch einmal.",
            "Too many confirmations have just come for this address or from your connection. Please try again in "
            "about {minutes} minutes.",
            "Der er lige kommet for mange bekræftelser for denne adresse eller fra din forbindelse. Prøv igen om "
            "cirka {minutes} minutter.",
        ),
        "campaign.purged.title": ("Link abgelaufen", "Link expired", "Linket er udløbet"),
        "campaign.purged.text": (
            "Die Frist zur Bestätigung ist abgelaufen; wir haben Ihre Adresse gelöscht.",
            "The time to confirm has run out; we have deleted your address.",
            "Fristen for bekræftelse er udløbet; vi har slettet din adresse.",
        ),
        "campaign.revoked.title": ("Abgemeldet", "Unsubscribed", "Afmeldt"),
        "campaign.revoked.text": (
            "Sie haben sich abgemeldet; wir schreiben Ihnen nicht.",
            "You have unsubscribed; we will not write to you.",
            "Du har afmeldt dig; vi skriver ikke til dig.",
        ),
        "campaign.confirmed.title": ("Vielen Dank!", "Thank you!", "Mange tak!"),
        "campaign.confirmed.text": (
            "Ihre E-Mail-Adresse ist bestätigt.",
            "Your e-mail address is confirmed.",
            "Din e-mailadresse er bekræftet.",
        ),
        "campaign.invalid_unsubscribe.title": ("Link ungültig", "Invalid link", "Ugyldigt link"),
        "campaign.invalid_unsubscribe.text": (
            "Dieser Abmeldelink ist nicht gültig.",
            "This unsubscribe link is not valid.",
            "Dette afmeldingslink er ikke gyldigt.",
        ),
        "campaign.unsubscribe.title": ("Keine E-Mails mehr", "No more e-mails", "Ikke flere e-mails"),
        "campaign.unsubscribe.text": (
            "Mit einem Klick melden Sie sich von allen Werbe-E-Mails ab; die Abmeldung wirkt sofort.",
            "One click unsubscribes you from all marketing e-mails; it takes effect at once.",
            "Med ét klik afmelder du dig alle markedsførings-e-mails; afmeldingen gælder med det samme.",
        ),
        "campaign.unsubscribe.button": ("Abmelden", "Unsubscribe", "Afmeld"),
        "campaign.unsubscribed.title": ("Abgemeldet", "Unsubscribed", "Afmeldt"),
        "campaign.unsubscribed.text": (
            "Sie erhalten von uns keine Werbe-E-Mails mehr.",
            "You will receive no more marketing e-mails from us.",
            "Du modtager ikke flere markedsførings-e-mails fra os.",
        ),
    }
)
