"""Who may do what (issue #12): staff accounts, their server-side sessions, API clients, and the
append-only audit trail. Secrets are stored only as hashes; a session cookie holds a random id
whose SHA-256 is the row's key, so a copy of the database does not sign anyone in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    VIEWER = "viewer"  # reads cases, contracts, letters
    CLERK = "clerk"  # case actions: hold, resume, promise, dispute, payments, contact data
    SUPERVISOR = "supervisor"  # write-off, court and termination approvals, agent calendar
    FINANCE = "finance"  # bank statements, the manual queue
    MARKETING = "marketing"  # the campaign report
    ADMIN = "admin"  # accounts, API clients
    AGENT = "agent"  # an agency's agent: only their own handover tasks


class Scope(StrEnum):
    LEDGER_WRITE = "ledger:write"
    LEDGER_READ = "ledger:read"
    BANK_IMPORT = "bank:import"
    EVIDENCE_WRITE = "evidence:write"
    CAMPAIGN_WRITE = "campaign:write"
    CODEC = "codec"


class StaffAccount(SQLModel, table=True):
    __tablename__ = "staff_accounts"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  # the sign-in name; for OIDC users the subject's preferred name
    roles: str  # comma-separated Role values
    agent_code: str | None = None  # role agent: whose tasks
    password_hash: str | None = None  # argon2id; None: no local password (OIDC only, or reset)
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_sessions"
    id_hash: str = Field(primary_key=True)  # SHA-256 of the cookie's random id
    name: str = Field(index=True)
    roles: str
    agent_code: str | None = None
    source: str  # "local" or "oidc"
    subject: str  # account id or the OIDC subject
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    key_id: str = Field(unique=True)  # the public half of the credential "<key id>.<secret>"
    secret_hash: str  # SHA-256 of the 32-byte random secret (high entropy: no slow hash needed)
    scopes: str  # space-separated Scope values
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One change by a person, system, agent, provider or customer link. Rows are only inserted."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor_kind: str  # person, agent, client, provider, customer, system, cli
    actor: str  # account or client name, provider, "pay link", cli identity
    via: str  # session, api-key, jwt, signature, link, cli, workflow
    action: str  # what: "POST /api/contracts/{contract_number}" or a CLI command
    contract_number: str | None = Field(default=None, index=True)
    detail: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = ""  # from where: client address, or the host a CLI ran on
    status_code: int | None = None
