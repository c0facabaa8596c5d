"""The finder alone, through its `install` seam: a plan written here, a fake install that
fills cache entries the way the worker would, no worker and no archive. (The end-to-end
runs of the finder, with real cartons and the real worker, are in e2e/test_finder.py.)"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.cache.layout import COMPLETE
from carton_hook.errors import CartonError, CartonImportError
from carton_hook.loading.finder import CartonFinder

ALPHA, BETA, GAMMA = "a" * 64, "b" * 64, "c" * 64


def wheel(name: str, deps: list[str] | None = None) -> dict[str, object]:
    return {"name": f"{name}-1.0-py3-none-any.whl", "dist": name, "version": "1.0",
            "size": 1, "url": f"https://files.example/{name}.whl", "bundled": None,
            "dist_info": None, "deps": deps or [], "top_level": [name], "roots": [""]}


def plan(model: Path) -> dict[str, object]:
    """alpha (a package, needs beta), beta (a module), gamma (a namespace portion)."""
    return {"format": 11, "stdlib": [], "model": str(model), "name": "m", "version": "1",
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


@pytest.fixture
def finder(tmp_path: Path) -> Iterator[tuple[CartonFinder, FakeInstall]]:
    """The finder on sys.meta_path; import state restored afterwards."""
    model, cache = tmp_path / "model", tmp_path / "cache"
    model.mkdir()
    cache.mkdir()
    install = FakeInstall(cache)
    found = CartonFinder(plan(model), str(cache), install)  # type: ignore[arg-type]
    saved_modules, saved_path = dict(sys.modules), list(sys.meta_path)
    sys.meta_path.insert(0, found)
    try:
        yield found, install
    finally:
        sys.meta_path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        importlib.invalidate_caches()


def test_a_name_it_does_not_own_costs_nothing(finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    assert found.find_spec("json") is None
    assert found.find_spec("not_locked_anywhere") is None
    assert install.calls == []


def test_probing_installs_nothing_and_knows_what_is_a_package(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    alpha, beta = found.find_spec("alpha_unit"), found.find_spec("beta_unit")
    assert alpha is not None and beta is not None
    assert (alpha.parent, beta.parent) == ("alpha_unit", "")
    assert install.calls == []


def test_the_first_import_installs_the_wheel_with_its_dependencies_once(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    _, install = finder
    alpha = importlib.import_module("alpha_unit")
    assert alpha.VALUE == 42
    assert install.calls == [[ALPHA, BETA]]  # beta came with alpha: no second install
    assert alpha.__file__ == str(tmp_path / "cache" / ALPHA / "alpha_unit" / "__init__.py")
    importlib.import_module("beta_unit")
    assert install.calls == [[ALPHA, BETA]]


def test_where_a_module_lives_installs_it_first(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """`origin`, asked by runpy and `pytest --pyargs` before any import, is the cache's."""
    _, install = finder
    spec = importlib.util.find_spec("beta_unit")
    assert spec is not None and install.calls == []
    assert spec.origin == str(tmp_path / "cache" / BETA / "beta_unit.py")
    assert install.calls == [[BETA]]


def test_a_namespace_portion_installs_only_its_own_wheel(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    _, install = finder
    gamma = importlib.import_module("ns_unit.gamma")
    assert gamma.G == "g"
    assert install.calls == [[GAMMA]]


def test_the_models_own_module_wins_over_a_locked_one(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    found, install = finder
    (tmp_path / "model" / "beta_unit.py").write_text("B = 'mine'\n")
    spec = found.find_spec("beta_unit")
    assert spec is not None and spec.origin == str(tmp_path / "model" / "beta_unit.py")
    assert install.calls == []


def test_an_install_that_fails_is_an_import_error_naming_the_module(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    _, install = finder
    install.fail = "offline: beta_unit-1.0-py3-none-any.whl is not in the cache"
    with pytest.raises(CartonImportError, match="cannot import beta_unit: offline") as caught:
        importlib.import_module("beta_unit")
    assert isinstance(caught.value, ImportError) and caught.value.name == "beta_unit"
    assert isinstance(caught.value.__cause__, CartonError)
    assert "beta_unit" not in sys.modules


def test_pkgutil_lists_the_locked_top_level_names_without_installing(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    assert dict(found.iter_modules()) == {"alpha_unit": True, "beta_unit": False,
                                          "ns_unit": True}
    assert install.calls == []
