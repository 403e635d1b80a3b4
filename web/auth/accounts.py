"""Local staff accounts (argon2id password hashes) and API clients (hashed random secrets).

A one-time password or client secret is printed once by `starter.py staff add` / `api-client create`
and never stored in clear. Local accounts sign in only where `settings.local_accounts` allows it."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from models.auth import ApiClient, Role, Scope, StaffAccount
from web.auth import sessions

HASHER = PasswordHasher()  # argon2id with the library's current parameters
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
_DUMMY_HASH = HASHER.hash("timing equaliser")  # unknown names cost the same time as wrong passwords


class AccountError(ValueError):
    """Bad input for an account or client: the message names the problem."""


def parse_roles(values: Iterable[str]) -> frozenset[str]:
    roles = frozenset(v.strip() for v in values if v.strip())
    unknown = sorted(roles - {r.value for r in Role})
    if unknown:
        raise AccountError(f"unknown role {', '.join(unknown)}; roles are {', '.join(r.value for r in Role)}")
    if not roles:
        raise AccountError("at least one role is needed")
    return roles


def parse_scopes(values: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(v.strip() for v in values if v.strip())
    unknown = sorted(scopes - {s.value for s in Scope})
    if unknown:
        raise AccountError(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(s.value for s in Scope)}")
    if not scopes:
        raise AccountError("at least one scope is needed")
    return scopes


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(f"name {name!r}: 2-63 characters, lower-case letters, digits, '.', '_' or '-'")
    return name


def add_staff(session: Session, name: str, roles: Iterable[str], created_by: str, agent_code: str | None = None) -> str:
    """Create an account; returns its one-time password (shown once)."""
    role_set = parse_roles(roles)
    _check_name(name)
    if Role.AGENT in role_set and not agent_code:
        raise AccountError("role agent needs --agent-code (whose tasks the agent sees)")
    if agent_code and Role.AGENT not in role_set:
        raise AccountError("--agent-code is only for role agent")
    if session.exec(select(StaffAccount).where(StaffAccount.name == name)).first() is not None:
        raise AccountError(f"account {name!r} exists already (use staff reset-password)")
    password = secrets.token_urlsafe(15)
    session.add(
        StaffAccount(
            name=name,
            roles=",".join(sorted(role_set)),
            agent_code=agent_code,
            password_hash=HASHER.hash(password),
            created_at=datetime.now(UTC),
            created_by=created_by,
        )
    )
    session.flush()
    return password


def reset_password(session: Session, name: str) -> str:
    """A new one-time password; the person's open sessions end (whoever held the old one is out)."""
    account = get_account(session, name)
    password = secrets.token_urlsafe(15)
    account.password_hash = HASHER.hash(password)
    account.disabled_at = None
    session.add(account)
    sessions.revoke_sessions_of(session, name)
    return password


def disable(session: Session, name: str) -> StaffAccount:
    """No more signing in, and the person's open sessions end now, not when they expire."""
    account = get_account(session, name)
    account.disabled_at = account.disabled_at or datetime.now(UTC)
    session.add(account)
    sessions.revoke_sessions_of(session, name)
    return account


def get_account(session: Session, name: str) -> StaffAccount:
    account = session.exec(select(StaffAccount).where(StaffAccount.name == name)).first()
    if account is None:
        raise AccountError(f"no account {name!r}")
    return account


def verify_password(session: Session, name: str, password: str) -> StaffAccount | None:
    """The account if name and password match and it is not disabled; same cost either way."""
    account = session.exec(select(StaffAccount).where(StaffAccount.name == name)).first()
    stored = account.password_hash if account is not None and account.password_hash else _DUMMY_HASH
    try:
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None or account.password_hash is None or account.disabled_at is not None:
        return None
    return account


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_client(session: Session, name: str, scopes: Iterable[str], created_by: str) -> str:
    """Create an API client; returns its credential "<key id>.<secret>" (shown once)."""
    scope_set = parse_scopes(scopes)
    _check_name(name)
    if session.exec(select(ApiClient).where(ApiClient.name == name)).first() is not None:
        raise AccountError(f"API client {name!r} exists already (revoke it and create a new one)")
    key_id, secret = f"dk_{secrets.token_hex(8)}", secrets.token_urlsafe(32)
    session.add(
        ApiClient(
            name=name,
            key_id=key_id,
            secret_hash=_secret_hash(secret),
            scopes=" ".join(sorted(scope_set)),
            created_at=datetime.now(UTC),
            created_by=created_by,
        )
    )
    session.flush()
    return f"{key_id}.{secret}"


def revoke_client(session: Session, name: str) -> ApiClient:
    client = session.exec(select(ApiClient).where(ApiClient.name == name)).first()
    if client is None:
        raise AccountError(f"no API client {name!r}")
    client.revoked_at = client.revoked_at or datetime.now(UTC)
    session.add(client)
    return client


def client_for_credential(session: Session, credential: str) -> ApiClient | None:
    """The live client a "<key id>.<secret>" belongs to, or None (constant-time comparison)."""
    key_id, _, secret = credential.partition(".")
    if not key_id.startswith("dk_") or not secret:
        return None
    client = session.exec(select(ApiClient).where(ApiClient.key_id == key_id)).first()
    if client is None or client.revoked_at is not None:
        return None
    return client if hmac.compare_digest(client.secret_hash, _secret_hash(secret)) else None
