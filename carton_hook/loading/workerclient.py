"""Run the worker subprocess (`carton_hook.installing.worker`) and turn its failures into errors.

The worker runs with the interpreter that started this process, before isolation, with
this package's folder on its path, so it finds carton_hook and its dependencies even
though the model's own `sys.path` no longer has them.
"""

from __future__ import annotations

import os
import sys

from carton_hook import loading
from carton_hook.errors import WorkerError
from carton_hook.installing.words import (
    DOWNLOADED,
    INSTALLED,
    MODEL_OPENED,
    PLAN_LOCK_FD,
    PLAN_WRITTEN,
    PREFETCH_FAILED,
    PROGRESS_FD,
    READY,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

WORKER_MODULE = "carton_hook.installing.worker"
# The folder that holds carton_hook (this file is carton_hook/<room>/<module>.py).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))



def _progress_stream(log: bool) -> tuple[int, str] | None:
    """A copy of stderr for the worker's progress, and how to write it there: "terminal"
    if stderr is one, "log" lines if it is not and `log` allows them; None when the run
    is quiet (progress.py)."""
    from carton_hook.switches import env_flag

    if env_flag("CARTON_QUIET"):
        return None
    try:
        style = "terminal" if os.isatty(2) else "log"
        if style == "log" and not log:
            return None
        return os.dup(2), style
    except OSError:
        return None


def _worker_env(listen: bool = False,
                log: bool = False) -> tuple[dict[str, str], int | None]:
    """The worker's environment, and the descriptor it writes progress on (the caller
    passes it on, then closes it). With `listen`, the worker draws only while told on
    its stdin that the model's process waits (progress.py). With `log`, progress goes
    into a stderr that is no terminal too, as plain lines: for the plan's worker, whose
    copy of stderr is taken before the model's code runs (a test runner of the model
    may later point descriptor 2 at a capture), and for `fetch`."""
    env = dict(os.environ)
    env.pop("CARTON_PROGRESS_LISTEN", None)
    env.pop("CARTON_PROGRESS_STYLE", None)
    env.pop("CARTON_MODEL_SELECTS", None)
    # An executable carton's runtime keeps carton_hook's dependencies in a folder of
    # their own (zipmain.py), which the model's process never has on its path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT,
                                                      env.get("CARTON_RUNTIME_DEPS", ""),
                                                      env.get("PYTHONPATH", "")]))
    stream = _progress_stream(log)
    if stream is None:
        env.pop(PROGRESS_FD, None)
        return env, None
    progress_fd, env["CARTON_PROGRESS_STYLE"] = stream
    env[PROGRESS_FD] = str(progress_fd)
    if listen:
        env["CARTON_PROGRESS_LISTEN"] = "1"
    return env, progress_fd


