"""Which import names a wheel provides, computed from its file list alone.

`top_level.txt` is missing from most modern wheels, so the names come from the files:
the wheel's root plus `<dist>.data/purelib/` and `<dist>.data/platlib/`. A folder with an
`__init__.py` is a package and owns its name; a folder without one is a namespace portion,
and the wheel owns only the shallowest names below it that it really provides
(`google.protobuf`, not `google`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def install_paths(names: Iterable[str]) -> list[str]:
    """Map wheel member names to where they land in an installed tree (purelib/platlib root).

    Members of `*.dist-info/` and of `.data/` schemes other than purelib and platlib
    (scripts, headers, data) are not importable and are dropped.
    """
    out = []
    for name in names:
        head, _, rest = name.partition("/")
        if head.endswith(".dist-info"):
            continue
        if head.endswith(".data"):
            scheme, _, inner = rest.partition("/")
            if scheme in ("purelib", "platlib") and inner:
                out.append(inner)
            continue
        out.append(name)
    return out


def module_name(filename: str) -> str | None:
    """The module a file defines (`six.py` -> `six`, `_cffi.cpython-311-x86_64-linux-gnu.so`
    -> `_cffi`), or None when it is not a module."""
    if not filename.endswith(_MODULE_SUFFIXES):
        return None
    stem = filename.split(".", 1)[0]
    if filename.endswith((".py", ".pyc")):
        # Source modules are imported by name; one that is not an identifier never is.
        return stem if stem.isidentifier() and filename.count(".") == 1 else None
    # Extension modules may carry non-identifier names (mypyc's `<hash>__mypyc`).
    return stem or None


def import_names(members: Iterable[str]) -> list[str]:
    """The top-level (or shallowest owned namespace-qualified) import names, sorted.

    Names that shadow the standard library are dropped: a locked wheel must never
    replace `json` or `typing`.
    """
    tree = _Tree()
    for path in install_paths(members):
        tree.add(path.split("/"))
    names = set(tree.owned(prefix=()))
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    return sorted(n for n in names if n.split(".")[0] not in stdlib)


def parse_pth(text: str) -> tuple[list[str], bool]:
    """The path lines of a `.pth` file (extra import roots, relative to site-packages),
    and whether it also has import lines (code that `site` would run at start-up).
    Only relative paths that stay inside the wheel's tree are returned."""
    roots: list[str] = []
    runs_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            runs_code = True
            continue
        parts = line.replace("\\", "/").strip("/").split("/")
        if line.startswith("/") or any(p in ("", ".", "..") for p in parts):
            continue
        root = "/".join(parts)
        if root not in roots:
            roots.append(root)
    return roots, runs_code


def rooted_import_names(members: Iterable[str], root: str) -> list[str]:
    """The import names found below an extra import root that a `.pth` path line adds."""
    prefix = root + "/"
    return import_names(p[len(prefix):] for p in install_paths(members) if p.startswith(prefix))


def shadowed_stdlib_names(members: Iterable[str]) -> list[str]:
    """Top-level names the wheel provides that the standard library already has."""
    tree = _Tree()
    for path in install_paths(members):
        tree.add(path.split("/"))
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    return sorted({n.split(".")[0] for n in tree.owned(prefix=())} & stdlib)


class _Tree:
    """A folder tree of the installed paths."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: dict[str, _Tree] = {}

    def add(self, parts: list[str]) -> None:
        node = self
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Tree())
        if parts[-1]:
            node.files.add(parts[-1])

    def has_modules(self) -> bool:
        return any(module_name(f) for f in self.files) or any(
            d.isidentifier() and sub.has_modules() for d, sub in self.dirs.items()
        )

    def owned(self, prefix: tuple[str, ...]) -> Iterable[str]:
        for filename in self.files:
            mod = module_name(filename)
            if mod and mod != "__init__":
                yield ".".join((*prefix, mod))
        for dirname, sub in self.dirs.items():
            if not dirname.isidentifier():
                continue  # numpy.libs, foo-stubs: data folders, never imported
            if any(module_name(f) == "__init__" for f in sub.files):
                yield ".".join((*prefix, dirname))
            elif sub.has_modules():
                yield from sub.owned((*prefix, dirname))
            elif not prefix:
                # A top-level folder with no modules at all is still importable as a
                # PEP 420 namespace (some wheels ship only data or shared libraries).
                yield dirname
