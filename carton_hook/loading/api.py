"""Load a carton into the running process: `carton_hook.load(MODEL)`.

    carton = carton_hook.load("model.carton")   # plan, finder, isolation, subprocesses
    main = carton.entrypoint()                   # the entrypoint as a callable
    sys.exit(main())

One interpreter, one set of locked packages: loading the carton that is loaded already
gives the loaded one (a model that re-executes itself, `os.execv(sys.executable,
[sys.executable, *sys.argv])`, starts in its prefix, which loaded it at start-up);
loading another is refused.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder

from carton_hook import loading
from carton_hook.cache import pycache
from carton_hook.cache.inuse import HOLD_ATTEMPTS, hold
from carton_hook.cache.layout import carton_home, packages_dir, prefix_dir
from carton_hook.loading.finder import CartonFinder
from carton_hook.loading.isolation import isolate
from carton_hook.loading.plan import Plan, get_plan
from carton_hook.loading.plan import install as install_with_worker
from carton_hook.loading.run import resolve_entrypoint
from carton_hook.system import prefix_layout

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any

    from carton_hook.planning.planfile import PlanData

SYSTEM_SITE_ENV = "CARTON_SYSTEM_SITE_PACKAGES"
# What the loading process put back after its model with system_site_packages (its
# interpreter's site-packages, PYTHONPATH, ...), for its children: theirs run in the
# prefix, whose pyvenv.cfg keeps those out.
SYSTEM_PATH_ENV = "CARTON_SYSTEM_SITE_PATH"


class Carton:
    """A loaded carton: its plan, its finder, its model folder and its prefix."""

    def __init__(self, plan: PlanData, finder: CartonFinder,
                 prefix: str | None = None, fallback: Sequence[str] = ()) -> None:
        self.plan = plan
        self.finder = finder
        self._prefix = prefix
        self._fallback = list(fallback)  # the entries put back after the model's

    @property
    def prefix(self) -> Path | None:
        """The venv-like folder its subprocesses run in (None when only activated)."""
        from pathlib import Path  # not at import: pathlib costs milliseconds at start-up

        return Path(self._prefix) if self._prefix else None

    @property
    def name(self) -> str:
        return str(self.plan["name"])

    @property
    def version(self) -> str:
        return str(self.plan["version"])

    @property
    def model_dir(self) -> Path:
        from pathlib import Path

        return Path(self.plan["model"])

    @property
    def section(self) -> str:
        return str(self.plan["section"])

    def entrypoint(self) -> Callable[[], Any]:
        """The entrypoint as a callable; its return value is meant as the exit code."""
        return resolve_entrypoint(self.plan["model"], str(self.plan["entrypoint"]))


def load(model: str | os.PathLike[str], *, system_site_packages: bool | None = None) -> Carton:
    """Make `model`'s locked packages importable in this process and in the subprocesses
    it starts with `sys.executable`, isolated from the interpreter's own site-packages
    unless `system_site_packages` (or `CARTON_SYSTEM_SITE_PACKAGES=1`) lets them through
    as a fallback."""
    if system_site_packages is None:
        system_site_packages = SYSTEM_SITE_ENV in os.environ and _env_flag(SYSTEM_SITE_ENV)
    home = carton_home()
    path = os.path.realpath(os.fspath(model))
    loaded = next((f for f in sys.meta_path if isinstance(f, CartonFinder)), None)
    if loaded is not None:
        return _loaded_again(loaded, path, home)
    plan = plan_for(path, home)
    if extracted(plan.data, home) and not hold(plan.data["model"]):
        # `cache clear` took the extracted model out since the plan was made: again.
        _forget(plan.file)
        plan = get_plan(path, home)
        hold(plan.data["model"])
    prefix = prefix_dir(plan.file, home)
    if not hold(prefix):  # a first run: made while its worker installs
        _make_and_hold_prefix(plan, prefix, home)
    carton = activate(plan, system_site_packages=system_site_packages)
    carton._prefix = prefix
    # Children started with sys.executable, `python` from PATH or multiprocessing run in
    # the prefix, whose .pth boots the same plan there.
    scripts, _, names = prefix_layout(*sys.version_info[:2])
    bindir = os.path.join(prefix, scripts)
    sys.executable = os.path.join(bindir, names[0])
    os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    # Its children (which boot from the environment) get what it got.
    if system_site_packages:
        os.environ[SYSTEM_SITE_ENV] = "1"
        os.environ[SYSTEM_PATH_ENV] = os.pathsep.join(carton._fallback)
    else:
        os.environ.pop(SYSTEM_SITE_ENV, None)
        os.environ.pop(SYSTEM_PATH_ENV, None)
    if "multiprocessing.spawn" in sys.modules:
        sys.modules["multiprocessing.spawn"].set_executable(sys.executable)
    return carton


def _loaded_again(finder: CartonFinder, path: str, home: str) -> Carton:
    """The carton at `path`, in a process that has one loaded: the loaded one if it is
    the same (same model file, same stat, same interpreter: the plan's identity), as it
    is; another is refused, before anything changes."""
    from carton_hook.cache.layout import PLAN_SUFFIX, plans_dir
    from carton_hook.loading.plan import plan_identity
    from carton_hook.planning.planfile import file_key, model_of

    identity = plan_identity(path)
    if finder.plan.get("identity") != identity:
        from carton_hook.errors import CartonError

        raise CartonError(f"{path}: another carton ({model_of(finder.plan)}) is already "
                          "loaded in this process; run this one in a process of its own")
    plan_file = os.path.join(plans_dir(home), file_key(identity) + PLAN_SUFFIX)
    return Carton(finder.plan, finder, prefix_dir(plan_file, home))


def _make_and_hold_prefix(plan: Plan, prefix: str, home: str) -> None:
    """Make the prefix and hold it, so that `cache clear` leaves it to this process and
    its children; one taken out between its making and the hold is made again, as the
    finder does with a wheel's entry (HOLD_ATTEMPTS)."""
    from carton_hook.loading.prefix import ensure_prefix
    from carton_hook.trace import mark

    for _ in range(HOLD_ATTEMPTS):
        ensure_prefix(plan.data, plan.file, home, loading.WORKER_PYTHON)
        if hold(prefix):
            mark("model: prefix made")
            return
    from carton_hook.errors import CacheError

    raise CacheError(f"{prefix}: the prefix for subprocesses was removed from the cache "
                     f"{HOLD_ATTEMPTS} times as it was made (`cache clear` in a loop?)")


def _env_flag(name: str) -> bool:
    # Imported only when the variable is set: one module less on every warm start.
    from carton_hook.switches import env_flag

    return env_flag(name)


def plan_for(path: str, home: str) -> Plan:
    """The plan of the model at `path` (absolute) for this interpreter: made by the
    worker on first use, after locking a section for this interpreter if the lock has
    none (unless packing at load time is off)."""
    try:
        return get_plan(path, home)
    except Exception as exc:
        # errors.py is imported when something failed, not at every start.
        from carton_hook.errors import WorkerError

        if not isinstance(exc, WorkerError) or exc.kind != "no-environment":
            raise
        from carton_hook.loading.newsection import pack_for_here

        return pack_for_here(path, home, exc)


def extracted(plan: PlanData, home: str) -> bool:
    """Whether the plan's model folder is one the cache holds (extracted, or packed)."""
    return str(plan["model"]).startswith(os.path.join(home, "models", ""))


def _forget(plan_file: str) -> None:
    try:  # noqa: SIM105 - contextlib costs the warm path a millisecond
        os.remove(plan_file)
    except FileNotFoundError:
        pass


def activate(plan: Plan, *, system_site_packages: bool) -> Carton:
    """Install the finder for `plan` and isolate `sys.path`: what a loaded carton and
    each of its subprocesses do."""
    if any(isinstance(f, CartonFinder) for f in sys.meta_path):
        from carton_hook.errors import CartonError

        raise CartonError("a carton is already loaded in this process")

    def install(shas: list[str]) -> None:
        if shas:
            install_with_worker(plan, shas)

    home = carton_home()
    packages = packages_dir(home)
    data = plan.data
    kept, removed = isolate(data["model"], data["stdlib"], fallback=system_site_packages)
    finder = CartonFinder(data, packages, install, plan.background, stdlib_entries=kept)
    # Modules are compiled on first import and their .pyc kept: in the package entries,
    # and in the model folder where it is the cache's own copy (an extracted .carton).
    pycache.install([packages, *([data["model"]] if extracted(data, home) else [])],
                    os.path.join(packages, ".tmp"))
    position = next((i for i, f in enumerate(sys.meta_path) if f is PathFinder),
                    len(sys.meta_path))
    sys.meta_path.insert(position, finder)
    if "coverage" in data["imports"] and (os.environ.get("COVERAGE_PROCESS_START")
                                          or os.environ.get("COVERAGE_PROCESS_CONFIG")):
        # What coverage's a1_coverage.pth does at each start of a pip-installed Python.
        from carton_hook.loading.pthstandins import start_coverage

        start_coverage(data)
    return Carton(data, finder, fallback=removed if system_site_packages else ())
