"""Write the model's wheel: a normal, pure-Python wheel of the model folder.

It holds what the `.carton` packs of the model folder (its code, and the data files its
code reads from beside itself, such as `weights.json`), less what only packing needs:
carton's own `.carton/` (the lock, bundled wheels), pyproject.toml, the requirements
files, and the readme and license files, which METADATA carries. A `module:function`
entrypoint also becomes a console script. The editable wheel (PEP 660) holds a `.pth`
file that puts the model folder itself on `sys.path`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

from carton_backend import detzip
from carton_backend.config import ModelConfig
from carton_backend.packing.metadata import core_metadata
from carton_backend.packing.modelfiles import ModelFile, model_files
from carton_backend.resolution.requirements import read_tree
from carton_hook.filesystem import atomic
from carton_hook.formats.lockfile import Lock
from carton_hook.formats.recordfile import encode_digest
from carton_hook.formats.version import CREATED_BY

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


# Top-level files of a project that no code reads: METADATA carries the readme and the
# license, and installing them into site-packages' root would clash between projects.
# A module named like one (changes.py, license.py) is code the model imports: kept.
_CODE_SUFFIXES = (".py", ".pyi", ".so", ".pyd")
_PROJECT_FILES = re.compile(r"(README|LICEN[CS]E|COPYING|NOTICE|AUTHORS|CHANGELOG|CHANGES)"
                            r"(\.[^/]*)?", re.IGNORECASE)


def wheel_files(config: ModelConfig) -> list[ModelFile]:
    """The packed files of the model folder that its wheel installs."""
    skip = {"pyproject.toml", *(f.relpath for f in read_tree(config.root, config.requirements))}
    return [f for f in model_files(config)
            if f.relpath not in skip and not f.relpath.startswith(".")  # and .carton/
            and not ("/" not in f.relpath and _PROJECT_FILES.fullmatch(f.relpath)
                     and not f.relpath.endswith(_CODE_SUFFIXES))]


def write_wheel(config: ModelConfig, lock: Lock, out_dir: Path) -> str:
    """Write the wheel into `out_dir`; returns its file name."""
    return _write(config, lock, out_dir,
                  [(f.relpath, f.path.read_bytes(), f.executable) for f in wheel_files(config)])


def write_editable(config: ModelConfig, lock: Lock, out_dir: Path) -> str:
    """Write the PEP 660 editable wheel into `out_dir`: instead of the code, a `.pth`
    file that puts the model folder on `sys.path`, so that edits to the model's code
    take effect without installing again; returns its file name."""
    pth = f"{config.dist_name}.pth"
    return _write(config, lock, out_dir,
                  [(pth, f"{config.root.resolve()}\n".encode(), False)])


def _write(config: ModelConfig, lock: Lock, out_dir: Path,
           files: list[tuple[str, bytes, bool]]) -> str:
    """A wheel of `files` (path, bytes, executable) and the model's `.dist-info`."""
    name = wheel_name(config)
    dist_info = dist_info_name(config)
    record: list[str] = []
    with atomic.atomic_writer(out_dir / name) as raw, detzip.open_zip(raw) as zf:
        for relpath, data, executable in files:
            detzip.write_bytes(zf, relpath, data, executable=executable)
            record.append(_record_row(relpath, data))
        for meta_name, data in sorted(metadata_files(config, lock).items()):
            path = f"{dist_info}/{meta_name}"
            detzip.write_bytes(zf, path, data)
            record.append(_record_row(path, data))
        record.append(f"{dist_info}/RECORD,,")
        detzip.write_bytes(zf, f"{dist_info}/RECORD", "".join(r + "\n" for r in record).encode())
    return name


def _record_row(path: str, data: bytes) -> str:
    digest = encode_digest(hashlib.sha256(data).digest())
    row = io.StringIO()
    csv.writer(row, lineterminator="").writerow([path, f"sha256={digest}", len(data)])
    return row.getvalue()
