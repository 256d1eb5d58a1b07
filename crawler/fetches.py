"""What a download produced: a page or a failure, as a plain value (no Scrapy types)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from crawler.errors import ExtractionError, FetchError
from crawler.extraction import Article, extract
from crawler.health import blocked_reason, text_problem

# Outcomes of a download that yielded no page. None of them is ever an article change.
FAILURE_OUTCOMES = frozenset(
    {
        "http_error",
        "timeout",
        "connection",
        "dns_error",
        "too_large",
        "robots_denied",
        "robots_unreachable",
        "private_address",
        "url_too_long",
        "redirect_loop",
        "data_loss",
        "reset",
        "soft_404",
        "unsupported_scheme",
        "error",
    }
)


@dataclass(frozen=True)
class FetchResult:
    """One download: the response (status, headers we keep, body) or why there was none."""

    url: str
    final_url: str
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    failure: str | None = None
    reason: str | None = None
    source: str | None = None
    previous_body_hash: str | None = None
    listed_at: str | None = None

    def __post_init__(self) -> None:
        if self.failure is not None and self.failure not in FAILURE_OUTCOMES:
            raise ValueError(f"unknown fetch failure {self.failure!r}")

    @property
    def ok(self) -> bool:
        """True when a 2xx response with a body arrived."""
        return self.failure is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional request: the page is unchanged."""
        return self.failure is None and self.status == 304

    @property
    def gone(self) -> bool:
        """True when the server says the page no longer exists: 404 or 410, or a page that
        matches the source's soft-404 pattern (removal still needs a second check)."""
        return (self.failure == "http_error" and self.status in (404, 410)) or (
            self.failure == "soft_404"
        )

    @property
    def outcome(self) -> str | None:
        """The failed check's reason in the fetches log (None for a response to extract):
        an HTTP error is ``rate_limited`` (429), ``server_error`` (5xx), ``redirect_refused``
        (a 3xx not followed: to a scheme other than http or https) or ``client_error``."""
        if self.failure != "http_error":
            return self.failure
        if self.status == 429:
            return "rate_limited"
        if self.status is not None and 300 <= self.status < 400:
            return "redirect_refused"
        if self.status is not None and self.status >= 500:
            return "server_error"
        return "client_error"

    @cached_property
    def body_hash(self) -> str | None:
        """SHA-256 of the raw body, for recognising an identical page without extraction.

        Computed once: the pipeline and the recorder both compare it.
        """
        return hashlib.sha256(self.body).hexdigest() if self.body else None

    def describe_failure(self) -> str:
        """One line saying why this download produced no page."""
        where = f" at {self.final_url}" if self.final_url != self.url else ""
        if self.failure == "http_error":
            return f"HTTP {self.status}{where}"
        return f"{self.reason or self.failure}{where}"


@dataclass(frozen=True)
class CrawledPage:
    """A download and what extraction made of it: an article, or the reason for none."""

    fetch: FetchResult
    article: Article | None = None
    problem: str | None = None
    message: str | None = None


_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


def declared_non_html(content_type: str | None) -> str | None:
    """The declared media type when it is clearly not a web page (e.g. application/pdf)."""
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or media in _HTML_TYPES or media.endswith("+xml"):
        return None
    return media


# Magic bytes of formats that are never a web page, whatever the Content-Type says.
_BINARY_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00\x00\x01\x00", "an icon"),
    (b"\x7fELF", "an executable"),
)
# The extraction module's reasons under the names of the fetches log.
_EXTRACTION_REASONS = {"not_html": "unsupported_type", "malformed": "extract_failed"}
_TAG = re.compile(rb"<[^>]*>")
_MARKUP_ONLY_LIMIT = 16 * 1024  # smaller bodies are checked for text outside the tags


def body_problem(result: FetchResult) -> tuple[str, str] | None:
    """(reason, message) when a 2xx body cannot hold an article: ``empty`` (nothing, or
    markup without text) or ``unsupported_type`` (declared non-HTML, or binary by its
    magic bytes whatever the Content-Type says). Cheap: runs before extraction."""
    body, where = result.body, result.final_url
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, name in _BINARY_MAGIC:
        if body.startswith(magic):
            declared = result.content_type or "no Content-Type"
            return "unsupported_type", f"{where} is {name} (served as {declared}), not HTML"
    media = declared_non_html(result.content_type)
    if media is not None and not (media == "application/octet-stream" and head[:1] == b"<"):
        return "unsupported_type", f"{where} is {media}, not an HTML page"
    if not head:
        return "empty", f"{where}: the page is empty"
    if len(body) <= _MARKUP_ONLY_LIMIT and not _TAG.sub(b"", body).strip():
        return "empty", f"{where}: the page has markup but no text"
    return None


def article_from_fetch(result: FetchResult) -> Article:
    """The article in a download.

    Raises :class:`FetchError` or :class:`ExtractionError` saying why there is none.
    """
    if not result.ok:
        raise FetchError(
            f"cannot fetch {result.url}: {result.describe_failure()}", result.outcome or "error"
        )
    unusable = body_problem(result)
    if unusable is not None:
        raise ExtractionError(unusable[1], reason=unusable[0])
    try:
        article = extract(result.body, result.final_url, content_type=result.content_type)
    except ExtractionError as error:
        _raise_if_blocked(result)
        reason = _EXTRACTION_REASONS.get(error.reason, error.reason)
        raise ExtractionError(f"{result.final_url}: {error}", reason=reason) from None
    problem = text_problem(article.body)
    if problem is not None:
        _raise_if_blocked(result)
        reason = "paywall" if problem.startswith("paywall") else "too_short"
        raise ExtractionError(f"{result.final_url}: {problem}", reason=reason)
    return article


def _raise_if_blocked(result: FetchResult) -> None:
    """A page without usable text that is a bot challenge or consent wall says so."""
    blocked = blocked_reason(result.body[:100_000].decode("utf-8", "replace"))
    if blocked is not None:
        reason = "paywall" if blocked == "paywall" else "blocked"
        raise ExtractionError(f"{result.final_url}: the page is a {blocked}", reason=reason)


def extract_parts(fetch: FetchResult) -> tuple[Article | None, str | None, str | None]:
    """(article, problem, message) for a download; never raises, so it can run in a worker.

    ``problem`` is an outcome code (``unsupported_type``, ``no_text``, …) when there is no article.
    """
    try:
        return article_from_fetch(fetch), None, None
    except ExtractionError as error:
        return None, error.reason, str(error)
    except FetchError as error:
        return None, error.outcome, str(error)
    except Exception as error:  # noqa: BLE001 - one bad page must not stop a crawl
        return None, "extract_failed", f"{type(error).__name__}: {error}"
