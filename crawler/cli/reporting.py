"""Commands that show the store to people: ``serve`` (Datasette) and ``report`` (HTML page)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from crawler.cli import cli, store_option
from crawler.errors import ConfigError, CrawlerError
from crawler.settings import load_config
from crawler.store import open_store_readonly

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@cli.command()
@store_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback exposes the store to others.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on.",
)
def serve(store: Path | None, host: str, port: int) -> None:
    """Browse the store in Datasette, read-only, with canned queries.

    Recent changes, most-edited and removed articles, full-text search and one
    article's history are under /DATABASE/QUERY (e.g. /crawl/recent_changes).
    """
    from crawler.serving import serve_store

    path = Path(load_config({"store": str(store) if store else None}).store)
    open_store_readonly(path).conn.close()  # a clear error for a missing or outdated store
    if host not in LOOPBACK_HOSTS:
        click.echo(
            f"warning: listening on {host}: anyone who can reach it can read the store", err=True
        )
    click.echo(f"serving {path} read-only at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve_store(path, host=host, port=port)


@cli.command()
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="Start of the period: 24h, 7d, 2w (before now), an ISO date or datetime (UTC).",
)
@click.option("--until", default=None, help="End of the period, in the same forms. [default: now]")
@click.option("--source", default=None, help="Only articles of this source.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write.",
)
@store_option
def report(
    since: str, until: str | None, source: str | None, output: Path, store: Path | None
) -> None:
    """Write one self-contained HTML page of the articles changed, new and removed in a period.

    Changed articles come with word-level diffs; the page loads nothing from the network.
    """
    from crawler.report import build_report, render_report
    from crawler.store.queries import parse_time
    from crawler.store.reports import Period
    from crawler.textfiles import write_text_file

    now = datetime.now(UTC)
    try:
        period = Period(parse_time(since, now), parse_time(until, now) if until else None, source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    db = open_store_readonly(Path(load_config({"store": str(store) if store else None}).store))
    result = build_report(db, period, now)
    try:
        written = write_text_file(output.parent.resolve(), output.name, render_report(result))
    except OSError as exc:
        raise CrawlerError(f"cannot write {output}: {exc.strerror or exc}") from None
    counts = result.counts
    click.echo(
        f"{written}: {counts.changed} changed, {counts.new} new, {counts.removed} removed", err=True
    )
