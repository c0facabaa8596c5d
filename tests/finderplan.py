"""A plan, a cache and a fake install for the finder's unit tests (loading/test_finder.py,
loading/test_deferred.py): a plan written here, a fake install that fills cache entries
the way the worker would, no worker and no archive."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from carton_hook.cache.layout import COMPLETE
from carton_hook.errors import CartonError
from carton_hook.loading.finder import CartonFinder
from carton_hook.planning.planfile import PLAN_FORMAT

ALPHA, BETA, GAMMA = "a" * 64, "b" * 64, "c" * 64


def wheel(name: str, deps: list[str] | None = None) -> dict[str, object]:
    return {"name": f"{name}-1.0-py3-none-any.whl", "dist": name, "version": "1.0",
            "size": 1, "url": f"https://files.example/{name}.whl", "bundled": None,
            "dist_info": None, "deps": deps or [], "top_level": [name], "roots": [""]}


def plan(model: Path) -> dict[str, object]:
    """alpha (a package, needs beta), beta (a module), gamma (a namespace portion)."""
    return {"format": PLAN_FORMAT, "stdlib": [], "model": str(model), "name": "m", "version": "1",
            "entrypoint": "model:main", "requirements": "requirements.txt", "archive": None,
            "section": "here",
            "wheels": {ALPHA: wheel("alpha_unit", [BETA]), BETA: wheel("beta_unit"),
                       GAMMA: wheel("gamma_unit")},
            "imports": {"alpha_unit": ALPHA, "beta_unit": BETA, "ns_unit.gamma": GAMMA},
            "namespaces": {"ns_unit": [GAMMA]}, "shared": {},
            "listed": {"alpha_unit": True, "beta_unit": False, "ns_unit": True},
            "distutils_shim": False}


FILES = {ALPHA: {"alpha_unit/__init__.py": "import beta_unit\nVALUE = beta_unit.B + 1\n"},
         BETA: {"beta_unit.py": "B = 41\n"},
         GAMMA: {"ns_unit/gamma/__init__.py": "G = 'g'\n"}}


class FakeInstall:
    """What the worker does for the finder: each wheel asked for becomes a published
    entry (its files, then its completion marker)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.calls: list[list[str]] = []
        self.fail: str | None = None

    def __call__(self, shas: list[str]) -> None:
        self.calls.append(list(shas))
        if self.fail:
            raise CartonError(self.fail)
        for sha in shas:
            for relpath, text in FILES[sha].items():
                path = self.cache / sha / relpath
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            (self.cache / sha / COMPLETE).write_text(json.dumps({"sha256": sha}))


@contextlib.contextmanager
def finder_on_meta_path(tmp_path: Path) -> Iterator[tuple[CartonFinder, FakeInstall]]:
    """The finder on sys.meta_path, with its fake install; import state restored
    afterwards."""
    model, cache = tmp_path / "model", tmp_path / "cache"
    model.mkdir()
    cache.mkdir()
    install = FakeInstall(cache)
    # As loading does: the model folder first, then what stands for the standard library.
    found = CartonFinder(plan(model), str(cache), install,  # type: ignore[arg-type]
                         stdlib_entries=sys.path)
    saved_modules, saved_meta, saved_path = dict(sys.modules), list(sys.meta_path), list(sys.path)
    sys.path.insert(0, str(model))
    sys.meta_path.insert(0, found)
    try:
        yield found, install
    finally:
        sys.meta_path[:] = saved_meta
        sys.path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        importlib.invalidate_caches()
