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
from contextlib import suppress

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
        dies (or misbehaves), the jobs it held are compiled here and the thread ends:
        the asking threads compile the rest themselves."""
        assert proc.stdin is not None and proc.stdout is not None
        pending: deque[tuple[Source, _Batch]] = deque()  # written, not acknowledged
        try:
            if proc.stdout.readline() != b"\n":
                return  # it never started
            self.ready += 1
            while True:
                while len(pending) < WINDOW:
                    try:
                        job = self._jobs.get_nowait() if pending else self._jobs.get()
                    except queue.Empty:
                        break
                    pending.append(job)
                    proc.stdin.write((" ".join(os.fsencode(p).hex() for p in job[0])
                                      + "\n").encode("ascii"))
                proc.stdin.flush()
                if proc.stdout.readline() != b"\n":
                    return  # it died
                self.helped += 1
                pending.popleft()[1].finish_one()
        except (OSError, ValueError):
            return  # a broken pipe: it died
        finally:
            for source, batch in pending:
                compile_one(source)  # py_compile replaces a .pyc atomically: no half file
                batch.finish_one()
            with suppress(OSError, ValueError):
                proc.stdin.close()


_compiler: Compiler | None = None
_compiler_lock = threading.Lock()


def compiler() -> Compiler:
    """This process's compiler: one helper per core beyond the first (at most 7)."""
    global _compiler
    with _compiler_lock:
        if _compiler is None:
            _compiler = Compiler(helpers=max(0, min((os.cpu_count() or 1) - 1, 7)))
        return _compiler
