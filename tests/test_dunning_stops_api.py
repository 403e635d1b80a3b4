"""Returned direct debits through the real HTTP routes, the real inbound path, a worker and the
time-skipping Temporal server (DOMAIN.md §6, issue "Legal trust", item 4).

MD07 (debtor deceased): the running case is told to stop and sends nothing more; no later premium
starts a case until a person releases the contract through the API. AC0x asks for new bank
details, MD01 for a new mandate: both stop debiting and still dun the premium.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from ledger import service
from ledger.db import session_scope
from models.case import CaseStatus
from models.ledger import AgentTask, Message
from tests.helpers import advance_until
from web.deps import berlin_today
from workflows.dunning import DunningCase

TODAY = berlin_today()  # the API decides "past due" by the real Berlin date


# --- helpers ---------------------------------------------------------------------------------


def new_number() -> str:
    return f"K-{uuid.uuid4().hex[:10]}"


async def event(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/api/ledger/events", json={"event_id": f"ev-{uuid.uuid4().hex[:8]}", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def booked(number: str, premium_id: str, due: date, cents: int) -> dict[str, Any]:
    return {
        "type": "premium_booked",
        "premium_id": premium_id,
        "contract_number": number,
        "period_start": due.isoformat(),
        "period_end": (due + timedelta(days=30)).isoformat(),
        "due_date": due.isoformat(),
        "amount_cents": cents,
    }


def returned(ref: str, code: str) -> dict[str, Any]:
    return {"type": "direct_debit_returned", "payment_ref": ref, "reason_code": code}


async def debited_contract(api: httpx.AsyncClient, number: str, premiums: list[tuple[str, date, int]]) -> None:
    """A direct-debit customer; the last premium was collected (the debit the bank returns)."""
    customer = {
        "customer_number": f"C-{number}",
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "state": "NW",
        "email": "erika@example.org",
        "phone": "+4915112345678",
    }
    put = await api.put(f"/api/contracts/{number}", json={"customer": customer, "payment_method": "direct_debit"})
    assert put.status_code == 200, put.text
    for premium_id, due, cents in premiums:
        await event(api, booked(number, premium_id, due, cents))
    last_id, _, last_cents = premiums[-1]
    paid = await event(
        api,
        {
            "type": "payment_received",
            "contract_number": number,
            "payment_ref": f"DD-{number}",
            "amount_cents": last_cents,
            "premium_id": last_id,
        },
    )
    assert paid["booked"] is True


async def case_running(env: WorkflowEnvironment, number: str) -> bool:
    try:
        described = await env.client.get_workflow_handle(f"dunning-{number}").describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


def case(env: WorkflowEnvironment, number: str) -> WorkflowHandle[DunningCase, CaseStatus]:
    return env.client.get_workflow_handle_for(DunningCase.run, f"dunning-{number}")


async def signals_received(handle: WorkflowHandle[DunningCase, CaseStatus]) -> list[str]:
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


def outbox(engine: Engine, number: str) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        contract = service.get_contract(session, number)
        rows = session.exec(select(Message).where(Message.contract_id == contract.id)).all()
        return [(m.kind, m.idempotency_key) for m in rows]


def tasks(engine: Engine, number: str) -> list[AgentTask]:
    with session_scope(engine) as session:
        contract = service.get_contract(session, number)
        return list(session.exec(select(AgentTask).where(AgentTask.contract_id == contract.id)).all())


# --- MD07: a person decides ----------------------------------------------------------------------


async def test_md07_on_a_running_case_holds_it_for_a_person_and_nothing_more_is_sent(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_number()
    older, debited = f"{number}-P1", f"{number}-P2"
    await debited_contract(api, number, [(older, TODAY - timedelta(days=2), 4_000), (debited, TODAY, 6_000)])
    started = await event(api, {"type": "premium_due", "premium_id": older})
    assert started["case"] == f"dunning-{number}"
    handle = case(time_env, number)
    await advance_until(time_env, handle, lambda s: len(s.steps_done) >= 1, step=timedelta(hours=6))  # reminder
    sent_before = outbox(engine, number)

    result = await event(api, returned(f"DD-{number}", "MD07"))

    assert "dunning_stopped" in await signals_received(handle)
    assert (result["reopened"], result["case"], result["case_stopped"]) == ([debited], None, True)
    held = await advance_until(time_env, handle, lambda s: s.hold is not None, step=timedelta(minutes=1))
    assert held.hold is not None and held.hold.kind == "stopped" and "MD07" in held.hold.reason
    await time_env.sleep(timedelta(days=60))  # notice, SMS, suspension would all be due by now
    assert outbox(engine, number) == sent_before
    current = await handle.query(DunningCase.status)
    assert not current.closed and current.hold is not None and current.hold.kind == "stopped"
    contract = (await api.get(f"/api/contracts/{number}")).json()
    assert contract["balance_cents"] == 0 and contract["open_premiums"] == []
    assert contract["dunning_stopped"]["code"] == "MD07"
    assert {p["premium_id"]: p["reason"] for p in contract["blocked_premiums"]} == {older: "MD07", debited: "MD07"}


async def test_a_stopped_contract_starts_no_case_until_a_person_releases_it_through_the_api(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_number()
    await debited_contract(api, number, [(f"{number}-P1", TODAY, 6_000)])  # due today: no case yet
    stopped = await event(api, returned(f"DD-{number}", "MD07"))

    later = await event(api, booked(number, f"{number}-P2", TODAY - timedelta(days=1), 5_000))
    assert not await case_running(time_env, number)
    assert later["case"] is None and "stopped" in later["note"] and "release" in later["note"]
    assert stopped["case_stopped"] is False  # no case was running: nothing to tell
    refused = await api.post(f"/api/contracts/{number}/release-dunning", json={"reason": ""})
    assert refused.status_code == 422 and "reason" in refused.text

    released = await api.post(
        f"/api/contracts/{number}/release-dunning", json={"reason": "heirs confirmed, the estate pays"}
    )

    assert released.status_code == 200, released.text
    assert (released.json()["code"], released.json()["unblocked"]) == ("MD07", [f"{number}-P1"])
    again = await api.post(f"/api/contracts/{number}/release-dunning", json={"reason": "twice"})
    assert again.status_code == 422 and "not stopped" in again.text
    unknown = await api.post("/api/contracts/K-404/release-dunning", json={"reason": "who?"})
    assert unknown.status_code == 404 and "K-404" in unknown.text
    (review,) = tasks(engine, number)
    assert (review.kind, review.status) == ("manual_review", "done") and "test-staff" in (
        review.outcome or ""
    )  # the session
    dunned = await event(api, {"type": "premium_due", "premium_id": f"{number}-P1"})
    assert dunned["case"] == f"dunning-{number}" and await case_running(time_env, number)
    contract = (await api.get(f"/api/contracts/{number}")).json()
    assert contract["dunning_stopped"] is None and contract["blocked_premiums"] == []
    assert contract["open_premiums"] == [f"{number}-P2", f"{number}-P1"]  # oldest due first


# --- AC0x and MD01: stop debiting, ask, dun ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "task_kind", "asks"),
    [("AC04", "bank_details_request", "new bank details"), ("MD01", "mandate_request", "new SEPA mandate")],
)
async def test_an_unusable_account_or_mandate_asks_the_back_office_switches_to_self_payment_and_duns(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine, code: str, task_kind: str, asks: str
) -> None:
    number = new_number()
    await debited_contract(api, number, [(f"{number}-P1", TODAY, 8_000)])  # due today: no case yet

    result = await event(api, returned(f"DD-{number}", code))
    again = await event(api, returned(f"DD-{number}", code))

    (task,) = tasks(engine, number)
    assert (task.kind, task.agent_code, task.status, task.open_cents) == (task_kind, "backoffice", "open", 8_000)
    assert result["case"] == f"dunning-{number}" and await case_running(time_env, number)
    assert any(task_kind in a and asks in a for a in result["actions"]), result["actions"]
    assert any("self-payment" in a for a in result["actions"])
    assert again["changed"] is False and again["actions"] == []
    contract = (await api.get(f"/api/contracts/{number}")).json()
    assert contract["payment_method"] == "self_payment" and contract["dunning_stopped"] is None
    assert contract["open_premiums"] == [f"{number}-P1"]
