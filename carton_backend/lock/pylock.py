"""`export-pylock`: a lock's sections as PEP 751 `pylock.toml`, for pip and uv to install.

carton.lock already uses PEP 751's field names, so this is a mapping: each package with
its one wheel, recorded ones by URL and bundled ones as a `path` relative to the file.
One section per file (`--environment ID`; its marker goes in `environments`), or every
section in one file, each package then carrying the marker of the sections it is in.
What is written is read back and validated with `packaging.pylock` before it is kept.
The TOML is written here: no dependency of carton writes TOML, and the shape is fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from carton_backend.errors import BuildError
from carton_hook.formats.lockfile import Environment, Lock
from carton_hook.formats.version import CREATED_BY

PYLOCK_VERSION = "1.0"


def pylock_data(lock: Lock, model_root: Path, out_dir: Path,
                environment: str | None = None) -> dict[str, Any]:
    """The pylock document (as a dict in PEP 751's key order)."""
    sections = _sections(lock, environment)
    several = len(sections) > 1
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for section in sections:
        for package in sorted(section.packages, key=lambda p: p.name):
            key = (package.name, package.version)
            entry = merged.get(key)
            if entry is None:
                entry = merged[key] = {"name": package.name, "version": package.version,
                                       "_markers": [], "_wheels": {}}
                if package.index_url:
                    entry["index"] = package.index_url
                if package.dependencies:
                    entry["dependencies"] = [{"name": d} for d in package.dependencies]
            entry["_markers"].append(section.marker)
            wheel = package.wheel
            row: dict[str, Any] = {"name": wheel.name}
            if wheel.path is not None:
                row["path"] = _relative(model_root / wheel.path, out_dir)
            else:
                row["url"] = wheel.url
            row["size"] = wheel.size
            row["hashes"] = {"sha256": wheel.sha256}
            entry["_wheels"].setdefault(wheel.sha256, row)
    packages = []
    for entry in merged.values():
        markers = entry.pop("_markers")
        wheels = entry.pop("_wheels")
        if several and len(markers) < len(sections):
            entry["marker"] = " or ".join(f"({m})" for m in markers)
        entry["wheels"] = list(wheels.values())
        packages.append(_ordered(entry))
    return {"lock-version": PYLOCK_VERSION,
            "environments": [s.marker for s in sections],
            "created-by": CREATED_BY,
            "packages": sorted(packages, key=lambda p: (p["name"], p["version"]))}


def export_pylock(lock: Lock, model_root: Path, out: Path,
                  environment: str | None = None) -> str:
    """The text of `pylock.toml` for `lock`, to be written at `out`; validated."""
    data = pylock_data(lock, model_root, out.parent.resolve(), environment)
    text = dumps(data)
    validate(text, str(out))
    return text


def validate(text: str, where: str) -> None:
    """Read `text` back as TOML and as PEP 751 (packaging.pylock); BuildError if not."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, PylockValidationError) as exc:
        raise BuildError(f"{where}: the exported pylock does not validate ({exc}); this is "
                         "a bug in carton, please report it") from exc


def _sections(lock: Lock, environment: str | None) -> list[Environment]:
    if environment is None:
        return list(lock.environments)
    for section in lock.environments:
        if section.id == environment:
            return [section]
    have = ", ".join(e.id for e in lock.environments) or "none"
    raise BuildError(f"the lock has no section {environment!r} (it has: {have})")


def _relative(path: Path, out_dir: Path) -> str:
    """`path` relative to the folder the pylock is written to, with `/` separators."""
    return Path(os.path.relpath(path.resolve(), out_dir)).as_posix()


_KEY_ORDER = ("name", "version", "marker", "index", "dependencies", "wheels")


def _ordered(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in _KEY_ORDER if k in entry}


# -- TOML ----------------------------------------------------------------------------


def dumps(data: Mapping[str, Any]) -> str:
    """The document as TOML: top-level values, then `[[packages]]` tables whose lists
    of tables are arrays of inline tables (PEP 751's own examples look like this)."""
    lines = [f"{key} = {_value(value)}" for key, value in data.items() if key != "packages"]
    for package in data.get("packages", ()):
        lines += ["", "[[packages]]"]
        for key, value in package.items():
            if isinstance(value, list) and value and isinstance(value[0], Mapping):
                lines.append(f"{key} = [")
                lines += [f"    {_value(item)}," for item in value]
                lines.append("]")
            else:
                lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Iterable):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "")
    return key if bare.isascii() and bare.isalnum() else _string(key)


def _string(text: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
