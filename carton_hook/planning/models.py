"""Open what `python -m carton_hook MODEL` names: a `.carton` file, an unpacked carton
folder (carton.toml + MANIFEST + model/), or a model folder with its `.carton/` lock.

A `.carton` file's model folder is extracted once, verified member by member against
MANIFEST, into `models/<sha256 of MANIFEST>/` and published by one rename; bundled wheels
stay in the archive (the cache reads them from there when they are first imported).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from carton_hook.cache.layout import COMPLETE, is_published, models_dir
from carton_hook.cache.publish import publishing
from carton_hook.errors import ArchiveError, CartonError
from carton_hook.formats.archive import (
    CARTON_TOML,
    DAMAGED,
    MANIFEST,
    MODEL_PREFIX,
    check_carton_members,
    check_end_record,
    check_manifest_covers,
    check_member_hash,
    entrypoint_problem,
    parse_carton_toml,
    parse_manifest,
    read_member,
    runtime_member,
)
from carton_hook.formats.lockfile import BUNDLED_DIR, DIST_INFO_DIR, LOCK_PATH
from carton_hook.formats.metadatapack import PACK, PackWriter, metadata_folders, read_metadata


class Model(NamedTuple):
    """A model ready to load: its folder on disk and what carton.toml (or pyproject) says."""

    root: Path
    name: str
    version: str
    entrypoint: str
    archive: Path | None = None  # the .carton file that bundled wheels are read from
    requires_python: str = ""  # a PEP 440 specifier set, or "" for any

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_PATH


def open_model(path: Path, home: Path, extract: bool = True) -> Model:
    """Open MODEL, extracting a `.carton` file on first use (unless not `extract`: then
    its folder may not be there yet, and `ModelFiles` reads it)."""
    if path.is_file():
        return _open_archive(path, home, extract)
    if (path / CARTON_TOML).is_file() and (path / MANIFEST).is_file():
        info = parse_carton_toml((path / CARTON_TOML).read_bytes(), str(path))
        return Model(path / "model", info.name, info.version, info.entrypoint,
                     requires_python=info.requires_python)
    if (path / "pyproject.toml").is_file():
        return _open_folder(path)
    if path.exists():
        raise CartonError(f"{path}: not a .carton file, an unpacked carton or a model folder "
                          "(no carton.toml or pyproject.toml)")
    raise CartonError(f"{path}: no such file or folder")


def _open_folder(path: Path) -> Model:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    where = path / "pyproject.toml"
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
        project = data["project"]
        entrypoint = data["tool"]["carton"]["entrypoint"]
        name, version = project["name"], project["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CartonError(f"{where}: not a carton model folder ({exc!r} is missing or wrong); "
                          "see docs/configuration.md") from exc
    problem = entrypoint_problem(str(entrypoint))
    if problem:
        raise CartonError(f"{where}: tool.carton.entrypoint {problem}")
    return Model(path, str(name), str(version), str(entrypoint),
                 requires_python=str(project.get("requires-python", "")))


class ModelFiles:
    """The files of a model folder, readable before a `.carton` is extracted: out of the
    archive, each checked against its MANIFEST hash (what extracting it checks), or from
    disk (a model folder or an unpacked carton). The worker selects the lock
    section from these while the model's process extracts the archive (plan.py).
    `published`: the archive's folder is published and held by this process
    (cache/inuse.py), which has just checked it whole: it is read as the warm path reads
    it, not out of the archive, opened and checked again."""

    def __init__(self, model: Model, *, published: bool = False) -> None:
        self._root = model.root
        self._archive = model.archive is not None
        self._where = str(model.archive)
        self._zf: zipfile.ZipFile | None = None
        self._manifest: dict[str, str] = {}
        self._folders: dict[str, set[str]] | None = None  # folder -> the folders in it
        # Out of the archive whenever there is one, even if its folder is published:
        # `cache clear` may take the folder out while this reads it (unless held).
        if model.archive is not None and not published:
            try:
                zf = zipfile.ZipFile(model.archive)
                check_carton_members(zf, os.path.getsize(model.archive), self._where)
                self._manifest = parse_manifest(read_member(zf, MANIFEST, self._where),
                                                self._where)
                check_manifest_covers(set(zf.namelist()) - {CARTON_TOML, MANIFEST},
                                      self._manifest, self._where)
            except (OSError, zipfile.BadZipFile, KeyError, zlib.error, EOFError,
                    NotImplementedError) as exc:
                raise ArchiveError(self._where, f"cannot read: {exc}") from exc
            self._zf = zf

    def __enter__(self) -> ModelFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zf is not None:
            self._zf.close()

    @property
    def pack(self) -> str | None:
        """Where the model's pack-time metadata is packed once it is extracted
        (metadatapack.py), or None for a model folder, which has it as a tree."""
        return str(self._root / PACK) if self._archive else None

    def read(self, relpath: str) -> bytes:
        """The bytes of `relpath` (below the model folder); FileNotFoundError if absent."""
        if self._zf is None:
            if relpath.startswith(DIST_INFO_DIR + "/"):
                return read_metadata(str(self._root / relpath), self.pack)
            return (self._root / relpath).read_bytes()
        member = MODEL_PREFIX + relpath
        expected = self._manifest.get(member)
        if expected is None:
            raise FileNotFoundError(f"{self._where}: no {member}")
        data = read_member(self._zf, member, self._where)
        if hashlib.sha256(data).hexdigest() != expected:
            raise ArchiveError(self._where, f"{member} does not match its MANIFEST hash")
        return data

    def folders(self, relpath: str) -> list[str]:
        """The names of the folders in `relpath` (none if it is absent), sorted."""
        if self._zf is None:
            if (relpath + "/").startswith(DIST_INFO_DIR + "/"):
                return metadata_folders(str(self._root / relpath), self.pack)
            try:
                return sorted(e.name for e in os.scandir(self._root / relpath) if e.is_dir())
            except OSError:
                return []
        if self._folders is None:  # one pass over the archive's names, not one per call
            self._folders = {}
            for member in self._manifest:
                parts = member[len(MODEL_PREFIX):].split("/")[:-1]
                for i in range(len(parts)):
                    self._folders.setdefault("/".join(parts[:i]), set()).add(parts[i])
        return sorted(self._folders.get(relpath, ()))


def _open_archive(path: Path, home: Path, extract: bool = True) -> Model:
    where = str(path)
    check_end_record(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for required in (CARTON_TOML, MANIFEST):
                if required not in names:
                    raise ArchiveError(where, f"{required} is missing; is this a .carton file?")
            raw_manifest = read_member(zf, MANIFEST, where)
            info = parse_carton_toml(read_member(zf, CARTON_TOML, where), where)
            root = Path(models_dir(home), hashlib.sha256(raw_manifest).hexdigest())
            if extract and not is_published(root):
                check_carton_members(zf, os.path.getsize(path), where)
                _extract(zf, parse_manifest(raw_manifest, where), names, root, where)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        # zlib.error and EOFError: corrupt member data (a CRC that does not match is
        # BadZipFile); NotImplementedError: a zip feature zipfile cannot read.
        raise ArchiveError(where, f"not a .carton archive ({exc})") from exc
    except OSError as exc:
        raise ArchiveError(where, f"cannot read: {exc}") from exc
    return Model(root, info.name, info.version, info.entrypoint, archive=path,
                 requires_python=info.requires_python)


def copy_model(path: Path, dest: Path, home: Path) -> None:
    """A full, writable copy of MODEL's model folder, bundled wheels included, at `dest`
    (published by one rename): where a carton is locked for a new interpreter."""
    model = open_model(path, home)
    from_archive = (BUNDLED_DIR + "/", DIST_INFO_DIR + "/")
    carton_dir = model.root / ".carton"

    def ignore(folder: str, names: list[str]) -> set[str]:
        # The extracted metadata (a pack, or a tree an earlier carton extracted) comes
        # from the archive, as a model folder has it: a tree.
        if model.archive is not None and Path(folder) == carton_dir:
            return {n for n in names if f".carton/{n}" in (PACK, DIST_INFO_DIR)}
        return {COMPLETE} & set(names)

    with publishing(dest) as tree:
        shutil.copytree(model.root, tree, ignore=ignore, dirs_exist_ok=True)
        if model.archive is not None:
            where = str(model.archive)
            with zipfile.ZipFile(model.archive) as zf:
                manifest = parse_manifest(read_member(zf, MANIFEST, where), where)
                for name, expected in sorted(manifest.items()):
                    relpath = name[len(MODEL_PREFIX):]
                    if name.startswith(MODEL_PREFIX) and relpath.startswith(from_archive):
                        target = tree / relpath
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with target.open("xb") as out:
                            out.writelines(_checked(zf, zf.getinfo(name), expected, where))


def _extract(zf: zipfile.ZipFile, manifest: dict[str, str], names: set[str], root: Path,
             where: str) -> None:
    """Extract model/ into `root`, checking every member against MANIFEST (the member
    policy has passed). Bundled wheels stay in the archive (the cache reads them from
    there when they are first imported), but are read and checked here too, once: a
    damaged one is a damaged carton, refused before any of the model's code runs."""
    check_manifest_covers(names - {CARTON_TOML, MANIFEST}, manifest, where)
    with publishing(root) as work:
        made: set[Path] = set()  # one mkdir per folder, not one per file
        pack_file: BinaryIO | None = None
        pack: PackWriter | None = None
        try:
            for member, expected in sorted(manifest.items()):
                if runtime_member(member):
                    continue  # the executable carton's own part (zipmain.py extracts it)
                relpath = member[len(MODEL_PREFIX):]
                info = zf.getinfo(member)
                if relpath.startswith(BUNDLED_DIR + "/"):
                    _check_bundled(zf, info, relpath, expected, where)
                    continue
                if relpath.startswith(DIST_INFO_DIR + "/"):
                    # The locked wheels' metadata: one file, not a tree (metadatapack.py).
                    if pack is None:
                        (work / PACK).parent.mkdir(parents=True, exist_ok=True)
                        pack_file = open(work / PACK, "xb")  # noqa: SIM115 (closed below)
                        pack = PackWriter(pack_file)
                    pack.add(relpath[len(DIST_INFO_DIR) + 1:],
                             _checked(zf, info, expected, where))
                    continue
                target = work / relpath
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                with open(target, "xb") as out:
                    out.writelines(_checked(zf, info, expected, where))
                mode = (info.external_attr >> 16) & 0o777
                target.chmod(0o755 if mode & 0o111 else 0o644)
            if pack is not None:
                pack.finish()
        finally:
            if pack_file is not None:
                pack_file.close()


def _checked(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: str,
             where: str) -> Iterator[bytes]:
    """The bytes of member `info`, in chunks; ArchiveError, after the last chunk, if
    they do not have the sha256 `expected` (its MANIFEST line)."""
    digest = hashlib.sha256()
    try:
        with zf.open(info) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                yield chunk
    except DAMAGED as exc:
        raise ArchiveError(where, f"{info.filename} is damaged ({exc})") from exc
    if digest.hexdigest() != expected:
        raise ArchiveError(where, f"{info.filename} does not match its MANIFEST hash")


def _check_bundled(zf: zipfile.ZipFile, info: zipfile.ZipInfo, relpath: str, expected: str,
                   where: str) -> None:
    """A bundled wheel is `.carton/bundled_wheels/<sha256>/<file>`: its bytes must have
    that sha256, which MANIFEST must say too."""
    parts = relpath.split("/")
    if len(parts) != 4 or parts[2] != expected:
        raise ArchiveError(where, f"{MODEL_PREFIX}{relpath}: a bundled wheel's folder must be "
                                  "the sha256 that MANIFEST records for it")
    check_member_hash(zf, info.filename, expected, where)
