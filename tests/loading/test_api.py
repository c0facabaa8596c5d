"""loading/api.py: `load` (what it changes in the process: the finder, `sys.executable`,
`PATH`, `CARTON_SYSTEM_SITE_PACKAGES`, multiprocessing's executable), `Carton`,
`activate`, `plan_for` and `extracted`. What loads for real runs in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carton_backend.config import load_config
from carton_backend.packing.pack import write_carton
from carton_hook.errors import CartonError, WorkerError
from carton_hook.formats.lockfile import LOCK_PATH, load_lock
from carton_hook.loading.api import Carton, activate, extracted, plan_for
from carton_hook.loading.finder import CartonFinder
from carton_hook.loading.plan import Plan

from ..lockfactory import ELSEWHERE, HERE, lock_section, model_folder

MODEL = "def main():\n    return 5\n"


def pack(tmp_path: Path, marker: str = HERE) -> Path:
    """A `.carton` whose one lock section (for `marker`) locks nothing: loading it needs
    the worker but no index."""
    folder = model_folder(tmp_path, lock_section("here", marker))
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "demo-model"\nversion = "0.1.0"\n'
        '[tool.carton]\nentrypoint = "model:main"\nexecutable = false\n')
    (folder / "requirements.txt").write_text("")
    (folder / "model.py").write_text(MODEL)
    return write_carton(load_config(folder), load_lock(folder / LOCK_PATH), tmp_path / "dist")


@pytest.fixture
def carton(tmp_path: Path) -> Path:
    return pack(tmp_path)


def python(env: dict[str, str], code: str, **extra: str) -> Any:
    """Run `code` in a new interpreter and return what it printed last, as JSON."""
    proc = subprocess.run([sys.executable, "-c", code], env={**env, **extra},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_load_describes_the_model_and_runs_it_from_the_cache(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    home = Path(hermetic_env["CARTON_HOME"])
    got = python(hermetic_env, f"""
import json, sys, carton_hook
from importlib.machinery import PathFinder
c = carton_hook.load({str(carton)!r})
print(json.dumps([c.name, c.version, c.section, str(c.model_dir), str(c.prefix),
                  c.plan["entrypoint"], sys.path[0],
                  sys.meta_path.index(c.finder) < sys.meta_path.index(PathFinder),
                  c.entrypoint()()]))
""")
    name, version, section, model_dir, prefix, entrypoint, first, before_path, result = got
    assert (name, version, section, entrypoint, result) == (
        "demo-model", "0.1.0", "here", "model:main", 5)
    assert Path(model_dir).parent == home / "models"
    assert (Path(model_dir) / "model.py").read_text() == MODEL
    assert first == model_dir  # isolation: the model folder first on sys.path
    assert before_path  # the finder answers before the path finder
    assert Path(prefix).parent == home / "envs" and (Path(prefix) / "pyvenv.cfg").is_file()


def test_children_are_pointed_at_the_prefix(carton: Path, hermetic_env: dict[str, str]) -> None:
    """`sys.executable`, `python` from PATH and multiprocessing (imported before `load`)
    all start the prefix's interpreter."""
    got = python(hermetic_env, f"""
import json, os, sys, multiprocessing.spawn, carton_hook
before = os.environ["PATH"]
c = carton_hook.load({str(carton)!r})
print(json.dumps([str(c.prefix), sys.executable, os.environ["PATH"], before,
                  os.fsdecode(multiprocessing.spawn.get_executable()),
                  os.environ.get("CARTON_SYSTEM_SITE_PACKAGES")]))
""")
    prefix, executable, path, before, spawn, system_site = got
    assert executable == os.path.join(prefix, "bin", "python")
    assert path == os.pathsep.join([os.path.join(prefix, "bin"), before])
    assert spawn == executable
    assert system_site is None


SITE_PROBE = """
import json, os, sys, carton_hook
c = carton_hook.load({carton!r}{argument})
try:
    import pytest
    seen = True
except ImportError:
    seen = False
print(json.dumps([seen, sys.path[0] == str(c.model_dir),
                  os.environ.get("CARTON_SYSTEM_SITE_PACKAGES")]))
"""


