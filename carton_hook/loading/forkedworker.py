"""A first run's worker forked from the model's process, where that is safe: no
interpreter to start, none of carton's own modules to import again.

The worker (`carton_hook.installing.worker`) is otherwise a new interpreter, started
with `subprocess`. Forked, it is the same: its own process, its own `sys.modules` (so
the model's process still never holds urllib3, installer or filelock), the same pipes,
environment and descriptors, and it ends with `os._exit`, so that nothing of the model
process's exit (its `atexit`, its buffers) runs twice. It is only done where a fork
leaves nothing half-held: on Linux, in carton's own command line before any of the
model's code ran (`loading.MAY_FORK`), in a process with one thread, where the
worker's interpreter is this one, and unless `CARTON_NO_FORK` is set.
"""

from __future__ import annotations

import os
import sys

from carton_hook import loading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

# carton's own dependencies, which the worker imports: a process holding any of them
# already (a copy the model's process must not hand on) starts the worker instead.
_OWN_DEPENDENCIES = ("packaging", "urllib3", "installer", "filelock", "isal", "tomli")


def may_fork() -> bool:
    """Whether the worker may be forked from this process now."""
    if not loading.MAY_FORK or sys.platform != "linux":
        return False
    from carton_hook.switches import env_flag

    if env_flag("CARTON_NO_FORK"):
        return False
    if sys.executable != loading.WORKER_PYTHON:
        return False
    if any(name in sys.modules for name in _OWN_DEPENDENCIES):
        return False
    try:  # one thread, counting those Python does not know of
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class ForkedWorker:
    """What `workerclient` uses of a `subprocess.Popen`, for a forked worker: its
    three pipes as text files, `wait()` and `returncode`."""

    def __init__(self, pid: int, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            try:  # a signal's interruption is retried by os.waitpid itself (PEP 475)
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler), as Popen takes it
                status = 0
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_worker(args: Sequence[str], env: dict[str, str],
                pass_fds: Sequence[int]) -> ForkedWorker:
    """Fork a worker that runs `worker.main(args)` with `env` as its environment,
    keeping the descriptors `pass_fds` (all others are closed, as `subprocess` does)."""
    to_child, child_stdin = os.pipe()
    child_stdout, from_child = os.pipe()
    child_stderr, from_child_err = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # else the child would write them again
        try:  # noqa: SIM105 - contextlib costs a millisecond
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit, coverage never sees it
        _child(args, env, pass_fds, to_child, from_child, from_child_err)
    for fd in (to_child, from_child, from_child_err):
        os.close(fd)
    return ForkedWorker(pid,
                        open(child_stdin, "w", encoding="utf-8", errors="replace"),
                        open(child_stdout, encoding="utf-8", errors="replace"),
                        open(child_stderr, encoding="utf-8", errors="replace"))


def _child(args: Sequence[str], env: dict[str, str], pass_fds: Sequence[int],
           stdin: int, stdout: int, stderr: int) -> None:
    """The forked worker: its descriptors and environment as a started worker has them,
    then `worker.main`; it never returns."""
    code = 1
    try:
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        keep = {0, 1, 2, *pass_fds}
        for fd in os.listdir("/proc/self/fd"):  # Linux; closerange may try every number
            if int(fd) not in keep:
                try:  # noqa: SIM105 - contextlib costs a millisecond
                    os.close(int(fd))
                except OSError:  # the listing's own descriptor, closed by now
                    pass
        os.environ.clear()
        os.environ.update(env)
        # The started worker's path: its PYTHONPATH (carton's folder and, in an
        # executable carton's runtime, its dependencies' folder) before the rest.
        front = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = front + [p for p in sys.path if p not in front]
        # New streams on the new descriptors (the old ones' buffers were flushed).
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace", closefd=False, buffering=1)
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as the started worker's __main__
        from carton_hook.installing import worker

        worker.STARTED_BY = os.getppid()
        code = worker.main(list(args))
    except SystemExit as exc:  # as the interpreter's exit status would be
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - printed as a started worker's crash would be
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - its reader has gone
                pass
        os._exit(code)
