"""End-to-end throughput (issue #15 P6): cases from overdue through reminder, qualified notice (a
letter, really rendered), suspension of cover, a partial and then a full payment to reactivation,
on the seconds-long `demo-fast` plan, against a no-op workflow of the same shape on the same server.

Everything as deployed on one machine: the Temporal dev server (SQLite, WAL), the worker
(`worker.py`, one process, as `make run` starts it) and the internal web app as separate processes,
the ledger in SQLite. This process plays the outside world: it starts the cases as the sweep and
the billing system do (`start_or_join_case`, 16 at a time, like the sweep), watches the ledger every
100 ms and pays through the ledger API (`POST /api/ledger/events`, `payment_received`, with an API
client's key, as a bank or billing system does): half the premium once the contract is suspended,
the rest (the amount the receipt states) once the receipt for the first payment is in the outbox.

Baseline, same run, same server, same worker settings: `BenchScript` (dev/bench/noop.py) replays the
shape of a real case — taken from the history of one real case run just before — with a no-op
activity for each activity, a timer of the same length for each timer that fired, and a signal wait
for each timer a payment cancelled; this process signals it at the same points (three marker
activities write a row it watches). Ratio = real cases/s ÷ no-op cases/s (goal ≥ 0.7).

Memory: a fresh worker's RSS with N cases open (each waiting on its reminder timer on the
`de-follow-up` plan), minus its RSS with one, ÷ N; a worker keeps up to `WORKER_CACHED_WORKFLOWS`
(5,000 by default) workflows in memory.

`python -m dev.bench.throughput [cases [folder]]` runs it alone on its own dev server (in `folder`,
which keeps the processes' logs, or a temporary one).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowHistory,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from dev.bench import temporal_bench as tb
from dev.bench.common import log
from dev.bench.noop import STEP_ACTIVITY, BenchScript, Script, ScriptStep
from infra.config import get_settings
from infra.observability import MetricsInterceptor
from infra.runtime import PASSTHROUGH, WORKFLOWS, connect
from ledger.db import make_engine, migrate, session_scope
from models.case import PremiumOverdue
from models.ledger import Contract, ContractStatus, Message
from models.messages import Channel, MessageKind
from web.auth import accounts
from workflows.client import case_workflow_id, start_or_join_case

CASES = 1000
PLAN = "demo-fast"
GOAL_RATIO = 0.7
POLL_SECONDS = 0.1
CONCURRENT = 16  # starts in flight at once (the sweep starts 16 at a time)
PAYMENTS_IN_FLIGHT = 100  # payers are independent senders; httpx's default connection pool
FIRST_PAYMENT_CENTS = 5_000  # of the 10,000-cent premium (+ the notice's letter fee)
SAMPLE = 20  # histories read after each run to check both took the path the script describes
DEADLINE_SECONDS = 900.0  # 1,000 real cases at 3–4/s take five to six minutes here
WORKER_THREADS = 16  # as worker.py
WORKER_ACTIVITIES = 16  # as infra.runtime.build_worker


# --- processes --------------------------------------------------------------------------------------


def child_env(data: Path, address: str, queue: str, url: str, port: int) -> dict[str, str]:
    """The worker's and web app's settings, as tb.payment_latency gives them."""
    return dict(
        os.environ,
        DATABASE_URL=url,
        DATA_DIR=str(data),
        TEMPORAL_ADDRESS=address,
        TASK_QUEUE=queue,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
        METRICS_PORT="0",
        SDK_METRICS_PORT="0",
    )


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Cpu:
    """CPU seconds of named processes (and of this one) between two readings."""

    def __init__(self, procs: dict[str, list[int]]) -> None:
        server = tb.server_pid()
        self.pids = {**procs, **({"temporal_server": [server]} if server else {})}
        self.before = self._read()

    def _read(self) -> dict[str, float]:
        out = {name: sum(tb.cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        out["bench_client"] = time.process_time()
        return out

    def ms_per(self, count: int) -> dict[str, float]:
        now = self._read()
        return {name: round((now[name] - self.before[name]) * 1000 / count, 1) for name in now}


def cores_busy(cpu_ms_per_case: dict[str, float], cases: int, seconds: float) -> dict[str, float]:
    """How many cores each process kept busy on average over the run (1.0: one core all the time)."""
    return {name: round(ms * cases / 1000 / seconds, 2) for name, ms in cpu_ms_per_case.items()}


# --- the no-op worker (its own process, as the real one) ----------------------------------------------


class Marks:
    """The no-op activity: nothing, except that a marked step writes (workflow id, mark) for the driver."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.local = threading.local()

    @activity.defn(name=STEP_ACTIVITY)
    def step(self, mark: str) -> None:
        if not mark:
            return
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = sqlite3.connect(self.path, timeout=30)
        with conn:
            conn.execute("INSERT OR IGNORE INTO marks VALUES (?, ?)", (activity.info().workflow_id, mark))


