"""The `sys.meta_path` finder: locked wheels are imported from the cache, installed on
the first import of a name they provide and not before.

It answers only for the names in the plan's index and returns None for everything else
at the cost of one dict lookup, so the standard library and the model's own modules go
through the normal import system. For a locked top-level name, the model's own module of
that name wins (a local `six.py`), but a stray folder without code (`yaml/` holding data)
does not, which is what plain Python would do.

A name whose wheel is not installed yet gets a deferred spec (deferred.py), which
installs it when the import or anything asking where the module lives needs it: imported
only then, it costs a warm start nothing.
"""

from __future__ import annotations

import _thread
import os
import sys
from importlib.machinery import ModuleSpec, PathFinder

from carton_hook.cache.inuse import hold
from carton_hook.cache.layout import is_published
from carton_hook.loading import carton_failed, import_error
from carton_hook.planning.planfile import closure

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from types import ModuleType
    from typing import Any

    from carton_hook.loading.workerclient import Background
    from carton_hook.planning.planfile import PlanData

# Paths are strings and the lock is _thread's: pathlib and threading cost milliseconds
# at every start, and this module is on the warm path.
_join = os.path.join
_isdir = os.path.isdir


class NamespacePath:
    """`__path__` of a namespace package split over several wheels (`google`): the
    portions present now, recomputed on each use, so a portion installed later joins in.
    Its repr contains `NamespacePath`, which `importlib.resources` looks for."""

    def __init__(self, name: str, finder: CartonFinder, shas: Sequence[str]) -> None:
        self._parts = name.split(".")
        self._finder = finder
        self._shas = list(shas)
        self._extra: list[str] = []

    def _paths(self) -> list[str]:
        # In sys.path's order, the locked wheels where a venv's site-packages stands.
        before, after = self._finder.split_path()
        found = []
        for base in (*before, *(_join(self._finder.cache_root, s) for s in self._shas), *after):
            if not base:  # the current folder, which PathFinder spells out too
                try:
                    base = os.getcwd()
                except OSError:
                    continue
            candidate = _join(base, *self._parts)
            if _isdir(candidate):
                found.append(candidate)
        return found + self._extra

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths())

    def __len__(self) -> int:
        return len(self._paths())

    def __getitem__(self, index: int) -> str:
        return self._paths()[index]

    def __contains__(self, item: object) -> bool:
        return item in self._paths()

    def append(self, item: str) -> None:
        self._extra.append(item)

    def __repr__(self) -> str:
        return f"NamespacePath({self._paths()!r})"


