"""Systems authenticate with OAuth2 client-credentials JWTs (issue #12, item 3): real RS256 tokens from
the local OpenID Connect provider (dev/fakes/oidc.py) on a real port, checked with PyJWT against its JWKS
(web/auth/jwt_tokens.py) — directly, and through the real internal app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client

from dev.fakes.oidc import FakeOidc, new_key, start
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.ledger import Contract
from web.app import create_internal_app
from web.auth import jwt_tokens, policy
from web.auth.jwt_tokens import InsufficientScope, TokenRefused, client_jwt_verifier, verify_client_token
from web.deps import AppContext

AUDIENCE = "dunning-api"


@pytest.fixture
def provider() -> Iterator[FakeOidc]:
    jwt_tokens.reset_caches()  # a port reused from an earlier test must not meet its cached keys
    state = FakeOidc(access_token_audience=AUDIENCE)
    state.add_client("billing", "billing-secret-for-tests", scopes=["ledger:write", "ledger:read"])
    server, _ = start(state)
    yield state
    server.shutdown()
    server.server_close()
    jwt_tokens.reset_caches()


@pytest.fixture
def jwt_settings(settings: Settings, provider: FakeOidc) -> Settings:
    return settings.model_copy(
        update={
            "api_jwt_issuer": provider.issuer,
            "api_jwt_audience": AUDIENCE,
            "api_jwt_jwks_url": f"{provider.issuer}/jwks",
        }
    )


def token_from_provider(provider: FakeOidc, scope: str) -> str:
    """A token as a system gets it: the client-credentials grant at the provider's token endpoint."""
    answer = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=("billing", "billing-secret-for-tests"),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_client_credentials_token_names_the_client_and_its_scopes(provider: FakeOidc, jwt_settings: Settings) -> None:
    who = verify_client_token(token_from_provider(provider, "ledger:write"), jwt_settings)

    assert (who.kind, who.name, who.scopes, who.via) == ("client", "billing", frozenset({"ledger:write"}), "jwt")
    jwt_tokens.require_scopes(who, "ledger:write")  # holds: no error


def test_a_token_without_the_needed_scope_is_reported_with_what_it_has(
    provider: FakeOidc, jwt_settings: Settings
) -> None:
    who = verify_client_token(token_from_provider(provider, "ledger:read"), jwt_settings)

    with pytest.raises(InsufficientScope) as refused:
        jwt_tokens.require_scopes(who, "ledger:write")
    assert refused.value.status == 403
    assert "ledger:write" in refused.value.reason and "it has: ledger:read" in refused.value.reason


def test_the_provider_refuses_a_scope_the_client_was_not_granted(provider: FakeOidc) -> None:
    answer = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "client_credentials", "scope": "bank:import"},
        auth=("billing", "billing-secret-for-tests"),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda p: p.client_credentials_token("billing", ["ledger:write"], exp=int(time.time()) - 3600), "expired"),
        (lambda p: p.client_credentials_token("billing", ["ledger:write"], aud="another-api"), "not meant for"),
        (
            lambda p: p.client_credentials_token("billing", ["ledger:write"], iss="https://evil.example"),
            "another issuer",
        ),
        (
            lambda p: p.client_credentials_token("billing", ["ledger:write"], iat=int(time.time()) + 3600),
            "not valid yet",
        ),
        (
            lambda p: p.client_credentials_token("billing", ["ledger:write"], exp=int(time.time()) + 30 * 24 * 3600),
            "more than 24 hours",
        ),
        # A key the provider never published (its own kid): unknown key.
        (lambda p: p.sign(_claims(p), key=new_key()), "does not publish"),
        # Another key pretending to be the provider's (the provider's kid): the signature fails.
        (lambda p: p.sign(_claims(p), key=_impostor(p)), "signature does not verify"),
        # alg none: no signature at all.
        (lambda p: f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': p.key.kid})}.{b64(_claims(p))}.", "alg 'none'"),
        # HS256 "signed" with the provider's public key as the HMAC secret (algorithm confusion).
        (lambda p: _hmac_with_public_key(p), "alg 'HS256'"),
        (lambda p: "not-a-jwt", "not a JWT"),
        (lambda p: p.sign({k: v for k, v in _claims(p).items() if k != "exp"}), "'exp'"),
    ],
    ids=[
        "expired",
        "other-audience",
        "other-issuer",
        "issued-in-the-future",
        "valid-for-a-month",
        "unknown-key",
        "impostor-key",
        "alg-none",
        "hs256-with-public-key",
        "garbage",
        "no-exp",
    ],
)
def test_a_forged_or_stale_token_is_refused_with_the_reason(
    provider: FakeOidc, jwt_settings: Settings, forge: Any, reason: str
) -> None:
    with pytest.raises(TokenRefused) as refused:
        verify_client_token(forge(provider), jwt_settings)
    assert refused.value.status == 401
    assert reason in refused.value.reason


