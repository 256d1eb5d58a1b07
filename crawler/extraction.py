"""Article extraction: HTML in, clean text and metadata out. The one home of trafilatura.

Pure: no network, no store, no clock. ``extract(html, url)`` returns an :class:`Article`
whose ``text`` is the file format of ``data/articles/*.txt``: the title on the first line,
then the body, one paragraph a line, subheadings on their own line, list items as
``- item``, table rows one a line with cells joined by `` | ``, no blank lines, no
trailing spaces.

trafilatura finds the main text; this module adds what it misses, in stages:

1. **parse** the page with trafilatura's loader and read the metadata from the raw tree;
2. **pre-clean** the tree: collect topic lists ("Themen: #Wahlen") as tags, rescue
   standfirsts that carry a "teaser" class, and delete boilerplate containers matched by
   the class/id tokens, roles and aria-labels in :data:`NOISE_GROUPS` and friends, and
   boxes introduced by a "Mehr zum Thema" style heading;
3. **extract** with trafilatura on the cleaned tree;
4. **render** trafilatura's XML body ourselves into the line format;
5. **post-filter** lines matching :data:`BOILERPLATE_LINES` (share buttons, image credits,
   reading time, date lines, newsletter and paywall prompts) in German and English.

The selectors are data: extend the token sets and patterns, not the code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import trafilatura
from charset_normalizer import from_bytes
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.metadata import extract_metadata
from trafilatura.settings import Document
from trafilatura.utils import load_html
from trafilatura.xpaths import BODY_XPATH
from w3lib.encoding import html_to_unicode

from crawler.errors import ExtractionError, InvalidURL
from crawler.urls import canonicalize_url, validate_url

LOGGER = logging.getLogger(__name__)

# Magic numbers of formats that are sometimes served as text/html.
_BINARY_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00\x00\x01\x00", "an icon"),
)

# --- Selectors, as data ---------------------------------------------------------------


# Class/id tokens (names split at "-", "_", spaces and camelCase, lower-cased) of
# containers that never hold article text, grouped by what they are. Each group has a
# limit: the most non-link text a matching container may hold and still be deleted
# (``None``: any amount), and whether it must be a link list.
@dataclass(frozen=True)
class NoiseGroup:
    """A family of boilerplate class/id tokens and the guard that goes with them."""

    tokens: frozenset[str]
    max_text: int | None = None
    links_only: bool = False


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NOISE_GROUPS: dict[str, NoiseGroup] = {
    "navigation": NoiseGroup(
        _words("nav navigation navbar breadcrumb breadcrumbs crumbs pagination pager megamenu"),
        links_only=True,
    ),
    "consent": NoiseGroup(_words("consent cookie cookies cookiebanner gdpr privacybanner")),
    "ads": NoiseGroup(
        _words(
            "ad ads adslot adunit adsense advert adverts advertisement advertising anzeige "
            "anzeigen werbung sponsor sponsored promo outbrain taboola plista dfp gpt"
        ),
        max_text=300,
    ),
    "related": NoiseGroup(
        _words(
            "related relatedposts relatedarticles recommendations recommended empfehlungen "
            "morearticles mostread mostpopular meistgelesen trending"
        ),
        max_text=2500,
    ),
    "share": NoiseGroup(
        _words("share shares sharing sharebar shariff social socials socialmedia bookmarks"),
        max_text=300,
    ),
    "prompts": NoiseGroup(
        _words("newsletter subscribe subscription signup paywall abobox donate donation"),
        max_text=800,
    ),
    "author_box": NoiseGroup(_words("authorbox authorbio aboutauthor autorenbox autorbox"), 1000),
    "comments": NoiseGroup(_words("comments kommentare disqus leserkommentare")),
    "meta": NoiseGroup(
        _words(
            "readingtime readtime lesezeit lesedauer credit credits bildnachweis byline dateline"
        ),
        max_text=200,
    ),
    "chrome": NoiseGroup(_words("modal popup overlay cookiewall offcanvas")),
}

# Tokens of containers that are boilerplate only when they are link lists
# (a "teaser" class is also used for the standfirst of the article itself).
SOFT_TOKENS = _words("teaser teasers linklist morelinks articlelist storylist")

# Tokens that negate the token after them: "has-ads" marks a section that holds an ad.
_NEGATING_TOKENS = _words("has with no without hide show is")

# Tokens of the standfirst; kept when a soft token would otherwise drop them.
LEAD_TOKENS = _words("lead intro standfirst summary excerpt abstract")

# Tokens of topic/tag lists, whose link texts become ``Article.tags``.
TAG_TOKENS = _words("tags taglist keywords schlagworte schlagwoerter themen topics")

# ARIA roles and HTML tags whose elements are page chrome, never article text.
NOISE_ROLES = _words("navigation banner contentinfo complementary dialog alertdialog search")
NOISE_TAGS = _words("nav aside footer button select noscript template")

# aria-label values of boilerplate regions.
NOISE_LABELS = re.compile(
    r"breadcrumb|navigation|menü|menu|teilen|share|werbung|anzeige|advert|newsletter"
    r"|weitere artikel|mehr zum thema|related|empfehlung|kommentar|comment",
    re.IGNORECASE,
)

# Headings that introduce a box of links to other articles.
RELATED_HEADING = re.compile(
    "^(?:"
    + "|".join(
        (
            r"mehr zum thema\b.{0,30}|mehr zu diesem thema|mehr (?:aus|zu|von) .{1,40}|mehr themen",
            r"weitere (?:artikel|themen|beiträge|nachrichten|meldungen|news).{0,40}",
            r"auch interessant|ebenfalls interessant|(?:lesen sie|lies) (?:auch|mehr)\b.{0,40}",
            r"das (?:thema )?(?:könnte|dürfte) (?:sie|dich) auch interessieren",
            r"zum weiterlesen|schon gelesen\??|empfohlene (?:artikel|beiträge)",
            r"(?:unsere )?empfehlungen?(?: der redaktion)?|top-?themen.{0,30}",
            r"meistgelesen|meist gelesen|am meisten gelesen|beliebte artikel",
            r"related (?:articles|stories|posts|content|coverage|topics)",
            r"more (?:from|on|about|stories|articles|news)\b.{0,40}|read (?:next|also)",
            r"recommended(?: for you| stories| articles)?|you (?:may|might) also like",
            r"most (?:read|popular|viewed)|trending(?: now)?|what to read next|further reading",
            r"notas relacionadas|contenido relacionado|(?:te|le) puede interesar",
            r"à lire aussi|sur le même sujet|czytaj (?:też|także|więcej)|polecamy",
        )
    )
    + r")\s*[:.!?]?$",
    re.IGNORECASE,
)

# A news agency sign-off closing an article: "(dpa)", "lbr/Reuters/dpa", "AFP/mm".
SIGN_OFF = re.compile(
    r"^\(?(?:[\w-]{1,8}/)*(?:dpa|afp|ap|reuters|kna|epd|sid|apa|dts|rtr|afx|dpa-afx|ddp)"
    r"(?:/[\w-]{1,12})*\)?$",
    re.IGNORECASE,
)

# Labels in front of a list of topics or tags.
TOPICS_LABEL = re.compile(
    r"^(?:themen|schlagworte|schlagwörter|stichworte|stichwörter|tags|topics|keywords|mehr zu"
    r"|weitere themen|themen in diesem artikel|thema)\s*:?$",
    re.IGNORECASE,
)

_DATE = (
    r"(?:\d{1,2}\.\s?\d{1,2}\.\s?\d{2,4}|\d{4}-\d{2}-\d{2}(?:T[\d:.+Z-]+)?|\d{1,2}/\d{1,2}/\d{2,4}"
    r"|\d{1,2}\.?\s+\w{3,10}\.?\s+\d{4}|\w{3,10}\.?\s+\d{1,2},?\s+\d{4})"
)
_TIME = r"(?:\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:uhr|h|am|pm|a\.m\.|p\.m\.)?(?:\s*\(?[A-Z]{2,4}\)?)?)"

# Whole lines that are boilerplate wherever they appear in the body.
BOILERPLATE_LINES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # share, print, comment and ad labels standing alone
        r"^(?:teilen|teilen mit|jetzt teilen|artikel teilen|beitrag teilen|share|share this"
        r"|share this (?:article|story|post)|tweet|drucken|artikel drucken|print|e-?mail|mail"
        r"|facebook|twitter|x|whatsapp|pinterest|linkedin|xing|telegram|reddit|flipboard"
        r"|kommentare?|kommentieren|keine kommentare|\d+ kommentare?|comments?|\d+ comments?"
        r"|leave a comment|kommentar schreiben|anzeige|werbung|advertisement|sponsored"
        r"|bild anzeigen|bild vergrößern|zur startseite|nach oben|wird geladen\.*|loading\.*"
        r"|mehr|weiterlesen|mehr lesen|read more|continue reading|more)\s*[:.!]?$",
        # "Anzeige" / "Werbung" labels with a short trailer
        r"^\*?(?:anzeige|werbung|advertisement)\s*[-–:|,.].{0,120}$",
        # image credits
        r"^[(\[]?(?:foto|fotos|bild|bilder|titelbild|beitragsbild|bildquelle|quelle foto"
        r"|grafik|illustration|photo|photos|image|picture|credit|credits|crédits? photos?"
        r"|fot\.|fotografie|video)\s*[:/©]\s*.{1,100}$",
        r"^(?:©|\(c\)|copyright\b).{1,250}$",
        # reading time and similar metadata
        r"^(?:lesezeit|lesedauer|reading time|read time)\s*:?\s*(?:ca\.\s*)?\d+.{0,20}$",
        r"^(?:ca\.\s*)?\d+\s*(?:min\.?|minuten|minutes?)\s*"
        r"(?:lesezeit|lesedauer|read|reading time|zum lesen)\.?$",
        # date lines
        rf"^(?:(?:stand|aktualisiert|veröffentlicht|erstellt|zuletzt aktualisiert"
        rf"|letzte änderung|geändert|datum|updated|published|posted|last updated"
        rf"|last modified)(?: am| on)?\s*:?\s*)?"
        rf"(?:\w{{2,10}},?\s+)?{_DATE}(?:\s*(?:,|um|at|-|\|)?\s*{_TIME})?\s*(?:uhr)?\.?$",
        rf"^{_TIME}$",
        # newsletter, app, donation and paywall prompts
        r"^(?=.{0,300}$)(?=.*\b(?:unseren?|unserem|our|zum|the|den) [\w-]*newsletter\b)"
        r"(?=.*\b(?:abonn\w*|anmeld\w*|melde|bestell\w*|registr\w*|subscrib\w*|sign(?:ing)? up"
        r"|posteingang|inbox|erhalten|receive)\b)",
        r"^.{0,80}\b(?:download (?:the|our) .{0,40}\bapps?|laden sie (?:sich )?(?:jetzt )?"
        r"(?:die|unsere) .{0,30}\bapp)\b.{0,120}$",
        r"^.{0,100}\b(?:support (?:our|us|independent)|supporting our work|jetzt spenden|donate now"
        r"|unterstützen sie (?:uns|unsere arbeit|unabhängigen)|unterstütze (?:uns|unsere arbeit))"
        r"\b.{0,150}$",
        r"^(?:to (?:view|read|continue reading|access) (?:the|this) (?:full )?(?:story|article)"
        r"|subscribe (?:now |today )?(?:to|for) .{0,60}(?:full story|access|edition|unlimited))"
        r".{0,200}$",
        r"^.{0,80}\b(?:already a subscriber|bereits abonnent(?:in)?)\b.{0,120}$",
        # affiliate disclosures and letters to the editor
        r"^.{0,80}\b(?:affiliate[- ]links?|provisionslinks?"
        r"|we may (?:receive|earn) (?:a )?(?:compensation|commission)"
        r"|enthält (?:werbung|affiliate))\b.{0,250}$",
        r"^.{0,120}\b(?:letters? to the editor|leserbrief schreiben)\b.{0,120}$",
        # comment prompts and counters, media availability, tables of contents
        r"^.{0,60}(?:eingeloggt|angemeldet|logged in) (?:sein|to),? (?:um )?.{0,40}"
        r"(?:kommentar|comment).{0,80}$",
        r"^(?:kommentare|comments)\s*(?:insgesamt)?\s*[:(]?\s*\d+\)?$",
        r"^(?:video|audio|sendung|beitrag) verfügbar bis .{1,30}$",
        r"^(?:inhaltsverzeichnis|inhalt|table of contents|contents)\s*:?$",
        r"^(?:jetzt |hier )?(?:zum newsletter anmelden|newsletter abonnieren|jetzt abonnieren"
        r"|jetzt anmelden|jetzt registrieren|jetzt weiterlesen|weiterlesen mit .{1,40}"
        r"|sign up|subscribe now|subscribe)\s*[:.!]?$",
        r"^(?:sie sind (?:aktuell )?nicht eingeloggt|bereits abonnent|already a subscriber"
        r"|dieser (?:artikel|beitrag) ist (?:nur )?für (?:abonnenten|abonnentinnen)"
        r"|um (?:diesen|den ganzen|den vollständigen) (?:artikel|beitrag|text)"
        r" (?:zu lesen|lesen zu können)"
        r"|to (?:continue|keep) reading|subscribe to (?:continue|read)).{0,200}$",
        # topic and category labels
        r"^(?:themen|schlagworte|schlagwörter|stichworte|tags|topics|kategorie|kategorien"
        r"|category|categories|rubrik|ressort)\s*:.{0,200}$",
        # metadata strips: "Lahnfeld · 12.11.2026 · Lesezeit: 3 min"
        r"^(?:[^·|•]{0,40}[·|•]\s*)+(?:lesezeit|lesedauer|reading time)\s*:?.{0,20}$",
        # trust and correction boilerplate of wire services
        r"^our standards:.{0,120}$",
        # follow-us and broadcast notes
        r"^(?:follow|folgen sie|folge|folgt) (?:uns|us|[\w .-]{2,40}) (?:on|auf|bei) "
        r"(?:facebook|twitter|x|instagram|tiktok|youtube|linkedin|whatsapp|threads|mastodon)\b.{0,300}$",
        r"^(?:über dieses thema berichtete|dieses thema im programm|mehr dazu im programm)"
        r".{1,160}$",
        # "Lesen Sie auch: <headline>" cross-references
        r"^(?:lesen sie (?:auch|hier|mehr|dazu)|lies auch|auch lesen|mehr dazu|mehr zum thema"
        r"|zum thema|siehe auch|auch interessant|read more|read also|related|see also"
        r"|lea también|lea más|lea|le puede interesar|puedes ver|vea también|mira|mire"
        r"|czytaj (?:też|także|więcej)|dowiedz się więcej|à lire aussi|lire aussi)"
        r"\s*[:>»].{0,160}$",
    )
)

# A whole-line credit appended to a paragraph: "… Brüssel. Foto: dpa".
_TRAILING_CREDIT = re.compile(
    r"\s*(?:[(\[]?(?:foto|fotos|bild|photo|credit|quelle|source)\s*:|©)\s*[^.!?©]{1,60}[)\]]?\s*$",
    re.IGNORECASE,
)

# Screen-reader hints left inside link texts.
_A11Y_RESIDUE = re.compile(
    r",?\s*\(?(?:opens|öffnet) (?:in )?(?:a |einem )?(?:new|neuen) (?:tab|window|fenster)\)?",
    re.IGNORECASE,
)

_SITE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN_SPLIT = re.compile(r"[^a-z0-9äöüß]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Minimum text of a paragraph that reads as article prose, for the safety guard.
_PROSE_CHARS = 120
# Hostile or broken pages put megabytes into <title> or a meta tag; nobody reads past this.
MAX_TITLE_CHARS = 400
MAX_META_CHARS = 1000
_INLINE_TAGS = _words("a span b i em strong small img abbr time label sup sub u s")
_ALL_NOISE_TOKENS = frozenset().union(*(group.tokens for group in NOISE_GROUPS.values()))
_MAYBE_NOISE_TOKENS = _ALL_NOISE_TOKENS | SOFT_TOKENS
# Whole class/id names (separators removed) of the article container itself.
_CONTENT_NAMES = _words(
    "article articlebody articletext articlecontent content maincontent story storybody "
    "storycontent entrycontent postcontent postbody"
)
_KEYWORD_METAS = _words("keywords news_keywords article:tag")
_HEADINGS = _words("h1 h2 h3 h4 h5 h6")
# Class/id tokens of header blocks that are not the standfirst.
_NOT_LEAD_TOKENS = _words(
    "caption figcaption credit meta info date time byline author autor dateline kicker label "
    "breadcrumb figure image img media photo"
)
_BLOCK_TAGS = _words("p head list item table row cell quote code div lb graphic")

# Candidates for a related-box heading or a sign-off line: elements with little text.
# (The precise length checks follow in Python; XPath's normalize-space keeps no-break
# spaces, so the bounds here are looser.)
_SHORT_HEADINGS = etree.XPath(
    "//*[self::h2 or self::h3 or self::h4 or self::h5 or self::h6 or self::strong or self::b"
    " or self::span or self::div or self::p]"
    "[normalize-space()][string-length(normalize-space()) <= 80]"
)
_SHORT_BLOCKS = etree.XPath(
    "//*[self::p or self::div or self::span][normalize-space()]"
    "[string-length(normalize-space()) <= 80]"
)


@dataclass(frozen=True)
class Article:
    """One extracted article. ``text`` is ``title`` and ``body`` in the file format."""

    url: str | None
    canonical_url: str | None
    title: str
    body: str
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    language: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if "\n" in self.title:
            raise ValueError(f"title must be one line, got {self.title!r}")
        if not self.body.strip():
            raise ValueError("body must not be empty")

    @property
    def text(self) -> str:
        """The title line, then the body: the content of an article's text file."""
        return f"{self.title}\n{self.body}" if self.title else self.body

    def as_dict(self) -> dict[str, Any]:
        """Return every field and ``text`` as JSON-ready values."""
        return {
            "url": self.url,
            "canonical_url": self.canonical_url,
            "title": self.title,
            "author": self.author,
            "date": self.date,
            "site_name": self.site_name,
            "language": self.language,
            "description": self.description,
            "tags": list(self.tags),
            "categories": list(self.categories),
            "body": self.body,
            "text": self.text,
        }


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode page bytes: the HTTP charset, else a BOM or meta charset, else detection.

    Raises :class:`ExtractionError` (reason ``not_html``) for known binary formats.
    """
    head = data[:16]
    for magic, name in _BINARY_MAGIC:
        if head.startswith(magic):
            raise ExtractionError(f"the page is {name}, not HTML", reason="not_html")
    if b"\x00" in data[:1024] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionError("the page is binary data, not HTML", reason="not_html")
    header = content_type if content_type and "charset" in content_type.lower() else None
    _, text = html_to_unicode(header, data, auto_detect_fun=_detect_encoding)
    return text


def warm_up() -> None:
    """Load what extraction loads lazily on its first pages (htmldate's date parser)."""
    from htmldate.extractors import get_external_parser

    # A string no locale parses: the parser tries (and compiles) every locale once.
    get_external_parser().get_date_data("am 3. März 2021 um 10 Uhr")


def _detect_encoding(data: bytes) -> str | None:
    best = from_bytes(data[:65536]).best()
    return best.encoding if best else None


def extract(
    html: str | bytes, url: str | None = None, *, content_type: str | None = None
) -> Article:
    """Extract the article in ``html`` (fetched from ``url``) into an :class:`Article`.

    ``content_type`` is the HTTP Content-Type header, whose charset wins when bytes
    are given. Raises :class:`ExtractionError` when the page holds no article text
    or cannot be parsed; never any other exception for bad input.
    """
    source = decode_html(html, content_type) if isinstance(html, bytes) else html
    source = _CONTROL_CHARS.sub("", source)
    if not source.strip():
        raise ExtractionError("the page is empty", reason="empty")
    try:
        return _extract_article(source, url)
    except ExtractionError:
        raise
    except (ValueError, TypeError, AttributeError, RecursionError, etree.LxmlError) as err:
        LOGGER.debug("extraction failed on %s: %r", url, err)
        raise ExtractionError(f"the page could not be parsed: {err}", reason="malformed") from err


def _extract_article(source: str, url: str | None) -> Article:
    tree = load_html(source)
    if tree is None or not isinstance(tree, HtmlElement):
        raise ExtractionError("the page is not HTML", reason="not_html")
    meta = extract_metadata(deepcopy(tree), url)
    topic_tags = clean_tree(tree)
    site_name = _clean_meta(meta.sitename)
    title = clean_title(meta.title or "", site_name)
    standfirst = find_standfirst(tree, title)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
    )
    if not isinstance(document, Document) or document.body is None:
        raise ExtractionError("no article text found on the page", reason="no_text")
    body = _with_standfirst(format_body(render_lines(document.body), title), standfirst)
    body = _with_sign_off(body, tree)
    if not body:
        raise ExtractionError("no article text found on the page", reason="no_text")
    return Article(
        url=url,
        canonical_url=_canonical(_declared_url(tree) or meta.url, url),
        title=title,
        body=body,
        author=_clean_meta(meta.author),
        date=_clean_meta(meta.date),
        site_name=site_name,
        language=_clean_meta(meta.language) or _html_lang(tree),
        description=_clean_meta(meta.description),
        tags=_clean_list([*_meta_keywords(tree), *(meta.tags or []), *topic_tags]),
        categories=_clean_list(meta.categories),
    )


