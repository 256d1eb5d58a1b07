"""Scrapy downloader middlewares: backoff retries, the address guard, robots.txt.

Refusals are :class:`RefusedRequest` exceptions (Scrapy's ``IgnoreRequest``) carrying
the outcome the crawl records for them (``private_address``, ``url_too_long``,
``unsupported_scheme``, ``robots_denied``, ``robots_unreachable``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import (
    RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware,
)
from scrapy.exceptions import (
    CannotResolveHostError,
    IgnoreRequest,
    NotConfigured,
    StopDownload,
)
from scrapy.http import Response
from twisted.internet.defer import Deferred

from crawler.addresses import NOTHING, AddressPolicy, parse_host
from crawler.urls import ALLOWED_SCHEMES, MAX_URL_LENGTH

log = logging.getLogger(__name__)
MAX_RETRY_AFTER = 120.0
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309: parse at least 500 KiB; the rest is ignored


class RefusedRequest(IgnoreRequest):
    """A request the crawler will not send; ``outcome`` is what the fetch is recorded as."""

    outcome = "refused"


class PrivateAddressError(RefusedRequest):
    """The host is, or resolves to, an address the address policy refuses."""

    outcome = "private_address"


class URLRefused(RefusedRequest):
    """The URL itself is unacceptable (too long, not http or https)."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class RobotsDenied(RefusedRequest):
    """robots.txt forbids the URL."""

    outcome = "robots_denied"


class RobotsUnreachable(RefusedRequest):
    """The host's robots.txt could not be read (5xx, 429, timeout, connection error):
    RFC 9309 says to assume complete disallow, so the host waits for the next run."""

    outcome = "robots_unreachable"


class AddressGuardMiddleware:
    """Refuses requests to non-public addresses, non-http(s) URLs and over-long URLs.

    Runs for every download, so every redirect hop, feed or sitemap link and robots.txt
    is checked; literal addresses in any spelling are refused before connecting. Host
    names are checked on their resolved address by :class:`crawler.resolver.GuardedResolver`,
    whose refusals this middleware turns into :class:`PrivateAddressError`.
    """

    def __init__(self, policy: AddressPolicy = NOTHING, max_url_length: int = MAX_URL_LENGTH):
        self.policy = policy
        self.max_url_length = max_url_length

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        settings = crawler.settings
        return cls(
            settings.get("ADDRESS_POLICY") or NOTHING,
            settings.getint("URLLENGTH_LIMIT", MAX_URL_LENGTH) or MAX_URL_LENGTH,
        )

    def process_request(self, request: Request) -> None:
        url = request.url
        if len(url) > self.max_url_length:
            raise URLRefused(
                f"URL longer than {self.max_url_length} characters: {url[:80]}…", "url_too_long"
            )
        parts = urlsplit(url)
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise URLRefused(
                f"only http and https URLs are fetched, not {parts.scheme}:", "unsupported_scheme"
            )
        address = parse_host(parts.hostname or "")
        reason = self.policy.refusal(address) if address is not None else None
        if reason is not None:
            raise PrivateAddressError(reason)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, CannotResolveHostError):
            from twisted.internet import reactor

            refusal = getattr(getattr(reactor, "resolver", None), "refusal", None)
            reason = refusal(urlsplit(request.url).hostname or "") if refusal else None
            if reason is not None:
                raise PrivateAddressError(reason) from exception


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, following RFC 9309 on failures: a robots.txt
    answering 5xx or 429, or not answering (timeout, refused or reset connection), means
    "disallow everything" for this run (:class:`RobotsUnreachable`); 4xx means no rules.
    A name that does not resolve is left to the page's own fetch (``dns_error``).
    Only the first 500 KiB of a robots.txt are read."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        crawler.signals.connect(self._bytes_received, signal=signals.bytes_received)

    def process_request_2(self, rp: Any, request: Request) -> None:
        if isinstance(rp, _Unreachable):
            host = urlsplit(request.url).netloc
            raise RobotsUnreachable(
                f"robots.txt of {host} is unreachable ({rp.why}); the host is skipped "
                "until the next run"
            )
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest:
            raise RobotsDenied("robots.txt forbids fetching this URL") from None

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        if response.status >= 500 or response.status == 429:
            self._settle(netloc, _Unreachable(f"HTTP {response.status}"))
        elif 400 <= response.status < 500:
            self._settle(netloc, None)
        else:
            await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        if isinstance(exc, IgnoreRequest | CannotResolveHostError):
            super()._robots_error(exc, netloc)
        else:
            self._settle(netloc, _Unreachable(type(exc).__name__))

    def _settle(self, netloc: str, parser: Any) -> None:
        waiting = self._parsers[netloc]
        self._parsers[netloc] = parser
        if isinstance(waiting, Deferred):
            waiting.callback(parser)

    def _bytes_received(self, data: bytes, request: Request, spider: Any = None) -> None:
        if not request.meta.get("dont_obey_robotstxt") or not request.url.endswith("/robots.txt"):
            return
        received = request.meta.get("robots_bytes", 0) + len(data)
        request.meta["robots_bytes"] = received
        if received > MAX_ROBOTS_BYTES:
            raise StopDownload(fail=False)


class _Unreachable:
    """The parser of a robots.txt that could not be read: nothing is allowed."""

    def __init__(self, why: str) -> None:
        self.why = why

    def allowed(self, url: str, user_agent: str) -> bool:
        return False


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
