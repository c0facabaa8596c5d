"""Locking end to end: the real CLI, real pip, loopback indexes, wheels built at test time.

Marked `slow`: what is tested here is the lock's upkeep (when it is stale, which pins it
keeps, what it bundles), carton's own logic over pip's report, so it runs on one Python
(noxfile.py); each Python resolves with pip in the carton builds of the other tests and
against the real index in the integration session."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from carton_backend.config import load_config
from carton_backend.lock import locking
from carton_backend.lock.locking import LockRequest, lock_model
from carton_hook.formats.lockfile import load_lock

from ...conftest import run_cli, runnable_python
from ...factory import make_sdist, make_wheel, write_model, write_source_tree
from ...indexserver import PackageIndex

pytestmark = pytest.mark.slow


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_json(model: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((model / ".carton" / "carton.lock").read_text())
    return data


def packages(model: Path, env: int = 0) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in lock_json(model)["environments"][env]["packages"]}


def lock_ok(env: dict[str, str], model: Path, *args: str) -> str:
    proc = run_cli(env, "lock", model, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def assert_nothing_written(model: Path) -> None:
    """After a failure: no lock, no bundled wheel, no archive, no temp leftovers."""
    assert not (model / ".carton" / "carton.lock").exists()
    assert not list(model.rglob("*.whl"))
    assert not [p for p in model.rglob("*.carton") if p.is_file()]
    assert not list(model.rglob(".carton-tmp-*"))


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("carton: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_pypi_wheel_is_recorded_by_url(tmp_path: Path, pypi: PackageIndex,
                                       hermetic_env: dict[str, str]) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha==1.0\n")
    lock_ok(hermetic_env, model)
    pkg = packages(model)["alpha"]
    (whl,) = pkg["wheels"]
    assert whl["url"] == pypi.file_url(wheel.name)
    assert "path" not in whl
    assert whl["hashes"]["sha256"] == sha(wheel)
    assert whl["size"] == wheel.stat().st_size
    assert pkg["tool"]["carton"]["imports"] == ["alpha"]
    assert pkg["requested"] is True
    assert not (model / ".carton" / "bundled_wheels").exists()
    meta = model / ".carton" / "dist-info" / sha(wheel) / "alpha-1.0.dist-info"
    assert {p.name for p in meta.iterdir()} == {"METADATA", "WHEEL", "RECORD"}


def test_a_lock_says_which_dependencies_importing_a_pure_wheel_imports(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    for name in ("eager", "lazy", "data"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "top", "1.0", {
        "top/__init__.py": "import eager\ndef later():\n    import lazy\n"},
        requires=["eager", "lazy", "data"]))
    pypi.add(make_wheel(tmp_path / "w", "fast", "1.0", {
        "fast/__init__.py": "import eager\n", "fast/_speedups.abi3.so": b"\x7fELF"},
        requires=["lazy"]))
    model = write_model(tmp_path / "model", "top==1.0\nfast==1.0\n")
    lock_ok(hermetic_env, model)
    locked = packages(model)
    assert locked["top"]["dependencies"] == ["data", "eager", "lazy"]
    assert locked["top"]["tool"]["carton"]["imported-dependencies"] == ["eager"]
    assert "imported-dependencies" not in locked["fast"]["tool"]["carton"]  # not read
    assert "imported-dependencies" not in locked["eager"]["tool"]["carton"]  # no dependency


def test_identical_file_from_a_file_mirror_gets_the_public_url(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    wheel = make_wheel(tmp_path / "mirror", "alpha", "1.0")
    pypi.add(wheel)
    env = {**hermetic_env, "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": str(tmp_path / "mirror")}
    model = write_model(tmp_path / "model", "alpha==1.0\n")
    lock_ok(env, model)
    (whl,) = packages(model)["alpha"]["wheels"]
    assert whl["url"] == pypi.file_url(wheel.name)


def test_non_pypi_wheel_is_bundled(tmp_path: Path, private: PackageIndex,
                                   hermetic_env: dict[str, str]) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "beta", "2.0", requires=["alpha"]))
    private.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "beta\n")
    lock_ok(hermetic_env, model)
    pkgs = packages(model)
    (whl,) = pkgs["beta"]["wheels"]
    assert "url" not in whl
    assert whl["path"] == f".carton/bundled_wheels/{sha(wheel)}/{wheel.name}"
    assert sha(model / whl["path"]) == sha(wheel)
    assert pkgs["beta"]["dependencies"] == ["alpha"]
    assert pkgs["alpha"]["requested"] is False


def test_same_filename_other_bytes_than_pypi_is_bundled(
        tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
        hermetic_env: dict[str, str]) -> None:
    private.add(make_wheel(tmp_path / "a", "alpha", "1.0", {"alpha.py": "X = 'private'\n"}))
    pypi.add(make_wheel(tmp_path / "b", "alpha", "1.0", {"alpha.py": "X = 'public'\n"}))
    model = write_model(tmp_path / "model", "alpha==1.0\n")
    stderr = lock_ok({**hermetic_env, "PIP_EXTRA_INDEX_URL": ""}, model)
    (whl,) = packages(model)["alpha"]["wheels"]
    assert "path" in whl
    assert "differs from the file of the same name" in stderr


def test_sdist_is_built_bundled_and_identical_on_rebuild(
        tmp_path: Path, private: PackageIndex, hermetic_env: dict[str, str]) -> None:
    sdist = private.add(make_sdist(tmp_path / "s", "gamma", "1.0"))
    model = write_model(tmp_path / "model", "gamma==1.0\n")
    lock_ok(hermetic_env, model)
    pkg = packages(model)["gamma"]
    (whl,) = pkg["wheels"]
    assert whl["name"] == "gamma-1.0-py3-none-any.whl"
    assert whl["path"].startswith(".carton/bundled_wheels/")
    built_from = pkg["tool"]["carton"]["built-from"]["sdist"]
    assert built_from["name"] == sdist.name
    assert built_from["hashes"]["sha256"] == sha(sdist)
    assert built_from["url"] == private.file_url(sdist.name)
    first = whl["hashes"]["sha256"]
    shutil.rmtree(model / ".carton")
    lock_ok(hermetic_env, model)
    assert packages(model)["gamma"]["wheels"][0]["hashes"]["sha256"] == first


def test_local_folder_requirement_is_built_and_bundled(
        tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "./libs/delta\n")
    write_source_tree(model / "libs" / "delta", "delta", "0.3")
    lock_ok(hermetic_env, model)
    pkg = packages(model)["delta"]
    assert pkg["version"] == "0.3"
    assert pkg["tool"]["carton"]["built-from"] == {"directory": {"path": "libs/delta"}}
    assert (model / pkg["wheels"][0]["path"]).is_file()
    assert pkg["tool"]["carton"]["imports"] == ["delta"]


def test_fast_path_runs_no_resolver_and_touches_no_network(
        tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
        hermetic_env: dict[str, str], use_hermetic_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    private.add(make_sdist(tmp_path / "s", "gamma", "1.0"))
    model = write_model(tmp_path / "model", "alpha\ngamma\n")
    lock_ok(hermetic_env, model)
    before = (model / ".carton" / "carton.lock").read_bytes()
    pypi.reset_counts()
    private.reset_counts()

    def no_resolver(*args: object, **kwargs: object) -> None:
        raise AssertionError("the resolver ran on the fast path")

    from carton_backend.network import httpclient

    monkeypatch.setattr(locking, "resolve", no_resolver)
    monkeypatch.setattr(httpclient, "HttpClient", no_resolver)
    lock = lock_model(load_config(model))
    assert {p.name for p in lock.environments[0].packages} == {"alpha", "gamma"}
    assert (model / ".carton" / "carton.lock").read_bytes() == before
    assert pypi.requests == [] and private.requests == []
    # And through the CLI, with both indexes gone: packing still works.
    pypi.stop()
    private.stop()
    proc = run_cli(hermetic_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    assert (model / "dist" / "demo_model-0.1.0.carton").is_file()
    # Nor does it import what resolving and downloading need (urllib3 alone: 80 ms).
    proc = subprocess.run([sys.executable, "-c", "import sys\n"
                           "from carton_backend.cli import main\n"
                           "code = main(['pack', '-q', sys.argv[1]])\n"
                           "print(code, 'urllib3' in sys.modules)", str(model)],
                          env=hermetic_env, capture_output=True, text=True, check=False)
    assert proc.stdout.split() == ["0", "False"], proc.stderr


def test_changed_requirements_relock(tmp_path: Path, pypi: PackageIndex,
                                     hermetic_env: dict[str, str]) -> None:
    for version in ("1.0", "1.1"):
        pypi.add(make_wheel(tmp_path / "w", "alpha", version))
    model = write_model(tmp_path / "model", "alpha==1.0\n")
    lock_ok(hermetic_env, model)
    (model / "requirements.txt").write_text("alpha==1.1\n")
    lock_ok(hermetic_env, model)
    assert packages(model)["alpha"]["version"] == "1.1"
    assert len(list((model / ".carton" / "dist-info").iterdir())) == 1, "stale metadata kept"


def test_changed_included_file_relocks(tmp_path: Path, pypi: PackageIndex,
                                       hermetic_env: dict[str, str]) -> None:
    for version in ("1.0", "1.1"):
        pypi.add(make_wheel(tmp_path / "w", "alpha", version))
    model = write_model(tmp_path / "model", "-r reqs/base.txt\n")
    (model / "reqs").mkdir()
    (model / "reqs" / "base.txt").write_text("alpha==1.0\n")
    lock_ok(hermetic_env, model)
    assert packages(model)["alpha"]["version"] == "1.0"
    (model / "reqs" / "base.txt").write_text("alpha==1.1\n")
    lock_ok(hermetic_env, model)
    assert packages(model)["alpha"]["version"] == "1.1"


def test_relock_keeps_pins_until_upgrade(tmp_path: Path, pypi: PackageIndex,
                                         hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "beta", "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "omega", "1.0"))
    model = write_model(tmp_path / "model", "alpha\nbeta>=1\n")
    lock_ok(hermetic_env, model)
    section = next(iter(json.loads((model / ".carton" / "carton.lock").read_text())
                        ["environments"]))["id"]
    pypi.add(make_wheel(tmp_path / "w", "alpha", "2.0"))
    pypi.add(make_wheel(tmp_path / "w", "beta", "2.0"))
    (model / "requirements.txt").write_text("alpha\nbeta>=1\nomega\n")
    said = lock_ok(hermetic_env, model)
    pkgs = packages(model)
    assert (pkgs["alpha"]["version"], pkgs["beta"]["version"]) == ("1.0", "1.0")
    assert pkgs["omega"]["version"] == "1.0"
    assert f"carton: {section}: added omega 1.0\n" in said, said
    said = lock_ok(hermetic_env, model, "--upgrade-package", "beta")
    pkgs = packages(model)
    assert (pkgs["alpha"]["version"], pkgs["beta"]["version"]) == ("1.0", "2.0")
    assert f"carton: {section}: updated beta 1.0 -> 2.0\n" in said, said
    assert "alpha" not in said
    said = lock_ok(hermetic_env, model)  # current: says so, with what it holds
    assert said == (f"carton: the lock is current (3 packages for {section}); nothing to "
                    "resolve\n"), said
    assert lock_ok(hermetic_env, model, "-q") == ""
    (model / "requirements.txt").write_text("alpha\nbeta>=1\n")
    said = lock_ok(hermetic_env, model, "--upgrade")
    assert packages(model)["alpha"]["version"] == "2.0"
    assert f"carton: {section}: updated alpha 1.0 -> 2.0\n" in said, said
    assert f"carton: {section}: removed omega 1.0\n" in said, said


def test_changed_direct_pin_moves_only_that_package(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    for name in ("alpha", "beta"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    model = write_model(tmp_path / "model", "alpha==1.0\nbeta\n")
    lock_ok(hermetic_env, model)
    for name in ("alpha", "beta"):
        pypi.add(make_wheel(tmp_path / "w", name, "2.0"))
    (model / "requirements.txt").write_text("alpha==2.0\nbeta\n")
    lock_ok(hermetic_env, model)
    pkgs = packages(model)
    assert (pkgs["alpha"]["version"], pkgs["beta"]["version"]) == ("2.0", "1.0")


@pytest.mark.skipif(not runnable_python("3.12") or sys.version_info[:2] == (3, 12),
                    reason="needs python3.12 on PATH beside another building Python")
def test_new_environment_keeps_the_old_section(tmp_path: Path, pypi: PackageIndex,
                                               hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    lock_ok(hermetic_env, model)
    (first,) = lock_json(model)["environments"]
    pypi.add(make_wheel(tmp_path / "w", "alpha", "2.0"))  # newer, but the lock chose 1.0
    pyproject = model / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'python = ["3.12"]\n')
    stderr = lock_ok(hermetic_env, model)
    envs = lock_json(model)["environments"]
    assert envs[0] == first
    assert [p["version"] for p in envs[1]["packages"]] == ["1.0"]
    assert "no longer resolve" not in stderr
    assert [e["marker-environment"]["python_version"] for e in envs][1] == "3.12"
    assert envs[1]["id"].startswith("cp312-")
    pypi.reset_counts()
    lock_ok(hermetic_env, model)  # both sections present: the fast path
    assert pypi.requests == []
    # Taken out of `python` again: its section goes, and nothing is resolved.
    pyproject.write_text(pyproject.read_text().replace('python = ["3.12"]\n', ""))
    check = run_cli(hermetic_env, "lock", "--check", model)
    assert check.returncode == 1 and "no longer lists 3.12" in check.stdout + check.stderr
    stderr = lock_ok(hermetic_env, model)
    assert lock_json(model)["environments"] == [first]
    assert "dropped lock section cp312-" in stderr and pypi.requests == []
    assert run_cli(hermetic_env, "lock", "--check", model).returncode == 0


def test_bundle_all_bundles_pypi_wheels(tmp_path: Path, pypi: PackageIndex,
                                        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n",
                        carton='entrypoint = "model:main"\nbundle = "all"\n')
    lock_ok(hermetic_env, model)
    (whl,) = packages(model)["alpha"]["wheels"]
    assert whl["path"].startswith(".carton/bundled_wheels/")
    assert "index" not in packages(model)["alpha"]


def test_changing_bundle_makes_the_lock_stale(tmp_path: Path, pypi: PackageIndex,
                                              hermetic_env: dict[str, str]) -> None:
    """A setting that changes what the lock holds counts as a change, as the requirements'
    bytes do: bundle = "all" added to a locked model bundles its wheels at the next pack,
    at the same versions."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    lock_ok(hermetic_env, model)
    (whl,) = packages(model)["alpha"]["wheels"]
    assert "url" in whl and "path" not in whl
    locked = json.loads((model / ".carton" / "carton.lock").read_text())
    assert locked["settings"] == {"bundle": "non-pypi", "only-binary": False, "python": []}
    pypi.add(make_wheel(tmp_path / "w", "alpha", "2.0"))  # not taken: pins are kept
    pyproject = model / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'bundle = "all"\n')
    said = lock_ok(hermetic_env, model)
    assert 're-resolving every environment: tool.carton.bundle is now "all"' in said, said
    alpha = packages(model)["alpha"]
    assert alpha["version"] == "1.0"
    assert alpha["wheels"][0]["path"].startswith(".carton/bundled_wheels/")
    proc = run_cli(hermetic_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(proc.stdout.strip()) as zf:
        assert any(n.endswith("/alpha-1.0-py3-none-any.whl") for n in zf.namelist())
    pypi.reset_counts()
    assert lock_ok(hermetic_env, model).startswith("carton: the lock is current")
    assert pypi.requests == []


def test_a_lock_without_settings_was_made_with_the_defaults(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    lock_ok(hermetic_env, model)
    lock_path = model / ".carton" / "carton.lock"
    locked = json.loads(lock_path.read_text())
    del locked["settings"]  # as written before settings were kept
    lock_path.write_text(json.dumps(locked))
    pypi.reset_counts()
    assert lock_ok(hermetic_env, model).startswith("carton: the lock is current")
    assert pypi.requests == []


def test_only_binary_refuses_sdists(tmp_path: Path, private: PackageIndex,
                                    hermetic_env: dict[str, str]) -> None:
    private.add(make_sdist(tmp_path / "s", "gamma", "1.0"))
    model = write_model(tmp_path / "model", "gamma\n",
                        carton='entrypoint = "model:main"\nonly-binary = true\n')
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "gamma")
    assert_nothing_written(model)


def test_only_binary_refuses_local_folders_without_running_build_code(
        tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "./libs/delta\n",
                        carton='entrypoint = "model:main"\nonly-binary = true\n')
    tree = write_source_tree(model / "libs" / "delta", "delta")
    flag = tmp_path / "build-code-ran"
    backend = tree / "intree_backend.py"
    backend.write_text(f"open({str(flag)!r}, 'w').close()\n" + backend.read_text())
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "requirements.txt", "./libs/delta", "only-binary")
    assert not flag.exists()
    assert not (model / ".carton" / "carton.lock").exists()


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("no-requirements", ["requirements.txt", "not found"]),
        ("invalid-line", ["requirements.txt", "alpha==!!"]),
        ("unknown-package", ["no-such-package"]),
        ("no-entrypoint", ["pyproject.toml", "tool.carton.entrypoint"]),
        ("python-missing", ["tool.carton.python", "3.99"]),
        ("hash-mismatch", ["alpha"]),
    ],
)
def test_bad_input_is_one_clear_error(case: str, fragments: list[str], tmp_path: Path,
                                      private: PackageIndex,
                                      hermetic_env: dict[str, str]) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    requirements = {"invalid-line": "alpha==!!\n", "unknown-package": "no-such-package\n"}
    carton = {"no-entrypoint": 'requirements = "requirements.txt"\n',
              "python-missing": 'entrypoint = "model:main"\npython = ["3.99"]\n'}
    model = write_model(tmp_path / "model", requirements.get(case, "alpha\n"),
                        carton=carton.get(case, 'entrypoint = "model:main"\n'))
    if case == "no-requirements":
        (model / "requirements.txt").unlink()
    if case == "hash-mismatch":
        private.wrong_hashes[wheel.name] = "0" * 64
    for command in ("lock", "pack"):
        proc = run_cli(hermetic_env, command, model)
        assert proc.returncode == 1, proc.stderr
        assert_one_line_error(proc.stderr, *fragments)
        assert_nothing_written(model)


