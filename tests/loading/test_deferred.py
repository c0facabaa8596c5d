"""deferred: the spec of a locked module whose wheel is not installed yet, and its
installing loader, through the finder that gives them (the plan, cache and fake install
of tests/finderplan.py): what can be known without installing is answered so; whatever asks
where the module lives installs it first."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.errors import CartonError, CartonImportError
from carton_hook.loading.deferred import DeferredSpec, InstallingLoader
from carton_hook.loading.finder import CartonFinder

from ..finderplan import ALPHA, BETA, FakeInstall, finder_on_meta_path


@pytest.fixture
def finder(tmp_path: Path) -> Iterator[tuple[CartonFinder, FakeInstall]]:
    with finder_on_meta_path(tmp_path) as found:
        yield found


def test_probing_installs_nothing_and_knows_what_is_a_package(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    alpha, beta = found.find_spec("alpha_unit"), found.find_spec("beta_unit")
    assert alpha is not None and beta is not None
    assert (alpha.parent, beta.parent) == ("alpha_unit", "")
    assert install.calls == []


def test_where_a_module_lives_installs_it_first(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """`origin`, asked by runpy and `pytest --pyargs` before any import, is the cache's."""
    _, install = finder
    spec = importlib.util.find_spec("beta_unit")
    assert spec is not None and install.calls == []
    assert spec.origin == str(tmp_path / "cache" / BETA / "beta_unit.py")
    assert install.calls == [[BETA]]


def test_an_install_that_fails_is_an_import_error_naming_the_module(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    _, install = finder
    install.fail = "offline: beta_unit-1.0-py3-none-any.whl is not in the cache"
    with pytest.raises(CartonImportError, match="cannot import beta_unit: offline") as caught:
        importlib.import_module("beta_unit")
    assert isinstance(caught.value, ImportError) and caught.value.name == "beta_unit"
    assert isinstance(caught.value.__cause__, CartonError)
    assert "beta_unit" not in sys.modules


def test_a_lazy_loader_around_it_installs_once_and_runs_the_module_when_used(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    _, install = finder
    spec = importlib.util.find_spec("beta_unit")
    assert isinstance(spec, DeferredSpec) and install.calls == []
    spec.loader = importlib.util.LazyLoader(spec.loader)  # type: ignore[arg-type]
    module = importlib.util.module_from_spec(spec)  # its create_module: the wheel is needed
    assert install.calls == [[BETA]]
    spec.loader.exec_module(module)
    assert module.B == 41 and install.calls == [[BETA]]


def test_a_spec_made_by_someone_else_around_the_loader_is_completed(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    _, install = finder
    deferred = importlib.util.find_spec("beta_unit")
    assert deferred is not None and isinstance(deferred.loader, InstallingLoader)
    spec = importlib.machinery.ModuleSpec("beta_unit", deferred.loader)
    module = importlib.util.module_from_spec(spec)  # create_module installs, then the real
    assert spec.origin == str(tmp_path / "cache" / BETA / "beta_unit.py")
    assert spec.loader is not deferred.loader  # the real one, which runs it
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.B == 41 and install.calls == [[BETA]]


def test_whether_it_is_a_package_is_read_from_the_record_without_installing(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """Where the plan does not say (loading/listing.py): the wheel's pack-time RECORD."""
    found, install = finder
    info = tmp_path / "model" / ".carton" / "dist-info" / ALPHA / "alpha_unit-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("alpha_unit/__init__.py,sha256=AAAA,1\n")
    found.plan["wheels"][ALPHA]["dist_info"] = str(info)
    found.plan["listed"].update(alpha_unit=None, beta_unit=None)
    alpha, beta = found.find_spec("alpha_unit"), found.find_spec("beta_unit")
    assert alpha is not None and beta is not None and alpha.loader is not None
    assert (alpha.parent, beta.parent) == ("alpha_unit", "")
    assert alpha.loader.is_package("alpha_unit")  # type: ignore[attr-defined]
    assert found.plan["listed"] == {"alpha_unit": True, "beta_unit": False, "ns_unit": True}
    assert install.calls == []
