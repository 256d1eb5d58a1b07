"""Runs Scrapy in this process: the one place that starts a crawler engine."""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess

from crawler.fetches import FetchResult
from crawler.settings import Config, scrapy_settings
from spiders.page import PageSpider


def fetch_pages(urls: list[str], config: Config, *, verbose: bool = False) -> list[FetchResult]:
    """Download ``urls`` with the crawl settings and return one FetchResult per URL, in order.

    Blocks until done. Starts a Twisted reactor, so call it at most once per process.
    """
    settings = scrapy_settings(config)
    settings["LOG_LEVEL"] = "INFO" if verbose else "CRITICAL"
    settings["LOG_INSTALL_ROOT_HANDLER"] = verbose
    results: dict[str, FetchResult] = {}

    def collect(item: Any, **_: Any) -> None:
        if isinstance(item, FetchResult):
            results.setdefault(item.url, item)

    process = CrawlerProcess(settings=settings)
    crawler = process.create_crawler(PageSpider)
    crawler.signals.connect(collect, signal=signals.item_scraped)
    process.crawl(crawler, urls=urls)
    process.start()
    return [
        results.get(url)
        or FetchResult(url=url, final_url=url, failure="error", reason="no response was received")
        for url in urls
    ]
