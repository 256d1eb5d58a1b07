"""Store at scale: fill a store with synthetic German articles, then time the read side.

Usage::

    .venv/bin/python bench/store.py [--articles 100000] [--store PATH] [--out PATH]

Articles (300–1200 words, Zipf-distributed words from a German vocabulary with compounds,
hyphenated terms, umlauts and ß; fixed seed) arrive over 60 days through the real write
path, :func:`crawler.recording.record_pages`, in batches of :data:`BATCH` pages per
transaction. Half of them get a second version a few hours to days later, with one
paragraph edited. Then, on the store opened read-only as the CLI opens it:

- ``search``: p50/p95 of :func:`~crawler.store.queries.search` over ~200 varied queries;
- ``changes --since 1d``, ``history``, ``export`` (articles/s, latest versions to JSON Lines);
- database size against the raw size of the distinct texts (every version's text);
- 1000 unchanged checks (same text, a churned page): the text stored must not grow;
- ``EXPLAIN QUERY PLAN`` of each query, flagging table scans.

Writes bench/results/store.json and prints the figures against the targets.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from crawler import store
from crawler.changes import Change, compare
from crawler.exporting import write_jsonl
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import EXTRACTOR, identity_url, record_pages, timestamp
from crawler.revisits import next_check, parse_stamp
from crawler.sources import RevisitPolicy
from crawler.store import queries as q
from crawler.textfiles import text_file_name
from crawler.urls import canonicalize_url

ROOT = Path(__file__).resolve().parent
END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAYS = 60
BATCH = 500
TARGETS = {"search_p50_ms": 20, "search_p95_ms": 100, "changes_ms": 50, "size_ratio": 1.5}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FUNCTION_WORDS = _words(
    """
der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an
werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum
war haben nur oder aber vor zur bis mehr durch man sein wurde sei hatte kann gegen vom schon
wenn habe seine ihre dann unter wir soll ich eines diese dieser wieder keine seiner worden
will zwischen immer was sagte gibt alle seit muss doch jetzt drei neue damit bereits da denn
ab weil sowie rund etwa mehrere viele ohne sollen können müssen wollen dort hier heute
gestern morgen zudem jedoch allerdings laut demnach außerdem schließlich
"""
)
STEMS = _words(
    """
bund land stadt regierung polizei gericht wahl partei minister kanzler haushalt energie
strom netz ausbau preis markt bank zins schule kinder familie verkehr bahn auto klima wasser
hochwasser schutz krieg frieden armee sicherheit rat gemeinde bürger meister wirtschaft
unternehmen arbeit lohn steuer geld gesetz entwurf plan bericht studie forschung gesundheit
klinik ärzte pflege rente jugend sport verein spiel saison trainer mannschaft kultur theater
musik film buch zeitung medien daten software handy gas kohle wind sonne wärme pumpe haus
miete wohnung bau genehmigung boden wald bauern milch handel export zoll grenze asyl sprache
bildung hochschule wissen richter urteil strafe unfall feuer wehr rettung dienst brücke
tunnel hafen schiff flug reise hotel stimme umfrage mehrheit koalition fraktion sitzung
debatte antrag beschluss verband streik tarif vertrag gipfel treffen außen innen ausgabe
sorge kritik forderung zukunft lösung frage ergebnis woche monat region kreis bezirk zentrum
küste fluss
"""
)
ENDINGS = ["", "", "", "e", "en", "er", "ung", "ungen", "s", "lich", "ische"]
NAMES = _words(
    """
Scholz Merz Habeck Lindner Baerbock Pistorius Rutte Trump Biden Selenskyj Putin Macron
Berlin München Köln Hamburg Düsseldorf Nürnberg Stuttgart Leipzig Dresden Brüssel Florida
Bundestag Bundesrat Bundesnetzagentur Bundeswehr Straße Fußball Maßnahme Maßnahmen Gruß Spaß
Strauß Großbaustelle Großstadt Außenministerin Gemüse Überschwemmung
Übertragungsnetzbetreiber Verteidigungsausgaben Änderung Öffentlichkeit Ärger
"""
)
HYPHENATED = _words(
    """
