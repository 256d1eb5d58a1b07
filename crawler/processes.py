"""Whether a process recorded in the store (a lock owner, a run) is still alive."""

from __future__ import annotations

import os
import socket


def process_is_dead(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` has ended (False for other hosts: unknown).

    A zombie (ended, not yet reaped by its parent) counts as ended.
    """
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