@pytest.mark.parametrize(("argument", "variable", "expected"), [
    ("", None, [False, True, None]),
    (", system_site_packages=True", None, [True, True, "1"]),
    ("", "1", [True, True, "1"]),
    ("", "no", [False, True, None]),
    (", system_site_packages=False", "1", [False, True, None]),
], ids=["default", "argument", "variable", "variable-off", "argument-wins"])
def test_system_site_packages_lets_the_interpreters_packages_through_after_the_model(
        carton: Path, hermetic_env: dict[str, str], argument: str, variable: str | None,
        expected: list[object]) -> None:
    """[import pytest works, the model folder still first, the variable children get]."""
    env = dict(hermetic_env)
    if variable is not None:
        env["CARTON_SYSTEM_SITE_PACKAGES"] = variable
    got = python(env, SITE_PROBE.format(carton=str(carton), argument=argument))
    assert got[:len(expected)] == expected


CHILD_PROBE = """
import json, subprocess, sys, carton_hook
c = carton_hook.load({carton!r}, system_site_packages={argument})
def imports(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False
child = subprocess.run([sys.executable, "-c", "import " + {name!r}], capture_output=True)
print(json.dumps([imports({name!r}), child.returncode == 0]))
"""


def test_children_of_a_carton_loaded_with_system_site_packages_see_them_too(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    got = python(hermetic_env, CHILD_PROBE.format(carton=str(carton), argument=True,
                                                  name="pytest"))
    assert got == [True, True]


def test_children_of_a_carton_loaded_without_system_site_packages_stay_isolated(
        carton: Path, hermetic_env: dict[str, str], tmp_path: Path) -> None:
    extra = tmp_path / "on-pythonpath"
    extra.mkdir()
    (extra / "outsider.py").write_text("")
    got = python(hermetic_env, CHILD_PROBE.format(carton=str(carton), argument=False,
                                                  name="outsider"),
                 CARTON_SYSTEM_SITE_PACKAGES="1", PYTHONPATH=str(extra))
    assert got == [False, False]


def test_loading_the_loaded_carton_again_gives_it_and_changes_nothing(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    got = python(hermetic_env, f"""
import json, sys, carton_hook
first = carton_hook.load({str(carton)!r})
state = (sys.executable, list(sys.path), list(sys.meta_path), dict(os.environ))
again = carton_hook.load({str(carton)!r})
print(json.dumps([again.finder is first.finder, again.plan is first.plan,
                  str(again.prefix) == str(first.prefix), again.entrypoint()(),
                  state == (sys.executable, list(sys.path), list(sys.meta_path),
                            dict(os.environ))]))
""".replace("import json, sys", "import json, os, sys"))
    assert got == [True, True, True, 5, True]


def test_loading_another_carton_in_the_process_is_refused_and_changes_nothing(
        carton: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    other = pack(tmp_path / "other")
    got = python(hermetic_env, f"""
import json, sys, carton_hook
from carton_hook.errors import CartonError
c = carton_hook.load({str(carton)!r})
state = (sys.executable, list(sys.path), list(sys.meta_path))
try:
    carton_hook.load({str(other)!r})
    error = None
except CartonError as exc:
    error = str(exc)
print(json.dumps([error, state == (sys.executable, list(sys.path), list(sys.meta_path))]))
""")
    assert got == [f"{other}: another carton ({carton}) is already loaded in this process; "
                   "run this one in a process of its own", True]


def test_a_model_folder_cleared_after_its_plan_was_read_is_extracted_again(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    """`cache clear` between reading the plan and holding the extracted model: the plan
    is made again and the model extracted again, before anything runs from it. (A first
    run holds the model it extracts from then on: tests/loading/test_plan.py.)"""
    python(hermetic_env, f"""
import json, carton_hook
print(json.dumps(carton_hook.load({str(carton)!r}).entrypoint()()))
""")  # the plan is made, and kept
    got = python(hermetic_env, f"""
import json, shutil, carton_hook
from carton_hook.loading import api
read = api.plan_for
def read_then_clear(path, home):
    plan = read(path, home)
    shutil.rmtree(plan.data["model"])
    return plan
api.plan_for = read_then_clear
c = carton_hook.load({str(carton)!r})
print(json.dumps([str(c.model_dir), c.entrypoint()()]))
""")
    model_dir, result = got
    assert result == 5
    assert (Path(model_dir) / ".carton-complete").is_file()


def test_a_prefix_cleared_before_it_was_held_is_made_again(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    """`cache clear` between the prefix's making and this process holding it (a first
    run beside a clear loop: the model's child then found no `sys.executable`): it is
    made again, then held, and the model's children start from it."""
    got = python(hermetic_env, f"""
import json, os, subprocess, sys
from pathlib import Path
import carton_hook
from carton_hook.cache import admin
from carton_hook.loading import prefix
make = prefix.ensure_prefix
made = []
def make_then_clear(*args):
    root = make(*args)
    made.append(str(root))
    if len(made) == 1:
        admin.clear(Path(os.environ["CARTON_HOME"]))
    return root
prefix.ensure_prefix = make_then_clear
c = carton_hook.load({str(carton)!r})
child = subprocess.run([sys.executable, "-c", "print(7)"], capture_output=True, text=True)
print(json.dumps([len(made), os.path.isdir(made[0]), child.stdout.strip(), c.entrypoint()()]))
""")
    assert got == [2, True, "7", 5]


# ---------------------------------------------------------------- in this process


def plan_data(model: Path, entrypoint: str = "model:main") -> dict[str, Any]:
    return {"format": 11, "stdlib": [], "model": str(model), "name": "demo-model",
            "version": "0.1.0", "entrypoint": entrypoint, "requirements": "requirements.txt",
            "archive": None, "section": "cp311-here", "wheels": {}, "imports": {},
            "namespaces": {}, "shared": {}, "listed": {}, "distutils_shim": False}


@pytest.mark.parametrize(("model", "expected"), [
    ("{home}/models/0123abcd", True),
    ("{home}/models/packed-0123", True),
    ("{home}/models-elsewhere/0123abcd", False),
    ("{home}/modelsx", False),
    ("/srv/models/0123abcd", False),
])
def test_extracted_is_true_for_model_folders_the_cache_holds(
        tmp_path: Path, model: str, expected: bool) -> None:
    home = str(tmp_path / "home")
    plan = plan_data(Path(model.format(home=home)))
    assert extracted(plan, home) is expected  # type: ignore[arg-type]


@contextlib.contextmanager
def import_state_kept() -> Iterator[None]:
    """sys.modules (`__main__` too), sys.path, sys.meta_path and sys.path_hooks put back
    as they were as soon as the block ends, before anything else imports."""
    modules, path = dict(sys.modules), list(sys.path)
    meta_path, hooks = list(sys.meta_path), list(sys.path_hooks)
    try:
        yield
    finally:
        sys.path[:], sys.meta_path[:], sys.path_hooks[:] = path, meta_path, hooks
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]
        sys.modules.update(modules)


def test_a_carton_reads_its_plan(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text("result = 'ran'\n")
    plan = plan_data(tmp_path, entrypoint="run.py")
    finder = CartonFinder(plan, str(tmp_path / "cache"), lambda shas: None)  # type: ignore[arg-type]
    carton = Carton(plan, finder)  # type: ignore[arg-type]
    assert (carton.name, carton.version, carton.section) == ("demo-model", "0.1.0",
                                                             "cp311-here")
    assert carton.model_dir == tmp_path and carton.finder is finder
    assert carton.prefix is None  # activated only: no prefix
    assert Carton(plan, finder, "/envs/x").prefix == Path("/envs/x")  # type: ignore[arg-type]
    with import_state_kept():
        carton.entrypoint()()
        result = sys.modules["__main__"].result
    assert result == "ran"


def test_activate_refuses_a_second_carton_before_changing_anything(tmp_path: Path) -> None:
    plan = plan_data(tmp_path)
    error: CartonError | None = None
    with import_state_kept():
        sys.meta_path.insert(0, CartonFinder(plan, str(tmp_path), lambda shas: None))  # type: ignore[arg-type]
        before = (list(sys.path), list(sys.meta_path), list(sys.path_hooks), set(sys.modules))
        try:
            activate(Plan(plan, str(tmp_path / "x.plan")), system_site_packages=False)  # type: ignore[arg-type]
        except CartonError as exc:
            error = exc
        after = (list(sys.path), list(sys.meta_path), list(sys.path_hooks), set(sys.modules))
    assert str(error) == "a carton is already loaded in this process"
    assert after == before


def test_plan_for_passes_on_a_missing_section_it_may_not_pack_for(
        tmp_path: Path, use_hermetic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With packing at load time off, a lock without a section for this interpreter is
    the worker's error, as it said it; nothing is packed."""
    monkeypatch.setenv("CARTON_NO_PACK", "1")
    carton = pack(tmp_path, marker=ELSEWHERE)
    home = os.environ["CARTON_HOME"]
    with pytest.raises(WorkerError) as caught:
        plan_for(str(carton), home)
    assert caught.value.kind != "no-environment"
    assert "packing at load time is off (CARTON_NO_PACK is set)" in str(caught.value)
    assert not list(Path(home).glob("models/packed-*"))
