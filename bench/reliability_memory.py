"""Memory under hostile pages (issue 7, catalogue A2/A3/A7/B4): peak RSS of a crawl.

Usage::

    .venv/bin/python bench/reliability_memory.py [--pages 2000] [--bomb-mib 1024]

One ``crawler crawl`` (a subprocess, default settings: 16 MiB page limit, 20 s
extraction limit) over a loopback ``FaultServer`` (tests/reliability/faults.py) with:

- a sitemap of ``--pages`` article URLs (unique pages, ~1 200 words each);
- a bomb per Content-Encoding (gzip, deflate, br, zstd, stacked "gzip, gzip"), each
  ``--bomb-mib`` MiB once decoded;
- a 200 MiB page streamed with and without Content-Length;
- a 3 MB page, and a pathological table (colspan="9007199254740991" over 3 000 rows)
  that hits the extraction time limit.

A thread polls the RSS and PSS of the crawl's whole process tree (the crawl process,
the forkserver and the extraction workers) every 0.1 s from /proc. RSS counts pages
shared between the forked workers once per process, PSS splits them: the truth lies
between. Prints both and writes ``bench/results/reliability_memory.json``. Target: peak
RSS under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]

from crawl import run_measured  # noqa: E402  (bench/crawl.py: wall time, tree RSS/PSS)
from faults import (  # noqa: E402
    BOMB_ENCODINGS,
    FaultServer,
    Raw,
    bomb,
    news_page,
    urls_source,
    write_sources,
)
from servers import CRAWLER, cli_env, html_reply, large_page  # noqa: E402

RESULTS = HERE / "results" / "reliability_memory.json"
TARGET_MB = 500.0
TABLE = (
    "<html><body><article><p>Ein Absatz.</p><table><tr><td colspan='9007199254740991'>x</td>"
    "</tr>" + "<tr><td>a</td><td>b</td></tr>" * 3000 + "</table></article></body></html>"
)


def streamed(size: int, *, length: bool) -> Raw:
    """``size`` bytes of HTML written in 1 MiB chunks, never held in memory at once."""

    def write(sock: socket.socket, stopping: threading.Event) -> None:
        head = "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        if length:
            head += f"Content-Length: {size}\r\n"
        sock.sendall((head + "\r\n").encode())
        chunk = b"<p>" + b"x" * (1024 * 1024 - 7) + b"</p>\n"
        for _ in range(size // len(chunk)):
            if stopping.is_set():
                return
            sock.sendall(chunk)

    return Raw(write=write)


def build(server: FaultServer, pages: int, bomb_mib: int) -> list[str]:
    """Routes on ``server``; return the hostile URLs (the articles are in /sitemap.xml)."""
    for number in range(pages):
        body = news_page(number, words=1200)
        server.set_route(f"/a/{number}.html", html_reply(body))
    locs = "".join(f"<url><loc>{server.url(f'/a/{n}.html')}</loc></url>" for n in range(pages))
    sitemap = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
    server.set_route("/sitemap.xml", html_reply(sitemap))
    hostile = {}
    for index, encoding in enumerate(BOMB_ENCODINGS):
        hostile[f"/bomb-{index}"] = bomb(encoding, bomb_mib * 1024 * 1024)
    hostile["/huge-length"] = streamed(200 * 1024 * 1024, length=True)
    hostile["/huge-chunks"] = streamed(200 * 1024 * 1024, length=False)
    hostile["/large"] = html_reply(large_page(3 * 1024 * 1024))
    hostile["/table"] = html_reply(TABLE)
    for path, reply in hostile.items():
        server.set_route(path, reply)
    return [server.url(path) for path in hostile]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--bomb-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relmem-") as tmp:
        work = Path(tmp)
        with FaultServer(work / "site") as server:
            hostile = build(server, args.pages, args.bomb_mib)
            sources = write_sources(
                work / "sources.toml",
                f'name = "articles"\ntype = "sitemap"\nurl = "{server.url("/sitemap.xml")}"',
                urls_source("hostile", hostile),
            )
            store = work / "crawl.db"
            env = cli_env(work / "home")
            env["CRAWLER_ALLOW_PRIVATE_ADDRESSES"] = "1"
            command = [str(CRAWLER), "crawl", "--sources", str(sources), "--json"]
            command += ["--store", str(store)]
            # Exit 1 is expected (the hostile source has failed checks); a traceback is not.
            measured = run_measured(command, work, env, ok_codes=(0, 1))
            with sqlite3.connect(store) as conn:
                outcomes = dict(
                    conn.execute("SELECT outcome, count(*) FROM fetches GROUP BY outcome")
                )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {measured['load']:.1f}",
        "pages": args.pages,
        "bomb_mib": args.bomb_mib,
        "wall_seconds": round(measured["wall"], 1),
        "peak_rss_mb": measured["peak_rss_mb"],
        "peak_pss_mb": measured["peak_pss_mb"],
        "target_rss_mb": TARGET_MB,
        "met": measured["peak_rss_mb"] < TARGET_MB,
        "outcomes": outcomes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
