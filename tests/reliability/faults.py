"""Fault routes for the reliability suite, on top of ``servers.SiteServer``.

``FaultServer`` is a ``SiteServer`` whose routes may also answer with a :class:`Raw`
reply that writes to the socket itself, for what ``http.server`` cannot express (a body
dripped a byte a second, headers that never end, a connection reset mid-body). It also
keeps the time of every request (``server.times[path]``) and the body of every POST
(``server.posts``), so it doubles as a webhook receiver. Route builders::

    drip(reply, interval=1.0)          the reply's bytes, one every ``interval`` seconds
    slow_headers(interval=1.0)         the status line and headers, a byte a second, never done
    stall_after_headers(length)        headers announcing ``length`` bytes, then silence
    reset_after(n, length, rst=True)   headers, ``n`` of ``length`` body bytes, then a TCP
                                       RST (SO_LINGER 0) or, with ``rst=False``, a FIN
    bomb(encoding, size)               a page of ``size`` bytes once decoded, a few KB on the
                                       wire: gzip, deflate, br, zstd, or "gzip, gzip" (stacked)
    redirect_loop(server, a, b)        /a -> /b -> /a ... (sets both routes)
    challenge(kind)                    200 pages that are not the article: "cloudflare",
                                       "consent", "paywall"
    soft_404()                         a 200 "page not found" page
    status(code, retry_after=None)     an error page, optionally with Retry-After (seconds,
                                       an HTTP date, or anything absurd)
    sequence(*replies)                 the n-th request gets the n-th reply (the last repeats)
    binary(kind, content_type)         PDF, JPEG, PNG, ZIP or gzip bytes under any type

Helpers to run a crawl: ``write_sources`` and ``run_crawl`` (the CLI in a subprocess
with ``servers.cli_env`` plus settings as environment variables) and ``query`` (SQL
on the store). Only 127.0.0.1 is bound or contacted.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers import (
    HANG_LIMIT_SECONDS,
    PDF_BYTES,
    Reply,
    Request,
    RouteHandler,
    SiteServer,
    _Handler,
    _HTTPServer,
    cli_command,
    cli_env,
    html_reply,
)

# -- raw replies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw(Reply):
    """A reply that writes the connection itself: ``write(sock, stopping)``.

    ``stopping`` is set when the server stops; a writer that waits must wait on it.
    """

    write: Callable[[socket.socket, threading.Event], None] = field(
        default=lambda _sock, _stopping: None
    )


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.0 {status} X"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def drip(reply: Reply, interval: float = 1.0) -> Raw:
    """The whole of ``reply`` (status line, headers, body), one byte every ``interval`` s."""
    headers = dict(reply.headers)
    headers.setdefault("Content-Length", str(len(reply.body)))
    data = _head(reply.status, headers) + reply.body

    def write(sock: socket.socket, stopping: threading.Event) -> None:
        for index in range(len(data)):
            sock.sendall(data[index : index + 1])
            if stopping.wait(interval):
                return

    return Raw(write=write)


def slow_headers(interval: float = 1.0) -> Raw:
    """A status line and an endless header, a byte every ``interval`` s (slow loris)."""

    def write(sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        while not stopping.wait(interval):
            sock.sendall(b"a")

    return Raw(write=write)


def stall_after_headers(length: int = 100_000) -> Raw:
    """Headers announcing ``length`` bytes of HTML, then nothing until the server stops."""

    def write(sock: socket.socket, stopping: threading.Event) -> None:
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(length)}
        sock.sendall(_head(200, headers))
        stopping.wait(120)

    return Raw(write=write)


def reset_after(sent: int = 5_000, length: int = 100_000, *, rst: bool = True) -> Raw:
    """Headers announcing ``length`` bytes, ``sent`` bytes of HTML, then a hang-up: an RST
    (SO_LINGER 0: the kernel discards the socket) or, with ``rst=False``, a clean FIN."""

    def write(sock: socket.socket, _stopping: threading.Event) -> None:
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(length)}
        body = (b"<html><body><article>" + b"<p>Ein Satz.</p>" * (sent // 16 + 1))[:sent]
        sock.sendall(_head(200, headers) + body)
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)

    return Raw(write=write)


# -- ordinary replies --------------------------------------------------------------------

BOMB_ENCODINGS = ("gzip", "deflate", "br", "zstd", "gzip, gzip")


def bomb(encoding: str, size: int = 64 * 1024 * 1024) -> Reply:
    """An HTML page that decodes to ``size`` bytes, compressed with ``encoding`` (one of
    :data:`BOMB_ENCODINGS`; "gzip, gzip" is gzip applied twice, as the header says)."""
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": encoding}
    return Reply(200, _compressed(encoding, size), headers)


@lru_cache(maxsize=16)
def _compressed(encoding: str, size: int) -> bytes:
    chunk = b"<html><body>" + b" " * (1024 * 1024 - 12)
    if encoding == "gzip, gzip":
        return gzip.compress(_compressed("gzip", size), compresslevel=9)
    if encoding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
        parts = [compressor.compress(chunk) for _ in range(size // len(chunk) + 1)]
        return b"".join(parts) + compressor.flush()
    if encoding == "br":
        import brotli

        brotli_compressor = brotli.Compressor(quality=5)
        parts = [brotli_compressor.process(chunk) for _ in range(size // len(chunk) + 1)]
        return b"".join(parts) + brotli_compressor.finish()
    if encoding == "zstd":
        from backports import zstd  # what Scrapy 2.19 decodes zstd with on Python < 3.14

        zstd_compressor = zstd.ZstdCompressor()
        parts = [zstd_compressor.compress(chunk) for _ in range(size // len(chunk) + 1)]
        return b"".join(parts) + zstd_compressor.flush()
    raise ValueError(f"no bomb for Content-Encoding {encoding!r}")


def redirect_loop(server: SiteServer, first: str, second: str) -> None:
    """Route ``first`` to redirect to ``second`` and back, forever."""
    server.set_route(first, Reply(302, b"", {"Location": second}))
    server.set_route(second, Reply(302, b"", {"Location": first}))


CHALLENGES = {
    "cloudflare": (
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
        "<div id='cf-browser-verification'>Checking your browser before accessing the site."
        "</div><script src='/cdn-cgi/challenge-platform/h/g/orchestrate/jsch/v1'></script>"
        "<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
    ),
    "consent": (
        "<!DOCTYPE html><html><head><title>Zustimmung erforderlich</title></head><body>"
        "<div id='sp_message_container'><h1>Wir brauchen Ihre Zustimmung</h1>"
        "<p>Wir und unsere Partner verwenden Cookies. Klicken Sie auf Akzeptieren.</p>"
        "<button>Akzeptieren</button></div></body></html>"
    ),
    "paywall": (
        "<!DOCTYPE html><html><head><title>Stadtrat beschließt Haushalt</title></head><body>"
        "<article><h1>Stadtrat beschließt Haushalt</h1><p>Der Stadtrat hat am Abend</p>"
        "<div class='paywall'><p>Dieser Artikel ist nur für Abonnenten.</p>"
        "<p>Jetzt weiterlesen mit Z+ für 1 Euro im ersten Monat.</p></div></article>"
        "</body></html>"
    ),
}


def challenge(kind: str, status: int = 200) -> Reply:
    """A page standing in the article's way: ``cloudflare``, ``consent`` or ``paywall``."""
    return html_reply(CHALLENGES[kind], status=status)


