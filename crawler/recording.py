"""Recording: an extracted Article (or a failed fetch) into the store and the text files.

Change detection itself is pure (:mod:`crawler.changes`); this module reads the previous
version, asks for the outcome and writes what it implies, in one transaction per batch
of pages. The text file is written before the transaction that points to it commits,
under a journal, so a crash or a rollback never leaves a file out of line with the store
for longer than the next writer's start (see :mod:`crawler.store.recovery`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils

from crawler import store
from crawler.changes import Change, compare
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.health import collapse_problem
from crawler.revisits import NextCheck, next_check, parse_stamp
from crawler.sources import RevisitPolicy
from crawler.store.recovery import text_transaction
from crawler.textfiles import text_file_name, write_text_file
from crawler.urls import canonicalize_url

log = logging.getLogger(__name__)
TRAFILATURA = f"trafilatura {package_version('trafilatura')}"
# Bump when our own extraction code changes its output for the same page: versions made
# by another extractor are re-baselined silently instead of reported as changes.
EXTRACTION_VERSION = 1
EXTRACTOR = f"{TRAFILATURA}; extraction {EXTRACTION_VERSION}"


@dataclass(frozen=True)
class Recorded:
    """What recording one page did. ``kind`` is new, changed, unchanged, not_modified,
    removed, gone_suspect, or a failure outcome (http_error, timeout, not_html, …)."""

    kind: str
    article_id: int | None
    canonical_url: str
    version: int
    change_class: str | None
    summary: str
    text_file: Path | None

    @classmethod
    def failed(cls, article_id: int | None, url: str, outcome: str, reason: str) -> Recorded:
        """The outcome of a check that produced no article text."""
        return cls(outcome, article_id, url, 0, None, reason, None)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "kind": self.kind,
            "article_id": self.article_id,
            "canonical_url": self.canonical_url,
            "version": self.version,
            "change_class": self.change_class,
            "summary": self.summary,
            "text_file": str(self.text_file) if self.text_file else None,
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
    if not declared or urlsplit(declared).scheme not in ("http", "https"):
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
    with text_transaction(db, text_dir):
        recorded = _apply_article(
            db, article, fetch, text_dir, timestamp(now), tuple(ignore_patterns), source
        )
        if recorded.article_id is not None:
            _schedule_next_check(db, recorded.article_id, RevisitPolicy())
        return recorded


def record_failure(
    db: sqlite_utils.Database, fetch: FetchResult, *, now: datetime, outcome: str, reason: str
) -> None:
    """Log a download or extraction that produced no article text. Never a change or removal."""
    with store.write_transaction(db):
        _apply_failure(db, fetch, timestamp(now), outcome, reason)


@dataclass(frozen=True)
class Policy:
    """How a source's pages are recorded: ignore patterns and the revisit policy."""

    ignore_patterns: tuple[str, ...] = ()
    revisit: RevisitPolicy = field(default_factory=RevisitPolicy)


def record_pages(
    db: sqlite_utils.Database,
    pages: list[CrawledPage],
    *,
    text_dir: Path,
    now: datetime,
    policies: dict[str | None, Policy] | None = None,
) -> list[Recorded]:
    """Record a batch of crawled pages in one transaction; return one outcome per page.

    Every outcome of a download is handled here: a new or changed article, an
    unchanged one (same text, same raw body, or 304), a failure, or a 404/410.
    """
    at = timestamp(now)
    policies = policies or {}
    results = []
    with text_transaction(db, text_dir):  # the batch commits whole, or not at all
        for page in pages:
            policy = policies.get(page.fetch.source, Policy())
            result = _apply_page(db, page, text_dir, at, policy)
            if result.article_id is not None:
                _schedule_next_check(db, result.article_id, policy.revisit)
            results.append(result)
    return results


def _schedule_next_check(db: sqlite_utils.Database, article_id: int, policy: RevisitPolicy) -> None:
    """Store when the article is due again and why (see :mod:`crawler.revisits`)."""
    article = store.get_article(db, article_id)
    if article is None:
        return
    if article.gone_since is not None and article.status == "live":
        due = parse_stamp(article.last_checked) + policy.confirm_removal_after
        check = NextCheck(due, "answered 404/410: checking again to confirm the removal")
    else:
        check = next_check(
            first_seen=parse_stamp(article.first_seen),
            last_checked=parse_stamp(article.last_checked),
            last_changed=parse_stamp(article.last_changed),
            status=article.status,
            policy=policy,
        )
    store.update_article(
        db,
        article_id,
        next_check_at=timestamp(check.at) if check.at else None,
        next_check_reason=check.reason,
    )


