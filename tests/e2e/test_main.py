"""`python -m carton_hook MODEL [ARGS...]` end to end: real cartons, a loopback index,
a fresh cache, real subprocesses."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_backend.config import load_config
from carton_backend.packing.pack import write_carton
from carton_hook.formats.lockfile import load_lock

from ..conftest import ctrl_c_as_in_a_terminal, run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

ALPHA = {"alpha/__init__.py": "VALUE = 'alpha 1.0'\n"}


@pytest.fixture
def alpha(tmp_path: Path, pypi: PackageIndex) -> Path:
    return pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", ALPHA))


def test_runs_function_entrypoint_with_argv_and_exit_code(
        alpha: Path, build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": (
        "import sys, alpha\n"
        "def main():\n"
        "    print(alpha.VALUE, sys.argv)\n"
        "    return 3\n")})
    proc = run_hook(hermetic_env, carton, "one", "--two")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == f"alpha 1.0 {[str(carton), 'one', '--two']}"


@pytest.mark.parametrize(("entrypoint", "files"), [
    ("app", {"app.py": "import sys, alpha\nif __name__ == '__main__':\n"
                       "    print('module', alpha.VALUE, sys.argv[1:])\n"}),
    ("pkg", {"pkg/__init__.py": "", "pkg/__main__.py":
             "import sys, alpha\nprint('package', alpha.VALUE, sys.argv[1:])\n"}),
    ("scripts/run.py", {"scripts/run.py": "import sys, alpha\nprint('script', alpha.VALUE, "
                                          "sys.argv[1:], __name__)\n"}),
])
def test_module_package_and_script_entrypoints(
        entrypoint: str, files: dict[str, str], alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", files, entrypoint=entrypoint)
    proc = run_hook(hermetic_env, carton, "x")
    assert proc.returncode == 0, proc.stderr
    kind = {"app": "module", "pkg": "package"}.get(entrypoint, "script")
    expected = f"{kind} alpha 1.0 ['x']" + (" __main__" if kind == "script" else "")
    assert proc.stdout.strip() == expected


def test_model_files_are_readable_relative_to_file(
        alpha: Path, build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {
        "data/weights.json": '{"w": 42}',
        "model.py": "import json, pathlib\n"
                    "def main():\n"
                    "    p = pathlib.Path(__file__).parent / 'data' / 'weights.json'\n"
                    "    print(json.loads(p.read_text())['w'])\n"})
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "42"), proc.stderr


def test_warm_run_opens_no_socket_and_needs_no_index(
        alpha: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": "import alpha\ndef main():\n"
                                                  "    print(alpha.VALUE)\n"})
    pypi.reset_counts()
    assert run_hook(hermetic_env, carton).returncode == 0
    assert sum("/files/" in r for r in pypi.requests) == 1
    pypi.stop()
    guard = ("import socket\n"
             "def refuse(*a, **k):\n    raise AssertionError('a socket was opened')\n"
             "socket.create_connection = refuse\n")
    sitecustomize = Path(hermetic_env["CARTON_HOME"]).parent / "guard"
    sitecustomize.mkdir()
    (sitecustomize / "sitecustomize.py").write_text(guard)
    env = {**hermetic_env, "PYTHONPATH": str(sitecustomize), "CARTON_OFFLINE": "1"}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "alpha 1.0"), proc.stderr


def test_only_imported_wheels_are_fetched(
        tmp_path: Path, alpha: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    unused = pypi.add(make_wheel(tmp_path / "w", "unused", "1.0"))
    carton = build_carton("alpha\nunused\n", {"model.py": "import alpha\ndef main():\n"
                                                          "    return 0\n"})
    pypi.reset_counts()
    assert run_hook(hermetic_env, carton).returncode == 0
    fetched = [r for r in pypi.requests if r.startswith("/files/")]
    assert fetched == [f"/files/{alpha.name}"], fetched
    assert unused.name not in str(fetched)
    entries = [p for p in (Path(hermetic_env["CARTON_HOME"]) / "pythonpackages").glob("*/*")
               if not p.name.startswith(".")]
    assert len(entries) == 1


def test_dependencies_are_prefetched_together(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "base", "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "top", "1.0", {"top/__init__.py": "import base\n"},
                        requires=["base"]))
    carton = build_carton("top\n", {"model.py": "import top\ndef main():\n    return 0\n"})
    home = Path(hermetic_env["CARTON_HOME"])
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert len([p for p in home.glob("pythonpackages/*/*") if not p.name.startswith(".")]) == 2


def test_a_dependency_only_a_function_imports_is_installed_on_its_own_import(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """As tzdata for python-dateutil: a dependency that importing the package does not
    import is neither fetched nor unpacked with it, and still imports when asked for."""
    for name in ("eager", "lazy", "data"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "top", "1.0", {
        "top/__init__.py": "import eager\ndef later():\n    import lazy\n    return lazy\n"},
        requires=["eager", "lazy", "data"]))
    carton = build_carton("top\n", {"model.py": "import top\ndef main():\n"
                                                "    print(top.later().__version__)\n"})
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "1.0"), proc.stderr
    fetched = sorted(r.rsplit("/", 1)[1].split("-")[0] for r in pypi.requests
                     if r.startswith("/files/"))
    assert fetched == ["eager", "lazy", "top"]  # lazy on its import; data never


def test_bundled_wheel_is_installed_from_the_archive(
        tmp_path: Path, private: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    private.add(make_wheel(tmp_path / "w", "secret", "2.0",
                           {"secret.py": "WHO = 'bundled'\n"}))
    carton = build_carton("secret\n", {"model.py": "import secret\ndef main():\n"
                                                   "    print(secret.WHO)\n"})
    private.stop()  # the wheel travels inside the carton
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "bundled"), proc.stderr


def test_model_exception_prints_traceback_and_exits_1(
        alpha: Path, build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": "def main():\n"
                                                  "    raise ValueError('model broke')\n"})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: model broke" in proc.stderr


def test_unpacked_carton_and_model_folder_also_run(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    files = {"model.py": "import alpha\ndef main():\n    print('ran', alpha.VALUE)\n"}
    carton = build_carton("alpha\n", files)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(carton) as zf:
        zf.extractall(unpacked)
    folder = tmp_path / "models" / "demo-model"  # where build_carton locked it
    for model in (unpacked, folder):
        proc = run_hook(hermetic_env, model)
        assert (proc.returncode, proc.stdout.strip()) == (0, "ran alpha 1.0"), proc.stderr


def test_a_model_folder_whose_entrypoint_leaves_it_is_refused(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    build_carton("alpha\n")
    folder = tmp_path / "models" / "demo-model"
    (tmp_path / "evil.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    pyproject = folder / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('entrypoint = "model:main"', 'entrypoint = "../../evil.py"'))
    assert pyproject.read_text() != text
    proc = run_hook(hermetic_env, folder)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"carton: error: {pyproject}: tool.carton.entrypoint ")
    assert not (tmp_path / "evil.py.ran").exists()


def test_no_section_for_this_python_is_a_clear_error(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    build_carton("alpha\n")
    folder = tmp_path / "models" / "demo-model"
    lock_path = folder / ".carton" / "carton.lock"
    lock = json.loads(lock_path.read_text())
    lock["environments"][0]["marker"] = "python_version == '2.7'"
    lock["environments"][0]["id"] = "cp27-linux-x86_64"
    lock_path.write_text(json.dumps(lock))
    for switch in ("CARTON_NO_PACK", "CARTON_OFFLINE"):
        proc = run_hook({**hermetic_env, switch: "1"}, folder)
        assert proc.returncode == 1
        assert proc.stderr.startswith("carton: error:") and "Traceback" not in proc.stderr
        assert "no lock section" in proc.stderr and "cp27-linux-x86_64" in proc.stderr
        assert f"packing at load time is off ({switch} is set)" in proc.stderr
        # Once, in one line, with what to do about the folder the user named.
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.rstrip().endswith(
            f"lock it for this interpreter: python -m carton_backend lock {folder}")


def make_foreign(lock_path: Path) -> None:
    """Make the lock's only section one for another Python, as if locked elsewhere."""
    lock = json.loads(lock_path.read_text())
    lock["environments"][0]["marker"] = "python_version == '2.7'"
    lock["environments"][0]["id"] = "cp27-linux-x86_64"
    lock_path.write_text(json.dumps(lock))


