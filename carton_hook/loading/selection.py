"""A .carton's section selected in the model's process on a first run, while the worker
imports what installing needs (urllib3, installer): the two then take two cores, where
the worker did both, one after the other, on one (docs/performance.md).

Selection needs `packaging`. It is imported here only if it is the copy the worker
would import, only where the model's process has not imported it already, and every
module of it is taken out of `sys.modules` again before the model's
code runs: the model's own `import packaging` then finds the version the model locks,
never this one. Where packaging is elsewhere or not importable (an executable carton
keeps carton's dependencies off the model's path), or selection fails in any way, the
worker selects instead, as it does for a model folder, and reports what failed.
"""

from __future__ import annotations

import os
import sys

from carton_hook.loading.workerclient import PACKAGE_PARENT


def select_here(model: str, home: str, plan_file: str, identity: str) -> bool:
    """Select the section of the extracted .carton `model` and write its plan to
    `plan_file`; whether it was written."""
    if not _importable_from_here("packaging"):
        return False
    from pathlib import Path

    from carton_hook.errors import CartonError
    from carton_hook.planning.models import ModelFiles, open_model
    from carton_hook.planning.planfile import write_plan_file
    from carton_hook.planning.select import make_plan
    from carton_hook.trace import mark

    try:
        opened = open_model(Path(model), Path(home), extract=False)
        with ModelFiles(opened) as files:
            plan = make_plan(opened, files)
        plan["identity"] = identity
        write_plan_file(plan_file, plan)
    except (CartonError, OSError, ImportError, ValueError, KeyError):
        return False
    finally:
        forget("packaging")
    mark("model: plan written")
    return True


def _importable_from_here(name: str) -> bool:
    """Whether `import name` here would load the copy of the top-level package `name`
    that the worker imports (workerclient: carton's folder and its dependencies' first,
    then this interpreter's path), and nothing has loaded it yet."""
    if name in sys.modules:
        return False
    from importlib.machinery import PathFinder
    from importlib.util import find_spec

    deps = os.environ.get("CARTON_RUNTIME_DEPS", "").split(os.pathsep)
    try:
        mine = find_spec(name)
        theirs = PathFinder.find_spec(name, [PACKAGE_PARENT, *filter(None, deps), *sys.path])
    except (ImportError, ValueError):
        return False
    return (mine is not None and theirs is not None and mine.origin is not None
            and mine.origin == theirs.origin)


def forget(name: str) -> None:
    """Take the package `name` and its submodules out of `sys.modules`."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
