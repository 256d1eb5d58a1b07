"""The two reference spiders of ``bench/crawl.py``, each run in its own process.

``ceiling``: downloads the URLs and only counts responses: what Scrapy and nginx can do
on this machine with the crawl's concurrency, the fetch ceiling.

``naive``: the simple way to build the crawler: ``trafilatura.extract`` in the spider
callback (on the reactor thread) and one SQLite insert and commit per page.

Usage: ``python bench/crawl_spiders.py {ceiling,naive} --urls FILE --concurrency N
[--db PATH]``; prints ``{"responses": N, "extracted": N, "elapsed": S}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from crawler.addresses import parse_policy
from crawler.settings import load_config, scrapy_settings


class CountingSpider(scrapy.Spider):
    """Fetch every URL; count the responses."""

    name = "ceiling"

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls
        self.responses = 0
        self.extracted = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True)

    def parse(self, response: Response, **kwargs: Any) -> None:
        self.responses += 1


class NaiveSpider(CountingSpider):
    """Extract in the callback and commit one row per page."""

    name = "naive"

    def __init__(self, urls: list[str], db: str, **kwargs: Any) -> None:
        super().__init__(urls, **kwargs)
        self.db = sqlite3.connect(db)
        self.db.execute("CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, text TEXT)")

    def parse(self, response: Response, **kwargs: Any) -> None:
        import trafilatura

        self.responses += 1
        text = trafilatura.extract(response.text, url=response.url)
        if text:
            self.extracted += 1
            self.db.execute(
                "INSERT OR REPLACE INTO pages (url, text) VALUES (?, ?)", (response.url, text)
            )
            self.db.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("ceiling", "naive"))
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default="naive.db")
    args = parser.parse_args()
    urls = args.urls.read_text().split()
    # The crawler's own Scrapy baseline (robots.txt, timeouts, size limits), same concurrency.
    # nginx runs on 127.0.0.1, which the address guard refuses unless allowed.
    settings = scrapy_settings(
        load_config({"allow_private_addresses": parse_policy("127.0.0.0/8")})
    )
    settings.update(
        CONCURRENT_REQUESTS=args.concurrency,
        CONCURRENT_REQUESTS_PER_DOMAIN=args.concurrency,
        LOG_LEVEL="ERROR",
    )
    process = CrawlerProcess(settings=settings)
    crawler = process.create_crawler(CountingSpider if args.kind == "ceiling" else NaiveSpider)
    extra = {} if args.kind == "ceiling" else {"db": args.db}
    started = time.monotonic()
    process.crawl(crawler, urls=urls, **extra)
    process.start()
    spider = crawler.spider
    print(
        json.dumps(
            {
                "responses": spider.responses,
                "extracted": spider.extracted,
                "elapsed": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
