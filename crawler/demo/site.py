"""The bundled demo news site that ``crawler demo`` monitors while it changes under it.

24 fictional German articles (``articles.toml``) in two layouts, a DWN-like one and a
tagesschau-like one, with a front page, section pages, an RSS feed, a Google News
sitemap and robots.txt. :func:`render_site` is pure: the site of one *cycle* as a dict
of URL path to :class:`Page`. The site's life, cycle by cycle:

    0   20 articles are published
    1   2 new articles; the template churns on every page (teasers, ad slots, render time)
    2   outage: every path answers 503 with Retry-After (key ``OUTAGE_PATH``)
    3   1 article edited, 1 removed (404), 2 new; the template churns again
    4+  as 3, the template keeps churning

:data:`EXPECTED` says what a correct monitor detects after cycles 0..4, and
:func:`serve_site` serves the site on 127.0.0.1 with ETags and a settable cycle.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import math
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import urlsplit

LOGGER = logging.getLogger(__name__)

SITE_NAME = "Demo-Nachrichten"
OUTAGE_CYCLE = 2
OUTAGE_PATH = "*"
"""Key of the page a server answers for every path, known or not, during the outage."""
RETRY_AFTER = "600"
"""Retry-After of the outage, in seconds: longer than a crawl waits, so it gives up."""
LAYOUTS = ("dwn", "tagesschau")
SECTIONS = {
    "Politik": "politik",
    "Wirtschaft": "wirtschaft",
    "Verkehr": "verkehr",
    "Wetter": "wetter",
    "Sport": "sport",
    "Kultur": "kultur",
    "Wissenschaft": "wissenschaft",
}
CLOCK_START = datetime.fromisoformat("2026-11-24T06:00:00+01:00")
CYCLE_LENGTH = timedelta(hours=6)
"""Site time of cycle n is CLOCK_START + n * CYCLE_LENGTH: it dates renders and feeds."""
PARTNER_URL = "https://www.partner-nachrichten.example"
"""Host of the rotating related teasers: off-site, so a site crawl does not follow them."""

_HTML = "text/html; charset=utf-8"
_XML = "application/xml; charset=utf-8"
_RSS = "application/rss+xml; charset=utf-8"
_RELATED_SHOWN = 5
_WORDS_PER_MINUTE = 200


@dataclass(frozen=True)
class Page:
    """One response of the site: status, Content-Type, body and extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Story:
    """One demo article. ``blocks`` are paragraphs, "## " subheadings and "- " items."""

    slug: str
    section: str
    layout: str
    title: str
    teaser: str
    author: str
    date: datetime
    tags: tuple[str, ...]
    blocks: tuple[str, ...]
    cycle: int = 0
    modified: datetime | None = None

    def __post_init__(self) -> None:
        if not self.slug.isascii() or not self.slug.replace("-", "").isalnum():
            raise ValueError(f"slug must be ASCII letters, digits and dashes: {self.slug!r}")
        if self.section not in SECTIONS:
            raise ValueError(f"{self.slug}: unknown section {self.section!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.slug}: unknown layout {self.layout!r}")
        if self.date.tzinfo is None:
            raise ValueError(f"{self.slug}: date needs a UTC offset: {self.date}")
        if not self.paragraphs:
            raise ValueError(f"{self.slug}: body has no paragraphs")

    @property
    def path(self) -> str:
        """The URL path: DWN-like ``/section/slug``, tagesschau-like ``/section/slug-100.html``."""
        section = SECTIONS[self.section]
        if self.layout == "dwn":
            return f"/{section}/{self.slug}"
        return f"/{section}/{self.slug}-100.html"

    @property
    def paragraphs(self) -> tuple[str, ...]:
        """The body's paragraphs, without subheadings and bullet items."""
        return tuple(b for b in self.blocks if not b.startswith(("## ", "- ")))

    @property
    def last_modified(self) -> datetime:
        """When the text last changed: the edit's time, else the publication date."""
        return self.modified or self.date


@dataclass(frozen=True)
class Teaser:
    """A related teaser of another site, rotated through the templates as churn."""

    title: str
    text: str
    date: datetime
    section: str
    slug: str

    @property
    def url(self) -> str:
        return f"{PARTNER_URL}/{SECTIONS[self.section]}/{self.slug}"


@dataclass(frozen=True)
class Edit:
    """In ``cycle`` the newsroom replaces sentence ``before`` of article ``slug``."""

    slug: str
    cycle: int
    modified: datetime
    before: str
    after: str


