"""The change report: one self-contained HTML page of what happened to articles in a period.

:func:`build_report` reads the period from the store (:mod:`crawler.store.reports`);
:func:`render_report` turns it into HTML without touching anything else. For each changed
article the page diffs the version before the period against the newest one: paragraphs
modified, added and removed, words marked with ``<ins>``/``<del>``, unchanged paragraphs
folded into ``<details>``. New and removed articles are listed below.

The page loads nothing: inline CSS and a few lines of inline JS (a source filter, also
driven by ``#source=NAME``), both pinned by a Content-Security-Policy hash so that nothing
else can run or be fetched even if escaping failed. Every stored value goes through
:func:`html.escape`; only http(s) URLs become links.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

import sqlite_utils

from crawler import __version__
from crawler.changes import Diff, classify, diff_texts, normalize_text, word_diff
from crawler.recording import timestamp
from crawler.store.reports import (
    ChangedArticle,
    ListedEvent,
    Period,
    PeriodCounts,
    changed_articles,
    count_period,
    listed_events,
)

LISTED_SECTIONS = (
    ("new", "New articles"),
    ("removed", "Removed articles"),
    ("restored", "Restored articles"),
)


@dataclass(frozen=True)
class Report:
    """Everything the page shows: the period, counts, changed articles and listed events."""

    period: Period
    generated_at: str
    counts: PeriodCounts
    changed: tuple[ChangedArticle, ...]
    listed: tuple[ListedEvent, ...]


@dataclass(frozen=True)
class Block:
    """A run of the diff as shown: ``same`` (unchanged paragraphs) or one changed paragraph."""

    kind: str  # same, modified, added, removed
    paragraphs: tuple[str, ...] = ()
    old: str = ""
    new: str = ""


def build_report(db: sqlite_utils.Database, period: Period, now: datetime) -> Report:
    """Read what the report of ``period`` shows from the store; ``now`` is its generation time."""
    return Report(
        period=period,
        generated_at=timestamp(now),
        counts=count_period(db, period),
        changed=tuple(changed_articles(db, period)),
        listed=tuple(listed_events(db, period, tuple(kind for kind, _ in LISTED_SECTIONS))),
    )


def diff_blocks(diff: Diff, new_body: tuple[str, ...]) -> list[Block]:
    """The body of a diff in document order: changed paragraphs, unchanged runs between them.

    ``new_body`` is the newer version's normalised body paragraphs (unchanged text comes
    from there; it is equal in both versions).
    """
    blocks: list[Block] = []
    i = j = 0  # next old and new paragraph not yet shown
    for change in diff.changes:
        gap = change.old_index - i if change.old_index is not None else (change.new_index or 0) - j
        if gap > 0:
            blocks.append(Block("same", new_body[j : j + gap]))
        i, j = i + gap, j + gap
        blocks.append(Block(change.op, old=change.old or "", new=change.new or ""))
        i += change.op != "added"
        j += change.op != "removed"
    if j < len(new_body):
        blocks.append(Block("same", new_body[j:]))
    return blocks


def render_report(report: Report) -> str:
    """The report as one HTML document (UTF-8 text, no external resources)."""
    items: list[ChangedArticle | ListedEvent] = [*report.changed, *report.listed]
    counts = Counter(_source_of(item.source, item.canonical_url) for item in items)
    title = f"Article changes · {_period_text(report)}"
    body = "\n".join(
        [
            _render_header(report, counts),
            "<main>",
            _render_changed(report.changed),
            *(_render_listed(report.listed, kind, heading) for kind, heading in LISTED_SECTIONS),
            _render_empty(report) if not (report.changed or report.listed) else "",
            "</main>",
            f"<footer>Generated {_when(report.generated_at)} UTC by newsmonitor-crawler "
            f"{escape(__version__)}.</footer>",
        ]
    )
    return _document(title, body)


# --- Page frame ------------------------------------------------------------------------

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --paper: #fff; --soft: #f6f8fa;
  --ins: #dafbe1; --ins-ink: #116329; --del: #ffebe9; --del-ink: #a40e26; --accent: #0969da; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--soft); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", sans-serif; }
header.page, main, footer { max-width: 52rem; margin: 0 auto; padding: 0 1.25rem; }
header.page { padding-top: 2rem; padding-bottom: 1rem; }
h1 { font-size: 1.75rem; line-height: 1.2; margin: 0 0 .25rem; letter-spacing: -.01em; }
h2 { font-size: 1.15rem; margin: 2rem 0 .75rem; color: var(--muted); font-weight: 600; }
.period { margin: 0; color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1.25rem 0 0; padding: 0; }
.counts div { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
  padding: .5rem 1rem; min-width: 7rem; }
.counts dt { font-size: .8rem; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.counts dd { margin: 0; font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
nav.filter { display: flex; flex-wrap: wrap; gap: .4rem; margin-top: 1.25rem; }
nav.filter[hidden] { display: none; }
nav.filter button { font: inherit; font-size: .875rem; padding: .25rem .75rem; cursor: pointer;
  border: 1px solid var(--line); border-radius: 999px; background: var(--paper);
  color: var(--ink); }
nav.filter button[aria-pressed="true"] { background: var(--ink); border-color: var(--ink);
  color: var(--paper); }
nav.filter button span { opacity: .7; margin-left: .25rem; }
article.change { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
  padding: 1.1rem 1.4rem 1.2rem; margin: 0 0 1rem; }
.meta { display: flex; flex-wrap: wrap; align-items: center; gap: .35rem .6rem;
  font-size: .85rem; color: var(--muted); }
.badge { font-size: .72rem; font-weight: 700; text-transform: uppercase; letter-spacing: .05em;
  padding: .1rem .5rem; border-radius: 4px; border: 1px solid transparent; }
.badge.major { background: #fff1e5; color: #9a3412; border-color: #fed7aa; }
.badge.minor { background: #eef6ff; color: #0b4f99; border-color: #c8e1ff; }
.badge.title { background: #f5f0ff; color: #6639ba; border-color: #ddd1f7; }
.badge.none { background: var(--soft); color: var(--muted); border-color: var(--line); }
.source { font-weight: 600; color: var(--ink); }
.words .plus { color: var(--ins-ink); font-weight: 600; }
.words .minus { color: var(--del-ink); font-weight: 600; }
article.change h3 { font-size: 1.2rem; line-height: 1.3; margin: .5rem 0 .15rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h3 a { color: var(--ink); }
.url { margin: 0; font-size: .8rem; color: var(--muted); overflow-wrap: anywhere; }
.diff { margin-top: .9rem; border-top: 1px solid var(--line); padding-top: .6rem; }
.diff p { margin: .55rem 0; max-width: 44rem; }
.diff p.added, .diff p.removed { padding-left: .75rem; border-left: 3px solid; }
.diff p.added { border-color: #4ac26b; }
.diff p.removed { border-color: #ff8182; }
.diff p.modified { padding-left: .75rem; border-left: 3px solid #d4a72c; }
.diff p.title-change { font-weight: 600; }
.label { display: inline-block; min-width: 3.2rem; font-size: .72rem; font-weight: 700;
  text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
ins { background: var(--ins); color: var(--ins-ink); text-decoration: none; border-radius: 3px;
  padding: 0 .1em; }
del { background: var(--del); color: var(--del-ink); text-decoration: line-through;
  text-decoration-color: rgba(164, 14, 38, .5); border-radius: 3px; padding: 0 .1em; }
details.same { margin: .5rem 0; color: var(--muted); }
details.same summary { cursor: pointer; font-size: .85rem; list-style-position: inside; }
details.same p { color: var(--ink); opacity: .8; }
ul.listed { list-style: none; margin: 0; padding: 0; background: var(--paper);
  border: 1px solid var(--line); border-radius: 10px; }
ul.listed li { padding: .65rem 1.2rem; border-top: 1px solid var(--line); }
ul.listed li:first-child { border-top: 0; }
ul.listed .meta { margin-top: .1rem; }
.empty { background: var(--paper); border: 1px dashed var(--line); border-radius: 10px;
  padding: 2.5rem 1.5rem; text-align: center; color: var(--muted); }
.empty strong { display: block; font-size: 1.2rem; color: var(--ink); margin-bottom: .3rem; }
footer { padding-top: 1.5rem; padding-bottom: 2.5rem; font-size: .8rem; color: var(--muted); }
[hidden] { display: none !important; }
@media (max-width: 36rem) {
  header.page, main, footer { padding-left: .75rem; padding-right: .75rem; }
  article.change { padding: .9rem 1rem 1rem; }
}
@media print {
  body { background: #fff; font-size: 11pt; }
  nav.filter { display: none !important; }
  article.change, ul.listed, .counts div { border-color: #bbb; break-inside: avoid; }
  ins, del { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; }
}
""".strip()

