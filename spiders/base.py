"""The shared article path of every source spider.

A source spider discovers article URLs its own way (feed, sitemap, links, a list) and
hands each to :meth:`SourceSpider.article_request`, which filters it (patterns, age,
page budget, already seen, known and not yet due) and builds one download request.
Due revisits of known articles are added by the same path with their validators, so a
revisit is a conditional GET. Spiders never touch the store: what they know of it
arrives as :class:`KnownArticle` values from the runner.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.errors import InvalidURL
from crawler.fetches import FetchResult
from crawler.middlewares import HostUnavailable
from crawler.sources import Source
from crawler.urls import canonicalize_url, validate_url
from spiders.page import result_from_failure, result_from_response

_SOFT_404_SCAN = 200_000  # bytes of a page searched for the soft-404 pattern
# Answers that reach the article callback instead of the errback: 304 is "unchanged",
# 404/410 may mean "removed" for a known article.
HANDLED_STATUSES = [304, 404, 410]


@dataclass(frozen=True)
class KnownArticle:
    """What a revisit needs to know of a stored article."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_checked: str | None = None
    due: bool = False


class SourceSpider(scrapy.Spider):
    """Base class: one source, its known articles, and the shared article requests."""

    name = "source"

    def __init__(
        self,
        source: Source,
        known: Mapping[str, KnownArticle] | None = None,
        max_pages: int | None = None,
        now: datetime | None = None,
        discover: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=source.name, **kwargs)
        self.source = source
        self.known = dict(known or {})
        self.max_pages = min(
            (limit for limit in (max_pages, source.max_pages) if limit), default=None
        )
        self.now = now or datetime.now(UTC)
        self.discover = discover
        self.allow = [re.compile(p) for p in source.allow]
        self.deny = [re.compile(p) for p in source.deny]
        self.article_pattern = (
            re.compile(source.article_pattern) if source.article_pattern else None
        )
        self.soft_404 = re.compile(source.soft_404) if source.soft_404 else None
        self.requested: set[str] = set()
        self.discovery_errors: list[str] = []
        self.skipped_old = 0
        self.skipped_robots = 0
        self.host_down_skipped = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self.discovery_requests() if self.discover else ():
            yield request
        for known in self.known.values():
            revisit = self.article_request(known.url, revisit=True) if known.due else None
            if revisit is not None:
                yield revisit

    def discovery_requests(self) -> Iterable[scrapy.Request]:
        """The first requests of discovery; subclasses override."""
        return ()

    def is_article_url(self, url: str) -> bool:
        """Whether ``url`` passes the source's allow, deny and article patterns."""
        if any(pattern.search(url) for pattern in self.deny):
            return False
        if self.allow and not any(pattern.search(url) for pattern in self.allow):
            return False
        return self.article_pattern is None or bool(self.article_pattern.search(url))

    def too_old(self, listed: datetime | None) -> bool:
        """Whether a feed or sitemap date lies beyond the source's ``max_age``."""
        return bool(self.source.max_age and listed and listed < self.now - self.source.max_age)

    def article_request(
        self, url: str, *, listed: datetime | None = None, revisit: bool = False
    ) -> scrapy.Request | None:
        """A download request for an article URL, or None when it is filtered out."""
        try:
            url = validate_url(url)
        except InvalidURL as error:
            self.discovery_errors.append(f"skipped a bad article link: {error}")
            return None
        canonical = canonicalize_url(url)
        if canonical in self.requested or (not revisit and not self.is_article_url(url)):
            return None
        if self.too_old(listed):
            self.skipped_old += 1
            return None
        known = self.known.get(canonical)
        if known and not (revisit or known.due or _listed_after(listed, known.last_checked)):
            return None
        if self.max_pages is not None and len(self.requested) >= self.max_pages:
            return None
        self.requested.add(canonical)
        return self._request(url, known, listed)

    def _request(
        self, url: str, known: KnownArticle | None, listed: datetime | None
    ) -> scrapy.Request:
        headers = {}
        if known and known.etag:
            headers["If-None-Match"] = known.etag
        if known and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_failed,
            headers=headers,
            # Deduplicated by canonical URL above; Scrapy's duplicate filter would drop a
            # redirect back to a URL already seen (A -> B -> A) without any errback, so
            # the fetch would vanish unrecorded. Loops end at REDIRECT_MAX_TIMES instead.
            dont_filter=True,
            meta={
                "origin_url": url,
                "started": time.monotonic(),
                "handle_httpstatus_list": HANDLED_STATUSES,
                "previous_body_hash": known.body_hash if known else None,
                "listed_at": _stamp(listed),
            },
        )

    def parse_article(self, response: Response, **kwargs: Any) -> Iterable[FetchResult]:
        """Yield the article download as a FetchResult for the pipelines."""
        result = result_from_response(
            response, failure="http_error" if response.status in (404, 410) else None
        )
        soft = self.soft_404_reason(response) if result.failure is None else None
        if soft is not None:
            result = replace(result, failure="soft_404", reason=soft, body=b"")
        yield self._tag(result, response.meta)

    def soft_404_reason(self, response: Response) -> str | None:
        """Why a 200 answer is a "not found" page in disguise: it matches the source's
        ``soft_404`` pattern, or an article URL was redirected to the site's front page."""
        if response.status != 200:
            return None
        origin = urlsplit(response.meta.get("origin_url", response.url))
        landed = urlsplit(response.url)
        if landed.path in ("", "/") and origin.path not in ("", "/") and not landed.query:
            return f"soft 404: redirected to the front page {response.url}"
        if self.soft_404 is not None:
            text = response.body[:_SOFT_404_SCAN].decode("utf-8", "replace")
            if self.soft_404.search(text):
                return f"soft 404: the page matches {self.soft_404.pattern!r}"
        return None

    def article_failed(self, failure: Failure) -> Iterable[FetchResult]:
        """Yield a failed article download as a FetchResult naming the outcome; a request
        not made because its host is down for this run yields nothing (it stays due)."""
        if isinstance(failure.value, HostUnavailable):
            self.host_down_skipped += 1
            return
        request = getattr(failure, "request", None)
        yield self._tag(result_from_failure(failure), request.meta if request else {})

    def _tag(self, result: FetchResult, meta: Mapping[str, Any]) -> FetchResult:
        return replace(
            result,
            source=self.source.name,
            previous_body_hash=meta.get("previous_body_hash"),
            listed_at=meta.get("listed_at"),
        )

    def discovery_failed(self, failure: Failure) -> None:
        """Note a feed or sitemap that could not be fetched (robots.txt refusals aside)."""
        request = getattr(failure, "request", None)
        result = result_from_failure(failure)
        if result.failure == "robots_denied":
            self.skipped_robots += 1
            return
        where = request.url if request is not None else "?"
        self.discovery_errors.append(f"{where}: {result.describe_failure()}")


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _listed_after(listed: datetime | None, last_checked: str | None) -> bool:
    """A feed or sitemap says the article changed after we last looked."""
    if listed is None or last_checked is None:
        return False
    return listed > datetime.fromisoformat(last_checked.replace("Z", "+00:00"))
