"""What the provider webhooks and the Stripe pay link share: the providers built once from the settings
(tests may set them on app.state), and the checks that refuse malformed input — a signature header or body
that is not UTF-8, not JSON, non-ASCII or absurd — with 400 before any provider SDK sees it."""

from __future__ import annotations

import json
import re

from fastapi import Request
from fastapi.responses import JSONResponse

from ledger import card_reversals
from providers.registry import Providers, build_providers
from providers.sendgrid_email import TIMESTAMP_HEADER as SENDGRID_TIMESTAMP
from web.deps import context

PROVIDERS_STATE = "providers"  # app.state attribute: built once from the settings (tests may set it)
STRIPE_SOURCE = card_reversals.SOURCE
TWILIO_SOURCE = "twilio"
SENDGRID_SOURCE = "sendgrid"
# SendGrid events that mean the address must not be used again, and those that only report success.
SENDGRID_UNDELIVERABLE = {"bounce", "dropped", "spamreport"}


# --- malformed input, refused before any provider SDK sees it --------------------------------------

MAX_SIGNATURE_HEADER = 1000
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits; "²" passes str.isdigit but not int()
# Stripe-Signature: comma-separated key=value pairs of printable ASCII, exactly one t=<unix seconds>.
STRIPE_PAIR = re.compile(r"[a-z0-9]{1,8}=[\x21-\x2b\x2d-\x7e]{1,200}")


def bad_request(detail: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": detail})


def unreadable_json(body: bytes) -> str | None:
    """Why a webhook body is not a readable JSON document (UTF-8), or None if it is."""
    try:
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "body is not UTF-8 text"
    except (ValueError, RecursionError):
        return "body is not valid JSON"
    return None


def malformed_stripe_header(header: str | None) -> str | None:
    """Why a Stripe-Signature header is malformed, or None (a missing one the SDK names itself)."""
    if not header:
        return None
    if len(header) > MAX_SIGNATURE_HEADER:
        return f"Stripe-Signature is longer than {MAX_SIGNATURE_HEADER} characters"
    pairs = header.split(",")
    if not all(STRIPE_PAIR.fullmatch(p.strip()) for p in pairs):
        return "Stripe-Signature must be comma-separated key=value pairs of printable ASCII"
    timestamps = [p.strip()[2:] for p in pairs if p.strip().startswith("t=")]
    if len(timestamps) != 1 or not UNIX_SECONDS.fullmatch(timestamps[0]):
        return "Stripe-Signature must hold exactly one timestamp t=<unix seconds>"
    return None


def malformed_sendgrid_timestamp(timestamp: str | None) -> str | None:
    if timestamp and not UNIX_SECONDS.fullmatch(timestamp):
        return f"{SENDGRID_TIMESTAMP} must be unix seconds (at most 12 ASCII digits), got {timestamp[:20]!r}"
    return None


def providers_for(request: Request) -> Providers:
    found: Providers | None = getattr(request.app.state, PROVIDERS_STATE, None)
    if found is None:
        found = build_providers(context(request).settings)
        setattr(request.app.state, PROVIDERS_STATE, found)
    return found


def not_configured(provider: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"{provider} is not the configured provider"})
