"""Temporal's own floor for "payment accepted → contract active" (issue #15 P2): a bare workflow that
waits for one signal and writes one row through one activity, driven by the same HTTP client at the
same rate against the same server as the real payment path (dev/bench/temporal_bench.payment_latency).

Run as two processes, like the real worker and web app:
    python -m dev.bench.floor            # the worker (TASK_QUEUE, TEMPORAL_ADDRESS, DATABASE_URL, DATA_DIR)
    uvicorn dev.bench.floor:app          # POST /pay/{contract_number}: signals floor-<number>
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import text
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from infra.config import get_settings
from infra.runtime import connect
from ledger.db import make_engine


def floor_id(contract_number: str) -> str:
    return f"floor-{contract_number}"


@workflow.defn(name="BenchFloor")
class BenchFloor:
    def __init__(self) -> None:
        self._paid = False

    @workflow.run
    async def run(self, contract_number: str) -> None:
        await workflow.wait_condition(lambda: self._paid)
        await workflow.execute_activity(
            "bench_floor_write", contract_number, start_to_close_timeout=timedelta(minutes=2)
        )

    @workflow.signal
    def paid(self) -> None:
        self._paid = True


def _writer() -> Callable[[str], None]:
    engine = make_engine(get_settings().effective_database_url)

    @activity.defn(name="bench_floor_write")
    def write(contract_number: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE contracts SET status = 'ACTIVE' WHERE contract_number = :n"), {"n": contract_number}
            )

    return write


async def serve_worker() -> None:
    settings = get_settings()
    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[BenchFloor],
            # Sandboxed like the real worker (its cost is part of Temporal's floor in Python).
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(
                    "fastapi", "sqlalchemy", "pydantic", "infra", "ledger", "dev"
                )
            ),
            activities=[_writer()],
            activity_executor=executor,
            max_concurrent_activities=16,
        )
        await worker.run()


_client: Client | None = None


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    global _client
    _client = await connect(get_settings())
    yield


app = FastAPI(lifespan=_lifespan)


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": _client is not None}


@app.post("/pay/{contract_number}")
async def pay(contract_number: str) -> dict[str, bool]:
    assert _client is not None
    await _client.get_workflow_handle(floor_id(contract_number)).signal(BenchFloor.paid)
    return {"signalled": True}


if __name__ == "__main__":
    asyncio.run(serve_worker())
