"""loading/isolation.py: what `isolate` takes out of `sys.path`, `sys.modules`,
`sys.meta_path` and the path importer cache, what it keeps, and its fallback."""

from __future__ import annotations

import site
import sys
import sysconfig
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

import pytest

from carton_hook.loading import isolation
from carton_hook.loading.isolation import isolate


@dataclass
class After:
    """What `isolate` left, read before the import state is restored."""

    kept: list[str]
    removed: list[str]
    path: list[str]
    modules: set[str]
    meta_path: list[Any]
    importer_cache: set[str] = field(default_factory=set)


def run_isolate(model: Path, stdlib: Sequence[Path], path: Sequence[str], *,
                fallback: bool = False, modules: dict[str, str | None] | None = None,
                finders: Sequence[Any] = (), cached: Sequence[str] = ()) -> After:
    """`isolate` over this `sys.path`, with fake modules (`name -> __file__`), finders
    and path importer cache entries added; the import state is restored at once, before
    anything else is imported."""
    saved_path, saved_meta = list(sys.path), list(sys.meta_path)
    saved_modules, saved_cache = dict(sys.modules), dict(sys.path_importer_cache)
    try:
        sys.path[:] = list(path)
        for name, location in (modules or {}).items():
            module = types.ModuleType(name)
            module.__file__ = location
            sys.modules[name] = module
        sys.meta_path[:0] = list(finders)
        for key in cached:
            sys.path_importer_cache[key] = None
        kept, removed = isolate(str(model), [str(p) for p in stdlib], fallback=fallback)
        return After(kept, removed, list(sys.path), set(sys.modules), list(sys.meta_path),
                     set(sys.path_importer_cache))
    finally:
        sys.path[:] = saved_path
        sys.meta_path[:] = saved_meta
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(saved_cache)


@dataclass
class Layout:
    model: Path
    stdlib: Path  # the standard library's folder
    kept: list[str]  # sys.path entries of the standard library
    others: list[str]  # everything else on sys.path


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    lib = tmp_path / "py" / "lib"
    stdlib = lib / "python3.x"
    (stdlib / "lib-dynload").mkdir(parents=True)
    (tmp_path / "stdlib-link").symlink_to(stdlib, target_is_directory=True)
    kept = [str(lib / "python3x.zip"),  # a zipped standard library, beside its folder
            str(stdlib), str(stdlib / "lib-dynload"), str(tmp_path / "stdlib-link")]
    others = ["",  # the script's folder
              str(tmp_path / "site-packages"), str(tmp_path / "on-pythonpath"),
              str(lib / "python3.x-extra"),  # a sibling whose name starts like it
              str(tmp_path / "elsewhere" / "python3x.zip")]
    return Layout(tmp_path / "model", stdlib, kept, others)


def interleaved(layout: Layout) -> list[str]:
    """sys.path with the standard library's entries between the others."""
    o, k = layout.others, layout.kept
    return [o[0], k[0], o[1], k[1], o[2], k[2], o[3], k[3], o[4]]


def test_sys_path_becomes_the_model_folder_and_the_standard_library(layout: Layout) -> None:
    after = run_isolate(layout.model, [layout.stdlib], interleaved(layout))
    assert after.path == [str(layout.model), *layout.kept]
    assert (after.kept, after.removed) == (layout.kept, layout.others)


def test_site_packages_inside_a_standard_library_folder_leave_too(tmp_path: Path) -> None:
    """A virtual environment's `platstdlib` holds its site-packages (lib/python3.X/
    site-packages): the site folders the interpreter names are never kept."""
    site_dir = site.getsitepackages()[0]
    stdlib = Path(site_dir).parent
    after = run_isolate(tmp_path / "model", [stdlib], [str(stdlib), site_dir])
    assert after.path == [str(tmp_path / "model"), str(stdlib)]
    assert after.removed == [site_dir]


def test_the_fallback_puts_the_rest_back_after_the_model_and_the_standard_library(
        layout: Layout) -> None:
    outside = str(Path(layout.others[1], "iso_unit_outside.py"))
    after = run_isolate(layout.model, [layout.stdlib], interleaved(layout), fallback=True,
                        modules={"iso_unit_outside": outside},
                        finders=[finder_from("iso_unit_outside")])
    assert after.path == [str(layout.model), *layout.kept, *layout.others]
    assert (after.kept, after.removed) == (layout.kept, layout.others)
    assert "iso_unit_outside" in after.modules  # nothing imported is forgotten
    assert any(type(f).__module__ == "iso_unit_outside" for f in after.meta_path)


