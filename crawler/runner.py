"""Runs Scrapy in this process: the one place that starts a crawler engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess

from crawler.errors import ExtractionError, FetchError
from crawler.extraction import Article
from crawler.fetches import FetchResult, article_from_fetch
from crawler.recording import Recorded, record_article, record_failure
from crawler.settings import Config, scrapy_settings
from crawler.store import open_store
from crawler.urls import validate_url
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


def fetch_article(
    url: str, config: Config, *, save: bool = True, verbose: bool = False
) -> tuple[Article, Recorded | None]:
    """Fetch one URL, extract its article and (with ``save``) record it in the store.

    Raises :class:`InvalidURL`, :class:`FetchError`, :class:`ExtractionError` or
    :class:`StoreError`; a failure is logged in the store's ``fetches`` table first.
    """
    url = validate_url(url)
    db = open_store(config.store) if save else None
    result = fetch_pages([url], config, verbose=verbose)[0]
    now = datetime.now(UTC)
    try:
        article = article_from_fetch(result)
    except (FetchError, ExtractionError) as error:
        if db is not None:
            outcome = error.outcome if isinstance(error, FetchError) else error.reason
            record_failure(db, result, now=now, outcome=outcome, reason=str(error))
        raise
    if db is None:
        return article, None
    text_dir = Path(config.store).parent / "articles"
    return article, record_article(db, article, result, text_dir=text_dir, now=now)
