"""The README's main job: ``crawler demo`` end to end, in a subprocess."""

import sqlite3
import subprocess
import sys
from pathlib import Path

from crawler.demo import EDITED_FROM, EDITED_TO, churn_template, edit_body, original_page


def test_churn_changes_the_page_but_not_the_article():
    original = original_page()
    churned = churn_template(original)
    assert churned != original
    assert EDITED_FROM in churned
    assert EDITED_TO in edit_body(original)


def test_demo_detects_exactly_the_real_change(tmp_path):
    store = tmp_path / "demo" / "crawl.db"
    crawler = Path(sys.executable).parent / "crawler"
    done = subprocess.run(
        [str(crawler), "demo", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("Nato-Generalsekretär trifft sich in Florida mit Trump\n")
    assert EDITED_TO in done.stdout
    assert "Anzeige" not in done.stdout and "Mehr zum Thema" not in done.stdout
    statuses = [
        line.split(":")[0].strip() for line in done.stderr.splitlines() if line.startswith("   ")
    ]
    assert statuses[:3] == ["new", "unchanged", "changed"]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM versions").fetchone() == (2,)
        assert [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")] == [
            "new",
            "changed",
        ]
    text_files = list((store.parent / "articles").glob("*.txt"))
    assert len(text_files) == 1
    assert EDITED_TO in text_files[0].read_text(encoding="utf-8")
