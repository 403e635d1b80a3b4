"""The what-if simulation's speed (issue #16, P7): 100,000 contracts × one year, and the same
contracts per contract against the real DunningCase workflow on the time-skipping server.

- Portfolio: 100,000 made-up contracts, monthly premiums for a year, 8 % of the premiums paid late
  (after the reminder, the notice, the suspension, the agency or at court approval), on the three
  German plans. Generated and simulated in a process pool over slices (every core), as
  `starter.py simulate` does; goal ≤ 60 s.
- Ratio: a sample of the portfolio's late cases (one premium, its payment after `d` days) runs
  through the real workflow (time-skipping test server, the real worker with its activities on a
  SQLite ledger), one after another; the same single-premium histories through the simulation in
  this process. Wall time per contract, both; goal: the simulation ≥ 100× faster.

`run() -> dict`, `report_lines(result) -> list[str]`; the lead wires it into dev/bench/run.py.
    .venv/bin/python -m dev.bench.simulation          # prints the result (≈ 70 s on 2 quiet cores)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.calendar import add_months
from core.simulation import ContractHistory, SimPayment, SimPremium, simulate_contract
from core.timezone import BUSINESS_TIMEZONE
from dev.bench.common import TEST_SERVER, log

CONTRACTS = 100_000
SLICE = 2_500
SAMPLE = 8
GOAL_SECONDS = 60.0
GOAL_RATIO = 100.0
LATE = 0.08
PLANS = ("de-follow-up", "de-follow-up-terminate", "de-follow-up-final-reminder")
YEAR_START = date(2026, 1, 1)
ZONE = ZoneInfo(BUSINESS_TIMEZONE)


@lru_cache(maxsize=8192)
def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, clock(hour), tzinfo=ZONE).astimezone(UTC)


def late_days(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.randint(4, 11)
    if r < 0.7:
        return rng.randint(14, 30)
    if r < 0.85:
        return rng.randint(32, 55)
    if r < 0.95:
        return rng.randint(60, 100)
    return rng.randint(100, 160)


def contract(index: int) -> ContractHistory:
    """One contract's year: monthly premiums, most paid on the due date, some late (with the fee)."""
    rng = random.Random(index)
    number = f"B-{index:06d}"
    amount = rng.choice((1_290, 2_990, 4_990, 8_990))
    premiums, payments = [], []
    for month in range(12):
        due = add_months(YEAR_START, month)
        pid = f"{number}-P{month + 1:02d}"
        premiums.append(SimPremium(pid, due, amount, f"{due:%m/%Y}"))
        days = late_days(rng) if rng.random() < LATE else 0
        payments.append(SimPayment(f"{pid}:pay", amount + (150 if days else 0), _at(due + timedelta(days=days), 11)))
    return ContractHistory(
        number,
        tuple(premiums),
        tuple(payments),
        has_email=rng.random() < 0.85,
        has_phone=rng.random() < 0.7,
        subdivision="BE",
        agent_code="A-1",
        plan_id=PLANS[index % len(PLANS)],
    )


def simulate_slice(lo: int, hi: int) -> dict[str, int]:
    """Generate and simulate contracts [lo, hi) under their own plans; counts only (cheap to return)."""
    from models.plans import get_plan

    cpu = time.process_time()
    start, end = _at(YEAR_START, 0), _at(add_months(YEAR_START, 12), 0)
    counts = {"contracts": 0, "cases": 0, "messages": 0, "decisions": 0}
    for i in range(lo, hi):
        h = contract(i)
        o = simulate_contract(h, get_plan(h.plan_id), start, end)
        counts["contracts"] += 1
        counts["cases"] += len(o.cases)
        counts["messages"] += len(o.messages)
        counts["decisions"] += o.decisions
    counts["cpu_ms"] = round((time.process_time() - cpu) * 1000)
    return counts


def portfolio(count: int = CONTRACTS, workers: int | None = None) -> dict[str, Any]:
    workers = workers or os.cpu_count() or 1
    bounds = [(lo, min(lo + SLICE, count)) for lo in range(0, count, SLICE)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(simulate_slice, [b[0] for b in bounds], [b[1] for b in bounds]))
    seconds = time.perf_counter() - started
    total = {k: sum(p[k] for p in parts) for k in parts[0]}
    # CPU seconds of the workers: on a machine shared with other work the wall time says less.
    cpu_seconds = round(total.pop("cpu_ms") / 1000, 1)
    return {"workers": workers, "seconds": round(seconds, 1), **total, "cpu_seconds": cpu_seconds}


