""" "Was this contract covered on date X?" — from the status history, in the core and through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client

from core.coverage import StatusChange, status_at
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.ledger import ContractStatus
from tests.apps import BothApps
from tests.conftest import seed_contract
from web.deps import AppContext

SUSPENDED_AT = datetime(2026, 12, 24, 0, 0, tzinfo=UTC)
PAID_AT = datetime(2027, 1, 10, 14, 30, tzinfo=UTC)
HISTORY = [
    StatusChange(PAID_AT, ContractStatus.SUSPENDED, ContractStatus.ACTIVE, "Arrears paid: cover restored"),
    StatusChange(SUSPENDED_AT, ContractStatus.ACTIVE, ContractStatus.SUSPENDED, "Notice deadline passed"),
]


@pytest.mark.parametrize(
    ("moment", "covered", "status"),
    [
        (SUSPENDED_AT - timedelta(seconds=1), True, ContractStatus.ACTIVE),
        (SUSPENDED_AT, False, ContractStatus.SUSPENDED),  # a change takes effect at its own instant
        (PAID_AT - timedelta(seconds=1), False, ContractStatus.SUSPENDED),
        (PAID_AT, True, ContractStatus.ACTIVE),
        (PAID_AT + timedelta(days=400), True, ContractStatus.ACTIVE),
    ],
)
def test_cover_is_lost_at_the_deadline_and_back_from_the_moment_of_payment(
    moment: datetime, covered: bool, status: ContractStatus
) -> None:
    answer = status_at(HISTORY, moment)
    assert (answer.covered, answer.status) == (covered, status)


def test_a_contract_without_history_is_covered_and_a_naive_moment_is_refused() -> None:
    assert status_at([], datetime(2026, 1, 1, tzinfo=UTC)).covered
    with pytest.raises(ValueError, match="time zone"):
        status_at(HISTORY, datetime(2026, 1, 1))


@pytest_asyncio.fixture
async def api(any_engine: Engine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    client = cast(Client, object())  # the coverage endpoint reads the ledger only
    app = BothApps(AppContext(any_engine, client, settings, Inbound(any_engine, client, settings)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_the_api_answers_from_the_ledger_history_on_every_database(
    api: httpx.AsyncClient, any_engine: Engine
) -> None:
    seed_contract(any_engine, "K-COV")
    with session_scope(any_engine) as session:
        for change in sorted(HISTORY, key=lambda c: c.effective_at):
            service.set_contract_status(
                session,
                contract_number="K-COV",
                to_status=change.to_status,
                reason=change.reason,
                key=f"k-{change.effective_at.isoformat()}",
                at=change.effective_at,
            )

    async def ask(at: str) -> dict[str, Any]:
        response = await api.get("/api/contracts/K-COV/coverage", params={"at": at})
        assert response.status_code == 200, response.text
        return cast(dict[str, Any], response.json())

    during = await ask("2027-01-05T12:00:00+01:00")
    assert during["covered"] is False and during["status"] == "suspended"
    assert during["reason"] == "Notice deadline passed"
    after = await ask("2027-01-10T15:30:00+01:00")  # 14:30 UTC: the payment instant
    assert after["covered"] is True
    before = await ask("2026-12-23T23:59:59+00:00")
    assert before["covered"] is True


async def test_the_api_refuses_a_moment_without_time_zone_and_an_unknown_contract(api: httpx.AsyncClient) -> None:
    seed = await api.get("/api/contracts/K-404/coverage", params={"at": "2027-01-05T12:00:00+01:00"})
    assert seed.status_code == 404 and "K-404" in seed.text
    naive = await api.get("/api/contracts/K-404/coverage", params={"at": "2027-01-05T12:00:00"})
    assert naive.status_code == 422 and "timezone" in naive.text  # pydantic: "Input should have timezone info"
    garbage = await api.get("/api/contracts/K-404/coverage", params={"at": "yesterday"})
    assert garbage.status_code == 422 and "at" in garbage.text


def test_the_cli_answers_the_same_question(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from infra import config
    from starter import app

    seed_contract(engine, "K-COV")
    with session_scope(engine) as session:
        service.set_contract_status(
            session,
            contract_number="K-COV",
            to_status=ContractStatus.SUSPENDED,
            reason="Notice deadline passed",
            key="k1",
            at=SUSPENDED_AT,
        )
    monkeypatch.setenv("DATABASE_URL", str(engine.url))
    config.get_settings.cache_clear()
    try:
        runner = CliRunner()
        during = runner.invoke(app, ["covered", "K-COV", "--at", "2027-01-05T12:00:00+01:00"])
        before = runner.invoke(app, ["covered", "K-COV", "--at", "2026-12-01T12:00:00+01:00"])
        naive = runner.invoke(app, ["covered", "K-COV", "--at", "2027-01-05T12:00:00"])
        unknown = runner.invoke(app, ["covered", "K-404", "--at", "2027-01-05T12:00:00+01:00"])
    finally:
        config.get_settings.cache_clear()
    assert during.exit_code == 0 and "NOT covered" in during.output and "Notice deadline passed" in during.output
    assert before.exit_code == 0 and "NOT covered" not in before.output and "covered" in before.output
    assert naive.exit_code == 2 and "time zone" in naive.output
    assert unknown.exit_code == 2 and "K-404" in unknown.output
