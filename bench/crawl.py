"""Crawl speed (issue 4): ``crawler crawl`` against a 2000-page news site on nginx.

Usage::

    .venv/bin/python bench/crawl.py [--pages 2000] [--rounds 3] [--concurrency 16]
    .venv/bin/python bench/crawl.py --pages 200 --rounds 1      # a quick try

Method. ``bench/crawl_site.py`` builds a site in a temporary folder from the fixture
pages and the extraction devset (each copy unique: its own canonical URL and a unique
sentence in the article body), with section pages, an RSS feed and a sitemap index of
plain and gzip'd children, served by nginx on 127.0.0.1 (ETag and Last-Modified on).
Then, in every round, in an order rotated from round to round (the machine is shared):

- ``ceiling``: a Scrapy spider that only counts the responses of the article URLs;
- ``bare``: ``trafilatura.extract`` over the page files, in this process; also the
  crawler's own ``extract`` on every 8th page (it does more than bare trafilatura);
- ``naive``: a Scrapy spider calling trafilatura in its callback, one SQLite commit per page;
- ``crawl``: ``crawler crawl`` on a ``sitemap`` source: a first pass into a fresh store,
  a second with nothing changed (304s), then a third after 10 % of the pages changed on
  disk: half only in the template (related list, ad slot, render timestamp), half with
  the article's sentence edited. The store must then hold ``changed`` events for exactly
  the body-edited pages.

Subprocesses are timed wall-clock from start to exit (imports included) while a thread
polls the RSS and PSS of their whole process tree (extraction workers included) every
0.1 s. Figures are medians over the rounds; ratios compare medians of the same run.
Writes ``bench/results/crawl.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawl_site import (
    BASE_MTIME,
    CONTENT_TYPE,
    Site,
    load_templates,
    nginx,
    sources_toml,
    stop_on_sigterm,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CRAWLER = str(Path(sys.executable).parent / "crawler")
SPIDERS = str(Path(__file__).resolve().parent / "crawl_spiders.py")
RESULTS = ROOT / "bench" / "results" / "crawl.json"
STEPS = ("ceiling", "bare", "naive", "crawl")
TARGETS = {
    "first_vs_naive": 2.0,
    "first_vs_bare": 1.5,
    "unchanged_speedup": 10.0,
    "peak_mb": 500.0,
}


# --- measuring subprocesses -----------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB, zeros when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            fields = dict(line.split()[:2] for line in rollup if line.startswith(("Rss:", "Pss:")))
        return int(fields.get("Rss:", 0)), int(fields.get("Pss:", 0))
    except (OSError, ValueError):
        return 0, 0


def tree_memory_mb(root: int) -> tuple[float, float]:
    """Summed RSS and PSS of ``root`` and all its descendants, in MB."""
    tree = _children()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(tree.get(pid, []))
    rss = pss = 0
    for pid in pids:
        one_rss, one_pss = _memory_kb(pid)
        rss, pss = rss + one_rss, pss + one_pss
    return rss / 1024, pss / 1024


def run_measured(
    command: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> dict[str, Any]:
    """Run ``command``; return its wall time, peak tree RSS/PSS and stdout. An exit code
    outside ``ok_codes`` or a traceback on stderr raises."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0, 0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            rss, pss = tree_memory_mb(process.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stdout, stderr = process.communicate()
    wall = time.monotonic() - started
    done.set()
    poller.join()
    if process.returncode not in ok_codes or "Traceback" in stderr:
        raise RuntimeError(f"{command[:3]} exited {process.returncode}:\n{stderr[-3000:]}")
    return {
        "wall": wall,
        "peak_rss_mb": round(peak[0], 1),
        "peak_pss_mb": round(peak[1], 1),
        "stdout": stdout,
        "load": os.getloadavg()[0],
    }


# --- the steps ------------------------------------------------------------------------


