"""The spec of a locked module whose wheel is not installed yet, and the loader that
installs the wheel when the import needs it.

The finder (finder.py) gives this spec for such a name: `find_spec(name) is not None`
never downloads, while whatever asks where the module lives (`origin`,
`submodule_search_locations`, the loader's `get_code`: runpy, `pytest --pyargs`)
installs the wheel first, through the worker, and gets what a venv gives. After the
import `__loader__`, `__file__` and `__path__` are what a normal import from the cache
would give. A warm start, whose wheels are all installed, never imports this module.
"""

from __future__ import annotations

import os
from importlib.machinery import ModuleSpec

from carton_hook.cache.inuse import HOLD_ATTEMPTS, hold
from carton_hook.loading import carton_failed, import_error

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any, Protocol

    from carton_hook.planning.planfile import PlanData

    class _Finder(Protocol):
        """What the installing loader asks of the finder that made its spec (finder.py:
        CartonFinder)."""

        plan: PlanData
        cache_root: str

        def ensure_installed(self, shas: list[str], names: Sequence[str] = ()) -> None: ...

        def real_spec(self, fullname: str, sha: str) -> ModuleSpec | None: ...


class DeferredSpec(ModuleSpec):
    """The spec of a locked module whose wheel is not installed yet.

    That the module exists, its name, its parent and whether it is a package are known
    from the plan, so the common probe `find_spec(name) is not None` installs nothing.
    Where it lives is a path in the cache entry, which exists only once the wheel is
    installed: reading `origin`, `submodule_search_locations` or `cached` (as runpy,
    `pytest --pyargs` and `inspect` do) installs it first, and the answer is then what
    a venv gives. The loader's own questions (`get_code`, `get_filename`, ...) do the same.
    """

    def __init__(self, name: str, loader: InstallingLoader, is_package: bool | None) -> None:
        self._installing: InstallingLoader | None = None
        self._package = is_package
        super().__init__(name, loader, is_package=bool(is_package))  # type: ignore[arg-type]
        self._set_fileattr = True  # has_location: modules from wheels are files
        self._installing = loader
        loader._spec = self

    def resolve(self) -> None:
        """Install the wheel and take the real spec's answers (once)."""
        installing = self._installing
        if installing is not None:
            real = installing.real_spec(self.name)
            self._installing = None
            installing.real = real.loader
            loader: object = self.loader
            if loader is installing:  # not if someone wrapped it (a LazyLoader)
                self.loader = real.loader
            _take_location(self, real)
            self.cached = None if real.origin is None else real.cached

    @property
    def origin(self) -> str | None:
        self.resolve()
        return self._origin

    @origin.setter
    def origin(self, value: str | None) -> None:
        self._origin = value

    @property
    def submodule_search_locations(self) -> list[str] | None:
        self.resolve()
        return self._locations

    @submodule_search_locations.setter
    def submodule_search_locations(self, value: list[str] | None) -> None:
        self._locations = value

    @property
    def cached(self) -> str | None:
        self.resolve()  # which takes the real spec's, computed from its origin
        return self._cached

    @cached.setter
    def cached(self, value: str | None) -> None:
        self._cached = value

    @property
    def parent(self) -> str:
        package = self._package
        if self._installing is None or package is None:
            package = self.submodule_search_locations is not None
        return self.name if package else self.name.rpartition(".")[0]


class InstallingLoader:
    """Installs the wheel, then turns the spec into the real one and delegates.

    Until then it answers what needs no files (`is_package` of a top-level name); every
    other loader question (`get_code` for runpy, `get_filename`, `get_source`,
    `get_resource_reader`, ...) installs the wheel and asks the real loader."""

    def __init__(self, finder: _Finder, shas: list[str]) -> None:
        self._finder = finder
        self._shas = shas
        self._spec: DeferredSpec | None = None
        self.real: Any = None  # the real loader, once installed

    def real_spec(self, name: str) -> ModuleSpec:
        """Install the wheel (and what it depends on); the spec a venv would give."""
        wheel = self._finder.plan["wheels"][self._shas[0]]
        root = self._finder.cache_root
        for _ in range(HOLD_ATTEMPTS):
            try:
                self._finder.ensure_installed(self._shas, [name])
            except Exception as exc:
                if not carton_failed(exc):
                    raise
                raise import_error(f"cannot import {name}: {exc}", name) from exc
            # Held, `cache clear` leaves it alone; taken out before that, install again.
            if all(hold(os.path.join(root, sha)) for sha in self._shas):
                break
        else:
            raise import_error(f"cannot import {name}: {wheel['name']} was removed from the "
                               f"cache {HOLD_ATTEMPTS} times while it was being imported "
                               "(`cache clear` in a loop?)", name)
        real = self._finder.real_spec(name, self._shas[0])
        if real is None or real.loader is None:
            raise import_error(f"{wheel['name']} was installed but provides no module {name}",
                               name)
        return real

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        if isinstance(spec, DeferredSpec):
            spec.resolve()
        else:  # a spec made by someone else around this loader
            real = self.real_spec(spec.name)
            self.real = spec.loader = real.loader
            _take_location(spec, real)
        create = getattr(self.real, "create_module", None)
        return create(spec) if create else None

    def exec_module(self, module: ModuleType) -> None:
        # Reached when a wrapper kept this loader (importlib.util.LazyLoader puts it back
        # on the spec); hand over to the real one.
        self._real_loader().exec_module(module)

    def is_package(self, fullname: str) -> bool:
        spec = self._spec
        if spec is not None and fullname == spec.name and spec._package is not None:
            return spec._package
        return bool(self._real_loader().is_package(fullname))

    def __getattr__(self, name: str) -> Any:
        # get_code, get_source, get_filename, get_data, get_resource_reader, path, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._real_loader(), name)

    def _real_loader(self) -> Any:
        if self.real is None:
            spec = self._spec
            assert spec is not None, "made by a DeferredSpec"
            spec.resolve()
        return self.real


def _take_location(spec: ModuleSpec, real: ModuleSpec) -> None:
    """What the installed module's real spec says about where it lives, onto `spec`."""
    spec.origin = real.origin
    spec.loader_state = real.loader_state
    spec.submodule_search_locations = real.submodule_search_locations
    spec.has_location = real.has_location
