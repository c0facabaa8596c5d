"""The `.carton` archive layout, and reading one back with its MANIFEST checked.

    carton.toml     format = 1, name, version, entrypoint, requires-python, created-by
    MANIFEST        "<path>=<sha256>" for every other member, sorted
    model/...       the model folder as packed, with model/.carton/carton.lock

The build half writes archives to this layout; both halves read them through here.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

from carton_hook.errors import ArchiveError, UnsafeMember
from carton_hook.formats.members import check_members
from carton_hook.formats.metadatapack import PACK

ARCHIVE_FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
CARTON_TOML = "carton.toml"
MANIFEST = "MANIFEST"
MODEL_PREFIX = "model/"
# An executable carton also carries the runtime (runtime/hook/, runtime/deps/) and the
# __main__.py that `python model.carton` runs (carton_hook/zipmain.py).
RUNTIME_PREFIX = "runtime/"
ZIP_MAIN = "__main__.py"
# The model's core metadata (what its wheel's METADATA says: summary, license, authors,
# URLs, the readme), written by the pack: `info` shows it.
METADATA_MEMBER = MODEL_PREFIX + ".carton/METADATA"


def runtime_member(name: str) -> bool:
    """A member of the executable part of an archive, not of the model."""
    return name == ZIP_MAIN or name.startswith(RUNTIME_PREFIX)


# What zipfile raises for a member whose data is damaged: a bad CRC or a short member
# (BadZipFile, EOFError), a broken deflate stream (zlib.error), a method or feature it
# cannot read (NotImplementedError), encryption (RuntimeError).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    """The bytes of member `name`; ArchiveError naming it if they cannot be read."""
    try:
        return zf.read(name)
    except DAMAGED as exc:
        raise ArchiveError(where, f"{name} is damaged ({exc})") from exc


def check_member_hash(zf: zipfile.ZipFile, name: str, expected: str, where: str) -> None:
    """Member `name` reads whole and has the sha256 `expected` (its MANIFEST line)."""
    digest = hashlib.sha256()
    try:
        with zf.open(name) as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except DAMAGED as exc:
        raise ArchiveError(where, f"{name} is damaged ({exc})") from exc
    if digest.hexdigest() != expected:
        raise ArchiveError(where, f"{name} does not match its MANIFEST hash")


def check_carton_members(zf: zipfile.ZipFile, size: int, where: str) -> None:
    """The member policy that wheels pass too (members.py: names, collisions, types,
    methods, sizes), and a carton's own layout: carton.toml, MANIFEST, the executable
    carton's runtime part, and below model/ anything but carton's completion marker."""
    try:
        files = check_members(zf.infolist(), size, reserved=_reserved)
    except UnsafeMember as exc:
        raise ArchiveError(where, str(exc)) from None
    for info in files:
        name = info.filename
        if not (name.startswith(MODEL_PREFIX) or name in (CARTON_TOML, MANIFEST)
                or runtime_member(name)):
            raise ArchiveError(where, f"member {name!r} is outside model/ (unsafe)")


def check_manifest_covers(members: set[str], manifest: dict[str, str], where: str) -> None:
    """MANIFEST lists exactly the archive's members but itself and carton.toml."""
    if members != set(manifest):
        extra = sorted(members ^ set(manifest))[0]
        raise ArchiveError(where, f"MANIFEST and the archive disagree about {extra!r}")


# The cache marks an extracted model complete with this file (cache/layout.py's COMPLETE,
# which test_archive checks is the same name): a model may not bring its own.
RESERVED_MEMBER = ".carton-complete"


def _reserved(name: str) -> bool:
    if not name.startswith(MODEL_PREFIX):
        return False
    relpath = name[len(MODEL_PREFIX):]
    return (relpath.split("/")[0] == RESERVED_MEMBER
            # nor the file extraction packs the locked wheels' metadata into, in any case
            or relpath.casefold() == PACK or relpath.casefold().startswith(PACK + "/"))


SUFFIX = ".carton"


class CartonInfo(NamedTuple):
    """The fields of `carton.toml`."""

    name: str
    version: str
    entrypoint: str
    requires_python: str
    created_by: str


_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_ENTRYPOINT = re.compile(rf"{_DOTTED}(?::{_DOTTED})?")


def entrypoint_problem(entrypoint: str) -> str | None:
    """Why `entrypoint` is not one carton runs, or None: `module:function`, `module`, or
    `path/to/script.py` inside the model folder (relative, forward slashes, no `..`).
    The build half checks a project's entrypoint with this, the runtime each carton's."""
    if entrypoint.endswith(".py"):
        parts = entrypoint.split("/")
        if (entrypoint.startswith("/") or "\\" in entrypoint or ":" in entrypoint
                or any(part in ("", ".", "..") for part in parts)):
            return (f"{entrypoint!r} must be a relative path inside the model folder, "
                    "with forward slashes and no '..'")
        return None
    if not _ENTRYPOINT.fullmatch(entrypoint):
        return f"{entrypoint!r} is not 'module:function', 'module' or 'path/to/script.py'"
    return None


def format_manifest(entries: dict[str, str]) -> bytes:
    """MANIFEST's bytes: one `path=sha256` line per member, sorted by path."""
    return "".join(f"{path}={sha}\n" for path, sha in sorted(entries.items())).encode("utf-8")


