"""All runtime configuration, from the environment (or a `.env` file): one place, typed.

The embedded default needs none of it; production sets DATABASE_URL, TEMPORAL_ADDRESS and
the secrets. Every process (web apps, worker, CLIs, `make run`) reads its settings through
`get_settings()`, which refuses to start with ENVIRONMENT=production while anything is unsafe
(`production_problems` names every problem at once; docs/deployment.md, "Production checklist")
and makes the data folder private (0700, files 0600).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import holidays
from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.crypto.files import create_once
from models.plans import BUILTIN_PLANS

ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = "secrets.json"
# Secrets the embedded default generates when they are not set, one per purpose (never in production:
# there every secret comes from the environment, production_problems names a missing one).
GENERATED_SECRETS = (
    "link_secret",
    "testpay_webhook_secret",
    "campaign_events_secret",
    "oidc_state_secret",
    "csrf_secret",
    "codec_token",
)


def installation_secrets(data_dir: Path) -> dict[str, str]:
    """This installation's generated secrets (embedded default): random, created once, 0600."""
    path = data_dir / SECRETS_FILE
    stored = json.loads(
        create_once(path, lambda: json.dumps({n: secrets.token_urlsafe(32) for n in GENERATED_SECRETS}).encode())
    )
    if any(n not in stored for n in GENERATED_SECRETS):
        stored = _add_new_secrets(path)
    missing = [n for n in GENERATED_SECRETS if not isinstance(stored.get(n), str) or len(stored[n]) < 16]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: set them in the environment or remove the file")
    return {n: str(stored[n]) for n in GENERATED_SECRETS}


