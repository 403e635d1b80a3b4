"""Wiring shared by the worker, the web app, the CLI and the tests: one client, one worker shape."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.agency import AgencyActivities
from activities.campaign import CampaignActivities
from activities.court import CourtActivities
from activities.ledger import LedgerActivities
from activities.messaging import Outbox
from activities.portal import PortalActivities
from activities.sweep import SweepActivities
from infra.cluster import connect_options
from infra.config import Settings
from infra.crypto.codec import data_converter
from infra.observability import MetricsInterceptor
from workflows.campaign import InspectionReminder, OnboardingSequence, QuoteReactivation
from workflows.court import CourtDunning
from workflows.dunning import DunningCase
from workflows.fallback import ChannelFallback
from workflows.handover import AgentHandover
from workflows.sweep import LedgerSweep

WORKFLOWS = [DunningCase, LedgerSweep, QuoteReactivation, OnboardingSequence, InspectionReminder, ChannelFallback]
WORKFLOWS += [AgentHandover, CourtDunning]  # issue #4: children of the dunning case
# Deterministic libraries and our own pure modules are loaded once, outside the sandbox:
# re-importing them per workflow run is slow, and babel/holidays create locks at import.
PASSTHROUGH = ("babel", "holidays", "pydantic", "pydantic_core", "models", "core", "sqlalchemy", "sqlmodel")


async def connect(settings: Settings, runtime: Runtime | None = None, identity: str | None = None) -> Client:
    # pydantic payloads, AES-GCM encrypted before they leave the process (infra/crypto/codec.py);
    # TLS / API key for a cluster or Temporal Cloud (infra/cluster.py); `runtime` serves SDK metrics (worker.py).
    # `identity` is what Temporal records as the caller of each start, signal and update (history,
    # Web UI): the web app's process, or the CLI's configured identity (issue #12).
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
        identity=identity,
        **connect_options(settings),
    )


def build_worker(client: Client, engine: Engine, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    ledger = LedgerActivities(engine, court_state=settings.court_state)
    outbox = Outbox(engine, settings)
    agency = AgencyActivities(engine, outbox, settings)
    portal = PortalActivities(engine, outbox, settings)
    court = CourtActivities(engine)
    campaign = CampaignActivities(engine, settings, outbox)  # the same send path as dunning mail
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
            portal.open_service_request,
            portal.escalate_overdue_requests,
            agency.open_handover,
            agency.check_assignee,
            agency.write_attempt,
            agency.notify_customer,
            agency.escalate,
            agency.close_task,
            court.render_application,
            court.file_application,
            court.record_event,
            court.apply_enforcement_order,
            court.monitoring_check,
            sweep.start_overdue_cases,
            campaign.send_confirmation,
            campaign.purge_unconfirmed,
            campaign.record_assignments,
            campaign.check_exit,
            campaign.reserve_slot,
            campaign.send_campaign_mail,
            campaign.record_outcome,
            campaign.release_slots,
        ],
        activity_executor=executor,
        max_concurrent_activities=16,
        max_cached_workflows=settings.worker_cached_workflows,  # WORKER_CACHED_WORKFLOWS (docs/deployment.md)
        interceptors=[MetricsInterceptor()],  # business counters from finished activities (infra/observability.py)
    )
