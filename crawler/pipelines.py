"""Scrapy item pipelines: extraction off the reactor thread, then one batched writer.

Both get their worker from the :class:`SourceCrawler` that runs them (an executor
and a recorder cannot travel in Scrapy's settings, which are deep-copied); under a
plain Scrapy crawler they switch themselves off.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings

from crawler.fetches import CrawledPage, FetchResult, extract_parts
from crawler.recording import BatchRecorder


class SourceCrawler(Crawler):
    """A Scrapy crawler that carries the crawl's shared extraction pool and writer."""

    def __init__(
        self,
        spidercls: type[Spider],
        settings: Settings,
        *,
        extractor: Executor,
        recorder: BatchRecorder,
        init_reactor: bool = False,
    ) -> None:
        super().__init__(spidercls, settings, init_reactor=init_reactor)
        self.extractor = extractor
        self.recorder = recorder


class ExtractionPipeline:
    """Turn a FetchResult into a CrawledPage, extracting in a process pool when needed.

    No extraction for failures, 304s and bodies identical to the stored one.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPipeline:
        if not isinstance(crawler, SourceCrawler):
            raise NotConfigured("extraction needs a SourceCrawler")
        return cls(crawler.extractor)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        if not item.ok or item.previous_body_hash == item.body_hash:
            return CrawledPage(item)
        loop = asyncio.get_running_loop()
        parts = await loop.run_in_executor(self.executor, extract_parts, item)
        return CrawledPage(item, *parts)


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
