"""The HTML change report: store queries, diff layout, and the page rendered in Chromium."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest

from crawler import store
from crawler.changes import diff_texts
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import record_article, record_pages
from crawler.report import build_report, diff_blocks, render_report
from crawler.store.reports import (
    Period,
    changed_articles,
    count_period,
    explain_report_queries,
    listed_events,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SINCE, UNTIL = "2026-11-18T00:00:00.000Z", "2026-11-25T00:00:00.000Z"
ARTIFACTS = Path(__file__).parent / "artifacts"
HOSTILE_TITLE = '<script>alert("title")</script> Böse & "Titel"'
HOSTILE_URL = "javascript:alert(document.domain)//www.evil.example/artikel"

NATO = [
    "Nato-Generalsekretär Mark Rutte hat in Florida den designierten US-Präsidenten getroffen.",
    "Zu Details machte die Sprecherin keine Angaben.",
    "Alliierte sorgen sich vor zweiter Amtszeit",
    "In der Nato hätten die meisten Mitgliedstaaten einen anderen Wahlausgang bevorzugt.",
    "Bereits in seiner ersten Amtszeit wetterte Trump über zu niedrige Verteidigungsausgaben.",
    "Er drohte zeitweise sogar mit einem Austritt der USA aus dem Bündnis.",
    "Rutte war bis zum Sommer Ministerpräsident der Niederlande.",
]
SSD = [
    "Die Preise für SSDs steigen seit Wochen.",
    "Händler melden Engpässe bei NVMe-Modellen mit 2 TByte.",
    "Analysten erwarten eine Entspannung erst im Frühjahr.",
    "Für Käufer lohnt sich der Blick auf ältere Modelle.",
]


def page(url: str, title: str, paragraphs: list[str], canonical: str | None = None) -> Article:
    return Article(url=url, canonical_url=canonical or url, title=title, body="\n".join(paragraphs))


def record(db, article: Article, when: datetime, source: str, tmp: Path) -> None:
    fetch = FetchResult(
        url=article.url or "", final_url=article.url or "", status=200, body=article.text.encode()
    )
    record_article(db, article, fetch, text_dir=tmp / "articles", now=when, source=source)


def gone(db, url: str, when: datetime, tmp: Path) -> None:
    fetch = FetchResult(url=url, final_url=url, status=404, failure="http_error", source="faz")
    record_pages(db, [CrawledPage(fetch)], text_dir=tmp / "articles", now=when)


def build_store(path: Path) -> Path:
    """A store with edited, new, removed, untouched and hostile articles around T0."""
    db = store.open_store(path)
    tmp = path.parent
    nato = "https://www.dwn.example/politik/nato-treffen"
    record(db, page(nato, "Nato-Chef trifft Trump", NATO), T0 - timedelta(days=5), "dwn", tmp)
    edited = [p.replace("keine Angaben", "keinerlei Angaben") for p in NATO]
    record(db, page(nato, "Nato-Chef trifft Trump", edited), T0 + timedelta(hours=1), "dwn", tmp)
    record(
        db, page(nato, "Rutte trifft Trump in Florida", edited), T0 + timedelta(hours=3), "dwn", tmp
    )
    ssd = "https://www.heise.example/news/ssd-preise"
    record(db, page(ssd, "SSD-Preise steigen", SSD), T0, "heise", tmp)
    rewritten = [SSD[0], SSD[1], "Samsung bestätigt Lieferprobleme bis Ende Januar.", SSD[3]]
    record(db, page(ssd, "SSD-Preise steigen", rewritten), T0 + timedelta(days=1), "heise", tmp)
    record(
        db,
        page(
            "https://www.spiegel.example/wirtschaft/bau",
            "Weniger Baugenehmigungen",
            ["Die Zahl der Baugenehmigungen sinkt weiter."],
        ),
        T0 + timedelta(hours=5),
        "spiegel",
        tmp,
    )
    old = "https://www.faz.example/stromnetz"
    record(
        db,
        page(old, "Stromnetz-Ausbau stockt", ["Der Ausbau stockt."]),
        T0 - timedelta(days=9),
        "faz",
        tmp,
    )
    gone(db, old, T0 + timedelta(hours=2), tmp)
    gone(db, old, T0 + timedelta(hours=4), tmp)
    record(
        db,
        page("https://www.faz.example/alt", "Alter Artikel", ["Unverändert."]),
        T0 - timedelta(days=20),
        "faz",
        tmp,
    )
    evil = "https://www.evil.example/artikel"
    hostile = [f"Text mit <img src=x onerror=alert(1)> und {HOSTILE_URL}", "Zweiter Absatz."]
    record(
        db, page(evil, HOSTILE_TITLE, hostile, HOSTILE_URL), T0 - timedelta(days=3), "evil<b>", tmp
    )
    record(
        db,
        page(evil, HOSTILE_TITLE, [hostile[0], "Zweiter <b>Absatz</b>."], HOSTILE_URL),
        T0 + timedelta(hours=6),
        "evil<b>",
        tmp,
    )
    db.conn.close()
    return path


@pytest.fixture
def db(tmp_path):
    return store.open_store_readonly(build_store(tmp_path / "crawl.db"))


# --- Store queries ---------------------------------------------------------------------


def test_counts_and_changed_articles(db):
    period = Period(SINCE, UNTIL)
    assert count_period(db, period).__dict__ == {
        "new": 2,
        "changed": 3,
        "removed": 1,
        "restored": 0,
    }
    changed = changed_articles(db, period)
    assert [c.source for c in changed] == ["heise", "evil<b>", "dwn"]  # newest change first
    nato = changed[2]
    assert (nato.before.number, nato.after.number, nato.edits) == (1, 3, 2)
    assert nato.after.title == "Rutte trifft Trump in Florida"
    assert "keinerlei" in nato.after.text and "keinerlei" not in nato.before.text
    events = listed_events(db, period)
    assert [(e.kind, e.source) for e in events] == [
        ("new", "spiegel"),
        ("removed", "faz"),
        ("new", "heise"),
    ]
    assert events[1].title == "Stromnetz-Ausbau stockt"


def test_period_and_source_filters(db):
    assert [c.source for c in changed_articles(db, Period(SINCE, UNTIL, "dwn"))] == ["dwn"]
    assert count_period(db, Period(SINCE, UNTIL, "nowhere")).__dict__ == dict.fromkeys(
        ("new", "changed", "removed", "restored"), 0
    )
    later = Period("2026-11-21T00:00:00.000Z", UNTIL)
    assert [c.source for c in changed_articles(db, later)] == ["heise"]
    with pytest.raises(ValueError, match="before it starts"):
        Period(UNTIL, SINCE)
    with pytest.raises(ValueError, match="listed events"):
        listed_events(db, Period(SINCE), ("changed",))


@pytest.mark.parametrize(("source", "index"), [(None, "events_at"), ("dwn", "events_article")])
def test_report_queries_search_events_by_index(db, source, index):
    for name, plan in explain_report_queries(db, Period(SINCE, UNTIL, source)).items():
        text = " | ".join(plan)
        assert f"SEARCH e USING INDEX {index} (" in text, f"{name}: {text}"
        # d is the small materialised CTE of edits; j and the subquery rebuild one
        # version's text from its paragraph ids (store.VERSION_TEXT).
        scans = [
            step
            for step in plan
            if step.startswith("SCAN")
            and step != "SCAN d"
            and not step.startswith(("SCAN j VIRTUAL TABLE", "SCAN (subquery-"))
        ]
        assert not scans, f"{name}: {text}"


# --- Layout of a diff ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "kinds"),
    [
        ("T\na\nb\nc", "T\na\nB b\nc", ["same", "modified", "same"]),
        ("T\na\nb\nc", "T\na\nb\nc\nd", ["same", "added"]),
        ("T\na\nb\nc", "T\nb\nc", ["removed", "same"]),
        ("T\na\nb", "U\na\nb", ["same"]),
        ("T\nx y z\nb", "T\nnew\nb", ["removed", "added", "same"]),
    ],
)
def test_diff_blocks_keep_document_order(old, new, kinds):
    diff = diff_texts(old, new)
    blocks = diff_blocks(diff, tuple(new.split("\n")[1:]))
    assert [b.kind for b in blocks] == kinds
    shown = [p for b in blocks for p in (b.paragraphs or ([b.new] if b.new else []))]
    assert shown == new.split("\n")[1:]


def test_empty_period_renders_a_friendly_page(db):
    period = Period("2030-01-01T00:00:00.000Z")
    html = render_report(build_report(db, period, datetime(2030, 1, 2, tzinfo=UTC)))
    tree = lxml.html.fromstring(html)
    assert "No changes" in tree.findtext(".//div[@class='empty']/strong")
    assert not tree.xpath("//article") and not tree.xpath("//nav")


def test_everything_stored_is_escaped(db):
    html = render_report(build_report(db, Period(SINCE, UNTIL), T0 + timedelta(days=4)))
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>Absatz" not in html
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in html
    tree = lxml.html.fromstring(html)
    assert {a.get("href").split(":")[0] for a in tree.xpath("//a[@href]")} == {"https"}
    # A javascript: canonical URL never becomes the article's URL: it is stored under
    # the https URL it was fetched from (recording.identity_url).
    assert tree.xpath("//article[@data-source='evil<b>']//h3/a[starts-with(@href, 'https://')]")


# --- The page in Chromium --------------------------------------------------------------


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline; fail the test (never skip) when it is missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install chromium (CI installs it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    result = subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture
def report_file(tmp_path, cli) -> Path:
    db_path = build_store(tmp_path / "crawl.db")
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    done = cli("report", "--since", "2026-11-18", "--until", "2026-11-25", "-o", out, store=db_path)
    assert done.returncode == 0, done.stderr
    assert "3 changed, 2 new, 1 removed" in done.stderr
    return out


def test_report_renders_in_chromium(report_file, tmp_path):
    dom = chromium("--dump-dom", report_file.as_uri(), profile=tmp_path / "profile").stdout
    tree = lxml.html.fromstring(dom)
    cards = tree.xpath("//article[contains(@class, 'change')]")
    assert [c.get("data-source") for c in cards] == ["heise", "evil<b>", "dwn"]
    nato = cards[2]
    assert nato.xpath(".//h3/a/@href") == ["https://www.dwn.example/politik/nato-treffen"]
    assert nato.xpath(".//h3/a/text()") == ["Rutte trifft Trump in Florida"]
    assert nato.xpath(".//p[@class='title-change']//del/text()") == ["Nato-Chef"]
    assert nato.xpath(".//p[@class='title-change']//ins/text()") == ["Rutte", "in Florida"]
    assert nato.xpath(".//p[@class='modified']//del/text()") == ["keine"]
    assert nato.xpath(".//p[@class='modified']//ins/text()") == ["keinerlei"]
    assert [s.text for s in nato.xpath(".//details/summary")] == [
        "1 unchanged paragraph",
        "5 unchanged paragraphs",
    ]
    assert "major" in cards[0].xpath(".//span[contains(@class, 'badge')]/text()")
    assert cards[0].xpath(".//p[@class='added']/ins/text()") == [
        "Samsung bestätigt Lieferprobleme bis Ende Januar."
    ]
    assert cards[0].xpath(".//p[@class='removed']/del/text()") == [SSD[2]]
    assert tree.xpath("//section[contains(@class, 'removed')]//li/@data-source") == ["faz"]
    assert [d.text for d in tree.xpath("//dl[@class='counts']//dd")] == ["3", "2", "1"]
    assert tree.xpath("//nav[@class='filter']/@hidden") == []  # JS ran and showed the filter
    assert_self_contained(tree)


def assert_self_contained(tree) -> None:
    assert not tree.xpath("//*[@src] | //link | //iframe | //object | //embed | //img")
    hrefs = tree.xpath("//@href")
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    assert "url(" not in "".join(tree.xpath("//style/text()"))
    assert not tree.xpath("//*[@style]")


def test_source_filter_hides_other_sources(report_file, tmp_path):
    url = report_file.as_uri() + "#source=heise"
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile").stdout
    tree = lxml.html.fromstring(dom)
    shown = tree.xpath("//main//*[@data-source][not(@hidden)]/@data-source")
    assert set(shown) == {"heise"} and len(shown) == 2  # its change and its "new" entry
    assert tree.xpath("//section[contains(@class, 'removed')]/@hidden") == [""]
    assert tree.xpath("//nav//button[@aria-pressed='true']/@data-filter") == ["heise"]


def test_report_screenshot(report_file, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    chromium(
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        report_file.as_uri(),
        profile=tmp_path / "profile",
    )
    assert shot.stat().st_size > 10_000


def test_report_command_errors(tmp_path, cli):
    missing = cli("report", "-o", tmp_path / "r.html", store=tmp_path / "none.db")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no store at")
    db_path = build_store(tmp_path / "crawl.db")
    bad = cli("report", "--since", "last tuesday", store=db_path)
    assert bad.returncode == 2 and "cannot read the time" in bad.stderr
    backwards = cli("report", "--since", "2026-11-25", "--until", "2026-11-18", store=db_path)
    assert backwards.returncode == 2 and "before it starts" in backwards.stderr
