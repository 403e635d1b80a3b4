"""Staff sign-in with the insurer's identity provider: OpenID Connect authorization code flow with
PKCE (S256), state and nonce, through Authlib's client.

`GET /auth/oidc/login` sends the browser to the provider. What the callback must check later (state,
nonce, the PKCE verifier, where to go afterwards) travels in a short-lived cookie signed with the
installation's OIDC_STATE_SECRET (10 minutes, HttpOnly, SameSite=Lax, `__Host-` and Secure on https):
no server-side store, so any web process can finish a sign-in another one started.

`GET /auth/oidc/callback` refuses, with a page that says why and changes nothing, when the cookie is
missing or expired, the state differs, the provider reports an error or refuses the code (a wrong
PKCE verifier), or the ID token does not verify (signature via the provider's JWKS, iss, aud, exp,
iat, nonce, azp). Roles come from OIDC_ROLES_CLAIM (a list or one string; roles this application
does not know are ignored; the claim is read from userinfo when the ID token lacks it), the agent code
from OIDC_AGENT_CODE_CLAIM. A person with no known role is refused (403). Otherwise a server-side
session starts (web/auth/sessions.py) and the browser goes on to where it wanted to go.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from html import escape
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from infra.config import Settings
from models.auth import Role
from web.auth import jwt_tokens
from web.auth.jwt_tokens import TokenRefused
from web.auth.principal import Principal
from web.auth.sessions import Identity, begin_session, safe_next
from web.deps import context

log = logging.getLogger("dunning.auth")

router = APIRouter(prefix="/auth/oidc", tags=["sign-in"])

PENDING_SECONDS = 600
CALLBACK_PATH = "/auth/oidc/callback"


@dataclass(frozen=True)
class PendingSignIn:
    """What the callback checks: issued by /login, carried in the signed cookie."""

    state: str
    nonce: str
    verifier: str
    next: str


class SignInRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def https(settings: Settings) -> bool:
    return settings.internal_base_url.startswith("https://")


def pending_cookie(settings: Settings) -> str:
    """`__Host-` on https: the browser refuses it from a sibling domain (no cookie tossing)."""
    return "__Host-dunning_oidc" if https(settings) else "dunning_oidc"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.oidc_state_secret, salt="oidc-pending-sign-in")


def seal(settings: Settings, pending: PendingSignIn) -> str:
    return _serializer(settings).dumps([pending.state, pending.nonce, pending.verifier, pending.next])


def unseal(settings: Settings, value: str | None) -> PendingSignIn | None:
    """The pending sign-in, or None when the cookie is missing, forged or older than 10 minutes."""
    if not value or len(value) > 4096:
        return None
    try:
        fields = _serializer(settings).loads(value, max_age=PENDING_SECONDS)
    except BadSignature:  # also SignatureExpired
        return None
    if not (isinstance(fields, list) and len(fields) == 4 and all(isinstance(f, str) for f in fields)):
        return None
    return PendingSignIn(*fields)


def redirect_uri(settings: Settings) -> str:
    return settings.internal_base_url.rstrip("/") + CALLBACK_PATH


def oauth_client(settings: Settings) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value() or None,
        scope=settings.oidc_scope,
        redirect_uri=redirect_uri(settings),
        code_challenge_method="S256",
        timeout=jwt_tokens.HTTP_TIMEOUT_SECONDS,
    )


async def provider_configuration(settings: Settings) -> dict[str, Any]:
    if not (settings.oidc_issuer and settings.oidc_client_id):
        raise SignInRefused(404, "Sign-in with the identity provider is not configured (OIDC_ISSUER, OIDC_CLIENT_ID).")
    try:
        return await run_in_threadpool(jwt_tokens.discovery, settings.oidc_issuer)
    except TokenRefused as problem:
        raise SignInRefused(503, f"The identity provider cannot be reached: {problem.reason}.") from problem


def verify_id_token(id_token: str, configuration: dict[str, Any], settings: Settings, nonce: str) -> dict[str, Any]:
    """The ID token's claims after OIDC Core 3.1.3.7: signature (JWKS), iss, aud, exp, iat, azp, nonce."""
    check = jwt_tokens.verifier(str(configuration["issuer"]), settings.oidc_client_id, str(configuration["jwks_uri"]))
    claims = check.claims(id_token)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenRefused("the ID token names no subject (sub)")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != settings.oidc_client_id:
        raise TokenRefused("the ID token was issued to another client (azp)")
    given = claims.get("nonce")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
        raise TokenRefused("the ID token belongs to another sign-in (nonce)")
    return claims


