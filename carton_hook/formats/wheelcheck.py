"""Validate a wheel file before trusting it, and read what carton needs from it.

The same checks run at pack time (in the build half) and before unpacking (in the
runtime), so a wheel that one half accepts the other accepts too. A wheel passes only if
every member name is safe to write on any OS, every member is a regular file listed in
RECORD with a strong hash that matches, and its `.dist-info` agrees with its filename.
This is stricter than pip, which does not check RECORD at all.
"""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

from carton_hook.errors import UnsafeMember, WheelError
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.importnames import (
    import_names,
    install_paths,
    parse_pth,
    rooted_import_names,
)
from carton_hook.formats.members import check_members
from carton_hook.formats.recordfile import RecordError, RecordRow, parse_rows, record_row

# Metadata files kept at pack time, so that importlib.metadata can be answered without
# downloading the wheel. License files and the like are left out.
METADATA_FILES = ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt")
STRONG_HASHES = frozenset({"sha256", "sha384", "sha512"})
DATA_SCHEMES = frozenset({"purelib", "platlib", "scripts", "headers", "data"})
# The runtime's completion marker: a wheel that ships one could fake a finished entry.
RESERVED_TOP_LEVEL = frozenset({".carton-complete"})

_WHEEL_NAME = re.compile(
    r"^(?P<name>[^\s-]+?)-(?P<version>[^\s-]+?)(-(?P<build>\d[^-]*))?"
    r"-(?P<tags>[^\s-]+?-[^\s-]+?-[^\s-]+?)\.whl$"
)


class WheelInfo(NamedTuple):
    """What a validated wheel provides. (Not a dataclass: `dataclasses` brings `inspect`,
    which a first run's worker would import for this alone.)"""

    filename: str
    name: str
    version: str
    dist_info: str
    imports: tuple[str, ...]
    metadata: dict[str, bytes]
    # Extra import roots named by path lines of the wheel's .pth files, in order.
    roots: tuple[str, ...]
    # .pth files with import lines: code that site would run and carton never does.
    pth_with_code: tuple[str, ...]
    # Each member's RECORD row (recordfile.RecordRow), the signature files and RECORD
    # itself aside: what `check_wheel(contents=False)` leaves to the reader.
    record: dict[str, RecordRow]


def parse_filename(filename: str) -> tuple[str, str]:
    """The distribution name and version a wheel filename claims."""
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise WheelError(filename, "not a valid wheel filename (name-version-py-abi-platform.whl)")
    return match["name"], match["version"]


def check_wheel(path: Path, filename: str | None = None, *, contents: bool = True) -> WheelInfo:
    """Validate the wheel at `path` (called `filename`, default its own name) and describe it.

    With `contents=False`, every check but reading each member against its RECORD hash:
    the caller must do that as it reads them (`unpack` does, in the pass that installs).
    Raises `WheelError` naming the wheel and the first problem found.
    """
    with checked_wheel(path, filename, contents=contents) as (_, info):
        return info


@contextmanager
def checked_wheel(path: Path, filename: str | None = None, *,
                  contents: bool = True) -> Iterator[tuple[zipfile.ZipFile, WheelInfo]]:
    """`check_wheel`, with the archive kept open for the block: what the block reads is
    the archive that was checked, its member list read once (torch's 12,248 members
    take ~40 ms to list). Errors of the block itself are not rewritten."""
    filename = filename or path.name
    dist, version = parse_filename(filename)
    with _as_wheel_error(filename):
        zf = zipfile.ZipFile(path)
    with zf:
        with _as_wheel_error(filename):
            info = _check_open(zf, filename, dist, version, path.stat().st_size, contents)
        yield zf, info


def check_wheel_stream(stream: IO[bytes], size: int, filename: str, *,
                       contents: bool = True) -> WheelInfo:
    """`check_wheel` of a wheel read from a seekable binary stream of `size` bytes (a
    local file, or one read by byte ranges over HTTP)."""
    dist, version = parse_filename(filename)
    with _as_wheel_error(filename), zipfile.ZipFile(stream) as zf:
        return _check_open(zf, filename, dist, version, size, contents)


