"""Write the `.carton` archive: deterministic, verified, published atomically.

Members are sorted, timestamps fixed (`SOURCE_DATE_EPOCH` or 1980-01-01), modes 0644 or
0755, wheels stored rather than compressed again. Every file is hashed for MANIFEST
first, and hashed again while it is written, so that a file changing under the packer,
or a bundled wheel that no longer matches its content address, fails the pack instead
of shipping.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path

from carton_backend import detzip
from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError
from carton_backend.packing.metadata import core_metadata, requires_python
from carton_backend.packing.modelfiles import ModelFile, model_files
from carton_backend.packing.runtimefiles import RuntimeFile, runtime_files, runtime_key, zip_main
from carton_hook.filesystem import atomic
from carton_hook.formats.archive import (
    CARTON_TOML,
    MANIFEST,
    METADATA_MEMBER,
    MODEL_PREFIX,
    SUFFIX,
    ZIP_MAIN,
    CartonInfo,
    format_carton_toml,
    format_manifest,
)
from carton_hook.formats.hashing import file_sha256
from carton_hook.formats.lockfile import BUNDLED_DIR, DIST_INFO_DIR, LOCK_PATH, Lock
from carton_hook.formats.version import CREATED_BY

log = logging.getLogger("carton")


def carton_name(config: ModelConfig) -> str:
    return f"{config.dist_name}-{config.file_version}{SUFFIX}"


def write_carton(config: ModelConfig, lock: Lock, out_dir: Path) -> Path:
    """Pack the model folder (whose lock is `lock`) into `out_dir`; returns the path."""
    files = model_files(config)
    by_path = {f.relpath: f for f in files}
    _check_complete(config, lock, by_path)
    manifest = {}
    for f in files:
        sha = file_sha256(f.path)
        if f.relpath.startswith(BUNDLED_DIR + "/"):
            expected = f.relpath.split("/")[2]
            if sha != expected:
                raise BuildError(f"{f.path}: sha256 is {sha}, but it is bundled as {expected}; "
                                 "the file was changed: lock again with --upgrade-package")
        manifest[MODEL_PREFIX + f.relpath] = sha
    runtime = runtime_files() if config.executable else []
    for r in runtime:
        manifest[r.arcname] = file_sha256(r.path)
    if METADATA_MEMBER in manifest:
        raise BuildError(f"{config.root / METADATA_MEMBER[len(MODEL_PREFIX):]}: carton writes "
                         "this file into the archive itself; remove it from the model folder")
    metadata = core_metadata(config, lock)
    manifest[METADATA_MEMBER] = hashlib.sha256(metadata).hexdigest()
    main = zip_main(runtime_key(manifest)) if config.executable else b""
    if config.executable:
        manifest[ZIP_MAIN] = hashlib.sha256(main).hexdigest()
    info = CartonInfo(
        name=config.name,
        version=config.version,
        entrypoint=config.entrypoint,
        requires_python=requires_python(config, lock),
        created_by=CREATED_BY,
    )
    out = out_dir / carton_name(config)
    with atomic.atomic_writer(out, executable=config.executable) as raw:
        if config.executable:
            raw.write(SHEBANG)  # zip readers skip what comes before the archive
        with detzip.open_zip(raw) as zf:
            _write_members(zf, manifest, info, files, runtime, main, metadata)
    log.info("wrote %s (%d files)", out, len(files))
    return out


# `./model.carton` runs it with the first python3 on PATH (the file is made executable).
SHEBANG = b"#!/usr/bin/env python3\n"


def _write_members(zf: zipfile.ZipFile, manifest: dict[str, str], info: CartonInfo,
                   files: list[ModelFile], runtime: list[RuntimeFile], main: bytes,
                   metadata: bytes) -> None:
    """Every member, in sorted order; each file hashed again as it is written. The
    executable carton's `__main__.py` is stored, not compressed: `python model.carton`
    then reads it without importing zlib (about a millisecond of every start)."""
    generated = {MANIFEST: format_manifest(manifest), CARTON_TOML: format_carton_toml(info),
                 METADATA_MEMBER: metadata}
    if main:
        generated[ZIP_MAIN] = main
    sources: dict[str, tuple[Path, bool]] = {r.arcname: (r.path, False) for r in runtime}
    sources.update({MODEL_PREFIX + f.relpath: (f.path, f.executable) for f in files})
    for arcname in sorted({*generated, *sources}):
        if arcname in generated:
            detzip.write_bytes(zf, arcname, generated[arcname], stored=arcname == ZIP_MAIN)
            continue
        path, executable = sources[arcname]
        sha = detzip.write_file(zf, arcname, path, executable=executable,
                                stored=arcname.endswith(".whl"))
        if sha != manifest[arcname]:
            raise BuildError(f"{path} changed while it was being packed; pack again")


def _check_complete(config: ModelConfig, lock: Lock, files: Mapping[str, object]) -> None:
    """The lock, every bundled wheel it names and every wheel's recorded metadata must be
    packed (not excluded)."""
    wheels = [p.wheel for e in lock.environments for p in e.packages]
    needed = [LOCK_PATH] + [w.path for w in wheels if w.path]
    packed_metadata = {f.split("/")[2] for f in files if f.startswith(DIST_INFO_DIR + "/")}
    needed += [f"{DIST_INFO_DIR}/{w.sha256}/" for w in wheels if w.sha256 not in packed_metadata]
    for relpath in needed:
        if relpath not in files:
            raise BuildError(f"{config.root / relpath} is needed by the lock but is missing "
                             "or excluded; check [tool.carton] exclude, or lock again")