def test_failed_relock_leaves_the_old_lock_untouched(tmp_path: Path, pypi: PackageIndex,
                                                     hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    lock_ok(hermetic_env, model)
    before = (model / ".carton" / "carton.lock").read_bytes()
    (model / "requirements.txt").write_text("alpha\nno-such-package\n")
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 1
    assert (model / ".carton" / "carton.lock").read_bytes() == before
    assert not list(model.rglob(".carton-tmp-*"))


@pytest.mark.parametrize(("content", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b'{"lock-version": 2, "requirements": {}, "environments": []}', "lock-version"),
])
def test_unreadable_lock_is_refused(content: bytes, fragment: str, tmp_path: Path,
                                    hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "")
    (model / ".carton").mkdir()
    (model / ".carton" / "carton.lock").write_bytes(content)
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "carton.lock", fragment)
    assert (model / ".carton" / "carton.lock").read_bytes() == content


def test_empty_requirements_lock_an_empty_section(tmp_path: Path,
                                                  hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "# nothing yet\n")
    lock_ok(hermetic_env, model)
    (env,) = lock_json(model)["environments"]
    assert env["packages"] == []
    assert env["id"] == f"cp{sys.version_info[0]}{sys.version_info[1]}-{sys.platform}-" + \
        env["marker-environment"]["platform_machine"]


