"""The bundled demo news site: its data, each cycle of its life, the extraction of its
articles (template churn must never reach the text) and the loopback server."""

from __future__ import annotations

import html
import json
import urllib.error
import urllib.request
from datetime import datetime

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from crawler.demo.site import (
    EXPECTED,
    OUTAGE_CYCLE,
    OUTAGE_PATH,
    RETRY_AFTER,
    SECTIONS,
    TIMELINE,
    Page,
    Story,
    load_timeline,
    render_site,
    serve_site,
)
from crawler.extraction import extract

BASE = "http://127.0.0.1:8765"
CHROME = ("Anzeige", "Mehr zum Thema", "Lesezeit", "Teilen", "Themen:", "Seite generiert", "Stand:")
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
BY_SLUG = {story.slug: story for story in TIMELINE.stories}
EDITED = BY_SLUG[TIMELINE.edit.slug]
REMOVED = BY_SLUG[TIMELINE.removal.slug]
LIVE_CYCLES = (0, 1, 3, 4, 5)
# Slugs published per cycle: 20, then 2 new, then 2 new and 1 removed.
COUNTS = {0: 20, 1: 22, 3: 23, 4: 23, 5: 23}


def articles_of(pages: dict[str, Page]) -> dict[str, Story]:
    return {path: story for story in TIMELINE.stories if (path := story.path) in pages}


def extracted(cycle: int, story: Story) -> str:
    page = render_site(cycle, BASE)[story.path]
    return extract(page.body, BASE + story.path, content_type=page.content_type).text


def escaped(text: str) -> bytes:
    return html.escape(text, quote=True).encode()


# --- the data -------------------------------------------------------------------------


def test_articles_toml_holds_24_articles_of_every_section():
    assert len(TIMELINE.stories) == 24
    assert len({s.slug for s in TIMELINE.stories}) == 24
    assert {s.section for s in TIMELINE.stories} == set(SECTIONS)
    assert {s.layout for s in TIMELINE.stories} == {"dwn", "tagesschau"}
    assert len(TIMELINE.teasers) == 10


@pytest.mark.parametrize("story", TIMELINE.stories, ids=lambda s: s.slug)
def test_article_shape(story: Story):
    assert story.slug.isascii()
    assert story.date.strftime("%Y-%m") == "2026-11" and 20 <= story.date.day <= 29
    assert 4 <= len(story.paragraphs) <= 6
    for paragraph in story.paragraphs:
        assert 40 <= len(paragraph.split()) <= 90, paragraph
    headings = [i for i, block in enumerate(story.blocks) if block.startswith("## ")]
    assert 1 <= len(headings) <= 2
    assert all(0 < i < len(story.blocks) - 1 for i in headings), "subheadings sit between text"
    words = " ".join((story.title, story.teaser, *story.blocks))
    assert not [c for c in CHROME if c in words], "the chrome checks below would be void"


def test_a_broken_timeline_names_the_bad_value():
    text = (
        '[edit]\nslug = "a"\ncycle = 3\nmodified = "2026-11-24T22:40:00+01:00"\n'
        'before = "nicht da"\nafter = "x"\n[removal]\nslug = "a"\ncycle = 3\n'
        '[[article]]\nslug = "a"\nsection = "Politik"\nlayout = "dwn"\ntitle = "T"\n'
        'teaser = "T"\nauthor = "A"\ndate = "2026-11-20T10:00:00+01:00"\ntags = []\n'
        'body = ["Ein Absatz."]\n[[related]]\ntitle = "T"\ntext = "T"\n'
        'date = "2026-11-20T10:00:00+01:00"\nsection = "Politik"\nslug = "t"\n'
    )
    with pytest.raises(ValueError, match="edit: 'a'"):
        load_timeline(text)
    with pytest.raises(ValueError, match="unknown layout 'blog'"):
        load_timeline(text.replace('layout = "dwn"', 'layout = "blog"'))


def test_expected_is_what_the_timeline_does():
    assert EXPECTED.new == 24
    assert EXPECTED.added == (
        "sturmwarnung-kueste",
        "landtag-kita-gesetz",
        "stadtwerke-fernwaerme-preise",
        "bienen-studie-stadtgruen",
    )
    assert EXPECTED.changed == ("stadtrat-beschliesst-doppelhaushalt",)
    assert EXPECTED.removed == ("marathon-neuer-streckenverlauf",)
    assert EXPECTED.slugs == tuple(s.slug for s in TIMELINE.stories)


# --- each cycle -----------------------------------------------------------------------


def test_rendering_is_deterministic():
    for cycle in (*LIVE_CYCLES, OUTAGE_CYCLE):
        assert render_site(cycle, BASE) == render_site(cycle, BASE + "/")


