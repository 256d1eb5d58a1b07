"""Read-side queries over the store: search, changes, articles, history, versions, export, stats.

Every function takes an open database (read-only is enough) and returns frozen values or
iterators of them; nothing here writes. Filters are a :class:`Filters` value whose times are
store timestamps (ISO 8601 UTC, ``…Z``), built from user input by :func:`parse_time`.

Search goes through FTS5: :func:`fts_query` turns what a user typed into FTS5 syntax (each
word quoted, so ``Nato-Chef`` is the phrase ``nato chef``; ``*`` keeps a prefix; quotes,
``AND``/``OR``/``NOT``, ``NEAR(…)`` and parentheses are kept), and :func:`search` ranks with
bm25, the title weighted :data:`TITLE_WEIGHT` times the text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from crawler.errors import ConfigError, CrawlerError, StoreError
from crawler.store import EVENT_KINDS, StoredArticle, StoredVersion, get_article
from crawler.urls import canonicalize_url

TITLE_WEIGHT = 10.0
SNIPPET_WORDS = 16
CANDIDATES = 1000  # newest matching versions that bm25 ranks
MARK_START, MARK_END = "**", "**"  # around matched words in search snippets
_SNIPPET_OPEN, _SNIPPET_CLOSE = "\x02", "\x03"
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- Filters and times -----------------------------------------------------------------


def parse_time(value: str, now: datetime) -> str:
    """A store timestamp from ``30m``, ``24h``, ``7d``, ``2w`` (before ``now``), an ISO date
    (midnight UTC) or an ISO datetime (naive means UTC). Raises :class:`ConfigError`."""
    text = value.strip()
    if match := _DURATION.fullmatch(text.lower()):
        amount, unit = int(match[1]), _UNITS[match[2]]
        return _stamp(now - timedelta(**{unit: amount}))
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _stamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"cannot read the time {value!r}: use 30m, 24h, 7d, 2w, 2026-11-24 or 2026-11-24T08:00"
        ) from None
    return _stamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Filters:
    """What to restrict a query to: a source, and a time window ``since <= t < until``."""

    source: str | None = None
    since: str | None = None
    until: str | None = None

    def clauses(self, time_column: str, source_column: str = "a.source") -> tuple[str, list[Any]]:
        """SQL conditions (joined with AND, or ``1``) and their parameters."""
        parts, params = [], []
        for column, op, value in (
            (source_column, "=", self.source),
            (time_column, ">=", self.since),
            (time_column, "<", self.until),
        ):
            if value is not None:
                parts.append(f"{column} {op} ?")
                params.append(value)
        return " AND ".join(parts) or "1", params


# --- Resolving articles and versions ---------------------------------------------------


def resolve_article(db: sqlite_utils.Database, ref: str) -> StoredArticle:
    """The article an ID or URL names (URLs canonicalised, then matched against canonical
    URLs and every URL the article was reached under). Raises :class:`CrawlerError`."""
    ref = ref.strip()
    found: StoredArticle | None = None
    if ref.isdigit():
        found = get_article(db, int(ref))
    elif ref:
        url = canonicalize_url(ref)
        row = db.execute(
            "SELECT id FROM articles WHERE canonical_url = ? UNION ALL "
            "SELECT article_id FROM article_urls WHERE url IN (?, ?) LIMIT 1",
            [url, url, ref],
        ).fetchone()
        found = get_article(db, row[0]) if row else None
    if found is None:
        raise CrawlerError(f"no article for {ref!r}")
    return found


def get_version(db: sqlite_utils.Database, article: StoredArticle, number: int) -> StoredVersion:
    """Version ``number`` of an article (negative counts from the latest: -1 is the latest).

    Raises :class:`CrawlerError` naming the versions there are.
    """
    wanted = article.version_count + 1 + number if number < 0 else number
    cursor = db.execute(
        "SELECT * FROM versions WHERE article_id = ? AND number = ?", [article.id, wanted]
    )
    row = cursor.fetchone()
    if row is None:
        raise CrawlerError(
            f"article {article.id} has no version {number} (it has 1 to {article.version_count})"
        )
    return _version(_named(cursor, row))


def _named(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip([column[0] for column in cursor.description], row, strict=True))


def _version(values: dict[str, Any]) -> StoredVersion:
    values["tags"] = tuple(json.loads(values["tags"]))
    values["categories"] = tuple(json.loads(values["categories"]))
    values["diff"] = json.loads(values["diff"]) if values["diff"] else None
    return StoredVersion(**values)


# --- Search ----------------------------------------------------------------------------

_FTS_TOKEN = re.compile(r'"(?:[^"]|"")*"\*?|\(|\)|[^\s()"]+')
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_COLUMN = re.compile(r"^(title|text):(.+)$")


def fts_query(text: str) -> str:
    """FTS5 syntax for a user's query: plain words quoted (``Nato-Chef`` → ``"Nato-Chef"``),
    ``word*`` a prefix, quoted phrases, ``AND``/``OR``/``NOT``, ``NEAR(…)``, parentheses and
    ``title:word`` kept; ``ß`` and ``ss`` match each other. Raises :class:`ConfigError`."""
    if text.count('"') % 2:
        raise ConfigError(f"malformed search query {text!r}: unbalanced quote")
    if "NEAR(" in text:
        return text  # NEAR groups have their own syntax: the user writes FTS5 here
    tokens = _FTS_TOKEN.findall(text)
    if not tokens:
        raise ConfigError("empty search query")
    parts: list[str] = []
    for token in tokens:
        # FTS5 takes an implicit AND only between phrases, so spell it out everywhere.
        if parts and parts[-1] not in (*_OPERATORS, "(") and token not in (*_OPERATORS, ")"):
            parts.append("AND")
        parts.append(_fts_token(token))
    return " ".join(parts)


def _fts_token(token: str) -> str:
    if token in _OPERATORS or token in ("(", ")"):
        return token
    column = ""
    if match := _COLUMN.match(token):
        column, token = f"{match[1]} : ", match[2]
    prefix = token.endswith("*")
    word = token.rstrip("*")
    if word.startswith('"') and word.endswith('"') and len(word) >= 2:
        word = word[1:-1].replace('""', '"')
    if not word.strip():
        raise ConfigError(f"malformed search query: nothing to search in {token!r}")
    star = "*" if prefix else ""
    variants = dict.fromkeys(_quote(v) + star for v in _sharp_s_variants(word))
    joined = " OR ".join(variants)
    return f"{column}({joined})" if len(variants) > 1 else f"{column}{joined}"


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _sharp_s_variants(word: str) -> tuple[str, ...]:
    # unicode61 folds case and diacritics but not ß; Swiss and older spellings use ss.
    lowered = word.lower()
    if "ß" in lowered:
        return (word, lowered.replace("ß", "ss"))
    if "ss" in lowered:
        return (word, lowered.replace("ss", "ß"))
    return (word,)


@dataclass(frozen=True)
class SearchHit:
    """One matching version: where it is, its title and a snippet with matches marked."""

    article_id: int
    version: int
    latest: bool
    canonical_url: str
    source: str | None
    fetched_at: str
    title: str
    snippet: str
    score: float


def search(
    db: sqlite_utils.Database,
    query: str,
    filters: Filters | None = None,
    *,
    all_versions: bool = False,
    limit: int = 20,
    candidates: int = CANDIDATES,
) -> list[SearchHit]:
    """The ``limit`` best matches for a user's query (see :func:`fts_query`), best first,
    among the ``candidates`` most recently stored matching versions (which bounds the cost
    of very common words). Only latest versions unless ``all_versions``; ``since``/``until``
    apply to the version's fetch time. Raises :class:`ConfigError` for a malformed query.
    """
    match = fts_query(query)
    where, params = (filters or Filters()).clauses("v.fetched_at")
    latest = "" if all_versions else "AND v.number = a.version_count"
    ranked = _fts(
        db,
        query,
        f"""SELECT id, score FROM (
                SELECT f.rowid AS id, bm25(versions_fts, {TITLE_WEIGHT}, 1.0) AS score
                FROM versions_fts f JOIN versions v ON v.id = f.rowid
                JOIN articles a ON a.id = v.article_id
                WHERE versions_fts MATCH ? {latest} AND {where}
                ORDER BY f.rowid DESC LIMIT ?
            ) ORDER BY score LIMIT ?""",
        [match, *params, candidates, limit],
    )
    if not ranked:
        return []
    return _hits(db, query, match, {rowid: score for rowid, score in ranked})


def _hits(
    db: sqlite_utils.Database, query: str, match: str, scores: dict[int, float]
) -> list[SearchHit]:
    # snippet() runs only for the few ranked rows, not for every match. One pass over the
    # matches in the ranked rows' rowid range: with ``rowid IN (…)`` handed to FTS5, every
    # id re-ran the whole query, prefix expansion included (20 times the cost of the
    # ranking for ``verkeh*``); the unary + keeps the IN list out of FTS5's hands.
    marks = ", ".join("?" for _ in scores)
    rows = _fts(
        db,
        query,
        f"""SELECT f.rowid, v.article_id, v.number, v.number = a.version_count,
                a.canonical_url, a.source, v.fetched_at, v.title,
                snippet(versions_fts, 1, ?, ?, '…', {SNIPPET_WORDS})
            FROM versions_fts f JOIN versions v ON v.id = f.rowid
            JOIN articles a ON a.id = v.article_id
            WHERE versions_fts MATCH ? AND f.rowid BETWEEN ? AND ?
                AND +f.rowid IN ({marks})""",
        [_SNIPPET_OPEN, _SNIPPET_CLOSE, match, min(scores), max(scores), *scores],
    )
    hits = [
        SearchHit(
            article_id,
            number,
            bool(latest),
            url,
            source,
            fetched_at,
            title,
            _marked(snippet),
            scores[rowid],
        )
        for rowid, article_id, number, latest, url, source, fetched_at, title, snippet in rows
    ]
    return sorted(hits, key=lambda hit: hit.score)


def _marked(snippet: str) -> str:
    return " ".join(
        snippet.replace(_SNIPPET_OPEN, MARK_START).replace(_SNIPPET_CLOSE, MARK_END).split()
    )


def _fts(db: sqlite_utils.Database, query: str, sql: str, params: list[Any]) -> list[Any]:
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if "fts5" in message or "no such column" in message:
            raise ConfigError(f"malformed search query {query!r}: {message}") from None
        raise StoreError(f"search failed: {message}") from None


# --- Changes, articles, history --------------------------------------------------------


@dataclass(frozen=True)
class ChangeEvent:
    """One event (new, changed, title_changed, removed, restored) with its article."""

    id: int
    at: str
    kind: str
    article_id: int
    canonical_url: str
    source: str | None
    version: int | None
    title: str | None
    change_class: str | None
    words_added: int
    words_removed: int
    summary: str


def list_changes(
    db: sqlite_utils.Database,
    filters: Filters | None = None,
    *,
    kinds: Sequence[str] = (),
    limit: int = 50,
) -> list[ChangeEvent]:
    """The newest events first; ``kinds`` restricts them. Raises :class:`ConfigError`."""
    for kind in kinds:
        if kind not in EVENT_KINDS:
            raise ConfigError(f"unknown event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    where, params = (filters or Filters()).clauses("e.at")
    if kinds:
        where += f" AND e.kind IN ({', '.join('?' for _ in kinds)})"
        params += list(kinds)
    cursor = db.execute(
        f"""SELECT e.id, e.at, e.kind, e.article_id, a.canonical_url, a.source,
                v.number AS version, v.title, v.change_class,
                coalesce(v.words_added, 0) AS words_added,
                coalesce(v.words_removed, 0) AS words_removed, e.summary
            FROM events e JOIN articles a ON a.id = e.article_id
            LEFT JOIN versions v ON v.id = e.version_id
            WHERE {where} ORDER BY e.at DESC, e.id DESC LIMIT ?""",
        [*params, limit],
    )
    return [ChangeEvent(**_named(cursor, row)) for row in cursor]


@dataclass(frozen=True)
class ArticleSummary:
    """A tracked article: its state and the title of its latest version."""

    id: int
    canonical_url: str
    source: str | None
    status: str
    versions: int
    first_seen: str
    last_checked: str
    last_changed: str
    title: str | None


def list_articles(
    db: sqlite_utils.Database, filters: Filters | None = None, *, limit: int | None = 100
) -> list[ArticleSummary]:
    """Articles, the most recently changed first; ``since``/``until`` apply to the last change.

    Walks events newest first (``events_at``; CROSS JOIN keeps that order) and keeps each
    article's last one, so the first ``limit`` come without sorting the whole table.
    """
    where, params = (filters or Filters()).clauses("e.at")
    cursor = db.execute(
        f"""SELECT a.id, a.canonical_url, a.source, a.status, a.version_count AS versions,
                a.first_seen, a.last_checked, a.last_changed, v.title
            FROM events e CROSS JOIN articles a ON a.id = e.article_id
            LEFT JOIN versions v ON v.article_id = a.id AND v.number = a.version_count
            WHERE e.at = a.last_changed AND {where} ORDER BY e.at DESC, e.id DESC""",
        params,
    )
    found: dict[int, ArticleSummary] = {}
    for row in cursor:
        if limit is not None and len(found) >= limit:
            break
        summary = ArticleSummary(**_named(cursor, row))
        found.setdefault(summary.id, summary)
    return list(found.values())


@dataclass(frozen=True)
class HistoryEntry:
    """One version in an article's history, without its text."""

    number: int
    fetched_at: str
    title: str
    title_changed: bool
    words: int
    change_class: str | None
    paragraphs_added: int
    paragraphs_removed: int
    paragraphs_modified: int
    words_added: int
    words_removed: int
    fingerprint: str


