"""carton_hook/loading/selection.py: the model's process selects a .carton's section only
with the copy of packaging the worker would import, and only where none is loaded; it
never leaves packaging in `sys.modules`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from carton_hook.loading.selection import forget, select_here

ASK = ("from carton_hook.loading.selection import _importable_from_here\n"
       "print(_importable_from_here('packaging'))\n")


def _ask(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", ASK], env=env, capture_output=True,
                          text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__))))).stdout.strip()


def test_it_selects_only_with_the_copy_of_packaging_the_worker_would_import(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARTON_RUNTIME_DEPS"}
    assert _ask(env) == "True"
    # The worker looks in carton's dependencies' folder first (an executable carton's):
    # another packaging there is not the one this process would import.
    (tmp_path / "packaging").mkdir()
    (tmp_path / "packaging" / "__init__.py").write_text("")
    assert _ask({**env, "CARTON_RUNTIME_DEPS": str(tmp_path)}) == "False"


def test_it_does_not_select_where_packaging_is_loaded_already(tmp_path: Path) -> None:
    """A host process (`carton_hook.load`) may have imported packaging: it could be any
    version, and it is not the hook's to take out of `sys.modules`."""
    import packaging  # noqa: F401

    plan = tmp_path / "plan"
    assert select_here(str(tmp_path / "m.carton"), str(tmp_path), str(plan), "id") is False
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
