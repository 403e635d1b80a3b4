"""Local fake Stripe, Twilio and SendGrid APIs: the real SDKs talk to these in the tests and, for
trying things out, in `make run` (README "Real providers").

One threaded HTTP server answers all three (the paths do not overlap):

- Stripe: `POST /v1/checkout/sessions` (honours `Idempotency-Key` like Stripe: the same key with
  the same parameters replays the first answer, with other parameters it is a 400), and a hosted
  checkout page `GET /checkout/<id>` whose "Pay" button sends a signed `checkout.session.completed`
  to the engine's webhook.
- Twilio: `POST/GET /2010-04-01/Accounts/<sid>/Messages.json` (basic auth checked), and with
  `callbacks=True` a signed "delivered" status callback to the message's StatusCallback.
- SendGrid: `POST /v3/mail/send` (202 + X-Message-Id; the whole mail kept, headers and tracking
  settings included), `GET /v3/messages` (Email Activity lookup by unique_args), and with
  `callbacks=True` a signed "delivered" event to the engine's webhook; `sendgrid_event` and
  `sendgrid_webhook` build any other signed event (open, click, unsubscribe, spam report …).

`fail_next(api, status, ...)` makes the next request to that API fail with a given status (after
optionally doing the work first: "accepted, but the answer got lost").

Not a mock of everything these providers do: just enough for the engine's code paths. The keys
here are development-only and public.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import stripe
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from dev.fakes.credentials import CREDENTIALS

STRIPE_API_KEY = "sk_test_" + CREDENTIALS["stripe_api_key"]
STRIPE_WEBHOOK_SECRET = "whsec_" + CREDENTIALS["stripe_webhook_secret"]
TWILIO_ACCOUNT_SID = "AC00000000000000000000000000000000"
TWILIO_AUTH_TOKEN = CREDENTIALS["twilio_auth_token"]
TWILIO_FROM = "+15005550006"
SENDGRID_API_KEY = "SG." + CREDENTIALS["sendgrid_api_key"]
# A fixed development key pair (public test key, never use it for anything real).
SENDGRID_PRIVATE_KEY = ec.derive_private_key(0x5EED_F00D_CAFE_2026, ec.SECP256R1())


def sendgrid_public_key() -> str:
    """The verification key as SendGrid's console shows it: base64 DER without PEM armour."""
    der = SENDGRID_PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_sign(payload: bytes, timestamp: int, key: ec.EllipticCurvePrivateKey = SENDGRID_PRIVATE_KEY) -> str:
    """SendGrid's Event Webhook signature: ECDSA P-256/SHA-256 over timestamp + body, base64 DER."""
    signature = key.sign(str(timestamp).encode() + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def sendgrid_webhook(events: list[dict[str, Any]], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """An Event Webhook request as SendGrid sends it: the JSON body and its signed headers."""
    body = json.dumps(events).encode()
    now = int(time.time()) if timestamp is None else timestamp
    return body, {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(body, now),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
    }


def sendgrid_event(mail: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    """A SendGrid event about a mail the fake received: its message id and `custom_args`, like SendGrid's."""
    return {
        "email": mail["personalizations"][0]["to"][0]["email"],
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{mail['msg_id']}.filter0001",
        "timestamp": int(time.time()),
        **(mail.get("custom_args") or {}),
        **extra,
    }


def stripe_signature(payload: bytes, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed by the Stripe SDK's own helper."""
    return str(stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp))


def twilio_signature(url: str, params: dict[str, str], token: str = TWILIO_AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it (the SDK's RequestValidator)."""
    return str(RequestValidator(token).compute_signature(url, params))


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    after_work: bool  # do the work, then answer with the failure (the answer "got lost")


@dataclass
class FakeProviders:
    """State of the fakes; tests read it to see what the SDKs really sent."""

    engine_url: str = ""  # where callbacks go (the engine's public base URL)
    callbacks: bool = False
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, headers)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def fail_next(
        self,
        api: str,
        status: int,
        *,
        code: int | str | None = None,
        after_work: bool = False,
        message: str = "injected failure",
        field_name: str = "",
    ) -> None:
        """The next request to `api` ("stripe", "twilio", "sendgrid") answers `status`."""
        if api == "stripe":
            kind = "api_error" if status >= 500 else "invalid_request_error"
            body: dict[str, Any] = {"error": {"type": kind, "message": message, "code": code}}
        elif api == "twilio":
            body = {"code": code, "message": message, "status": status, "more_info": ""}
        else:
            body = {"errors": [{"message": message, "field": field_name or None}]}
        with self.lock:
            self.failures.setdefault(api, []).append(Failure(status, body, after_work))

    def take_failure(self, api: str) -> Failure | None:
        with self.lock:
            queue = self.failures.get(api) or []
            return queue.pop(0) if queue else None


def stripe_line_items(params: dict[str, str]) -> list[dict[str, Any]]:
    """The line items of a form-encoded Checkout Session request, as Stripe lists them back."""
    lines: list[dict[str, Any]] = []
    while f"line_items[{len(lines)}][price_data][unit_amount]" in params:
        prefix = f"line_items[{len(lines)}]"
        product = f"{prefix}[price_data][product_data]"
        quantity = int(params.get(f"{prefix}[quantity]", "1"))
        lines.append(
            {
                "amount_total": int(params[f"{prefix}[price_data][unit_amount]"]) * quantity,
                "quantity": quantity,
                "description": params.get(f"{product}[name]", ""),
                "metadata": {
                    k[len(product) + 11 : -1]: v for k, v in params.items() if k.startswith(f"{product}[metadata][")
                },
            }
        )
    return lines


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> FakeProviders:
        return self.server.state

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, html: bool = False) -> None:
        data = payload.encode() if html else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        self.state.requests.append((method, path, {k.lower(): v for k, v in self.headers.items()}))
        body = self._body() if method == "POST" else b""
        routes: list[tuple[str, str, str, Callable[[re.Match[str], dict[str, str], bytes], None]]] = [
            ("POST", r"/v1/checkout/sessions", "stripe", self.stripe_create),
            ("GET", r"/checkout/(?P<id>[\w]+)", "", self.stripe_page),
            ("POST", r"/checkout/(?P<id>[\w]+)/pay", "", self.stripe_pay),
            ("POST", r"/2010-04-01/Accounts/(?P<sid>\w+)/Messages\.json", "twilio", self.twilio_create),
            ("GET", r"/2010-04-01/Accounts/(?P<sid>\w+)/Messages\.json", "twilio", self.twilio_list),
            ("POST", r"/v3/mail/send", "sendgrid", self.sendgrid_send),
            ("GET", r"/v3/messages", "sendgrid", self.sendgrid_messages),
        ]
        for route_method, pattern, api, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                failure = self.state.take_failure(api) if api else None
                if failure is not None and not failure.after_work:
                    self._send(failure.status, failure.body)
                    return
                self.failure: Failure | None = failure
                handler(match, query, body)
                return
        self._send(404, {"error": f"no fake for {method} {path}"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        failure: Failure | None = getattr(self, "failure", None)
        if failure is not None:  # the work is done, but the caller sees an error
            self._send(failure.status, failure.body)
        else:
            self._send(status, payload, headers)

    # --- Stripe ------------------------------------------------------------------------------

    def stripe_create(self, _: re.Match[str], __: dict[str, str], body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {STRIPE_API_KEY}":
            self._send(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})
            return
        key = self.headers.get("Idempotency-Key") or ""
        raw = body.decode()
        with self.state.lock:
            if key in self.state.idempotency:
                first_raw, first_answer = self.state.idempotency[key]
                if first_raw != raw:
                    self._send(
                        400,
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent "
                                "requests can only be used with the same parameters they were first used with.",
                            }
                        },
                    )
                    return
                self._answer(200, first_answer, {"Idempotent-Replayed": "true"})
                return
            params = dict(parse_qsl(raw))
            lines = stripe_line_items(params)
            session_id = "cs_test_" + secrets.token_hex(12)
            session = {
                "id": session_id,
                "object": "checkout.session",
                "url": f"{self.state.base_url}/checkout/{session_id}",
                "amount_total": sum(int(line["amount_total"]) for line in lines),
                "line_items": {"object": "list", "data": lines},  # as Stripe answers with expand[]=line_items
                "payment_method_types": [v for n, v in params.items() if n.startswith("payment_method_types[")],
                "currency": params["line_items[0][price_data][currency]"],
                "expires_at": int(params["expires_at"]),
                "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
                "client_reference_id": params.get("client_reference_id"),
                "success_url": params["success_url"],
                "cancel_url": params["cancel_url"],
                "payment_status": "unpaid",
                "status": "open",
                "payment_intent": None,
                "idempotency_key": key,
            }
            self.state.checkout_sessions[session_id] = session
            if key:
                self.state.idempotency[key] = (raw, session)
        self._answer(200, session)

    def stripe_page(self, match: re.Match[str], _: dict[str, str], __: bytes) -> None:
        session = self.state.checkout_sessions.get(match["id"])
        if session is None:
            self._send(404, "<h1>Unknown checkout session</h1>", html=True)
            return
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        self._send(
            200,
            f"<h1>Fake Stripe Checkout</h1><p>{amount}</p><p>Status: {session['status']}</p>"
            f"<form method='post' action='/checkout/{session['id']}/pay'><button>Pay</button></form>",
            html=True,
        )

    def stripe_pay(self, match: re.Match[str], _: dict[str, str], __: bytes) -> None:
        session = self.state.checkout_sessions.get(match["id"])
        if session is None:
            self._send(404, "<h1>Unknown checkout session</h1>", html=True)
            return
        with self.state.lock:
            if session["payment_status"] != "paid":
                session.update(payment_status="paid", status="complete", payment_intent="pi_" + secrets.token_hex(12))
        event = {
            "id": f"evt_{session['id']}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": session},
        }
        self.server.post_stripe_event(event)
        self.send_response(303)
        self.send_header("Location", str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"]))
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- Twilio ------------------------------------------------------------------------------

    def _twilio_auth(self) -> bool:
        expected = base64.b64encode(f"{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._send(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return False
        return True

    def twilio_create(self, match: re.Match[str], _: dict[str, str], body: bytes) -> None:
        if not self._twilio_auth():
            return
        form = dict(parse_qsl(body.decode()))
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": match["sid"],
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "status_callback": form.get("StatusCallback"),
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "num_segments": "1",
        }
        with self.state.lock:
            self.state.sms.append(message)
        self._answer(201, message)
        if self.state.callbacks and message["status_callback"] and getattr(self, "failure", None) is None:
            self.server.post_twilio_status(str(message["status_callback"]), str(message["sid"]), "delivered")

    def twilio_list(self, match: re.Match[str], query: dict[str, str], _: bytes) -> None:
        if not self._twilio_auth():
            return
        with self.state.lock:
            found = [m for m in reversed(self.state.sms) if not query.get("To") or m["to"] == query["To"]]
        self._answer(200, {"messages": found, "next_page_uri": None, "page": 0, "page_size": 50})

    # --- SendGrid ----------------------------------------------------------------------------

    def _sendgrid_auth(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {SENDGRID_API_KEY}":
            self._send(401, {"errors": [{"message": "The provided authorization grant is invalid"}]})
            return False
        return True

    def sendgrid_send(self, _: re.Match[str], __: dict[str, str], body: bytes) -> None:
        if not self._sendgrid_auth():
            return
        mail = json.loads(body)
        message_id = secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")
        with self.state.lock:
            self.state.emails.append({"msg_id": message_id, **mail})
        failure: Failure | None = getattr(self, "failure", None)
        if failure is not None:  # accepted, but the answer is lost
            self._send(failure.status, failure.body)
            return
        self.send_response(202)
        self.send_header("X-Message-Id", message_id)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.state.callbacks:
            custom = mail.get("custom_args") or {}
            to = mail["personalizations"][0]["to"][0]["email"]
            self.server.post_sendgrid_events(
                [
                    {
                        "email": to,
                        "event": "delivered",
                        "sg_event_id": secrets.token_urlsafe(16),
                        "sg_message_id": f"{message_id}.filter0001",
                        "timestamp": int(time.time()),
                        **custom,
                    }
                ]
            )

    def sendgrid_messages(self, _: re.Match[str], query: dict[str, str], __: bytes) -> None:
        if not self._sendgrid_auth():
            return
        wanted = dict(re.findall(r"unique_args\['(\w+)'\]=\"([^\"]*)\"", query.get("query", "")))
        with self.state.lock:
            found = [
                {"msg_id": f"{m['msg_id']}.filter0001", "status": "delivered"}
                for m in self.state.emails
                if wanted and all((m.get("custom_args") or {}).get(k) == v for k, v in wanted.items())
            ]
        self._answer(200, {"messages": found})


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeProviders, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.state = state
        state.base_url = f"http://{host}:{self.server_address[1]}"

    def post_stripe_event(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        self._post(
            f"{self.state.engine_url}/webhooks/stripe",
            body,
            {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body)},
        )

    def post_twilio_status(self, url: str, sid: str, status: str) -> None:
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": TWILIO_ACCOUNT_SID}
        self._post(url, params, {"X-Twilio-Signature": twilio_signature(url, params)})

    def post_sendgrid_events(self, events: list[dict[str, Any]]) -> None:
        body, headers = sendgrid_webhook(events)
        self._post(f"{self.state.engine_url}/webhooks/sendgrid", body, headers)

    def _post(self, url: str, body: bytes | dict[str, str], headers: dict[str, str]) -> None:
        """Callbacks go out from a thread after the answer, like a provider's would."""
        if not url.startswith("http"):
            return  # no engine configured (tests post the events themselves)

        def send() -> None:
            time.sleep(0.2)
            try:
                if isinstance(body, dict):
                    httpx.post(url, data=body, headers=headers, timeout=10)
                else:
                    httpx.post(url, content=body, headers=headers, timeout=10)
            except httpx.HTTPError as error:
                print(f"fake provider callback to {url} failed: {error}")  # noqa: T201 - dev tool output

        threading.Thread(target=send, daemon=True).start()


def start(state: FakeProviders | None = None, port: int = 0) -> tuple[FakeServer, threading.Thread]:
    """Serve the fakes in a background thread; `server.shutdown()` stops them."""
    server = FakeServer(state or FakeProviders(), port=port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def environment(base_url: str) -> dict[str, str]:
    """Settings that point the engine's real provider adapters at the fakes."""
    return {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_KEY": STRIPE_API_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": base_url,
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "TWILIO_FROM": TWILIO_FROM,
        "TWILIO_API_BASE": base_url,
        "EMAIL_PROVIDER": "sendgrid",
        "SENDGRID_API_KEY": SENDGRID_API_KEY,
        "SENDGRID_FROM_EMAIL": "mahnwesen@example.org",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_key(),
        "SENDGRID_API_HOST": base_url,
    }
