"""The SQLite store: the only module that speaks SQL.

Tables:
    articles      one row per article (canonical URL), its current state and validators
    article_urls  every URL an article was reached under, for de-duplication
    versions      a view: one row per distinct text of an article, with its diff stats; the
                  text is rebuilt from the article's paragraphs (see :data:`VERSION_TEXT`)
    version_rows  append-only: the rows behind ``versions``, each text as a JSON list of
                  paragraph ids instead of the text itself
    paragraphs    every distinct line (title or paragraph) of an article, stored once
    versions_fts  FTS5 index over version titles and texts (external content: the view),
                  written by :func:`insert_version`
    events        new, changed, title_changed, removed, restored: what a reader wants to know
    fetches       a log of every download and its outcome, failures included
    runs          one row per crawl of a source: when, outcome, counts
    deliveries    alert deliveries per event and target (webhook), with attempts
    locks         named locks with an expiry, so a dead process cannot hold one forever

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` brings an older
store forward, each migration in one transaction. Writers take the write lock up front
(``BEGIN IMMEDIATE``) and wait on a busy timeout, so several processes may write at once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from crawler.errors import StoreError
from crawler.processes import process_is_dead

BUSY_TIMEOUT_MS = 30_000
WAL_SIZE_LIMIT = 64 * 2**20
EVENT_KINDS = ("new", "changed", "title_changed", "removed", "restored")


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            canonical_url TEXT NOT NULL UNIQUE,
            source TEXT,
            status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'removed')),
            first_seen TEXT NOT NULL,
            last_checked TEXT NOT NULL,
            last_changed TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            fingerprint TEXT NOT NULL,
            version_count INTEGER NOT NULL DEFAULT 0,
            text_file TEXT NOT NULL
        );
        CREATE TABLE article_urls (
            url TEXT PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id)
        );
        CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            number INTEGER NOT NULL,
            fetched_at TEXT NOT NULL,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            author TEXT,
            published TEXT,
            site_name TEXT,
            language TEXT,
            description TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            categories TEXT NOT NULL DEFAULT '[]',
            text TEXT NOT NULL,
            words INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            change_class TEXT CHECK (change_class IN ('title', 'minor', 'major')),
            paragraphs_added INTEGER NOT NULL DEFAULT 0,
            paragraphs_removed INTEGER NOT NULL DEFAULT 0,
            paragraphs_modified INTEGER NOT NULL DEFAULT 0,
            words_added INTEGER NOT NULL DEFAULT 0,
            words_removed INTEGER NOT NULL DEFAULT 0,
            diff TEXT,
            extractor TEXT,
            UNIQUE (article_id, number)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            version_id INTEGER REFERENCES versions(id),
            kind TEXT NOT NULL
                CHECK (kind IN ('new', 'changed', 'title_changed', 'removed', 'restored')),
            at TEXT NOT NULL,
            summary TEXT NOT NULL
        );
        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            article_id INTEGER REFERENCES articles(id),
            at TEXT NOT NULL,
            http_status INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            elapsed_ms INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            reason TEXT
        );
        CREATE INDEX versions_article ON versions (article_id, number);
        CREATE INDEX versions_fetched_at ON versions (fetched_at);
        CREATE INDEX events_at ON events (at);
        CREATE INDEX events_article ON events (article_id, at);
        CREATE INDEX fetches_at ON fetches (at);
        CREATE INDEX fetches_url ON fetches (url, at);
        CREATE INDEX article_urls_article ON article_urls (article_id);
        """
    )
    db.table("versions").enable_fts(
        ["title", "text"], create_triggers=True, tokenize="unicode61 remove_diacritics 2"
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        ALTER TABLE articles ADD COLUMN gone_since TEXT;
        ALTER TABLE articles ADD COLUMN listed_at TEXT;
        CREATE INDEX articles_source_checked ON articles (source, status, last_checked);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'failed', 'interrupted')),
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            not_modified INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX runs_source_started ON runs (source, started_at);
        """
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        ALTER TABLE articles ADD COLUMN next_check_at TEXT;
        ALTER TABLE articles ADD COLUMN next_check_reason TEXT;
        CREATE INDEX articles_source_due ON articles (source, next_check_at);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events(id),
            target TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed', 'filtered')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (event_id, target)
        );
        CREATE INDEX deliveries_status ON deliveries (target, status);
        CREATE TABLE locks (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        """
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        ALTER TABLE fetches ADD COLUMN source TEXT;
        UPDATE fetches
            SET source = (SELECT a.source FROM articles a WHERE a.id = fetches.article_id);
        CREATE INDEX fetches_source_at ON fetches (source, at);
        """
    )


# The text of a version, rebuilt from its paragraph ids in order (SQLite 3.40 has no ORDER BY
# inside group_concat; an ordered subquery is aggregated in its order). Readers, Datasette,
# exports and the FTS index see it as ``versions.text``.
VERSION_TEXT = """coalesce((SELECT group_concat(t, char(10)) FROM (
        SELECT p.text AS t FROM json_each(r.paragraphs) AS j
        CROSS JOIN paragraphs AS p ON p.id = j.value ORDER BY j.key)), '')"""
_VERSION_COLUMNS = (
    "id, article_id, number, fetched_at, url, title, author, published, site_name, language, "
    "description, tags, categories, {text} AS text, words, fingerprint, change_class, "
    "paragraphs_added, paragraphs_removed, paragraphs_modified, words_added, words_removed, "
    "diff, extractor"
)
FTS_TOKENIZE = "unicode61 remove_diacritics 2"


def _migration_5(db: sqlite_utils.Database) -> None:
    """Paragraph storage: versions of one article share most paragraphs, so each distinct
    line of an article is stored once (``paragraphs``) and a version keeps the list of its
    line ids. ``versions`` becomes a view with the same columns (text rebuilt), so every
    reader, Datasette and the FTS index (external content) keep working unchanged.

    All of it (DDL and data) runs in the one transaction :func:`migrate` opened: a failure
    or a kill part-way leaves the store at schema 4, as it was.
    """
    for statement in (
        "DROP TRIGGER IF EXISTS versions_ai",
        "DROP TRIGGER IF EXISTS versions_ad",
        "DROP TRIGGER IF EXISTS versions_au",
        "DROP TABLE IF EXISTS versions_fts",
        """CREATE TABLE paragraphs (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            text TEXT NOT NULL
        )""",
        "CREATE INDEX paragraphs_article ON paragraphs (article_id)",
        "ALTER TABLE versions RENAME TO version_rows",
        "ALTER TABLE version_rows ADD COLUMN paragraphs TEXT NOT NULL DEFAULT '[]'",
    ):
        db.execute(statement)
    order = db.execute("SELECT id, article_id FROM version_rows ORDER BY article_id, number")
    article, known = None, dict[str, int]()
    for version_id, article_id in order.fetchall():
        if article_id != article:
            article, known = article_id, {}
        text = db.execute("SELECT text FROM version_rows WHERE id = ?", [version_id]).fetchone()[0]
        ids = _paragraph_ids(db, article_id, text, known)
        db.execute(
            "UPDATE version_rows SET paragraphs = ? WHERE id = ?", [json.dumps(ids), version_id]
        )
    for statement in (
        "ALTER TABLE version_rows DROP COLUMN text",
        f"""CREATE VIEW versions AS SELECT {_VERSION_COLUMNS.format(text=VERSION_TEXT)}
            FROM version_rows AS r""",
        f"""CREATE VIRTUAL TABLE versions_fts USING fts5 (
            title, text, content = 'versions', content_rowid = 'id',
            tokenize = '{FTS_TOKENIZE}'
        )""",
        # The crawler only appends versions (insert_version indexes them); these keep the
        # index right should anyone update or delete a row.
        """CREATE TRIGGER version_rows_bd BEFORE DELETE ON version_rows BEGIN
            INSERT INTO versions_fts (versions_fts, rowid, title, text)
                SELECT 'delete', id, title, text FROM versions WHERE id = old.id;
        END""",
        """CREATE TRIGGER version_rows_bu BEFORE UPDATE ON version_rows BEGIN
            INSERT INTO versions_fts (versions_fts, rowid, title, text)
                SELECT 'delete', id, title, text FROM versions WHERE id = old.id;
        END""",
        """CREATE TRIGGER version_rows_au AFTER UPDATE ON version_rows BEGIN
            INSERT INTO versions_fts (rowid, title, text)
                SELECT id, title, text FROM versions WHERE id = new.id;
        END""",
        # FTS5's 'rebuild' fails on this view (SQL logic error, SQLite 3.40); this works.
        "INSERT INTO versions_fts (rowid, title, text) SELECT id, title, text FROM versions",
    ):
        db.execute(statement)


def _paragraph_ids(
    db: sqlite_utils.Database, article_id: int, text: str, known: dict[str, int]
) -> list[int]:
    """The ids of the lines of ``text``, inserting the lines the article lacks into
    ``paragraphs``; ``known`` maps the article's stored lines to their ids (updated)."""
    lines = text.split("\n")
    new = [line for line in dict.fromkeys(lines) if line not in known]
    if new:
        # Writers hold the write lock (BEGIN IMMEDIATE), so the next ids are ours.
        top = int(db.execute("SELECT coalesce(max(id), 0) FROM paragraphs").fetchone()[0])
        rows = [(top + offset, article_id, line) for offset, line in enumerate(new, 1)]
        db.conn.executemany("INSERT INTO paragraphs (id, article_id, text) VALUES (?, ?, ?)", rows)
        known.update((line, paragraph_id) for paragraph_id, _, line in rows)
    return [known[line] for line in lines]


