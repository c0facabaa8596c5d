"""Interpreter mode (`CARTON_INTERPRETER=1 ./model.carton ...`): the carton behaves like
`python` with its locked packages, as engines that start "a Python" for their workers
need; and a cache where the home folder cannot be written."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": "def main():\n    print('entrypoint')\n",
         "tool.py": "import sys, alpha\nif __name__ == '__main__':\n"
                    "    print('tool', alpha.VALUE, sys.argv[1:])\n"}


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "VALUE = 'a1'\n"}))
    return build_carton("alpha\n", MODEL)


@pytest.fixture
def engine_path(tmp_path: Path) -> Path:
    """What an engine puts on PYTHONPATH (pyspark's zip, say), with a decoy alpha."""
    folder = tmp_path / "engine"
    folder.mkdir()
    (folder / "enginelib.py").write_text("NAME = 'engine'\n")
    (folder / "alpha.py").write_text("VALUE = 'decoy'\n")
    return folder


def python(carton: Path, bare: Path, env: dict[str, str], *args: str,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bare), str(carton), *args], input=stdin, capture_output=True,
                          text=True, check=False, env={**env, "CARTON_INTERPRETER": "1"})


def test_c_m_script_and_stdin_run_with_the_locked_packages(
        tmp_path: Path, carton: Path, bare_python: Path, engine_path: Path,
        hermetic_env: dict[str, str]) -> None:
    env = {**hermetic_env, "PYTHONPATH": str(engine_path)}
    proc = python(carton, bare_python, env, "-c",
                  "import sys, alpha, enginelib; print(alpha.VALUE, enginelib.NAME, sys.argv)",
                  "x", "y")
    assert proc.stdout == "a1 engine ['-c', 'x', 'y']\n", proc.stderr
    proc = python(carton, bare_python, env, "-u", "-m", "tool", "z")
    assert proc.stdout == "tool a1 ['z']\n", proc.stderr
    script = tmp_path / "job.py"
    script.write_text("import sys, tool, alpha\nprint('script', alpha.VALUE, sys.argv)\n")
    proc = python(carton, bare_python, env, str(script), "1")
    assert proc.stdout == f"script a1 ['{script}', '1']\n", proc.stderr
    proc = python(carton, bare_python, env, stdin="import alpha\nprint('stdin', alpha.VALUE)\n")
    assert proc.stdout == "stdin a1\n", proc.stderr
    proc = python(carton, bare_python, env, "-c", "raise SystemExit(3)")
    assert proc.returncode == 3
    proc = python(carton, bare_python, env, "-c", "import urllib3")
    assert proc.returncode == 1 and "No module named 'urllib3'" in proc.stderr  # isolated



def test_m_runs_a_locked_package_never_imported_before(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        bare_python: Path, hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "lint", "1.0", {
        "lint/__init__.py": "",
        "lint/__main__.py": "import sys\nprint('lint', sys.argv[1:])\n"}))
    pypi.add(make_wheel(tmp_path / "w", "single", "1.0", {
        "single.py": "import sys\n"
                     "if __name__ == '__main__':\n    print('single', sys.argv[1:])\n"}))
    carton = build_carton("lint\nsingle\n", MODEL)
    for run in ("cold", "warm"):
        proc = python(carton, bare_python, hermetic_env, "-m", "lint", "--version")
        assert (proc.returncode, proc.stdout) == (0, "lint ['--version']\n"), (run, proc.stderr)
        proc = python(carton, bare_python, hermetic_env, "-m", "single", "a")
        assert (proc.returncode, proc.stdout) == (0, "single ['a']\n"), (run, proc.stderr)


def test_its_children_keep_the_packages_and_the_engine_path(
        carton: Path, bare_python: Path, engine_path: Path,
        hermetic_env: dict[str, str]) -> None:
    env = {**hermetic_env, "PYTHONPATH": str(engine_path)}
    child = "import alpha, enginelib, sys; print(alpha.VALUE, enginelib.NAME, sys.executable)"
    proc = python(carton, bare_python, env, "-c",
                  f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], "
                  "check=True)")
    assert proc.returncode == 0, proc.stderr
    value, name, executable = proc.stdout.split()
    assert (value, name) == ("a1", "engine")
    assert executable.startswith(hermetic_env["CARTON_HOME"])  # the carton's prefix


def test_without_the_variable_the_entrypoint_runs(carton: Path, bare_python: Path,
                                                   hermetic_env: dict[str, str]) -> None:
    proc = subprocess.run([str(bare_python), str(carton), "-c", "print(1)"],
                          env=hermetic_env, capture_output=True, text=True, check=False)
    assert proc.stdout == "entrypoint\n", proc.stderr


def test_a_home_that_cannot_be_written_falls_back_with_a_warning(
        tmp_path: Path, carton: Path, bare_python: Path, hermetic_env: dict[str, str]) -> None:
    env = {k: v for k, v in hermetic_env.items() if k != "CARTON_HOME"}
    env["HOME"] = "/proc/self"  # not writable, even for root
    work = tmp_path / "job"
    work.mkdir()
    proc = subprocess.run([str(bare_python), str(carton)], env=env, cwd=work,
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, "entrypoint\n"), proc.stderr
    assert "/proc/self/.carton cannot be created" in proc.stderr
    assert f"using {work / '.carton'}" in proc.stderr
    assert proc.stderr.count("warning") == 1  # children inherit the choice silently
    assert (work / ".carton" / "runtime").is_dir() and (work / ".carton" / "models").is_dir()
