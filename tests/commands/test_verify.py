"""`python -m carton_hook verify`: the carton, its bundled wheels and its cache entries
(THREATS C3, H5, S2, and the bad-carton cases)."""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.formats.lockfile import bundled_path

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": "import alpha, secret\ndef main():\n    print(alpha.VALUE, secret.WHO)\n"}


def verify(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_hook(env, "verify", *args)


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
           build_carton: Callable[..., Path]) -> Path:
    """A carton with one recorded wheel (alpha) and one bundled wheel (secret)."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", files={
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n", "alpha/data.txt": "data\n"}))
    private.add(make_wheel(tmp_path / "w", "secret", "2.0", {"secret.py": "WHO = 'bundled'\n"}))
    return build_carton("alpha\nsecret\n", MODEL)


def folder_of(tmp_path: Path) -> Path:
    return tmp_path / "models" / "demo-model"


def test_a_good_carton_verifies(carton: Path, hermetic_env: dict[str, str]) -> None:
    proc = verify(hermetic_env, carton)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(f"carton: verify {carton}: OK (")
    assert "1 bundled wheels" in proc.stdout


def test_a_model_folder_verifies(carton: Path, tmp_path: Path,
                                 hermetic_env: dict[str, str]) -> None:
    proc = verify(hermetic_env, folder_of(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def rewrite(carton: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    """Rewrite the archive's members through `change` (None drops a member)."""
    with zipfile.ZipFile(carton) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(carton, "w") as zf:
        for info, data in members:
            new = change(info.filename, data)
            if new is not None:
                zf.writestr(info, new)


def test_a_member_that_does_not_match_manifest(carton: Path,
                                               hermetic_env: dict[str, str]) -> None:
    rewrite(carton, lambda name, data: data + b"# edited\n" if name == "model/model.py" else data)
    proc = verify(hermetic_env, carton)
    assert proc.returncode == 1
    assert "model/model.py does not match its MANIFEST hash" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_truncated_archive(carton: Path, hermetic_env: dict[str, str]) -> None:
    data = carton.read_bytes()
    carton.write_bytes(data[: len(data) // 2])
    proc = verify(hermetic_env, carton)
    assert proc.returncode == 1
    assert "not a .carton archive" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_tampered_bundled_wheel(carton: Path, tmp_path: Path,
                                  hermetic_env: dict[str, str]) -> None:
    folder = folder_of(tmp_path)
    wheel = next((folder / ".carton" / "bundled_wheels").rglob("*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    proc = verify(hermetic_env, folder)
    assert proc.returncode == 1
    assert "sha256 is" in proc.stdout and "the lock says" in proc.stdout


def test_a_bundled_wheel_whose_record_lies(carton: Path, tmp_path: Path,
                                           hermetic_env: dict[str, str]) -> None:
    """The lock matches the file, but the file does not match its own RECORD (H5)."""
    import hashlib

    folder = folder_of(tmp_path)
    bad = make_wheel(tmp_path / "bad", "secret", "2.0", {"secret.py": "WHO = 'bundled'\n"},
                     extra_members={"secret_extra.py": b"print('not in RECORD')\n"})
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    relpath = bundled_path(sha, bad.name)
    (folder / relpath).parent.mkdir(parents=True)
    (folder / relpath).write_bytes(bad.read_bytes())
    lock_file = folder / ".carton" / "carton.lock"
    lock = json.loads(lock_file.read_text())
    for env in lock["environments"]:
        for package in env["packages"]:
            if package["name"] == "secret":
                package["wheels"][0].update(path=relpath, size=bad.stat().st_size,
                                            hashes={"sha256": sha})
    lock_file.write_text(json.dumps(lock))
    proc = verify(hermetic_env, folder)
    assert proc.returncode == 1
    assert "secret_extra.py" in proc.stdout and "RECORD" in proc.stdout


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda lock: lock.update({"lock-version": 7}), "lock-version: version 7 is not supported"),
    (lambda lock: lock["environments"][0]["packages"][0]["wheels"][0].update(
        name="alpha-1.0.tar.gz"), "not a wheel filename"),
    (lambda lock: lock["environments"][0]["packages"][0]["wheels"][0].update(
        url="file:///etc/passwd"), "file:"),
    (lambda lock: lock["environments"][0]["packages"][0]["wheels"][0].update(
        url="http://example.org/alpha-1.0-py3-none-any.whl"), "http:"),
], ids=["unknown-version", "sdist", "file-url", "plain-http"])
def test_a_bad_lock_is_named(carton: Path, tmp_path: Path, hermetic_env: dict[str, str],
                             edit: Callable[[dict[str, object]], None], fragment: str) -> None:
    lock_file = folder_of(tmp_path) / ".carton" / "carton.lock"
    lock = json.loads(lock_file.read_text())
    edit(lock)
    lock_file.write_text(json.dumps(lock))
    proc = verify(hermetic_env, folder_of(tmp_path))
    assert proc.returncode == 1
    assert fragment in proc.stdout, proc.stdout


# ---------------------------------------------------------------- the cache (C3)


def entries(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["CARTON_HOME"]).glob("pythonpackages/*/[0-9a-f]*"))


