"""The fake providers' credentials: random, made once per checkout into data/fake-credentials.json
(0600, like the engine's own secrets), so the fakes serving in one terminal and
`python -m dev.fakes --env` in another agree without a credential written into the code.
FAKE_CREDENTIALS_FILE points elsewhere (tests may)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from infra.config import ROOT
from infra.crypto.files import create_once

NAMES = ("stripe_api_key", "stripe_webhook_secret", "twilio_auth_token", "sendgrid_api_key", "oidc_client", "oidc_api")


def _path() -> Path:
    return Path(os.environ.get("FAKE_CREDENTIALS_FILE") or ROOT / "data" / "fake-credentials.json")


def load() -> dict[str, str]:
    stored: dict[str, str] = json.loads(
        create_once(_path(), lambda: json.dumps({n: secrets.token_urlsafe(24) for n in NAMES}).encode())
    )
    missing = [n for n in NAMES if n not in stored]
    if missing:
        raise SystemExit(f"{_path()} lacks {', '.join(missing)}: remove the file, the fakes make a new one")
    return stored


CREDENTIALS = load()
