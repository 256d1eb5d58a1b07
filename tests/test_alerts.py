"""Alerts against real stores and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import pytest

from crawler import store
from crawler.addresses import parse_policy
from crawler.alerts import (
    WEBHOOK_TARGET,
    alert_matches,
    backoff,
    deliver_alerts,
    render_atom_feed,
    write_atom_feed,
)
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import Policy, record_article, record_pages
from crawler.sources import AlertFilter, AlertSettings, RevisitPolicy
from crawler.store.alerts import AlertEvent, deliveries, due_events, recent_events

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
NATO = "https://www.dwn.example/politik/nato-treffen"
PRICES = "https://www.stadt.example/lokal/stadtwerke-preise"
NATO_BODY = (
    "Nato-Generalsekretär Mark Rutte hat in Florida den designierten US-Präsidenten getroffen.\n"
    "Zu Details machte die Sprecherin keine Angaben.\n"
    "In der Nato hätten die meisten Mitgliedstaaten einen anderen Wahlausgang bevorzugt, "
    "heißt es in Brüssel, wo die Sorge vor einer zweiten Amtszeit groß ist."
)
PRICES_BODY = (
    "Die Stadtwerke erhöhen zum Jahreswechsel die Preise für Strom und Gas.\n"
    "Ein Haushalt mit 3000 Kilowattstunden zahlt künftig rund 120 Euro mehr im Jahr.\n"
    "Der Aufsichtsrat hat der Erhöhung am Montagabend zugestimmt."
)
ADDED = (
    "Am Abend teilte das Bündnis mit, man werde die Verteidigungsausgaben weiter erhöhen "
    "und die Ostflanke mit zusätzlichen Brigaden stärken, sagte ein Sprecher <b>wörtlich</b>."
)
WEBHOOK_EVENTS_AT_START = 4  # new, new, changed (major), removed
LOOPBACK = parse_policy("127.0.0.0/8")  # the receivers run on 127.0.0.1


def deliver(*args: Any, **kwargs: Any) -> Any:
    """``deliver_alerts`` with loopback allowed (the address guard refuses it by default)."""
    return deliver_alerts(*args, policy=LOOPBACK, **kwargs)


# --- A webhook receiver ---------------------------------------------------------------


class Receiver:
    """Records every JSON body POSTed to it; answers each with the next scripted action:
    an HTTP status, or ``"hang"`` (never answer until the receiver stops). Default 200."""

    def __init__(self, port: int = 0) -> None:
        self.script: deque[int | str] = deque()
        self.received: list[dict[str, Any]] = []
        self.acknowledged: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _ReceiverHandler)
        self._httpd.daemon_threads = True
        self._httpd.receiver = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"

    def next_action(self, body: dict[str, Any], headers: dict[str, str]) -> int | str:
        with self._lock:
            self.received.append(body)
            self.headers.append(headers)
            return self.script.popleft() if self.script else 200

    def acknowledge(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.acknowledged.append(body)

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        action = receiver.next_action(body, dict(self.headers.items()))
        if action == "hang":
            receiver.stopping.wait(60)
            return
        assert isinstance(action, int)
        if 200 <= action < 300:  # noted before answering, so the sender cannot outrun it
            receiver.acknowledge(body)
        self.send_response(action)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- Stores with events ----------------------------------------------------------------


def article(url: str, title: str, body: str) -> Article:
    return Article(url=url, canonical_url=url, title=title, body=body)


def fetched(url: str) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=200, body=b"<html></html>", source="news")


def record(db, page: Article, at: datetime, text_dir: Path) -> None:
    record_article(db, page, fetched(page.url or ""), text_dir=text_dir, now=at, source="news")


def remove(db, url: str, at: datetime, text_dir: Path) -> None:
    gone = CrawledPage(
        FetchResult(url=url, final_url=url, status=404, failure="http_error", source="news")
    )
    policy: dict[str | None, Policy] = {
        "news": Policy(revisit=RevisitPolicy(confirm_removal_after=timedelta(hours=1)))
    }
    for when in (at, at + timedelta(hours=2)):
        record_pages(db, [gone], text_dir=text_dir, now=when, policies=policy)


@pytest.fixture
def db(tmp_path: Path):
    """A store with four events: Nato new, prices new, Nato changed (major), prices removed."""
    database = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    record(database, article(NATO, "Nato-Chef trifft Trump", NATO_BODY), T0, texts)
    prices = article(PRICES, "Stadtwerke erhöhen Preise", PRICES_BODY)
    record(database, prices, T0 + timedelta(minutes=5), texts)
    edited = article(NATO, "Nato-Chef trifft Trump", NATO_BODY + "\n" + ADDED)
    record(database, edited, T0 + timedelta(hours=1), texts)
    remove(database, PRICES, T0 + timedelta(hours=2), texts)
    yield database
    database.close()


def add_small_edits(db, tmp_path: Path) -> None:
    """A minor edit (2 words) and a title change of the Nato article."""
    texts = tmp_path / "articles"
    minor = NATO_BODY.replace("keine Angaben", "keinerlei Angaben") + "\n" + ADDED
    record(db, article(NATO, "Nato-Chef trifft Trump", minor), T0 + timedelta(hours=5), texts)
    retitled = article(NATO, "Rutte trifft Trump in Florida", minor)
    record(db, retitled, T0 + timedelta(hours=6), texts)


def statuses(db) -> list[tuple[int, str, int]]:
    return [(d.event_id, d.status, d.attempts) for d in deliveries(db, WEBHOOK_TARGET)]


def hook(url: str, timeout: float = 2.0, retries: int = 2) -> AlertSettings:
    return AlertSettings(webhook=url, timeout=timeout, retries=retries)


NOW = T0 + timedelta(hours=8)


# --- Webhook delivery -------------------------------------------------------------------


def test_new_changed_and_removed_events_are_posted_once_each(db, receiver):
    report = deliver(db, hook(receiver.url), {}, now=NOW)

    assert (report.delivered, report.attempts, report.ok) == (4, 4, True)
    assert [body["kind"] for body in receiver.acknowledged] == ["new", "new", "changed", "removed"]
    new, _, changed, removed = receiver.acknowledged
    assert new == {
        "event_id": 1,
        "kind": "new",
        "at": "2026-11-24T08:00:00.000Z",
        "source": "news",
        "url": NATO,
        "title": "Nato-Chef trifft Trump",
        "summary": "new article (41 words)",
        "change_class": None,
        "words_added": 0,
        "words_removed": 0,
        "version": 1,
        "previous_version": None,
        "links": {"article": NATO},
    }
    assert (changed["change_class"], changed["version"], changed["previous_version"]) == (
        "major",
        2,
        1,
    )
    assert changed["words_added"] == len(ADDED.split()) and changed["words_removed"] == 0
    assert (removed["url"], removed["title"], removed["version"]) == (
        PRICES,
        "Stadtwerke erhöhen Preise",
        1,
    )
    headers = receiver.headers[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("newsmonitor-crawler/")
    assert statuses(db) == [
        (1, "delivered", 1),
        (2, "delivered", 1),
        (3, "delivered", 1),
        (4, "delivered", 1),
    ]

    again = deliver(db, hook(receiver.url), {}, now=NOW + timedelta(minutes=15))
    assert (again.delivered, again.attempts, len(receiver.received)) == (0, 0, 4)


def test_a_500_is_retried_and_delivered_exactly_once(db, receiver):
    receiver.script.extend([500])
    report = deliver(db, hook(receiver.url), {}, now=NOW, limit=1)

    assert (report.delivered, report.attempts) == (1, 2)
    assert statuses(db) == [(1, "delivered", 2)]
    assert [body["event_id"] for body in receiver.received] == [1, 1]
    assert [body["event_id"] for body in receiver.acknowledged] == [1]


def test_a_receiver_that_is_down_loses_nothing(db, tmp_path):
    port = free_port()
    settings = hook(f"http://127.0.0.1:{port}/hook", retries=1)
    started = time.monotonic()
    report = deliver(db, settings, {}, now=NOW)

    assert time.monotonic() - started < 5
    assert (report.delivered, report.pending, report.deferred) == (0, 1, 3)
    (first,) = deliveries(db, WEBHOOK_TARGET)  # the run stopped after the first event
    assert (first.status, first.attempts) == ("pending", 2)
    assert "ConnectionRefusedError" in (first.last_error or "")

    up = Receiver(port)
    try:
        later = deliver(db, settings, {}, now=NOW + timedelta(minutes=15))
    finally:
        up.stop()
    assert (later.delivered, later.ok) == (4, True)
    assert [body["event_id"] for body in up.acknowledged] == [1, 2, 3, 4]
    assert statuses(db)[0] == (1, "delivered", 3)
    assert deliveries(db, WEBHOOK_TARGET)[0].last_error is None


def test_a_slow_receiver_times_out_in_bounded_time(db, receiver):
    receiver.script.extend(["hang", "hang"])
    started = time.monotonic()
    report = deliver(db, hook(receiver.url, timeout=0.3, retries=1), {}, now=NOW)

    assert time.monotonic() - started < 5  # 2 x 0.3 s timeouts + 0.5 s backoff
    assert (report.pending, report.deferred) == (1, 3)
    (first,) = deliveries(db, WEBHOOK_TARGET)
    assert (first.status, first.attempts) == ("pending", 2)
    assert "TimeoutError" in (first.last_error or "")
    assert "timed out" in report.describe()


def test_a_rejected_event_is_failed_logged_and_tried_again_later(db, receiver, caplog):
    receiver.script.extend([400])
    report = deliver(db, hook(receiver.url), {}, now=NOW)

    assert (report.failed, report.delivered, report.attempts) == (1, 3, 4)
    assert statuses(db)[0] == (1, "failed", 1)  # a 4xx is not retried within the run
    assert deliveries(db, WEBHOOK_TARGET)[0].last_error == "HTTP 400"
    assert "event 1" in caplog.text and "HTTP 400" in caplog.text

    later = deliver(db, hook(receiver.url), {}, now=NOW + timedelta(minutes=15))
    assert (later.delivered, statuses(db)[0]) == (1, (1, "delivered", 2))


def test_a_receiver_rejecting_everything_stops_the_run(db, receiver):
    receiver.script.extend([404, 404, 404, 404])
    report = deliver(db, hook(receiver.url), {}, now=NOW)

    assert (report.failed, report.deferred, len(receiver.received)) == (3, 1, 3)


def test_a_redirect_is_not_followed(db, receiver):
    receiver.script.extend([302])
    report = deliver(db, hook(receiver.url), {}, now=NOW, limit=1)

    assert report.failed == 1
    assert deliveries(db, WEBHOOK_TARGET)[0].last_error == "HTTP 302 (redirects are not followed)"


def test_no_webhook_means_nothing_is_recorded(db):
    report = deliver(db, AlertSettings(), {}, now=NOW)
    assert (report.ok, report.describe(), statuses(db)) == (True, "alerts: nothing due", [])


# --- Filters ------------------------------------------------------------------------


def test_only_major_changes(db, receiver, tmp_path):
    add_small_edits(db, tmp_path)
    rule = {"news": AlertFilter(kinds=("changed", "title_changed"), classes=("major",))}
    report = deliver(db, hook(receiver.url), rule, now=NOW)

    assert [body["event_id"] for body in receiver.acknowledged] == [3]
    assert (report.delivered, report.filtered) == (1, 5)
    assert [status for _, status, _ in statuses(db)] == [
        "filtered",
        "filtered",
        "delivered",
        "filtered",
        "filtered",
        "filtered",
    ]


def test_keywords_match_titles_new_texts_and_changed_paragraphs(db, receiver):
    # "brigaden" is only in the added paragraph; "KILOWATTSTUNDEN" only in the new prices text.
    rule = {"news": AlertFilter(keywords=("brigaden", "KILOWATTSTUNDEN"))}
    deliver(db, hook(receiver.url), rule, now=NOW)

    assert [body["event_id"] for body in receiver.acknowledged] == [2, 3]
    assert [status for _, status, _ in statuses(db)] == [
        "filtered",
        "delivered",
        "delivered",
        "filtered",  # the removal: only its title is searched
    ]


def test_min_words_applies_to_changes(db, receiver, tmp_path):
    add_small_edits(db, tmp_path)
    rule = {"news": AlertFilter(min_words=10)}
    deliver(db, hook(receiver.url), rule, now=NOW)

    # new, new, major change, removed pass; the 2-word edit and the title change do not.
    assert [body["event_id"] for body in receiver.acknowledged] == [1, 2, 3, 4]
    assert [status for _, status, _ in statuses(db)][4:] == ["filtered", "filtered"]


def test_filters_of_other_sources_do_not_apply(db, receiver):
    rule = {"elsewhere": AlertFilter(kinds=("removed",))}
    report = deliver(db, hook(receiver.url), rule, now=NOW)
    assert (report.delivered, report.filtered) == (4, 0)


def event(kind: str = "changed", **fields: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "event_id": 1,
        "kind": kind,
        "at": "2026-11-24T08:00:00.000Z",
        "summary": "s",
        "article_id": 1,
        "source": "news",
        "canonical_url": NATO,
        "title": "Nato-Chef trifft Trump",
        "text": None,
        "version": 2,
        "change_class": "minor",
        "words_added": 3,
        "words_removed": 1,
        "diff": None,
    }
    return AlertEvent(**{**values, **fields})


@pytest.mark.parametrize(
    ("alert", "rule", "expected"),
    [
        (event(), AlertFilter(), True),
        (event(), AlertFilter(kinds=("new",)), False),
        (event(), AlertFilter(classes=("major",)), False),
        (event(change_class="title"), AlertFilter(classes=("title",)), True),
        (event(), AlertFilter(min_words=4), True),
        (event(), AlertFilter(min_words=5), False),
        (event("removed", change_class=None), AlertFilter(min_words=50), True),
        (event("removed", change_class=None), AlertFilter(classes=("major",)), True),
        (event(), AlertFilter(keywords=("NATO-CHEF",)), True),
        (event(), AlertFilter(keywords=("Florida",)), False),
        (event("new", text="Titel\nIn Florida"), AlertFilter(keywords=("florida",)), True),
        (event("removed", text="Florida"), AlertFilter(keywords=("florida",)), False),
        (event(title="Straße gesperrt"), AlertFilter(keywords=("STRASSE",)), True),
        (event(title=None), AlertFilter(keywords=("x",)), False),
    ],
)
def test_alert_matches(alert, rule, expected):
    assert alert_matches(alert, rule) is expected


@pytest.mark.parametrize(
    ("retry", "retry_after", "seconds"),
    [
        (0, None, 0.5),
        (1, None, 1.0),
        (3, None, 4.0),
        (10, None, 8.0),
        (0, 3.0, 3.0),
        (0, 600.0, 8.0),
    ],
)
def test_backoff(retry, retry_after, seconds):
    assert backoff(retry, retry_after) == seconds


# --- Atom feed --------------------------------------------------------------------------


def test_atom_feed_parses_with_titles_links_and_diffs(db, tmp_path):
    add_small_edits(db, tmp_path)
    path = tmp_path / "data" / "changes.atom"
    assert write_atom_feed(db, path, now=NOW) == 6

    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert [entry.title for entry in feed.entries] == [
        "Title changed: Rutte trifft Trump in Florida",
        "Changed: Nato-Chef trifft Trump",
        "Removed: Stadtwerke erhöhen Preise",
        "Changed: Nato-Chef trifft Trump",
        "New: Stadtwerke erhöhen Preise",
        "New: Nato-Chef trifft Trump",
    ]
    assert [entry.link for entry in feed.entries] == [NATO, NATO, PRICES, NATO, PRICES, NATO]
    assert len({entry.id for entry in feed.entries}) == 6
    assert all(
        entry.id.startswith("tag:newsmonitor-crawler,2026-11-24:event/") for entry in feed.entries
    )
    assert feed.entries[0].updated == "2026-11-24T14:00:00.000Z"
    assert feed.feed.updated == "2026-11-24T14:00:00.000Z"

    major = feed.entries[3]
    assert major.summary.startswith("major edit: 1 paragraph added")
    content = major.content[0].value
    assert "<ins>Am Abend teilte das Bündnis mit" in content
    assert "&lt;b&gt;wörtlich&lt;/b&gt;" in content  # page text stays text
    minor = feed.entries[1].content[0].value
    assert "<del>keine</del> <ins>keinerlei</ins>" in minor
    retitled = feed.entries[0]
    assert "(+0/-0 words)" in retitled.summary
    assert "<del>Nato-Chef trifft Trump</del>" in retitled.content[0].value
    assert "120 Euro" in feed.entries[4].content[0].value


def test_atom_feed_limit_filters_and_atomic_rewrite(db, tmp_path):
    path = tmp_path / "changes.atom"
    assert write_atom_feed(db, path, now=NOW, limit=2) == 2
    assert [e.title for e in feedparser.parse(path.read_bytes()).entries] == [
        "Removed: Stadtwerke erhöhen Preise",
        "Changed: Nato-Chef trifft Trump",
    ]
    news_only = {"news": AlertFilter(kinds=("new",))}
    assert write_atom_feed(db, path, now=NOW, limit=1, filters=news_only) == 1
    assert [e.title for e in feedparser.parse(path.read_bytes()).entries] == [
        "New: Stadtwerke erhöhen Preise"
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_empty_feed_and_control_characters_stay_valid(tmp_path):
    empty = feedparser.parse(render_atom_feed([], now=NOW))
    assert (empty.bozo, empty.entries, empty.feed.updated) == (
        False,
        [],
        "2026-11-24T16:00:00.000Z",
    )

    odd = event(
        "new", title="Bell\x07 & <Tag>", text="Bell\x07 & <Tag>\nZeile\x0b mit Steuerzeichen"
    )
    parsed = feedparser.parse(render_atom_feed([odd], now=NOW))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.entries[0].title == "New: Bell & <Tag>"


def test_store_queries_page_through_events(db):
    newest = recent_events(db, 2)
    older = recent_events(db, 10, (newest[-1].at, newest[-1].event_id))
    assert [e.event_id for e in newest + older] == [4, 3, 2, 1]
    assert [e.event_id for e in due_events(db, WEBHOOK_TARGET, 10)] == [1, 2, 3, 4]
    assert older[0].text is not None and newest[0].text is None  # texts for new events only
