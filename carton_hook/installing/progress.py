"""Progress of a long first run: drawn on the terminal the model runs in, or written as
plain lines into a log.

The worker's stderr is a pipe that its parent reads (for errors), so the parent hands the
worker its own stderr as another descriptor (`CARTON_PROGRESS_FD`), unless the run is
`--quiet`. Nothing is said for the first second (`CARTON_PROGRESS_AFTER`), so a short
first run says nothing. Then one line says what the run is doing. On a terminal, a
status line below it is redrawn in place a few times a second (packages done, bytes,
rate, what is being unpacked) and cleared at the end. Into a pipe or a file (a CI job, a
container's log: `CARTON_PROGRESS_STYLE=log`), the same status is a plain line every
LOG_EVERY seconds, and one line says what was installed when the wait ends; with
`--verbose`, a line for each package installed.

The plan's worker installs on while the model's process runs (workerclient.Background).
The terminal is then the model's: the status line is drawn only while the model's
process waits for a wheel, and cleared before it goes on. It says so on the worker's
stdin, and waits for the worker's reply that nothing more will be drawn, unless it goes
on within the first `after` seconds of the worker's start (`silent_for`): nothing can
have been written by then, and the worker reads what the model said before anything it
writes (`Progress._take`), so nothing will be. That reply cost a short first run 10-20 ms
while the worker was busy (docs/performance.md).

No library draws it: a line of text is all it takes, the worker imports as little as
it can, and a model may lock tqdm or rich at other versions (see docs/runtime.md).
"""

from __future__ import annotations

import os
import sys
import threading
import time

from carton_hook.installing.words import PROGRESS_FD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

TICK = 0.25
LOG_EVERY = 5.0  # seconds between two status lines written into a log


def silent_for(environ: Mapping[str, str]) -> float:
    """The seconds of a first run in which nothing is said (`CARTON_PROGRESS_AFTER`)."""
    try:
        return float(environ.get("CARTON_PROGRESS_AFTER", "1"))
    except ValueError:
        return 1.0


def from_env(answer: Callable[[str], None] | None = None) -> Progress | None:
    """The progress line the parent asked for, or None. A parent that goes on while this
    process installs (`CARTON_PROGRESS_LISTEN`) says on stdin when it waits (`listen`);
    `answer` replies to it."""
    fd = os.environ.get(PROGRESS_FD, "")
    if not fd.isdigit():
        return None
    from carton_hook.switches import env_flag

    progress = Progress(int(fd), silent_for(os.environ),
                        log=os.environ.get("CARTON_PROGRESS_STYLE") == "log",
                        verbose=env_flag("CARTON_VERBOSE"))
    if answer is not None and os.environ.get("CARTON_PROGRESS_LISTEN") == "1":
        progress.listen(sys.stdin.fileno(), answer)
    return progress


# What the model's process says on the worker's stdin, and the worker's reply: the model
# waits (draw), or goes on (clear the line, draw nothing until it waits again; replied to
# once nothing more will be drawn, so the model's own output never follows a status line).
WAITING = "waiting"
GOING_ON = "going-on"
QUIET = '{"quiet": true}'


