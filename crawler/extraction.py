"""Article extraction: HTML in, clean text and metadata out. The one home of trafilatura.

Pure: no network, no store, no clock. ``extract(html, url)`` returns an :class:`Article`
whose ``text`` is the file format of ``data/articles/*.txt``: the title on the first line,
then the body, one paragraph a line, subheadings on their own line, list items as
``- item``, table rows one a line, no blank lines, no trailing spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import trafilatura
from charset_normalizer import from_bytes
from w3lib.encoding import html_to_unicode

from crawler.errors import ExtractionError, InvalidURL
from crawler.urls import canonicalize_url, validate_url

# Magic numbers of formats that are sometimes served as text/html.
_BINARY_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00\x00\x01\x00", "an icon"),
)


@dataclass(frozen=True)
class Article:
    """One extracted article. ``text`` is ``title`` and ``body`` in the file format."""

    url: str | None
    canonical_url: str | None
    title: str
    body: str
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    language: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if "\n" in self.title:
            raise ValueError(f"title must be one line, got {self.title!r}")
        if not self.body.strip():
            raise ValueError("body must not be empty")

    @property
    def text(self) -> str:
        """The title line, then the body: the content of an article's text file."""
        return f"{self.title}\n{self.body}" if self.title else self.body

    def as_dict(self) -> dict[str, Any]:
        """Return every field and ``text`` as JSON-ready values."""
        return {
            "url": self.url,
            "canonical_url": self.canonical_url,
            "title": self.title,
            "author": self.author,
            "date": self.date,
            "site_name": self.site_name,
            "language": self.language,
            "description": self.description,
            "tags": list(self.tags),
            "categories": list(self.categories),
            "body": self.body,
            "text": self.text,
        }


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode page bytes: the HTTP charset, else a BOM or meta charset, else detection.

    Raises :class:`ExtractionError` (reason ``not_html``) for known binary formats.
    """
    head = data[:16]
    for magic, name in _BINARY_MAGIC:
        if head.startswith(magic):
            raise ExtractionError(f"the page is {name}, not HTML", reason="not_html")
    if b"\x00" in data[:1024] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionError("the page is binary data, not HTML", reason="not_html")
    header = content_type if content_type and "charset" in content_type.lower() else None
    _, text = html_to_unicode(header, data, auto_detect_fun=_detect_encoding)
    return text


def _detect_encoding(data: bytes) -> str | None:
    best = from_bytes(data[:65536]).best()
    return best.encoding if best else None


def extract(html: str | bytes, url: str | None = None, *, content_type: str | None = None) -> Article:
    """Extract the article in ``html`` (fetched from ``url``) into an :class:`Article`.

    ``content_type`` is the HTTP Content-Type header, whose charset wins when bytes
    are given. Raises :class:`ExtractionError` when the page holds no article text.
    """
    source = decode_html(html, content_type) if isinstance(html, bytes) else html
    if not source.strip():
        raise ExtractionError("the page is empty", reason="empty")
    document = trafilatura.bare_extraction(
        source,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
    )
    if document is None or not (document.text or "").strip():
        raise ExtractionError("no article text found on the page", reason="no_text")
    title = _one_line(document.title or "")
    body = format_body(document.text or "", title)
    if not body:
        raise ExtractionError("no article text found on the page", reason="no_text")
    return Article(
        url=url,
        canonical_url=_canonical(document.url, url),
        title=title,
        body=body,
        author=_clean_meta(document.author),
        date=_clean_meta(document.date),
        site_name=_clean_meta(document.sitename),
        language=_clean_meta(document.language),
        description=_clean_meta(document.description),
        tags=_clean_list(document.tags),
        categories=_clean_list(document.categories),
    )


def format_body(text: str, title: str = "") -> str:
    """Bring trafilatura's text into the file format: one block a line, no blanks.

    A first line that repeats the title is dropped, so ``body`` never starts with it.
    """
    lines = [_one_line(line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if lines and title and lines[0] == title:
        lines = lines[1:]
    return "\n".join(lines)


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _clean_meta(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = _one_line(value)
    return cleaned or None


def _clean_list(values: list[str] | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values or []:
        cleaned = _one_line(value).lstrip("#")
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


def _canonical(declared: str | None, fetched: str | None) -> str | None:
    """The canonical URL: the page's declared one (rel=canonical, og:url) if valid."""
    for candidate in (declared, fetched):
        if not candidate:
            continue
        absolute = urljoin(fetched, candidate) if fetched else candidate
        try:
            return canonicalize_url(validate_url(absolute))
        except InvalidURL:
            continue
    return None
