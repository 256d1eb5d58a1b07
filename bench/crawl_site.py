"""The benchmark news site of ``bench/crawl.py``: templates, pages, mutations, nginx.

Templates come from ``tests/pages/*.html`` and the extraction devset's gzip'd pages. Each
is decoded, its charset declarations and canonical links are replaced by placeholders,
and two slots are added: a *sentence* at the end of one article paragraph (found in the
HTML verbatim) and a *chrome* block before ``</body>`` (related list, ad slot, render
timestamp). A template is kept only when the crawler's own extraction, run on two
renderings with different chrome (through the crawl's own path, ``article_from_fetch``,
so its text checks apply too), finds the sentence, the page's own canonical URL and
the same text: so every copy extracts, and template churn is invisible to it by
construction. Prepared templates are cached under ``bench/results/`` keyed by the
trafilatura version and :data:`TEMPLATE_FORMAT`, not by our extraction code: if a later
change to the extraction fails on a page or lets template churn through, the crawl shows
it as errors or false changes instead of the site quietly dropping that page.

A page is a template rendered with its own URL, a unique sentence and one chrome
variant; mutations re-render it with another chrome (template-only) or an edited
sentence (body edit) and give the file a later mtime, so nginx sends a new ETag.
"""

from __future__ import annotations

import gzip
import hashlib
import html as htmlmod
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "pages"
DEVSET = ROOT.parent / "shared" / "extraction-devset"
CACHE_DIR = ROOT / "bench" / "results" / "crawl-templates"
# Part of the template cache key: bump when template preparation changes.
TEMPLATE_FORMAT = 2

CANONICAL = "@@BENCH-CANONICAL@@"
SENTENCE = "@@BENCH-SENTENCE@@"
CHROME = "@@BENCH-CHROME@@"
SECTIONS = [
    *("politik", "wirtschaft", "kultur", "sport", "wissen", "digital", "reise", "gesundheit"),
    *("panorama", "meinung", "regional", "ausland", "inland", "technik", "auto", "karriere"),
    *("familie", "stil", "geschichte", "medien"),
]
SITEMAP_CHUNK = 500
# Base pages get this mtime (a stable Last-Modified); mutation n gets one hour more per n.
BASE_MTIME = datetime(2026, 11, 20, 6, 0, tzinfo=UTC).timestamp()

_CANONICAL_TAGS = re.compile(
    r"<link\b[^>]*\brel\s*=\s*[\"']?canonical\b[^>]*>"
    r"|<meta\b[^>]*\b(?:property|name)\s*=\s*[\"']?(?:og|twitter):url\b[^>]*>",
    re.IGNORECASE,
)
_CHARSET_TAGS = re.compile(
    r"<meta\b[^>]*\bcharset\s*=[^>]*>|<\?xml[^>]*\?>|<base\b[^>]*>", re.IGNORECASE
)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    """One article page of the site: its number, template and path."""

    number: int
    template: int
    section: str
    path: str


# --- templates ------------------------------------------------------------------------


def _raw_sources() -> list[tuple[str, bytes]]:
    sources = [(path.stem, path.read_bytes()) for path in sorted(FIXTURES.glob("*.html"))]
    for subset in ("trafilatura-eval", "readability-testpages"):
        for path in sorted((DEVSET / subset / "html").glob("*.html.gz")):
            sources.append((path.name.removesuffix(".html.gz"), gzip.decompress(path.read_bytes())))
    return sources


def sentence(number: int, edited: bool = False) -> str:
    """The unique sentence of page ``number``; ``edited`` is the newsroom's later wording."""
    token = hashlib.sha256(str(number).encode()).hexdigest()[:8]
    time_of_day = f"{8 + number % 10}:{number % 60:02d}"
    if edited:
        return f" Kennung {number:05d}-{token}: aktualisiert um {time_of_day} Uhr nach Rückfrage."
    return f" Kennung {number:05d}-{token}: veröffentlicht um {time_of_day} Uhr."


def chrome(number: int, variant: int) -> str:
    """Template around the article: a related list, an ad slot and a render timestamp."""
    seed = number * 7919 + variant * 104729
    related = "".join(
        f'<li><a href="/artikel/{SECTIONS[(seed + k) % len(SECTIONS)]}/{(seed + k) % 99991:05d}'
        f'.html">Weitere Meldung {(seed + k) % 997} aus dem Ressort</a></li>'
        for k in range(5)
    )
    rendered = datetime.fromtimestamp(BASE_MTIME + seed % 86400, UTC).isoformat()
    return (
        f'<aside class="related-articles"><h2>Mehr zum Thema</h2><ul>{related}</ul></aside>'
        f'<div class="ad-slot" id="ad-{seed % 1000}"><p>Anzeige: Angebot Nr. {seed % 9973} '
        f"jetzt sichern</p></div>"
        f'<footer class="page-footer"><p>Seite erzeugt am {rendered}</p></footer>'
        f"<!-- rendered {rendered} -->"
    )


