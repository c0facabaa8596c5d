"""Whose turn it is to unpack: one wheel at a time in a worker process, the one the model
will import first among those downloaded.

Checking and unpacking a wheel is Python under one interpreter lock, so threads that
unpack together in one process only share its core: all of them finish late, about when
the last one does, and the model's process waits for the one it imports first until
then. Taking turns, that one is published as soon as it alone could be, and the model's
process imports it (on its own core) while the others are unpacked. Downloads still run
together: they wait on the network, not on the interpreter lock.

A turn lasts until the wheel is published: a thread that publishes while another
unpacks waits for the interpreter lock after each of its system calls. A wheel that
took its turn because it was downloaded first hands it over, between two members, to
one ranked before it once that one is downloaded: scikit-learn (9 MB) no longer keeps
numpy (16 MB), which the model imports first, waiting for its whole unpacking (the
model's process went on 1.02 s after the start instead of 1.39 s; the run's wall time
did not change, both cores being busy to its end).

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
    before it that is still downloading: the turn goes to the first of those ready, and
    is handed over between two of its members once one ranked before it is ready
    (`hand_over`), so that a big wheel that was ready first does not keep the one the
    model imports first waiting for the whole of its unpacking."""

    def __init__(self, order: list[str]) -> None:
        self._rank = {sha: i for i, sha in enumerate(order)}
        self._ready: list[str] = []
        self._busy = False
        self._changed = threading.Condition()

    def _rank_of(self, sha: str) -> int:
        return self._rank.get(sha, len(self._rank))

    def _first(self) -> str:
        return min(self._ready, key=self._rank_of)

    def waiting(self) -> int:
        """How many wheels wait for their turn now."""
        with self._changed:
            return len(self._ready)

    def _take(self, sha: str) -> None:
        """Wait among those ready until it is `sha`'s turn, and take it (lock held)."""
        self._ready.append(sha)
        self._changed.wait_for(lambda: not self._busy and self._first() == sha)
        self._ready.remove(sha)
        self._busy = True

    @contextmanager
    def turn(self, sha: str) -> Iterator[None]:
        """Wait for `sha`'s turn, and hold it while the block runs."""
        with self._changed:
            self._take(sha)
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()

    def hand_over(self, sha: str) -> None:
        """Called by `sha`, which holds the turn, between two of its members: if a wheel
        ranked before it is ready, it has the turn first; `sha` then waits for it again."""
        if not self._ready:  # no lock for the common case: once per member
            return
        with self._changed:
            if not self._ready or self._rank_of(self._first()) >= self._rank_of(sha):
                return
            self._busy = False
            self._changed.notify_all()
            self._take(sha)
