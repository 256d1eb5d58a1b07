"""A small German news site for crawl tests, built in a temporary folder from the fixture
pages: articles under /artikel/, an RSS feed, a sitemap index with a gzip child, a Google
News sitemap, and section pages that link to the articles."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from servers import SiteServer

PAGES = Path(__file__).resolve().parent / "pages"
GERMAN = (
    "dwn-nato-rutte",
    "tagesschau-bahn-puenktlichkeit",
    "spiegel-baugenehmigungen",
    "faz-stromnetz-ausbau",
    "regional-radverkehrskonzept",
    "heise-ssd-preise",
)
_CANONICAL = re.compile(r'<link[^>]+rel="canonical"[^>]*>|<meta[^>]+property="og:url"[^>]*>')


@dataclass(frozen=True)
class Entry:
    """One article of the site: its path and the date feeds and sitemaps give it."""

    slug: str
    date: str = "2026-11-23T08:00:00+00:00"

    @property
    def path(self) -> str:
        return f"/artikel/{self.slug}.html"


def article_html(slug: str, server: SiteServer, source: str | None = None) -> str:
    """A fixture page whose canonical URL is its address on the test site."""
    html = (PAGES / f"{source or slug}.html").read_text(encoding="utf-8")
    own = server.url(f"/artikel/{slug}.html")
    return _CANONICAL.sub(f'<link rel="canonical" href="{own}">', html, count=1)


def publish(server: SiteServer, entries: list[Entry]) -> None:
    """Write the articles, the feed, the sitemaps and a section page for ``entries``."""
    for entry in entries:
        source = entry.slug if (PAGES / f"{entry.slug}.html").exists() else GERMAN[0]
        server.write(entry.path, article_html(entry.slug, server, source))
    server.write("/feed.xml", rss(server, entries))
    server.write("/sitemap-artikel.xml.gz", gzip.compress(urlset(server, entries).encode()))
    server.write("/news-sitemap.xml", news_sitemap(server, entries))
    server.write("/sitemap.xml", sitemap_index(server, ["/sitemap-artikel.xml.gz"]))
    links = "".join(f'<li><a href="{e.path}">{e.slug}</a></li>' for e in entries)
    server.write(
        "/politik/index.html",
        f"<html><head><title>Politik</title></head><body><nav><a href='/'>Start</a></nav>"
        f"<h1>Politik</h1><ul>{links}</ul><a href='/private/intern.html'>Intern</a></body></html>",
    )


def rss(server: SiteServer, entries: list[Entry]) -> str:
    items = "".join(
        f"<item><title>{e.slug}</title><link>{server.url(e.path)}?utm_source=rss</link>"
        f"<guid isPermaLink='false'>id-{e.slug}</guid><pubDate>{_rfc822(e.date)}</pubDate></item>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Testnachrichten</title><link>{server.url('/')}</link>{items}</channel></rss>"
    )


def urlset(server: SiteServer, entries: list[Entry]) -> str:
    urls = "".join(
        f"<url><loc>{server.url(e.path)}</loc><lastmod>{e.date}</lastmod></url>" for e in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


def news_sitemap(server: SiteServer, entries: list[Entry]) -> str:
    urls = "".join(
        f"<url><loc>{server.url(e.path)}</loc><news:news><news:publication>"
        "<news:name>Test</news:name><news:language>de</news:language></news:publication>"
        f"<news:publication_date>{e.date}</news:publication_date>"
        f"<news:title>{e.slug}</news:title></news:news></url>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    )


def sitemap_index(server: SiteServer, children: list[str]) -> str:
    maps = "".join(f"<sitemap><loc>{server.url(child)}</loc></sitemap>" for child in children)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    )


def sources_toml(path: Path, *tables: str) -> Path:
    """Write a sources file of the given ``[[source]]`` bodies."""
    path.write_text("".join(f"[[source]]\n{table.strip()}\n\n" for table in tables), "utf-8")
    return path


def _rfc822(iso: str) -> str:
    from datetime import datetime
    from email.utils import format_datetime

    return format_datetime(datetime.fromisoformat(iso), usegmt=True)