def _migration_6(db: sqlite_utils.Database) -> None:
    # SQLite cannot change a CHECK constraint in place: the table is rebuilt.
    db.executescript(
        """
        CREATE TABLE runs_new (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'failed', 'interrupted', 'crashed')),
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            not_modified INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            host TEXT,
            pid INTEGER
        );
        INSERT INTO runs_new (id, source, started_at, finished_at, outcome, fetched, new,
                changed, unchanged, not_modified, removed, errors, error)
            SELECT id, source, started_at, finished_at, outcome, fetched, new, changed,
                unchanged, not_modified, removed, errors, error FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_new RENAME TO runs;
        CREATE INDEX runs_source_started ON runs (source, started_at);
        CREATE INDEX runs_running ON runs (outcome) WHERE outcome = 'running';
        """
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("articles, versions, events, fetches and full-text search", _migration_1),
    ("crawl runs; removal confirmation and listing dates on articles", _migration_2),
    ("next checks of articles, alert deliveries, crawl locks", _migration_3),
    ("the source of every fetch, for extraction health per source", _migration_4),
    ("paragraph storage: each distinct line of an article once, versions as a view", _migration_5),
    ("the process of every run, so a run whose process died is marked crashed", _migration_6),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class StoredArticle:
    """An ``articles`` row."""

    id: int
    url: str
    canonical_url: str
    source: str | None
    status: str
    first_seen: str
    last_checked: str
    last_changed: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    fingerprint: str
    version_count: int
    text_file: str
    gone_since: str | None = None
    listed_at: str | None = None
    next_check_at: str | None = None
    next_check_reason: str | None = None


@dataclass(frozen=True)
class StoredVersion:
    """A ``versions`` row (the diff as decoded JSON)."""

    id: int
    article_id: int
    number: int
    fetched_at: str
    url: str
    title: str
    author: str | None
    published: str | None
    site_name: str | None
    language: str | None
    description: str | None
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    text: str
    words: int
    fingerprint: str
    change_class: str | None
    paragraphs_added: int
    paragraphs_removed: int
    paragraphs_modified: int
    words_added: int
    words_removed: int
    diff: dict[str, Any] | None
    extractor: str | None


def open_store(
    path: str | Path, *, create: bool = True, check: bool = False
) -> sqlite_utils.Database:
    """Open (and with ``create``, create) the store at ``path``, migrated to the current schema.

    With ``check``, ``PRAGMA quick_check`` runs first (about 0.1 s per 100 MB): writers
    pass it once per process. Text files left ahead of the store by a crashed writer are
    reconciled (see :mod:`crawler.store.recovery`). Raises :class:`StoreError` if the file
    is missing (without ``create``), is damaged or not a SQLite database (the file is
    never modified then), or was written by a newer version of this program.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreError(f"no store at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {path.parent}: {exc}") from None
    elif not path.is_file():
        raise StoreError(f"the store path {path} is not a file")
    else:
        _check_header(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if check:
            quick_check(db, path)
        _use_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        # After a long reader held checkpoints back, the WAL shrinks again to this size.
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        raise damaged_store(path, exc) from None
    from crawler.store.recovery import recover_text_files  # it builds on this module

    try:
        recover_text_files(db, path.parent / "articles")
    except sqlite3.DatabaseError as exc:
        raise damaged_store(path, exc) from None
    return db


def _use_wal(db: sqlite_utils.Database) -> None:
    """Switch the store to WAL (once per store). The switch needs the database to itself
    and SQLite reports "locked" at once, without waiting, when another process opening an
    older (rollback-journal) store at the same moment holds a read lock: so it is retried.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def damaged_store(path: Path, problem: object) -> StoreError:
    """The error for a store that SQLite cannot read: what is wrong and the way back."""
    detail = " ".join(str(problem).split())
    if isinstance(problem, sqlite3.OperationalError) and "locked" in detail:
        return StoreError(
            f"the store {path} is locked by another process ({detail}); nothing was "
            "changed: run again when the other crawl or query has finished"
        )
    if isinstance(problem, sqlite3.OperationalError) and (
        "full" in detail or "disk i/o" in detail.lower()
    ):
        return StoreError(
            f"cannot write the store {path}: {detail} (is the disk full?); nothing "
            "committed was lost: free space and run again"
        )
    return StoreError(
        f"cannot open the store {path}: it is damaged or not a SQLite database ({detail}); "
        f"it was left untouched: recover it with `sqlite3 {path} .recover | sqlite3 "
        "recovered.db` or restore a backup"
    )


def _check_header(path: Path) -> None:
    # Only stat(), never open(): closing any descriptor of the database file drops every
    # POSIX lock this process's SQLite connections hold on it (howtocorrupt.html 2.2), and
    # another thread may be writing. A header that is not SQLite's is reported by SQLite
    # itself ("file is not a database") without it writing anything.
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from None
    if empty and next((path.parent / "articles").glob("*.txt"), None) is not None:
        raise StoreError(
            f"the store {path} is empty, but articles/ beside it holds text files: it looks "
            "truncated; restore a backup (or move articles/ away to start a new store)"
        )


def integrity_problems(db: sqlite_utils.Database) -> list[str]:
    """What ``PRAGMA integrity_check`` and ``foreign_key_check`` find; empty if all is well."""
    problems = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    problems = [] if problems == ["ok"] else problems
    for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"{table} row {rowid} points to a missing {parent} row")
    return problems