def run_worker(*args: str, log: bool = False) -> str:
    """Run `python -m carton_hook.installing.worker ARGS` and return what it printed on stdout;
    raise WorkerError on failure. `log`: progress into a stderr that is no terminal too."""
    import subprocess

    env, progress_fd = _worker_env(log=log)
    try:
        proc = subprocess.run([loading.WORKER_PYTHON, "-m", WORKER_MODULE, *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=False, pass_fds=() if progress_fd is None else (progress_fd,))
    finally:
        if progress_fd is not None:
            os.close(progress_fd)
    return _result(proc.returncode, proc.stdout, proc.stderr)


# What `meanwhile` returns where it wrote the plan and every wheel the worker installs
# first is cached: the worker is told PLAN_WRITTEN (words.py), and the model's process
# goes on without waiting for its ready, as it has nothing to wait for.
ALL_CACHED = "all-cached"

# How long the model's process waits for a worker that draws progress to say it has
# stopped: a terminal stopped with Ctrl-S blocks its writes, and the model must go on.
HUSH_TIMEOUT = 2.0

# `hush` waits for the worker's reply from this long before its silent seconds end.
SILENCE_MARGIN = 0.05

# How the line starts that a worker prints when the model's process may go on while it
# keeps installing (`worker.prefetch`): `{"ready": [SHA256, ...]}` (words.py).
_READY_LINE = f'{{"{READY}"'
_FAILED_LINE = f'{{"{PREFETCH_FAILED}"'
_INSTALLED_LINE = f'{{"{INSTALLED}"'
_DOWNLOADED_LINE = f'{{"{DOWNLOADED}"'

# How often a waiting model's process looks at the cache itself, for the wheels that
# no word from its worker announces (those a second worker process or another model's
# process installs). Its own worker's are announced (INSTALLED): looking every 5 ms
# alone let the model go on 2.5 ms after each, on average.
LOOK_EVERY = 0.005


def start_worker(*args: str, keep_fd: int | None = None,
                 meanwhile: Callable[[], str] | None = None,
                 selects: bool = False) -> Background | None:
    """Run `python -m carton_hook.installing.worker ARGS` until it says it is ready, or
    ends. Returns the `Background` of a worker that goes on installing (None if it ended); raises
    WorkerError on failure. `keep_fd` is passed to it, so that a lock on it is held as
    long as the worker runs. `meanwhile` runs while the worker starts; the worker waits
    for it to end before it opens the model (`CARTON_AFTER_MODEL_OPENS`), then is told
    what it returns: MODEL_OPENED, or, with `selects` (the worker imports what
    downloading needs meanwhile), PLAN_WRITTEN if it wrote the plan (if not, the worker
    makes it), or ALL_CACHED: then this returns without waiting for the ready. Either
    may be followed by a space and what the worker is to read with it (plan.py)."""
    import threading
    import time

    from carton_hook.installing.progress import silent_for
    from carton_hook.switches import env_flag

    # Nothing is written in the worker's first seconds (but verbose lines into a log).
    silent = 0.0 if env_flag("CARTON_VERBOSE") else silent_for(os.environ)
    silent_until = time.monotonic() + silent
    env, progress_fd = _worker_env(listen=True, log=True)
    if meanwhile is not None:
        env["CARTON_AFTER_MODEL_OPENS"] = "1"
        if selects:
            env["CARTON_MODEL_SELECTS"] = "1"
    fds = tuple(fd for fd in (progress_fd, keep_fd) if fd is not None)
    if keep_fd is not None:  # its number in the worker too, which lets go of it (words.py)
        env[PLAN_LOCK_FD] = str(keep_fd)
    try:
        # Its stdin says when `meanwhile` has ended, and when the model's process waits
        # for it (only then does it draw progress).
        proc = _forked(args, env, fds)
        if proc is None:
            import subprocess

            proc = subprocess.Popen([loading.WORKER_PYTHON, "-m", WORKER_MODULE, *args],
                                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, pass_fds=fds)
    finally:
        if progress_fd is not None:
            os.close(progress_fd)
    assert proc.stdout is not None and proc.stderr is not None
    background = Background(proc, listening=progress_fd is not None,
                            silent_until=silent_until)
    # Its stderr is read all along (a full pipe would stop it), and passed on once ready.
    threading.Thread(target=background.pass_on_stderr, daemon=True,
                     name="carton-worker-stderr").start()
    said = MODEL_OPENED
    if meanwhile is not None:
        try:
            said = meanwhile()
        finally:
            word, _, names = said.partition(" ")  # the imported names may follow
            background.tell(f"{PLAN_WRITTEN} {names}" if word == ALL_CACHED else said)
    if progress_fd is None:
        background.close_stdin()  # nothing more to say
    if said.partition(" ")[0] == ALL_CACHED:
        background.go_on()  # it installs nothing the model waits for (shas: none)
        return background
    for line in proc.stdout:
        if line.startswith(_READY_LINE):
            import json

            background.shas = set(json.loads(line)[READY])
            background.go_on()
            return background
        background.hear(line)
    proc.stdout.close()
    proc.wait()
    background.close_stdin()
    background.stderr_done.wait()  # and closed
    _result(proc.returncode, "", "".join(background.stderr))
    return None


def _forked(args: Sequence[str], env: dict[str, str], fds: Sequence[int]) -> Any:
    """The worker forked from this process where that is safe (forkedworker.py), else
    None."""
    from carton_hook.loading.forkedworker import fork_worker, may_fork

    if not may_fork():
        return None
    return fork_worker(args, env, fds)


class Background:
    """A worker that installs wheels while the model's process goes on: the finder waits
    for those it imports (`wait`)."""

    def __init__(self, proc: Any, listening: bool = False, silent_until: float = 0.0) -> None:
        import codecs
        import threading

        from carton_hook.cache.layout import packages_dir
        from carton_hook.loading.earlycode import EarlyCode

        self.proc = proc
        self._listening = listening  # it draws progress, when told the model waits
        # Until then (time.monotonic()) it writes nothing: `hush` need not wait for it.
        self._silent_until = silent_until
        self._asked = 0  # how many times it was told GOING_ON
        self._answered = 0  # how many QUIET replies came back
        self._replies = threading.Condition()
        self.shas: set[str] = set()
        self.installed: set[str] = set()  # announced as it was published (INSTALLED)
        self.early = EarlyCode(packages_dir())  # compiles from what is downloaded
        self.failed: dict[str, str] = {}
        self.stderr: list[str] = []
        self.stderr_done = threading.Event()
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._live = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        os.set_blocking(proc.stderr.fileno(), False)  # read only what it holds (`_take`)

    def go_on(self) -> None:
        """The model's process goes on while this worker runs: its reports are read, and
        what it says on stderr is passed on from now on."""
        import atexit
        import threading

        threading.Thread(target=self.read_reports, daemon=True,
                         name="carton-worker-stdout").start()
        self.hush()  # no status line above what the model prints
        self.go_live()
        atexit.register(self.at_exit)

    def pass_on_stderr(self) -> None:
        """Read the worker's stderr as it comes (a full pipe would stop it): kept until
        the model's process goes live, passed on from then on. Each read is made under
        the lock, once the pipe has something, so that `drain` at exit knows that what
        the pipe no longer holds has been passed on."""
        import select

        fd = self.proc.stderr.fileno()
        while True:
            select.select([fd], [], [])
            with self._lock:
                if self._take(fd) is None:
                    self.proc.stderr.close()  # at its end, by its only reader
                    break
        self.stderr_done.set()

    def _take(self, fd: int) -> bool | None:
        """Pass on (or keep) what the pipe holds now: True if it held something, False
        if nothing yet, None at its end. The caller holds the lock."""
        from carton_hook.system import read_ready

        data = read_ready(fd)
        if data is None:
            return False
        text = self._decoder.decode(data, final=not data)
        if self._live:  # a warning while the model runs: say it now
            _write_stderr(text)
        else:
            self.stderr.append(text)
        return True if data else None

    def at_exit(self) -> None:
        """At the model process's exit: `drain`, and close the worker's stdin (it draws
        nothing more). The pipes it writes are closed by their readers at their end; a
        worker still installing keeps them until this process is gone."""
        self.drain()
        self.close_stdin()

    def drain(self) -> None:
        """Pass on what the worker has said that the relaying thread has not yet (a
        warning written just before the wheel the model waited for was published),
        without waiting for more."""
        if not self._live or self.stderr_done.is_set():
            return
        with self._lock:
            while not self.proc.stderr.closed and self._take(self.proc.stderr.fileno()):
                pass

    def go_live(self) -> None:
        """From now on, what the worker says on stderr is passed on as it comes."""
        with self._lock:
            sys.stderr.write("".join(self.stderr))
            sys.stderr.flush()
            self.stderr.clear()
            self._live = True

    def read_reports(self) -> None:
        for line in self.proc.stdout:
            self.hear(line)
        self.proc.stdout.close()  # at its end, by its only reader
        self.proc.wait()
        with self._replies:
            self._ended.set()
            self._replies.notify_all()

    def hear(self, line: str) -> None:
        """Take in a line the worker said on its stdout."""
        import json

        from carton_hook.installing.progress import QUIET

        if line.startswith(_INSTALLED_LINE):
            sha = json.loads(line)[INSTALLED]
            with self._replies:
                self.installed.add(sha)
                self._replies.notify_all()
            self.early.installed(sha)
        elif line.startswith(_DOWNLOADED_LINE):
            self.early.downloaded(*json.loads(line)[DOWNLOADED])
            with self._replies:
                self._replies.notify_all()
        elif line.startswith(_FAILED_LINE):
            with self._replies:
                self.failed.update(json.loads(line)[PREFETCH_FAILED])
                self._replies.notify_all()
        elif line.strip() == QUIET:
            with self._replies:
                self._answered += 1
                self._replies.notify_all()

    def wait(self, shas: list[str], done: Callable[[str], bool],
             names: Sequence[str] = ()) -> None:
        """Wait until each of `shas` that this worker installs is `done`, failed, or
        the worker has ended; its progress is drawn meanwhile."""
        pending = [sha for sha in shas
                   if sha in self.shas and sha not in self.failed and not done(sha)]
        if not pending or self._ended.is_set():
            return
        from carton_hook.installing.progress import GOING_ON, WAITING
        from carton_hook.trace import mark

        mark(f"model: waits for {len(pending)} wheels")
        if self._listening:
            self.tell(WAITING)
        interrupted = False
        # Meanwhile, its core compiles what the import will load (loading/earlycode.py).
        early = self.early
        early.want(names)
        compiled = 0
        try:
            for sha in pending:
                def heard(sha: str = sha) -> bool:
                    return sha in self.installed or sha in self.failed or self._ended.is_set()

                while not heard() and not done(sha):
                    if early.step():
                        compiled += 1
                        continue
                    with self._replies:
                        self._replies.wait_for(lambda: heard() or early.has_work(),
                                               timeout=LOOK_EVERY)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            if interrupted:  # Ctrl-C ends the worker too: do not wait for its reply
                if self._listening:
                    self.tell(GOING_ON)
            else:
                self.hush()
            mark(f"model: waited, compiling {compiled} modules meanwhile")

    def hush(self) -> None:
        """Have the worker clear its status line and draw nothing more until the model's
        process waits again: return once it says so (or has ended, or is stuck), or at
        once in its first silent seconds, when it cannot have written anything yet and
        reads this before it would (progress.py)."""
        import time

        from carton_hook.installing.progress import GOING_ON

        if not self._listening or not self.tell(GOING_ON):
            return
        with self._replies:  # threads that import at once may each say it
            self._asked += 1
            asked = self._asked
        if time.monotonic() < self._silent_until - SILENCE_MARGIN:
            return
        with self._replies:
            self._replies.wait_for(lambda: self._answered >= asked or self._ended.is_set(),
                                   timeout=HUSH_TIMEOUT)

    def tell(self, word: str) -> bool:
        """Say `word` on the worker's stdin; whether it could be said (it has ended)."""
        try:
            self.proc.stdin.write(word + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            # The worker has ended. Close the pipe now: what stayed in its buffer would
            # otherwise be flushed again when the file is collected, and Python would
            # print that BrokenPipeError as "Exception ignored" (CPython 3.13 did).
            self.close_stdin()
            return False
        return True

    def close_stdin(self) -> None:
        """Close the worker's stdin; a flush that fails still closes it."""
        try:  # noqa: SIM105 - contextlib costs the warm path a millisecond
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass


def _write_stderr(text: str) -> None:
    """Write to fd 2 from a daemon thread: `sys.stderr`'s buffer lock could be held by
    the interpreter's shutdown, which a daemon thread must not wait for (it would stop
    the process with a fatal error)."""
    try:  # noqa: SIM105 - contextlib costs the warm path a millisecond
        os.write(2, text.encode(errors="replace"))
    except OSError:
        pass


def _result(returncode: int, stdout: str, stderr: str) -> str:
    if returncode == 0:
        if stderr:
            sys.stderr.write(stderr)
        return stdout
    import json

    lines = stderr.strip().splitlines()
    try:
        report = json.loads(lines[-1])
        message, kind = str(report["error"]), str(report.get("kind", ""))
        if lines[:-1]:
            sys.stderr.write("\n".join(lines[:-1]) + "\n")
    except (IndexError, ValueError, KeyError, TypeError):
        message = (lines[-1] if lines else f"exit status {returncode}")
        kind = "crash"
        sys.stderr.write(stderr)
    raise WorkerError(message, kind)
