"""What ``PRAGMA quick_check`` costs a writer on its first open of a store (issue 7, D6).

Usage::

    .venv/bin/python bench/quick_check.py [--mb 100]

Builds a store of about ``--mb`` MB in a temporary folder through the store's own schema
(articles with versions of ~4 KB text, indexed and in the full-text index), then times
``open_store`` with and without ``check=True`` (5 runs each, the page cache warm, as on a
machine that crawls on a schedule) and prints the medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from crawler import store

PARAGRAPH = (
    "Der Stadtrat hat am Dienstagabend nach langer Debatte den Doppelhaushalt beschlossen; "
    "die Opposition kritisierte vor allem die geplanten Kürzungen bei den Bibliotheken. "
)


def build(path: Path, megabytes: int) -> None:
    db = store.open_store(path)
    text = PARAGRAPH * 20
    number = 0
    while path.stat().st_size < megabytes * 2**20:
        with store.write_transaction(db):
            for _ in range(500):
                number += 1
                url = f"https://bench.example/artikel/{number}"
                article = store.insert_article(
                    db,
                    url=url,
                    canonical_url=url,
                    status="live",
                    first_seen="t",
                    last_checked="t",
                    last_changed="t",
                    fingerprint=str(number),
                    version_count=1,
                    text_file=f"{number:03d}_x.txt",
                )
                store.insert_version(
                    db,
                    article_id=article,
                    number=1,
                    fetched_at="t",
                    url=url,
                    title=f"Haushalt {number}",
                    text=f"{text} {number}",
                    words=600,
                    fingerprint=str(number),
                )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def timed(path: Path, check: bool) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        store.open_store(path, check=check).close()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crawl.db"
        build(path, args.mb)
        size = path.stat().st_size / 2**20
        plain, checked = timed(path, False), timed(path, True)
        print(
            f"store {size:.0f} MB: open {plain * 1000:.0f} ms, "
            f"open with quick_check {checked * 1000:.0f} ms "
            f"(+{(checked - plain) * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
