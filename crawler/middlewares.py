"""Scrapy downloader middlewares."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response

MAX_RETRY_AFTER = 120.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, plus waiting before each: the server's Retry-After when it sends
    one (capped), else an exponential backoff (0.5 s, 1 s, 2 s, …)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.max_retry_after = settings.getfloat("RETRY_AFTER_MAX", MAX_RETRY_AFTER)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 0.5)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        middleware = cls(crawler.settings)
        middleware.crawler = crawler
        return middleware

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        header = response.headers.get("Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None, datetime.now(UTC))
        if wait is None:
            wait = self.backoff_base * 2 ** request.meta.get("retry_times", 0)
        if wait > self.max_retry_after:
            return response  # the server asks for longer than a crawl waits: give up now
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is None:
            return response
        await asyncio.sleep(wait)
        return retry


class HostUnavailable(IgnoreRequest):
    """A request not made: its host failed too often in this run (the circuit is open)."""


class CircuitBreakerMiddleware:
    """Stop requesting a host for the rest of the run after ``CIRCUIT_BREAKER_FAILURES``
    consecutive failed attempts on it (5xx, 429, timeouts, lost or refused connections;
    it sits above the retry middleware, so retries count), or at once when it asks for a
    Retry-After longer than a run waits. Retries of requests already under way still go
    out, so every article that was started ends with its recorded outcome.

    Requests to an open host fail with :class:`HostUnavailable`, which the spiders do not
    record: the articles stay due for the next run instead of piling up failed checks.
    The hosts and the requests not made are in the crawl stats (``circuit_breaker/...``).
    ``CIRCUIT_BREAKER_FAILURES = 0`` switches it off.
    """

    def __init__(self, threshold: int, max_retry_after: float, stats: Any = None) -> None:
        self.threshold = threshold
        self.max_retry_after = max_retry_after
        self.stats = stats
        self.failures: Counter[str] = Counter()
        self.open: dict[str, str] = {}  # host -> why it was stopped

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CircuitBreakerMiddleware:
        threshold = crawler.settings.getint("CIRCUIT_BREAKER_FAILURES", 5)
        if threshold <= 0:
            raise NotConfigured("circuit breaker off")
        max_wait = crawler.settings.getfloat("RETRY_AFTER_MAX", MAX_RETRY_AFTER)
        return cls(threshold, max_wait, crawler.stats)

    def process_request(self, request: Request, spider: Any = None) -> None:
        host = _host(request.url)
        if host in self.open and not request.meta.get("retry_times"):
            if self.stats is not None:
                self.stats.inc_value("circuit_breaker/skipped")
            raise HostUnavailable(f"{host} is not requested again in this run: {self.open[host]}")

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        host = _host(request.url)
        if response.status == 429 or response.status >= 500:
            header = response.headers.get("Retry-After")
            wait = retry_after_seconds(
                header.decode("latin-1") if header else None, datetime.now(UTC)
            )
            if wait is not None and wait > self.max_retry_after:
                self._trip(host, f"it asked to retry after {wait:.0f} s")
            else:
                self._fail(host, f"HTTP {response.status}")
        else:
            self.failures[host] = 0
        return response

    def process_exception(
        self, request: Request, exception: BaseException, spider: Any = None
    ) -> None:
        if not isinstance(exception, IgnoreRequest):
            self._fail(_host(request.url), type(exception).__name__)

    def _fail(self, host: str, what: str) -> None:
        self.failures[host] += 1
        if self.failures[host] >= self.threshold:
            self._trip(host, f"{self.failures[host]} consecutive failures (last: {what})")

    def _trip(self, host: str, why: str) -> None:
        if host in self.open:
            return
        self.open[host] = why
        if self.stats is not None:
            self.stats.set_value("circuit_breaker/hosts", dict(self.open))


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()