@contextmanager
def _as_wheel_error(filename: str) -> Iterator[None]:
    """Reading failures of the wheel `filename` as a `WheelError` naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        # zlib.error and EOFError: corrupt member data; NotImplementedError: a compression
        # method or feature zipfile cannot read.
        raise WheelError(filename, f"not a valid zip archive ({exc})") from exc
    except OSError as exc:
        raise WheelError(filename, f"cannot read: {exc}") from exc


def _check_open(zf: zipfile.ZipFile, filename: str, dist: str, version: str,
                compressed: int, contents: bool) -> WheelInfo:
    try:
        files = check_members(zf.infolist(), compressed, reserved=_reserved)
    except UnsafeMember as exc:
        raise WheelError(filename, str(exc)) from None
    dist_info = _dist_info_dir(filename, [i.filename for i in files], dist, version)
    names = {i.filename for i in files}
    for required in ("METADATA", "WHEEL", "RECORD"):
        if f"{dist_info}/{required}" not in names:
            raise WheelError(filename, f"{dist_info}/{required} is missing")
    _check_wheel_version(filename, zf.read(f"{dist_info}/WHEEL"))
    _check_metadata(filename, zf.read(f"{dist_info}/METADATA"), dist, version)
    _check_data_dirs(filename, names, dist_info)
    record = check_record(zf, filename, dist_info, files, contents=contents)
    metadata = {n: zf.read(f"{dist_info}/{n}") for n in METADATA_FILES
                if f"{dist_info}/{n}" in names}
    roots, with_code = _pth_roots(zf, names)
    imports = set(import_names(names))
    for root in roots:
        imports.update(rooted_import_names(names, root))
    return WheelInfo(
        filename=filename,
        name=dist,
        version=version,
        dist_info=dist_info,
        imports=tuple(sorted(imports)),
        metadata=metadata,
        roots=tuple(roots),
        pth_with_code=tuple(with_code),
        record=record,
    )


# .pth files whose start-up code carton does itself, for a locked distribution that ships
# them: setuptools' distutils shim (the finder asks it, loading/finder.py) and coverage's
# measurement of subprocesses (loading/pthstandins.py). The pack says nothing of these.
PTH_DONE_BY_CARTON = frozenset({"distutils-precedence.pth", "a1_coverage.pth"})


def _pth_roots(zf: zipfile.ZipFile, names: set[str]) -> tuple[list[str], list[str]]:
    """Path lines of the `.pth` files that land in site-packages, and the files that
    also hold import lines."""
    roots: list[str] = []
    with_code: list[str] = []
    installed: dict[str, str] = {}  # where a member lands -> the member
    for member in names:
        landed = install_paths([member])
        if landed:
            installed[landed[0]] = member
    present_dirs = {p.rsplit("/", 1)[0] for p in installed if "/" in p}
    for path, member in sorted(installed.items()):
        if "/" in path or not path.endswith(".pth"):
            continue
        try:
            text = zf.read(member).decode("utf-8")
        except UnicodeDecodeError:
            continue
        found, runs_code = parse_pth(text)
        if runs_code:
            with_code.append(path)
        for root in found:
            if root not in roots and any(d == root or d.startswith(root + "/")
                                         for d in present_dirs):
                roots.append(root)
    return roots, with_code


def _reserved(name: str) -> bool:
    """A member that would land on the runtime's completion marker."""
    installed = install_paths([name.rstrip("/")])
    return bool(installed) and installed[0].split("/")[0] in RESERVED_TOP_LEVEL


def _dist_info_dir(filename: str, names: list[str], dist: str, version: str) -> str:
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise WheelError(filename,
                         f"expected exactly one .dist-info folder, found {found or 'none'}")
    stem = found[0][: -len(".dist-info")]
    name, _, ver = stem.rpartition("-")
    if canonical_name(name) != canonical_name(dist) or not _same_version(ver, version):
        raise WheelError(filename, f"{found[0]} does not match the filename's {dist} {version}")
    return found[0]


