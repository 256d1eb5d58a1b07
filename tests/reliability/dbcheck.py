"""``assert_db_healthy``: the store and its text files are consistent, checked with plain
sqlite3 and file reads (not through the crawler's own code, so it can catch its bugs).

Healthy means: ``PRAGMA integrity_check`` is ok, ``foreign_key_check`` is empty, every
article's versions are numbered 1..version_count, every article's text file exists and
holds its latest version (compared by SHA-256), and the text folder holds no temporary
files, journals, or text files that no article points to.

Right after a crash the crawler may have written files ahead of the store; they are named
in its journals (``articles/.pending/``) and put back in line by the next writer. With
``allow_journalled=True`` such files are tolerated and counted instead of failing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

TEMP_PREFIX = ".tmp-"
JOURNAL_DIR = ".pending"


@dataclass(frozen=True)
class Health:
    """What the check saw: counts, and files a journal allowed to be out of line."""

    articles: int
    versions: int
    journalled: int


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def journalled_names(text_dir: Path) -> set[str]:
    """Every name (temporary or final) listed in a leftover journal."""
    names: set[str] = set()
    pending = text_dir / JOURNAL_DIR
    if pending.is_dir():
        for journal in pending.iterdir():
            for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
                names.update(part for part in line.split("\t") if part)
    return names


def assert_db_healthy(store_path: Path, *, allow_journalled: bool = False) -> Health:
    """Assert the store at ``store_path`` and ``articles/`` beside it are consistent."""
    store_path = Path(store_path)
    text_dir = store_path.parent / "articles"
    conn = sqlite3.connect(f"{store_path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        articles = conn.execute(
            "SELECT id, text_file, version_count FROM articles ORDER BY id"
        ).fetchall()
        numbers: dict[int, list[int]] = {}
        for article_id, number in conn.execute(
            "SELECT article_id, number FROM versions ORDER BY article_id, number"
        ):
            numbers.setdefault(article_id, []).append(number)
        latest = {
            article_id: text
            for article_id, text in conn.execute(
                "SELECT v.article_id, v.text FROM versions v JOIN articles a "
                "ON a.id = v.article_id AND v.number = a.version_count"
            )
        }
        versions = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    finally:
        conn.close()

    allowed = journalled_names(text_dir) if allow_journalled else set()
    if not allow_journalled:
        leftover = list((text_dir / JOURNAL_DIR).glob("*")) if text_dir.is_dir() else []
        assert leftover == [], f"journals left over: {leftover}"
    out_of_line = set()
    names = set()
    for article_id, name, count in articles:
        names.add(name)
        assert numbers.get(article_id) == list(range(1, count + 1)), (article_id, count)
        path = text_dir / name
        expected = latest[article_id]
        expected = expected if expected.endswith("\n") else expected + "\n"
        actual = path.read_bytes() if path.is_file() else None
        if actual is None or _sha(actual) != _sha(expected.encode("utf-8")):
            assert name in allowed, (
                f"{name}: text file {'missing' if actual is None else 'differs from the latest version'}"
            )
            out_of_line.add(name)
    if text_dir.is_dir():
        for entry in text_dir.iterdir():
            if entry.is_dir():
                continue
            if entry.name.startswith(TEMP_PREFIX) or entry.name not in names:
                assert entry.name in allowed or (
                    allow_journalled and entry.name.startswith(TEMP_PREFIX)
                ), f"{entry.name}: a leftover temporary file or a file no article points to"
                out_of_line.add(entry.name)
    return Health(len(articles), versions, len(out_of_line))
