"""Who is calling: resolved once per request by the policy check (web/auth/policy.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

Kind = Literal["anonymous", "person", "agent", "client", "provider", "customer", "system"]


@dataclass(frozen=True)
class Principal:
    kind: Kind
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    agent_code: str | None = None
    via: str = ""  # session, api-key, jwt, signature, link

    @property
    def label(self) -> str:
        """How the audit trail and a workflow's journal name them: "person:mia", "client:billing"."""
        return f"{self.kind}:{self.name}"


ANONYMOUS = Principal(kind="anonymous", name="anonymous")
PRINCIPAL_STATE = "principal"


def principal(request: Request) -> Principal:
    """The caller the policy check established (anonymous if it did not run: never for a routed request)."""
    found = getattr(request.state, PRINCIPAL_STATE, None)
    return found if isinstance(found, Principal) else ANONYMOUS
