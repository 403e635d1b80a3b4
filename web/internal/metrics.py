"""GET /metrics for Prometheus: the web apps' counters (payments that came in through them) and the
number of running dunning cases per stage, counted by Temporal's visibility at scrape time.

Served by the metrics app only (web.app:metrics_app), on its own port bound to the internal interface
(METRICS_HOST:WEB_METRICS_PORT, web/serve.py), never on the public or internal app's port. web/serve.py
runs it in the same process as the other apps, so it reports what they counted (prometheus_client keeps
counters per process). The worker processes serve their own counters (reactivations, messages, stage
entries) and the SDK's runtime metrics on their metrics ports (worker.py). Counts only: no ids, no
personal data.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.client import Client
from temporalio.service import RPCError

from infra.observability import CASES
from models.case import CLOSED_STAGES, CaseStage
from web.deps import AppContext, context

router = APIRouter()
log = logging.getLogger(__name__)
OPEN_STAGES = [stage for stage in CaseStage if stage not in CLOSED_STAGES]


async def count_cases_by_stage(client: Client) -> None:
    """One visibility count per open stage; a server without advanced visibility leaves the gauge out."""
    for stage in OPEN_STAGES:
        query = f"WorkflowType = 'DunningCase' AND ExecutionStatus = 'Running' AND DunningStage = '{stage.value}'"
        try:
            counted = await asyncio.wait_for(client.count_workflows(query), timeout=5)
        except (RPCError, TimeoutError) as error:
            log.warning("cannot count cases by stage: %s", error)
            return
        CASES.labels(stage=stage.value).set(counted.count)


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Annotated[AppContext, Depends(context)]) -> Response:
    await count_cases_by_stage(ctx.client)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
