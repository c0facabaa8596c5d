"""The interpreter that runs carton, shiv and pex: a venv made as the plain venv's is
(`--without-pip`), holding carton and its dependencies and nothing else (but the one
module of the warm start's floor, warmfloor.py).

The bench's own environment also holds pip, setuptools (whose `.pth` file imports
`_distutils_hack` at every start), build, shiv, pex and uv: run from it, each process
a contender starts pays for them, which the plain venv does not. The distributions are
copied from the bench's environment, file by file as their RECORD lists them, so this
needs no index and runs the carton this bench was started with (an editable install
stays one).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

RUNTIME = "carton-backend"  # the distribution the contenders need, with its dependencies


@functools.cache
def python(work: Path) -> str:
    """The runtime venv's interpreter below `work`, made anew once per bench run."""
    target = work / "carton-runtime"
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    interpreter = target / "bin" / "python"
    site = Path(subprocess.run(
        [str(interpreter), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    for dist in _closure(RUNTIME):
        _copy(dist, site)
    # The warm start's floor, run with `-m` from the same site folder as carton_hook.
    shutil.copy2(Path(__file__).with_name("warmfloor.py"), site)
    return str(interpreter)


def _closure(name: str) -> list[metadata.Distribution]:
    """`name`'s distribution and those it requires here (markers evaluated, no extras),
    as installed in this interpreter's site-packages (not the source tree the bench puts
    on `sys.path`, which may hold a build's `.egg-info`)."""
    sites = list(dict.fromkeys(sysconfig.get_path(key) for key in ("purelib", "platlib")))
    found: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        key = canonicalize_name(todo.pop())
        if key in found:
            continue
        dist = next(iter(metadata.distributions(name=key, path=sites)), None)
        if dist is None:
            raise SystemExit(f"bench: {key} is not installed in {sites[0]}; "
                             "run the bench through nox -s bench")
        found[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def _copy(dist: metadata.Distribution, site: Path) -> None:
    """Copy the files of `dist` that live in its site-packages folder into `site`
    (scripts and other files outside it are left out: nothing here runs them)."""
    base = Path(str(dist.locate_file(""))).resolve()
    for file in dist.files or []:
        source = Path(str(dist.locate_file(file))).resolve()
        if not source.is_relative_to(base) or not source.is_file():
            continue
        target = site / source.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
