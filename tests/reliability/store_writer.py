"""A writer process for the store fault tests: records batches of article versions through
the crawler's real recording path (``crawler.recording.record_pages``), forever or for a
number of rounds, and appends one line per committed batch to a progress file.

    python store_writer.py STORE PROGRESS --articles 30 --rounds 3 --batch 10 --seed 1

Round r writes, for every article (in an order shuffled by the seed), the text of round r
(the same text whatever process writes it), so concurrent writers race on identical and
different content. A progress line is ``<round> <batch> <kinds…>``, written after the
commit; "ready" is written once the store is open (after recovery). Logs of the store's
recovery go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from crawler import store
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import record_pages

PARAGRAPHS = [
    "Der Stadtrat hat am Dienstagabend nach langer Debatte den Doppelhaushalt beschlossen.",
    "Die Opposition kritisierte vor allem die geplanten Kürzungen bei den Bibliotheken.",
    "Im kommenden Jahr sollen zudem mehrere Schulen saniert und neue Radwege gebaut werden.",
    "Der Kämmerer verwies auf steigende Zinsen und die unsichere Lage der Gewerbesteuer.",
]


def page(article: int, round_number: int) -> CrawledPage:
    url = f"https://writer.example/artikel/{article:04d}"
    body = "\n".join([*PARAGRAPHS, f"Meldung {article} in der Fassung von Runde {round_number}."])
    item = Article(url=url, canonical_url=url, title=f"Haushalt {article}", body=body)
    fetch = FetchResult(url=url, final_url=url, status=200, body=body.encode(), source="writer")
    return CrawledPage(fetch=fetch, article=item)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("progress", type=Path)
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=0, help="0: until killed")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    shuffle = random.Random(args.seed)
    db = store.open_store(args.store)
    text_dir = args.store.parent / "articles"
    with open(args.progress, "a", encoding="utf-8") as progress:
        progress.write("ready\n")
        progress.flush()
        round_number = 0
        while args.rounds == 0 or round_number < args.rounds:
            order = list(range(args.articles))
            shuffle.shuffle(order)
            for start in range(0, len(order), args.batch):
                pages = [page(number, round_number) for number in order[start : start + args.batch]]
                results = record_pages(db, pages, text_dir=text_dir, now=datetime.now(UTC))
                kinds = " ".join(result.kind for result in results)
                progress.write(f"{round_number} {start // args.batch} {kinds}\n")
                progress.flush()
            round_number += 1
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