def create_marks(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE IF NOT EXISTS marks (workflow_id TEXT, mark TEXT, PRIMARY KEY (workflow_id, mark))")


async def noop_worker() -> None:
    """`worker.py`'s worker with BenchScript and the no-op activity instead of the engine's: same
    client (payload codec), sandbox and passthrough modules, thread pool, activity slots,
    interceptor and cache size."""
    settings = get_settings()
    client = await connect(settings)
    marks = Marks(Path(os.environ["BENCH_MARKS"]))
    with ThreadPoolExecutor(max_workers=WORKER_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[BenchScript],
            activities=[marks.step],
            activity_executor=executor,
            max_concurrent_activities=WORKER_ACTIVITIES,
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
            ),
            interceptors=[MetricsInterceptor()],
            max_cached_workflows=settings.worker_cached_workflows,
        )
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, done.set)
        async with worker:
            await done.wait()


# --- the script: a real case's shape -------------------------------------------------------------


@dataclass
class Shape:
    """What one history holds."""

    events: int = 0
    activities: dict[str, int] = field(default_factory=dict)
    timers_fired: int = 0
    timers_cancelled: int = 0
    signals: int = 0
    updates: int = 0
    other: dict[str, int] = field(default_factory=dict)  # child workflows, other markers
    seconds: float = 0.0  # first event to last
    longest_wait: tuple[float, str] = (0.0, "")  # the longest gap between two events, and the later event

    @property
    def activity_count(self) -> int:
        return sum(self.activities.values())

    @property
    def timers(self) -> int:
        return self.timers_fired + self.timers_cancelled


