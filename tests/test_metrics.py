"""Operations: the Prometheus endpoint shows the business counters after a payment (counted once),
JSON logs mask personal data, and the cluster settings become the right connection options."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from infra.cluster import connect_options
from infra.config import Settings
from infra.observability import configure_logging, count_activity, redact
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import CloseCase
from models.case import CaseStage
from models.ledger import ContractStatus
from tests.conftest import seed_contract
from tests.helpers import berlin_today, contract_status, open_case
from web.app import create_metrics_app
from web.deps import AppContext

CONTRACT = "K-METRICS-1"


async def scrape(ctx: AppContext) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics on the metrics app (its own port; the same process' counters as the other apps)."""
    app = create_metrics_app(ctx)
    app.state.ctx = ctx
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metrics.test") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_endpoint_counts_a_payment_and_the_reactivation_once(
    time_env: WorkflowEnvironment, api: httpx.AsyncClient, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, CONTRACT, premiums=[("M-P1", today - timedelta(days=1), 4_200)])
    with session_scope(engine) as session:  # the notice deadline has passed: cover is suspended
        service.set_contract_status(
            session,
            contract_number=CONTRACT,
            to_status=ContractStatus.SUSPENDED,
            reason="deadline passed",
            key="test-suspend",
            at=datetime.now(UTC),
        )
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "M-P1")
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    before = await scrape(ctx)

    event = {
        "type": "payment_received",
        "event_id": "metrics-1",
        "contract_number": CONTRACT,
        "payment_ref": "M-REF-1",
        "amount_cents": 4_200,
    }
    assert (await api.post("/api/ledger/events", json=event)).status_code == 200
    assert (await api.post("/api/ledger/events", json=event)).json()["duplicate"] is True  # same event again
    again = {**event, "event_id": "metrics-2"}  # same payment under a new event id: booked once only
    assert (await api.post("/api/ledger/events", json=again)).json()["result"]["booked"] is False
    assert (await handle.result()).stage == CaseStage.PAID
    assert contract_status(engine, CONTRACT) == "active"

    after = await scrape(ctx)
    assert (
        value(after, "dunning_payments_total", source="ledger")
        - value(before, "dunning_payments_total", source="ledger")
        == 1
    )
    assert (
        value(after, "dunning_payment_cents_total", source="ledger")
        - value(before, "dunning_payment_cents_total", source="ledger")
        == 4_200
    )
    assert value(after, "dunning_reactivations_total") - value(before, "dunning_reactivations_total") == 1
    assert (
        value(after, "dunning_case_stage_entries_total", stage="paid")
        - value(before, "dunning_case_stage_entries_total", stage="paid")
        == 1
    )
    assert "erika" not in (await api.get("/metrics")).text.lower()  # counts only, no personal data


def test_a_case_closed_twice_is_counted_once(engine: Engine) -> None:
    """A local activity runs again when its workflow task is retried (an update arriving while the case
    completes): the second closing changes nothing in the ledger and counts nothing."""
    seed_contract(engine, "K-METRICS-2", premiums=[("M-P2", date(2026, 11, 1), 1_000)])
    ledger = LedgerActivities(engine)
    request = CloseCase(
        case_id="dunning-K-METRICS-2/20261101T000000",
        contract_number="K-METRICS-2",
        action="paid",
        reason="paid",
        now=datetime(2026, 11, 20, tzinfo=UTC),
        as_of=date(2026, 11, 20),
        stage="reminded",
    )

    def paid() -> float:
        return REGISTRY.get_sample_value("dunning_case_stage_entries_total", {"stage": "paid"}) or 0.0

    before = paid()
    first, again = ledger.close_case(request), ledger.close_case(request)
    for result in (first, again):
        count_activity("close_case", [request], result)
    assert (first.closed_now, again.closed_now) == (True, False)
    assert paid() - before == 1


def test_json_logs_mask_personal_data(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("test")
        logging.getLogger("demo").info("reminder for %s sent to %s", "K-1001", "erika@example.org")
        logging.getLogger("demo").info("IBAN DE02 1203 0000 0000 2020 51, phone +49 151 12345678")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        root.handlers, root.level = saved
    assert [(line["level"], line["logger"], line["service"]) for line in lines] == [
        ("INFO", "demo", "test"),
        ("INFO", "demo", "test"),
    ]
    assert lines[0]["message"] == "reminder for K-1001 sent to [email]"
    assert lines[1]["message"] == "IBAN [iban], phone [phone]"
    assert "time" in lines[0]


def test_redaction_leaves_ids_dates_and_amounts_alone() -> None:
    text = "case dunning-K-1001/2026-11-22T06:00:00Z: 12150 cents, premium P-1, event 2026-11-22"
    assert redact(text) == text


def test_cluster_settings_become_tls_and_api_key_options(tmp_path: Path) -> None:
    assert connect_options(Settings(data_dir=tmp_path)) == {}
    cloud = connect_options(Settings(data_dir=tmp_path, temporal_api_key=SecretStr("key-123")))
    assert cloud == {"tls": True, "api_key": "key-123"}
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    mtls = connect_options(Settings(data_dir=tmp_path, temporal_tls_cert=str(cert), temporal_tls_key=str(key)))
    tls = mtls["tls"]
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (b"CERT", b"KEY", None)
    with pytest.raises(ValueError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"):
        connect_options(Settings(data_dir=tmp_path, temporal_tls_cert=str(cert)))
    with pytest.raises(ValueError, match="no such file"):
        connect_options(Settings(data_dir=tmp_path, temporal_tls_cert="/nope.pem", temporal_tls_key=str(key)))
