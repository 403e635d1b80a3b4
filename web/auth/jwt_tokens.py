"""Bearer JWTs from the identity provider: OAuth2 client-credentials tokens of systems (the billing
system, the bank import) and the signed-in user's access token that the Temporal UI forwards to the
codec endpoint (`TEMPORAL_CODEC_PASS_ACCESS_TOKEN`, docs/temporal-ui.md).

Every token is checked the same way, with PyJWT against the issuer's JWKS: the header's `alg` must be
RS256 or ES256 (never `none`, never an HMAC "signed" with the public key) and match the key's type;
signature, `iss`, `aud`, `exp` and `iat` (and `nbf` when present) are verified, with 30 s of clock
leeway; a token valid for more than a day is refused. The key set is fetched once and cached for an
hour (`PyJWKClient`): no network call per request. A token signed with a key id the cache does not
know triggers one refetch (a rotated key), at most every 30 s, so forged key ids cannot hammer the
provider. `nbf` is not required: Auth0, Okta and Keycloak leave it out of access tokens.

Refusals raise `TokenRefused` with a reason that is safe to show the caller (it never echoes the
token); a missing scope raises `InsufficientScope` (403).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from fastapi import HTTPException, Request
from jwt import PyJWKClient

from infra.config import Settings
from models.auth import Role
from web.auth.principal import Kind, Principal
from web.deps import context

log = logging.getLogger("dunning.auth")

ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30
MAX_LIFETIME_SECONDS = 24 * 3600
MAX_TOKEN_CHARS = 16 * 1024
JWKS_CACHE_SECONDS = 3600
JWKS_REFETCH_COOLDOWN_SECONDS = 30
DISCOVERY_CACHE_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 5
KNOWN_ROLES = frozenset(role.value for role in Role)


class TokenRefused(Exception):
    """The token does not prove who the caller is; `reason` names why (never the token itself)."""

    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsufficientScope(TokenRefused):
    """A valid token without the scope the route needs."""

    status = 403


class ProviderUnavailable(TokenRefused):
    """The identity provider's keys or discovery document could not be fetched."""

    status = 503


@dataclass(frozen=True)
class JwtVerifier:
    """Checks tokens of one issuer for one audience against one JWKS."""

    issuer: str
    audience: str
    jwks: PyJWKClient

    @classmethod
    def create(cls, issuer: str, audience: str, jwks_url: str) -> JwtVerifier:
        if not (issuer and audience and jwks_url):
            raise ValueError("a JWT check needs an issuer, an audience and a JWKS URL")
        client = PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=HTTP_TIMEOUT_SECONDS,
            cooldown_duration=JWKS_REFETCH_COOLDOWN_SECONDS,
        )
        return cls(issuer, audience, client)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; raises TokenRefused otherwise. May fetch the
        JWKS (blocking): call from a thread, not the event loop."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused(f"token longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as problem:
            raise TokenRefused("not a JWT (three base64url parts)") from problem
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRefused(f"alg {str(algorithm)[:20]!r} is not allowed: {' or '.join(ALGORITHMS)} only")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("the token names no signing key (kid)")
        try:
            key = self.jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as problem:
            log.warning("JWKS of %s could not be fetched: %s", self.issuer, problem)
            raise ProviderUnavailable("the identity provider's keys could not be fetched; try again") from problem
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as problem:
            raise TokenRefused("signed with a key the identity provider does not publish") from problem
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as problem:
            raise TokenRefused("the token has expired") from problem
        except jwt.ImmatureSignatureError as problem:
            raise TokenRefused("the token is not valid yet (iat/nbf in the future)") from problem
        except jwt.InvalidAudienceError as problem:
            raise TokenRefused(f"the token is not meant for this service (aud must be {self.audience!r})") from problem
        except jwt.InvalidIssuerError as problem:
            raise TokenRefused(f"the token comes from another issuer (iss must be {self.issuer!r})") from problem
        except jwt.MissingRequiredClaimError as problem:
            raise TokenRefused(f"the token lacks the {problem.claim!r} claim") from problem
        except jwt.InvalidAlgorithmError as problem:
            raise TokenRefused("the token's alg does not match its key") from problem
        except jwt.InvalidSignatureError as problem:
            raise TokenRefused("the signature does not verify") from problem
        except jwt.InvalidTokenError as problem:
            raise TokenRefused(f"invalid token: {str(problem)[:100]}") from problem
        if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_SECONDS:
            raise TokenRefused(f"the token is valid for more than {MAX_LIFETIME_SECONDS // 3600} hours")
        return claims


