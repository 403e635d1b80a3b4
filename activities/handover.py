"""Agency handover activities."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from temporalio import activity

from activities.ledger import non_retryable
from activities.messaging import Outbox
from channels.render import RenderError
from ledger import service
from ledger.db import session_scope
from models.activities import HandedOver, HandOver
from models.ledger import AgentTask


class HandoverActivities:
    """Agency handover: a real task for the responsible agent, and a notification to them."""

    def __init__(self, engine: Engine, outbox: Outbox) -> None:
        self.engine = engine
        self.outbox = outbox

    @activity.defn
    def hand_over_to_agent(self, request: HandOver) -> HandedOver:
        try:
            with session_scope(self.engine) as session:
                contract = service.get_contract(session, request.contract_number)
                state = service.arrears(session, request.contract_number, service.ledger_date(request.now))
                agent_code = contract.agent_code or "backoffice"
                task, _ = service.add_agent_task(
                    session,
                    AgentTask(
                        idempotency_key=request.key,
                        case_id=request.case_id,
                        contract_id=contract.id or 0,
                        agent_code=agent_code,
                        open_cents=state.balance_cents,
                        created_at=request.now,
                        due_at=request.now + timedelta(hours=request.contact_within_hours),
                    ),
                )
                task_id = task.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error
        try:
            self.outbox.notify_agent(
                request.case_id, request.contract_number, task_id, f"{request.key}:agent-mail", request.now
            )
        except (service.LedgerError, RenderError) as error:
            raise non_retryable(error) from error
        return HandedOver(task_id=task_id, agent_code=agent_code)