def article_history(db: sqlite_utils.Database, article_id: int) -> list[HistoryEntry]:
    """Every version of an article, oldest first."""
    cursor = db.execute(
        """SELECT number, fetched_at, title, words, change_class, paragraphs_added,
                paragraphs_removed, paragraphs_modified, words_added, words_removed, fingerprint
            FROM versions WHERE article_id = ? ORDER BY number""",
        [article_id],
    )
    entries, previous = [], None
    for row in cursor:
        values = _named(cursor, row)
        changed = previous is not None and values["title"] != previous
        entries.append(HistoryEntry(title_changed=changed, **values))
        previous = values["title"]
    return entries


# --- Export ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    """One version of one article with everything an export writes."""

    article_id: int
    canonical_url: str
    source: str | None
    status: str
    version: int
    latest: bool
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
    words: int
    change_class: str | None
    fingerprint: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tags and categories as lists)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {**values, "tags": list(self.tags), "categories": list(self.categories)}


_EXPORT_COLUMNS = """a.id AS article_id, a.canonical_url, a.source, a.status,
    v.number AS version, v.number = a.version_count AS latest, v.fetched_at, v.url, v.title,
    v.author, v.published, v.site_name, v.language, v.description, v.tags, v.categories,
    v.words, v.change_class, v.fingerprint, v.text"""