class Progress:
    """Counts packages and bytes from any thread; a ticker thread draws them."""

    def __init__(self, fd: int, after: float = 1.0, log: bool = False,
                 verbose: bool = False, every: float = LOG_EVERY) -> None:
        self._fd = fd
        self._after = after
        self._log = log  # plain lines for a log, nothing redrawn
        self._verbose = verbose  # in a log: a line per package installed
        self._every = every
        self._logged = 0.0  # when the last status line went into the log
        self._said = False  # something was logged since the model began to wait
        self._finished = False  # the log said the install is done
        self._unsaid: list[str] = []  # verbose lines held back while the model ran
        self._lock = threading.Lock()
        # Held while drawing, to stop the drawing, and to read what the model's process
        # says (`_take`); taken again by `hold` and `resume` when a word is read.
        self._draw = threading.RLock()
        self._heard_fd: int | None = None  # where the model's process says it (`listen`)
        self._heard = b""  # what it said that is not a whole line yet
        self._answer: Callable[[str], None] = lambda _: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._title = ""
        self._packages = 0
        self._done = 0
        self._total = 0
        self._received = 0
        self._doing = ""
        self._titled = False
        self._on_screen = False  # a status line is drawn, not cleared
        self._held = False
        self._started = 0.0
        self._since = 0.0  # when the model's process began to wait
        # The model's process: once it has ended, its terminal is the shell's again.
        self._parent = os.getppid()

    def start(self, title: str, packages: int, total: int) -> None:
        """Begin a run of `packages` packages of `total` bytes to download."""
        self._title, self._packages, self._total = title, packages, total
        self._started = time.monotonic()
        self._since = max(self._since, self._started)
        self._thread = threading.Thread(target=self._tick, daemon=True, name="carton-progress")
        self._thread.start()

    def advance(self, count: int) -> None:
        """`count` more bytes arrived (negative: a download started over)."""
        with self._lock:
            self._received += count

    def doing(self, what: str) -> None:
        with self._lock:
            self._doing = what

    def finished_one(self, what: str = "", installed: str = "") -> None:
        """One more package is installed; `what` it was doing is done. `installed` names
        it for the log's verbose line."""
        # Counted and named under the drawing lock at once: a line that says the install
        # is done, drawn in between, would come before the name, which would then wait
        # for a next line that never comes.
        with self._draw:
            with self._lock:
                self._done += 1
                if what and self._doing == what:
                    self._doing = ""
            if installed and self._log and self._verbose:
                # Queued before what the model's process said is read: if it went on
                # (`hold`), the line that says where the install stands says this name
                # first. Held, it is said with the next line the log gets, not amid the
                # model's output.
                self._unsaid.append(f"carton: installed {installed}\n")
                self._take()
                if not self._held:
                    self._say_unsaid()

    def stop(self) -> None:
        """Stop drawing, and clear the status line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.hold()

    def hold(self) -> None:
        """Clear the status line and draw nothing until `resume`: the model's process
        goes on, and its output must not follow a status line. Into a log, say where
        the install stands if anything was said while the model waited."""
        with self._draw:
            if self._log and self._titled and not self._held:
                self._log_where_it_stands()
            self._held = True
            if self._on_screen:
                self._write("\r\x1b[K")
            self._on_screen = False

    def _log_where_it_stands(self) -> None:
        """Into a log, as the model goes on (or the install ends while it waits): the
        install is done (said once), or how far it got, if a line was written while the
        model waited this time."""
        with self._lock:
            done, packages, total = self._done, self._packages, self._total
        elapsed = time.monotonic() - self._started
        if (done >= packages and not self._finished) or self._said:
            self._say_unsaid()
        if done >= packages:
            if not self._finished:
                self._write(f"carton: installed {packages_of(packages)} ({_mb(total)} MB) "
                            f"in {elapsed:.1f} s\n")
                self._finished = True
        elif self._said:
            self._write(f"carton: {done}/{packages} packages installed in {elapsed:.1f} s; "
                        "the rest installs while the model runs\n")
        self._said = False

    def resume(self) -> None:
        """The model's process waits again: draw, after the first `after` seconds."""
        with self._draw:
            self._held = False
            self._since = time.monotonic()

    def listen(self, fd: int, answer: Callable[[str], None]) -> None:
        """Follow what the model's process says on `fd` (WAITING, GOING_ON), in a thread
        of its own; `answer` replies. Until it says GOING_ON, it is taken to be waiting."""
        import select

        self.hear(fd, answer)

        def follow() -> None:
            while True:
                select.select([fd], [], [])
                with self._draw:
                    if not self._take():
                        return

        threading.Thread(target=follow, daemon=True, name="carton-progress-listen").start()

    def hear(self, fd: int, answer: Callable[[str], None]) -> None:
        """Read what the model's process says on `fd` before anything is written
        (`_take`), with no thread of its own (`listen` adds one)."""
        os.set_blocking(fd, False)
        self._heard_fd, self._answer = fd, answer

    def _take(self) -> bool:
        """Act on what the model's process has said and was not read yet; False once it
        has closed the pipe. Called with `_draw` held, before anything is written: a
        word said before then is always acted on first, which is what lets the model's
        process go on without waiting for the reply in the first seconds."""
        from carton_hook.system import read_ready

        fd = self._heard_fd
        if fd is None:
            return False
        while True:
            data = read_ready(fd)
            if data is None:
                return True
            if not data:
                self._heard_fd = None
                return False
            *lines, self._heard = (self._heard + data).split(b"\n")
            for line in lines:
                if line.strip() == WAITING.encode():
                    self.resume()
                elif line.strip() == GOING_ON.encode():
                    self.hold()
                    self._answer(QUIET)

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
        while True:
            with self._draw:
                self._take()
                due = self._since + self._after - time.monotonic()
                if not self._held and due <= 0:
                    self._draw_now()
            if self._stop.wait(TICK if self._held else min(TICK, max(due, 0.01))):
                return

    def _draw_now(self) -> None:
        if self._log:
            if self._finished:
                # Said: the model may wait again for the last entry to be published
                # (counted a moment before), but the log has nothing more to say.
                return
            now = time.monotonic()
            if not self._titled:
                self._write(f"carton: {self._title}\n")
                self._titled = True
            elif not self._said or now - self._logged >= self._every:
                self._say_unsaid()
                with self._lock:
                    if self._done >= self._packages:
                        return  # all in: the line that says so comes next (`hold`)
                self._write(f"carton:{self.status()}\n")  # first of this wait, then every
            else:
                return
            self._logged, self._said = now, True
            return
        if not self._titled:
            self._write(f"carton: {self._title}\n")
            self._titled = True
        try:
            width = os.get_terminal_size(self._fd).columns or 80  # 0: not known
        except OSError:
            width = 80
        self._on_screen = self._write("\r\x1b[K" + self.status()[:max(width - 1, 10)])

    def _say_unsaid(self) -> None:
        """Into a log, the verbose lines held back while the model's process ran."""
        for line in self._unsaid:
            self._write(line)
        self._unsaid.clear()

    def _write(self, text: str) -> bool:
        """Whether `text` reached the terminal (if not, nothing more is drawn)."""
        if os.getppid() != self._parent:
            self._stop.set()  # the model's process ended while this one installs on
            return False
        try:
            os.write(self._fd, text.encode("utf-8", "replace"))
        except OSError:
            self._stop.set()  # the terminal went away: draw nothing more
            return False
        return True


def packages_of(count: int) -> str:
    """`1 package`, `2 packages`."""
    return f"{count} package" + ("" if count == 1 else "s")


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f}"
