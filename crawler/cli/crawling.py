"""Commands that crawl and monitor: ``crawl``, ``schedule`` and ``status``."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from crawler.cli import (
    cli,
    json_option,
    network_arguments,
    network_options,
    network_overrides,
    store_option,
)
from crawler.errors import ConfigError, CrawlerError
from crawler.settings import Config, load_config
from crawler.sources import DEFAULT_SOURCES, Source, SourcesFile, read_sources_file

if TYPE_CHECKING:
    from crawler.runner import CrawlSummary

F = TypeVar("F", bound=Callable[..., Any])
SHOWN = ("fetched", "new", "changed", "unchanged", "not_modified", "removed", "errors")


class SourceFailed(CrawlerError):
    """At least one source failed; the summary says which and why."""


def sources_option(help_text: str) -> Callable[[F], F]:
    """The ``--sources FILE`` option of the commands that read sources.toml."""
    return click.option(
        "--sources",
        "sources_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_SOURCES,
        show_default=True,
        help=help_text,
    )


@cli.command()
@click.argument("names", nargs=-1)
@sources_option("The sources file.")
@store_option
@click.option(
    "--max-pages", type=click.IntRange(min=1), default=None, help="Article pages per source."
)
@click.option("--revisit-only", is_flag=True, help="Only revisit known articles that are due.")
@network_options
@json_option
@click.pass_context
def crawl(
    ctx: click.Context,
    names: tuple[str, ...],
    sources_file: Path,
    store: Path | None,
    max_pages: int | None,
    revisit_only: bool,
    allow_private_addresses: bool,
    resolve: tuple[str, ...],
    as_json: bool,
) -> None:
    """Crawl the named sources (default: every enabled one) once.

    Discovers articles, fetches new ones and revisits known ones that are due. Exits 1
    when a source failed (its feed or sitemap could not be read, or storage failed).
    """
    from crawler.runner import crawl_sources

    sources_found = read_sources_file(sources_file)
    sources = select_sources(sources_found.sources, names)
    config = load_config(
        {
            "store": str(store) if store else None,
            **network_overrides(allow_private_addresses, resolve),
        },
        file_values=sources_found.settings,
    )
    with _Progress(enabled=not as_json) as progress:
        summary = crawl_sources(
            sources,
            config,
            max_pages=max_pages,
            revisit_only=revisit_only,
            on_progress=progress.update,
            verbose=ctx.obj["debug"],
        )
    alerts = _publish_alerts(config, sources_found)
    if as_json:
        click.echo(
            json.dumps({**summary.as_dict(), "alerts": alerts}, ensure_ascii=False, indent=2)
        )
    else:
        _print_summary(summary)
        if alerts:
            click.echo(alerts, err=True)
    failed = [run.source for run in summary.runs if run.outcome in ("failed", "interrupted")]
    if failed:
        raise SourceFailed(
            f"{len(failed)} of {len(summary.runs)} sources failed: {', '.join(failed)}"
        )


def _publish_alerts(config: Config, found: SourcesFile) -> str | None:
    """Deliver alerts and rewrite the Atom feed; a failing webhook never fails the crawl."""
    from datetime import UTC, datetime

    from crawler.alerts import publish_alerts
    from crawler.store import open_store

    db = open_store(config.store)
    try:
        atom = (
            Path(found.alerts.atom)
            if found.alerts.atom
            else Path(config.store).parent / "changes.atom"
        )
        filters = {source.name: source.alert for source in found.sources}
        report = publish_alerts(
            db,
            found.alerts,
            filters,
            atom_path=atom,
            now=datetime.now(UTC),
            user_agent=config.effective_user_agent,
            policy=config.allow_private_addresses,
            resolve=dict(config.resolve),
        )
    finally:
        db.close()
    return report.describe() if report is not None else None


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
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    console.print(table)
    for run in summary.runs:
        for error in run.errors:
            console.print(f"[red]{run.source}:[/red] {error}", soft_wrap=True)


@cli.command()
@sources_option("The sources file; reloaded on SIGHUP or when it changes.")
@store_option
@click.option(
    "--time-limit",
    type=click.FloatRange(min=1),
    default=1800,
    show_default=True,
    help="Seconds a crawl may run before it is stopped.",
)
@click.option(
    "--revisit-every",
    default="5m",
    show_default=True,
    help="How often each source's due revisits run (a duration: 30s, 5m, 1h).",
)
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop by itself after this many seconds (for demos and tests).",
)
@network_options
def schedule(
    sources_file: Path,
    store: Path | None,
    time_limit: float,
    revisit_every: str,
    duration: float | None,
    allow_private_addresses: bool,
    resolve: tuple[str, ...],
) -> None:
    """Crawl every enabled source on its schedule until stopped (SIGTERM or Ctrl-C).

    Each run is a separate `crawler crawl` process with a time limit; see scheduler.py.
    """
    import scheduler
    from crawler.sources import parse_duration

    try:
        every = parse_duration(revisit_every)
    except ValueError as error:
        raise ConfigError(f"--revisit-every: {error}") from None
    found = read_sources_file(sources_file)  # a bad file is one error line before anything
    config = load_config(
        {
            "store": str(store) if store else None,
            **network_overrides(allow_private_addresses, resolve),
        },
        file_values=found.settings,
    )
    settings = scheduler.SchedulerSettings(
        sources_file=sources_file.resolve(),
        store=Path(config.store).resolve(),
        time_limit=time_limit,
        revisit_every=every,
        crawl_options=tuple(network_arguments(allow_private_addresses, resolve)),
    )
    scheduler.configure_logging(settings.store)
    scheduler.run_scheduler(settings, duration)


@cli.command()
@click.argument("article", required=False)
@sources_option("The sources file (for schedules).")
@store_option
@json_option
def status(article: str | None, sources_file: Path, store: Path | None, as_json: bool) -> None:
    """Per source: last and next run, articles, recent changes, failing checks, warnings.

    With ARTICLE (a URL or an id): when it is checked next and why, and its last checks.
    """
    from datetime import UTC, datetime

    from crawler.monitoring import article_report, source_reports

    config = load_config({"store": str(store) if store else None})
    now = datetime.now(UTC)
    if article is not None:
        report = article_report(Path(config.store), article)
        if as_json:
            click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            _print_article_status(report)
        return
    sources = read_sources_file(sources_file).sources if sources_file.exists() else []
    reports = source_reports(Path(config.store), sources, now)
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
    else:
        _print_source_status(reports)


def _print_source_status(reports: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sources")
    for column in (
        "source",
        "last run",
        "next run",
        "articles",
        "changes 24h/7d",
        "failing checks",
    ):
        table.add_column(column)
    for report in reports:
        failures = report["failures"]
        assert isinstance(failures, dict)
        table.add_row(
            str(report["source"]),
            f"{_short(report['last_started']) or 'never'} {report['last_outcome'] or ''}".strip(),
            _short(report["next_run"]) or "-",
            f"{report['articles']} ({report['removed']} removed)",
            f"{report['changes_day']}/{report['changes_week']}",
            ", ".join(f"{k} {v}" for k, v in failures.items()) or "none",
        )
    console = Console()
    console.print(table)
    for report in reports:
        for warning in report["warnings"] or []:  # type: ignore[attr-defined]
            console.print(f"[yellow]warning[/yellow] {report['source']}: {warning}", soft_wrap=True)


def _short(stamp: object) -> str:
    """A store timestamp to the minute, for tables: ``2026-11-24 05:31``."""
    text = str(stamp or "")
    return text[:16].replace("T", " ") if text[:4].isdigit() else text


def _print_article_status(report: dict[str, object]) -> None:
    lines = [
        f"{report['canonical_url']} ({report['status']}, {report['version_count']} versions, "
        f"source {report['source'] or '-'})",
        f"first seen {report['first_seen']}, last checked {report['last_checked']}, "
        f"last changed {report['last_changed']}",
        f"next check: {report['next_check_at'] or 'none'} - {report['next_check_reason'] or '-'}",
        "recent checks:",
    ]
    for fetch in report["fetches"]:  # type: ignore[attr-defined]
        status = fetch["http_status"] or ""
        lines.append(
            f"  {fetch['at']}  {fetch['outcome']}  {status}  {fetch['reason'] or ''}".rstrip()
        )
    click.echo("\n".join(lines))
