"""D5: several processes recording into one store at once.

Writers take the write lock up front (``BEGIN IMMEDIATE``) and wait on the busy timeout,
so no "database is locked" escapes, and a version is decided inside the transaction that
writes it, so two processes recording the same text make one version, not two.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import proc
import pytest
from dbcheck import assert_db_healthy
from relsite import publish_articles, write_feed_sources

WRITER = Path(__file__).resolve().parent / "store_writer.py"
PROCESSES = 4


def _versions_by_article(store: Path) -> dict[int, list[str]]:
    with sqlite3.connect(store) as conn:
        found: dict[int, list[str]] = {}
        for article_id, fingerprint in conn.execute(
            "SELECT article_id, fingerprint FROM versions ORDER BY article_id, number"
        ):
            found.setdefault(article_id, []).append(fingerprint)
    return found


def test_four_writers_at_once_lose_nothing_and_never_fail_on_the_lock(store, tmp_path):
    rounds, articles, batch = 4, 40, 8
    writers = [
        proc.start(
            proc.python(
                WRITER,
                store,
                tmp_path / f"progress-{n}",
                "--articles",
                str(articles),
                "--rounds",
                str(rounds),
                "--batch",
                str(batch),
                "--seed",
                str(n),
            ),
            tmp_path / "home",
        )
        for n in range(PROCESSES)
    ]
    results = [writer.finish(timeout=300) for writer in writers]
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
        assert "locked" not in result.stderr and "Traceback" not in result.stderr

    kinds: Counter[str] = Counter()
    for n in range(PROCESSES):
        lines = (tmp_path / f"progress-{n}").read_text().splitlines()
        assert lines[0] == "ready"
        assert len(lines) == 1 + rounds * (articles // batch)  # every batch committed
        for line in lines[1:]:
            kinds.update(line.split()[2:])
    assert set(kinds) <= {"new", "changed", "unchanged"}

    health = assert_db_healthy(store)
    assert health.articles == articles and kinds["new"] == articles
    # Every version a writer was told it committed is in the store, and no other.
    assert health.versions == kinds["new"] + kinds["changed"]
    for fingerprints in _versions_by_article(store).values():
        # A race on the same text never makes two versions in a row of it.
        assert all(a != b for a, b in zip(fingerprints, fingerprints[1:], strict=False))
    with sqlite3.connect(store) as conn:
        unique = [
            [column[2] for column in conn.execute(f"PRAGMA index_info('{name}')")]
            for _, name, is_unique, *_ in conn.execute("PRAGMA index_list('version_rows')")
            if is_unique
        ]
    assert [
        "article_id",
        "number",
    ] in unique  # enforced by the schema (versions is a view over version_rows), not by luck


@pytest.mark.slow
def test_four_crawls_of_overlapping_sources_at_once(store, tmp_path, newsroom):
    publish_articles(newsroom, 24)
    sources = tmp_path / "sources.toml"
    tables = []
    for n in range(PROCESSES):
        one = write_feed_sources(tmp_path / f"one-{n}.toml", newsroom, name=f"feed{n}")
        tables.append(one.read_text())
    sources.write_text("".join(tables), encoding="utf-8")
    crawls = [
        proc.start(
            proc.crawler("crawl", f"feed{n}", "--sources", sources, "--json", store=store),
            tmp_path / "home",
        )
        for n in range(PROCESSES)
    ]
    results = [crawl.finish(timeout=300) for crawl in crawls]
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
        assert "locked" not in result.stderr
    health = assert_db_healthy(store)
    assert health.articles == 24 and health.versions == 24  # one article each, once
    with sqlite3.connect(store) as conn:
        runs = conn.execute("SELECT source, outcome FROM runs ORDER BY source").fetchall()
    assert runs == [(f"feed{n}", "ok") for n in range(PROCESSES)], (
        runs,
        [r.stderr[-3000:] for r in results],
    )
