"""carton_hook/planning/select.py: the lock section chosen for this interpreter, from a lock
written here, and what the plan computed from it says; and which libraries of other wheels
are loaded before a wheel's extensions, and in what order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from carton_hook.errors import CartonError
from carton_hook.formats import commonforms
from carton_hook.formats.commonforms import Undecided
from carton_hook.formats.lockfile import Environment, Package, Wheel
from carton_hook.planning.models import open_model
from carton_hook.planning.planfile import PLAN_FORMAT, closure
from carton_hook.planning.select import NoEnvironmentError, make_plan, preloads

from ..lockfactory import ALPHA, BETA, ELSEWHERE, HERE, lock_section, locked_package, model_folder

GOOGLE_A = locked_package("gapi", ("google.api",))
GOOGLE_B = locked_package("gproto", ("google.protobuf",))
ALPHA2 = locked_package("alpha2", ("alpha2",), deps=("beta",))


def test_the_first_section_that_holds_here_is_chosen_and_planned(tmp_path: Path) -> None:
    folder = model_folder(tmp_path,
                          lock_section("elsewhere", ELSEWHERE, locked_package("other", ("other",))),
                          lock_section("here", HERE, ALPHA, BETA, GOOGLE_A, GOOGLE_B))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    assert (plan["section"], plan["format"], plan["model"]) == ("here", PLAN_FORMAT,
                                                                str(folder))
    a, b = ALPHA.wheel.sha256, BETA.wheel.sha256
    assert plan["imports"] == {"alpha": a, "beta": b, "google.api": GOOGLE_A.wheel.sha256,
                               "google.protobuf": GOOGLE_B.wheel.sha256}
    assert plan["namespaces"] == {"google": sorted([GOOGLE_A.wheel.sha256,
                                                    GOOGLE_B.wheel.sha256])}
    assert plan["wheels"][a]["deps"] == [b] and plan["wheels"][b]["deps"] == []
    assert plan["wheels"][a]["url"] == ALPHA.wheel.url
    assert sorted(closure(plan, [a])) == sorted([a, b])
    assert closure(plan, [b]) == [b]


def test_a_wheel_brings_along_the_dependencies_its_import_imports(tmp_path: Path) -> None:
    """Where the lock says which dependencies a package's modules import when imported,
    the rest are installed on their own first import; where it does not, all of them
    come along. A wheel whose libraries it preloads always does."""
    top = locked_package("top", ("top",), deps=("alpha", "beta"))._replace(
        imported_dependencies=("alpha",))
    alpha = locked_package("alpha", ("alpha",), deps=("beta",))._replace(
        imported_dependencies=(), needs_libraries=("libb.so",))
    beta = locked_package("beta", ("beta",))._replace(libraries={"libb.so": ("b/libb.so", ())})
    folder = model_folder(tmp_path, lock_section("here", HERE, top, alpha, beta, ALPHA2))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    t, a, b = (p.wheel.sha256 for p in (top, alpha, beta))
    assert plan["wheels"][t]["deps"] == [a]
    assert plan["wheels"][a]["deps"] == [b]  # not imported, but its library is preloaded
    assert closure(plan, [t]) == [t, a, b]
    unread = ALPHA2.wheel.sha256
    assert plan["wheels"][unread]["deps"] == [b]  # no word in the lock: all of them


def test_a_section_whose_wheels_do_not_install_here_is_passed_over(tmp_path: Path) -> None:
    """Markers cannot tell ABIs apart; the wheels' tags can."""
    foreign = locked_package("alpha", ("alpha",), tag="cp27-cp27mu-manylinux1_x86_64")
    folder = model_folder(tmp_path, lock_section("old-abi", HERE, foreign),
                          lock_section("pure", HERE, ALPHA, BETA))
    assert make_plan(open_model(folder, tmp_path / "home"))["section"] == "pure"


@pytest.mark.parametrize("switch", [None, "CARTON_NO_PACK"])
def test_no_section_here_says_so_and_whether_carton_can_add_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, switch: str | None) -> None:
    if switch:
        monkeypatch.setenv(switch, "1")
    folder = model_folder(tmp_path, lock_section("elsewhere", ELSEWHERE, ALPHA))
    with pytest.raises(NoEnvironmentError) as caught:
        make_plan(open_model(folder, tmp_path / "home"))
    assert "no lock section for" in str(caught.value) and "elsewhere" in str(caught.value)
    # Packing at load time is possible here (pip and carton_backend are installed) unless
    # switched off; then the error is one the model's process can only report.
    assert caught.value.kind == ("error" if switch else "no-environment")
    assert isinstance(caught.value, CartonError) and isinstance(caught.value, LookupError)


# ---------------------------------------------------------------- preloads