def quick_check(db: sqlite_utils.Database, path: Path) -> None:
    """Raise :class:`StoreError` naming the recovery path if ``PRAGMA quick_check`` fails."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
    if problems != ["ok"]:
        raise damaged_store(path, f"quick_check: {problems[0]}")


def open_store_readonly(path: str | Path) -> sqlite_utils.Database:
    """Open an existing store read-only; writes through it fail. Raises :class:`StoreError`.

    A store written by an older version of this program is migrated first (briefly
    opened for writing), so queries always see the current schema.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"no store at {path}")
    db = _connect_readonly(path)
    version = schema_version(db)
    if version < SCHEMA_VERSION:
        db.close()
        open_store(path, create=False).close()
        db = _connect_readonly(path)
        version = schema_version(db)
    if version != SCHEMA_VERSION:
        db.close()
        raise StoreError(
            f"the store {path} has schema version {version}, newer than this program's "
            f"{SCHEMA_VERSION}: upgrade the crawler"
        )
    return db


def _connect_readonly(path: Path) -> sqlite_utils.Database:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        schema_version(db)
    except sqlite3.DatabaseError as exc:
        raise damaged_store(path, exc) from None
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    """The store's schema version (``PRAGMA user_version``)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> None:
    """Apply the migrations the store lacks, each in its own transaction with its
    ``user_version`` bump: a migration killed half-way leaves the store as it was.

    Two processes migrating at once: the second waits for the write lock, then finds
    nothing to do. Raises :class:`StoreError` if the store is newer than this program.
    """
    inside = _InTransaction(db.conn)
    while True:
        with write_transaction(db):
            version = schema_version(db)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema version {version}, newer than this program's "
                    f"{SCHEMA_VERSION}: upgrade the crawler"
                )
            if version == SCHEMA_VERSION:
                return
            _, apply = MIGRATIONS[version]
            apply(inside)
            db.execute(f"PRAGMA user_version = {version + 1}")


class _InTransaction(sqlite_utils.Database):
    """A view of a connection whose ``executescript`` stays inside the open transaction.

    ``sqlite3``'s own ``executescript`` commits first, which would split a migration
    into one transaction per statement.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, recursive_triggers=False, execute_plugins=False)

    def executescript(self, sql: str) -> sqlite3.Cursor:
        cursor = self.conn.cursor()
        for statement in split_statements(sql):
            cursor.execute(statement)
        return cursor


