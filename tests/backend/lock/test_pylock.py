"""`python -m carton_backend export-pylock`: PEP 751 files that packaging.pylock accepts
and that name exactly the locked files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from carton_backend.errors import BuildError
from carton_backend.lock.pylock import _string, dumps, pylock_data
from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel, load_lock

from ...conftest import run_cli
from ...factory import make_wheel, write_model
from ...indexserver import PackageIndex

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from packaging.pylock import Pylock


@pytest.fixture
def folder(tmp_path: Path, pypi: PackageIndex, private: PackageIndex) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", requires=["beta"]))
    pypi.add(make_wheel(tmp_path / "w", "beta", "2.0"))
    private.add(make_wheel(tmp_path / "w", "secret", "3.0"))  # bundled
    return write_model(tmp_path / "m", "alpha\nsecret\n")


def test_export_maps_every_locked_wheel(folder: Path, hermetic_env: dict[str, str]) -> None:
    proc = run_cli(hermetic_env, "export-pylock", folder)
    assert proc.returncode == 0, proc.stderr
    out = folder / "pylock.toml"
    assert proc.stdout.strip() == str(out)
    data = tomllib.loads(out.read_text())
    Pylock.from_dict(data)  # raises if not PEP 751
    (section,) = load_lock(folder / ".carton" / "carton.lock").environments
    assert data["lock-version"] == "1.0" and data["environments"] == [section.marker]
    by_name = {p["name"]: p for p in data["packages"]}
    assert sorted(by_name) == ["alpha", "beta", "secret"]
    assert by_name["alpha"]["dependencies"] == [{"name": "beta"}]
    for package in section.packages:
        (wheel,) = by_name[package.name]["wheels"]
        assert wheel["hashes"] == {"sha256": package.wheel.sha256}
        assert wheel["size"] == package.wheel.size and "marker" not in by_name[package.name]
        if package.wheel.bundled:
            assert "url" not in wheel
            assert (out.parent / wheel["path"]).read_bytes()  # relative to the file
            assert wheel["path"] == package.wheel.path
        else:
            assert wheel["url"] == package.wheel.url and "path" not in wheel
    if hasattr(Pylock, "select"):  # packaging 26.1+: what an installer would pick here
        chosen = {p.name: w for p, w in Pylock.from_dict(data).select()}
        assert {n: w.hashes["sha256"] for n, w in chosen.items()} == {
            p.name: p.wheel.sha256 for p in section.packages}


def test_an_exported_pylock_beside_the_lock_leaves_the_carton_unchanged(
        tmp_path: Path, folder: Path, hermetic_env: dict[str, str]) -> None:
    """export-pylock writes into the model folder; the next pack must not take it in
    (the carton's bytes would change with every export)."""
    import hashlib

    def pack() -> str:
        out = tmp_path / "out"
        proc = run_cli(hermetic_env, "pack", folder, "-o", out)
        assert proc.returncode == 0, proc.stderr
        (carton,) = out.glob("*.carton")
        return hashlib.sha256(carton.read_bytes()).hexdigest()

    before = pack()
    for name in ("pylock.toml", "pylock.cp311.toml"):
        proc = run_cli(hermetic_env, "export-pylock", folder, "-o", folder / name)
        assert proc.returncode == 0, proc.stderr
    listed = run_cli(hermetic_env, "pack", "--list", folder).stdout
    assert "pylock" not in listed and "model.py" in listed
    assert pack() == before


def test_bundled_paths_are_relative_to_where_the_file_goes(
        tmp_path: Path, folder: Path, hermetic_env: dict[str, str]) -> None:
    out = tmp_path / "elsewhere" / "pylock.demo.toml"
    assert run_cli(hermetic_env, "export-pylock", folder, "-o", out).returncode == 0
    secret = next(p for p in tomllib.loads(out.read_text())["packages"]
                  if p["name"] == "secret")
    path = secret["wheels"][0]["path"]
    assert path.startswith("../m/.carton/bundled_wheels/")
    assert (out.parent / path).is_file()


def test_wrong_names_and_sections_are_refused(tmp_path: Path, folder: Path,
                                              hermetic_env: dict[str, str]) -> None:
    proc = run_cli(hermetic_env, "export-pylock", folder, "-o", tmp_path / "locked.toml")
    assert proc.returncode == 2 and "pylock.toml or pylock.NAME.toml" in proc.stderr
    proc = run_cli(hermetic_env, "export-pylock", folder, "--environment", "cp27-beos")
    assert proc.returncode == 1
    assert "no section 'cp27-beos' (it has: cp3" in proc.stderr and "Traceback" not in proc.stderr


def wheel(name: str, version: str) -> Wheel:
    filename = f"{name}-{version}-py3-none-any.whl"
    return Wheel(filename, f"{name}{version}".encode().hex().ljust(64, "0")[:64], 10,
                 url=f"https://files.example.org/{filename}")


def two_sections() -> Lock:
    a = Environment("cp310-linux-x86_64", "python_version == '3.10'", {}, (
        Package("alpha", "1.0", wheel("alpha", "1.0")),
        Package("six", "1.16", wheel("six", "1.16"))))
    b = Environment("cp313-linux-x86_64", "python_version == '3.13'", {}, (
        Package("alpha", "2.0", wheel("alpha", "2.0")),
        Package("six", "1.16", wheel("six", "1.16")),
        Package("beta", "1.0", wheel("beta", "1.0"))))
    return Lock("requirements.txt", "0" * 64, (a, b))


def test_all_sections_in_one_file_carry_markers(tmp_path: Path) -> None:
    data = pylock_data(two_sections(), tmp_path, tmp_path)
    Pylock.from_dict(tomllib.loads(dumps(data)))
    assert data["environments"] == ["python_version == '3.10'", "python_version == '3.13'"]
    rows = {(p["name"], p["version"]): p for p in data["packages"]}
    assert rows[("alpha", "1.0")]["marker"] == "(python_version == '3.10')"
    assert rows[("alpha", "2.0")]["marker"] == "(python_version == '3.13')"
    assert rows[("beta", "1.0")]["marker"] == "(python_version == '3.13')"
    assert "marker" not in rows[("six", "1.16")]  # in every section
    assert len(rows[("six", "1.16")]["wheels"]) == 1
    only = pylock_data(two_sections(), tmp_path, tmp_path, "cp313-linux-x86_64")
    assert [p["name"] for p in only["packages"]] == ["alpha", "beta", "six"]
    assert all("marker" not in p for p in only["packages"])
    with pytest.raises(BuildError, match="no section 'cp311-linux-x86_64'"):
        pylock_data(two_sections(), tmp_path, tmp_path, "cp311-linux-x86_64")


@pytest.mark.parametrize("text", ['a "quoted" \\ path', "tab\tnew\nline", "del\x7f", "ünï 🐍"])
def test_strings_survive_toml(text: str) -> None:
    assert tomllib.loads(f"key = {_string(text)}\n") == {"key": text}
