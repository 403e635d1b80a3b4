"""Files customers attach in the portal (issue #14): the type is judged from the bytes (PDF, JPEG, PNG,
with a look at their structure), never from the name or the browser's claim; the size has a hard cap
the customer is told; a refused file writes nothing — no upload, no request, no change to the case."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.portal import PortalUpload, ServiceRequest
from tests.apps import BothApps
from tests.helpers import advance_until, berlin_today, form_post, open_case, status
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from web.deps import AppContext
from web.public.portal import uploads

CONTRACT = "K-100001"
LIMIT = 64 * 1024  # the smallest cap the settings allow


def pdf_bytes(padding: int = 0) -> bytes:
    body = b"1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"% filler\n" * (padding // 9)
    return b"%PDF-1.7\n" + body + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes() -> bytes:
    """A real 1×1 white PNG: signature, IHDR, IDAT, IEND."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
        + _chunk(b"IEND", b"")
    )


def jpeg_bytes() -> bytes:
    """The frame of a JPEG: SOI, an APP0/JFIF segment, (no image data needed for the check), EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xda" + b"\x00" * 16 + b"\xff\xd9"


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def test_the_type_comes_from_the_bytes() -> None:
    assert uploads.detect(pdf_bytes()) == uploads.PDF
    assert uploads.detect(png_bytes()) == uploads.PNG
    assert uploads.detect(jpeg_bytes()) == uploads.JPEG
    assert uploads.detect(EXE) is None
    assert uploads.detect(b"Just some text, saved as invoice.pdf\n" * 3) is None


@pytest.mark.parametrize(
    "data",
    [
        pdf_bytes()[:-7],  # a PDF cut off before %%EOF
        b"%PDF-x.y\n" + pdf_bytes()[9:],  # not a PDF version
        png_bytes()[:-12],  # a PNG without its IEND chunk
        png_bytes()[:29] + b"\x00\x00\x00\x00" + png_bytes()[33:],  # the IHDR's checksum broken
        b"\x89PNG\r\n\x1a\n" + EXE,  # a PNG signature in front of something else
        jpeg_bytes()[:-2],  # a JPEG without its end-of-image marker
        b"\xff\xd8\xff" + EXE,  # a JPEG's first bytes in front of a program
    ],
)
def test_a_magic_number_alone_is_not_enough(data: bytes) -> None:
    with pytest.raises(uploads.UploadRefused) as refused:
        uploads.check(data, LIMIT)
    assert refused.value.key == "portal.upload.type"


def test_a_file_over_the_cap_is_refused_naming_the_limit_and_an_empty_one_too() -> None:
    with pytest.raises(uploads.UploadRefused) as refused:
        uploads.check(pdf_bytes(padding=LIMIT), LIMIT)
    assert refused.value.key == "portal.upload.too_large" and refused.value.params == {"limit": "64 KB"}
    assert uploads.limit_text(5 * 1024 * 1024) == "5 MB"
    with pytest.raises(uploads.UploadRefused) as empty:
        uploads.check(b"", LIMIT)
    assert empty.value.key == "portal.upload.empty"
    checked = uploads.check(png_bytes(), LIMIT)
    assert (checked.content_type, checked.size, len(checked.sha256)) == (uploads.PNG, len(png_bytes()), 64)


# --- through the portal's forms ----------------------------------------------------------------------


@pytest_asyncio.fixture
async def apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> AsyncIterator[BothApps]:
    small = settings.model_copy(update={"portal_upload_bytes": LIMIT})
    yield BothApps(AppContext(engine, time_env.client, small, Inbound(engine, time_env.client, small)), who="real")


def counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        files = session.exec(select(func.count()).select_from(PortalUpload)).one()
        asked = session.exec(select(func.count()).select_from(ServiceRequest)).one()
    return int(files), int(asked)


async def test_refused_files_write_nothing_and_a_png_named_pdf_is_stored_as_a_png(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    today = berlin_today(await time_env.get_current_time())
    customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-1", today, 30_000)], language="en")
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    await advance_until(time_env, handle, lambda s: s.balance_cents == 30_000, step=timedelta(minutes=1))
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    client = portal_client(apps, portal_cookie(engine, customer_id, token_id, "en"))
    before = await status(handle)

    async def dispute(name: str, data: bytes, content_type: str) -> str:
        response = await form_post(
            client,
            "/portal/dispute",
            "/portal/dispute",
            {"reason": "I cancelled in May."},
            files={"attachment": (name, data, content_type)},
        )
        return f"{response.status_code} {response.text}"

    text_as_pdf = await dispute("invoice.pdf", b"Dear sir, I paid.\n" * 20, "application/pdf")
    assert text_as_pdf.startswith("422") and "is not a PDF, JPEG or PNG" in text_as_pdf
    assert "We check the file&#39;s content, not its name" in text_as_pdf
    renamed_exe = await dispute("receipt.jpg", EXE, "image/jpeg")
    assert renamed_exe.startswith("422") and "is not a PDF, JPEG or PNG" in renamed_exe
    oversize = await dispute("scan.pdf", pdf_bytes(padding=LIMIT), "application/pdf")
    assert oversize.startswith("422") and "too large: at most 64 KB" in oversize
    assert "I cancelled in May." in oversize  # what the customer wrote is kept in the form
    assert counts(engine) == (0, 0)
    assert (await status(handle)).hold == before.hold

    # Far beyond the form's allowance the body limit stops it before the handler (413, naming bytes).
    huge = await dispute("huge.pdf", pdf_bytes(padding=LIMIT * 3), "application/pdf")
    assert huge.startswith("413") and "at most" in huge and "bytes" in huge
    assert counts(engine) == (0, 0)

    proof = await form_post(
        client,
        "/portal/proof",
        "/portal/proof",
        {"amount": "300,00", "paid_on": today.isoformat()},
        files={"attachment": ("transfer.pdf", png_bytes(), "application/pdf")},
    )
    assert proof.status_code == 200, proof.text
    assert "Our finance team will answer within four working days" in proof.text
    with session_scope(engine) as session:
        [row] = session.exec(select(ServiceRequest)).all()
        upload = session.get(PortalUpload, row.upload_id)
        assert upload is not None
        assert (upload.content_type, upload.size, upload.data) == (uploads.PNG, len(png_bytes()), png_bytes())
        assert (row.queue, row.kind, row.details["amount_cents"]) == ("finance", "proof_of_payment", "30000")
    assert (await status(handle)).hold == before.hold  # a proof of payment does not pause the case

    missing = await form_post(client, "/portal/proof", "/portal/proof", {"note": "see attachment"})
    assert missing.status_code == 422 and "Please choose a file" in missing.text
    assert counts(engine) == (1, 1)
    await client.aclose()
