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

One module per protection: headers.py (1), limits.py (2, 3), csrf.py (4); common.py what they share.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI

from infra.config import Settings
from infra.observability import redact_access_logs
from web.safety.common import (
    CODEC_MAX_BODY_BYTES,
    CODEC_PATHS,
    CSRF_COOKIE,
    CSRF_FIELD,
    INSTALLED_STATE,
    PORTAL_FORM_BYTES,
    PORTAL_UPLOAD_PATHS,
    SESSION_COOKIES,
    STATEMENT_PATHS,
    refuse,
)
from web.safety.csrf import RequestGuard, RouteKinds, csrf_input, form_token, is_json_route
from web.safety.headers import SecurityHeaders, content_security_policy, docs_policy, security_headers
from web.safety.limits import BodySizeLimit, RateLimits, rate_limit_table


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
            **{path: settings.portal_upload_bytes + PORTAL_FORM_BYTES for path in PORTAL_UPLOAD_PATHS},
        },
    )
    app.add_middleware(RateLimits, table=rate_limit_table(settings), storage_uri=settings.rate_limit_storage_uri)
    app.add_middleware(SecurityHeaders, headers=security_headers(settings, https=https, public=public))
    from web.render import templates  # the pages import much of the app; needed only here

    templates.env.globals.setdefault("csrf_input", csrf_input)
    redact_access_logs()


__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "BodySizeLimit",
    "RateLimits",
    "RequestGuard",
    "RouteKinds",
    "SecurityHeaders",
    "content_security_policy",
    "csrf_input",
    "docs_policy",
    "form_token",
    "install",
    "is_json_route",
    "rate_limit_table",
    "refuse",
    "security_headers",
]
