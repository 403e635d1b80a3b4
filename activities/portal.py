"""Activities for what customers do in the portal (issue #14): a request accepted by the case joins
a person's queue; the customer's agent hears of it by e-mail (no customer contact data in it)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agency import BACKOFFICE, supervisor_of
from activities.messaging import Outbox
from infra.config import Settings
from ledger import requests
from ledger.db import session_scope
from models.activities import EscalateRequests, OpenServiceRequest, RequestsEscalated
from models.case import RequestOpened
from models.ledger import Contract
from models.messages import MessageKind
from models.portal import RequestQueue, ServiceRequest


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

    @activity.defn
    def escalate_overdue_requests(self, request: EscalateRequests) -> RequestsEscalated:
        """Every request unanswered past its due date, once: a request waiting for an agent goes to the
        agent's supervisor by e-mail (no customer data in it); every one is marked escalated, which the
        back office's overdue view (/requests?view=overdue, the supervisors' list) shows."""
        with session_scope(self.engine) as session:
            due = [
                (
                    row.id or 0,
                    row.case_id,
                    row.queue,
                    supervisor_of(session, row.agent_code) if row.agent_code else None,
                )
                for row in requests.due_for_escalation(session, request.now)
            ]
            numbers = {row_id: self._contract_number(session, row_id) for row_id, *_ in due}
        mailed = 0
        for row_id, case_id, queue, supervisor in due:
            if queue == RequestQueue.AGENT and supervisor not in (None, BACKOFFICE):
                url = f"{self.settings.internal_base_url.rstrip('/')}/agents/requests/{row_id}"
                self.outbox.mail_agent(
                    case_id,
                    numbers[row_id],
                    supervisor,
                    url,
                    f"{case_id}:request:{row_id}:overdue",
                    request.now,
                    MessageKind.AGENT_REQUEST_OVERDUE,
                )
                mailed += 1
            with session_scope(self.engine) as session:
                row = session.get(ServiceRequest, row_id)
                if row is not None and row.escalated_at is None:
                    row.escalated_at = request.now
                    session.add(row)
        return RequestsEscalated(escalated=len(due), mailed=mailed)

    @staticmethod
    def _contract_number(session: Session, request_id: int) -> str:
        row = session.get(ServiceRequest, request_id)
        contract = session.get(Contract, row.contract_id) if row is not None else None
        assert contract is not None  # foreign keys
        return contract.contract_number