SOFT_404_HTML = (
    "<!DOCTYPE html><html><head><title>Seite nicht gefunden</title></head><body>"
    "<h1>Seite nicht gefunden</h1><p>Die angeforderte Seite existiert leider nicht (mehr). "
    "Vielleicht finden Sie auf unserer Startseite, was Sie suchen.</p></body></html>"
)


def soft_404() -> Reply:
    """A "page not found" page answered with 200."""
    return html_reply(SOFT_404_HTML)


def status(code: int, retry_after: str | None = None) -> Reply:
    """An HTML error page with ``code``; ``retry_after`` is sent verbatim as Retry-After."""
    reply = html_reply(f"<html><body><h1>Status {code}</h1></body></html>", status=code)
    if retry_after is None:
        return reply
    return Reply(reply.status, reply.body, dict(reply.headers, **{"Retry-After": retry_after}))


def sequence(*replies: Reply | RouteHandler) -> RouteHandler:
    """A route whose n-th request gets the n-th of ``replies`` (the last one repeats)."""
    served = [0]
    lock = threading.Lock()

    def handler(request: Request) -> Reply:
        with lock:
            index = min(served[0], len(replies) - 1)
            served[0] += 1
        reply = replies[index]
        return reply if isinstance(reply, Reply) else reply(request)

    return handler


