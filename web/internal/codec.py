"""The codec endpoint for the Temporal Web UI and CLI (Temporal's remote codec protocol).

`POST /codec/decode` and `POST /codec/encode` take and return `{"payloads": [...]}` (the
protobuf JSON of `temporal.api.common.v1.Payloads`) and run them through the same AES-GCM codec
the worker uses, so staff read decrypted cases in the UI while the server stores only ciphertext.

It lives in the internal app and always authenticates; where a request comes from (loopback, a proxy,
a sidecar) is never an identity. The route-policy table (web/auth/policy.py) lets through:
- a signed-in staff member (session cookie, or the OIDC access token the production Temporal UI
  forwards with `passAccessToken`: web/auth/jwt_tokens.py);
- an API client with scope `codec` (`starter.py api-client create temporal-cli --scope codec`; the
  CLI sends `--codec-auth "Bearer <key>"`);
- `Authorization: Bearer <CODEC_TOKEN>` (codec_token_principal below): generated per installation in
  development, off in production unless set.
The dev server's Temporal UI (`make run`) can send neither cookies nor headers to a configured codec
endpoint (temporal CLI 1.9.1 sets only the endpoint; the UI adds credentials or a token only for one a
person configures in the browser). So `make run` gives it the endpoint `/codec/t/<CODEC_TOKEN>`:
DevUiCodecUrl moves the token from the path into the Authorization header before routing, the policy
check and the access log see the request (development only; docs/temporal-ui.md, "make run (dev server)").
CORS lets only the UI's origin (`TEMPORAL_UI_URL`) read answers. A request for another namespace
(`X-Namespace`) is refused: the keys belong to this one.
"""

from __future__ import annotations

import hmac
import json
import re

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from infra.config import Settings
from infra.crypto.codec import EncryptionCodec, PayloadKeyError, configured_keys
from models.auth import Scope as ApiScope
from web.auth import policy
from web.auth.principal import Principal, principal
from web.deps import context

router = APIRouter(prefix="/codec", tags=["codec"])

MAX_BODY_BYTES = 8 * 1024 * 1024  # a history page of payloads; Temporal caps one payload at 2 MB
CODEC_STATE = "payload_codec"


def codec_for(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = getattr(request.app.state, CODEC_STATE, None)
    if codec is None:
        codec = EncryptionCodec(configured_keys(context(request).settings))
        setattr(request.app.state, CODEC_STATE, codec)
    return codec


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def ui_origins(settings: Settings) -> set[str]:
    """The Temporal UI's origin; on this machine under each loopback name (the dev server prints
    `localhost`, the stack prints `127.0.0.1`: staff use either)."""
    url = httpx.URL(settings.temporal_ui_url)
    origin = f"{url.scheme}://{url.netloc.decode()}"
    if url.host not in ("127.0.0.1", "localhost", "::1"):
        return {origin}
    port = f":{url.port}" if url.port else ""
    return {f"{url.scheme}://{name}{port}" for name in LOOPBACK_NAMES}


def cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    """CORS for the Temporal UI's origin only; any other origin gets no CORS headers (the browser blocks it)."""
    origin = request.headers.get("origin", "")
    if origin not in ui_origins(settings):
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get(
            "access-control-request-headers", "Content-Type, X-Namespace, Authorization"
        ),
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


CODEC_PATHS = ("/codec/decode", "/codec/encode")


def codec_token_principal(request: Request, credential: str) -> Principal | None:
    """For web.auth.policy.BEARER_VERIFIERS: `Bearer <CODEC_TOKEN>` is a system with scope codec, on the
    codec endpoint only (it opens nothing else). None: not the codec token (another verifier's turn)."""
    token = context(request).settings.codec_token.get_secret_value()
    if request.url.path not in CODEC_PATHS or not token:
        return None
    if not hmac.compare_digest(credential.encode(), token.encode()):
        return None
    return Principal(kind="client", name="codec-token", scopes=frozenset({ApiScope.CODEC.value}), via="codec-token")


if codec_token_principal not in policy.BEARER_VERIFIERS:
    policy.BEARER_VERIFIERS.append(codec_token_principal)


DEV_UI_PATH = re.compile(r"/codec/t/([A-Za-z0-9_-]{16,200})/(decode|encode)")


class DevUiCodecUrl:
    """ASGI wrapper for the internal app under `make run` (never in production): the dev server's
    Temporal UI calls `<endpoint>/decode` with no credentials, so its endpoint carries the codec
    token, `/codec/t/<token>`. The token moves into `Authorization: Bearer` and the path becomes
    `/codec/decode` (the scope is changed in place: uvicorn's access log shows the path without it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (found := DEV_UI_PATH.fullmatch(scope["path"])):
            token, action = found.groups()
            scope["path"] = f"/codec/{action}"
            scope["raw_path"] = scope["path"].encode()
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            scope["headers"] = [*headers, (b"authorization", f"Bearer {token}".encode())]
        await self.app(scope, receive, send)


def dev_ui_endpoint(settings: Settings) -> str:
    """The codec endpoint `make run` gives the dev server's Temporal UI (development only)."""
    return f"{settings.internal_base_url.rstrip('/')}/codec/t/{settings.codec_token.get_secret_value()}"


def refusal(request: Request, settings: Settings) -> tuple[int, str] | None:
    """Why this caller may not use the codec, or None. Who may call it is the policy table's (it runs
    first); this only makes sure an anonymous caller is never answered, whatever the table says."""
    if principal(request).kind == "anonymous":
        return 401, "sign in, or send Authorization: Bearer <API client key with scope codec, or CODEC_TOKEN>"
    namespace = request.headers.get("x-namespace")
    if namespace and namespace != settings.temporal_namespace:
        return 403, f"this codec serves namespace {settings.temporal_namespace!r}, not {namespace[:100]!r}"
    return None


async def apply(request: Request, decode: bool) -> Response:
    settings = context(request).settings
    headers = cors_headers(request, settings)

    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    refused = refusal(request, settings)
    if refused is not None:
        return error(*refused)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return error(413, f"body must be at most {MAX_BODY_BYTES} bytes, got {len(body)}")
    try:
        payloads = json_format.Parse(body or b"{}", Payloads())
    except json_format.ParseError as problem:
        return error(400, f'body must be {{"payloads": [...]}} (protobuf JSON of Payloads): {str(problem)[:200]}')
    codec = codec_for(request)
    try:
        converted = await (codec.decode(payloads.payloads) if decode else codec.encode(payloads.payloads))
    except PayloadKeyError as problem:
        return error(422, str(problem))
    text = json_format.MessageToJson(Payloads(payloads=converted))
    return JSONResponse(content=json.loads(text), headers=headers)


@router.post("/decode", summary="Decrypt payloads for the Temporal UI/CLI (remote codec protocol)")
async def decode(request: Request) -> Response:
    return await apply(request, decode=True)


@router.post("/encode", summary="Encrypt payloads for the Temporal UI/CLI (remote codec protocol)")
async def encode(request: Request) -> Response:
    return await apply(request, decode=False)


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    return Response(status_code=204, headers=cors_headers(request, context(request).settings))
