"""Find the plan for a model on this interpreter, or have the worker make it.

The plan is the answer of selection (which lock section, which wheel provides which
import name, where each wheel's metadata is), kept in `plans/<key>.plan`
(planning/planfile.py). The key covers the model's identity (path and the stat of the
files that define it) and the interpreter, so the warm path is: stat, read one small
file, done.
"""

from __future__ import annotations

import os
import sys

from carton_hook import loading
from carton_hook.cache.layout import PLAN_SUFFIX, is_published, packages_dir, plans_dir
from carton_hook.planning.planfile import file_key, file_signature, read_plan

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from carton_hook.loading.workerclient import Background
    from carton_hook.planning.planfile import PlanData


class Plan:
    """A plan in this process: what selection decided (`data`, the plan file's content),
    the file it is kept in, and on a first run the worker that is still installing what
    the model's source imports (`background`), which this run's imports wait for."""

    __slots__ = ("background", "data", "file")

    def __init__(self, data: PlanData, file: str, background: Background | None = None) -> None:
        self.data = data
        self.file = file
        self.background = background


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
    parts = [model, loading.WORKER_PYTHON, sys.version, sys.platform]
    parts += [file_signature(path) for path in defining]
    return "\n".join(parts)  # passed to the worker in argv: no NUL


def plan_key(model: str) -> str:
    return file_key(plan_identity(model))


def get_plan(model: str, home: str) -> Plan:
    """The plan for `model` (absolute), made by the worker on the first run."""
    identity = plan_identity(model)
    path = os.path.join(plans_dir(home), file_key(identity) + PLAN_SUFFIX)
    data = read_plan(path, identity)
    if data is not None:
        return Plan(data, path)
    # Processes of one model started together (a Pool, an executor's workers) make the
    # plan once: the first makes it, the others wait for it, then read it. `cache prune`
    # and `clear` leave a plan alone while its lock is held, so it is read before the
    # lock is let go; a plan removed anyway (a lock-less cache) is made again.
    for _ in range(3):
        lock = _lock(path)
        try:
            data = read_plan(path, identity)
            if data is not None:
                return Plan(data, path)
            # With the interpreter: also install what the model's source imports
            # (predict.py). The worker holds the lock (its copy of the descriptor) until
            # it has installed them, so that processes started together wait for those
            # too; this process goes on as soon as the plan is written.
            from carton_hook.loading.workerclient import start_worker
            from carton_hook.trace import mark

            mark("model: starting the worker")
            # A .carton is extracted meanwhile, then its section selected here, while
            # the worker imports what downloading needs (selection.py).
            archive = os.path.isfile(model)
            background = start_worker(
                "plan", model, path, identity, loading.WORKER_PYTHON, keep_fd=lock,
                meanwhile=lambda: _extract_meanwhile(model, home, path, identity),
                selects=archive)
            mark("model: going on")
            data = read_plan(path, identity)
        finally:
            if lock is not None:
                os.close(lock)
        if data is not None:
            return Plan(data, path, background)
    raise OSError(f"the worker wrote no readable plan at {path} (three times)")


def _extract_meanwhile(model: str, home: str, plan_file: str, identity: str) -> str:
    """Extract a .carton while the worker's interpreter starts and imports what it needs
    (~150 ms on one core, while this process would wait on the other), then select its
    section and write the plan (selection.py). What to tell the worker (workerclient):
    MODEL_OPENED, PLAN_WRITTEN, or ALL_CACHED where the plan is written and every wheel
    the worker would install first is in the cache already; either of the last two
    followed by the names the model's source imports (JSON), which the worker then need
    not work out again. A failure is the worker's to report: it opens the model again,
    and selects."""
    from carton_hook.installing.words import MODEL_OPENED, PLAN_WRITTEN
    from carton_hook.loading.workerclient import ALL_CACHED

    if not os.path.isfile(model):
        return MODEL_OPENED  # a model folder: nothing to extract
    from pathlib import Path

    from carton_hook.cache.inuse import hold
    from carton_hook.errors import CartonError
    from carton_hook.loading.selection import select_here
    from carton_hook.planning.models import open_model
    from carton_hook.trace import mark

    try:
        # Held from now on, as api.load holds it: `cache clear` took a folder extracted
        # a moment before out between its extraction and the plan's reading, three
        # times running beside a clearing loop (`get_plan` then gave up).
        held = False
        for _ in range(2):
            if hold(str(open_model(Path(model), Path(home)).root)):
                held = True
                break
    except (CartonError, OSError, ValueError, KeyError):
        return MODEL_OPENED
    mark("model: model opened")
    data = select_here(model, home, plan_file, identity, held)
    if data is None:
        return MODEL_OPENED
    try:
        from carton_hook.planning.predict import imported_names

        names = imported_names(data["model"], data["entrypoint"])
        cached = _all_cached(data, home, names)
    except Exception:  # noqa: BLE001 - the worker predicts again, and reports what failed
        return PLAN_WRITTEN
    import json

    return f"{ALL_CACHED if cached else PLAN_WRITTEN} {json.dumps(sorted(names))}"


def _all_cached(data: PlanData, home: str, names: set[str]) -> bool:
    """Whether every wheel the worker installs before the model's imports ask (those
    providing `names`, which its source imports: predict.py) is in the cache: the
    model's process then need not wait for the worker to say so (a started worker ~45
    ms later, a forked one ~7-10 ms: it reads the plan and starts its downloads first)."""
    from carton_hook.planning.predict import wheels_to_prefetch

    root = packages_dir(home)
    shas = wheels_to_prefetch(data, names)
    return all(is_published(os.path.join(root, sha)) for sha in shas)


# How many times `install` writes a removed plan again before it gives up.
PLAN_REWRITES = 3


def install(plan: Plan, shas: list[str]) -> None:
    """Have a worker install the wheels `shas` of `plan` (an import's, where no worker of
    this run installs them). The worker reads the plan's file, which `cache prune` and
    `clear` may remove while the model runs (once no process holds the plan's lock):
    where it is gone, it is written again from what this process read, before the
    worker starts, and once more if it went again before the worker read it. (Waiting
    for the plan's lock instead would make the import wait for a first run's whole
    prefetch, which that run's worker holds it for.)"""
    from carton_hook.errors import WorkerError
    from carton_hook.loading.workerclient import run_worker

    for attempt in range(PLAN_REWRITES):
        if not os.path.exists(plan.file):
            import contextlib

            from carton_hook.planning.planfile import write_plan_file

            with contextlib.suppress(OSError):  # the worker says what it cannot read
                write_plan_file(plan.file, plan.data)
        try:
            run_worker("install", plan.file, loading.WORKER_PYTHON, *shas)
            return
        except WorkerError:
            if attempt + 1 == PLAN_REWRITES or os.path.exists(plan.file):
                raise


def _lock(plan_file: str) -> int | None:
    """Hold the lock of making `plan_file` (flock: it dies with its holder); None where
    it cannot be taken (a read-only cache, no flock): then each process makes its own."""
    from carton_hook.system import O_CLOEXEC, lock

    try:
        os.makedirs(os.path.dirname(plan_file), exist_ok=True)
        fd = os.open(plan_file + ".lock", os.O_RDWR | os.O_CREAT | O_CLOEXEC,
                     0o644)
    except OSError:
        return None
    if not lock(fd):
        os.close(fd)
        return None
    return fd


def plan_path(model: str, home: str) -> str:
    return os.path.join(plans_dir(home), plan_key(model) + PLAN_SUFFIX)
