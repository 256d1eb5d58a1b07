"""A real HTTP server on 127.0.0.1 for tests, and a helper that runs the CLI.

``SiteServer`` serves a directory that tests may edit between requests (swap a page,
then fetch again) plus programmable routes, in the manner of Scrapy's
``tests/mockserver``::

    /status/<code>              an HTML error page with that status (404, 410, 500, ...)
    /redirect/<n>?to=/path      n hops of 302 (to /redirect/<n-1>?to=...), then /path
    /pdf                        a small PDF served as application/pdf
    /pdf-as-html                the same PDF served as text/html
    /empty                      200 text/html with an empty body
    /gzip/<path>                the file <path>, gzip-encoded (Content-Encoding: gzip)
    /latin1/<path>              the file <path> re-encoded as ISO-8859-1, charset in the header
    /large?size=<bytes>         an HTML page of about <bytes> bytes (default 3 MB);
                                with &length=none it is sent without Content-Length
    /truncated                  announces a Content-Length, sends half of it, hangs up
    /hang                       accepts the request and never answers (until the server stops)
    /robots.txt                 ``server.robots_txt``: allow all, or use DISALLOW_PRIVATE

Every request is counted per path (``server.hits[path]``) and its headers kept
(``server.headers_seen[path]``), so conditional-GET tests can assert what was sent.
``server.set_route(path, handler)`` adds a route: the handler gets the request
(``Request``) and returns a ``Reply``.

Only 127.0.0.1 is ever bound or contacted; host names like ``*.example`` appear only in
page content.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

TESTS_DIR = Path(__file__).resolve().parent
SITES_DIR = TESTS_DIR / "sites"

ALLOW_ALL = "User-agent: *\nAllow: /\n"
DISALLOW_PRIVATE = "User-agent: *\nDisallow: /private/\n"

# Long enough for any test, short enough that a forgotten connection cannot wedge a run.
HANG_LIMIT_SECONDS = 120.0
LAST_MODIFIED = "Sun, 24 Nov 2024 13:36:00 GMT"

# A minimal but well-formed one-page PDF.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n"
    b"0000000101 00000 n \ntrailer<</Size 4/Root 1 0 R>>\nstartxref\n164\n%%EOF\n"
)

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".json": "application/json",
    ".pdf": "application/pdf",
}
_META_CHARSET = re.compile(rb"<meta[^>]+charset[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What a route handler sees of one request."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    """What a route handler answers: status, headers and body bytes."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    send_length: bool = True  # False: no Content-Length, the body ends when the socket closes


RouteHandler = Callable[[Request], Reply]


