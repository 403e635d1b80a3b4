"""Court dunning activities: the application as a PDF for review, filing, court events,
the enforcement order application and the long-term monitoring checks. Each is idempotent on
its key (`<case id>:court:...`)."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.ledger import non_retryable
from core.money import format_eur
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

APPLICATION_HTML = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>Antrag auf Erlass eines Mahnbescheids</title>
<style>
 body { font: 10.5pt/1.4 sans-serif; margin: 2cm; }
 table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
 th, td { border-bottom: 1px solid #999; padding: 3px 5px; text-align: left; }
 td.num { text-align: right; }
 .muted { color: #555; font-size: 9pt; }
</style></head><body>
<h1>Antrag auf Erlass eines Mahnbescheids (§ 690 ZPO) — Entwurf zur Prüfung</h1>
<p>Vorgang {{ r.case_id }} · Vertrag {{ r.contract_number }} · Schuldner-Nr. {{ r.debtor_customer_number }}</p>
<h2>Hauptforderung</h2>
<table><tr><th>Beitrag</th><th>Zeitraum</th><th>fällig</th><th class="num">Betrag</th></tr>
{% for p in r.principal %}<tr><td>{{ p.premium_id }}</td><td>{{ p.period }}</td><td>{{ p.due_date }}</td>
<td class="num">{{ p.amount_cents | eur }}</td></tr>{% endfor %}</table>
<h2>Zinsen (Nebenforderung)</h2>
<table><tr><th>Beitrag</th><th>Zeitraum</th><th>Zinssatz</th><th class="num">Betrag</th></tr>
{% for i in r.interest %}{% for p in i.periods %}<tr><td>{{ i.premium_id }}</td>
<td>{{ p["from"] }} – {{ p["to"] }}</td>
<td>{{ p.rate_percent }} % ({{ i.margin }})</td><td class="num">{{ p.cents | eur }}</td></tr>
{% endfor %}{% if i.already_booked_cents %}<tr><td>{{ i.premium_id }}</td>
<td colspan="2">davon bereits mit der Mahnung geltend gemacht (in den Kosten bzw. bezahlt)</td>
<td class="num">-{{ i.already_booked_cents | eur }}</td></tr>{% endif %}{% endfor %}</table>
{% if r.flat_fee %}<h2>Verzugspauschale (Nebenforderung)</h2>
<table><tr><th>Posten</th><th class="num">Betrag</th></tr>
<tr><td>{{ r.flat_fee.label }}</td><td class="num">{{ r.flat_fee.amount_cents | eur }}</td></tr></table>{% endif %}
<h2>Kosten</h2>
<table><tr><th>Posten</th><th class="num">Betrag</th></tr>
{% for c in r.costs %}<tr><td>{{ c.label }}</td><td class="num">{{ c.amount_cents | eur }}</td></tr>{% endfor %}
<tr><td>Gerichtskosten (Schätzung, GKG Nr. 1100)</td><td class="num">{{ r.court_fee_estimate_cents | eur }}</td></tr>
</table>
<p><strong>Geltend gemacht (Hauptforderung und Kosten): {{ r.claimed_cents | eur }}</strong></p>
<p class="muted">Erstellt {{ r.prepared_at }}. Dieser Entwurf wird von einer Person geprüft und freigegeben,
bevor der Antrag in maschinenlesbarer Form eingereicht wird.</p>
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True))
_env.filters["eur"] = format_eur


def application_pdf(record: dict[str, object]) -> bytes:
    import weasyprint  # heavy; only the court application pays for it

    html = _env.from_string(APPLICATION_HTML).render(r=record)
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    pdf = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)


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