@pytest.mark.parametrize("cycle", LIVE_CYCLES)
def test_published_articles_per_cycle(cycle: int):
    pages = render_site(cycle, BASE)
    published = articles_of(pages)
    assert len(published) == COUNTS[cycle]
    slugs = {s.slug for s in published.values()}
    assert set(EXPECTED.added[:2]) <= slugs if cycle >= 1 else not slugs & set(EXPECTED.added)
    assert (REMOVED.slug in slugs) == (cycle < 3)
    assert (set(EXPECTED.added[2:]) <= slugs) == (cycle >= 3)
    sections = {f"/{slug}/" for slug in SECTIONS.values()}
    assert set(pages) == {
        *published,
        "/",
        *sections,
        "/feed.xml",
        "/news-sitemap.xml",
        "/robots.txt",
    }
    assert all(page.status == 200 for page in pages.values())


@pytest.mark.parametrize("cycle", LIVE_CYCLES)
def test_feed_lists_the_published_articles(cycle: int):
    pages = render_site(cycle, BASE)
    feed = feedparser.parse(pages["/feed.xml"].body)
    assert not feed.bozo, feed.get("bozo_exception")
    links = [entry.link for entry in feed.entries]
    assert sorted(links) == sorted(BASE + path for path in articles_of(pages))
    dates = [datetime(*entry.published_parsed[:6]) for entry in feed.entries]
    assert dates == sorted(dates, reverse=True)
    for entry in feed.entries:
        story = articles_of(pages)[entry.link.removeprefix(BASE)]
        assert entry.title == story.title
        assert entry.id == entry.link
        assert entry.author == story.author


@pytest.mark.parametrize("cycle", LIVE_CYCLES)
def test_news_sitemap_lists_the_published_articles(cycle: int):
    pages = render_site(cycle, BASE)
    root = etree.fromstring(pages["/news-sitemap.xml"].body)
    urls = root.findall(f"{SM}url")
    published = articles_of(pages)
    assert sorted(u.findtext(f"{SM}loc") for u in urls) == sorted(BASE + p for p in published)
    for url in urls:
        story = published[url.findtext(f"{SM}loc").removeprefix(BASE)]
        news = url.find(f"{NEWS}news")
        assert news.findtext(f"{NEWS}title") == story.title
        assert datetime.fromisoformat(news.findtext(f"{NEWS}publication_date")) == story.date
        lastmod = datetime.fromisoformat(url.findtext(f"{SM}lastmod"))
        assert (lastmod > story.date) == (story.slug == EDITED.slug and cycle >= 3)


def test_robots_allows_all_and_names_the_sitemap():
    robots = render_site(0, BASE)["/robots.txt"].body.decode()
    assert "User-agent: *\nAllow: /\n" in robots
    assert f"Sitemap: {BASE}/news-sitemap.xml" in robots.splitlines()


@pytest.mark.parametrize("cycle", LIVE_CYCLES)
def test_front_and_section_pages_link_every_published_article(cycle: int):
    pages = render_site(cycle, BASE)
    published = articles_of(pages)

    def links(path: str) -> set[str]:
        return set(lxml_html.fromstring(pages[path].body).xpath("//main//a/@href"))

    assert links("/") == set(published)
    for section, slug in SECTIONS.items():
        in_section = {p for p, s in published.items() if s.section == section}
        assert links(f"/{slug}/") == in_section


@pytest.mark.parametrize("cycle", (0, 3))
def test_article_pages_declare_their_own_url_and_metadata(cycle: int):
    pages = render_site(cycle, BASE)
    for path, story in articles_of(pages).items():
        tree = lxml_html.fromstring(pages[path].body)
        assert tree.xpath("//link[@rel='canonical']/@href") == [BASE + path]
        assert tree.xpath("//meta[@property='og:url']/@content") == [BASE + path]
        assert tree.xpath("//meta[@property='og:type']/@content") == ["article"]
        (raw,) = tree.xpath("//script[@type='application/ld+json']/text()")
        data = json.loads(raw)
        assert data["@type"] == "NewsArticle"
        assert data["headline"] == story.title
        assert data["author"]["name"] == story.author
        assert datetime.fromisoformat(data["datePublished"]) == story.date


def test_both_layouts_carry_their_chrome():
    pages = render_site(0, BASE)
    for path, story in articles_of(pages).items():
        page = pages[path].body.decode()
        for chrome in ("Anzeige", "Mehr zum Thema", "Teilen", "Themen:", "Seite generiert am"):
            assert chrome in page
        if story.layout == "dwn":
            assert "Lesezeit: " in page and 'class="breadcrumb"' in page
        else:
            assert "Stand: " in page and 'class="taglist tags"' in page


