"""Article text files: ``<dir>/NNN_<16 hex>.txt``, always the latest version, written atomically.

Crash safety. A text file is written (temporary file, fsync, rename) inside the store
transaction that records its version, before the commit. A crash between the rename and
the commit leaves a file ahead of the store (or a file without a row), so every such
transaction first opens a *journal* (:func:`open_journal`): ``<dir>/.pending/<pid>-<thread>``.
While it exists, :func:`write_text_file` notes each temporary and final name in it before
touching them; the journal is removed after the commit. A journal found later, under the
store's write lock, names exactly the files a crashed or rolled-back transaction may have
left behind (see :mod:`crawler.store.recovery`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from pathlib import Path

TEMP_PREFIX = ".tmp-"
JOURNAL_DIR = ".pending"


def text_file_name(sequence: int, canonical_url: str) -> str:
    """``NNN_<hex>.txt``: NNN the zero-padded sequence (widening past 999), hex the first
    16 digits of SHA-256 of the canonical URL. Never derived from the URL's path."""
    if sequence < 0:
        raise ValueError(f"sequence must not be negative, got {sequence}")
    digest = hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:16]
    return f"{sequence:03d}_{digest}.txt"


def text_file_content(text: str) -> str:
    """What a text file holding ``text`` contains: the text with one final newline."""
    return text if text.endswith("\n") else text + "\n"


def write_text_file(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` (plus a final newline) to ``directory/name`` atomically.

    A temporary file in the same directory is written, fsynced and renamed over the
    target, so a reader sees the old file or the new one, never a torn one. If this
    thread has a journal open for ``directory``, both names are noted in it first.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    handle, temporary = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".txt", dir=directory)
    try:
        _note(directory, Path(temporary).name, name)
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text_file_content(text))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return target


def journal_path(directory: Path) -> Path:
    """Where this thread's journal for ``directory`` lives."""
    return directory / JOURNAL_DIR / f"{os.getpid()}-{threading.get_ident()}"


def open_journal(directory: Path) -> Path:
    """Start noting the files this thread writes to ``directory``; return the journal.

    Call it holding the store's write lock, and :func:`close_journal` after the commit.
    """
    path = journal_path(directory)
    for _ in range(5):  # another process may remove the empty folder in between
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(b"")
            return path
        except FileNotFoundError:
            continue
    path.write_bytes(b"")
    return path


def close_journal(path: Path) -> None:
    """Remove a journal whose transaction committed (recovery may have removed it),
    and its folder once empty, so the text folder holds only text files."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def read_journal(path: Path) -> list[str]:
    """The file names a journal lists (temporary and final), each once, in order."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return []
    names = (name for line in lines for name in line.split("\t"))
    return list(dict.fromkeys(name for name in names if _plain(name)))


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _note(directory: Path, temporary: str, name: str) -> None:
    journal = journal_path(directory)
    if not journal.exists():
        return
    with open(journal, "a", encoding="utf-8") as stream:
        stream.write(f"{temporary}\t{name}\n")


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
