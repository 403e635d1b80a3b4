"""Activities for what customers do in the portal (issue #14): a request accepted by the case joins
a person's queue; the customer's agent hears of it by e-mail (no customer contact data in it)."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging import Outbox
from infra.config import Settings
from ledger import requests
from ledger.db import session_scope
from models.activities import OpenServiceRequest
from models.case import RequestOpened
from models.ledger import Contract
from models.portal import RequestQueue


class PortalActivities:
    def __init__(self, engine: Engine, outbox: Outbox, settings: Settings) -> None:
        self.engine = engine
        self.outbox = outbox
        self.settings = settings

    @activity.defn
    def open_service_request(self, request: OpenServiceRequest) -> RequestOpened:
        with session_scope(self.engine) as session:
            try:
                row = requests.open_request(
                    session, request.request_id, request.contract_number, request.case_id, request.now
                )
            except LookupError as error:
                raise ApplicationError(str(error), type="InvalidInput", non_retryable=True) from error
            contract = session.get(Contract, row.contract_id)
            assert contract is not None  # foreign key
            opened = RequestOpened(request_id=request.request_id, queue=row.queue, due_at=row.due_at)
            agent_code = row.agent_code if row.queue == RequestQueue.AGENT else None
        if agent_code:
            task_url = f"{self.settings.internal_base_url.rstrip('/')}/agents/requests/{request.request_id}"
            self.outbox.notify_agent_of_request(
                request.case_id,
                contract.contract_number,
                agent_code,
                task_url,
                f"{request.key}:agent-mail",
                request.now,
            )
        return opened
