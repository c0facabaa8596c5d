"""Install one checked wheel into a folder with `installer`: purelib and platlib at the
root, `*.dist-info` beside them, scripts in `bin/` with their `#!python` rewritten, exec
bits kept, and `.pyc` compiled before the folder is published (the folder never changes
afterwards, and `PYTHONDONTWRITEBYTECODE` would stop Python from writing them later).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from .errors import WheelError
from .wheelcheck import check_wheel


def install_wheel(wheel: Path, filename: str, final: Path, destdir: Path,
                  interpreter: str) -> None:
    """Install `wheel` as if into `final`, writing below `destdir` (paths embedded in
    `.pyc` and scripts name `final`, where the tree is renamed to afterwards)."""
    from installer import install
    from installer.sources import WheelFile

    check_wheel(wheel, filename)
    schemes = {"purelib": final, "platlib": final, "scripts": final / "bin",
               "headers": final / "include", "data": final / "data"}
    destination = _safe_destination_class()(
        {k: str(v) for k, v in schemes.items()},
        interpreter=interpreter,
        script_kind="posix",
        bytecode_optimization_levels=(),  # compiled below, on every core
        destdir=str(destdir),
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"carton\n"})
    compile_sources(getattr(destination, "sources", []))


def compile_sources(sources: list[tuple[str, str]]) -> None:
    """Write the `.pyc` of each `(path, final path)` as installer would (errors in
    modules that do not compile are ignored, as pip does), naming the final path in the
    code objects, on every core (`bytecode`)."""
    from .bytecode import compiler

    compiler().compile(sources)


def _safe_destination_class() -> type[Any]:
    """installer's destination, writing each file as pip and uv should: created new
    (`O_EXCL`), never through a symlink (`O_NOFOLLOW`), in a folder that resolves inside
    the work folder. Nobody else writes in that folder, but if something did plant a
    link there, this fails instead of writing where the link points (THREATS A4)."""
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry
    from installer.utils import copyfileobj_with_hashing

    class SafeDestination(SchemeDictionaryDestination):
        # (written path, final path) of each module to compile
        sources: list[tuple[str, str]]

        def write_to_fs(self, scheme: Any, path: str, stream: BinaryIO,
                        is_executable: bool) -> Any:
            if not hasattr(self, "sources"):
                self.sources = []
            target = Path(self._path_with_destdir(scheme, path))
            if scheme in ("purelib", "platlib") and path.endswith(".py"):
                final = os.path.join(self.scheme_dict[scheme], path)
                self.sources.append((str(target), final))
            target.parent.mkdir(parents=True, exist_ok=True)
            root = os.path.realpath(self.destdir or os.sep)
            if not os.path.realpath(target.parent).startswith(root + os.sep):
                raise WheelError(path, f"its folder resolves outside {root} (a symlink was "
                                       "planted in the work folder)")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(target, flags, 0o755 if is_executable else 0o644)
            with os.fdopen(fd, "wb") as f:
                digest, size = copyfileobj_with_hashing(stream, f, self.hash_algorithm)
            return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    return SafeDestination
