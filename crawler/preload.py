"""What every extraction worker holds before its first page.

The extraction pool's forkserver imports this module once (``set_forkserver_preload``),
and every worker forked from it, including those of the pools that replace a recycled
one, starts with trafilatura imported and htmldate's date parser warmed up. The warm-up
compiles dateparser's tables for every locale: 5-10 s of CPU and about 45 MB the first
time a page needs it, which each worker would otherwise pay again after every renewal,
while forked workers share the forkserver's copy.
"""

from __future__ import annotations

from crawler.extraction import warm_up
from crawler.fetches import extract_parts

__all__ = ["extract_parts"]

warm_up()
