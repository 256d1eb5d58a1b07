"""C5 and G6: webhook targets pass the address guard; delivery is at-least-once and
idempotent, also across a SIGKILL between the event's commit and its delivery."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from datetime import timedelta

import pytest
from newssite import GERMAN, Entry, publish
from servers import SiteServer, cli_command, cli_env, run_cli
from test_alerts import NOW, Receiver, deliver, hook, statuses

from crawler.addresses import NOTHING, parse_policy
from crawler.alerts import WEBHOOK_TARGET, deliver_alerts
from crawler.store.alerts import deliveries

from test_alerts import db, receiver  # noqa: E402, F401  # isort: skip  (fixtures)


def test_a_webhook_on_loopback_is_refused_by_default_without_connecting(db, receiver):  # noqa: F811
    report = deliver_alerts(db, hook(receiver.url), {}, now=NOW, policy=NOTHING)
    assert report.failed == 3 and report.delivered == 0  # the run stops after 3 rejections
    assert receiver.received == []
    (first, *_) = deliveries(db, WEBHOOK_TARGET)
    assert first.status == "failed" and first.attempts == 1  # not retried: it cannot help
    assert "127.0.0.1 is a loopback address, refused" in (first.last_error or "")
    assert "--allow-private-addresses" in (first.last_error or "")


@pytest.mark.parametrize(
    ("url", "resolve", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", None, "169.254.169.254 is a link-local"),
        ("http://[::1]:9/hook", None, "::1 is a loopback address"),
        ("http://0xa000005:9/hook", None, "10.0.0.5 is a private address"),
        (
            "http://hook.example/x",
            {"hook.example": "10.0.0.5"},
            "hook.example resolves to 10.0.0.5",
        ),
    ],
)
def test_webhooks_to_private_targets_are_refused(db, url, resolve, message):  # noqa: F811
    policy = parse_policy("127.0.0.0/8")  # loopback is allowed here, these are not
    started = time.monotonic()
    deliver_alerts(db, hook(url), {}, now=NOW, limit=1, policy=policy, resolve=resolve)
    assert time.monotonic() - started < 2  # refused before connecting, no retries
    (first,) = deliveries(db, WEBHOOK_TARGET)
    assert first.status == "failed" and message in (first.last_error or "")


def test_an_allowed_name_is_posted_to_the_address_that_was_checked(db, receiver):  # noqa: F811
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hook.example:{port}/hook"
    report = deliver_alerts(
        db,
        hook(url),
        {},
        now=NOW,
        limit=1,
        policy=parse_policy("127.0.0.0/8"),
        resolve={"hook.example": "127.0.0.1"},
    )
    assert report.delivered == 1
    assert receiver.headers[0]["Host"] == f"hook.example:{port}"


def test_500_twice_then_200_is_one_acknowledged_delivery_after_three_attempts(db, receiver):  # noqa: F811
    receiver.script.extend([500, 500, 200])
    report = deliver(db, hook(receiver.url, retries=3), {}, now=NOW, limit=1)
    assert (report.delivered, report.attempts) == (1, 3)
    assert [body["event_id"] for body in receiver.received] == [1, 1, 1]
    assert [body["event_id"] for body in receiver.acknowledged] == [1]
    assert len({h["Idempotency-Key"] for h in receiver.headers}) == 1
    assert statuses(db) == [(1, "delivered", 3)]
    deliver(db, hook(receiver.url), {}, now=NOW + timedelta(minutes=5))  # a later run
    assert [body["event_id"] for body in receiver.acknowledged] == [1, 2, 3, 4]


@pytest.mark.slow
def test_sigkill_between_commit_and_delivery_then_the_next_run_sends_exactly_once(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    hook_receiver = Receiver()
    try:
        with SiteServer(root) as news:
            entries = [Entry(slug) for slug in GERMAN[:2]]
            publish(news, entries)
            sources = tmp_path / "sources.toml"
            sources.write_text(
                f'[alerts]\nwebhook = "{hook_receiver.url}"\ntimeout = 30\n\n'
                f'[[source]]\nname = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n',
                "utf-8",
            )
            store = tmp_path / "crawl.db"
            hook_receiver.script.append("hang")  # the first POST never gets an answer
            home = tmp_path / "home"
            home.mkdir()
            crawl = subprocess.Popen(
                cli_command("crawl", "--sources", sources, store=store),
                env=cli_env(home),
                cwd=home,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 90
                while not hook_receiver.received and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert hook_receiver.received, "the crawl never reached the webhook"
                crawl.send_signal(signal.SIGKILL)  # events committed, none acknowledged
            finally:
                crawl.kill()
                crawl.wait()
            with sqlite3.connect(store) as conn:
                events = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
                assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
            assert len(events) == 2

            done = run_cli("crawl", "--sources", sources, store=store, home=home)
            assert done.returncode == 0, done.stderr
    finally:
        hook_receiver.stop()
    acknowledged = [body["event_id"] for body in hook_receiver.acknowledged]
    assert sorted(acknowledged) == events  # each event acknowledged exactly once
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT event_id, status FROM deliveries ORDER BY event_id").fetchall()
    assert rows == [(event, "delivered") for event in events]