def test_in_process_upgrade_request(tmp_path: Path, pypi: PackageIndex,
                                    use_hermetic_env: None) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    config = load_config(model)
    assert lock_model(config).environments[0].packages[0].version == "1.0"
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.1"))
    assert lock_model(config).environments[0].packages[0].version == "1.0"
    lock = lock_model(config, LockRequest(upgrade_packages=("ALPHA",)))
    assert lock.environments[0].packages[0].version == "1.1"
    assert load_lock(model / ".carton" / "carton.lock") == lock


def test_failed_build_leaves_no_orphaned_bundled_wheels(
        tmp_path: Path, private: PackageIndex, hermetic_env: dict[str, str]) -> None:
    private.add(make_wheel(tmp_path / "w", "beta", "2.0"))
    model = write_model(tmp_path / "model", "beta\n./libs/broken\n")
    tree = write_source_tree(model / "libs" / "broken", "broken")
    backend = tree / "intree_backend.py"
    backend.write_text(backend.read_text().replace(
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n",
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        "    raise RuntimeError('this project does not build')\n"))
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "cannot build a wheel", "broken")
    assert_nothing_written(model)
    assert not list((model / ".carton").rglob("METADATA"))


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_vcs_requirement_is_built_at_its_commit(tmp_path: Path,
                                                hermetic_env: dict[str, str]) -> None:
    repo = write_source_tree(tmp_path / "repo", "epsilon", "0.5")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    model = write_model(tmp_path / "model", f"git+file://{repo}#egg=epsilon\n")
    lock_ok(hermetic_env, model)
    pkg = packages(model)["epsilon"]
    vcs = pkg["tool"]["carton"]["built-from"]["vcs"]
    assert vcs["type"] == "git"
    assert vcs["commit-id"] == commit
    assert vcs["path"] == str(repo)
    assert (model / pkg["wheels"][0]["path"]).is_file()
    assert pkg["tool"]["carton"]["imports"] == ["epsilon"]