def _anchor_positions(html: str, body: str) -> Iterator[int]:
    """Offsets in ``html`` just after the end of a body paragraph's text, best first.

    A paragraph's last characters are looked up verbatim (or HTML-escaped); only places
    followed by a tag count, so a copy in a meta description or JSON-LD is passed over.
    """
    lines = [line for line in body.splitlines() if len(line) >= 60 and not line.startswith("-")]
    for line in sorted(lines, key=len, reverse=True):
        for size in (40, 24):
            fragment = line[-size:]
            for candidate in dict.fromkeys((fragment, htmlmod.escape(fragment, quote=False))):
                for match in re.finditer(re.escape(candidate) + r"\s*<", html):
                    yield match.start() + len(candidate)


def prepare_template(name: str, raw: bytes) -> str | None:
    """The template of one source page, or None when it does not extract reliably."""
    from crawler.errors import ExtractionError
    from crawler.extraction import decode_html

    try:
        html = decode_html(raw)
    except ExtractionError:
        return None
    html = _CANONICAL_TAGS.sub("", _CHARSET_TAGS.sub("", html))
    head = (
        f'<meta charset="utf-8"><link rel="canonical" href="{CANONICAL}">'
        f'<meta property="og:url" content="{CANONICAL}">'
    )
    match = _HEAD.search(html)
    html = html[: match.end()] + head + html[match.end() :] if match else head + html
    ends = list(_BODY_END.finditer(html))
    html = html[: ends[-1].start()] + CHROME + html[ends[-1].start() :] if ends else html + CHROME
    url = f"http://127.0.0.1/artikel/probe/{name}.html"
    first = _crawl_extract(render(html, url, 0, 0), url)
    if first is None:
        return None
    body = first.body
    for offset, position in enumerate(dict.fromkeys(_anchor_positions(html, body))):
        if offset >= 4:
            break
        template = html[:position] + SENTENCE + html[position:]
        if _works(template, url):
            return template
    return None


def _crawl_extract(html: str, url: str) -> Any:
    """The Article the crawl would record for ``html`` served at ``url``, or None."""
    from crawler.errors import CrawlerError
    from crawler.fetches import FetchResult, article_from_fetch

    fetch = FetchResult(url, url, status=200, body=html.encode(), content_type=CONTENT_TYPE)
    try:
        return article_from_fetch(fetch)
    except CrawlerError:
        return None


def _works(template: str, url: str) -> bool:
    from crawler.urls import canonicalize_url

    first, second = (_crawl_extract(render(template, url, 1, variant), url) for variant in (0, 1))
    return (
        first is not None
        and second is not None
        and first.canonical_url == canonicalize_url(url)
        and sentence(1).strip() in first.body
        and first.text == second.text
    )


CONTENT_TYPE = "text/html; charset=utf-8"


def render(template: str, url: str, number: int, variant: int, edited: bool = False) -> str:
    """One page: ``template`` with its URL, sentence and chrome filled in."""
    return (
        template.replace(CANONICAL, url)
        .replace(SENTENCE, sentence(number, edited))
        .replace(CHROME, chrome(number, variant))
    )


def _prepare(item: tuple[str, bytes]) -> tuple[str, str | None]:
    return item[0], prepare_template(*item)


def load_templates(rebuild: bool = False) -> tuple[list[str], int]:
    """Prepared templates (cached unless ``rebuild``) and how many source pages there were."""
    cache = CACHE_DIR / f"v{TEMPLATE_FORMAT}-trafilatura-{package_version('trafilatura')}.json.gz"
    if cache.exists() and not rebuild:
        data = json.loads(gzip.decompress(cache.read_bytes()))
        return data["templates"], data["sources"]
    sources = _raw_sources()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        prepared = dict(pool.map(_prepare, sources, chunksize=8))
    templates = [prepared[name] for name, _ in sources if prepared[name] is not None]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"sources": len(sources), "templates": templates}
    cache.write_bytes(gzip.compress(json.dumps(payload).encode()))
    return templates, len(sources)


# --- the site -------------------------------------------------------------------------


