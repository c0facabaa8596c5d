"""`python -m carton_hook` commands: info, fetch, cache list / prune / clear, the global
options and exit codes; all through real subprocesses and a loopback index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.cache.layout import COMPLETE
from carton_hook.formats.version import CREATED_BY

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": "import alpha\ndef main():\n    print(alpha.VALUE)\n"}


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
           build_carton: Callable[..., Path]) -> Path:
    """alpha (imported by the model, with a submodule), beta (locked, never imported) and
    a bundled wheel."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n", "alpha/later.py": "LATER = 'later'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "beta", "2.0", {"beta.py": "B = 2\n"}))
    private.add(make_wheel(tmp_path / "w", "secret", "3.0", {"secret.py": "S = 3\n"}))
    return build_carton("alpha\nbeta\nsecret\n", MODEL)


def home(env: dict[str, str]) -> Path:
    return Path(env["CARTON_HOME"])


def packages(env: dict[str, str]) -> list[Path]:
    return sorted(p for p in home(env).glob("pythonpackages/py*/*") if len(p.name) == 64)


def age_everything(env: dict[str, str], days: float) -> None:
    """Make every entry look last used `days` ago."""
    then = time.time() - days * 86400
    for marker in home(env).rglob(COMPLETE):
        os.utime(marker, (then, then))
    for plan in home(env).glob("plans/*.plan"):
        os.utime(plan, (then, then))


def test_info_describes_a_carton_without_fetching(carton: Path, pypi: PackageIndex,
                                                  hermetic_env: dict[str, str]) -> None:
    pypi.requests.clear()
    proc = run_hook(hermetic_env, "info", carton)
    assert proc.returncode == 0, proc.stderr
    here = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert "demo-model 0.1.0" in proc.stdout
    assert "entrypoint:      model:main" in proc.stdout
    assert f"{here}-" in proc.stdout and "(applies here)" in proc.stdout
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[-3:]}
    assert rows["alpha"][1] == "1.0" and rows["alpha"][-2:] == ["127.0.0.1", "no"]
    assert rows["secret"][-2:] == ["bundled", "no"]
    assert pypi.requests == []
    assert not home(hermetic_env).exists() or not packages(hermetic_env)

    assert run_hook(hermetic_env, carton).returncode == 0
    data = json.loads(run_hook(hermetic_env, "info", "--json", carton).stdout)
    cached = {p["name"]: p["cached"] for p in data["packages"]}
    assert cached == {"alpha": True, "beta": False, "secret": False}
    assert data["applies"] in data["sections"] and data["name"] == "demo-model"


def test_info_shows_what_the_project_says_of_itself(tmp_path: Path, carton: Path,
                                                    hermetic_env: dict[str, str]) -> None:
    """[project]'s description, license, authors and URLs reach the carton (its
    model/.carton/METADATA) and `info`."""
    from ..conftest import run_cli

    folder = tmp_path / "models" / "demo-model"  # where build_carton locked it
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"\n', (
        'version = "0.1.0"\ndescription = "Predicts the weather"\nlicense = {text = "MIT"}\n'
        'authors = [{name = "Ada", email = "ada@example.org"}]\n'
        'urls = {Homepage = "https://example.org/demo"}\n'), 1))
    out = tmp_path / "out"
    assert run_cli(hermetic_env, "pack", folder, "-o", out).returncode == 0
    (packed,) = out.glob("*.carton")
    proc = run_hook(hermetic_env, "info", packed)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1:5] == ["  summary:         Predicts the weather", "  license:         MIT",
                          "  author-email:    Ada <ada@example.org>",
                          "  project-url:     Homepage, https://example.org/demo"], lines
    data = json.loads(run_hook(hermetic_env, "info", "--json", packed).stdout)
    assert ["Summary", "Predicts the weather"] in data["metadata"]
    assert run_hook(hermetic_env, "verify", packed).returncode == 0
    # A model folder may not bring its own: the pack writes it.
    (folder / ".carton" / "METADATA").write_text("Name: other\n")
    proc = run_cli(hermetic_env, "pack", folder, "-o", tmp_path / "out2")
    assert proc.returncode == 1 and "carton writes this file into the archive" in proc.stderr


