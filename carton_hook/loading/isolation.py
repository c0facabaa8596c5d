"""Keep the model away from packages it did not lock.

`sys.path` becomes the model folder plus the standard library, nothing else: the
interpreter's site-packages, the user site, `PYTHONPATH` and whatever `.pth` files added
(editable installs) all leave it, and what was already imported from there at start-up
leaves `sys.modules` and `sys.meta_path`.
"""

from __future__ import annotations

import os
import sys

from carton_hook.cache.layout import BOOT_MODULE

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Sequence

# Stay, wherever they came from: this package, the main module (multiprocessing needs
# it), and the prefix's boot module (purging it mid-import would break its import).
_KEEP_PREFIXES = ("carton_hook", "__main__", "__mp_main__", BOOT_MODULE)


def isolate(model_dir: str, stdlib: Sequence[str], *,
            fallback: bool = False) -> tuple[list[str], list[str]]:
    """Make `sys.path` the model folder plus the entries inside `stdlib` folders (real
    paths, and the interpreter's zipped standard library beside them), and forget modules
    imported from elsewhere.

    With `fallback`, the other entries are put back at the end instead: the model and
    its locked packages still come first. Returns the standard library's entries, which
    it kept, and the entries that were taken out.
    """
    roots = list(stdlib)  # real paths: the plan's (planning/select.py)
    parents = [os.path.dirname(r) for r in roots]
    named = _site_dirs()
    site_dirs = [*named, *(os.path.realpath(p) for p in named)]

    def inside(path: str, folders: list[str]) -> bool:
        return any(path == f or path.startswith(f + os.sep) for f in folders)

    def in_stdlib(path: str) -> bool:
        return inside(path, roots) or (path.endswith(".zip") and inside(os.path.dirname(path),
                                                                        parents))

    known: dict[str, bool] = {}

    def is_stdlib(entry: str) -> bool:
        # Most modules share a few folders: each folder is answered once. A folder spelled
        # plainly (absolute, no `..`) inside a site folder or a standard library folder
        # is answered as spelled; only the others are resolved, since realpath is an lstat
        # per part in Python: resolving all of them cost ~0.2 ms of every warm start.
        answer = known.get(entry)
        if answer is None:
            plain = entry.startswith(os.sep) and entry == os.path.normpath(entry)
            if plain and (inside(entry, site_dirs) or in_stdlib(entry)):
                path = entry
            else:
                path = os.path.realpath(entry or ".")
            answer = known[entry] = not inside(path, site_dirs) and in_stdlib(path)
        return answer

    kept = [p for p in sys.path if p and is_stdlib(p)]
    removed = [p for p in sys.path if p not in kept]
    sys.path[:] = [model_dir, *kept, *(removed if fallback else [])]
    if fallback:
        return kept, removed

    def from_outside(name: str) -> bool:
        if name.split(".")[0] in _KEEP_PREFIXES:
            return False
        location = getattr(sys.modules.get(name), "__file__", None)
        return isinstance(location, str) and not is_stdlib(os.path.dirname(location))

    # Finders that site-packages installed (_distutils_hack, editable installs) go first,
    # while their modules can still be looked up, then the modules themselves.
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not from_outside((f if isinstance(f, type) else type(f)).__module__)]
    for key in [k for k in sys.path_importer_cache if not is_stdlib(k)]:
        del sys.path_importer_cache[key]
    for name in [n for n in sys.modules if from_outside(n)]:
        del sys.modules[name]
    return kept, removed


def _site_dirs() -> list[str]:
    import site

    dirs = list(getattr(site, "getsitepackages", list)())
    user = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user, str):
        dirs.append(user)
    return dirs
