"""The JSON ledger API through the real FastAPI app, the real inbound path and the real
time-skipping Temporal server: bad input is refused with a message naming the field and changes
nothing; repeated events are harmless; billing events start, join or leave alone the right cases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from ledger import service
from ledger.db import session_scope
from ledger.debit_returns import RETURN_RULES
from models.case import CaseStatus
from models.ledger import (
    AgentTask,
    Allocation,
    Contract,
    ContractStatus,
    Customer,
    Payment,
    Premium,
    PremiumStatus,
    ProcessedEvent,
)
from models.plans import BUILTIN_PLANS
from tests.conftest import seed_contract
from web.internal.api import berlin_today
from workflows.dunning import DunningCase

TODAY = berlin_today()  # the API decides "past due" by the real Berlin date
YESTERDAY = TODAY - timedelta(days=1)
TABLES: list[type[Any]] = [Contract, Customer, Premium, Payment, Allocation, ProcessedEvent, AgentTask]


def new_contract_number() -> str:
    """The Temporal server is shared by all tests: a fresh number means a fresh `dunning-…` id."""
    return f"K-{uuid.uuid4().hex[:10]}"


# --- helpers ---------------------------------------------------------------------------------


def row_counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {table.__name__: service.count_rows(session, table) for table in TABLES}


def premium(engine: Engine, premium_id: str) -> Premium:
    with session_scope(engine) as session:
        found = session.exec(select(Premium).where(Premium.external_id == premium_id)).one()
        session.expunge(found)
        return found


def contract(engine: Engine, contract_number: str) -> Contract:
    with session_scope(engine) as session:
        found = service.get_contract(session, contract_number)
        session.expunge(found)
        return found


def payments(engine: Engine) -> list[Payment]:
    with session_scope(engine) as session:
        found = list(session.exec(select(Payment)))
        for row in found:
            session.expunge(row)
        return found


def book_debit(engine: Engine, contract_number: str, ref: str, cents: int, premium_id: str | None = None) -> None:
    """A collected direct debit, booked by the bank feed straight into the ledger."""
    with session_scope(engine) as session:
        service.book_payment(
            session,
            contract_number=contract_number,
            external_ref=ref,
            amount_cents=cents,
            received_at=datetime.now(UTC),
            source="direct_debit",
            designated_premium=premium_id,
        )


async def case_running(env: WorkflowEnvironment, contract_number: str) -> str | None:
    """The run id of the contract's running case, None when there is none."""
    try:
        described = await env.client.get_workflow_handle(f"dunning-{contract_number}").describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    assert described.status == WorkflowExecutionStatus.RUNNING, described.status
    return described.run_id


