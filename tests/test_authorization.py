"""Who may do what, through the REAL apps (issue #12, item 4): every route of the internal app is
sent by nobody, by each role signed in for real (POST /sign-in, session cookie), and by API clients
holding each single scope. Anonymous callers are sent to sign in (pages) or get 401 (API, codec);
a caller the policy does not name gets 403 and nothing in the ledger changes; a caller it names
gets past the check. The expectation comes from POLICIES and, for the writes that matter most, from
a second table written here by hand, so a wrong entry in POLICIES fails a test.

Also: revoked API clients, expired and signed-out sessions, disabled accounts and malformed
Authorization headers are refused; an agent sees only their own tasks; every change lands once in
the audit trail with who, how, what (the path template) and from where, and a refused one does not.

One ledger, one pair of apps and one sign-in per role for the module (signing in costs an argon2
hash); refusals are sent before any allowed call changes the state they would have changed."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Engine, inspect, text
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from activities.campaign import unsubscribe_url
from banking import service as bank
from banking.camt import parse_camt053
from infra.config import Settings
from ledger import service
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent, Role, Scope, StaffSession
from models.banking import StatementLine
from models.campaign import CampaignEmail, CampaignPerson
from models.ledger import AgentTask, Contract, Message
from tests.camt import Tx, entry, statement
from tests.conftest import seed_contract
from tests.helpers import form_post
from web.app import create_internal_app, create_public_app, internal_app
from web.auth import accounts
from web.auth.policy import POLICIES, Policy
from web.auth.sessions import COOKIE as SESSION_COOKIE
from web.deps import AppContext
from web.internal.campaign import EVENT_SIGNATURE_HEADER, event_signature
from web.safety import CSRF_COOKIE, CSRF_FIELD, form_token, is_json_route

Key = tuple[str, str]
ROLES = [role.value for role in Role]
SCOPES = [scope.value for scope in Scope]
R, S = Role, Scope

CONTRACT = "K-700001"  # a contract with an open premium
STOPPED = "K-700002"  # dunning stopped for a person (MD07): release-dunning would succeed
OTHERS = "K-700003"  # another agent's customer


# --- the hand-written expectation for the writes that matter most ----------------------------------
# Independent of web/auth/policy.py on purpose: (roles, scopes) that may call each route. Issue #12:
# clerks act on cases and contact data, supervisors release and approve, finance owns the bank
# statements and the manual queue, systems write with their scope, agents work their own tasks.
CLERK_ACTIONS = ("hold", "resume", "promise", "dispute", "escalate")
SUPERVISOR_ACTIONS = ("write-off", "cancel", "approve-court-filing", "approve-termination", "decline-termination")
READERS = {R.VIEWER, R.CLERK, R.SUPERVISOR, R.FINANCE, R.ADMIN}
CRITICAL: dict[Key, tuple[set[Role], set[Scope]]] = {
    ("POST", "/api/ledger/events"): (set(), {S.LEDGER_WRITE}),
    ("PUT", "/api/contracts/{contract_number}"): ({R.CLERK}, {S.LEDGER_WRITE}),
    ("POST", "/api/contracts/{contract_number}/release-dunning"): ({R.SUPERVISOR}, set()),
    ("POST", "/api/messages/{message_id}/evidence"): ({R.CLERK}, {S.EVIDENCE_WRITE}),
    ("POST", "/api/bank/statements"): ({R.FINANCE}, {S.BANK_IMPORT}),
    ("POST", "/api/bank/lines/{line_id}/assign"): ({R.FINANCE}, set()),
    ("POST", "/api/bank/lines/{line_id}/dismiss"): ({R.FINANCE}, set()),
    ("POST", "/bank/import"): ({R.FINANCE}, set()),
    ("POST", "/bank/lines/{line_id}/assign"): ({R.FINANCE}, set()),
    ("POST", "/bank/lines/{line_id}/dismiss"): ({R.FINANCE}, set()),
    ("POST", "/api/campaign/quotes/abandoned"): (set(), {S.CAMPAIGN_WRITE}),
    ("POST", "/api/campaign/touchpoints"): (set(), {S.CAMPAIGN_WRITE}),
    ("POST", "/api/campaign/email-events"): (set(), {S.CAMPAIGN_WRITE}),
    ("POST", "/codec/decode"): (READERS, {S.CODEC}),
    ("POST", "/codec/encode"): (READERS, {S.CODEC}),
    ("POST", "/agents/tasks/{task_id}/attempts"): ({R.AGENT}, set()),
    ("POST", "/agents/tasks/{task_id}/outcome"): ({R.AGENT}, set()),
    # customers' requests from the portal: the back office and finance answer; an agent only their own
    ("POST", "/requests/{request_id}/answer"): ({R.CLERK, R.SUPERVISOR, R.FINANCE}, set()),
    ("POST", "/requests/{request_id}/done"): ({R.CLERK, R.SUPERVISOR, R.FINANCE}, set()),
    ("POST", "/agents/requests/{request_id}/answer"): ({R.AGENT}, set()),
    # case actions on the contract page: clerks (and supervisors) act, supervisors approve and write off
    **{("POST", f"/contracts/{{contract_number}}/case/{a}"): ({R.CLERK, R.SUPERVISOR}, set()) for a in CLERK_ACTIONS},
    **{("POST", f"/contracts/{{contract_number}}/case/{a}"): ({R.SUPERVISOR}, set()) for a in SUPERVISOR_ACTIONS},
    # collections analytics (issue #16, docs/analytics.md): the people who steer collections and account
    # for them; no clerk, agent, marketing, admin or system
    ("GET", "/analytics"): ({R.SUPERVISOR, R.FINANCE}, set()),
    ("GET", "/api/analytics"): ({R.SUPERVISOR, R.FINANCE}, set()),
}
# Of these, the ones whose sample request below really changes the ledger when allowed (the agent
# forms and case actions need a running workflow, the codec writes nothing).
# The requests' routes need a customer's request, which only the portal (with a running case) writes.
EFFECTIVE = {
    key
    for key in CRITICAL
    if key[0] != "GET" and not key[1].startswith(("/codec/", "/agents/", "/requests/")) and "/case/" not in key[1]
}


def may_call(key: Key, policy: Policy) -> tuple[set[str], set[str]]:
    roles, scopes = CRITICAL.get(key, (policy.roles, policy.scopes))
    return {str(r) for r in roles}, {str(s) for s in scopes}


# --- callers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    label: str
    role: str | None = None
    scope: str | None = None
    session: str = ""  # the dunning_session cookie
    credential: str = ""  # an API client's "<key id>.<secret>"

    @property
    def anonymous(self) -> bool:
        return self.role is None and self.scope is None


@dataclass
class World:
    engine: Engine
    settings: Settings
    internal: FastAPI
    public: FastAPI
    http: httpx.AsyncClient  # the internal app; cookies go explicitly with each request
    callers: list[Caller] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    passwords: dict[str, str] = field(default_factory=dict)

    def caller(self, label: str) -> Caller:
        return next(c for c in self.callers if c.label == label)


def _today() -> date:
    return datetime.now(UTC).date()


def _moment(hours_ago: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def camt(*refs: str) -> bytes:
    """A statement for the creditor's own account, with one unmatchable credit per reference."""
    day = _today().isoformat()
    return statement(*(entry(Tx("50.00", ref=ref, booking=day, text=["Miete Oktober"])) for ref in refs))