SCRIPT = """
(function () {
  var nav = document.querySelector("nav.filter");
  if (!nav) { return; }
  function show(source) {
    document.querySelectorAll("main [data-source]").forEach(function (el) {
      el.hidden = source !== "" && el.getAttribute("data-source") !== source;
    });
    document.querySelectorAll("main section").forEach(function (section) {
      section.hidden = !section.querySelector("[data-source]:not([hidden])");
    });
    nav.querySelectorAll("button").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === source));
    });
  }
  nav.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    var source = button.getAttribute("data-filter");
    show(source);
    try { history.replaceState(null, "", source ? "#source=" + encodeURIComponent(source) : "#"); }
    catch (e) { /* file: URLs may refuse; the filter still works */ }
  });
  nav.hidden = false;
  var wanted = /^#source=(.*)$/.exec(location.hash);
  if (wanted) { show(decodeURIComponent(wanted[1])); }
})();
""".strip()


def _document(title: str, body: str) -> str:
    policy = (
        f"default-src 'none'; style-src '{_sha256(CSS)}'; script-src '{_sha256(SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
{body}
<script>{SCRIPT}</script>
</body>
</html>"""


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


# --- Sections --------------------------------------------------------------------------


def _render_header(report: Report, sources: Counter[str]) -> str:
    counts = report.counts
    boxes = "".join(
        f'<div class="count-{name}"><dt>{name}</dt><dd>{value}</dd></div>'
        for name, value in (
            ("changed", counts.changed),
            ("new", counts.new),
            ("removed", counts.removed),
            ("restored", counts.restored),
        )
        if value or name != "restored"
    )
    scope = f"source {report.period.source}" if report.period.source else "all sources"
    return (
        '<header class="page">\n<h1>Article changes</h1>\n'
        f'<p class="period">{escape(_period_text(report))} · {escape(scope)}</p>\n'
        f'<dl class="counts">{boxes}</dl>\n{_render_filter(sources)}\n</header>'
    )


def _render_filter(sources: Counter[str]) -> str:
    if len(sources) < 2:
        return ""
    buttons = ['<button type="button" data-filter="" aria-pressed="true">All sources</button>']
    buttons += [
        f'<button type="button" data-filter="{escape(name)}" aria-pressed="false">'
        f"{escape(name)}<span>{count}</span></button>"
        for name, count in sorted(sources.items())
    ]
    return f'<nav class="filter" aria-label="Filter by source" hidden>{"".join(buttons)}</nav>'


def _render_changed(changed: tuple[ChangedArticle, ...]) -> str:
    if not changed:
        return ""
    cards = "\n".join(_render_card(item) for item in changed)
    return f'<section class="changed">\n<h2>Changed articles</h2>\n{cards}\n</section>'


def _render_card(item: ChangedArticle) -> str:
    diff = diff_texts(item.before.text, item.after.text)
    change_class = classify(diff) if diff.title_changed or diff.body_changed else "none"
    edits = "1 edit" if item.edits == 1 else f"{item.edits} edits"
    source = _source_of(item.source, item.canonical_url)
    meta = (
        f'<span class="badge {change_class}">'
        f"{'no net change' if change_class == 'none' else change_class}</span>"
        f'<span class="source">{escape(source)}</span>'
        f'<time datetime="{escape(item.changed_at)}">{_when(item.changed_at)}</time>'
        f"<span>v{item.before.number} → v{item.after.number} ({edits})</span>"
        f'<span class="words"><span class="plus">+{diff.words_added}</span> '
        f'<span class="minus">−{diff.words_removed}</span> words</span>'
        + ('<span class="status">now removed</span>' if item.status == "removed" else "")
    )
    return (
        f'<article class="change" id="article-{item.article_id}" '
        f'data-source="{escape(source)}">\n'
        f'<div class="meta">{meta}</div>\n'
        f"<h3>{_link(item.canonical_url, diff.new_title or item.after.title)}</h3>\n"
        f'<p class="url">{escape(item.canonical_url)}</p>\n'
        f'<div class="diff">\n{_render_diff(diff, item.after.text)}\n</div>\n</article>'
    )


def _render_diff(diff: Diff, new_text: str) -> str:
    parts = []
    if diff.title_changed:
        parts.append(
            f'<p class="title-change"><span class="label">Title</span> '
            f"{_marked_words(diff.old_title, diff.new_title)}</p>"
        )
    new_body = tuple(normalize_text(new_text).split("\n")[1:])  # as diff_texts splits it
    parts.extend(_render_block(block) for block in diff_blocks(diff, new_body))
    return "\n".join(parts)


def _render_block(block: Block) -> str:
    if block.kind == "same":
        count = len(block.paragraphs)
        label = "1 unchanged paragraph" if count == 1 else f"{count} unchanged paragraphs"
        paragraphs = "".join(f"<p>{escape(text)}</p>" for text in block.paragraphs)
        return f'<details class="same"><summary>{label}</summary>{paragraphs}</details>'
    if block.kind == "added":
        return f'<p class="added"><ins>{escape(block.new)}</ins></p>'
    if block.kind == "removed":
        return f'<p class="removed"><del>{escape(block.old)}</del></p>'
    return f'<p class="modified">{_marked_words(block.old, block.new)}</p>'


def _marked_words(old: str, new: str) -> str:
    tags = {"equal": "{}", "insert": "<ins>{}</ins>", "delete": "<del>{}</del>"}
    return " ".join(tags[op].format(escape(words)) for op, words in word_diff(old, new))


def _render_listed(events: tuple[ListedEvent, ...], kind: str, heading: str) -> str:
    items = [event for event in events if event.kind == kind]
    if not items:
        return ""
    rows = "\n".join(_render_listed_item(event) for event in items)
    return (
        f'<section class="listed {kind}">\n<h2>{heading}</h2>\n'
        f'<ul class="listed">\n{rows}\n</ul>\n</section>'
    )


def _render_listed_item(event: ListedEvent) -> str:
    source = _source_of(event.source, event.canonical_url)
    return (
        f'<li data-source="{escape(source)}">{_link(event.canonical_url, event.title)}'
        f'<div class="meta"><span class="source">{escape(source)}</span>'
        f'<time datetime="{escape(event.at)}">{_when(event.at)}</time>'
        f"<span>{escape(event.summary)}</span></div></li>"
    )


def _render_empty(report: Report) -> str:
    return (
        '<section class="empty-period"><div class="empty"><strong>No changes</strong>'
        f"Nothing new, changed or removed {escape(_period_text(report, prefix=True))}."
        "</div></section>"
    )


# --- Small helpers ---------------------------------------------------------------------


def _link(url: str, title: str | None) -> str:
    text = escape(title or url)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return text
    return f'<a href="{escape(url, quote=True)}" rel="noreferrer noopener">{text}</a>'


def _source_of(source: str | None, url: str) -> str:
    return source or urlsplit(url).hostname or "unknown"


def _when(stamp: str) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return escape(f"{moment.day} {moment:%b %Y, %H:%M}")


def _period_text(report: Report, *, prefix: bool = False) -> str:
    start = _when(report.period.since)
    end = _when(report.period.until or report.generated_at)
    return f"between {start} and {end} UTC" if prefix else f"{start} – {end} UTC"