async def case_status_when(
    env: WorkflowEnvironment, contract_number: str, done: Callable[[CaseStatus], bool], seconds: float = 10
) -> CaseStatus:
    """Query `status` until `done` (the case reads the ledger in an activity after the signal)."""
    handle: WorkflowHandle[DunningCase, CaseStatus] = env.client.get_workflow_handle_for(
        DunningCase.run, f"dunning-{contract_number}"
    )
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        current = await handle.query(DunningCase.status)
        if done(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case never got there: {current}")
        await asyncio.sleep(0.05)


def item_ids(status: CaseStatus) -> list[str]:
    return [i.premium_id for i in status.items]


async def post_event(api: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/api/ledger/events", json=body)


def booked(contract_number: str, premium_id: str, due: date, cents: int = 10_000, **extra: Any) -> dict[str, Any]:
    return {
        "type": "premium_booked",
        "event_id": f"ev-{uuid.uuid4().hex[:8]}",
        "premium_id": premium_id,
        "contract_number": contract_number,
        "period_start": due.isoformat(),
        "period_end": (due + timedelta(days=30)).isoformat(),
        "due_date": due.isoformat(),
        "amount_cents": cents,
        **extra,
    }


def customer_body(number: str, **changes: Any) -> dict[str, Any]:
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
    customer.update(changes)
    return {"customer": customer, "product": "Hausrat", "payment_method": "direct_debit"}


# --- bad input: 4xx, a message naming the field and value, nothing written -------------------


@dataclass
class Seeded:
    """A contract with one premium, paid by a direct debit; no case runs for it."""

    number: str
    premium_id: str
    debit_ref: str


@dataclass
class BadInput:
    method: str
    path: str
    body: Callable[[Seeded], dict[str, Any]] | None
    status: int
    mentions: list[str]


def put_contract(**changes: Any) -> Callable[[Seeded], dict[str, Any]]:
    return lambda s: customer_body(s.number, **changes)


BAD_INPUT: dict[str, BadInput] = {
    "contract with a bad e-mail": BadInput(
        "PUT", "/api/contracts/NEW", put_contract(email="erika@"), 422, ["email", "erika@"]
    ),
    "contract with a phone not in E.164": BadInput(
        "PUT", "/api/contracts/NEW", put_contract(phone="0151 1234567"), 422, ["phone", "0151 1234567"]
    ),
    "contract with an unknown dunning plan": BadInput(
        "PUT",
        "/api/contracts/NEW",
        lambda s: {**customer_body(s.number), "dunning_plan": "gold"},
        422,
        ["dunning_plan", "gold", "de-follow-up"],
    ),
    "contract with an unknown field": BadInput(
        "PUT", "/api/contracts/NEW", lambda s: {**customer_body(s.number), "colour": "red"}, 422, ["colour"]
    ),
    "contract moved to another customer": BadInput(
        "PUT",
        "/api/contracts/SEEDED",
        lambda s: customer_body(s.number, customer_number="C-SOMEONE-ELSE"),
        422,
        ["contract_number", "{number}", "another customer"],
    ),
    "customer with an empty name": BadInput(
        "PUT", "/api/contracts/NEW", put_contract(name="  "), 422, ["name", "at least 1 character"]
    ),
    "event of an unknown type": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {"type": "premium_cancelled", "event_id": "e-1", "premium_id": s.premium_id},
        422,
        ["type", "premium_cancelled", "premium_due"],
    ),
    "event without an event id": BadInput(
        "POST", "/api/ledger/events", lambda s: {"type": "premium_due", "premium_id": s.premium_id}, 422, ["event_id"]
    ),
    "premium of 0 cents": BadInput(
        "POST", "/api/ledger/events", lambda s: booked(s.number, "P-new", YESTERDAY, 0), 422, ["amount_cents"]
    ),
    "premium of negative cents": BadInput(
        "POST", "/api/ledger/events", lambda s: booked(s.number, "P-new", YESTERDAY, -100), 422, ["amount_cents"]
    ),
    "payment of more than a million euros": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {
            "type": "payment_received",
            "event_id": "e-1",
            "contract_number": s.number,
            "payment_ref": "BIG-1",
            "amount_cents": 100_000_001,
        },
        422,
        ["amount_cents", "100000000"],
    ),
    "premium whose period ends before it starts": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: booked(s.number, "P-new", YESTERDAY, period_end=(YESTERDAY - timedelta(days=1)).isoformat()),
        422,
        ["period_end", "period_start"],
    ),
    "direct debit return with a malformed reason code": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {"type": "direct_debit_returned", "event_id": "e-1", "payment_ref": s.debit_ref, "reason_code": "XX"},
        422,
        ["reason_code", "XX"],
    ),
    "direct debit return with an unknown reason code": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {
            "type": "direct_debit_returned",
            "event_id": "e-1",
            "payment_ref": s.debit_ref,
            "reason_code": "ZZ99",
        },
        422,
        ["reason_code", "ZZ99", *sorted(RETURN_RULES)],
    ),
    "direct debit return of an unknown payment": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {"type": "direct_debit_returned", "event_id": "e-1", "payment_ref": "R-404", "reason_code": "AM04"},
        404,
        ["payment_ref", "R-404"],
    ),
    "premium for an unknown contract": BadInput(
        "POST", "/api/ledger/events", lambda s: booked("K-404", "P-new", YESTERDAY), 404, ["contract_number", "K-404"]
    ),
    "premium due that the ledger does not hold": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {"type": "premium_due", "event_id": "e-1", "premium_id": "P-404"},
        404,
        ["premium_id", "P-404"],
    ),
    "payment for an unknown contract": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {
            "type": "payment_received",
            "event_id": "e-1",
            "contract_number": "K-404",
            "payment_ref": "PAY-1",
            "amount_cents": 1_000,
        },
        404,
        ["contract_number", "K-404"],
    ),
    "payment naming another contract's premium": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {
            "type": "payment_received",
            "event_id": "e-1",
            "contract_number": s.number,
            "payment_ref": "PAY-1",
            "amount_cents": 1_000,
            "premium_id": "P-OTHER",
        },
        422,
        ["premium_id", "P-OTHER", "{number}"],
    ),
    "payment reusing a reference with another amount": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: {
            "type": "payment_received",
            "event_id": "e-1",
            "contract_number": s.number,
            "payment_ref": "EARLIER-1",
            "amount_cents": 999,
        },
        422,
        ["reference", "EARLIER-1"],
    ),
    "premium booked again with different data": BadInput(
        "POST",
        "/api/ledger/events",
        lambda s: booked(s.number, s.premium_id, YESTERDAY, 10_001),
        422,
        ["premium_id", "{premium_id}", "different data"],
    ),
    "case of a contract without one": BadInput("GET", "/api/cases/K-404", None, 404, ["contract_number", "K-404"]),
    "contract the ledger does not hold": BadInput("GET", "/api/contracts/K-404", None, 404, ["K-404"]),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=list(BAD_INPUT))