def test_missing_section_is_packed_at_load_time_for_a_model_folder(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    build_carton("alpha\n", {"model.py": "import alpha\ndef main():\n"
                                         "    print(alpha.VALUE)\n"})
    folder = tmp_path / "models" / "demo-model"
    make_foreign(folder / ".carton" / "carton.lock")
    proc = run_hook(hermetic_env, folder)
    assert (proc.returncode, proc.stdout.strip()) == (0, "alpha 1.0"), proc.stderr
    assert "carton: warning:" in proc.stderr and "locking" in proc.stderr
    ids = [e["id"] for e in json.loads((folder / ".carton" / "carton.lock").read_text())
           ["environments"]]
    assert ids[0] == "cp27-linux-x86_64" and len(ids) == 2


def test_missing_section_is_packed_at_load_time_for_an_archive(
        tmp_path: Path, alpha: Path, private: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    private.add(make_wheel(tmp_path / "w", "secret", "2.0", {"secret.py": "WHO = 'bundled'\n"}))
    build_carton("alpha\nsecret\n", {"model.py": "import alpha, secret\ndef main():\n"
                                                 "    print(alpha.VALUE, secret.WHO)\n"})
    folder = tmp_path / "models" / "demo-model"
    lock_path = folder / ".carton" / "carton.lock"
    make_foreign(lock_path)
    carton = write_carton(load_config(folder), load_lock(lock_path), tmp_path / "foreign")
    first = run_hook(hermetic_env, carton)
    assert (first.returncode, first.stdout.strip()) == (0, "alpha 1.0 bundled"), first.stderr
    assert "locking" in first.stderr
    second = run_hook(hermetic_env, carton)
    assert (second.returncode, second.stdout.strip()) == (0, "alpha 1.0 bundled")
    assert "warning" not in second.stderr, "the second run must be warm"


def test_bad_model_argument_is_a_clear_error(tmp_path: Path,
                                             hermetic_env: dict[str, str]) -> None:
    (tmp_path / "not.carton").write_bytes(b"this is not a zip")
    for target, fragment in ((tmp_path / "missing.carton", "no such file"),
                             (tmp_path / "not.carton", "not a .carton archive"),
                             (tmp_path, "not a .carton file")):
        proc = run_hook(hermetic_env, target)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("carton: error:") and fragment in proc.stderr
        assert "Traceback" not in proc.stderr


def test_usage(hermetic_env: dict[str, str]) -> None:
    proc = run_hook(hermetic_env)
    assert proc.returncode == 2 and "usage: python -m carton_hook" in proc.stderr
    proc = run_hook(hermetic_env, "--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout
    proc = run_hook(hermetic_env, "--bogus", "x")
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr


def test_python_api_loads_into_a_running_process(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": "import alpha\n"
                                                  "def main():\n    return alpha.VALUE\n"})
    script = tmp_path / "embed.py"
    script.write_text(
        "import sys, carton_hook\n"
        f"c = carton_hook.load({str(carton)!r})\n"
        "print(c.name, c.version, c.section.split('-')[0])\n"
        "print(c.entrypoint()())\n")
    proc = subprocess.run([sys.executable, str(script)], env=hermetic_env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("demo-model 0.1.0 cp")
    assert lines[1] == "alpha 1.0"



def test_warm_path_imports_nothing_costly(
        alpha: Path, build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    # Each of these costs from half a millisecond (zlib) to several (pathlib with re,
    # fnmatch and urllib): the warm path must not be what imports them. Compared with
    # what the same interpreter loads for `python -m` before any carton code runs.
    costly = {"pathlib", "json", "threading", "zlib", "hashlib", "subprocess", "typing", "re",
              "fnmatch", "urllib", "ctypes", "tempfile", "shutil", "zipfile"}
    carton = build_carton("alpha\n", {"model.py": "import sys\ndef main():\n"
                                                  "    print(sorted(sys.modules))\n"})
    assert run_hook(hermetic_env, carton).returncode == 0  # the cold run
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    seen = {m.split(".")[0] for m in ast.literal_eval(proc.stdout)}
    baseline = subprocess.run([sys.executable, "-c", "import runpy, importlib.util, sys; "
                               "print(sorted(sys.modules))"], env=hermetic_env,
                              capture_output=True, text=True, check=True)
    before = {m.split(".")[0] for m in ast.literal_eval(baseline.stdout)}
    assert (seen - before) & costly == set()
    # Nor carton's own modules that only a failure needs (~0.15 ms: a dozen classes).
    assert "carton_hook.errors" not in ast.literal_eval(proc.stdout)


def test_a_mistyped_command_is_a_usage_error_that_suggests_the_command(
        tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    proc = run_hook(hermetic_env, "inof", "model.carton", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "carton: error: no such command or model 'inof' (did you mean 'info'?)\n")
    assert "usage: python -m carton_hook" in proc.stderr
    proc = run_hook(hermetic_env, "nothing-like-a-command", cwd=tmp_path)  # a missing model
    assert proc.returncode == 1
    assert proc.stderr.startswith("carton: error: ") and proc.stderr.endswith(
        "nothing-like-a-command: no such file or folder\n")


def test_a_module_no_locked_package_provides_is_named_with_where_to_add_it(
        alpha: Path, build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    carton = build_carton("alpha\n", {"model.py": "import sys\ndef main():\n    import alpha\n"
                                                  "    __import__(sys.argv[1])\n"})
    proc = run_hook(hermetic_env, carton, "yaml")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2] == "ModuleNotFoundError: No module named 'yaml'"
    assert lines[-1] == (f"carton: no package in {carton}'s lock provides 'yaml': add the "
                         "distribution that does to the model's requirements.txt, then "
                         "lock and pack it again")
    # The standard library's and locked packages' missing submodules are Python's own error.
    for name in ("json.nothing", "alpha.nothing"):
        proc = run_hook(hermetic_env, carton, name)
        assert proc.returncode == 1
        assert proc.stderr.splitlines()[-1] == f"ModuleNotFoundError: No module named '{name}'"
    # A model whose requirements are elsewhere is told that file.
    other = build_carton("", {"model.py": "def main():\n    import yaml\n",
                              "deps/prod.txt": "alpha\n"},
                         name="other-model", settings='requirements = "deps/prod.txt"\n')
    proc = run_hook(hermetic_env, other)
    assert "to the model's deps/prod.txt, then lock" in proc.stderr.splitlines()[-1]


def test_a_stale_lock_in_a_model_folder_is_said_once(
        tmp_path: Path, alpha: Path, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """An edited requirements file makes a model folder's plan again; the build half says
    whether the lock is still current, and a stale one is named once, then used."""
    build_carton("alpha\n", {"model.py": "def main():\n    import alpha\n    print('ran')\n"})
    folder = tmp_path / "models" / "demo-model"  # where build_carton locked it
    assert run_hook(hermetic_env, folder).stderr == ""
    (folder / "requirements.txt").write_text("alpha\nbeta\n")
    proc = run_hook(hermetic_env, folder)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ran"), proc.stderr
    assert proc.stderr == (
        f"carton: warning: {folder}/.carton/carton.lock: the lock is stale (requirements.txt "
        "(or a file it includes) changed); this run uses it as it is: run python -m "
        f"carton_backend lock {folder} to bring it up to date\n")
    proc = run_hook(hermetic_env, folder)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ran", "")
    (folder / "requirements.txt").write_text("alpha\n")  # as locked: current again
    proc = run_hook(hermetic_env, folder)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("how", ["run", "verbose", "fetch"])
def test_ctrl_c_while_a_wheel_downloads_ends_at_once_in_one_line(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str], how: str) -> None:
    """Ctrl-C reaches the model's process and its worker together (one process group):
    exit status 130 with one line (the traceback with --verbose), at once, although the
    download it waited for never ends; nothing half-written is trusted by the next run."""
    import os
    import signal
    import threading
    import time

    pypi.add(make_wheel(tmp_path / "w", "slow", "1.0", {"slow/__init__.py": "VALUE = 1\n"}))
    carton = build_carton("slow\n", {"model.py": "import slow\ndef main():\n"
                                                 "    print('slow', slow.VALUE)\n"})
    pypi.reset_counts()  # the build downloaded the wheel too: wait for the run's request
    gate = threading.Event()
    pypi.held["slow-1.0-py3-none-any.whl"] = gate
    args = {"run": [str(carton)], "verbose": ["-v", str(carton)],
            "fetch": ["fetch", str(carton)]}[how]
    proc = subprocess.Popen([sys.executable, "-m", "carton_hook", *args], env=hermetic_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while not any("/slow-1.0" in r for r in pypi.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=10)  # while the download is still held
    finally:
        gate.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if how == "verbose":
        assert proc.returncode != 0 and err.rstrip().endswith("KeyboardInterrupt"), err
    else:
        assert (proc.returncode, err) == (130, "carton: interrupted\n")
    again = run_hook(hermetic_env, carton)
    assert (again.returncode, again.stdout) == (0, "slow 1\n"), again.stderr
