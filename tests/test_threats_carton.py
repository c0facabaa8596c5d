"""Bad cartons through `python -m carton_hook`: each is one clear error, before any
network use and before any of the model's code runs."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import run_hook
from .factory import make_wheel
from .indexserver import PackageIndex

LOCK = "model/.carton/carton.lock"


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    flag = tmp_path / "model-code-ran"
    return build_carton("alpha\n", {"model.py": f"open({str(flag)!r}, 'w').close()\n"
                                                "import alpha\ndef main():\n    pass\n"})


def repack(carton: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Change the archive's members, then write MANIFEST to match (so that only the
    change itself is wrong)."""
    with zipfile.ZipFile(carton) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    change(members)
    members["MANIFEST"] = "".join(
        f"{name}={hashlib.sha256(data).hexdigest()}\n"
        for name, data in sorted(members.items()) if name not in ("MANIFEST", "carton.toml")
    ).encode()
    with zipfile.ZipFile(carton, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def edit_lock(edit: Callable[[dict[str, object]], None]) -> Callable[[dict[str, bytes]], None]:
    def change(members: dict[str, bytes]) -> None:
        lock = json.loads(members[LOCK])
        edit(lock)
        members[LOCK] = json.dumps(lock).encode()
    return change


def first_wheel(lock: dict[str, object]) -> dict[str, object]:
    envs = lock["environments"]
    assert isinstance(envs, list)
    wheel: dict[str, object] = envs[0]["packages"][0]["wheels"][0]
    return wheel


def truncate(carton: Path) -> None:
    carton.write_bytes(carton.read_bytes()[:-100])


def not_a_zip(carton: Path) -> None:
    carton.write_bytes(b"#!/bin/sh\necho hello\n" * 20)


def manifest_mismatch(carton: Path) -> None:
    with zipfile.ZipFile(carton) as zf:
        members = {i: zf.read(i) for i in zf.infolist()}
    with zipfile.ZipFile(carton, "w") as zf:
        for info, data in members.items():
            zf.writestr(info, data + b"\n" if info.filename == "model/model.py" else data)


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (truncate, "not a .carton archive"),
    "not-a-zip": (not_a_zip, "not a .carton archive"),
    "manifest-mismatch": (manifest_mismatch, "does not match its MANIFEST hash"),
    "unknown-lock-version": (
        lambda c: repack(c, edit_lock(lambda lock: lock.update({"lock-version": 2}))),
        "lock-version: version 2 is not supported"),
    "sdist-in-lock": (
        lambda c: repack(c, edit_lock(lambda lock: first_wheel(lock).update(
            name="alpha-1.0.tar.gz"))), "only wheels are locked"),
    "file-url": (
        lambda c: repack(c, edit_lock(lambda lock: first_wheel(lock).update(
            url="file:///tmp/alpha-1.0-py3-none-any.whl"))), "file:"),
    "plain-http-url": (
        lambda c: repack(c, edit_lock(lambda lock: first_wheel(lock).update(
            url="http://files.example.org/alpha-1.0-py3-none-any.whl"))), "http:"),
    "bundled-path-escapes": (
        lambda c: repack(c, edit_lock(lambda lock: (
            first_wheel(lock).pop("url"),
            first_wheel(lock).update(path="../../../../etc/alpha-1.0-py3-none-any.whl")))),
        "expected '.carton/bundled_wheels/"),
    "md5-instead-of-sha256": (
        lambda c: repack(c, edit_lock(lambda lock: first_wheel(lock).update(
            hashes={"sha256": "md5:" + "0" * 32}))), "expected 64 hexadecimal digits"),
    "member-escapes": (
        lambda c: repack(c, lambda m: m.update({"model/../evil.py": b"print('evil')\n"})),
        "unsafe"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_carton_is_one_clear_error_before_anything_runs(
        case: str, carton: Path, tmp_path: Path, pypi: PackageIndex,
        hermetic_env: dict[str, str]) -> None:
    damage, fragment = CASES[case]
    damage(carton)
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("carton: error: "), proc.stderr
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert pypi.requests == [], "no network use"
    assert not (tmp_path / "model-code-ran").exists(), "no model code ran"
    assert not (tmp_path / "evil.py").exists()
    # No plan is left for it: the next run checks the archive again, and fails the same.
    assert not list(Path(hermetic_env["CARTON_HOME"]).glob("plans/*.plan"))
    again = run_hook(hermetic_env, carton)
    assert (again.returncode, again.stderr) == (1, proc.stderr)
