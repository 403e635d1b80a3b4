"""2. Rate limits per client IP by path prefix (slowapi's Limiter over RATE_LIMIT_STORAGE_URI), and
3. the request size, counted while the body streams in (413 as soon as the limit is passed)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fastapi import Request
from limits import RateLimitItem, parse_many
from slowapi import Limiter
from slowapi.util import get_remote_address
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.config import Settings
from web.safety.common import refuse

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
        "POST /verify": settings.rate_limit_step_up,  # the portal's step-up: codes sent, answers tried
        "POST /portal": settings.rate_limit_portal,  # the portal's actions: requests, messages, uploads, payments
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
