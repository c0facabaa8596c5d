"""Which cache entries are in use: a process holds a shared lock on the completion marker
of each entry it imports from, and stamps the marker's time at most once an hour.

`cache prune` and `cache clear` take an entry out only if they get the exclusive lock,
so an entry that a running process uses (one that imported from it days ago and may
still import more of it) is never removed under it. A process that opens the marker
while an entry is being removed finds, once it has its lock, that the marker is no
longer at its path, and installs the entry again. The locks are flock(2) locks: they
die with their process, and cost nothing to read-only caches (they need no write
access; the time stamp is skipped where it cannot be written).
"""

from __future__ import annotations

import os
import time

from carton_hook.cache.layout import COMPLETE
from carton_hook.system import O_CLOEXEC, lock

# How stale a "last used" stamp may get: one write per entry per hour at most.
STAMP_EVERY = 3600.0
# An entry that `cache clear` takes out between its install and a process holding it is
# installed again, this many times at most (a clear loop beside the model, tried here,
# takes one out every ~120 ms; an install through the worker takes ~150 ms).
HOLD_ATTEMPTS = 20

_held: dict[str, int] = {}  # entry -> the marker's descriptor, kept open until exit


def hold(entry: str) -> bool:
    """Mark `entry` as used by this process. False if it was taken out meanwhile (install
    it again); True otherwise, also when the lock cannot be had (nothing is refused)."""
    if entry in _held:
        return True
    marker = os.path.join(entry, COMPLETE)
    try:
        fd = os.open(marker, os.O_RDONLY | O_CLOEXEC)
    except OSError:
        return False
    if not lock(fd, shared=True):  # waits only while a prune renames the entry
        os.close(fd)
        return True  # no lock to be had here: nothing is refused
    try:
        held, now = os.fstat(fd), os.stat(marker)
    except FileNotFoundError:
        os.close(fd)
        return False
    except OSError:
        os.close(fd)
        return True
    if (held.st_dev, held.st_ino) != (now.st_dev, now.st_ino):
        os.close(fd)
        return False
    _held[entry] = fd
    if time.time() - held.st_mtime > STAMP_EVERY:
        try:  # noqa: SIM105 - contextlib costs the warm path a millisecond
            os.utime(fd)
        except OSError:
            pass  # a read-only or foreign cache: its entries are not pruned from here
    return True


def last_used(entry: str) -> float:
    """When a process last started using `entry` (to within STAMP_EVERY), or when it
    was published."""
    return os.stat(os.path.join(entry, COMPLETE)).st_mtime


def take(entry: str) -> int | None:
    """The marker's descriptor under an exclusive lock, if no process uses `entry`;
    None if one does. The caller removes the entry, then closes the descriptor."""
    try:
        fd = os.open(os.path.join(entry, COMPLETE), os.O_RDONLY | O_CLOEXEC)
    except OSError:
        return None
    if not lock(fd, wait=False):  # in use, or no lock to tell it by: kept
        os.close(fd)
        return None
    return fd
