"""Files customers attach in the portal (issue #14): a dispute's evidence, a proof of payment.

A file is read with a hard cap (PORTAL_UPLOAD_BYTES) and accepted only when its bytes are a PDF, a
JPEG or a PNG: the type is judged from the content, never from the browser's Content-Type or the
file name (a renamed .exe is refused, a PNG named .pdf is stored as a PNG). The check goes a little
beyond the magic number — a PDF ends with %%EOF, a PNG starts with a sound IHDR chunk and ends with
IEND, a JPEG ends with its end-of-image marker — so a truncated or merely prefixed file is refused
too. The size cap here is the one the customer is told about; web/safety (BodySizeLimit) lets the
upload paths' bodies be that large plus the form around the file.

Nothing is stored for a refused file; an upload whose request the case refused is deleted again.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session
from starlette.datastructures import UploadFile

from models.portal import PortalUpload, ServiceRequest
from web.public.portal.i18n import texts

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
ACCEPTED = (PDF, JPEG, PNG)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_TAIL = 1024  # %%EOF (PDF) and FF D9 (JPEG) must be this close to the end (trailing padding allowed)
_CHUNK = 64 * 1024


class UploadRefused(Exception):
    """A file the portal does not take: `key` is the text to show (with `params`)."""

    def __init__(self, key: str, message: str, **params: str | int) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class CheckedFile:
    """An accepted file: its type from the bytes, its size and its SHA-256."""

    data: bytes = field(repr=False)
    content_type: str
    size: int
    sha256: str


def _is_pdf(data: bytes) -> bool:
    if not data.startswith(b"%PDF-") or len(data) < 16 or data[5:6] not in (b"1", b"2"):
        return False
    return b"%%EOF" in data[-_TAIL:]


def _is_png(data: bytes) -> bool:
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 8 + 25 + 12:
        return False
    length, kind = struct.unpack(">I4s", data[8:16])
    if length != 13 or kind != b"IHDR":
        return False
    header, crc = data[16:29], struct.unpack(">I", data[29:33])[0]
    width, height = struct.unpack(">II", header[:8])
    if width == 0 or height == 0 or zlib.crc32(b"IHDR" + header) != crc:
        return False
    return data.endswith(_PNG_END)


def _is_jpeg(data: bytes) -> bool:
    if not data.startswith(b"\xff\xd8\xff") or len(data) < 16:
        return False
    # The byte after FF D8 FF is a marker: APPn (E0–EF), a table (DB, C4), a frame (C0–CF) or a comment.
    if not (0xC0 <= data[3] <= 0xFE):
        return False
    return b"\xff\xd9" in data[-_TAIL:]


def detect(data: bytes) -> str | None:
    """The file's type judged from its bytes (one of ACCEPTED), or None."""
    if _is_pdf(data):
        return PDF
    if _is_png(data):
        return PNG
    if _is_jpeg(data):
        return JPEG
    return None


def check(data: bytes, limit: int) -> CheckedFile:
    """Accept `data` as a PDF, JPEG or PNG of at most `limit` bytes, or raise UploadRefused."""
    if not data:
        raise UploadRefused("portal.upload.empty", "the file is empty")
    if len(data) > limit:
        raise UploadRefused(
            "portal.upload.too_large", f"the file must be at most {limit} bytes", limit=_megabytes(limit)
        )
    content_type = detect(data)
    if content_type is None:
        raise UploadRefused("portal.upload.type", "the file is not a PDF, JPEG or PNG (judged by its content)")
    return CheckedFile(data, content_type, len(data), hashlib.sha256(data).hexdigest())


def _megabytes(limit: int) -> str:
    if limit < 1024 * 1024:
        return f"{limit // 1024} KB"
    value = limit / (1024 * 1024)
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def chosen(file: object) -> UploadFile | None:
    """The form's file field, or None when the customer chose no file (browsers then send an empty
    part without a file name)."""
    if not isinstance(file, UploadFile):
        return None
    if not file.filename and (file.size or 0) == 0:
        return None
    return file


async def read(file: UploadFile, limit: int) -> CheckedFile:
    """Read at most `limit` + 1 bytes of `file` (never more into memory) and check them."""
    parts: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = await file.read(min(_CHUNK, limit + 1 - received))
        if not chunk:
            break
        parts.append(chunk)
        received += len(chunk)
    return check(b"".join(parts), limit)


def store(session: Session, customer_id: int, checked: CheckedFile, now: datetime) -> PortalUpload:
    """Keep an accepted file (in the caller's transaction)."""
    upload = PortalUpload(
        customer_id=customer_id,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        data=checked.data,
        created_at=now,
    )
    session.add(upload)
    session.flush()
    return upload


def drop_orphan(session: Session, request_id: int) -> None:
    """The case refused the request: unlink and delete its upload, so no file stays without a request."""
    row = session.get(ServiceRequest, request_id)
    if row is None or row.upload_id is None:
        return
    upload = session.get(PortalUpload, row.upload_id)
    row.upload_id = None
    session.add(row)
    session.flush()
    if upload is not None:
        session.delete(upload)


texts(
    {
        "portal.upload.empty": ("Die Datei ist leer.", "The file is empty.", "Filen er tom."),
        "portal.upload.too_large": (
            "Die Datei ist zu groß: höchstens {limit} sind möglich.",
            "The file is too large: at most {limit} is possible.",
            "Filen er for stor: højst {limit} er muligt.",
        ),
        "portal.upload.type": (
            "Die Datei ist kein PDF, JPEG oder PNG. Wir prüfen den Inhalt der Datei, nicht ihren Namen.",
            "The file is not a PDF, JPEG or PNG. We check the file's content, not its name.",
            "Filen er ikke en PDF, JPEG eller PNG. Vi kontrollerer filens indhold, ikke dens navn.",
        ),
        "portal.upload.hint": (
            "PDF, JPEG oder PNG, höchstens {limit}.",
            "PDF, JPEG or PNG, at most {limit}.",
            "PDF, JPEG eller PNG, højst {limit}.",
        ),
    }
)


def limit_text(limit: int) -> str:
    """The size limit as the pages name it ("5 MB")."""
    return _megabytes(limit)
