"""`CARTON_TRACE=FILE`: the steps of a cold run, one line each, appended to FILE.

Each line is `SECONDS PID THREAD STEP` (SECONDS since the epoch, so that the lines of
the model's process, its worker and their helpers sort into one timeline). It is how
docs/performance.md's step timings are taken; it costs nothing when the variable is
unset, and the warm path never imports this module.
"""

from __future__ import annotations

import os
import threading
import time

_FILE = os.environ.get("CARTON_TRACE") or None


def mark(step: str) -> None:
    """Append `step`, now, to the trace file, if one is asked for."""
    if _FILE is None:
        return
    # A thread's default name ("Thread-1 (run)") has spaces; the line's fields do not.
    thread = "_".join(threading.current_thread().name.split())
    line = f"{time.time():.6f} {os.getpid()} {thread} {step}\n"
    try:
        fd = os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.write(fd, line.encode("utf-8", "replace"))
    except OSError:
        pass
    finally:
        os.close(fd)
