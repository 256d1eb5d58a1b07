"""Commands that read the store: ``search``, ``changes``, ``articles``, ``history``, ``diff``,
``show``, ``export``, ``stats`` and ``sql``.

Each opens the store read-only, calls one function of :mod:`crawler.store.queries` and
formats the result: rich tables and colours in a terminal, plain tab-separated lines and
``[-deleted-] {+inserted+}`` markers when piped, one JSON document with ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click
import sqlite_utils

from crawler.changes import WordOp, diff_texts, normalize_text, word_diff
from crawler.cli import cli, json_option, store_option
from crawler.errors import ConfigError, CrawlerError
from crawler.settings import load_config
from crawler.store import EVENT_KINDS, open_store_readonly
from crawler.store import queries as q


def _store_path(store: Path | None) -> Path:
    return Path(load_config({"store": str(store) if store else None}).store)


def _open(store: Path | None) -> sqlite_utils.Database:
    return open_store_readonly(_store_path(store))


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--source``, ``--since`` and ``--until`` for a command."""
    when = "30m, 24h, 7d, 2w, an ISO date or datetime (UTC unless given)"
    command = click.option("--until", metavar="WHEN", help=f"Only before this: {when}.")(command)
    command = click.option("--since", metavar="WHEN", help=f"Only from this on: {when}.")(command)
    return click.option("--source", default=None, help="Only articles of this source.")(command)


def _filters(source: str | None, since: str | None, until: str | None) -> q.Filters:
    now = datetime.now(UTC)
    return q.Filters(
        source=source,
        since=q.parse_time(since, now) if since else None,
        until=q.parse_time(until, now) if until else None,
    )