def split_statements(script: str) -> list[str]:
    """The complete SQL statements of ``script`` (trigger bodies kept whole)."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip().strip(";").strip():
                statements.append(buffer.strip())
            buffer = ""
    return statements


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in one write transaction, taking the write lock up front.

    ``BEGIN IMMEDIATE`` waits on the busy timeout instead of failing later when a
    read would have to be upgraded to a write. Rolls back on any exception.
    """
    conn = db.conn
    if conn.in_transaction:
        raise StoreError("a write transaction is already open")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def _article(
    row: sqlite3.Row | tuple[Any, ...] | None, cursor: sqlite3.Cursor
) -> StoredArticle | None:
    if row is None:
        return None
    names = [column[0] for column in cursor.description]
    return StoredArticle(**dict(zip(names, row, strict=True)))


def find_article(
    db: sqlite_utils.Database, canonical_url: str, urls: tuple[str, ...] = ()
) -> StoredArticle | None:
    """The article stored under ``canonical_url`` or reached before under one of ``urls``."""
    cursor = db.execute("SELECT * FROM articles WHERE canonical_url = ?", [canonical_url])
    found = _article(cursor.fetchone(), cursor)
    if found is not None or not urls:
        return found
    marks = ", ".join("?" for _ in urls)
    cursor = db.execute(
        f"SELECT a.* FROM articles a JOIN article_urls u ON u.article_id = a.id "
        f"WHERE u.url IN ({marks}) ORDER BY a.id LIMIT 1",
        list(urls),
    )
    return _article(cursor.fetchone(), cursor)


