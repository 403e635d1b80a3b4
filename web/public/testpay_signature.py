"""Webhook signatures of the built-in test payment provider (TestPay).

The scheme is Stripe's, so the engine's webhook code looks the same for both providers:
header `TestPay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
A signature is accepted only within `TOLERANCE_SECONDS` of the receiver's clock (both ways),
so a captured webhook cannot be replayed later.

Pure functions: the caller passes the clock, tests pass any time they like.
"""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "TestPay-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 1000
# ASCII digits only (str.isdigit also takes "²", which int() refuses), at most 12 of them: a
# timestamp from year 33658 or later is malformed, not merely too new.
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class SignatureError(ValueError):
    """The webhook is not from TestPay (or is too old/new to trust); the message says why."""


def compute(secret: str, body: bytes, timestamp: int) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` with the shared secret."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_value(secret: str, body: bytes, timestamp: int) -> str:
    """The `TestPay-Signature` header for this body at this time."""
    return f"t={timestamp},{SCHEME}={compute(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str | None, now: int, tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check the header against the raw body; returns the signed timestamp.

    Raises `SignatureError` when the header is missing or malformed, the timestamp is outside
    `now ± tolerance` seconds, or no `v1` signature matches (compared in constant time).
    """
    if not header:
        raise SignatureError(f"{HEADER} header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError(f"{HEADER} header is longer than {MAX_HEADER_LENGTH} characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if timestamp is not None:
                raise SignatureError(f"{HEADER} header has more than one timestamp t=…")
            if not UNIX_SECONDS.fullmatch(value):
                raise SignatureError(f"{HEADER} timestamp t must be unix seconds, got {value[:20]!r}")
            timestamp = int(value)
        elif key == SCHEME:
            # Only well-formed candidates are compared (compare_digest refuses non-ASCII text).
            if HEX_SIGNATURE.fullmatch(value):
                signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"{HEADER} header has no timestamp t=…")
    if not signatures:
        raise SignatureError(f"{HEADER} header has no {SCHEME}=… signature (64 lowercase hex digits)")
    age = now - timestamp
    if age > tolerance:
        raise SignatureError(f"{HEADER} timestamp is {age} s old; at most {tolerance} s are accepted")
    if age < -tolerance:
        raise SignatureError(f"{HEADER} timestamp is {-age} s in the future; at most {tolerance} s are accepted")
    expected = compute(secret, body, timestamp)
    # Check every candidate (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError(f"{HEADER} signature does not match the body (wrong secret or altered body)")
    return timestamp
