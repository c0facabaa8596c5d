"""The finder alone, through its `install` seam: a plan written here, a fake install that
fills cache entries the way the worker would, no worker and no archive. (The end-to-end
runs of the finder, with real cartons and the real worker, are in e2e/test_finder.py.)"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.loading.finder import CartonFinder

from ..finderplan import ALPHA, BETA, GAMMA, FakeInstall, finder_on_meta_path


@pytest.fixture
def finder(tmp_path: Path) -> Iterator[tuple[CartonFinder, FakeInstall]]:
    with finder_on_meta_path(tmp_path) as found:
        yield found


def test_a_name_it_does_not_own_costs_nothing(finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    assert found.find_spec("json") is None
    assert found.find_spec("not_locked_anywhere") is None
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


def test_an_entry_put_in_front_of_the_standard_library_wins_over_a_locked_module(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """As in a venv, where such an entry comes before site-packages: opencv's `cv2`
    puts its own folder there and imports its extension module as `cv2`."""
    found, install = finder
    inserted = tmp_path / "inserted"
    inserted.mkdir()
    (inserted / "beta_unit.py").write_text("B = 'inserted'\n")
    sys.path.insert(1, str(inserted))
    spec = found.find_spec("beta_unit")
    assert spec is not None and spec.origin == str(inserted / "beta_unit.py")
    assert install.calls == []


def test_an_entry_appended_after_the_standard_library_loses_to_a_locked_module(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """As in a venv, where an appended entry comes after site-packages."""
    _, install = finder
    appended = tmp_path / "appended"
    appended.mkdir()
    (appended / "beta_unit.py").write_text("B = 'appended'\n")
    sys.path.append(str(appended))
    assert importlib.import_module("beta_unit").B == 41
    assert install.calls == [[BETA]]


def test_a_namespace_spans_the_entries_around_the_locked_wheels_in_sys_path_order(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path) -> None:
    """`ns_unit` is locked as a namespace (gamma's); portions on entries put in front
    of the standard library and appended after it join it, where a venv has them."""
    _, install = finder
    front, back = tmp_path / "front", tmp_path / "back"
    for folder, name in ((front, "early"), (back, "late")):
        (folder / "ns_unit" / name).mkdir(parents=True)
        (folder / "ns_unit" / name / "__init__.py").write_text(f"WHO = '{name}'\n")
    sys.path.insert(1, str(front))
    sys.path.append(str(back))
    assert importlib.import_module("ns_unit.gamma").G == "g"
    assert importlib.import_module("ns_unit.early").WHO == "early"
    assert importlib.import_module("ns_unit.late").WHO == "late"
    assert list(sys.modules["ns_unit"].__path__) == [
        str(front / "ns_unit"), str(tmp_path / "cache" / GAMMA / "ns_unit"), str(back / "ns_unit")]
    assert install.calls == [[GAMMA]]


def test_entries_that_are_not_folder_names_are_passed_over_as_pathfinder_does(
        finder: tuple[CartonFinder, FakeInstall], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """bytes, a `Path` and an unhashable object on `sys.path` make no error; the empty
    string is the current folder, for a locked module and for a namespace's portion."""
    found, _ = finder
    here = tmp_path / "here"
    (here / "ns_unit" / "cwd_part").mkdir(parents=True)
    (here / "ns_unit" / "cwd_part" / "__init__.py").write_text("WHO = 'cwd'\n")
    (here / "beta_unit.py").write_text("B = 'cwd'\n")
    monkeypatch.chdir(here)
    sys.path[1:1] = [b"/bytes", tmp_path, ["unhashable"], ""]  # type: ignore[list-item]
    spec = found.find_spec("beta_unit")
    assert spec is not None and spec.origin == str(here / "beta_unit.py")
    assert importlib.import_module("ns_unit.cwd_part").WHO == "cwd"
    assert str(here / "ns_unit") in list(sys.modules["ns_unit"].__path__)


def test_pkgutil_lists_the_locked_top_level_names_without_installing(
        finder: tuple[CartonFinder, FakeInstall]) -> None:
    found, install = finder
    assert dict(found.iter_modules()) == {"alpha_unit": True, "beta_unit": False,
                                          "ns_unit": True}
    assert install.calls == []
