"""The extraction pool: pages are extracted in worker processes, each under a wall-time limit.

lxml and trafilatura can run for minutes or exhaust memory on a pathological page (a
table of thousands of rows under ``colspan="9007199254740991"``, deep nesting). So:

    a page slower than ``timeout``    its worker is killed, the page is ``extract_timeout``;
                                      the pool is replaced and the pages in flight with it
                                      are resubmitted (they did nothing wrong)
    a worker that dies                (MemoryError in C code, a segfault, SIGKILL) breaks the
                                      pool: it is replaced, and each page that was in flight
                                      runs again alone in a one-worker pool; the page that
                                      breaks that one too is ``extract_failed``
    every ``max_tasks`` pages         the pool is replaced by a fresh one (its workers finish
                                      what they hold, then exit): a leaking or fragmented
                                      worker heap cannot grow without bound

Python 3.11's own ``max_tasks_per_child`` can deadlock the executor (CPython gh-115634),
hence the pool-level recycling. Workers start from a forkserver that has imported the
extraction code once, so a fresh worker is a cheap fork.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from crawler.extraction import Article
from crawler.fetches import FetchResult, extract_parts

log = logging.getLogger(__name__)

Parts = tuple[Article | None, str | None, str | None]
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_TASKS = 200  # pages per worker before its pool is replaced


class ExtractionPool:
    """Extract pages in worker processes; ``await pool.extract(fetch)`` never raises for a page.

    Use from one asyncio event loop (the crawl's reactor); ``close()`` when done, or use
    it as a context manager. ``stats`` counts timeouts, crashes and pool replacements.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_tasks: int = DEFAULT_MAX_TASKS,
        function: Callable[[Any], Parts] = extract_parts,
        preload: tuple[str, ...] = ("crawler.preload",),
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"extraction timeout must be positive, got {timeout}")
        self.workers = max(1, workers or os.cpu_count() or 2)
        self.timeout = timeout
        self.max_tasks = max(1, max_tasks)
        self.function = function
        self.stats: Counter[str] = Counter()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        # No process starts before the first page (an executor forks on its first submit):
        # a revisit pass of 304s never pays for the forkserver's preload. A fresh pool's
        # start-up is awaited in _started, off the reactor and outside the time limit.
        self._main = self._new_pool(self.workers)
        self._main_tasks = 0
        self._alone: ProcessPoolExecutor | None = None
        self._retired: list[ProcessPoolExecutor] = []  # recycled, finishing their pages
        # Pools whose workers we killed for one page's sake; their other pages are innocent.
        self._killed: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()
        # Only as many pages in flight as workers: a submitted page starts at once, so the
        # wall-time limit measures extraction, not waiting in the executor's queue.
        self._slots = asyncio.Semaphore(self.workers)
        self._starting: weakref.WeakKeyDictionary[ProcessPoolExecutor, asyncio.Future[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._one_at_a_time = asyncio.Lock()

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def extract(self, fetch: FetchResult) -> Parts:
        """(article, problem, message) for ``fetch``, as :func:`extract_parts` gives it;
        ``problem`` is ``extract_timeout`` or ``extract_failed`` when the worker hung or died."""
        async with self._slots:
            for _ in range(3):
                pool = self._main_pool()
                try:
                    return await self._run(pool, fetch)
                except TimeoutError:
                    if pool is self._main:
                        self._replace_main(pool, kill=True, ours=True)
                    else:  # a recycled pool: its hung worker must not run on
                        self._killed.add(pool)
                        _kill(pool)
                    return self._timed_out(fetch)
                except BrokenProcessPool:
                    if pool in self._killed:
                        continue  # we killed it for another page's sake: run this one again
                    if pool is self._main:  # the first of its pages to notice
                        self.stats["crashes"] += 1
                        self._replace_main(pool, kill=True)
                    break
        return await self._extract_alone(fetch)

    def close(self) -> None:
        """Stop every worker; pages still running are abandoned."""
        for pool in (self._main, self._alone, *self._retired):
            if pool is not None:
                _kill(pool)
        self._alone = None
        self._retired.clear()

    # -- internals ---------------------------------------------------------------------

    async def _extract_alone(self, fetch: FetchResult) -> Parts:
        """Run a page suspected of killing its worker alone, so a second death names it."""
        async with self._one_at_a_time:
            if self._alone is None:
                self._alone = self._new_pool(1)
            pool = self._alone
            try:
                return await self._run(pool, fetch)
            except TimeoutError:
                _kill(pool)
                self._alone = None
                return self._timed_out(fetch)
            except BrokenProcessPool:
                self.stats["crashes"] += 1
                _kill(pool)
                self._alone = None
                log.warning("extraction of %s killed its worker twice", fetch.final_url)
                message = f"{fetch.final_url}: the extraction worker died on this page"
                return None, "extract_failed", message

    async def _run(self, pool: ProcessPoolExecutor, fetch: FetchResult) -> Parts:
        await self._started(pool)
        future: Future[Parts] = pool.submit(self.function, fetch)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)

    async def _started(self, pool: ProcessPoolExecutor) -> None:
        """Wait until a fresh pool's workers are up: starting one (a fork, then importing
        the main module) must not count against a page's time limit on a busy machine."""
        starting = self._starting.get(pool)
        if starting is None:
            count = 1 if pool is self._alone else self.workers
            starting = asyncio.ensure_future(
                asyncio.gather(*(asyncio.wrap_future(pool.submit(os.getpid)) for _ in range(count)))
            )
            self._starting[pool] = starting
        await asyncio.shield(starting)

    def _timed_out(self, fetch: FetchResult) -> Parts:
        self.stats["timeouts"] += 1
        log.warning("extraction of %s exceeded %.1f s", fetch.final_url, self.timeout)
        message = f"{fetch.final_url}: extraction took longer than {self.timeout:g} s"
        return None, "extract_timeout", message

    def _main_pool(self) -> ProcessPoolExecutor:
        if self._main_tasks >= self.max_tasks * self.workers:
            self._replace_main(self._main, kill=False)
        self._main_tasks += 1
        return self._main

    def _replace_main(self, pool: ProcessPoolExecutor, *, kill: bool, ours: bool = False) -> None:
        """Swap in a fresh pool (unless another page did already); the old one is killed,
        or (``kill=False``) left to finish its pages and exit. ``ours``: we kill it for a
        page that hung, so the other pages it held are run again as usual."""
        if pool is not self._main:
            return
        self.stats["replaced"] += 1
        if kill:
            if ours:
                self._killed.add(pool)
            _kill(pool)
        else:
            pool.shutdown(wait=False)
            self._retired = [old for old in self._retired if _busy(old)] + [pool]
        self._main = self._new_pool(self.workers)
        self._main_tasks = 0

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self._context)


def _kill(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's workers (a hung one ignores anything gentler) and shut it down."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)
    # Without cancel_futures: the executor fails every page it held with BrokenProcessPool,
    # which the pages' coroutines handle; a cancelled future would look like a cancelled
    # crawl. Waiting joins the executor's thread (its workers are dead, so at once): a
    # thread left behind makes Python 3.11 print an error at exit.
    pool.shutdown(wait=True)


def _busy(pool: ProcessPoolExecutor) -> bool:
    """Whether a retired pool still has its management thread (pages to finish)."""
    thread = getattr(pool, "_executor_manager_thread", None)
    return thread is not None and thread.is_alive()
