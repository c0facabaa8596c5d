"""`check-reproducible MODEL_DIR`: pack the model twice, from two copies in two temporary
folders whose files carry times a day apart, and compare the archives.

The lock is brought up to date first, in place (as `pack` does), so that both builds
take the fast path: what is compared is packing, not the resolver or the index. When
the two archives differ, the first member that differs is named.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from carton_backend.config import ModelConfig, load_config
from carton_backend.lock.locking import lock_model
from carton_backend.packing.modelfiles import model_files
from carton_backend.packing.pack import write_carton
from carton_hook.formats.hashing import file_sha256


@dataclass(frozen=True)
class Outcome:
    first: str  # sha256 of each build
    second: str
    difference: str | None  # the first member that differs, when they do

    @property
    def reproducible(self) -> bool:
        return self.first == self.second


def check_reproducible(config: ModelConfig) -> Outcome:
    """Pack `config`'s model twice from two copies; compare."""
    lock_model(config)
    with tempfile.TemporaryDirectory(prefix="carton-repro-") as tmp:
        builds = []
        for n, shift in ((1, 0), (2, 3600 * 24 + 17)):
            copy = Path(tmp) / f"copy-{n}" / config.root.name
            _copy_model(config, copy, shift)
            builds.append(write_carton(load_config(copy), lock_model(load_config(copy)),
                                       Path(tmp) / f"dist-{n}"))
        first, second = (file_sha256(b) for b in builds)
        difference = None if first == second else _first_difference(*builds)
    return Outcome(first, second, difference)


def _copy_model(config: ModelConfig, dest: Path, shift: int) -> None:
    """The files that get packed, at the same relative paths, with their times moved by
    `shift` seconds (a checkout at another time)."""
    for f in model_files(config):
        target = dest / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f.path, target)
        stat = f.path.stat()
        os.utime(target, (stat.st_atime + shift, stat.st_mtime + shift))


def _first_difference(a: Path, b: Path) -> str:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names_a, names_b = za.namelist(), zb.namelist()
        if names_a != names_b:
            extra = sorted(set(names_a) ^ set(names_b))
            return f"{extra[0]} (in one build only)" if extra else "the order of members"
        for ia, ib in zip(za.infolist(), zb.infolist(), strict=True):
            if za.read(ia) != zb.read(ib):
                return f"{ia.filename} (its bytes)"
            if (ia.date_time, ia.external_attr, ia.compress_type) != (
                    ib.date_time, ib.external_attr, ib.compress_type):
                return f"{ia.filename} (its time, mode or compression)"
    return "the zip structure"