# --- Stage 2: pre-cleaning the tree ---------------------------------------------------


def clean_tree(tree: HtmlElement) -> list[str]:
    """Delete boilerplate containers from ``tree`` in place; return the topic tags found.

    Topic lists are read before they are deleted; standfirsts with a "teaser" class are
    renamed so that trafilatura keeps them; elements holding article prose are never deleted.
    """
    page = _PageIndex(tree)
    page_chars = _text_length(tree)
    tags = _take_topic_lists(page, page_chars)
    _rescue_leads(page)
    page.drop_outermost(
        page.maybe_noise,
        lambda el: _is_noise(el, page.tokens_of(el)) and not _holds_article(el, page_chars),
    )
    _drop_related_boxes(tree, page_chars)
    _mark_body(tree)
    return tags


class _PageIndex:
    """What the pre-cleaning reads of a page in one walk: the elements in document order,
    their class/id tokens, which ones might be page furniture or a labelled topic list.

    Each step then asks its question of a few candidates instead of walking the tree in
    Python again (those walks were a third of the extraction's time). The index keeps the
    element proxies alive, so lxml hands out the same objects and they can be dict keys.
    """

    def __init__(self, tree: HtmlElement) -> None:
        self.root = tree
        self.elements: list[HtmlElement] = []
        self.position: dict[HtmlElement, int] = {}
        self.tokens: dict[HtmlElement, frozenset[str]] = {}
        self.maybe_noise: list[int] = []  # positions: noise tag, noise attribute or token
        self.maybe_topics: set[int] = set()  # positions: tag-list token or a "Themen:" label
        for position, element in enumerate(tree.iter(etree.Element)):
            self.elements.append(element)
            self.position[element] = position
            tokens = self._read_tokens(element)
            if _might_be_noise(element, tokens):
                self.maybe_noise.append(position)
            if not tokens.isdisjoint(TAG_TOKENS):
                self.maybe_topics.add(position)
            text = element.text
            if text and not text.isspace() and _is_topics_label(element):
                parent = element.getparent()
                if parent is not None:
                    self.maybe_topics.add(self.position[parent])
        self._dropped = bytearray(len(self.elements))

    def _read_tokens(self, element: HtmlElement) -> frozenset[str]:
        names = f"{element.get('class') or ''} {element.get('id') or ''}"
        if names == " ":
            return _NO_TOKENS
        tokens = self.tokens[element] = _name_tokens(names)
        return tokens

    def tokens_of(self, element: HtmlElement) -> frozenset[str]:
        return self.tokens.get(element, _NO_TOKENS)

    def rename(self, element: HtmlElement, css_class: str) -> None:
        """Give ``element`` a new class (and no id), keeping the index up to date."""
        element.set("class", css_class)
        element.attrib.pop("id", None)
        self.tokens[element] = _name_tokens(css_class)

    def drop_outermost(
        self, positions: Iterable[int], wanted: Callable[[HtmlElement], bool]
    ) -> list[HtmlElement]:
        """Drop the elements at ``positions`` for which ``wanted`` holds; return them.

        Positions are visited in document order; the inside of an element already dropped
        (in this step or before) is skipped, as a top-down walk that does not descend into
        a match would. All ``wanted`` questions are asked before the first drop.
        """
        dropped: list[HtmlElement] = []
        for position in sorted(positions):
            if self._dropped[position]:
                continue
            element = self.elements[position]
            if element.tag == "head" or not wanted(element):
                continue
            end = self._subtree_end(element)
            self._dropped[position:end] = b"\x01" * (end - position)
            dropped.append(element)
        for element in dropped:
            _drop(element)
        return dropped

    def _subtree_end(self, element: HtmlElement) -> int:
        """The position just past ``element``'s last descendant."""
        node: HtmlElement | None = element
        while node is not None and node is not self.root:
            following = next(node.itersiblings(etree.Element), None)
            if following is not None:
                return self.position[following]
            node = node.getparent()
        # Past the root: broken pages can give the root element siblings, not ours to walk.
        return len(self.elements)


