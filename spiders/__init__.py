"""Scrapy spiders. Discovery differs per spider; every one yields FetchResult items."""
