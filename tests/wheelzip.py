"""Wheel archives written member by member, for the checks of hostile wheels: the members of
a small `demo` wheel with a correct RECORD over them, and a zip written exactly as given
(duplicates, odd modes and links included), which `factory.make_wheel` never makes."""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .factory import record_row

DIST_INFO = "demo-1.0.dist-info"
INIT = "demo/__init__.py"


def metadata(name: str = "demo", version: str = "1.0") -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def wheel_file(wheel_version: str = "1.0") -> bytes:
    return (f"Wheel-Version: {wheel_version}\nGenerator: carton-tests\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()


def record(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def members(files: dict[str, bytes] | None = None, *, dist_info: str = DIST_INFO,
            meta: bytes | None = None, wheel: bytes | None = None) -> list[tuple[str, bytes]]:
    """A wheel's members with a correct RECORD over all of them, as (name, bytes) pairs."""
    out = dict(files if files is not None else {INIT: b"VALUE = 1\n"})
    out[f"{dist_info}/METADATA"] = meta if meta is not None else metadata()
    out[f"{dist_info}/WHEEL"] = wheel if wheel is not None else wheel_file()
    rows = [record_row(n, d) for n, d in out.items()] + [[f"{dist_info}/RECORD", "", ""]]
    out[f"{dist_info}/RECORD"] = record(rows)
    return list(out.items())


def write_zip(path: Path, entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """Write entries as given (duplicates included), regular files unless a ZipInfo says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted here
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for entry, data in entries:
                if isinstance(entry, str):
                    entry = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
                    entry.external_attr = 0o100644 << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(entry, data)
    return path


def orphaned(path: Path, name: str) -> Path:
    """The archive with the first central directory record of `name` taken out: its
    member's bytes stay in the file, behind their local header, but the archive no
    longer lists them (a reader that walks local headers sees two copies, zipfile one)."""
    import struct

    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    (signature, disk, cd_disk, on_disk, total, cd_size, cd_offset,
     comment) = struct.unpack("<IHHHHIIH", data[end:end + 22])
    records, at = [], cd_offset
    while at < cd_offset + cd_size:
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[at + 28:at + 34])
        records.append(data[at:at + 46 + name_length + extra_length + comment_length])
        at += len(records[-1])
    names = [r[46:46 + struct.unpack("<H", r[28:30])[0]].decode() for r in records]
    del records[names.index(name)]
    directory = b"".join(records)
    tail = struct.pack("<IHHHHIIH", signature, disk, cd_disk, on_disk - 1, total - 1,
                       len(directory), cd_offset, comment)
    path.write_bytes(data[:cd_offset] + directory + tail + data[end + 22:])
    return path


def central_directory_at(data: bytes) -> int:
    """Where an archive's central directory starts (its end record says): the end of its
    members, the last bytes a download brings."""
    import struct

    end = data.rindex(b"PK\x05\x06")
    return int(struct.unpack("<I", data[end + 16:end + 20])[0])
