"""Scrapy item pipelines: extraction off the reactor thread, then one batched writer.

Both get their worker from the :class:`SourceCrawler` that runs them (an extraction
pool and a recorder cannot travel in Scrapy's settings, which are deep-copied); under
a plain Scrapy crawler they switch themselves off. Extraction is awaited, so the
downloader keeps fetching while pages are extracted; a page whose extraction hangs or
kills its worker becomes a failed check (:mod:`crawler.workers`), never a crash.
"""

from __future__ import annotations

from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings

from crawler.fetches import CrawledPage, FetchResult, body_problem
from crawler.recording import BatchRecorder
from crawler.workers import ExtractionPool


class SourceCrawler(Crawler):
    """A Scrapy crawler that carries the crawl's shared extraction pool and writer."""

    def __init__(
        self,
        spidercls: type[Spider],
        settings: Settings,
        *,
        extractor: ExtractionPool,
        recorder: BatchRecorder,
        init_reactor: bool = False,
    ) -> None:
        super().__init__(spidercls, settings, init_reactor=init_reactor)
        self.extractor = extractor
        self.recorder = recorder


class ExtractionPipeline:
    """Turn a FetchResult into a CrawledPage, extracting in a process pool when needed.

    No extraction for failures, 304s, bodies identical to the stored one, and bodies
    that cannot be a page (empty, binary): trafilatura never sees those.
    """

    def __init__(self, pool: ExtractionPool) -> None:
        self.pool = pool

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPipeline:
        if not isinstance(crawler, SourceCrawler):
            raise NotConfigured("extraction needs a SourceCrawler")
        return cls(crawler.extractor)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        if not item.ok or (item.previous_body_hash and item.previous_body_hash == item.body_hash):
            return CrawledPage(item)
        problem = body_problem(item)
        if problem is not None:
            return CrawledPage(item, None, *problem)
        return CrawledPage(item, *await self.pool.extract(item))


class RecordPipeline:
    """Hand each CrawledPage to the one writer, which records them in batches."""

    def __init__(self, recorder: BatchRecorder) -> None:
        self.recorder = recorder

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RecordPipeline:
        if not isinstance(crawler, SourceCrawler):
            raise NotConfigured("recording needs a SourceCrawler")
        return cls(crawler.recorder)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, CrawledPage):
            self.recorder.submit(item)
        return item
