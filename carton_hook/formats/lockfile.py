"""The lock schema: read, validate and write `.carton/carton.lock`.

Field names follow PEP 751 (`pylock.toml`) wherever PEP 751 has the concept, so that a
section maps onto a `pylock.toml` mechanically. Both halves use this module: the build
half writes locks with `dump_lock`, the runtime reads them with `load_lock`, and both ask
`first_applicable` which section fits an interpreter. Importing it loads nothing
third-party (`first_applicable` imports `packaging` when called).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from carton_hook.errors import LockError
from carton_hook.formats.commonforms import (
    Undecided,
    installs_here,
    interpreter,
    marker_clauses,
    marker_holds,
    wheel_parts,
)
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.urls import url_problem

LOCK_VERSION = 1
LOCK_PATH = ".carton/carton.lock"
BUNDLED_DIR = ".carton/bundled_wheels"
DIST_INFO_DIR = ".carton/dist-info"

# The records below are NamedTuples, not dataclasses: `import dataclasses` (which imports
# `inspect`) and making seven dataclasses cost a first run's model process ~6 ms before
# its plan, where nothing else it imports needs them (docs/performance.md).

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What a wheel filename may hold (PEP 427 escapes the rest to `_`): nothing that a file
# system, a URL or a terminal reads differently.
_WHEEL_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


class Wheel(NamedTuple):
    """One wheel file: found at `url` (on an index) or at `path` (bundled in the model)."""

    name: str
    sha256: str
    size: int
    url: str | None = None
    path: str | None = None

    @property
    def bundled(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "size": self.size,
                                "hashes": {"sha256": self.sha256}}
        if self.url is not None:
            data["url"] = self.url
        if self.path is not None:
            data["path"] = self.path
        return data


def bundled_path(sha256: str, filename: str) -> str:
    """Where a bundled wheel lives, relative to the model folder."""
    return f"{BUNDLED_DIR}/{sha256}/{filename}"


class Package(NamedTuple):
    """One locked distribution with exactly one wheel for its environment."""

    name: str
    version: str
    wheel: Wheel
    requested: bool = False
    dependencies: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    built_from: Mapping[str, Any] | None = None
    # The lock's `index` (PEP 751), named so as not to hide `tuple.index`.
    index_url: str | None = None
    # Extra import roots (relative folders) that path lines of the wheel's .pth files add.
    roots: tuple[str, ...] = ()
    # Shared libraries the wheel provides: soname -> (path inside the installed wheel,
    # sonames that library needs from outside the wheel).
    # (A default shared by every instance: read only, as the whole record is.)
    libraries: Mapping[str, tuple[str, tuple[str, ...]]] = {}
    # Sonames the wheel's ELF files need that the wheel does not provide.
    needs_libraries: tuple[str, ...] = ()
    # The dependencies its modules import when they are imported, read from their source
    # at pack time (carton_backend.wheels.loadimports); None where that was not read:
    # then importing it may need any of them.
    imported_dependencies: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        carton: dict[str, Any] = {"imports": list(self.imports)}
        if self.roots:
            carton["path-roots"] = list(self.roots)
        if self.libraries or self.needs_libraries:
            carton["shared-libraries"] = {
                "provides": {name: {"path": path, "needs": list(needs)}
                             for name, (path, needs) in sorted(self.libraries.items())},
                "needs": list(self.needs_libraries),
            }
        if self.built_from is not None:
            carton["built-from"] = dict(self.built_from)
        if self.imported_dependencies is not None:
            carton["imported-dependencies"] = list(self.imported_dependencies)
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "requested": self.requested,
            "dependencies": list(self.dependencies),
            "wheels": [self.wheel.to_json()],
            "tool": {"carton": carton},
        }
        if self.index_url is not None:
            data["index"] = self.index_url
        return data


class Environment(NamedTuple):
    """One lock section: the packages resolved for one interpreter and platform."""

    id: str
    marker: str
    marker_environment: Mapping[str, str]
    packages: tuple[Package, ...]
    # The target platform (uv's `--python-platform` name) of a section locked for another
    # machine than the one that locked it; None for an interpreter that ran the resolver.
    platform: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "marker": self.marker,
            "marker-environment": dict(self.marker_environment),
            "packages": [p.to_json() for p in sorted(self.packages, key=lambda p: p.name)],
        }
        if self.platform is not None:
            out["platform"] = self.platform
        return out


class Lock(NamedTuple):
    """The whole lockfile: which requirements it was made from, and one section per environment."""

    requirements_path: str
    requirements_sha256: str
    environments: tuple[Environment, ...]
    created_by: str = ""
    lock_version: int = LOCK_VERSION
    extra: Mapping[str, Any] = {}  # shared by every instance: read only

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "lock-version": self.lock_version,
            "created-by": self.created_by,
            "requirements": {"path": self.requirements_path,
                             "sha256": self.requirements_sha256},
            "environments": [e.to_json() for e in self.environments],
        }

    def environment(self, env_id: str) -> Environment | None:
        return next((e for e in self.environments if e.id == env_id), None)


def first_applicable(lock: Lock, marker_environment: Mapping[str, str], *,
                     check_tags: bool, quick: bool = False) -> Environment | None:
    """The first section whose marker holds in `marker_environment` and, with
    `check_tags`, all of whose wheels install on the running interpreter: markers cannot
    tell glibc levels, musl or ABIs apart; tags can. Imports `packaging`; or, `quick`,
    decides without it (commonforms.py) and raises Undecided where it cannot."""
    if quick:
        here = interpreter()
        for section in lock.environments:
            if not marker_holds(section.marker, marker_environment):
                continue
            for package in section.packages if check_tags else ():
                parts = wheel_parts(package.wheel.name)
                if parts is None or installs_here(parts[2], here) is None:
                    raise Undecided(package.wheel.name)
            return section
        return None
    from packaging.markers import InvalidMarker, Marker
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    supported = set(sys_tags()) if check_tags else set()
    for section in lock.environments:
        try:
            if not Marker(section.marker).evaluate(dict(marker_environment)):
                continue
            if check_tags and any(supported.isdisjoint(parse_wheel_filename(p.wheel.name)[3])
                                  for p in section.packages):
                continue
        except (InvalidMarker, InvalidWheelFilename):
            continue
        return section
    return None


def dump_lock(lock: Lock) -> bytes:
    """The lock's canonical bytes: JSON with sorted keys and a trailing newline."""
    text = json.dumps(lock.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def load_lock(path: Path, read: Callable[[], bytes] | None = None,
              where: str | None = None, quick: bool = False) -> Lock:
    """Read and validate a lockfile (with `read`, if given: its bytes from elsewhere, such
    as the archive it is extracted from, which `where` then names in errors); every
    problem is a `LockError` naming the key. `quick`: without importing `packaging`,
    raising Undecided where a check needs it (`parse_lock`)."""
    where = where or str(path)
    try:
        raw = path.read_bytes() if read is None else read()
    except FileNotFoundError:
        raise LockError(where, "not found; run `python -m carton_backend lock`") from None
    except OSError as exc:
        raise LockError(where, f"cannot read: {exc.strerror}") from exc
    return parse_lock(raw, where, quick)


def parse_lock(raw: bytes, where: str, quick: bool = False) -> Lock:
    """Validate the bytes of a lockfile; `where` names it in errors. Markers and wheel
    filenames in the common forms are checked without `packaging` (commonforms.py), the
    others with it; or, `quick`, not at all: that raises Undecided, for a caller that
    must not import it."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockError(where, f"not valid JSON ({exc}); delete it and lock again") from exc
    except RecursionError:
        raise LockError(where, "nested too deeply to be a lock; delete it and lock "
                               "again") from None
    return _Reader(where, quick).lock(data)


class _Reader:
    """Walks the JSON tree, naming the exact key of anything wrong."""

    def __init__(self, where: str, quick: bool = False) -> None:
        self.where = where
        self.quick = quick  # raise Undecided rather than import packaging

    def fail(self, key: str, message: str) -> LockError:
        return LockError(self.where, message, key)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, "expected a table")
        return value

    def array(self, value: Any, key: str) -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(key, "expected an array")
        return value

    def string(self, table: Mapping[str, Any], name: str, key: str) -> str:
        value = table.get(name)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key}.{name}" if key else name, "expected a non-empty string")
        return value

    def boolean(self, table: Mapping[str, Any], name: str, key: str) -> bool:
        value = table.get(name, False)
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", "expected true or false")
        return value

    def sha256(self, value: Any, key: str) -> str:
        # Upper case is the same digest (pip compares in lower case too); it is
        # normalised, so that cache keys and bundled paths have one spelling.
        if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
            raise self.fail(key, "expected 64 hexadecimal digits")
        return value.lower()

    def lock(self, data: Any) -> Lock:
        top = self.table(data, "(top)")
        version = top.get("lock-version")
        major = _major(version)
        if major is None:
            raise self.fail("lock-version", f"expected a version number, got {version!r}")
        if major != LOCK_VERSION:
            raise self.fail(
                "lock-version",
                f"version {version} is not supported by this carton (it reads {LOCK_VERSION}); "
                "upgrade carton or lock again",
            )
        reqs = self.table(top.get("requirements"), "requirements")
        envs = self.array(top.get("environments"), "environments")
        if not envs:
            raise self.fail("environments", "no environment is locked")
        environments = tuple(self.environment(e, f"environments[{i}]") for i, e in enumerate(envs))
        seen: set[str] = set()
        for i, env in enumerate(environments):
            if env.id in seen:
                raise self.fail(f"environments[{i}].id", f"duplicate environment {env.id!r}")
            seen.add(env.id)
        known = {"lock-version", "created-by", "requirements", "environments"}
        return Lock(
            requirements_path=self.string(reqs, "path", "requirements"),
            requirements_sha256=self.sha256(reqs.get("sha256"), "requirements.sha256"),
            environments=environments,
            created_by=str(top.get("created-by", "")),
            lock_version=LOCK_VERSION,
            extra={k: v for k, v in top.items() if k not in known},
        )

    def environment(self, data: Any, key: str) -> Environment:
        env = self.table(data, key)
        menv = self.table(env.get("marker-environment"), f"{key}.marker-environment")
        if not all(isinstance(v, str) for v in menv.values()):
            raise self.fail(f"{key}.marker-environment", "expected string values")
        packages = tuple(
            self.package(p, f"{key}.packages[{i}]")
            for i, p in enumerate(self.array(env.get("packages"), f"{key}.packages"))
        )
        names = [canonical_name(p.name) for p in packages]
        if len(set(names)) != len(names):
            raise self.fail(f"{key}.packages", "a package is listed twice")
        platform = env.get("platform")
        if platform is not None and (not isinstance(platform, str) or not platform):
            raise self.fail(f"{key}.platform", "expected a platform name")
        return Environment(
            id=self.string(env, "id", key),
            marker=self.marker(self.string(env, "marker", key), f"{key}.marker"),
            marker_environment=dict(menv),
            packages=packages,
            platform=platform,
        )

    def package(self, data: Any, key: str) -> Package:
        pkg = self.table(data, key)
        wheels = self.array(pkg.get("wheels"), f"{key}.wheels")
        if len(wheels) != 1:
            raise self.fail(f"{key}.wheels", "expected exactly one wheel per environment")
        carton = self.table(self.table(pkg.get("tool", {}), f"{key}.tool").get("carton", {}),
                            f"{key}.tool.carton")
        imports = self.array(carton.get("imports", []), f"{key}.tool.carton.imports")
        deps = self.array(pkg.get("dependencies", []), f"{key}.dependencies")
        if not all(isinstance(i, str) and i for i in [*imports, *deps]):
            raise self.fail(key, "imports and dependencies must be non-empty strings")
        roots = self.array(carton.get("path-roots", []), f"{key}.tool.carton.path-roots")
        for root in roots:
            self.inside(root, f"{key}.tool.carton.path-roots")
        libraries, needs = self.shared_libraries(carton.get("shared-libraries"),
                                                 f"{key}.tool.carton.shared-libraries")
        built_from = carton.get("built-from")
        if built_from is not None:
            built_from = self.table(built_from, f"{key}.tool.carton.built-from")
        imported = carton.get("imported-dependencies")
        if imported is not None:
            imported = self.array(imported, f"{key}.tool.carton.imported-dependencies")
            if not all(name in deps for name in imported):
                raise self.fail(f"{key}.tool.carton.imported-dependencies",
                                "expected names from the package's dependencies")
            imported = tuple(imported)
        index = pkg.get("index")
        if index is not None and not isinstance(index, str):
            raise self.fail(f"{key}.index", "expected a string")
        name = self.string(pkg, "name", key)
        version = self.string(pkg, "version", key)
        return Package(
            name=name,
            version=version,
            wheel=self.wheel(wheels[0], f"{key}.wheels[0]", name, version),
            requested=self.boolean(pkg, "requested", key),
            dependencies=tuple(deps),
            imports=tuple(imports),
            built_from=built_from,
            index_url=index,
            roots=tuple(roots),
            libraries=libraries,
            needs_libraries=needs,
            imported_dependencies=imported,
        )

    def inside(self, path: Any, key: str) -> str:
        """A relative path that stays inside the wheel's installed tree."""
        if (not isinstance(path, str) or not path or path.startswith("/") or "\\" in path
                or any(p in ("", ".", "..") for p in path.split("/"))):
            raise self.fail(key, f"{path!r} is not a relative path inside the wheel")
        return path

    def names(self, value: Any, key: str) -> tuple[str, ...]:
        items = self.array(value, key)
        if not all(isinstance(i, str) and i and "/" not in i for i in items):
            raise self.fail(key, "expected library names (non-empty, no '/')")
        return tuple(items)

    def shared_libraries(self, data: Any, key: str
                         ) -> tuple[dict[str, tuple[str, tuple[str, ...]]], tuple[str, ...]]:
        if data is None:
            return {}, ()
        table = self.table(data, key)
        provides = self.table(table.get("provides", {}), f"{key}.provides")
        libraries = {}
        for name, lib in provides.items():
            where = f"{key}.provides.{name}"
            self.names([name], where)
            lib = self.table(lib, where)
            libraries[name] = (self.inside(lib.get("path"), f"{where}.path"),
                               self.names(lib.get("needs", []), f"{where}.needs"))
        return libraries, self.names(table.get("needs", []), f"{key}.needs")

    def marker(self, value: str, key: str) -> str:
        """A PEP 508 marker that parses: a section whose marker is garbage must not just
        fail to apply (and have the model's packages resolved afresh)."""
        if marker_clauses(value) is not None:
            return value  # valid PEP 508: carton's own form
        if self.quick:
            raise Undecided(value)
        from packaging.markers import InvalidMarker, Marker  # the worker has it already

        try:
            Marker(value)
        except InvalidMarker as exc:
            reason = str(exc).splitlines()[0]
            raise self.fail(key, f"{value!r} is not a PEP 508 marker ({reason})") from None
        return value

    def wheel(self, data: Any, key: str, project: str = "", version: str = "") -> Wheel:
        whl = self.table(data, key)
        name = self.string(whl, "name", key)
        if not name.endswith(".whl") or not _WHEEL_FILENAME.fullmatch(name):
            raise self.fail(f"{key}.name",
                            f"{name!r} is not a wheel filename (only wheels are locked)")
        if len(name.encode()) > 255:
            raise self.fail(f"{key}.name", f"{name[:40]!r}...: a file name longer than 255 "
                                           "bytes cannot be stored")
        parts = wheel_parts(name)
        if parts is not None and (not version or version == parts[1]):
            dist, same_version = canonical_name(parts[0]), True
        elif self.quick:
            raise Undecided(name)
        else:
            from packaging.utils import InvalidWheelFilename, parse_wheel_filename

            try:
                dist, wheel_version, _, _ = parse_wheel_filename(name)
            except InvalidWheelFilename as exc:
                raise self.fail(f"{key}.name",
                                f"{name!r} is not a wheel filename ({exc})") from None
            same_version = not version or _version(version) == wheel_version
        if project and (dist != canonical_name(project) or not same_version):
            raise self.fail(f"{key}.name", f"{name!r} is not a wheel of {project} {version}")
        sha = self.sha256(self.table(whl.get("hashes"), f"{key}.hashes").get("sha256"),
                          f"{key}.hashes.sha256")
        size = whl.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise self.fail(f"{key}.size", "expected a positive integer")
        url, path = whl.get("url"), whl.get("path")
        if (url is None) == (path is None):
            raise self.fail(key, "expected exactly one of `url` and `path`")
        if url is not None:
            problem = url_problem(url)
            if problem:
                raise self.fail(f"{key}.url", problem)
        if path is not None and path != bundled_path(sha, name):
            raise self.fail(f"{key}.path", f"expected {bundled_path(sha, name)!r}")
        return Wheel(name=name, sha256=sha, size=size, url=url, path=path)


def _version(text: str) -> Any:
    """packaging's Version of `text`, or `text` itself if it is none (never equal)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return text


def _major(version: Any) -> int | None:
    if isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version
    if isinstance(version, str) and re.fullmatch(r"\d+(\.\d+)?", version):
        return int(version.split(".")[0])
    return None
