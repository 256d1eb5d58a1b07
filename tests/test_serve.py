"""``crawler serve``: Datasette in a subprocess on a free loopback port, queried over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from servers import cli_command, cli_env
from test_report import HOSTILE_URL, build_store

from crawler import store
from crawler.serving import QUERIES, datasette_metadata

STARTUP_TIMEOUT = 30.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Served:
    base: str
    store: Path

    def get(self, path: str, **params: str) -> tuple[int, str]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return request(self.base + path + query)

    def rows(self, path: str, **params: str) -> list[dict[str, Any]]:
        status, body = self.get(path, _shape="array", **params)
        assert status == 200, body[:500]
        return json.loads(body)


def request(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with NO_PROXY.open(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the server until it answers; fail with its log if it exits or never answers."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"crawler serve exited {process.returncode}: {log.read_text()}")
        try:
            if request(base + "/-/versions.json")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)  # not listening yet
    pytest.fail(f"crawler serve did not answer within {STARTUP_TIMEOUT} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    db_path = build_store(tmp / "crawl.db")
    base = f"http://127.0.0.1:{(port := free_port())}"
    log = tmp / "serve.log"
    with log.open("wb") as output:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            cli_command("serve", "--port", str(port), store=db_path),
            env=cli_env(tmp / "home"),
            cwd=tmp,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(base, process, log)
        yield Served(base, db_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode in (0, -15), "crawler serve did not stop cleanly"


def test_metadata_is_served(served):
    metadata = json.loads(served.get("/-/metadata.json")[1])
    assert metadata["title"] == "newsmonitor-crawler store"
    columns = metadata["databases"]["crawl"]["tables"]["versions"]["columns"]
    assert "change_class" in columns
    assert set(metadata["databases"]["crawl"]["queries"]) == set(QUERIES)


def test_metadata_describes_every_table_and_column(tmp_path):
    db = sqlite_utils.Database(store.open_store(tmp_path / "crawl.db").conn)
    tables = datasette_metadata("crawl")["databases"]["crawl"]["tables"]
    for name in [*db.table_names(), *db.view_names()]:
        if name.startswith("versions_fts_"):
            continue  # FTS5's shadow tables, hidden by Datasette
        assert tables.get(name, {}).get("description"), f"table {name} has no description"
        columns = set(db[name].columns_dict)
        if name == "version_rows":  # the versions view's columns, described there
            columns -= set(tables["versions"]["columns"])
        missing = columns - set(tables[name]["columns"])
        assert not missing, f"{name}: no description for {sorted(missing)}"


def test_recent_changes(served):
    rows = served.rows("/crawl/recent_changes.json")
    assert len(rows) == 11  # 6 new, 3 changed, 1 title changed, 1 removed
    assert [r["at"] for r in rows] == sorted((r["at"] for r in rows), reverse=True)
    assert rows[0]["kind"] == "changed" and rows[0]["source"] == "heise"
    assert {r["kind"] for r in rows} == {"new", "changed", "title_changed", "removed"}


def test_most_edited_and_removed(served):
    edited = served.rows("/crawl/most_edited.json")
    assert [(r["source"], r["versions"]) for r in edited][0] == ("dwn", 3)
    assert len(edited) == 3
    removed = served.rows("/crawl/removed_articles.json")
    assert [(r["source"], r["title"]) for r in removed] == [("faz", "Stromnetz-Ausbau stockt")]
    assert removed[0]["removed_at"] == "2026-11-20T12:00:00.000Z"


def test_full_text_search(served):
    hits = served.rows("/crawl/search.json", q='"Nato-Chef"')
    assert [(h["version"], h["title"]) for h in hits] == [
        (1, "Nato-Chef trifft Trump"),
        (2, "Nato-Chef trifft Trump"),
    ]
    umlaut = served.rows("/crawl/search.json", q="bestätigt")
    assert "**bestätigt**" in umlaut[0]["snippet"]
    assert served.rows("/crawl/search.json", q="") == []
    status, body = served.get("/crawl/search.json", q="Nato-Chef")  # raw FTS5: a column filter
    assert status == 400 and "no such column" in body


def test_article_history_by_id_or_url(served):
    by_url = served.rows(
        "/crawl/article_history.json", article="https://www.dwn.example/politik/nato-treffen"
    )
    assert [(r["number"], r["change_class"]) for r in by_url] == [
        (1, None),
        (2, "minor"),
        (3, "title"),
    ]
    assert by_url[2]["summary"].startswith("title changed")
    article_id = served.rows("/crawl/most_edited.json")[0]["id"]
    assert served.rows("/crawl/article_history.json", article=str(article_id)) == by_url
    assert served.rows("/crawl/article_history.json", article="https://nowhere.example/") == []


def test_hostile_values_are_escaped(served):
    for path in ("/crawl/versions", "/crawl/recent_changes", "/crawl/articles"):
        status, html = served.get(path)
        assert status == 200
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert 'href="javascript:' not in html.lower(), path
    html = served.get("/crawl/versions")[1]
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html or (
        "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in html
    )
    # The page declared a javascript: canonical URL; the store kept the https one instead.
    assert HOSTILE_URL not in served.get("/crawl/articles")[1]


def test_writes_are_refused(served):
    before = served.rows("/crawl.json", sql="select count(*) as n from events")[0]["n"]
    status, body = served.get("/crawl.json", sql="DELETE FROM events")
    assert status == 400 and "Statement must be a SELECT" in body
    # Datasette 0.65 has no insert API and answers POSTs to read-only pages with an error
    # (500 for a canned query); what matters is that nothing is written.
    insert = json.dumps({"row": {"article_id": 1, "kind": "new", "at": "x", "summary": "x"}})
    for path, data in (
        ("/crawl/events/-/insert", insert.encode()),
        ("/crawl/recent_changes", b"x=1"),
    ):
        assert request(served.base + path, data=data)[0] >= 400, path
    with sqlite_utils.Database(served.store) as db:
        assert db.execute("select count(*) from events").fetchone()[0] == before


def test_serve_without_a_store(tmp_path, cli):
    done = cli("serve", "--port", str(free_port()), store=tmp_path / "missing.db")
    assert done.returncode == 1 and done.stderr.startswith("error: no store at")
