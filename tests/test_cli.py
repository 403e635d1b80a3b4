"""The staff CLI (`starter.py`): bad local input is refused before anything is sent; against the
real time-skipping server, staff actions the case rejects exit 2 with the case's reason and leave
the case exactly as it was."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from cli import common as cli_common
from infra import config
from infra.config import Settings
from ledger import audit
from ledger.db import session_scope
from models.case import CaseStage, CaseStatus
from starter import app
from tests.conftest import seed_contract
from tests.helpers import berlin_today, open_case, status
from workflows.dunning import DunningCase

runner = CliRunner()


def output(result: Result) -> str:
    """What the user sees, stdout and stderr, without the boxes and line breaks rich adds."""
    return " ".join(result.output.replace("│", " ").split())


# --- bad local input never reaches Temporal -----------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any attempt to connect is recorded and fails the command."""
    attempts: list[str] = []

    async def no_connection(settings: Settings) -> Any:
        attempts.append(settings.temporal_address)
        raise AssertionError("the CLI connected to Temporal")

    monkeypatch.setattr(cli_common, "connect", no_connection)
    yield attempts


BAD_INPUT: list[tuple[list[str], list[str]]] = [
    (["pay", "K-1", "abc", "--reference", "x"], ["amount", "abc"]),
    (["pay", "K-1", "--reference", "x", "--", "-5"], ["amount must be > 0", "-5"]),
    (["pay", "K-1", "-5", "--reference", "x"], ["-5"]),  # looks like an option to the parser: refused too
    (["pay", "K-1", "0", "--reference", "x"], ["amount must be > 0"]),
    (["pay", "K-1", "1.234", "--reference", "x"], ["at most two decimals", "1.234"]),
    (["pay", "K-1", "1e400", "--reference", "x"], ["amount"]),
    (["promise", "K-1", "--by-date", "2026-12-01", "--amount", "12.345"], ["at most two decimals"]),
    (["hold", "K-1", "--until", "2026-13-45", "--reason", "x"], ["--until", "2026-13-45"]),
    (["hold", "K-1", "--until", "45.12.2026", "--reason", "x"], ["--until", "45.12.2026"]),
    (["promise", "K-1", "--by-date", "tomorrow"], ["--by-date", "tomorrow"]),
    (["pay", "K-1", "10"], ["Missing option", "--reference"]),
    (["hold", "K-1", "--until", "2026-12-01"], ["Missing option", "--reason"]),
    (["hold", "K-1", "--reason", "x"], ["Missing option", "--until"]),
    (["dispute", "K-1"], ["Missing option", "--reason"]),
    (["status"], ["Missing argument", "'contract'"]),
    (["sweep", "--as-of", "2026-02-30"], ["--as-of", "2026-02-30"]),
]


@pytest.mark.parametrize(("args", "mentions"), BAD_INPUT, ids=[" ".join(args) for args, _ in BAD_INPUT])
def test_bad_input_is_refused_with_exit_2_and_a_message_before_anything_is_sent(
    offline: list[str], args: list[str], mentions: list[str]
) -> None:
    result = runner.invoke(app, args)

    assert result.exit_code == 2, result.output
    for word in mentions:
        assert word in output(result), f"{word!r} not in {result.output}"
    assert "Traceback" not in result.output
    assert offline == []


# --- against the real (time-skipping) server ------------------------------------------------------


