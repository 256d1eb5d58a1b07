"""Explicit lists of article URLs."""

from __future__ import annotations

from collections.abc import Iterable

import scrapy

from spiders.base import SourceSpider


class UrlsSpider(SourceSpider):
    """Every listed URL is an article."""

    name = "urls"

    def discovery_requests(self) -> Iterable[scrapy.Request]:
        for url in self.source.urls:
            request = self.article_request(url, revisit=True)
            if request is not None:
                yield request