class Bench:
    """One benchmark run: the site, its URL list, the sources file and the work folder."""

    def __init__(self, site: Site, work: Path, concurrency: int, seed: int) -> None:
        self.site = site
        self.work = work
        self.concurrency = concurrency
        self.random = random.Random(seed)
        self.urls = work / "urls.txt"
        self.urls.write_text("\n".join(site.article_urls) + "\n")
        self.sources = work / "sources.toml"
        sitemap = site.url("/sitemap.xml")
        self.sources.write_text(sources_toml(sitemap, concurrency, budget=len(site.pages)))

    @property
    def pages(self) -> int:
        return len(self.site.pages)

    def ceiling(self, round_: int) -> dict[str, Any]:
        return self._spider("ceiling", round_)

    def naive(self, round_: int) -> dict[str, Any]:
        return self._spider("naive", round_)

    def _spider(self, kind: str, round_: int) -> dict[str, Any]:
        db = self.work / f"naive-{round_}.db"
        command = [PYTHON, SPIDERS, kind, "--urls", str(self.urls)]
        command += ["--concurrency", str(self.concurrency), "--db", str(db)]
        run = run_measured(command, self.work)
        out = json.loads(run.pop("stdout"))
        db.unlink(missing_ok=True)
        if out["responses"] != self.pages:
            raise RuntimeError(f"{kind}: {out['responses']} responses for {self.pages} URLs")
        return {**run, **out, "pages_per_s": self.pages / run["wall"]}

    def bare(self, round_: int) -> dict[str, Any]:
        import trafilatura

        from crawler.extraction import extract

        files = [(self.site.file(p), self.site.url(p.path)) for p in self.site.pages]
        bodies = [(path.read_bytes(), url) for path, url in files]
        started = time.monotonic()
        extracted = sum(1 for body, url in bodies if trafilatura.extract(body, url=url))
        bare = time.monotonic() - started
        sample = bodies[::8]
        started = time.monotonic()
        for body, url in sample:
            extract(body, url, content_type=CONTENT_TYPE)
        ours = time.monotonic() - started
        return {
            "wall": bare,
            "extracted": extracted,
            "pages_per_s": len(bodies) / bare,
            "crawler_extract_pages_per_s": len(sample) / ours,
            "load": os.getloadavg()[0],
        }

    def crawl(self, round_: int) -> dict[str, Any]:
        store = self.work / f"store-{round_}" / "crawl.db"
        store.parent.mkdir()
        try:
            first = self._crawl(store)
            first["outcomes"] = fetch_outcomes(store)
            first["article_urls"] = article_urls(store)
            unchanged = self._crawl(store)
            template, body = self.mutate(round_)
            try:
                mutated = self._crawl(store)
                changed = changed_urls(store)
            finally:
                self.restore(template + body)
        finally:
            shutil.rmtree(store.parent)
        # Pages the first pass could not take as articles (none, if the templates were
        # prepared with the current extraction) cannot change; they are reported apart.
        articles = first["article_urls"]
        expected = {self.site.url(p.path) for p in body} & articles
        template_urls = {self.site.url(p.path) for p in template}
        first.pop("article_urls")
        return {
            "first": first,
            "unchanged": unchanged,
            "mutated": mutated,
            "body_edited": len(body),
            "body_edited_articles": len(expected),
            "template_only": len(template),
            "changed_events": len(changed),
            "changed_exactly_body_edited": set(changed) == expected
            and all(count == 1 for count in changed.values()),
            "template_only_changed": len(template_urls & set(changed)),
        }

    def _crawl(self, store: Path) -> dict[str, Any]:
        command = [CRAWLER, "crawl", "--sources", str(self.sources), "--store", str(store)]
        run = run_measured([*command, "--json"], self.work)
        summary = json.loads(run.pop("stdout"))
        run["totals"] = summary["totals"]
        run["crawl_elapsed"] = summary["elapsed_seconds"]
        run["ok"] = summary["ok"]
        run["pages_per_s"] = summary["totals"].get("fetched", 0) / run["wall"]
        return run

    def mutate(self, round_: int) -> tuple[list[Any], list[Any]]:
        """Change 10 % of the pages: half in the template only, half in the body."""
        chosen = self.random.sample(self.site.pages, max(2, len(self.site.pages) // 10))
        half = len(chosen) // 2
        template, body = chosen[:half], chosen[half:]
        mtime = BASE_MTIME + 3600 * (round_ + 1)
        for page in template:
            self.site.write_page(page, variant=round_ + 1, mtime=mtime)
        for page in body:
            self.site.write_page(page, edited=True, mtime=mtime)
        return template, body

    def restore(self, pages: list[Any]) -> None:
        for page in pages:
            self.site.write_page(page)


def fetch_outcomes(store: Path) -> dict[str, int]:
    """How many fetches the store logged per outcome (new, not_modified, too_short, …)."""
    with sqlite3.connect(store) as conn:
        return dict(conn.execute("SELECT outcome, count(*) FROM fetches GROUP BY outcome"))


def article_urls(store: Path) -> set[str]:
    """Canonical URLs of the articles in the store."""
    with sqlite3.connect(store) as conn:
        return {url for (url,) in conn.execute("SELECT canonical_url FROM articles")}


def changed_urls(store: Path) -> dict[str, int]:
    """Canonical URL -> number of changed (or title_changed) events in the store."""
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT a.canonical_url, count(*) FROM events e JOIN articles a ON a.id = e.article_id"
            " WHERE e.kind IN ('changed', 'title_changed') GROUP BY a.canonical_url"
        ).fetchall()
    return dict(rows)


# --- summary --------------------------------------------------------------------------


def median(rounds: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(get(r) for r in rounds)


def summarise(results: dict[str, list[dict[str, Any]]], pages: int) -> dict[str, Any]:
    crawl = results["crawl"]
    first_pps = median(crawl, lambda r: r["first"]["pages_per_s"])
    naive_pps = median(results["naive"], lambda r: r["pages_per_s"])
    bare_pps = median(results["bare"], lambda r: r["pages_per_s"])
    first_wall = median(crawl, lambda r: r["first"]["wall"])
    unchanged_wall = median(crawl, lambda r: r["unchanged"]["wall"])
    peak = max(r[k]["peak_rss_mb"] for r in crawl for k in ("first", "unchanged", "mutated"))
    peak_pss = max(r[k]["peak_pss_mb"] for r in crawl for k in ("first", "unchanged", "mutated"))
    figures = {
        "pages": pages,
        "ceiling_pages_per_s": median(results["ceiling"], lambda r: r["pages_per_s"]),
        "bare_trafilatura_pages_per_s": bare_pps,
        "crawler_extract_1proc_pages_per_s": median(
            results["bare"], lambda r: r["crawler_extract_pages_per_s"]
        ),
        "naive_pages_per_s": naive_pps,
        "first_pass_pages_per_s": first_pps,
        "first_pass_wall_s": first_wall,
        "first_pass_inner_s": median(crawl, lambda r: r["first"]["crawl_elapsed"]),
        "unchanged_wall_s": unchanged_wall,
        "unchanged_inner_s": median(crawl, lambda r: r["unchanged"]["crawl_elapsed"]),
        "mutated_wall_s": median(crawl, lambda r: r["mutated"]["wall"]),
        "peak_rss_mb": peak,
        "peak_pss_mb": peak_pss,
        "naive_peak_rss_mb": max(r["peak_rss_mb"] for r in results["naive"]),
    }
    unchanged_changes = max(
        r["unchanged"]["totals"].get("changed", 0) + r["unchanged"]["totals"].get("new", 0)
        for r in crawl
    )
    ratios = {
        "first_vs_naive": first_pps / naive_pps,
        "first_vs_bare": first_pps / bare_pps,
        "first_vs_ceiling": first_pps / figures["ceiling_pages_per_s"],
        "unchanged_speedup": first_wall / unchanged_wall,
        "unchanged_speedup_inner": figures["first_pass_inner_s"] / figures["unchanged_inner_s"],
    }
    checks = {
        "first_vs_naive": ratios["first_vs_naive"] >= TARGETS["first_vs_naive"],
        "first_vs_bare": ratios["first_vs_bare"] >= TARGETS["first_vs_bare"],
        "unchanged_speedup": ratios["unchanged_speedup"] >= TARGETS["unchanged_speedup"]
        and unchanged_changes == 0,
        "mutation_exact": all(r["changed_exactly_body_edited"] for r in crawl),
        "peak_memory": peak < TARGETS["peak_mb"],
    }
    return {"figures": figures, "ratios": ratios, "checks": checks}


def print_table(summary: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> None:
    f, r, c = summary["figures"], summary["ratios"], summary["checks"]
    crawl = results["crawl"]

    def spread(values: list[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    rows = [
        (
            "fetch ceiling (count only)",
            f"{f['ceiling_pages_per_s']:.1f} pages/s",
            spread([x["pages_per_s"] for x in results["ceiling"]]),
        ),
        (
            "bare trafilatura.extract, 1 process",
            f"{f['bare_trafilatura_pages_per_s']:.1f} pages/s",
            spread([x["pages_per_s"] for x in results["bare"]]),
        ),
        (
            "crawler extract, 1 process (1/8 sample)",
            f"{f['crawler_extract_1proc_pages_per_s']:.1f} pages/s",
            spread([x["crawler_extract_pages_per_s"] for x in results["bare"]]),
        ),
        (
            "naive spider (extract in callback, commit/page)",
            f"{f['naive_pages_per_s']:.1f} pages/s",
            spread([x["pages_per_s"] for x in results["naive"]]),
        ),
        (
            "crawler crawl, first pass",
            f"{f['first_pass_pages_per_s']:.1f} pages/s ({f['first_pass_wall_s']:.1f} s)",
            spread([x["first"]["pages_per_s"] for x in crawl]),
        ),
        (
            "crawler crawl, nothing changed",
            f"{f['unchanged_wall_s']:.1f} s",
            spread([x["unchanged"]["wall"] for x in crawl]),
        ),
        (
            "crawler crawl, 10 % mutated",
            f"{f['mutated_wall_s']:.1f} s",
            spread([x["mutated"]["wall"] for x in crawl]),
        ),
        (
            "peak memory, crawl process tree",
            f"{f['peak_rss_mb']:.0f} MB RSS ({f['peak_pss_mb']:.0f} MB PSS)",
            "",
        ),
    ]
    print(f"\n{'figure':50} {'median':>28}   rounds")
    for name, value, values in rows:
        print(f"{name:50} {value:>28}   {values}")
    print()
    lines = [
        ("first pass / naive", r["first_vs_naive"], TARGETS["first_vs_naive"], "first_vs_naive"),
        (
            "first pass / bare extraction",
            r["first_vs_bare"],
            TARGETS["first_vs_bare"],
            "first_vs_bare",
        ),
        (
            "first pass wall / unchanged wall",
            r["unchanged_speedup"],
            TARGETS["unchanged_speedup"],
            "unchanged_speedup",
        ),
    ]
    for name, value, target, key in lines:
        verdict = "met" if c[key] else "MISSED"
        print(f"{name:50} {value:>7.2f}x  (target >= {target}x: {verdict})")
    print(f"{'first pass / fetch ceiling':50} {r['first_vs_ceiling']:>7.2f}x")
    print(
        f"{'unchanged speedup, crawl time without startup':50} "
        f"{r['unchanged_speedup_inner']:>7.2f}x"
    )
    for x in crawl:
        print(
            f"mutation: {x['body_edited']} body-edited ({x['body_edited_articles']} of them "
            f"articles), {x['template_only']} template-only -> "
            f"{x['changed_events']} changed, template-only changed {x['template_only_changed']}"
            f" ({'exact' if x['changed_exactly_body_edited'] else 'NOT EXACT'});"
            f" totals {x['mutated']['totals']}"
        )
    for x in crawl:
        print(f"first pass outcomes: {x['first']['outcomes']}")
    verdict = "met" if c["peak_memory"] else "MISSED"
    limit = TARGETS["peak_mb"]
    print(f"peak memory {f['peak_rss_mb']:.0f} MB RSS (target < {limit:.0f} MB: {verdict})")


# --- main -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Crawl speed benchmark (issue 4).")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--rebuild-templates", action="store_true", help="Prepare the templates afresh."
    )
    args = parser.parse_args()

    stop_on_sigterm()
    clock = time.monotonic()
    templates, sources = load_templates(args.rebuild_templates)
    print(
        f"{len(templates)} of {sources} source pages usable as templates "
        f"({time.monotonic() - clock:.0f} s)",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
        work = Path(tmp)
        root = work / "site"
        root.mkdir()
        os.chmod(tmp, 0o755)
        with nginx(root) as base_url:
            site = Site(root, base_url, templates, args.pages)
            site.build()
            print(f"site: {args.pages} articles at {base_url}", flush=True)
            bench = Bench(site, work, args.concurrency, args.seed)
            for round_ in range(args.rounds):
                shift = round_ % len(STEPS)
                for step in STEPS[shift:] + STEPS[:shift]:
                    started = time.monotonic()
                    results[step].append(getattr(bench, step)(round_))
                    print(
                        f"round {round_ + 1}: {step} done in {time.monotonic() - started:.0f} s",
                        flush=True,
                    )
    summary = summarise(results, args.pages)
    print_table(summary, results)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "shared machine: other test runs in parallel",
        },
        "command": " ".join(["bench/crawl.py", *sys.argv[1:]]),
        "pages": args.pages,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "templates": len(templates),
        "source_pages": sources,
        "targets": TARGETS,
        **summary,
        "runs": results,
        "total_seconds": round(time.monotonic() - clock, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {args.out}")
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
