"""Signing in and out of the internal app with a local account (embedded default; production
only with LOCAL_ACCOUNTS=true). OIDC sign-in lives in web/auth/oidc.py; both end in a
server-side session (web/auth/sessions.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from infra.config import Settings
from ledger.db import session_scope
from models.auth import Role
from web.auth import accounts, sessions
from web.auth.audit import note
from web.auth.principal import Principal
from web.deps import context
from web.render import page

router = APIRouter(tags=["sign-in"])


def local_accounts_on(settings: Settings) -> bool:
    """Explicit setting wins; unset means on in development, off in production."""
    if settings.local_accounts is not None:
        return settings.local_accounts
    return settings.environment != "production"


def _form(request: Request, status_code: int, next: str, error: str | None, name: str = "") -> Response:
    settings = context(request).settings
    oidc = "single sign-on" if settings.oidc_issuer else None
    return page(
        request,
        "signin.html",
        status_code,
        headers={"Cache-Control": "no-store"},
        next=sessions.safe_next(next),
        error=error,
        account=name,
        oidc=oidc,
        local=local_accounts_on(settings),
    )


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "/") -> Response:
    return _form(request, 200, next, None)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    name: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    ctx = context(request)
    if not local_accounts_on(ctx.settings):
        return _form(request, 403, next, "Local accounts are switched off here: sign in with single sign-on.")
    with session_scope(ctx.engine) as db:
        account = accounts.verify_password(db, name.strip(), password)
        identity = (
            sessions.Identity(
                name=account.name,
                roles=frozenset(account.roles.split(",")),
                agent_code=account.agent_code,
                source="local",
                subject=str(account.id),
            )
            if account is not None
            else None
        )
    if identity is None:
        return _form(request, 401, next, "Account or password is wrong, or the account is disabled.", name=name[:100])
    who = Principal(kind="person", name=identity.name, roles=identity.roles, via="password")
    note(request, actor=who, signed_in=identity.name, method="local")
    default = "/agents" if identity.roles == {Role.AGENT.value} else "/"
    return await sessions.begin_session(request, identity, sessions.safe_next(next, default))


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    return sessions.end_session(request)
