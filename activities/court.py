"""Court dunning activities: the application as a PDF for review, filing, court events,
the enforcement order application and the long-term monitoring checks. Each is idempotent on
its key (`<case id>:court:...`)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.ledger import non_retryable
from channels.render import html_to_pdf, render_template
from ledger import service
from ledger.db import session_scope
from models.agency import CourtDocument, CourtEvent
from models.court import (
    ApplyEnforcementOrder,
    CourtState,
    FileCourtApplication,
    MonitoringCheck,
    MonitoringResult,
    RecordCourtEvent,
    RenderCourtApplication,
)
from models.ledger import CourtApplication

LIMITATION_WARNING_DAYS = 180

APPLICATION_TEMPLATE = "court_application.review.html"  # templates/de/, HTML → PDF by WeasyPrint


def application_pdf(record: dict[str, object]) -> bytes:
    """The prepared application as the PDF a person reviews before approving it."""
    return html_to_pdf(render_template(APPLICATION_TEMPLATE, {"r": record}))


def _application(session: Session, case_id: str) -> CourtApplication:
    application = session.exec(select(CourtApplication).where(CourtApplication.case_id == case_id)).first()
    if application is None:
        raise service.NotFound(f"no court application prepared for case {case_id}")
    return application


def _document(session: Session, key: str) -> CourtDocument | None:
    return session.exec(select(CourtDocument).where(CourtDocument.idempotency_key == key)).first()


def add_event(session: Session, request: RecordCourtEvent) -> CourtEvent:
    existing = session.exec(select(CourtEvent).where(CourtEvent.idempotency_key == request.key)).first()
    if existing is not None:
        return existing
    event = CourtEvent(
        idempotency_key=request.key,
        case_id=request.case_id,
        kind=request.kind,
        occurred_on=request.occurred_on,
        state_after=request.state_after,
        reference=request.reference,
        note=request.note,
        recorded_at=request.now,
    )
    session.add(event)
    session.flush()
    return event


class CourtActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def render_application(self, request: RenderCourtApplication) -> int:
        """The prepared application record (JSON) rendered as a PDF a person reviews before approving."""
        try:
            with session_scope(self.engine) as session:
                existing = _document(session, request.key)
                if existing is not None:
                    return existing.id or 0
                application = _application(session, request.case_id)
                document = CourtDocument(
                    idempotency_key=request.key,
                    case_id=request.case_id,
                    kind="application",
                    record=application.record,
                    pdf=application_pdf(application.record),
                    created_at=request.now,
                )
                session.add(document)
                session.flush()
                return document.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def file_application(self, request: FileCourtApplication) -> int:
        try:
            with session_scope(self.engine) as session:
                application = service.approve_court_application(session, request.case_id, request.approver, request.now)
                if application.status != "filed":
                    application.status = "filed"
                    session.add(application)
                    session.flush()
                return application.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def record_event(self, request: RecordCourtEvent) -> int:
        with session_scope(self.engine) as session:
            return add_event(session, request).id or 0

    @activity.defn
    def apply_enforcement_order(self, request: ApplyEnforcementOrder) -> int:
        """The application for the enforcement order (§699 ZPO) as a record, with what is open now."""
        try:
            with session_scope(self.engine) as session:
                existing = _document(session, request.key)
                if existing is not None:
                    return existing.id or 0
                application = _application(session, request.case_id)
                arrears = service.arrears(session, request.contract_number, service.ledger_date(request.now))
                record: dict[str, object] = {
                    "case_id": request.case_id,
                    "application_id": application.id,
                    "payment_order_served_on": request.served_on.isoformat(),
                    "open_cents": arrears.balance_cents,
                    "applied_by": request.approver,
                    "applied_at": request.now.isoformat(),
                }
                document = CourtDocument(
                    idempotency_key=request.key,
                    case_id=request.case_id,
                    kind="enforcement_order_application",
                    record=record,
                    created_at=request.now,
                )
                session.add(document)
                session.flush()
                return document.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def monitoring_check(self, request: MonitoringCheck) -> MonitoringResult:
        """A periodic check of a titled claim: what is open, and is the limitation date near?"""
        try:
            with session_scope(self.engine) as session:
                arrears = service.arrears(session, request.contract_number, request.as_of)
                warning = (
                    request.limitation_date is not None
                    and (request.limitation_date - request.as_of).days <= LIMITATION_WARNING_DAYS
                )
                add_event(
                    session,
                    RecordCourtEvent(
                        case_id=request.case_id,
                        kind="monitoring_check",
                        occurred_on=request.as_of,
                        state_after=CourtState.LONG_TERM_MONITORING,
                        note=f"{arrears.balance_cents} cents open" + ("; limitation date near" if warning else ""),
                        now=request.now,
                        key=request.key,
                    ),
                )
                return MonitoringResult(
                    balance_cents=arrears.balance_cents,
                    contract_status=str(arrears.contract_status),
                    limitation_warning=warning,
                )
        except service.LedgerError as error:
            raise non_retryable(error) from error


def court_events(session: Session, case_id: str) -> list[CourtEvent]:
    return list(session.exec(select(CourtEvent).where(CourtEvent.case_id == case_id).order_by(CourtEvent.id)))  # type: ignore[arg-type]