_NO_TOKENS: frozenset[str] = frozenset()
_NOISE_ATTRIBUTES = frozenset(("role", "aria-hidden", "hidden", "aria-label"))


def _might_be_noise(element: HtmlElement, tokens: frozenset[str]) -> bool:
    """A cheap superset of :func:`_is_noise`: the elements worth asking."""
    return (
        element.tag in NOISE_TAGS
        or not tokens.isdisjoint(_MAYBE_NOISE_TOKENS)
        or not _NOISE_ATTRIBUTES.isdisjoint(element.keys())
    )


def _mark_body(tree: HtmlElement) -> None:
    """Point trafilatura at the prose container when none of its body selectors match.

    Without a match trafilatura only recovers loose paragraphs and loses headings and lists.
    """
    if any(expr(tree) for expr in BODY_XPATH):
        return
    container = _prose_container(tree)
    if container is not None:
        container.set("itemprop", "articleBody")


def _prose_container(tree: HtmlElement) -> HtmlElement | None:
    """The deepest div/section/article holding two thirds of the page's prose paragraphs."""
    weights: dict[HtmlElement, int] = {}
    total = 0
    for para in tree.iter("p"):
        length = _text_length(para)
        if length < 80 or _link_density(para, length) >= 0.3:
            continue
        total += length
        for ancestor in para.iterancestors("div", "section", "article", "main"):
            weights[ancestor] = weights.get(ancestor, 0) + length
    if total < 400:
        return None
    best: HtmlElement | None = None
    for element, weight in weights.items():
        if weight >= 2 * total / 3 and (best is None or element in best.iterdescendants()):
            best = element
    return best