_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(600)
_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(600)
_ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(600)
BINARIES = {
    "pdf": PDF_BYTES,
    "jpeg": _JPEG,
    "png": _PNG,
    "zip": _ZIP,
    "gzip": gzip.compress(b"<html><body>" + b"<p>Komprimiert.</p>" * 200),
}


def binary(kind: str, content_type: str = "text/html; charset=utf-8") -> Reply:
    """Bytes of a ``kind`` in :data:`BINARIES`, served as ``content_type`` (default HTML)."""
    return Reply(200, BINARIES[kind], {"Content-Type": content_type})


# -- the server ----------------------------------------------------------------------------


class _FaultHandler(_Handler):
    server: _FaultHTTPServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.site.posts.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, send_body: bool) -> None:
        site = self.server.site
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers))
        site.times[request.path].append(time.monotonic())
        site.record(request)
        if request.path == "/hang":
            site.stopping.wait(HANG_LIMIT_SECONDS)
            return
        reply = site.reply_for(request)
        self.close_connection = True
        if isinstance(reply, Raw):
            with contextlib.suppress(OSError):  # the client gave up first: expected
                reply.write(self.connection, site.stopping)
            return
        self._send(reply, send_body)


class _FaultHTTPServer(_HTTPServer):
    site: FaultServer  # type: ignore[assignment]