def _is_terminal(stream: TextIO | None = None) -> bool:
    return (stream or sys.stdout).isatty()


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _records(values: Sequence[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(value) for value in values]


_WRAPPED = frozenset({"title", "summary", "url"})


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table in a terminal; a header and tab-separated lines when piped."""
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    if not _is_terminal():
        for line in (list(columns), *cells):
            click.echo("\t".join(" ".join(cell.split()) for cell in line))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold", highlight=False)
    for column in columns:
        table.add_column(column, no_wrap=column not in _WRAPPED, overflow="fold")
    for row in cells:
        table.add_row(*row)
    Console().print(table)


limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many results."
)


# --- search, changes, articles ---------------------------------------------------------


@cli.command()
@click.argument("query")
@store_option
@json_option
@filter_options
@limit_option
@click.option("--all-versions", is_flag=True, help="Search every version, not only the latest.")
def search(
    query: str,
    store: Path | None,
    as_json: bool,
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    all_versions: bool,
) -> None:
    """Full-text search of article titles and texts, best matches first.

    Words are matched whole, ignoring case and accents ("Munchen" finds "München", "Strasse"
    finds "Straße"); "a phrase", prefix*, AND, OR, NOT, NEAR(…) and title:word work as in
    SQLite FTS5. Only latest versions unless --all-versions.
    """
    hits = q.search(
        _open(store),
        query,
        _filters(source, since, until),
        all_versions=all_versions,
        limit=limit or 20,
    )
    if as_json:
        _echo_json(_records(hits))
        return
    for rank, hit in enumerate(hits, 1):
        old = "" if hit.latest else ", older version"
        click.echo(
            f"{rank}. {hit.title}  (article {hit.article_id}, version {hit.version}"
            f"{old}, {hit.fetched_at[:10]})"
        )
        _print_snippet(hit.snippet)
        click.echo(f"   {hit.canonical_url}")
    if not hits:
        click.echo("no matches", err=True)


def _print_snippet(snippet: str) -> None:
    if not _is_terminal():
        click.echo(f"   {snippet}")
        return
    from rich.console import Console
    from rich.text import Text

    text = Text("   ")
    for index, part in enumerate(snippet.split(q.MARK_START)):
        text.append(part, style="bold yellow" if index % 2 else None)
    Console(highlight=False).print(text)


@cli.command()
@store_option
@json_option
@filter_options
@limit_option
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(EVENT_KINDS),
    help="Only events of this kind (repeatable).",
)
def changes(
    store: Path | None,
    as_json: bool,
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    kinds: tuple[str, ...],
) -> None:
    """Recent events (new, changed, title_changed, removed, restored), newest first."""
    events = q.list_changes(
        _open(store), _filters(source, since, until), kinds=kinds, limit=limit or 50
    )
    if as_json:
        _echo_json(_records(events))
        return
    _print_table(
        ("at", "kind", "id", "version", "class", "+/-words", "title", "summary"),
        [
            (
                e.at[:19].replace("T", " "),
                e.kind,
                e.article_id,
                e.version,
                e.change_class,
                f"+{e.words_added}/-{e.words_removed}",
                e.title,
                e.summary,
            )
            for e in events
        ],
    )


@cli.command()
@store_option
@json_option
@filter_options
@limit_option
def articles(
    store: Path | None,
    as_json: bool,
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> None:
    """Tracked articles, last changed first: status, versions, last change and title."""
    found = q.list_articles(_open(store), _filters(source, since, until), limit=limit or 100)
    if as_json:
        _echo_json(_records(found))
        return
    _print_table(
        ("id", "status", "versions", "last changed", "source", "title", "url"),
        [
            (
                a.id,
                a.status,
                a.versions,
                a.last_changed[:19].replace("T", " "),
                a.source,
                a.title,
                a.canonical_url,
            )
            for a in found
        ],
    )


# --- history, diff, show ---------------------------------------------------------------


@cli.command()
@click.argument("article")
@store_option
@json_option
def history(article: str, store: Path | None, as_json: bool) -> None:
    """Every version of ARTICLE (an id or a URL): time, class, words added and removed."""
    db = _open(store)
    found = q.resolve_article(db, article)
    entries = q.article_history(db, found.id)
    if as_json:
        _echo_json(
            {
                "article_id": found.id,
                "canonical_url": found.canonical_url,
                "status": found.status,
                "versions": _records(entries),
            }
        )
        return
    click.echo(f"article {found.id}: {found.canonical_url} ({found.status})", err=True)
    _print_table(
        ("version", "fetched at", "class", "words", "+words", "-words", "title"),
        [
            (
                e.number,
                e.fetched_at[:19].replace("T", " "),
                e.change_class or "first",
                e.words,
                e.words_added,
                e.words_removed,
                ("title changed: " * e.title_changed) + e.title,
            )
            for e in entries
        ],
    )


@cli.command()
@click.argument("article")
@store_option
@json_option
@click.option("--version", "number", type=int, default=-1, help="Version number. [default: latest]")
def show(article: str, store: Path | None, as_json: bool, number: int) -> None:
    """The text of one version of ARTICLE (an id or a URL), in the text-file format."""
    db = _open(store)
    found = q.resolve_article(db, article)
    version = q.get_version(db, found, number)
    if as_json:
        _echo_json(
            {
                "canonical_url": found.canonical_url,
                "source": found.source,
                "status": found.status,
                **dataclasses.asdict(version),
            }
        )
        return
    click.echo(version.text)


@dataclass(frozen=True)
class _Block:
    """A piece of a rendered diff: unchanged paragraphs folded, or one changed paragraph."""

    op: str  # unchanged, added, removed, modified, title
    words: tuple[tuple[str, str], ...] = ()  # (equal|insert|delete, text)
    folded: int = 0


def diff_blocks(old: str, new: str) -> list[_Block]:
    """The diff of two texts in document order, unchanged paragraphs as counts."""
    diff = diff_texts(old, new)
    if not diff.changes and not diff.title_changed:
        return []
    blocks = []
    if diff.title_changed:
        blocks.append(_Block("title", tuple(word_diff(diff.old_title, diff.new_title))))
    i = j = 0  # next unconsumed paragraph in old and new
    for change in diff.changes:
        same = _unchanged_before(change.old_index, change.new_index, i, j)
        if same:
            blocks.append(_Block("unchanged", folded=same))
        i += same + (change.old is not None)
        j += same + (change.new is not None)
        if change.op == "modified":
            words = word_diff(change.old or "", change.new or "")
        else:
            op: WordOp = "insert" if change.op == "added" else "delete"
            words = [(op, change.new or change.old or "")]
        blocks.append(_Block(change.op, tuple(words)))
    body = len(normalize_text(new).split("\n")) - 1  # paragraphs after the title
    if body - j > 0:
        blocks.append(_Block("unchanged", folded=body - j))
    return blocks


def _unchanged_before(old_index: int | None, new_index: int | None, i: int, j: int) -> int:
    # Unchanged runs align one to one, so either side gives the length of the run.
    if old_index is not None:
        return old_index - i
    return (new_index or 0) - j


def _plain_block(block: _Block) -> str:
    if block.op == "unchanged":
        noun = "paragraph" if block.folded == 1 else "paragraphs"
        return f"… {block.folded} unchanged {noun} …"
    marks = {"equal": "{}", "insert": "{{+{}+}}", "delete": "[-{}-]"}
    line = " ".join(marks[op].format(text) for op, text in block.words)
    return f"title: {line}" if block.op == "title" else line


def _rich_block(block: _Block) -> Any:
    from rich.text import Text

    if block.op == "unchanged":
        return Text(_plain_block(block), style="dim")
    styles = {"equal": None, "insert": "bold green", "delete": "red strike"}
    text = Text()
    if block.op == "title":
        text.append("title: ", style="bold")
    for index, (op, words) in enumerate(block.words):
        if index:
            text.append(" ")
        text.append(words, style=styles[op])
    return text


@cli.command("diff")
@click.argument("article")
@store_option
@json_option
@click.option("--from", "old", type=int, default=None, help="Older version. [default: --to - 1]")
@click.option("--to", "new", type=int, default=None, help="Newer version. [default: latest]")
def diff_command(
    article: str, store: Path | None, as_json: bool, old: int | None, new: int | None
) -> None:
    """Paragraph and word-level diff between two versions of ARTICLE (an id or a URL).

    Coloured in a terminal; piped, deletions show as [-words-], insertions as {+words+},
    and unchanged paragraphs are folded.
    """
    db = _open(store)
    found = q.resolve_article(db, article)
    after = q.get_version(db, found, -1 if new is None else new)
    if old is None and after.number == 1:
        raise CrawlerError(f"article {found.id} has only one version: nothing to compare")
    before = q.get_version(db, found, after.number - 1 if old is None else old)
    if as_json:
        diff = diff_texts(before.text, after.text)
        _echo_json(
            {"article_id": found.id, "from": before.number, "to": after.number, **diff.as_dict()}
        )
        return
    header = (
        f"article {found.id}, version {before.number} ({before.fetched_at}) → "
        f"version {after.number} ({after.fetched_at})"
    )
    _print_diff(header, diff_blocks(before.text, after.text))


def _print_diff(header: str, blocks: Sequence[_Block]) -> None:
    if not _is_terminal():
        click.echo(header)
        for block in blocks:
            click.echo(_plain_block(block))
        if not blocks:
            click.echo("no differences")
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(header, style="bold", markup=False)
    for block in blocks:
        console.print(_rich_block(block))
    if not blocks:
        console.print("no differences")


# --- export, stats, sql ----------------------------------------------------------------


@cli.command()
@store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "text"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines, CSV, or a folder of text files.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (folder for text). [default: stdout]",
)
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@filter_options
def export(
    store: Path | None,
    fmt: str,
    output: Path | None,
    all_versions: bool,
    source: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Export article texts with metadata as JSON Lines, CSV or text files.

    Text files are named like the store's (NNN_<hex>.txt, with -vN per version when
    --all-versions). --since and --until apply to when a version was fetched.
    """
    from crawler import exporting

    db = _open(store)
    filters = _filters(source, since, until)
    if fmt == "text" and output is None:
        raise ConfigError("--format text needs -o FOLDER")
    total = q.count_export(db, filters, all_versions=all_versions)
    rows = q.iter_export(db, filters, all_versions=all_versions)
    with _progress(total) as tick:
        if fmt == "text":
            assert output is not None
            count = exporting.write_text_files(rows, output, versioned=all_versions, tick=tick)
        else:
            writer = exporting.write_jsonl if fmt == "jsonl" else exporting.write_csv
            with _output_stream(output) as stream:
                count = writer(rows, stream, tick)
    where = f" to {output}" if output else ""
    click.echo(f"exported {count} {'versions' if all_versions else 'articles'}{where}", err=True)


@contextmanager
def _output_stream(output: Path | None) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        return
    try:
        stream = output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    with stream:
        yield stream


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None] | None]:
    # Only a terminal gets a progress bar; logs and pipes stay clean.
    if total < 1000 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting", total=total)
        yield lambda: bar.advance(task)


@cli.command()
@store_option
@json_option
def stats(store: Path | None, as_json: bool) -> None:
    """Counts per source and status, changes per day (last 14 days), store size on disk."""
    path = _store_path(store)
    result = q.store_stats(open_store_readonly(path), path, datetime.now(UTC))
    if as_json:
        _echo_json(result.as_dict())
        return
    click.echo(
        f"{result.articles} articles, {result.versions} versions, {result.events} events, "
        f"{result.fetches} fetches; {result.size_bytes / 1e6:.1f} MB on disk"
    )
    _print_table(("source", "articles", "versions"), result.by_source)
    _print_table(("status", "articles"), result.by_status)
    new = dict(result.new_per_day)
    changed = dict(result.changes_per_day)
    _print_table(
        ("day", "new", "changes"),
        [(day, new.get(day, 0), changed.get(day, 0)) for day in sorted({*new, *changed})],
    )


@cli.command()
@click.argument("statement")
@store_option
@json_option
def sql(statement: str, store: Path | None, as_json: bool) -> None:
    """Run one SQL STATEMENT on the store opened read-only (writes fail)."""
    result = q.run_sql(_open(store), statement)
    if as_json:
        _echo_json(result.as_dicts())
        return
    _print_table(result.columns, result.rows)
