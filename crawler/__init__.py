"""A self-hosted monitoring crawler for news articles.

Scrapy fetches, :mod:`crawler.extraction` turns pages into clean text,
:mod:`crawler.changes` decides what changed, :mod:`crawler.store` keeps every version.
"""

__version__ = "0.1.0"