def test_modules_imported_from_elsewhere_are_forgotten_but_the_standard_librarys_stay(
        layout: Layout) -> None:
    outside = str(Path(layout.others[1], "iso_unit_out", "__init__.py"))
    inside = str(layout.stdlib / "iso_unit_std.py")
    after = run_isolate(layout.model, [layout.stdlib], interleaved(layout), modules={
        "iso_unit_out": outside, "iso_unit_out.sub": outside,
        "iso_unit_std": inside,
        "iso_unit_builtin": None,  # no file: builtin, frozen or namespace
    })
    assert {"iso_unit_out", "iso_unit_out.sub"} & after.modules == set()
    assert {"iso_unit_std", "iso_unit_builtin"} <= after.modules


@pytest.mark.parametrize("name", ["carton_hook.iso_unit", "__mp_main__", "_carton_boot"])
def test_carton_the_main_module_and_the_boot_module_stay_wherever_they_came_from(
        layout: Layout, name: str) -> None:
    outside = str(Path(layout.others[1], "x.py"))
    after = run_isolate(layout.model, [layout.stdlib], interleaved(layout),
                        modules={name: outside, "iso_unit_gone": outside})
    assert name in after.modules and "__main__" in after.modules
    assert "iso_unit_gone" not in after.modules


def finder_from(module: str, *, as_class: bool = False) -> Any:
    """A meta path finder defined in `module`: an instance, or the class itself (as
    editable installs put on sys.meta_path)."""
    def find_spec(*args: object) -> None:
        return None

    cls = type("IsoUnitFinder", (), {"__module__": module,
                                     "find_spec": staticmethod(find_spec)})
    return cls if as_class else cls()


def test_finders_installed_from_elsewhere_leave_sys_meta_path(layout: Layout) -> None:
    outside = str(Path(layout.others[1], "iso_unit_hack.py"))
    planted = [finder_from("iso_unit_hack"), finder_from("iso_unit_hack", as_class=True)]
    kept = finder_from("iso_unit_stdfinder")
    own = Path(sysconfig.get_paths()["stdlib"])  # where PathFinder's module lives
    after = run_isolate(layout.model, [layout.stdlib, own], interleaved(layout),
                        modules={"iso_unit_hack": outside,
                                 "iso_unit_stdfinder": str(layout.stdlib / "f.py")},
                        finders=[*planted, kept])
    assert not [f for f in after.meta_path if any(f is p for p in planted)]
    assert any(f is kept for f in after.meta_path)
    assert PathFinder in after.meta_path  # the interpreter's own finders stay


def test_path_importer_cache_keeps_only_the_standard_librarys_folders(layout: Layout) -> None:
    after = run_isolate(layout.model, [layout.stdlib], interleaved(layout),
                        cached=[layout.others[1], layout.others[2], str(layout.stdlib)])
    assert str(layout.stdlib) in after.importer_cache
    assert {layout.others[1], layout.others[2]} & after.importer_cache == set()


def test_a_folder_spelled_inside_the_standard_library_is_resolved_when_it_is_not_plain(
        layout: Layout, tmp_path: Path) -> None:
    """A folder spelled plainly inside a standard library folder is kept as spelled (no
    lstat per part at every start); one spelled with `..` through a link that leaves it
    is resolved, and goes."""
    outside = tmp_path / "outside" / "deep"
    outside.mkdir(parents=True)
    (layout.stdlib / "escape").symlink_to(outside, target_is_directory=True)
    plain = str(layout.stdlib / "lib-dynload")
    through = f"{layout.stdlib}/escape/.."  # really tmp_path/outside
    after = run_isolate(layout.model, [layout.stdlib], [plain, through])
    assert after.path == [str(layout.model), plain]
    assert after.removed == [through]


def test_a_site_folder_named_through_a_link_leaves_under_either_spelling(
        layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv names its site-packages through `lib64`, a link to `lib`: the real folder
    lies inside the standard library folder (the venv's platstdlib), and still goes."""
    real_site = layout.stdlib / "site-packages"
    (real_site / "pkg").mkdir(parents=True)
    (tmp_path / "py" / "lib64").symlink_to(tmp_path / "py" / "lib", target_is_directory=True)
    named = str(tmp_path / "py" / "lib64" / "python3.x" / "site-packages")
    monkeypatch.setattr(isolation, "_site_dirs", lambda: [named])
    after = run_isolate(layout.model, [layout.stdlib],
                        [str(layout.stdlib), str(real_site), named, str(real_site / "pkg")],
                        modules={"iso_unit_site": str(real_site / "pkg" / "__init__.py")})
    assert after.path == [str(layout.model), str(layout.stdlib)]
    assert "iso_unit_site" not in after.modules
