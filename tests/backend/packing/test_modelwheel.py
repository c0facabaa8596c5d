"""carton_backend.packing.modelwheel: the model's own wheel (its code and data, less what only
packing needs), its `.dist-info`, and the PEP 660 editable wheel."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from carton_backend.config import ModelConfig, load_config
from carton_backend.packing.metadata import core_metadata
from carton_backend.packing.modelwheel import (
    dist_info_name,
    metadata_files,
    wheel_files,
    wheel_name,
    write_editable,
    write_metadata,
    write_wheel,
)
from carton_hook.formats.lockfile import LOCK_PATH, Environment, Lock, Package, Wheel, dump_lock
from carton_hook.formats.version import CREATED_BY
from carton_hook.formats.wheelcheck import check_wheel

from ...factory import write_model

DIST_INFO = "demo_model-0.1.0.dist-info"
WHEEL = "demo_model-0.1.0-py3-none-any.whl"

LOCK = Lock("requirements.txt", "0" * 64, (Environment(
    "cp311-linux-x86_64", "sys_platform == 'linux'", {"python_version": "3.11"},
    (Package("alpha", "1.0", Wheel("alpha-1.0-py3-none-any.whl", "a" * 64, 10,
                                   url="https://x.example/alpha-1.0-py3-none-any.whl"),
             requested=True),)),))


@pytest.fixture(autouse=True)
def no_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = write_model(tmp_path / "model", "-r reqs/base.txt\n", files={
        "reqs/base.txt": "alpha\n",
        "helpers/__init__.py": "X = 1\n",
        "weights.json": "{}",
        "run.sh": "#!/bin/sh\necho hi\n",
        "README.md": "# Demo\n",
        "LICENSE": "MIT\n",
        "NOTICE.txt": "notice\n",
        "docs/README.md": "kept: a data file below the top\n",
        "readme_utils.py": "def show(): pass\n",
        ".gitignore": "*.log\n",
        ".carton/dist-info/x/METADATA": "pack-time metadata\n",
    })
    (folder / "run.sh").chmod(0o755)
    (folder / LOCK_PATH).write_bytes(dump_lock(LOCK))
    return folder


def members(wheel: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(wheel) as zf:
        return {i.filename: i for i in zf.infolist()}


def test_file_names_use_the_normalised_name_and_version(tmp_path: Path) -> None:
    config = ModelConfig(root=tmp_path, name="My.Model", version="1.0-RC1",
                         entrypoint="model:main")
    assert wheel_name(config) == "my_model-1.0rc1-py3-none-any.whl"
    assert dist_info_name(config) == "my_model-1.0rc1.dist-info"


@pytest.mark.parametrize(("entrypoint", "script"), [
    ("model:main", True), ("pkg.cli:run", True), ("model", False), ("scripts/run.py", False)])
def test_a_function_entrypoint_becomes_a_console_script(tmp_path: Path, entrypoint: str,
                                                        script: bool) -> None:
    config = ModelConfig(root=tmp_path, name="demo-model", version="0.1.0",
                         entrypoint=entrypoint)
    files = metadata_files(config, LOCK)
    assert files["METADATA"] == core_metadata(config, LOCK)
    assert files["WHEEL"] == (f"Wheel-Version: 1.0\nGenerator: {CREATED_BY}\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()
    if script:
        assert files["entry_points.txt"] == \
            f"[console_scripts]\ndemo-model = {entrypoint}\n".encode()
    else:
        assert "entry_points.txt" not in files


def test_the_wheel_holds_the_code_and_its_data_not_what_only_packing_needs(
        model: Path, tmp_path: Path) -> None:
    config = load_config(model)
    assert [f.relpath for f in wheel_files(config)] == [
        "docs/README.md", "helpers/__init__.py", "model.py", "readme_utils.py", "run.sh",
        "weights.json"]
    name = write_wheel(config, LOCK, tmp_path / "out")
    assert name == WHEEL
    assert sorted(members(tmp_path / "out" / name)) == [
        f"{DIST_INFO}/METADATA", f"{DIST_INFO}/RECORD", f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/entry_points.txt", "docs/README.md", "helpers/__init__.py", "model.py",
        "readme_utils.py", "run.sh", "weights.json"]


def test_a_module_named_like_a_project_file_is_kept(model: Path) -> None:
    (model / "changes.py").write_text("def diff(a, b): return a != b\n")
    (model / "model.py").write_text("import changes\ndef main():\n    return 0\n")
    assert "changes.py" in {f.relpath for f in wheel_files(load_config(model))}


def test_the_wheel_is_valid_and_its_record_matches(model: Path, tmp_path: Path) -> None:
    config = load_config(model)
    wheel = tmp_path / "out" / write_wheel(config, LOCK, tmp_path / "out")
    info = check_wheel(wheel)  # names, RECORD rows and every member's hash
    assert (info.name, info.version, info.dist_info) == ("demo_model", "0.1.0", DIST_INFO)
    assert {"helpers", "model", "readme_utils"} <= set(info.imports)
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("weights.json") == b"{}"
        assert zf.read(f"{DIST_INFO}/METADATA") == core_metadata(config, LOCK)
        record = zf.read(f"{DIST_INFO}/RECORD").decode().splitlines()
    assert record[-1] == f"{DIST_INFO}/RECORD,,"
    assert len(record) == len(members(wheel))


def test_the_wheel_is_deterministic_with_modes_kept(model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(model)
    first = (tmp_path / "a" / write_wheel(config, LOCK, tmp_path / "a")).read_bytes()
    for path in model.rglob("*"):
        path.touch()
    second = tmp_path / "b" / write_wheel(config, LOCK, tmp_path / "b")
    assert second.read_bytes() == first
    found = members(tmp_path / "a" / WHEEL)
    assert stat.S_IMODE(found["run.sh"].external_attr >> 16) == 0o755
    assert stat.S_IMODE(found["model.py"].external_attr >> 16) == 0o644
    assert {i.date_time for i in found.values()} == {(1980, 1, 1, 0, 0, 0)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = members(tmp_path / "c" / write_wheel(config, LOCK, tmp_path / "c"))
    assert {i.date_time for i in later.values()} == {(2023, 11, 14, 22, 13, 20)}


def test_metadata_for_the_frontend_is_the_wheels_dist_info(model: Path, tmp_path: Path) -> None:
    config = load_config(model)
    assert write_metadata(config, LOCK, tmp_path / "meta") == DIST_INFO
    assert write_metadata(config, LOCK, tmp_path / "meta") == DIST_INFO  # asked again
    folder = tmp_path / "meta" / DIST_INFO
    assert sorted(p.name for p in folder.iterdir()) == ["METADATA", "WHEEL", "entry_points.txt"]
    wheel = tmp_path / "out" / write_wheel(config, LOCK, tmp_path / "out")
    with zipfile.ZipFile(wheel) as zf:
        for path in folder.iterdir():
            assert zf.read(f"{DIST_INFO}/{path.name}") == path.read_bytes()


def test_the_editable_wheel_puts_the_model_folder_on_the_path(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("model"))  # relative: the .pth line must not be
    name = write_editable(config, LOCK, tmp_path / "out")
    assert name == WHEEL
    wheel = tmp_path / "out" / name
    info = check_wheel(wheel)
    assert info.imports == ()  # no code: the folder's own files are imported
    with zipfile.ZipFile(wheel) as zf:
        assert sorted(n for n in zf.namelist() if not n.startswith(DIST_INFO)) == \
            ["demo_model.pth"]
        assert zf.read("demo_model.pth") == f"{model.resolve()}\n".encode()
        assert zf.read(f"{DIST_INFO}/entry_points.txt") == \
            b"[console_scripts]\ndemo-model = model:main\n"
