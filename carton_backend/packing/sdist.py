"""Write the model's sdist: the model folder with its `.carton/`, deterministically.

A wheel built from this sdist finds the lock and the bundled wheels inside it and never
re-resolves.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from carton_backend.config import ModelConfig
from carton_backend.detzip import source_date_epoch
from carton_backend.packing.metadata import core_metadata
from carton_backend.packing.modelfiles import model_files
from carton_hook.filesystem import atomic
from carton_hook.formats.lockfile import Lock


def sdist_name(config: ModelConfig) -> str:
    return f"{config.dist_name}-{config.file_version}.tar.gz"


def write_sdist(config: ModelConfig, lock: Lock, out_dir: Path) -> str:
    """Write the sdist into `out_dir`; returns its file name."""
    name = sdist_name(config)
    prefix = name.removesuffix(".tar.gz")
    mtime = source_date_epoch()
    with atomic.atomic_writer(out_dir / name) as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = [("PKG-INFO", None, False)] + [
            (f.relpath, f.path, f.executable) for f in model_files(config)]
        for relpath, path, executable in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(f"{prefix}/{relpath}")
            info.mtime = mtime
            info.mode = 0o755 if executable else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path is None:
                data = core_metadata(config, lock)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = path.stat().st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
    return name
