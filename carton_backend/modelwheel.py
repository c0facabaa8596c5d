"""Write the model's wheel: a normal, pure-Python wheel of the model's own code.

It holds the model's top-level modules and packages (folders with `__init__.py`, with
all their files), not its lock, data folders or bundled wheels: those live in the
`.carton`. A `module:function` entrypoint also becomes a console script.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from pathlib import Path

from carton_hook import CREATED_BY
from carton_hook.lockfile import Lock

from . import atomic, detzip
from .config import ModelConfig
from .metadata import core_metadata
from .modelfiles import ModelFile, model_files

TAG = "py3-none-any"


def wheel_name(config: ModelConfig) -> str:
    return f"{config.dist_name}-{config.file_version}-{TAG}.whl"


def dist_info_name(config: ModelConfig) -> str:
    return f"{config.dist_name}-{config.file_version}.dist-info"


def metadata_files(config: ModelConfig, lock: Lock) -> dict[str, bytes]:
    """The `.dist-info` files other than RECORD."""
    files = {
        "METADATA": core_metadata(config, lock),
        "WHEEL": (f"Wheel-Version: 1.0\nGenerator: {CREATED_BY}\nRoot-Is-Purelib: true\n"
                  f"Tag: {TAG}\n").encode(),
    }
    if ":" in config.entrypoint and not config.entrypoint.endswith(".py"):
        files["entry_points.txt"] = (
            f"[console_scripts]\n{config.name} = {config.entrypoint}\n").encode()
    return files


def write_metadata(config: ModelConfig, lock: Lock, metadata_dir: Path) -> str:
    """prepare_metadata_for_build_wheel: write the `.dist-info` folder, return its name."""
    folder = metadata_dir / dist_info_name(config)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in metadata_files(config, lock).items():
        (folder / name).write_bytes(data)
    return folder.name


def code_files(config: ModelConfig) -> list[ModelFile]:
    """Top-level `*.py` modules, and every file of top-level packages."""
    files = model_files(config)
    packages = {f.relpath.split("/", 1)[0] for f in files
                if f.relpath.count("/") == 1 and f.relpath.endswith("/__init__.py")
                and f.relpath.split("/", 1)[0].isidentifier()}
    return [f for f in files
            if (f.relpath.count("/") == 0 and f.relpath.endswith(".py")
                and f.relpath[:-3].isidentifier())
            or f.relpath.split("/", 1)[0] in packages]


def write_wheel(config: ModelConfig, lock: Lock, out_dir: Path) -> str:
    """Write the wheel into `out_dir`; returns its file name."""
    name = wheel_name(config)
    dist_info = dist_info_name(config)
    record: list[str] = []
    with atomic.atomic_writer(out_dir / name) as raw, detzip.open_zip(raw) as zf:
        for f in code_files(config):
            data = f.path.read_bytes()
            detzip.write_bytes(zf, f.relpath, data, executable=f.executable)
            record.append(_record_row(f.relpath, data))
        for meta_name, data in sorted(metadata_files(config, lock).items()):
            path = f"{dist_info}/{meta_name}"
            detzip.write_bytes(zf, path, data)
            record.append(_record_row(path, data))
        record.append(f"{dist_info}/RECORD,,")
        detzip.write_bytes(zf, f"{dist_info}/RECORD", "".join(r + "\n" for r in record).encode())
    return name


def _record_row(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    row = io.StringIO()
    csv.writer(row, lineterminator="").writerow([path, f"sha256={digest}", len(data)])
    return row.getvalue()
