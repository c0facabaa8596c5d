"""A .carton's section selected in the model's process on a first run, while the worker
imports what downloading needs: the two then take two cores, where the worker did both,
one after the other, on one (docs/performance.md).

Selection is made without `packaging` where the lock's markers, wheel filenames and
requires-python are in the common forms that carton decides itself, exactly as packaging
would (formats/commonforms.py): carton's own locks of PyPI's wheels on Linux. Otherwise
packaging is loaded here from where the worker loads it (carton's own folder and its
dependencies' first, as workerclient puts them on the worker's path: an executable carton
keeps them off the model's), only where the model's process has not imported one
already, and every module of it is taken out of `sys.modules` again before the model's
code runs: the model's own `import packaging` then finds the version the model locks,
never this one. Where selection fails in any way, the worker selects instead, as it does
for a model folder, and reports what failed.
"""

from __future__ import annotations

import os
import sys

from carton_hook.loading.workerclient import PACKAGE_PARENT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from carton_hook.planning.models import Model, ModelFiles
    from carton_hook.planning.planfile import PlanData


def select_here(model: str, home: str, plan_file: str, identity: str,
                held: bool = False) -> PlanData | None:
    """Select the section of the extracted .carton `model` and write its plan to
    `plan_file`: the plan written, or None. `held`: this process holds the extracted
    folder (cache/inuse.py), which selection then reads instead of the archive."""
    from pathlib import Path

    from carton_hook.formats.commonforms import Undecided
    from carton_hook.planning.models import ModelFiles, open_model
    from carton_hook.planning.planfile import write_plan_file
    from carton_hook.planning.select import make_plan
    from carton_hook.trace import mark

    try:
        opened = open_model(Path(model), Path(home), extract=False)
        with ModelFiles(opened, published=held) as files:
            try:
                plan: PlanData | None = make_plan(opened, files, quick=True)
            except Undecided as undecided:
                mark(f"model: selecting with packaging ({undecided})")
                plan = _with_packaging(opened, files)
        if plan is None:
            return None
        plan["identity"] = identity
        write_plan_file(plan_file, plan)
    except Exception:  # noqa: BLE001 - whatever it was, the worker selects and reports it
        return None
    mark("model: plan written")
    return plan


def _with_packaging(model: Model, files: ModelFiles) -> PlanData | None:
    """The plan of `model`, selected with the worker's copy of packaging; None where this
    process has one of its own already (a host process's, of any version: not this
    one's to use or drop) or none is found."""
    if "packaging" in sys.modules:
        return None
    from carton_hook.planning.select import make_plan

    try:
        if not _load_the_workers_copy("packaging"):
            return None
        return make_plan(model, files)
    finally:
        forget("packaging")


def _load_the_workers_copy(name: str) -> bool:
    """Import the top-level package `name` from where the worker would: carton's folder,
    then its dependencies' (`CARTON_RUNTIME_DEPS`), then this interpreter's path. Its
    submodules then come from the same folder. Whether it was found."""
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    deps = os.environ.get("CARTON_RUNTIME_DEPS", "").split(os.pathsep)
    spec = PathFinder.find_spec(name, [PACKAGE_PARENT, *filter(None, deps), *sys.path])
    if spec is None or spec.loader is None:
        return False
    module = module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # on failure, `forget` takes it out
    return True


def forget(name: str) -> None:
    """Take the package `name` and its submodules out of `sys.modules`."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
