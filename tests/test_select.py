"""Which libraries of other wheels are loaded before a wheel's extensions, and in what order."""

from __future__ import annotations

import hashlib

from carton_hook.formats.lockfile import Environment, Package, Wheel
from carton_hook.planning.select import preloads


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
