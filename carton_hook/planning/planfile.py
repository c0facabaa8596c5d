"""The plan's file: `plans/<key>.plan`, the answer of selection for one model and one
interpreter, written by the worker and read on the warm path.

Its key is a checksum of the plan's identity (the model's path, the stat of the files
that define it, the interpreter). It is marshal, not json: the warm path reads it without
importing json; the key covers the interpreter, so marshal's version never differs.
"""

from __future__ import annotations

import marshal
import os

from carton_hook.cache.layout import COMPLETE

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from typing import Any

PLAN_FORMAT = 11


def file_signature(path: str) -> str:
    """What says a file changed: its size, time and inode ("-" if it is not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def model_of(plan: dict[str, Any]) -> str:
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


def read_plan(path: str, identity: str | None = None) -> dict[str, Any] | None:
    """The plan stored at `path`, or None if it is missing, stale, unreadable or (given
    `identity`) made for another model or interpreter."""
    return _read(path, identity)


def dump_plan(plan: dict[str, Any]) -> bytes:
    """A plan's bytes (without the keys that start with `_`: this process's own). marshal,
    because the warm path reads it without importing json; the plan's key covers the
    interpreter, so marshal's version never differs."""
    return marshal.dumps({k: v for k, v in plan.items() if not k.startswith("_")})


def _read(path: str, identity: str | None) -> dict[str, Any] | None:
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
    root = plan["model"]
    if plan.get("archive") and not os.path.isfile(os.path.join(root, COMPLETE)):
        return None  # the extracted model was removed: make the plan again
    if not os.path.isdir(root):
        return None
    plan["_file"] = path
    return plan


def closure(plan: dict[str, Any], shas: list[str]) -> list[str]:
    """`shas` and every wheel they depend on, in the lock's dependency graph: the wheels
    the first import will need, fetched together."""
    seen: list[str] = []
    stack = list(shas)
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in plan["wheels"]:
            continue
        seen.append(sha)
        stack.extend(plan["wheels"][sha]["deps"])
    return seen