def _claims(provider: FakeOidc) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": "billing",
        "scope": "ledger:write",
        "iat": now,
        "exp": now + 300,
    }


def _impostor(provider: FakeOidc) -> Any:
    impostor = new_key()
    impostor.kid = provider.key.kid
    return impostor


def _hmac_with_public_key(provider: FakeOidc) -> str:
    public = provider.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": provider.key.kid}
    signing_input = f"{b64(header)}.{b64(_claims(provider))}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_an_es256_token_from_a_published_ec_key_is_accepted(provider: FakeOidc, jwt_settings: Settings) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    provider.extra_jwks.append({**jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"})
    token = jwt.encode(_claims(provider), key, algorithm="ES256", headers={"kid": "ec-1"})

    who = verify_client_token(token, jwt_settings)

    assert (who.name, who.scopes) == ("billing", frozenset({"ledger:write"}))


def test_the_key_set_is_fetched_once_and_again_only_for_a_new_key_id(
    provider: FakeOidc, jwt_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_from_provider(provider, "ledger:write")
    for _ in range(20):
        verify_client_token(token, jwt_settings)
    assert provider.jwks_fetches() == 1  # no network call per request once cached

    # Half a minute later (the key cache's clock only), the provider signs with a new kid.
    later = time.monotonic() + jwt_tokens.JWKS_REFETCH_COOLDOWN_SECONDS + 1
    monkeypatch.setattr(jwt.jwks_client, "time", SimpleNamespace(monotonic=lambda: later))
    provider.rotate_key()
    verify_client_token(token_from_provider(provider, "ledger:write"), jwt_settings)
    assert provider.jwks_fetches() == 2  # one refetch for the unknown kid

    for _ in range(5):  # forged kids right after: the cooldown keeps them from reaching the provider
        with pytest.raises(TokenRefused):
            verify_client_token(provider.sign(_claims(provider), key=new_key()), jwt_settings)
    assert provider.jwks_fetches() == 2


# --- through the real internal app -----------------------------------------------------------------


@pytest.fixture
async def internal(
    engine: Engine, jwt_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The real internal app (no principal override) with the client-JWT check registered."""
    if client_jwt_verifier not in policy.BEARER_VERIFIERS:  # until web/app.py registers it itself
        monkeypatch.setattr(policy, "BEARER_VERIFIERS", [*policy.BEARER_VERIFIERS, client_jwt_verifier])
    ctx = AppContext(engine, cast(Client, None), jwt_settings, cast(Inbound, None))
    app: FastAPI = create_internal_app(ctx)
    app.state.ctx = ctx
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal.test") as http:
        yield http


CONTRACT = {"customer": {"customer_number": "C-1", "name": "Erika Mustermann"}, "product": "Hausrat"}


def contracts(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [c.contract_number for c in session.exec(select(Contract))]


async def test_a_system_with_ledger_write_may_put_a_contract(
    internal: httpx.AsyncClient, provider: FakeOidc, engine: Engine
) -> None:
    token = token_from_provider(provider, "ledger:write ledger:read")

    put = await internal.put("/api/contracts/K-1", json=CONTRACT, headers={"Authorization": f"Bearer {token}"})
    read = await internal.get("/api/contracts/K-1", headers={"Authorization": f"Bearer {token}"})

    assert put.status_code == 200, put.text
    assert read.status_code == 200 and read.json()["contract_number"] == "K-1"
    assert contracts(engine) == ["K-1"]


@pytest.mark.parametrize(
    ("make_token", "status", "reason"),
    [
        (lambda p: token_from_provider(p, "ledger:read"), 403, "needs"),
        (lambda p: p.client_credentials_token("billing", ["ledger:write"], exp=int(time.time()) - 600), 401, "expired"),
        (lambda p: p.client_credentials_token("billing", ["ledger:write"], aud="another-api"), 401, "not meant for"),
        (lambda p: p.sign(_claims(p), key=_impostor(p)), 401, "signature"),
    ],
    ids=["wrong-scope", "expired", "other-audience", "impostor-key"],
)
async def test_a_refused_token_writes_nothing_and_says_why(
    internal: httpx.AsyncClient, provider: FakeOidc, engine: Engine, make_token: Any, status: int, reason: str
) -> None:
    answer = await internal.put(
        "/api/contracts/K-2", json=CONTRACT, headers={"Authorization": f"Bearer {make_token(provider)}"}
    )

    assert answer.status_code == status, answer.text
    assert reason in answer.json()["detail"]
    assert contracts(engine) == []  # nothing written
