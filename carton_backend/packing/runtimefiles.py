"""The runtime an executable carton carries: carton_hook and the distributions its worker
imports, taken from the environment that packs (the versions it has installed).

`runtime/hook/` holds carton_hook alone: the model's process puts only that folder on
its path. `runtime/deps/` holds urllib3, packaging, installer, filelock (and tomli, for
Python 3.10, when the packing environment has it), which only the worker sees. Sources
only: no `.pyc` (they are compiled where they are extracted), no Windows launchers.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import carton_hook
from carton_backend.errors import BuildError
from carton_hook.formats.archive import RUNTIME_PREFIX

# The distributions the runtime's worker imports, and the import packages of each.
DEPENDENCIES = {"urllib3": ("urllib3",), "packaging": ("packaging",),
                "installer": ("installer",), "filelock": ("filelock",)}
OPTIONAL = {"tomli": ("tomli",)}  # what carton_hook reads TOML with on Python 3.10
_SKIP_SUFFIXES = (".pyc", ".pyo", ".exe")


@dataclass(frozen=True)
class RuntimeFile:
    arcname: str  # "runtime/hook/carton_hook/loading/api.py"
    path: Path


def runtime_files() -> list[RuntimeFile]:
    """Every file of the runtime, sorted by archive name."""
    hook = _hook_dir()
    files = [RuntimeFile(f"{RUNTIME_PREFIX}hook/carton_hook/{p.relative_to(hook).as_posix()}", p)
             for p in _tree(hook)]
    for dist, packages in {**DEPENDENCIES, **OPTIONAL}.items():
        try:
            distribution = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            if dist in OPTIONAL:
                continue
            raise BuildError(f"{dist} is not installed where carton packs; an executable "
                             "carton carries it (reinstall carton-backend)") from None
        for file in distribution.files or ():
            rel = file.as_posix()
            top = rel.split("/", 1)[0]
            keep = top in packages or (top.endswith(".dist-info") and _kept_metadata(rel))
            if keep and not rel.endswith(_SKIP_SUFFIXES) and "/__pycache__/" not in rel:
                path = Path(str(file.locate()))
                if path.is_file():
                    files.append(RuntimeFile(f"{RUNTIME_PREFIX}deps/{rel}", path))
    return sorted(files, key=lambda f: f.arcname)


def _kept_metadata(rel: str) -> bool:
    """A dist-info file an executable carton carries: METADATA and every license text
    (packaging's LICENSE only points to LICENSE.APACHE and LICENSE.BSD; PEP 639 puts
    them in `licenses/`)."""
    name = rel.rsplit("/", 1)[-1]
    return (name == "METADATA" or "/licenses/" in rel
            or name.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE")))


def runtime_key(manifest: dict[str, str]) -> str:
    """The sha256 of the runtime's lines of MANIFEST (what zipmain.py checks)."""
    lines = "".join(f"{name}={digest}\n" for name, digest in sorted(manifest.items())
                    if name.startswith(RUNTIME_PREFIX))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def zip_main(key: str) -> bytes:
    """The archive's `__main__.py`: carton_hook/zipmain.py with its key filled in."""
    source = (_hook_dir() / "zipmain.py").read_text(encoding="utf-8")
    placeholder = 'RUNTIME = ""'
    if source.count(placeholder) != 1:
        raise BuildError("carton_hook/zipmain.py has no RUNTIME placeholder; reinstall carton")
    return source.replace(placeholder, f'RUNTIME = "{key}"').encode("utf-8")


def _hook_dir() -> Path:
    return Path(carton_hook.__file__).resolve().parent


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and not p.name.endswith(_SKIP_SUFFIXES))
