"""Both web apps for tests that exercise features, not authorization: one ASGI callable that sends
each request to the app owning its path (as a deployment reachable on both ports would), with the
internal app's caller fixed to a principal (default: staff holding every role and scope).

Authorization itself — who is refused where, that each URL has one owner, sign-in, API clients —
is tested through the real, un-overridden apps in tests/test_route_policy.py and
tests/test_authorization.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, Literal

from fastapi import FastAPI, routing
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from models.auth import Role
from models.auth import Scope as ApiScope
from web.app import create_internal_app, create_public_app
from web.auth import policy
from web.auth.principal import Principal
from web.deps import AppContext

TEST_STAFF = Principal(
    kind="person",
    name="test-staff",
    roles=frozenset(r.value for r in Role if r != Role.AGENT),
    scopes=frozenset(s.value for s in ApiScope),
    via="test",
)


def signed_in_as(app: FastAPI, who: Principal | None) -> None:
    """Let `who` call the app (None: nobody is signed in)."""
    app.dependency_overrides[policy.caller] = lambda _request=None: who


class _BothState:
    def __init__(self, *apps: FastAPI) -> None:
        object.__setattr__(self, "_apps", apps)

    def __setattr__(self, name: str, value: Any) -> None:
        for app in object.__getattribute__(self, "_apps"):
            setattr(app.state, name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_apps")[0].state, name)


class BothApps:
    def __init__(self, ctx: AppContext | None = None, who: Principal | None | Literal["real"] = TEST_STAFF) -> None:
        """`who="real"`: no override, callers sign in for real (session cookie, API client key)."""
        self.public, self.internal = create_public_app(ctx), create_internal_app(ctx)
        for app in (self.public, self.internal):
            if ctx is not None:
                app.state.ctx = ctx
        if who != "real":
            signed_in_as(self.internal, who)
        self.state = _BothState(self.public, self.internal)
        self.router = SimpleNamespace(lifespan_context=self._lifespan)
        self._public_routes = [c.route for c in routing.iter_route_contexts(self.public.routes)]

    def openapi(self) -> dict[str, Any]:
        """Both apps' schemas in one (each path is in exactly one of them)."""
        schema = self.internal.openapi()
        public = self.public.openapi()
        paths, components = dict(schema["paths"]), dict(schema.get("components", {}).get("schemas", {}))
        paths.update(public["paths"])
        components.update(public.get("components", {}).get("schemas", {}))
        return {**schema, "paths": paths, "components": {**schema.get("components", {}), "schemas": components}}

    @asynccontextmanager
    async def _lifespan(self, _app: object) -> AsyncIterator[None]:
        yield  # the context is set above; nothing else to start

    def _owner(self, scope: Scope) -> FastAPI:
        if scope["type"] == "http" and any(r.matches(scope)[0] == Match.FULL for r in self._public_routes):
            return self.public
        return self.internal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._owner(scope)(scope, receive, send)