def seed(engine: Engine) -> dict[str, int]:
    """What the sample requests act on: contracts, a stopped contract, a notice, queued bank lines,
    an agent task for A-7 and one for another agent, a campaign mail."""
    premiums = [("P-700001", _today() - timedelta(days=40), 5_000)]
    seed_contract(engine, CONTRACT, premiums=premiums)
    seed_contract(engine, STOPPED, premiums=[("P-700002", _today() - timedelta(days=40), 5_000)])
    seed_contract(engine, OTHERS, agent=None)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        service.stop_dunning(session, STOPPED, code="MD07", reason="debtor deceased", at=now)
        contracts = {c.contract_number: c.id for c in session.exec(select(Contract))}
        notice = Message(
            idempotency_key="authz-notice",
            contract_id=contracts[CONTRACT],
            channel="letter",
            kind="qualified_notice",
            recipient="Erika Mustermann, Heidestraße 17, 51147 Köln",
            body_text="§38 notice",
            created_at=now - timedelta(days=2),
        )
        tasks = [
            AgentTask(
                idempotency_key=f"authz-task-{agent}",
                case_id=f"dunning-{number}/authz",
                contract_id=contracts[number] or 0,
                agent_code=agent,
                open_cents=5_000,
                created_at=now,
                due_at=now + timedelta(days=3),
            )
            for agent, number in (("A-7", CONTRACT), ("A-9", OTHERS))
        ]
        mail = CampaignEmail(
            idempotency_key="quote-authz/step-1",
            workflow_id="quote-authz",
            step="step-1",
            kind="reminder",
            person_key="0" * 32,
            due_at=now - timedelta(days=1),
            sent_at=now - timedelta(days=1),
        )
        for row in (notice, *tasks, mail):
            session.add(row)
        session.flush()
        refs = ["AZ-API-ASSIGN", "AZ-API-DISMISS", "AZ-PAGE-ASSIGN", "AZ-PAGE-DISMISS"]
        data = camt(*refs)
        bank.import_statement(
            session,
            data,
            parse_camt053(data),
            "test",
            now,
            creditor_iban=Settings.model_fields["creditor_iban"].default,
            line_cap_cents=Settings.model_fields["camt_line_cap_cents"].default,
        )
        lines = {line.entry_ref: line.id for line in session.exec(select(StatementLine)) if line.entry_ref in refs}
        assert len(lines) == 4 and all(line is not None for line in lines.values()), lines
        return {
            "message": notice.id or 0,
            "own_task": tasks[0].id or 0,
            "other_task": tasks[1].id or 0,
            **{ref: line_id or 0 for ref, line_id in lines.items()},
        }


