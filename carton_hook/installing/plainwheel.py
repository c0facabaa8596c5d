"""Install a wheel of the plain form without installer, writing exactly what installer
writes for it (unpack.py gives installer every other wheel).

The plain form is what most wheels are: no `.data` folder, no RECORD signature, no
INSTALLER of their own, every RECORD row sha256, and, where they name console or GUI
scripts, an `entry_points.txt` of `[section]` headers and `name = module:attr` lines
that carton reads as configparser does, for an interpreter whose path fits a plain
shebang. The tree, each file's bytes and mode, and the installed RECORD are installer's
own, byte for byte (the tests hold them against installer's, wheel by wheel); every
member's bytes are checked against RECORD as they are written, and every file is created
as installer's destination here creates it (safewrite.py).

Why: importing installer costs a first run's worker ~14 ms of its core before its first
unpacking (`dataclasses` with `inspect`, `email.policy`, `configparser`), and its
per-file machinery about as much again over a small model's wheels, on the lane a small
first run waits on (docs/performance.md).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from carton_hook.cache.layout import SCHEME_FOLDERS
from carton_hook.errors import WheelError
from carton_hook.formats.recordfile import encode_digest
from carton_hook.installing import inflate, safewrite
from carton_hook.installing.splitunpack import executable_member

TYPE_CHECKING = False
if TYPE_CHECKING:
    import zipfile
    from collections.abc import Callable
    from pathlib import Path

    from carton_hook.formats.wheelcheck import WheelInfo

INSTALLER = b"carton\n"  # the INSTALLER file carton writes (unpack.install_wheel too)

# A console script as installer writes it for a plain shebang: the entry point's module
# imported, its attribute path called, `sys.argv[0]` cleaned of Windows launcher suffixes.
_SCRIPT = """\
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""
_SECTION = re.compile(r"\[([A-Za-z0-9_.-]+)\]")
_OPTION = re.compile(r"([A-Za-z0-9_.][^=\s]*)[ \t]*=[ \t]*(\S(?:[^\r]*\S)?)[ \t]*")
_ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)[ \t]*:[ \t]*([A-Za-z_][A-Za-z0-9_.]*)"
                    r"[ \t]*(?:\[[^\]\r]*\])?")
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHEBANG_MAX = 127  # a kernel's shebang line, with "#!" and its newline


class Script(NamedTuple):
    """A console or GUI script an entry point names."""

    name: str
    module: str
    attr: str


