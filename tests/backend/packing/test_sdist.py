"""carton_backend.packing.sdist: the model's sdist, the model folder with its `.carton/` and a
generated PKG-INFO, written deterministically."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from carton_backend.config import ModelConfig, load_config
from carton_backend.packing.metadata import core_metadata
from carton_backend.packing.sdist import sdist_name, write_sdist
from carton_hook.formats.lockfile import LOCK_PATH, Environment, Lock, Package, Wheel, dump_lock

from ...factory import make_wheel, write_model

PREFIX = "demo_model-0.1.0"
SDIST = f"{PREFIX}.tar.gz"


@pytest.fixture(autouse=True)
def no_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def locked(folder: Path) -> Lock:
    """A lock that bundles one wheel, written into `folder` with the wheel."""
    wheel = make_wheel(folder.parent / "wheels", "beta", "2.0")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    relpath = f".carton/bundled_wheels/{sha}/{wheel.name}"
    (folder / relpath).parent.mkdir(parents=True)
    shutil.copyfile(wheel, folder / relpath)
    lock = Lock("requirements.txt", "0" * 64, (Environment(
        "cp311-linux-x86_64", "sys_platform == 'linux'", {"python_version": "3.11"},
        (Package("beta", "2.0", Wheel(wheel.name, sha, wheel.stat().st_size, path=relpath),
                 requested=True),)),))
    (folder / LOCK_PATH).write_bytes(dump_lock(lock))
    return lock


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = write_model(tmp_path / "model", "beta\n", files={
        "helpers/__init__.py": "X = 1\n",
        "run.sh": "#!/bin/sh\necho hi\n",
        "README.md": "# Demo\n",
        "PKG-INFO": "left by a frontend\n",
        "dist/old.carton": "old",
        "__pycache__/model.cpython-311.pyc": "junk",
    })
    (folder / "run.sh").chmod(0o755)
    return folder


def read(sdist: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(sdist) as tar:
        return tar.getmembers()


def test_the_name_is_the_normalised_name_and_version(tmp_path: Path) -> None:
    config = ModelConfig(root=tmp_path, name="My.Model", version="1.0-RC1", entrypoint="m:f")
    assert sdist_name(config) == "my_model-1.0rc1.tar.gz"


def test_the_sdist_is_the_model_folder_with_its_lock_and_pkg_info(model: Path,
                                                                  tmp_path: Path) -> None:
    lock = locked(model)
    config = load_config(model)
    assert write_sdist(config, lock, tmp_path / "out") == SDIST
    sdist = tmp_path / "out" / SDIST
    names = [m.name for m in read(sdist)]
    assert names == sorted(names)
    assert all(n.startswith(PREFIX + "/") for n in names)
    bundled = lock.environments[0].packages[0].wheel.path
    assert [n[len(PREFIX) + 1:] for n in names] == [
        bundled, LOCK_PATH, "PKG-INFO", "README.md", "helpers/__init__.py", "model.py",
        "pyproject.toml", "requirements.txt", "run.sh"]
    with tarfile.open(sdist) as tar:
        pkg_info = tar.extractfile(f"{PREFIX}/PKG-INFO")
        lock_member = tar.extractfile(f"{PREFIX}/{LOCK_PATH}")
        assert pkg_info is not None and lock_member is not None
        assert pkg_info.read() == core_metadata(config, lock)  # not the frontend's file
        assert lock_member.read() == (model / LOCK_PATH).read_bytes()


def test_members_carry_no_owner_time_or_mode_of_the_host(model: Path, tmp_path: Path) -> None:
    lock = locked(model)
    sdist = tmp_path / "out" / write_sdist(load_config(model), lock, tmp_path / "out")
    with tarfile.open(sdist) as tar:
        assert tar.format == tarfile.PAX_FORMAT
    for member in read(sdist):
        assert member.isfile(), member.name
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 315532800, member.name
        assert member.mode == (0o755 if member.name.endswith("run.sh") else 0o644), member.name
    header = sdist.read_bytes()[:10]
    assert header[3] & 0x08 == 0  # no file name in the gzip header
    assert header[4:8] == b"\0\0\0\0"  # and no time


def test_source_date_epoch_sets_every_members_time(model: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    sdist = tmp_path / "out" / write_sdist(load_config(model), locked(model), tmp_path / "out")
    assert {m.mtime for m in read(sdist)} == {1700000000}
    assert sdist.read_bytes()[4:8] == b"\0\0\0\0"  # the gzip header stays at zero


def test_two_copies_of_a_folder_give_the_same_bytes(model: Path, tmp_path: Path) -> None:
    lock = locked(model)
    other = tmp_path / "elsewhere" / "deeper" / "model"
    shutil.copytree(model, other)
    for path in other.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    first = tmp_path / "a" / write_sdist(load_config(model), lock, tmp_path / "a")
    second = tmp_path / "b" / write_sdist(load_config(other), lock, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes())  # a whole gzip stream
