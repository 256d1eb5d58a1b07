"""RSS and Atom feeds: every entry's link is an article; its date and GUID are kept."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import feedparser
import scrapy
from scrapy.http import Response

from spiders.base import SourceSpider
from spiders.sitemap import is_web_link, plausible_date

MAX_FEED_ENTRIES = 5_000  # per feed and run; the rest is skipped and counted

# An internal DTD subset is where entity bombs and external entities live; real feeds
# never need one, so it is cut before parsing.
_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)


class FeedSpider(SourceSpider):
    """Fetch the feed, then each entry's article."""

    name = "feed"

    def discovery_requests(self) -> Iterable[scrapy.Request]:
        self.skipped_over_cap = 0
        self.skipped_bad_links = 0
        for url in self.source.urls:
            yield scrapy.Request(url, callback=self.parse_feed, errback=self.discovery_failed)

    def parse_feed(self, response: Response, **kwargs: Any) -> Iterable[scrapy.Request]:
        """Yield article requests for the feed's entries."""
        parsed = feedparser.parse(_INTERNAL_SUBSET.sub(b"", response.body))
        if not parsed.entries:
            problem = parsed.get("bozo_exception") or "no entries"
            self.discovery_errors.append(f"{response.url}: not a usable feed ({problem})")
            return
        self.skipped_over_cap += max(0, len(parsed.entries) - MAX_FEED_ENTRIES)
        for entry in parsed.entries[:MAX_FEED_ENTRIES]:
            link = entry.get("link") or _link_from_guid(entry)
            if not link:
                continue
            url = response.urljoin(link)
            if not is_web_link(url):
                self.skipped_bad_links += 1  # javascript:, data:, file: … never enqueued
                continue
            listed = plausible_date(entry_date(entry), self.now)
            request = self.article_request(url, listed=listed)
            if request is not None:
                yield request


def entry_date(entry: Any) -> datetime | None:
    """The entry's updated or published time (feedparser's parsed UTC struct), if any."""
    for key in ("updated_parsed", "published_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError):
                continue
    return None


def _link_from_guid(entry: Any) -> str | None:
    guid = entry.get("id") or ""
    return guid if guid.startswith(("http://", "https://")) else None
