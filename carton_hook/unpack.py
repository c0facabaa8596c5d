"""Install one checked wheel into a folder with `installer`: purelib and platlib at the
root, `*.dist-info` beside them, scripts in `bin/` with their `#!python` rewritten, exec
bits kept, and `.pyc` compiled before the folder is published (the folder never changes
afterwards, and `PYTHONDONTWRITEBYTECODE` would stop Python from writing them later).
"""

from __future__ import annotations

from pathlib import Path

from .wheelcheck import check_wheel


def install_wheel(wheel: Path, filename: str, final: Path, destdir: Path,
                  interpreter: str) -> None:
    """Install `wheel` as if into `final`, writing below `destdir` (paths embedded in
    `.pyc` and scripts name `final`, where the tree is renamed to afterwards)."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    check_wheel(wheel, filename)
    schemes = {"purelib": final, "platlib": final, "scripts": final / "bin",
               "headers": final / "include", "data": final / "data"}
    destination = SchemeDictionaryDestination(
        {k: str(v) for k, v in schemes.items()},
        interpreter=interpreter,
        script_kind="posix",
        bytecode_optimization_levels=(0,),
        destdir=str(destdir),
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"carton\n"})
