"""`python model.carton`: an executable carton runs on a Python with nothing installed,
carrying its runtime (verified against MANIFEST) in under 1.5 MB."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": """
import subprocess, sys
import alpha
def main():
    print(alpha.VALUE, sys.argv[1:])
    subprocess.run([sys.executable, "-c", "import alpha; print('child', alpha.VALUE)"],
                   check=True)
    for name in ("urllib3", "packaging", "filelock", "installer"):
        try:
            __import__(name)
            print("leaked", name)
        except ImportError:
            pass
"""}


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "VALUE = 'a1'\n"}))
    return build_carton("alpha\n", MODEL)


def test_a_bare_python_runs_the_carton(tmp_path: Path, carton: Path, bare_python: Path,
                                       hermetic_env: dict[str, str]) -> None:
    check = subprocess.run([str(bare_python), "-c", "import urllib3"], capture_output=True)
    assert check.returncode != 0  # really bare
    trace = tmp_path / "trace.txt"
    for run in ("cold", "warm"):
        proc = subprocess.run([str(bare_python), str(carton), "x", "--y"],
                              env={**hermetic_env, "CARTON_TRACE": str(trace)},
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (run, proc.stderr)
        assert proc.stdout.splitlines() == ["a1 ['x', '--y']", "child a1"], run
    # The model's process selected the section, with the packaging the carton carries
    # (loading/selection.py), and the model found none (MODEL tries).
    assert "model: plan written" in trace.read_text()
    home = Path(hermetic_env["CARTON_HOME"])
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    (runtime,) = (home / "runtime" / tag).iterdir()
    assert (runtime / ".carton-complete").is_file()
    assert list((runtime / "hook").iterdir()) == [runtime / "hook" / "carton_hook"]
    assert list((runtime / "hook" / "carton_hook" / "loading" / "__pycache__").glob("api.*.pyc"))


def test_the_shebang_runs_it_with_python3_from_path(tmp_path: Path, carton: Path,
                                                    bare_python: Path,
                                                    hermetic_env: dict[str, str]) -> None:
    assert carton.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert carton.stat().st_mode & stat.S_IXUSR
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(bare_python)
    env = {**hermetic_env, "PATH": f"{bindir}{os.pathsep}{hermetic_env['PATH']}"}
    proc = subprocess.run([str(carton)], env=env, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout.splitlines()[0]) == (0, "a1 []"), proc.stderr


REEXEC_MODEL = {"model.py": """
import os, sys
def main():
    if "REEXECUTED" not in os.environ:
        os.environ["REEXECUTED"] = "1"
        sys.stdout.flush()
        # A restart, as reloaders do: the script (sys.argv[0] is the carton) or `-m`.
        how = [] if os.environ["HOW"] == "script" else ["-m", "carton_hook"]
        os.execv(sys.executable, [sys.executable, *how, *sys.argv])
    import alpha
    print("again", alpha.VALUE, os.path.basename(sys.argv[0]), sys.argv[1:])
