"""carton_hook/loading/selection.py: the model's process selects a .carton's section
without packaging where the lock is in the common forms; otherwise only with the copy of
packaging the worker would import, and only where none is loaded; it never leaves
packaging in `sys.modules`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.formats import commonforms
from carton_hook.loading.selection import forget, select_here

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

# In a fresh process: the packaging the model's process loads to select, and the one a
# worker started from it imports.
ASK = """
import os, subprocess, sys
from carton_hook.loading.selection import _load_the_workers_copy
from carton_hook.loading.workerclient import _worker_env
assert _load_the_workers_copy("packaging")
import packaging
if hasattr(packaging, "WHO"):  # the test's: its submodules come from its folder too
    import packaging.sub
    assert os.path.dirname(packaging.sub.__file__) == os.path.dirname(packaging.__file__)
worker = subprocess.run([sys.executable, "-c", "import packaging; print(packaging.__file__)"],
                        env=_worker_env()[0], capture_output=True, text=True, check=True)
print(packaging.__file__, worker.stdout.strip(), sep="\\n")
"""


def test_packaging_is_loaded_from_where_the_worker_loads_it(tmp_path: Path) -> None:
    """The worker looks in carton's folder, then its dependencies' (an executable
    carton's, off the model's path), then the interpreter's path."""
    (tmp_path / "deps" / "packaging").mkdir(parents=True)
    for module in ("__init__", "sub"):
        (tmp_path / "deps" / "packaging" / f"{module}.py").write_text("WHO = 'deps'\n")
    env = {k: v for k, v in os.environ.items() if k != "CARTON_RUNTIME_DEPS"}
    for extra in ({}, {"CARTON_RUNTIME_DEPS": str(tmp_path / "deps")}):
        out = subprocess.run([sys.executable, "-c", ASK], env={**env, **extra}, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.split("\n")
        assert out[0] and out[0] == out[1], out
    assert not (Path(__file__).parents[2] / "packaging").exists()  # the checkout has none


def test_it_does_not_select_where_packaging_is_loaded_already(tmp_path: Path) -> None:
    """A host process (`carton_hook.load`) may have imported packaging: it could be any
    version, and it is not the hook's to take out of `sys.modules`."""
    import packaging  # noqa: F401

    plan = tmp_path / "plan"
    assert select_here(str(tmp_path / "m.carton"), str(tmp_path), str(plan), "id") is None
    assert not plan.exists() and "packaging" in sys.modules


def test_forget_takes_a_package_and_its_submodules_only() -> None:
    names = ["zz_probe", "zz_probe.sub", "zz_probe.sub.deep", "zz_probe_other"]
    for name in names:
        sys.modules[name] = type(sys)(name)
    try:
        forget("zz_probe")
        assert [name for name in names if name in sys.modules] == ["zz_probe_other"]
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_a_selection_that_fails_leaves_no_plan_and_no_packaging(tmp_path: Path) -> None:
    """The worker then selects, and reports what failed (as it did before)."""
    code = ("import sys\n"
            "from carton_hook.loading.selection import select_here\n"
            f"plan = select_here({str(tmp_path / 'gone.carton')!r}, {str(tmp_path)!r}, "
            f"{str(tmp_path / 'plan')!r}, 'id')\n"
            "print(plan, sorted(m for m in sys.modules if m.split('.')[0] == 'packaging'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.strip()
    assert out == "None []"
    assert not (tmp_path / "plan").exists()


# Records, in the model's process only, each import of packaging.
WATCH_PACKAGING = """
import builtins, os, sys
_model, _import = os.getpid(), builtins.__import__
def watching(name, *args, **kwargs):
    if name.split(".")[0] == "packaging" and os.getpid() == _model:
        with open({log!r}, "a") as f:
            f.write(name + "\\n")
    return _import(name, *args, **kwargs)
builtins.__import__ = watching
"""


def first_run(tmp_path: Path, env: dict[str, str], carton: Path) -> tuple[list[str], str]:
    """A cold run of `carton`: its traced steps, and the packaging imports of the
    model's process (none, or the selection's)."""
    site, log, trace = tmp_path / "site", tmp_path / "imports.log", tmp_path / "trace.txt"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WATCH_PACKAGING.format(log=str(log)))
    proc = run_hook({**env, "PYTHONPATH": str(site), "CARTON_TRACE": str(trace)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\n", "")
    steps = [line.split(" ", 3)[3] for line in trace.read_text().splitlines()]
    return steps, log.read_text() if log.exists() else ""


def alpha_carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
                 requires_python: str) -> Path:
    """A carton of a model that imports the locked wheel alpha and prints its V ("a")."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "V = 'a'\n"}))
    return build_carton("alpha\n", {"model.py": "import alpha\ndef main():\n"
                                                "    print(alpha.V)\n"},
                        project=f'requires-python = "{requires_python}"')


@pytest.mark.skipif(not commonforms.interpreter() or commonforms.marker_environment() is None,
                    reason="decided without packaging on 64-bit glibc Linux CPython")
def test_a_carton_s_own_lock_is_selected_without_packaging(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    steps, imported = first_run(tmp_path, hermetic_env,
                                alpha_carton(tmp_path, pypi, build_carton, ">=3.10"))
    assert "model: plan written" in steps
    assert not [s for s in steps if s.startswith("model: selecting with packaging")]
    assert imported == ""


def test_what_the_common_forms_do_not_decide_is_selected_with_packaging(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """A requires-python that names a pre-release is packaging's to read."""
    steps, imported = first_run(tmp_path, hermetic_env,
                                alpha_carton(tmp_path, pypi, build_carton, ">=3.8,!=3.9.0a1"))
    assert "model: selecting with packaging (>=3.8,!=3.9.0a1)" in steps
    assert "model: plan written" in steps and "packaging.markers" in imported
