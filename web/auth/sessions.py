"""Server-side staff sessions: the cookie holds only a random id; the row (keyed by its SHA-256)
holds who it is, until when, and whether it was revoked. Signing out, disabling an account or an
admin revoking a session takes effect on the next request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import update
from sqlmodel import Session, col, select

from ledger.db import session_scope
from models.auth import Role, StaffSession
from web.auth.principal import Principal
from web.deps import context

COOKIE = "dunning_session"


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the sign-in method established it."""

    name: str
    roles: frozenset[str]
    agent_code: str | None
    source: Literal["local", "oidc"]
    subject: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this app: no open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


async def begin_session(request: Request, identity: Identity, redirect_to: str = "/") -> Response:
    """Start a session for a signed-in identity and send the browser on (303)."""
    ctx = context(request)
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    lifetime = timedelta(minutes=ctx.settings.session_minutes)
    with session_scope(ctx.engine) as db:
        db.add(
            StaffSession(
                id_hash=_hash(session_id),
                name=identity.name,
                roles=",".join(sorted(identity.roles)),
                agent_code=identity.agent_code,
                source=identity.source,
                subject=identity.subject,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    default = "/agents" if identity.roles == {Role.AGENT.value} else "/"
    response = RedirectResponse(safe_next(redirect_to, default), status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.settings.internal_base_url.startswith("https://"),
        path="/",
    )
    return response


def session_principal(request: Request) -> Principal | None:
    """The person (or agent) a live session cookie belongs to."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 100:
        return None
    with session_scope(context(request).engine) as db:
        row = db.get(StaffSession, _hash(session_id))
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= datetime.now(UTC):
            return None
        roles = frozenset(r for r in row.roles.split(",") if r)
    agent_only = roles == {Role.AGENT.value}
    return Principal(
        kind="agent" if agent_only else "person", name=row.name, roles=roles, agent_code=row.agent_code, via="session"
    )


def end_session(request: Request, redirect_to: str = "/sign-in") -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        with session_scope(context(request).engine) as db:
            row = db.get(StaffSession, _hash(session_id))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
                db.add(row)
    response = RedirectResponse(redirect_to, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def revoke_sessions_of(db: Session, name: str) -> int:
    """Sign a person out everywhere (account disabled, password reset)."""
    result = db.execute(
        update(StaffSession)
        .where(col(StaffSession.name) == name, col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_sessions(db: Session) -> list[StaffSession]:
    now = datetime.now(UTC)
    rows = db.exec(select(StaffSession).where(col(StaffSession.revoked_at).is_(None))).all()
    return [r for r in rows if _aware(r.expires_at) > now]
