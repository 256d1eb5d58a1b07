"""Datasette over the store: read-only browsing, metadata and canned queries.

This is Datasette's one home in the package. The store is attached as a mutable database,
which Datasette opens with ``?mode=ro`` for every query; no canned query writes and
``?sql=`` accepts only SELECT statements, so nothing can change the store through the
server. Values are shown HTML-escaped and only http(s) values become links (Datasette's
defaults, covered by tests/test_serve.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TITLE = "newsmonitor-crawler store"
DESCRIPTION = (
    "Every article the crawler tracks, every distinct version of its text, and what "
    "happened to it: new, changed, title changed, removed, restored. Read-only."
)
SETTINGS = {
    "truncate_cells_html": 240,  # article texts are long; full values stay in the JSON
    "sql_time_limit_ms": 3000,  # full-text search with snippets over a large store
    "allow_download": False,
}

TABLES: dict[str, dict[str, Any]] = {
    "articles": {
        "description": "One row per article (canonical URL) and its current state.",
        "label_column": "canonical_url",
        "facets": ["source", "status"],
        "sort_desc": "last_changed",
        "columns": {
            "id": "Article id, used by the other tables.",
            "url": "The URL the article was first fetched from.",
            "canonical_url": "The URL the article is stored under (its declared canonical URL).",
            "source": "Name of the source in sources.toml; empty for single fetches.",
            "status": "live, or removed after a confirmed 404/410.",
            "first_seen": "When the article was first recorded (UTC).",
            "last_checked": "When it was last fetched successfully (UTC).",
            "last_changed": "When its text last changed or it was removed (UTC).",
            "etag": "ETag of the last response, for conditional requests.",
            "last_modified": "Last-Modified of the last response, for conditional requests.",
            "body_hash": "SHA-256 of the last raw response body.",
            "fingerprint": "SHA-256 of the normalised text of the current version.",
            "version_count": "Number of distinct versions; the newest has this number.",
            "text_file": "Name of the text file holding the latest version.",
            "gone_since": "First 404/410 of a removal not yet confirmed (UTC).",
            "failures": "Failed checks in a row.",
            "last_error": "Why the last check failed.",
            "listed_at": "When a listing page last linked to the article (UTC).",
            "next_check_at": "When the article is due to be checked again (UTC).",
            "next_check_reason": "Why that revisit interval was chosen.",
        },
    },
    "article_urls": {
        "description": "Every URL an article was reached under (tracking parameters, redirects).",
        "columns": {
            "url": "A canonicalised URL.",
            "article_id": "The article it leads to.",
        },
    },
    "versions": {
        "description": "Every distinct text of every article, with its diff to the previous "
        "version (a view over version_rows: the text is rebuilt from the article's paragraphs).",
        "label_column": "title",
        "facets": ["change_class", "language"],
        "sort_desc": "fetched_at",
        "columns": {
            "id": "Version id.",
            "article_id": "The article.",
            "number": "1 for the first text, then one more per change.",
            "fetched_at": "When this text was first seen (UTC).",
            "url": "The URL it was fetched from.",
            "title": "Article title.",
            "author": "Author(s) from the page metadata.",
            "published": "Publication date from the page metadata.",
            "site_name": "Site name from the page metadata.",
            "language": "Language code from the page metadata.",
            "description": "Description/teaser from the page metadata.",
            "tags": "Tags as a JSON list.",
            "categories": "Categories as a JSON list.",
            "text": "The text: title on the first line, then one paragraph a line.",
            "words": "Words in the body.",
            "fingerprint": "SHA-256 of the normalised text.",
            "change_class": "title (only the title changed), minor or major; empty for version 1.",
            "paragraphs_added": "Body paragraphs added since the previous version.",
            "paragraphs_removed": "Body paragraphs removed since the previous version.",
            "paragraphs_modified": "Body paragraphs edited since the previous version.",
            "words_added": "Body words added since the previous version.",
            "words_removed": "Body words removed since the previous version.",
            "diff": "The diff to the previous version as JSON (paragraph and word counts, "
            "old and new paragraphs).",
            "extractor": "Extraction library and version that produced the text.",
        },
    },
    "version_rows": {
        "description": "Append-only rows behind the versions view: the same columns, but the "
        "text as a list of paragraph ids (each distinct line of an article is stored once). "
        "Read versions instead.",
        "hidden": True,
        "columns": {
            "paragraphs": "The ids of the text's lines in order, as a JSON list (the first "
            "line is the title).",
        },
    },
    "paragraphs": {
        "description": "Every distinct line (title or paragraph) of an article, stored once "
        "however many versions share it.",
        "hidden": True,
        "columns": {
            "id": "Paragraph id.",
            "article_id": "The article.",
            "text": "The line.",
        },
    },
    "versions_fts": {
        "description": "FTS5 full-text index over version titles and texts (its content is "
        "the versions view); query it with MATCH, rank with bm25().",
        "columns": {"title": "Indexed title.", "text": "Indexed text."},
    },
    "events": {
        "description": "What a reader wants to know: new, changed, title_changed, removed, "
        "restored.",
        "facets": ["kind"],
        "sort_desc": "at",
        "columns": {
            "id": "Event id.",
            "article_id": "The article.",
            "version_id": "The version the event created (empty for removals).",
            "kind": "new, changed, title_changed, removed or restored.",
            "at": "When it happened (UTC).",
            "summary": "One line: the diff summary or the reason.",
        },
    },
    "fetches": {
        "description": "Every download and its outcome, failures included.",
        "facets": ["outcome"],
        "sort_desc": "at",
        "columns": {
            "id": "Fetch id.",
            "url": "The URL fetched (after redirects).",
            "article_id": "The article, when known.",
            "at": "When (UTC).",
            "http_status": "HTTP status code, if a response came.",
            "bytes": "Size of the response body.",
            "elapsed_ms": "Download time in milliseconds.",
            "outcome": "new, changed, unchanged, not_modified, removed, rebaselined, or a "
            "failure (timeout, server_error, client_error, redirect_refused, rate_limited, "
            "blocked, too_large, unsupported_type, extract_timeout, gone_suspect, …).",
            "reason": "Details of a failure.",
            "source": "The source whose crawl made this fetch (empty for crawler fetch).",
        },
    },
    "deliveries": {
        "description": "One row per event and alert target (webhook, Atom feed): whether "
        "the alert went out.",
        "facets": ["target", "status"],
        "sort_desc": "updated_at",
        "columns": {
            "id": "Delivery id.",
            "event_id": "The event alerted.",
            "target": "Where the alert goes.",
            "status": "pending, delivered, failed, or filtered (the source's alert filter "
            "left it out).",
            "attempts": "Delivery attempts so far.",
            "last_error": "Why the last attempt failed.",
            "updated_at": "Last change of this row (UTC).",
        },
    },
    "locks": {
        "description": "Named locks: which process holds each, and until when.",
        "columns": {
            "name": "What is locked.",
            "owner": "Who holds the lock.",
            "acquired_at": "When it was taken (UTC).",
            "expires_at": "When it lapses unless renewed (UTC).",
        },
    },
    "runs": {
        "description": "One row per crawl of a source: when, outcome and counts.",
        "facets": ["source", "outcome"],
        "sort_desc": "started_at",
        "columns": {
            "id": "Run id.",
            "source": "The source crawled.",
            "started_at": "Start (UTC).",
            "finished_at": "End (UTC); empty while running.",
            "outcome": "running, ok, failed, interrupted, or crashed (its process died).",
            "fetched": "Pages fetched.",
            "new": "New articles.",
            "changed": "Changed articles.",
            "unchanged": "Articles with the same text.",
            "not_modified": "Articles answered with 304 Not Modified.",
            "removed": "Articles confirmed removed.",
            "errors": "Failed fetches.",
            "error": "Why the run failed.",
            "host": "The host of the crawl process.",
            "pid": "The process id of the crawl, to tell a crashed run from a live one.",
        },
    },
}

_LATEST_TITLE = "LEFT JOIN versions v ON v.article_id = a.id AND v.number = a.version_count"

QUERIES: dict[str, dict[str, Any]] = {
    "recent_changes": {
        "title": "Recent changes",
        "description": "The latest 200 events, newest first, with the version they created.",
        "sql": """SELECT e.at, e.kind, a.source, v.title, a.canonical_url AS url,
    v.number AS version, v.change_class, v.words_added, v.words_removed, e.summary,
    e.article_id