def count_export(
    db: sqlite_utils.Database, filters: Filters | None = None, *, all_versions: bool = False
) -> int:
    """How many rows :func:`iter_export` yields for the same arguments."""
    where, params = _export_where(filters, all_versions)
    sql = f"SELECT count(*) FROM articles a JOIN versions v ON v.article_id = a.id WHERE {where}"
    return int(db.execute(sql, params).fetchone()[0])


def iter_export(
    db: sqlite_utils.Database, filters: Filters | None = None, *, all_versions: bool = False
) -> Iterator[ExportRow]:
    """Latest versions (or every version) in article order, streamed from the cursor.

    ``since``/``until`` apply to the version's fetch time.
    """
    where, params = _export_where(filters, all_versions)
    cursor = db.execute(
        f"""SELECT {_EXPORT_COLUMNS} FROM articles a
            JOIN versions v ON v.article_id = a.id
            WHERE {where} ORDER BY a.id, v.number""",
        params,
    )
    names = [column[0] for column in cursor.description]
    for row in cursor:
        values = dict(zip(names, row, strict=True))
        values["latest"] = bool(values["latest"])
        values["tags"] = tuple(json.loads(values["tags"]))
        values["categories"] = tuple(json.loads(values["categories"]))
        yield ExportRow(**values)