@dataclass(frozen=True)
class Removal:
    """In ``cycle`` article ``slug`` is taken down: its path answers 404 from then on."""

    slug: str
    cycle: int


@dataclass(frozen=True)
class Timeline:
    """The site's articles, related teasers, and the edit and removal of its life."""

    stories: tuple[Story, ...]
    teasers: tuple[Teaser, ...]
    edit: Edit
    removal: Removal

    def __post_init__(self) -> None:
        slugs = [story.slug for story in self.stories]
        if len(set(slugs)) != len(slugs):
            raise ValueError("article slugs must be unique")
        if len({story.path for story in self.stories}) != len(slugs):
            raise ValueError("article paths must be unique")
        by_slug = {story.slug: story for story in self.stories}
        edited = by_slug.get(self.edit.slug)
        if edited is None or sum(b.count(self.edit.before) for b in edited.blocks) != 1:
            raise ValueError(f"edit: {self.edit.slug!r} must hold its sentence exactly once")
        if self.removal.slug not in by_slug or self.removal.slug == self.edit.slug:
            raise ValueError(f"removal: {self.removal.slug!r} must be another known article")
        if OUTAGE_CYCLE in {self.edit.cycle, self.removal.cycle, *(s.cycle for s in self.stories)}:
            raise ValueError(f"nothing may happen in the outage cycle {OUTAGE_CYCLE}")

    def stories_in(self, cycle: int) -> tuple[Story, ...]:
        """The articles published in ``cycle`` (edit applied), newest first."""
        shown = []
        for story in self.stories:
            if story.cycle > cycle:
                continue
            if story.slug == self.removal.slug and cycle >= self.removal.cycle:
                continue
            if story.slug == self.edit.slug and cycle >= self.edit.cycle:
                story = _edited(story, self.edit)
            shown.append(story)
        return tuple(sorted(shown, key=lambda s: s.date, reverse=True))


@dataclass(frozen=True)
class Expected:
    """What a correct monitor detects in total after cycles 0..4 of the demo site.

    ``new`` counts first sightings (every article, once); ``added`` are the slugs
    published after cycle 0; ``changed`` and ``removed`` hold exactly one slug each.
    """

    new: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    slugs: tuple[str, ...]


def load_timeline(text: str | None = None) -> Timeline:
    """Parse ``articles.toml`` (or ``text`` in its format) into a :class:`Timeline`.

    Raises ``ValueError`` (or ``tomllib.TOMLDecodeError``) for a bad file.
    """
    if text is None:
        text = files(__package__).joinpath("articles.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    stories = tuple(
        Story(
            slug=raw["slug"],
            section=raw["section"],
            layout=raw["layout"],
            title=raw["title"],
            teaser=raw["teaser"],
            author=raw["author"],
            date=datetime.fromisoformat(raw["date"]),
            tags=tuple(raw["tags"]),
            blocks=tuple(raw["body"]),
            cycle=raw.get("cycle", 0),
        )
        for raw in data["article"]
    )
    teasers = tuple(
        Teaser(t["title"], t["text"], datetime.fromisoformat(t["date"]), t["section"], t["slug"])
        for t in data["related"]
    )
    raw_edit = data["edit"]
    edit = Edit(
        slug=raw_edit["slug"],
        cycle=raw_edit["cycle"],
        modified=datetime.fromisoformat(raw_edit["modified"]),
        before=raw_edit["before"],
        after=raw_edit["after"],
    )
    removal = Removal(data["removal"]["slug"], data["removal"]["cycle"])
    return Timeline(stories, teasers, edit, removal)


def expected_changes(timeline: Timeline, last_cycle: int = 4) -> Expected:
    """What a monitor running cycles 0..``last_cycle`` must detect on ``timeline``."""
    seen = [s for s in timeline.stories if s.cycle <= last_cycle]
    # A removal counts once a second 404 in a later cycle confirms it.
    removed = (timeline.removal.slug,) if last_cycle > timeline.removal.cycle else ()
    changed = (timeline.edit.slug,) if last_cycle >= timeline.edit.cycle else ()
    return Expected(
        new=len(seen),
        added=tuple(s.slug for s in seen if s.cycle > 0),
        changed=changed,
        removed=removed,
        slugs=tuple(s.slug for s in timeline.stories),
    )


TIMELINE = load_timeline()
EXPECTED = expected_changes(TIMELINE)


def site_time(cycle: int) -> datetime:
    """The site's clock in ``cycle``: when its pages of that cycle were rendered."""
    return CLOCK_START + cycle * CYCLE_LENGTH