# --- the same contracts through the real workflow ---------------------------------------------------


def sample_cases(n: int = SAMPLE) -> list[tuple[str, int, int, str]]:
    """(contract number, premium cents, days late, plan) of the portfolio's first `n` late premiums."""
    out: list[tuple[str, int, int, str]] = []
    i = 0
    while len(out) < n:
        h = contract(i)
        late = [(p, pay) for p, pay in zip(h.premiums, h.payments, strict=True) if pay.amount_cents > p.amount_cents]
        if late:
            premium, pay = late[0]
            days = (pay.received_at.astimezone(ZONE).date() - premium.due_date).days
            out.append((h.contract_number, premium.amount_cents, days, h.plan_id))
        i += 1
    return out


def one_case(number: str, cents: int, days: int, plan: str, due: date) -> ContractHistory:
    return ContractHistory(
        number,
        (SimPremium(f"{number}-P1", due, cents),),
        (SimPayment(f"{number}:pay", cents + 150, _at(due + timedelta(days=days), 11)),),
        subdivision="BE",
        agent_code="A-1",
        plan_id=plan,
    )


def simulated_per_contract(sample: list[tuple[str, int, int, str]], due: date, runs: int = 50) -> float:
    from models.plans import get_plan

    histories = [one_case(n, c, d, p, due) for n, c, d, p in sample]
    start, end = _at(due - timedelta(days=20), 0), _at(due + timedelta(days=366), 0)
    for h in histories:  # warm the holiday calendar
        simulate_contract(h, get_plan(h.plan_id), start, end)
    began = time.perf_counter()
    for _ in range(runs):
        for h in histories:
            simulate_contract(h, get_plan(h.plan_id), start, end)
    return (time.perf_counter() - began) / (runs * len(histories))