def _class_tokens(element: HtmlElement) -> frozenset[str]:
    """The element's class/id tokens, plus each class/id name with separators removed."""
    names = f"{element.get('class') or ''} {element.get('id') or ''}"
    return _name_tokens(names) if names.strip() else frozenset()


@lru_cache(maxsize=16384)  # class names repeat across a site's pages
def _name_tokens(names: str) -> frozenset[str]:
    tokens: set[str] = set()
    for name in names.split():
        parts = [part for part in _TOKEN_SPLIT.split(_CAMEL.sub("-", name).lower()) if part]
        tokens.update(
            part for i, part in enumerate(parts) if i == 0 or parts[i - 1] not in _NEGATING_TOKENS
        )
        tokens.add("".join(parts))
    return frozenset(tokens)


def _is_noise(element: HtmlElement, tokens: frozenset[str]) -> bool:
    """True if tag, role, aria attributes or class/id ``tokens`` mark page furniture."""
    if element.tag in NOISE_TAGS:
        return True
    if (element.get("role") or "").lower() in NOISE_ROLES:
        return True
    if element.get("aria-hidden") == "true" or element.get("hidden") is not None:
        return True
    label = element.get("aria-label") or ""
    if label and element.tag not in _INLINE_TAGS and NOISE_LABELS.search(label):
        return True
    if not tokens:
        return False
    if not tokens.isdisjoint(_ALL_NOISE_TOKENS) and any(
        _matches_group(element, group, tokens) for group in NOISE_GROUPS.values()
    ):
        return True
    return (
        element.tag not in _INLINE_TAGS
        and not tokens.isdisjoint(SOFT_TOKENS)
        and _is_link_list(element)
    )


