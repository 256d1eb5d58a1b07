"""Commands on single pages: ``fetch``, ``extract`` and the ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from crawler.cli import cli, json_option, store_option
from crawler.errors import ConfigError, ExtractionError
from crawler.extraction import Article, extract
from crawler.settings import load_config
from crawler.urls import validate_url


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
    from crawler.runner import fetch_article

    config = load_config(
        {
            "store": str(store) if store else None,
            "timeout": timeout,
            "max_size": max_size,
            "obey_robots": False if ignore_robots else None,
        }
    )
    article, recorded = fetch_article(url, config, save=not no_save, verbose=ctx.obj["debug"])
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