Nato-Chef Nato-Gipfel SPD-Fraktion CDU-Vorsitzende CSU-Chef Grünen-Politiker EU-Kommission
EU-Parlament US-Präsident US-Wahl Ukraine-Krieg Corona-Pandemie E-Auto E-Mail Bahn-Streik
Klima-Aktivisten Heizungs-Gesetz Bürgergeld-Reform Ampel-Koalition Nahost-Konflikt Gaza-
Streifen G7-Gipfel Covid-19 Hartz-IV
"""
)
SOURCES = ("dwn", "faz", "spiegel", "zeit", "sueddeutsche", "tagesschau", "heise", "regional")
SECTIONS = ("politik", "wirtschaft", "kultur", "sport", "wissen", "panorama", "digital")


@dataclass(frozen=True)
class Vocabulary:
    """Words with Zipf weights (as cumulative weights for :meth:`random.Random.choices`)."""

    words: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def build(cls, rng: random.Random, size: int = 40_000) -> Vocabulary:
        """Function words first (most frequent), then names, stems and compounds shuffled."""
        content: set[str] = set(NAMES) | set(HYPHENATED)
        while len(content) < size:
            parts = rng.choice((1, 1, 1, 2, 2, 3))
            word = "".join(rng.choice(STEMS) for _ in range(parts)) + rng.choice(ENDINGS)
            content.add(word.capitalize() if rng.random() < 0.6 else word)
        tail = sorted(content)
        rng.shuffle(tail)
        words = tuple(FUNCTION_WORDS) + tuple(tail)
        weights = (1 / (rank + 10) ** 1.07 for rank in range(len(words)))
        return cls(words, tuple(itertools.accumulate(weights)))

    def sample(self, rng: random.Random, count: int) -> list[str]:
        """``count`` words drawn by frequency."""
        return rng.choices(self.words, cum_weights=self.cumulative, k=count)


def paragraphs(vocab: Vocabulary, rng: random.Random, words: int) -> list[str]:
    """Body paragraphs of about ``words`` words: sentences of 6–24 words, 2–6 a paragraph."""
    pool = vocab.sample(rng, words)
    out, sentences, start = [], [], 0
    while start < len(pool):
        length = rng.randint(6, 24)
        sentence = pool[start : start + length]
        start += length
        sentences.append(sentence[0][:1].upper() + sentence[0][1:] + " " + " ".join(sentence[1:]))
        if len(sentences) >= rng.randint(2, 6) or start >= len(pool):
            out.append(". ".join(s.strip() for s in sentences) + ".")
            sentences = []
    return out


def make_article(vocab: Vocabulary, rng: random.Random, number: int) -> Article:
    """Article ``number``: a title of 4–10 words and a body of 300–1200 words."""
    source, section = SOURCES[number % len(SOURCES)], rng.choice(SECTIONS)
    url = f"https://www.{source}.example/{section}/artikel-{number}"
    title = " ".join(vocab.sample(rng, rng.randint(4, 10)))
    body = "\n".join(paragraphs(vocab, rng, rng.randint(300, 1200)))
    return Article(
        url=url,
        canonical_url=url,
        title=title,
        body=body,
        site_name=source,
        language="de",
        date=None,
    )


def edit_article(vocab: Vocabulary, rng: random.Random, article: Article) -> Article:
    """The same article with one paragraph edited: a few words replaced, maybe a sentence."""
    lines = article.body.split("\n")
    index = rng.randrange(len(lines))
    words = lines[index].split()
    for _ in range(rng.randint(1, 4)):
        words[rng.randrange(len(words))] = vocab.sample(rng, 1)[0]
    if rng.random() < 0.4:
        words += [*vocab.sample(rng, rng.randint(6, 16)), "ergänzt."]
    lines[index] = " ".join(words)
    return Article(**{**article.__dict__, "body": "\n".join(lines)})


def page(article: Article, number: int, body: bytes | None = None) -> CrawledPage:
    """A successful download of ``article`` from its source."""
    assert article.url is not None
    raw = body or f"<html><!-- {number} --></html>".encode()
    fetch = FetchResult(
        url=article.url,
        final_url=article.url,
        status=200,
        body=raw,
        content_type="text/html; charset=utf-8",
        source=article.site_name,
    )
    return CrawledPage(fetch=fetch, article=article)


@dataclass(frozen=True)
class Planned:
    """A page to record at ``at``, with the change the recording will find (pure, computed
    in a worker process so the writer only writes)."""

    at: datetime
    number: int
    page: CrawledPage
    change: Change


@functools.lru_cache(maxsize=1)
def vocabulary(seed: int) -> Vocabulary:
    """The seed's vocabulary, built once per process."""
    return Vocabulary.build(random.Random(seed))


