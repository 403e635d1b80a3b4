"""End to end on the real Temporal dev server, through the HTTP API only: a premium falls due,
the case runs on the (seconds-long) demo plan until cover is suspended, the customer pays
through the pay link and the built-in test provider, and the contract is active again."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import col, select

from core.money import format_eur
from ledger import audit
from ledger.db import session_scope
from models.ledger import Message
from tests.apps import served_apps
from tests.helpers import form_post

CONTRACT = "K-E2E-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Engine]]:
    """Dev server + worker + both web apps on real ports, all in this process's event loop. The
    billing system calls the internal app with an API client's key; the customer uses the public app."""
    async with (
        served_apps(tmp_path, "e2e") as served,
        httpx.AsyncClient(
            base_url=served.settings.internal_base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {served.billing_key}"},
        ) as internal,
        httpx.AsyncClient(base_url=served.settings.public_base_url, timeout=30) as public,
    ):
        yield internal, public, served.engine


async def poll(http: httpx.AsyncClient, path: str, done: str, seconds: float = 90) -> dict[str, Any]:
    """GET `path` until the JSON matches `done` (a Python expression over `j`)."""
    body: dict[str, Any] = {}
    for _ in range(int(seconds * 4)):
        response = await http.get(path)
        if response.status_code == 200:
            body = response.json()
            if eval(done, {}, {"j": body}):  # noqa: S307 — fixed expressions written in this file
                return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"{path} never satisfied {done}; last: {body}")


def newest_pay_link(engine: Engine) -> str:
    with session_scope(engine) as session:
        for message in session.exec(select(Message).order_by(col(Message.id).desc())):
            found = re.search(r"https?://[^\s\"<>]+/pay/[A-Za-z0-9._-]+", message.body_text)
            if found:
                return found.group(0)
    raise AssertionError("no message carries a pay link")


async def test_premium_falls_due_case_runs_pay_link_paid_contract_active_again(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient, Engine],
) -> None:
    http, public, engine = stack
    # Each app answers only its own URLs; the internal one only with a credential.
    assert (await public.get(f"/api/contracts/{CONTRACT}")).status_code == 404
    assert (await public.post("/api/ledger/events", json={"type": "premium_due"})).status_code == 404
    anonymous = await public.get(http.base_url.join(f"/api/contracts/{CONTRACT}"))
    assert anonymous.status_code == 401
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    contract = {
        "customer": {
            "customer_number": "C-E2E-1",
            "name": "Erika Mustermann",
            "street": "Heidestraße 17",
            "postal_code": "51147",
            "city": "Köln",
            "state": "NW",
            "email": "erika@example.org",
            "phone": "+4915112345678",
        },
        "agent_code": "A-1",
        "product": "Hausrat",
        "dunning_plan": "demo-fast",
    }
    assert (await http.put(f"/api/contracts/{CONTRACT}", json=contract)).status_code == 200
    booked = await http.post(
        "/api/ledger/events",
        json={
            "type": "premium_booked",
            "event_id": "e2e-1",
            "premium_id": "E2E-P1",
            "contract_number": CONTRACT,
            "period_start": today.isoformat(),
            "period_end": today.isoformat(),
            "due_date": today.isoformat(),
            "amount_cents": 8_990,
        },
    )
    assert booked.status_code == 200, booked.text
    due = await http.post(
        "/api/ledger/events", json={"type": "premium_due", "event_id": "e2e-2", "premium_id": "E2E-P1"}
    )
    assert due.status_code == 200 and due.json()["result"]["case"] == f"dunning-{CONTRACT}"
    again = await http.post(
        "/api/ledger/events", json={"type": "premium_due", "event_id": "e2e-2", "premium_id": "E2E-P1"}
    )
    assert again.json()["duplicate"] is True

    # The demo plan runs: reminder, qualified notice, deadline passes, cover suspended.
    await poll(http, f"/api/contracts/{CONTRACT}", "j['status'] == 'suspended'")
    case = await poll(http, f"/api/cases/{CONTRACT}", "j['stage'] in ('suspended', 'sms_sent', 'agency')")
    balance = int(str(case["balance_cents"]))
    assert balance == 8_990 + 150  # premium + letter fee of the notice

    # The customer opens the newest pay link and pays everything through the test provider.
    link = newest_pay_link(engine)
    assert link.startswith(str(public.base_url))  # the customer's link points at the public app
    page = await public.get(link)
    assert page.status_code == 200 and format_eur(balance) in page.text
    amount = format_eur(balance).replace(" €", "")
    checkout = await form_post(public, link, f"{httpx.URL(link).path}/checkout", {"amount": amount})
    assert checkout.status_code == 303, checkout.text
    provider = checkout.headers["location"]
    paid = await form_post(public, provider, f"{provider}/pay", follow_redirects=True)
    assert paid.status_code == 200 and "Zahlung eingegangen" in paid.text

    # Reactivated at once in the ledger, and the case has ended.
    reactivated = await poll(http, f"/api/contracts/{CONTRACT}", "j['status'] == 'active'", seconds=30)
    assert reactivated["balance_cents"] == 0
    assert [h["to"] for h in reactivated["history"]] == ["suspended", "active"]
    closed = await poll(http, f"/api/cases/{CONTRACT}", "j['closed']", seconds=30)
    assert closed["stage"] == "paid"

    # The contract's audit trail names every change: the billing system's client, the customer's
    # link and the payment provider's signed webhook (path templates only, never the pay token).
    with session_scope(engine) as session:
        trail = {(e.actor_kind, e.actor, e.action) for e in audit.for_contract(session, CONTRACT)}
    assert {
        ("client", "billing", "PUT /api/contracts/{contract_number}"),
        ("client", "billing", "POST /api/ledger/events"),
        ("customer", "customer link", "POST /pay/{token}/checkout"),
        ("customer", "customer link", "POST /testpay/checkout/{session_id}/pay"),
        ("provider", "testpay", "POST /webhooks/testpay"),
    } <= trail, trail
    assert not any(link.rsplit("/", 1)[-1] in action for _, _, action in trail)