def parse_manifest(raw: bytes, where: str) -> dict[str, str]:
    """Read MANIFEST; paths may contain `=`, so each line splits at its last one."""
    entries: dict[str, str] = {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveError(where, "MANIFEST is not UTF-8") from exc
    for number, line in enumerate(text.splitlines(), 1):
        path, sep, sha = line.rpartition("=")
        if not sep or not path or not _SHA256.fullmatch(sha):
            raise ArchiveError(where, f"MANIFEST line {number} is not `path=sha256`")
        if path in entries:
            raise ArchiveError(where, f"MANIFEST lists {path!r} twice")
        entries[path] = sha
    return entries


def format_carton_toml(info: CartonInfo) -> bytes:
    """carton.toml's bytes. Values are JSON strings, which TOML reads as basic strings."""
    fields = {
        "format": str(ARCHIVE_FORMAT),
        "name": _toml_string(info.name),
        "version": _toml_string(info.version),
        "entrypoint": _toml_string(info.entrypoint),
        "requires-python": _toml_string(info.requires_python),
        "created-by": _toml_string(info.created_by),
    }
    return "".join(f"{k} = {v}\n" for k, v in fields.items()).encode("utf-8")


def _toml_string(value: str) -> str:
    import json

    # Not ensure_ascii: JSON would escape characters beyond the BMP as surrogate pairs,
    # which TOML refuses. JSON leaves DEL raw, which TOML refuses too.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _loads_toml(text: str) -> dict[str, Any]:
    try:  # what format_carton_toml writes: importing tomllib costs ~14 ms of a first run
        return loads_flat_toml(text)
    except ValueError:
        pass  # anything else is TOML's to read, or to refuse
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    try:  # pragma: no cover - exercised on 3.10 only
        import tomli
    except ImportError:  # pragma: no cover - an executable carton on a bare 3.10
        return loads_flat_toml(text)
    return tomli.loads(text)  # pragma: no cover


def loads_flat_toml(text: str) -> dict[str, Any]:
    """The TOML that format_carton_toml writes (`key = "string"` or `key = 1` lines),
    without a TOML library: a carton packed on 3.11+ that runs on a bare 3.10 has none."""
    import json

    data: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if (not sep or not key.isascii() or not key.replace("-", "").replace("_", "").isalnum()
                or key in data):
            raise ValueError(f"line {number}: expected one key = value")
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError(f"line {number}: expected a string or an integer") from None
        # What JSON reads but TOML refuses: the escape \/, a raw DEL.
        if ((isinstance(parsed, str) and ("\\/" in value or "\x7f" in value))
                or not isinstance(parsed, (str, int)) or isinstance(parsed, bool)):
            raise ValueError(f"line {number}: expected a string or an integer")
        data[key] = parsed
    return data


def parse_carton_toml(raw: bytes, where: str) -> CartonInfo:
    """Read carton.toml and refuse formats this carton does not know."""
    try:
        data: dict[str, Any] = _loads_toml(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise ArchiveError(where, f"carton.toml is not valid TOML ({exc})") from exc
    except RecursionError:
        raise ArchiveError(where, "carton.toml is nested too deeply to be carton's") from None
    if type(data.get("format")) is not int or data["format"] != ARCHIVE_FORMAT:
        raise ArchiveError(where, f"carton.toml format {data.get('format')!r} is not supported "
                                  f"(this carton reads {ARCHIVE_FORMAT}); upgrade carton")
    values = {}
    for key in ("name", "version", "entrypoint", "requires-python", "created-by"):
        value = data.get(key)
        if not isinstance(value, str):
            raise ArchiveError(where, f"carton.toml: `{key}` is missing or not a string")
        values[key.replace("-", "_")] = value
    problem = entrypoint_problem(values["entrypoint"])
    if problem:
        raise ArchiveError(where, f"carton.toml: `entrypoint` {problem}")
    return CartonInfo(**values)


def check_end_record(path: Path) -> None:
    """A `.carton` ends with its zip end record (carton writes no archive comment). A cut
    file does not, and zipfile would take the end record of a bundled wheel inside it
    for the archive's own; refuse it here, with a message that says what happened."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 22))
            tail = f.read(22)
    except OSError as exc:
        raise ArchiveError(str(path), f"cannot read: {exc}") from exc
    if len(tail) < 22 or tail[:4] != b"PK\x05\x06" or tail[20:22] != b"\0\0":
        raise ArchiveError(str(path), "not a .carton archive (no zip end record at the end of "
                                      "the file: truncated, or not a zip file)")


def read_archive(path: Path) -> tuple[CartonInfo, dict[str, str]]:
    """Open a `.carton` file, check every member against MANIFEST, and return its header.

    Raises `ArchiveError` for a file that is not a zip, lacks a part, or does not match.
    """
    where = str(path)
    check_end_record(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            check_carton_members(zf, os.path.getsize(path), where)
            for required in (CARTON_TOML, MANIFEST):
                if required not in names:
                    raise ArchiveError(where, f"{required} is missing; is this a .carton file?")
            info = parse_carton_toml(read_member(zf, CARTON_TOML, where), where)
            manifest = parse_manifest(read_member(zf, MANIFEST, where), where)
            members = set(names) - {CARTON_TOML, MANIFEST}
            check_manifest_covers(members, manifest, where)
            for name in sorted(members):
                check_member_hash(zf, name, manifest[name], where)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        # zlib.error and EOFError: corrupt member data; NotImplementedError: a compression
        # method or feature zipfile cannot read.
        raise ArchiveError(where, f"not a .carton archive ({exc})") from exc
    except OSError as exc:
        raise ArchiveError(where, f"cannot read: {exc}") from exc
    return info, manifest
