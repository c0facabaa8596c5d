"""Subprocesses of a loaded carton: `sys.executable` and its flags, `python` and console
scripts on PATH, multiprocessing's three start methods, `-S`, and a broken boot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

CHILD = ("import alpha, sys; "
         "print(alpha.VALUE, sys.executable.endswith('/bin/python'))")


@pytest.fixture
def alpha_wheel(tmp_path: Path, pypi: PackageIndex) -> Path:
    ep = "[console_scripts]\nalpha-hello = alpha:hello\n"
    return pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n"
                             "def hello():\n    print('hello from', VALUE)\n    return 7\n",
        "alpha-1.0.dist-info/entry_points.txt": ep}))


def test_children_started_with_sys_executable_see_the_locked_packages(
        alpha_wheel: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": f"""
import subprocess, sys
def main():
    for flags in ([], ['-E'], ['-s'], ['-I']):
        out = subprocess.run([sys.executable, *flags, '-c', {CHILD!r}],
                             capture_output=True, text=True)
        print(flags, out.returncode, out.stdout.strip(), out.stderr.strip()[-200:])
    out = subprocess.run(['python', '-c', {CHILD!r}], capture_output=True, text=True)
    print('PATH', out.returncode, out.stdout.strip())
    out = subprocess.run([sys.executable, '-m', 'alpha.__init__'], capture_output=True)
    print('-m', out.returncode)
"""})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[] 0 alpha 1.0 True ", "['-E'] 0 alpha 1.0 True ", "['-s'] 0 alpha 1.0 True ",
        "['-I'] 0 alpha 1.0 True ", "PATH 0 alpha 1.0 True", "-m 0"]


def test_children_are_isolated_too_and_minus_s_fails_cleanly(
        alpha_wheel: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": """
import subprocess, sys
def main():
    for flags, name in (([], 'pytest'), (['-S'], 'alpha'), (['-S'], 'pytest')):
        out = subprocess.run([sys.executable, *flags, '-c', f'import {name}'],
                             capture_output=True, text=True)
        print(flags, name, out.returncode, out.stderr.strip().splitlines()[-1])
"""})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[] pytest 1 ModuleNotFoundError: No module named 'pytest'",
        "['-S'] alpha 1 ModuleNotFoundError: No module named 'alpha'",
        "['-S'] pytest 1 ModuleNotFoundError: No module named 'pytest'"]


def test_console_scripts_of_locked_packages_are_on_path(
        alpha_wheel: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": """
import subprocess
def main():
    out = subprocess.run(['alpha-hello'], capture_output=True, text=True)
    print(out.returncode, out.stdout.strip(), out.stderr.strip()[-300:])
"""})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "7 hello from alpha 1.0"


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_multiprocessing_with_imports_at_the_top_of_a_main_script(
        method: str, alpha_wheel: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"main.py": f"""
import multiprocessing
import alpha

def work(x):
    return x * x, alpha.VALUE

if __name__ == '__main__':
    with multiprocessing.get_context({method!r}).Pool(2) as pool:
        print(pool.map(work, [2, 3]))
"""}, entrypoint="main.py")
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[(4, 'alpha 1.0'), (9, 'alpha 1.0')]"


def test_a_removed_plan_is_made_again_and_a_lost_model_fails_fast(
        alpha_wheel: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": f"""
import pathlib, subprocess, sys
def child():
    out = subprocess.run([sys.executable, '-c', 'import alpha; print(alpha.VALUE)'],
                         capture_output=True, text=True, timeout=60)
    print(out.returncode, out.stdout.strip() or '-', 'plan' in out.stderr)
def main():
    plans = list(pathlib.Path({hermetic_env['CARTON_HOME']!r}, 'plans').glob('*.plan'))
    assert plans
    for plan in plans:
        plan.unlink()
    child()  # the cache was cleaned while the model runs: the child makes the plan again
    for plan in pathlib.Path({hermetic_env['CARTON_HOME']!r}, 'plans').glob('*.plan'):
        plan.unlink()
    pathlib.Path(sys.argv[0]).unlink()
    child()  # and the carton is gone too: a clear message, at once
"""})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["0 alpha 1.0 False", "1 - True"]


def test_prefix_is_made_once_and_reused(alpha_wheel: Path, build_carton: Callable[..., Path],
                                        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": "import sys\ndef main():\n"
                                                  "    print(sys.executable)\n"})
    first = run_hook(hermetic_env, carton)
    second = run_hook(hermetic_env, carton)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    prefix = Path(first.stdout.strip()).parent.parent
    assert "include-system-site-packages = false\n" in (prefix / "pyvenv.cfg").read_text()
    envs = [p for p in (Path(hermetic_env["CARTON_HOME"]) / "envs").iterdir()
            if not p.name.startswith(".")]
    assert envs == [prefix]
    shutil.rmtree(prefix)  # a removed prefix is made again
    assert run_hook(hermetic_env, carton).stdout == first.stdout


def test_a_cache_path_with_spaces_and_non_ascii_runs_everything(
        alpha_wheel: Path, build_carton: Callable[..., Path], tmp_path: Path,
        hermetic_env: dict[str, str]) -> None:
    """THREATS C5: the cache, the prefix, its console scripts and its children all live
    under CARTON_HOME, here a path with spaces and non-ASCII characters."""
    carton = build_carton("alpha\n", {"model.py": """
import subprocess, sys
def main():
    script = subprocess.run(['alpha-hello'], capture_output=True, text=True)
    child = subprocess.run([sys.executable, '-c', 'import alpha; print(alpha.VALUE)'],
                           capture_output=True, text=True)
    print(script.returncode, script.stdout.strip(), '|', child.stdout.strip(),
          script.stderr[-200:], child.stderr[-200:])
"""})
    env = {**hermetic_env, "CARTON_HOME": str(tmp_path / "a cache dir ünïcødé 模型")}
    for run in ("cold", "warm"):
        proc = run_hook(env, carton)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "7 hello from alpha 1.0 | alpha 1.0", (run, proc.stdout)
