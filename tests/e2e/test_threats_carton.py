"""Bad cartons through `python -m carton_hook`: each is one clear error, before any
network use and before any of the model's code runs."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

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


def add_member(name: str, data: bytes, *, mode: int = 0o100644, deflate: bool = False,
               in_manifest: bool = True) -> Callable[[Path], None]:
    """Add one member (after the others, so that a duplicate is the copy zipfile reads),
    with its file type in `mode`, and MANIFEST written to match it."""
    def damage(carton: Path) -> None:
        with zipfile.ZipFile(carton) as zf:
            members = [(i, zf.read(i)) for i in zf.infolist()]
        manifest = {i.filename: hashlib.sha256(d).hexdigest() for i, d in members
                    if i.filename not in ("MANIFEST", "carton.toml")}
        if in_manifest:
            manifest[name] = hashlib.sha256(data).hexdigest()
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = mode << 16
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        text = "".join(f"{n}={h}\n" for n, h in sorted(manifest.items())).encode()
        with zipfile.ZipFile(carton, "w") as zf:
            for old, old_data in members:
                zf.writestr(old, text if old.filename == "MANIFEST" else old_data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns of a duplicate name
                zf.writestr(info, data)
    return damage


def damage_member(name: str, how: str) -> Callable[[Path], None]:
    """Damage one member's bytes where zipfile keeps them: `crc` flips a byte of its
    (stored) data, `deflate` writes it deflated and then breaks the stream, `method` sets
    a compression method no zip reader knows in both of its headers."""
    def damage(carton: Path) -> None:
        with zipfile.ZipFile(carton) as zf:
            members = [(i, zf.read(i)) for i in zf.infolist()]
        with zipfile.ZipFile(carton, "w") as zf:
            for info, data in members:
                if info.filename == name:
                    info.compress_type = (zipfile.ZIP_DEFLATED if how == "deflate"
                                          else zipfile.ZIP_STORED)
                zf.writestr(info, data)
        raw = bytearray(carton.read_bytes())
        with zipfile.ZipFile(carton) as zf:
            info = zf.getinfo(name)
        start = info.header_offset
        data_at = (start + 30 + int.from_bytes(raw[start + 26:start + 28], "little")
                   + int.from_bytes(raw[start + 28:start + 30], "little"))
        if how == "method":
            raw[start + 8:start + 10] = (99).to_bytes(2, "little")
            central = raw.find(b"PK\x01\x02")
            while raw[central + 46:central + 46 + len(name)] != name.encode():
                central = raw.find(b"PK\x01\x02", central + 1)
            raw[central + 10:central + 12] = (99).to_bytes(2, "little")
        else:
            for i in range(4):
                raw[data_at + 2 + i] ^= 0xFF
        carton.write_bytes(bytes(raw))
    return damage


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
    # The second copy is the one zipfile reads, and MANIFEST matches it.
    "duplicate-member": (add_member("model/model.py", b"print('second copy')\n"), "collide"),
    "case-collision": (add_member("model/MODEL.py", b"x = 1\n"), "collide"),
    "symlink-member": (add_member("model/link.py", b"/etc/passwd", mode=0o120777),
                       "is not a regular file"),
    "device-member": (add_member("model/dev", b"", mode=0o020644), "is not a regular file"),
    "fifo-member": (add_member("model/fifo", b"", mode=0o010644), "is not a regular file"),
    "file-and-folder": (add_member("model/model.py/x.py", b"x = 1\n"),
                        "is both a file and a folder"),
    "marker-member": (add_member("model/.carton-complete", b""), "reserved"),
    "metadata-pack-member": (add_member("model/.carton/Dist-Info.pack", b"mine"), "reserved"),
    "bomb-600-mib": (add_member("model/zeros.bin", bytes(600 << 20), deflate=True),
                     "more than the"),
    "member-outside-model": (add_member("evil.py", b"print('evil')\n"), "outside model/"),
    "bad-crc": (damage_member("model/model.py", "crc"), "model/model.py is damaged"),
    "corrupt-deflate-stream": (damage_member("model/model.py", "deflate"),
                               "model/model.py is damaged"),
    "unknown-compression-method": (damage_member("model/model.py", "method"),
                                   "compression method 99"),
    "requires-another-python": (lambda c: repack(c, lambda m: m.update({"carton.toml": re.sub(
        rb'requires-python = "[^"]*"', b'requires-python = ">=3.99"', m["carton.toml"])})),
        "requires Python >=3.99 (requires-python); this is Python"),
    # carton.toml is the carton's own: what it names is checked like a member's path.
    **{f"entrypoint-{kind}": (lambda c, value=value: repack(c, lambda m: m.update(
        {"carton.toml": re.sub(rb'entrypoint = "[^"]*"', b'entrypoint = "' + value + b'"',
                               m["carton.toml"])})), "carton.toml: `entrypoint`")
       for kind, value in (("absolute", b"/tmp/evil.py"), ("dotdot", b"../../../evil.py"),
                           ("relative-import", b"..model:main"), ("spaces", b"model :main"))},
    "garbage-marker": (
        lambda c: repack(c, edit_lock(lambda lock: lock["environments"][0].update(  # type: ignore[index]
            marker="python_version =="))), "is not a PEP 508 marker"),
    "no-environment": (
        lambda c: repack(c, edit_lock(lambda lock: lock.update(environments=[]))),
        "no environment is locked"),
    "wheel-name-with-newline": (
        lambda c: repack(c, edit_lock(lambda lock: first_wheel(lock).update(
            name="alpha-1.0-py3-none\nany.whl"))), "is not a wheel filename"),
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
    assert proc.stderr.startswith(f"carton: error: {carton}: "), "names the file run"
    if case == "requires-another-python":  # locked for 3.11 only: no Python to suggest
        assert "run it with" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert pypi.requests == [], "no network use"
    assert not (tmp_path / "model-code-ran").exists(), "no model code ran"
    assert not (tmp_path / "evil.py").exists()
    # No plan is left for it: the next run checks the archive again, and fails the same.
    assert not list(Path(hermetic_env["CARTON_HOME"]).glob("plans/*.plan"))
    again = run_hook(hermetic_env, carton)
    assert (again.returncode, again.stderr) == (1, proc.stderr)
    # The executable form says the same (a file that is no zip at all is Python's to
    # refuse); `verify` reports it; `info`, which reads only carton.toml and the lock,
    # either describes the carton or says in one line why not.
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], env=hermetic_env, capture_output=True,
                              text=True, check=False)

    if case not in ("truncated", "not-a-zip"):
        executable = run(str(carton))
        assert (executable.returncode, executable.stderr) == (1, proc.stderr)
    verify = run("-m", "carton_hook", "verify", str(carton))
    if case == "requires-another-python":  # not damaged: it runs on another Python
        assert verify.returncode == 0, verify
    else:
        assert verify.returncode == 1 and fragment in verify.stdout + verify.stderr, verify
    info = run("-m", "carton_hook", "info", str(carton))
    assert info.returncode in (0, 1) and "Traceback" not in info.stderr, info
    if info.returncode:
        assert len(info.stderr.strip().splitlines()) == 1, info.stderr
    assert pypi.requests == [], "no network use"
    assert not (tmp_path / "model-code-ran").exists(), "no model code ran"


@pytest.mark.parametrize("manifest_follows", [True, False],
                         ids=["manifest-rewritten", "manifest-kept"])
def test_a_bundled_wheel_that_is_not_the_locked_one_is_refused_before_the_model_runs(
        manifest_follows: bool, tmp_path: Path, private: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    private.add(make_wheel(tmp_path / "w", "beta", "1.0"))
    flag = tmp_path / "model-code-ran"
    carton = build_carton("beta\n", {"model.py": f"open({str(flag)!r}, 'w').close()\n"
                                                 "def main():\n    import beta\n"})
    with zipfile.ZipFile(carton) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    (bundled,) = [i.filename for i, _ in members if "/bundled_wheels/" in i.filename]
    other = make_wheel(tmp_path / "other", "beta", "1.0", {"beta/__init__.py": "EVIL = 1\n"})
    with zipfile.ZipFile(carton, "w") as zf:
        for info, data in members:
            if info.filename == bundled:
                data = other.read_bytes()
            elif info.filename == "MANIFEST" and manifest_follows:
                data = b"".join(
                    line if not line.startswith(bundled.encode() + b"=") else
                    f"{bundled}={hashlib.sha256(other.read_bytes()).hexdigest()}\n".encode()
                    for line in data.splitlines(keepends=True))
            zf.writestr(info, data)
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("carton: error: ") and bundled in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not flag.exists(), "no model code ran"