FROM events e
JOIN articles a ON a.id = e.article_id
LEFT JOIN versions v ON v.id = e.version_id
ORDER BY e.at DESC, e.id DESC
LIMIT 200""",
    },
    "most_edited": {
        "title": "Most edited articles",
        "description": "Articles with more than one version, the most versions first.",
        "sql": f"""SELECT a.id, v.title, a.source, a.canonical_url AS url,
    a.version_count AS versions, a.first_seen, a.last_changed, a.status
FROM articles a
{_LATEST_TITLE}
WHERE a.version_count > 1
ORDER BY a.version_count DESC, a.last_changed DESC
LIMIT 100""",
    },
    "removed_articles": {
        "title": "Removed articles",
        "description": "Articles whose removal (404/410) was confirmed, the latest first.",
        "sql": f"""SELECT a.id, v.title, a.source, a.canonical_url AS url,
    (SELECT max(r.at) FROM events r WHERE r.article_id = a.id AND r.kind = 'removed')
        AS removed_at,
    a.version_count AS versions, a.first_seen
FROM articles a
{_LATEST_TITLE}
WHERE a.status = 'removed'
ORDER BY removed_at DESC""",
    },
    "search": {
        "title": "Full-text search",
        "description": 'FTS5 syntax over every version: words, "quoted phrases" (write '
        '"Nato-Chef" with quotes), prefix*, AND/OR/NOT. Best matches first (bm25, the '
        "title weighted 10 times); matches marked **like this** in the snippet.",
        "sql": """SELECT v.article_id, v.number AS version, v.number = a.version_count AS latest,
    a.source, v.title,
    snippet(versions_fts, 1, '**', '**', '…', 16) AS snippet,
    a.canonical_url AS url, v.fetched_at,
    round(bm25(versions_fts, 10.0, 1.0), 3) AS score
