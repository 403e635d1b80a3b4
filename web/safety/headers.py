"""1. Security headers on every response: Content-Security-Policy (no scripts but our own, no framing,
forms post only to this app; the API docs page gets the hashes of its inline scripts), nosniff,
Referrer-Policy no-referrer, X-Frame-Options DENY, and HSTS when the app's base URL is https."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.config import Settings
from web.safety.common import DOCS_PATHS, HSTS

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
