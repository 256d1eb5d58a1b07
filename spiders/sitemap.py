"""Sitemaps: index files, gzip, ``Sitemap:`` lines in robots.txt, ``<lastmod>`` and
Google News sitemaps (``<news:publication_date>``, ``<news:title>``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import scrapy
from lxml import etree
from scrapy.http import Response
from scrapy.utils.gz import gunzip

from crawler.errors import InvalidURL
from crawler.urls import ALLOWED_SCHEMES, validate_url
from spiders.base import SourceSpider

MAX_SITEMAP_DEPTH = 3
MAX_SITEMAP_BYTES = 64 * 1024 * 1024
MAX_URLS_PER_SITEMAP = 50_000  # the sitemaps.org limit; the rest is skipped and counted
MAX_CHILD_SITEMAPS = 1_000  # per sitemap index
# A date further ahead than this is a broken clock or a lie, not news: ignored.
MAX_FUTURE = timedelta(days=2)


def _parser() -> etree.XMLParser:
    # No entities, no DTD, no network: a sitemap is data, never a program.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False
    )


class SitemapSpider(SourceSpider):
    """Walk a sitemap (or the sitemaps named in robots.txt) down to article URLs."""

    name = "sitemap"

    def discovery_requests(self) -> Iterable[scrapy.Request]:
        self.sitemaps_seen: set[str] = set()
        self.skipped_over_cap = 0
        self.skipped_bad_links = 0
        for url in self.source.urls:
            request = self._sitemap_request(url, depth=0)
            if request is not None:
                yield request

    def _sitemap_request(self, url: str, depth: int) -> scrapy.Request | None:
        """A request for a sitemap not asked for yet in this run (index loops and
        self-references end here; Scrapy's duplicate filter stays on as well)."""
        try:
            url = validate_url(url)
        except InvalidURL as error:
            self.discovery_errors.append(f"skipped a bad sitemap link: {error}")
            return None
        if url in self.sitemaps_seen:
            return None
        self.sitemaps_seen.add(url)
        return scrapy.Request(
            url,
            callback=self.parse_sitemap,
            errback=self.discovery_failed,
            meta={"sitemap_depth": depth, "download_maxsize": MAX_SITEMAP_BYTES},
        )

    def parse_sitemap(self, response: Response, **kwargs: Any) -> Iterable[scrapy.Request]:
        """Yield child sitemap requests and article requests."""
        depth = response.meta.get("sitemap_depth", 0)
        if response.url.endswith("/robots.txt"):
            host = urlsplit(response.url).hostname
            for line in response.text.splitlines():
                if line.lower().startswith("sitemap:"):
                    url = response.urljoin(line[8:].strip())
                    if urlsplit(url).hostname != host:
                        continue  # robots.txt may only point to sitemaps of its own host
                    request = self._sitemap_request(url, depth + 1)
                    if request is not None:
                        yield request
            return
        root = self._root(response)
        if root is None:
            return
        kind = etree.QName(root).localname
        if kind == "sitemapindex":
            yield from self._children(response, root, depth)
        elif kind == "urlset":
            yield from self._articles(response, root)
        else:
            self.discovery_errors.append(f"{response.url}: not a sitemap (<{kind}>)")

    def _root(self, response: Response) -> Any:
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=MAX_SITEMAP_BYTES)
            except (OSError, ValueError) as error:
                self.discovery_errors.append(f"{response.url}: bad gzip sitemap ({error})")
                return None
        parser = _parser()
        try:
            root = etree.fromstring(body.strip(), parser=parser)
        except etree.XMLSyntaxError as error:
            self.discovery_errors.append(f"{response.url}: malformed sitemap ({error})")
            return None
        if root is None:
            self.discovery_errors.append(f"{response.url}: malformed sitemap (no XML found)")
        elif parser.error_log:
            # Recovered: use what could be read, but say the sitemap is broken.
            first = parser.error_log[0]
            self.discovery_errors.append(
                f"{response.url}: malformed sitemap, partly read (line {first.line}: "
                f"{first.message})"
            )
        return root

    def _children(self, response: Response, root: Any, depth: int) -> Iterable[scrapy.Request]:
        if depth >= MAX_SITEMAP_DEPTH:
            self.discovery_errors.append(f"{response.url}: sitemap index nested too deep")
            return
        children = 0
        for entry in root:
            loc = _child_text(entry, "loc")
            if not loc:
                continue
            if children >= MAX_CHILD_SITEMAPS:
                self.skipped_over_cap += 1
                continue
            children += 1
            request = self._sitemap_request(response.urljoin(loc), depth + 1)
            if request is not None:
                yield request

    def _articles(self, response: Response, root: Any) -> Iterable[scrapy.Request]:
        for count, entry in enumerate(root):
            if count >= MAX_URLS_PER_SITEMAP:
                self.skipped_over_cap += sum(1 for _ in root) - count
                return
            loc = _child_text(entry, "loc")
            if not loc:
                continue
            url = response.urljoin(loc)
            if not is_web_link(url):
                self.skipped_bad_links += 1
                continue
            news = _child(entry, "news")
            listed = plausible_date(
                parse_w3c_date(
                    (_child_text(news, "publication_date") if news is not None else None)
                    or _child_text(entry, "lastmod")
                ),
                self.now,
            )
            lastmod = plausible_date(parse_w3c_date(_child_text(entry, "lastmod")), self.now)
            newest = max((d for d in (listed, lastmod) if d), default=None)
            request = self.article_request(url, listed=newest)
            if request is not None:
                yield request


def _child(element: Any, name: str) -> Any:
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return child
    return None


def _child_text(element: Any, name: str) -> str | None:
    child = _child(element, name)
    text = child.text.strip() if child is not None and child.text else ""
    return text or None


def parse_w3c_date(value: str | None) -> datetime | None:
    """A sitemap date (``2024-11-24`` or ``2024-11-24T14:36:00+01:00``) in UTC, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def plausible_date(moment: datetime | None, now: datetime) -> datetime | None:
    """``moment``, or None when it lies more than two days after ``now`` (year 9999)."""
    if moment is None or moment > now + MAX_FUTURE:
        return None
    return moment


def is_web_link(url: str) -> bool:
    """Whether a discovered link is http(s); other schemes are skipped before enqueueing."""
    return urlsplit(url).scheme.lower() in ALLOWED_SCHEMES