async def sign_in(app: FastAPI, name: str, password: str) -> str:
    """Sign in as a browser does (the form's CSRF token, POST /sign-in); the session cookie's value."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal.test") as browser:
        answer = await form_post(browser, "/sign-in", "/sign-in", {"name": name, "password": password, "next": "/"})
        assert answer.status_code == 303, answer.text
        session = browser.cookies.get(SESSION_COOKIE)
        assert session, "no session cookie after signing in"
        return session


async def add_person(world: World, name: str, role: str) -> str:
    with session_scope(world.engine) as db:
        password = accounts.add_staff(
            db, name, [role], created_by="test", agent_code="A-7" if role == "agent" else None
        )
    world.passwords[name] = password
    return await sign_in(world.internal, name, password)


def add_client(world: World, name: str, scopes: list[str]) -> str:
    with session_scope(world.engine) as db:
        return accounts.create_client(db, name, scopes, created_by="test")


@pytest_asyncio.fixture(scope="module")
async def world(time_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """conftest's `engine` and `settings`, once for the module (they are per test there)."""
    tmp = Path(tmp_path_factory.mktemp("authorization"))
    url = f"sqlite:///{tmp / 'ledger.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    settings = Settings(
        data_dir=tmp,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        public_base_url="http://test.invalid",
        rate_limit_sign_in="1000/minute",  # this module signs in a dozen times; tests/test_safety.py tests the limit
    )
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    internal, public = create_internal_app(ctx), create_public_app(ctx)
    for app in (internal, public):
        app.state.ctx = ctx
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=internal), base_url="http://internal.test") as http:
        world = World(engine, settings, internal, public, http, ids=seed(engine))
        world.callers.append(Caller("anonymous"))
        for role in ROLES:
            world.callers.append(
                Caller(f"role:{role}", role=role, session=await add_person(world, f"authz-{role}", role))
            )
        for scope in SCOPES:
            credential = add_client(world, f"authz-{scope.replace(':', '-')}", [scope])
            world.callers.append(Caller(f"scope:{scope}", scope=scope, credential=credential))
        yield world
    engine.dispose()


