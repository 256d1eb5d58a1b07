"""Whole sites: follow links on the source's domain, within its patterns and depth.

A page is an article when it matches the source's ``article_pattern`` or, without one,
when it says so itself (``og:type`` article or a schema.org ``*Article`` in JSON-LD).
Section pages are only read for links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from crawler.urls import canonicalize_url
from spiders.base import SourceSpider

_ARTICLE_MARKERS = re.compile(
    rb'<meta[^>]+property=["\']og:type["\'][^>]+content=["\']article'
    rb'|<meta[^>]+content=["\']article["\'][^>]+property=["\']og:type'
    rb'|"@type"\s*:\s*"(?:News|Reportage|Analysis|Opinion|Report|Blogs?)?(?:Article|Posting)"',
    re.IGNORECASE,
)


class SiteSpider(SourceSpider):
    """Crawl from the start URL; articles go down the shared path, links are followed."""

    name = "site"

    def discovery_requests(self) -> Iterable[scrapy.Request]:
        self.broken_links = 0
        # Scrapy's allow_domains compares host:port, so it cannot keep a crawl on
        # 127.0.0.1:8080; the host is checked in _on_site instead.
        self.links = LinkExtractor(deny=self.source.deny, deny_extensions=None, unique=True)
        for url in self.source.urls:
            yield scrapy.Request(url, callback=self.parse_page, errback=self.discovery_failed)

    def parse_page(self, response: Response, **kwargs: Any) -> Iterable[Any]:
        """Follow the page's links; treat it as an article when it is one."""
        if not isinstance(response, TextResponse):
            return
        depth = response.meta.get("depth", 0)
        if self._take_as_article(response):
            yield from self.parse_article(response)
        if depth >= self.source.depth:
            return
        for link in self.links.extract_links(response):
            if not self._on_site(link.url):
                continue
            known = canonicalize_url(link.url) in self.known
            if known or (self.article_pattern is not None and self.is_article_url(link.url)):
                request = self.article_request(link.url)
            elif self._may_follow(link.url):
                request = scrapy.Request(
                    link.url, callback=self.parse_page, errback=self.link_failed
                )
            else:
                request = None
            if request is not None:
                yield request

    def link_failed(self, failure: Failure) -> None:
        """A broken link or a refused page inside the site: counted, not a source failure."""
        self.broken_links += 1

    def _take_as_article(self, response: Response) -> bool:
        """Without an article pattern, a page that calls itself an article is one."""
        if self.article_pattern is not None or not self.is_article_url(response.url):
            return False
        canonical = canonicalize_url(response.url)
        if canonical in self.requested or not _ARTICLE_MARKERS.search(response.body[:200_000]):
            return False
        if self.max_pages is not None and len(self.requested) >= self.max_pages:
            return False
        self.requested.add(canonical)
        return True

    def _on_site(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return any(host == domain or host.endswith("." + domain) for domain in self.source.domains)

    def _may_follow(self, url: str) -> bool:
        if any(pattern.search(url) for pattern in self.deny):
            return False
        if self.max_pages is not None and len(self.requested) >= self.max_pages:
            return False
        return not self.allow or any(pattern.search(url) for pattern in self.allow)