def test_cache_entries_are_rehashed_and_edits_found(
        carton: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    assert run_hook(hermetic_env, carton).returncode == 0  # fills the cache
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 0, proc.stdout
    assert "2 cache entries" in proc.stdout
    alpha = next(e for e in entries(hermetic_env) if (e / "alpha").is_dir())
    (alpha / "alpha" / "data.txt").write_text("edited\n")
    (alpha / "alpha" / "planted.py").write_text("print('planted')\n")
    # A .pyc compiled from other code, under a name the source compiles to (not the
    # import's own: a run's compile-ahead helper may still be renaming a copy over it).
    other = alpha / "other.py"
    other.write_text("VALUE = 'not alpha'\n")
    real_pyc = next((alpha / "alpha" / "__pycache__").glob("__init__.*.pyc"))
    py_compile.compile(str(other), cfile=str(real_pyc.with_name(
        real_pyc.name.replace(".pyc", ".opt-1.pyc"))), optimize=1)
    other.unlink()
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any("alpha/data.txt: edited" in line for line in lines)
    assert any("alpha/planted.py: not in RECORD" in line for line in lines)
    assert any("__init__" in line and "differs from its source" in line for line in lines)
    assert "3 problem(s)" in lines[-1] and "2 cache entries checked" in lines[-1]
    proc = verify(hermetic_env, "--cache", "--remove", carton)
    assert proc.returncode == 1 and "removed 1 bad cache entries" in proc.stdout
    assert not alpha.exists()
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "alpha 1.0 bundled")
    assert sum("/files/" in r for r in pypi.requests) == 1  # installed again
    assert verify(hermetic_env, "--cache", carton).returncode == 0