# --- requests ------------------------------------------------------------------------------------------


@dataclass
class Sample:
    url: str
    json: Any = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def sample(world: World, method: str, path: str, route: APIRoute) -> Sample:
    """A request for the route that would change the ledger if its caller were allowed."""
    ids = world.ids
    fills = {
        "contract_number": STOPPED if path.endswith("/release-dunning") else CONTRACT,
        "message_id": str(ids["message"]),
        "task_id": str(ids["own_task"]),
        "line_id": "1",
    }
    line = {
        ("POST", "/api/bank/lines/{line_id}/assign"): "AZ-API-ASSIGN",
        ("POST", "/api/bank/lines/{line_id}/dismiss"): "AZ-API-DISMISS",
        ("POST", "/bank/lines/{line_id}/assign"): "AZ-PAGE-ASSIGN",
        ("POST", "/bank/lines/{line_id}/dismiss"): "AZ-PAGE-DISMISS",
    }.get((method, path))
    if line:
        fills["line_id"] = str(ids[line])
    url = re.sub(r"\{([^}]+)\}", lambda m: fills.get(m.group(1), "1"), path)
    bodies: dict[Key, Sample] = {
        ("POST", "/api/ledger/events"): Sample(
            url,
            json={
                "type": "payment_received",
                "event_id": "E-authz-1",
                "contract_number": CONTRACT,
                "payment_ref": "R-authz-1",
                "amount_cents": 5_000,
            },
        ),
        ("PUT", "/api/contracts/{contract_number}"): Sample(
            url,
            json={
                "customer": {"customer_number": f"C-{CONTRACT}", "name": "Erika M", "email": "attacker@example.org"},
                "dunning_plan": "demo-fast",
            },
        ),
        ("POST", "/api/contracts/{contract_number}/release-dunning"): Sample(
            url, json={"reason": "released by the test"}
        ),
        ("POST", "/api/messages/{message_id}/evidence"): Sample(
            url, json={"kind": "undeliverable", "at": _moment(), "source": "post", "recorded_by": "someone"}
        ),
        ("POST", "/api/bank/statements"): Sample(
            url, content=camt("AZ-API-IMPORT"), headers={"Content-Type": "application/xml"}
        ),
        ("POST", "/api/bank/lines/{line_id}/assign"): Sample(url, json={"contract_number": CONTRACT}),
        ("POST", "/api/bank/lines/{line_id}/dismiss"): Sample(url, json={"reason": "junk line"}),
        ("POST", "/bank/import"): Sample(
            url, form={}, files={"file": ("statement.xml", camt("AZ-PAGE-IMPORT"), "application/xml")}
        ),
        ("POST", "/bank/lines/{line_id}/assign"): Sample(url, form={"contract_number": CONTRACT}),
        ("POST", "/bank/lines/{line_id}/dismiss"): Sample(url, form={"reason": "junk line"}),
        ("POST", "/api/campaign/quotes/abandoned"): Sample(
            url, json={"quote_id": "Q-authz-1", "email": "someone@example.org", "abandoned_at": _moment()}
        ),
        ("POST", "/api/campaign/touchpoints"): Sample(
            url,
            json={
                "event_id": "T-authz-1",
                "email": "someone@example.org",
                "kind": "web",
                "channel": "web",
                "occurred_at": _moment(),
            },
        ),
        ("POST", "/codec/decode"): Sample(url, json={"payloads": []}),
        ("POST", "/codec/encode"): Sample(url, json={"payloads": []}),
        ("POST", "/agents/tasks/{task_id}/attempts"): Sample(url, form={"reached": "no", "channel": "call"}),
        ("POST", "/agents/tasks/{task_id}/outcome"): Sample(url, form={"kind": "not_reachable"}),
        ("POST", "/requests/{request_id}/answer"): Sample(url, form={"text": "answered by the test"}),
        ("POST", "/agents/requests/{request_id}/answer"): Sample(url, form={"text": "answered by the test"}),
    }
    if (method, path) == ("POST", "/api/campaign/email-events"):
        events = [{"event_id": "EV-authz-1", "email_key": "quote-authz/step-1", "event": "delivered"}]
        events[0]["occurred_at"] = _moment()
        body = json.dumps(events).encode()
        signature = event_signature(world.settings.campaign_events_secret, body)
        return Sample(
            url, content=body, headers={"Content-Type": "application/json", EVENT_SIGNATURE_HEADER: signature}
        )
    if (method, path) in bodies:
        return bodies[(method, path)]
    if method == "GET":
        return Sample(url)
    return Sample(url, json={}) if is_json_route(route) else Sample(url, form={})  # a write this file does not know


