"""Progress of a long first run, drawn on the terminal the model runs in.

The worker's stderr is a pipe that its parent reads (for errors), so the parent hands the
worker its terminal as another descriptor (`CARTON_PROGRESS_FD`), and only when its
stderr is a terminal and the run is not `--quiet`: piped or logged output never gets
progress lines. Nothing is drawn for the first second (`CARTON_PROGRESS_AFTER`), so a
short first run says nothing. Then one line says what the run is doing, and a status
line below it is redrawn in place a few times a second: packages done, bytes, rate,
what is being unpacked. It is cleared at the end.

No library draws it: a line of text is all it takes, the worker imports as little as
it can, and a model may lock tqdm or rich at other versions (see docs/runtime.md).
"""

from __future__ import annotations

import os
import threading
import time

TICK = 0.25


def from_env() -> Progress | None:
    """The progress line the parent asked for, or None."""
    fd = os.environ.get("CARTON_PROGRESS_FD", "")
    if not fd.isdigit():
        return None
    try:
        after = float(os.environ.get("CARTON_PROGRESS_AFTER", "1"))
    except ValueError:
        after = 1.0
    return Progress(int(fd), after)


class Progress:
    """Counts packages and bytes from any thread; a ticker thread draws them."""

    def __init__(self, fd: int, after: float = 1.0) -> None:
        self._fd = fd
        self._after = after
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._title = ""
        self._packages = 0
        self._done = 0
        self._total = 0
        self._received = 0
        self._doing = ""
        self._drawn = False
        self._started = 0.0

    def start(self, title: str, packages: int, total: int) -> None:
        """Begin a run of `packages` packages of `total` bytes to download."""
        self._title, self._packages, self._total = title, packages, total
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="carton-progress")
        self._thread.start()

    def advance(self, count: int) -> None:
        """`count` more bytes arrived (negative: a download started over)."""
        with self._lock:
            self._received += count

    def doing(self, what: str) -> None:
        with self._lock:
            self._doing = what

    def finished_one(self) -> None:
        with self._lock:
            self._done += 1

    def stop(self) -> None:
        """Stop drawing, and clear the status line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self._write("\r\x1b[K")

    def status(self) -> str:
        """The status line as it would be drawn now."""
        with self._lock:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            line = f"  {self._done}/{self._packages} packages, "
            if self._received < self._total:
                line += (f"{_mb(self._received)}/{_mb(self._total)} MB "
                         f"at {_mb(self._received / elapsed)} MB/s")
            else:  # the rest is unpacking and compiling: a rate would only fall
                line += f"{_mb(self._total)} MB downloaded"
            if self._doing:
                line += f"; {self._doing}"
        return line

    def _tick(self) -> None:
        if self._stop.wait(self._after):
            return
        self._write(f"carton: {self._title}\n")
        self._drawn = True
        while True:
            try:
                width = os.get_terminal_size(self._fd).columns or 80  # 0: not known
            except OSError:
                width = 80
            self._write("\r\x1b[K" + self.status()[:max(width - 1, 10)])
            if self._stop.wait(TICK):
                return

    def _write(self, text: str) -> None:
        try:
            os.write(self._fd, text.encode("utf-8", "replace"))
        except OSError:
            self._stop.set()  # the terminal went away: draw nothing more


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f}"
