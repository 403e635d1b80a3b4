"""Who may call what: ONE table for every route of both apps (issue #12).

Each entry names the app that owns the URL (a URL has exactly one owner: the other app answers 404)
and who may call it. `install()` runs at app creation: it drops the routes the app does not own,
refuses to build an app with a route that has no entry, and puts the check in front of every
route. The check establishes the caller (session cookie, API-client key or JWT), refuses with 401/403
before the handler runs, and leaves the caller on `request.state` for the handler and the audit
trail (web/auth/audit.py). docs/security.md prints this table for people.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute

from ledger.db import session_scope
from models.auth import Role, Scope
from web.auth import accounts, jwt_tokens, sessions
from web.auth.principal import PRINCIPAL_STATE, Principal
from web.deps import context

log = logging.getLogger("dunning.auth")

App = Literal["public", "internal", "metrics"]
R = Role
S = Scope


@dataclass(frozen=True)
class Policy:
    app: App
    who: str  # for people: docs/security.md and error messages
    roles: frozenset[str] = field(default_factory=frozenset)  # a signed-in person with one of these
    scopes: frozenset[str] = field(default_factory=frozenset)  # or a system with one of these
    # No credential needed: the handler itself checks a signed token (customer link) or a provider's
    # signature; the caller is recorded as this kind and name.
    open_as: tuple[Literal["customer", "provider", "anonymous"], str] | None = None
    audited: bool = True  # False only for reads sent as POST (the codec): no change, no trail row

    @property
    def is_open(self) -> bool:
        return self.open_as is not None


READERS = frozenset({R.VIEWER, R.CLERK, R.SUPERVISOR, R.FINANCE, R.ADMIN})


def staff(*roles: Role, scopes: tuple[Scope, ...] = (), who: str = "") -> Policy:
    names = ", ".join(r.value for r in roles) + (" or scope " + ", ".join(scopes) if scopes else "")
    return Policy("internal", who or names, frozenset(roles), frozenset(scopes))


def read(*scopes: Scope) -> Policy:
    return staff(*sorted(READERS), scopes=scopes, who="any staff role except marketing/agent" + _or(scopes))


def system(*scopes: Scope, roles: tuple[Role, ...] = ()) -> Policy:
    return Policy("internal", "scope " + ", ".join(scopes) + _or_roles(roles), frozenset(roles), frozenset(scopes))


def _or(scopes: tuple[Scope, ...]) -> str:
    return f", or scope {', '.join(scopes)}" if scopes else ""


def _or_roles(roles: tuple[Role, ...]) -> str:
    return f", or role {', '.join(roles)}" if roles else ""


def customer_link(what: str = "holder of the link's signed token (checked by the handler)") -> Policy:
    return Policy("public", what, open_as=("customer", "customer link"))


def portal_customer() -> Policy:
    """A customer after step-up: the handler checks the portal session (web/public/portal/session.py)."""
    return Policy(
        "public",
        "customer after step-up (portal session, checked by the handler)",
        open_as=("customer", "customer portal"),
    )


def provider(name: str) -> Policy:
    return Policy("public", f"{name}, by its signature (checked by the handler)", open_as=("provider", name))


def anyone(app: App, why: str) -> Policy:
    return Policy(app, f"anyone: {why}", open_as=("anonymous", "anonymous"))


AGENTS = staff(R.AGENT, who="an agent (sees only their own tasks)")

POLICIES: dict[tuple[str, str], Policy] = {
    # --- public app: customers and providers ------------------------------------------------------
    ("GET", "/p/{token_id}"): customer_link(),
    ("GET", "/pay/{token}"): customer_link(),
    ("POST", "/pay/{token}/checkout"): customer_link(),
    ("GET", "/pay/{token}/done"): customer_link(),
    ("GET", "/pay/{token}/stripe/done"): customer_link(),
    ("GET", "/pay/{token}/stripe/cancelled"): customer_link(),
    # --- public app: the customer portal (issue #14) ------------------------------------------------
    ("GET", "/verify/{token}"): customer_link(),
    ("POST", "/verify/{token}/code"): customer_link(
        "holder of the pay link (sends a one-time code to the contact on file)"
    ),
    ("POST", "/verify/{token}"): customer_link("holder of the pay link who answers the step-up (rate-limited)"),
    ("POST", "/portal/language"): customer_link("anyone on a customer page (the language of the customer pages)"),
    ("POST", "/portal/sign-out"): portal_customer(),
    ("GET", "/portal/ended"): customer_link("anyone (the page saying the portal session has ended)"),
    ("GET", "/portal"): portal_customer(),
    ("GET", "/portal/documents/{message_id}"): portal_customer(),
    ("GET", "/portal/pay"): portal_customer(),
    ("POST", "/portal/pay"): portal_customer(),
    ("GET", "/portal/pay/transfer"): portal_customer(),
    ("GET", "/portal/pay/result"): portal_customer(),
    ("GET", "/portal/arrangement"): portal_customer(),
    ("POST", "/portal/arrangement"): portal_customer(),
    ("GET", "/portal/dispute"): portal_customer(),
    ("POST", "/portal/dispute"): portal_customer(),
    ("GET", "/portal/proof"): portal_customer(),
    ("POST", "/portal/proof"): portal_customer(),
    ("GET", "/portal/bank"): portal_customer(),
    ("POST", "/portal/bank"): portal_customer(),
    ("GET", "/portal/contact"): portal_customer(),
    ("POST", "/portal/contact"): portal_customer(),
    ("POST", "/portal/contact/confirm"): portal_customer(),
    ("GET", "/portal/messages"): portal_customer(),
    ("POST", "/portal/messages"): portal_customer(),
    ("POST", "/portal/callback"): portal_customer(),
    ("GET", "/testpay/checkout/{session_id}"): customer_link("holder of the checkout id (TestPay, embedded default)"),
    ("POST", "/testpay/checkout/{session_id}/pay"): customer_link("holder of the checkout id (TestPay)"),
    ("POST", "/webhooks/testpay"): provider("testpay"),
    ("POST", "/webhooks/stripe"): provider("stripe"),
    ("POST", "/webhooks/twilio/status"): provider("twilio"),
    ("POST", "/webhooks/sendgrid"): provider("sendgrid"),
    ("GET", "/campaign/confirm/{token}"): customer_link(),
    ("POST", "/campaign/confirm/{token}"): customer_link(),
    ("GET", "/campaign/resume/{token}"): customer_link(),
    ("GET", "/campaign/unsubscribe/{token}"): customer_link(),
    ("POST", "/campaign/unsubscribe/{token}"): customer_link(),
    # --- internal app: signing in ----------------------------------------------------------------
    ("GET", "/sign-in"): anyone("internal", "the sign-in form"),
    ("POST", "/sign-in"): anyone("internal", "signs in with a local account (rate-limited)"),
    ("POST", "/sign-out"): anyone("internal", "ends the caller's own session"),
    ("GET", "/auth/oidc/login"): anyone("internal", "starts OIDC sign-in"),
    ("GET", "/auth/oidc/callback"): anyone("internal", "finishes OIDC sign-in (state, nonce, PKCE checked)"),
    # --- internal app: staff pages ---------------------------------------------------------------
    ("GET", "/"): read(),
    ("GET", "/outbox"): read(),
    ("GET", "/outbox/{message_id}"): read(),
    ("GET", "/outbox/{message_id}/pdf"): read(),
    ("GET", "/tasks"): read(),
    ("GET", "/tasks/{task_id}"): read(),
    ("GET", "/contracts/{contract_number}"): read(),
    # customers' requests from the portal (web/internal/requests.py): the back office and finance queues
    ("GET", "/requests"): read(),
    ("GET", "/requests/{request_id}"): read(),
    ("GET", "/requests/{request_id}/attachment"): read(),
    ("POST", "/requests/{request_id}/answer"): staff(R.CLERK, R.SUPERVISOR, R.FINANCE),
    ("POST", "/requests/{request_id}/done"): staff(R.CLERK, R.SUPERVISOR, R.FINANCE),
    ("GET", "/agents/requests/{request_id}"): AGENTS,
    ("POST", "/agents/requests/{request_id}/answer"): AGENTS,
    # case actions from the contract page (web/internal/case_actions.py): the signed-in person is the update's `by`
    ("POST", "/contracts/{contract_number}/case/hold"): staff(R.CLERK, R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/resume"): staff(R.CLERK, R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/promise"): staff(R.CLERK, R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/dispute"): staff(R.CLERK, R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/escalate"): staff(R.CLERK, R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/write-off"): staff(R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/cancel"): staff(R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/approve-court-filing"): staff(R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/approve-termination"): staff(R.SUPERVISOR),
    ("POST", "/contracts/{contract_number}/case/decline-termination"): staff(R.SUPERVISOR),
    ("GET", "/bank"): staff(R.FINANCE),
    ("POST", "/bank/import"): staff(R.FINANCE),
    ("POST", "/bank/lines/{line_id}/assign"): staff(R.FINANCE),
    ("POST", "/bank/lines/{line_id}/dismiss"): staff(R.FINANCE),
    ("GET", "/campaign/report"): staff(R.MARKETING, R.ADMIN),
    # collections analytics (issue #16): aggregates for those who steer collections and account for
    # them; no customer data, but the book's performance is not every clerk's or agent's business
    ("GET", "/analytics"): staff(R.SUPERVISOR, R.FINANCE),
    # what-if simulation (issue #16, web/internal/simulation.py): the same people decide plan changes;
    # reads only, but a run costs seconds of CPU, so not for every reader or system
    ("GET", "/analytics/simulation"): staff(R.SUPERVISOR, R.FINANCE),
    ("GET", "/analytics/simulation.csv"): staff(R.SUPERVISOR, R.FINANCE),
    ("GET", "/docs"): read(),
    ("GET", "/openapi.json"): read(),
    # --- internal app: agents (their own tasks only; the handlers filter by agent code) ----------
    ("GET", "/agents"): AGENTS,
    ("GET", "/agents/tasks/{task_id}"): AGENTS,
    ("POST", "/agents/tasks/{task_id}/attempts"): AGENTS,
    ("POST", "/agents/tasks/{task_id}/outcome"): AGENTS,
    # --- internal app: the API for systems (and staff tools) --------------------------------------
    ("POST", "/api/ledger/events"): system(S.LEDGER_WRITE),
    ("GET", "/api/contracts/{contract_number}"): read(S.LEDGER_READ),
    ("PUT", "/api/contracts/{contract_number}"): system(S.LEDGER_WRITE, roles=(R.CLERK,)),
    ("POST", "/api/contracts/{contract_number}/release-dunning"): staff(R.SUPERVISOR),
    ("GET", "/api/contracts/{contract_number}/coverage"): read(S.LEDGER_READ),
    ("GET", "/api/contracts/{contract_number}/notices"): read(S.LEDGER_READ),
    ("GET", "/api/cases/{contract_number}"): read(S.LEDGER_READ),
    ("GET", "/api/plans"): read(S.LEDGER_READ),
    ("POST", "/api/messages/{message_id}/evidence"): system(S.EVIDENCE_WRITE, roles=(R.CLERK,)),
    ("POST", "/api/bank/statements"): system(S.BANK_IMPORT, roles=(R.FINANCE,)),
    ("GET", "/api/bank/queue"): system(S.BANK_IMPORT, roles=(R.FINANCE,)),
    ("POST", "/api/bank/lines/{line_id}/assign"): staff(R.FINANCE),
    ("POST", "/api/bank/lines/{line_id}/dismiss"): staff(R.FINANCE),
    ("POST", "/api/campaign/quotes/abandoned"): system(S.CAMPAIGN_WRITE),
    ("POST", "/api/campaign/touchpoints"): system(S.CAMPAIGN_WRITE),
    ("POST", "/api/campaign/email-events"): system(S.CAMPAIGN_WRITE),  # and signed (X-Campaign-Signature)
    ("GET", "/api/campaign/report"): staff(R.MARKETING, R.ADMIN, scopes=(S.CAMPAIGN_WRITE,)),
    ("GET", "/api/analytics"): staff(R.SUPERVISOR, R.FINANCE),
    ("GET", "/api/simulation"): staff(R.SUPERVISOR, R.FINANCE),
    ("POST", "/codec/decode"): replace(read(S.CODEC), audited=False),
    ("POST", "/codec/encode"): replace(read(S.CODEC), audited=False),
    ("OPTIONS", "/codec/decode"): anyone("internal", "CORS preflight of the Temporal UI (no data)"),
    ("OPTIONS", "/codec/encode"): anyone("internal", "CORS preflight of the Temporal UI (no data)"),
    # --- metrics app (own port, bound to the internal interface) ----------------------------------
    ("GET", "/metrics"): anyone("metrics", "Prometheus scrape; the port binds to the internal interface only"),
}


def policy_for(method: str, path: str) -> Policy | None:
    return POLICIES.get(("GET" if method == "HEAD" else method, path))


class SignInRequired(Exception):
    """No (valid) credential: a browser is sent to the sign-in page, a system gets 401."""


# --- who is calling --------------------------------------------------------------------------------

BearerVerifier = Callable[[Request, str], Principal | None]
# OAuth2 client-credentials JWTs of systems, and (on /codec only) the Temporal UI user's access token
BEARER_VERIFIERS: list[BearerVerifier] = [jwt_tokens.client_jwt_verifier, jwt_tokens.codec_user_token_verifier]


def _api_key_principal(request: Request, credential: str) -> Principal | None:
    with session_scope(context(request).engine) as db:
        client = accounts.client_for_credential(db, credential)
        if client is None:
            return None
        return Principal(kind="client", name=client.name, scopes=frozenset(client.scopes.split()), via="api-key")


def caller(request: Request) -> Principal | None:
    """The authenticated caller, or None. Tests replace this dependency to sign in directly."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        credential = credential.strip()
        found = _api_key_principal(request, credential) if credential.startswith("dk_") else None
        for verify in BEARER_VERIFIERS:
            if found is None:
                found = verify(request, credential)
        return found
    return sessions.session_principal(request)