def render_site(cycle: int, base_url: str, timeline: Timeline = TIMELINE) -> dict[str, Page]:
    """Render the site as it is in ``cycle``: URL path to :class:`Page`, links under
    ``base_url``. In the outage cycle every path (and ``OUTAGE_PATH``) is a 503 page.

    Raises ``ValueError`` for a negative cycle.
    """
    if cycle < 0:
        raise ValueError(f"cycle must be 0 or more, got {cycle}")
    base_url = base_url.rstrip("/")
    if cycle == OUTAGE_CYCLE:
        maintenance = _maintenance_page()
        known = render_site(cycle - 1, base_url, timeline)
        return {**dict.fromkeys(known, maintenance), OUTAGE_PATH: maintenance}
    render = _Render(cycle, base_url, timeline)
    stories = timeline.stories_in(cycle)
    pages = {story.path: render.article(story, stories) for story in stories}
    pages["/"] = render.listing("Nachrichten", "/", stories)
    for section, section_slug in SECTIONS.items():
        in_section = tuple(s for s in stories if s.section == section)
        if in_section:
            pages[f"/{section_slug}/"] = render.listing(section, f"/{section_slug}/", in_section)
    pages["/feed.xml"] = render.feed(stories)
    pages["/news-sitemap.xml"] = render.news_sitemap(stories)
    robots = f"User-agent: *\nAllow: /\n\nSitemap: {base_url}/news-sitemap.xml\n"
    pages["/robots.txt"] = Page(200, "text/plain; charset=utf-8", robots.encode())
    return pages


def _edited(story: Story, edit: Edit) -> Story:
    blocks = tuple(b.replace(edit.before, edit.after) for b in story.blocks)
    return replace(story, blocks=blocks, modified=edit.modified)


def _maintenance_page() -> Page:
    body = _template("maintenance.html").substitute(
        site_name=SITE_NAME, retry_minutes=int(RETRY_AFTER) // 60
    )
    return Page(503, _HTML, body.encode(), (("Retry-After", RETRY_AFTER),))


@functools.cache
def _template(name: str) -> Template:
    return Template(files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _display(moment: datetime) -> str:
    return moment.strftime("%d.%m.%Y %H:%M")


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:10]