def test_info_of_a_model_folder_and_of_a_bad_file(tmp_path: Path, carton: Path,
                                                  hermetic_env: dict[str, str]) -> None:
    folder = tmp_path / "models" / "demo-model"
    proc = run_hook(hermetic_env, "info", folder)
    assert proc.returncode == 0 and "alpha" in proc.stdout, proc.stderr
    junk = tmp_path / "junk.carton"
    junk.write_bytes(b"not a zip")
    proc = run_hook(hermetic_env, "info", junk)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"carton: error: {junk}") and "Traceback" not in proc.stderr


def test_fetch_caches_every_package_so_the_model_runs_offline(
        carton: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    proc = run_hook(hermetic_env, "fetch", carton)
    assert proc.returncode == 0, proc.stderr
    # On an empty cache, all three are fetched, also those the plan step installed
    # (the model imports alpha).
    assert "3 packages cached" in proc.stdout and "(3 fetched" in proc.stdout
    assert "; 0 were already there" in proc.stdout
    assert len(packages(hermetic_env)) == 3
    again = run_hook(hermetic_env, "-q", "fetch", carton)
    assert (again.returncode, again.stdout) == (0, "")
    pypi.stop()
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout) == (0, "alpha 1.0\n"), proc.stderr
    proc = run_hook(hermetic_env, "fetch", carton)
    assert proc.returncode == 0 and "(0 fetched" in proc.stdout


