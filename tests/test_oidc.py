"""Staff sign in with OpenID Connect (issue #12, item 2): the real internal app and Authlib's client
against the local OpenID Connect provider (dev/fakes/oidc.py) on a real port — real RS256 ID tokens, JWKS,
PKCE S256, state and nonce. Every refusal is checked for its status AND that no session was started."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select
from starlette.requests import Request
from temporalio.client import Client

from dev.fakes.oidc import FakeOidc, OidcUser, new_key, start
from infra.config import GENERATED_SECRETS, SECRETS_FILE, Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.auth import StaffSession
from web.app import create_internal_app
from web.auth import jwt_tokens, oidc
from web.auth.jwt_tokens import TokenRefused, codec_user_token_verifier, verify_user_access_token
from web.auth.oidc import PendingSignIn, pending_cookie, seal
from web.auth.sessions import COOKIE
from web.deps import AppContext

BASE = "http://internal.test"
CLIENT_ID, CLIENT_SECRET = "dunning-web", "web-client-secret-for-tests"
CALLBACK = f"{BASE}/auth/oidc/callback"


@pytest.fixture
def provider() -> Iterator[FakeOidc]:
    jwt_tokens.reset_caches()  # a port reused from an earlier test must not meet its cached keys
    state = FakeOidc(user=OidcUser(roles=["clerk", "wiki-editor"]))  # wiki-editor: another application's role
    state.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[CALLBACK])
    server, _ = start(state)
    yield state
    server.shutdown()
    server.server_close()
    jwt_tokens.reset_caches()


@pytest.fixture
def oidc_settings(settings: Settings, provider: FakeOidc) -> Settings:
    return settings.model_copy(
        update={
            "internal_base_url": BASE,
            "oidc_issuer": provider.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(CLIENT_SECRET),
            "oidc_access_token_audience": provider.access_token_audience,
        }
    )


def internal_app(engine: Engine, settings: Settings) -> FastAPI:
    """The real internal app, nobody signed in (no principal override)."""
    ctx = AppContext(engine, cast(Client, None), settings, cast(Inbound, None))
    app = create_internal_app(ctx)
    if not any(getattr(route, "path", "") == "/auth/oidc/login" for route in app.routes):
        app.include_router(oidc.router)  # until web/app.py lists the router itself
    app.state.ctx = ctx
    return app


@pytest.fixture
async def browser(engine: Engine, oidc_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the internal app: keeps cookies, does not follow redirects by itself."""
    app = internal_app(engine, oidc_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


def sessions(engine: Engine) -> list[StaffSession]:
    with session_scope(engine) as db:
        return list(db.exec(select(StaffSession)))


async def go_to_provider(browser: httpx.AsyncClient, next: str = "/outbox") -> str:
    """Start signing in; the provider (a real HTTP server) approves and answers with the callback URL."""
    login = await browser.get("/auth/oidc/login", params={"next": next})
    assert login.status_code == 302, login.text
    approved = httpx.get(login.headers["location"])  # the browser at the provider
    assert approved.status_code == 302, approved.text
    location = approved.headers["location"]
    assert location.startswith(CALLBACK)
    return location[len(BASE) :]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?{httpx.QueryParams(query)}"


def refused(answer: httpx.Response, status: int, words: str, engine: Engine) -> None:
    assert answer.status_code == status, answer.text
    assert words in answer.text
    assert COOKIE not in answer.cookies and sessions(engine) == []  # no session started


# --- the round trip --------------------------------------------------------------------------------


async def test_a_clerk_signs_in_at_the_provider_and_sees_staff_pages(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    assert (await browser.get("/outbox", headers={"Accept": "text/html"})).status_code in (303, 401)  # not yet

    login = await browser.get("/auth/oidc/login", params={"next": "/outbox"})
    authorize = urlsplit(login.headers["location"])
    asked = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{provider.issuer}/authorize"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["state"] and asked["nonce"] and asked["redirect_uri"] == CALLBACK
    assert "openid" in asked["scope"].split()

    approved = httpx.get(login.headers["location"])
    done = await browser.get(approved.headers["location"][len(BASE) :])

    assert done.status_code == 303 and done.headers["location"] == "/outbox"
    assert COOKIE in done.cookies
    page = await browser.get("/outbox", headers={"Accept": "text/html"})
    assert page.status_code == 200
    [row] = sessions(engine)
    assert (row.name, row.roles, row.source, row.subject) == ("clara.clerk@example.org", "clerk", "oidc", "user-1")
    assert ("POST", "/token") in provider.requests  # the code was exchanged (the provider checked the verifier)


async def test_a_next_address_on_another_site_is_not_followed(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    callback = await go_to_provider(browser, next="https://evil.example/phish")

    done = await browser.get(callback)

    assert done.status_code == 303 and done.headers["location"] == "/"
    assert len(sessions(engine)) == 1


async def test_roles_only_in_userinfo_are_read_from_there(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    provider.mangle_next_id_token(lambda claims: provider.sign({k: v for k, v in claims.items() if k != "roles"}))

    done = await browser.get(await go_to_provider(browser))

    assert done.status_code == 303
    assert [row.roles for row in sessions(engine)] == ["clerk"]
    assert ("GET", "/userinfo") in provider.requests


async def test_an_agent_signs_in_with_their_agent_code(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    provider.user = OidcUser(subject="agent-7", email="max.agent@example.org", roles="agent", agent_code="A-7")

    done = await browser.get(await go_to_provider(browser, next=""))

    assert done.status_code == 303 and done.headers["location"] == "/agents"
    [row] = sessions(engine)
    assert (row.roles, row.agent_code) == ("agent", "A-7")


# --- refusals --------------------------------------------------------------------------------------


async def test_a_callback_with_another_state_is_refused_before_the_code_is_used(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    callback = await go_to_provider(browser)

    answer = await browser.get(with_param(callback, state="forged-state"))

    refused(answer, 400, "state", engine)
    assert ("POST", "/token") not in provider.requests


async def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine, oidc_settings: Settings
) -> None:
    callback = await go_to_provider(browser)  # the attacker's sign-in …
    app = internal_app(engine, oidc_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as victim:
        answer = await victim.get(callback)  # … finished in the victim's browser (login CSRF)

    refused(answer, 400, "started in another browser", engine)


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda p, c: p.sign({**c, "nonce": "another-sign-in"}), "nonce"),
        (lambda p, c: p.sign({k: v for k, v in c.items() if k != "nonce"}), "nonce"),
        (lambda p, c: p.sign({**c, "aud": "another-client"}), "not meant for"),
        (lambda p, c: p.sign({**c, "iss": "https://evil.example"}), "another issuer"),
        (lambda p, c: p.sign({**c, "exp": c["iat"] - 3600, "iat": c["iat"] - 7200}), "expired"),
        (lambda p, c: p.sign({**c, "aud": [CLIENT_ID, "another-client"], "azp": "another-client"}), "azp"),
        (lambda p, c: p.sign(c, key=new_key()), "does not publish"),
        (lambda p, c: _tampered(p.sign(c), roles=["admin"]), "signature does not verify"),
    ],
    ids=[
        "other-nonce",
        "no-nonce",
        "other-audience",
        "other-issuer",
        "expired",
        "other-azp",
        "unknown-key",
        "tampered",
    ],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine, mangle: Any, words: str
) -> None:
    provider.mangle_next_id_token(lambda claims: mangle(provider, claims))

    answer = await browser.get(await go_to_provider(browser))

    refused(answer, 403, words, engine)


def _tampered(token: str, **claims: Any) -> str:
    """The same signature over a changed payload (a clerk making themselves admin)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


@pytest.mark.parametrize("verifier", ["", "a-verifier-that-is-not-the-one-the-challenge-was-made-from-0123"])
async def test_a_missing_or_wrong_pkce_verifier_is_refused_by_the_provider(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine, oidc_settings: Settings, verifier: str
) -> None:
    callback = await go_to_provider(browser)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    # The pending sign-in as it would be had the verifier been lost or swapped (signed with the real key).
    browser.cookies.set(pending_cookie(oidc_settings), seal(oidc_settings, PendingSignIn(state, "n", verifier, "/")))

    answer = await browser.get(callback)

    refused(answer, 403, "invalid_grant", engine)


def test_the_provider_redeems_a_code_only_with_its_verifier(provider: FakeOidc) -> None:
    verifier = "v" * 64
    approved = httpx.get(
        f"{provider.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": CALLBACK,
            "scope": "openid",
            "state": "s",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}

    without = httpx.post(f"{provider.issuer}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    again = httpx.post(
        f"{provider.issuer}/token", data=form | {"code_verifier": verifier}, auth=(CLIENT_ID, CLIENT_SECRET)
    )

    assert without.status_code == 400 and "code_verifier" in without.json()["error_description"]
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code is used once, even refused


async def test_a_person_without_a_known_role_is_refused_with_a_clear_page(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    provider.user = OidcUser(roles=["wiki-editor"])

    answer = await browser.get(await go_to_provider(browser))

    refused(answer, 403, "has no role in this application", engine)


async def test_an_agent_without_an_agent_code_is_refused(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    provider.user = OidcUser(roles=["agent"], agent_code=None)

    answer = await browser.get(await go_to_provider(browser))

    refused(answer, 403, "agent code", engine)


async def test_a_provider_that_declines_is_reported(
    browser: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    provider.user = None  # the person did not consent

    answer = await browser.get(await go_to_provider(browser))

    refused(answer, 403, "access_denied", engine)


async def test_without_oidc_configured_the_sign_in_start_says_so(engine: Engine, settings: Settings) -> None:
    app = internal_app(engine, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        answer = await http.get("/auth/oidc/login")

    assert answer.status_code == 404 and "OIDC_ISSUER" in answer.text


# --- claims -> roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        (["clerk", "supervisor", "wiki-editor"], {"clerk", "supervisor"}),
        ("clerk supervisor", {"clerk", "supervisor"}),
        ("finance,marketing", {"finance", "marketing"}),
        ("admin", {"admin"}),
        (42, set()),
        (None, set()),
    ],
)
def test_the_roles_claim_may_be_a_list_or_a_string_and_unknown_roles_are_ignored(value: Any, roles: set[str]) -> None:
    assert jwt_tokens.roles_in({"roles": value}, "roles") == roles


def test_a_nested_roles_claim_is_found_by_its_dotted_name() -> None:
    claims = {"realm_access": {"roles": ["viewer", "offline_access"]}}

    assert jwt_tokens.roles_in(claims, "realm_access.roles") == {"viewer"}


# --- the user's access token, forwarded by the Temporal UI to the codec ------------------------------


def user_access_token(provider: FakeOidc) -> str:
    verifier = "w" * 64
    approved = httpx.get(
        f"{provider.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": CALLBACK,
            "scope": "openid profile",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    return str(token.json()["access_token"])


def test_a_signed_in_users_access_token_is_a_person_with_their_roles(
    provider: FakeOidc, oidc_settings: Settings
) -> None:
    who = verify_user_access_token(user_access_token(provider), oidc_settings)

    assert (who.kind, who.name, who.roles, who.via) == ("person", "clara.clerk@example.org", {"clerk"}, "oidc-token")


def test_a_user_token_for_another_audience_is_refused(provider: FakeOidc, oidc_settings: Settings) -> None:
    token = user_access_token(provider)

    with pytest.raises(TokenRefused, match="not meant for"):
        verify_user_access_token(token, oidc_settings.model_copy(update={"oidc_access_token_audience": "temporal-ui"}))


def test_a_user_token_counts_on_the_codec_endpoint_only(provider: FakeOidc, oidc_settings: Settings) -> None:
    token = user_access_token(provider)
    app = FastAPI()
    app.state.ctx = AppContext(cast(Engine, None), cast(Client, None), oidc_settings, cast(Inbound, None))

    def request_for(path: str) -> Request:
        return Request({"type": "http", "method": "POST", "path": path, "headers": [], "app": app, "query_string": b""})

    on_codec = codec_user_token_verifier(request_for("/codec/decode"), token)
    elsewhere = codec_user_token_verifier(request_for("/api/contracts/K-1"), token)

    assert on_codec is not None and (on_codec.kind, on_codec.roles) == ("person", {"clerk"})
    assert elsewhere is None  # elsewhere a browser-held token does not replace a session


# --- the state secret ---------------------------------------------------------------------------------


def test_an_installation_from_before_gains_the_state_secret_and_keeps_its_others(tmp_path: Path) -> None:
    older = {name: f"{name}-value-from-an-earlier-version" for name in GENERATED_SECRETS if name != "oidc_state_secret"}
    path = tmp_path / SECRETS_FILE
    path.write_text(json.dumps(older))
    path.chmod(0o600)

    first, again = Settings(data_dir=tmp_path), Settings(data_dir=tmp_path)

    assert first.link_secret == older["link_secret"]
    assert len(first.oidc_state_secret) >= 32 and first.oidc_state_secret == again.oidc_state_secret
    assert json.loads(path.read_text())["oidc_state_secret"] == first.oidc_state_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