class _Render:
    """The pages of one cycle; the template churns with ``cycle``, never the articles."""

    def __init__(self, cycle: int, base_url: str, timeline: Timeline) -> None:
        self.cycle = cycle
        self.base_url = base_url
        self.timeline = timeline
        self.now = site_time(cycle)

    def article(self, story: Story, published: tuple[Story, ...]) -> Page:
        """The article page in its layout, with canonical URL, Open Graph and JSON-LD."""
        url = self.base_url + story.path
        words = sum(len(b.split()) for b in (story.teaser, *story.blocks))
        more = [s for s in published if s.section == story.section and s.slug != story.slug]
        fields = {
            "site_name": _e(SITE_NAME),
            "base_url": self.base_url,
            "url": _e(url),
            "title": _e(story.title),
            "teaser": _e(story.teaser),
            "author": _e(story.author),
            "section": _e(story.section),
            "section_path": f"/{SECTIONS[story.section]}/",
            "topline": _e(story.tags[0] if story.tags else story.section),
            "keywords": _e(", ".join(story.tags)),
            "published": story.date.isoformat(),
            "modified": story.last_modified.isoformat(),
            "published_display": _display(story.date),
            "modified_display": _display(story.last_modified),
            "reading_minutes": str(max(1, math.ceil(words / _WORDS_PER_MINUTE))),
            "json_ld": _json_ld(story, url),
            "meta_tags": "\n".join(
                f'<meta property="article:tag" content="{_e(t)}">' for t in story.tags
            ),
            "tag_items": "\n".join(
                f'          <li><a href="/themen/{_e(_tag_slug(t))}">#{_e(t)}</a></li>'
                for t in story.tags
            ),
            "node_id": str(100000 + self.timeline.stories.index(self._original(story))),
            "nav_items": self._nav_items(),
            "header": self._header(),
            "footer": self._footer(),
            "churn": str(self.cycle),
            "render_id": _digest(story.slug, self.cycle),
            "slot": f"/2345/demo/{SECTIONS[story.section]}/r{self.cycle}",
            "slot_id": _digest("slot", story.slug, self.cycle),
            "generated": self._generated(),
            "most_read": self._most_read(published, story),
        }
        if story.layout == "dwn":
            fields["body"] = self._dwn_body(story)
            fields["more_items"] = "\n".join(
                f'      <li><a href="{s.path}">{_e(s.title)}</a></li>' for s in more[:3]
            )
            fields["teasers"] = self._dwn_teasers(story)
        else:
            fields["body"] = self._tagesschau_body(story, more[:1])
            fields["teasers"] = self._tagesschau_teasers(story)
        page = _template(f"{story.layout}.html").substitute(fields)
        headers = (("Last-Modified", _http_date(story.last_modified)),)
        return Page(200, _HTML, page.encode(), headers)

    def listing(self, heading: str, path: str, stories: tuple[Story, ...]) -> Page:
        """The front page or a section page: teasers linking to ``stories``, newest first."""
        teasers = "\n".join(
            f'    <div class="teaser">\n'
            f'      <span class="teaser__category">{_e(s.section)}</span>\n'
            f'      <h2 class="teaser__title"><a href="{s.path}">{_e(s.title)}</a></h2>\n'
            f'      <time class="teaser__date" datetime="{s.date.isoformat()}">'
            f"{_display(s.date)}</time>\n"
            f'      <p class="teaser__text">{_e(s.teaser)}</p>\n'
            f"    </div>"
            for s in stories
        )
        page = _template("index.html").substitute(
            heading=_e(heading),
            site_name=_e(SITE_NAME),
            url=_e(self.base_url + path),
            base_url=self.base_url,
            churn=str(self.cycle),
            header=self._header(),
            footer=self._footer(),
            slot=f"/2345/demo/start/r{self.cycle}",
            slot_id=_digest("slot", path, self.cycle),
            teasers=teasers,
        )
        return Page(200, _HTML, page.encode(), (("Last-Modified", _http_date(self.now)),))

    def feed(self, stories: tuple[Story, ...]) -> Page:
        """RSS 2.0 of the published articles, newest first."""
        items = "".join(
            f"<item><title>{_e(s.title)}</title><link>{self.base_url}{s.path}</link>"
            f'<guid isPermaLink="true">{self.base_url}{s.path}</guid>'
            f"<pubDate>{_http_date(s.date)}</pubDate><dc:creator>{_e(s.author)}</dc:creator>"
            f"<category>{_e(s.section)}</category><description>{_e(s.teaser)}</description>"
            "</item>\n"
            for s in stories
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>\n'
            f"<title>{_e(SITE_NAME)}</title><link>{self.base_url}/</link>"
            "<description>Nachrichten aus der Region</description><language>de</language>"
            f'<atom:link href="{self.base_url}/feed.xml" rel="self" type="application/rss+xml"/>'
            f"<lastBuildDate>{_http_date(self.now)}</lastBuildDate>\n{items}</channel></rss>\n"
        )
        return Page(200, _RSS, body.encode(), (("Last-Modified", _http_date(self.now)),))

    def news_sitemap(self, stories: tuple[Story, ...]) -> Page:
        """A Google News sitemap of the published articles, with lastmod of edits."""
        urls = "".join(
            f"<url><loc>{self.base_url}{s.path}</loc>"
            f"<lastmod>{s.last_modified.isoformat()}</lastmod><news:news><news:publication>"
            f"<news:name>{_e(SITE_NAME)}</news:name><news:language>de</news:language>"
            f"</news:publication><news:publication_date>{s.date.isoformat()}"
            f"</news:publication_date><news:title>{_e(s.title)}</news:title></news:news>"
            "</url>\n"
            for s in stories
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">\n'
            f"{urls}</urlset>\n"
        )
        return Page(200, _XML, body.encode(), (("Last-Modified", _http_date(self.now)),))

    def _original(self, story: Story) -> Story:
        return next(s for s in self.timeline.stories if s.slug == story.slug)

    def _related(self, story: Story) -> list[Teaser]:
        # Rotate through the teasers per article and cycle, and redate them each cycle.
        teasers = self.timeline.teasers
        start = (self.timeline.stories.index(self._original(story)) * 3 + self.cycle * 4) % len(
            teasers
        )
        shown = [teasers[(start + i) % len(teasers)] for i in range(_RELATED_SHOWN)]
        shift = timedelta(days=self.cycle, minutes=17 * self.cycle)
        return [replace(t, date=t.date + shift) for t in shown]

    def _dwn_body(self, story: Story) -> str:
        slot = f"/2345/demo/{SECTIONS[story.section]}/r{self.cycle}/mrec_1"
        ad = (
            f'        <div class="ad ad--inarticle" id="ad-inarticle-{self.cycle}">\n'
            '          <span class="ad__label">Anzeige</span>\n'
            f'          <div id="div-gpt-ad-{_digest("mrec", story.slug, self.cycle)}" '
            f'data-slot="{slot}"></div>\n'
            "        </div>"
        )
        return _blocks_html(story.blocks, after_second=ad, indent=8)

    def _tagesschau_body(self, story: Story, more: list[Story]) -> str:
        box = ""
        if more:
            other = more[0]
            box = (
                '    <div class="teaser-absatz related">\n'
                '      <div class="teaser-absatz__label">Mehr zum Thema</div>\n'
                f'      <a class="teaser-absatz__link" href="{other.path}">\n'
                f'        <span class="teaser-absatz__topline">{_e(other.section)}</span>\n'
                f'        <span class="teaser-absatz__headline">{_e(other.title)}</span>\n'
                f'        <span class="teaser-absatz__date">{other.date:%d.%m.%Y}</span>\n'
                "      </a>\n"
                "    </div>"
            )
        return _blocks_html(
            story.blocks,
            after_second=box,
            indent=4,
            p_class="textabsatz columns twelve",
            h2_class="meldung__subhead columns twelve",
        )

    def _dwn_teasers(self, story: Story) -> str:
        return "\n".join(
            f'    <div class="teaser">\n'
            f'      <span class="teaser__brand">Partner</span>\n'
            f'      <span class="teaser__category">{_e(t.section)}</span>\n'
            f'      <h3 class="teaser__title"><a href="{t.url}"><span class="teaser__kicker">'
            f"{_e(t.section)}</span> {_e(t.title)}</a></h3>\n"
            f'      <time class="teaser__date" datetime="{t.date.isoformat()}">'
            f"{t.date:%d.%m.%Y}</time>\n"
            f'      <p class="teaser__text">{_e(t.text)}</p>\n'
            f"    </div>"
            for t in self._related(story)
        )

    def _tagesschau_teasers(self, story: Story) -> str:
        return "\n".join(
            f'    <div class="teaser">\n'
            f'      <a href="{t.url}">\n'
            f'        <span class="teaser__date">{t.date:%d.%m.%Y}</span>\n'
            f'        <span class="teaser__topline">{_e(t.section)}</span>\n'
            f'        <span class="teaser__headline">{_e(t.title)}</span>\n'
            f'        <p class="teaser__shorttext">{_e(t.text)}</p>\n'
            "      </a>\n"
            "    </div>"
            for t in self._related(story)
        )

    def _most_read(self, published: tuple[Story, ...], story: Story) -> str:
        others = [s for s in published if s.slug != story.slug]
        offset = self.cycle % max(1, len(others))
        picks = (others[offset:] + others[:offset])[:3]
        return "\n".join(f'        <li><a href="{s.path}">{_e(s.title)}</a></li>' for s in picks)

    def _nav_items(self) -> str:
        return "\n".join(
            f'      <li class="menu-item"><a href="/{slug}/">{_e(name)}</a></li>'
            for name, slug in SECTIONS.items()
        )

    def _header(self) -> str:
        return (
            '<header class="site-header" role="banner">\n'
            '  <div class="site-header__top">\n'
            f'    <a href="/" class="site-logo" rel="home" title="Startseite">{_e(SITE_NAME)}</a>\n'
            '    <div class="site-header__actions">\n'
            '      <a href="/abo" class="btn btn--abo">Abo</a>\n'
            '      <a href="/user/login" class="btn btn--login">Anmelden</a>\n'
            "    </div>\n"
            "  </div>\n"
            '  <nav class="main-menu" role="navigation" aria-label="Hauptmenü">\n'
            f'    <ul class="menu">\n{self._nav_items()}\n    </ul>\n'
            "  </nav>\n"
            "</header>"
        )

    def _footer(self) -> str:
        return (
            '<footer class="site-footer" role="contentinfo">\n'
            '  <nav class="footer-menu" aria-label="Fußzeile">\n'
            "    <ul>\n"
            '      <li><a href="/impressum">Impressum</a></li>\n'
            '      <li><a href="/datenschutz">Datenschutz</a></li>\n'
            '      <li><a href="/kontakt">Kontakt</a></li>\n'
            "    </ul>\n"
            "  </nav>\n"
            f'  <p class="generated">Seite generiert am {self._generated()}</p>\n'
            f'  <p class="copyright">© 2026 {_e(SITE_NAME)}. Alle Rechte vorbehalten.</p>\n'
            "</footer>"
        )

    def _generated(self) -> str:
        return f"{self.now:%d.%m.%Y} um {self.now:%H:%M} Uhr"


