"""Where the runtime keeps things: `$CARTON_HOME` (default `~/.carton`) and its layout.

    pythonpackages/py{MAJOR}{MINOR}/<sha256>/   one installed wheel, never changed once published
    pythonpackages/py{MAJOR}{MINOR}/.locks/     one lock file per wheel (never deleted)
    pythonpackages/py{MAJOR}{MINOR}/.tmp/       work folders; a killed run leaves them here
    models/<manifest-sha256>/                   the model folder of a .carton, extracted once
    models/packed-<key>/                        a copy locked for a new interpreter at load time
    plans/<key>.json                            the answer of selection for one carton and
                                                one interpreter, read on the warm path
    envs/<key>/                                 the venv-like prefix its subprocesses run in
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMPLETE = ".carton-complete"
# The module that a subprocess prefix's .pth file imports to boot the finder.
BOOT_MODULE = "_carton_boot"


def env_flag(name: str) -> bool:
    """An on/off environment switch: anything but unset, empty, 0, false or no is on."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def carton_home() -> Path:
    return Path(os.environ.get("CARTON_HOME") or Path.home() / ".carton")


def packages_dir(home: Path | None = None) -> Path:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return (home or carton_home()) / "pythonpackages" / tag


def models_dir(home: Path | None = None) -> Path:
    return (home or carton_home()) / "models"


def prefix_dir(plan: dict[str, object], home: Path) -> Path:
    """The subprocess prefix of a plan: one per plan file."""
    return home / "envs" / Path(str(plan["_file"])).stem


def plans_dir(home: Path | None = None) -> Path:
    return (home or carton_home()) / "plans"
