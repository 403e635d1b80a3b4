"""Proof of dispatch and delivery per qualified notice, through the web app: facts are added
once, wrong input changes nothing, and the contract's notices list what proves each one."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine

from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.evidence import NoticeEvidence
from models.ledger import Message
from tests.conftest import seed_contract
from tests.test_pages import make_app

PDF = b"%PDF-1.7 the notice as printed"


def add_message(engine: Engine, kind: str, channel: str, created: datetime) -> int:
    with session_scope(engine) as session:
        contract = service.get_contract(session, "K-100001")
        message = Message(
            idempotency_key=f"case:{kind}:{channel}",
            case_id="dunning-K-100001/20261101T000000",
            contract_id=contract.id,
            channel=channel,
            kind=kind,
            recipient="Erika Mustermann\nHeidestraße 17\n51147 Köln",
            body_text="Mahnung",
            pdf=PDF if channel == "letter" else None,
            total_cents=10_150,
            created_at=created,
        )
        session.add(message)
        session.flush()
        assert message.id is not None
        return message.id


@pytest_asyncio.fixture
async def api(engine: Engine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    seed_contract(engine, premiums=[])
    app, _ = make_app(engine, settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client


def facts(engine: Engine) -> int:
    with session_scope(engine) as session:
        return service.count_rows(session, NoticeEvidence)


async def test_dispatch_and_delivery_are_recorded_once_and_listed_per_notice(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    created = datetime.now(UTC) - timedelta(days=3)
    letter = add_message(engine, "qualified_notice", "letter", created)
    add_message(engine, "reminder", "email", created)  # not a notice: not listed
    posted = {
        "kind": "dispatched",
        "at": (created + timedelta(hours=5)).isoformat(),
        "source": "print-service",
        "reference": "job-4711",
        "recorded_by": "print-api",
    }
    first = await api.post(f"/api/messages/{letter}/evidence", json=posted)
    again = await api.post(f"/api/messages/{letter}/evidence", json=posted)
    assert (first.status_code, first.json()["created"]) == (200, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    delivered = posted | {"kind": "delivered", "source": "post", "reference": "RR123456789DE"}
    delivered["at"] = (created + timedelta(days=2)).isoformat()
    assert (await api.post(f"/api/messages/{letter}/evidence", json=delivered)).status_code == 200

    notices = (await api.get("/api/contracts/K-100001/notices")).json()
    assert len(notices) == 1
    notice = notices[0]
    assert (notice["message_id"], notice["channel"], notice["total_cents"]) == (letter, "letter", 10_150)
    assert notice["content_sha256"] == hashlib.sha256(PDF).hexdigest()  # exactly what was printed
    assert notice["proven"] == "delivered"
    assert [(e["kind"], e["reference"]) for e in notice["evidence"]] == [
        ("dispatched", "job-4711"),
        ("delivered", "RR123456789DE"),
    ]


async def test_wrong_evidence_is_refused_and_changes_nothing(api: httpx.AsyncClient, engine: Engine) -> None:
    created = datetime.now(UTC) - timedelta(days=1)
    letter = add_message(engine, "qualified_notice", "letter", created)
    reminder = add_message(engine, "reminder", "letter", created)
    good = {"kind": "dispatched", "at": created.isoformat(), "source": "post", "recorded_by": "mia"}
    cases = [
        (f"/api/messages/{reminder}/evidence", good, 422, "not a qualified notice"),
        ("/api/messages/999999/evidence", good, 404, "message 999999 not found"),
        (f"/api/messages/{letter}/evidence", good | {"at": "2026-11-01T10:00:00"}, 422, "timezone"),
        (f"/api/messages/{letter}/evidence", good | {"at": (created - timedelta(days=1)).isoformat()}, 422, "before"),
        (
            f"/api/messages/{letter}/evidence",
            good | {"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            422,
            "in the future",
        ),
        (f"/api/messages/{letter}/evidence", good | {"source": "pigeon"}, 422, "source"),
        (f"/api/messages/{letter}/evidence", good | {"recorded_by": ""}, 422, "recorded_by"),
    ]
    for url, body, status, text in cases:
        response = await api.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        assert text in response.text, (text, response.text)
    assert facts(engine) == 0
    notices = (await api.get("/api/contracts/K-100001/notices")).json()
    assert [n["proven"] for n in notices] == ["none"]
    assert (await api.get("/api/contracts/K-404/notices")).status_code == 404
