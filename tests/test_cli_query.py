"""The query commands end to end: ``crawler search|changes|articles|history|diff|show|export|
stats|sql`` in subprocesses (so output is piped, never a terminal) on stores built by tests."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from test_queries import NATO, build_store

from crawler import store
from crawler.cli.querying import diff_blocks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("query") / "crawl.db", datetime.now(UTC))


@pytest.fixture
def run(cli, built):
    """``run(*args)`` runs a command on the built store and checks it succeeded cleanly."""

    def invoke(*args, ok=True):
        done = cli(*args, store=built)
        assert "Traceback" not in done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return invoke


def test_search_prints_ranked_hits_with_marked_snippets(run):
    out = run("search", "Nato-Chef").stdout.splitlines()
    assert out[0].startswith("1. Rutte trifft Trump in Florida  (article 2, version 3")
    assert "**Nato-Chef**" in out[1]
    assert out[2].strip() == NATO


@pytest.mark.parametrize(
    ("query", "article_ids"),
    [
        ("Straße", [3]),
        ("strasse", [3]),
        ("Sud*", [3]),
        ('"keinerlei Angaben"', [2]),
        ("Nato-Chef", [2]),
        ("Munchen", [3]),
    ],
)
def test_search_json(run, query, article_ids):
    hits = json.loads(run("search", query, "--json").stdout)
    assert [hit["article_id"] for hit in hits] == article_ids


def test_search_options(run):
    every = json.loads(run("search", "title:Chef", "--all-versions", "--json").stdout)
    assert sorted(hit["version"] for hit in every) == [1, 2]
    assert (
        json.loads(run("search", "Trump OR Derby", "--source", "faz", "--json").stdout)[0]["source"]
        == "faz"
    )
    assert len(json.loads(run("search", "Trump OR Derby", "--limit", "1", "--json").stdout)) == 1
    assert json.loads(run("search", "Derby", "--since", "2d", "--json").stdout) == []
    nothing = run("search", "Quantencomputer")
    assert nothing.stdout == "" and "no matches" in nothing.stderr


@pytest.mark.parametrize("query", ["Trump AND", '"Nato', "NOT Trump", "(Trump"])
def test_malformed_search_is_one_error_line(run, query):
    done = run("search", query, ok=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: malformed search query")
    assert len(done.stderr.splitlines()) == 1


def test_changes(run):
    events = json.loads(run("changes", "--json").stdout)
    assert [e["kind"] for e in events] == ["title_changed", "changed", "new", "new", "new"]
    assert events[1]["summary"] == "minor edit: 1 paragraph modified (+1/-1 words)"
    day = json.loads(run("changes", "--since", "1d", "--kind", "new", "--json").stdout)
    assert [(e["kind"], e["article_id"]) for e in day] == [("new", 3)]
    lines = run("changes", "--limit", "2").stdout.splitlines()
    assert lines[0].split("\t") == [
        "at", "kind", "id", "version", "class", "+/-words", "title", "summary"
    ]  # fmt: skip
    assert len(lines) == 3 and lines[2].split("\t")[1] == "changed"
    bad = run("changes", "--since", "yesterday", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read the time")


def test_articles(run):
    found = json.loads(run("articles", "--json").stdout)
    assert [(a["id"], a["versions"], a["status"]) for a in found] == [
        (2, 3, "live"),
        (3, 1, "live"),
        (1, 1, "live"),
    ]
    assert found[0]["title"] == "Rutte trifft Trump in Florida"
    faz = run("articles", "--source", "faz").stdout.splitlines()
    assert len(faz) == 3 and all("\tfaz\t" in line for line in faz[1:])


def test_history(run):
    data = json.loads(run("history", NATO + "?utm_source=x", "--json").stdout)
    assert data["article_id"] == 2
    assert [(v["number"], v["change_class"], v["title_changed"]) for v in data["versions"]] == [
        (1, None, False),
        (2, "minor", False),
        (3, "title", True),
    ]
    lines = run("history", "2").stdout.splitlines()
    assert len(lines) == 4 and "title changed: Rutte trifft Trump" in lines[3]


@pytest.mark.parametrize("command", ["history", "diff", "show"])
@pytest.mark.parametrize("ref", ["42", "https://www.dwn.example/unbekannt"])
def test_unknown_article_is_one_error_line(run, command, ref):
    done = run(command, ref, ok=False)
    assert done.returncode == 1
    assert done.stderr == f"error: no article for {ref!r}\n"


def test_diff_piped_is_plain_with_word_markers(run):
    out = run("diff", "2", "--from", "1", "--to", "2").stdout
    assert "\x1b[" not in out
    assert out.splitlines()[1:] == [
        "… 1 unchanged paragraph …",
        "Zu Details machte die Sprecherin [-keine-] {+keinerlei+} Angaben.",
        "… 3 unchanged paragraphs …",
    ]
    latest = run("diff", NATO).stdout.splitlines()
    assert latest[0].startswith("article 2, version 2 (")
    assert latest[1] == "title: [-Nato-Chef-] {+Rutte+} trifft Trump {+in Florida+}"
    data = json.loads(run("diff", "2", "--from", "1", "--json").stdout)
    assert (data["from"], data["to"], data["words_added"], data["title_changed"]) == (1, 3, 1, True)


def test_diff_needs_two_versions(run):
    done = run("diff", "3", ok=False)
    assert (done.returncode, done.stderr) == (
        1,
        "error: article 3 has only one version: nothing to compare\n",
    )
    assert run("diff", "2", "--from", "7", ok=False).stderr.startswith(
        "error: article 2 has no version 7"
    )


def test_show(run):
    assert run("show", "2", "--version", "1").stdout.startswith(
        "Nato-Chef trifft Trump\nNato-Chef Mark Rutte hat"
    )
    assert "keinerlei" in run("show", NATO).stdout
    data = json.loads(run("show", "2", "--json").stdout)
    assert (data["number"], data["title"], data["canonical_url"]) == (
        3,
        "Rutte trifft Trump in Florida",
        NATO,
    )


def test_export_jsonl_and_csv(run, tmp_path):
    lines = run("export").stdout.splitlines()
    assert [json.loads(line)["article_id"] for line in lines] == [1, 2, 3]
    done = run("export", "--format", "csv", "--all-versions", "--source", "dwn")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["version"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["text"].startswith("Nato-Chef trifft Trump\n")
    assert done.stderr == "exported 3 versions\n"
    target = tmp_path / "out.jsonl"
    run("export", "--since", "1d", "-o", target)
    assert [json.loads(line)["article_id"] for line in target.read_text().splitlines()] == [2, 3]


def test_export_text_files_named_like_the_store(run, built, tmp_path):
    run("export", "--format", "text", "-o", tmp_path / "latest")
    stored = sorted(p.name for p in (built.parent / "articles").iterdir())
    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == stored
    run("export", "--format", "text", "--all-versions", "-o", tmp_path / "all")
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert len(names) == 5 and names[1].startswith("002_") and names[1].endswith("-v1.txt")
    assert (tmp_path / "all" / names[1]).read_text(encoding="utf-8").startswith("Nato-Chef trifft")
    assert run("export", "--format", "text", ok=False).stderr == (
        "error: --format text needs -o FOLDER\n"
    )


def test_stats(run):
    data = json.loads(run("stats", "--json").stdout)
    assert (data["articles"], data["versions"], data["by_status"]) == (3, 5, {"live": 3})
    assert data["by_source"][0] == {"source": "dwn", "articles": 1, "versions": 3}
    assert sum(data["changes_per_day"].values()) == 2
    assert data["size_bytes"] > 0
    assert run("stats").stdout.startswith("3 articles, 5 versions, 5 events, 6 fetches;")


def test_sql(run, built):
    rows = json.loads(run("sql", "SELECT id, source FROM articles ORDER BY id", "--json").stdout)
    assert rows == [
        {"id": 1, "source": "faz"},
        {"id": 2, "source": "dwn"},
        {"id": 3, "source": "faz"},
    ]
    assert run("sql", "SELECT count(*) AS n FROM versions").stdout == "n\n5\n"
    for statement in (
        "DELETE FROM articles",
        "UPDATE version_rows SET title = ''",
        "DROP TABLE events",
    ):
        done = run("sql", statement, ok=False)
        assert done.returncode == 1
        assert done.stderr == (
            "error: the store is opened read-only: attempt to write a readonly database\n"
        )
    assert store.count_rows(store.open_store_readonly(built), "articles") == 3
    bad = run("sql", "SELEC 1", ok=False)
    assert bad.stderr.startswith('error: sql: near "SELEC": syntax error')


@pytest.mark.parametrize(
    "args", [("search", "Nato"), ("changes",), ("articles",), ("stats",), ("sql", "SELECT 1")]
)
def test_missing_store_is_one_error_line(cli, tmp_path, args):
    missing = tmp_path / "nowhere" / "crawl.db"
    done = cli(*args, store=missing)
    assert (done.returncode, done.stderr) == (1, f"error: no store at {missing}\n")
    assert not missing.parent.exists()


def test_empty_store(cli, tmp_path):
    path = tmp_path / "empty.db"
    store.open_store(path).conn.close()
    assert json.loads(cli("changes", "--json", store=path).stdout) == []
    assert json.loads(cli("search", "Nato", "--json", store=path).stdout) == []
    assert (
        cli("articles", store=path).stdout
        == "id\tstatus\tversions\tlast changed\tsource\ttitle\turl\n"
    )
    assert cli("export", store=path).stderr == "exported 0 articles\n"


@pytest.mark.parametrize(
    ("old", "new", "blocks"),
    [
        ("T\na\nb\nc", "T\na\nb\nc", []),
        ("T\na\nb\nc", "T\na\nb\nc\nd", [("unchanged", 3), ("added", "{+d+}")]),
        ("T\na\nb\nc", "T\nb\nc", [("removed", "[-a-]"), ("unchanged", 2)]),
        (
            "T\na\nb x\nc",
            "T\na\nb y\nc",
            [("unchanged", 1), ("modified", "b [-x-] {+y+}"), ("unchanged", 1)],
        ),
        ("T\na", "U\na", [("title", "title: [-T-] {+U+}"), ("unchanged", 1)]),
    ],
)
def test_diff_blocks(old, new, blocks):
    from crawler.cli.querying import _plain_block

    got = [
        (b.op, b.folded if b.op == "unchanged" else _plain_block(b)) for b in diff_blocks(old, new)
    ]
    assert got == blocks
