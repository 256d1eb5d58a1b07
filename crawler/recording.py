"""Recording: an extracted Article (or a failed fetch) into the store and the text files.

Change detection itself is pure (:mod:`crawler.changes`); this module reads the previous
version, asks for the outcome and writes what it implies, in one transaction per page.
The text file is written before the transaction that points to it commits.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils

from crawler import store
from crawler.changes import Change, compare
from crawler.extraction import Article
from crawler.fetches import FetchResult
from crawler.textfiles import text_file_name, write_text_file
from crawler.urls import canonicalize_url

log = logging.getLogger(__name__)
EXTRACTOR = f"trafilatura {package_version('trafilatura')}"


@dataclass(frozen=True)
class Recorded:
    """What recording one article did: ``kind`` is new, unchanged or changed."""

    kind: str
    article_id: int
    canonical_url: str
    version: int
    change_class: str | None
    summary: str
    text_file: Path

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "kind": self.kind,
            "article_id": self.article_id,
            "canonical_url": self.canonical_url,
            "version": self.version,
            "change_class": self.change_class,
            "summary": self.summary,
            "text_file": str(self.text_file),
        }


def timestamp(now: datetime) -> str:
    """The store's time format: ISO 8601 in UTC with milliseconds and a Z."""
    if now.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def identity_url(article: Article, fetched_url: str) -> str:
    """The URL an article is stored under: its declared canonical URL, unless that points
    at a site's front page while the page itself is deeper (a common template mistake)."""
    fetched = canonicalize_url(fetched_url)
    declared = article.canonical_url
    if not declared:
        return fetched
    if urlsplit(declared).path in ("", "/") and urlsplit(fetched).path not in ("", "/"):
        return fetched
    return declared


def record_article(
    db: sqlite_utils.Database,
    article: Article,
    fetch: FetchResult,
    *,
    text_dir: Path,
    now: datetime,
    ignore_patterns: tuple[str, ...] = (),
    source: str | None = None,
) -> Recorded:
    """Record one successfully extracted page: a new article, a new version, or a check.

    Returns what happened. Raises :class:`crawler.errors.StoreError` or ``OSError`` on
    storage failure, in which case nothing was committed.
    """
    at = timestamp(now)
    canonical = identity_url(article, fetch.final_url)
    aliases = tuple(
        canonicalize_url(url) for url in (fetch.url, fetch.final_url, article.url or fetch.url)
    )
    body_hash = hashlib.sha256(fetch.body).hexdigest() if fetch.body else None
    with store.write_transaction(db):
        existing = store.find_article(db, canonical, aliases)
        previous = store.latest_version(db, existing.id) if existing else None
        change = compare(previous.text if previous else None, article.text, ignore_patterns)
        validators = {
            "etag": fetch.etag,
            "last_modified": fetch.last_modified,
            "body_hash": body_hash,
        }
        if existing is None:
            recorded = _record_new(
                db, article, fetch, change, canonical, at, text_dir, validators, source
            )
        elif change.kind == "unchanged":
            store.update_article(db, existing.id, last_checked=at, **validators)
            recorded = Recorded(
                "unchanged",
                existing.id,
                existing.canonical_url,
                existing.version_count,
                None,
                change.summary,
                text_dir / existing.text_file,
            )
        else:
            recorded = _record_change(
                db, existing, article, fetch, change, at, text_dir, validators
            )
        store.add_article_urls(db, recorded.article_id, aliases)
        _log_fetch(db, fetch, recorded.article_id, at, recorded.kind, None)
    return recorded


def record_failure(
    db: sqlite_utils.Database, fetch: FetchResult, *, now: datetime, outcome: str, reason: str
) -> None:
    """Log a download or extraction that produced no article text. Never a change or removal."""
    aliases = (canonicalize_url(fetch.url), canonicalize_url(fetch.final_url))
    with store.write_transaction(db):
        existing = store.find_article(db, aliases[1], aliases)
        _log_fetch(db, fetch, existing.id if existing else None, timestamp(now), outcome, reason)


def _record_new(
    db: sqlite_utils.Database,
    article: Article,
    fetch: FetchResult,
    change: Change,
    canonical: str,
    at: str,
    text_dir: Path,
    validators: dict[str, str | None],
    source: str | None,
) -> Recorded:
    article_id = store.insert_article(
        db,
        url=fetch.final_url,
        canonical_url=canonical,
        source=source,
        status="live",
        first_seen=at,
        last_checked=at,
        last_changed=at,
        fingerprint=change.fingerprint,
        version_count=1,
        text_file="",
        **validators,
    )
    name = text_file_name(article_id, canonical)
    store.update_article(db, article_id, text_file=name)
    version_id = _insert_version(db, article_id, 1, article, fetch, change, at)
    store.insert_event(db, article_id, "new", at, change.summary, version_id)
    path = write_text_file(text_dir, name, article.text)
    return Recorded("new", article_id, canonical, 1, None, change.summary, path)


def _record_change(
    db: sqlite_utils.Database,
    existing: store.StoredArticle,
    article: Article,
    fetch: FetchResult,
    change: Change,
    at: str,
    text_dir: Path,
    validators: dict[str, str | None],
) -> Recorded:
    number = existing.version_count + 1
    version_id = _insert_version(db, existing.id, number, article, fetch, change, at)
    kind = "title_changed" if change.change_class == "title" else "changed"
    store.insert_event(db, existing.id, kind, at, change.summary, version_id)
    if existing.status == "removed":
        store.insert_event(db, existing.id, "restored", at, "article is back", version_id)
    store.update_article(
        db,
        existing.id,
        status="live",
        last_checked=at,
        last_changed=at,
        fingerprint=change.fingerprint,
        version_count=number,
        **validators,
    )
    path = write_text_file(text_dir, existing.text_file, article.text)
    return Recorded(
        "changed",
        existing.id,
        existing.canonical_url,
        number,
        change.change_class,
        change.summary,
        path,
    )


def _insert_version(
    db: sqlite_utils.Database,
    article_id: int,
    number: int,
    article: Article,
    fetch: FetchResult,
    change: Change,
    at: str,
) -> int:
    diff = change.diff
    return store.insert_version(
        db,
        article_id=article_id,
        number=number,
        fetched_at=at,
        url=fetch.final_url,
        title=article.title,
        author=article.author,
        published=article.date,
        site_name=article.site_name,
        language=article.language,
        description=article.description,
        tags=article.tags,
        categories=article.categories,
        text=article.text,
        words=len(article.body.split()),
        fingerprint=change.fingerprint,
        change_class=change.change_class,
        paragraphs_added=diff.paragraphs_added if diff else 0,
        paragraphs_removed=diff.paragraphs_removed if diff else 0,
        paragraphs_modified=diff.paragraphs_modified if diff else 0,
        words_added=diff.words_added if diff else 0,
        words_removed=diff.words_removed if diff else 0,
        diff=diff.as_dict() if diff else None,
        extractor=EXTRACTOR,
    )


def _log_fetch(
    db: sqlite_utils.Database,
    fetch: FetchResult,
    article_id: int | None,
    at: str,
    outcome: str,
    reason: str | None,
) -> None:
    store.insert_fetch(
        db,
        url=fetch.final_url,
        article_id=article_id,
        at=at,
        http_status=fetch.status,
        bytes=len(fetch.body),
        elapsed_ms=round(fetch.elapsed * 1000),
        outcome=outcome,
        reason=reason,
    )