def _apply_page(
    db: sqlite_utils.Database, page: CrawledPage, text_dir: Path, at: str, policy: Policy
) -> Recorded:
    fetch = page.fetch
    if fetch.gone:
        return _apply_gone(db, fetch, text_dir, at, policy.revisit.confirm_removal_after)
    if fetch.outcome is not None:
        return _apply_failure(db, fetch, at, fetch.outcome, fetch.describe_failure())
    if fetch.not_modified:
        return _apply_checked(db, fetch, text_dir, at, "not_modified")
    if fetch.previous_body_hash is not None and fetch.previous_body_hash == fetch.body_hash:
        return _apply_checked(db, fetch, text_dir, at, "unchanged")
    if page.article is None:
        return _apply_failure(db, fetch, at, page.problem or "no_text", page.message or "")
    return _apply_article(
        db, page.article, fetch, text_dir, at, policy.ignore_patterns, fetch.source
    )


def _aliases(fetch: FetchResult, article: Article | None = None) -> tuple[str, ...]:
    urls = (fetch.url, fetch.final_url, (article.url if article else None) or fetch.url)
    return tuple(dict.fromkeys(canonicalize_url(url) for url in urls))


def _known(db: sqlite_utils.Database, fetch: FetchResult) -> store.StoredArticle | None:
    aliases = _aliases(fetch)
    return store.find_article(db, aliases[-1], aliases)


def _apply_article(
    db: sqlite_utils.Database,
    article: Article,
    fetch: FetchResult,
    text_dir: Path,
    at: str,
    ignore_patterns: tuple[str, ...],
    source: str | None,
) -> Recorded:
    canonical = identity_url(article, fetch.final_url)
    aliases = _aliases(fetch, article)
    existing = store.find_article(db, canonical, aliases)
    previous = store.latest_version(db, existing.id) if existing else None
    collapsed = collapse_problem(article.body, previous.words) if previous else None
    if collapsed is not None:
        return _apply_failure(db, fetch, at, "collapsed", collapsed)
    change = compare(previous.text if previous else None, article.text, ignore_patterns)
    state: dict[str, object] = {
        "etag": fetch.etag,
        "last_modified": fetch.last_modified,
        "body_hash": fetch.body_hash,
        "gone_since": None,
    }
    if fetch.listed_at:
        state["listed_at"] = fetch.listed_at
    if existing is None:
        recorded = _record_new(db, article, fetch, change, canonical, at, text_dir, state, source)
    elif change.kind != "unchanged" and previous and not same_extractor(previous.extractor):
        recorded = _record_change(
            db, existing, article, fetch, change, at, text_dir, state, silent=True
        )
    elif change.kind == "unchanged":
        store.update_article(db, existing.id, last_checked=at, **state)
        recorded = _kept(existing, text_dir, "unchanged", change.summary)
    else:
        recorded = _record_change(db, existing, article, fetch, change, at, text_dir, state)
    article_id = recorded.article_id
    assert article_id is not None  # a recorded article always has its row
    store.add_article_urls(db, article_id, aliases)
    _log_fetch(db, fetch, article_id, at, recorded.kind, None)
    return recorded


def _kept(existing: store.StoredArticle, text_dir: Path, kind: str, summary: str) -> Recorded:
    """The outcome of a check that left the article's versions as they were."""
    return Recorded(
        kind,
        existing.id,
        existing.canonical_url,
        existing.version_count,
        None,
        summary,
        text_dir / existing.text_file,
    )


def _apply_checked(
    db: sqlite_utils.Database, fetch: FetchResult, text_dir: Path, at: str, kind: str
) -> Recorded:
    """A revisit found the page as it was (304, or the same raw body): only note the check."""
    existing = _known(db, fetch)
    if existing is None:
        return _apply_failure(db, fetch, at, "error", "unchanged answer for an unknown article")
    state: dict[str, object] = {"last_checked": at, "gone_since": None}
    if fetch.listed_at:
        state["listed_at"] = fetch.listed_at
    if not fetch.not_modified:
        state.update(etag=fetch.etag, last_modified=fetch.last_modified)
    store.update_article(db, existing.id, **state)
    _log_fetch(db, fetch, existing.id, at, kind, None)
    return _kept(existing, text_dir, kind, kind.replace("_", " "))


def _apply_failure(
    db: sqlite_utils.Database, fetch: FetchResult, at: str, outcome: str, reason: str
) -> Recorded:
    """A check that produced no article text: logged in ``fetches``, nothing else changes."""
    existing = _known(db, fetch)
    _log_fetch(db, fetch, existing.id if existing else None, at, outcome, reason)
    return Recorded.failed(existing.id if existing else None, fetch.final_url, outcome, reason)


