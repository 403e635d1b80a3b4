"""Every successful change through either app lands in the audit trail: an ASGI middleware that
sees the response status and the caller the policy check established. Handlers may add what the
path does not say (`note(request, contract_number=..., detail=...)`); the route's path template is
recorded, never the concrete URL (pay tokens and link ids stay out of the trail)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger import audit
from ledger.db import session_scope
from web.auth.policy import policy_for
from web.auth.principal import PRINCIPAL_STATE, Principal

log = logging.getLogger("dunning.audit")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
NOTE_STATE = "audit_note"
SECRET_PARAMS = {"token", "token_id", "session_id"}  # path parameters that are credentials


def note(request: Request, *, contract_number: str | None = None, **detail: Any) -> None:
    """What the handler changed, for the trail (no personal data beyond the contract number)."""
    current: dict[str, Any] = getattr(request.state, NOTE_STATE, None) or {}
    if contract_number:
        current["contract_number"] = contract_number
    current.update(detail)
    setattr(request.state, NOTE_STATE, current)


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        touched: dict[str, Any] = {}
        token = audit.TOUCHED.set(touched)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            audit.TOUCHED.reset(token)
        if status and status[0] < 400:
            await anyio.to_thread.run_sync(self._record, scope, status[0], touched)

    def _record(self, scope: Scope, status_code: int, touched: dict[str, Any]) -> None:
        state = scope.get("state") or {}
        who = state.get(PRINCIPAL_STATE)
        route = scope.get("route")
        if not isinstance(who, Principal) or not isinstance(route, APIRoute):
            return
        rule = policy_for(scope["method"], route.path)
        if rule is not None and not rule.audited:
            return  # a read sent as POST (the codec)
        noted: dict[str, Any] = dict(state.get(NOTE_STATE) or {})
        params = {k: v for k, v in (scope.get("path_params") or {}).items() if k not in SECRET_PARAMS}
        contract = noted.pop("contract_number", None) or params.get("contract_number") or touched.get("contract_number")
        actor = noted.pop("actor", None)
        if isinstance(actor, Principal):  # sign-in: the person who signed in, not the anonymous caller
            who = actor
        client = scope.get("client")
        try:
            with session_scope(scope["app"].state.ctx.engine) as session:
                audit.record(
                    session,
                    actor_kind=who.kind,
                    actor=who.name,
                    via=who.via,
                    action=f"{scope['method']} {route.path}",
                    contract_number=contract,
                    detail={**params, **noted},
                    source=client[0] if client else "",
                    status_code=status_code,
                )
        except Exception:  # the change is done; a lost trail row is logged loudly, never silently
            log.exception("audit trail row for %s %s not written", scope["method"], route.path)