async def real_per_contract(sample: list[tuple[str, int, int, str]], data: Path) -> tuple[float, date, list[str]]:
    """Each sampled case through DunningCase on the time-skipping server, one after another: the
    premium falls due, the case runs its plan, the payment comes `days` later, the case closes."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from infra.config import Settings
    from infra.runtime import build_worker
    from ledger import service
    from ledger.db import make_engine, migrate, session_scope
    from models.case import PaymentBooked, PremiumOverdue
    from tests.conftest import register_search_attributes
    from workflows.client import notify_payment, start_or_join_case

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    paid: dict[str, datetime] = {}
    dues: dict[str, date] = {}
    try:
        await register_search_attributes(env.client)
        url = f"sqlite:///{data / 'simulation-bench.sqlite3'}"
        migrate(url)
        engine = make_engine(url)
        settings = Settings(data_dir=data, task_queue=f"bench-sim-{uuid.uuid4().hex[:6]}")
        with session_scope(engine) as session:
            service.upsert_agent(session, "A-1", name="Agent", email="agent@example.org")
            for number, _, _, plan in sample:
                customer = service.upsert_customer(
                    session, f"C-{number}", name="Bench Kunde", street="Weg 1", postal_code="10115", city="Berlin",
                    state="BE", email="kunde@example.org", phone="+4915112345678",
                )  # fmt: skip
                service.upsert_contract(
                    session, number, customer, agent_code="A-1", product="Hausrat", dunning_plan=plan
                )
        began = time.perf_counter()
        with ThreadPoolExecutor(16) as executor:
            async with build_worker(env.client, engine, settings, executor):
                for number, cents, days, plan in sample:
                    # Each case starts the day after its premium fell due, as the morning sweep starts it.
                    due = (await env.get_current_time()).astimezone(ZONE).date() - timedelta(days=1)
                    dues[number] = due
                    with session_scope(engine) as session:
                        service.book_premium(
                            session, external_id=f"{number}-P1", contract_number=number, period_start=due,
                            period_end=due + timedelta(days=30), due_date=due, amount_cents=cents,
                        )  # fmt: skip
                    handle = await start_or_join_case(
                        env.client, settings.task_queue, number, PremiumOverdue(premium_id=f"{number}-P1"), plan
                    )
                    await env.sleep(timedelta(days=days))
                    now = await env.get_current_time()
                    with session_scope(engine) as session:
                        service.book_payment(
                            session, contract_number=number, external_ref=f"{number}:pay", amount_cents=cents + 150,
                            received_at=now, source="bank",
                        )  # fmt: skip
                    await notify_payment(
                        env.client, number, PaymentBooked(payment_ref=f"{number}:pay", amount_cents=cents + 150,
                                                          received_at=now),
                    )  # fmt: skip
                    await handle.result()
                    paid[number] = now
        seconds = (time.perf_counter() - began) / len(sample)
        defects = replay_against(engine, min(dues.values()), paid, settings.default_plan)
        engine.dispose()
    finally:
        await env.shutdown()
    return seconds, min(dues.values()), defects


def replay_against(engine: Any, due: date, paid: dict[str, datetime], default_plan: str) -> list[str]:
    """The replay check against the real workflow: what its activities wrote into the ledger, read
    back as the simulation reads any slice, against the simulation of the same events."""
    from core.simulation_report import replay_defects
    from ledger.db import session_scope
    from ledger.simulation_input import Slice, read_slice
    from models.plans import get_plan

    part = Slice(start=due - timedelta(days=1), end=due + timedelta(days=365), contracts=tuple(paid))
    with session_scope(engine) as session:
        data = read_slice(session, part, default_plan)
    defects: list[str] = []
    for history, recorded in zip(data.histories, data.recorded, strict=True):
        outcome = simulate_contract(history, get_plan(history.plan_id), part.start_at, part.end_at)
        defects += replay_defects(recorded, outcome)
    return defects


def run(count: int = CONTRACTS) -> dict[str, Any]:
    log(f"simulation: {count} contracts × one year on every core …")
    whole = portfolio(count)
    log(f"simulation: {whole}")
    sample = sample_cases()
    with tempfile.TemporaryDirectory() as tmp:
        real, due, defects = asyncio.run(real_per_contract(sample, Path(tmp)))
    simulated = simulated_per_contract(sample, due)
    out = {
        "contracts": whole["contracts"],
        "cases": whole["cases"],
        "messages": whole["messages"],
        "decisions": whole["decisions"],
        "workers": whole["workers"],
        "seconds": whole["seconds"],
        "cpu_seconds": whole["cpu_seconds"],
        "goal_seconds": GOAL_SECONDS,
        "seconds_met": whole["seconds"] <= GOAL_SECONDS,
        "sample": len(sample),
        "real_workflow_ms_per_contract": round(real * 1000, 1),
        "simulated_ms_per_contract": round(simulated * 1000, 3),
        "ratio": round(real / simulated, 1),
        "goal_ratio": GOAL_RATIO,
        "ratio_met": real / simulated >= GOAL_RATIO,
        # The sample's ledger, written by the real workflow's activities, replayed by the simulation.
        "replay_defects_vs_workflow": len(defects),
        "replay_defect_lines": defects[:20],
    }
    log(f"simulation: {out}")
    return out


def report_lines(r: dict[str, Any]) -> list[str]:
    met = {True: "**met**", False: "**missed**"}
    return [
        "## What-if simulation (issue #16, P7)",
        "",
        f"- {r['contracts']:,} contracts × one year ({r['cases']:,} cases, {r['messages']:,} messages, "
        f"{r['decisions']:,} decisions of the case decider) simulated in **{r['seconds']} s** on {r['workers']} "
        f"processes ({r['cpu_seconds']} CPU s) — goal ≤ {r['goal_seconds']:.0f} s: {met[r['seconds_met']]}.",
        f"- Per contract, the same {r['sample']} late cases: real DunningCase workflow on the time-skipping server "
        f"{r['real_workflow_ms_per_contract']} ms, simulation {r['simulated_ms_per_contract']} ms: "
        f"**{r['ratio']}×** faster — goal ≥ {r['goal_ratio']:.0f}×: {met[r['ratio_met']]}.",
        f"- Replay check against the real workflow (the sample's ledger replayed by the simulation): "
        f"{r['replay_defects_vs_workflow']} difference(s).",
    ]


if __name__ == "__main__":
    print(json.dumps(run(int(os.environ.get("SIM_BENCH_CONTRACTS", CONTRACTS))), indent=2))
