"""Scrapy spiders. Discovery differs per spider; every one yields FetchResult items.

``page`` fetches given URLs once (``crawler fetch``); the source spiders (``feed``,
``sitemap``, ``site``, ``urls``) discover a source's articles and revisit known ones
through the shared path in :mod:`spiders.base`.
"""

from __future__ import annotations


def spider_for(source_type: str) -> type:
    """The spider class that crawls sources of ``source_type``."""
    from spiders.feed import FeedSpider
    from spiders.site import SiteSpider
    from spiders.sitemap import SitemapSpider
    from spiders.urls import UrlsSpider

    spiders: dict[str, type] = {
        "feed": FeedSpider,
        "sitemap": SitemapSpider,
        "site": SiteSpider,
        "urls": UrlsSpider,
    }
    return spiders[source_type]