def local_activity(event: HistoryEvent) -> str | None:
    """The activity type of a local activity's marker (its "data" detail is plain JSON, not encrypted)."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != "core_local_activity":
        return None
    return str(json.loads(marker.details["data"].payloads[0].data)["activity_type"])


def shape_of(history: WorkflowHistory) -> Shape:
    shape = Shape(events=len(history.events))
    times = [e.event_time.ToDatetime() for e in history.events]
    if times:
        shape.seconds = (times[-1] - times[0]).total_seconds()
        gaps = [((b - a).total_seconds(), i + 1) for i, (a, b) in enumerate(zip(times, times[1:], strict=False))]
        if gaps:
            gap, at = max(gaps)
            shape.longest_wait = (round(gap, 2), EventType.Name(history.events[at].event_type))
    for event in history.events:
        local = local_activity(event)
        if local is not None:
            shape.activities[f"{local} (local)"] = shape.activities.get(f"{local} (local)", 0) + 1
        elif event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            shape.activities[name] = shape.activities.get(name, 0) + 1
        elif event.HasField("timer_fired_event_attributes"):
            shape.timers_fired += 1
        elif event.HasField("timer_canceled_event_attributes"):
            shape.timers_cancelled += 1
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            shape.signals += 1
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            shape.updates += 1
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            shape.other["child workflows"] = shape.other.get("child workflows", 0) + 1
        elif event.HasField("marker_recorded_event_attributes"):
            name = event.marker_recorded_event_attributes.marker_name
            if name != "core_patch":
                shape.other[name] = shape.other.get(name, 0) + 1
    return shape


def script_from(history: WorkflowHistory) -> Script:
    """The real case's activities, timers and signal waits in order. Marked for the driver: the
    first status change (suspension), the first message sent after the first payment (its receipt),
    the last status change (reactivation)."""
    steps: list[dict[str, Any]] = []
    timers: dict[str, int] = {}
    signals = updates = 0
    for event in history.events:
        local = local_activity(event)
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signals += 1
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            updates += 1
        elif local is not None:
            steps.append({"kind": "local_activity", "name": local, "signals": signals})
        elif event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            steps.append({"kind": "activity", "name": name, "signals": signals})
        elif event.HasField("timer_started_event_attributes"):
            started = event.timer_started_event_attributes
            timers[started.timer_id] = len(steps)
            steps.append({"kind": "?", "seconds": started.start_to_fire_timeout.ToTimedelta().total_seconds()})
        elif event.HasField("timer_fired_event_attributes"):
            steps[timers[event.timer_fired_event_attributes.timer_id]]["kind"] = "timer"
        elif event.HasField("timer_canceled_event_attributes"):
            step = steps[timers[event.timer_canceled_event_attributes.timer_id]]
            step.update(kind="wait", signals=signals)
    changes = [i for i, s in enumerate(steps) if s.get("name") == "change_contract_status"]
    receipts = [i for i, s in enumerate(steps) if s.get("name") == "send_message" and s["signals"] >= 2]
    if len(changes) < 2 or not receipts or any(s["kind"] == "?" for s in steps):
        raise RuntimeError(f"the calibration case did not take the expected path: {steps}")
    marks = {changes[0]: "suspended", receipts[0]: "receipt", changes[-1]: "reactivated"}
    # The benchmark sends payment n only after mark n, so no step before a mark may wait for more
    # (a local activity's marker can land after a signal that came while it ran, on a busy worker).
    allowed = 1
    for i, step in enumerate(steps):
        step["signals"] = min(step.get("signals", 0), allowed)
        if marks.get(i) in ("suspended", "receipt"):
            allowed += 1
    return Script(
        [
            ScriptStep(
                kind=s["kind"],
                seconds=s.get("seconds", 0.0),
                signals=s.get("signals", 0),
                mark=marks.get(i, ""),
            )
            for i, s in enumerate(steps)
        ],
        answers=updates > 0,
    )


# --- driving the cases ----------------------------------------------------------------------------


@dataclass
class Timeline:
    started: float = 0.0
    first_paid: dict[str, float] = field(default_factory=dict)
    second_paid: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    closed: float = 0.0

    def cases_per_second(self, count: int) -> float:
        return count / (max(self.done.values()) - self.started)


async def gated(limit: int, items: list[str], work: Callable[[str], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(item: str) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def drive(
    ids: list[str],
    start: Callable[[str], Awaitable[None]],
    poll: Callable[[], list[tuple[str, str, int | None]]],
    pay: Callable[[str, int, int | None], Awaitable[None]],
    pause: Callable[[], Awaitable[None]] = functools.partial(asyncio.sleep, POLL_SECONDS),
) -> Timeline:
    """Start every case (16 at a time); every 100 ms read where the cases are; pay at 'suspended' and
    'receipt'; a case is done at 'reactivated'. `poll` answers (id, state, receipt amount) rows."""
    line = Timeline(started=time.perf_counter())
    starting = asyncio.create_task(gated(CONCURRENT, ids, start))
    gate = asyncio.Semaphore(PAYMENTS_IN_FLIGHT)
    payments: set[asyncio.Task[None]] = set()

    async def paying(case: str, n: int, amount: int | None) -> None:
        async with gate:
            await pay(case, n, amount)

    deadline = line.started + DEADLINE_SECONDS
    try:
        while len(line.done) < len(ids):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{len(ids) - len(line.done)} of {len(ids)} cases not done in {DEADLINE_SECONDS} s")
            if starting.done():
                starting.result()  # a failed start fails the run
            for task in [t for t in payments if t.done()]:
                task.result()
                payments.discard(task)
            rows = await asyncio.to_thread(poll)
            now = time.perf_counter()
            for case, state, receipt in rows:
                if state == "suspended" and case not in line.first_paid:
                    line.first_paid[case] = now
                    payments.add(asyncio.create_task(paying(case, 1, None)))
                elif state == "receipt" and case in line.first_paid and case not in line.second_paid:
                    line.second_paid[case] = now
                    payments.add(asyncio.create_task(paying(case, 2, receipt)))
                elif state == "reactivated" and case in line.second_paid:
                    line.done.setdefault(case, now)
                elif state == "reactivated" and case in line.first_paid:
                    # the no-op passed its receipt mark between two reads (its script waits for no more
                    # payments than had been sent when the sampled real case took that step): done now,
                    # without the second payment — the baseline only gets faster by it
                    line.second_paid.setdefault(case, now)
                    line.done.setdefault(case, now)
            await pause()
        await starting
        await asyncio.gather(*payments)
    finally:  # a failed run leaves nothing running behind it
        for task in (*payments, starting):
            task.cancel()
    return line


async def wait_closed(client: Client, queue: str, line: Timeline) -> None:
    query = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
    for _ in range(int(120 / POLL_SECONDS)):
        if (await client.count_workflows(query)).count == 0:
            line.closed = time.perf_counter()
            return
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"cases on {queue} still running 120 s after the last reactivation")


@dataclass
class Stack:
    """Dev server client, ledger, web app and a worker (real or no-op) on one task queue."""

    client: Client
    data: Path
    engine: Engine
    url: str
    queue: str
    port: int
    procs: dict[str, subprocess.Popen[bytes]]
    http: httpx.AsyncClient | None = None


class RealCases:
    """The engine: contracts in the ledger, cases started as the sweep does, payments through the API."""

    def __init__(self, client: Client, engine: Engine, queue: str, http: httpx.AsyncClient | None) -> None:
        self.client, self.engine, self.queue, self.http = client, engine, queue, http
        self.retries = 0  # payments sent again after a 5xx or a broken connection
        self.errors: list[str] = []  # payments the API answered with a 5xx three times

    def seed(self, prefix: str, count: int, due: date = tb.TODAY - timedelta(days=1)) -> list[str]:
        return tb.seed(self.engine, prefix, count, due, plan=PLAN)

    async def start(self, number: str) -> None:
        await start_or_join_case(self.client, self.queue, number, PremiumOverdue(premium_id=f"{number}-P1"), PLAN)

    def poll_for(self, prefix: str) -> Callable[[], list[tuple[str, str, int | None]]]:
        contracts = select(col(Contract.id), col(Contract.contract_number), col(Contract.status)).where(
            col(Contract.contract_number).like(f"{prefix}-%")
        )
        receipts = select(col(Message.contract_id), col(Message.total_cents)).where(
            Message.kind == MessageKind.PAYMENT_RECEIPT.value
        )

        def poll() -> list[tuple[str, str, int | None]]:
            with self.engine.connect() as conn:
                receipt = {cid: cents for cid, cents in conn.execute(receipts)}
                rows: list[tuple[str, str, int | None]] = []
                for cid, number, status in conn.execute(contracts):
                    if status == ContractStatus.SUSPENDED:
                        rows.append((number, "receipt" if cid in receipt else "suspended", receipt.get(cid)))
                    elif status == ContractStatus.ACTIVE:
                        rows.append((number, "reactivated", None))
            return rows

        return poll

    async def pay(self, number: str, n: int, amount: int | None) -> None:
        cents = FIRST_PAYMENT_CENTS if n == 1 else amount
        if not cents:
            raise RuntimeError(f"{number}: the receipt states no open amount")
        await self.send(number, f"bench-e2e-{number}-{n}", cents)

    async def send(self, number: str, reference: str, cents: int) -> None:
        """The bank's or billing system's call: a payment to the ledger API."""
        assert self.http is not None, "payments go through the web app's ledger API"
        body = {
            "type": "payment_received",
            "event_id": reference,
            "contract_number": number,
            "payment_ref": reference,
            "amount_cents": cents,
        }
        for attempt in range(3):  # as a sender does: the same event id again is answered, not booked twice
            try:
                response = await self.http.post("/api/ledger/events", json=body)
                if response.status_code < 500:
                    break
            except httpx.TransportError:
                if attempt == 2:
                    raise
            if attempt < 2:
                self.retries += 1
                await asyncio.sleep(1)
        if response.status_code >= 500:
            # Booked and signalled before the API waits for the case's answer (ledger/inbound.py): the
            # case goes on; the error is counted and reported, and a case that never ends fails the run.
            self.errors.append(f"{response.status_code} {response.text[:200]}")
            return
        response.raise_for_status()


class NoopCases:
    """BenchScript cases: started and signalled directly (there is no ledger behind them)."""

    def __init__(self, client: Client, queue: str, script: Script, marks: Path) -> None:
        self.client, self.queue, self.script, self.marks = client, queue, script, marks

    async def start(self, wid: str) -> None:
        await self.client.start_workflow(
            BenchScript.run, self.script, id=wid, task_queue=self.queue, start_signal="event"
        )

    def poll(self) -> list[tuple[str, str, int | None]]:
        with sqlite3.connect(self.marks, timeout=30) as conn:
            rows = conn.execute("SELECT workflow_id, mark FROM marks").fetchall()
        latest: dict[str, str] = {}
        order = {"suspended": 0, "receipt": 1, "reactivated": 2}
        for wid, mark in rows:
            if order[mark] >= order.get(latest.get(wid, "suspended"), 0):
                latest[wid] = mark
        return [(wid, mark, None) for wid, mark in latest.items()]

    async def pay(self, wid: str, _n: int, _amount: int | None) -> None:
        handle = self.client.get_workflow_handle(wid)
        await handle.signal("event")
        if self.script.answers:
            # waits for the answer as long as the ledger API does (PAYMENT_ANSWER_SECONDS), then goes on
            # as the API does; an update racing the script's end may otherwise wait for good
            try:
                await asyncio.wait_for(handle.execute_update("answer"), get_settings().payment_answer_seconds)
            except (TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
                pass


async def sample_histories(client: Client, ids: list[str]) -> list[WorkflowHistory]:
    picked = random.Random(7).sample(ids, min(SAMPLE, len(ids)))
    return [await client.get_workflow_handle(wid).fetch_history() for wid in picked]


def typical(histories: list[WorkflowHistory]) -> WorkflowHistory:
    """The history whose shape (activities by type, timers, signals) most sampled cases share."""

    def key(shape: Shape) -> tuple[Any, ...]:
        return (tuple(sorted(shape.activities.items())), shape.timers_fired, shape.timers_cancelled, shape.signals)

    keys = [key(shape_of(h)) for h in histories]
    return max(histories, key=lambda h: keys.count(key(shape_of(h))))


def summary(shapes: list[Shape]) -> dict[str, Any]:
    def mean(values: list[int]) -> float:
        return round(statistics.fmean(values), 2)

    names = sorted({n for s in shapes for n in s.activities})
    return {
        "sampled_histories": len(shapes),
        "events": mean([s.events for s in shapes]),
        "activities": mean([s.activity_count for s in shapes]),
        "local_activities": mean([sum(v for k, v in s.activities.items() if k.endswith("(local)")) for s in shapes]),
        "activities_by_type": {n: mean([s.activities.get(n, 0) for s in shapes]) for n in names},
        "timers": mean([s.timers for s in shapes]),
        "timers_cancelled_by_a_signal": mean([s.timers_cancelled for s in shapes]),
        "signals": mean([s.signals for s in shapes]),
        "seconds": round(statistics.fmean(s.seconds for s in shapes), 1),
        "longest_wait": max(s.longest_wait for s in shapes),
        "updates": mean([s.updates for s in shapes]),
        "other": {k: mean([s.other.get(k, 0) for s in shapes]) for k in sorted({k for s in shapes for k in s.other})},
    }


def letter_cpu_ms(runs: int = 5) -> float:
    """CPU time of one qualified-notice letter rendered in this process (the worker's code path,
    channels.render.render_message), warm: for the where-does-the-time-go line."""
    from channels.render import render_message
    from dev.bench.letters import notice_context

    render_message(Channel.LETTER, notice_context(0))  # fonts, templates
    started = time.process_time()
    for n in range(1, runs + 1):
        render_message(Channel.LETTER, notice_context(n))
    return (time.process_time() - started) * 1000 / runs


async def replay_cpu_ms(client: Client, history: WorkflowHistory, runs: int = 5) -> float:
    """CPU time of replaying a whole history in this process (sandbox, workflow code, the case's
    decider; no activities): what its workflow tasks cost a worker, without the polling."""
    replayer = Replayer(
        workflows=[*WORKFLOWS, BenchScript],
        data_converter=client.data_converter,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )
    await replayer.replay_workflow(history)  # the sandbox's module cache
    started = time.process_time()
    for _ in range(runs):
        await replayer.replay_workflow(history)
    return (time.process_time() - started) * 1000 / runs


# --- the parts --------------------------------------------------------------------------------------


async def throughput(stack: Stack, cases: int) -> dict[str, Any]:
    real = RealCases(stack.client, stack.engine, stack.queue, stack.http)
    tag = uuid.uuid4().hex[:4].upper()
    # One case alone first: the worker warms up, and its history shows the path on an idle machine.
    (one,) = real.seed(f"KT{tag}", 1)
    calibration = await drive([one], real.start, real.poll_for(f"KT{tag}"), real.pay)
    await wait_closed(stack.client, stack.queue, calibration)
    calibrated = shape_of(await stack.client.get_workflow_handle(case_workflow_id(one)).fetch_history())
    log(
        f"throughput: a real case took {calibration.cases_per_second(1) ** -1:.1f} s alone; "
        f"{calibrated.events} events, {calibrated.activity_count} activities, {calibrated.timers} timers, "
        f"{calibrated.signals} signals"
    )

    numbers = real.seed(f"KE{tag}", cases)
    procs = {"worker": [stack.procs["worker"].pid], "web": [stack.procs["web"].pid]}
    cpu = Cpu(procs)
    line = await drive(numbers, real.start, real.poll_for(f"KE{tag}"), real.pay)
    await wait_closed(stack.client, stack.queue, line)
    real_cpu = cpu.ms_per(cases)
    real_rate = line.cases_per_second(cases)
    log(f"throughput: {cases} real cases {real_rate:.2f}/s (all closed after {line.closed - line.started:.1f} s)")
    with session_scope(stack.engine) as session:
        sent = session.exec(
            select(col(Message.channel), col(Message.kind))
            .join(Contract)
            .where(col(Contract.contract_number).like(f"KE{tag}-%"))
        ).all()
    per_kind: dict[str, int] = {}
    for channel, kind in sent:
        per_kind[f"{kind} ({channel})"] = per_kind.get(f"{kind} ({channel})", 0) + 1
    letters = sum(1 for channel, _ in sent if channel == Channel.LETTER.value)
    # The no-op's script: what the cases did under this load (a late case finds its next step due
    # at once, so the plan's seconds-long gaps may add the pay-link SMS before a payment arrives).
    histories = await sample_histories(stack.client, [case_workflow_id(n) for n in numbers])
    history = typical(histories)
    return {
        "script": script_from(history),
        "alone": {
            "seconds": round(max(calibration.done.values()) - calibration.started, 1),
            "events": calibrated.events,
            "activities": calibrated.activity_count,
            "timers": calibrated.timers,
            "signals": calibrated.signals,
        },
        "script_shape": shape_of(history),
        "script_history": history,
        "real": {
            "cases_per_second": round(real_rate, 2),
            "seconds_to_last_reactivation": round(max(line.done.values()) - line.started, 1),
            "seconds_to_all_closed": round(line.closed - line.started, 1),
            "cpu_ms_per_case": real_cpu,
            "cores_busy": cores_busy(real_cpu, cases, line.closed - line.started),
            "messages_per_case": {k: round(v / cases, 2) for k, v in sorted(per_kind.items())},
            "letters_per_case": round(letters / cases, 2),
            "payments_sent_again": real.retries,
            "payment_errors": len(real.errors),
            "payment_error_example": real.errors[0] if real.errors else None,
            "history": summary([shape_of(h) for h in histories]),
        },
    }


async def noop_throughput(stack: Stack, script: Script, marks: Path, cases: int) -> dict[str, Any]:
    noop = NoopCases(stack.client, stack.queue, script, marks)
    ids = [f"bench-script-{uuid.uuid4().hex[:8]}-{i}" for i in range(cases)]
    cpu = Cpu({"worker": [stack.procs["worker"].pid]})
    try:
        line = await drive(ids, noop.start, noop.poll, noop.pay)
    except RuntimeError as error:
        history = await stack.client.get_workflow_handle(ids[0]).fetch_history()
        last = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events[-8:]]
        raise RuntimeError(f"{error}; the first no-op case's last events: {last}; its script: {script}") from error
    await wait_closed(stack.client, stack.queue, line)
    noop_cpu = cpu.ms_per(cases)
    rate = line.cases_per_second(cases)
    history = await stack.client.get_workflow_handle(ids[0]).fetch_history()
    log(f"throughput: {cases} no-op cases {rate:.2f}/s (all closed after {line.closed - line.started:.1f} s)")
    return {
        "cases_per_second": round(rate, 2),
        "seconds_to_last_reactivation": round(max(line.done.values()) - line.started, 1),
        "seconds_to_all_closed": round(line.closed - line.started, 1),
        "cpu_ms_per_case": noop_cpu,
        "cores_busy": cores_busy(noop_cpu, cases, line.closed - line.started),
        "history": summary([shape_of(h) for h in await sample_histories(stack.client, ids)]),
        "one_history": history,
    }


async def memory(stack: Stack, cases: int) -> dict[str, Any]:
    """RSS of a fresh worker with `cases` open cases (waiting on the reminder timer of the real
    3-days plan) minus its RSS with one open case, ÷ cases."""
    worker = stack.procs["worker"]
    numbers = tb.seed(stack.engine, f"KM{uuid.uuid4().hex[:4].upper()}", cases + 1, tb.TODAY - timedelta(days=1))

    async def start_and_wait(number: str) -> None:
        handle = await start_or_join_case(
            stack.client, stack.queue, number, PremiumOverdue(premium_id=f"{number}-P1"), "de-follow-up"
        )
        for _ in range(100):
            status = await tb.patient_query(handle)
            if status.next_step_at is not None:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"case {number} never reached its first timer")

    await start_and_wait(numbers[0])  # imports, sandbox, connections: the worker's fixed cost
    await asyncio.sleep(1)
    before = rss_bytes(worker.pid)
    await gated(CONCURRENT, numbers[1:], start_and_wait)
    await asyncio.sleep(1)
    after = rss_bytes(worker.pid)
    per_case = (after - before) / cases
    log(f"memory: {cases} open cases: worker RSS {before / 2**20:.0f} → {after / 2**20:.0f} MiB")
    return {
        "open_cases": cases,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_open_case": round(per_case / 1024, 1),
        "max_cached_workflows": get_settings().worker_cached_workflows,  # as worker.py keeps
    }


# --- wiring --------------------------------------------------------------------------------------------


async def stack_up(
    client: Client, data: Path, url: str, engine: Engine, worker: list[str], extra: dict[str, str]
) -> Stack:
    queue = f"bench-e2e-{uuid.uuid4().hex[:6]}"
    port = tb.free_port()
    env = {**child_env(data, client.service_client.config.target_host, queue, url, port), **extra}
    procs = {"worker": tb.spawn([sys.executable, *worker], env, data / f"worker-{queue}.log")}
    procs["web"] = tb.spawn(
        [sys.executable, "-m", "uvicorn", "web.app:internal_app", "--port", str(port), "--log-level", "warning"],
        env,
        data / f"web-{queue}.log",
    )
    stack = Stack(client, data, engine, url, queue, port, procs)
    with session_scope(engine) as session:
        key = accounts.create_client(session, queue, ["ledger:write", "ledger:read"], "bench")
    stack.http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {key}"}
    )
    for _ in range(300):
        try:
            if (await stack.http.get("/api/plans")).status_code == 200:
                return stack
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the web app did not answer within 30 s")


async def stack_down(stack: Stack) -> None:
    if stack.http is not None:
        await stack.http.aclose()
    for name, proc in stack.procs.items():
        if proc.poll() is not None:  # it should still run: say why it stopped
            log_path = stack.data / f"{name}-{stack.queue}.log"
            tail = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
            log(f"{name} stopped early (exit {proc.returncode}):\n" + "\n".join(tail))
    stop(list(stack.procs.values()))


async def run(client: Client | None = None, data: Path | None = None, cases: int = CASES) -> dict[str, Any]:
    """The whole part: with `client`, on that server (its codec keys in `data`); without, on a dev
    server of its own in a temporary folder."""
    if client is None:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            folder = data or Path(tmp)  # a given folder keeps the processes' logs
            env = await tb.dev_server(folder)
            try:
                return await run(await tb.app_client(env, folder), folder, cases)
            finally:
                await env.shutdown()
    assert data is not None, "with a client, the folder that holds its codec keys"
    began = time.perf_counter()
    url = f"sqlite:///{data / 'throughput.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    marks = data / f"marks-{uuid.uuid4().hex[:6]}.sqlite3"
    create_marks(marks)
    try:
        stack = await stack_up(client, data, url, engine, ["worker.py"], {})
        try:
            real = await throughput(stack, cases)
        finally:
            await stack_down(stack)
        noop_stack = await stack_up(
            client, data, url, engine, ["-m", "dev.bench.throughput", "--noop-worker"], {"BENCH_MARKS": str(marks)}
        )
        try:
            noop = await noop_throughput(noop_stack, real["script"], marks, cases)
        finally:
            await stack_down(noop_stack)
        mem_stack = await stack_up(client, data, url, engine, ["worker.py"], {})
        try:
            mem = await memory(mem_stack, cases)
        finally:
            await stack_down(mem_stack)
    finally:
        engine.dispose()
    letter_ms = letter_cpu_ms()
    replay_real = await replay_cpu_ms(client, real.pop("script_history"))
    replay_noop = await replay_cpu_ms(client, noop.pop("one_history"))
    script: Script = real.pop("script")
    shape: Shape = real.pop("script_shape")
    ratio = real["real"]["cases_per_second"] / noop["cases_per_second"]
    out = {
        "cases": cases,
        "plan": PLAN,
        "path": "overdue → reminder (e-mail) → qualified notice (letter, e-mail copy) → cover suspended → "
        "partial payment (receipt) → full payment → reactivated",
        "worker_processes": 1,
        "cpus": os.cpu_count(),
        "script": {
            "activities": sum(1 for s in script.steps if s.kind == "activity"),
            "local_activities": sum(1 for s in script.steps if s.kind == "local_activity"),
            "timers": sum(1 for s in script.steps if s.kind == "timer"),
            "signal_waits": sum(1 for s in script.steps if s.kind == "wait"),
            "payment_answers_awaited": script.answers,
            "signals": shape.signals,
            "timer_seconds": [round(s.seconds, 2) for s in script.steps if s.kind in ("timer", "wait")],
            "real_case_events": shape.events,
            "steps": [[s.kind, round(s.seconds, 2), s.signals, s.mark] for s in script.steps],
        },
        **real,
        "noop": noop,
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "met": ratio >= GOAL_RATIO,
        "letter_cpu_ms": round(letter_ms, 1),
        "replay_cpu_ms": {"real": round(replay_real, 1), "noop": round(replay_noop, 1)},
        "memory": mem,
        "seconds": round(time.perf_counter() - began, 1),
    }
    log(f"throughput: ratio {out['ratio']} (goal {GOAL_RATIO}); memory {mem['kib_per_open_case']} KiB per open case")
    return out


# --- the page ---------------------------------------------------------------------------------------


def report_lines(r: dict[str, Any]) -> list[str]:
    """docs/benchmarks.md: a table row (first line) and the section (the rest)."""
    real, noop, mem, script, alone = r["real"], r["noop"], r["memory"], r["script"], r["alone"]
    rh, nh = real["history"], noop["history"]
    rc, nc = real["cpu_ms_per_case"], noop["cpu_ms_per_case"]
    total_real, total_noop = sum(rc.values()), sum(nc.values())
    letters_ms = r["letter_cpu_ms"] * real["letters_per_case"]
    worker_extra = rc["worker"] - nc["worker"]
    replay = r["replay_cpu_ms"]
    workflow_extra = replay["real"] - replay["noop"]
    rest = worker_extra - workflow_extra - letters_ms
    cores = r.get("cpus") or os.cpu_count() or 1
    rb, nb = real.get("cores_busy", {}), noop.get("cores_busy", {})

    def busy(by: dict[str, float]) -> str:
        return ", ".join(f"{name.replace('_', ' ')} {v}" for name, v in by.items())

    met = "**met**" if r["met"] else "**missed**"
    lines = [
        f"| end-to-end throughput, {r['cases']:,} cases overdue → reactivated ({r['plan']}) | "
        f"{real['cases_per_second']}/s | no-op workflow of the same shape {noop['cases_per_second']}/s | "
        f"{r['ratio']} | ≥ {r['goal_ratio']} | {met} |",
        "",
        "## End-to-end throughput",
        "",
        f"{r['cases']:,} contracts with an overdue premium on the `{r['plan']}` plan (the German plan in seconds), "
        f"path: {r['path']}. Worker (`worker.py`, {r['worker_processes']} process, as `make run` starts it), internal "
        "web app and Temporal dev server (SQLite, WAL) are separate processes; the ledger is SQLite. The benchmark "
        "starts the cases as the sweep does (signal-with-start, 16 at a time), reads the ledger every "
        f"{POLL_SECONDS * 1000:.0f} ms, and pays through `POST /api/ledger/events` as a bank or billing system does: "
        f"{FIRST_PAYMENT_CENTS / 100:.2f} EUR once the contract is suspended, the rest (what the receipt states) once "
        "the receipt is in the outbox. Rate: cases ÷ seconds from the first start to the last contract seen active "
        f"again ({real['seconds_to_last_reactivation']} s; every case closed after {real['seconds_to_all_closed']} s).",
        "",
        f"Alone on the idle machine a case takes {alone['seconds']} s ({alone['events']} events, "
        f"{alone['activities']} activities, {alone['timers']} timers, {alone['signals']} signals). With "
        f"{r['cases']:,} at once the worker runs behind the plan's two-second steps, so a case finds its next step "
        "due when it wakes and takes it at once: fewer timers, and cover suspended may be followed by the pay-link "
        "SMS (or even the agent hand-over) before the first payment arrives — see the messages below.",
        "",
        "Baseline, same run and server: `BenchScript` (dev/bench/noop.py) with the shape most of the "
        f"{rh['sampled_histories']} sampled real cases of this run took ({script['real_case_events']} events): "
        f"{script['activities']} no-op activities and {script['local_activities']} local ones, "
        f"{script['timers']} timers that fire and {script['signal_waits']} that a payment cancels "
        f"({', '.join(f'{s:g} s' for s in script['timer_seconds']) or 'none'}), {script['signals']} signals"
        + (
            " (each payment's sender then awaits an update's answer, as the ledger API does)"
            if script.get("payment_answers_awaited")
            else ""
        )
        + ", each activity after the signals it followed in the real case — on a worker process with the same settings "
        "(sandbox, passthrough modules, 16 threads and activity slots, interceptor, cache). The benchmark signals "
        "it at the same three points (suspended, receipt written, reactivated: marker rows the no-op activity "
        f"writes). No-op: {noop['cases_per_second']}/s ({noop['seconds_to_last_reactivation']} s to the last).",
        "",
        "| per case | real | no-op |",
        "|---|---|---|",
        f"| history events (mean of {real['history']['sampled_histories']} sampled) | {real['history']['events']} | "
        f"{noop['history']['events']} |",
        f"| activities (local ones among them) | {rh['activities']} ({rh['local_activities']}) | "
        f"{nh['activities']} ({nh['local_activities']}) |",
        f"| timers (cancelled by a payment) | {rh['timers']} ({rh['timers_cancelled_by_a_signal']}) | "
        f"{nh['timers']} ({nh['timers_cancelled_by_a_signal']}) |",
        f"| signals | {real['history']['signals']} | {noop['history']['signals']} |",
    ]
    for name in ("worker", "web", "temporal_server", "bench_client"):
        if name in rc or name in nc:
            lines.append(f"| CPU {name.replace('_', ' ')} | {rc.get(name, '—')} ms | {nc.get(name, '—')} ms |")
    lines += [
        f"| CPU all | {total_real:.0f} ms | {total_noop:.0f} ms |",
        "",
        "Messages per real case: "
        + ", ".join(f"{k} {v}" for k, v in real["messages_per_case"].items())
        + "."
        + (
            f" The ledger API answered {real['payments_sent_again']} payments with a server error or a broken "
            f"connection and they were sent again (same event id); {real['payment_errors']} still failed after "
            f"three tries (booked and signalled before the API waits for the case's answer), e.g. "
            f"`{real['payment_error_example']}`."
            if real.get("payments_sent_again")
            else " Every payment was answered at the first try."
        ),
        "",
        ("Goal met. " if r["met"] else "**Missed**. ")
        + f"Where the time goes: a real case costs {total_real:.0f} ms of CPU, the no-op {total_noop:.0f} ms, so "
        f"this machine's {cores} cores allow at most about {cores * 1000 / max(total_real, 1):.1f} real cases/s "
        f"against {cores * 1000 / max(total_noop, 1):.1f} no-op cases/s (CPU ratio "
        f"{total_noop / max(total_real, 1):.2f}). Cores kept busy on average, real run: {busy(rb)}; no-op run: "
        f"{busy(nb)}. "
        + (
            f"The real run's worker process is the bottleneck: {rb['worker']} of the one core a Python process "
            "can use for its workflow code and synchronous activities (one worker process, as `make run` starts "
            "it; `worker.py --processes N` runs more). "
            if rb.get("worker", 0) >= 0.8
            else "No single process used a whole core in the real run: the machine's cores, shared with the "
            "Temporal server, the web app and everything else running, set the pace. "
        )
        + f"The worker spends {worker_extra:.0f} ms "
        f"more per real case: its workflow code (the decider, search attributes) about {workflow_extra:.0f} ms "
        f"(replaying the real history costs {replay['real']} ms of CPU, the no-op's {replay['noop']} ms); "
        f"rendering its {real['letters_per_case']:g} letter(s) about {letters_ms:.0f} ms ({r['letter_cpu_ms']} ms "
        f"each, measured alone); the remaining {rest:.0f} ms are the activities' own work — reading and writing the "
        "ledger, rendering and storing the e-mails, the payload encryption. The web app adds "
        f"{rc.get('web', 0):.0f} ms (two payments through the ledger API: booking, audit, the signal), the Temporal "
        f"server {rc.get('temporal_server', 0) - nc.get('temporal_server', 0):+.0f} ms against the no-op (the "
        f"case's {rh['events'] - nh['events']:.0f} more history events: search attribute updates, and the payments' "
        "update answers and repeated signals where the API was sent a payment again) and this "
        f"benchmark's client {rc.get('bench_client', 0) - nc.get('bench_client', 0):+.0f} ms (HTTP and ledger "
        "polling instead of bare signals).",
        "",
        f"Worker memory: {mem['kib_per_open_case']} KiB per open case ({mem['open_cases']:,} cases waiting on their "
        f"reminder timer on the `de-follow-up` plan: RSS {mem['rss_before_mib']} → {mem['rss_after_mib']} MiB "
        f"against the worker with one open case). The SDK keeps up to {mem['max_cached_workflows']:,} workflows "
        "cached (`WORKER_CACHED_WORKFLOWS`, as `worker.py` keeps); beyond that a case is evicted and "
        "replayed from its history when it next has work, so memory stays bounded and CPU grows instead.",
        "",
    ]
    return lines


def main(argv: list[str]) -> None:
    if argv[:1] == ["--noop-worker"]:
        asyncio.run(noop_worker())
        return
    cases = int(argv[0]) if argv else CASES
    folder = Path(argv[1]) if len(argv) > 1 else None  # kept afterwards, with the processes' logs
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(data=folder, cases=cases))
    print(json.dumps(result, indent=2))
    print("\n".join(report_lines(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