def _same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def _check_wheel_version(filename: str, raw: bytes) -> None:
    from email.parser import BytesParser  # ~20 ms of import: only when a wheel is read

    msg = BytesParser().parsebytes(raw)
    value = (msg.get("Wheel-Version") or "").strip()
    if not re.fullmatch(r"\d+\.\d+", value):
        raise WheelError(filename, f"WHEEL has no valid Wheel-Version ({value!r})")
    if value.split(".")[0] != "1":
        raise WheelError(filename, f"Wheel-Version {value} is not supported (only 1.x)")


def _check_metadata(filename: str, raw: bytes, dist: str, version: str) -> None:
    from email.parser import BytesParser

    msg = BytesParser().parsebytes(raw)
    name, ver = msg.get("Name"), msg.get("Version")
    if not name or not ver:
        raise WheelError(filename, "METADATA lacks Name or Version")
    if canonical_name(str(name)) != canonical_name(dist) or not _same_version(str(ver), version):
        raise WheelError(filename, f"METADATA says {name} {ver}, the filename {dist} {version}")


def _check_data_dirs(filename: str, names: set[str], dist_info: str) -> None:
    data_dir = dist_info[: -len(".dist-info")] + ".data"
    for name in names:
        top, _, rest = name.partition("/")
        if top.endswith(".data"):
            if top != data_dir:
                raise WheelError(filename, f"{top}/ does not match {dist_info}")
            scheme = rest.split("/", 1)[0]
            if scheme not in DATA_SCHEMES or "/" not in rest:
                raise WheelError(filename, f"{name!r} is not in a known .data scheme")


def check_record(zf: zipfile.ZipFile, filename: str, dist_info: str,
                 files: list[zipfile.ZipInfo], *, contents: bool = True) -> dict[str, RecordRow]:
    """Every file is listed in RECORD exactly once with a strong hash that matches its
    bytes and size; every RECORD row names a file that is there. Without `contents`, the
    sizes are compared with the zip's and the bytes are left to the caller. Returns the
    entry of each member that must match (all but RECORD and its signatures)."""
    record_name = f"{dist_info}/RECORD"
    unsigned = {record_name, f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
    try:
        rows = parse_rows(zf.read(record_name).decode("utf-8"))
    except (UnicodeDecodeError, RecordError, csv.Error) as exc:
        raise WheelError(filename, f"RECORD cannot be parsed ({exc})") from exc
    entries: dict[str, RecordRow] = {}
    for row in rows:
        path = row[0]
        if path in entries:
            raise WheelError(filename, f"RECORD lists {path!r} twice")
        try:
            entries[path] = record_row(*row)
        except RecordError as exc:
            raise WheelError(filename, f"RECORD row for {path!r} is invalid: {exc}") from exc
    present = {i.filename for i in files}
    checked: dict[str, RecordRow] = {}
    missing = sorted(set(entries) - present)
    if missing:
        raise WheelError(filename, f"RECORD lists {missing[0]!r}, which the wheel lacks")
    for info in files:
        entry = entries.get(info.filename)
        if info.filename in unsigned:
            if info.filename != record_name and entry is not None:
                raise WheelError(filename, f"signature file {info.filename!r} is listed in RECORD")
            continue
        if entry is None:
            raise WheelError(filename, f"{info.filename!r} is not listed in RECORD")
        if entry.hash_ is None or entry.size is None:
            raise WheelError(filename, f"RECORD has no hash or size for {info.filename!r}")
        if entry.hash_.name not in STRONG_HASHES:
            raise WheelError(filename, f"RECORD uses {entry.hash_.name} for {info.filename!r}; "
                                       "only sha256, sha384 and sha512 are accepted")
        checked[info.filename] = entry
        if not contents:
            if entry.size != info.file_size:
                raise WheelError(filename,
                                 f"{info.filename!r} does not match its RECORD hash or size")
            continue
        with zf.open(info) as stream:
            if not entry.validate_stream(stream):
                raise WheelError(filename,
                                 f"{info.filename!r} does not match its RECORD hash or size")
    return checked
