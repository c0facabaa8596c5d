"""The plan's file: `plans/<key>.plan`, the answer of selection for one model and one
interpreter, written by the worker and read on the warm path.

Its key is a checksum of the plan's identity (the model's path, the stat of the files
that define it, the interpreter). It is marshal, not json: the warm path reads it without
importing json; the key covers the interpreter, so marshal's version never differs.
"""

from __future__ import annotations

import marshal
import os

from carton_hook.cache.layout import is_published

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from typing import TypedDict

    class _WheelPlan(TypedDict):
        name: str  # the wheel's filename
        dist: str  # the distribution's canonical name
        version: str
        size: int
        url: str | None  # where it is fetched from; None for a bundled wheel
        bundled: str | None  # its path in the model folder, for a bundled wheel
        dist_info: str | None  # the folder of its pack-time metadata (METADATA, RECORD, ...)
        deps: list[str]  # the sha256s of the wheels it depends on (and preloads from)
        top_level: list[str]
        roots: list[str]  # "" and the folders its .pth files add to sys.path

    class WheelPlan(_WheelPlan, total=False):
        """One locked wheel, as the plan knows it."""

        preload: list[list[str]]  # [sha256, path] of shared libraries to load first

    class _PlanData(TypedDict):
        format: int
        stdlib: list[str]  # the interpreter's own sys.path entries (isolation keeps them)
        model: str  # the model folder
        name: str
        version: str
        entrypoint: str
        requirements: str  # the model's requirements file, as the lock names it
        archive: str | None  # the .carton it was extracted from
        metadata_pack: str | None  # where its wheels' dist_info folders are packed
        section: str  # the id of the lock section selected
        wheels: dict[str, WheelPlan]  # by sha256
        imports: dict[str, str]  # import name -> sha256 of the wheel that provides it
        namespaces: dict[str, list[str]]  # namespace package -> the wheels that share it
        shared: dict[str, list[str]]  # package several wheels provide -> their sha256s
        # Top-level names for pkgutil: is it a package? (None: its RECORD says, when asked)
        listed: dict[str, bool | None]
        distutils_shim: bool  # setuptools' distutils shim is locked

    class PlanData(_PlanData, total=False):
        """What selection decided for one model on one interpreter: the plan file's
        content, built by `planning.select.make_plan`, completed by the worker."""

        identity: str  # what the plan was made for (plan_identity); its first line: MODEL
        watch: list[list[str]]  # [path, file_signature] of a model folder's requirements

PLAN_FORMAT = 13


def file_signature(path: str) -> str:
    """What says a file changed: its size, time and inode ("-" if it is not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def model_of(plan: PlanData) -> str:
    """The MODEL argument (a .carton, an unpacked carton or a model folder) that a plan
    was made for: the first line of its identity."""
    return str(plan["identity"]).split("\n", 1)[0]


def file_key(identity: str) -> str:
    """The plan's file name: a 64-bit FNV-1a checksum of its identity, computed here
    because zlib and hashlib are extension modules that cost half a millisecond or more
    to load on the warm path. A collision cannot select a wrong plan: the plan stores
    its identity and `read_plan` compares it. The format is part of the key, so that a
    carton of another plan format never reads this one (nor boots its subprocess prefix)."""
    h = 0xCBF29CE484222325
    for byte in f"{PLAN_FORMAT}\n{identity}".encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def read_plan(path: str, identity: str | None = None, *,
              for_installing: bool = False) -> PlanData | None:
    """The plan stored at `path`, or None if it is missing, stale, unreadable or (given
    `identity`) made for another model or interpreter. `for_installing` reads it for
    its wheels only: whether the extracted model is still there does not matter to them
    (what the model's process decides about a cleared model is its own business)."""
    return _read(path, identity, for_installing)


def dump_plan(plan: PlanData) -> bytes:
    """A plan's bytes: marshal, because the warm path reads it without importing json;
    the plan's key covers the interpreter, so marshal's version never differs."""
    return marshal.dumps(dict(plan))


def write_plan_file(plan_file: str, plan: PlanData) -> None:
    """Publish a plan: written beside its place, then renamed over it (not fsynced: a
    plan lost to a power cut is made again)."""
    from pathlib import Path

    from carton_hook.filesystem.atomic import write_bytes

    write_bytes(Path(plan_file), dump_plan(plan), durable=False)


def _read(path: str, identity: str | None, for_installing: bool = False) -> PlanData | None:
    try:
        with open(path, "rb") as f:
            # The cache's own file, written by the worker: as trusted as its .pyc files.
            plan = marshal.loads(f.read())  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        return None
    if identity is not None and plan.get("identity") != identity:
        return None
    # A model folder's plan also watches its requirements files (worker.lock_watch): an
    # edited one makes the plan again, and the worker says the lock is stale.
    for watched, signature in plan.get("watch", ()):
        if file_signature(watched) != signature:
            return None
    if for_installing:
        return plan  # type: ignore[return-value]
    root = plan["model"]
    if plan.get("archive") and not is_published(root):
        return None  # the extracted model was removed: make the plan again
    if not os.path.isdir(root):
        return None
    return plan  # type: ignore[return-value]  # the cache's own file, of this format


def closure(plan: PlanData, shas: list[str]) -> list[str]:
    """`shas` and every wheel they depend on, in the lock's dependency graph: the wheels
    the first import will need, fetched together. In the order an import is likely to
    need them (the worker unpacks them in it): each wheel before its dependencies (a
    package's `__init__` runs, then imports them), depth first, in `shas` order."""
    seen: list[str] = []
    stack = list(reversed(shas))
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in plan["wheels"]:
            continue
        seen.append(sha)
        stack.extend(reversed(plan["wheels"][sha]["deps"]))
    return seen
