"""What an extraction worker process holds before its first page.

The extraction pool's forkserver imports this module once (``set_forkserver_preload``);
every worker forked from it starts with trafilatura imported and htmldate's date parser
warmed up. The warm-up compiles dateparser's tables for every locale: about 5 s of CPU
and 45 MB the first time a page needs it, which each worker would otherwise pay again
(and again after every recycling), while forked workers share the forkserver's copy.
"""

from __future__ import annotations

from crawler.extraction import warm_up
from crawler.fetches import article_from_fetch

__all__ = ["article_from_fetch"]

warm_up()