def html_reply(html: str | bytes, status: int = 200, **headers: str) -> Reply:
    """A ``text/html; charset=utf-8`` reply (extra headers given as Python names)."""
    body = html.encode("utf-8") if isinstance(html, str) else html
    all_headers = {"Content-Type": "text/html; charset=utf-8"}
    all_headers.update({name.replace("_", "-").title(): value for name, value in headers.items()})
    return Reply(status, body, all_headers)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "TestSite/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at shutdown

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output quiet

    def _answer(self, send_body: bool) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name: value for name, value in self.headers.items()},
        )
        site = self.server.site
        site.record(request)
        if request.path == "/hang":
            # Never answer; return (closing the socket) only when the server stops.
            site.stopping.wait(HANG_LIMIT_SECONDS)
            return
        reply = site.reply_for(request)
        self._send(reply, send_body)

    def _send(self, reply: Reply, send_body: bool) -> None:
        """Write ``reply``: status, headers (Content-Length unless it opts out), body."""
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if reply.send_length:
            headers.setdefault("Content-Length", str(len(reply.body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and reply.body:
            self.wfile.write(reply.body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    site: SiteServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up (timeouts, size limits) are expected, not noise


class SiteServer:
    """An HTTP server on 127.0.0.1 serving ``root`` plus the routes in the module docstring.

    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(self, root: Path, robots_txt: str = ALLOW_ALL) -> None:
        self.root = Path(root)
        self.robots_txt = robots_txt
        self.stopping = threading.Event()
        self.hits: Counter[str] = Counter()
        self.headers_seen: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self._routes: dict[str, RouteHandler] = {}
        self._seen = threading.Condition()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> SiteServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.site = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and files ------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + "/" + path.lstrip("/")

    def write(self, path: str, content: str | bytes) -> Path:
        """Create or replace the served file at ``path`` (atomically); return its location."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        return target

    def read(self, path: str) -> str:
        """The served file at ``path`` as text."""
        return (self.root / path.lstrip("/")).read_text(encoding="utf-8")

    # -- programmable routes and bookkeeping ----------------------------------------------

    def set_route(self, path: str, handler: RouteHandler | Reply) -> None:
        """Answer ``path`` with ``handler(request)`` (or a fixed ``Reply``) from now on."""
        if isinstance(handler, Reply):
            reply = handler
            self._routes[path] = lambda _request: reply
        else:
            self._routes[path] = handler

    def clear_route(self, path: str) -> None:
        """Serve ``path`` normally again."""
        self._routes.pop(path, None)

    def record(self, request: Request) -> None:
        with self._seen:
            self.hits[request.path] += 1
            self.headers_seen[request.path].append(dict(request.headers))
            self._seen.notify_all()

    def wait_for_hits(self, path: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``path`` was requested ``count`` times; False if ``timeout`` passed first."""
        with self._seen:
            return self._seen.wait_for(lambda: self.hits[path] >= count, timeout=timeout)

    def reset_counts(self) -> None:
        """Forget the requests seen so far."""
        with self._seen:
            self.hits.clear()
            self.headers_seen.clear()

    # -- routing --------------------------------------------------------------------------

    def reply_for(self, request: Request) -> Reply:
        path = request.path
        if path in self._routes:
            return self._routes[path](request)
        if path == "/robots.txt":
            return Reply(200, self.robots_txt.encode(), {"Content-Type": "text/plain"})
        if match := re.fullmatch(r"/status/(\d{3})", path):
            code = int(match.group(1))
            return html_reply(f"<html><body><h1>Status {code}</h1></body></html>", status=code)
        if match := re.fullmatch(r"/redirect/(\d+)", path):
            return self._redirect(int(match.group(1)), request.query.get("to", ["/"])[0])
        if path == "/pdf":
            return Reply(200, PDF_BYTES, {"Content-Type": "application/pdf"})
        if path == "/pdf-as-html":
            return Reply(200, PDF_BYTES, {"Content-Type": "text/html; charset=utf-8"})
        if path == "/empty":
            return Reply(200, b"", {"Content-Type": "text/html; charset=utf-8"})
        if path == "/truncated":
            body = large_page(20_000).encode("utf-8")
            headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
            return Reply(200, body[: len(body) // 2], headers)
        if path == "/large":
            size = int(request.query.get("size", [str(3 * 1024 * 1024)])[0])
            reply = html_reply(large_page(size))
            if request.query.get("length") == ["none"]:
                return Reply(reply.status, reply.body, reply.headers, send_length=False)
            return reply
        if path == "/gzip-bomb":
            # A few KB on the wire, 64 MiB once decompressed.
            size = int(request.query.get("size", [str(64 * 1024 * 1024)])[0])
            bomb = gzip.compress(b"<html><body>" + b" " * size, compresslevel=9)
            headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
            return Reply(200, bomb, headers)
        if path.startswith("/gzip/"):
            return self._gzip(path.removeprefix("/gzip"))
        if path.startswith("/latin1/"):
            return self._latin1(path.removeprefix("/latin1"))
        return self._conditional(request, self._file(path))

    def _conditional(self, request: Request, reply: Reply) -> Reply:
        """Files carry an ETag and Last-Modified; a matching validator gets a 304."""
        if reply.status != 200:
            return reply
        etag = '"' + hashlib.sha256(reply.body).hexdigest()[:16] + '"'
        headers = dict(reply.headers, ETag=etag, **{"Last-Modified": LAST_MODIFIED})
        if request.headers.get("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(reply.status, reply.body, headers, reply.send_length)

    def _redirect(self, hops: int, target: str) -> Reply:
        location = target if hops <= 1 else f"/redirect/{hops - 1}?to={quote(target, safe='/')}"
        return Reply(302, b"", {"Location": location})

    def _path_on_disk(self, path: str) -> Path | None:
        candidate = (self.root / path.lstrip("/")).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_relative_to(self.root.resolve()) or not candidate.is_file():
            return None
        return candidate

    def _file(self, path: str) -> Reply:
        location = self._path_on_disk(path)
        if location is None:
            return html_reply("<html><body><h1>Nicht gefunden</h1></body></html>", status=404)
        content_type = _CONTENT_TYPES.get(location.suffix.lower(), "application/octet-stream")
        return Reply(200, location.read_bytes(), {"Content-Type": content_type})

    def _gzip(self, path: str) -> Reply:
        plain = self._file(path)
        if plain.status != 200:
            return plain
        headers = dict(plain.headers, **{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Reply(200, gzip.compress(plain.body), headers)

    def _latin1(self, path: str) -> Reply:
        plain = self._file(path)
        if plain.status != 200:
            return plain
        # Drop the page's own <meta charset>, so the header is the only declaration.
        html = _META_CHARSET.sub(b"", plain.body).decode("utf-8")
        return Reply(
            200, html.encode("iso-8859-1"), {"Content-Type": "text/html; charset=iso-8859-1"}
        )


def large_page(size: int) -> str:
    """An HTML article page of at least ``size`` bytes (mostly repeated paragraphs)."""
    paragraph = (
        "<p>Dieser Absatz wiederholt sich, damit die Seite groß wird: Die Sitzung des "
        "Ausschusses dauerte bis in den späten Abend, ohne dass ein Ergebnis feststand.</p>\n"
    )
    count = size // len(paragraph.encode("utf-8")) + 1
    return (
        "<!DOCTYPE html><html lang='de'><head><meta charset='utf-8'>"
        "<title>Eine sehr lange Seite</title></head><body><article>"
        "<h1>Eine sehr lange Seite</h1>" + paragraph * count + "</article></body></html>"
    )


@contextmanager
def serve_copy(site: str, workdir: Path, robots_txt: str = ALLOW_ALL) -> Iterator[SiteServer]:
    """Copy ``tests/sites/<site>/`` to ``workdir`` and serve the copy (tests may edit it)."""
    root = Path(workdir)
    shutil.copytree(SITES_DIR / site, root, dirs_exist_ok=True)
    with SiteServer(root, robots_txt=robots_txt) as server:
        yield server


# -- running the CLI ------------------------------------------------------------------------

CRAWLER = Path(sys.executable).parent / "crawler"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")


# The test servers listen on 127.0.0.1, which the SSRF guard refuses by default: CLI runs
# allow loopback explicitly, so the guard still refuses 10.x, 169.254.x and the rest.
ALLOW_LOOPBACK = "127.0.0.0/8"


def cli_env(home: Path, allow_private_addresses: str | None = ALLOW_LOOPBACK) -> dict[str, str]:
    """The environment for a CLI run: a fresh HOME under ``home``, no proxies, no_proxy=*,
    and ``CRAWLER_ALLOW_PRIVATE_ADDRESSES`` (loopback; None leaves the variable unset)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in _PROXY_VARIABLES and not name.startswith("CRAWLER_")
    }
    home = Path(home)
    for sub in ("", ".config", ".cache", ".local/share", ".local/state"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".local/state"),
        no_proxy="*",
        NO_PROXY="*",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
        LC_ALL="C.UTF-8",
    )
    if allow_private_addresses is not None:
        env["CRAWLER_ALLOW_PRIVATE_ADDRESSES"] = allow_private_addresses
    return env


def cli_command(*args: str | Path, store: Path | None = None) -> list[str]:
    """The argv of ``crawler *args [--store store]``."""
    command = [str(CRAWLER), *map(str, args)]
    if store is not None:
        command += ["--store", str(store)]
    return command


def run_cli(
    *args: str | Path,
    store: Path | None = None,
    home: Path | None = None,
    input: str | bytes | None = None,  # noqa: A002 (subprocess's name)
    timeout: float = 60,
    allow_private_addresses: str | None = ALLOW_LOOPBACK,
) -> subprocess.CompletedProcess[str]:
    """Run ``crawler *args`` (plus ``--store store`` if given) and return its output as text.

    ``home`` becomes HOME and the working directory (default: beside the store, else a
    fresh temporary directory), so a run never writes into the repository.
    ``allow_private_addresses`` is passed to :func:`cli_env`.
    """
    if home is None:
        base = Path(store).parent if store is not None else Path(tempfile.mkdtemp())
        home = base / "home"
    Path(home).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        cli_command(*args, store=store),
        input=input.decode("utf-8") if isinstance(input, bytes) else input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=cli_env(Path(home), allow_private_addresses),
        cwd=home,
        timeout=timeout,
        check=False,
    )
