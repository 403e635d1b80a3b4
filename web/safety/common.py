"""What the four browser protections (web/safety/) share: the names of the CSRF cookie and field, the
paths with their own rules, and one way to refuse a request that browsers and programs can both read."""

from __future__ import annotations

import html
import json
import re

from starlette.datastructures import Headers
from starlette.types import Scope, Send

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
# The portal's forms with an attachment (web/public/portal/uploads.py): settings.portal_upload_bytes for
# the file plus this much for the form around it; the handler names the file's own limit.
PORTAL_UPLOAD_PATHS = frozenset({"/portal/dispute", "/portal/proof"})
PORTAL_FORM_BYTES = 64 * 1024
CODEC_MAX_BODY_BYTES = 8 * 1024 * 1024  # web/internal/codec.py's own cap; Temporal caps one payload at 2 MB
DOCS_PATHS = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000"
INSTALLED_STATE = "browser_safety"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


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