class Site:
    """The site's files under ``root`` for ``base_url``; pages can be mutated and restored."""

    def __init__(self, root: Path, base_url: str, templates: list[str], count: int) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")
        self.templates = templates
        sections = [SECTIONS[n % len(SECTIONS)] for n in range(count + 1)]
        self.pages = [
            Page(n, n % len(templates), sections[n], f"/artikel/{sections[n]}/{n:05d}.html")
            for n in range(1, count + 1)
        ]

    def url(self, path: str) -> str:
        """The absolute URL of a site path."""
        return self.base_url + path

    @property
    def article_urls(self) -> list[str]:
        """Every article URL, in page order."""
        return [self.url(page.path) for page in self.pages]

    def file(self, page: Page) -> Path:
        """The file that holds ``page``."""
        return self.root / page.path.lstrip("/")

    def write_page(self, page: Page, variant: int = 0, edited: bool = False, mtime: float = 0):
        """Render ``page`` to its file with a given mtime (default the base one)."""
        path = self.file(page)
        path.parent.mkdir(parents=True, exist_ok=True)
        template = self.templates[page.template]
        path.write_text(
            render(template, self.url(page.path), page.number, variant, edited), encoding="utf-8"
        )
        stamp = mtime or BASE_MTIME
        os.utime(path, (stamp, stamp))

    def build(self) -> None:
        """Write every page, the section pages, the RSS feed, the sitemaps and robots.txt."""
        for page in self.pages:
            self.write_page(page)
        for section in SECTIONS:
            links = "".join(
                f'<li><a href="{p.path}">Meldung {p.number}</a></li>'
                for p in self.pages
                if p.section == section
            )
            nav = "".join(f'<a href="/{s}/">{s.title()}</a> ' for s in SECTIONS)
            self._write(
                f"/{section}/index.html",
                f"<!doctype html><html><head><meta charset='utf-8'><title>{section.title()}"
                f"</title></head><body><nav>{nav}</nav><h1>{section.title()}</h1>"
                f"<ul>{links}</ul></body></html>",
            )
        self._write("/feed.xml", self._rss())
        children = []
        for index in range(0, len(self.pages), SITEMAP_CHUNK):
            chunk = self.pages[index : index + SITEMAP_CHUNK]
            urls = "".join(
                f"<url><loc>{self.url(p.path)}</loc><lastmod>2026-11-20T06:00:00+00:00</lastmod>"
                "</url>"
                for p in chunk
            )
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/'
                f'schemas/sitemap/0.9">{urls}</urlset>'
            )
            number = index // SITEMAP_CHUNK + 1
            if number % 2:
                children.append(f"/sitemaps/artikel-{number}.xml")
                self._write(children[-1], xml)
            else:
                children.append(f"/sitemaps/artikel-{number}.xml.gz")
                self._write(children[-1], gzip.compress(xml.encode()))
        maps = "".join(f"<sitemap><loc>{self.url(c)}</loc></sitemap>" for c in children)
        self._write(
            "/sitemap.xml",
            '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/'
            f'schemas/sitemap/0.9">{maps}</sitemapindex>',
        )
        self._write(
            "/robots.txt", f"User-agent: *\nAllow: /\nSitemap: {self.url('/sitemap.xml')}\n"
        )

    def _rss(self) -> str:
        newest = self.pages[-100:]
        date = format_datetime(datetime.fromtimestamp(BASE_MTIME, UTC), usegmt=True)
        items = "".join(
            f"<item><title>Meldung {p.number}</title><link>{self.url(p.path)}</link>"
            f"<guid isPermaLink='false'>bench-{p.number}</guid><pubDate>{date}</pubDate></item>"
            for p in reversed(newest)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Benchmark-Nachrichten</title><link>{self.url('/')}</link>{items}"
            "</channel></rss>"
        )

    def _write(self, path: str, content: str | bytes) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        target.write_bytes(content)


# --- nginx ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        text/html html;
        application/xml xml;
        application/rss+xml rss;
        application/gzip gz;
        text/plain txt;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/html application/xml application/rss+xml text/plain;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html;
        etag on;
        location / {{ }}
    }}
}}
"""


@contextmanager
def nginx(root: Path) -> Iterator[str]:
    """Serve ``root`` with nginx on a free 127.0.0.1 port; yield the base URL; stop it."""
    executable = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(executable).exists():
        raise SystemExit("nginx is missing: apt-get install nginx-light")
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
        process = subprocess.Popen(
            [executable, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(port, process, Path(tmp) / "error.log")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}: {errors}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening within 10 s")


def main() -> None:
    """Serve a benchmark site until interrupted, for profiling crawls by hand."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve the crawl benchmark's site on nginx.")
    parser.add_argument("folder", type=Path, help="where the site and sources.toml go")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    stop_on_sigterm()
    templates, _ = load_templates()
    root = args.folder / "site"
    root.mkdir(parents=True)
    with nginx(root) as base_url:
        site = Site(root, base_url, templates, args.pages)
        site.build()
        sources = args.folder / "sources.toml"
        sources.write_text(sources_toml(site.url("/sitemap.xml"), args.concurrency, args.pages))
        (args.folder / "urls.txt").write_text("\n".join(site.article_urls) + "\n")
        print(f"serving {args.pages} articles at {base_url}; sources in {sources}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so nginx is stopped and temporary folders removed."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def sources_toml(sitemap_url: str, concurrency: int, budget: int) -> str:
    """A sources file with one sitemap source whose ``budget`` articles are due on every
    crawl (the revisit budget caps revisits per host and crawl)."""
    return (
        '[crawler]\nallow_private_addresses = ["127.0.0.0/8"]  # nginx on 127.0.0.1\n\n'
        "[[source]]\n"
        'name = "bench"\n'
        'type = "sitemap"\n'
        f'url = "{sitemap_url}"\n'
        f"concurrency = {concurrency}\n"
        f'revisit = {{ interval = "0s", budget = {budget} }}\n'
    )


if __name__ == "__main__":
    main()
