"""Wiring shared by the worker, the web app, the CLI and the tests: one client, one worker shape."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.handover import HandoverActivities
from activities.ledger import LedgerActivities
from activities.messaging import Outbox
from activities.sweep import SweepActivities
from config import Settings
from workflows.dunning import DunningCase
from workflows.sweep import LedgerSweep

WORKFLOWS = [DunningCase, LedgerSweep]
# Deterministic libraries and our own pure modules are loaded once, outside the sandbox:
# re-importing them per workflow run is slow, and babel/holidays create locks at import.
PASSTHROUGH = ("babel", "holidays", "pydantic", "pydantic_core", "models", "core", "sqlalchemy", "sqlmodel")


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


def build_worker(client: Client, engine: Engine, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    ledger = LedgerActivities(engine)
    outbox = Outbox(engine, settings)
    handover = HandoverActivities(engine, outbox)
    sweep = SweepActivities(engine, client, settings.task_queue, settings.default_plan)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        activities=[
            ledger.load_arrears,
            ledger.change_contract_status,
            ledger.book_payment,
            ledger.prepare_court_application,
            ledger.approve_court_application,
            ledger.close_case,
            outbox.send_message,
            handover.hand_over_to_agent,
            sweep.start_overdue_cases,
        ],
        activity_executor=executor,
        max_concurrent_activities=16,
    )
