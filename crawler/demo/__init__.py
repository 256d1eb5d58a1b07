"""``crawler demo``: a bundled German news page on 127.0.0.1, fetched through its life.

The page is a DWN-like article with ads, a "Mehr zum Thema" box and dated related
teasers. The demo fetches it three times, each with a real ``crawler fetch`` process:
as first published, after the template churned (other teasers, dates, ad slots: not a
change), and after the newsroom edited one sentence (a change, version 2).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

from crawler.errors import FetchError

PAGE = "dwn-nato-rutte.html"
PATH = "/politik/nato-generalsekretaer-trifft-sich-in-florida-mit-trump"
EDITED_FROM = "Zu Details machte sie keine Angaben."
EDITED_TO = "Zu Details des Gesprächs in Palm Beach machte sie zunächst keine Angaben."


def original_page() -> str:
    """The demo article as first published."""
    return files(__package__).joinpath(PAGE).read_text(encoding="utf-8")


def churn_template(html: str) -> str:
    """The same article a day later: teaser dates, related list order and ad slots differ."""
    html = re.sub(r"(\d\d)\.01\.2026", lambda m: f"{int(m[1]) + 1:02d}.01.2026", html)
    html = re.sub(r"2026-01-(\d\d)T", lambda m: f"2026-01-{int(m[1]) + 1:02d}T", html)
    html = html.replace("/2345/dwn/politik/", "/2345/dwn/politik-rotation-b/")
    teasers = re.findall(r'<div class="teaser">.*?</div>', html, flags=re.DOTALL)
    if len(teasers) > 1:
        rotated = teasers[1:] + teasers[:1]
        replacements = iter(rotated)
        html = re.sub(
            r'<div class="teaser">.*?</div>', lambda _m: next(replacements), html, flags=re.DOTALL
        )
    return html.replace("</footer>", "<!-- gerendert 2026-11-25T06:00:00Z --></footer>")


def edit_body(html: str) -> str:
    """The churned page after the newsroom rewrote one sentence of the article."""
    if EDITED_FROM not in html:
        raise ValueError("the demo page lacks the sentence to edit")
    return churn_template(html).replace(EDITED_FROM, EDITED_TO)


@dataclass
class _Site:
    html: str


@contextmanager
def serve(site: _Site) -> Iterator[str]:
    """Serve ``site.html`` at PATH (and an allow-all robots.txt) on 127.0.0.1; yield the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == PATH:
                self._send(200, "text/html; charset=utf-8", site.html.encode("utf-8"))
            elif self.path == "/robots.txt":
                self._send(200, "text/plain", b"User-agent: *\nAllow: /\n")
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Step:
    """One demo fetch: what happened to the page, and what ``crawler fetch`` said."""

    title: str
    status_line: str
    text: str
    outcome: dict[str, Any]


STAGES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("First visit: the article is published", lambda html: html),
    ("Next day: ads, related teasers and dates churned", churn_template),
    ("The newsroom edits one sentence", edit_body),
)


def reset_store(store: Path) -> None:
    """Remove a previous demo store and its text files, so the demo starts afresh."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    articles = store.parent / "articles"
    if articles.is_dir():
        for text_file in articles.glob("*.txt"):
            text_file.unlink()


def run_demo(store: Path) -> list[Step]:
    """Fetch the demo page through its three stages into ``store``; return what happened.

    Raises :class:`FetchError` if a fetch fails.
    """
    original = original_page()
    site = _Site(original)
    steps = []
    with serve(site) as url:
        for title, transform in STAGES:
            site.html = transform(original)
            command = [
                sys.executable,
                "-m",
                "crawler",
                "fetch",
                url,
                "--json",
                "--store",
                str(store),
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                message = done.stderr.strip() or f"crawler fetch exited {done.returncode}"
                raise FetchError(f"demo fetch failed: {message}")
            printed = json.loads(done.stdout)
            status = done.stderr.strip().splitlines()[-1]
            steps.append(Step(title, status, printed["text"] + "\n", printed["outcome"]))
    return steps
