"""Secret files of the embedded default: created once per installation, readable by its owner only.

Every process of one installation (worker, web app, CLI) shares the data folder and so the file.
Several processes may start at once: the first creates the file atomically (a private temporary file
linked into place), the others read what it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def create_once(path: Path, content: Callable[[], bytes]) -> bytes:
    """The file's bytes, after creating it with `content()` (mode 0600) if it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, content())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process was first: then its file is the file
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()
