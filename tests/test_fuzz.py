"""API fuzzing with schemathesis: requests generated from the web app's own OpenAPI document,
valid and invalid, against the real app, the real inbound path and the real Temporal test server.

Asserted for every request: no 5xx; and a rejected request (4xx) changes no row of any table
(every table of every feature, compared row by row before and after).

The worker here runs workflows only, no activities: cases started by valid requests run and answer
queries, but cannot write to the ledger in the background while the next request is being checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from sqlalchemy import Engine, text
from sqlmodel import SQLModel
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from infra.config import Settings
from infra.runtime import PASSTHROUGH, WORKFLOWS
from ledger.inbound import Inbound
from tests.apps import BothApps
from tests.conftest import seed_contract, terminate_cases
from web.deps import AppContext, berlin_today

SCHEMA = schemathesis.openapi.from_dict(BothApps().openapi())
CONTRACT = "K-FUZZ-1"
# Half the requests name the seeded contract, so they get past "not found" into the real work.
CASES = st.one_of(
    SCHEMA.as_strategy(GenerationMode.POSITIVE),
    SCHEMA.as_strategy(GenerationMode.NEGATIVE),
    SCHEMA.as_strategy(GenerationMode.POSITIVE, path_parameters={"contract_number": CONTRACT}),
    SCHEMA.as_strategy(GenerationMode.NEGATIVE, path_parameters={"contract_number": CONTRACT}),
)


def snapshot(engine: Engine) -> dict[str, str]:
    """A digest of every row of every table (all features' tables are on SQLModel.metadata)."""
    digests: dict[str, str] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT * FROM "{table.name}" ORDER BY 1')).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


@pytest_asyncio.fixture
async def fuzz_client(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    yesterday = berlin_today() - timedelta(days=1)
    seed_contract(engine, CONTRACT, premiums=[("FUZZ-P1", yesterday, 8_990)])
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    app = BothApps(ctx)
    workflows_only = Worker(
        time_env.client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
    async with workflows_only, app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield http, engine
        await terminate_cases(time_env.client, engine)


def _part(content: Any) -> Any:
    return content if isinstance(content, bytes | str) or hasattr(content, "read") else str(content).encode()


def as_httpx(case: Any) -> dict[str, Any]:
    """schemathesis' request arguments, in the names httpx takes."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url="http://test")
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers"),
        "params": kwargs.get("params"),
        "cookies": kwargs.get("cookies"),
    }
    for key in ("json", "data", "files"):
        if key in kwargs:
            request[key] = kwargs[key]
    if request.get("files"):  # a negative case may put a number where a part's content goes: send its text
        request["files"] = [(name, (filename, _part(content))) for name, (filename, content) in request["files"]]
    if isinstance(request.get("data"), bytes | str):
        request["content"] = request.pop("data")
    return request


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=CASES)
async def test_generated_requests_never_fail_with_5xx_and_rejections_change_nothing(
    fuzz_client: tuple[httpx.AsyncClient, Engine], case: Any
) -> None:
    http, engine = fuzz_client
    before = snapshot(engine)
    response = await http.request(**as_httpx(case))
    where = f"{case.method.upper()} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if 400 <= response.status_code < 500:
        changed = [name for name, digest in snapshot(engine).items() if before[name] != digest]
        assert not changed, f"rejected request changed {changed}: {where}"


def integer_path_operations() -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document with an integer path parameter, filled with ±2**64."""
    found = []
    for path, operations in BothApps().openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    for number in (2**64, -(2**64)):
                        found.append((method.upper(), path.replace("{" + parameter["name"] + "}", str(number))))
    return found


async def test_a_row_id_outside_64_bits_is_refused_not_a_500(
    fuzz_client: tuple[httpx.AsyncClient, Engine],
) -> None:
    """Found by the fuzzer: SQLite cannot bind such a number and the request failed with a 500."""
    http, engine = fuzz_client
    operations = integer_path_operations()
    assert len(operations) >= 6  # outbox message, its PDF, task, bank lines (API and page)
    before = snapshot(engine)
    for method, path in operations:
        response = await http.request(method, path)
        assert 300 <= response.status_code < 500, f"{method} {path} → {response.status_code}: {response.text[:200]}"
    assert snapshot(engine) == before