def _matches_group(element: HtmlElement, group: NoiseGroup, tokens: frozenset[str]) -> bool:
    if tokens.isdisjoint(group.tokens):
        return False
    text = _text_length(element)
    density = _link_density(element, text)
    if group.links_only and text and density < 0.4:
        return False
    return group.max_text is None or text * (1 - density) <= group.max_text


def _holds_article(element: HtmlElement, page_chars: int) -> bool:
    """True if the element is or wraps the article: <article>, prose, most of the page."""
    if element.tag in ("article", "main") or element.get("itemprop") == "articleBody":
        return True
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower().split()
    if any(_TOKEN_SPLIT.sub("", name) in _CONTENT_NAMES for name in names):
        return True
    if element.find(".//article") is not None:
        return True
    text = _text_length(element)
    if page_chars >= 500 and text >= 0.5 * page_chars and _link_density(element, text) < 0.3:
        return True
    prose = 0
    for para in element.iter("p"):
        para_text = _text_length(para)
        if para_text >= _PROSE_CHARS and _link_density(para, para_text) < 0.3:
            prose += 1
            if prose >= 3:
                return True
    return False


def _text_length(element: HtmlElement) -> int:
    """Characters of text with whitespace runs counted as one."""
    return len(" ".join(element.text_content().split()))