class FaultServer(SiteServer):
    """A ``SiteServer`` whose routes may return :class:`Raw` replies; it records request
    times (``times[path]``, monotonic) and POST bodies (``posts``)."""

    def __init__(self, root: Path, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.times: defaultdict[str, list[float]] = defaultdict(list)
        self.posts: list[tuple[str, bytes]] = []

    def start(self) -> FaultServer:
        httpd = _FaultHTTPServer(("127.0.0.1", 0), _FaultHandler)
        httpd.site = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __enter__(self) -> FaultServer:
        return self.start()

    def webhooks(self) -> list[dict[str, Any]]:
        """The JSON bodies POSTed to this server so far."""
        return [json.loads(body) for _path, body in self.posts if body]


def fault_server(root: Path) -> Iterator[FaultServer]:
    """A fixture body: a FaultServer over ``root`` (created if missing)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with FaultServer(Path(root)) as server:
        yield server


# -- running crawls ------------------------------------------------------------------------

# Low limits so faults resolve in seconds; every value can be overridden per call.
FAST_SETTINGS = {
    "CRAWLER_TIMEOUT": "2",
    "CRAWLER_RETRIES": "1",
    "CRAWLER_EXTRACT_TIMEOUT": "5",
    "CRAWLER_ALLOW_PRIVATE_ADDRESSES": "1",
}


def write_sources(path: Path, *tables: str, alerts: str | None = None) -> Path:
    """A sources file of ``[[source]]`` bodies, plus an ``[alerts]`` body if given."""
    text = "".join(f"[[source]]\n{table.strip()}\n\n" for table in tables)
    if alerts:
        text += f"[alerts]\n{alerts.strip()}\n"
    path.write_text(text, "utf-8")
    return path


def urls_source(name: str, urls: list[str], extra: str = "") -> str:
    """A ``urls`` source body that revisits its articles on every run."""
    listed = ", ".join(json.dumps(url) for url in urls)
    return (
        f'name = "{name}"\ntype = "urls"\nurls = [{listed}]\n'
        f'revisit = {{ interval = "0s", confirm_removal_after = "0s" }}\n{extra}'
    )


@dataclass(frozen=True)
class CrawlRun:
    """One finished ``crawler crawl --json``: exit code, parsed summary, stderr."""

    returncode: int
    summary: dict[str, Any]
    stderr: str
    elapsed: float

    @property
    def totals(self) -> dict[str, int]:
        return dict(self.summary.get("totals", {}))


def run_crawl(
    store: Path,
    sources: Path,
    *names: str,
    settings: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> CrawlRun:
    """Run ``crawler crawl --json`` in a subprocess with :data:`FAST_SETTINGS` (updated by
    ``settings``) in its environment; assert it printed no traceback."""
    home = Path(store).parent / "home"
    env = cli_env(home)
    env.update(FAST_SETTINGS)
    env.update(settings or {})
    started = time.monotonic()
    done = subprocess.run(
        cli_command("crawl", *names, "--sources", sources, "--json", store=store),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=home,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return CrawlRun(done.returncode, summary, done.stderr, elapsed)


def query(store: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the store (read-only)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def fetch_rows(store: Path) -> dict[str, tuple[str, str]]:
    """Each fetched URL's last outcome and reason, from the store's fetch log."""
    rows = query(store, "SELECT url, outcome, reason FROM fetches ORDER BY id")
    return {url: (outcome, reason or "") for url, outcome, reason in rows}


# -- a known article -------------------------------------------------------------------------

ARTICLE_SLUG = "tagesschau-bahn-puenktlichkeit"
ARTICLE_PATH = f"/artikel/{ARTICLE_SLUG}.html"


def publish_article(server: SiteServer, edits: int = 0) -> str:
    """Serve the fixture article at :data:`ARTICLE_PATH`, with ``edits`` sentences added to
    one paragraph (each edit is a new version); return its HTML."""
    from newssite import PAGES, article_html

    html = article_html(ARTICLE_SLUG, server)
    paragraph = (PAGES / f"{ARTICLE_SLUG}.expected.txt").read_text("utf-8").splitlines()[3]
    assert paragraph in html
    added = "".join(f" Nachtrag {number}: Das bestätigte die Bahn." for number in range(edits))
    html = html.replace(paragraph, paragraph + added)
    server.write(ARTICLE_PATH, html)
    return html


def seed_two_versions(server: SiteServer, store: Path, sources: Path) -> None:
    """Crawl the article twice with an edit between: 2 versions, events new + changed."""
    publish_article(server)
    first = run_crawl(store, sources)
    assert first.totals.get("new") == 1, first
    publish_article(server, edits=1)
    second = run_crawl(store, sources)
    assert second.totals.get("changed") == 1, second
    assert query(store, "SELECT count(*) FROM versions") == [(2,)]


_TOPICS = ("Haushalt", "Verkehr", "Schulen", "Energie", "Wohnungsbau", "Kliniken", "Hafen", "Wald")


def news_page(number: int, words: int = 200) -> str:
    """A plain article page (title, dateline, paragraphs) whose text is unique to
    ``number``, about ``words`` words long: a page that extracts cleanly."""
    topic = _TOPICS[number % len(_TOPICS)]
    title = f"Stadtrat streitet über {topic}: Beschluss Nummer {number} vertagt"
    sentences = [
        f"Im Streit um {topic} hat der Stadtrat am Abend zum {index + 1}. Mal in Folge "
        f"keine Einigung erzielt, wie die Verwaltung zur Vorlage {number}-{index} mitteilte."
        for index in range(max(1, words // 22))
    ]
    paragraphs = "".join(
        f"<p>{' '.join(sentences[i : i + 2])}</p>\n" for i in range(0, len(sentences), 2)
    )
    return (
        "<!DOCTYPE html><html lang='de'><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><nav><a href='/'>Start</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Impressum · Datenschutz</footer></body></html>"
    )
