"""Record a CourtDunning history on its own (no case around it): an application already filed is
served so that the two-week objection window ends on a nation-wide public holiday, and the window
passes. tests/test_replay.py replays it on every test run.

    .venv/bin/python -m tests.histories.record_court court_served_before_court_holidays

`court_served_before_court_holidays.json` was recorded with the code before the court periods
learnt public holidays (§222(2) ZPO, patch `court-periods-public-holidays` in workflows/court.py):
keep it, never re-record it (docs/workflow-versioning.md). The helpers are also used by
tests/test_court_dates.py to run the same story on today's code.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from infra.config import Settings
from infra.runtime import build_worker
from ledger.db import make_engine, migrate
from models.court import CourtData, CourtEventInput, CourtEventKind, CourtInput, CourtState
from tests.conftest import TEST_SERVER, register_search_attributes
from tests.histories.record import save
from workflows.court import CourtDunning

HERE = Path(__file__).resolve().parent
BERLIN = ZoneInfo("Europe/Berlin")
Court = WorkflowHandle[CourtDunning, CourtData]


def next_weekday_holiday(after: date) -> date:
    """The first nation-wide German public holiday on a Monday–Friday after `after`."""
    days = holidays.country_holidays("DE", years=range(after.year, after.year + 2))
    return min(day for day in days if day > after and day.weekday() < 5)


async def start_filed_court(
    env: WorkflowEnvironment, task_queue: str, workflow_id: str, court_state: str | None = None
) -> Court:
    """A court dunning whose application a person has approved and filed (state FILED)."""
    today = (await env.get_current_time()).astimezone(BERLIN).date()
    case_id = workflow_id.removesuffix("/court")
    facts = {
        "case_id": case_id,
        "contract_number": "K-COURT-1",
        "parent_workflow_id": f"{case_id}-case",  # no case runs: telling it fails, which the court notes
        "application_id": 1,
        "claimed_cents": 30_000,
        "oldest_due": today - timedelta(days=120),
    }
    filed = CourtData.model_validate({**facts, "state": CourtState.FILED, "court_state": court_state})
    # `state` set: the court starts where a continue-as-new would, after the filing.
    court_input = CourtInput.model_validate({**facts, "court_state": court_state, "state": filed})
    return await env.client.start_workflow(CourtDunning.run, court_input, id=workflow_id, task_queue=task_queue)


async def serve_before_a_holiday(env: WorkflowEnvironment, court: Court) -> tuple[date, date]:
    """Move time to two weeks before the next weekday holiday, at 10:00 Berlin, and record the
    Mahnbescheid as issued and served that day: the objection window's last day is the holiday.
    Returns (served on, the holiday)."""
    now = await env.get_current_time()
    holiday = next_weekday_holiday(now.astimezone(BERLIN).date() + timedelta(days=15))
    served_on = holiday - timedelta(days=14)
    await env.sleep(datetime.combine(served_on, time(10), tzinfo=BERLIN) - now)
    for kind in (CourtEventKind.ISSUED, CourtEventKind.SERVED):
        await court.execute_update(
            "record_event", CourtEventInput(kind=kind, occurred_on=served_on), result_type=CourtData
        )
    return served_on, holiday


async def court_served_before_court_holidays(env: WorkflowEnvironment, task_queue: str) -> Court:
    court = await start_filed_court(env, task_queue, f"court-rec-{uuid.uuid4().hex[:6]}/court")
    served_on, holiday = await serve_before_a_holiday(env, court)
    await env.sleep(timedelta(days=20))  # the window passes: the enforcement order is due
    data = await court.query(CourtDunning.status)
    assert data.state == CourtState.ENFORCEMENT_ORDER_DUE, data.journal
    return court


SCENARIOS = {"court_served_before_court_holidays": court_served_before_court_holidays}


async def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        raise SystemExit(f"name the scenario(s) to record; known: {sorted(SCENARIOS)}")
    for name in names:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        )
        try:
            await register_search_attributes(env.client)
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}"
                migrate(url)
                engine = make_engine(url)
                settings = Settings(data_dir=Path(tmp), task_queue=f"record-{uuid.uuid4().hex[:6]}")
                with ThreadPoolExecutor(max_workers=16) as executor:
                    async with build_worker(env.client, engine, settings, executor):
                        court = await SCENARIOS[name](env, settings.task_queue)
                        history = await court.fetch_history()
                        try:
                            await court.terminate("recorded")
                        except RPCError:
                            pass
                engine.dispose()
            path = save(HERE / f"{name}.json", court.id, history)
        finally:
            await env.shutdown()
        print(f"recorded {path.relative_to(HERE.parent.parent)} ({len(json.loads(path.read_text())['events'])} events)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