async def test_bad_input_on_every_endpoint_is_refused_with_a_message_naming_it_and_changes_nothing(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine, case: BadInput
) -> None:
    seeded = Seeded(new_contract_number(), f"P-{uuid.uuid4().hex[:8]}", "")
    seeded.debit_ref = f"sepa:{seeded.number}-1"
    seed_contract(engine, seeded.number, premiums=[(seeded.premium_id, YESTERDAY, 10_000)])
    seed_contract(engine, "K-OTHER", premiums=[("P-OTHER", YESTERDAY, 5_000)])
    book_debit(engine, seeded.number, seeded.debit_ref, 10_000)
    with session_scope(engine) as session:
        service.book_payment(
            session,
            contract_number=seeded.number,
            external_ref="ledger:EARLIER-1",
            amount_cents=500,
            received_at=datetime.now(UTC),
            source="ledger",
        )
    new_number = new_contract_number()
    before = row_counts(engine)
    debit_before = [(p.external_ref, p.returned) for p in payments(engine)]
    premium_before = premium(engine, seeded.premium_id)

    path = case.path.replace("NEW", new_number).replace("SEEDED", seeded.number)
    body = case.body(seeded) if case.body else None
    response = await api.request(case.method, path, json=body)

    assert response.status_code == case.status, response.text
    for mention in case.mentions:
        word = mention.format(number=seeded.number, premium_id=seeded.premium_id)
        assert word in response.text, f"{word!r} not named in {response.text}"
    assert row_counts(engine) == before
    assert [(p.external_ref, p.returned) for p in payments(engine)] == debit_before  # nothing reversed
    after = premium(engine, seeded.premium_id)
    assert (after.amount_cents, after.status, after.paid_cents, after.due_date) == (
        premium_before.amount_cents,
        premium_before.status,
        premium_before.paid_cents,
        premium_before.due_date,
    )
    for number in (seeded.number, new_number, "K-404", "K-OTHER"):
        assert await case_running(time_env, number) is None, f"a case started for {number}"
    with session_scope(engine) as session:
        assert session.exec(select(Contract).where(Contract.contract_number == new_number)).first() is None


# --- idempotency -----------------------------------------------------------------------------


async def test_the_same_event_twice_returns_the_first_answer_marked_duplicate_and_starts_one_case(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number)
    event = booked(number, f"{number}-P1", YESTERDAY)

    first = await post_event(api, event)
    run_id = await case_running(time_env, number)
    counts = row_counts(engine)
    second = await post_event(api, event)

    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert (
        first.json()["result"]
        == second.json()["result"]
        == {
            "premium_id": f"{number}-P1",
            "booked": True,
            "case": f"dunning-{number}",
        }
    )
    assert row_counts(engine) == counts
    assert run_id is not None and await case_running(time_env, number) == run_id


