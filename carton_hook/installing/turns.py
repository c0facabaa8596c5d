"""Whose turn it is to unpack: one wheel at a time in a worker process, the one the model
will import first among those downloaded.

Checking and unpacking a wheel is Python under one interpreter lock, so threads that
unpack together in one process only share its core: all of them finish late, about when
the last one does, and the model's process waits for the one it imports first until
then. Taking turns, that one is published as soon as it alone could be, and the model's
process imports it (on its own core) while the others are unpacked. Downloads still run
together: they wait on the network, not on the interpreter lock.

A turn lasts until the wheel is published: a thread that publishes while another
unpacks waits for the interpreter lock after each of its system calls.

`CARTON_TRACE` of a cold `import requests` (5 wheels, medians of 8 runs): unpacked
together, they took 58 ms of the worker's time, and the model's process went on when
the last was published, 208 ms after the start; in turns, 174 ms (docs/performance.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """Turns in the order `order` (sha256s: those listed first go first); a wheel not
    listed goes after those listed. A wheel that is ready never waits for one ranked
    before it that is still downloading: the turn goes to the first of those ready."""

    def __init__(self, order: list[str]) -> None:
        self._rank = {sha: i for i, sha in enumerate(order)}
        self._ready: list[str] = []
        self._busy = False
        self._changed = threading.Condition()

    def _first(self) -> str:
        last = len(self._rank)
        return min(self._ready, key=lambda sha: self._rank.get(sha, last))

    def waiting(self) -> int:
        """How many wheels wait for their turn now."""
        with self._changed:
            return len(self._ready)

    @contextmanager
    def turn(self, sha: str) -> Iterator[None]:
        """Wait for `sha`'s turn, and hold it while the block runs."""
        with self._changed:
            self._ready.append(sha)
            self._changed.wait_for(lambda: not self._busy and self._first() == sha)
            self._ready.remove(sha)
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
