"""Find the plan for a model on this interpreter, or have the worker make it.

The plan is the answer of selection (which lock section, which wheel provides which
import name, where each wheel's metadata is), kept in `plans/<key>.json`. The key
covers the model's identity (path and the stat of the files that define it) and the
interpreter, so the warm path is: stat, read one small file, done.
"""

from __future__ import annotations

import marshal
import os
import sys

from . import workerclient
from .paths import COMPLETE, PLAN_SUFFIX, plans_dir
from .workerclient import start_worker

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from typing import Any

PLAN_FORMAT = 10


def plan_identity(model: str) -> str:
    """What the plan depends on: the model's path and the stat of the files that define
    it, and the interpreter."""
    join = os.path.join
    if os.path.isfile(model):
        defining = [model]
    elif os.path.isfile(join(model, "carton.toml")):
        defining = [join(model, "carton.toml"), join(model, "MANIFEST"),
                    join(model, "model", ".carton", "carton.lock")]
    else:
        defining = [join(model, "pyproject.toml"), join(model, ".carton", "carton.lock")]
    parts = [model, workerclient.WORKER_PYTHON, sys.version, sys.platform]
    parts += [file_signature(path) for path in defining]
    return "\n".join(parts)  # passed to the worker in argv: no NUL


def file_signature(path: str) -> str:
    """What says a file changed: its size, time and inode ("-" if it is not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def model_of(plan: dict[str, Any]) -> str:
    """The MODEL argument (a .carton, an unpacked carton or a model folder) that a plan
    was made for: the first line of its identity."""
    return str(plan["identity"]).split("\n", 1)[0]


def plan_key(model: str) -> str:
    return _key(plan_identity(model))


def _key(identity: str) -> str:
    """The plan's file name: a 64-bit FNV-1a checksum of its identity, computed here
    because zlib and hashlib are extension modules that cost half a millisecond or more
    to load on the warm path. A collision cannot select a wrong plan: the plan stores
    its identity and `get_plan` compares it. The format is part of the key, so that a
    carton of another plan format never reads this one (nor boots its subprocess prefix)."""
    h = 0xCBF29CE484222325
    for byte in f"{PLAN_FORMAT}\n{identity}".encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def get_plan(model: str, home: str) -> dict[str, Any]:
    """The plan for `model` (absolute), made by the worker on the first run."""
    identity = plan_identity(model)
    path = os.path.join(plans_dir(home), _key(identity) + PLAN_SUFFIX)
    plan = _read(path, identity)
    if plan is not None:
        return plan
    # Processes of one model started together (a Pool, an executor's workers) make the
    # plan once: the first makes it, the others wait for it, then read it. `cache prune`
    # and `clear` leave a plan alone while its lock is held, so it is read before the
    # lock is let go; a plan removed anyway (a lock-less cache) is made again.
    for _ in range(3):
        lock = _lock(path)
        try:
            plan = _read(path, identity)
            if plan is not None:
                return plan
            # With the interpreter: also install what the model's source imports
            # (predict.py). The worker holds the lock (its copy of the descriptor) until
            # it has installed them, so that processes started together wait for those
            # too; this process goes on as soon as the plan is written.
            from .trace import mark

            mark("model: starting the worker")
            background = start_worker("plan", model, path, identity,
                                      workerclient.WORKER_PYTHON, keep_fd=lock,
                                      meanwhile=lambda: _extract_meanwhile(model, home))
            mark("model: going on")
            plan = _read(path, identity)
        finally:
            if lock is not None:
                os.close(lock)
        if plan is not None:
            if background is not None:  # in memory only: this run's imports wait for it
                plan["_background"] = background
            return plan
    raise OSError(f"the worker wrote no readable plan at {path} (three times)")


def _extract_meanwhile(model: str, home: str) -> None:
    """Extract a .carton while the worker's interpreter starts and imports what it needs
    (~150 ms on one core, while this process would wait on the other): the worker then
    finds the model's folder published. A failure is the worker's to report: it opens
    the model again."""
    if not os.path.isfile(model):
        return  # a model folder: nothing to extract
    from pathlib import Path

    from .errors import CartonError
    from .source import open_model
    from .trace import mark

    try:
        open_model(Path(model), Path(home))
    except (CartonError, OSError, ValueError, KeyError):
        return
    mark("model: model opened")


def _lock(plan_file: str) -> int | None:
    """Hold the lock of making `plan_file` (flock: it dies with its holder); None where
    it cannot be taken (a read-only cache, no flock): then each process makes its own."""
    try:
        import fcntl

        os.makedirs(os.path.dirname(plan_file), exist_ok=True)
        fd = os.open(plan_file + ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                     0o644)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


def read_plan(path: str) -> dict[str, Any] | None:
    """The plan stored at `path`, or None if it is missing, stale or unreadable."""
    return _read(path, None)


def dump_plan(plan: dict[str, Any]) -> bytes:
    """A plan's bytes (without the keys that start with `_`: this process's own). marshal,
    because the warm path reads it without importing json; the plan's key covers the
    interpreter, so marshal's version never differs."""
    return marshal.dumps({k: v for k, v in plan.items() if not k.startswith("_")})


def _read(path: str, identity: str | None) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            # The cache's own file, written by the worker: as trusted as its .pyc files.
            plan = marshal.loads(f.read())  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        return None
    if identity is not None and plan.get("identity") != identity:
        return None
    # A model folder's plan also watches its requirements files (worker.lock_watch): an
    # edited one makes the plan again, and the worker says the lock is stale.
    for watched, signature in plan.get("watch", ()):
        if file_signature(watched) != signature:
            return None
    root = plan["model"]
    if plan.get("archive") and not os.path.isfile(os.path.join(root, COMPLETE)):
        return None  # the extracted model was removed: make the plan again
    if not os.path.isdir(root):
        return None
    plan["_file"] = path
    return plan


def plan_path(model: str, home: str) -> str:
    return os.path.join(plans_dir(home), plan_key(model) + PLAN_SUFFIX)