def allowed(policy: Policy, who: Principal) -> bool:
    """A person or agent by role, a system by scope (a person never holds scopes, a client no roles)."""
    return bool(who.roles & policy.roles or who.scopes & policy.scopes)


def authorize(request: Request) -> None:
    """Runs before every handler of both apps (an app-level dependency)."""
    route = request.scope.get("route")
    policy = policy_for(request.method, route.path) if isinstance(route, APIRoute) else None
    if policy is None or not isinstance(route, APIRoute):  # owned_router makes this impossible: fail closed
        raise HTTPException(status_code=403, detail="no policy for this route")
    if policy.open_as is not None:  # the handler checks the link's token or the provider's signature
        kind, name = policy.open_as
        setattr(
            request.state,
            PRINCIPAL_STATE,
            Principal(kind=kind, name=name, via="signature" if kind == "provider" else "link"),
        )
        return
    resolve = request.app.dependency_overrides.get(caller, caller)  # tests sign in by overriding caller
    who = resolve(request)
    if who is None:
        raise SignInRequired()
    if not allowed(policy, who):
        setattr(request.state, PRINCIPAL_STATE, who)  # the refusal page says who is signed in
        log.warning("refused %s %s for %s", request.method, route.path, who.label)
        raise HTTPException(status_code=403, detail=f"not allowed: {request.method} {route.path} needs {policy.who}")
    setattr(request.state, PRINCIPAL_STATE, who)