@pytest.fixture
def cli_env(
    time_env: WorkflowEnvironment, settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment pointing the CLI at the test server and the test's worker. The CLI caches its
    settings, so the cache is cleared before and after. The CLI speaks the test worker's data
    converter (the worker here does not decrypt; encryption is tested in tests/test_codec.py)."""

    async def same_converter(settings: Settings, identity: str | None = None) -> Client:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=time_env.client.data_converter,
            identity=identity,
        )

    monkeypatch.setattr(cli_common, "connect", same_converter)
    config.get_settings.cache_clear()
    yield {
        "TEMPORAL_ADDRESS": time_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": time_env.client.namespace,
        "TASK_QUEUE": settings.task_queue,
        "COLUMNS": "200",
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),  # the audit trail goes here
        "CLI_IDENTITY": "mia@backoffice",
    }
    config.get_settings.cache_clear()


async def cli(env: dict[str, str], *args: str) -> Result:
    """Run the CLI in a thread: it runs its own event loop, and the worker needs ours."""
    config.get_settings.cache_clear()
    return await asyncio.to_thread(lambda: runner.invoke(app, list(args), env=env))


async def opened(handle: WorkflowHandle[DunningCase, CaseStatus]) -> CaseStatus:
    """The case once it has read the ledger (an activity right after it starts)."""
    for _ in range(200):
        current = await status(handle)
        if current.items:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"the case never read its items: {current}")


async def test_staff_actions_the_case_rejects_exit_2_with_its_reason_and_change_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, cli_env: dict[str, str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1")
    before = await opened(handle)
    assert before.stage == CaseStage.OVERDUE

    shown = await cli(cli_env, "status", "K-100001")
    assert shown.exit_code == 0, shown.output
    assert "overdue" in output(shown) and "P-1" in output(shown) and "120,00 €" in output(shown)

    hold = await cli(cli_env, "hold", "K-100001", "--until", "2020-01-01", "--reason", "x")
    assert hold.exit_code == 2, hold.output
    assert "rejected: until must be after today" in output(hold)

    resume = await cli(cli_env, "resume", "K-100001")
    assert resume.exit_code == 2, resume.output
    assert "rejected: case is not on hold" in output(resume)

    approve = await cli(cli_env, "approve-court", "K-100001")
    assert approve.exit_code == 2, approve.output
    assert "rejected: no court application waits for approval (stage is overdue)" in output(approve)

    pay = await cli(cli_env, "pay", "K-100001", "10", "--reference", "r-1", "--premium", "P-404")
    assert pay.exit_code == 2, pay.output
    assert "rejected: premium_id 'P-404' is not an open item" in output(pay)

    for result in (hold, resume, approve, pay):
        assert "Traceback" not in result.output
    assert await status(handle) == before


async def test_a_staff_action_the_case_accepts_is_shown_with_the_new_state(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, cli_env: dict[str, str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1")
    await opened(handle)
    until = today + timedelta(days=30)

    held = await cli(cli_env, "hold", "K-100001", "--until", until.isoformat(), "--reason", "in hospital")

    assert held.exit_code == 0, held.output
    assert "hold: in hospital" in output(held) and "120,00 €" in output(held)
    current = await status(handle)
    assert current.hold is not None and current.hold.reason == "in hospital"
    assert current.hold.until is not None and current.hold.until.date() >= until - timedelta(days=1)
    assert current.hold.set_by == "mia@backoffice"  # the CLI's configured identity, in the case ...
    with session_scope(engine) as session:  # ... and in the audit trail
        trail = audit.for_contract(session, "K-100001")
    assert [(e.actor_kind, e.actor, e.action) for e in trail] == [("cli", "mia@backoffice", "starter.py hold")]


async def test_status_of_a_contract_without_a_case_is_a_clear_error_not_a_traceback(
    time_env: WorkflowEnvironment, worker: Worker, cli_env: dict[str, str]
) -> None:
    result = await cli(cli_env, "status", "K-404")

    assert result.exit_code == 2, result.output
    assert "no dunning case for contract_number 'K-404'" in output(result)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not an uncaught error


async def test_instalments_from_the_cli_split_the_whole_balance_monthly(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, cli_env: dict[str, str]
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1")
    await opened(handle)
    first = today + timedelta(days=7)

    agreed = await cli(cli_env, "instalments", "K-100001", "--count", "3", "--first", first.isoformat())

    assert agreed.exit_code == 0, agreed.output
    hold = (await status(handle)).hold
    assert hold is not None and hold.kind == "instalment_plan"
    assert [(i.due, i.amount_cents) for i in hold.schedule][0] == (first, 3_334)
    assert sum(i.amount_cents for i in hold.schedule) == 10_000
