"""loading/boot.py: `boot`, what a subprocess of a loaded carton runs at start-up, called
here directly in a new interpreter: the plan activated with the parent's worker Python
and system site-packages switch, and each failure one line and exit status 1. (A removed
plan made again, and one whose carton is gone, through a real child: test_prefix.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from carton_backend.config import load_config
from carton_backend.packing.pack import write_carton
from carton_hook.formats.lockfile import LOCK_PATH, load_lock
from carton_hook.planning.planfile import model_of, read_plan

from ..conftest import run_hook
from ..lockfactory import HERE, lock_section, model_folder

WORKER = "/opt/the-parents/bin/python"
BOOT = """
import json, sys
from carton_hook.loading.boot import boot
boot({plan!r}, {worker!r}, {model!r})
{again}
import carton_hook.loading
from carton_hook.loading.finder import CartonFinder
try:
    import pytest
    site = True
except ImportError:
    site = False
print(json.dumps([carton_hook.loading.WORKER_PYTHON,
                  any(isinstance(f, CartonFinder) for f in sys.meta_path), sys.path[0], site]))
"""


@dataclass
class Loaded:
    """A carton run once: the plan its children boot, and the MODEL it was made for."""

    plan: str
    model: str
    model_dir: str
    env: dict[str, str]

    def boot(self, model: str | None, *, worker: str = WORKER, again: bool = False,
             **env: str) -> subprocess.CompletedProcess[str]:
        """`boot(plan, worker, model)` in a new interpreter (twice with `again`)."""
        again_code = f"boot({self.plan!r}, {worker!r}, None)" if again else ""
        code = BOOT.format(plan=self.plan, worker=worker, model=model, again=again_code)
        return subprocess.run([sys.executable, "-c", code], env={**self.env, **env},
                              capture_output=True, text=True, check=False)


@pytest.fixture
def loaded(tmp_path: Path, hermetic_env: dict[str, str]) -> Loaded:
    folder = model_folder(tmp_path, lock_section("here", HERE))
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "demo-model"\nversion = "0.1.0"\n'
        '[tool.carton]\nentrypoint = "model:main"\nexecutable = false\n')
    (folder / "requirements.txt").write_text("")
    carton = write_carton(load_config(folder), load_lock(folder / LOCK_PATH), tmp_path / "dist")
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    (plan,) = (Path(hermetic_env["CARTON_HOME"]) / "plans").glob("*.plan")
    data = read_plan(str(plan))
    assert data is not None
    return Loaded(str(plan), model_of(data), str(data["model"]), hermetic_env)


def test_boot_activates_the_plan_with_the_worker_python_it_is_given(loaded: Loaded) -> None:
    """The child's own interpreter is the prefix's, without carton's dependencies: the
    worker runs with the parent's."""
    proc = loaded.boot(loaded.model)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [WORKER, True, loaded.model_dir, False]


def test_the_system_site_packages_switch_lets_them_through_in_the_child(
        loaded: Loaded) -> None:
    proc = loaded.boot(loaded.model, CARTON_SYSTEM_SITE_PACKAGES="1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [WORKER, True, loaded.model_dir, True]


def failed_in_one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    assert proc.stderr.startswith("carton: error: ") and proc.stderr.count("\n") == 1
    return proc.stderr[len("carton: error: "):-1]


def test_a_removed_plan_whose_model_changed_since_is_one_line(loaded: Loaded) -> None:
    """The carton was rebuilt while the model ran: the worker (a real one) makes its plan,
    which is another, and the child refuses to run on it."""
    os.remove(loaded.plan)
    stat = os.stat(loaded.model)
    os.utime(loaded.model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    proc = loaded.boot(loaded.model, worker=sys.executable)
    assert len(list(Path(loaded.plan).parent.glob("*.plan"))) == 1  # the other one
    assert failed_in_one_line(proc) == (
        f"{sys.executable}: the plan {loaded.plan} of this carton's environment is gone and "
        f"{loaded.model} no longer gives the same one; run the carton again")


@pytest.mark.parametrize("model", [None, ""], ids=["none", "empty"])
def test_a_removed_plan_without_its_model_named_is_one_line(loaded: Loaded,
                                                            model: str | None) -> None:
    os.remove(loaded.plan)
    assert failed_in_one_line(loaded.boot(model)) == (
        f"{sys.executable}: the plan {loaded.plan} of this carton's environment is gone and "
        "its model no longer gives the same one; run the carton again")


def test_a_second_boot_in_one_process_is_one_line(loaded: Loaded) -> None:
    assert failed_in_one_line(loaded.boot(loaded.model, again=True)) == (
        "a carton is already loaded in this process")