def get_article(db: sqlite_utils.Database, article_id: int) -> StoredArticle | None:
    """The article with ``article_id``, or None."""
    cursor = db.execute("SELECT * FROM articles WHERE id = ?", [article_id])
    return _article(cursor.fetchone(), cursor)


def latest_version(db: sqlite_utils.Database, article_id: int) -> StoredVersion | None:
    """The newest version of an article, or None if it has none."""
    cursor = db.execute(
        "SELECT * FROM versions WHERE article_id = ? ORDER BY number DESC LIMIT 1", [article_id]
    )
    row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip([column[0] for column in cursor.description], row, strict=True))
    values["tags"] = tuple(json.loads(values["tags"]))
    values["categories"] = tuple(json.loads(values["categories"]))
    values["diff"] = json.loads(values["diff"]) if values["diff"] else None
    return StoredVersion(**values)


def insert_article(db: sqlite_utils.Database, **fields: Any) -> int:
    """Insert an ``articles`` row; return its id."""
    return _insert(db, "articles", fields)


def update_article(db: sqlite_utils.Database, article_id: int, **fields: Any) -> None:
    """Update columns of one ``articles`` row."""
    if not fields:
        return
    assignments = ", ".join(f"{_column(name)} = ?" for name in fields)
    db.execute(
        f"UPDATE articles SET {assignments} WHERE id = ?",  # noqa: S608 (names checked)
        [*fields.values(), article_id],
    )


def add_article_urls(db: sqlite_utils.Database, article_id: int, urls: tuple[str, ...]) -> None:
    """Remember that the article was reached under each of ``urls``."""
    for url in dict.fromkeys(urls):
        db.execute(
            "INSERT OR IGNORE INTO article_urls (url, article_id) VALUES (?, ?)", [url, article_id]
        )


