"""Bring a model's `.carton/carton.lock` up to date: the packing algorithm of the design.

1. Hash `requirements.txt` and everything it includes.
2. Fast path: the lock matches that hash and has a section for every target
   interpreter, and its bundled files are there: return it, no resolver, no network.
3. Otherwise resolve the targets that need it with pip, keeping the versions the old lock
   pinned wherever the requirements still allow them (only `--upgrade` moves them on
   purpose), check every wheel, record or bundle it, and publish the lock atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError, RequirementsError, ResolveError
from carton_backend.resolution.environment import (
    Target,
    check_interpreter,
    env_id,
    env_marker,
    section_for,
    targets,
)
from carton_backend.resolution.requirements import (
    RequirementsFile,
    build_code_lines,
    read_tree,
    requirements_hash,
)
from carton_backend.resolution.resolve import Resolution, dependency_graph, resolve
from carton_backend.wheels.loadimports import narrow_dependencies
from carton_hook.filesystem import atomic
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.lockfile import (
    BUNDLED_DIR,
    DIST_INFO_DIR,
    LOCK_PATH,
    Environment,
    Lock,
    dump_lock,
    load_lock,
    parse_lock,
)
from carton_hook.formats.version import CREATED_BY

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from carton_backend.wheels.collect import Collector

log = logging.getLogger("carton")
WORKERS = 4
FOLDER_LOCK_TIMEOUT = 900.0


@dataclass(frozen=True)
class LockRequest:
    """What the user asked for beyond "make the lock current"."""

    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    # Sections to add in this run beside the configured ones (`lock --platform NAME
    # --python 3.N`): kept while the requirements stay as they are, not recorded as
    # settings, so a later run without them neither needs nor drops them.
    platforms: tuple[str, ...] = ()
    python: tuple[str, ...] = ()

    @property
    def upgrading(self) -> bool:
        return self.upgrade or bool(self.upgrade_packages)


@dataclass(frozen=True)
class _Plan:
    files: list[RequirementsFile]
    sha256: str
    existing: Lock | None
    keep: tuple[Environment, ...]
    todo: tuple[Target, ...]
    # Sections of Pythons taken out of `[tool.carton] python` since the lock was made.
    drop: tuple[Environment, ...] = ()


def lock_model(config: ModelConfig, request: LockRequest | None = None) -> Lock:
    """Return a lock that is current for `config`, resolving only what must be."""
    request = request or LockRequest()
    with _folder_lock(config.root):
        plan = _plan(config, request)
        if not plan.todo and not plan.drop:
            log.debug("%s is current; nothing to resolve", config.root / LOCK_PATH)
            assert plan.existing is not None
            return plan.existing
        for target in plan.todo:
            check_interpreter(target, config)
        try:
            return _relock(config, request, plan)
        except BaseException:
            # Leave the folder as the previous lock describes it: no orphaned wheels.
            _collect_garbage(config.root, plan.existing)
            raise


def lock_state(config: ModelConfig) -> tuple[list[Path], str | None]:
    """The files the lock's currency depends on (the requirements file and what it
    includes), and why the lock is stale (None: it is current for what it holds; a
    Python it has no section for is not counted). Reads only."""
    files = read_tree(config.root, config.requirements)
    lock_path = config.root / LOCK_PATH
    existing = load_lock(lock_path) if lock_path.exists() else None
    return [f.path for f in files], _stale(config, existing, requirements_hash(files))


def _stale(config: ModelConfig, existing: Lock | None, sha256: str, *,
           removed_pythons: bool = True) -> str | None:
    """Why `existing` no longer describes the model (None: it does), given the hash of
    its requirements now. Without `removed_pythons`, sections of Pythons taken out of
    `[tool.carton] python` (which only need taking out) do not count."""
    if existing is None:
        return f"there is no {LOCK_PATH}"
    if (existing.requirements_path != config.requirements
            or existing.requirements_sha256 != sha256):
        return f"{config.requirements} (or a file it includes) changed"
    changed = [f"tool.carton.{k} is now {json.dumps(v)}" for k, v in settings(config).items()
               if k in STALE_SETTINGS and locked_settings(existing).get(k) != v]
    if changed:
        return "; ".join(changed)
    if not _files_present(config.root, existing):
        return "a bundled wheel or a metadata folder it names is missing"
    removed = _removed_pythons(config, existing) if removed_pythons else []
    if removed:
        return (f"tool.carton.python no longer lists {', '.join(removed)}: its sections go "
                "at the next lock")
    gone = _removed_platforms(config, existing) if removed_pythons else []
    if gone:
        return (f"tool.carton.platforms no longer lists {', '.join(gone)}: its sections go "
                "at the next lock")
    return None


def _removed_pythons(config: ModelConfig, existing: Lock) -> list[str]:
    """The Pythons the lock was made for through `[tool.carton] python` that it no
    longer lists (the building Python's own section stays). A lock that did not record
    the list (made before it was kept) has none."""
    before = locked_settings(existing).get("python")
    if not isinstance(before, list):
        return []
    keep = {*config.python, *(t.python_version for t in targets(config) if t.building)}
    return sorted({str(v) for v in before} - keep)


def _removed_platforms(config: ModelConfig, existing: Lock) -> list[str]:
    """The platforms `[tool.carton] platforms` listed when the lock was made and no
    longer lists (sections added with `lock --platform` were never listed: they stay)."""
    before = locked_settings(existing).get("platforms", [])
    if not isinstance(before, list):
        return []
    present = {e.platform for e in existing.environments}
    return sorted(({str(p) for p in before} - set(config.platforms)) & present)


def lock_is_current(config: ModelConfig) -> bool:
    """True if packing would take the fast path (no resolver, no network)."""
    plan = _plan(config, LockRequest())
    return not plan.todo and not plan.drop


def _plan(config: ModelConfig, request: LockRequest) -> _Plan:
    files = read_tree(config.root, config.requirements)
    sha256 = requirements_hash(files)
    if config.only_binary:
        offending = build_code_lines(files)
        if offending:
            f, line = offending[0]
            raise RequirementsError(str(f.path), f"{line!r} can only be installed by running "
                                                 "build code, which only-binary = true forbids")
    lock_path = config.root / LOCK_PATH
    existing = load_lock(lock_path) if lock_path.exists() else None
    wanted = targets(config, request.platforms, request.python)
    if (existing is not None and not request.upgrading
            and _stale(config, existing, sha256, removed_pythons=False) is None):
        removed = _removed_pythons(config, existing)
        gone = _removed_platforms(config, existing)
        drop = tuple(e for e in existing.environments
                     if e.marker_environment.get("python_version") in removed
                     or e.platform in gone)
        keep = tuple(e for e in existing.environments if e not in drop)
        todo = tuple(t for t in wanted if section_for(existing, t) is None)
        return _Plan(files, sha256, existing, keep, todo, drop)
    return _Plan(files, sha256, existing, (), tuple(wanted))


# The settings that change what a lock holds, beside the requirements' bytes: kept in the
# lock (its top-level "settings"). Changing one of STALE_SETTINGS makes the lock stale
# (every section is resolved again); a Python added to `python` only adds its section,
# and one taken out only takes its sections out. A lock from before they were kept was
# made with the defaults.
DEFAULT_SETTINGS = {"bundle": "non-pypi", "only-binary": False}
STALE_SETTINGS = ("bundle", "only-binary")


def settings(config: ModelConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"bundle": config.bundle, "only-binary": config.only_binary,
                           "python": sorted(config.python)}
    if config.platforms:  # kept only where set: a lock without platforms stays as it was
        out["platforms"] = sorted(config.platforms)
    return out


def locked_settings(lock: Lock) -> dict[str, Any]:
    found = lock.extra.get("settings")
    return dict(found) if isinstance(found, dict) else dict(DEFAULT_SETTINGS)


def _relock(config: ModelConfig, request: LockRequest, plan: _Plan) -> Lock:
    if plan.existing is not None and not plan.keep:
        reason = ("--upgrade" if request.upgrading
                  else _stale(config, plan.existing, plan.sha256))
        log.info("re-resolving every environment: %s", reason)
    # Here, not at import: packing with a current lock needs none of them (urllib3 and
    # the index and wheel code cost 0.2 s of imports).
    from carton_backend.network.download import Downloader
    from carton_backend.network.httpclient import HttpClient
    from carton_backend.network.pypi import PublicIndex, pypi_url
    from carton_backend.wheels.collect import Collector

    direct = _direct_requirements(plan.files)
    client = HttpClient()
    downloader = Downloader(client)
    index = None if config.bundle == "all" else PublicIndex(pypi_url(), client)
    environments = list(plan.keep)
    with tempfile.TemporaryDirectory(prefix="carton-lock-") as work:
        for target in plan.todo:
            pins, own = _preferred_versions(plan.existing, environments, target, request)
            resolution = _resolve_keeping_pins(config, target, pins, direct, warn=own)
            collector = Collector(config.root, target, downloader, index, Path(work))
            env = _environment(resolution, target, collector)
            env = _unique_id(env, environments)
            environments.append(env)
            bundled = sum(p.wheel.bundled for p in env.packages)
            log.info("locked %d packages for %s (%d bundled)", len(env.packages), env.id, bundled)
    for old in plan.drop:
        if old.platform is not None and old.platform not in config.platforms:
            log.warning("dropped lock section %s: %s is no longer in [tool.carton] platforms",
                        old.id, old.platform)
        else:
            log.warning("dropped lock section %s: Python %s is no longer in "
                        "[tool.carton] python", old.id,
                        old.marker_environment.get("python_version"))
    if plan.existing is not None and not plan.keep:
        kept = {e.id for e in environments}
        for old in plan.existing.environments:
            if old.id not in kept and old.platform is not None:
                log.warning("dropped lock section %s: it is not among this build's targets; "
                            "lock again with --platform %s --python %s to add it back",
                            old.id, old.platform,
                            old.marker_environment.get("python_version"))
            elif old.id not in kept:
                log.warning("dropped lock section %s: it is not among this build's targets "
                            "(the building Python, [tool.carton] python and platforms); "
                            "lock again where it is", old.id)
    lock = Lock(
        requirements_path=config.requirements,
        requirements_sha256=plan.sha256,
        environments=tuple(environments),
        created_by=CREATED_BY,
        extra={**(plan.existing.extra if plan.existing is not None else {}),
               "settings": settings(config)},
    )
    data = dump_lock(lock)
    parse_lock(data, str(config.root / LOCK_PATH))  # never publish a lock we cannot read
    atomic.write_bytes(config.root / LOCK_PATH, data)
    _collect_garbage(config.root, lock)
    return lock


def _environment(resolution: Resolution, target: Target, collector: Collector) -> Environment:
    menv = resolution.marker_environment
    if menv.get("python_version") != target.python_version:
        raise BuildError(f"{target.label} reports Python {menv.get('python_version')}; "
                         f"expected {target.python_version}")
    graph = dependency_graph(resolution)
    with ThreadPoolExecutor(WORKERS) as pool:
        packages = list(pool.map(lambda r: collector.package(r, graph[r.key]),
                                 resolution.packages))
        # Wheels read by byte ranges were not scanned for shared libraries (their ELF
        # files' links sit deep inside the members). That matters on Linux only, and only
        # where some wheel of the section holds a library others may link to: then the
        # ranged ones are read whole.
        linux = target.platform is not None and target.platform.os in ("manylinux",
                                                                       "musllinux")
        if linux and any(collector.ranged.values()):
            log.info("%s: a wheel holds libraries others may link to; reading %d wheels "
                     "whole to scan them", target.label, len(collector.ranged))
            packages = list(pool.map(
                lambda pr: (collector.package(pr[1], graph[pr[1].key], whole=True)
                            if pr[0].wheel.sha256 in collector.ranged else pr[0]),
                zip(packages, resolution.packages, strict=True)))
    packages = narrow_dependencies(packages, collector.imports_on_load)
    fetched = sum(collector.fetched.values())
    if fetched:
        total = sum(p.wheel.size for p in packages if p.wheel.sha256 in collector.fetched)
        log.info("%s: read %.1f MB of %d wheels' %.1f MB by byte ranges", target.label,
                 fetched / 1e6, len(collector.fetched), total / 1e6)
    platform = target.platform.name if target.platform is not None else None
    return Environment(id=env_id(menv, platform), marker=env_marker(menv),
                       marker_environment=menv, packages=tuple(packages), platform=platform)


def _resolve_keeping_pins(config: ModelConfig, target: Target, pins: dict[str, str],
                          direct: dict[str, list[Requirement]], *, warn: bool) -> Resolution:
    """Resolve with the preferred versions held. Pins the requirements now contradict are
    let go first (the user changed those lines); if the rest still do not resolve, the
    packages the requirements name are let go, and as a last resort all of them. `warn`:
    the pins are this target's own previous versions, so letting them go is news."""
    kept = {n: v for n, v in pins.items()
            if all(r.specifier.contains(v, prereleases=True) for r in direct.get(n, []))}
    tiers = [kept, {n: v for n, v in kept.items() if n not in direct}, {}]
    tried: list[dict[str, str]] = []
    last: ResolveError | None = None
    for constraints in tiers:
        if constraints in tried:
            continue
        tried.append(constraints)
        try:
            resolution = resolve(config.root, config.requirements, target,
                                 constraints=constraints, only_binary=config.only_binary)
        except ResolveError as exc:
            last = exc
            continue
        if constraints != kept and warn:
            log.warning("%s: the previous lock's versions no longer resolve together; "
                        "some pinned versions changed", target.label)
        return resolution
    assert last is not None
    raise last


def _preferred_versions(existing: Lock | None, done: list[Environment], target: Target,
                        request: LockRequest) -> tuple[dict[str, str], bool]:
    """The versions to hold while resolving `target`, and whether they are its own.

    Its own section of the previous lock comes first (nothing changes a pinned version
    but `--upgrade`); failing that, the first section already in the new lock, so that
    the environments of one carton agree where they can.
    """
    own = None
    if existing is not None and not request.upgrade:
        own = section_for(existing, target)
    section = own or (done[0] if done else None)
    if section is None:
        return {}, False
    released = {canonical_name(n) for n in request.upgrade_packages}
    pins = {p.name: p.version for p in section.packages
            if p.name not in released and (p.built_from is None or "sdist" in p.built_from)}
    return pins, own is not None


def _direct_requirements(files: list[RequirementsFile]) -> dict[str, list[Requirement]]:
    """The requirements (and constraints) the user wrote, by canonical name."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, list[Requirement]] = {}
    for f in files:
        for line in f.lines:
            if line.startswith("-"):
                continue
            try:
                req = Requirement(line.split(" --", 1)[0])
            except InvalidRequirement:
                continue
            found.setdefault(canonical_name(req.name), []).append(req)
    return found


def _unique_id(env: Environment, existing: list[Environment]) -> Environment:
    taken = {e.id for e in existing}
    if env.id not in taken:
        return env
    n = 2
    while f"{env.id}-{n}" in taken:
        n += 1
    return env._replace(id=f"{env.id}-{n}")


def _files_present(root: Path, lock: Lock) -> bool:
    for env in lock.environments:
        for package in env.packages:
            if package.wheel.path and not (root / package.wheel.path).is_file():
                return False
            if not (root / DIST_INFO_DIR / package.wheel.sha256).is_dir():
                return False
    return True


def _collect_garbage(root: Path, lock: Lock | None) -> None:
    """Remove bundled wheels and metadata that `lock` (the published one) does not name,
    and leftovers of interrupted runs."""
    used = {p.wheel.sha256 for e in lock.environments for p in e.packages} if lock else set()
    for folder in (root / BUNDLED_DIR, root / DIST_INFO_DIR):
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            if child.name not in used:
                log.debug("removing stale %s", child)
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    carton_dir = root / ".carton"
    for leftover in carton_dir.glob(f"{atomic.TEMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    """One locking run per model folder at a time (the lock lives outside the folder, so
    it never ends up in the archive)."""
    from filelock import FileLock, Timeout

    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    lock_dir = Path(tempfile.gettempdir()) / "carton-folder-locks"
    lock_dir.mkdir(exist_ok=True)
    lock = FileLock(str(lock_dir / f"{key}.lock"))
    try:
        lock.acquire(timeout=FOLDER_LOCK_TIMEOUT)
    except Timeout:
        raise BuildError(f"{root}: another carton run has been locking this folder for "
                         f"{FOLDER_LOCK_TIMEOUT:.0f} s; wait for it or stop it") from None
    try:
        yield
    finally:
        lock.release()