def plan_batch(job: tuple[int, int, int, int, datetime]) -> list[Planned]:
    """New articles ``start`` to ``stop`` at ``at``, and for half of them an edit 1 h to 5 days
    later; deterministic per batch, whichever process runs it."""
    seed, index, start, stop, at = job
    vocab, rng = vocabulary(seed), random.Random(seed * 1_000_003 + index)
    planned = []
    for number in range(start, stop):
        article = make_article(vocab, rng, number)
        planned.append(Planned(at, number, page(article, number), compare(None, article.text)))
        if rng.random() < 0.5:
            edited = edit_article(vocab, rng, article)
            when = min(at + timedelta(hours=rng.uniform(1, 24 * 5)), END)
            change = compare(article.text, edited.text)
            planned.append(Planned(when, number, page(edited, number + 10**9), change))
    return planned


Loader = Callable[[sqlite_utils.Database, list[Planned], Path, datetime], None]


def load_real(
    db: sqlite_utils.Database, batch: list[Planned], text_dir: Path, at: datetime
) -> None:
    """The crawler's own write path: :func:`record_pages`, text files included."""
    record_pages(db, [p.page for p in batch], text_dir=text_dir, now=at)


class BulkLoader:
    """What :func:`record_pages` writes for new and changed articles, through the store's
    own write functions (:func:`~crawler.store.insert_version` and friends, so paragraph
    storage and the FTS trigger run as in a crawl), one write transaction per batch, with the
    change computed beforehand in the planning workers. Skips the text files, whose fsyncs
    were 62 % of :func:`record_pages`' time here (cProfile) and are not what this measures.
    :func:`check_bulk_loader` proves the rows identical to :func:`record_pages`' rows."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[int, str]] = {}  # canonical URL: article id, first seen

    def __call__(
        self, db: sqlite_utils.Database, batch: list[Planned], text_dir: Path, at: datetime
    ) -> None:
        stamp = timestamp(at)
        with store.write_transaction(db):
            for item in batch:
                self._add(db, item, stamp)

    def _add(self, db: sqlite_utils.Database, item: Planned, at: str) -> None:
        article, fetch, change = item.page.article, item.page.fetch, item.change
        assert article is not None
        canonical = identity_url(article, fetch.final_url)
        state = {
            "etag": fetch.etag,
            "last_modified": fetch.last_modified,
            "body_hash": fetch.body_hash,
            "gone_since": None,
        }
        if change.kind == "new":
            article_id = store.insert_article(
                db,
                url=fetch.final_url,
                canonical_url=canonical,
                source=fetch.source,
                status="live",
                first_seen=at,
                last_checked=at,
                last_changed=at,
                fingerprint=change.fingerprint,
                version_count=1,
                text_file="",
                **state,
            )
            store.update_article(db, article_id, text_file=text_file_name(article_id, canonical))
            self.known[canonical] = (article_id, at)
            version_id = store.insert_version(db, **_version_fields(article_id, 1, item, at))
            store.insert_event(db, article_id, "new", at, change.summary, version_id)
        else:
            article_id, _ = self.known[canonical]
            version_id = store.insert_version(db, **_version_fields(article_id, 2, item, at))
            kind = "title_changed" if change.change_class == "title" else "changed"
            store.insert_event(db, article_id, kind, at, change.summary, version_id)
            store.update_article(
                db,
                article_id,
                status="live",
                last_checked=at,
                last_changed=at,
                fingerprint=change.fingerprint,
                version_count=2,
                **state,
            )
        urls = (fetch.url, fetch.final_url, article.url or fetch.url)
        store.add_article_urls(db, article_id, tuple(canonicalize_url(u) for u in urls))
        store.insert_fetch(
            db,
            url=fetch.final_url,
            article_id=article_id,
            at=at,
            http_status=fetch.status,
            bytes=len(fetch.body),
            elapsed_ms=round(fetch.elapsed * 1000),
            outcome=change.kind,
            reason=None,
            source=fetch.source,
        )
        store.update_article(db, article_id, **_next_check(self.known[canonical][1], at))


def _next_check(first_seen: str, at: str) -> dict[str, Any]:
    moment = parse_stamp(at)
    check = next_check(
        first_seen=parse_stamp(first_seen),
        last_checked=moment,
        last_changed=moment,
        status="live",
        policy=RevisitPolicy(),
    )
    return {
        "next_check_at": timestamp(check.at) if check.at else None,
        "next_check_reason": check.reason,
    }


def _version_fields(article_id: int, number: int, item: Planned, at: str) -> dict[str, Any]:
    article, fetch, change = item.page.article, item.page.fetch, item.change
    assert article is not None
    diff = change.diff
    counts = (
        "paragraphs_added",
        "paragraphs_removed",
        "paragraphs_modified",
        "words_added",
        "words_removed",
    )
    return {
        "article_id": article_id,
        "number": number,
        "fetched_at": at,
        "url": fetch.final_url,
        "title": article.title,
        "author": article.author,
        "published": article.date,
        "site_name": article.site_name,
        "language": article.language,
        "description": article.description,
        "tags": article.tags,
        "categories": article.categories,
        "text": article.text,
        "words": len(article.body.split()),
        "fingerprint": change.fingerprint,
        "change_class": change.change_class,
        **{name: getattr(diff, name) if diff else 0 for name in counts},
        "diff": diff.as_dict() if diff else None,
        "extractor": EXTRACTOR,
    }


def check_bulk_loader(workdir: Path, seed: int, count: int = 1200) -> dict[str, Any]:
    """Fill two stores with the same pages, one through :func:`record_pages`, one through
    :class:`BulkLoader`, and compare every row of every table. Raises if any differs."""
    paths = {"real": workdir / "real" / "crawl.db", "bulk": workdir / "bulk" / "crawl.db"}
    for name, loader in (("real", load_real), ("bulk", BulkLoader())):
        db = store.open_store(paths[name])
        fill_store(db, paths[name].parent / "articles", count, seed, loader)
        db.conn.close()
    tables = ("articles", "article_urls", "versions", "version_rows", "paragraphs", "events")
    tables += ("fetches",)
    dumps = {}
    for name, path in paths.items():
        db = store.open_store_readonly(path)
        dumps[name] = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
        hits = db.execute("SELECT rowid FROM versions_fts WHERE versions_fts MATCH 'nato'")
        dumps[name]["fts"] = hits.fetchall()
        db.conn.close()
    for table in dumps["real"]:
        if dumps["real"][table] != dumps["bulk"][table]:
            raise AssertionError(f"the bulk loader writes other {table} rows than record_pages")
    return {"pages": sum(len(rows) for rows in dumps["real"].values()), "identical": True}


def fill_store(
    db: sqlite_utils.Database, text_dir: Path, count: int, seed: int, load: Loader
) -> dict[str, Any]:
    """Record ``count`` new articles over :data:`DAYS` days, half edited once; return figures."""
    start = END - timedelta(days=DAYS)
    batches = max(count // BATCH, 1)
    jobs = [
        (
            seed,
            i,
            i * BATCH,
            min((i + 1) * BATCH, count),
            start + timedelta(days=DAYS) * i / batches,
        )
        for i in range(-(-count // BATCH))
    ]
    pending: list[tuple[datetime, int, Planned]] = []  # edits waiting for their time
    began, pages = time.perf_counter(), 0
    with multiprocessing.Pool(min(os.cpu_count() or 1, 4)) as pool:
        for job, planned in zip(jobs, pool.imap(plan_batch, jobs), strict=True):
            at = job[4]
            due = []
            while pending and pending[0][0] <= at:
                due.append(heapq.heappop(pending)[2])
            for item in planned:
                if item.change.kind == "changed":
                    heapq.heappush(pending, (item.at, item.number, item))
            batch = due + [item for item in planned if item.change.kind == "new"]
            load(db, batch, text_dir, at)
            pages += len(batch)
            _progress(f"recorded {pages} pages ({job[3]} articles)", began)
    rest = [heapq.heappop(pending)[2] for _ in range(len(pending))]
    for index in range(0, len(rest), BATCH):
        chunk = rest[index : index + BATCH]
        load(db, chunk, text_dir, chunk[-1].at)
        pages += len(chunk)
    seconds = time.perf_counter() - began
    print(file=sys.stderr)
    return {
        "articles": count,
        "pages": pages,
        "seconds": round(seconds, 1),
        "pages_per_second": round(pages / seconds, 1),
    }


def _progress(message: str, began: float) -> None:
    print(f"\r{message} in {time.perf_counter() - began:.0f} s", end="", file=sys.stderr)


# --- Measurements ----------------------------------------------------------------------


def timed(call: Callable[[], Any], repeat: int = 1) -> list[float]:
    """Milliseconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def percentiles(times: list[float]) -> dict[str, float]:
    """p50, p95 and max of a list of milliseconds."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


QUERY_KINDS = (
    "word",
    "longest word",
    "two words",
    "phrase",
    "prefix",
    "hyphenated",
    "umlaut as plain vowel",
    "ss for ß",
    "OR",
    "title:",
)


def search_queries(
    db: sqlite_utils.Database, rng: random.Random, count: int
) -> list[tuple[str, str]]:
    """Varied queries drawn from stored titles and texts, as (kind, query): words (frequent
    and rare), pairs, phrases, prefixes, hyphenated terms, umlauts written without dots,
    ß as ss, OR, a title column filter."""
    top = db.execute("SELECT max(id) FROM versions").fetchone()[0]
    texts = [
        db.execute("SELECT text FROM versions WHERE id = ?", [rng.randint(1, top)]).fetchone()[0]
        for _ in range(count)
    ]
    makers: list[Callable[[list[str]], str]] = [
        lambda w: rng.choice(w),
        lambda w: max(w, key=len),
        lambda w: " ".join(rng.sample(w, 2)),
        lambda w: '"' + " ".join(w[(i := rng.randrange(len(w) - 2)) : i + 2]) + '"',
        lambda w: max(w, key=len)[:6] + "*",
        lambda w: rng.choice(HYPHENATED),
        lambda w: rng.choice(NAMES).replace("ü", "u").replace("ö", "o").replace("ä", "a"),
        lambda w: rng.choice([n for n in NAMES if "ß" in n]).replace("ß", "ss"),
        lambda w: f"{rng.choice(w)} OR {rng.choice(HYPHENATED)}",
        lambda w: f"title:{rng.choice(w)}",
    ]
    queries = []
    for index, text in enumerate(texts):
        words = [w.strip(".,") for w in text.split() if len(w.strip(".,")) > 3]
        kind = index % len(makers)
        queries.append((QUERY_KINDS[kind], makers[kind](words)))
    return queries


def measure_search(db: sqlite_utils.Database, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """Latency of the search the CLI runs (latest versions, 20 hits with snippets), overall
    and per kind of query, with the slowest queries."""
    for _, query in queries[:10]:
        q.search(db, query)  # warm the page cache as a running system would have it
    times, empty, by_kind = [], 0, {}
    for kind, query in queries:
        began = time.perf_counter()
        hits = q.search(db, query, limit=20)
        elapsed = (time.perf_counter() - began) * 1000
        times.append(elapsed)
        by_kind.setdefault(kind, []).append((elapsed, query))
        empty += not hits
    history = timed(lambda: q.search(db, queries[0][1], all_versions=True), 5)
    slowest = sorted(((t, query) for t, (_, query) in zip(times, queries, strict=True)))[-5:]
    return {
        **percentiles(times),
        "queries_without_hits": empty,
        "all_versions_p50_ms": round(statistics.median(history), 2),
        "by_kind": {
            kind: {k: v for k, v in percentiles([t for t, _ in found]).items() if k != "max_ms"}
            for kind, found in by_kind.items()
        },
        "slowest": [[round(t, 1), query] for t, query in reversed(slowest)],
        "examples": [query for _, query in queries[:12]],
    }


def measure_reads(db: sqlite_utils.Database, rng: random.Random, out_dir: Path) -> dict[str, Any]:
    """``changes --since 1d``, ``history``, ``articles`` and ``export`` on the read-only store."""
    day = q.Filters(since=q.parse_time("1d", END))
    changes = timed(lambda: q.list_changes(db, day, limit=50), 20)
    changed_only = timed(lambda: q.list_changes(db, day, kinds=("changed",), limit=50), 20)
    count = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    ids = [rng.randint(1, count) for _ in range(200)]
    history = [timed(lambda i=i: q.article_history(db, i))[0] for i in ids]
    articles = timed(lambda: q.list_articles(db, limit=100), 20)
    began = time.perf_counter()
    with (out_dir / "export.jsonl").open("w", encoding="utf-8") as stream:
        exported = write_jsonl(q.iter_export(db), stream)
    seconds = time.perf_counter() - began
    size = (out_dir / "export.jsonl").stat().st_size
    (out_dir / "export.jsonl").unlink()
    return {
        "changes_since_1d_ms": round(statistics.median(changes), 2),
        "changes_since_1d_events": len(q.list_changes(db, day, limit=1_000_000)),
        "changes_since_1d_kind_changed_ms": round(statistics.median(changed_only), 2),
        "history": percentiles(history),
        "articles_ms": round(statistics.median(articles), 2),
        "export": {
            "articles": exported,
            "seconds": round(seconds, 2),
            "articles_per_second": round(exported / seconds),
            "mb_per_second": round(size / seconds / 1e6, 1),
        },
    }


def measure_size(path: Path) -> dict[str, Any]:
    """Database size (after a checkpoint) against the raw UTF-8 size of the distinct texts."""
    db = store.open_store(path, create=False)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = db.execute("SELECT sum(length(CAST(text AS BLOB))) FROM versions").fetchone()[0]
    distinct = db.execute("SELECT count(DISTINCT fingerprint) FROM versions").fetchone()[0]
    versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
    try:
        parts = dict(
            db.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        )
    except Exception:  # noqa: BLE001 - dbstat is an optional SQLite feature
        parts = {}
    db.conn.close()
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return {
        "db_bytes": size,
        "raw_text_bytes": raw,
        "ratio": round(size / raw, 3),
        "versions": versions,
        "distinct_texts": distinct,
        "parts_mb": {k: round(v / 1e6, 1) for k, v in parts.items() if v >= 50_000},
        "parts_ratio": {k: round(v / raw, 3) for k, v in parts.items() if v >= 0.005 * raw},
    }


def unchanged_checks(path: Path, text_dir: Path, checks: int, seed: int) -> dict[str, Any]:
    """Re-record ``checks`` stored articles with the same text and a churned page body."""
    db = store.open_store(path, create=False)
    rng = random.Random(seed + 1)

    def text_bytes() -> int:
        # The text the store keeps: every distinct line of every article, stored once.
        row = db.execute("SELECT sum(length(CAST(text AS BLOB))) FROM paragraphs").fetchone()
        return int(row[0])

    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = (text_bytes(), store.count_rows(db, "versions"), path.stat().st_size)
    top = store.count_rows(db, "articles")
    at = END + timedelta(hours=1)
    outcomes: list[str] = []
    for start in range(0, checks, 100):
        pages = []
        for number in range(start, min(start + 100, checks)):
            row = db.execute(
                "SELECT v.url, v.title, v.text, a.source FROM versions v JOIN articles a "
                "ON a.id = v.article_id WHERE a.id = ? ORDER BY v.number DESC LIMIT 1",
                [rng.randint(1, top)],
            ).fetchone()
            body = row[2].split("\n", 1)[1]
            article = Article(
                url=row[0],
                canonical_url=row[0],
                title=row[1],
                body=body,
                site_name=row[3],
                language="de",
            )
            pages.append(page(article, number, f"<html>churn {number}</html>".encode()))
        outcomes += [r.kind for r in record_pages(db, pages, text_dir=text_dir, now=at)]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = (text_bytes(), store.count_rows(db, "versions"), path.stat().st_size)
    db.conn.close()
    return {
        "checks": checks,
        "outcomes": {k: outcomes.count(k) for k in set(outcomes)},
        "text_bytes_added": after[0] - before[0],
        "versions_added": after[1] - before[1],
        "db_bytes_added": after[2] - before[2],
    }


PLANS = {
    "search": (
        "SELECT f.rowid, bm25(versions_fts, 10.0, 1.0) AS score FROM versions_fts f "
        "JOIN versions v ON v.id = f.rowid JOIN articles a ON a.id = v.article_id "
        "WHERE versions_fts MATCH 'nato' AND v.number = a.version_count ORDER BY score LIMIT 20"
    ),
    "changes": (
        "SELECT e.id FROM events e JOIN articles a ON a.id = e.article_id "
        "LEFT JOIN versions v ON v.id = e.version_id WHERE e.at >= '2026-11-23' "
        "ORDER BY e.at DESC, e.id DESC LIMIT 50"
    ),
    "changes_kind": (
        "SELECT e.id FROM events e JOIN articles a ON a.id = e.article_id "
        "WHERE e.kind IN ('removed') ORDER BY e.at DESC, e.id DESC LIMIT 50"
    ),
    "articles": (
        "SELECT a.id, v.title FROM events e JOIN articles a ON a.id = e.article_id "
        "LEFT JOIN versions v ON v.article_id = a.id AND v.number = a.version_count "
        "WHERE e.at = a.last_changed ORDER BY e.at DESC, e.id DESC"
    ),
    "history": "SELECT number FROM versions WHERE article_id = 5 ORDER BY number",
    "export": (
        "SELECT v.text FROM articles a JOIN versions v ON v.article_id = a.id "
        "WHERE v.number = a.version_count ORDER BY a.id, v.number"
    ),
}


def query_plans(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """``EXPLAIN QUERY PLAN`` of the read queries, one line per step."""
    return {
        name: [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
        for name, sql in PLANS.items()
    }


def scans(plans: dict[str, list[str]]) -> dict[str, list[str]]:
    """Steps that read a whole table (``SCAN x`` without an index), by query; not the
    rebuilding of one version's text from its paragraph ids (``SCAN j VIRTUAL TABLE`` over
    its JSON list, ``SCAN (subquery-N)`` over its lines)."""
    found = {
        name: [
            s
            for s in steps
            if s.startswith("SCAN") and "INDEX" not in s and not s.startswith("SCAN (subquery-")
        ]
        for name, steps in plans.items()
    }
    return {name: steps for name, steps in found.items() if steps}


# --- Main ------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Build the store (unless it exists), measure everything, return the results."""
    path = args.store or workdir / "crawl.db"
    text_dir = path.parent / "articles"
    build: dict[str, Any] = {"reused": True}
    if not path.exists():
        loader: Loader = load_real
        if args.loader == "bulk":
            build["bulk_equals_record_pages"] = check_bulk_loader(workdir / "check", args.seed)
            loader = BulkLoader()
        build = {
            **build,
            **fill_store(store.open_store(path), text_dir, args.articles, args.seed, loader),
            "loader": args.loader,
            "reused": False,
        }
    size = measure_size(path)
    db = store.open_store_readonly(path)
    rng = random.Random(args.seed + 2)
    results = {
        "build": build,
        "size": size,
        "search": measure_search(db, search_queries(db, rng, args.queries)),
        **measure_reads(db, rng, workdir),
    }
    results["plans"] = query_plans(db)
    results["scans"] = scans(results["plans"])
    db.conn.close()
    results["unchanged_checks"] = unchanged_checks(path, text_dir, args.checks, args.seed)
    return results


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    """Each target met or not."""
    return {
        "search_p50_ms": results["search"]["p50_ms"] < TARGETS["search_p50_ms"],
        "search_p95_ms": results["search"]["p95_ms"] < TARGETS["search_p95_ms"],
        "changes_ms": results["changes_since_1d_ms"] < TARGETS["changes_ms"],
        "size_ratio": results["size"]["ratio"] <= TARGETS["size_ratio"],
        "unchanged_checks_add_no_text": results["unchanged_checks"]["text_bytes_added"] == 0
        and results["unchanged_checks"]["versions_added"] == 0,
    }