def insert_version(db: sqlite_utils.Database, **fields: Any) -> int:
    """Append a version (lists and dicts stored as JSON); return its id.

    The text's lines go to ``paragraphs`` unless the article already has them; the row
    keeps their ids (see :func:`_migration_5`). The text is indexed for search here (the
    index's content is the ``versions`` view; triggers keep it current on updates and
    deletes, which the crawler never does).
    """
    for key in ("tags", "categories"):
        fields[key] = json.dumps(list(fields.get(key) or ()), ensure_ascii=False)
    if fields.get("diff") is not None:
        fields["diff"] = json.dumps(fields["diff"], ensure_ascii=False)
    article_id, text = fields["article_id"], fields.pop("text")
    known = dict(db.execute("SELECT text, id FROM paragraphs WHERE article_id = ?", [article_id]))
    ids = _paragraph_ids(db, article_id, text, known)
    version_id = _insert(db, "version_rows", {**fields, "paragraphs": json.dumps(ids)})
    db.execute(
        "INSERT INTO versions_fts (rowid, title, text) VALUES (?, ?, ?)",
        [version_id, fields["title"], text],
    )
    return version_id


def insert_event(
    db: sqlite_utils.Database,
    article_id: int,
    kind: str,
    at: str,
    summary: str,
    version_id: int | None = None,
) -> int:
    """Append an ``events`` row; return its id."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    row = {
        "article_id": article_id,
        "version_id": version_id,
        "kind": kind,
        "at": at,
        "summary": summary,
    }
    return _insert(db, "events", row)


def insert_fetch(db: sqlite_utils.Database, **fields: Any) -> int:
    """Append a ``fetches`` log row; return its id."""
    return _insert(db, "fetches", fields)


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    # Plain SQL: sqlite-utils' insert() reads the table's layout on every call, which was a
    # quarter of the writer's time on a revisit pass (bench/crawl.py profile).
    columns = ", ".join(_column(name) for name in row)
    marks = ", ".join("?" for _ in row)
    cursor = db.execute(
        f"INSERT INTO {_column(table)} ({columns}) VALUES ({marks})",  # noqa: S608 (names checked)
        list(row.values()),
    )
    last_pk = cursor.lastrowid
    if not isinstance(last_pk, int):
        raise StoreError(f"insert into {table} returned no row id")
    return last_pk


def _column(name: str) -> str:
    """A table or column name from our own code, quoted; anything else is a bug."""
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return f'"{name}"'


def count_rows(db: sqlite_utils.Database, table: str) -> int:
    """The number of rows in one of the store's tables."""
    if table not in {
        "articles",
        "article_urls",
        "versions",
        "paragraphs",
        "events",
        "fetches",
        "runs",
        "deliveries",
        "locks",
    }:
        raise ValueError(f"unknown table {table!r}")
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def source_articles(db: sqlite_utils.Database, source: str) -> Iterator[tuple[StoredArticle, str]]:
    """Every article of ``source`` with each URL it was reached under (one pair per URL)."""
    cursor = db.execute(
        "SELECT a.*, u.url AS alias FROM articles a JOIN article_urls u ON u.article_id = a.id "
        "WHERE a.source = ? ORDER BY a.id",
        [source],
    )
    names = [column[0] for column in cursor.description]
    for row in cursor:
        values = dict(zip(names, row, strict=True))
        alias = values.pop("alias")
        yield StoredArticle(**values), alias


def start_run(
    db: sqlite_utils.Database,
    source: str,
    at: str,
    *,
    host: str | None = None,
    pid: int | None = None,
) -> int:
    """Insert a ``runs`` row for a crawl of ``source`` by process ``host:pid`` that starts
    now; return its id.

    Call it holding the source's lock: any run of the source still marked ``running``
    then belongs to a process that died, and is marked ``crashed``.
    """
    with write_transaction(db):
        db.execute(
            "UPDATE runs SET outcome = 'crashed', finished_at = ?, "
            "error = 'the crawl process ended without finishing its run' "
            "WHERE source = ? AND outcome = 'running'",
            [at, source],
        )
        row = {"source": source, "started_at": at, "outcome": "running", "host": host, "pid": pid}
        return _insert(db, "runs", row)


