"""Article text files: ``<dir>/NNN_<16 hex>.txt``, always the latest version, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path


def text_file_name(sequence: int, canonical_url: str) -> str:
    """``NNN_<hex>.txt``: NNN the zero-padded sequence (widening past 999), hex the first
    16 digits of SHA-256 of the canonical URL. Never derived from the URL's path."""
    if sequence < 0:
        raise ValueError(f"sequence must not be negative, got {sequence}")
    digest = hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:16]
    return f"{sequence:03d}_{digest}.txt"


def write_text_file(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` (plus a final newline) to ``directory/name`` atomically.

    A temporary file in the same directory is written, fsynced and renamed over the
    target, so a reader sees the old file or the new one, never a torn one.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".txt", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return target


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