def _link_density(element: HtmlElement, length: int | None = None) -> float:
    total = length if length is not None else _text_length(element)
    if not total:
        return 0.0
    linked = sum(_text_length(link) for link in element.iter("a"))
    return min(linked / total, 1.0)


def _is_link_list(element: HtmlElement) -> bool:
    """Teaser-like: mostly link text, or several headline links."""
    density = _link_density(element)
    if density >= 0.5:
        return True
    headlines = sum(1 for link in element.iter("a") if _text_length(link) >= 15)
    return headlines >= 2 and density >= 0.2


def _rescue_leads(page: _PageIndex) -> None:
    """Rename the class of standfirsts carrying a "teaser" token, so they survive pruning."""
    for element, tokens in list(page.tokens.items()):
        if "teaser" not in tokens or element.tag in ("html", "body"):
            continue
        if not tokens.isdisjoint(_ALL_NOISE_TOKENS):
            continue
        if not (tokens & LEAD_TOKENS or _near_title(element)):
            continue
        text = element.text_content().strip()
        if len(text) >= 40 and not _is_link_list(element) and _link_density(element) < 0.2:
            page.rename(element, "article-lead")


def _near_title(element: HtmlElement) -> bool:
    """True if the element sits in the block that holds the page's <h1>."""
    parent = element.getparent()
    for _ in range(2):
        if parent is None or parent.tag in ("body", "html"):
            return False
        if parent.find(".//h1") is not None:
            return True
        parent = parent.getparent()
    return False


def find_standfirst(tree: HtmlElement, title: str = "") -> str | None:
    """The lead paragraph next to the headline (standfirst), or ``None``.

    trafilatura often starts at the body container and misses the lead in the header.
    """
    anchor: HtmlElement | None = _headline(tree, title)
    for _ in range(3):
        if anchor is None or anchor.tag in ("body", "html", "main"):
            return None
        for sibling in list(anchor.itersiblings())[:4]:
            if not isinstance(sibling.tag, str):
                continue
            if sibling.tag in _HEADINGS or _holds_article(sibling, 0):
                return None
            if _is_standfirst(sibling):
                return _one_line(sibling.text_content())
        anchor = anchor.getparent()
    return None


def _headline(tree: HtmlElement, title: str) -> HtmlElement | None:
    """The first <h1>, else the first h2/h3 that holds the title."""
    heading = next((h for h in tree.iter("h1") if _text_length(h) >= 10), None)
    if heading is not None or len(title) < 10:
        return heading
    wanted = title.casefold()
    return next(
        (h for h in tree.iter("h2", "h3") if wanted in _one_line(h.text_content()).casefold()),
        None,
    )


