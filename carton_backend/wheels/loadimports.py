"""What importing a pure-Python wheel's modules imports: read from their source at pack
time, so that a first run installs, beside a package, only the dependencies its import
can need.

A dependency that the package imports only inside its functions, or reads as data (such
as tzdata for python-dateutil, opened through `importlib.resources` when a time zone is
asked for), is then installed when it is first imported, as any other locked package.
The lock records the result (`tool.carton.imported-dependencies`); nothing depends on it
being complete: a dependency left out is installed on its first import, a moment later.

The reading leans towards too much rather than too little of what it can see: every
`import` and `from ... import` that is not inside a function's body or an
`if TYPE_CHECKING:` block counts (at module level, in classes, under `try` and `if`), and
so does a literal `importlib.import_module("name")` there. A function that the module
calls as it runs is not followed: what it imports is installed on its first import.
A wheel with code that cannot be read here (an extension module, bytecode without its
source) is not read at all: its every dependency counts. Lines, not a parser: reading a
big pure-Python wheel must not cost the lock seconds (sympy's 1,533 modules: 0.28 s),
and a misread line adds a name rather than drops one.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from carton_hook.formats.importnames import install_paths
from carton_hook.formats.lockfile import Package

# Code that cannot be read as source: extension modules, shared libraries, bytecode.
_OPAQUE = re.compile(r"\.(so|pyd|dylib|dll|pyc)$|\.so\.")
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^#;\r\n]+)")
_FROM = re.compile(rb"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+\(?([^#;\r\n]*)")
_DYNAMIC = re.compile(rb"""(?:import_module|__import__)\(\s*['"]([\w.]+)['"]""")
# A statement whose block runs later or never: a function, a type-checking block.
_SKIPPED_BLOCK = re.compile(
    rb"[ \t]*(?:(?:async[ \t]+)?def[ \t]|if[ \t]+(?:typing\.)?TYPE_CHECKING[ \t]*:)")
# A line that goes on the statement before it rather than starting one.
_CONTINUES = (b")", b"]", b"}", b"#")


def load_imports(wheel: Path) -> frozenset[str] | None:
    """The absolute dotted names the wheel's modules import when they are imported, or
    None where the wheel holds code that cannot be read here."""
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        # What is installed where it can be imported (no .dist-info, scripts or data).
        importable = [name for name in zf.namelist() if install_paths([name])]
        if any(_OPAQUE.search(name) for name in importable):
            return None
        for name in importable:
            if name.endswith(".py"):
                found.update(source_imports(zf.read(name)))
    return frozenset(found)


def source_imports(source: bytes) -> set[str]:
    """The absolute names a module's source imports when the module runs (see above)."""
    found: set[str] = set()
    skipped_below: int | None = None  # the indentation of the block being skipped
    listing: str | None = None  # the module of a `from x import (` whose names go on
    for line in source.splitlines():
        body = line.lstrip()
        if not body:
            continue
        if listing is not None:
            names = body.split(b"#")[0]
            found.update(_from_names(listing, names))
            if b")" in names:
                listing = None
            continue
        indent = len(line) - len(body)
        if skipped_below is not None:
            if indent > skipped_below or body.startswith(_CONTINUES):
                continue
            skipped_below = None
        if _SKIPPED_BLOCK.match(line):
            skipped_below = indent
            continue
        if (m := _IMPORT.match(line)) is not None:
            for part in m[1].decode("utf-8", "replace").split(","):
                words = part.split()
                if words:
                    found.add(words[0])
        elif (m := _FROM.match(line)) is not None and not m[1].startswith(b"."):
            module = m[1].decode("utf-8", "replace")
            found.add(module)
            found.update(_from_names(module, m[2]))
            code = line.split(b"#")[0]
            if b"(" in code and b")" not in code:
                listing = module
        found.update(d.decode("utf-8", "replace") for d in _DYNAMIC.findall(line)
                     if not d.startswith(b"."))
    return found


def _from_names(module: str, names: bytes) -> set[str]:
    """`module.name` for each name of a `from module import` list (or part of one)."""
    found: set[str] = set()
    for part in names.decode("utf-8", "replace").replace("(", "").replace(")", "").split(","):
        words = part.split()
        if words and words[0].isidentifier():
            found.add(f"{module}.{words[0]}")
    return found


def narrow_dependencies(packages: list[Package], imported: dict[str, frozenset[str]],
                        ) -> list[Package]:
    """`packages` (one lock section), each with the dependencies that its modules import
    when imported (`imported`: sha256 -> `load_imports`), where its source was read. A
    package that provides no import name (a meta-package that only gathers others) is
    passed through: installing it brings all of its dependencies, and a package that
    depends on it keeps it."""
    provides = {p.name: p.imports for p in packages}
    return [p if p.wheel.sha256 not in imported or not p.imports else p._replace(
        imported_dependencies=tuple(
            dep for dep in p.dependencies
            if not provides.get(dep) or _imports_any(imported[p.wheel.sha256], provides[dep])))
        for p in packages]


def _imports_any(imported: frozenset[str], provided: tuple[str, ...]) -> bool:
    """Whether `imported` holds one of the import names `provided`, or a module below one."""
    return any(name in imported or any(i.startswith(name + ".") for i in imported)
               for name in provided)