def _export_where(filters: Filters | None, all_versions: bool) -> tuple[str, list[Any]]:
    where, params = (filters or Filters()).clauses("v.fetched_at")
    if not all_versions:
        where += " AND v.number = a.version_count"
    return where, params


# --- Stats and raw SQL -----------------------------------------------------------------


@dataclass(frozen=True)
class StoreStats:
    """Counts per source, status and day, and the size of the store on disk."""

    articles: int
    versions: int
    events: int
    fetches: int
    by_source: tuple[tuple[str | None, int, int], ...]  # source, articles, versions
    by_status: tuple[tuple[str, int], ...]
    changes_per_day: tuple[tuple[str, int], ...]  # day, events other than "new"
    new_per_day: tuple[tuple[str, int], ...]
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "articles": self.articles,
            "versions": self.versions,
            "events": self.events,
            "fetches": self.fetches,
            "by_source": [
                {"source": s, "articles": a, "versions": v} for s, a, v in self.by_source
            ],
            "by_status": dict(self.by_status),
            "changes_per_day": dict(self.changes_per_day),
            "new_per_day": dict(self.new_per_day),
            "size_bytes": self.size_bytes,
        }


def store_stats(db: sqlite_utils.Database, path: Path, now: datetime, days: int = 14) -> StoreStats:
    """Counts for the store at ``path``; per-day counts for the ``days`` days up to ``now``."""
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date().isoformat()
    articles, versions, events, fetches = db.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM versions), "
        "(SELECT count(*) FROM events), (SELECT count(*) FROM fetches)"
    ).fetchone()
    by_source = db.execute(
        "SELECT source, count(*), sum(version_count) FROM articles GROUP BY source ORDER BY source"
    ).fetchall()
    by_status = db.execute(
        "SELECT status, count(*) FROM articles GROUP BY status ORDER BY status"
    ).fetchall()

    def per_day(condition: str) -> tuple[tuple[str, int], ...]:
        rows = db.execute(
            f"SELECT substr(at, 1, 10) AS day, count(*) FROM events "
            f"WHERE at >= ? AND {condition} GROUP BY day ORDER BY day",
            [first],
        ).fetchall()
        return tuple((day, count) for day, count in rows)

    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return StoreStats(
        articles,
        versions,
        events,
        fetches,
        by_source=tuple((s, a, v or 0) for s, a, v in by_source),
        by_status=tuple((s, c) for s, c in by_status),
        changes_per_day=per_day("kind != 'new'"),
        new_per_day=per_day("kind = 'new'"),
        size_bytes=size,
    )


@dataclass(frozen=True)
class SqlResult:
    """The columns and rows a statement returned."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def as_dicts(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_sql(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> SqlResult:
    """Run one statement on the (read-only) store. Raises :class:`StoreError` saying why
    a statement failed, e.g. that the store is read-only for a write."""
    try:
        cursor = db.execute(sql, list(params))
        rows = tuple(tuple(row) for row in cursor.fetchall())
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            raise StoreError(f"the store is opened read-only: {exc}") from None
        raise StoreError(f"sql: {exc}") from None
    except (sqlite3.DatabaseError, sqlite3.ProgrammingError, sqlite3.Warning) as exc:
        raise StoreError(f"sql: {exc}") from None
    columns = tuple(column[0] for column in cursor.description or ())
    return SqlResult(columns, rows)
