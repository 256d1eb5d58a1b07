"""Commands on single pages: ``fetch``, ``extract`` and the ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from crawler.cli import cli, json_option, network_options, network_overrides, store_option
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
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read settings from the [crawler] table of this sources file "
    "[default: sources.toml, if it exists].",
)
@network_options
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
    sources_file: Path | None,
    allow_private_addresses: bool,
    resolve: tuple[str, ...],
) -> None:
    """Fetch URL, print its article text and record it in the store.

    Says on stderr whether the article is new, unchanged or changed (with the diff
    summary). Exits 1 when the page cannot be fetched or holds no article text.
    """
    from crawler.runner import fetch_article
    from crawler.sources import DEFAULT_SOURCES, read_sources_file

    if sources_file is None and DEFAULT_SOURCES.is_file():
        sources_file = DEFAULT_SOURCES
    file_values = read_sources_file(sources_file).settings if sources_file else None
    config = load_config(
        {
            "store": str(store) if store else None,
            "timeout": timeout,
            "max_size": max_size,
            "obey_robots": False if ignore_robots else None,
            **network_overrides(allow_private_addresses, resolve),
        },
        file_values=file_values,
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
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data") / "demo",
    show_default=True,
    help="Where the demo keeps its store, text files and Atom feed (started afresh).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Only serve the demo site (and write a sources file for it) until Ctrl-C.",
)
@click.option(
    "--cycle",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="With --serve: the cycle of the site to show.",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between two scheduled crawls of a source.",
)
def demo(workdir: Path, serve: bool, cycle: int, every: float) -> None:
    """Monitor a bundled German news site on 127.0.0.1 while it changes.

    The scheduler crawls the site's feed and news sitemap every few seconds through five
    cycles: publication, new articles with template churn everywhere, a 503 outage, an
    edit plus a removal, churn again. Then shows what was detected and where to look.
    Exits 1 if the detected changes differ from the real ones.
    """
    from rich.console import Console

    from crawler.demo import CycleReport, DemoError, run_demo, serve_demo_site

    console = Console(stderr=True, soft_wrap=True)
    if serve:
        serve_demo_site(workdir, cycle, every, console.print)
        return
    console.print(f"[bold]Demo:[/bold] monitoring a local news site, results in {workdir}/")

    def show(cycle: CycleReport) -> None:
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in cycle.counts.items() if n)
        runs = ", ".join(f"{s} {o}" for s, o in cycle.outcomes.items())
        console.print(
            f"  cycle {cycle.cycle}: {cycle.description}\n"
            f"    found: {counts or 'nothing'}  [dim]({runs})[/dim]"
        )

    with console.status("the scheduler is crawling…"):
        result = run_demo(workdir, every=every, on_cycle=show)
    expected = result.expected
    mark = "[green]✓[/green]" if result.exact else "[red]✗[/red]"
    console.print(
        f"\n{mark} detected {result.events.get('new', 0)} new articles "
        f"(expected {expected.new}), changed: {', '.join(result.changed) or 'none'} "
        f"(expected {', '.join(expected.changed)}), removed: "
        f"{', '.join(result.removed) or 'none'} (expected {', '.join(expected.removed)}), "
        f"in {result.seconds:.0f} s"
    )
    store = result.store
    console.print(
        "\nWhere to look:\n"
        f"  store        {store}\n"
        f"  text files   {store.parent / 'articles'}/\n"
        f"  Atom feed    {store.parent / 'changes.atom'}\n"
        f"  changes      crawler changes --store {store}\n"
        f"  a diff       crawler diff {(result.changed or ('URL',))[0]} --store {store}\n"
        f"  report       crawler report --since 30d --store {store} -o report.html\n"
        f"  browse       crawler serve --store {store}"
    )
    if not result.exact:
        raise DemoError("the demo did not detect exactly the real changes")


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