def test_numbas_cache_beside_an_installed_module_is_left_to_numba(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    """numba's `cache=True` writes its index and compiled code into the `__pycache__` of
    the module whose function it compiles (in the entry: umap-learn, pynndescent); it
    checks them against the source itself. Anything else there is still a finding."""
    assert run_hook(hermetic_env, carton).returncode == 0
    alpha = next(e for e in entries(hermetic_env) if (e / "alpha").is_dir())
    cache = alpha / "alpha" / "__pycache__"
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    (cache / f"__init__.total-4.{tag}.nbi").write_bytes(b"index")
    (cache / f"__init__.total-4.{tag}.1.nbc").write_bytes(b"code")
    (cache / f"__init__.Model.fit-12.{tag}.2.nbc").write_bytes(b"code")
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 0, proc.stdout
    (cache / f"ghost.total-4.{tag}.nbi").write_bytes(b"no ghost.py")  # of no module
    (cache / "helper.so").write_bytes(b"not numba's")
    (alpha / "__pycache__").mkdir()
    (alpha / "__pycache__" / f"alpha.total-4.{tag}.nbi").write_bytes(b"alpha.py? no")
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 1
    found = sorted(line.split(": ")[1] for line in proc.stdout.splitlines()
                   if "not in RECORD" in line)
    assert found == [f"__pycache__/alpha.total-4.{tag}.nbi",
                     f"alpha/__pycache__/ghost.total-4.{tag}.nbi", "alpha/__pycache__/helper.so"]


@pytest.mark.parametrize(("relpath", "numbas"), [
    ("pkg/__pycache__/mod.f-3.py311.nbi", True),
    ("pkg/__pycache__/mod.Model.fit-12.py311.2.nbc", True),
    ("pkg/__pycache__/__init__.f-3.py312d.nbi", True),
    ("__pycache__/top.f-1.py311.nbi", True),  # beside a module at the entry's root
    ("pkg/__pycache__/gone.f-3.py311.nbi", False),  # beside no module of the entry
    ("pkg/__pycache__/mod.f-3.py311.nbx", False),
    ("pkg/__pycache__/mod.py311.nbi", False),
    ("pkg/mod.f-3.py311.nbi", False),  # not in a __pycache__
    ("pkg/__pycache__/sub/mod.f-3.py311.nbi", False),
])
def test_what_counts_as_numbas_cache(relpath: str, numbas: bool) -> None:
    from carton_hook.commands.verify import _numba_cache

    listed = {"pkg/mod.py", "pkg/__init__.py", "top.py"}
    assert _numba_cache(relpath, listed) is numbas


def test_a_pyc_that_is_not_compiled_code_is_a_finding(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    assert run_hook(hermetic_env, carton).returncode == 0
    alpha = next(e for e in entries(hermetic_env) if (e / "alpha").is_dir())
    real_pyc = next((alpha / "alpha" / "__pycache__").glob("__init__.*.pyc"))
    # Beside the import's own .pyc, under a legitimate name no run writes (a run's
    # compile-ahead helper may still be renaming a fresh copy over the import's one).
    crafted = real_pyc.with_name(real_pyc.name.replace(".pyc", ".opt-2.pyc"))
    crafted.write_bytes(real_pyc.read_bytes()[:16] + b"\xff" * 64)  # not marshal data
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 1
    assert "alpha/__pycache__/__init__" in proc.stdout
    assert "unreadable compiled code" in proc.stdout


def test_a_pyc_with_bytes_after_its_code_is_a_finding(
        carton: Path, hermetic_env: dict[str, str]) -> None:
    """The import runs the code and ignores what follows it; verify says the file was
    written to all the same."""
    assert run_hook(hermetic_env, carton).returncode == 0
    assert verify(hermetic_env, "--cache", carton).returncode == 0
    alpha = next(e for e in entries(hermetic_env) if (e / "alpha").is_dir())
    real_pyc = next((alpha / "alpha" / "__pycache__").glob("__init__.*.pyc"))
    # Beside the import's own .pyc, as above: the same code, then 5 more bytes.
    grown = real_pyc.with_name(real_pyc.name.replace(".pyc", ".opt-2.pyc"))
    source = alpha / "alpha" / "__init__.py"
    py_compile.compile(str(source), cfile=str(grown), optimize=2)
    assert verify(hermetic_env, "--cache", carton).returncode == 0  # a legitimate name
    grown.write_bytes(grown.read_bytes() + b"extra")
    proc = verify(hermetic_env, "--cache", carton)
    assert proc.returncode == 1
    assert "5 bytes after its compiled code" in proc.stdout, proc.stdout


def test_usage_errors(hermetic_env: dict[str, str], carton: Path) -> None:
    assert verify(hermetic_env).returncode == 2
    assert verify(hermetic_env, "--remove", carton).returncode == 2
    assert verify(hermetic_env, "--bogus", carton).returncode == 2
    proc = verify(hermetic_env, "--help")
    assert proc.returncode == 0 and "usage: python -m carton_hook verify" in proc.stdout


def test_a_model_named_like_the_command_still_runs(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    named = tmp_path / "verify"
    named.write_bytes(carton.read_bytes())
    proc = run_hook(hermetic_env, "./verify", cwd=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, "alpha 1.0 bundled"), proc.stderr
