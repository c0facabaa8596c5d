"""Write zip entries that depend only on their bytes: fixed time, fixed mode, no host fields."""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
EPOCH_1980 = 315532800


def source_date_epoch() -> int:
    """`SOURCE_DATE_EPOCH` if set (never before 1980, which zip cannot store), else 1980."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    try:
        return max(int(value), EPOCH_1980)
    except ValueError:
        return EPOCH_1980


def open_zip(file: BinaryIO) -> zipfile.ZipFile:
    """A zip being written. Its members are `entry()`s, which zipfile deflates at zlib's
    default level (6) whatever level the ZipFile names: that level is part of what makes
    an archive's bytes."""
    return zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED)


def zip_timestamp() -> tuple[int, int, int, int, int, int]:
    """`SOURCE_DATE_EPOCH` (UTC) as a zip date, or 1980-01-01 00:00:00."""
    return time.gmtime(source_date_epoch())[:6]


def entry(name: str, *, executable: bool = False, stored: bool = False,
          size: int = 0) -> zipfile.ZipInfo:
    """A ZipInfo with everything but the name and content fixed."""
    info = zipfile.ZipInfo(name, date_time=zip_timestamp())
    info.create_system = 3  # Unix, so that external_attr carries the mode
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.file_size = size
    return info


def write_bytes(zf: zipfile.ZipFile, name: str, data: bytes, *,
                executable: bool = False, stored: bool = False) -> None:
    """Add `data` as member `name`."""
    zf.writestr(entry(name, executable=executable, stored=stored, size=len(data)), data)


def write_file(zf: zipfile.ZipFile, name: str, path: Path, *, executable: bool = False,
               stored: bool = False) -> str:
    """Stream the file at `path` in as member `name`; returns the sha256 of what was written."""
    digest = hashlib.sha256()
    info = entry(name, executable=executable, stored=stored, size=path.stat().st_size)
    with path.open("rb") as src, zf.open(info, "w", force_zip64=info.file_size > 0x7FFFFFFF) as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
