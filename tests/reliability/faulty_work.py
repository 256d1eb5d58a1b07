"""Page functions for the extraction-pool tests: imported by worker processes, so this
module stays tiny (stdlib only) and fast to import."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def hang_or_die(fetch: Any) -> tuple[None, str, str]:
    """Sleep a minute for a URL ending in /hang, SIGKILL the worker for /die, else answer."""
    if fetch.url.endswith("/hang"):
        time.sleep(60)
    if fetch.url.endswith("/die"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.1)
    return None, "ok", fetch.url
