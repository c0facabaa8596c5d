"""planning/models.py: opening MODEL (a .carton file, an unpacked carton, a model folder),
extracting a .carton once against its MANIFEST, reading its files before that, copying it."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from carton_hook.cache.layout import COMPLETE, is_published
from carton_hook.errors import ArchiveError, CartonError
from carton_hook.formats.archive import CartonInfo, format_carton_toml, format_manifest
from carton_hook.formats.lockfile import DIST_INFO_DIR
from carton_hook.formats.metadatapack import PACK, read_metadata
from carton_hook.planning.models import Model, ModelFiles, copy_model, open_model

INFO = CartonInfo("demo-model", "0.1.0", "model:main", ">=3.10", "carton-tests")
WHEEL = b"the bytes of a bundled wheel"
WHEEL_SHA = hashlib.sha256(WHEEL).hexdigest()
BUNDLED = f"model/.carton/bundled_wheels/{WHEEL_SHA}/secret-1.0-py3-none-any.whl"
MEMBERS: dict[str, bytes] = {
    "model/model.py": b"def main():\n    return 0\n",
    "model/pkg/__init__.py": b"",
    "model/pkg/data/weights.json": b'{"w": 42}',
    "model/.carton/carton.lock": b"{}",
    "model/run.sh": b"#!/bin/sh\necho run\n",
    BUNDLED: WHEEL,
}
MODES = {"model/run.sh": 0o755}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_archive(path: Path, members: Mapping[str, bytes] = MEMBERS, *,
                  modes: Mapping[str, int] = MODES, manifest: Mapping[str, str] | None = None,
                  unlisted: tuple[str, ...] = (), header: tuple[str, ...] = (
                      "MANIFEST", "carton.toml")) -> Path:
    """A `.carton` with `members` (a file mode each, 0o644 unless `modes` says), a
    MANIFEST that lists their sha256 (`manifest` overrides some, `unlisted` leaves some
    out) and carton.toml; `header` names the header files to write."""
    entries = {name: sha(data) for name, data in members.items() if name not in unlisted}
    entries.update(manifest or {})
    generated = {"MANIFEST": format_manifest(entries), "carton.toml": format_carton_toml(INFO)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in header:
            zf.writestr(name, generated[name])
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | modes.get(name, 0o644)) << 16
            zf.writestr(info, data)
    return path


def manifest_sha(carton: Path) -> str:
    with zipfile.ZipFile(carton) as zf:
        return sha(zf.read("MANIFEST"))


def files_below(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(exc: BaseException) -> str:
    assert "\n" not in str(exc)
    return str(exc)


# ---------------------------------------------------------------- a .carton file


def test_a_carton_is_extracted_into_the_folder_named_by_its_manifest(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton")
    home = tmp_path / "home"
    model = open_model(carton, home)
    root = home / "models" / manifest_sha(carton)
    assert model == Model(root, "demo-model", "0.1.0", "model:main", archive=carton,
                          requires_python=">=3.10")
    assert model.lock_path == root / ".carton" / "carton.lock"
    assert is_published(root)
    expected = {name[len("model/"):]: data for name, data in MEMBERS.items() if name != BUNDLED}
    assert {k: v for k, v in files_below(root).items() if k != COMPLETE} == expected


def test_a_carton_is_extracted_once(tmp_path: Path) -> None:
    """Its published folder, named by MANIFEST's hash, is trusted: the archive's members
    are not read again (a member changed since, MANIFEST kept, goes unnoticed)."""
    carton = write_archive(tmp_path / "demo.carton")
    home = tmp_path / "home"
    root = open_model(carton, home).root
    with zipfile.ZipFile(carton) as zf:
        manifest = {name: sha(data) for name, data in MEMBERS.items()}
        assert zf.read("MANIFEST") == format_manifest(manifest)
    write_archive(carton, {**MEMBERS, "model/model.py": b"changed\n"}, manifest=manifest)
    assert open_model(carton, home).root == root
    assert (root / "model.py").read_bytes() == MEMBERS["model/model.py"]


def test_without_extract_the_folder_is_named_but_not_made(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton")
    model = open_model(carton, tmp_path / "home", extract=False)
    assert model.root == tmp_path / "home" / "models" / manifest_sha(carton)
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("mode", "expected"), [(0o755, 0o755), (0o700, 0o755),
                                                (0o644, 0o644), (0o600, 0o644),
                                                (0o666, 0o644), (0o4777, 0o755)])
def test_an_extracted_file_is_0o755_or_0o644_by_its_exec_bit(
        tmp_path: Path, mode: int, expected: int) -> None:
    carton = write_archive(tmp_path / "demo.carton", modes={"model/run.sh": mode})
    root = open_model(carton, tmp_path / "home").root
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == expected


def test_the_runtime_of_an_executable_carton_is_not_extracted(tmp_path: Path) -> None:
    members = {**MEMBERS, "__main__.py": b"print('zipmain')\n",
               "runtime/hook/carton_hook/__init__.py": b""}
    root = open_model(write_archive(tmp_path / "demo.carton", members), tmp_path / "home").root
    assert set(files_below(root)) == {COMPLETE, *(name[len("model/"):] for name in MEMBERS
                                                  if name != BUNDLED)}
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]


def test_bundled_wheels_stay_in_the_archive(tmp_path: Path) -> None:
    root = open_model(write_archive(tmp_path / "demo.carton"), tmp_path / "home").root
    assert not (root / ".carton" / "bundled_wheels").exists()


def refused(tmp_path: Path, carton: Path) -> str:
    """The one-line ArchiveError of opening `carton`, after checking nothing was published."""
    home = tmp_path / "home"
    with pytest.raises(ArchiveError) as caught:
        open_model(carton, home)
    models = home / "models"
    assert not models.exists() or list(models.iterdir()) == []  # no folder, no leftovers
    message = one_line(caught.value)
    assert message.startswith(f"{carton}: ")
    return message[len(f"{carton}: "):]


def test_a_bundled_wheel_whose_bytes_are_not_its_manifest_hash_is_refused(
        tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, BUNDLED: b"other bytes"},
                           manifest={BUNDLED: WHEEL_SHA})
    assert refused(tmp_path, carton) == f"{BUNDLED} does not match its MANIFEST hash"


@pytest.mark.parametrize("name", [
    f"model/.carton/bundled_wheels/{'0' * 64}/secret-1.0-py3-none-any.whl",
    f"model/.carton/bundled_wheels/{WHEEL_SHA}/deeper/secret-1.0-py3-none-any.whl",
    "model/.carton/bundled_wheels/secret-1.0-py3-none-any.whl"])
def test_a_bundled_wheel_must_be_in_the_folder_of_its_sha256(tmp_path: Path, name: str) -> None:
    members = {**{k: v for k, v in MEMBERS.items() if k != BUNDLED}, name: WHEEL}
    carton = write_archive(tmp_path / "demo.carton", members)
    assert refused(tmp_path, carton) == (f"{name}: a bundled wheel's folder must be the "
                                         "sha256 that MANIFEST records for it")


def test_a_member_that_does_not_match_its_manifest_hash_publishes_nothing(
        tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton",
                           manifest={"model/pkg/__init__.py": sha(b"something else")})
    assert refused(tmp_path, carton) == "model/pkg/__init__.py does not match its MANIFEST hash"


def test_a_member_that_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton", unlisted=("model/run.sh",))
    assert refused(tmp_path, carton) == "MANIFEST and the archive disagree about 'model/run.sh'"


@pytest.mark.parametrize("missing", ["MANIFEST", "carton.toml"])
def test_an_archive_without_its_header_files_is_not_a_carton(tmp_path: Path,
                                                             missing: str) -> None:
    header = tuple(n for n in ("MANIFEST", "carton.toml") if n != missing)
    carton = write_archive(tmp_path / "demo.carton", header=header)
    assert refused(tmp_path, carton) == f"{missing} is missing; is this a .carton file?"


def test_a_file_that_is_not_a_zip_is_not_a_carton(tmp_path: Path) -> None:
    carton = tmp_path / "demo.carton"
    carton.write_bytes(b"PK but not a zip archive at all" * 10)
    assert refused(tmp_path, carton).startswith("not a .carton archive")


# ---------------------------------------------------------------- folders


def test_an_unpacked_carton_is_opened_where_it_is(tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(write_archive(tmp_path / "demo.carton")) as zf:
        zf.extractall(unpacked)
    model = open_model(unpacked, tmp_path / "home")
    assert model == Model(unpacked / "model", "demo-model", "0.1.0", "model:main",
                          requires_python=">=3.10")
    assert not (tmp_path / "home").exists()


def write_pyproject(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(text)
    return folder


def test_a_model_folder_is_described_by_its_pyproject(tmp_path: Path) -> None:
    folder = write_pyproject(tmp_path / "model", '[project]\nname = "m"\nversion = "2.0"\n'
                             'requires-python = ">=3.10"\n[tool.carton]\nentrypoint = "app"\n')
    assert open_model(folder, tmp_path / "home") == Model(folder, "m", "2.0", "app",
                                                         requires_python=">=3.10")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("text", "why"), [
    ('[tool.carton]\nentrypoint = "model:main"\n', "KeyError('project')"),
    ('[project]\nname = "m"\nversion = "1"\n', "KeyError('tool')"),
    ('[project]\nname = "m"\nversion = "1"\n[tool.other]\n', "KeyError('carton')"),
    ('[project]\nversion = "1"\n[tool.carton]\nentrypoint = "m"\n', "KeyError('name')"),
    ('[project\n', "TOMLDecodeError("),
])
def test_a_pyproject_that_is_not_a_carton_models_is_one_line_naming_what_is_missing(
        tmp_path: Path, text: str, why: str) -> None:
    folder = write_pyproject(tmp_path / "model", text)
    with pytest.raises(CartonError) as caught:
        open_model(folder, tmp_path / "home")
    message = one_line(caught.value)
    assert message.startswith(f"{folder / 'pyproject.toml'}: not a carton model folder ({why}")
    assert message.endswith("is missing or wrong); see docs/configuration.md")


def test_an_entrypoint_that_is_not_one_carton_runs_is_refused(tmp_path: Path) -> None:
    folder = write_pyproject(tmp_path / "model", '[project]\nname = "m"\nversion = "1"\n'
                             '[tool.carton]\nentrypoint = "model :main"\n')
    with pytest.raises(CartonError) as caught:
        open_model(folder, tmp_path / "home")
    assert one_line(caught.value) == (f"{folder / 'pyproject.toml'}: tool.carton.entrypoint "
                                      "'model :main' is not 'module:function', 'module' or "
                                      "'path/to/script.py'")


def test_a_folder_that_is_none_of_the_three_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "half-unpacked"
    folder.mkdir()
    (folder / "carton.toml").write_bytes(format_carton_toml(INFO))  # but no MANIFEST
    with pytest.raises(CartonError) as caught:
        open_model(folder, tmp_path / "home")
    assert one_line(caught.value) == (f"{folder}: not a .carton file, an unpacked carton or "
                                      "a model folder (no carton.toml or pyproject.toml)")


def test_a_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CartonError) as caught:
        open_model(tmp_path / "nowhere.carton", tmp_path / "home")
    assert one_line(caught.value) == f"{tmp_path / 'nowhere.carton'}: no such file or folder"


# ---------------------------------------------------------------- ModelFiles


def test_model_files_are_read_out_of_the_archive_before_it_is_extracted(
        tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton")
    with ModelFiles(open_model(carton, tmp_path / "home", extract=False)) as files:
        assert files.read("pkg/data/weights.json") == b'{"w": 42}'
        assert files.folders("") == [".carton", "pkg"]
        assert files.folders("pkg") == ["data"]
        assert files.folders(".carton") == ["bundled_wheels"]
        assert files.folders("absent") == []
        with pytest.raises(FileNotFoundError):
            files.read("absent.py")
    assert not (tmp_path / "home").exists()


def test_model_files_come_from_the_archive_even_once_it_is_extracted(tmp_path: Path) -> None:
    """`cache clear` may take the extracted folder out while the worker reads it."""
    model = open_model(write_archive(tmp_path / "demo.carton"), tmp_path / "home")
    (model.root / "model.py").write_text("changed on disk\n")
    with ModelFiles(model) as files:
        assert files.read("model.py") == MEMBERS["model/model.py"]


def test_model_files_of_a_published_folder_its_process_holds_are_read_from_it(
        tmp_path: Path) -> None:
    """The model's process, which has just extracted the archive and holds its folder
    (cache/inuse.py), reads it as the warm path does: the archive is not opened again."""
    model = open_model(write_archive(tmp_path / "demo.carton"), tmp_path / "home")
    (model.root / "model.py").write_text("changed on disk\n")
    model.archive.unlink()  # type: ignore[union-attr]
    with ModelFiles(model, published=True) as files:
        assert files.read("model.py") == b"changed on disk\n"
        assert files.folders("pkg") == ["data"]


def test_a_model_file_that_does_not_match_its_manifest_hash_is_refused(
        tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton",
                           manifest={"model/model.py": sha(b"other")})
    model = open_model(carton, tmp_path / "home", extract=False)
    with ModelFiles(model) as files, pytest.raises(ArchiveError) as caught:
        files.read("model.py")
    assert one_line(caught.value) == f"{carton}: model/model.py does not match its MANIFEST hash"


def test_model_files_refuse_an_archive_manifest_does_not_cover(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton", unlisted=("model/run.sh",))
    model = open_model(carton, tmp_path / "home", extract=False)
    with pytest.raises(ArchiveError, match="MANIFEST and the archive disagree about"):
        ModelFiles(model)


def test_model_files_of_a_folder_are_read_from_disk(tmp_path: Path) -> None:
    folder = write_pyproject(tmp_path / "model", '[project]\nname = "m"\nversion = "1"\n'
                             '[tool.carton]\nentrypoint = "model:main"\n')
    (folder / "b" / "x").mkdir(parents=True)
    (folder / "a").mkdir()
    (folder / "model.py").write_text("pass\n")
    with ModelFiles(open_model(folder, tmp_path / "home")) as files:
        assert files.read("model.py") == b"pass\n"
        assert files.folders("") == ["a", "b"]
        assert files.folders("b") == ["x"]
        assert files.folders("absent") == []


# ---------------------------------------------------------------- pack-time metadata

META = {
    f"model/.carton/dist-info/{'c' * 64}/demo-1.0.dist-info/METADATA": b"Name: demo\n",
    f"model/.carton/dist-info/{'c' * 64}/demo-1.0.dist-info/RECORD": b"demo.py,,\n",
    f"model/.carton/dist-info/{'d' * 64}/other-2.dist-info/licenses/COPYING": b"GPL\n",
}


def test_the_locked_wheels_metadata_is_extracted_into_one_file(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, **META})
    root = open_model(carton, tmp_path / "home").root
    extracted = files_below(root)
    assert not (root / DIST_INFO_DIR).exists()
    assert {k for k in extracted if k not in (COMPLETE, PACK)} == {
        name[len("model/"):] for name in MEMBERS if name != BUNDLED}
    for name, data in META.items():
        assert read_metadata(str(root / name[len("model/"):]), str(root / PACK)) == data
    with ModelFiles(Model(root, "demo-model", "0.1.0", "model:main", archive=carton),
                    published=True) as files:
        assert files.pack == str(root / PACK)
        assert files.folders(DIST_INFO_DIR) == ["c" * 64, "d" * 64]
        assert files.folders(f"{DIST_INFO_DIR}/{'d' * 64}") == ["other-2.dist-info"]
        name = next(iter(META))
        assert files.read(name[len("model/"):]) == META[name]


def test_a_model_an_earlier_carton_extracted_as_a_tree_is_still_read(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, **META})
    root = open_model(carton, tmp_path / "home").root
    for name, data in META.items():  # the layout of an earlier carton's extraction
        (root / name[len("model/"):]).parent.mkdir(parents=True, exist_ok=True)
        (root / name[len("model/"):]).write_bytes(data)
    (root / PACK).unlink()
    with ModelFiles(open_model(carton, tmp_path / "home"), published=True) as files:
        assert files.folders(DIST_INFO_DIR) == ["c" * 64, "d" * 64]
        name = next(iter(META))
        assert files.read(name[len("model/"):]) == META[name]


def test_a_metadata_member_that_does_not_match_its_manifest_hash_publishes_nothing(
        tmp_path: Path) -> None:
    name = next(iter(META))
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, **META},
                           manifest={name: sha(b"other bytes")})
    with pytest.raises(ArchiveError, match=f"{name} does not match its MANIFEST hash"):
        open_model(carton, tmp_path / "home")
    assert sorted(p.name for p in (tmp_path / "home" / "models").iterdir()) == []


@pytest.mark.parametrize("name", ["model/.carton/dist-info.pack", "model/.carton/Dist-Info.PACK",
                                  "model/.carton/dist-info.pack/x"])
def test_a_carton_may_not_bring_the_metadata_pack(tmp_path: Path, name: str) -> None:
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, name: b"mine"})
    with pytest.raises(ArchiveError, match="reserved for carton's cache"):
        open_model(carton, tmp_path / "home")


# ---------------------------------------------------------------- copy_model


def test_a_copy_of_a_carton_holds_its_bundled_wheels_and_is_published(tmp_path: Path) -> None:
    carton = write_archive(tmp_path / "demo.carton")
    dest = tmp_path / "home" / "models" / "packed-x"
    copy_model(carton, dest, tmp_path / "home")
    assert is_published(dest)
    assert json.loads((dest / COMPLETE).read_text()) == {"format": 1}
    expected = {name[len("model/"):]: data for name, data in MEMBERS.items()}
    assert {k: v for k, v in files_below(dest).items() if k != COMPLETE} == expected
    assert (dest / "model.py").stat().st_mode & 0o200  # writable: it is locked there


def test_a_copy_of_an_extracted_carton_has_its_metadata_as_a_tree(tmp_path: Path) -> None:
    """As a model folder has it, which the build half locks again."""
    carton = write_archive(tmp_path / "demo.carton", {**MEMBERS, **META})
    open_model(carton, tmp_path / "home")  # extracted first: a pack
    dest = tmp_path / "home" / "models" / "packed-x"
    copy_model(carton, dest, tmp_path / "home")
    expected = {name[len("model/"):]: data for name, data in {**MEMBERS, **META}.items()}
    assert {k: v for k, v in files_below(dest).items() if k != COMPLETE} == expected


def test_a_copy_of_a_model_folder_is_the_folder(tmp_path: Path) -> None:
    folder = write_pyproject(tmp_path / "model", '[project]\nname = "m"\nversion = "1"\n'
                             '[tool.carton]\nentrypoint = "model:main"\n')
    (folder / "model.py").write_text("pass\n")
    dest = tmp_path / "copy"
    copy_model(folder, dest, tmp_path / "home")
    assert {k: v for k, v in files_below(dest).items() if k != COMPLETE} == files_below(folder)
