"""Store faults (catalogue group D): kills mid-write, backups, a full disk, locks and
long readers, damaged files, interrupted and concurrent migrations.

Every case runs real processes against real SQLite files: the crawl CLI, or
``store_writer.py`` (the crawler's own recording path in a loop).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import textwrap
import time
from pathlib import Path

import proc
import pytest
import sqlite_utils
from dbcheck import assert_db_healthy
from relsite import publish_articles, write_feed_sources

from crawler import store as crawler_store

WRITER = Path(__file__).resolve().parent / "store_writer.py"
FIGURES: dict[str, object] = {}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _query(store: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(store, timeout=60)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _committed(progress: Path) -> int:
    """Versions a writer reported committed (new or changed) in its progress file."""
    if not progress.exists():
        return 0
    kinds = " ".join(line for line in progress.read_text().splitlines() if line != "ready")
    return sum(kind in ("new", "changed") for kind in kinds.split())


def _repaired(stderr: str) -> int:
    """Files the recovery put back in line, from its log line."""
    return sum(
        int(line.split()[2])
        for line in stderr.splitlines()
        if line.startswith("text files: ") and "put back in line" in line
    )


def _writer(store: Path, progress: Path, home: Path, *args: str) -> proc.Proc:
    return proc.start(proc.python(WRITER, store, progress, *args), home)


def _ready(progress: Path, count: int) -> bool:
    return progress.exists() and progress.read_text().count("ready") >= count


# --- D1: SIGKILL mid-write ------------------------------------------------------------


@pytest.mark.slow
def test_d1_sigkill_of_a_writer_at_random_moments_never_loses_or_tears_a_version(store, tmp_path):
    kills, left_out_of_line, repairs = 100, 0, 0
    progress = tmp_path / "progress"
    chance = random.Random(7)
    started = time.monotonic()
    for kill in range(kills):
        writer = _writer(store, progress, tmp_path / "home", "--seed", str(kill))
        proc.wait_for(lambda kill=kill: _ready(progress, kill + 1), timeout=60)
        result = proc.kill_after(writer, chance.uniform(0, 0.2))
        assert result.killed, result.stderr[-2000:]
        repairs += _repaired(result.stderr)
        # Right after the kill: the store is intact, every version a writer was told was
        # committed is there, and only files named in a journal are out of line.
        health = assert_db_healthy(store, allow_journalled=True)
        assert health.versions >= _committed(progress)
        left_out_of_line += health.journalled > 0
    final = proc.run(proc.python(WRITER, store, progress, "--rounds", "1"), tmp_path / "home")
    assert final.returncode == 0, final.stderr[-2000:]
    repairs += _repaired(final.stderr)
    health = assert_db_healthy(store)  # the next writer put every file back in line
    assert health.articles == 30 and health.versions >= _committed(progress)
    FIGURES["d1"] = {
        "kills": kills,
        "kills_leaving_files_ahead": left_out_of_line,
        "files_repaired": repairs,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("D1 figures:", FIGURES["d1"])


# --- D2: backups ------------------------------------------------------------------------


def test_d2_backup_during_writes_is_consistent_and_a_file_copy_can_lose_commits(store, tmp_path):
    progress = tmp_path / "progress"
    writer = _writer(store, progress, tmp_path / "home", "--batch", "5")
    proc.wait_for(lambda: _committed(progress) >= 60, timeout=120)
    backup = tmp_path / "backup.db"
    done = proc.run(proc.crawler("backup", backup, store=store), tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert _query(backup, "PRAGMA integrity_check") == [("ok",)]
    assert _query(backup, "PRAGMA foreign_key_check") == []
    assert _query(backup, "SELECT count(*) FROM versions")[0][0] >= 60

    # While the writer runs its latest commits live in crawl.db-wal: a copy of the
    # .db file alone misses them (which is why backups go through `crawler backup`).
    writer.kill()
    writer.finish()
    assert (store.parent / "crawl.db-wal").stat().st_size > 0
    copy = tmp_path / "copy.db"
    shutil.copy(store, copy)
    in_copy = _query(copy, "SELECT count(*) FROM versions")[0][0]
    assert in_copy < _query(store, "SELECT count(*) FROM versions")[0][0]

    again = proc.run(proc.crawler("backup", backup, store=store), tmp_path / "home")
    assert again.returncode == 1
    assert again.stderr.splitlines()[-1].startswith("error: ")
    assert "already exists" in again.stderr.splitlines()[-1]


# --- D3: disk full ----------------------------------------------------------------------


def test_d3_a_full_disk_rolls_back_fails_the_run_and_loses_nothing(store, tmp_path, newsroom):
    publish_articles(newsroom, 10)
    sources = write_feed_sources(tmp_path / "sources.toml", newsroom)
    home = tmp_path / "home"
    first = proc.run(proc.crawler("crawl", "--sources", sources, store=store), home)
    assert first.returncode == 0, first.stderr
    before = _query(store, "SELECT id, fingerprint FROM versions ORDER BY id")

    # 30 new articles and 4 edits, with every file capped below the store's size:
    # growing the store (or writing past the cap) fails with EFBIG, as on a full disk.
    publish_articles(newsroom, 40, edition=1)
    full = proc.run(
        proc.crawler("crawl", "--sources", sources, store=store),
        home,
        file_size=store.stat().st_size // 2,
    )
    assert full.returncode == 1
    assert full.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in full.stderr
    assert "disk" in full.stderr  # the run's error or the last line names the problem

    health = assert_db_healthy(store, allow_journalled=True)
    assert (
        _query(store, "SELECT id, fingerprint FROM versions ORDER BY id")[: len(before)] == before
    )
    assert health.versions >= len(before)
    outcome, error = _query(store, "SELECT outcome, error FROM runs ORDER BY id DESC LIMIT 1")[0]
    assert outcome in ("failed", "running"), (outcome, error)  # running: it could not even say

    again = proc.run(proc.crawler("crawl", "--sources", sources, "--json", store=store), home)
    assert again.returncode == 0, again.stderr
    health = assert_db_healthy(store)
    assert health.articles == 40
    runs = [outcome for (outcome,) in _query(store, "SELECT outcome FROM runs ORDER BY id")]
    assert runs[0] == "ok" and runs[1] in ("failed", "crashed") and runs[2] == "ok"


# --- D4: locked store, long readers -------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    open(sys.argv[2], "w").write("locked")
    time.sleep(float(sys.argv[3]))
    conn.execute("COMMIT")
    """
)

