"""A spider that downloads given URLs once and yields one FetchResult per URL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.fetches import FetchResult
from crawler.middlewares import RefusedRequest

# Scrapy failure types and what we record for them; order matters (first match wins).
_FAILURES: tuple[tuple[type[BaseException], str, str], ...] = (
    (DownloadTimeoutError, "timeout", "the server did not answer in time"),
    (DownloadCancelledError, "too_large", "the page is larger than the download size limit"),
    (DownloadConnectionRefusedError, "connection", "the connection was refused"),
    (CannotResolveHostError, "dns_error", "the host name could not be resolved"),
    (ResponseDataLossError, "data_loss", "the response was cut short"),
    (DownloadFailedError, "reset", "the connection was lost before the page arrived"),
    (UnsupportedURLSchemeError, "unsupported_scheme", "only http and https URLs are fetched"),
)


class PageSpider(scrapy.Spider):
    """Fetch each of ``urls`` once; follow redirects; yield a FetchResult for each."""

    name = "page"

    def __init__(self, urls: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = list(urls)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(
                url,
                callback=self.parse,
                errback=self.on_error,
                dont_filter=True,
                meta={"origin_url": url, "started": time.monotonic()},
            )

    def parse(self, response: Response, **kwargs: Any) -> Iterable[FetchResult]:
        yield result_from_response(response)

    def on_error(self, failure: Failure) -> Iterable[FetchResult]:
        yield result_from_failure(failure)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def result_from_response(response: Response, failure: str | None = None) -> FetchResult:
    """Turn a Scrapy response (2xx, or an HTTP error status) into a FetchResult."""
    meta = response.meta
    return FetchResult(
        url=meta.get("origin_url", response.url),
        final_url=response.url,
        status=response.status,
        body=response.body if failure is None else b"",
        content_type=_header(response, "Content-Type"),
        etag=_header(response, "ETag"),
        last_modified=_header(response, "Last-Modified"),
        elapsed=time.monotonic() - meta.get("started", time.monotonic()),
        failure=failure,
        reason=f"HTTP {response.status}" if failure else None,
    )


def result_from_failure(failure: Failure) -> FetchResult:
    """Turn a Scrapy download failure into a FetchResult naming the outcome."""
    error = failure.value
    if isinstance(error, HttpError):
        return result_from_response(error.response, failure="http_error")
    request = getattr(failure, "request", None)
    url = request.meta.get("origin_url", request.url) if request is not None else ""
    final_url = request.url if request is not None else url
    outcome, reason = "error", str(error) or type(error).__name__
    if isinstance(error, RefusedRequest):  # the address guard, URL checks, robots.txt
        return FetchResult(url=url, final_url=final_url, failure=error.outcome, reason=reason)
    for kind, name, text in _FAILURES:
        if isinstance(error, kind):
            outcome, reason = name, text
            break
    else:
        if isinstance(error, IgnoreRequest):
            message = str(error)
            if "max redirections" in message:  # REDIRECT_MAX_TIMES, meta refreshes included
                outcome, reason = "redirect_loop", "more than 5 redirects (a loop?)"
            elif "DOWNLOAD_MAXSIZE" in message:
                outcome, reason = "too_large", "the page is larger than the size limit"
    return FetchResult(url=url, final_url=final_url, failure=outcome, reason=reason)