def test_outage_answers_503_everywhere():
    pages = render_site(OUTAGE_CYCLE, BASE)
    assert OUTAGE_PATH in pages
    assert set(pages) - {OUTAGE_PATH} == set(render_site(OUTAGE_CYCLE - 1, BASE))
    for page in pages.values():
        assert page.status == 503
        assert ("Retry-After", RETRY_AFTER) in page.headers
        assert "Wartungsarbeiten" in page.body.decode()


@pytest.mark.parametrize("before, after", [(0, 1), (3, 4), (4, 5)])
def test_template_churns_on_every_page_but_not_the_articles(before: int, after: int):
    """Every HTML page differs (the news sitemap only changes with the articles)."""
    old, new = render_site(before, BASE), render_site(after, BASE)
    html_pages = {p for p in set(old) & set(new) if old[p].content_type.startswith("text/html")}
    assert len(html_pages) >= 28
    for path in html_pages:
        assert old[path].body != new[path].body, path
    for path, story in articles_of(old).items():
        for block in story.blocks:
            text = block.removeprefix("## ").removeprefix("- ")
            if story.slug != EDITED.slug or after < 3:
                assert escaped(text) in old[path].body and escaped(text) in new[path].body


def test_the_edit_replaces_one_sentence_from_cycle_3():
    edit = TIMELINE.edit
    for cycle, sentence in ((0, edit.before), (1, edit.before), (3, edit.after), (4, edit.after)):
        page = render_site(cycle, BASE)[EDITED.path]
        assert escaped(sentence) in page.body
    tree = lxml_html.fromstring(render_site(3, BASE)[EDITED.path].body)
    data = json.loads(tree.xpath("//script[@type='application/ld+json']/text()")[0])
    assert datetime.fromisoformat(data["dateModified"]) == edit.modified


def test_the_removed_article_is_gone_from_cycle_3():
    for cycle in (3, 4):
        pages = render_site(cycle, BASE)
        assert REMOVED.path not in pages
        for path in ("/", "/feed.xml", "/news-sitemap.xml", f"/{SECTIONS[REMOVED.section]}/"):
            assert REMOVED.path.encode() not in pages[path].body, path


# --- extraction: the text is the article, whatever the template does -------------------


@pytest.mark.parametrize("story", TIMELINE.stories_in(1), ids=lambda s: s.slug)
def test_extraction_gives_the_article_and_no_chrome(story: Story):
    texts = [extracted(cycle, story) for cycle in (0, 1) if story.cycle <= cycle]
    for text in texts:
        lines = text.splitlines()
        assert lines[0] == story.title
        for block in story.blocks:
            assert block.removeprefix("## ") in lines, block
        assert not [c for c in CHROME if c in text]
    assert len(set(texts)) == 1, "template churn reached the extracted text"


@pytest.mark.parametrize("story", TIMELINE.stories_in(4), ids=lambda s: s.slug)
def test_extracted_text_changes_only_with_the_edit(story: Story):
    later = extracted(3, story)
    assert extracted(4, story) == later
    if story.cycle < 3:
        first = extracted(story.cycle, story)
        if story.slug == EDITED.slug:
            changed = set(first.splitlines()) ^ set(later.splitlines())
            assert len(changed) == 2 and TIMELINE.edit.after in later
        else:
            assert first == later


# --- the server -----------------------------------------------------------------------


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_server_walks_through_the_cycles():
    with serve_site() as site:
        assert site.base_url.startswith("http://127.0.0.1:")
        status, headers, body = fetch(site.url(EDITED.path))
        assert status == 200 and headers["Last-Modified"].endswith("GMT")
        assert body == render_site(0, site.base_url)[EDITED.path].body
        etag = headers["ETag"]
        assert fetch(site.url(EDITED.path), {"If-None-Match": etag})[0] == 304
        assert fetch(site.url(EDITED.path + "?utm_source=rss"))[0] == 200
        assert fetch(site.url("/gibt-es-nicht"))[0] == 404

        site.set_cycle(1)
        assert site.cycle == 1
        assert fetch(site.url(EDITED.path), {"If-None-Match": etag})[0] == 200

        site.set_cycle(OUTAGE_CYCLE)
        for path in (EDITED.path, "/feed.xml", "/gibt-es-nicht"):
            status, headers, _ = fetch(site.url(path))
            assert (status, headers["Retry-After"]) == (503, RETRY_AFTER)

        site.set_cycle(3)
        assert fetch(site.url(REMOVED.path))[0] == 404
        status, _, body = fetch(site.url(EDITED.path))
        assert status == 200 and escaped(TIMELINE.edit.after) in body