HOLD_SNAPSHOT = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN")
    count = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    open(sys.argv[2], "w").write(str(count))
    while not __import__("os").path.exists(sys.argv[3]):
        time.sleep(0.05)
    again = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    conn.execute("COMMIT")
    print(count, again)
    """
)


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_d4_a_crawl_waits_for_a_held_write_lock_then_succeeds(store, tmp_path, newsroom):
    publish_articles(newsroom, 6)
    sources = write_feed_sources(tmp_path / "sources.toml", newsroom)
    home = tmp_path / "home"
    crawler_store.open_store(store).close()
    flag = tmp_path / "locked"
    holder = proc.start(
        proc.python(_script(tmp_path, "hold.py", HOLD_LOCK), store, flag, "4"), home
    )
    proc.wait_for(flag.exists, timeout=60)
    crawl = proc.run(proc.crawler("crawl", "--sources", sources, "--json", store=store), home)
    assert holder.finish().returncode == 0
    assert crawl.returncode == 0, crawl.stderr
    assert "locked" not in crawl.stderr
    assert assert_db_healthy(store).articles == 6


def test_d4_a_long_reader_does_not_block_writers_and_the_wal_shrinks_after(store, tmp_path):
    home = tmp_path / "home"
    progress = tmp_path / "progress"
    assert proc.run(proc.python(WRITER, store, progress, "--rounds", "1"), home).returncode == 0
    opened, release = tmp_path / "opened", tmp_path / "release"
    reader = proc.start(
        proc.python(_script(tmp_path, "read.py", HOLD_SNAPSHOT), store, opened, release), home
    )
    proc.wait_for(opened.exists, timeout=60)
    # 60 rounds of 30 versions while the reader holds its snapshot: none waits for it.
    busy = proc.run(proc.python(WRITER, store, progress, "--rounds", "60", "--batch", "30"), home)
    assert busy.returncode == 0, busy.stderr
    release.write_text("go")
    seen = reader.finish()
    assert seen.returncode == 0
    first, again = map(int, seen.stdout.split())
    assert first == again == 30  # the snapshot stayed as it was
    assert _query(store, "SELECT count(*) FROM versions")[0][0] > first
    # The reader is gone: the next writer's checkpoints bring the WAL back down.
    assert proc.run(proc.python(WRITER, store, progress, "--rounds", "2"), home).returncode == 0
    wal = store.parent / "crawl.db-wal"
    assert not wal.exists() or wal.stat().st_size <= crawler_store.WAL_SIZE_LIMIT
    assert_db_healthy(store)


# --- D6: damaged store files --------------------------------------------------------------


def _patch(offset: int, data: bytes):
    def apply(path: Path) -> None:
        with open(path, "r+b") as stream:
            stream.seek(offset)
            stream.write(data)

    return apply


def _zero_a_used_page(path: Path) -> None:
    pages = path.stat().st_size // 4096
    for page in range(pages // 2, pages):
        trial = path.with_suffix(".trial")
        shutil.copy(path, trial)
        _patch(page * 4096, b"\0" * 4096)(trial)
        with sqlite3.connect(trial) as conn:
            try:
                bad = conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]
            except sqlite3.DatabaseError:
                bad = True
        trial.unlink()
        if bad:
            _patch(page * 4096, b"\0" * 4096)(path)
            return
    raise AssertionError("no page whose loss quick_check notices")


DAMAGE = {
    "header overwritten": _patch(0, b"not a database!!"),
    "schema page damaged": _patch(100, b"\xff" * 8),
    "a page zeroed": _zero_a_used_page,
    "truncated": lambda path: os.truncate(path, path.stat().st_size // 2),
    "a text file": lambda path: path.write_text("meine Notizen\n" * 200, encoding="utf-8"),
    "emptied": lambda path: os.truncate(path, 0),
}


@pytest.fixture(scope="module")
def healthy_store(tmp_path_factory) -> Path:
    """A store with 30 articles and 90 versions, closed cleanly (no -wal)."""
    folder = tmp_path_factory.mktemp("healthy")
    path = folder / "crawl.db"
    done = proc.run(
        proc.python(WRITER, path, folder / "progress", "--rounds", "3"), folder / "home"
    )
    assert done.returncode == 0, done.stderr
    assert not (folder / "crawl.db-wal").exists()
    return path


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_d6_a_damaged_store_is_refused_with_the_way_back_and_left_untouched(
    damage, healthy_store, tmp_path
):
    store = tmp_path / "crawl.db"
    shutil.copy(healthy_store, store)
    shutil.copytree(healthy_store.parent / "articles", tmp_path / "articles")
    DAMAGE[damage](store)
    before = _sha(store)
    sources = tmp_path / "sources.toml"
    sources.write_text('[[source]]\nname = "x"\ntype = "urls"\nurls = ["http://127.0.0.1:9/"]\n')
    for command in (("crawl", "--sources", sources), ("check",), ("backup", tmp_path / "b.db")):
        done = proc.run(proc.crawler(*command, store=store), tmp_path / "home")
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr
        if damage == "emptied":
            assert "restore a backup" in done.stderr
        else:
            assert ".recover" in done.stderr and "restore a backup" in done.stderr
        assert _sha(store) == before  # never repaired by recreating it


# --- D7: migrations -----------------------------------------------------------------------


def test_d7_a_store_from_a_newer_version_is_refused(healthy_store, tmp_path):
    store = tmp_path / "crawl.db"
    shutil.copy(healthy_store, store)
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {crawler_store.SCHEMA_VERSION + 1}")
    conn.close()
    before = _sha(store)
    for command in (("check",), ("articles",)):
        done = proc.run(proc.crawler(*command, store=store), tmp_path / "home")
        assert done.returncode == 1
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
        assert "newer than this program" in done.stderr and "upgrade" in done.stderr
    assert _sha(store) == before


def _schema(path: Path) -> tuple[int, set[tuple[str, str]]]:
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = {
            (name, " ".join((sql or "").split()))
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master")
        }
    return version, objects


def _store_at(path: Path, version: int) -> None:
    """A store built by the first ``version`` migrations only, as an older crawler left it."""
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    for _, apply in crawler_store.MIGRATIONS[:version]:
        apply(db)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


OPEN = "import sys; from crawler.store import open_store; open_store(sys.argv[1]).close()"


def test_d7_two_migrators_at_once_one_migrates_the_other_waits(tmp_path):
    for start in (0, 3):
        store = tmp_path / f"v{start}" / "crawl.db"
        store.parent.mkdir()
        if start:
            _store_at(store, start)
        script = _script(tmp_path, "open.py", OPEN)
        both = [proc.start(proc.python(script, store), tmp_path / "home") for _ in range(2)]
        for result in (one.finish() for one in both):
            assert result.returncode == 0, result.stderr
        reference = tmp_path / f"ref{start}.db"
        crawler_store.open_store(reference).close()
        assert _schema(store) == _schema(reference)


@pytest.mark.slow
def test_d7_a_migration_killed_half_way_leaves_the_previous_schema(tmp_path):
    # Migration 4 fills fetches.source row by row: slow enough to be killed inside it.
    seed = tmp_path / "seed.db"
    _store_at(seed, 3)
    conn = sqlite3.connect(seed)
    with conn:
        conn.executemany(
            "INSERT INTO fetches (url, at, outcome) VALUES (?, 't', 'new')",
            ((f"https://a.example/{n}",) for n in range(300_000)),
        )
    conn.close()
    references = {}
    for version in range(3, crawler_store.SCHEMA_VERSION + 1):
        reference = tmp_path / f"ref{version}.db"
        _store_at(reference, version)
        references[version] = _schema(reference)
    script = _script(tmp_path, "open.py", OPEN)
    chance = random.Random(3)
    seen = set()
    for attempt in range(8):
        store = tmp_path / f"try{attempt}" / "crawl.db"
        store.parent.mkdir()
        shutil.copy(seed, store)
        migrator = proc.start(proc.python(script, store), tmp_path / "home")
        proc.kill_after(migrator, chance.uniform(0.3, 2.5))
        version, objects = _schema(store)
        assert objects == references[version][1], f"half-migrated at version {version}"
        assert _query(store, "PRAGMA integrity_check") == [("ok",)]
        seen.add(version)
        done = proc.run(proc.python(script, store), tmp_path / "home")
        assert done.returncode == 0, done.stderr
        assert _schema(store)[0] == crawler_store.SCHEMA_VERSION
    assert 3 in seen  # at least one kill landed before migration 4 committed


def test_check_finds_text_files_out_of_line_and_repair_rewrites_them_from_the_store(
    healthy_store, tmp_path
):
    store = tmp_path / "crawl.db"
    shutil.copy(healthy_store, store)
    texts = shutil.copytree(healthy_store.parent / "articles", tmp_path / "articles")
    names = sorted(path.name for path in texts.iterdir())
    (texts / names[0]).unlink()  # a row whose file is missing
    (texts / names[1]).write_text("Titel\nein fremder Text\n", encoding="utf-8")
    (texts / "999_0123456789abcdef.txt").write_text("verwaist\n", encoding="utf-8")
    (texts / ".tmp-abc.txt").write_text("halb", encoding="utf-8")
    home = tmp_path / "home"

    found = proc.run(proc.crawler("check", store=store), home)
    assert found.returncode == 1
    assert found.stderr.splitlines()[-1].startswith("error: ") and "4 problems" in found.stderr
    for name in (names[0], names[1], "999_0123456789abcdef.txt", ".tmp-abc.txt"):
        assert name in found.stdout

    repaired = proc.run(proc.crawler("check", "--repair", store=store), home)
    assert repaired.returncode == 0, repaired.stderr
    assert "4 files repaired" in repaired.stdout
    assert_db_healthy(store)
    assert proc.run(proc.crawler("check", store=store), home).returncode == 0
