"""A small local OpenID Connect provider: staff sign-in and API-client tokens in the tests and, for
trying things out, in `make run` (`python -m dev.fakes` serves it next to the provider fakes).

Real enough for the engine's client code to run unchanged against it:

- an RS256 key pair generated at start (`rotate_key()` adds a new one; the JWKS lists all);
- `GET /.well-known/openid-configuration` and `GET /jwks`;
- `GET /authorize`: authorization code flow; auto-approves `state.user` (no login form), checks the
  client and its exact redirect URI, requires PKCE S256, and hands back `state` and `nonce`;
- `POST /token`: `authorization_code` (one-time code, same client and redirect URI, the
  `code_verifier` must match the challenge) and `client_credentials` (scopes limited to the
  client's); client authentication by HTTP Basic or form fields;
- `GET /userinfo` with the access token.

ID tokens carry the user's `roles` / `agent_code` claims (names configurable); access tokens are JWTs
with `scope`, `aud` (`access_token_audience`) and `client_id`. Tests change the next ID token with
`mangle_next_id_token` (wrong nonce, audience, issuer, expiry, another key …).

Development only: the keys live in memory and no user ever types a password.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import rsa

from dev.fakes.credentials import CREDENTIALS

CODE_SECONDS = 60
TOKEN_SECONDS = 300
DEV_CLIENT_ID = "dunning-web"
DEV_CLIENT_SECRET = CREDENTIALS["oidc_client"]
DEV_API_CLIENT_ID = "billing"
DEV_API_CLIENT_SECRET = CREDENTIALS["oidc_api"]
DEV_API_AUDIENCE = "dunning-api"


@dataclass
class OidcUser:
    """The person `/authorize` signs in (auto-approved)."""

    subject: str = "user-1"
    name: str = "Clara Clerk"
    email: str = "clara.clerk@example.org"
    roles: list[str] | str | None = field(default_factory=lambda: ["clerk"])
    agent_code: str | None = None
    extra_claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class OidcClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)  # authorization code flow
    scopes: list[str] = field(default_factory=list)  # client credentials: what it may ask for


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def new_key() -> SigningKey:
    return SigningKey(kid=secrets.token_hex(8), private=rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    scope: str
    user: OidcUser
    expires: float


@dataclass
class FakeOidc:
    """State of the provider; tests configure users and clients and read what was asked."""

    user: OidcUser | None = field(default_factory=OidcUser)  # None: /authorize answers access_denied
    clients: dict[str, OidcClient] = field(default_factory=dict)
    roles_claim: str = "roles"
    agent_code_claim: str = "agent_code"
    access_token_audience: str = DEV_API_AUDIENCE
    keys: list[SigningKey] = field(default_factory=lambda: [new_key()])
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)  # more public keys to publish (an EC key)
    codes: dict[str, PendingCode] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> userinfo claims
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""
    # Turns the next ID token's claims into the token string sent (then resets): tests forge with it.
    id_token_hook: Callable[[dict[str, Any]], str] | None = None

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def key(self) -> SigningKey:
        """The key new tokens are signed with (the newest)."""
        return self.keys[-1]

    def add_client(
        self, client_id: str, secret: str, *, redirect_uris: list[str] | None = None, scopes: list[str] | None = None
    ) -> OidcClient:
        client = OidcClient(client_id, secret, list(redirect_uris or []), list(scopes or []))
        with self.lock:
            self.clients[client_id] = client
        return client

    def rotate_key(self, *, keep_old: bool = True) -> SigningKey:
        """A new signing key (new kid); the JWKS keeps the old one unless `keep_old` is False."""
        key = new_key()
        with self.lock:
            self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def sign(
        self, claims: dict[str, Any], *, key: SigningKey | None = None, headers: dict[str, Any] | None = None
    ) -> str:
        signing = key or self.key
        return jwt.encode(claims, signing.private, algorithm="RS256", headers={"kid": signing.kid, **(headers or {})})

    def mangle_next_id_token(self, hook: Callable[[dict[str, Any]], str]) -> None:
        self.id_token_hook = hook

    def jwks_fetches(self) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and path == "/jwks")

    def client_credentials_token(
        self, client_id: str, scopes: list[str], *, lifetime: int = TOKEN_SECONDS, **overrides: Any
    ) -> str:
        """An access token as `/token` issues it for the client-credentials grant (tests build variants)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "client_id": client_id,
            "azp": client_id,
            "aud": self.access_token_audience,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
        }
        return self.sign({**claims, **overrides})

    def user_claims(self, user: OidcUser) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": user.subject,
            "name": user.name,
            "email": user.email,
            "preferred_username": user.email,
        }
        if user.roles is not None:
            claims[self.roles_claim] = user.roles
        if user.agent_code is not None:
            claims[self.agent_code_claim] = user.agent_code
        return {**claims, **user.extra_claims}

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": ["sub", "name", "email", self.roles_claim, self.agent_code_claim],
        }


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class Handler(BaseHTTPRequestHandler):
    server: FakeOidcServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> FakeOidc:
        return self.server.state

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        html = isinstance(payload, str)
        data = payload.encode() if html else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.state.requests.append(("GET", parts.path))
        query = dict(parse_qsl(parts.query))
        if parts.path == "/.well-known/openid-configuration":
            self._send(200, self.state.discovery())
        elif parts.path == "/jwks":
            with self.state.lock:
                self._send(200, {"keys": [key.jwk() for key in self.state.keys] + self.state.extra_jwks})
        elif parts.path == "/authorize":
            self.authorize(query)
        elif parts.path == "/userinfo":
            self.userinfo()
        else:
            self._send(404, {"error": f"no fake for GET {parts.path}"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        self.state.requests.append(("POST", parts.path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if parts.path != "/token":
            self._send(404, {"error": f"no fake for POST {parts.path}"})
            return
        try:
            self._send(200, self.token(dict(parse_qsl(body))))
        except OAuthError as problem:
            self._send(problem.status, {"error": problem.error, "error_description": problem.description})

    # --- authorization endpoint -----------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> None:
        client = self.state.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # RFC 6749 4.1.2.1: never redirect to an unverified URI; tell the person instead.
            self._send(400, "<h1>Unknown client or redirect URI</h1>")
            return

        def back(**params: str | None) -> None:
            values = {k: v for k, v in params.items() if v is not None}
            if query.get("state") is not None:
                values["state"] = query["state"]
            self._redirect(f"{redirect_uri}?{urlencode(values)}")

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="only response_type=code")
        if "openid" not in query.get("scope", "").split():
            return back(error="invalid_scope", error_description="scope must include openid")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE with code_challenge_method=S256 is required")
        user = self.state.user
        if user is None:
            return back(error="access_denied", error_description="the user did not consent")
        code = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.codes[code] = PendingCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                nonce=query.get("nonce"),
                challenge=query["code_challenge"],
                scope=query["scope"],
                user=user,
                expires=time.time() + CODE_SECONDS,
            )
        back(code=code)

    # --- token endpoint -------------------------------------------------------------------------

    def authenticate_client(self, form: dict[str, str]) -> OidcClient:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError as problem:
                raise OAuthError(401, "invalid_client", "malformed Basic credentials") from problem
            client_id, secret = unquote(client_id), unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.state.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.client_secret.encode(), secret.encode()):
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        return client

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        client = self.authenticate_client(form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self.code_grant(client, form)
        if grant == "client_credentials":
            return self.client_credentials_grant(client, form)
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def code_grant(self, client: OidcClient, form: dict[str, str]) -> dict[str, Any]:
        with self.state.lock:
            pending = self.state.codes.pop(form.get("code", ""), None)  # one use only, even when refused
        if pending is None or pending.expires < time.time():
            raise OAuthError(400, "invalid_grant", "unknown, used or expired code")
        if pending.client_id != client.client_id or pending.redirect_uri != form.get("redirect_uri"):
            raise OAuthError(400, "invalid_grant", "code was issued to another client or redirect URI")
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "code_verifier is required (PKCE)")
        if not hmac.compare_digest(create_s256_code_challenge(verifier).encode(), pending.challenge.encode()):
            raise OAuthError(400, "invalid_grant", "code_verifier does not match the code_challenge")
        state = self.state
        now = int(time.time())
        user_claims = state.user_claims(pending.user)
        access_claims = {
            **user_claims,
            "iss": state.issuer,
            "aud": state.access_token_audience,
            "client_id": client.client_id,
            "azp": client.client_id,
            "scope": pending.scope,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECONDS,
            "jti": secrets.token_hex(8),
        }
        access_token = state.sign(access_claims)
        id_claims = {
            **user_claims,
            "iss": state.issuer,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + TOKEN_SECONDS,
        }
        if pending.nonce is not None:
            id_claims["nonce"] = pending.nonce
        hook, state.id_token_hook = state.id_token_hook, None
        id_token = hook(id_claims) if hook is not None else state.sign(id_claims)
        with state.lock:
            state.access_tokens[access_token] = user_claims
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": pending.scope,
            "id_token": id_token,
        }

    def client_credentials_grant(self, client: OidcClient, form: dict[str, str]) -> dict[str, Any]:
        asked = form.get("scope", "").split() or client.scopes
        refused = [scope for scope in asked if scope not in client.scopes]
        if refused:
            raise OAuthError(400, "invalid_scope", f"client {client.client_id} may not ask for {' '.join(refused)}")
        token = self.state.client_credentials_token(client.client_id, asked)
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "scope": " ".join(asked)}

    # --- userinfo -------------------------------------------------------------------------------

    def userinfo(self) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        claims = self.state.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if claims is None:
            self._send(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        self._send(200, claims)


class FakeOidcServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeOidc, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.state = state
        state.base_url = f"http://{host}:{self.server_address[1]}"


def start(state: FakeOidc | None = None, port: int = 0) -> tuple[FakeOidcServer, threading.Thread]:
    """Serve the provider in a background thread; `server.shutdown()` stops it."""
    server = FakeOidcServer(state or FakeOidc(), port=port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def development_provider(internal_base_url: str, roles: list[str]) -> FakeOidc:
    """The provider `python -m dev.fakes` serves: one web client (the engine's internal app), one API
    client (`billing`, every scope) and a user with the given roles."""
    state = FakeOidc(user=OidcUser(subject="dev-user", name="Dev User", email="dev.user@example.org", roles=roles))
    state.add_client(
        DEV_CLIENT_ID, DEV_CLIENT_SECRET, redirect_uris=[f"{internal_base_url.rstrip('/')}/auth/oidc/callback"]
    )
    state.add_client(
        DEV_API_CLIENT_ID,
        DEV_API_CLIENT_SECRET,
        scopes=["ledger:write", "ledger:read", "bank:import", "evidence:write", "campaign:write", "codec"],
    )
    return state


def environment(base_url: str) -> dict[str, str]:
    """Settings that point the engine's OIDC sign-in and API-token check at this provider."""
    return {
        "OIDC_ISSUER": base_url,
        "OIDC_CLIENT_ID": DEV_CLIENT_ID,
        "OIDC_CLIENT_SECRET": DEV_CLIENT_SECRET,
        "API_JWT_ISSUER": base_url,
        "API_JWT_AUDIENCE": DEV_API_AUDIENCE,
        "API_JWT_JWKS_URL": f"{base_url}/jwks",
    }