# --- caches: one verifier per (issuer, audience, JWKS), one discovery document per issuer ------------

_verifiers: dict[tuple[str, str, str], JwtVerifier] = {}
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def verifier(issuer: str, audience: str, jwks_url: str) -> JwtVerifier:
    with _lock:
        found = _verifiers.get((issuer, audience, jwks_url))
        if found is None:
            found = _verifiers[(issuer, audience, jwks_url)] = JwtVerifier.create(issuer, audience, jwks_url)
        return found


def discovery(issuer: str) -> dict[str, Any]:
    """The issuer's OpenID configuration (cached for an hour); its `issuer` must be the configured one."""
    with _lock:
        cached = _discovery.get(issuer)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as problem:
        log.warning("OIDC discovery at %s failed: %s", url, problem)
        raise ProviderUnavailable("the identity provider's configuration could not be fetched; try again") from problem
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ProviderUnavailable(f"{url} names another issuer than OIDC_ISSUER")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(needed), str):
            raise ProviderUnavailable(f"{url} lacks {needed}")
    with _lock:
        _discovery[issuer] = (time.monotonic() + DISCOVERY_CACHE_SECONDS, document)
    return document


def reset_caches() -> None:
    """Forget cached discovery documents and key sets (tests; a changed configuration)."""
    with _lock:
        _verifiers.clear()
        _discovery.clear()


