"""Alerts about events: a JSON POST per event to a webhook, and an Atom feed of changes.

Delivery is at-least-once and runs after a crawl's writes, never inside them. Each event
carries ``event_id`` so a receiver can drop duplicates. Per event and run:

    2xx                       delivered (done)
    timeout, connection       retried in the run with backoff 0.5 s x 2^n (at most 8 s,
    error, 408, 429, 5xx      or Retry-After up to 8 s); still failing: ``pending``
    other 4xx, 3xx            ``failed`` at once (redirects are not followed)
    refused address           ``failed`` at once: the webhook's host is, or resolves to,
                              an address ``allow_private_addresses`` does not allow
    filtered out              ``filtered`` (done; never sent)

``pending`` and ``failed`` events stay due and are tried again by every later run
(``failed`` ones after all others), so nothing is dropped; each undelivered event is
logged with its error. A run stops early when the receiver is unreachable after its
retries, after three rejected events in a row, or when its time budget is spent; the
events it did not try stay due. Store errors propagate; webhook errors never raise.
"""

from __future__ import annotations

import html
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from crawler import __version__
from crawler.addresses import NOTHING, AddressPolicy, parse_host
from crawler.changes import Diff, word_diff
from crawler.recording import timestamp
from crawler.sources import AlertFilter, AlertSettings
from crawler.store import acquire_lock, release_lock
from crawler.store import alerts as alert_store
from crawler.store.alerts import AlertEvent
from crawler.textfiles import write_text_file

log = logging.getLogger(__name__)

WEBHOOK_TARGET = "webhook"  # the deliveries.target of the webhook, whatever its URL
USER_AGENT = f"newsmonitor-crawler/{__version__} (alerts)"
DEFAULT_LIMIT = 1000  # events per call
DEFAULT_BUDGET = 300.0  # seconds per call, checked between attempts
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
MIN_TIMEOUT = 0.1  # a timeout of 0 would make the socket non-blocking
REJECTIONS_BEFORE_STOP = 3
CHANGE_KINDS = ("changed", "title_changed")

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_ID = "tag:newsmonitor-crawler,2024:changes"
FEED_PAGES = 10  # pages of ``limit`` events read to fill a filtered feed
FEED_CHANGES = 5  # paragraph changes shown per entry
FEED_CHARS = 400  # characters shown per paragraph
ENTRY_TITLES = {
    "new": "New",
    "changed": "Changed",
    "title_changed": "Title changed",
    "removed": "Removed",
    "restored": "Restored",
}
# Characters XML 1.0 cannot carry, even escaped (control characters from odd pages).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Answer:
    """A webhook's HTTP answer: its status and, if it sent one, Retry-After in seconds."""

    status: int
    retry_after: float | None = None


