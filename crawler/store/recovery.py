"""Crash recovery: text files reconciled with the store, and a full consistency check.

A text file is written before the transaction that points to it commits (see
:mod:`crawler.textfiles`). After a crash, or a transaction rolled back after its files
were written, the journals in ``articles/.pending/`` name the files that may be ahead of
the store; :func:`recover_text_files` puts them back in line under the write lock, when
no other process can be between writing a file and committing. :func:`check_text_files`
compares every article with its file (``crawler check``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from crawler.store import get_article, latest_version, write_transaction
from crawler.textfiles import (
    JOURNAL_DIR,
    TEMP_PREFIX,
    close_journal,
    open_journal,
    read_journal,
    text_file_content,
    write_text_file,
)

log = logging.getLogger(__name__)


@dataclass
class Repairs:
    """What a recovery or check found and did, one line per file."""

    rewritten: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many files were repaired."""
        return len(self.rewritten) + len(self.removed) + len(self.swept)

    def lines(self) -> list[str]:
        """One human-readable line per repair or problem."""
        return (
            [f"rewrote {name} from the store" for name in self.rewritten]
            + [f"removed {name}: no article in the store points to it" for name in self.removed]
            + [f"removed the temporary file {name}" for name in self.swept]
            + self.problems
        )


@contextmanager
def text_transaction(db: sqlite_utils.Database, text_dir: Path) -> Iterator[sqlite_utils.Database]:
    """A write transaction that may write text files to ``text_dir``, journalled.

    If the block fails, the transaction is rolled back and the files it wrote are put
    back in line with the store at once (or, if that fails too, by the next writer).
    """
    journal: Path | None = None
    try:
        with write_transaction(db):
            journal = open_journal(text_dir)
            yield db
    except BaseException:
        if journal is not None:
            with contextlib.suppress(Exception):
                recover_text_files(db, text_dir)
        raise
    if journal is not None:
        close_journal(journal)


def recover_text_files(db: sqlite_utils.Database, text_dir: Path) -> Repairs:
    """Reconcile the files named by leftover journals in ``text_dir`` with the store.

    Cheap when there is nothing to do (one listing of ``.pending/``). Otherwise, holding
    the write lock: a file whose article is missing is removed, a file that differs from
    the article's latest version is rewritten from the store, temporary files are removed.
    Logs one WARNING line with the counts (each file at INFO).
    """
    repairs = Repairs()
    if not _journals(text_dir):
        return repairs
    with write_transaction(db):
        journals = _journals(text_dir)  # again: a live writer may have finished meanwhile
        names: dict[str, None] = {}
        for journal in journals:
            names.update(dict.fromkeys(read_journal(journal)))
        for name in names:
            if not name.startswith(TEMP_PREFIX):
                _reconcile(db, text_dir, name, repairs, remove_orphans=True)
        _sweep(text_dir, repairs)
        for journal in journals:
            close_journal(journal)
    for line in repairs.lines():
        log.info("text files: %s", line)
    if repairs.count:
        log.warning(
            "text files: %s put back in line with the store after an interrupted write "
            "(%s rewritten, %s removed, %s temporary files removed)",
            repairs.count,
            len(repairs.rewritten),
            len(repairs.removed),
            len(repairs.swept),
        )
    return repairs


def check_text_files(db: sqlite_utils.Database, text_dir: Path, *, repair: bool) -> Repairs:
    """Compare every article's text file with its latest version, and look for files no
    article points to. With ``repair``, fix what can be fixed (under the write lock)."""
    repairs = Repairs()
    context = write_transaction(db) if repair else contextlib.nullcontext(db)
    with context:
        known: set[str] = set()
        for (name,) in db.execute("SELECT text_file FROM articles ORDER BY id").fetchall():
            known.add(name)
            _reconcile(db, text_dir, name, repairs, remove_orphans=repair, rewrite=repair)
        if text_dir.is_dir():
            for entry in sorted(os.scandir(text_dir), key=lambda e: e.name):
                if not entry.is_file() or entry.name in known:
                    continue
                if entry.name.startswith(TEMP_PREFIX):
                    if repair:
                        os.unlink(entry.path)
                        repairs.swept.append(entry.name)
                    else:
                        repairs.problems.append(f"{entry.name}: a leftover temporary file")
                elif entry.name.endswith(".txt"):
                    if repair:
                        os.unlink(entry.path)
                        repairs.removed.append(entry.name)
                    else:
                        repairs.problems.append(f"{entry.name}: no article points to it")
        if repair:
            for journal in _journals(text_dir):
                close_journal(journal)
    return repairs


def _journals(text_dir: Path) -> list[Path]:
    try:
        return sorted(path for path in (text_dir / JOURNAL_DIR).iterdir() if path.is_file())
    except FileNotFoundError:
        return []


def _reconcile(
    db: sqlite_utils.Database,
    text_dir: Path,
    name: str,
    repairs: Repairs,
    *,
    remove_orphans: bool,
    rewrite: bool = True,
) -> None:
    path = text_dir / name
    article = _article_of(db, name)
    if article is None:
        if path.is_file() and remove_orphans:
            path.unlink()
            repairs.removed.append(name)
        return
    version = latest_version(db, article)
    if version is None:
        repairs.problems.append(f"{name}: article {article} has no version")
        return
    expected = text_file_content(version.text)
    try:
        current: str | None = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        current = None
    if current == expected:
        return
    if rewrite:
        write_text_file(text_dir, name, version.text)
        repairs.rewritten.append(name)
    else:
        state = "missing" if current is None else "differs from the latest version"
        repairs.problems.append(f"{name}: {state} (article {article})")


def _article_of(db: sqlite_utils.Database, name: str) -> int | None:
    """The id of the article whose text file is ``name`` (``NNN_…``: NNN is its id)."""
    number, _, _ = name.partition("_")
    if not number.isdigit():
        return None
    article = get_article(db, int(number))
    return article.id if article is not None and article.text_file == name else None


def _sweep(text_dir: Path, repairs: Repairs) -> None:
    """Remove temporary files; call it holding the write lock (no live writer has one)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(text_dir):
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                repairs.swept.append(entry.name)
