"""Metrics and logs for operations: Prometheus business counters, JSON logs without personal data.

Business counters are counted where the work is done, never in workflow code (workflows replay):
in the worker, by an activity interceptor that looks at each activity's input and result after it
succeeded; in the web app, where payments come in. Case counts by stage come from Temporal's
visibility (the `DunningStage` search attribute) when /metrics is scraped. The SDK's own runtime
metrics (task latencies, pollers, sticky cache …) are served by the worker's Temporal runtime.

Counts are "at least once": an activity whose completion is lost is run again and counted again.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from prometheus_client import Counter, Gauge
from pythonjsonlogger.json import JsonFormatter
from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from core.steps import STAGE_OF_ACTIVITY, STAGE_OF_CLOSE_ACTION, STAGE_OF_MESSAGE, StepKind, stage_after
from models.activities import CaseClosed, ChangeContractStatus, CloseCase, SendMessage
from models.case import PaymentResult
from models.ledger import ContractStatus

PAYMENTS = Counter("dunning_payments", "Payments booked (new bookings only)", ["source"])
PAYMENT_CENTS = Counter("dunning_payment_cents", "Sum of newly booked payments in cents", ["source"])
REACTIVATIONS = Counter("dunning_reactivations", "Contracts reactivated (suspended → active)")
SUSPENSIONS = Counter("dunning_suspensions", "Contracts whose cover was suspended")
MESSAGES = Counter("dunning_messages", "Messages stored for sending", ["kind", "channel"])
STAGE_ENTRIES = Counter("dunning_case_stage_entries", "Cases that reached a stage", ["stage"])
CASES = Gauge("dunning_cases", "Running dunning cases by stage (Temporal visibility, at scrape)", ["stage"])

# Which finished activity means a case reached which stage (the stage change itself happens in the
# workflow right after the activity returns): from the catalogue (core/steps.py).
_SUSPENDED = stage_after(StepKind.SUSPEND_COVER)


def payment_booked(source: str, result: PaymentResult) -> None:
    """Count a booking once: a repeated reference (`booked=False`) changed nothing."""
    if result.booked:
        PAYMENTS.labels(source=source).inc()
        PAYMENT_CENTS.labels(source=source).inc(result.allocated_cents + result.credit_cents)


def count_activity(name: str, args: list[Any], result: Any) -> None:
    """Business counters from one successful activity run (its name, input and result)."""
    request = args[0] if args else None
    if name == "change_contract_status" and isinstance(request, ChangeContractStatus) and result is True:
        if request.to_status == ContractStatus.ACTIVE:
            REACTIVATIONS.inc()
        elif request.to_status == ContractStatus.SUSPENDED:
            SUSPENSIONS.inc()
            STAGE_ENTRIES.labels(stage=_SUSPENDED.value).inc()
    elif name == "book_payment" and isinstance(result, PaymentResult):
        payment_booked(getattr(request, "source", "case"), result)
    elif name == "send_message" and isinstance(request, SendMessage):
        channel = getattr(result, "channel", None)
        MESSAGES.labels(kind=request.kind.value, channel=str(getattr(channel, "value", channel))).inc()
        if request.kind in STAGE_OF_MESSAGE:
            STAGE_ENTRIES.labels(stage=STAGE_OF_MESSAGE[request.kind].value).inc()
    elif name == "close_case" and isinstance(request, CloseCase) and request.action in STAGE_OF_CLOSE_ACTION:
        if isinstance(result, CaseClosed) and result.closed_now:  # a repeated closing is counted once
            STAGE_ENTRIES.labels(stage=STAGE_OF_CLOSE_ACTION[request.action].value).inc()
    elif name in STAGE_OF_ACTIVITY:
        STAGE_ENTRIES.labels(stage=STAGE_OF_ACTIVITY[name].value).inc()


class _CountingActivities(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        try:
            count_activity(activity.info().activity_type, list(input.args), result)
        except Exception:  # noqa: BLE001 — a metrics bug must never fail a booking
            logging.getLogger(__name__).exception("counting activity %s failed", activity.info().activity_type)
        return result


class MetricsInterceptor(Interceptor):
    """Worker interceptor: counts business events from finished activities."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountingActivities(next)


def sdk_runtime(port: int, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime that serves the SDK's metrics for Prometheus on `host`:`port` (the internal
    interface: settings.metrics_host)."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


# --- logs ------------------------------------------------------------------------------------

# Secrets in request lines and headers (issue #12): whoever reads a log must not be able to pay, confirm,
# unsubscribe, step up or act as a signed-in person. The segment after /pay/, /p/, /verify/, /campaign/<kind>/ and
# /testpay/checkout/ is a token or link id, after /codec/t/ the dev UI's codec token (web/internal/codec.py);
# the cookie and query values below are sessions or tokens.
_SECRET_PATH = re.compile(
    r"((?<!/portal)/(?:pay|p|verify)/|/campaign/[\w-]+/|/testpay/checkout/|/codec/t/)[^/?#\s\"']+"
)
_SECRET_VALUE = re.compile(
    r"\b((?:dunning_session|dunning_portal|agent_session|csrf|csrf_token|session|session_id|checkout)=)[^;&\s\"',]+"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_PHONE = re.compile(r"(?<![\w-])(?:(?:\+|00)\d{2}[\d /]{6,}\d|0\d{2,5}[ /]?\d{5,})\b")


def redact_secrets(text: str) -> str:
    """Replace pay tokens, link ids, session ids and CSRF values in paths, cookies and queries with …"""
    return _SECRET_VALUE.sub(r"\1…", _SECRET_PATH.sub(r"\1…", text))


def redact(text: str) -> str:
    """Mask secrets (above), e-mail addresses, IBANs and phone numbers (defence in depth: the code
    logs ids only)."""
    return _PHONE.sub("[phone]", _IBAN.sub("[iban]", _EMAIL.sub("[email]", redact_secrets(text))))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class SecretRedactingFilter(logging.Filter):
    """For uvicorn's access log: redacts secrets in the message and in each argument, keeping the
    arguments (uvicorn's AccessFormatter reads them one by one: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_secrets(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


ACCESS_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_access_logs() -> None:
    """Attach the secret filter to uvicorn's loggers (once). A logger's own filter applies whichever
    handler writes the record: uvicorn's default ones (text) or ours (configure_logging, JSON)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretRedactingFilter) for f in logger.filters):
            logger.addFilter(SecretRedactingFilter())


def configure_logging(service: str, level: int = logging.INFO) -> None:
    """One JSON object per line on stderr: time, level, logger, message, service and whatever the
    Temporal SDK adds (workflow/activity ids, never payloads)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # one INFO line per layout step otherwise
    logging.getLogger("fontTools").setLevel(logging.WARNING)