# post(url, body, headers, timeout) -> Answer; raises OSError or HTTPException when no answer.
Poster = Callable[[str, bytes, Mapping[str, str], float], Answer]


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver_alerts` call did, counted in events (``attempts`` in POSTs).

    ``deferred`` events were due but not tried because the run stopped early.
    """

    delivered: int = 0
    filtered: int = 0
    failed: int = 0
    pending: int = 0
    deferred: int = 0
    attempts: int = 0
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every due event was delivered or filtered."""
        return not (self.failed or self.pending or self.deferred)

    def describe(self) -> str:
        """One line for the log, e.g. ``alerts: 3 delivered, 1 filtered, 2 pending (…)``."""
        counts = [
            f"{getattr(self, name)} {name}"
            for name in ("delivered", "filtered", "failed", "pending", "deferred")
            if getattr(self, name)
        ]
        errors = f" ({'; '.join(self.errors)})" if self.errors else ""
        return f"alerts: {', '.join(counts) or 'nothing due'}{errors}"


@dataclass(frozen=True)
class _Outcome:
    status: str  # delivered, failed or pending
    attempts: int
    error: str | None = None


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    rejected_in_row: int = 0

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: _Outcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        self.attempts += outcome.attempts
        if outcome.error and outcome.error not in self.errors and len(self.errors) < 5:
            self.errors.append(outcome.error)
        self.rejected_in_row = self.rejected_in_row + 1 if outcome.status == "failed" else 0

    def report(self, filtered: int, deferred: int) -> DeliveryReport:
        return DeliveryReport(
            delivered=self.counts.get("delivered", 0),
            filtered=filtered,
            failed=self.counts.get("failed", 0),
            pending=self.counts.get("pending", 0),
            deferred=deferred,
            attempts=self.attempts,
            errors=tuple(self.errors),
        )


# --- Filters and payloads (pure) ------------------------------------------------------


def alert_matches(event: AlertEvent, rule: AlertFilter) -> bool:
    """Whether ``rule`` lets ``event`` through: kind, change class, minimum words, keywords.

    Classes and minimum words apply to changed and title_changed events only; keywords
    match case-insensitively in the title, the changed paragraphs (both sides) or a new text.
    """
    if event.kind not in rule.kinds:
        return False
    if event.kind in CHANGE_KINDS:
        if event.change_class not in rule.classes:
            return False
        if event.words_added + event.words_removed < rule.min_words:
            return False
    if not rule.keywords:
        return True
    haystack = "\n".join(_searchable(event)).casefold()
    return any(keyword.casefold() in haystack for keyword in rule.keywords)


def _searchable(event: AlertEvent) -> Iterator[str]:
    yield event.title or ""
    if event.kind == "new":
        yield event.text or ""
    diff = _diff(event)
    if diff is not None:
        yield from (diff.old_title, diff.new_title)
        for change in diff.changes:
            yield from (change.old or "", change.new or "")


def _diff(event: AlertEvent) -> Diff | None:
    if event.kind not in CHANGE_KINDS or not event.diff:
        return None
    try:
        return Diff.from_dict(event.diff)
    except (KeyError, TypeError, ValueError):
        log.warning("event %s: the stored diff cannot be read", event.event_id)
        return None


def alert_payload(event: AlertEvent) -> dict[str, Any]:
    """The JSON object POSTed for ``event`` (see the module docstring for the semantics)."""
    is_change = event.kind in CHANGE_KINDS
    has_previous = event.kind in (*CHANGE_KINDS, "restored") and (event.version or 0) > 1
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "at": event.at,
        "source": event.source,
        "url": event.canonical_url,
        "title": event.title,
        "summary": event.summary,
        "change_class": event.change_class if is_change else None,
        "words_added": event.words_added if is_change else 0,
        "words_removed": event.words_removed if is_change else 0,
        "version": event.version,
        "previous_version": (event.version or 0) - 1 if has_previous else None,
        "links": {"article": event.canonical_url},
    }


# --- Webhook delivery -------------------------------------------------------------------


def deliver_alerts(
    db: sqlite_utils.Database,
    settings: AlertSettings,
    filters: Mapping[str, AlertFilter],
    *,
    now: datetime,
    post: Poster | None = None,
    limit: int = DEFAULT_LIMIT,
    budget: float = DEFAULT_BUDGET,
    user_agent: str = USER_AGENT,
    policy: AddressPolicy = NOTHING,
    resolve: Mapping[str, str | None] | None = None,
) -> DeliveryReport:
    """POST every due event (oldest first, at most ``limit``) to ``settings.webhook``.

    ``filters`` maps source names to their filter (default: everything). The webhook's
    address must pass ``policy`` (the crawler's ``allow_private_addresses``), looked up
    through ``resolve`` overrides first. Returns a report; webhook failures are recorded
    in ``deliveries`` and never raised. Raises StoreError.
    """
    if not settings.webhook:
        return DeliveryReport()
    at = timestamp(now)
    due = alert_store.due_events(db, WEBHOOK_TARGET, limit)
    wanted = [event for event in due if alert_matches(event, _rule(filters, event))]
    chosen = {event.event_id for event in wanted}
    unwanted = [event.event_id for event in due if event.event_id not in chosen]
    alert_store.record_filtered(db, unwanted, WEBHOOK_TARGET, at)
    deadline = time.monotonic() + budget
    poster = post or partial(post_json, policy=policy, resolve=resolve)
    sender = _Sender(poster, settings, user_agent, deadline)
    tally = _send_events(db, sender, wanted, at)
    report = tally.report(filtered=len(unwanted), deferred=len(wanted) - tally.events)
    log.log(logging.INFO if report.ok else logging.WARNING, "%s", report.describe())
    return report


def _send_events(
    db: sqlite_utils.Database, sender: _Sender, events: list[AlertEvent], at: str
) -> _Tally:
    """Send events in order, each outcome committed on its own, until the run should stop."""
    tally = _Tally()
    for event in events:
        if _should_stop(tally, sender.deadline):
            break
        outcome = sender.send(event)
        alert_store.record_delivery(
            db,
            event.event_id,
            WEBHOOK_TARGET,
            status=outcome.status,
            attempts=outcome.attempts,
            error=outcome.error,
            at=at,
        )
        _log_outcome(event, outcome)
        tally.add(outcome)
    return tally


def _rule(filters: Mapping[str, AlertFilter], event: AlertEvent) -> AlertFilter:
    return filters.get(event.source or "", AlertFilter())


def _should_stop(tally: _Tally, deadline: float) -> bool:
    """Stop when the receiver is unreachable, rejects everything, or the budget is spent."""
    if tally.counts.get("pending") or tally.rejected_in_row >= REJECTIONS_BEFORE_STOP:
        return True
    return time.monotonic() >= deadline


def _log_outcome(event: AlertEvent, outcome: _Outcome) -> None:
    if outcome.status != "delivered":
        log.warning(
            "alert for event %s (%s %s) %s after %s attempt(s): %s",
            event.event_id,
            event.kind,
            event.canonical_url,
            "not delivered yet" if outcome.status == "pending" else "rejected",
            outcome.attempts,
            outcome.error,
        )


@dataclass(frozen=True)
class _Sender:
    post: Poster
    settings: AlertSettings
    user_agent: str
    deadline: float

    def send(self, event: AlertEvent) -> _Outcome:
        """POST one event, retrying transient failures; never raises for network errors."""
        url = self.settings.webhook or ""
        body = json.dumps(alert_payload(event), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            "Idempotency-Key": f"event-{event.event_id}",
        }
        timeout = max(self.settings.timeout, MIN_TIMEOUT)
        error, retry_after, attempt = "", None, 0
        while attempt <= self.settings.retries:
            if attempt:
                if time.monotonic() >= self.deadline:
                    break
                time.sleep(backoff(attempt - 1, retry_after))
            attempt += 1
            try:
                answer = self.post(url, body, headers, timeout)
            except WebhookRefused as exc:  # retrying cannot help; allowing it can
                return _Outcome("failed", attempt, str(exc))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error, retry_after = describe_error(exc), None
                continue
            if 200 <= answer.status < 300:
                return _Outcome("delivered", attempt)
            error, retry_after = _status_error(answer.status), answer.retry_after
            if not retryable(answer.status):
                return _Outcome("failed", attempt, error)
        return _Outcome("pending", attempt, error)


def backoff(retry: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``retry`` (from 0): 0.5 x 2^n, or Retry-After; at most 8."""
    delay = BACKOFF_BASE * 2 ** min(retry, 16)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, BACKOFF_MAX)


def retryable(status: int) -> bool:
    """Whether an HTTP status is worth another attempt: 408, 429 and 5xx."""
    return status in (408, 429) or 500 <= status <= 599


def _status_error(status: int) -> str:
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)"
    return f"HTTP {status}"


def describe_error(exc: BaseException) -> str:
    """A network error as one line, e.g. ``ConnectionRefusedError: [Errno 111] …``."""
    return f"{type(exc).__name__}: {exc}"


class WebhookRefused(Exception):
    """The webhook's host is, or resolves to, an address the address policy refuses."""


def webhook_address(
    host: str, port: int, policy: AddressPolicy, resolve: Mapping[str, str | None] | None = None
) -> str:
    """The address to connect to for a webhook host: a literal, an override from
    ``resolve``, else the first DNS answer; every answer must pass ``policy``.

    Raises WebhookRefused naming the address and how to allow it, OSError on lookup failure.
    """
    literal = parse_host(host)
    if literal is not None:
        answers = [literal]
    else:
        name = host.lower().rstrip(".")
        if resolve and name in resolve:
            if resolve[name] is None:
                raise OSError(f"{host}: resolves to nothing (a resolve override)")
            answers = [ipaddress.ip_address(resolve[name] or "")]
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answers = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in answers:  # any refused answer refuses the host (no rebinding games)
        reason = policy.refusal(address, None if literal is not None else host)
        if reason is not None:
            raise WebhookRefused(f"webhook {reason}")
    return str(answers[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that passed the policy, whatever DNS says by now."""

    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    *,
    policy: AddressPolicy = NOTHING,
    resolve: Mapping[str, str | None] | None = None,
) -> Answer:
    """POST ``body`` to ``url`` directly (no proxies), to an address ``policy`` allows,
    never following a redirect, ``timeout`` per socket operation. Returns the status;
    raises WebhookRefused, or OSError/HTTPException when no answer arrived."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname or ""
    address = webhook_address(host, port, policy, resolve)
    kind = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = kind(host, port, address, timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read()
        return Answer(response.status, _retry_after(response.getheader("Retry-After")))
    finally:
        connection.close()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored: backoff applies)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


# --- Atom feed ------------------------------------------------------------------------


def write_atom_feed(
    db: sqlite_utils.Database,
    path: Path,
    *,
    now: datetime,
    limit: int = 200,
    filters: Mapping[str, AlertFilter] | None = None,
) -> int:
    """Write an Atom 1.0 feed of the newest ``limit`` events (through ``filters`` if given)
    to ``path`` atomically; return the number of entries. Raises OSError or StoreError."""
    events = _feed_events(db, limit, filters)
    path = Path(path)
    write_text_file(path.parent, path.name, render_atom_feed(events, now=now))
    return len(events)


def _feed_events(
    db: sqlite_utils.Database, limit: int, filters: Mapping[str, AlertFilter] | None
) -> list[AlertEvent]:
    chosen: list[AlertEvent] = []
    before: tuple[str, int] | None = None
    for _ in range(FEED_PAGES):
        page = alert_store.recent_events(db, limit, before)
        chosen.extend(e for e in page if filters is None or alert_matches(e, _rule(filters, e)))
        if len(chosen) >= limit or len(page) < limit or filters is None:
            break
        before = (page[-1].at, page[-1].event_id)
    return chosen[:limit]


def render_atom_feed(events: list[AlertEvent], *, now: datetime) -> str:
    """An Atom 1.0 document with one entry per event, in the order given (newest first)."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", FEED_ID)
    _text(feed, "title", "Article changes")
    _text(feed, "updated", max((e.at for e in events), default=timestamp(now)))
    _text(ET.SubElement(feed, "author"), "name", "newsmonitor-crawler")
    _text(feed, "generator", "newsmonitor-crawler").set("version", __version__)
    for event in events:
        _entry(feed, event)
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode")


def _entry(feed: ET.Element, event: AlertEvent) -> None:
    entry = ET.SubElement(feed, "entry")
    _text(entry, "id", f"tag:newsmonitor-crawler,{event.at[:10]}:event/{event.event_id}")
    label = ENTRY_TITLES.get(event.kind, event.kind)
    _text(entry, "title", f"{label}: {event.title or event.canonical_url}")
    _text(entry, "updated", event.at)
    link = {"rel": "alternate", "type": "text/html", "href": _xml_safe(event.canonical_url)}
    ET.SubElement(entry, "link", link)
    ET.SubElement(entry, "category", {"term": event.kind})
    _text(entry, "summary", _entry_summary(event))
    content = _entry_content(event)
    if content:
        _text(entry, "content", content).set("type", "html")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _xml_safe(text)
    return element


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)


def _entry_summary(event: AlertEvent) -> str:
    words = f"+{event.words_added}/-{event.words_removed} words"
    if event.kind in CHANGE_KINDS and f"+{event.words_added}/-{event.words_removed}" not in (
        event.summary
    ):
        return f"{event.summary} ({words})"
    return event.summary


def _entry_content(event: AlertEvent) -> str | None:
    """A short HTML diff for changes, the opening paragraphs for new articles."""
    if event.kind == "new" and event.text:
        paragraphs = event.text.split("\n")[1:4]
        return "".join(f"<p>{html.escape(_shorten(p))}</p>" for p in paragraphs) or None
    diff = _diff(event)
    return diff_html(diff) if diff is not None else None


def diff_html(diff: Diff) -> str:
    """A short HTML rendering of a diff: the title, then up to five paragraph changes."""
    parts = []
    if diff.title_changed:
        old, new = html.escape(diff.old_title), html.escape(diff.new_title)
        parts.append(f"<p>Title: <del>{old}</del> <ins>{new}</ins></p>")
    for change in diff.changes[:FEED_CHANGES]:
        if change.op == "added":
            parts.append(f"<p><ins>{html.escape(_shorten(change.new or ''))}</ins></p>")
        elif change.op == "removed":
            parts.append(f"<p><del>{html.escape(_shorten(change.old or ''))}</del></p>")
        else:
            parts.append(f"<p>{_words_html(change.old or '', change.new or '')}</p>")
    hidden = len(diff.changes) - FEED_CHANGES
    if hidden > 0:
        parts.append(f"<p>… and {hidden} more changed paragraph(s)</p>")
    return "".join(parts)


def _words_html(old: str, new: str) -> str:
    pieces = []
    for op, text in word_diff(old, new):
        if op == "equal":
            pieces.append(html.escape(_elide(text)))
        else:
            tag = "ins" if op == "insert" else "del"
            pieces.append(f"<{tag}>{html.escape(_shorten(text))}</{tag}>")
    return " ".join(pieces)


def _elide(text: str, keep: int = 6) -> str:
    """Unchanged words around an edit: the first and last few of a long run."""
    words = text.split()
    if len(words) <= 2 * keep + 1:
        return text
    return " ".join([*words[:keep], "…", *words[-keep:]])


def _shorten(text: str) -> str:
    return text if len(text) <= FEED_CHARS else text[: FEED_CHARS - 1].rstrip() + "…"


def publish_alerts(
    db: sqlite_utils.Database,
    settings: AlertSettings,
    filters: Mapping[str, AlertFilter],
    *,
    atom_path: Path,
    now: datetime,
    user_agent: str = USER_AGENT,
    policy: AddressPolicy = NOTHING,
    resolve: Mapping[str, str | None] | None = None,
    owner_is_dead: Callable[[str], bool] | None = None,
) -> DeliveryReport | None:
    """After a crawl: deliver due events to the webhook (if one is set) and rewrite the
    Atom feed. Holds the store's ``alerts`` lock so two crawls never send an event twice
    (a lock whose owner has ended, killed mid-delivery, is taken over: by default the
    store's own test of the owner process, else ``owner_is_dead``); returns
    None when another process is publishing right now."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    expires = timestamp(now + timedelta(seconds=DEFAULT_BUDGET * 2))
    if not acquire_lock(db, "alerts", owner, timestamp(now), expires, owner_is_dead):
        return None
    try:
        report = None
        if settings.webhook:
            report = deliver_alerts(
                db,
                settings,
                filters,
                now=now,
                user_agent=user_agent,
                policy=policy,
                resolve=resolve,
            )
        write_atom_feed(db, atom_path, now=now, filters=filters)
        return report
    finally:
        release_lock(db, "alerts", owner)
