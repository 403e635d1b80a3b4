"""The web apps (issue #12): one codebase, two apps, each URL owned by exactly one of them.

- public app (`web.app:public_app`, PUBLIC_PORT 8000): pay links, short links, campaign
  confirm/unsubscribe/resume, provider webhooks, TestPay pages (embedded default). The only app that
  goes on the internet (docs/deployment.md).
- internal app (`web.app:internal_app`, INTERNAL_PORT 8001): staff pages, every /api/..., the codec
  endpoint, API docs, sign-in. Every route needs a signed-in person or an API client.
- metrics app (`web.app:metrics_app`, WEB_METRICS_PORT 8002): /metrics for Prometheus.

Who may call what is one table, web/auth/policy.py; an app refuses to start with a route it lacks.
Each app connects to Temporal at start-up (`make run` runs all three).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from infra.config import get_settings
from infra.observability import configure_logging
from infra.runtime import connect
from ledger.db import make_engine, migrate
from ledger.inbound import Inbound
from ledger.service import LedgerError, NotFound
from web import render, safety
from web.auth import oidc, policy, signin
from web.auth.audit import AuditMiddleware
from web.deps import AppContext
from web.internal import agents, analytics, api, bank, case_actions, evidence, simulation, staff
from web.internal import campaign as quote_campaign
from web.internal import codec as payload_codec
from web.internal import metrics as prometheus_metrics
from web.internal import requests as customer_requests
from web.public import campaign_links, delivery_webhooks, pay, pay_links, stripe_webhook, testpay
from web.public.portal import routes as portal
from web.public.portal.session import PortalSignInRequired

TITLE = "Dunning and reactivation engine"


def _lifespan(ctx: AppContext | None, name: str) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx is not None:
            app.state.ctx = ctx
        else:
            settings = get_settings()
            if settings.log_format == "json":
                configure_logging(name)  # JSON lines, personal data masked (infra/observability.py)
            migrate(settings.effective_database_url)
            engine = make_engine(settings.effective_database_url)
            # Temporal records this as the caller of every start, signal and update the apps send; the
            # person behind a staff action is the update's `by` (web/internal/case_actions.py).
            client = await connect(settings, identity=f"dunning-web@{socket.gethostname()}")
            app.state.ctx = AppContext(engine, client, settings, Inbound(engine, client, settings))
        yield

    return lifespan


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(LedgerError)
    async def bad_input(_: Request, error: LedgerError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.exception_handler(PortalSignInRequired)
    async def portal_session_needed(_: Request, __: PortalSignInRequired) -> Response:
        """No live portal session (ended, idle, signed out): the page says so and how to get back in."""
        return RedirectResponse("/portal/ended", status_code=303)

    @app.exception_handler(policy.SignInRequired)
    async def sign_in_required(request: Request, _: policy.SignInRequired) -> Response:
        """A browser goes to the sign-in page; a system is told how to authenticate."""
        if request.method == "GET" and not request.url.path.startswith(("/api/", "/codec/")):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/sign-in?next={_quote(target)}", status_code=303)
        return JSONResponse(
            status_code=401,
            content={"detail": "sign in, or send Authorization: Bearer <API client credential or token>"},
            headers={"WWW-Authenticate": "Bearer"},
        )


# Internal paths whose callers are programs: their refusals stay JSON.
_MACHINE_PATHS = ("/api/", "/codec/", "/openapi.json")


def _staff_refusals(app: FastAPI) -> None:
    """A person refused on a staff page (a clerk posting a supervisor's form) gets a page that says
    why, in the back office's layout, instead of a raw JSON body; programs keep JSON."""

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> Response:
        if error.status_code == 403 and not request.url.path.startswith(_MACHINE_PATHS):
            text = f"Your account may not do this ({error.detail}). Ask someone who holds that role, or an admin."
            return render.page(request, "staff_error.html", 403, title="Not allowed", text=text)
        return await http_exception_handler(request, error)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _build(kind: policy.App, ctx: AppContext | None, routers: list[APIRouter]) -> FastAPI:
    app = policy.guarded_app(routers, kind, title=TITLE, version="0.1.0", lifespan=_lifespan(ctx, "web"))
    _errors(app)
    if kind == "internal":
        _staff_refusals(app)
    app.add_middleware(AuditMiddleware)  # inside the browser protections: records only what passed them
    if kind != "metrics":
        safety.install(app, ctx.settings if ctx is not None else get_settings(), public=kind == "public")
    return app


# Every router goes into both apps; policy.install keeps in each only the routes it owns.
ROUTERS = [
    api.router,
    pay_links.router,  # the stable pay link /pay/{token}: Stripe, or hands it to the TestPay pages
    stripe_webhook.router,
    delivery_webhooks.router,
    pay.router,
    portal.router,  # the customer portal (issue #14)
    testpay.router,
    staff.router,
    agents.router,
    bank.router,
    evidence.router,
    payload_codec.router,
    quote_campaign.router,
    campaign_links.router,
    signin.router,
    oidc.router,
    case_actions.router,
    customer_requests.router,  # customers' requests from the portal, in the staff queues (issue #14)
    analytics.router,  # collections analytics for supervisors and finance (issue #16)
    simulation.router,  # what-if simulation of plan changes, read-only (issue #16)
]


def _docs_router(app_ref: list[FastAPI]) -> APIRouter:
    """API docs for signed-in staff only (FastAPI's own /docs would be open to anyone)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    def openapi() -> JSONResponse:
        return JSONResponse(app_ref[0].openapi())

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} · API")

    return router


def create_public_app(ctx: AppContext | None = None) -> FastAPI:
    return _build("public", ctx, ROUTERS)


def create_internal_app(ctx: AppContext | None = None) -> FastAPI:
    holder: list[FastAPI] = []
    app = _build("internal", ctx, [*ROUTERS, _docs_router(holder)])
    holder.append(app)
    return app


def create_metrics_app(ctx: AppContext | None = None) -> FastAPI:
    return _build("metrics", ctx, [prometheus_metrics.router])


public_app = create_public_app()
internal_app = create_internal_app()
metrics_app = create_metrics_app()