def _is_standfirst(element: HtmlElement) -> bool:
    if element.tag not in ("p", "div", "span", "section") or element.find(".//img") is not None:
        return False
    length = _text_length(element)
    if length < 60 or length > 800 or _link_density(element, length) >= 0.2:
        return False
    tokens = _class_tokens(element)
    return tokens.isdisjoint(_NOT_LEAD_TOKENS) and tokens.isdisjoint(_ALL_NOISE_TOKENS)


def _with_standfirst(body: str, standfirst: str | None) -> str:
    if not standfirst or is_boilerplate_line(standfirst):
        return body
    if " ".join(standfirst.split()) in " ".join(body.split()):
        return body
    return f"{standfirst}\n{body}" if body else standfirst


def _with_sign_off(body: str, tree: HtmlElement) -> str:
    """Append a wire sign-off ("lbr/Reuters/dpa") that follows the last body paragraph.

    trafilatura drops such short blocks; editors count them as part of the article.
    """
    last = body.rsplit("\n", 1)[-1][:60]
    if not last or SIGN_OFF.match(last):
        return body
    for element in _SHORT_BLOCKS(tree):
        text = _one_line(element.text_content())
        if len(text) > 40 or not SIGN_OFF.match(text):
            continue
        previous = next((e for e in element.itersiblings(preceding=True) if _text_length(e)), None)
        if previous is not None and last in _one_line(previous.text_content()):
            return f"{body}\n{text}"
    return body


def _take_topic_lists(page: _PageIndex, page_chars: int) -> list[str]:
    """Collect and delete topic lists: tag-classed containers and "Themen:" labelled lists."""
    tags: list[str] = []
    containers = page.drop_outermost(
        page.maybe_topics, lambda element: _is_tag_list(element, page_chars)
    )
    for container in containers:  # deleted, but still readable
        words = [link.text_content() for link in container.iter("a")]
        words = words or [item.text_content() for item in container.iter("li")]
        tags.extend(word.strip().lstrip("#").strip() for word in words)
    return [tag for tag in tags if 0 < len(tag) <= 60]


def _is_topics_label(element: HtmlElement) -> bool:
    if not isinstance(element.tag, str):
        return False
    own = (element.text or "").strip()
    return bool(own) and len(own) < 40 and bool(TOPICS_LABEL.match(own))


def _is_tag_list(element: HtmlElement, page_chars: int) -> bool:
    text = _text_length(element)
    if text >= 600 or element.find(".//a") is None:
        return False
    return _link_density(element, text) >= 0.5 and not _holds_article(element, page_chars)


def _drop_related_boxes(tree: HtmlElement, page_chars: int) -> None:
    """Delete boxes introduced by a "Mehr zum Thema" style heading."""
    headings = [element for element in _SHORT_HEADINGS(tree) if _is_related_heading(element)]
    for heading in headings:
        if heading.getparent() is None:
            continue
        box = _related_box(heading, page_chars)
        _drop(box if box is not None else heading)


def _is_related_heading(element: HtmlElement) -> bool:
    text = element.text_content().strip()
    if not text or len(text) > 60 or not RELATED_HEADING.match(text):
        return False
    return element.tag.startswith("h") or len(element) == 0 or element.find("a") is None


def _related_box(heading: HtmlElement, page_chars: int) -> HtmlElement | None:
    """The container the heading introduces: its parent, if that is a link box."""
    parent = heading.getparent()
    if parent is None or parent.tag in ("body", "html", "article", "main"):
        return None
    if _holds_article(parent, page_chars):
        return None
    rest = _text_length(parent) - _text_length(heading)
    if rest < 100 or _is_link_list(parent):
        return parent
    return None


def _drop(element: HtmlElement) -> None:
    """Remove an element but keep its tail text in the document."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail and element.tail.strip():
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


# --- Stage 4: rendering trafilatura's XML body ----------------------------------------


def render_lines(body: etree._Element) -> list[str]:
    """Render trafilatura's XML body as lines: blocks one a line, ``- item``, ``a | b``."""
    lines: list[str] = []
    _render_block(body, lines)
    return lines


def _render_block(element: etree._Element, lines: list[str]) -> None:
    tag = element.tag
    if tag == "list":
        for item in element:
            if item.tag == "item":
                _render_item(item, lines)
            else:
                _render_block(item, lines)
    elif tag == "table":
        for row in element.iter("row"):
            cells = [_one_line(_inline_text(cell)) for cell in row if cell.tag == "cell"]
            cells = [cell for cell in cells if cell]
            if cells:
                lines.append(" | ".join(cells))
    elif tag in ("p", "head", "quote", "code", "div", "body", "cell", "item", "row"):
        _render_mixed(element, lines)
    else:
        lines.extend(_split_inline(_inline_text(element)))


def _render_item(item: etree._Element, lines: list[str]) -> None:
    own = _one_line(_inline_text(item, skip=("list", "table")))
    if own:
        lines.append(f"- {own}")
    for child in item:
        if child.tag in ("list", "table"):
            _render_block(child, lines)


def _render_mixed(element: etree._Element, lines: list[str]) -> None:
    """A block whose children may be inline text or further blocks."""
    buffer = [element.text or ""]
    for child in element:
        if _is_block_child(element, child):
            lines.extend(_split_inline("".join(buffer)))
            buffer = []
            _render_block(child, lines)
        else:
            buffer.append(_inline_text(child) if child.tag != "lb" else "\n")
        buffer.append(child.tail or "")
    lines.extend(_split_inline("".join(buffer)))


def _is_block_child(parent: etree._Element, child: etree._Element) -> bool:
    """Blocks start a new line; inline code inside a paragraph does not."""
    if child.tag == "code" and parent.tag in ("p", "head", "item", "cell", "quote"):
        return "\n" in "".join(child.itertext())
    return child.tag in _BLOCK_TAGS and child.tag != "lb"


