"""The codec endpoint for the Temporal Web UI and CLI (Temporal's remote codec protocol).

`POST /codec/decode` and `POST /codec/encode` take and return `{"payloads": [...]}` (the
protobuf JSON of `temporal.api.common.v1.Payloads`) and run them through the same AES-GCM codec
the worker uses, so staff read decrypted cases in the UI while the server stores only ciphertext.

Who may call it:
- the browser running the Temporal UI: CORS allows exactly `settings.temporal_ui_url`'s origin;
- with `CODEC_TOKEN` set, only requests carrying `Authorization: Bearer <token>` (the CLI sends it
  with `--codec-auth "Bearer <token>"`; a UI behind an identity proxy gets it added there);
- without `CODEC_TOKEN` (the embedded default), only loopback clients: the UI and the web app run
  on the same machine and the endpoint is not reachable from elsewhere.
A request for another namespace (`X-Namespace`) is refused: the keys belong to this one.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from config import Settings
from crypto.codec import EncryptionCodec, PayloadKeyError, configured_keys
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


def loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def refusal(request: Request, settings: Settings) -> tuple[int, str] | None:
    """Why this caller may not use the codec, or None."""
    token = settings.codec_token.get_secret_value()
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return 401, "Authorization: Bearer <CODEC_TOKEN> is required"
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 401, "the bearer token is not the codec token"
    elif not loopback(request):
        return 403, "without CODEC_TOKEN the codec endpoint answers local clients only; set CODEC_TOKEN"
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