def test_resolves_where_pip_insists_on_a_virtualenv(tmp_path: Path, pypi: PackageIndex,
                                                   hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n")
    lock_ok({**hermetic_env, "PIP_REQUIRE_VIRTUALENV": "1"}, model)
    assert packages(model)["alpha"]["version"] == "1.0"


def test_two_runs_on_one_folder_at_once(tmp_path: Path, pypi: PackageIndex,
                                        private: PackageIndex,
                                        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    private.add(make_sdist(tmp_path / "s", "gamma", "1.0"))
    model = write_model(tmp_path / "model", "alpha\ngamma\n")
    procs = [subprocess.Popen([sys.executable, "-m", "carton_backend", "pack", str(model),
                               "-o", str(tmp_path / f"out{n}")], env=hermetic_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(3)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    cartons = {(tmp_path / f"out{n}" / "demo_model-0.1.0.carton").read_bytes() for n in range(3)}
    assert len(cartons) == 1, "the three runs must agree byte for byte"
    assert set(packages(model)) == {"alpha", "gamma"}
    assert not list(model.rglob(".carton-tmp-*"))
    bundled = list((model / ".carton" / "bundled_wheels").rglob("*.whl"))
    assert len(bundled) == 1


def test_a_pinned_yanked_wheel_is_locked_with_a_warning(tmp_path: Path, pypi: PackageIndex,
                                                        hermetic_env: dict[str, str]) -> None:
    """THREATS S2: PEP 592 lets a lock pin a yanked file; the pack says so."""
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    pypi.yanked.add(wheel.name)
    model = write_model(tmp_path / "model", "alpha==1.0\n")
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode == 0, proc.stderr
    assert "yanked" in proc.stderr and "alpha" in proc.stderr
    assert packages(model)["alpha"]["version"] == "1.0"


def test_lock_check_says_current_or_why_stale_and_changes_nothing(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "-r base.txt\n")
    (model / "base.txt").write_text("alpha\n")
    proc = run_cli(hermetic_env, "lock", "--check", model)
    assert (proc.returncode, proc.stdout.splitlines()[0]) == (1, "stale: there is no "
                                                                 ".carton/carton.lock")
    assert not (model / ".carton").exists()
    lock_ok(hermetic_env, model)
    proc = run_cli(hermetic_env, "lock", "--check", model)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["current", str(model / "requirements.txt"),
                                        str(model / "base.txt")]
    (model / "base.txt").write_text("alpha\nbeta\n")
    before = (model / ".carton" / "carton.lock").read_bytes()
    proc = run_cli(hermetic_env, "lock", "--check", model)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "stale: requirements.txt (or a file it includes) changed"
    assert (model / ".carton" / "carton.lock").read_bytes() == before


def add_platform_wheels(tmp_path: Path, pypi: PackageIndex) -> None:
    """click pulls colorama on Windows only; `native` has a wheel per platform."""
    pypi.add(make_wheel(tmp_path / "w", "click", "8.1.8",
                        requires=["colorama ; platform_system == 'Windows'"]))
    pypi.add(make_wheel(tmp_path / "w", "colorama", "0.4.6"))
    here = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for platform in ("win_amd64", "manylinux_2_17_aarch64", "manylinux_2_17_x86_64"):
        pypi.add(make_wheel(tmp_path / "w", "native", "1.0", tag=f"{here}-{here}-{platform}"))


def test_platforms_lock_a_section_each_without_running_there(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    from carton_backend.resolution.platforms import parse_platform

    add_platform_wheels(tmp_path, pypi)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    tag = here.replace(".", "")
    model = write_model(tmp_path / "model", "click\nnative\n", carton=(
        'entrypoint = "model:main"\n'
        'platforms = ["x86_64-pc-windows-msvc", "aarch64-manylinux_2_28"]\n'))
    lock_ok(hermetic_env, model)
    envs = lock_json(model)["environments"]
    assert [e["id"] for e in envs] == [f"cp{tag}-linux-{'x86_64'}",
                                       f"cp{tag}-x86_64-pc-windows-msvc",
                                       f"cp{tag}-aarch64-manylinux_2_28"]
    assert [e.get("platform") for e in envs] == [None, "x86_64-pc-windows-msvc",
                                                 "aarch64-manylinux_2_28"]
    for env in envs[1:]:
        assert env["marker-environment"] == parse_platform(env["platform"]).marker_environment(
            here)
    names = [[(p["name"], p["wheels"][0]["name"]) for p in e["packages"]] for e in envs]
    assert names[1] == [("click", "click-8.1.8-py3-none-any.whl"),
                        ("colorama", "colorama-0.4.6-py3-none-any.whl"),
                        ("native", f"native-1.0-cp{tag}-cp{tag}-win_amd64.whl")]
    assert names[2][1] == ("native", f"native-1.0-cp{tag}-cp{tag}-manylinux_2_17_aarch64.whl")
    assert all("url" in p["wheels"][0] for e in envs for p in e["packages"])
    assert "platform_machine == 'AMD64'" in envs[1]["marker"]
    # Complete: the fast path. A platform taken out: its section goes, nothing resolved.
    pypi.reset_counts()
    lock_ok(hermetic_env, model)
    assert pypi.requests == []
    pyproject = model / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"x86_64-pc-windows-msvc", ', ""))
    check = run_cli(hermetic_env, "lock", "--check", model)
    assert check.returncode == 1
    assert "no longer lists x86_64-pc-windows-msvc" in check.stdout + check.stderr
    stderr = lock_ok(hermetic_env, model)
    assert [e["id"] for e in lock_json(model)["environments"]] == [envs[0]["id"], envs[2]["id"]]
    assert f"dropped lock section cp{tag}-x86_64-pc-windows-msvc" in stderr
    assert pypi.requests == []


def test_an_unknown_platform_is_one_line_naming_the_key(tmp_path: Path,
                                                        hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "", carton=(
        'entrypoint = "model:main"\nplatforms = ["x86_64-linux"]\n'))
    proc = run_cli(hermetic_env, "lock", model)
    assert proc.returncode != 0
    assert_one_line_error(proc.stderr, "tool.carton.platforms", "'x86_64-linux'",
                          "x86_64-manylinux_2_N")


def test_a_carton_locked_elsewhere_runs_from_the_section_for_this_platform(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """A lock made on another machine, with sections for Windows, Linux aarch64 and Linux
    x86_64 (manylinux 2.17) but none for the building interpreter: here, the runtime
    takes the x86_64 section (marker and tags), and no other."""
    import platform

    if platform.machine() != "x86_64" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the Linux section is for glibc x86_64")
    add_platform_wheels(tmp_path, pypi)
    model = write_model(tmp_path / "model", "click\nnative\n", carton=(
        'entrypoint = "model:main"\nplatforms = ["x86_64-pc-windows-msvc", '
        '"aarch64-manylinux_2_28", "x86_64-manylinux_2_17"]\n'),
        files={"model.py": "import native, click, sys\n"
                           "def main():\n"
                           "    print(native.__file__.split('/')[-3][:12], 'colorama' in "
                           "sys.modules)\n"})
    lock_ok(hermetic_env, model)
    lock_file = model / ".carton" / "carton.lock"
    data = json.loads(lock_file.read_text())
    data["environments"] = [e for e in data["environments"] if e.get("platform")]  # made elsewhere
    lock_file.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n")
    from carton_backend.packing.pack import write_carton

    carton = write_carton(load_config(model), load_lock(lock_file), tmp_path / "dist")
    with zipfile.ZipFile(carton) as zf:
        packed = json.loads(zf.read("model/.carton/carton.lock"))
    assert [e.get("platform") for e in packed["environments"]] == [
        "x86_64-pc-windows-msvc", "aarch64-manylinux_2_28", "x86_64-manylinux_2_17"]
    run = subprocess.run([sys.executable, "-m", "carton_hook", "-v", str(carton)],
                         env={**hermetic_env, "CARTON_NO_PACK": "1"}, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    x86 = next(e for e in data["environments"] if e["platform"] == "x86_64-manylinux_2_17")
    native = next(p for p in x86["packages"] if p["name"] == "native")
    assert run.stdout.split() == [native["wheels"][0]["hashes"]["sha256"][:12], "False"]


def pip_downloads_in_dry_runs() -> bool:
    """pip before 25.3 downloads every wheel it resolves, also with `--dry-run`."""
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("pip")) < Version("25.3")


def test_a_foreign_wheel_is_read_by_ranges_and_recorded_as_a_whole_read_would(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """Its directory and metadata, a small part of it: the lock entry is the one reading
    it whole gives (its links to other wheels' libraries aside: there are none here)."""
    import os

    here = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    files = {"big/__init__.py": "", "big/weights.bin": os.urandom(2_000_000)}
    win = pypi.add(make_wheel(tmp_path / "w", "big", "1.0", files,
                              tag=f"{here}-{here}-win_amd64"))
    pypi.add(make_wheel(tmp_path / "w", "big", "1.0", files,
                        tag=f"{here}-{here}-manylinux_2_17_x86_64"))
    model = write_model(tmp_path / "model", "big\n", carton=(
        'entrypoint = "model:main"\nplatforms = ["windows"]\n'))
    pypi.core_metadata = True  # as PyPI: pip resolves without downloading wheels
    pypi.reset_counts()
    stderr = lock_ok(hermetic_env, model, "-v")
    assert 0 < pypi.sent_in_ranges[win.name] < win.stat().st_size / 10, pypi.sent
    # Whole downloads: none by carton; pip before 25.3 downloads what it resolves even in
    # a dry run with the index's metadata (pip's #12603), pip 25.3 and later does not.
    whole = (pypi.sent[win.name] - pypi.sent_in_ranges[win.name]) / win.stat().st_size
    assert whole == (1 if pip_downloads_in_dry_runs() else 0), pypi.sent
    assert "by byte ranges" in stderr
    ranged = packages(model, 1)["big"]
    assert ranged["wheels"][0] == {"name": win.name, "size": win.stat().st_size,
                                   "url": pypi.file_url(win.name),
                                   "hashes": {"sha256": sha(win)}}
    assert ranged["tool"]["carton"]["imports"] == ["big"]
    meta = model / ".carton" / "dist-info" / sha(win) / "big-1.0.dist-info" / "METADATA"
    assert meta.read_bytes() == zipfile.ZipFile(win).read("big-1.0.dist-info/METADATA")


def test_a_linux_section_whose_wheels_may_link_across_reads_them_whole(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """A wheel with a `lib*.so` outside `*.libs/` (torch's, the nvidia wheels'): on
    Linux another wheel's extensions may link to it, and what they need is read from
    their ELF files, so the section's wheels are read whole; on Windows, never."""
    import os

    here = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for tag in ("manylinux_2_17_aarch64", "win_amd64", "manylinux_2_17_x86_64"):
        pypi.add(make_wheel(tmp_path / "w", "prov", "1.0", {
            "prov/__init__.py": "", "prov/lib/libprov.so.1": os.urandom(600_000)},
            tag=f"{here}-{here}-{tag}"))
    model = write_model(tmp_path / "model", "prov\n", carton=(
        'entrypoint = "model:main"\nplatforms = ["aarch64-manylinux_2_28", "windows"]\n'))
    pypi.core_metadata = True
    pypi.reset_counts()
    stderr = lock_ok(hermetic_env, model, "-v")
    arm = next(n for n in pypi.sent if "aarch64" in n and n.endswith(".whl"))
    win = next(n for n in pypi.sent if "win_amd64" in n and n.endswith(".whl"))
    pips = 1 if pip_downloads_in_dry_runs() else 0
    assert pypi.sent[arm] - pypi.sent_in_ranges.get(arm, 0) == (
        (1 + pips) * (tmp_path / "w" / arm).stat().st_size)
    assert pypi.sent[win] - pypi.sent_in_ranges[win] == pips * (
        tmp_path / "w" / win).stat().st_size
    assert "reading 1 wheels whole" in stderr


def test_lock_platform_adds_a_section_until_the_requirements_change(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """`lock --platform NAME --python 3.N`: a section for that pair, no interpreter of
    that version needed; later runs without the options keep it (nothing to resolve)
    until the requirements change, which drops it with a word on how to add it back."""
    add_platform_wheels(tmp_path, pypi)
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    pypi.add(make_wheel(tmp_path / "w", "native", "1.0", tag="cp399-cp399-win_amd64"))
    model = write_model(tmp_path / "model", "click\n")
    lock_ok(hermetic_env, model, "--platform", "windows", "--python", "3.99")
    envs = lock_json(model)["environments"]
    assert [e["id"] for e in envs] == [f"{tag}-linux-x86_64", "cp399-windows"]
    assert [p["name"] for p in envs[1]["packages"]] == ["click", "colorama"]
    assert "platforms" not in lock_json(model)["settings"]
    pypi.reset_counts()
    lock_ok(hermetic_env, model)
    assert pypi.requests == [] and lock_json(model)["environments"] == envs
    assert run_cli(hermetic_env, "lock", "--check", model).returncode == 0
    (model / "requirements.txt").write_text("click\ncolorama\n")
    stderr = lock_ok(hermetic_env, model)
    assert [e["id"] for e in lock_json(model)["environments"]] == [f"{tag}-linux-x86_64"]
    assert ("dropped lock section cp399-windows: it is not among this build's targets; lock "
            "again with --platform windows --python 3.99 to add it back") in stderr
    bad = run_cli(hermetic_env, "lock", "--platform", "windows", "--python", "3", model)
    assert bad.returncode == 2 and "'3' is not a MAJOR.MINOR version like 3.12" in bad.stderr


def test_foreign_sections_are_reproducible_listed_and_exported(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """Locked again from nothing: the same bytes. `info` lists every section;
    `export-pylock` writes them all, each package with its sections' markers, as a file
    packaging's PEP 751 reader takes; `check-reproducible` packs them twice alike."""
    from packaging.pylock import Pylock

    from ...conftest import run_hook

    add_platform_wheels(tmp_path, pypi)
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    model = write_model(tmp_path / "model", "click\nnative\n", carton=(
        'entrypoint = "model:main"\nplatforms = ["windows", "aarch64-manylinux_2_28"]\n'))
    pypi.core_metadata = True
    lock_ok(hermetic_env, model)
    first = (model / ".carton" / "carton.lock").read_bytes()
    shutil.rmtree(model / ".carton")
    lock_ok(hermetic_env, model)
    assert (model / ".carton" / "carton.lock").read_bytes() == first
    info = run_hook(hermetic_env, "info", model)
    assert info.returncode == 0, info.stderr
    assert (f"lock sections:   {tag}-linux-x86_64 (applies here), {tag}-windows, "
            f"{tag}-aarch64-manylinux_2_28") in info.stdout
    export = run_cli(hermetic_env, "export-pylock", model)
    assert export.returncode == 0, export.stderr
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    data = tomllib.loads((model / "pylock.toml").read_text())
    Pylock.from_dict(data)  # valid PEP 751
    entries = {p["name"]: p for p in data["packages"]}
    assert "platform_machine == 'AMD64'" in entries["colorama"]["marker"]
    assert "aarch64" not in entries["colorama"]["marker"]
    assert "marker" not in entries["click"]  # in every section
    assert sorted(w["name"].rsplit("-", 1)[-1] for w in entries["native"]["wheels"]) == [
        "manylinux_2_17_aarch64.whl", "manylinux_2_17_x86_64.whl", "win_amd64.whl"]
    repro = run_cli(hermetic_env, "check-reproducible", model)
    assert repro.returncode == 0, repro.stderr
    assert repro.stdout.startswith("reproducible: two builds of ")


def test_a_foreign_wheel_already_downloaded_whole_is_not_read_again(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """A platform whose wheels are the building section's (this machine's own kind):
    those files are here whole already, and are checked whole, with no range request."""
    import platform

    if platform.machine() != "x86_64" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the building section's wheels are manylinux x86_64 ones")
    add_platform_wheels(tmp_path, pypi)
    model = write_model(tmp_path / "model", "native\n", carton=(
        'entrypoint = "model:main"\nplatforms = ["x86_64-manylinux_2_17"]\n'))
    pypi.core_metadata = True
    pypi.reset_counts()
    lock_ok(hermetic_env, model)
    envs = lock_json(model)["environments"]
    assert [e.get("platform") for e in envs] == [None, "x86_64-manylinux_2_17"]
    assert envs[0]["packages"] == envs[1]["packages"]
    assert pypi.sent_in_ranges == {}
