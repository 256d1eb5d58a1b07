"""Commands that look after the store itself: ``backup`` and ``check``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from crawler.cli import cli, json_option, store_option
from crawler.errors import StoreError
from crawler.settings import load_config


def _store_path(store: Path | None) -> Path:
    return Path(load_config({"store": str(store) if store else None}).store)


@cli.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@store_option
def backup(target: Path, store: Path | None) -> None:
    """Write a consistent copy of the store to TARGET (a new file), safe during crawls.

    Copying crawl.db by hand while a crawl runs is not: its latest commits live in
    crawl.db-wal. Text files can always be rebuilt from the store (``check --repair``).
    """
    from crawler.store import backup_store, open_store

    db = open_store(_store_path(store), create=False, check=True)
    try:
        backup_store(db, target)
    finally:
        db.close()
    click.echo(f"backed up to {target}", err=True)


@cli.command()
@store_option
@click.option("--repair", is_flag=True, help="Rewrite text files that differ from the store.")
@json_option
def check(store: Path | None, repair: bool, as_json: bool) -> None:
    """Check the store (PRAGMA integrity_check) and every article's text file.

    Text files that are missing or differ from the latest version, files no article
    points to and leftover temporary files are listed; ``--repair`` fixes them from the
    store. Exits 1 if a problem is left.
    """
    from crawler.store import integrity_problems, open_store
    from crawler.store.recovery import check_text_files

    path = _store_path(store)
    db = open_store(path, create=False, check=True)
    try:
        problems = integrity_problems(db)
        repairs = check_text_files(db, path.parent / "articles", repair=repair)
    finally:
        db.close()
    lines = problems + repairs.lines()
    if as_json:
        click.echo(json.dumps({"ok": not problems and not repairs.problems, "lines": lines}))
    else:
        for line in lines:
            click.echo(line)
    if problems or repairs.problems:
        raise StoreError(f"the store {path} has {len(problems) + len(repairs.problems)} problems")
    if not as_json:
        click.echo(f"ok: {path}" + (f", {repairs.count} files repaired" if repairs.count else ""))