"""}


@pytest.mark.parametrize("again", ["script", "module"])
@pytest.mark.parametrize("how", ["hook", "executable"])
def test_a_model_that_re_executes_itself_runs_again_in_its_prefix(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        bare_python: Path, hermetic_env: dict[str, str], how: str, again: str) -> None:
    """`os.execv(sys.executable, [sys.executable, *sys.argv])`, or with `-m carton_hook`
    (werkzeug's reloader, Flask's debug mode), starts the prefix's Python on the carton,
    which that Python loaded at start-up: the model runs again there."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "VALUE = 'a1'\n"}))
    carton = build_carton("alpha\n", REEXEC_MODEL)
    command = ([sys.executable, "-m", "carton_hook", str(carton)] if how == "hook"
               else [str(bare_python), str(carton)])
    for run in ("cold", "warm"):
        proc = subprocess.run([*command, "x"], env={**hermetic_env, "HOW": again},
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (run, proc.stderr)
        assert proc.stdout.splitlines() == [f"again a1 {carton.name} ['x']"], run


def test_the_runtime_adds_under_one_and_a_half_megabytes(carton: Path) -> None:
    with zipfile.ZipFile(carton) as zf:
        runtime = [i for i in zf.infolist()
                   if i.filename.startswith("runtime/") or i.filename == "__main__.py"]
        added = sum(i.compress_size + 30 + len(i.filename) for i in runtime)  # with headers
        names = {i.filename.split("/")[2] for i in runtime if i.filename.startswith("runtime/")}
    assert added < 1.5 * 1024 * 1024, added
    assert {"carton_hook", "urllib3", "packaging", "installer", "filelock"} <= names


def test_main_is_stored_so_that_a_start_reads_it_without_zlib(carton: Path,
                                                             bare_python: Path) -> None:
    with zipfile.ZipFile(carton) as zf:
        assert zf.getinfo("__main__.py").compress_type == zipfile.ZIP_STORED
    probe = ("import sys, zipimport\n"
             f"zipimport.zipimporter({str(carton)!r}).get_code('__main__')\n"
             "print('zlib' in sys.modules)\n")
    proc = subprocess.run([str(bare_python), "-I", "-c", probe], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_a_python_it_is_not_locked_for_is_told_which_ones_in_one_line(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    """A newer Python without carton-backend (it cannot lock the carton for itself): one
    line that names the Pythons the carton can run with, and no advice to install what
    the user may not be able to get."""
    this = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    found = (shutil.which(f"python3.{minor}", path=hermetic_env["PATH"])
             for minor in range(sys.version_info[1] + 1, 14))
    newer = [p for p in found if p and subprocess.run(
        [p, "-c", "pass"], env=hermetic_env, capture_output=True).returncode == 0]
    if not newer:
        pytest.skip("needs a newer python3.1X on PATH")
    for python in newer:  # run outside this checkout, which has carton_backend
        proc = subprocess.run([python, str(carton)], env=hermetic_env, capture_output=True,
                              text=True, check=False, cwd=tmp_path)
        assert proc.returncode == 1, (python, proc.stdout)
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"carton: error: {carton}: no lock section for CPython 3."), line
        assert f"run it with {this}, or have it packed for this Python too" in line, line
        assert "pip install" not in line


def test_a_python_older_than_310_is_refused_in_one_line(carton: Path,
                                                         hermetic_env: dict[str, str]) -> None:
    probe = ("import runpy, sys\n"
             "sys.version_info = (3, 9, 18, 'final', 0)\n"
             f"sys.argv = [{str(carton)!r}]\n"
             f"runpy.run_path({str(carton)!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-I", "-c", probe], env=hermetic_env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"carton: error: {carton} runs on CPython 3.10 or newer; this is "
                           f"Python {sys.version.split()[0]}: run it with python3.10 or "
                           "newer\n")


def test_a_changed_runtime_file_is_refused(tmp_path: Path, carton: Path, bare_python: Path,
                                           hermetic_env: dict[str, str]) -> None:
    changed = tmp_path / "changed.carton"
    with zipfile.ZipFile(carton) as src, zipfile.ZipFile(changed, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "runtime/hook/carton_hook/loading/api.py":
                data += b"\nprint('injected')\n"
            out.writestr(info, data)
    proc = subprocess.run([str(bare_python), str(changed)], env=hermetic_env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "injected" not in proc.stdout
    assert proc.stderr.startswith(f"carton: error: {changed}: cannot set up the runtime")
    assert "runtime/hook/carton_hook/loading/api.py does not match its MANIFEST hash" in proc.stderr
    assert "Traceback" not in proc.stderr
    runtime = Path(hermetic_env["CARTON_HOME"]) / "runtime"
    assert not [p for p in runtime.rglob("*") if p.name == ".carton-complete"]


def test_executable_false_leaves_the_runtime_out(tmp_path: Path, pypi: PackageIndex,
                                                 use_hermetic_env: None) -> None:
    from carton_backend.config import load_config
    from carton_backend.lock.locking import lock_model
    from carton_backend.packing.pack import write_carton

    from ..factory import write_model

    folder = write_model(tmp_path / "m", carton='entrypoint = "model:main"\nexecutable = false\n')
    config = load_config(folder)
    out = write_carton(config, lock_model(config), tmp_path / "dist")
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if not n.startswith("model/")
                    and n not in ("MANIFEST", "carton.toml")]
    assert out.read_bytes()[:2] == b"PK" and not out.stat().st_mode & stat.S_IXUSR


WAITING = {"model.py": "import sys\ndef main():\n    print('up', flush=True)\n"
                       "    sys.stdin.readline()\n    import alpha\n    print(alpha.VALUE)\n"}


def test_the_runtime_is_listed_kept_while_in_use_then_cleared(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        bare_python: Path, hermetic_env: dict[str, str]) -> None:
    from ..conftest import run_hook

    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "VALUE = 'a1'\n"}))
    carton = build_carton("alpha\n", WAITING)
    running = subprocess.Popen([str(bare_python), str(carton)], env=hermetic_env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert running.stdin is not None and running.stdout is not None
    try:
        assert running.stdout.readline() == "up\n"
        listed = run_hook(hermetic_env, "cache", "list", "--json").stdout
        assert '"kind": "runtime"' in listed
        proc = run_hook(hermetic_env, "cache", "clear")
        assert "kept runtime" in proc.stdout, proc.stdout
        running.stdin.write("go\n")
        running.stdin.flush()  # its first import now needs the worker, from the runtime
        assert running.stdout.readline() == "a1\n"
    finally:
        running.stdin.close()
        assert running.wait(timeout=60) == 0
    assert "removed runtime" in run_hook(hermetic_env, "cache", "clear").stdout
    again = subprocess.run([str(bare_python), str(carton)], input="\n", env=hermetic_env,
                           capture_output=True, text=True, check=False)
    assert (again.returncode, again.stdout) == (0, "up\na1\n"), again.stderr
