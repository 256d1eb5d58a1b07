"""A generated news site for the store and scheduler fault tests: unique articles and a
feed, editable edition by edition (served by ``tests/servers.SiteServer``)."""

from __future__ import annotations

import re
from pathlib import Path

from newssite import GERMAN, Entry, article_html, rss, sources_toml
from servers import SiteServer

_LONG_PARAGRAPH = re.compile(r"<p>[^<]{200,}(?=</p>)")


def publish_articles(
    server: SiteServer, count: int, *, edition: int = 0, edit_every: int = 3
) -> list[Entry]:
    """Write ``count`` unique articles and a feed of all of them; return their entries.

    Edition n > 0 edits the numbered sentence of every ``edit_every``-th article.
    """
    entries = [Entry(f"meldung-{number:03d}") for number in range(count)]
    for number, entry in enumerate(entries):
        html = article_html(entry.slug, server, GERMAN[0])
        version = edition if number % edit_every == 0 else 0
        sentence = f" Dies ist Meldung Nummer {number} in Fassung {version}."
        match = _LONG_PARAGRAPH.search(html, html.find("<h1"))
        assert match is not None
        server.write(entry.path, html[: match.end()] + sentence + html[match.end() :])
    server.write("/feed.xml", rss(server, entries))
    return entries


def write_feed_sources(
    path: Path, server: SiteServer, *, name: str = "feed", every: str = "1h", revisit: str = "0s"
) -> Path:
    """A sources.toml with one feed source over ``server``'s /feed.xml."""
    return sources_toml(
        path,
        f'name = "{name}"\ntype = "feed"\nurl = "{server.url("/feed.xml")}"\n'
        f'schedule = {{ every = "{every}" }}\nrevisit = {{ interval = "{revisit}" }}',
    )