def mark_crashed_runs(
    db: sqlite_utils.Database,
    at: str,
    is_dead: Callable[[str, int], bool],
    reason: str = "the crawl process ended without finishing its run",
) -> list[int]:
    """Mark ``crashed`` every run still ``running`` whose process (``is_dead(host, pid)``)
    has ended; return their ids. Runs of unknown processes are left alone."""
    with write_transaction(db):
        stale = [
            run_id
            for run_id, host, pid in db.execute(
                "SELECT id, host, pid FROM runs WHERE outcome = 'running' ORDER BY id"
            ).fetchall()
            if host is not None and pid is not None and is_dead(host, pid)
        ]
        for run_id in stale:
            db.execute(
                "UPDATE runs SET outcome = 'crashed', finished_at = ?, error = ? "
                "WHERE id = ? AND outcome = 'running'",
                [at, reason, run_id],
            )
    return stale


def finish_run(
    db: sqlite_utils.Database,
    run_id: int,
    at: str,
    outcome: str,
    counts: dict[str, int],
    error: str | None = None,
) -> None:
    """Close a ``runs`` row with its outcome and counts."""
    known = ("fetched", "new", "changed", "unchanged", "not_modified", "removed", "errors")
    fields: dict[str, Any] = {key: counts.get(key, 0) for key in known}
    with write_transaction(db):
        db.table("runs").update(
            run_id, {"finished_at": at, "outcome": outcome, "error": error, **fields}
        )


def acquire_lock(
    db: sqlite_utils.Database,
    name: str,
    owner: str,
    now: str,
    expires: str,
    is_dead: Callable[[str], bool] | None = None,
) -> bool:
    """Take the lock ``name`` for ``owner`` until ``expires``; False if someone else holds it.

    A lock whose expiry has passed, or whose owner ``is_dead`` (by default: an owner
    ``host:pid`` whose process on this host has ended), is taken over.
    """
    is_dead = is_dead or owner_is_dead
    with write_transaction(db):
        row = db.execute("SELECT owner, expires_at FROM locks WHERE name = ?", [name]).fetchone()
        if row is not None and row[0] != owner and row[1] > now and not is_dead(row[0]):
            return False
        db.execute(
            "INSERT INTO locks (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            [name, owner, now, expires],
        )
        return True


def owner_is_dead(owner: str) -> bool:
    """Whether a lock's owner (``host:pid``) is a process of this host that has ended."""
    host, _, pid = owner.rpartition(":")
    return pid.isdigit() and process_is_dead(host, int(pid))


def release_lock(db: sqlite_utils.Database, name: str, owner: str) -> None:
    """Give up the lock ``name`` if ``owner`` holds it."""
    with write_transaction(db):
        db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", [name, owner])


RUN_NOT_COMPLETED = ("running", "interrupted", "crashed")


def last_run(db: sqlite_utils.Database, source: str) -> tuple[str, str] | None:
    """(started_at, outcome) of the newest run of ``source`` (by id: the clock may have
    jumped), or None."""
    row = db.execute(
        "SELECT started_at, outcome FROM runs WHERE source = ? ORDER BY id DESC LIMIT 1",
        [source],
    ).fetchone()
    return (row[0], row[1]) if row else None


def last_run_started(db: sqlite_utils.Database, source: str) -> str | None:
    """When the newest run of ``source`` (by id: the clock may have jumped) started, or None."""
    row = db.execute(
        "SELECT started_at FROM runs WHERE source = ? ORDER BY id DESC LIMIT 1", [source]
    ).fetchone()
    return row[0] if row else None


def backup_store(db: sqlite_utils.Database, target: str | Path) -> None:
    """Write a consistent copy of the store to ``target`` (which must not exist) with
    ``VACUUM INTO``: safe while other processes write, unlike copying the file (whose
    ``-wal`` holds the latest commits). Raises :class:`StoreError`."""
    target = Path(target)
    if target.exists():
        raise StoreError(f"{target} already exists: choose a new file for the backup")
    try:
        db.execute("VACUUM INTO ?", [str(target)])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot write the backup {target}: {exc}") from None