class CartonFinder:
    """Finds locked modules in the cache; installs their wheels on first import."""

    def __init__(self, plan: PlanData, cache_root: str,
                 install: Callable[[list[str]], None],
                 background: Background | None = None,
                 stdlib_entries: Iterable[str] = ()) -> None:
        self.plan = plan
        # A first run's worker, still installing what the model's source imports.
        self._background = background
        self.imports: dict[str, str] = plan["imports"]
        self.namespaces: dict[str, list[str]] = plan["namespaces"]
        self.shared: dict[str, list[str]] = plan["shared"]
        self.cache_root = cache_root
        # The standard library's entries of sys.path, as isolating left them: a venv's
        # site-packages follows them, and so do the locked packages (`split_path`).
        self.stdlib_entries = frozenset(stdlib_entries)
        self._install = install
        self._lock = _thread.allocate_lock()
        self._preloaded: set[str] = set()

    def split_path(self) -> tuple[list[str], list[str]]:
        """The `sys.path` entries searched before the locked packages and those searched
        after them, as a venv searches them around its site-packages, which follows the
        standard library's last entry. Before: the model folder, a script's folder, what
        the model or a package put there (opencv's `cv2/`, to import its extension module
        as `cv2`); after: what was appended. The standard library's own are in neither."""
        path = [p for p in sys.path if isinstance(p, str)]  # PathFinder skips the others
        stdlib = self.stdlib_entries
        end = len(path)
        while end and path[end - 1] not in stdlib:
            end -= 1
        end = end or len(path)
        return ([p for p in path[:end] if p not in stdlib],
                [p for p in path[end:] if p not in stdlib])

    # -- the meta path protocol --------------------------------------------------------

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        sha = self.imports.get(fullname)
        if sha is None:
            if fullname == "distutils" and self.plan.get("distutils_shim") and path is None:
                return _distutils_from_setuptools(fullname)
            shas = self.namespaces.get(fullname)
            if shas is None:
                return None
            spec = ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = NamespacePath(fullname, self, shas)  # type: ignore[assignment]
            return spec
        if "." not in fullname:
            local = PathFinder.find_spec(fullname, self.split_path()[0])
            if local is not None and local.loader is not None:
                return local
        shas = self.shared.get(fullname) or [sha]
        # An entry counts with its marker; holding it keeps `cache prune` away from it.
        if all(hold(_join(self.cache_root, s)) for s in shas):
            return self.real_spec(fullname, sha)
        from carton_hook.loading.deferred import DeferredSpec, InstallingLoader

        return DeferredSpec(fullname, InstallingLoader(self, shas),
                            self._is_package(fullname) if "." not in fullname else None)

    def iter_modules(self, prefix: str = "") -> Iterator[tuple[str, bool]]:
        """The locked top-level modules and packages, for `pkgutil.iter_modules()`
        (which asks each meta path finder that has this method); installs nothing."""
        for name in list(self.plan["listed"]):
            yield prefix + name, self._is_package(name)

    def invalidate_caches(self) -> None:
        """Nothing is cached here; `importlib.invalidate_caches()` may call this."""

    def find_distributions(self, context: Any = None) -> list[Any]:
        """Locked distributions for `importlib.metadata`, from pack-time metadata."""
        from carton_hook.loading.distributions import distributions

        name = getattr(context, "name", None)
        return distributions(self.plan, self.cache_root, name)

    # -- helpers -----------------------------------------------------------------------

    def _is_package(self, name: str) -> bool:
        known = self.plan["listed"].get(name)
        if known is not None:
            return known
        from carton_hook.loading.listing import is_package  # its wheel's RECORD, once

        return is_package(self.plan, name)

    def real_spec(self, fullname: str, sha: str) -> ModuleSpec | None:
        """The spec a venv would give for `fullname`, from the installed entry `sha`."""
        parts = fullname.split(".")
        entry = _join(self.cache_root, sha)
        roots = self.plan["wheels"][sha]["roots"]  # "" and .pth path lines
        spec = PathFinder.find_spec(fullname, [_join(entry, *filter(None, (root, *parts[:-1])))
                                               for root in roots])
        if fullname == "pkg_resources" and spec is not None and spec.loader is not None:
            spec.loader = _WorkingSetLoader(spec.loader, self)  # type: ignore[assignment]
        if (spec is not None and spec.loader is not None and sha not in self._preloaded
                and self.plan["wheels"][sha].get("preload")):
            spec.loader = _PreloadingLoader(spec.loader, self, sha)  # type: ignore[assignment]
        locations = spec.submodule_search_locations if spec is not None else None
        if locations is not None:
            # A package other wheels provide too: its __path__ spans all of them, and a
            # pkgutil.extend_path() in its __init__ keeps what it is given.
            for other in self.shared.get(fullname, ()):
                folder = _join(self.cache_root, other, *parts)
                if folder not in locations and _isdir(folder):
                    locations.append(folder)
        return spec

    def _complete(self, sha: str) -> bool:
        return is_published(_join(self.cache_root, sha))

    def ensure_installed(self, shas: list[str], names: Sequence[str] = ()) -> None:
        """Install the wheels `shas` and the wheels they depend on (prefetched together),
        or wait for the plan's worker, which installs them already (compiling meanwhile
        what importing `names` loads, loading/earlycode.py)."""
        with self._lock:
            wanted = closure(self.plan, shas)
            failed: dict[str, str] = {}
            background = self._background
            if background is not None:
                # The plan's worker is installing what the model's source imports: wait
                # for the wheels imported now; those they depend on are waited for when
                # they are imported (torch needs none of sympy's 1,500 files to import).
                background.wait(shas, self._complete, names)
                failed = background.failed
                wanted = [s for s in wanted if s in shas or s not in background.shas]
            missing = [s for s in wanted if not self._complete(s)]
            # What this run's plan step already failed to install: say why at once.
            for s in missing:
                if s in failed:
                    from carton_hook.errors import CartonError

                    raise CartonError(failed[s])
            if missing:
                self._install(missing)
                for s in missing:
                    _forget_negative_cache(_join(self.cache_root, s))


