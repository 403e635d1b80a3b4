"""Payload encryption: everything the engine stores in Temporal is AES-256-GCM ciphertext.

Workflow and activity inputs and results, signals, updates, queries, memo, summaries and
details, and failure messages (with `DefaultFailureConverterWithEncodedAttributes`) all pass
through the payload codec, so the Temporal server (and its database and backups) holds only
ciphertext. Search attributes cannot be encrypted (the server indexes them): they never hold
personal data by design (`workflows/search_attributes.py`).

Each encrypted payload names the key that sealed it (`encryption-key-id` in its metadata), so
keys rotate: configure several keys, one active for encryption, all usable for decryption
(README "Privacy: encrypted payloads"). The key id is bound to the ciphertext as associated
data, so a payload relabelled with another key id fails to decrypt instead of decrypting
wrongly.

Core-free on purpose: the worker, the web app's codec endpoint, the CLI and the tests use it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from infra.config import Settings
from infra.crypto.files import create_once

ENCODING = b"binary/encrypted"
CIPHER = b"AES256-GCM"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
DEV_KEY_FILE = "payload-keys.json"


class PayloadKeyError(ValueError):
    """The key configuration is unusable, or a payload cannot be decrypted; the message says why."""


@dataclass(frozen=True)
class PayloadKeys:
    """The configured keys: `active_id` encrypts, every key in `keys` decrypts."""

    active_id: str
    keys: Mapping[str, bytes]

    @classmethod
    def parse(cls, keys: Mapping[str, str], active_id: str = "") -> PayloadKeys:
        if not keys:
            raise PayloadKeyError("payload_keys must name at least one key")
        parsed: dict[str, bytes] = {}
        for key_id, text in keys.items():
            if not key_id or len(key_id) > 64 or not key_id.isascii() or not key_id.isprintable():
                raise PayloadKeyError(f"payload key id must be 1..64 printable ASCII characters, got {key_id!r:.70}")
            try:
                key = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"payload key {key_id!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise PayloadKeyError(
                    f"payload key {key_id!r} must be {KEY_BYTES} bytes (AES-256), got {len(key)} bytes"
                )
            parsed[key_id] = key
        if not active_id:
            if len(parsed) > 1:
                raise PayloadKeyError(
                    f"payload_key_id must name the active key when several are configured: {sorted(parsed)}"
                )
            active_id = next(iter(parsed))
        if active_id not in parsed:
            raise PayloadKeyError(f"payload_key_id {active_id!r} is not among the configured keys {sorted(parsed)}")
        return cls(active_id=active_id, keys=parsed)


def new_key() -> str:
    """A fresh random AES-256 key, base64, as `payload_keys` expects it."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def development_keys(data_dir: Path) -> PayloadKeys:
    """The embedded default's key: generated once into `data_dir/payload-keys.json` (mode 0600).

    Every process of one installation (worker, web app, CLI) shares the data folder and so the
    key; deleting the folder deletes the Temporal database with it, so nothing stays unreadable.
    Several processes may start at once: the first creates the file atomically, the others read it.
    """
    path = data_dir / DEV_KEY_FILE
    try:
        stored = json.loads(
            create_once(path, lambda: json.dumps({"active": "dev-1", "keys": {"dev-1": new_key()}}, indent=2).encode())
        )
        return PayloadKeys.parse(stored["keys"], stored["active"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PayloadKeyError(f"{path} is not a usable key file ({error}); set PAYLOAD_KEYS or remove it") from None


def configured_keys(settings: Settings) -> PayloadKeys:
    if settings.payload_keys:
        return PayloadKeys.parse(
            {key_id: secret.get_secret_value() for key_id, secret in settings.payload_keys.items()},
            settings.payload_key_id,
        )
    return development_keys(settings.data_dir)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM, a fresh random 96-bit nonce per payload; the whole inner payload (its
    metadata, such as the encoding and the pydantic type, and its data) is sealed."""

    def __init__(self, keys: PayloadKeys) -> None:
        self.keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keys.active_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, "encryption-cipher": CIPHER, KEY_ID: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """Encrypted payloads are opened; any other payload (written before encryption was on) passes as is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"payload was encrypted with key {key_id!r}, which is not configured (known: {sorted(self._ciphers)})"
            )
        if len(payload.data) < NONCE_BYTES + 16:
            raise PayloadKeyError(f"encrypted payload is too short ({len(payload.data)} bytes) to be AES-GCM")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadKeyError(f"payload does not decrypt with key {key_id!r}: altered or mislabelled") from None
        return Payload.FromString(plain)


def encrypting_converter(codec: PayloadCodec) -> DataConverter:
    """The project's pydantic converter, with the codec and failure messages encrypted too."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    return encrypting_converter(EncryptionCodec(configured_keys(settings)))