def payment_event(number: str, event_id: str, ref: str, cents: int = 4_000) -> dict[str, Any]:
    return {
        "type": "payment_received",
        "event_id": event_id,
        "contract_number": number,
        "payment_ref": ref,
        "amount_cents": cents,
    }


async def test_a_payment_event_sent_twice_books_one_payment(api: httpx.AsyncClient, engine: Engine) -> None:
    number = new_contract_number()
    seed_contract(engine, number, premiums=[(f"{number}-P1", YESTERDAY, 10_000)])

    first = await post_event(api, payment_event(number, "bank-1", "TX-1"))
    second = await post_event(api, payment_event(number, "bank-1", "TX-1"))

    assert first.status_code == second.status_code == 200
    assert first.json()["result"] == second.json()["result"]
    assert first.json()["result"]["booked"] is True and first.json()["result"]["balance_cents"] == 6_000
    assert second.json()["duplicate"] is True
    assert [(p.amount_cents, p.source) for p in payments(engine)] == [(4_000, "ledger")]
    assert premium(engine, f"{number}-P1").paid_cents == 4_000


async def test_a_new_event_for_a_payment_reference_already_booked_books_nothing(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number, premiums=[(f"{number}-P1", YESTERDAY, 10_000)])

    first = await post_event(api, payment_event(number, "bank-1", "TX-1"))
    again = await post_event(api, payment_event(number, "bank-2", "TX-1"))

    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is False  # a new event, but the ledger knows the reference
    assert first.json()["result"]["booked"] is True and again.json()["result"]["booked"] is False
    assert again.json()["result"]["balance_cents"] == 6_000
    assert len(payments(engine)) == 1
    assert premium(engine, f"{number}-P1").paid_cents == 4_000


# --- premiums start (or do not start) cases ----------------------------------------------------


async def test_a_premium_booked_past_its_due_date_starts_the_contracts_case_holding_it(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number)

    response = await post_event(api, booked(number, f"{number}-P1", TODAY - timedelta(days=2), 12_000))

    assert response.status_code == 200, response.text
    assert response.json()["result"]["case"] == f"dunning-{number}"
    assert await case_running(time_env, number) is not None
    current = await case_status_when(time_env, number, lambda s: bool(s.items))
    assert [(i.premium_id, i.open_cents) for i in current.items] == [(f"{number}-P1", 12_000)]
    through_api = await api.get(f"/api/cases/{number}")
    assert through_api.status_code == 200
    assert [i["premium_id"] for i in through_api.json()["items"]] == [f"{number}-P1"]
    assert through_api.json()["contract_number"] == number and not through_api.json()["closed"]


async def test_a_premium_booked_before_it_is_due_starts_nothing(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number)

    for due in (TODAY, TODAY + timedelta(days=14)):  # default begins the day after the due date
        response = await post_event(api, booked(number, f"{number}-{due}", due))
        assert response.status_code == 200, response.text
        assert response.json()["result"] == {"premium_id": f"{number}-{due}", "booked": True, "case": None}

    assert await case_running(time_env, number) is None
    assert premium(engine, f"{number}-{TODAY}").status == PremiumStatus.OPEN