# --- claims -> who ---------------------------------------------------------------------------------


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name; a dotted name walks into objects (Keycloak's `realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def names_in(value: Any) -> list[str]:
    """A claim holding names: a JSON list, or one string with names separated by spaces or commas."""
    if isinstance(value, str):
        return [n for n in value.replace(",", " ").split() if n]
    if isinstance(value, list):
        return [n for n in value if isinstance(n, str) and n]
    return []


def roles_in(claims: dict[str, Any], roles_claim: str) -> frozenset[str]:
    """The known roles the claim names; unknown ones (other applications' roles) are ignored."""
    return frozenset(n for n in names_in(claim(claims, roles_claim)) if n in KNOWN_ROLES)


def agent_code_in(claims: dict[str, Any], agent_code_claim: str) -> str | None:
    value = claim(claims, agent_code_claim)
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable() and value.strip() == value:
        return value
    return None


def scopes_in(claims: dict[str, Any], scope_claim: str) -> frozenset[str]:
    return frozenset(names_in(claim(claims, scope_claim)))


def person_name(claims: dict[str, Any]) -> str:
    """How the audit trail names a person: their user name, else e-mail, else the subject."""
    for key in ("preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    raise TokenRefused("the token names nobody (no sub)")


def client_principal(claims: dict[str, Any], scope_claim: str = "scope") -> Principal:
    """A system authenticated by a client-credentials token: named by its client id."""
    for key in ("azp", "client_id", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return Principal(kind="client", name=value.strip()[:200], scopes=scopes_in(claims, scope_claim), via="jwt")
    raise TokenRefused("the token names no client (azp, client_id or sub)")


def require_scopes(who: Principal, *needed: str) -> None:
    """Raise InsufficientScope unless the caller holds every scope named."""
    missing = [scope for scope in needed if scope not in who.scopes]
    if missing:
        held = " ".join(sorted(who.scopes)) or "none"
        raise InsufficientScope(f"the token lacks scope {' '.join(missing)} (it has: {held})")


def person_principal(claims: dict[str, Any], settings: Settings, via: str) -> Principal:
    """A person from an ID or access token: known roles only; the agent role only with an agent code."""
    roles = roles_in(claims, settings.oidc_roles_claim)
    agent_code = agent_code_in(claims, settings.oidc_agent_code_claim)
    if Role.AGENT.value in roles and agent_code is None:
        roles -= {Role.AGENT.value}  # an agent without a code would see nobody's tasks: not an agent
    kind: Kind = "agent" if roles == {Role.AGENT.value} else "person"
    return Principal(kind=kind, name=person_name(claims), roles=roles, agent_code=agent_code, via=via)


# --- the two checks --------------------------------------------------------------------------------


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


def verify_client_token(token: str, settings: Settings) -> Principal:
    """A system's client-credentials JWT (API_JWT_ISSUER/AUDIENCE/JWKS_URL) -> its principal."""
    if not (settings.api_jwt_issuer and settings.api_jwt_audience and settings.api_jwt_jwks_url):
        raise TokenRefused("JWT access for systems is not configured (API_JWT_ISSUER, _AUDIENCE, _JWKS_URL)")
    check = verifier(settings.api_jwt_issuer, settings.api_jwt_audience, settings.api_jwt_jwks_url)
    return client_principal(check.claims(token), settings.api_jwt_scope_claim)


def user_token_audience(settings: Settings) -> str:
    return settings.oidc_access_token_audience or settings.oidc_client_id


def verify_user_access_token(token: str, settings: Settings) -> Principal:
    """A signed-in person's OIDC access token (issuer OIDC_ISSUER, keys from its discovery document,
    audience OIDC_ACCESS_TOKEN_AUDIENCE) -> a person with the known roles of the roles claim."""
    audience = user_token_audience(settings)
    if not (settings.oidc_issuer and audience):
        raise TokenRefused("OIDC is not configured (OIDC_ISSUER, OIDC_CLIENT_ID)")
    document = discovery(settings.oidc_issuer)
    check = verifier(str(document["issuer"]), audience, str(document["jwks_uri"]))
    return person_principal(check.claims(token), settings, via="oidc-token")


def _issuer_of(credential: str) -> str | None:
    try:
        value = jwt.decode(credential, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError:
        return None
    return value if isinstance(value, str) else None


def _same_issuer(a: str, b: str) -> bool:
    return bool(a) and a.rstrip("/") == b.rstrip("/")


def refusal(refused: TokenRefused) -> HTTPException:
    """The HTTP answer to a refused bearer token (RFC 6750: 401 invalid_token, 403 insufficient_scope)."""
    error = {401: "invalid_token", 403: "insufficient_scope"}.get(refused.status, "temporarily_unavailable")
    challenge = f'Bearer error="{error}", error_description="{refused.reason.replace(chr(34), chr(39))}"'
    return HTTPException(status_code=refused.status, detail=refused.reason, headers={"WWW-Authenticate": challenge})


def client_jwt_verifier(request: Request, credential: str) -> Principal | None:
    """For web.auth.policy.BEARER_VERIFIERS: a client-credentials JWT, on any route of the internal app.
    None when the credential is not a JWT of API_JWT_ISSUER (another verifier's); a refused one is
    answered 401/503 with the reason (raised as HTTPException, so the caller learns why)."""
    settings = context(request).settings
    if not looks_like_jwt(credential) or not _same_issuer(settings.api_jwt_issuer, _issuer_of(credential) or ""):
        return None
    try:
        return verify_client_token(credential, settings)
    except TokenRefused as refused:
        log.info("client JWT refused on %s: %s", request.url.path, refused.reason)
        raise refusal(refused) from refused


CODEC_PATHS = ("/codec/decode", "/codec/encode")


def codec_user_token_verifier(request: Request, credential: str) -> Principal | None:
    """For web.auth.policy.BEARER_VERIFIERS: the signed-in user's access token the Temporal UI forwards,
    accepted on the codec endpoint only (nowhere else does a browser-held token replace a session)."""
    settings = context(request).settings
    if request.url.path not in CODEC_PATHS or not looks_like_jwt(credential):
        return None
    if not _same_issuer(settings.oidc_issuer, _issuer_of(credential) or ""):
        return None
    try:
        return verify_user_access_token(credential, settings)
    except TokenRefused as refused:
        log.info("user access token refused on %s: %s", request.url.path, refused.reason)
        raise refusal(refused) from refused