def plain_scripts(info: WheelInfo, names: list[str], interpreter: str) -> list[Script] | None:
    """The scripts of the checked wheel `info` (its members `names`) if it is of the
    plain form (module docstring), to be written for `interpreter`; None where installer
    installs it."""
    dist_info = info.dist_info
    data = dist_info[: -len(".dist-info")] + ".data/"
    odd = {f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s", f"{dist_info}/INSTALLER"}
    if any(name in odd or name.startswith(data) for name in names):
        return None
    if any(row.hash_ is None or row.hash_.name != "sha256" for row in info.record.values()):
        return None
    text = info.metadata.get("entry_points.txt")
    if text is None:
        return []
    try:
        scripts = _scripts(text.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if scripts and not _plain_shebang(interpreter):
        return None
    return scripts


def _scripts(text: str) -> list[Script] | None:
    """The scripts `entry_points.txt` names, read as installer's configparser reads them,
    where the text is in the plain form; None otherwise."""
    if "%" in text or "\r" in text:  # interpolation, line ends other than "\n"
        return None
    sections: dict[str, dict[str, str]] = {}
    options: dict[str, str] | None = None
    for line in text.split("\n"):
        if not line.strip() or line[0] in "#;":  # blank, or a comment
            continue
        if line[0].isspace():  # a continuation line, or an indented comment
            return None
        header = _SECTION.fullmatch(line)
        if header is not None:
            name = header[1]
            if name == "DEFAULT" or name in sections:
                return None
            options = sections[name] = {}
            continue
        option = _OPTION.fullmatch(line)
        if option is None or options is None or option[1] in options:
            return None
        options[option[1]] = option[2]
    found: list[Script] = []
    for section, names in sections.items():  # installer's order: the file's
        if section not in ("console_scripts", "gui_scripts"):
            continue
        for name, value in names.items():
            entry = _ENTRY.fullmatch(value)
            if (entry is None or not _SCRIPT_NAME.fullmatch(name)
                    or any(s.name == name for s in found)):  # one file, written twice
                return None
            found.append(Script(name, entry[1], entry[2]))
    return found


def _plain_shebang(interpreter: str) -> bool:
    """Whether `#!interpreter` is a shebang a kernel runs as it is (installer writes a
    `/bin/sh` trampoline otherwise)."""
    encoded = interpreter.encode("utf-8")
    return b" " not in encoded and len(encoded) + 3 <= _SHEBANG_MAX


def script_bytes(script: Script, interpreter: str) -> bytes:
    """The launcher installer writes for `script` on POSIX, for a plain shebang."""
    code = _SCRIPT.format(module=script.module, name=script.attr.split(".")[0],
                          call=script.attr)
    return b"#!" + interpreter.encode("utf-8") + b"\n" + code.encode("utf-8")


def install_plain(archive: zipfile.ZipFile, info: WheelInfo, scripts: list[Script],
                  final: Path, destdir: Path, interpreter: str,
                  between: Callable[[], None] | None = None) -> list[str]:
    """Install the checked plain wheel `info` (its open `archive`) as if into `final`,
    below `destdir`: its scripts, then its members in the archive's order (a member
    under `__pycache__` is checked against RECORD and left out, as installer leaves it
    out), then INSTALLER and RECORD. Returns the members left out."""
    import hashlib

    writer = safewrite.SafeWriter(str(destdir))
    root = str(final)
    rows: list[tuple[str, str, str, str]] = []  # sort key, path, hash, size
    bindir = SCHEME_FOLDERS["scripts"]
    for script in scripts:
        if between is not None:
            between()
        data = script_bytes(script, interpreter)
        target = _write_new(writer, os.path.join(root, bindir), script.name, data, True)
        mode = os.stat(target).st_mode
        os.chmod(target, mode | (mode & 0o444) >> 2)  # as installer's write_script
        rows.append((script.name, bindir + script.name, _sha256(data), str(len(data))))
    record_path = f"{info.dist_info}/RECORD"
    left_out: list[str] = []
    for member in archive.infolist():
        path = member.filename
        if path.endswith("/") or path == record_path:
            continue
        row = info.record[path]
        if "__pycache__" in path.split("/")[:-1]:
            with inflate.open_member(archive, member) as stream:
                if not row.validate_stream(stream):
                    raise _mismatch(info, path)
            left_out.append(path)
            continue
        if between is not None:
            between()
        fd = writer.create(writer.target(root, path), path, executable_member(member))
        digest = hashlib.sha256()
        try:
            size = inflate.copy_member(archive, member, fd, digest)
        except inflate.ERRORS as exc:
            raise WheelError(info.filename, f"{path!r} cannot be inflated ({exc})") from exc
        finally:
            os.close(fd)
        assert row.hash_ is not None  # plain_scripts: every row has a sha256
        if size != row.size or encode_digest(digest.digest()) != row.hash_.value:
            raise _mismatch(info, path)
        rows.append((path, path, str(row.hash_), str(size)))
    installer_path = f"{info.dist_info}/INSTALLER"
    _write_new(writer, root, installer_path, INSTALLER, False)
    rows.append((installer_path, installer_path, _sha256(INSTALLER), str(len(INSTALLER))))
    rows.append((record_path, record_path, "", ""))
    _write_new(writer, root, record_path, _record_bytes(rows), False)
    return left_out


def _record_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    """The installed RECORD: rows sorted by their path within their scheme's folder, as
    installer sorts them, written by csv as installer writes them."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, delimiter=",", quotechar='"', lineterminator="\n")
    for _, path, digest, size in sorted(rows, key=lambda row: row[0]):
        writer.writerow((path, digest, size))
    return out.getvalue().encode("utf-8")


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256=" + encode_digest(hashlib.sha256(data).digest())


def _write_new(writer: safewrite.SafeWriter, folder: str, path: str, data: bytes,
               executable: bool) -> str:
    """Create `path` below `folder` with `data`; where it was written."""
    target = writer.target(folder, path)
    fd = writer.create(target, path, executable)
    try:
        safewrite.write_all(fd, data)
    finally:
        os.close(fd)
    return target


def _mismatch(info: WheelInfo, path: str) -> WheelError:
    return WheelError(info.filename, f"{path!r} does not match its RECORD hash or size")
