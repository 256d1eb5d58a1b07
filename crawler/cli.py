"""The ``crawler`` command: thin click commands over the library.

Each command parses flags, calls one library function and formats the result. Errors
of this package become one ``error: …`` line on stderr and an exit code (2 for bad
input, 1 for anything that failed); a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from crawler import __version__
from crawler.errors import ConfigError, CrawlerError, ExtractionError, FetchError
from crawler.extraction import Article, extract
from crawler.fetches import FetchResult, declared_non_html
from crawler.settings import DEFAULT_STORE, load_config
from crawler.urls import validate_url

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"SQLite store; text files go to articles/ beside it. [default: {DEFAULT_STORE}]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crawler")
@click.option(
    "--debug", is_flag=True, envvar="CRAWLER_DEBUG", help="Show tracebacks and Scrapy's log."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Monitor news articles: fetch pages, extract clean text, keep every version."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("url")
@store_option
@json_option
@click.option("--no-save", is_flag=True, help="Only print the article; leave the store alone.")
@click.option("--ignore-robots", is_flag=True, help="Fetch even if robots.txt forbids it.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Download timeout in seconds. [default: 30]",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    help="Largest page in bytes. [default: 16 MiB]",
)
@click.pass_context
def fetch(
    ctx: click.Context,
    url: str,
    store: Path | None,
    as_json: bool,
    no_save: bool,
    ignore_robots: bool,
    timeout: float | None,
    max_size: int | None,
) -> None:
    """Fetch URL, print its article text and record it in the store.

    Says on stderr whether the article is new, unchanged or changed (with the diff
    summary). Exits 1 when the page cannot be fetched or holds no article text.
    """
    from crawler.recording import record_article, record_failure
    from crawler.runner import fetch_pages
    from crawler.store import open_store

    url = validate_url(url)
    config = load_config(
        {
            "store": str(store) if store else None,
            "timeout": timeout,
            "max_size": max_size,
            "obey_robots": False if ignore_robots else None,
        }
    )
    db = None if no_save else open_store(config.store)
    result = fetch_pages([url], config, verbose=ctx.obj["debug"])[0]
    now = datetime.now(UTC)
    try:
        article = _article_from(result)
    except (FetchError, ExtractionError) as error:
        if db is not None:
            outcome = error.outcome if isinstance(error, FetchError) else error.reason
            record_failure(db, result, now=now, outcome=outcome, reason=str(error))
        raise
    recorded = None
    if db is not None:
        text_dir = Path(config.store).parent / "articles"
        recorded = record_article(db, article, result, text_dir=text_dir, now=now)
    _print_article(article, as_json, outcome=recorded.as_dict() if recorded else None)
    if recorded is not None:
        click.echo(_status_line(recorded, article), err=True)


@cli.command("extract")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@click.option(
    "--url", default=None, help="URL the page came from (resolves relative links, canonical URL)."
)
@click.option(
    "--content-type", default=None, help="HTTP Content-Type of the page, for its charset."
)
@json_option
def extract_command(file: Path, url: str | None, content_type: str | None, as_json: bool) -> None:
    """Extract the article from a local HTML FILE (or - for stdin), without network or store."""
    if url is not None:
        url = validate_url(url)
    if str(file) == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        article = extract(data, url, content_type=content_type)
    except ExtractionError as error:
        raise ExtractionError(f"{file}: {error}", reason=error.reason) from None
    _print_article(article, as_json)


@cli.command()
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data") / "demo" / "crawl.db",
    show_default=True,
    help="Store of the demo; started afresh on every run.",
)
def demo(store: Path) -> None:
    """Serve a bundled German news page on 127.0.0.1 and follow it through its life.

    Three real fetches: first publication, a churned template (no change) and an
    edited sentence (version 2). Then shows where the results are.
    """
    from rich.console import Console
    from rich.markup import escape

    from crawler.changes import word_diff
    from crawler.demo import reset_store, run_demo
    from crawler.store import latest_version, open_store

    console = Console(stderr=True, soft_wrap=True)
    reset_store(store)
    with console.status("fetching the demo article three times…"):
        steps = run_demo(store)
    click.echo(steps[-1].text, nl=False)
    console.print()
    for number, step in enumerate(steps, 1):
        console.print(f"[bold]{number}. {escape(step.title)}[/bold]\n   {escape(step.status_line)}")
    db = open_store(store, create=False)
    version = latest_version(db, steps[-1].outcome["article_id"])
    for change in (version.diff or {}).get("changes", []) if version else []:
        marked = " ".join(
            escape(word)
            if op == "equal"
            else f"[{'green' if op == 'insert' else 'red strike'}]{escape(word)}[/]"
            for op, word in word_diff(change.get("old") or "", change.get("new") or "")
        )
        console.print(f"   [dim]{change['op']}:[/dim] {marked}")
    console.print(
        f"\nStored in {store}, the latest text in {store.parent / 'articles'}/.\n"
        f"Its versions: sqlite-utils {store} "
        "'SELECT number, fetched_at, change_class, words_added, words_removed FROM versions'"
    )


def _article_from(result: FetchResult) -> Article:
    """The article in a download, or FetchError/ExtractionError saying why there is none."""
    if not result.ok:
        raise FetchError(
            f"cannot fetch {result.url}: {result.describe_failure()}", result.failure or "error"
        )
    media = declared_non_html(result.content_type)
    if media is not None:
        raise ExtractionError(f"{result.final_url} is {media}, not an HTML page", reason="not_html")
    try:
        return extract(result.body, result.final_url, content_type=result.content_type)
    except ExtractionError as error:
        raise ExtractionError(f"{result.final_url}: {error}", reason=error.reason) from None


def _print_article(article: Article, as_json: bool, **extra: Any) -> None:
    if as_json:
        click.echo(json.dumps({**article.as_dict(), **extra}, ensure_ascii=False, indent=2))
    else:
        click.echo(article.text)


def _status_line(recorded: Any, article: Article) -> str:
    if recorded.kind == "new":
        words = len(article.body.split())
        return f"new: {recorded.canonical_url} (version 1, {words} words) -> {recorded.text_file}"
    if recorded.kind == "unchanged":
        return f"unchanged: {recorded.canonical_url} (version {recorded.version})"
    return f"changed: {recorded.canonical_url} (version {recorded.version}): {recorded.summary}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. Our errors become one stderr line."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("CRAWLER_DEBUG")
    )
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="crawler",
            standalone_mode=False,
        )
    except CrawlerError as error:
        if debug:
            raise
        _fail(str(error))
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        _fail(error.format_message())
        return error.exit_code
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (run with --debug for details)")
        return EXIT_INTERNAL
    return 0


def _fail(message: str) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