def _blocks_html(
    blocks: tuple[str, ...],
    *,
    after_second: str,
    indent: int,
    p_class: str = "",
    h2_class: str = "",
) -> str:
    """Paragraphs, <h2> subheadings and <ul> lists; ``after_second`` follows paragraph 2."""
    pad = " " * indent
    attr = f' class="{p_class}"' if p_class else ""
    h2_attr = f' class="{h2_class}"' if h2_class else ""
    out: list[str] = []
    items: list[str] = []
    paragraphs = 0

    def close_list() -> None:
        if items:
            out.append(f"{pad}<ul>\n" + "\n".join(items) + f"\n{pad}</ul>")
            items.clear()

    for block in blocks:
        if block.startswith("- "):
            items.append(f"{pad}  <li>{_e(block[2:])}</li>")
            continue
        close_list()
        if block.startswith("## "):
            out.append(f"{pad}<h2{h2_attr}>{_e(block[3:])}</h2>")
            continue
        out.append(f"{pad}<p{attr}>{_e(block)}</p>")
        paragraphs += 1
        if paragraphs == 2 and after_second:
            out.append(after_second)
    close_list()
    return "\n".join(out)


def _json_ld(story: Story, url: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": url,
        "headline": story.title,
        "description": story.teaser,
        "datePublished": story.date.isoformat(),
        "dateModified": story.last_modified.isoformat(),
        "author": {"@type": "Person", "name": story.author},
        "publisher": {"@type": "Organization", "name": SITE_NAME},
        "articleSection": story.section,
        "keywords": list(story.tags),
    }
    # "</" would end the script element early.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _tag_slug(tag: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", " ": "-"})
    return tag.lower().translate(table)