def report(results: dict[str, Any]) -> Iterator[str]:
    """Lines of the summary printed at the end."""
    s, r, u = results["search"], results, results["unchanged_checks"]
    size = r["size"]
    yield f"articles {r['build'].get('articles', '?')}, versions {size['versions']}"
    yield f"search p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms (targets < 20 / < 100 ms)"
    for kind, figures in s["by_kind"].items():
        yield f"  {kind}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms"
    yield f"  slowest: {s['slowest']}"
    yield f"changes --since 1d {r['changes_since_1d_ms']} ms (target < 50 ms)"
    yield f"history p50 {r['history']['p50_ms']} ms, p95 {r['history']['p95_ms']} ms"
    yield f"export {r['export']['articles_per_second']} articles/s"
    yield (
        f"database {size['db_bytes'] / 1e6:.0f} MB for {size['raw_text_bytes'] / 1e6:.0f} MB "
        f"of distinct text: {size['ratio']}x (target <= 1.5x)"
    )
    yield (
        f"{u['checks']} unchanged checks added {u['text_bytes_added']} bytes of text, "
        f"{u['versions_added']} versions ({u['db_bytes_added']} bytes of database)"
    )
    yield f"table scans in query plans: {r['scans'] or 'none'}"
    yield f"targets: {r['verdicts']}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000, help="articles to create")
    parser.add_argument("--queries", type=int, default=200, help="search queries to time")
    parser.add_argument("--checks", type=int, default=1000, help="unchanged checks to record")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument(
        "--loader",
        choices=("bulk", "real"),
        default="bulk",
        help="bulk inserts (checked equal to record_pages) or record_pages",
    )
    parser.add_argument("--store", type=Path, default=None, help="reuse or keep this store")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "store.json")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as workdir:
        results = run(args, Path(workdir))
    results["verdicts"] = verdicts(results)
    results["meta"] = {
        "command": "python bench/store.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {store.sqlite3.sqlite_version}",
        "seconds": round(time.perf_counter() - began, 1),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in report(results):
        print(line)
    return 0 if all(results["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
