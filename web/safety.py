"""Browser safety for both web apps (issue #12, item 6): what a browser may be made to do.

`install(app, settings, public=...)` puts four pure ASGI middlewares in front of an app, outermost
first (each also answers the refusals of the ones inside it with its headers):

1. **Security headers** on every response: Content-Security-Policy (no scripts but our own, no
   framing, forms post only to this app), nosniff, Referrer-Policy no-referrer (pay links carry
   tokens), X-Frame-Options DENY, and HSTS when the app's base URL is https.
2. **Rate limits** per client IP, by path prefix (`rate_limit_table`): sign-in, pay links and the
   campaign's token links (confirm, unsubscribe, resume). 429 with Retry-After. Counters are kept by a slowapi
   `Limiter` in `RATE_LIMIT_STORAGE_URI`: "memory://" counts per process; several web processes must
   share a store such as "redis://host:6379", or each grants the full limit.
3. **Request size**, counted while the body streams in: 413 as soon as `MAX_BODY_BYTES` (bank
   statement imports: `MAX_STATEMENT_BYTES`) is passed, before a handler has read it all.
4. **Request kinds**: a route whose body is a JSON model accepts only `application/json` (415):
   a cross-site "simple" request (text/plain, form) can then not reach it without a CORS preflight,
   which these apps never grant. Every other state-changing request that a cross-site form could
   send (form-encoded, multipart, text/plain or no body) needs the CSRF token (403 otherwise):
   signed double submit, a random `csrf` cookie (HttpOnly, SameSite=Strict, Secure on https) and a
   `csrf_token` form field carrying HMAC(csrf_secret, cookie value, staff session cookie) — a cookie
   planted by someone else is useless without the secret, and on the internal app the token is tied
   to the person's session. Templates put the field into every form with `{{ csrf_input(request) }}`.
   Exempt (`CSRF_EXEMPT`): provider webhooks (they are signed), the system APIs under /api/ and the
   codec (JSON or bearer credentials, no cookies), and RFC 8058 one-click unsubscribe (mail clients
   post without cookies; the signed link is the authority and unsubscribing is the safe direction).
   A request with an Authorization header is exempt too: a cross-site page cannot add one without a
   preflight.

Access logs: `install` also redacts pay tokens, link ids and session/CSRF cookie values from uvicorn's
access log (observability.redact_access_logs).

Style: the Content-Security-Policy allows inline *styles* ('unsafe-inline' for style only, never for
scripts). Our templates carry a <style> block and style attributes, and the staff outbox shows each
e-mail in a sandboxed srcdoc frame, which inherits this policy: e-mails must use inline style
attributes (many mail clients drop <style>), and hashes cannot cover attributes of changing content.
Inline styles cannot run code; scripts stay limited to 'self' (the apps serve none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi import params as fastapi_params
from fastapi.routing import RouteContext, iter_route_contexts
from limits import RateLimitItem, parse_many
from markupsafe import Markup
from slowapi import Limiter
from slowapi.util import get_remote_address
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.config import Settings
from infra.observability import redact_access_logs

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_STATE = "csrf"  # request.state attribute the templates read through csrf_input()
# Staff session cookies the CSRF token is bound to on the internal app (web/auth/sessions.COOKIE).
SESSION_COOKIES = ("dunning_session",)
# Path prefixes whose state-changing requests need no CSRF token (see the module docstring).
CSRF_EXEMPT = ("/webhooks/", "/api/", "/codec/", "/campaign/unsubscribe/")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What an HTML form (or any cross-site "simple" request) can send; "" = no Content-Type at all.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""})
JSON_TYPE = "application/json"
# Bank statements are big: these paths get settings.max_statement_bytes instead of max_body_bytes.
STATEMENT_PATHS = frozenset({"/api/bank/statements", "/bank/import"})
CODEC_PATHS = frozenset({"/codec/decode", "/codec/encode"})
CODEC_MAX_BODY_BYTES = 8 * 1024 * 1024  # web/internal/codec.py's own cap; Temporal caps one payload at 2 MB
DOCS_PATHS = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000"
INSTALLED_STATE = "browser_safety"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def install(app: FastAPI, settings: Settings, *, public: bool) -> None:
    """Put the browser protections in front of `app` (call once, after creating it, before it starts).

    `public` selects the base URL that decides about https (public_base_url or internal_base_url)
    and whether CSRF tokens are tied to the staff session (internal app only). A second call on the
    same app changes nothing (rate limits would otherwise count twice)."""
    if getattr(app.state, INSTALLED_STATE, False):
        return
    setattr(app.state, INSTALLED_STATE, True)
    base_url = settings.public_base_url if public else settings.internal_base_url
    https = urlsplit(base_url).scheme == "https"
    kinds = RouteKinds(app)
    # add_middleware wraps: the last one added runs first.
    app.add_middleware(
        RequestGuard,
        kinds=kinds,
        secret=settings.csrf_secret,
        secure_cookie=https,
        session_cookies=() if public else SESSION_COOKIES,
    )
    app.add_middleware(
        BodySizeLimit,
        default_limit=settings.max_body_bytes,
        limits={
            **{path: settings.max_statement_bytes for path in STATEMENT_PATHS},
            **{path: CODEC_MAX_BODY_BYTES for path in CODEC_PATHS},  # a history page of payloads
        },
    )
    app.add_middleware(RateLimits, table=rate_limit_table(settings), storage_uri=settings.rate_limit_storage_uri)
    app.add_middleware(SecurityHeaders, headers=security_headers(settings, https=https, public=public))
    from web.render import templates  # the pages import much of the app; needed only here

    templates.env.globals.setdefault("csrf_input", csrf_input)
    redact_access_logs()


# --- refusals ---------------------------------------------------------------------------------


async def refuse(scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A refusal the caller can read: a small HTML page for browsers, JSON `{"detail": …}` otherwise."""
    accept = Headers(scope=scope).get("accept", "")
    if "text/html" in accept:
        body = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Request refused</title></head>'
            f"<body><h1>{status}</h1><p>{html.escape(detail)}</p></body></html>"
        ).encode()
        media = "text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": detail}).encode()
        media = JSON_TYPE
    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# --- 1. security headers ----------------------------------------------------------------------


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def content_security_policy(settings: Settings, *, public: bool) -> str:
    """Forms post to this app only. The pay flow needs nothing more: the Stripe hand-over is a GET
    redirect from /pay/{token} (form-action governs only form submissions and their redirects), and
    every form's answer redirects within the app. The internal app also allows the identity
    provider, in case a sign-in form ever posts straight to it."""
    form_action = ["'self'"]
    issuer = _origin(settings.oidc_issuer) if not public and settings.oidc_issuer else None
    if issuer:
        form_action.append(issuer)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",  # see the module docstring
            "img-src 'self' data:",
            "base-uri 'self'",
            f"form-action {' '.join(form_action)}",
            "frame-ancestors 'none'",
        ]
    )


def docs_policy(script_hashes: list[str]) -> str:
    """Swagger UI (internal app, signed-in staff): its bundle from jsDelivr and its one inline script,
    allowed by hash."""
    hashes = " ".join(f"'sha256-{h}'" for h in script_hashes)
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' https://cdn.jsdelivr.net {hashes}".strip(),
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
            "img-src 'self' data: https://fastapi.tiangolo.com",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(settings: Settings, *, https: bool, public: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(settings, public=public),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return headers


_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


class SecurityHeaders:
    """Adds the headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, message: Message, overrides: dict[str, str] | None = None) -> None:
        message["headers"] = list(message.get("headers", []))
        headers = MutableHeaders(scope=message)
        for name, value in {**self.headers, **(overrides or {})}.items():
            if overrides and name in overrides:
                headers[name] = value
            else:
                headers.setdefault(name, value)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The API docs page: held back until complete, so its inline script can be allowed by hash."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            hashes = [
                base64.b64encode(hashlib.sha256(script).digest()).decode() for script in _INLINE_SCRIPT.findall(body)
            ]
            self._add(start, {"Content-Security-Policy": docs_policy(hashes)})
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, hold)


# --- 2. rate limits ---------------------------------------------------------------------------


def rate_limit_table(settings: Settings) -> dict[str, str]:
    """Path prefix → limit per client IP ("10/minute", or several: "100/hour;10/minute").

    A key may start with a method ("POST /sign-in"): then only that method counts. A prefix matches
    the path itself and everything below it. Each key has its own counter. Add paths here."""
    return {
        "POST /sign-in": settings.rate_limit_sign_in,  # staff and agents
        "/auth/oidc": settings.rate_limit_sign_in,
        "/pay": settings.rate_limit_pay,
        "/p": settings.rate_limit_pay,
        "/testpay/checkout": settings.rate_limit_pay,
        "/campaign/confirm": settings.rate_limit_campaign,
        "/campaign/unsubscribe": settings.rate_limit_campaign,
        "/campaign/resume": settings.rate_limit_campaign,
        # Not POST /api/campaign/quotes/abandoned: the calculator's backend calls it from one address for
        # everyone; its entry limits are per e-mail address and per end-user IP, in the handler.
    }


@dataclass(frozen=True)
class RateRule:
    key: str
    method: str | None
    prefix: str
    limits: list[RateLimitItem]

    @classmethod
    def parse(cls, key: str, limit: str) -> RateRule:
        method, _, path = key.rpartition(" ")
        return cls(key, method.upper() or None, path.rstrip("/") or "/", parse_many(limit))

    def applies(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return path == self.prefix or path.startswith(self.prefix + "/")


class RateLimits:
    """Counts requests per client IP and rule with slowapi's limiter; 429 with Retry-After beyond it.

    slowapi ties limits to endpoint functions by decorator; the rules here are by path prefix (so one
    table covers routes added later), so this middleware asks slowapi's `Limiter` — its storage (from
    the URI), strategy and key function — directly."""

    def __init__(self, app: ASGIApp, table: dict[str, str], storage_uri: str) -> None:
        self.app = app
        self.rules = [RateRule.parse(key, limit) for key, limit in table.items()]
        self.limiter = Limiter(key_func=get_remote_address, storage_uri=storage_uri, key_prefix="dunning")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        client = get_remote_address(Request(scope))
        for rule in self.rules:
            if not rule.applies(method, path):
                continue
            for item in rule.limits:
                if not self.limiter.limiter.hit(item, "dunning", rule.key, client):
                    reset_at, _ = self.limiter.limiter.get_window_stats(item, "dunning", rule.key, client)
                    retry = max(1, math.ceil(reset_at - time.time()))
                    detail = f"too many requests ({rule.key}: at most {item} per client); try again in {retry} s"
                    await refuse(scope, send, 429, detail, {"Retry-After": str(retry)})
                    return
        await self.app(scope, receive, send)


# --- 3. request size --------------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses a body larger than its path's limit while it streams in (413), before a handler has
    read it all: a declared Content-Length is refused at once, a chunked body at the chunk that
    crosses the limit. Whatever the app answers after that is replaced by the 413."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        detail = f"the request body must be at most {limit} bytes for {scope['path']}"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refuse(scope, send, 413, f"{detail}; Content-Length says {declared}")
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(detail)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a body it never got whole; the 413 follows
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await refuse(scope, send, 413, f"{detail}; it was longer")


# --- 4. JSON only, CSRF -----------------------------------------------------------------------


def is_json_route(route: object) -> bool:
    """A route whose body is a JSON model (a pydantic model or any other non-form body parameter),
    decided as FastAPI itself decides whether to parse a form."""
    body_field = getattr(route, "body_field", None)
    if body_field is None:
        return False
    return not isinstance(body_field.field_info, fastapi_params.Form)


class RouteKinds:
    """Which route a request goes to, as the router decides (the first full match, routers included)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def route_for(self, scope: Scope) -> RouteContext | None:
        for route in iter_route_contexts(self.app.router.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
        return None


def form_token(secret: str, nonce: str, session: str) -> str:
    """The form field that goes with a `csrf` cookie value (and the staff session, if any)."""
    message = f"csrf\x00{nonce}\x00{session}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class CsrfState:
    """Per request: the cookie's nonce (new if the browser sent none) and the token for forms."""

    secret: str
    nonce: str
    session: str
    fresh: bool
    used: bool = field(default=False)

    def token(self) -> str:
        self.used = True
        return form_token(self.secret, self.nonce, self.session)


def csrf_input(request: Request) -> Markup:
    """The hidden form field with this request's CSRF token (Jinja global `csrf_input`)."""
    state: CsrfState | None = getattr(request.state, CSRF_STATE, None)
    if state is None:
        return Markup("")  # an app without install(): nothing checks the token either
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, state.token())


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getlist("cookie"):
        try:
            jar.load(value)
        except Exception:  # noqa: BLE001 — a garbled cookie header is as good as none
            continue
    return {name: morsel.value for name, morsel in jar.items()}


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


class RequestGuard:
    """JSON routes take JSON only; every other state-changing request a cross-site form could send
    carries a valid CSRF token. Both are decided before the handler runs, so a refusal writes nothing."""

    def __init__(
        self,
        app: ASGIApp,
        kinds: RouteKinds,
        secret: str,
        secure_cookie: bool,
        session_cookies: tuple[str, ...],
    ) -> None:
        self.app = app
        self.kinds = kinds
        self.secret = secret
        self.secure_cookie = secure_cookie
        self.session_cookies = session_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        nonce = cookies.get(CSRF_COOKIE, "")
        fresh = not _NONCE.match(nonce)
        session = next((cookies[n] for n in self.session_cookies if n in cookies), "")
        state = CsrfState(self.secret, secrets.token_urlsafe(32) if fresh else nonce, session, fresh)
        scope.setdefault("state", {})[CSRF_STATE] = state

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and state.fresh and state.used:
                message["headers"] = list(message.get("headers", []))
                secure = "; Secure" if self.secure_cookie else ""
                cookie = f"{CSRF_COOKIE}={state.nonce}; Path=/; HttpOnly; SameSite=Strict{secure}"
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        if scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send_with_cookie)
            return
        media = _media_type(headers)
        if is_json_route(self.kinds.route_for(scope)):
            if media != JSON_TYPE and (media or _has_body(headers)):
                detail = (
                    f"{scope['method']} {scope['path']} accepts only Content-Type: {JSON_TYPE}, got {media or 'none'}"
                )
                await refuse(scope, send, 415, detail)
                return
            await self.app(scope, receive, send_with_cookie)
            return
        if (
            media not in FORM_TYPES
            or "authorization" in headers
            or any(scope["path"].startswith(prefix) for prefix in CSRF_EXEMPT)
        ):
            await self.app(scope, receive, send_with_cookie)
            return
        await self._check_form(scope, receive, send_with_cookie, state, media)

    async def _check_form(self, scope: Scope, receive: Receive, send: Send, state: CsrfState, media: str) -> None:
        hint = "Reload the page and send the form again"
        if state.fresh:
            await refuse(scope, send, 403, f"CSRF check failed: no {CSRF_COOKIE} cookie came with the form. {hint}.")
            return
        if media not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            detail = f"CSRF check failed: a form must be sent form-encoded or as multipart, got {media or 'no body'}"
            await refuse(scope, send, 403, f"{detail}. {hint}.")
            return
        chunks: list[bytes] = []
        try:
            given = await _form_field(scope, _recording(receive, chunks), CSRF_FIELD)
        except (HTTPException, MultiPartException, UnicodeDecodeError) as error:
            await refuse(scope, send, 400, f"the form body cannot be read: {getattr(error, 'detail', error)}")
            return
        if not given:
            await refuse(scope, send, 403, f"CSRF check failed: the form has no {CSRF_FIELD} field. {hint}.")
            return
        if not hmac.compare_digest(given.encode(), form_token(state.secret, state.nonce, state.session).encode()):
            detail = f"CSRF check failed: the form's {CSRF_FIELD} does not belong to this browser session. {hint}."
            await refuse(scope, send, 403, detail)
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _recording(receive: Receive, chunks: list[bytes]) -> Receive:
    """A receive that keeps a copy of each body chunk (for the app, after the check). The form is
    parsed while it streams in, as the app would parse it: a malformed one is refused at the part
    that breaks, and BodySizeLimit (outside) stops one that is too large."""

    async def recording() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
        return message

    return recording


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A receive that hands the app the body read already, then whatever the server sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _form_field(scope: Scope, receive: Receive, name: str) -> str:
    """One text field of a form-encoded or multipart body, parsed as the app will parse it."""
    form = await Request({**scope, "state": {}}, receive=receive).form()
    try:
        value: Any = form.get(name)
        return value if isinstance(value, str) else ""
    finally:
        await form.close()