def test_cache_list_shows_each_kind_with_size_and_last_use(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    assert "the cache is empty" in run_hook(hermetic_env, "cache", "list").stdout
    assert run_hook(hermetic_env, carton).returncode == 0
    proc = run_hook(hermetic_env, "cache", "list")
    assert proc.returncode == 0, proc.stderr
    py = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"package  alpha 1.0 ({py})" in proc.stdout
    assert "model    demo-model 0.1.0" in proc.stdout
    assert "within the hour" in proc.stdout and "entries" in proc.stdout.splitlines()[-1]
    listed = json.loads(run_hook(hermetic_env, "cache", "list", "--json").stdout)
    assert {e["kind"] for e in listed} == {"package", "model", "env", "plan"}
    assert all(e["size"] > 0 and e["complete"] for e in listed)


def test_prune_removes_only_what_was_not_used_lately(
        carton: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    assert run_hook(hermetic_env, "fetch", carton).returncode == 0
    assert run_hook(hermetic_env, carton).returncode == 0
    proc = run_hook(hermetic_env, "cache", "prune", "--older-than", "1")
    assert proc.returncode == 0 and "freed 0 B" in proc.stdout, proc.stdout
    assert len(packages(hermetic_env)) == 3
    age_everything(hermetic_env, 3)
    assert run_hook(hermetic_env, "cache", "prune", "--older-than", "7").stdout.startswith(
        "freed 0 B")
    proc = run_hook(hermetic_env, "cache", "prune", "--older-than", "2")
    assert proc.returncode == 0, proc.stderr
    assert "removed package alpha 1.0" in proc.stdout and "removed model" in proc.stdout
    assert packages(hermetic_env) == []
    assert not list(home(hermetic_env).glob("plans/*.plan"))
    pypi.requests.clear()
    proc = run_hook(hermetic_env, carton)  # runs again, fetching what it imports
    assert (proc.returncode, proc.stdout) == (0, "alpha 1.0\n"), proc.stderr
    fetched = [r for r in pypi.requests if r.startswith("/files/")]
    assert fetched == ["/files/alpha-1.0-py3-none-any.whl"]


SLOW_MODEL = {"model.py": """
import sys
def main():
    import alpha
    print("imported", flush=True)
    sys.stdin.readline()
    from alpha import later
    print(later.LATER, flush=True)
"""}


def test_clear_never_removes_what_a_running_model_uses(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "", "alpha/later.py": "LATER = 'later'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "beta", "2.0", {"beta.py": "B = 2\n"}))
    carton = build_carton("alpha\nbeta\n", SLOW_MODEL)
    assert run_hook(hermetic_env, "fetch", carton).returncode == 0
    age_everything(hermetic_env, 30)
    running = subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)],
                               env=hermetic_env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert running.stdin is not None and running.stdout is not None
    try:
        assert running.stdout.readline() == "imported\n"
        proc = run_hook(hermetic_env, "cache", "clear")
        assert proc.returncode == 0, proc.stderr
        assert "removed package beta 2.0" in proc.stdout
        assert "kept package alpha 1.0" in proc.stdout and "in use" in proc.stdout
        assert "kept model demo-model 0.1.0: in use" in proc.stdout
        assert "kept env" in proc.stdout
        running.stdin.write("go on\n")
        running.stdin.flush()
        assert running.stdout.readline() == "later\n"  # a module it had not imported yet
    finally:
        running.stdin.close()
        assert running.wait(timeout=60) == 0, running.stderr and running.stderr.read()
    proc = run_hook(hermetic_env, "cache", "clear")
    assert "removed package alpha 1.0" in proc.stdout, proc.stdout
    assert packages(hermetic_env) == []


def test_version_help_and_usage_errors(carton: Path, hermetic_env: dict[str, str]) -> None:
    for argv in (["--version"], ["-q", "--version"]):
        proc = run_hook(hermetic_env, *argv)
        assert (proc.returncode, proc.stdout) == (0, f"{CREATED_BY}\n")
    for command in (["info"], ["fetch"], ["verify"], ["cache"], ["cache", "prune"]):
        proc = run_hook(hermetic_env, *command, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m carton_hook")
    for argv in (["cache", "prune"], ["verify", "--remove", str(carton)], ["info"],
                 ["cache", "shrink"], ["--frobnicate", str(carton)],
                 ["cache", "prune", "--older-than", "-1"]):
        proc = run_hook(hermetic_env, *argv)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert "error" in proc.stderr and "Traceback" not in proc.stderr


def test_a_model_named_like_a_command_still_runs(tmp_path: Path, carton: Path,
                                                 hermetic_env: dict[str, str]) -> None:
    work = tmp_path / "here"
    work.mkdir()
    shutil.copy(carton, work / "info")
    for argv in (["./info"], ["--", "info"]):
        proc = run_hook(hermetic_env, *argv, cwd=work)
        assert (proc.returncode, proc.stdout) == (0, "alpha 1.0\n"), (argv, proc.stderr)


@pytest.mark.parametrize("command", [["info", "{carton}"], ["verify", "{carton}"],
                                     ["cache", "list"]])
def test_output_into_a_pipe_closed_early_ends_quietly(
        command: list[str], carton: Path, hermetic_env: dict[str, str]) -> None:
    """`... | head -1`: the reader goes away; no BrokenPipeError traceback."""
    assert run_hook(hermetic_env, carton).returncode == 0  # something for `cache list`
    argv = [sys.executable, "-m", "carton_hook", *(a.format(carton=carton) for a in command)]
    proc = subprocess.Popen(argv, env=hermetic_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert (code, stderr) == (1, ""), stderr


def test_options_before_a_command_reach_it(carton: Path, hermetic_env: dict[str, str]) -> None:
    """`python -m carton_hook -q cache clear`, as the usage shows it."""
    assert run_hook(hermetic_env, carton).returncode == 0
    for argv in (["-q", "cache", "clear"], ["-q", "cache", "prune", "--older-than", "0"],
                 ["-q", "cache", "list"], ["-q", "info", str(carton)]):
        proc = run_hook(hermetic_env, *argv)
        assert (proc.returncode, proc.stderr) == (0, ""), (argv, proc.stderr)