def _add_new_secrets(path: Path) -> dict[str, object]:
    """A secret added by a newer version (absent from an older file) is generated into the file, once:
    under an exclusive lock, so processes starting together agree on it; present values stay as they are."""
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored: dict[str, object] = json.loads(path.read_bytes())
        absent = [n for n in GENERATED_SECRETS if n not in stored]
        if absent:
            stored.update({n: secrets.token_urlsafe(32) for n in absent})
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps(stored).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        return stored


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting is named, but no value (secrets!) is echoed into logs.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    data_dir: Path = ROOT / "data"
    database_url: str = ""  # empty: SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # A Temporal cluster or Temporal Cloud (docs/deployment.md): TLS with a client certificate (mTLS),
    # or an API key (TLS is then switched on by itself). Paths to PEM files; empty: plain TCP.
    temporal_tls: bool = False
    temporal_tls_cert: str = ""  # client certificate chain (PEM file)
    temporal_tls_key: str = ""  # its private key (PEM file)
    temporal_tls_ca: str = ""  # CA of the server, if not a public one (PEM file)
    temporal_tls_server_name: str = ""  # SNI/verification name, if it differs from the address' host
    temporal_api_key: SecretStr = SecretStr("")
    # Prometheus: the worker serves business counters on metrics_port and the SDK's runtime metrics on
    # sdk_metrics_port (worker N of `worker.py --processes` adds N to both); 0 switches them off. The web
    # app serves /metrics on its own port. Logs: JSON lines ("json") or plain text ("text").
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    sdk_metrics_port: int = Field(default=9564, ge=0, le=65535)  # 100 apart: room for 100 processes
    # Every metrics port (worker, SDK, web) binds to this address: the internal interface, never the
    # internet (docs/deployment.md). Loopback by default; in production e.g. the host's private address.
    metrics_host: str = "127.0.0.1"
    log_format: Literal["json", "text"] = "json"
    task_queue: str = "dunning"
    public_base_url: str = "http://127.0.0.1:8000"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Secrets have no default in code. Set them in production; left empty, the embedded default
    # generates random ones, one per purpose, once per installation into data_dir/secrets.json (0600).
    # link_secret signs pay links and derives their ids; testpay_webhook_secret signs the built-in test
    # provider's webhooks; campaign_events_secret signs the campaign's mail-event feed
    # (POST /api/campaign/email-events, header X-Campaign-Signature: sha256=<hex HMAC of the body>).
    link_secret: str = ""
    testpay_webhook_secret: str = ""
    campaign_events_secret: str = ""
    # The abandoned-quote campaign's plan for new quotes and follow-ups, and the report's window
    # (core/campaign.py CAMPAIGN_PLANS): "demo" (minutes, no quiet hours) is what `make run` uses and is
    # refused in production.
    campaign_plan: Literal["default", "demo"] = "default"
    csrf_secret: str = ""  # signs the CSRF tokens of every HTML form (web/safety/)
    pay_link_days: int = 30
    # Who may do what (issue #12, docs/security.md). ENVIRONMENT=production refuses to start on any
    # unsafe setting (config.production_problems names them all).
    environment: Literal["development", "production"] = "development"
    # Two apps: the public one (customers, providers) and the internal one (staff, systems), served by
    # `python -m web.serve` on these addresses (loopback by default; `make run` always uses loopback).
    public_host: str = "127.0.0.1"
    public_port: int = Field(default=8000, ge=1, le=65535)
    internal_host: str = "127.0.0.1"
    internal_port: int = Field(default=8001, ge=1, le=65535)
    internal_base_url: str = "http://127.0.0.1:8001"
    web_metrics_port: int = Field(default=8002, ge=0, le=65535)  # the web apps' /metrics; 0: off
    # Staff sign-in: server-side sessions, revocable, expiring.
    session_minutes: int = Field(default=480, ge=5, le=24 * 60)
    # Local accounts (argon2 hashes, `starter.py staff add`). Empty: on in development, off in
    # production unless set to true explicitly.
    local_accounts: bool | None = None
    # OIDC sign-in (authorization code + PKCE); empty issuer: switched off.
    oidc_issuer: str = ""  # discovery at <issuer>/.well-known/openid-configuration
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_scope: str = "openid profile email"
    oidc_roles_claim: str = "roles"  # a list of role names (or one name) in the ID token / userinfo
    oidc_agent_code_claim: str = "agent_code"
    # Signs the short-lived cookie that carries a sign-in's state, nonce and PKCE verifier from
    # /auth/oidc/login to the callback (generated per installation when empty, like link_secret).
    oidc_state_secret: str = ""
    # The `aud` of the users' access tokens the Temporal UI forwards to the codec endpoint
    # (TEMPORAL_CODEC_PASS_ACCESS_TOKEN, docs/temporal-ui.md); empty: OIDC_CLIENT_ID.
    oidc_access_token_audience: str = ""
    # API clients: local ones (`starter.py api-client create`) send "Authorization: Bearer <id>.<secret>";
    # in production also OAuth2 client-credentials JWTs from the identity provider, checked against its JWKS.
    api_jwt_issuer: str = ""
    api_jwt_audience: str = ""
    api_jwt_jwks_url: str = ""
    api_jwt_scope_claim: str = "scope"  # space-separated, as RFC 8693/9068 have it
    # Who the command-line tools act as in the audit trail; empty: "cli:<operating-system user>".
    cli_identity: str = ""
    # Request bodies: refused while they stream in once larger than this (bank statements: their own cap).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_statement_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Rate limits per client IP (web/safety/, `limits` notation such as "10/minute" or "100/hour;10/minute").
    # Counters live in rate_limit_storage_uri: "memory://" counts per process, which is right for one web
    # process per app; several processes (or hosts) must share one store, e.g. "redis://host:6379".
    # Behind a reverse proxy the client IP is the proxy's unless uvicorn runs with --proxy-headers and
    # --forwarded-allow-ips set to the proxy.
    rate_limit_sign_in: str = "10/minute"  # POST /sign-in (staff and agents), /auth/oidc/*
    rate_limit_pay: str = "60/minute"  # customer pay links /pay/*, /p/*, TestPay checkout
    rate_limit_campaign: str = "20/minute"  # the campaign's token links (confirm, unsubscribe, resume)
    rate_limit_storage_uri: str = "memory://"
    # The customer portal (issue #14): step-up answers and code requests per client IP (the handler
    # also counts per pay link), short sessions, one-time codes.
    rate_limit_step_up: str = "5/minute;20/hour"
    rate_limit_portal: str = "30/minute;200/hour"  # every change a customer makes in the portal (POST /portal/…)
    portal_session_minutes: int = Field(default=30, ge=5, le=240)  # absolute end of a portal session
    portal_idle_minutes: int = Field(default=10, ge=2, le=60)  # ends after this long without a request
    portal_code_minutes: int = Field(default=10, ge=2, le=60)  # a one-time code is valid this long
    portal_code_attempts: int = Field(default=5, ge=1, le=10)  # wrong codes before the code dies
    portal_step_up_failures: int = Field(default=5, ge=1, le=20)  # wrong answers per pay link per hour
    portal_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=64 * 1024)  # one attachment (PDF/JPEG/PNG)
    # A bank statement line above this is not booked: it goes to the manual queue with the reason.
    camt_line_cap_cents: int = Field(default=10_000_000, ge=1)
    # The insurer, as it appears on letters and GiroCodes.
    creditor_name: str = "Beispiel Versicherung AG"
    creditor_iban: str = "DE02120300000000202051"
    creditor_bic: str = "BYLADEM1001"
    creditor_address: str = "Musterstraße 1, 10115 Berlin"
    default_plan: str = "de-follow-up"
    # Collections analytics (docs/analytics.md): what winning a new customer costs, so a kept contract
    # saves it (DOMAIN.md §12: the seed's 250 EUR), and the window a payment counts as cured by a message.
    acquisition_cost_cents: int = Field(default=25_000, ge=0, le=100_000_000)
    cure_window_days: int = Field(default=7, ge=1, le=90)
    # State (Bundesland, e.g. "NW") of the central dunning court that handles the insurer's court
    # applications (Zentrales Mahngericht): its public holidays extend court periods (§222(2) ZPO).
    # Empty: nation-wide holidays only.
    court_state: str | None = None
    # Payload encryption (infra/crypto/codec.py, README "Privacy: encrypted payloads"): AES-256-GCM keys as a
    # JSON object {"key id": "<base64 of 32 bytes>", …}; all decrypt, `payload_key_id` encrypts. Empty: a
    # development key generated once into data_dir/payload-keys.json.
    payload_keys: dict[str, SecretStr] = Field(default_factory=dict)
    payload_key_id: str = ""  # the active key; may be empty when exactly one key is configured
    # A static credential for the codec endpoint (/codec/encode, /codec/decode), besides signed-in staff
    # and API clients with scope codec: `Authorization: Bearer <token>`, and in development also inside
    # the URL the dev server's Temporal UI calls (web/internal/codec.py). Empty: generated in development
    # (data_dir/secrets.json); in production it stays off unless set.
    codec_token: SecretStr = SecretStr("")
    # Real providers (issue #5, see providers/ and README "Real providers"). The embedded
    # outbox and the TestPay pay page stay the default; each job is switched on by itself.
    email_provider: Literal["outbox", "sendgrid"] = "outbox"
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    payment_provider: Literal["testpay", "stripe"] = "testpay"
    stripe_api_key: str = ""
    stripe_webhook_secret: str = ""  # whsec_… of the webhook endpoint /webhooks/stripe
    stripe_api_base: str = ""  # empty: Stripe's own; set to a local fake for trying out
    stripe_payment_method_types: list[str] = Field(default_factory=list)  # empty: the dashboard's choice
    stripe_session_hours: int = Field(default=23, ge=1, le=24)  # Checkout allows at most 24 h
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""  # also checks the status-callback signatures
    twilio_from: str = ""  # sender number (E.164) or a Messaging Service SID (MG…)
    twilio_api_base: str = ""  # empty: Twilio's own
    sendgrid_api_key: str = ""
    sendgrid_from_email: str = ""
    sendgrid_from_name: str = ""
    sendgrid_webhook_public_key: str = ""  # Event Webhook verification key (base64 DER, ECDSA P-256)
    sendgrid_api_host: str = ""  # empty: SendGrid's own
    webhook_tolerance_seconds: int = Field(default=300, ge=30, le=3600)  # replay window for provider webhooks
    # How long the ledger API and the pay pages wait for the case's answer to a payment (balance left,
    # cover restored); after that they answer "received, being booked" and the case goes on by itself.
    payment_answer_seconds: float = Field(default=5.0, ge=0, le=30)
    # Cases a worker process keeps in memory between their tasks (the SDK's sticky cache, about 230 KiB
    # each); a case beyond it is replayed from its history at its next task. The SDK's own default is
    # 1,000; with as many cases busy at once the cache thrashes (docs/benchmarks.md: +30 % cases/s at
    # 1,000 busy cases with room for all), so a worker keeps up to 5,000 (about 1.1 GiB).
    worker_cached_workflows: int = Field(default=5000, ge=1, le=1_000_000)

    @field_validator("court_state")
    @classmethod
    def _known_court_state(cls, value: str | None) -> str | None:
        """A misspelt state would silently drop its holidays: name the valid ones at start."""
        if not value:
            return None
        states = [s for s in holidays.country_holidays("DE").subdivisions if len(s) == 2]
        if value not in states:
            raise ValueError(f"COURT_STATE must be one of {', '.join(states)} (or empty), got {value!r}")
        return value

    @field_validator(
        "rate_limit_sign_in", "rate_limit_pay", "rate_limit_campaign", "rate_limit_step_up", "rate_limit_portal"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A limit the rate limiter cannot read would fail every request: name it at start."""
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f'a rate limit reads like "10/minute" or "100/hour;10/minute", got {value!r}') from None
        return value

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        """A secret set by hand must be long enough to resist guessing; an empty one is generated in
        development, and stays empty in production (where production_problems names it)."""
        generated: dict[str, str] | None = None
        for name in GENERATED_SECRETS:
            value = _plain(getattr(self, name))
            if value and len(value) < 16:
                raise ValueError(f"{name.upper()} must be at least 16 characters, got {len(value)}")
            if not value and self.environment != "production":
                generated = generated or installation_secrets(self.data_dir)
                current = getattr(self, name)
                setattr(self, name, SecretStr(generated[name]) if isinstance(current, SecretStr) else generated[name])
        return self

    @field_validator("default_plan")
    @classmethod
    def _known_default_plan(cls, value: str) -> str:
        """A misspelt plan would fail every case the sweep starts: name the known ones at start."""
        if value not in BUILTIN_PLANS:
            raise ValueError(f"DEFAULT_PLAN must be one of {', '.join(sorted(BUILTIN_PLANS))}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _provider_credentials(self) -> Settings:
        """A provider switched on without its credentials is a configuration error, named at start."""
        needed = {
            "stripe": ("payment_provider", ["stripe_api_key", "stripe_webhook_secret"]),
            "twilio": ("sms_provider", ["twilio_account_sid", "twilio_auth_token", "twilio_from"]),
            "sendgrid": ("email_provider", ["sendgrid_api_key", "sendgrid_from_email", "sendgrid_webhook_public_key"]),
        }
        for provider, (switch, fields) in needed.items():
            if getattr(self, switch) == provider:
                missing = [f.upper() for f in fields if not getattr(self, f)]
                if missing:
                    raise ValueError(f"{switch.upper()}={provider} needs {', '.join(missing)}")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ledger.sqlite3'}"

    @property
    def demo_plans_selectable(self) -> bool:
        """Demo plans (minute-long deadlines, not legally effective) can be chosen for a contract in
        development only; in production they are neither offered (`/api/plans`) nor accepted."""
        return self.environment != "production"

    def selectable_plan_ids(self) -> list[str]:
        return sorted(p for p, plan in BUILTIN_PLANS.items() if self.demo_plans_selectable or not plan.demo)


def _plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _needed_in_production(name: str, settings: Settings) -> bool:
    """Which generated secrets production must be given. The codec token is optional there (staff
    sign in through OIDC, systems use API clients with scope codec); TestPay's only while it is on."""
    if name == "codec_token":
        return False
    if name == "testpay_webhook_secret":
        return settings.payment_provider == "testpay"
    return True


def production_problems(settings: Settings) -> list[str]:
    """Everything that makes these settings unsafe for production, each named with what to do.
    Empty: safe to start. get_settings() refuses to start with ENVIRONMENT=production otherwise."""
    problems: list[str] = []
    for name in GENERATED_SECRETS:
        if _needed_in_production(name, settings) and not _plain(getattr(settings, name)):
            problems.append(
                f"{name.upper()} is not set: production takes every secret from the environment "
                "(a generated one lives in one machine's data folder and differs on the next)"
            )
    if settings.payment_provider == "testpay":
        problems.append("PAYMENT_PROVIDER=testpay: TestPay moves no real money; set PAYMENT_PROVIDER=stripe")
    if BUILTIN_PLANS[settings.default_plan].demo:
        problems.append(
            f"DEFAULT_PLAN={settings.default_plan} is a demo plan (minute-long deadlines, not legally "
            "effective); set e.g. DEFAULT_PLAN=de-follow-up"
        )
    if settings.campaign_plan == "demo":
        problems.append(
            "CAMPAIGN_PLAN=demo is make run's minute-scale campaign (no quiet hours); set CAMPAIGN_PLAN=default"
        )
    if not settings.payload_keys:
        problems.append(
            "PAYLOAD_KEYS is empty: production needs payload keys from the secret store "
            "(the generated development key lives in one machine's data folder)"
        )
    if not settings.oidc_issuer:
        problems.append(
            "OIDC_ISSUER is empty: staff sign in through the identity provider in production, and the "
            "Temporal UI's codec calls are authenticated with the signed-in user's token"
        )
    else:
        if not _https(settings.oidc_issuer):
            problems.append(f"OIDC_ISSUER={settings.oidc_issuer} must be an https URL")
        if not settings.oidc_client_id:
            problems.append("OIDC_CLIENT_ID is empty: OIDC sign-in needs the client registered at the issuer")
    if not _https(settings.public_base_url):
        problems.append(
            f"PUBLIC_BASE_URL={settings.public_base_url} must be https: pay links, customer pages and "
            "provider webhooks cross the internet"
        )
    if not _https(settings.internal_base_url) and not _loopback(settings.internal_base_url):
        problems.append(
            f"INTERNAL_BASE_URL={settings.internal_base_url} must be https (or loopback): staff session "
            "cookies and the OIDC callback must not travel in clear"
        )
    if not _https(settings.temporal_ui_url) and not _loopback(settings.temporal_ui_url):
        problems.append(
            f"TEMPORAL_UI_URL={settings.temporal_ui_url} is neither loopback nor https: the Temporal UI "
            "must run behind TLS with OIDC sign-in (docs/temporal-ui.md); the codec trusts its origin"
        )
    if settings.effective_database_url.startswith("sqlite"):
        problems.append(
            "DATABASE_URL is not PostgreSQL: the ledger (money and legal records) must not be a SQLite file "
            "in one machine's data folder; set DATABASE_URL=postgresql://…"
        )
    return problems


class UnsafeProduction(SystemExit):
    """ENVIRONMENT=production with unsafe settings: the process stops, naming every problem."""


def refuse_unsafe_production(settings: Settings) -> None:
    if settings.environment != "production":
        return
    problems = production_problems(settings)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise UnsafeProduction(
            f"ENVIRONMENT=production refuses to start ({len(problems)} problems; docs/deployment.md):\n{lines}"
        )


def private_data_dir(data_dir: Path) -> None:
    """Files this process creates are its owner's only (umask 077, also for the children it starts),
    the data folder is 0700, and files an older version left readable to others are tightened."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(data_dir):
        for name in [folder, *(os.path.join(folder, d) for d in dirs), *(os.path.join(folder, f) for f in files)]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:  # another process removed a temporary file meanwhile
                continue
            if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
                continue
            os.chmod(name, stat.S_IMODE(info.st_mode) & 0o700)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process; refuses unsafe production settings and makes data_dir private."""
    settings = Settings()
    refuse_unsafe_production(settings)
    private_data_dir(settings.data_dir)
    return settings
