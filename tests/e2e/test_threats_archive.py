"""Hostile wheels through both public paths (THREATS A1-A3, A5-A7, A9, A10, H5, H6): the
build CLI refuses them when locking, and a carton that bundles one anyway (edited after
packing) fails the import under the finder. The same validator serves both; nothing is
written outside the work folder and nothing enters the cache."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.formats.lockfile import bundled_path

from ..conftest import run_cli, run_hook
from ..factory import make_wheel, write_model
from ..indexserver import PackageIndex
from ..wheelzip import members, metadata, wheel_file, write_zip

NAME, VERSION = "secret", "2.0"
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"


def good_members(extra: dict[str, bytes] | None = None, *,
                 wheel_version: str = "1.0") -> list[tuple[str, bytes]]:
    """The members of a good secret-2.0 wheel (with `extra` files), RECORD computed."""
    return members({"secret.py": b"WHO = 'bundled'\n", **(extra or {})}, dist_info=DIST_INFO,
                   meta=metadata(NAME, VERSION), wheel=wheel_file(wheel_version))


def with_files(extra: dict[str, bytes]) -> Callable[[Path], Path]:
    return lambda d: write_zip(d / FILENAME, good_members(extra))


def symlink_member(d: Path) -> Path:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for name, data in good_members({"link.py": b"/etc/passwd"}):
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 if name == "link.py" else 0o100644) << 16
        entries.append((info, data))
    return write_zip(d / FILENAME, entries)


def duplicate_member(d: Path) -> Path:
    return write_zip(d / FILENAME, [("secret.py", b"print('first')\n"), *good_members()])


def declared_size_bomb(d: Path) -> Path:
    """A member whose declared size is 1 GiB (the bytes are small): refused on the
    declared sizes, before anything is unpacked."""
    path = write_zip(d / FILENAME, good_members({"blob.bin": b"\0" * 1000}))
    raw = bytearray(path.read_bytes())
    # The central directory record of blob.bin: its uncompressed size is at offset 24.
    at, patched = 0, 0
    while (at := raw.find(b"PK\x01\x02", at)) != -1:
        name_len = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46: at + 46 + name_len] == b"blob.bin":
            struct.pack_into("<I", raw, at + 24, 1 << 30)
            patched += 1
        at += 4
    assert patched == 1
    path.write_bytes(bytes(raw))
    return path


def record_mismatch(d: Path) -> Path:
    wheel = make_wheel(d / "tmp", NAME, VERSION, files={"secret.py": "WHO = 'bundled'\n"},
                       extra_members={"secret.py": b"import os; os.system('echo pwned')\n"})
    target = d / FILENAME
    target.write_bytes(wheel.read_bytes())
    return target


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "A1-zip-slip": (with_files({"../evil.py": b"print('evil')\n"}), "'..' path component"),
    "A2-absolute": (with_files({"/tmp/evil.py": b""}), "absolute"),
    "A2-backslash": (with_files({"secret\\..\\..\\evil.py": b""}), "backslash"),
    "A3-symlink": (symlink_member, "is not a regular file"),
    "A5-duplicate": (duplicate_member, "collide"),
    "A6-case-collision": (with_files({"pkg/Mod.py": b"", "pkg/mod.py": b""}), "collide"),
    "A7-declared-size-bomb": (declared_size_bomb, "more than the"),
    "A9-our-marker": (with_files({".carton-complete": b'{"format":1}'}), ".carton-complete"),
    "A10-data-escape": (with_files({f"{NAME}-{VERSION}.data/purelib/../../evil.py": b""}),
                        "unsafe member name"),
    "H5-record-mismatch": (record_mismatch, "does not match its RECORD hash"),
    "H6-wheel-version-2": (lambda d: write_zip(d / FILENAME, good_members(wheel_version="2.0")),
                           "Wheel-Version"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_the_build_cli_refuses_a_hostile_wheel(kind: str, tmp_path: Path,
                                               private: PackageIndex,
                                               hermetic_env: dict[str, str]) -> None:
    build, fragment = HOSTILE[kind]
    private.add(build(tmp_path / "hostile"))
    folder = write_model(tmp_path / "model", "secret\n")
    proc = run_cli(hermetic_env, "lock", folder)
    assert proc.returncode == 1, proc.stderr
    # Named by its file (pip itself refuses a Wheel-Version it cannot read, by project).
    assert fragment in proc.stderr and NAME in proc.stderr, proc.stderr
    assert proc.stderr.startswith("carton: error: ") and "Traceback" not in proc.stderr
    assert not (folder / ".carton" / "carton.lock").exists()
    assert not list(folder.glob(".carton/bundled_wheels/*/*"))
    assert not list(tmp_path.rglob("evil.py"))


@pytest.fixture
def carton(tmp_path: Path, private: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    private.add(make_wheel(tmp_path / "w", NAME, VERSION, {"secret.py": "WHO = 'bundled'\n"}))
    return build_carton("secret\n", {"model.py": """
def main():
    try:
        import secret
    except ImportError as exc:
        print(type(exc).__name__, '|', exc)
"""})


def swap_bundled_wheel(carton: Path, hostile: Path) -> None:
    """Put `hostile` in the carton in place of the bundled secret wheel, with the lock and
    MANIFEST updated to match: a carton edited after packing."""
    data = hostile.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(carton) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    lock = json.loads(members["model/.carton/carton.lock"])
    for env in lock["environments"]:
        for package in env["packages"]:
            if package["name"] == NAME:
                old = "model/" + package["wheels"][0]["path"]
                members.pop(old)
                package["wheels"][0].update(path=bundled_path(sha, FILENAME), size=len(data),
                                            hashes={"sha256": sha})
    members["model/" + bundled_path(sha, FILENAME)] = data
    members["model/.carton/carton.lock"] = json.dumps(lock).encode()
    members["MANIFEST"] = "".join(
        f"{n}={hashlib.sha256(d).hexdigest()}\n" for n, d in sorted(members.items())
        if n not in ("MANIFEST", "carton.toml")).encode()
    with zipfile.ZipFile(carton, "w") as zf:
        for name, member in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), member)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_the_finder_refuses_a_hostile_bundled_wheel(kind: str, tmp_path: Path, carton: Path,
                                                    hermetic_env: dict[str, str]) -> None:
    build, fragment = HOSTILE[kind]
    swap_bundled_wheel(carton, build(tmp_path / "hostile"))
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    kind_, _, message = proc.stdout.strip().partition(" | ")
    assert kind_ == "CartonImportError", proc.stdout + proc.stderr
    assert fragment in message and FILENAME in message, message
    assert not list(Path(hermetic_env["CARTON_HOME"]).glob("pythonpackages/*/[0-9a-f]*"))
    assert not list(tmp_path.rglob("evil.py"))
    assert "pwned" not in proc.stdout + proc.stderr


def test_a_bundled_wheel_edited_in_a_model_folder_is_refused_at_load(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    """THREATS S2: the lock's sha256 covers bundled wheels too."""
    folder = tmp_path / "models" / "demo-model"
    wheel = next(folder.glob(".carton/bundled_wheels/*/*.whl"))
    wheel.write_bytes(make_wheel(tmp_path / "evil", NAME, VERSION,
                                 {"secret.py": "WHO = 'swapped'\n"}).read_bytes())
    proc = run_hook(hermetic_env, folder)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("CartonImportError | ")
    assert "does not match its lock sha256" in proc.stdout
    assert "swapped" not in proc.stdout
