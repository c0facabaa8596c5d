"""Run the worker subprocess (`carton_hook.worker`) and turn its failures into errors.

The worker runs with the interpreter that started this process, before isolation, with
this package's folder on its path, so it finds carton_hook and its dependencies even
though the model's own `sys.path` no longer has them.
"""

from __future__ import annotations

import os
import sys

from .errors import CartonError

# The interpreter that has carton's dependencies: captured at import, before anything
# changes sys.executable; a subprocess of a loaded carton gets it set by its boot.
WORKER_PYTHON = sys.executable
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class WorkerError(CartonError):
    """The worker reported a failure; `kind` says which (e.g. "no-environment")."""

    def __init__(self, message: str, kind: str) -> None:
        self.kind = kind
        super().__init__(message)


def _progress_terminal() -> int | None:
    """A copy of stderr for the worker's progress line, if stderr is a terminal and the
    run is not quiet (progress.py)."""
    from .paths import env_flag

    if env_flag("CARTON_QUIET"):
        return None
    try:
        if not os.isatty(2):
            return None
        return os.dup(2)
    except OSError:
        return None


def run_worker(*args: str) -> str:
    """Run `python -m carton_hook.worker ARGS` and return what it printed on stdout;
    raise WorkerError on failure."""
    import subprocess

    env = dict(os.environ)
    # An executable carton's runtime keeps carton_hook's dependencies in a folder of
    # their own (zipmain.py), which the model's process never has on its path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT,
                                                      env.get("CARTON_RUNTIME_DEPS", ""),
                                                      env.get("PYTHONPATH", "")]))
    terminal = _progress_terminal()
    if terminal is not None:
        env["CARTON_PROGRESS_FD"] = str(terminal)
    try:
        proc = subprocess.run([WORKER_PYTHON, "-m", "carton_hook.worker", *args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=False, pass_fds=() if terminal is None else (terminal,))
    finally:
        if terminal is not None:
            os.close(terminal)
    if proc.returncode == 0:
        if proc.stderr:
            sys.stderr.write(proc.stderr)
        return proc.stdout
    import json

    lines = proc.stderr.strip().splitlines()
    try:
        report = json.loads(lines[-1])
        message, kind = str(report["error"]), str(report.get("kind", ""))
        if lines[:-1]:
            sys.stderr.write("\n".join(lines[:-1]) + "\n")
    except (IndexError, ValueError, KeyError, TypeError):
        message = (lines[-1] if lines else f"exit status {proc.returncode}")
        kind = "crash"
        sys.stderr.write(proc.stderr)
    raise WorkerError(message, kind)
