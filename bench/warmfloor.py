"""The floor of a warm start: `python -m warmfloor FORMAT HOME MODEL`, what any launcher
that runs a carton's model from carton's cache must do at least, in one module that
imports only the standard library, against which carton's warm run is measured.

It stands for the cheapest warm path that keeps carton's promises: it finds the plan the
way carton does (the stat of the model file, its key), reads it (marshal), checks that
it was made for this model and interpreter and that the extracted model is still there,
holds the shared locks that keep `cache prune` away (the model, the prefix, each wheel
it imports from: `fcntl.flock`), keeps the model away from the interpreter's
site-packages, answers the locked top-level names from their cache entries with a meta
path finder (whose `.pyc` files Python's own loader reads), points `sys.executable` at
the prefix, and calls the entrypoint (`module:function`). It leaves out all that carton
does for the cases a warm run of these models does not meet (a stale or missing plan, a
wheel not installed yet, namespace packages, preloaded libraries, `.pth` roots,
pkg_resources, `importlib.metadata`, errors said in one line, script and `-m`-style
entrypoints, `--system-site-packages`): it is a measure, not a runtime, and it refuses
what it does not handle (exit 3; 1 where it finds no plan of the model's).

The bench copies it into the runtime venv (bench/runtime.py) and runs it with `-m`, as
carton is run.
"""

from __future__ import annotations

import marshal
import os
import sys
from importlib.machinery import PathFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any


def main() -> int:
    # FORMAT: carton's PLAN_FORMAT, given by the bench (part of the plan's key).
    form, home, model = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3])
    st = os.stat(model)
    identity = "\n".join([model, sys.executable, sys.version, sys.platform,
                          f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"])
    h = 0xCBF29CE484222325
    for byte in f"{form}\n{identity}".encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    plan_file = os.path.join(home, "plans", f"{h:016x}.plan")
    try:
        with open(plan_file, "rb") as f:
            plan = marshal.loads(f.read())
    except FileNotFoundError:
        plan = {}
    if plan.get("identity") != identity or not os.path.isdir(plan["model"]):
        # carton's plan key or identity changed (planning/planfile.py, loading/plan.py)
        # and this module did not follow, or carton's warm run did not come first.
        sys.exit(f"warmfloor: no plan of {model} for this interpreter at {plan_file}")
    entries = os.path.join(home, "pythonpackages", f"py{sys.version_info[0]}{sys.version_info[1]}")
    prefix = os.path.join(home, "envs", f"{h:016x}")
    _hold(plan["model"])
    _hold(prefix)
    stdlib = plan["stdlib"]
    sys.path[:] = [plan["model"], *(p for p in sys.path if p and any(
        p == s or p.startswith(s + os.sep) for s in stdlib) and "site-packages" not in p)]
    sys.meta_path.insert(0, _Finder(plan, entries))
    sys.executable = os.path.join(prefix, "bin", "python")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                          os.environ.get("PATH", "")])
    module, _, function = plan["entrypoint"].partition(":")
    if not function or "." in function:
        return 3
    sys.argv = sys.argv[3:]
    result = getattr(__import__(module, fromlist=["_"]), function)()
    return result if isinstance(result, int) else 0


_held: dict[str, int] = {}


def _hold(folder: str) -> None:
    """A shared lock on `folder`'s completion marker, kept until exit, as carton's."""
    if folder not in _held:
        import fcntl

        fd = os.open(os.path.join(folder, ".carton-complete"), os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _held[folder] = fd


class _Finder:
    """The locked top-level modules, from their installed cache entries."""

    def __init__(self, plan: dict[str, Any], entries: str) -> None:
        self.imports = plan["imports"]
        self.entries = entries

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        sha = self.imports.get(fullname)
        if sha is None or "." in fullname:
            return None
        entry = os.path.join(self.entries, sha)
        _hold(entry)
        return PathFinder.find_spec(fullname, [entry])


if __name__ == "__main__":
    sys.exit(main())