def _distutils_from_setuptools(fullname: str) -> ModuleSpec | None:
    """What setuptools' `distutils-precedence.pth` arranges for a pip-installed
    setuptools: `import distutils` gives `setuptools._distutils` (unless
    SETUPTOOLS_USE_DISTUTILS=stdlib). The shim's own finder decides."""
    import os

    if os.environ.get("SETUPTOOLS_USE_DISTUTILS", "local") != "local":
        return None
    import importlib

    hack = importlib.import_module("_distutils_hack")  # installs setuptools if need be
    spec: ModuleSpec | None = hack.DistutilsMetaFinder().find_spec(fullname, None)
    return spec


def _forget_negative_cache(entry: str) -> None:
    """PathFinder remembers folders that did not exist yet; forget those under `entry`."""
    prefix = entry
    for key in [k for k in sys.path_importer_cache if k.startswith(prefix)]:
        del sys.path_importer_cache[key]


class _PreloadingLoader:
    """The real loader, after loading the shared libraries that the wheel's extensions
    link to in other wheels (torch to `nvidia-*`): one folder per wheel puts them where
    no RPATH looks, and a library already loaded is found by its SONAME.

    They are loaded with the default RTLD_LOCAL: the dynamic linker matches DT_NEEDED
    entries by SONAME, and no symbol is put in the global scope that pip-installed
    packages would not have there."""

    def __init__(self, loader: Any, finder: CartonFinder, sha: str) -> None:
        self._loader = loader
        self._finder = finder
        self._sha = sha

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        finder = self._finder
        preload = finder.plan["wheels"][self._sha]["preload"]
        try:
            # The libraries' own wheels too: on a first run the worker may still be
            # installing them (an import waits only for the wheel it imports).
            finder.ensure_installed(list(dict.fromkeys([self._sha, *(s for s, _ in preload)])))
        except Exception as exc:
            if not carton_failed(exc):
                raise
            raise import_error(f"cannot import {spec.name}: {exc}", spec.name) from exc
        with finder._lock:
            if self._sha not in finder._preloaded:
                from carton_hook.system import load_library

                for sha, path in preload:
                    library = _join(finder.cache_root, sha, path)
                    try:
                        load_library(library)
                    except OSError as exc:
                        raise import_error(
                            f"cannot import {spec.name}: loading {os.path.basename(library)} from "
                            f"{finder.plan['wheels'][sha]['name']} failed: {exc}",
                            spec.name) from exc
                finder._preloaded.add(self._sha)
        spec.loader = self._loader  # from here on, the module's loader is the real one
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _WorkingSetLoader:
    """pkg_resources' loader, plus one step: its working set is built from `sys.path`
    and cannot see locked distributions, so they are added to it (workingset.py)."""

    def __init__(self, loader: Any, finder: CartonFinder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create else None

    def exec_module(self, module: ModuleType) -> None:
        from carton_hook.loading.workingset import add_locked

        self._loader.exec_module(module)
        add_locked(module, self._finder.plan, self._finder.cache_root)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)  # get_source, get_resource_reader, ...