async def send(world: World, caller: Caller, method: str, request: Sample) -> httpx.Response:
    cookies = {CSRF_COOKIE: world.nonce}
    if caller.session:
        cookies[SESSION_COOKIE] = caller.session
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), **request.headers}
    if caller.credential:
        headers["Authorization"] = f"Bearer {caller.credential}"
    data = None
    if request.form is not None:  # a browser form carries the token bound to its csrf cookie and session
        data = {**request.form, CSRF_FIELD: form_token(world.settings.csrf_secret, world.nonce, caller.session)}
    try:
        return await world.http.request(
            method,
            request.url,
            json=request.json,
            data=data,
            files=request.files,
            content=request.content,
            headers=headers,
        )
    finally:
        world.http.cookies.clear()  # each caller brings exactly its own cookies


# --- effect: nothing written -----------------------------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: a refused request must leave all of them as they were (payments,
    premiums, contracts, customers, messages, bank lines, audit events, campaign tables, …)."""
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))]
            for table in sorted(inspect(engine).get_table_names())
        }


def changed(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    return [table for table in after if before.get(table) != after[table]]


# --- the matrix -----------------------------------------------------------------------------------------


def internal_routes() -> Iterator[tuple[Key, APIRoute]]:
    for route in iter_route_contexts(internal_app.routes):  # the app web.app builds at import
        original = route.original_route
        assert isinstance(original, APIRoute) and route.path and route.methods
        for method in sorted(route.methods):
            yield (method, route.path), original


ROUTES = dict(internal_routes())
GUARDED = sorted(key for key in ROUTES if not POLICIES[key].is_open)


def verdict(caller: Caller, key: Key) -> str:
    """What the caller must get: sign-in, refused or allowed."""
    if caller.anonymous:
        return "sign-in"
    roles, scopes = may_call(key, POLICIES[key])
    return "allowed" if caller.role in roles or caller.scope in scopes else "refused"


def test_the_policy_table_agrees_with_the_hand_written_one_for_the_critical_writes() -> None:
    disagree = {
        f"{m} {p}": {
            "policy": (sorted(POLICIES[(m, p)].roles), sorted(POLICIES[(m, p)].scopes)),
            "expected": (
                sorted(str(r) for r in roles),
                sorted(str(s) for s in scopes),
            ),
        }
        for (m, p), (roles, scopes) in CRITICAL.items()
        if (m, p) not in POLICIES
        or POLICIES[(m, p)].app != "internal"
        or POLICIES[(m, p)].is_open
        or set(POLICIES[(m, p)].roles) != {str(r) for r in roles}
        or set(POLICIES[(m, p)].scopes) != {str(s) for s in scopes}
    }

    assert disagree == {}


def test_every_write_of_the_internal_app_is_open_or_in_the_hand_written_table() -> None:
    """A new state-changing route must get its row (and a sample request above) in this file."""
    unknown = [f"{m} {p}" for m, p in GUARDED if m != "GET" and (m, p) not in CRITICAL]

    assert unknown == [], "add these to CRITICAL (and a sample request that would change something)"


@pytest.mark.parametrize("key", GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
async def test_a_caller_the_policy_does_not_name_is_refused_and_nothing_changes(world: World, key: Key) -> None:
    method, path = key
    problems: list[str] = []
    for caller in world.callers:
        expected = verdict(caller, key)
        if expected == "allowed":
            continue
        request = sample(world, method, path, ROUTES[key])
        before = snapshot(world.engine) if method != "GET" else {}
        answer = await send(world, caller, method, request)
        if expected == "sign-in" and method == "GET" and not path.startswith(("/api/", "/codec/")):
            location = answer.headers.get("location", "")
            if answer.status_code != 303 or not location.startswith("/sign-in?next="):
                problems.append(f"{caller.label}: {answer.status_code} {location!r}, expected 303 to /sign-in")
        elif expected == "sign-in":
            if answer.status_code != 401 or "Bearer" not in answer.headers.get("www-authenticate", ""):
                problems.append(f"{caller.label}: {answer.status_code}, expected 401 with WWW-Authenticate")
        elif answer.status_code != 403:
            problems.append(f"{caller.label}: {answer.status_code} {answer.text[:120]!r}, expected 403")
        if method != "GET" and (tables := changed(before, snapshot(world.engine))):
            problems.append(f"{caller.label}: refused, yet changed {tables}")

    assert problems == [], f"{method} {path}"


@pytest.mark.parametrize("key", GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
async def test_a_caller_the_policy_names_gets_past_the_check(world: World, key: Key) -> None:
    """Allowed means not refused: the handler may still answer 404 or 422 for the sample body. The
    first allowed call of a critical write must really change the ledger (so the refusals above were
    refusals of a request that mattered) and leave its row in the audit trail."""
    method, path = key
    problems: list[str] = []
    allowed = [caller for caller in world.callers if verdict(caller, key) == "allowed"]
    assert allowed, f"nobody may call {method} {path}: {POLICIES[key].who}"
    for number, caller in enumerate(allowed):
        before = snapshot(world.engine) if method != "GET" else {}
        answer = await send(world, caller, method, sample(world, method, path, ROUTES[key]))
        if answer.status_code in (401, 403):
            problems.append(f"{caller.label}: {answer.status_code} {answer.text[:160]!r}")
        if number == 0 and key in EFFECTIVE:
            after = snapshot(world.engine)
            if answer.status_code >= 400 or not changed(before, after):
                problems.append(f"{caller.label}: {answer.status_code} {answer.text[:160]!r} changed nothing")
            if len(after["audit_events"]) != len(before["audit_events"]) + 1:
                problems.append(f"{caller.label}: no audit row for the change")

    assert problems == [], f"{method} {path}"


async def test_the_sign_in_form_and_the_codec_preflight_need_no_credential(world: World) -> None:
    anonymous = world.caller("anonymous")

    assert (await send(world, anonymous, "GET", Sample("/sign-in"))).status_code == 200
    assert (await send(world, anonymous, "OPTIONS", Sample("/codec/decode"))).status_code == 204


# --- credentials that no longer count -------------------------------------------------------------------


PUT = ("PUT", "/api/contracts/{contract_number}")


async def refused_put(world: World, caller: Caller, status: int) -> None:
    """A contract change by `caller` is answered `status` and changes nothing."""
    before = snapshot(world.engine)
    answer = await send(world, caller, "PUT", sample(world, *PUT, ROUTES[PUT]))
    assert answer.status_code == status, answer.text
    assert changed(before, snapshot(world.engine)) == []


async def test_a_revoked_api_client_is_refused(world: World) -> None:
    credential = add_client(world, "authz-revoked", ["ledger:write", "ledger:read"])
    caller = Caller("revoked", scope="ledger:write", credential=credential)
    assert (await send(world, caller, "GET", Sample("/api/plans"))).status_code == 200

    with session_scope(world.engine) as db:
        accounts.revoke_client(db, "authz-revoked")

    await refused_put(world, caller, 401)
    assert (await send(world, caller, "GET", Sample("/api/plans"))).status_code == 401


async def test_an_expired_session_is_refused(world: World) -> None:
    session = await sign_in(world.internal, "authz-clerk", world.passwords["authz-clerk"])
    caller = Caller("expired", role="clerk", session=session)
    assert (await send(world, caller, "GET", Sample("/api/plans"))).status_code == 200

    with session_scope(world.engine) as db:
        row = db.get(StaffSession, hashlib.sha256(session.encode()).hexdigest())
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.add(row)

    await refused_put(world, caller, 401)
    page = await send(world, caller, "GET", Sample(f"/contracts/{CONTRACT}"))
    assert page.status_code == 303 and page.headers["location"].startswith("/sign-in")


async def test_a_session_is_over_once_its_person_signed_out(world: World) -> None:
    session = await sign_in(world.internal, "authz-clerk", world.passwords["authz-clerk"])
    caller = Caller("signed-out", role="clerk", session=session)
    assert (await send(world, caller, "GET", Sample(f"/contracts/{CONTRACT}"))).status_code == 200

    out = await send(world, caller, "POST", Sample("/sign-out", form={}))
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"

    await refused_put(world, caller, 401)
    assert (await send(world, caller, "GET", Sample("/api/plans"))).status_code == 401


async def test_a_disabled_account_is_refused_at_once_and_cannot_sign_in_again(world: World) -> None:
    session = await add_person(world, "authz-leaver", "clerk")
    caller = Caller("leaver", role="clerk", session=session)
    assert (await send(world, caller, "GET", Sample("/api/plans"))).status_code == 200

    with session_scope(world.engine) as db:
        accounts.disable(db, "authz-leaver")

    await refused_put(world, caller, 401)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.internal), base_url="http://i.test") as b:
        again = await form_post(
            b, "/sign-in", "/sign-in", {"name": "authz-leaver", "password": world.passwords["authz-leaver"]}
        )
        assert again.status_code == 401 and SESSION_COOKIE not in b.cookies


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic YXV0aHo6c2VjcmV0",
        "Token {credential}",
        "Bearer dk_0000000000000000",
        "Bearer dk_0000000000000000.{secret}",
        "Bearer {key_id}.wrong-secret",
        "Bearer {key_id}",
        "Bearer {credential}x",
        "Bearer {credential} {credential}",
        "{credential}",
        "Bearer {codec_token}",  # opens the codec endpoint only
    ],
)
async def test_a_malformed_or_forged_authorization_header_is_refused(world: World, header: str) -> None:
    credential = world.caller("scope:ledger:write").credential
    key_id, _, secret = credential.partition(".")
    codec_token = world.settings.codec_token.get_secret_value()
    value = header.format(credential=credential, key_id=key_id, secret=secret, codec_token=codec_token)
    caller = Caller("forged")
    before = snapshot(world.engine)

    body = sample(world, *PUT, ROUTES[PUT]).json

    answer = await send(
        world, caller, "PUT", Sample(f"/api/contracts/{CONTRACT}", json=body, headers={"Authorization": value})
    )

    assert answer.status_code == 401, answer.text
    assert changed(before, snapshot(world.engine)) == []


# --- agents see their own tasks only ----------------------------------------------------------------------


async def test_an_agent_sees_and_works_only_their_own_tasks(world: World) -> None:
    agent = world.caller("role:agent")
    own, other = world.ids["own_task"], world.ids["other_task"]

    listing = await send(world, agent, "GET", Sample("/agents"))
    assert listing.status_code == 200
    assert f"/agents/tasks/{own}" in listing.text and f"/agents/tasks/{other}" not in listing.text
    assert OTHERS not in listing.text
    assert (await send(world, agent, "GET", Sample(f"/agents/tasks/{own}"))).status_code == 200

    foreign = await send(world, agent, "GET", Sample(f"/agents/tasks/{other}"))
    assert foreign.status_code in (403, 404) and OTHERS not in foreign.text
    for action, form in (("attempts", {"reached": "yes", "channel": "call"}), ("outcome", {"kind": "collected"})):
        before = snapshot(world.engine)
        answer = await send(world, agent, "POST", Sample(f"/agents/tasks/{other}/{action}", form=form))
        assert answer.status_code in (403, 404), answer.text
        assert changed(before, snapshot(world.engine)) == []


# --- the audit trail --------------------------------------------------------------------------------------


def audit_rows(engine: Engine, contract_number: str) -> list[AuditEvent]:
    with session_scope(engine) as db:
        rows = list(db.exec(select(AuditEvent).where(AuditEvent.contract_number == contract_number)))
        for row in rows:
            db.expunge(row)
        return rows


CUSTOMER = {"customer": {"customer_number": "C-audit", "name": "Erika Mustermann"}, "product": "Hausrat"}


@pytest.mark.parametrize(
    ("caller_label", "number", "actor", "kind", "via"),
    [
        ("scope:ledger:write", "K-700010", "authz-ledger-write", "client", "api-key"),
        ("role:clerk", "K-700011", "authz-clerk", "person", "session"),
    ],
)
async def test_a_change_leaves_exactly_one_audit_row_naming_who_how_what_and_from_where(
    world: World, caller_label: str, number: str, actor: str, kind: str, via: str
) -> None:
    answer = await send(world, world.caller(caller_label), "PUT", Sample(f"/api/contracts/{number}", json=CUSTOMER))
    assert answer.status_code == 200, answer.text

    rows = audit_rows(world.engine, number)
    assert [(r.actor, r.actor_kind, r.via, r.action, r.contract_number, r.source, r.status_code) for r in rows] == [
        (actor, kind, via, "PUT /api/contracts/{contract_number}", number, "127.0.0.1", 200)
    ]
    assert rows[0].at is not None


async def test_a_refused_change_leaves_no_audit_row(world: World) -> None:
    for label in ("anonymous", "role:viewer", "role:finance", "scope:ledger:read"):
        answer = await send(world, world.caller(label), "PUT", Sample("/api/contracts/K-700012", json=CUSTOMER))
        assert answer.status_code in (401, 403), label

    assert audit_rows(world.engine, "K-700012") == []
    with session_scope(world.engine) as db:
        assert db.exec(select(Contract).where(Contract.contract_number == "K-700012")).first() is None


async def test_a_customer_link_change_is_recorded_by_its_path_template_never_its_token(world: World) -> None:
    now = datetime.now(UTC)
    with session_scope(world.engine) as db:
        db.add(
            CampaignPerson(
                person_key="1" * 32, email="leaving@example.org", unsubscribe_token_id="authz-u", created_at=now
            )
        )
    token = unsubscribe_url(world.settings, "authz-u", now).rsplit("/", 1)[1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.public), base_url="http://public.test"
    ) as mail:
        answer = await mail.post(f"/campaign/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.text

    with session_scope(world.engine) as db:
        rows = [r for r in db.exec(select(AuditEvent)) if "unsubscribe" in r.action]
        assert [(r.actor_kind, r.via, r.action) for r in rows] == [
            ("customer", "link", "POST /campaign/unsubscribe/{token}")
        ]
        assert token not in json.dumps(rows[0].model_dump(mode="json"))