async def test_premium_due_for_an_open_premium_starts_the_case_and_for_a_paid_one_starts_nothing(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    paid, unpaid = new_contract_number(), new_contract_number()
    seed_contract(engine, paid, premiums=[(f"{paid}-P1", YESTERDAY, 5_000)])
    seed_contract(engine, unpaid, premiums=[(f"{unpaid}-P1", YESTERDAY, 5_000)])
    book_debit(engine, paid, f"sepa:{paid}-1", 5_000)

    for_paid = await post_event(api, {"type": "premium_due", "event_id": "due-1", "premium_id": f"{paid}-P1"})
    for_unpaid = await post_event(api, {"type": "premium_due", "event_id": "due-2", "premium_id": f"{unpaid}-P1"})

    assert for_paid.json()["result"] == {"premium_id": f"{paid}-P1", "case": None, "note": "premium is paid"}
    assert await case_running(time_env, paid) is None
    assert for_unpaid.json()["result"] == {"premium_id": f"{unpaid}-P1", "case": f"dunning-{unpaid}"}
    current = await case_status_when(time_env, unpaid, lambda s: bool(s.items))
    assert item_ids(current) == [f"{unpaid}-P1"]


# --- returned direct debits --------------------------------------------------------------------


def returned(ref: str, code: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "direct_debit_returned",
        "event_id": event_id or f"ret-{uuid.uuid4().hex[:8]}",
        "payment_ref": ref,
        "reason_code": code,
    }


async def test_a_debit_returned_for_insufficient_funds_reopens_the_premium_and_joins_the_running_case(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    older, debited = f"{number}-P1", f"{number}-P2"
    seed_contract(engine, number, premiums=[(older, TODAY - timedelta(days=2), 3_000), (debited, YESTERDAY, 7_000)])
    book_debit(engine, number, f"sepa:{number}-2", 7_000, premium_id=debited)
    started = await post_event(api, {"type": "premium_due", "event_id": "due-1", "premium_id": older})
    assert started.json()["result"]["case"] == f"dunning-{number}"
    run_id = await case_running(time_env, number)
    await case_status_when(time_env, number, lambda s: item_ids(s) == [older])

    response = await post_event(api, returned(f"sepa:{number}-2", "AM04"))

    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert (result["reopened"], result["changed"], result["case"]) == ([debited], True, f"dunning-{number}")
    assert await case_running(time_env, number) == run_id  # joined, not restarted
    current = await case_status_when(time_env, number, lambda s: len(s.items) == 2)
    assert item_ids(current) == [older, debited]
    # (plus fees when earlier tests moved the test server's clock ahead and the case already ran steps)
    assert current.balance_cents >= 10_000
    assert premium(engine, debited).status == PremiumStatus.OPEN and not premium(engine, debited).dunning_blocked
    assert contract(engine, number).payment_method == "self_payment"  # the seed's; AM04 does not touch it
    (debit,) = payments(engine)
    assert debit.returned and debit.return_reason == "AM04"


async def test_a_debit_returned_because_the_account_is_closed_switches_to_self_payment_and_starts_the_case(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    put = await api.put(f"/api/contracts/{number}", json=customer_body(number))
    assert put.status_code == 200 and put.json()["payment_method"] == "direct_debit"
    with session_scope(engine) as session:
        service.book_premium(
            session,
            external_id=f"{number}-P1",
            contract_number=number,
            period_start=YESTERDAY,
            period_end=YESTERDAY + timedelta(days=30),
            due_date=YESTERDAY,
            amount_cents=8_000,
        )
    book_debit(engine, number, f"sepa:{number}-1", 8_000)
    assert await case_running(time_env, number) is None

    response = await post_event(api, returned(f"sepa:{number}-1", "ac04"))  # codes are case-insensitive

    assert response.status_code == 200, response.text
    assert response.json()["result"]["case"] == f"dunning-{number}"
    assert contract(engine, number).payment_method == "self_payment"
    shown = await api.get(f"/api/contracts/{number}")
    assert shown.json()["payment_method"] == "self_payment"
    assert shown.json()["open_premiums"] == [f"{number}-P1"] and shown.json()["balance_cents"] >= 8_000
    current = await case_status_when(time_env, number, lambda s: bool(s.items))
    assert item_ids(current) == [f"{number}-P1"]


async def test_a_debit_returned_because_the_debtor_died_starts_no_case_and_asks_a_person(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number, premiums=[(f"{number}-P1", YESTERDAY, 6_000)])
    book_debit(engine, number, f"sepa:{number}-1", 6_000)

    response = await post_event(api, returned(f"sepa:{number}-1", "MD07"))
    again = await post_event(api, returned(f"sepa:{number}-1", "MD07"))  # a new event id, same return

    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["case"] is None and result["reopened"] == [f"{number}-P1"] and "MD07" in result["note"]
    assert again.json()["result"]["changed"] is False
    assert await case_running(time_env, number) is None
    with session_scope(engine) as session:
        (task,) = session.exec(select(AgentTask)).all()
        assert (task.kind, task.agent_code, task.status, task.open_cents) == (
            "manual_review",
            "backoffice",
            "open",
            6_000,
        )
        assert service.overdue_premiums(session, TODAY + timedelta(days=1)) == []  # the sweep leaves it alone
    reopened = premium(engine, f"{number}-P1")
    assert reopened.status == PremiumStatus.OPEN and reopened.dunning_blocked

    due = await post_event(api, {"type": "premium_due", "event_id": "due-1", "premium_id": f"{number}-P1"})
    booked_again = await post_event(api, booked(number, f"{number}-P1", YESTERDAY, 6_000))

    assert due.json()["result"]["case"] is None and booked_again.json()["result"]["case"] is None
    assert await case_running(time_env, number) is None


async def test_a_debit_reported_through_the_api_can_be_returned_through_the_api_by_the_same_reference(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(engine, number, premiums=[(f"{number}-P1", YESTERDAY, 6_000)])
    paid = await post_event(api, payment_event(number, "bank-1", "DD-1", 6_000))
    assert paid.status_code == 200 and premium(engine, f"{number}-P1").status == PremiumStatus.PAID

    response = await post_event(api, returned("DD-1", "AM04"))

    assert response.status_code == 200, response.text
    assert response.json()["result"]["reopened"] == [f"{number}-P1"]


# --- reading -----------------------------------------------------------------------------------


async def test_a_contract_shows_its_balance_open_premiums_and_status_history(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    seed_contract(
        engine,
        number,
        premiums=[
            (f"{number}-P1", TODAY - timedelta(days=40), 12_000),
            (f"{number}-P2", TODAY - timedelta(days=10), 5_050),
            (f"{number}-P3", TODAY + timedelta(days=20), 5_050),  # not due yet: not owed
        ],
    )
    with session_scope(engine) as session:
        service.set_contract_status(
            session,
            contract_number=number,
            to_status=ContractStatus.SUSPENDED,
            reason="Deadline passed",
            key=f"{number}:suspend",
            at=datetime(2026, 3, 1, 8, tzinfo=UTC),
        )
    await post_event(api, payment_event(number, "bank-1", "TX-1", 2_000))

    response = await api.get(f"/api/contracts/{number}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contract_number"] == number and body["status"] == "suspended"
    assert body["balance_cents"] == 12_000 + 5_050 - 2_000
    assert body["open_premiums"] == [f"{number}-P1", f"{number}-P2"]
    assert body["case_workflow_id"] == f"dunning-{number}"
    assert [(h["from"], h["to"], h["reason"]) for h in body["history"]] == [("active", "suspended", "Deadline passed")]
    assert body["history"][0]["at"].startswith("2026-03-01T08:00")


async def test_putting_a_contract_creates_it_and_putting_it_again_updates_it(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()

    created = await api.put(f"/api/contracts/{number}", json={**customer_body(number), "dunning_plan": "demo"})
    updated = await api.put(
        f"/api/contracts/{number}",
        json={**customer_body(number, email="erika.neu@example.org"), "payment_method": "self_payment"},
    )

    assert created.status_code == updated.status_code == 200, updated.text
    assert created.json()["balance_cents"] == 0 and created.json()["open_premiums"] == []
    assert updated.json()["payment_method"] == "self_payment"
    counts = row_counts(engine)
    assert (counts["Contract"], counts["Customer"]) == (1, 1)
    with session_scope(engine) as session:
        found = service.get_contract(session, number)
        assert service.get_customer(session, found).email == "erika.neu@example.org"


async def test_the_built_in_dunning_plans_are_listed(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/plans")

    assert response.status_code == 200
    plans = response.json()
    assert set(plans) == set(BUILTIN_PLANS) >= {"de-follow-up", "demo", "demo-fast"}
    assert [s["key"] for s in plans["de-follow-up"]["steps"]] == [
        "reminder",
        "notice",
        "suspend",
        "sms",
        "agency",
        "court",
    ]


async def test_the_billing_system_sends_the_birth_date_the_portal_asks_for(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    number = new_contract_number()
    response = await api.put(f"/api/contracts/{number}", json=customer_body(number, birth_date="1980-05-17"))
    assert response.status_code == 200, response.text
    again = await api.put(f"/api/contracts/{number}", json=customer_body(number))  # not sent: kept
    assert again.status_code == 200, again.text
    with session_scope(engine) as session:
        contract = service.get_contract(session, number)
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None and customer.birth_date == date(1980, 5, 17)
