"""Who may use the codec endpoint (issue #12): it always authenticates, and where a request comes from
is never an identity. Through the real internal app (policy check, browser protections): signed-in
staff, API clients with scope codec and the codec token decode; anonymous callers — also on loopback —,
agents, other scopes and the public app do not. The dev server's Temporal UI (`make run`) sends the
codec token inside its endpoint URL (web/internal/codec.py, DevUiCodecUrl)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from infra.config import Settings
from infra.crypto.codec import EncryptionCodec, configured_keys
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent
from tests.apps import signed_in_as
from web import serve
from web.app import create_internal_app, create_public_app
from web.auth import accounts
from web.auth.principal import Principal
from web.deps import AppContext
from web.internal.codec import DevUiCodecUrl, dev_ui_endpoint

UI = "http://127.0.0.1:8233"
SECRET = "Erika Mustermann, DE89370400440532013000"
CODEC_TOKEN = "codec-token-for-these-tests-0123456789"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def as_json(payload: Payload) -> dict[str, object]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
                "data": base64.b64encode(payload.data).decode(),
            }
        ]
    }


class Installation:
    """One installation's settings, ledger and internal app, with nobody signed in unless a test says so."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.settings = Settings.model_validate({"data_dir": tmp_path, "temporal_ui_url": UI, **settings})
        self.engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        migrate(str(self.engine.url))
        self.ctx = AppContext(self.engine, cast(Client, None), self.settings, cast(Inbound, None))

    def app(self, who: Principal | None | str = "real") -> FastAPI:
        app = create_internal_app(self.ctx)
        app.state.ctx = self.ctx
        if not isinstance(who, str):
            signed_in_as(app, who)
        return app

    def client(self, app: ASGIApp, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(client_host, 50_000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8001")

    async def sealed(self) -> dict[str, object]:
        [payload] = await EncryptionCodec(configured_keys(self.settings)).encode([plain(SECRET)])
        return as_json(payload)

    def api_client(self, name: str, *scopes: str) -> str:
        with session_scope(self.engine) as session:
            return accounts.create_client(session, name, scopes, created_by="test")

    def audit_rows(self) -> int:
        with session_scope(self.engine) as session:
            return len(session.exec(select(AuditEvent)).all())


def decoded(response: httpx.Response) -> str:
    return base64.b64decode(response.json()["payloads"][0]["data"]).decode()


@pytest.mark.parametrize("client_host", ["127.0.0.1", "::1", "10.0.0.7"])
async def test_an_anonymous_caller_is_refused_even_on_loopback(tmp_path: Path, client_host: str) -> None:
    here = Installation(tmp_path)
    async with here.client(here.app(), client_host) as http:
        refused = await http.post("/codec/decode", json=await here.sealed())

    assert refused.status_code == 401 and "Bearer" in refused.json()["detail"]
    assert "Mustermann" not in refused.text
    assert here.audit_rows() == 0


ROLES = {
    "viewer": (frozenset({"viewer"}), 200),
    "clerk": (frozenset({"clerk"}), 200),
    "agent": (frozenset({"agent"}), 403),
    "marketing": (frozenset({"marketing"}), 403),
}


@pytest.mark.parametrize("roles,expected", ROLES.values(), ids=ROLES.keys())
async def test_signed_in_staff_decode_agents_and_marketing_do_not(
    tmp_path: Path, roles: frozenset[str], expected: int
) -> None:
    here = Installation(tmp_path)
    who = Principal(kind="agent" if "agent" in roles else "person", name="mia", roles=roles, via="session")
    async with here.client(here.app(who)) as http:
        answer = await http.post("/codec/decode", json=await here.sealed())

    assert answer.status_code == expected
    assert (SECRET in decoded(answer)) if expected == 200 else ("Mustermann" not in answer.text)


async def test_an_api_client_needs_the_codec_scope(tmp_path: Path) -> None:
    here = Installation(tmp_path)
    codec_client = here.api_client("temporal-cli", "codec")
    ledger_client = here.api_client("billing", "ledger:read")
    async with here.client(here.app()) as http:
        allowed = await http.post(
            "/codec/decode", json=await here.sealed(), headers={"Authorization": f"Bearer {codec_client}"}
        )
        other_scope = await http.post(
            "/codec/decode", json=await here.sealed(), headers={"Authorization": f"Bearer {ledger_client}"}
        )
        forged = await http.post(
            "/codec/decode", json=await here.sealed(), headers={"Authorization": f"Bearer {codec_client}x"}
        )

    assert allowed.status_code == 200 and decoded(allowed) == f'"{SECRET}"'
    assert other_scope.status_code == 403 and "Mustermann" not in other_scope.text
    assert forged.status_code == 401 and "Mustermann" not in forged.text


async def test_the_codec_token_opens_the_codec_and_nothing_else(tmp_path: Path) -> None:
    here = Installation(tmp_path, codec_token=CODEC_TOKEN)
    bearer = {"Authorization": f"Bearer {CODEC_TOKEN}"}
    async with here.client(here.app()) as http:
        answered = await http.post("/codec/decode", json=await here.sealed(), headers=bearer)
        wrong = await http.post(
            "/codec/decode", json=await here.sealed(), headers={"Authorization": f"Bearer {CODEC_TOKEN[:-1]}"}
        )
        elsewhere = await http.get("/api/plans", headers=bearer)

    assert answered.status_code == 200 and SECRET in decoded(answered)
    assert wrong.status_code == 401 and "Mustermann" not in wrong.text
    assert elsewhere.status_code == 401


async def test_development_generates_a_codec_token_production_has_none_unless_set(tmp_path: Path) -> None:
    development = Settings.model_validate({"data_dir": tmp_path / "dev"})
    production = Settings.model_validate({"data_dir": tmp_path / "prod", "environment": "production"})
    configured = Settings.model_validate(
        {"data_dir": tmp_path / "prod", "environment": "production", "codec_token": CODEC_TOKEN}
    )

    assert len(development.codec_token.get_secret_value()) >= 32
    assert production.codec_token.get_secret_value() == ""
    assert configured.codec_token.get_secret_value() == CODEC_TOKEN
    here = Installation(tmp_path / "prod", environment="production")
    async with here.client(here.app()) as http:
        empty = await http.post("/codec/decode", json=await here.sealed(), headers={"Authorization": "Bearer "})
    assert empty.status_code == 401


async def test_the_dev_ui_s_endpoint_url_carries_the_token_and_is_answered_with_cors(tmp_path: Path) -> None:
    here = Installation(tmp_path)
    token = here.settings.codec_token.get_secret_value()
    endpoint = dev_ui_endpoint(here.settings)
    assert endpoint == f"{here.settings.internal_base_url}/codec/t/{token}"
    path = httpx.URL(endpoint).path
    app = DevUiCodecUrl(here.app())
    # What the UI sends: a preflight, then the POST to <endpoint>/decode?preserveStorageRefs=true.
    preflight = {
        "Origin": UI,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    sent = {"Origin": UI, "X-Namespace": "default"}
    async with here.client(app) as http:
        checked = await http.options(f"{path}/decode?preserveStorageRefs=true", headers=preflight)
        answered = await http.post(f"{path}/decode?preserveStorageRefs=true", json=await here.sealed(), headers=sent)
        wrong = await http.post(f"/codec/t/{'A' * 43}/decode", json=await here.sealed(), headers=sent)

    assert checked.status_code == 204 and checked.headers["access-control-allow-origin"] == UI
    assert answered.status_code == 200 and SECRET in decoded(answered)
    assert answered.headers["access-control-allow-origin"] == UI
    assert wrong.status_code == 401 and "Mustermann" not in wrong.text


async def test_the_dev_url_token_moves_into_the_header_before_routing_and_logging() -> None:
    seen: list[Scope] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": f"/codec/t/{CODEC_TOKEN}/encode",
        "raw_path": f"/codec/t/{CODEC_TOKEN}/encode".encode(),
        "query_string": b"preserveStorageRefs=true",
        "headers": [(b"authorization", b"Bearer someone-else"), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    await DevUiCodecUrl(spy)(scope, receive, send)

    assert seen == [scope]  # the same scope object: uvicorn's access log reads this one
    assert scope["path"] == "/codec/encode" and CODEC_TOKEN.encode() not in scope["raw_path"]
    assert [v for k, v in scope["headers"] if k == b"authorization"] == [f"Bearer {CODEC_TOKEN}".encode()]


async def test_the_public_app_has_no_codec(tmp_path: Path) -> None:
    here = Installation(tmp_path, codec_token=CODEC_TOKEN)
    public = create_public_app(here.ctx)
    public.state.ctx = here.ctx
    async with here.client(public) as http:
        answer = await http.post(
            "/codec/decode", json=await here.sealed(), headers={"Authorization": f"Bearer {CODEC_TOKEN}"}
        )
    assert answer.status_code == 404 and "Mustermann" not in answer.text


def test_make_run_serves_the_dev_url_production_does_not(tmp_path: Path) -> None:
    development = Settings.model_validate({"data_dir": tmp_path, "web_metrics_port": 0})
    production = Settings.model_validate(
        {"data_dir": tmp_path, "environment": "production", "internal_host": "10.0.0.5", "metrics_host": "10.0.0.5"}
    )

    in_development = {s.name: s for s in serve.served(development)}
    in_production = {s.name: s for s in serve.served(production)}

    assert sorted(in_development) == ["internal", "public"]  # metrics port 0: off
    assert isinstance(in_development["internal"].app, DevUiCodecUrl)
    assert not isinstance(in_production["internal"].app, DevUiCodecUrl)
    assert (in_production["internal"].host, in_production["internal"].port) == ("10.0.0.5", 8001)
    assert (in_production["metrics"].host, in_production["metrics"].port) == ("10.0.0.5", 8002)
    assert (in_production["public"].host, in_production["public"].port) == ("127.0.0.1", 8000)
