"""Signed customer links. The token carries only an opaque id; everything else is looked up."""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, URLSafeSerializer


def derive_token_id(secret: str, *parts: str) -> str:
    """Deterministic (idempotent on retries) yet unguessable without the secret."""
    mac = hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()
    return mac[:32]


PAY_LINK_SALT = "pay-link"


def pay_link_url(base_url: str, secret: str, token_id: str) -> str:
    """The customer's pay link: /pay/<signed token id>."""
    return f"{base_url.rstrip('/')}/pay/{sign(secret, PAY_LINK_SALT, token_id)}"


def sign(secret: str, salt: str, token_id: str) -> str:
    return str(URLSafeSerializer(secret, salt=salt).dumps(token_id))


def unsign(secret: str, salt: str, token: str) -> str | None:
    """The token id, or None when the token was not made with this secret."""
    try:
        value = URLSafeSerializer(secret, salt=salt).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None