FROM versions_fts
JOIN versions v ON v.id = versions_fts.rowid
JOIN articles a ON a.id = v.article_id
WHERE :q <> '' AND versions_fts MATCH :q
ORDER BY score
LIMIT 50""",
    },
    "article_history": {
        "title": "One article's history",
        "description": "Every version of one article, oldest first: give its id or any URL "
        "it was reached under.",
        "sql": """SELECT v.number, v.fetched_at, v.title, v.change_class, v.words,
    v.words_added, v.words_removed, v.paragraphs_added, v.paragraphs_modified,
    v.paragraphs_removed, e.summary, v.url
FROM versions v
LEFT JOIN events e ON e.article_id = v.article_id AND e.version_id = v.id
    AND e.kind IN ('new', 'changed', 'title_changed')
WHERE v.article_id = (
    SELECT id FROM articles WHERE id = CAST(:article AS INTEGER) OR canonical_url = :article
    UNION ALL SELECT article_id FROM article_urls WHERE url = :article
    LIMIT 1)
ORDER BY v.number""",
    },
}


def datasette_metadata(database: str) -> dict[str, Any]:
    """Datasette metadata for the store attached under the name ``database``."""
    tables = {name: dict(table) for name, table in TABLES.items()}
    return {
        "title": TITLE,
        "description": DESCRIPTION,
        "databases": {
            database: {
                "description": DESCRIPTION,
                "tables": tables,
                "queries": QUERIES,
            }
        },
    }


def make_datasette(store: Path) -> Any:
    """A Datasette instance serving ``store`` read-only (``mode=ro``) with our metadata."""
    from datasette.app import Datasette

    path = Path(store).resolve()
    return Datasette(
        files=[str(path)],
        metadata=datasette_metadata(path.stem),
        settings=SETTINGS,
    )


def serve_store(store: Path, *, host: str, port: int) -> None:
    """Serve ``store`` over HTTP on ``host:port`` until interrupted."""
    import uvicorn

    app = make_datasette(store)
    uvicorn.run(app.app(), host=host, port=port, log_level="warning", lifespan="on")
