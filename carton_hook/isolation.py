"""Keep the model away from packages it did not lock: the interpreter's site-packages,
the user site and `PYTHONPATH` leave `sys.path`, and what was already imported from them
(by `.pth` files at start-up) leaves `sys.modules` and `sys.meta_path`."""

from __future__ import annotations

import os
import site
import sys

# This package and the standard library's own modules stay, wherever they live.
_KEEP_PREFIXES = ("carton_hook",)


def foreign_paths() -> list[str]:
    """The `sys.path` entries that are not the standard library's."""
    dirs = set(getattr(site, "getsitepackages", list)())
    user = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user, str):
        dirs.add(user)
    dirs.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    return sorted({os.path.realpath(d) for d in dirs})


def isolate(model_dir: str, *, fallback: bool = False) -> list[str]:
    """Make `sys.path` the model folder plus the standard library.

    With `fallback`, the removed entries are put back at the end instead: locked
    packages and the model still come first. Returns the removed entries.
    """
    foreign = foreign_paths()

    def is_foreign(entry: str) -> bool:
        real = os.path.realpath(entry or ".")
        return any(real == d or real.startswith(d + os.sep) for d in foreign)

    removed = [p for p in sys.path if is_foreign(p)]
    kept = [p for p in sys.path if not is_foreign(p) and p not in ("", ".")]
    sys.path[:] = [model_dir, *kept, *(removed if fallback else [])]
    if fallback:
        return removed

    def from_outside(name: str) -> bool:
        if name.split(".")[0] in _KEEP_PREFIXES:
            return False
        location = getattr(sys.modules.get(name), "__file__", None)
        return isinstance(location, str) and is_foreign(location)

    # Finders that site-packages installed (_distutils_hack, editable installs) go first,
    # while their modules can still be looked up, then the modules themselves.
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not from_outside((f if isinstance(f, type) else type(f)).__module__)]
    for key in [k for k in sys.path_importer_cache if is_foreign(k)]:
        del sys.path_importer_cache[key]
    for name in [n for n in sys.modules if from_outside(n)]:
        del sys.modules[name]
    return removed