class DemoSite:
    """The demo site on a loopback port; :meth:`set_cycle` moves it through its life."""

    def __init__(self, base_url: str, timeline: Timeline = TIMELINE) -> None:
        self.base_url = base_url
        self._timeline = timeline
        self._lock = threading.Lock()
        self._cycle = 0
        self._pages: Mapping[str, Page] = render_site(0, base_url, timeline)

    @property
    def cycle(self) -> int:
        """The cycle being served."""
        with self._lock:
            return self._cycle

    def set_cycle(self, cycle: int) -> None:
        """Serve ``cycle`` from now on; safe to call while requests are answered."""
        pages = render_site(cycle, self.base_url, self._timeline)
        with self._lock:
            self._cycle = cycle
            self._pages = pages

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def page(self, path: str) -> Page | None:
        """The page served at ``path`` (query ignored) in the current cycle, or None (404)."""
        with self._lock:
            pages = self._pages
        return pages.get(urlsplit(path).path) or pages.get(OUTAGE_PATH)


@contextmanager
def serve_site(base_host: str = "127.0.0.1") -> Iterator[DemoSite]:
    """Serve the demo site on a free port of ``base_host`` (IPv4), in cycle 0; yield it.

    404 for unknown paths, ETag (sha256 of the body) with If-None-Match → 304,
    Last-Modified, and 503 with Retry-After during the outage cycle.
    """
    holder: dict[str, DemoSite] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802 - the http.server API
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            page = holder["site"].page(self.path)
            if page is None:
                page = Page(404, _HTML, b"<!DOCTYPE html><title>Nicht gefunden</title>\n")
            etag = f'"{hashlib.sha256(page.body).hexdigest()}"'
            matches = page.status == 200 and _etag_matches(self.headers.get("If-None-Match"), etag)
            self.send_response(304 if matches else page.status)
            for name, value in page.headers:
                self.send_header(name, value)
            if page.status == 200:
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", "no-cache")
            if matches:
                self.end_headers()
                return
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(page.body)))
            self.end_headers()
            if send_body:
                self.wfile.write(page.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            LOGGER.debug("demo site: " + format, *args)

    server = ThreadingHTTPServer((base_host, 0), Handler)
    server.daemon_threads = True
    host, port = str(server.server_address[0]), server.server_address[1]
    holder["site"] = DemoSite(f"http://{host}:{port}")
    thread = threading.Thread(target=server.serve_forever, name="demo-site", daemon=True)
    thread.start()
    try:
        yield holder["site"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates
