"""4. Request kinds: a route whose body is a JSON model accepts only application/json (415); every other
state-changing request a cross-site form could send needs the signed double-submit CSRF token (403)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from fastapi import FastAPI, Request
from fastapi import params as fastapi_params
from fastapi.routing import RouteContext, iter_route_contexts
from markupsafe import Markup
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.safety.common import (
    _NONCE,
    CSRF_COOKIE,
    CSRF_EXEMPT,
    CSRF_FIELD,
    CSRF_STATE,
    FORM_TYPES,
    JSON_TYPE,
    UNSAFE_METHODS,
    refuse,
)

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
