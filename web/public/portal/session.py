"""Portal sessions (issue #14): after step-up the customer holds a short-lived server-side session.

The cookie holds a random id; the row (keyed by its SHA-256) says whose it is, from which pay link,
how the customer proved who they are, in which language the pages speak, and until when: an
absolute end (PORTAL_SESSION_MINUTES) and an idle end (PORTAL_IDLE_MINUTES after the last request).
Signing out revokes the row at once. No personal data in the cookie or the URL.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from core.timezone import as_utc
from ledger.db import session_scope
from models.portal import PortalSession
from web.deps import context
from web.public.portal.i18n import LANGUAGES

COOKIE = "dunning_portal"


@dataclass(frozen=True)
class PortalCustomer:
    """Who the portal serves in this request (after step-up)."""

    id_hash: str
    customer_id: int
    language: str
    pay_link_token_id: str
    method: str


class PortalSignInRequired(Exception):
    """No live portal session: the page explains and sends the customer back to their link."""


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def begin(
    request: Request, customer_id: int, pay_link_token_id: str, method: str, language: str, redirect_to: str = "/portal"
) -> Response:
    """Start a portal session after a passed step-up and send the browser on (303)."""
    ctx = context(request)
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with session_scope(ctx.engine) as db:
        db.add(
            PortalSession(
                id_hash=_hash(session_id),
                customer_id=customer_id,
                pay_link_token_id=pay_link_token_id,
                method=method,
                language=language if language in LANGUAGES else LANGUAGES[0],
                created_at=now,
                expires_at=now + timedelta(minutes=ctx.settings.portal_session_minutes),
                last_seen_at=now,
            )
        )
    response = RedirectResponse(redirect_to, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=ctx.settings.portal_session_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.public_base_url.startswith("https://"),
        path="/",
    )
    return response


def current(request: Request) -> PortalCustomer | None:
    """The live session of this request (and it counts as activity), or None."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 100:
        return None
    ctx = context(request)
    now = datetime.now(UTC)
    with session_scope(ctx.engine) as db:
        row = db.get(PortalSession, _hash(session_id))
        if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
            return None
        if as_utc(row.last_seen_at) + timedelta(minutes=ctx.settings.portal_idle_minutes) <= now:
            row.revoked_at = now  # idle too long: ended for good
            db.add(row)
            return None
        row.last_seen_at = now
        db.add(row)
        return PortalCustomer(row.id_hash, row.customer_id, row.language, row.pay_link_token_id, row.method)


def require(request: Request) -> PortalCustomer:
    customer = current(request)
    if customer is None:
        raise PortalSignInRequired()
    return customer


def set_language(request: Request, customer: PortalCustomer, language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language[:10]!r}")
    with session_scope(context(request).engine) as db:
        row = db.get(PortalSession, customer.id_hash)
        if row is not None:
            row.language = language
            db.add(row)


def end(request: Request, redirect_to: str) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id and len(session_id) <= 100:
        with session_scope(context(request).engine) as db:
            row = db.get(PortalSession, _hash(session_id))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
                db.add(row)
    response = RedirectResponse(redirect_to, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
