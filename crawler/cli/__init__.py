"""The ``crawler`` command: thin click commands over the library.

Each command parses flags, calls one library function and formats the result. Errors
of this package become one ``error: …`` line on stderr and an exit code (2 for bad
input, 1 for anything that failed); a traceback is shown only with ``--debug``.
The commands live in submodules by what they work on: ``pages`` (fetch, extract, demo).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from crawler import __version__
from crawler.errors import CrawlerError
from crawler.settings import DEFAULT_STORE

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"SQLite store; text files go to articles/ beside it. [default: {DEFAULT_STORE}]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
F = TypeVar("F", bound=Callable[..., Any])


def network_options(command: F) -> F:
    """``--allow-private-addresses`` and ``--resolve``: the options of every command that
    downloads (they override ``[crawler]`` in sources.toml and ``CRAWLER_*`` variables)."""
    command = click.option(
        "--resolve",
        "resolve",
        multiple=True,
        metavar="HOST:ADDRESS",
        help="Resolve HOST to the IPv4 ADDRESS (like curl's --resolve; HOST: fails the "
        "lookup). Repeatable.",
    )(command)
    return click.option(
        "--allow-private-addresses",
        "allow_private_addresses",
        is_flag=True,
        default=False,
        help="Allow loopback, private, link-local and other non-public addresses "
        "(refused by default).",
    )(command)


def network_overrides(allow_private_addresses: bool, resolve: tuple[str, ...]) -> dict[str, Any]:
    """The settings given by :func:`network_options`, for ``load_config``; None if unset."""
    from crawler.addresses import EVERYTHING
    from crawler.settings import convert_setting

    return {
        "allow_private_addresses": EVERYTHING if allow_private_addresses else None,
        "resolve": convert_setting("resolve", list(resolve), "--resolve") if resolve else None,
    }


def network_arguments(allow_private_addresses: bool, resolve: tuple[str, ...]) -> list[str]:
    """The same options as command-line arguments, for a crawl subprocess."""
    arguments = ["--allow-private-addresses"] if allow_private_addresses else []
    for entry in resolve:
        arguments += ["--resolve", entry]
    return arguments


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crawler")
@click.option(
    "--debug", is_flag=True, envvar="CRAWLER_DEBUG", help="Show tracebacks and Scrapy's log."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Monitor news articles: fetch pages, extract clean text, keep every version."""
    ctx.obj = {"debug": debug}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. Our errors become one stderr line."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("CRAWLER_DEBUG")
    )
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="crawler",
            standalone_mode=False,
        )
    except CrawlerError as error:
        if debug:
            raise
        _fail(str(error))
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        _fail(error.format_message())
        return error.exit_code
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except (sqlite3.Error, OSError) as error:
        if debug:
            raise
        _fail(_storage_problem(error))
        return 1
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (run with --debug for details)")
        return EXIT_INTERNAL
    return 0


def _storage_problem(error: sqlite3.Error | OSError) -> str:
    """One line for a storage failure that reached the top: what happened and what now."""
    text = " ".join(str(error).split())
    full = "nothing committed was lost: free space and run again"
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"cannot write: {text}; {full}"
    if isinstance(error, sqlite3.OperationalError) and ("full" in text or "I/O" in text):
        return f"cannot write the store: {text} (is the disk full?); {full}"
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return (
            f"the store is damaged ({text}): recover it with `sqlite3 STORE .recover | "
            "sqlite3 recovered.db` or restore a backup"
        )
    return f"storage failed: {type(error).__name__}: {text} (run with --debug for details)"


def _fail(message: str) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)


from crawler.cli import crawling, pages  # noqa: E402, F401 - registers the commands

from crawler.cli import querying  # noqa: E402, F401  # isort: skip
from crawler.cli import reporting  # noqa: E402, F401  # isort: skip
from crawler.cli import maintenance  # noqa: E402, F401  # isort: skip