def package(name: str, deps: tuple[str, ...] = (), needs: tuple[str, ...] = (),
            **libraries: tuple[str, tuple[str, ...]]) -> Package:
    sha = hashlib.sha256(name.encode()).hexdigest()
    return Package(name=name, version="1.0", dependencies=deps, needs_libraries=needs,
                   libraries={k.replace("_", "."): v for k, v in libraries.items()},
                   wheel=Wheel(name=f"{name}-1.0-py3-none-any.whl", sha256=sha, size=1,
                               url=f"https://example.org/{name}.whl"))


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def section(*packages: Package) -> Environment:
    return Environment(id="x", marker="python_version > '3'", marker_environment={},
                       packages=packages)


def test_a_library_comes_after_the_libraries_it_needs() -> None:
    torch = package("torch", ("cudnn", "cublas"), ("libcudnn.so.9", "libc.so.6"),
                    libtorch_so=("torch/lib/libtorch.so", ()))
    cudnn = package("cudnn", ("cublas",), ("libcublas.so.12",),
                    libcudnn_so_9=("nvidia/cudnn/lib/libcudnn.so.9", ("libcublas.so.12",)))
    cublas = package("cublas", (), (),
                     libcublas_so_12=("nvidia/cublas/lib/libcublas.so.12", ()))
    plan = preloads(section(torch, cudnn, cublas))
    assert plan[sha("torch")] == [[sha("cublas"), "nvidia/cublas/lib/libcublas.so.12"],
                                  [sha("cudnn"), "nvidia/cudnn/lib/libcudnn.so.9"]]
    assert plan[sha("cudnn")] == [[sha("cublas"), "nvidia/cublas/lib/libcublas.so.12"]]
    assert sha("cublas") not in plan  # needs nothing from another wheel


def test_system_libraries_and_own_libraries_are_never_preloaded() -> None:
    a = package("a", (), ("libc.so.6", "liba.so"), liba_so=("a/liba.so", ()))
    assert preloads(section(a)) == {}


def test_a_dependency_beats_an_unrelated_wheel_and_cycles_end() -> None:
    user = package("user", ("near",), ("libx.so",))
    far = package("far", (), (), libx_so=("far/libx.so", ()))
    near = package("near", (), ("liby.so",), libx_so=("near/libx.so", ("liby.so",)))
    loop = package("loop", (), ("libx.so",), liby_so=("loop/liby.so", ("libx.so",)))
    plan = preloads(section(far, user, near, loop))
    assert plan[sha("user")] == [[sha("loop"), "loop/liby.so"], [sha("near"), "near/libx.so"]]


# ---------------------------------------------------------------- without packaging


def test_selecting_without_packaging_plans_what_packaging_plans(tmp_path: Path) -> None:
    """The model's process selects so (loading/selection.py) where the lock is in the
    common forms; sections that do not hold and wheels that do not install are passed
    over as packaging passes them."""
    foreign = locked_package("alpha", ("alpha",), tag="cp27-cp27mu-manylinux1_x86_64")
    folder = model_folder(tmp_path,
                          lock_section("elsewhere", ELSEWHERE, locked_package("o", ("o",))),
                          lock_section("here", HERE, ALPHA, BETA, GOOGLE_A, GOOGLE_B))
    model = open_model(folder, tmp_path / "home")
    if commonforms.marker_environment() is None or not commonforms.interpreter():
        pytest.skip("decided without packaging on 64-bit glibc Linux CPython only")
    assert make_plan(model, quick=True) == make_plan(model)
    passed_over = model_folder(tmp_path / "b", lock_section("old-abi", HERE, foreign),
                               lock_section("pure", HERE, ALPHA, BETA))
    with pytest.raises(Undecided):  # packaging alone says cp27 does not install here
        make_plan(open_model(passed_over, tmp_path / "home"), quick=True)


def test_requires_python_in_another_form_is_left_to_packaging(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, lock_section("here", HERE, ALPHA, BETA))
    model = open_model(folder, tmp_path / "home")._replace(requires_python=">=3.8,!=3.9.0a1")
    make_plan(model)
    with pytest.raises(Undecided):
        make_plan(model, quick=True)
    allowed = model._replace(requires_python=">=3.8, <4")
    if commonforms.interpreter():
        assert make_plan(allowed, quick=True) == make_plan(allowed)


def test_the_plan_lists_every_top_level_name_and_reads_no_record(tmp_path: Path) -> None:
    """Whether a name is a package is left to the first run that asks (loading/listing.py):
    making the plan reads no wheel's RECORD, which a 35-package lock would pay for at
    every first run. A namespace is a package without asking."""
    both = locked_package("both", ("alpha", "beta_mod"))
    folder = model_folder(tmp_path, lock_section("here", HERE, both, GOOGLE_A, GOOGLE_B))
    info = folder / ".carton" / "dist-info" / both.wheel.sha256 / "both-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("alpha/__init__.py,sha256=AAAA,1\n")
    plan = make_plan(open_model(folder, tmp_path / "home"))
    assert plan["listed"] == {"alpha": None, "beta_mod": None, "google": True}
