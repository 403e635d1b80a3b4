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
from sqlmodel import Session, select

from core.campaign import CONFIRM_SALT, RESUME_SALT, UNSUBSCRIBE_SALT, TokenExpired, read_expiring_token
from core.tokens import unsign
from infra.config import Settings
from ledger.campaign import CONFIRM_PER_ADDRESS, CONFIRM_PER_IP, EntryLimited, count_entry, suppress, utc
from ledger.db import session_scope, transaction_in_thread
from models.campaign import CampaignPerson, CampaignQuote, ConsentProof, ExitKind, ExitSignal, SuppressionReason
from web.deps import client_ip, context
from web.render import customer_page
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
    confirmed_at = utc(consent.confirmed_at) if consent.confirmed_at else now
    await signal_confirmed(ctx.client, quote_workflow_id(consent.quote_id), confirmed_at)
    return _message_page(request, "Vielen Dank!", "Ihre E-Mail-Adresse ist bestätigt.")


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
