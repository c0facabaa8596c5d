"""The prefix that subprocesses run in: a venv-like folder per plan, so that a child
started with `sys.executable` (or `python` from `PATH`, or multiprocessing's spawn and
forkserver) sees the same locked packages and the same isolation as the model.

    envs/<plan key>/pyvenv.cfg                   include-system-site-packages = false
    envs/<plan key>/bin/python, python3, python3.X   links to the real interpreter
    envs/<plan key>/bin/<console scripts>        of the locked distributions
    envs/<plan key>/lib/pythonX.Y/site-packages/_carton_boot.pth, _carton_boot.py

Python reads `pyvenv.cfg` next to the executable it was started as, so the child gets no
system site-packages by construction (also with `-E`, `-s` or `-I`); the `.pth` file then
boots the finder. A child started with `-S` runs no `.pth`: it sees only the standard
library and fails to import locked packages, cleanly, instead of finding the system's.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from carton_hook.cache.layout import BOOT_MODULE, is_published, prefix_dir
from carton_hook.cache.publish import publishing
from carton_hook.formats.metadatapack import read_metadata
from carton_hook.planning.planfile import model_of
from carton_hook.system import interpreter, link_interpreter, prefix_layout, script_header

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData

_BOOT_SOURCE = '''\
"""Boot carton's finder in a subprocess of a loaded carton (generated; see carton_hook)."""
import sys

def _boot():
    sys.path.insert(0, {hook_parent!r})
    try:
        import carton_hook.loading.boot
    finally:
        sys.path.remove({hook_parent!r})
    carton_hook.loading.boot.boot({plan_file!r}, {worker_python!r}, {model!r})

_boot()
del _boot
'''

_SCRIPT = '''\
{shebang}
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.exit({call}())
'''


def ensure_prefix(plan: PlanData, plan_file: str, home: str | Path,
                  worker_python: str) -> Path:
    """The prefix for `plan` (kept in `plan_file`), made on first use and published by
    one rename."""
    root = Path(prefix_dir(plan_file, home))
    if not is_published(root):
        with publishing(root) as tree:
            _fill(tree, root, plan, plan_file, worker_python)
    return root


def _fill(work: Path, final: Path, plan: PlanData, plan_file: str,
          worker_python: str) -> None:
    base = interpreter()
    version = ".".join(map(str, sys.version_info[:3]))
    (work / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\n"
        f"version = {version}\nexecutable = {base}\n")
    scripts, site_dir, names = prefix_layout(*sys.version_info[:2])
    bindir = work / scripts
    bindir.mkdir()
    for name in names:
        link_interpreter(str(bindir / name), base)
    site_packages = work / site_dir
    site_packages.mkdir(parents=True)
    hook_parent = str(Path(__file__).resolve().parents[2])  # the folder holding carton_hook
    (site_packages / f"{BOOT_MODULE}.py").write_text(_BOOT_SOURCE.format(
        hook_parent=hook_parent, plan_file=plan_file, worker_python=worker_python,
        model=model_of(plan)))
    (site_packages / f"{BOOT_MODULE}.pth").write_text(f"import {BOOT_MODULE}\n")
    python = final / scripts / names[0]
    for name, target in sorted(console_scripts(plan).items()):
        module, _, attrs = target.partition(":")
        if not attrs or "/" in name or name.startswith("python"):
            continue
        script = bindir / name
        script.write_text(_SCRIPT.format(shebang=script_header(str(python)),
                                         module=module.strip(),
                                         head=attrs.strip().split(".")[0],
                                         call=attrs.strip()))
        script.chmod(0o755)


def console_scripts(plan: PlanData) -> dict[str, str]:
    """`name -> module:attr` for the console and GUI scripts of every locked
    distribution, read from the metadata recorded at pack time."""
    found: dict[str, str] = {}
    for wheel in plan["wheels"].values():
        if not wheel["dist_info"]:
            continue
        try:
            text = read_metadata(os.path.join(wheel["dist_info"], "entry_points.txt"),
                                 plan.get("metadata_pack")).decode("utf-8")
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            continue  # none (most wheels), or not text: no scripts
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        for section in ("console_scripts", "gui_scripts"):
            if parser.has_section(section):
                for name, target in parser.items(section):
                    found.setdefault(name.strip(), target.split("[")[0].strip())
    return found