# --- apps ------------------------------------------------------------------------------------------


def _route_keys(route: APIRoute) -> list[tuple[str, str]]:
    return [(m, route.path) for m in sorted(route.methods or ())]


def unowned(routers: list[APIRouter]) -> list[str]:
    """Routes with no policy entry: a configuration error, named at start."""
    return [
        f"{m} {p}" for r in routers for route in _api_routes(r) for m, p in _route_keys(route) if not policy_for(m, p)
    ]


def _api_routes(router: APIRouter) -> list[APIRoute]:
    return [route for route in router.routes if isinstance(route, APIRoute)]


def owned_router(routers: list[APIRouter], app: App) -> APIRouter:
    """One router with exactly the routes `app` owns, taken from the feature routers. A route listed
    for another app is simply not there (404)."""
    missing = unowned(routers)
    if missing:
        raise RuntimeError(f"routes without a policy in web/auth/policy.py: {', '.join(missing)}")
    owned = APIRouter()
    for router in routers:
        for route in _api_routes(router):
            owners = {p.app for m, path in _route_keys(route) if (p := policy_for(m, path)) is not None}
            if owners == {app}:
                owned.routes.append(route)
            elif app in owners:
                raise RuntimeError(f"{route.path}: its methods are owned by different apps ({', '.join(owners)})")
    return owned


def guarded_app(routers: list[APIRouter], app: App, **kwargs: Any) -> FastAPI:
    """A FastAPI app with only the routes it owns, each behind the policy check (an app-level
    dependency runs before every handler). FastAPI's own open /docs are off."""
    fastapi_app = FastAPI(dependencies=[Depends(authorize)], docs_url=None, redoc_url=None, openapi_url=None, **kwargs)
    fastapi_app.include_router(owned_router(routers, app))
    return fastapi_app
