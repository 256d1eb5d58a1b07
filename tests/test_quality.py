"""The project's static gates, run by the same command as the tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    done = run(str(BIN / "ruff"), "check", "crawler", "spiders", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean():
    done = run(str(BIN / "mypy"), "crawler", "spiders")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_command_has_help_and_appears_in_the_readme():
    from crawler.cli import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert command.help, f"crawler {name} has no help text"
        assert f"crawler {name}" in readme, f"crawler {name} is not in the README"
