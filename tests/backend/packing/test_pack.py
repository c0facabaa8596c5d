"""The `.carton` archive: deterministic, complete, verified."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from carton_backend.config import load_config
from carton_backend.errors import BuildError
from carton_backend.lock.locking import lock_model
from carton_backend.packing.pack import write_carton
from carton_hook.formats.archive import read_archive

from ...conftest import run_cli
from ...factory import make_wheel, write_model
from ...indexserver import PackageIndex


@pytest.fixture
def model(tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
          use_hermetic_env: None) -> Path:
    """A locked model with one recorded wheel, one bundled wheel, data and a script."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    private.add(make_wheel(tmp_path / "w", "beta", "2.0"))
    folder = write_model(tmp_path / "model", "alpha\nbeta\n", files={
        "pkg/__init__.py": "",
        "pkg/data/weights.bin": "0123456789",
        "run.sh": "#!/bin/sh\necho hi\n",
        "data/raw/huge.csv": "a,b\n",
        "notes.tmp": "scratch",
        "__pycache__/model.cpython-311.pyc": "junk",
        "pkg/__pycache__/x.pyc": "junk",
        "dist/old.carton": "old",
        ".git/HEAD": "ref",
        "PKG-INFO": "added by a frontend",
    }, carton='entrypoint = "model:main"\nexclude = ["data/raw/**", "*.tmp"]\n')
    (folder / "run.sh").chmod(0o755)
    lock_model(load_config(folder))
    return folder


def pack(model: Path, out: Path) -> Path:
    return write_carton(load_config(model), lock_model(load_config(model)), out)


def test_archive_layout_and_manifest(model: Path, tmp_path: Path) -> None:
    carton = pack(model, tmp_path / "out")
    assert carton.name == "demo_model-0.1.0.carton"
    info, manifest = read_archive(carton)  # checks every member against MANIFEST
    assert (info.name, info.version, info.entrypoint) == ("demo-model", "0.1.0", "model:main")
    assert info.requires_python.startswith(">=3.")
    with zipfile.ZipFile(carton) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert names[:3] == ["MANIFEST", "__main__.py", "carton.toml"]
        model_names = {n.removeprefix("model/") for n in names if n.startswith("model/")}
        runtime = [n for n in names if n.startswith("runtime/")]
        assert set(names) == {*names[:3], *(f"model/{n}" for n in model_names), *runtime}
        for info_ in zf.infolist():
            assert info_.date_time == (1980, 1, 1, 0, 0, 0)
            mode = info_.external_attr >> 16
            assert stat.S_IMODE(mode) in (0o644, 0o755)
            if info_.filename.endswith(".whl"):
                assert info_.compress_type == zipfile.ZIP_STORED
        assert stat.S_IMODE(zf.getinfo("model/run.sh").external_attr >> 16) == 0o755
    assert {"model.py", "pyproject.toml", "requirements.txt", "pkg/__init__.py",
            "pkg/data/weights.bin", "run.sh", ".carton/carton.lock"} <= model_names
    assert not [n for n in model_names if n.endswith(".pyc") or "__pycache__" in n]
    for excluded in ("data/raw/huge.csv", "notes.tmp", "dist/old.carton", ".git/HEAD",
                     "PKG-INFO"):
        assert excluded not in model_names
    bundled = [n for n in model_names if n.startswith(".carton/bundled_wheels/")]
    assert len(bundled) == 1 and bundled[0].endswith("beta-2.0-py3-none-any.whl")
    assert any(n.startswith(".carton/dist-info/") and n.endswith("/METADATA")
               for n in model_names)
    assert set(manifest) == {f"model/{n}" for n in model_names} | {"__main__.py", *runtime}


def test_byte_identical_from_two_paths_and_times(model: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    other = tmp_path / "elsewhere" / "deeper" / "model"
    shutil.copytree(model, other)
    for path in other.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    first = pack(model, tmp_path / "out1")
    second = pack(other, tmp_path / "out2")
    assert first.read_bytes() == second.read_bytes()


def test_source_date_epoch_sets_the_timestamps(model: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    with zipfile.ZipFile(pack(model, tmp_path / "out")) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_tampered_bundled_wheel_fails_the_pack(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = pack(model, out)
    before = good.read_bytes()
    (wheel,) = (model / ".carton" / "bundled_wheels").rglob("*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(BuildError, match="sha256"):
        pack(model, out)
    assert good.read_bytes() == before, "the previous archive must stay whole"
    assert not list(out.glob(".carton-tmp-*"))


def test_excluding_the_lock_is_an_error(model: Path, tmp_path: Path) -> None:
    pyproject = model / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"*.tmp"]', '"*.tmp", ".carton/"]'))
    with pytest.raises(BuildError, match=r"carton\.lock.*excluded"):
        pack(model, tmp_path / "out")


def test_cli_pack_writes_into_dist_and_prints_the_path(model: Path,
                                                       hermetic_env: dict[str, str]) -> None:
    proc = run_cli(hermetic_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    carton = model / "dist" / "demo_model-0.1.0.carton"
    assert proc.stdout.strip() == str(carton)
    proc = run_cli(hermetic_env, "pack", model, "-o", model.parent / "elsewhere")
    assert proc.returncode == 0, proc.stderr
    again = model.parent / "elsewhere" / carton.name
    assert hashlib.sha256(again.read_bytes()).digest() == \
        hashlib.sha256(carton.read_bytes()).digest()


def test_pack_list_prints_what_would_be_packed_and_writes_nothing(
        model: Path, hermetic_env: dict[str, str]) -> None:
    (model / ".env").write_text("TOKEN=secret\n")
    (model / "notes.md").write_text("notes\n")
    (model / ".gitignore").write_text("notes.md\n")
    before = sorted(p.relative_to(model).as_posix() for p in model.rglob("*"))
    proc = run_cli(hermetic_env, "pack", "--list", model)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.splitlines()
    assert listed == sorted(listed) and "model.py" in listed and ".gitignore" in listed
    assert ".env" not in listed and "notes.md" not in listed
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*")) == before
    proc = run_cli(hermetic_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(proc.stdout.strip()) as zf:
        packed = sorted(n.removeprefix("model/") for n in zf.namelist() if n.startswith("model/"))
    assert packed == sorted([*listed, ".carton/METADATA"])  # the pack writes METADATA
