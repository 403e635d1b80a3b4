"""Browser safety (issue #12, item 6; web/safety/): security headers, JSON-only model routes, CSRF
tokens on forms, rate limits, body size enforced while streaming, secrets kept out of access logs.

Each rule is shown on a small app built here (every kind of route side by side), and, where a real
route shows it, through the real public and internal apps (web.app factories) on a migrated ledger,
with Temporal replaced by a recorder. Refusals are checked for their status *and* that nothing was
written."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from core.tokens import PAY_LINK_SALT, sign
from infra.config import SECRETS_FILE, Settings
from infra.observability import SecretRedactingFilter, redact, redact_access_logs
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.ledger import PayLink, Payment
from models.ledger import TestPaySession as Checkout
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import form_post, hidden_fields
from web.deps import AppContext
from web.safety import CSRF_COOKIE, CSRF_FIELD, csrf_input, form_token, install

CONTRACT = "K-100001"
CSRF_HIDDEN = re.compile(r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


# --- a small app with every kind of route ------------------------------------------------------


class Thing(BaseModel):
    name: str


@dataclass
class Small:
    app: FastAPI
    written: list[str] = field(default_factory=list)

    def client(self, base_url: str = "http://test", ip: str = "203.0.113.7") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(ip, 4711)), base_url=base_url)


def small_app(settings: Settings, *, public: bool = True) -> Small:
    app = FastAPI()  # FastAPI's own /docs stay on here: their inline script is allowed by hash
    small = Small(app)

    @app.post("/api/things")
    def add_thing(thing: Thing) -> dict[str, bool]:
        small.written.append(f"json:{thing.name}")
        return {"ok": True}

    @app.post("/things/{name}/rename")  # a JSON route outside /api/ is JSON-only too
    def rename(name: str, thing: Thing) -> dict[str, bool]:
        small.written.append(f"rename:{name}:{thing.name}")
        return {"ok": True}

    @app.get("/things", response_class=HTMLResponse)
    def things_page(request: Request) -> str:
        return f'<form method="post" action="/things">{csrf_input(request)}<input name="name"></form>'

    @app.post("/things")
    def add_form(name: Annotated[str, Form()] = "") -> dict[str, bool]:
        small.written.append(f"form:{name}")
        return {"ok": True}

    @app.get("/upload", response_class=HTMLResponse)
    def upload_page(request: Request) -> str:
        return f'<form method="post" action="/upload" enctype="multipart/form-data">{csrf_input(request)}</form>'

    @app.post("/upload")
    async def upload(file: Annotated[UploadFile, File()]) -> dict[str, int]:
        content = await file.read()
        small.written.append(f"upload:{len(content)}")
        return {"bytes": len(content)}

    @app.post("/webhooks/provider")  # form-encoded and signed by the provider: no CSRF token
    async def provider_hook(request: Request) -> dict[str, bool]:
        form = await request.form()
        small.written.append(f"hook:{form.get('MessageStatus')}")
        return {"ok": True}

    @app.post("/api/bank/statements")  # raw body, the statement limit
    async def statement(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        small.written.append(f"statement:{size}")
        return {"bytes": size}

    @app.post("/raw/upload")  # raw body, the default limit; sent by an API client (bearer)
    async def raw(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        small.written.append(f"raw:{size}")
        return {"bytes": size}

    @app.get("/sign-in", response_class=HTMLResponse)
    def sign_in_page(request: Request) -> str:
        return f'<form method="post" action="/sign-in">{csrf_input(request)}<input name="password"></form>'

    @app.post("/sign-in")
    def sign_in(password: Annotated[str, Form()] = "") -> dict[str, bool]:
        small.written.append("sign-in")
        return {"ok": False}

    @app.get("/pay/{token}")
    def pay(token: str) -> dict[str, bool]:
        small.written.append("pay")
        return {"ok": True}

    install(app, settings, public=public)
    return small


def tight(settings: Settings, **update: Any) -> Settings:
    limits = {"max_body_bytes": 2048, "max_statement_bytes": 8192, "rate_limit_sign_in": "3/minute"}
    return settings.model_copy(update={**limits, **update})


# --- 1. security headers ------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers_and_hsts_only_when_the_apps_url_is_https(
    settings: Settings,
) -> None:
    plain = small_app(settings.model_copy(update={"public_base_url": "http://pay.example"}))
    secure = small_app(settings.model_copy(update={"public_base_url": "https://pay.example"}))
    internal_https = small_app(settings.model_copy(update={"internal_base_url": "https://staff.example"}), public=False)
    async with plain.client() as http, secure.client() as https, internal_https.client() as staff:
        page, missing, refused = await http.get("/things"), await http.get("/nowhere"), await http.post("/things")
        on_https = await https.get("/things")
        internal_page = await staff.get("/things")

    for response in (page, missing, refused, on_https, internal_page):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
    assert (missing.status_code, refused.status_code) == (404, 403)  # refusals carry them too
    assert "strict-transport-security" not in page.headers
    assert on_https.headers["strict-transport-security"] == "max-age=31536000"
    # The internal app decides by its own URL (the public one is http here).
    assert internal_page.headers["strict-transport-security"] == "max-age=31536000"


async def test_the_api_docs_allow_their_one_inline_script_by_hash_and_nothing_else_inline(settings: Settings) -> None:
    small = small_app(settings)
    async with small.client() as http:
        docs = await http.get("/docs")

    assert docs.status_code == 200
    scripts = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert scripts, "Swagger UI has an inline script"
    csp = docs.headers["content-security-policy"]
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "https://cdn.jsdelivr.net" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


# --- 2. JSON routes take JSON only --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"name": "forged"}'),  # a cross-site "simple" request: no preflight
        ("application/x-www-form-urlencoded", b"name=forged"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nforged\r\n--x--',
        ),
        (None, b'{"name": "forged"}'),
    ],
)
async def test_a_json_route_refuses_any_other_content_type_with_415_naming_the_expected_one_and_writes_nothing(
    settings: Settings, content_type: str | None, body: bytes
) -> None:
    small = small_app(settings)
    headers = {"content-type": content_type} if content_type else {}
    async with small.client() as http:
        api = await http.post("/api/things", content=body, headers=headers)
        page_route = await http.post("/things/a/rename", content=body, headers=headers)

    for response in (api, page_route):
        assert response.status_code == 415
        assert "accepts only Content-Type: application/json" in response.json()["detail"]
    assert small.written == []


async def test_a_json_route_takes_json_with_or_without_a_charset(settings: Settings) -> None:
    small = small_app(settings)
    async with small.client() as http:
        plain = await http.post("/api/things", json={"name": "a"})
        charset = await http.post(
            "/api/things", content=b'{"name": "b"}', headers={"content-type": "application/json; charset=utf-8"}
        )
        empty = await http.post("/api/things")  # no body at all: FastAPI names the missing field

    assert (plain.status_code, charset.status_code, empty.status_code) == (200, 200, 422)
    assert small.written == ["json:a", "json:b"]


# --- 3. CSRF ------------------------------------------------------------------------------------


async def test_a_form_posts_with_the_token_from_its_page_and_the_cookie_is_httponly_strict_and_secure_on_https(
    settings: Settings,
) -> None:
    small = small_app(settings.model_copy(update={"public_base_url": "https://pay.example"}))
    async with small.client(base_url="https://test") as http:
        page = await http.get("/things")
        posted = await form_post(http, "/things", "/things", {"name": "ok"})

    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" in cookie
    nonce = cookie.split(";", 1)[0].split("=", 1)[1]
    token = CSRF_HIDDEN.search(page.text)
    assert token is not None and token.group(1) == form_token(settings.csrf_secret, nonce, "")
    assert posted.status_code == 200, posted.text
    assert small.written == ["form:ok"]


async def test_the_cookie_is_not_secure_on_http_and_only_set_when_a_page_shows_a_form(settings: Settings) -> None:
    small = small_app(settings)
    async with small.client() as http:
        api = await http.post("/api/things", json={"name": "a"})
        page = await http.get("/things")

    assert "set-cookie" not in api.headers  # API clients get no cookies
    assert "Secure" not in page.headers["set-cookie"]


async def test_a_form_without_a_valid_csrf_token_is_refused_with_403_and_nothing_is_written(settings: Settings) -> None:
    small = small_app(settings)
    async with small.client() as http, small.client() as attacker:
        no_cookie = await http.post("/things", data={"name": "forged"})  # a cross-site form: no Strict cookie
        await http.get("/things")  # now the browser has the cookie
        no_field = await http.post("/things", data={"name": "forged"})
        wrong = await http.post("/things", data={"name": "forged", CSRF_FIELD: "0" * 64})
        theirs = hidden_fields((await attacker.get("/things")).text, "/things")  # a token for another cookie
        foreign = await http.post("/things", data={"name": "forged", **theirs})
        text_plain = await http.post("/things", content=b"name=forged", headers={"content-type": "text/plain"})
        bodyless = await http.post("/things")
        html = await http.post("/things", data={"name": "forged"}, headers={"accept": "text/html"})

    for response in (no_cookie, no_field, wrong, foreign, text_plain, bodyless):
        assert response.status_code == 403, response.text
        assert response.json()["detail"].startswith("CSRF check failed")
    assert "no csrf cookie" in no_cookie.json()["detail"]
    assert "has no csrf_token field" in no_field.json()["detail"]
    assert "does not belong to this browser session" in foreign.json()["detail"]
    assert (
        html.status_code == 403
        and "Reload the page" in html.text
        and html.headers["content-type"].startswith("text/html")
    )
    assert small.written == []


async def test_a_multipart_form_carries_its_token_and_the_file_reaches_the_handler_whole(settings: Settings) -> None:
    small = small_app(settings)
    content = b"<Document>" + b"x" * 1500 + b"</Document>"
    async with small.client() as http:
        refused = await http.post("/upload", files={"file": ("s.xml", content, "application/xml")})
        posted = await form_post(http, "/upload", "/upload", files={"file": ("s.xml", content, "application/xml")})

    assert refused.status_code == 403
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"bytes": len(content)}
    assert small.written == [f"upload:{len(content)}"]


async def test_a_malformed_form_is_refused_with_400_at_the_part_that_breaks_and_nothing_is_written(
    settings: Settings,
) -> None:
    small = small_app(settings)
    broken = b'--x\r\nContent-Disposition: form-data; name="file"; filename="s.xml"\r\n\x91bad header\r\n' + b"y" * 100
    async with small.client() as http:
        await http.get("/upload")  # the browser has its cookie
        response = await http.post(
            "/upload", content=broken, headers={"content-type": "multipart/form-data; boundary=x"}
        )

    assert response.status_code == 400 and response.json()["detail"].startswith("the form body cannot be read")
    assert small.written == []


async def test_on_the_internal_app_a_token_belongs_to_the_staff_session_it_was_shown_in(settings: Settings) -> None:
    small = small_app(settings, public=False)
    async with small.client() as http:
        http.cookies.set("dunning_session", "session-of-mia")
        fields = hidden_fields((await http.get("/things")).text, "/things")
        http.cookies.set("dunning_session", "session-of-someone-else")
        other_session = await http.post("/things", data={"name": "forged", **fields})
        http.cookies.set("dunning_session", "session-of-mia")
        same_session = await http.post("/things", data={"name": "ok", **fields})

    assert other_session.status_code == 403
    assert same_session.status_code == 200
    assert small.written == ["form:ok"]


async def test_signed_provider_webhooks_and_callers_with_credentials_need_no_csrf_token(settings: Settings) -> None:
    small = small_app(settings)
    async with small.client() as http:
        hook = await http.post("/webhooks/provider", data={"MessageStatus": "delivered"})
        bearer = await http.post(
            "/raw/upload", content=b"abc", headers={"authorization": "Bearer x", "content-type": "text/plain"}
        )

    assert (hook.status_code, bearer.status_code) == (200, 200)
    assert small.written == ["hook:delivered", "raw:3"]


# --- 4. rate limits -----------------------------------------------------------------------------


async def test_sign_in_attempts_beyond_the_limit_get_429_with_retry_after_and_never_reach_the_handler(
    settings: Settings,
) -> None:
    small = small_app(tight(settings))
    async with small.client() as http, small.client(ip="198.51.100.9") as elsewhere:
        answers = [await form_post(http, "/sign-in", "/sign-in", {"password": f"guess{i}"}) for i in range(4)]
        other_ip = await form_post(elsewhere, "/sign-in", "/sign-in", {"password": "mine"})
        form_page = await http.get("/sign-in")  # only POST counts for sign-in

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert "too many requests (POST /sign-in: at most 3 per 1 minute per client)" in answers[3].json()["detail"]
    assert answers[3].headers["x-frame-options"] == "DENY"
    assert other_ip.status_code == 200 and form_page.status_code == 200
    assert small.written == ["sign-in"] * 4  # three from the first address, one from the other


async def test_pay_links_are_limited_per_client(settings: Settings) -> None:
    small = small_app(settings.model_copy(update={"rate_limit_pay": "2/minute"}))
    async with small.client() as http:
        answers = [(await http.get(f"/pay/token-{i}")).status_code for i in range(3)]

    assert answers == [200, 200, 429]
    assert small.written == ["pay", "pay"]


def test_a_rate_limit_that_cannot_be_read_is_named_at_start(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"a rate limit reads like \"10/minute\".*got 'ten a minute'"):
        Settings(data_dir=settings.data_dir, rate_limit_pay="ten a minute")


# --- 5. request size ----------------------------------------------------------------------------


@dataclass
class Stream:
    """A request body that counts how much of it was taken."""

    chunks: int
    size: int = 1024
    taken: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.taken += 1
            yield b"x" * self.size


async def test_a_streamed_body_over_the_limit_is_refused_with_413_before_it_is_read_whole(settings: Settings) -> None:
    small = small_app(tight(settings))
    body = Stream(chunks=1000)  # 1 MB in 1 KiB chunks, no Content-Length (chunked)
    async with small.client() as http:
        response = await http.post("/raw/upload", content=body, headers={"authorization": "Bearer x"})

    assert response.status_code == 413
    assert response.json()["detail"].startswith("the request body must be at most 2048 bytes for /raw/upload")
    assert body.taken <= 4  # the third chunk crossed the limit; the rest was never asked for
    assert small.written == []


async def test_a_declared_content_length_over_the_limit_is_refused_without_reading(settings: Settings) -> None:
    small = small_app(tight(settings))
    async with small.client() as http:
        response = await http.post("/api/things", content=b"x" * 5000, headers={"content-type": "application/json"})

    assert response.status_code == 413 and "Content-Length says 5000" in response.json()["detail"]
    assert small.written == []


async def test_bank_statement_imports_have_their_own_larger_limit(settings: Settings) -> None:
    small = small_app(tight(settings))
    async with small.client() as http:
        fits = await http.post(
            "/api/bank/statements", content=Stream(chunks=6), headers={"content-type": "application/xml"}
        )
        too_big = await http.post(
            "/api/bank/statements", content=Stream(chunks=9), headers={"content-type": "application/xml"}
        )
        elsewhere = await http.post("/raw/upload", content=Stream(chunks=6), headers={"authorization": "Bearer x"})

    assert (fits.status_code, too_big.status_code, elsewhere.status_code) == (200, 413, 413)
    assert "at most 8192 bytes for /api/bank/statements" in too_big.json()["detail"]
    assert small.written == ["statement:6144"]


async def test_a_form_over_the_limit_is_refused_with_413_not_buffered_for_the_csrf_check(settings: Settings) -> None:
    small = small_app(tight(settings))
    body = Stream(chunks=1000)
    async with small.client() as http:
        await http.get("/things")
        response = await http.post(
            "/things", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )

    assert response.status_code == 413
    assert body.taken <= 4 and small.written == []


# --- 6. access logs -----------------------------------------------------------------------------


def uvicorn_access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn's httptools/h11 protocols log one."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:4711", "GET", path, "1.1", 200),
        None,
    )


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/pay/a1B2.c3D4e5_F6-g7/checkout", "/pay/…/checkout"),
        ("/p/Zr8kq2", "/p/…"),
        ("/campaign/confirm/eyJ0b2tlbiI.abc", "/campaign/confirm/…"),
        ("/campaign/unsubscribe/tok.sig?x=1", "/campaign/unsubscribe/…?x=1"),
        ("/pay/tok.sig/done?session=tps_0123456789abcdef01234567", "/pay/…/done?session=…"),
        ("/testpay/checkout/tps_0123456789abcdef01234567/pay", "/testpay/checkout/…/pay"),
        ("/verify/tok.sig/code", "/verify/…/code"),  # the portal's step-up (issue #14)
        ("/portal/pay/result?checkout=tps_0123456789abcdef01234567", "/portal/pay/result?checkout=…"),
        ("/contracts/K-1001", "/contracts/K-1001"),
    ],
)
def test_access_log_lines_show_no_pay_token_link_id_or_checkout_session(path: str, shown: str) -> None:
    record = uvicorn_access_record(path)

    assert SecretRedactingFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)

    assert line == f'203.0.113.7:4711 - "GET {shown} HTTP/1.1" 200 OK'


def test_session_and_csrf_cookie_values_are_redacted_wherever_they_are_logged() -> None:
    text = "cookie: dunning_session=Qm9i.secret; csrf=AAAAAAAAAAAAAAAA; theme=dark, csrf_token=ffff; dunning_portal=x1"

    assert redact(text) == "cookie: dunning_session=…; csrf=…; theme=dark, csrf_token=…; dunning_portal=…"


def test_install_puts_the_filter_on_uvicorns_access_logger_once(settings: Settings) -> None:
    small_app(settings)
    small_app(settings)
    redact_access_logs()

    filters = [f for f in logging.getLogger("uvicorn.access").filters if isinstance(f, SecretRedactingFilter)]
    assert len(filters) == 1


def test_the_filter_survives_uvicorns_logging_setup_and_what_its_access_logger_writes_is_redacted(
    settings: Settings,
) -> None:
    app = small_app(settings).app  # install() attaches the filter when the app is built
    uvicorn.Config(app, log_config=LOGGING_CONFIG)  # uvicorn configures its loggers (dictConfig) at start
    written: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(self.format(record))

    handler = Collect()
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:4711", "GET", "/pay/a1B2.c3D4/checkout", "1.1", 303)
    finally:
        access.removeHandler(handler)

    assert written == ['203.0.113.7:4711 - "GET /pay/…/checkout HTTP/1.1" 303 See Other']


# --- the CSRF secret ------------------------------------------------------------------------------


def test_an_older_secrets_file_without_the_csrf_secret_gains_one_and_keeps_the_others(settings: Settings) -> None:
    path = settings.data_dir / "older"
    path.mkdir()
    older = {"link_secret": "l" * 43, "testpay_webhook_secret": "t" * 43, "campaign_events_secret": "c" * 43}
    (path / SECRETS_FILE).write_text(json.dumps(older))

    first, again = Settings(data_dir=path), Settings(data_dir=path)

    stored = json.loads((path / SECRETS_FILE).read_text())
    assert first.link_secret == "l" * 43 and stored["link_secret"] == "l" * 43
    assert len(first.csrf_secret) >= 32 and stored["csrf_secret"] == first.csrf_secret == again.csrf_secret


# --- the real apps ------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Stands in for the Temporal client: records signals."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> Recorder:
        return self

    async def signal(self, signal: Any, arg: Any = None, **_: Any) -> None:
        self.calls.append((getattr(signal, "__name__", str(signal)), arg))


@dataclass
class RealApps:
    http: httpx.AsyncClient
    apps: BothApps
    engine: Engine
    settings: Settings


@pytest_asyncio.fixture
async def real(engine: Engine, settings: Settings) -> AsyncIterator[RealApps]:
    """Both apps from the web.app factories (as tests/apps.py builds them), with install() called on
    each as the factories will call it (a second call changes nothing)."""
    settings = settings.model_copy(
        update={"public_base_url": "http://test", "rate_limit_pay": "30/minute", "rate_limit_portal": "5/minute"}
    )
    seed_contract(engine, CONTRACT, premiums=[("P-1", datetime.now(UTC).date() - timedelta(days=20), 12_000)])
    client = cast(Client, Recorder())
    apps = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))
    install(apps.public, settings, public=True)
    install(apps.internal, settings, public=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://test") as http:
        yield RealApps(http, apps, engine, settings)


def add_pay_link(engine: Engine, settings: Settings) -> str:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        session.add(
            PayLink(
                token_id="tok-safety",
                case_id=f"dunning-{CONTRACT}/20260101T000000",
                contract_id=contract.id or 0,
                step="reminder",
                created_at=now - timedelta(days=1),
                expires_at=now + timedelta(days=30),
            )
        )
    return sign(settings.link_secret, PAY_LINK_SALT, "tok-safety")


def checkouts(engine: Engine) -> list[Checkout]:
    with session_scope(engine) as session:
        return list(session.exec(select(Checkout)))


async def test_the_real_pay_page_carries_a_token_and_its_form_is_refused_without_it(real: RealApps) -> None:
    token = add_pay_link(real.engine, real.settings)
    action = f"/pay/{token}/checkout"

    forged = await real.http.post(action, data={"amount": "10,00"})  # no cookie, no token
    page = await real.http.get(f"/pay/{token}")
    wrong = await real.http.post(action, data={"amount": "10,00", CSRF_FIELD: "f" * 64})
    assert checkouts(real.engine) == []
    posted = await form_post(real.http, f"/pay/{token}", action, {"amount": "10,00"})

    assert (forged.status_code, wrong.status_code) == (403, 403)
    assert CSRF_HIDDEN.search(page.text) and page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert posted.status_code == 303, posted.text
    assert [c.amount_cents for c in checkouts(real.engine)] == [1_000]


async def test_the_real_testpay_page_pays_only_with_its_token(real: RealApps) -> None:
    token = add_pay_link(real.engine, real.settings)
    checkout = await form_post(real.http, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "10,00"})
    page_url = checkout.headers["location"]
    session_id = page_url.rsplit("/", 1)[1]

    forged = await real.http.post(f"{page_url}/pay")
    assert [c.status for c in checkouts(real.engine)] == ["open"]
    paid = await form_post(real.http, page_url, f"/testpay/checkout/{session_id}/pay")

    assert forged.status_code == 403
    assert [c.status for c in checkouts(real.engine)] == ["paid"]
    assert paid.status_code in (303, 502)  # 502: the webhook has no merchant to reach in this test


async def test_one_click_unsubscribe_and_signed_webhooks_pass_without_a_csrf_token(real: RealApps) -> None:
    unsubscribe = await real.http.post(
        "/campaign/unsubscribe/forged",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    webhook = await real.http.post(
        "/webhooks/testpay", content=b'{"id": "evt_1"}', headers={"content-type": "application/json"}
    )

    assert unsubscribe.status_code == 404  # the handler judged the (forged) link: no CSRF refusal
    assert webhook.status_code == 400 and "signature" in webhook.text.lower()


async def test_the_real_ledger_api_refuses_a_cross_site_text_plain_payment_and_books_nothing(real: RealApps) -> None:
    event = {
        "type": "payment_received",
        "event_id": "evt-forged-1",
        "payment_ref": "forged-1",
        "contract_number": CONTRACT,
        "amount_cents": 12_000,
        "received_at": datetime.now(UTC).isoformat(),
    }
    response = await real.http.post(
        "/api/ledger/events", content=json.dumps(event).encode(), headers={"content-type": "text/plain"}
    )

    assert response.status_code == 415
    assert response.json()["detail"] == (
        "POST /api/ledger/events accepts only Content-Type: application/json, got text/plain"
    )
    with session_scope(real.engine) as session:
        assert list(session.exec(select(Payment))) == []


async def test_the_real_pay_links_are_rate_limited(real: RealApps) -> None:
    answers = [(await real.http.get("/p/unknown-link")).status_code for _ in range(31)]

    assert answers[:30] == [404] * 30 and answers[30] == 429


async def test_the_portals_actions_are_rate_limited_per_client(real: RealApps) -> None:
    """Messages, requests and uploads each reach a person: a flood is cut off before any handler."""
    answers = [(await real.http.post("/portal/messages", data={"text": "x"})).status_code for _ in range(6)]

    assert answers[:5] == [403] * 5 and answers[5] == 429  # (no CSRF token: refused anyway; then counted out)
    assert "retry-after" in {k.lower() for k in (await real.http.post("/portal/callback")).headers}


async def test_pages_need_no_inline_script_so_the_policy_breaks_none_of_them(real: RealApps) -> None:
    token = add_pay_link(real.engine, real.settings)
    pages = [f"/pay/{token}", "/", "/outbox", "/tasks", "/bank", f"/contracts/{CONTRACT}", "/sign-in"]
    for url in pages:
        response = await real.http.get(url, headers={"accept": "text/html"})
        assert response.status_code in (200, 303), (url, response.status_code)
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), url
        assert not re.search(r"\son[a-z]+\s*=", response.text), url  # no onclick= etc.
        assert "script-src 'self'" in response.headers["content-security-policy"]


async def test_the_internal_apps_api_docs_get_their_own_policy_with_the_inline_script_hashed(real: RealApps) -> None:
    docs = await real.http.get("/docs")

    assert docs.status_code == 200
    [script] = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
