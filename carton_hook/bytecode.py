"""Compile installed modules to `.pyc` on every core: in this process and in helpers.

Compiling holds the GIL, so threads do not help, and a `multiprocessing` pool costs about
a hundred milliseconds to start (each child imports its parent's main module), which
only pays for the biggest wheels. A helper here is a bare `python -I -S` that reads jobs
on its stdin: it starts in a few milliseconds, once per worker process, while the first
wheels still download. The thread that asks for a wheel's modules compiles them too, so
a small wheel never waits for a helper, and a helper that dies only loses its speed.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections import deque

# One job per line: the source path and the path its code objects name, each as the hex
# of its file-system bytes (no separator or newline can appear in it); one line back when
# the job is done. Errors are ignored, as pip and compileall do: a module that does not
# compile fails when imported, with Python's own message. The helper says when it is
# ready, so that no job waits for a helper that is still starting.
_HELPER = """\
import os, py_compile, sys
sys.stdout.write("\\n")
sys.stdout.flush()
for line in sys.stdin:
    path, final = (os.fsdecode(bytes.fromhex(part)) for part in line.split())
    try:
        py_compile.compile(path, dfile=final, doraise=True)
    except Exception:
        pass
    sys.stdout.write("\\n")
    sys.stdout.flush()
"""

# Jobs a helper holds at once.
WINDOW = 8

Source = tuple[str, str]  # (the file written now, the path it will have when published)


def compile_one(source: Source) -> None:
    """Write `source`'s `.pyc` beside it, naming its final path (errors are ignored)."""
    import py_compile
    from contextlib import suppress

    path, final = source
    with suppress(Exception):  # as the helper does, and pip
        py_compile.compile(path, dfile=final, doraise=True)


class _Batch:
    """The modules of one wheel: done when the last of them is."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self.done = threading.Event()
        if count == 0:
            self.done.set()

    def finish_one(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()


class Compiler:
    """A job queue that this process's threads and `helpers` helper processes share."""

    def __init__(self, helpers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Source, _Batch]] = queue.SimpleQueue()
        self._helpers = helpers
        self._started = False
        self._lock = threading.Lock()
        self.ready = 0  # helpers that took jobs
        self.helped = 0  # jobs that helpers did

    def start(self) -> None:
        """Start the helpers now (they are started on the first compile otherwise)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for _ in range(self._helpers):
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-I", "-S", "-c", _HELPER], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                except OSError:
                    break  # this process compiles alone
                threading.Thread(target=self._feed, args=(proc,), daemon=True,
                                 name="carton-compile").start()

    def compile(self, sources: list[Source]) -> None:
        """Compile every module of `sources`; returns when all are written."""
        if not sources:
            return
        self.start()
        batch = _Batch(len(sources))
        for source in sources:
            self._jobs.put((source, batch))
        while not batch.done.is_set():
            try:
                source, owner = self._jobs.get_nowait()
            except queue.Empty:
                batch.done.wait()  # the rest is in the helpers' hands
                break
            compile_one(source)
            owner.finish_one()

    def _feed(self, proc: subprocess.Popen[bytes]) -> None:
        """Keep one helper busy: up to WINDOW jobs in its pipe, so that it never waits
        for this thread, which shares the GIL with the installing ones. If the helper
        dies, its jobs and every later one are compiled here."""
        assert proc.stdin is not None and proc.stdout is not None
        try:
            alive = proc.stdout.readline() == b"\n"
        except (OSError, ValueError):
            alive = False
        if not alive:
            return  # the others (and the asking threads) go on without it
        self.ready += 1
        sent: deque[tuple[Source, _Batch]] = deque()
        while alive:
            try:
                while len(sent) < WINDOW:
                    job = self._jobs.get() if not sent else self._jobs.get_nowait()
                    line = " ".join(os.fsencode(p).hex() for p in job[0]) + "\n"
                    sent.append(job)
                    proc.stdin.write(line.encode("ascii"))
                proc.stdin.flush()
            except queue.Empty:
                proc.stdin.flush()
            except (OSError, ValueError):
                alive = False
                break
            try:
                alive = proc.stdout.readline() == b"\n"
            except (OSError, ValueError):
                alive = False
            if alive:
                self.helped += 1
                sent.popleft()[1].finish_one()
        for source, batch in sent:
            compile_one(source)  # py_compile replaces a .pyc atomically: no half file
            batch.finish_one()
        while True:
            source, batch = self._jobs.get()
            compile_one(source)
            batch.finish_one()


_compiler: Compiler | None = None
_compiler_lock = threading.Lock()


def compiler() -> Compiler:
    """This process's compiler: one helper per core beyond the first (at most 7)."""
    global _compiler
    with _compiler_lock:
        if _compiler is None:
            _compiler = Compiler(helpers=max(0, min((os.cpu_count() or 1) - 1, 7)))
        return _compiler
