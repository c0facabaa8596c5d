"""Choose the lock section for this interpreter, and compute the plan the warm path reads.

A section applies when its marker holds here AND every one of its wheels is installable
here (markers cannot tell glibc levels, musl or ABIs apart; tags can). The first that
applies wins. This runs in the worker, which may import `packaging`, and in the model's
process on a first run, `quick`: without it, for the common forms of markers and tags
(formats/commonforms.py); where that cannot decide, Undecided is raised.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from carton_hook.errors import CartonError
from carton_hook.formats.archive import MODEL_PREFIX
from carton_hook.formats.lockfile import (
    DIST_INFO_DIR,
    LOCK_PATH,
    Environment,
    Lock,
    Package,
    first_applicable,
    load_lock,
)
from carton_hook.planning.models import Model, ModelFiles
from carton_hook.planning.planfile import PLAN_FORMAT

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData, WheelPlan


class NoEnvironmentError(CartonError, LookupError):
    """The lock has no section for this interpreter. `can_pack`: carton can lock the model
    for it now (packing at load time: the kind "no-environment"); otherwise the message
    says what the user can do."""

    kind = "no-environment"

    def __init__(self, model: Model, lock: Lock) -> None:
        here = (f"CPython {sys.version_info[0]}.{sys.version_info[1]} on {sys.platform} "
                f"{_machine()}")
        have = ", ".join(e.id for e in lock.environments) or "none"
        self.sections = [e.id for e in lock.environments]
        where = model.archive or model.lock_path  # the file the user named, if any
        advice, self.can_pack = _no_section_advice(model, lock)
        if not self.can_pack:
            self.kind = CartonError.kind  # nothing the model's process can do about it
        super().__init__(f"{where}: no lock section for {here} (the lock has: {have}){advice}")


# Switches that turn packing at load time off (runtime.md).
NO_PACK_SWITCHES = ("CARTON_NO_PACK", "CARTON_OFFLINE")


def _pythons_here(lock: Lock) -> list[str]:
    """The CPythons of this platform that `lock` has sections for, oldest first, as their
    commands (`python3.11`)."""
    versions = {e.marker_environment.get("python_version", "") for e in lock.environments
                if e.marker_environment.get("implementation_name") == "cpython"
                and e.marker_environment.get("sys_platform") == sys.platform
                and e.marker_environment.get("platform_machine") == _machine()}
    return [f"python{v}" for v in sorted(versions - {""},
                                         key=lambda v: [int(n) if n.isdigit() else 0
                                                        for n in v.split(".")])]


def _no_section_advice(model: Model, lock: Lock) -> tuple[str, bool]:
    """What the user can do with the file or folder they have when no section applies,
    and whether carton can lock it for this interpreter itself (it needs pip and
    carton_backend where this interpreter finds them, which an executable carton's own
    runtime does not carry)."""
    from importlib.util import find_spec

    from carton_hook.switches import env_flag

    switch = next((name for name in NO_PACK_SWITCHES if env_flag(name)), None)
    tools = find_spec("carton_backend") is not None and find_spec("pip") is not None
    if switch is None and tools:
        return "", True
    pythons = _pythons_here(lock)
    run_with = (f"run it with {' or '.join(pythons)}" if pythons
                else "it was locked for other platforms only")
    off = f"packing at load time is off ({switch} is set); " if switch else ""
    if model.archive is None:  # a model folder: its owner can lock it
        return (f"; {off}{run_with}, or lock it for this interpreter: python -m "
                f"carton_backend lock {model.root}", False)
    return (f"; {off}{run_with}, or have it packed for this Python too "
            "([tool.carton] python = [...] in its pyproject.toml)", False)


def _machine() -> str:
    import platform

    return platform.machine()


def applicable(lock: Lock, quick: bool = False) -> Environment | None:
    """The first section whose marker holds here and whose wheels all install here."""
    if quick:
        from carton_hook.formats.commonforms import Undecided, marker_environment

        here = marker_environment()
        if here is None:
            raise Undecided("this platform's marker environment")
        return first_applicable(lock, here, check_tags=True, quick=True)
    from packaging.markers import default_environment

    menv = {k: str(v) for k, v in default_environment().items()}
    return first_applicable(lock, menv, check_tags=True)


def check_requires_python(model: Model, lock: Lock, quick: bool = False) -> None:
    """Refuse to run a model on a Python its `requires-python` excludes (before any
    section is chosen or packed for it), naming the Pythons its lock has sections for.
    `quick`: return where it allows this Python in a form decided without `packaging`,
    raise Undecided otherwise."""
    if not model.requires_python:
        return
    if quick:
        from carton_hook.formats.commonforms import Undecided, requires_python_allows

        if requires_python_allows(model.requires_python):
            return
        raise Undecided(model.requires_python)
    import platform

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    where = model.archive or model.root
    try:
        allowed = SpecifierSet(model.requires_python)
    except InvalidSpecifier:
        raise CartonError(f"{where}: {model.name} {model.version}: requires-python "
                          f"{model.requires_python!r} is not a version specifier") from None
    here = platform.python_version()
    if not allowed.contains(here, prereleases=True):
        # Only the locked Pythons that requires-python allows some release of are named.
        pythons = [p for p in _pythons_here(lock)
                   if any(allowed.contains(f"{p.removeprefix('python')}.{micro}",
                                           prereleases=True) for micro in (0, 99))]
        run_with = f": run it with {' or '.join(pythons)}" if pythons else ""
        raise CartonError(f"{where}: {model.name} {model.version} requires Python "
                          f"{model.requires_python} (requires-python); this is Python "
                          f"{here}{run_with}")


def make_plan(model: Model, files: ModelFiles | None = None,
              quick: bool = False) -> PlanData:
    """What the warm path needs, and nothing more: the import index, the wheels and
    where their pack-time metadata lives (read from `files`: the model folder, or the
    archive it is being extracted from). `quick`: without importing `packaging`, raising
    Undecided where selection needs it (the model's process then loads it)."""
    if files is None:
        with ModelFiles(model) as opened:
            return make_plan(model, opened, quick)
    # An archive's lock is named as its member, not as the folder it is extracted to.
    where = f"{model.archive}: {MODEL_PREFIX}{LOCK_PATH}" if model.archive else None
    lock = load_lock(model.lock_path, lambda: files.read(LOCK_PATH), where, quick)
    check_requires_python(model, lock, quick)
    section = applicable(lock, quick)
    if section is None:
        raise NoEnvironmentError(model, lock)
    by_name = {p.name: p for p in section.packages}
    wheels: dict[str, WheelPlan] = {}
    imports: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    for package in section.packages:
        sha = package.wheel.sha256
        dist_info = _dist_info(files, model.root, f"{DIST_INFO_DIR}/{sha}")
        wheels[sha] = {
            "name": package.wheel.name,
            "dist": package.name,
            "version": package.version,
            "size": package.wheel.size,
            "url": package.wheel.url,
            "bundled": package.wheel.path,
            "dist_info": str(dist_info) if dist_info else None,
            # What installing it brings along: what importing it imports, where the
            # lock says (a dependency only its functions import comes on its own import).
            "deps": sorted(by_name[d].wheel.sha256 for d in (
                package.dependencies if package.imported_dependencies is None
                else package.imported_dependencies) if d in by_name),
            "top_level": sorted({n.split(".")[0] for n in package.imports}),
            "roots": ["", *package.roots],
        }
        for name in package.imports:
            if name in imports:
                # Several wheels provide one package (pkgutil-style namespaces): the first
                # in the lock's order provides its __init__, all provide its __path__.
                shared.setdefault(name, [imports[name]]).append(sha)
                continue
            imports[name] = sha
            parts = name.split(".")
            for i in range(1, len(parts)):
                owners.setdefault(".".join(parts[:i]), []).append(sha)
    namespaces = {n: sorted(set(shas)) for n, shas in owners.items() if n not in imports}
    listed = _top_level_listing(imports, namespaces)
    for sha, order in preloads(section).items():
        wheels[sha]["preload"] = order
        wheels[sha]["deps"] = sorted({*wheels[sha]["deps"], *(s for s, _ in order)})
    return {
        "format": PLAN_FORMAT,
        "stdlib": stdlib_paths(),
        "model": str(model.root),
        "name": model.name,
        "version": model.version,
        "entrypoint": model.entrypoint,
        "requirements": lock.requirements_path,  # named by the hint for a missing package
        "archive": str(model.archive) if model.archive else None,
        # An extracted .carton holds the dist_info folders in one file (metadatapack.py).
        "metadata_pack": files.pack,
        "section": section.id,
        "wheels": wheels,
        "imports": imports,
        "namespaces": namespaces,
        "shared": shared,
        "listed": listed,
        # setuptools' distutils-precedence.pth would install this shim; carton runs no
        # .pth file, so the finder asks the shim itself when `distutils` is imported.
        "distutils_shim": "_distutils_hack" in imports,
    }


def _top_level_listing(imports: dict[str, str],
                       namespaces: dict[str, list[str]]) -> dict[str, bool | None]:
    """Every top-level name the lock provides, for `pkgutil.iter_modules()`: True for a
    namespace; None for a name whose wheel's RECORD says whether it is a package, read
    when it is first asked (loading/listing.py), not for every wheel here."""
    listed: dict[str, bool | None] = {name: True for name in namespaces if "." not in name}
    listed.update((name, None) for name in imports if "." not in name)
    return dict(sorted(listed.items()))


def preloads(section: Environment) -> dict[str, list[list[str]]]:
    """For each wheel whose ELF files need a library that another wheel provides (torch
    and `nvidia-*`), those libraries as `[sha256, path]`, in the order to load them
    (a library after the ones it needs). A wheel's own libraries are found through its
    RPATH and are never listed; neither are system libraries, which no wheel provides."""
    by_name = {p.name: p for p in section.packages}
    out: dict[str, list[list[str]]] = {}
    for package in section.packages:
        if not package.needs_libraries:
            continue
        # Providers: the wheel's dependencies first, nearest first; then any other wheel.
        nearby, queue = [], [package]
        while queue:
            current = queue.pop(0)
            if current not in nearby:
                nearby.append(current)
                queue.extend(by_name[d] for d in current.dependencies if d in by_name)
        candidates = nearby + [p for p in section.packages if p not in nearby]
        order: list[list[str]] = []
        for soname in package.needs_libraries:
            _visit(soname, package, (), candidates, order)
        if order:
            out[package.wheel.sha256] = order
    return out


def _visit(soname: str, needer: Package, trail: tuple[str, ...], candidates: list[Package],
           order: list[list[str]]) -> None:
    """Append the library `soname` (needed by a file of `needer`) to `order`, after the
    libraries it needs itself."""
    provider = next((p for p in candidates if p is not needer and soname in p.libraries),
                    None)
    if provider is None or soname in trail:
        return
    path, needs = provider.libraries[soname]
    entry = [provider.wheel.sha256, path]
    if entry in order:
        return
    for need in needs:
        _visit(need, provider, (*trail, soname), candidates, order)
    order.append(entry)


def stdlib_paths() -> list[str]:
    """The folders of this interpreter's standard library (computed here, in the worker,
    so that the model's process needs no `sysconfig` on its warm path)."""
    import sysconfig

    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths}
    return sorted(found)


def _dist_info(files: ModelFiles, root: Path, relpath: str) -> Path | None:
    found = [name for name in files.folders(relpath) if name.endswith(".dist-info")]
    return root / relpath / found[0] if found else None

