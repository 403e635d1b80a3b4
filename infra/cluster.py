"""How to reach a Temporal cluster or Temporal Cloud: TLS (mutual, with a client certificate) or an
API key, from the settings (docs/deployment.md). The embedded dev server needs none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.service import TLSConfig

from infra.config import Settings


def _read(path: str, what: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what}: no such file {path!r}")
    return file.read_bytes()


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `Client.connect`: `tls` and `api_key` as configured.

    A certificate without its key (or the reverse) is a configuration error, named at start.
    """
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if bool(cert) != bool(key):
        raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be given together")
    api_key = settings.temporal_api_key.get_secret_value()
    options: dict[str, Any] = {}
    if cert or ca or settings.temporal_tls_server_name:
        options["tls"] = TLSConfig(
            client_cert=_read(cert, "TEMPORAL_TLS_CERT") if cert else None,
            client_private_key=_read(key, "TEMPORAL_TLS_KEY") if key else None,
            server_root_ca_cert=_read(ca, "TEMPORAL_TLS_CA") if ca else None,
            domain=settings.temporal_tls_server_name or None,
        )
    elif settings.temporal_tls or api_key:
        options["tls"] = True  # system CAs; Temporal Cloud with an API key needs TLS
    if api_key:
        options["api_key"] = api_key
    return options
