"""inflate: a wheel's members inflated with ISA-L where it is installed, zlib otherwise,
into the same tree; data that is not deflate is a one-line WheelError either way."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from carton_hook.errors import WheelError
from carton_hook.installing import inflate, splitunpack
from carton_hook.installing.unpack import install_wheel

from ..factory import make_wheel

HAVE_ISAL = importlib.util.find_spec("isal") is not None


@pytest.fixture(params=["isal", "zlib"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once with each inflater (ISA-L's only where it is installed)."""
    if request.param == "zlib":
        monkeypatch.setattr(inflate, "_isal", None)
        monkeypatch.setattr(inflate, "ERRORS", (zlib.error,))
    elif not HAVE_ISAL:
        pytest.skip("isal is not installed here")
    assert inflate.engine() == request.param
    return str(request.param)


def files() -> dict[str, bytes]:
    """Members that inflate in many deflate blocks: text, noise, and both in one file."""
    rng = random.Random(12)
    text = "".join(f"value_{i} = {i * 7919 % 1000}\n" for i in range(60_000)).encode()
    noise = rng.randbytes(300_000)
    return {"demo/__init__.py": b"VALUE = 1\n", "demo/table.py": text,
            "demo/noise.bin": noise, "demo/mixed.bin": text[:200_000] + noise + text}


def spoil(wheel: Path, name: str) -> None:
    """Make `name`'s data something no inflater takes (a block of the reserved type),
    leaving every header as it was."""
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo(name)
    with wheel.open("r+b") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        f.write(b"\xff" * 16)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_isal_and_zlib_install_the_same_tree(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAVE_ISAL:
        pytest.skip("isal is not installed here")
    wheel = make_wheel(tmp_path / "wheels", "demo", files=files())
    trees = {}
    for name in ("isal", "zlib"):
        if name == "zlib":
            monkeypatch.setattr(inflate, "_isal", None)
        assert inflate.engine() == name
        final = tmp_path / name / "entry"
        install_wheel(wheel, wheel.name, final, tmp_path / name / "dest", "/usr/bin/python3")
        trees[name] = tree(tmp_path / name / "dest" / os.path.relpath(final, final.anchor))
    assert trees["isal"] == trees["zlib"]
    assert any(path.endswith("demo/mixed.bin") for path in trees["isal"])


def test_a_member_read_against_record_is_inflated_by_isal_without_a_crc(
        tmp_path: Path) -> None:
    # zipfile keeps its inflater and the CRC it expects in private attributes: this fails
    # where a Python names them otherwise (the member would then be read as before).
    if not HAVE_ISAL:
        pytest.skip("isal is not installed here")
    wheel = make_wheel(tmp_path, "demo", files=files())
    with zipfile.ZipFile(wheel) as zf:
        with zf.open("demo/mixed.bin") as plain:
            expected = plain.read()
        with inflate.open_member(zf, "demo/mixed.bin") as stream:
            assert type(stream._decompressor).__module__ == "isal_zlib"  # type: ignore[attr-defined]
            assert stream._expected_crc is None  # type: ignore[attr-defined]
            assert stream.read() == expected
        with inflate.faster(zf.open("demo/mixed.bin"), hashed=False) as kept:
            assert kept._expected_crc == zf.getinfo("demo/mixed.bin").CRC  # type: ignore[attr-defined]
            assert kept.read() == expected


def test_a_member_is_copied_into_a_file_with_its_digest_and_size(
        tmp_path: Path, engine: str) -> None:
    wheel = make_wheel(tmp_path / "wheels", "demo", files=files())
    spoil(wheel, "demo/noise.bin")
    target = tmp_path / "mixed.bin"
    with zipfile.ZipFile(wheel) as zf:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            hasher = hashlib.sha256()
            size = inflate.copy_member(zf, zf.getinfo("demo/mixed.bin"), fd, hasher)
        finally:
            os.close(fd)
        expected = files()["demo/mixed.bin"]
        assert (target.read_bytes(), size) == (expected, len(expected))
        assert hasher.digest() == hashlib.sha256(expected).digest()
        fd = os.open(tmp_path / "noise.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            with pytest.raises(inflate.ERRORS):
                inflate.copy_member(zf, zf.getinfo("demo/noise.bin"), fd, hashlib.sha256())
        finally:
            os.close(fd)


def test_data_that_is_not_deflate_is_a_wheel_error_and_leaves_nothing(
        tmp_path: Path, engine: str) -> None:
    wheel = make_wheel(tmp_path / "wheels", "demo", files=files())
    spoil(wheel, "demo/table.py")
    dest = tmp_path / "dest"
    with pytest.raises(WheelError, match=r"'demo/table.py' cannot be inflated"):
        install_wheel(wheel, wheel.name, tmp_path / "entry", dest, "/usr/bin/python3")
    assert not dest.exists()


def test_the_unpacking_helper_refuses_data_that_is_not_deflate(tmp_path: Path,
                                                               engine: str) -> None:
    wheel = make_wheel(tmp_path / "wheels", "demo", files=files())
    spoil(wheel, "demo/noise.bin")
    base = tmp_path / "work" / "entry"
    with pytest.raises(ValueError, match=r"'demo/noise.bin' cannot be inflated"):
        splitunpack.write_members(str(wheel), str(base), str(tmp_path / "work"),
                                  [("demo/noise.bin", "sha256", "x", 300_000)])


def test_the_unpacking_helper_inflates_as_the_installing_process_does() -> None:
    # The helper is a bare `python -I -S`: it finds isal only on the path it is given.
    argv = splitunpack._helper_argv()
    script = argv.index(splitunpack._HELPER)
    argv[script] = ("import sys\nsys.path[0:0] = sys.argv[1:]\n"
                    "from carton_hook.installing import inflate\nprint(inflate.engine())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == inflate.engine() == ("isal" if HAVE_ISAL else "zlib")
