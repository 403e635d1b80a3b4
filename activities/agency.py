"""Agency handover activities, and the agency's small ledger operations (tokens, calendar, notes).

Everything the `AgentHandover` workflow does to the outside world: assign the task (to the
responsible agent, the team buddy when the agent is absent, or the supervisor), write the
customer notes, tell the customer who calls and why, tell a supervisor about a missed deadline,
close the task. Every write carries a key derived from the workflow's case id and step.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from activities.ledger import non_retryable
from activities.messaging import Outbox, Pending, recipient, usable
from channels.render import RenderError, render_template
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.agency import (
    AgentAbsence,
    AgentProfile,
    Assignee,
    CheckAssignee,
    CloseHandoverTask,
    ContactAttempt,
    CustomerNote,
    Escalate,
    HandoverAssigned,
    NotifyCustomer,
    OpenHandover,
    WriteAttempt,
)
from models.ledger import AgentTask, Contract, Message
from models.messages import Channel

BACKOFFICE = "backoffice"
HANDOVER_KIND = "handover"
# Outbox kinds of the "who calls and why" message and the supervisor's escalation e-mail; their
# texts are templates/de/<kind>.*, rendered with the engine's one Jinja environment.
CALL_NOTICE_KIND = "agent_call_notice"
ESCALATION_KIND = "agent_escalation"


# --- agency master data (CLI, web, tests) ---------------------------------------------------


def set_supervisor(session: Session, agent_code: str, supervisor_code: str) -> AgentProfile:
    for code in (agent_code, supervisor_code):
        if service.get_agent(session, code) is None:
            raise service.NotFound(f"agent {code!r} does not exist")
    if agent_code == supervisor_code:
        raise service.LedgerError(f"an agent cannot supervise themselves ({agent_code})")
    profile = _profile(session, agent_code)
    profile.supervisor_code = supervisor_code
    session.add(profile)
    session.flush()
    return profile


def add_absence(session: Session, agent_code: str, starts_on: date, ends_on: date, reason: str = "") -> AgentAbsence:
    if service.get_agent(session, agent_code) is None:
        raise service.NotFound(f"agent {agent_code!r} does not exist")
    if ends_on < starts_on:
        raise service.LedgerError(f"absence must end on or after its start ({starts_on}), got {ends_on}")
    absence = AgentAbsence(agent_code=agent_code, starts_on=starts_on, ends_on=ends_on, reason=reason)
    session.add(absence)
    session.flush()
    return absence


def is_absent(session: Session, agent_code: str, day: date) -> bool:
    query = select(AgentAbsence).where(
        AgentAbsence.agent_code == agent_code, col(AgentAbsence.starts_on) <= day, col(AgentAbsence.ends_on) >= day
    )
    return session.exec(query).first() is not None


def supervisor_of(session: Session, agent_code: str) -> str:
    profile = session.exec(select(AgentProfile).where(AgentProfile.agent_code == agent_code)).first()
    return profile.supervisor_code if profile and profile.supervisor_code else BACKOFFICE


def choose_assignee(session: Session, responsible: str, day: date) -> tuple[str, str]:
    """Responsible agent if present; else the team buddy if present; else the supervisor."""
    if responsible == BACKOFFICE or not is_absent(session, responsible, day):
        return responsible, f"responsible agent {responsible}"
    agent = service.get_agent(session, responsible)
    buddy = agent.buddy_code if agent else None
    if buddy and service.get_agent(session, buddy) and not is_absent(session, buddy, day):
        return buddy, f"team buddy {buddy} ({responsible} absent on {day:%d.%m.%Y})"
    supervisor = supervisor_of(session, responsible)
    return supervisor, f"supervisor {supervisor} ({responsible} and buddy absent on {day:%d.%m.%Y})"


def notes_for_case(session: Session, case_id: str) -> list[CustomerNote]:
    return list(
        session.exec(
            select(CustomerNote)
            .where(CustomerNote.case_id == case_id)
            .order_by(col(CustomerNote.at), col(CustomerNote.id))
        )
    )


def _profile(session: Session, agent_code: str) -> AgentProfile:
    profile = session.exec(select(AgentProfile).where(AgentProfile.agent_code == agent_code)).first()
    return profile or AgentProfile(agent_code=agent_code)


def _task(session: Session, task_id: int) -> AgentTask:
    task = session.get(AgentTask, task_id)
    if task is None:
        raise service.NotFound(f"agent task {task_id} does not exist")
    return task


def add_note(
    session: Session,
    *,
    key: str,
    contract: Contract,
    case_id: str,
    task_id: int | None,
    author: str,
    kind: str,
    text: str,
    at: datetime,
) -> CustomerNote:
    """A line in the customer notes, once per key."""
    existing = session.exec(select(CustomerNote).where(CustomerNote.idempotency_key == key)).first()
    if existing is not None:
        return existing
    note = CustomerNote(
        idempotency_key=key,
        customer_id=contract.customer_id,
        contract_id=contract.id or 0,
        case_id=case_id,
        task_id=task_id,
        author=author,
        kind=kind,
        text=text,
        at=at,
    )
    session.add(note)
    session.flush()
    return note


# --- the activities -------------------------------------------------------------------------


class AgencyActivities:
    def __init__(self, engine: Engine, outbox: Outbox, settings: Settings) -> None:
        self.engine = engine
        self.outbox = outbox
        self.settings = settings

    def agent_task_url(self, task_id: int) -> str:
        """The agent page is on the internal app (agents sign in there), never on the public one."""
        return f"{self.settings.internal_base_url.rstrip('/')}/agents/tasks/{task_id}"

    @activity.defn
    def open_handover(self, request: OpenHandover) -> HandoverAssigned:
        """The task for the responsible agent (or the buddy), a customer note, an e-mail with the link."""
        try:
            with session_scope(self.engine) as session:
                contract = service.get_contract(session, request.contract_number)
                responsible = contract.agent_code or BACKOFFICE
                assignee, why = choose_assignee(session, responsible, request.day)
                arrears = service.arrears(session, request.contract_number, request.day)
                task, _ = service.add_agent_task(
                    session,
                    AgentTask(
                        idempotency_key=request.key,
                        case_id=request.case_id,
                        contract_id=contract.id or 0,
                        agent_code=assignee,
                        kind=HANDOVER_KIND,
                        open_cents=arrears.balance_cents,
                        created_at=request.now,
                        due_at=request.contact_due_at,
                    ),
                )
                task_id = task.id or 0
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=task_id,
                    author="system",
                    kind="handover",
                    text=f"Handed over to {why}; contact due by {request.contact_due_at:%Y-%m-%d %H:%M} UTC",
                    at=request.now,
                )
                mail = self._mail_agent(
                    session, contract, request.case_id, task.agent_code, task_id, request.key, request.now
                )
                assigned = HandoverAssigned(
                    task_id=task_id,
                    agent_code=task.agent_code,
                    responsible_code=responsible,
                    supervisor_code=supervisor_of(session, responsible),
                    why=why,
                )
            self.outbox.hand_over([mail])  # after the commit: the e-mail provider (or the outbox) has it
            return assigned
        except (service.LedgerError, RenderError) as error:
            raise non_retryable(error) from error

    @activity.defn
    def check_assignee(self, request: CheckAssignee) -> Assignee:
        """Each morning: the task goes to the buddy while the agent is absent, and back on return."""
        try:
            with session_scope(self.engine) as session:
                task = _task(session, request.task_id)
                assignee, why = choose_assignee(session, request.responsible_code, request.day)
                if task.agent_code == assignee:
                    return Assignee(agent_code=assignee, changed=False)
                contract = session.get(Contract, task.contract_id)
                assert contract is not None
                previous = task.agent_code
                task.agent_code = assignee
                session.add(task)
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=task.id,
                    author="system",
                    kind="reassigned",
                    text=f"Task moved from {previous} to {why}",
                    at=request.now,
                )
                mail = self._mail_agent(
                    session, contract, request.case_id, assignee, task.id or 0, request.key, request.now
                )
            self.outbox.hand_over([mail])
            return Assignee(agent_code=assignee, changed=True, why=why)
        except (service.LedgerError, RenderError) as error:
            raise non_retryable(error) from error

    @activity.defn
    def write_attempt(self, request: WriteAttempt) -> int:
        """One contact attempt: a structured row and a line in the customer notes."""
        try:
            with session_scope(self.engine) as session:
                task = _task(session, request.task_id)
                contract = session.get(Contract, task.contract_id)
                assert contract is not None
                attempt = session.exec(
                    select(ContactAttempt).where(ContactAttempt.idempotency_key == request.key)
                ).first()
                if attempt is None:
                    attempt = ContactAttempt(
                        idempotency_key=request.key,
                        task_id=request.task_id,
                        case_id=request.case_id,
                        agent_code=request.agent_code,
                        channel=request.channel,
                        reached=request.reached,
                        day=request.day,
                        at=request.now,
                        note=request.note,
                    )
                    session.add(attempt)
                    session.flush()
                what = "reached the customer" if request.reached else "did not reach the customer"
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=request.task_id,
                    author=request.agent_code,
                    kind="contact" if request.reached else request.channel.value,
                    text=f"{request.channel.value}: {what}" + (f" — {request.note}" if request.note else ""),
                    at=request.now,
                )
                return attempt.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def notify_customer(self, request: NotifyCustomer) -> str:
        """SMS (else e-mail, else nothing) saying who calls and why. No amounts in it (DOMAIN §7)."""
        try:
            with session_scope(self.engine) as session:
                contract = service.get_contract(session, request.contract_number)
                customer = service.get_customer(session, contract)
                agent = service.get_agent(session, request.agent_code)
                language = customer.language  # "" who: the template names the customer service
                values = {"who": agent.name if agent else "", "creditor_name": self.settings.creditor_name}
                text = render_template(f"{CALL_NOTICE_KIND}.txt", values, language)
                channel = next((c for c in (Channel.SMS, Channel.EMAIL) if usable(c, customer)), None)
                notice: Pending | None = None
                if channel is None:
                    channel_text = "no usable phone or e-mail: nothing sent"
                else:
                    notice = self.outbox.stage(  # the SMS or e-mail provider, like every other message
                        session,
                        Message(
                            idempotency_key=request.key,
                            case_id=request.case_id,
                            contract_id=contract.id,
                            channel=channel,
                            kind=CALL_NOTICE_KIND,
                            recipient=recipient(channel, customer),
                            subject=render_template(f"{CALL_NOTICE_KIND}.email.subject.txt", {}, language)
                            if channel == Channel.EMAIL
                            else "",
                            body_text=text,
                            created_at=request.now,
                        ),
                    )
                    channel_text = f"{channel.value} sent: who calls and why"
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=request.task_id,
                    author="system",
                    kind="message",
                    text=f"Customer not reached today; {channel_text}",
                    at=request.now,
                )
            self.outbox.hand_over([notice])
            return channel.value if channel else ""
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def escalate(self, request: Escalate) -> str:
        """A missed contact deadline: the supervisor gets an e-mail with the task link; a note is written."""
        try:
            with session_scope(self.engine) as session:
                contract = service.get_contract(session, request.contract_number)
                supervisor = service.get_agent(session, request.supervisor_code)
                address = supervisor.email if supervisor else "backoffice@example.invalid"
                mail = self.outbox.stage(  # through the e-mail provider, like every other message
                    session,
                    Message(
                        idempotency_key=request.key,
                        case_id=request.case_id,
                        contract_id=contract.id,
                        channel=Channel.EMAIL,
                        kind=ESCALATION_KIND,
                        recipient=address,
                        subject=render_template(f"{ESCALATION_KIND}.email.subject.txt", {"case_id": request.case_id}),
                        body_text=render_template(
                            f"{ESCALATION_KIND}.email.txt",
                            {
                                "supervisor_name": supervisor.name if supervisor else "",
                                "task_id": request.task_id,
                                "contract_number": contract.contract_number,
                                "agent_code": request.agent_code,
                                "reason": request.reason,
                                "task_url": self.agent_task_url(request.task_id),
                            },
                        )
                        + "\n",
                        created_at=request.now,
                    ),
                )
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=request.task_id,
                    author="system",
                    kind="escalation",
                    text=f"Escalated to supervisor {request.supervisor_code}: {request.reason}",
                    at=request.now,
                )
            self.outbox.hand_over([mail])
            return request.supervisor_code
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def close_task(self, request: CloseHandoverTask) -> bool:
        """The outcome on the task and in the customer notes."""
        try:
            with session_scope(self.engine) as session:
                task = _task(session, request.task_id)
                contract = session.get(Contract, task.contract_id)
                assert contract is not None
                changed = task.status == "open"
                if changed:
                    task.status = "done"
                    task.outcome = request.outcome
                    session.add(task)
                add_note(
                    session,
                    key=f"{request.key}:note",
                    contract=contract,
                    case_id=request.case_id,
                    task_id=request.task_id,
                    author=request.by,
                    kind="outcome",
                    text=f"Outcome: {request.outcome}" + (f" — {request.note}" if request.note else ""),
                    at=request.now,
                )
                return changed
        except service.LedgerError as error:
            raise non_retryable(error) from error

    def _mail_agent(
        self, session: Session, contract: Contract, case_id: str, agent_code: str, task_id: int, key: str, now: datetime
    ) -> Pending | None:
        """The agent's e-mail with the link to the task on the agent page (no customer contact data),
        stored in the caller's transaction; `outbox.hand_over` sends it after the commit."""
        key = f"{key}:agent-mail:{agent_code}"
        draft, _ = self.outbox.agent_mail(
            session, contract, agent_code, case_id, self.agent_task_url(task_id), key, now
        )
        return self.outbox.stage(session, draft)