def _inline_text(element: etree._Element, skip: tuple[str, ...] = ()) -> str:
    """The element's text on one logical line; nested blocks are set off by spaces."""
    parts = [element.text or ""]
    for child in element:
        if child.tag in skip:
            pass
        elif child.tag == "lb":
            parts.append("\n")
        elif child.tag in _BLOCK_TAGS:
            parts.append(f" {_inline_text(child, skip)} ")
        elif isinstance(child.tag, str):
            parts.append(_inline_text(child, skip))
        parts.append(child.tail or "")
    return "".join(parts)


def _split_inline(text: str) -> list[str]:
    return [line for line in (_one_line(part) for part in text.split("\n")) if line]


# --- Stage 5: post-filtering lines ----------------------------------------------------


def format_body(text: str | list[str], title: str = "") -> str:
    """Bring extracted lines into the file format: one block a line, no blanks, no boilerplate.

    Accepts text or a list of lines. A first line that repeats the title is dropped, so
    ``body`` never starts with it; lines matching :data:`BOILERPLATE_LINES` are dropped.
    """
    raw = text.splitlines() if isinstance(text, str) else text
    lines = [_one_line(_A11Y_RESIDUE.sub("", line)) for line in raw]
    lines = [_strip_credit(line) for line in lines if line and not is_boilerplate_line(line)]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines[:2]):
        if title and _same_text(line, title):
            del lines[index]
            break
    return "\n".join(lines)


def is_boilerplate_line(line: str) -> bool:
    """True if the whole line is page furniture: a share label, credit, date, prompt…"""
    bare = line.removeprefix("- ").strip()
    if len(bare) > 300:
        return False
    if len(bare) <= 60 and not bare.endswith(".") and RELATED_HEADING.match(bare):
        return True
    return any(pattern.match(bare) for pattern in BOILERPLATE_LINES)


def _strip_credit(line: str) -> str:
    if len(line) < 80:
        return line
    return _TRAILING_CREDIT.sub("", line)


def _same_text(left: str, right: str) -> bool:
    return left.casefold().strip(" .:") == right.casefold().strip(" .:")


# --- Metadata -------------------------------------------------------------------------


def clean_title(title: str, site_name: str | None) -> str:
    """One line, without a trailing or leading site name (`` | DWN``, ``tagesschau.de - ``)."""
    title = _one_line(title)
    names = _site_names(site_name)
    changed = True
    while changed and names:
        changed = False
        for separator in _SITE_SEPARATORS:
            head, sep, tail = title.rpartition(separator)
            if sep and head and _is_site_name(tail, names):
                title, changed = head.strip(), True
            head, sep, tail = title.partition(separator)
            if sep and tail and _is_site_name(head, names):
                title, changed = tail.strip(), True
    return _shortened(title, MAX_TITLE_CHARS)


def _shortened(value: str, limit: int) -> str:
    """``value`` cut at a word boundary to at most ``limit`` characters, marked with "…"."""
    if len(value) <= limit:
        return value
    head = value[: limit - 1]
    cut = head.rfind(" ")
    return (head[:cut] if cut > limit // 2 else head).rstrip() + "…"


def _site_names(site_name: str | None) -> set[str]:
    if not site_name:
        return set()
    name = site_name.casefold().strip()
    names = {name, name.removeprefix("www.")}
    words = re.findall(r"\w+", name)
    if len(words) > 1:
        names.add("".join(word[0] for word in words))
    return names


def _is_site_name(candidate: str, names: set[str]) -> bool:
    value = candidate.casefold().strip()
    if not value or len(value) > 60:
        return False
    if value in names or value.removeprefix("www.") in names:
        return True
    return any(len(name) >= 4 and (name in value or value in name) for name in names)


def _meta_keywords(tree: HtmlElement) -> list[str]:
    """Values of <meta> keywords, news_keywords and article:tag, in page order."""
    return [
        element.get("content") or ""
        for element in tree.iter("meta")
        if (element.get("name") or element.get("property") or "").lower() in _KEYWORD_METAS
    ]


def _declared_url(tree: HtmlElement) -> str | None:
    """The page's own URL claim: <link rel=canonical>, else og:url."""
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            return str(link.get("href")).strip()
    for meta in tree.iter("meta"):
        if meta.get("property") == "og:url" and meta.get("content"):
            return str(meta.get("content")).strip()
    return None


def _html_lang(tree: HtmlElement) -> str | None:
    root = tree.getroottree().getroot()
    lang = (root.get("lang") or "").strip()
    return lang.split("-")[0].lower() or None


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _clean_meta(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = _shortened(_one_line(value), MAX_META_CHARS)
    return cleaned or None


def _clean_list(values: Iterable[str] | None) -> tuple[str, ...]:
    """Split comma-separated keyword strings, strip "#", de-duplicate ignoring case."""
    seen: dict[str, str] = {}
    for value in values or []:
        for part in value.split(","):
            cleaned = _one_line(part).lstrip("#").strip()
            if cleaned:
                seen.setdefault(cleaned.casefold(), cleaned)
    return tuple(seen.values())


def _canonical(declared: str | None, fetched: str | None) -> str | None:
    """The canonical URL: the page's declared one (rel=canonical, og:url) if valid."""
    for candidate in (declared, fetched):
        if not candidate:
            continue
        absolute = urljoin(fetched, candidate) if fetched else candidate
        try:
            return canonicalize_url(validate_url(absolute))
        except InvalidURL:
            continue
    return None
