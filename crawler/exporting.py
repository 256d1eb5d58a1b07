"""Exports of stored versions: JSON Lines, CSV, or a folder of seed-format text files.

Writers take an iterable of :class:`~crawler.store.queries.ExportRow` (streamed from the
store) and write as they go; none holds the whole export in memory. Text file names follow
the store's: ``NNN_<16 hex>.txt`` from the article id and canonical URL, with ``-vN`` before
the suffix when every version is exported; never a name taken from a URL path.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from crawler.errors import ConfigError
from crawler.store.queries import ExportRow
from crawler.textfiles import text_file_name

EXPORT_FORMATS = ("jsonl", "csv", "text")
CSV_COLUMNS = (
    "article_id", "canonical_url", "source", "status", "version", "latest", "fetched_at",
    "url", "title", "author", "published", "site_name", "language", "description", "tags",
    "categories", "words", "change_class", "fingerprint", "text",
)  # fmt: skip

Tick = Callable[[], None]


def export_file_name(row: ExportRow, *, versioned: bool) -> str:
    """``NNN_<hex>.txt`` for an article, ``NNN_<hex>-vN.txt`` for version N of it."""
    name = text_file_name(row.article_id, row.canonical_url)
    return name.removesuffix(".txt") + f"-v{row.version}.txt" if versioned else name


def write_jsonl(rows: Iterable[ExportRow], stream: TextIO, tick: Tick | None = None) -> int:
    """One JSON object per line for each row; returns how many were written."""
    count = 0
    for row in rows:
        stream.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        count += 1
        if tick:
            tick()
    return count


def write_csv(rows: Iterable[ExportRow], stream: TextIO, tick: Tick | None = None) -> int:
    """CSV with a header (:data:`CSV_COLUMNS`; tags and categories as JSON arrays)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        values = row.as_dict()
        values["tags"] = json.dumps(values["tags"], ensure_ascii=False)
        values["categories"] = json.dumps(values["categories"], ensure_ascii=False)
        writer.writerow(values[column] for column in CSV_COLUMNS)
        count += 1
        if tick:
            tick()
    return count


def write_text_files(
    rows: Iterable[ExportRow], directory: Path, *, versioned: bool, tick: Tick | None = None
) -> int:
    """One seed-format text file per row in ``directory`` (created); returns the count.

    Raises :class:`ConfigError` if the directory cannot be created or written.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        count = 0
        for row in rows:
            path = directory / export_file_name(row, versioned=versioned)
            text = row.text if row.text.endswith("\n") else row.text + "\n"
            path.write_text(text, encoding="utf-8", newline="\n")
            count += 1
            if tick:
                tick()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"cannot write the export to {directory}: {reason}") from None
    return count
