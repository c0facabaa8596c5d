"""Find the plan for a model on this interpreter, or have the worker make it.

The plan is the answer of selection (which lock section, which wheel provides which
import name, where each wheel's metadata is), kept in `plans/<key>.json`. The key
covers the model's identity (path and the stat of the files that define it) and the
interpreter, so the warm path is: stat, read one small file, done.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import workerclient
from .paths import COMPLETE, plans_dir
from .workerclient import run_worker

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from typing import Any

PLAN_FORMAT = 9


def plan_identity(model: Path) -> str:
    """What the plan depends on: the model's path and the stat of the files that define
    it, and the interpreter."""
    if model.is_file():
        defining = [model]
    elif (model / "carton.toml").is_file():
        defining = [model / "carton.toml", model / "MANIFEST", model / "model" / ".carton" /
                    "carton.lock"]
    else:
        defining = [model / "pyproject.toml", model / ".carton" / "carton.lock"]
    parts = [str(model), workerclient.WORKER_PYTHON, sys.version, sys.platform]
    for path in defining:
        try:
            st = path.stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
        except OSError:
            parts.append("-")
    return "\n".join(parts)  # passed to the worker in argv: no NUL


def plan_key(model: Path) -> str:
    return _key(plan_identity(model))


def _key(identity: str) -> str:
    """The plan's file name: a checksum of its identity. zlib, not hashlib, because
    hashlib loads OpenSSL (milliseconds) on the warm path; a collision cannot select a
    wrong plan, because the plan stores its identity and `get_plan` compares it."""
    import zlib

    data = identity.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def get_plan(model: Path, home: Path) -> dict[str, Any]:
    """The plan for `model` (absolute), made by the worker on the first run."""
    identity = plan_identity(model)
    path = plans_dir(home) / f"{_key(identity)}.json"
    plan = _read(path, identity)
    if plan is None:
        run_worker("plan", str(model), str(path), identity)
        plan = _read(path, identity)
        if plan is None:
            raise OSError(f"the worker wrote no readable plan at {path}")
    return plan


def read_plan(path: Path) -> dict[str, Any] | None:
    """The plan stored at `path`, or None if it is missing, stale or unreadable."""
    return _read(path, None)


def _read(path: Path, identity: str | None) -> dict[str, Any] | None:
    try:
        plan: dict[str, Any] = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if plan.get("format") != PLAN_FORMAT:
        return None
    if identity is not None and plan.get("identity") != identity:
        return None
    root = Path(plan["model"])
    if plan.get("archive") and not (root / COMPLETE).is_file():
        return None  # the extracted model was removed: make the plan again
    if not root.is_dir():
        return None
    plan["_file"] = str(path)
    return plan


def plan_path(model: Path, home: Path) -> Path:
    return plans_dir(home) / f"{plan_key(model)}.json"

