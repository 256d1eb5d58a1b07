"""``crawler crawl``: run sources from sources.toml once, with a live progress display."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crawler.cli import cli, json_option, store_option
from crawler.errors import ConfigError, CrawlerError
from crawler.settings import load_config
from crawler.sources import DEFAULT_SOURCES, Source, load_sources

if TYPE_CHECKING:
    from crawler.runner import CrawlSummary

SHOWN = ("fetched", "new", "changed", "unchanged", "not_modified", "removed", "errors")


class SourceFailed(CrawlerError):
    """At least one source failed; the summary says which and why."""


@cli.command()
@click.argument("names", nargs=-1)
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SOURCES,
    show_default=True,
    help="The sources file.",
)
@store_option
@click.option(
    "--max-pages", type=click.IntRange(min=1), default=None, help="Article pages per source."
)
@json_option
@click.pass_context
def crawl(
    ctx: click.Context,
    names: tuple[str, ...],
    sources_file: Path,
    store: Path | None,
    max_pages: int | None,
    as_json: bool,
) -> None:
    """Crawl the named sources (default: every enabled one) once.

    Discovers articles, fetches new ones and revisits known ones that are due. Exits 1
    when a source failed (its feed or sitemap could not be read, or storage failed).
    """
    from crawler.runner import crawl_sources

    sources = select_sources(load_sources(sources_file), names)
    config = load_config({"store": str(store) if store else None})
    with _Progress(enabled=not as_json) as progress:
        summary = crawl_sources(
            sources,
            config,
            max_pages=max_pages,
            on_progress=progress.update,
            verbose=ctx.obj["debug"],
        )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_summary(summary)
    failed = [run.source for run in summary.runs if run.outcome != "ok"]
    if failed:
        raise SourceFailed(
            f"{len(failed)} of {len(summary.runs)} sources failed: {', '.join(failed)}"
        )


def select_sources(sources: list[Source], names: tuple[str, ...]) -> list[Source]:
    """The named sources (even if disabled), or every enabled source when none is named."""
    if not names:
        chosen = [source for source in sources if source.enabled]
        if not chosen:
            raise ConfigError("no enabled sources to crawl")
        return chosen
    by_name = {source.name: source for source in sources}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(f"unknown source {unknown[0]!r} (known: {', '.join(by_name) or 'none'})")
    return [by_name[name] for name in dict.fromkeys(names)]


class _Progress:
    """A rich live line on stderr: pages fetched, outcomes and pages per second."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.enabled = enabled and self.console.is_terminal

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.live.stop()

    def update(self, counts: Counter[str], elapsed: float) -> None:
        if not self.enabled:
            return
        rate = counts["fetched"] / elapsed if elapsed else 0.0
        parts = [f"{key.replace('_', ' ')} {counts[key]}" for key in SHOWN]
        self.live.update(f"[bold]crawling[/bold]  {'  ·  '.join(parts)}  ·  {rate:.1f} pages/s")


def _print_summary(summary: CrawlSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"crawl finished in {summary.elapsed:.1f} s")
    table.add_column("source")
    table.add_column("outcome")
    for key in SHOWN:
        table.add_column(key.replace("_", " "), justify="right")
    for run in summary.runs:
        style = "green" if run.outcome == "ok" else "red"
        cells = [str(run.counts.get(key, 0)) for key in SHOWN]
        table.add_row(run.source, f"[{style}]{run.outcome}[/{style}]", *cells)
    console = Console(stderr=True)
    console.print(table)
    for run in summary.runs:
        for error in run.errors:
            console.print(f"[red]{run.source}:[/red] {error}", soft_wrap=True)
