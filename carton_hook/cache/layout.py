"""Where the runtime keeps things: `$CARTON_HOME` (default `~/.carton`) and its layout.

    pythonpackages/py{MAJOR}{MINOR}/<sha256>/   one installed wheel; once published, only the
                                                .pyc of its modules are added (pycache)
    pythonpackages/py{MAJOR}{MINOR}/.locks/     one lock file per wheel (never deleted)
    pythonpackages/py{MAJOR}{MINOR}/.tmp/       work folders; a killed run leaves them here
    models/<manifest-sha256>/                   the model folder of a .carton, extracted once
    models/packed-<key>/                        a copy locked for a new interpreter at load time
    plans/<key>.plan                            the answer of selection for one carton and
                                                one interpreter, read on the warm path
    plans/<key>.plan.lock                       held while the plan is made (never deleted)
    envs/<key>/                                 the venv-like prefix its subprocesses run in
"""

from __future__ import annotations

import os
import sys

# Paths here are strings: pathlib (and the re, fnmatch, urllib it imports) costs
# milliseconds at every start, and this module is on the warm path.

COMPLETE = ".carton-complete"
# The module that a subprocess prefix's .pth file imports to boot the finder.
BOOT_MODULE = "_carton_boot"
# The plan files' suffix (marshal: the warm path reads it without importing json).
PLAN_SUFFIX = ".plan"
# Where an installed entry holds a wheel's `<name>.data/<scheme>/` members: the modules at
# its root, beside the others; scripts, headers and data files in folders of their own,
# since an entry, shared by every carton that locks the wheel, is no one's prefix.
SCHEME_FOLDERS = {"purelib": "", "platlib": "", "scripts": "bin/", "headers": "include/",
                  "data": "data/"}


def carton_home() -> str:
    """`CARTON_HOME`, else `~/.carton`; where neither is set up and the home folder
    cannot be written (a YARN container, a service account), `./.carton` or a folder
    in the temp dir, with a warning, and set in the environment for the children."""
    home = os.environ.get("CARTON_HOME")
    if home:
        if not os.path.isabs(home):
            # `~/...` as no shell expanded it (a Dockerfile's ENV, a systemd unit), or
            # relative to where carton started: its workers and subprocesses, which
            # inherit the variable, may start elsewhere.
            home = os.environ["CARTON_HOME"] = os.path.abspath(os.path.expanduser(home))
        return home
    default = os.path.join(os.path.expanduser("~"), ".carton")
    if os.path.isdir(default) or os.access(os.path.dirname(default), os.W_OK):
        return default  # an existing cache may be read-only: a warm run writes nothing
    return _fallback_home(default)


def _fallback_home(default: str) -> str:
    import tempfile

    cwd = os.getcwd()
    home = (os.path.join(cwd, ".carton") if os.access(cwd, os.W_OK) else
            os.path.join(tempfile.gettempdir(), f"carton-{os.getuid()}"))
    from carton_hook.log import logger

    logger().warning("%s cannot be created (the home folder is not writable); using %s "
                     "(set CARTON_HOME to choose)", default, home)
    os.environ["CARTON_HOME"] = home
    return home


def is_published(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` (a package entry, an extracted model, a prefix) was published
    whole: it has its completion marker, the last thing written before the rename that
    publishes it. `cache.entries.is_complete` also checks what the marker says."""
    return os.path.isfile(os.path.join(folder, COMPLETE))


def packages_dir(home: str | os.PathLike[str] | None = None) -> str:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return os.path.join(home or carton_home(), "pythonpackages", tag)


def models_dir(home: str | os.PathLike[str] | None = None) -> str:
    return os.path.join(home or carton_home(), "models")


def prefix_dir(plan_file: str, home: str | os.PathLike[str]) -> str:
    """The subprocess prefix of a plan: one per plan file."""
    stem = os.path.splitext(os.path.basename(plan_file))[0]
    return os.path.join(home, "envs", stem)


def plans_dir(home: str | os.PathLike[str] | None = None) -> str:
    return os.path.join(home or carton_home(), "plans")