async def with_userinfo(
    claims: dict[str, Any], token: dict[str, Any], configuration: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """Providers that keep groups out of the ID token send them from userinfo: read it then, for the
    same subject only (OIDC Core 5.3.2)."""
    endpoint = configuration.get("userinfo_endpoint")
    if jwt_tokens.claim(claims, settings.oidc_roles_claim) is not None or not isinstance(endpoint, str):
        return claims
    try:
        async with oauth_client(settings) as client:
            client.token = token
            response = await client.get(endpoint)
            response.raise_for_status()
            info = response.json()
    except (httpx.HTTPError, OAuthError, ValueError) as problem:
        log.warning("OIDC userinfo failed: %s", problem)
        return claims
    if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
        return claims
    extra = {k: info[k] for k in (settings.oidc_roles_claim, settings.oidc_agent_code_claim) if k in info}
    return {**claims, **extra}


def identity_of(claims: dict[str, Any], settings: Settings) -> Identity:
    """The person the verified claims describe; refused (403) without any role this application knows."""
    who: Principal = jwt_tokens.person_principal(claims, settings, via="oidc")
    if not who.roles:
        known = ", ".join(role.value for role in Role)
        raise SignInRefused(
            403,
            f"{who.name} is signed in at the identity provider but has no role in this application. "
            f"An administrator can give one of {known} in the claim {settings.oidc_roles_claim!r}"
            " (the role agent also needs an agent code).",
        )
    return Identity(name=who.name, roles=who.roles, agent_code=who.agent_code, source="oidc", subject=claims["sub"])


def refusal_page(status: int, reason: str, settings: Settings) -> HTMLResponse:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Sign-in refused</title></head>"
        f"<body><h1>Sign-in refused</h1><p role='alert'>{escape(reason)}</p>"
        "<p><a href='/sign-in'>Back to sign-in</a></p></body></html>"
    )
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
    response.delete_cookie(pending_cookie(settings), path="/", secure=https(settings), httponly=True, samesite="lax")
    return response


@router.get("/login", summary="Start signing in with the identity provider (OIDC code flow + PKCE)")
async def login(request: Request, next: str = "") -> Response:
    settings = context(request).settings
    try:
        configuration = await provider_configuration(settings)
    except SignInRefused as refused:
        return refusal_page(refused.status, refused.reason, settings)
    pending = PendingSignIn(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 asks for 43 to 128
        next=safe_next(next, default=""),  # empty: the session picks the start page (agents: /agents)
    )
    async with oauth_client(settings) as client:
        url, _ = client.create_authorization_url(
            configuration["authorization_endpoint"],
            state=pending.state,
            code_verifier=pending.verifier,
            nonce=pending.nonce,
        )
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        pending_cookie(settings),
        seal(settings, pending),
        max_age=PENDING_SECONDS,
        httponly=True,
        samesite="lax",  # the provider sends the browser back with a top-level GET: the cookie comes along
        secure=https(settings),
        path="/",
    )
    return response


@router.get("/callback", summary="Finish signing in: check the provider's answer, start a session")
async def callback(
    request: Request, code: str = "", state: str = "", error: str = "", error_description: str = ""
) -> Response:
    settings = context(request).settings
    try:
        return await finish(request, settings, code=code, state=state, error=error)
    except SignInRefused as refused:
        log.info("OIDC sign-in refused (%s): %s", refused.status, refused.reason)
        return refusal_page(refused.status, refused.reason, settings)


async def finish(request: Request, settings: Settings, *, code: str, state: str, error: str) -> Response:
    pending = unseal(settings, request.cookies.get(pending_cookie(settings)))
    if pending is None:
        raise SignInRefused(400, "This sign-in expired or was started in another browser. Please start again.")
    if error:
        raise SignInRefused(403, f"The identity provider did not sign you in ({error[:60]}).")
    if not state or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise SignInRefused(400, "The answer does not belong to the sign-in started here (state). Please start again.")
    if not code:
        raise SignInRefused(400, "The identity provider sent no authorization code. Please start again.")
    configuration = await provider_configuration(settings)
    try:
        async with oauth_client(settings) as client:
            token = await client.fetch_token(
                configuration["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.verifier,
            )
    except OAuthError as problem:
        raise SignInRefused(
            403, f"The identity provider refused the sign-in ({problem.error}). Please start again."
        ) from problem
    except httpx.HTTPError as problem:
        log.warning("OIDC token request failed: %s", problem)
        raise SignInRefused(503, "The identity provider cannot be reached. Please try again.") from problem
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused(403, "The identity provider sent no ID token (is the scope openid requested?).")
    try:
        claims = await run_in_threadpool(verify_id_token, id_token, configuration, settings, pending.nonce)
    except TokenRefused as problem:
        raise SignInRefused(
            problem.status if problem.status == 503 else 403, f"The ID token is not valid: {problem.reason}."
        ) from problem
    claims = await with_userinfo(claims, dict(token), configuration, settings)
    response = await begin_session(request, identity_of(claims, settings), pending.next)
    response.delete_cookie(pending_cookie(settings), path="/", secure=https(settings), httponly=True, samesite="lax")
    return response
