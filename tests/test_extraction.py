"""Extraction against saved pages: hand-written golden texts, metadata and clutter checks.

Each ``tests/pages/<slug>.html`` is a full page as a site serves it (chrome, consent
banner, ads, teaser boxes, comments). Beside it:

    <slug>.expected.txt   the article as a careful editor sees it: ``article.text`` plus
                          one final newline (title line, then the body in the file format)
    <slug>.meta.json      url (where the page was "fetched"), canonical_url, title, date
                          (a prefix), author (null: not checked), tags (a subset, optional),
                          must_not_contain (clutter snippets of this page)

Editorial rules the goldens follow: a lead/standfirst in the article header is the first
body paragraph; kicker, byline, date line, reading time, captions and photo credits,
inline teaser boxes, tag lists, author boxes, paywall prompts and comments are not part
of the article; an agency or wire sign-off inside the body text is.

``pytest --regen-goldens`` rewrites the goldens from the current output instead of
comparing, so a trafilatura upgrade shows as ``git diff tests/pages/``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from crawler.errors import ExtractionError
from crawler.extraction import Article, extract

PAGES = Path(__file__).parent / "pages"
SLUGS = sorted(path.stem for path in PAGES.glob("*.html"))

# Page furniture that must never reach an article body, whatever the site.
FORBIDDEN_EVERYWHERE = (
    "Anzeige",
    "Mehr zum Thema",
    "Lesen Sie auch",
    "Das könnte Sie auch interessieren",
    "Lesezeit",
    "Cookies",
    "Alle akzeptieren",
    "Einstellungen",
    "Newsletter",
    "Teilen",
    "Artikel teilen",
    "Drucken",
    "Themen:",
    "Impressum",
    "Datenschutz",
    "©",
    "Foto:",
    "Über den Autor",
    "Kommentare",
    "Startseite",
    "Kontakt",
    "Advertisement",
    "Share",
    "Sign up",
    "Related",
    "Comments",
    "cookies",
)

META_KEYS = {"url", "canonical_url", "title", "date", "author", "must_not_contain"}

_MOJIBAKE = re.compile("Ã.|â€|Â[ -¿]|\ufffd")


def read_meta(slug: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((PAGES / f"{slug}.meta.json").read_text(encoding="utf-8"))
    return meta


def read_golden(slug: str) -> str:
    return (PAGES / f"{slug}.expected.txt").read_text(encoding="utf-8")


@functools.cache
def extracted(slug: str) -> Article:
    """Extract a saved page once per session, as bytes, the way the crawler gets it."""
    data = (PAGES / f"{slug}.html").read_bytes()
    return extract(data, url=read_meta(slug)["url"])


def format_problems(text: str) -> list[str]:
    """Ways ``text`` breaks the article file format (empty list: none)."""
    problems = []
    if not unicodedata.is_normalized("NFC", text):
        problems.append("text is not NFC-normalised")
    for char, name in (("\r", "carriage return"), ("\t", "tab"), ("\ufeff", "BOM")):
        if char in text:
            problems.append(f"text contains a {name}")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            problems.append(f"line {number} is blank")
        elif line != line.strip():
            problems.append(f"line {number} starts or ends with whitespace: {line!r}")
    if match := _MOJIBAKE.search(text):
        problems.append(f"text contains mojibake {match.group()!r}")
    return problems


def clutter_in(text: str, slug: str) -> list[str]:
    snippets = (*FORBIDDEN_EVERYWHERE, *read_meta(slug)["must_not_contain"])
    return [snippet for snippet in snippets if snippet in text]


def golden_diff(slug: str, expected: str, actual: str) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=f"tests/pages/{slug}.expected.txt",
        tofile=f"extract({slug}.html).text",
    )
    return "extracted text differs from the golden:\n" + "".join(diff)


# --- the fixtures themselves ------------------------------------------------------------


def test_every_page_has_golden_and_meta() -> None:
    assert len(SLUGS) >= 12
    for slug in SLUGS:
        assert (PAGES / f"{slug}.expected.txt").is_file(), f"{slug}: no .expected.txt"
        assert (PAGES / f"{slug}.meta.json").is_file(), f"{slug}: no .meta.json"


@pytest.mark.parametrize("slug", SLUGS)
def test_golden_is_well_formed(slug: str) -> None:
    """The hand-written goldens obey the format and the clutter rules they test."""
    golden = read_golden(slug)
    meta = read_meta(slug)
    assert meta.keys() >= META_KEYS, f"{slug}.meta.json lacks {META_KEYS - meta.keys()}"
    assert golden.endswith("\n") and not golden.endswith("\n\n")
    text = golden[:-1]
    assert format_problems(text) == []
    assert clutter_in(text, slug) == []
    assert text.split("\n", 1)[0] == meta["title"]


# --- extraction of every saved page --------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_text_matches_golden(slug: str, regen_goldens: bool) -> None:
    actual = extracted(slug).text + "\n"
    golden_path = PAGES / f"{slug}.expected.txt"
    if regen_goldens:
        golden_path.write_text(actual, encoding="utf-8")
        return
    expected = golden_path.read_text(encoding="utf-8")
    if actual != expected:
        pytest.fail(golden_diff(slug, expected, actual), pytrace=False)


@pytest.mark.parametrize("slug", SLUGS)
def test_metadata(slug: str) -> None:
    article = extracted(slug)
    meta = read_meta(slug)
    assert article.url == meta["url"]
    assert article.title == meta["title"]
    assert article.canonical_url == meta["canonical_url"]
    assert article.date is not None and article.date.startswith(meta["date"]), article.date
    if meta["author"] is not None:
        assert article.author == meta["author"]
    missing_tags = set(meta.get("tags", ())) - set(article.tags)
    assert not missing_tags, f"tags {sorted(missing_tags)} missing from {article.tags}"


@pytest.mark.parametrize("slug", SLUGS)
def test_no_clutter_in_body(slug: str) -> None:
    assert clutter_in(extracted(slug).body, slug) == []


@pytest.mark.parametrize("slug", SLUGS)
def test_text_format(slug: str) -> None:
    article = extracted(slug)
    assert format_problems(article.text) == []
    assert article.text.split("\n", 1)[0] == article.title
    assert not article.body.startswith(article.title + "\n")


# --- encodings ------------------------------------------------------------------------------

LEGACY = {
    "latin1-lokalnachrichten": (
        "iso-8859-1",
        ("Großenwörde", "Ölbach", "Straßenbrücke", "Überbau"),
    ),
    "cp1252-stadtwerke-preise": ("windows-1252", ("„Wir geben", "Kunden weiter“", "225 €", " – ")),
}


@pytest.mark.parametrize("slug", sorted(LEGACY))
@pytest.mark.parametrize("with_header", [False, True], ids=["meta-charset", "http-charset"])
def test_legacy_encoding(slug: str, with_header: bool) -> None:
    charset, snippets = LEGACY[slug]
    data = (PAGES / f"{slug}.html").read_bytes()
    content_type = f"text/html; charset={charset}" if with_header else None
    article = extract(data, url=read_meta(slug)["url"], content_type=content_type)
    assert [s for s in snippets if s not in article.text] == []
    assert format_problems(article.text) == []


def test_windows_1252_page_labelled_latin1_decodes_as_windows_1252() -> None:
    # Browsers (WHATWG Encoding) read an iso-8859-1 label as windows-1252; servers rely on it.
    slug = "cp1252-stadtwerke-preise"
    data = (PAGES / f"{slug}.html").read_bytes()
    article = extract(
        data, url=read_meta(slug)["url"], content_type="text/html; charset=ISO-8859-1"
    )
    assert "„Auf diesen Teil haben wir als Versorger keinen Einfluss“" in article.text
    assert "1,50 € auf 13,90 €" in article.text


@pytest.mark.parametrize("meta_charset", ["utf-8", "windows-1252"])
def test_utf8_bom_wins_over_meta_charset(meta_charset: str) -> None:
    slug = "dwn-nato-rutte"
    page = (PAGES / f"{slug}.html").read_bytes()
    page = page.replace(b'<meta charset="utf-8">', f'<meta charset="{meta_charset}">'.encode())
    article = extract(b"\xef\xbb\xbf" + page, url=read_meta(slug)["url"])
    assert "\ufeff" not in article.text
    assert "Äußerungen Trumps" in article.text
    assert article.title == "Nato-Generalsekretär trifft sich in Florida mit Trump"


# --- pages without an article ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "not_html"),
        (b"", "empty"),
    ],
    ids=["pdf", "empty-bytes"],
)
def test_non_article_raises_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(data, url="https://www.example.example/download")
    assert caught.value.reason == reason


def test_empty_document_raises() -> None:
    with pytest.raises(ExtractionError):
        extract(b"<html><body></body></html>", url="https://www.example.example/leer")


def test_second_html_element_after_the_document_is_ignored() -> None:
    """A page with markup after ``</html>`` parses into sibling root elements; the
    pre-cleaning walks the first and still drops its boilerplate."""
    prose = " ".join(["Der Stadtrat hat am Dienstag über den neuen Haushalt beraten."] * 6)
    page = (
        "<!DOCTYPE html><html><head><title>Haushalt beschlossen</title></head><body>"
        '<nav class="menu"><a href="/">Startseite</a><a href="/politik">Politik</a></nav>'
        f"<article><h1>Haushalt beschlossen</h1><p>{prose}</p><p>{prose}</p>"
        '<div class="ad-slot">Anzeige</div></article>'
        '<footer><a href="/impressum">Impressum</a></footer></body></html>'
        "<html><body><p>Nachgeladener Rest</p></body></html>"
    )
    article = extract(page, url="https://www.example.example/haushalt")
    assert article.title == "Haushalt beschlossen"
    assert "Der Stadtrat hat am Dienstag" in article.body
    for clutter in ("Startseite", "Anzeige", "Impressum"):
        assert clutter not in article.body


def test_huge_title_and_metadata_are_shortened() -> None:
    """A megabyte of <title> (catalogue B6/A6) ends as one readable line, not a stored blob."""
    words = "Sehr langer Titel " * 60_000
    prose = " ".join(["Die Gemeinde hat am Montag den neuen Radweg eröffnet."] * 8)
    page = (
        f"<html><head><title>{words}</title>"
        f'<meta name="description" content="{words}"></head>'
        f"<body><article><p>{prose}</p><p>{prose}</p></article></body></html>"
    )
    article = extract(page, url="https://www.example.example/radweg")
    assert len(article.title) <= 400 and article.title.endswith("…")
    assert article.description is not None and len(article.description) <= 1000
    assert article.text.split("\n", 1)[0] == article.title