def _apply_gone(
    db: sqlite_utils.Database,
    fetch: FetchResult,
    text_dir: Path,
    at: str,
    confirm_after: timedelta,
) -> Recorded:
    """A 404/410: removal is confirmed by a second one at least ``confirm_after`` later."""
    existing = _known(db, fetch)
    if existing is None or existing.status == "removed":
        return _apply_failure(
            db, fetch, at, fetch.outcome or "client_error", fetch.describe_failure()
        )
    if existing.gone_since is None:
        store.update_article(db, existing.id, gone_since=at, last_checked=at)
        _log_fetch(db, fetch, existing.id, at, "gone_suspect", fetch.describe_failure())
        return Recorded.failed(existing.id, existing.canonical_url, "gone_suspect", "first 404/410")
    if parse_stamp(at) - parse_stamp(existing.gone_since) < confirm_after:
        store.update_article(db, existing.id, last_checked=at)
        _log_fetch(db, fetch, existing.id, at, "gone_suspect", fetch.describe_failure())
        return Recorded.failed(existing.id, existing.canonical_url, "gone_suspect", "not confirmed")
    summary = f"HTTP {fetch.status} since {existing.gone_since}"
    store.update_article(db, existing.id, status="removed", last_checked=at, last_changed=at)
    store.insert_event(db, existing.id, "removed", at, summary)
    _log_fetch(db, fetch, existing.id, at, "removed", summary)
    return _kept(existing, text_dir, "removed", summary)


def _record_new(
    db: sqlite_utils.Database,
    article: Article,
    fetch: FetchResult,
    change: Change,
    canonical: str,
    at: str,
    text_dir: Path,
    state: dict[str, object],
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
        **state,
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
    state: dict[str, object],
    *,
    silent: bool = False,
) -> Recorded:
    """A new version; ``silent`` (another extractor made the previous one): a new
    baseline, recorded without a change event, so no alert."""
    number = existing.version_count + 1
    version_id = _insert_version(db, existing.id, number, article, fetch, change, at)
    kind = "title_changed" if change.change_class == "title" else "changed"
    if silent:
        kind = "rebaselined"
    else:
        store.insert_event(db, existing.id, kind, at, change.summary, version_id)
    if existing.status == "removed" and not silent:
        store.insert_event(db, existing.id, "restored", at, "article is back", version_id)
    store.update_article(
        db,
        existing.id,
        status="live",
        last_checked=at,
        last_changed=existing.last_changed if silent else at,
        fingerprint=change.fingerprint,
        version_count=number,
        **state,
    )
    path = write_text_file(text_dir, existing.text_file, article.text)
    return Recorded(
        "rebaselined" if silent else "changed",
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
        source=fetch.source,
    )


class BatchRecorder:
    """The one writer of a crawl: a thread that records submitted pages in batches.

    ``submit`` never blocks the reactor for long; ``close`` flushes and waits. Counts of
    outcomes per source are readable at any time (for progress displays).
    """

    def __init__(
        self,
        store_path: Path,
        *,
        policies: dict[str | None, Policy] | None = None,
        batch_size: int = 200,
        max_wait: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store_path = Path(store_path)
        self.text_dir = self.store_path.parent / "articles"
        self.policies = policies or {}
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.clock = clock
        self.error: BaseException | None = None
        self._counts: dict[str | None, Counter[str]] = defaultdict(Counter)
        self._lock = threading.Lock()
        self._queue: queue.Queue[CrawledPage | None] = queue.Queue(maxsize=10 * batch_size)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def submit(self, page: CrawledPage) -> None:
        """Queue a page for recording."""
        self._queue.put(page)

    def counts(self, source: str | None = None) -> Counter[str]:
        """Outcome counts so far, for one source or (``None``) all of them."""
        with self._lock:
            if source is not None:
                return Counter(self._counts.get(source, Counter()))
            return sum(self._counts.values(), Counter())

    def close(self) -> None:
        """Record what is queued, stop the thread; re-raise a storage error if one occurred."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        db = None
        try:
            db = store.open_store(self.store_path)
            while (batch := self._next_batch()) is not None:
                if batch:
                    self._record(db, batch)
        except BaseException as error:  # noqa: BLE001 - reported by close()
            self.error = error
            self._drain()
        finally:
            if db is not None:
                db.close()

    def _next_batch(self) -> list[CrawledPage] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.batch_size:
            try:
                page = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if page is None:
                self._queue.put(None)  # seen again after this batch: stop then
                break
            batch.append(page)
        return batch

    def _record(self, db: sqlite_utils.Database, batch: list[CrawledPage]) -> None:
        results = record_pages(
            db, batch, text_dir=self.text_dir, now=self.clock(), policies=self.policies
        )
        with self._lock:
            for page, result in zip(batch, results, strict=True):
                counts = self._counts[page.fetch.source]
                counts["fetched"] += 1
                counts[_count_key(result.kind)] += 1

    def _drain(self) -> None:
        """After a storage error: keep accepting pages (so the crawl can end) and drop them."""
        while self._queue.get() is not None:
            with self._lock:
                self._counts[None]["dropped"] += 1


def same_extractor(stored: str | None) -> bool:
    """Whether a version made by ``stored`` came from the extractor running now (rows
    from before the extractor was recorded, or before our own version was, count as it)."""
    if stored is None or stored == EXTRACTOR:
        return True
    return stored == TRAFILATURA and EXTRACTION_VERSION == 1


def _count_key(kind: str) -> str:
    if kind in ("new", "changed", "unchanged", "not_modified", "removed", "rebaselined"):
        return kind
    return "errors"
