"""`info MODEL`: what a carton holds, which of its lock sections applies here and what of
it is cached; read from the archive as it is, extracting, fetching and running nothing."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from carton_hook.cache.layout import is_published, packages_dir
from carton_hook.errors import ArchiveError, CartonError
from carton_hook.formats.archive import (
    CARTON_TOML,
    DAMAGED,
    MANIFEST,
    METADATA_MEMBER,
    MODEL_PREFIX,
    check_end_record,
    parse_carton_toml,
    read_member,
)
from carton_hook.formats.lockfile import LOCK_PATH, Environment, Lock, parse_lock
from carton_hook.planning.models import open_model


@dataclass(frozen=True)
class PackageRow:
    name: str
    version: str
    size: int
    source: str  # "bundled", or the host the wheel is fetched from
    cached: bool
    requested: bool


@dataclass
class Description:
    path: Path
    name: str
    version: str
    entrypoint: str
    requires_python: str
    created_by: str
    sections: list[str]
    applies: str | None  # the section this interpreter would use
    packages: list[PackageRow] = field(default_factory=list)
    # From the model's core metadata (a .carton packed since it carries one): its
    # ABOUT_FIELDS, as written.
    about: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "name": self.name, "version": self.version,
            "entrypoint": self.entrypoint, "requires-python": self.requires_python,
            "created-by": self.created_by, "sections": self.sections,
            "applies": self.applies, "metadata": [list(item) for item in self.about],
            "packages": [{"name": p.name, "version": p.version, "size": p.size,
                          "source": p.source, "cached": p.cached, "requested": p.requested}
                         for p in self.packages],
        }


def describe(model: Path, home: Path) -> Description:
    """Describe MODEL (a .carton file, an unpacked carton or a model folder)."""
    about: list[tuple[str, str]] = []
    if model.is_file():
        header, lock, about = _read_archive(model)
    else:
        opened = open_model(model, home)  # folders are only read, never copied
        raw_header = model / CARTON_TOML
        requires, created = "", ""
        if raw_header.is_file():
            info = parse_carton_toml(raw_header.read_bytes(), str(model))
            requires, created = info.requires_python, info.created_by
        header = {"name": opened.name, "version": opened.version,
                  "entrypoint": opened.entrypoint, "requires_python": requires,
                  "created_by": created}
        try:
            lock = parse_lock(opened.lock_path.read_bytes(), str(opened.lock_path))
        except OSError as exc:
            raise CartonError(f"{opened.lock_path}: cannot read ({exc.strerror}); lock the "
                              "model folder: python -m carton_backend lock MODEL_DIR") from exc
    section = _applicable(lock)
    description = Description(
        path=model, name=header["name"], version=header["version"],
        entrypoint=header["entrypoint"], requires_python=header["requires_python"],
        created_by=header["created_by"], sections=[e.id for e in lock.environments],
        applies=section.id if section else None, about=about)
    if section is not None:
        cache = packages_dir(str(home))
        for package in sorted(section.packages, key=lambda p: p.name):
            wheel = package.wheel
            source = "bundled" if wheel.bundled else urlsplit(wheel.url or "").hostname or "?"
            description.packages.append(PackageRow(
                package.name, package.version, wheel.size, source,
                is_published(os.path.join(cache, wheel.sha256)),
                package.requested))
    return description


# The fields of the model's METADATA that `info` shows, in this order.
ABOUT_FIELDS = ("Summary", "License", "License-Expression", "Author", "Author-email",
                "Home-page", "Project-URL")


def _about(raw: bytes) -> list[tuple[str, str]]:
    """The fields `info` shows from the model's METADATA (its header only)."""
    import email.parser

    header = email.parser.BytesHeaderParser().parsebytes(raw)
    return [(name, " ".join(str(value).split())) for name in ABOUT_FIELDS
            for value in header.get_all(name) or ()]


def _read_archive(path: Path) -> tuple[dict[str, str], Lock, list[tuple[str, str]]]:
    where = str(path)
    check_end_record(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for required in (CARTON_TOML, MANIFEST, MODEL_PREFIX + LOCK_PATH):
                if required not in names:
                    raise ArchiveError(where, f"{required} is missing; is this a .carton file?")
            info = parse_carton_toml(read_member(zf, CARTON_TOML, where), where)
            lock = parse_lock(read_member(zf, MODEL_PREFIX + LOCK_PATH, where),
                              f"{where}:{LOCK_PATH}")
            about = (_about(read_member(zf, METADATA_MEMBER, where))
                     if METADATA_MEMBER in names else [])
    except (*DAMAGED, OSError) as exc:  # as every reader of an archive
        raise ArchiveError(where, f"not a readable .carton archive ({exc})") from exc
    return ({"name": info.name, "version": info.version, "entrypoint": info.entrypoint,
             "requires_python": info.requires_python, "created_by": info.created_by}, lock,
            about)


def _applicable(lock: Lock) -> Environment | None:
    from carton_hook.planning.select import applicable

    return applicable(lock)


def format_description(d: Description) -> str:
    """The human-readable form: a header, the sections, a table of packages."""
    lines = [f"{d.name} {d.version}  ({d.path})"]
    lines += [f"  {(name.lower() + ':').ljust(16)} {value}" for name, value in d.about]
    lines.append(f"  entrypoint:      {d.entrypoint}")
    if d.requires_python:
        lines.append(f"  requires-python: {d.requires_python}")
    if d.created_by:
        lines.append(f"  created by:      {d.created_by}")
    lines.append("  lock sections:   " + ", ".join(
        f"{s} (applies here)" if s == d.applies else s for s in d.sections))
    if d.applies is None:
        lines.append("  no section applies to this interpreter: running it locks one "
                     "(see docs/runtime.md)")
        return "\n".join(lines) + "\n"
    total = sum(p.size for p in d.packages)
    cached = sum(p.size for p in d.packages if p.cached)
    lines.append(f"  packages:        {len(d.packages)}, {format_size(total)} "
                 f"({format_size(cached)} cached)")
    rows = [("name", "version", "size", "from", "cached")]
    rows += [(p.name, p.version, format_size(p.size), p.source, "yes" if p.cached else "no")
             for p in d.packages]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines.append("")
    for row in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     .rstrip())
    return "\n".join(lines) + "\n"


def format_size(size: int) -> str:
    """1536 -> "1.5 kB": powers of 1000, as pip says sizes and as carton's progress
    does, so that one wheel has one size in everything carton prints."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if round(value, 1) < 1000 or unit == "GB":  # 999,999 B is "1.0 MB", not "1000.0 kB"
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
