"""Reading what a wheel's shared objects provide and need, from compiled ELF files."""

from __future__ import annotations

import importlib.machinery
import io
import sys
from pathlib import Path

import pytest

from carton_backend.wheels.elfdeps import ElfFile, link_summary, read_elf, scan_wheel

from ...factory import c_compiler, compile_shared, make_wheel

pytestmark = pytest.mark.skipif(c_compiler() is None or not sys.platform.startswith("linux"),
                                reason="needs a C compiler and ELF (Linux)")

EXT = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_soname_and_needed_are_read(tmp_path: Path) -> None:
    bar = tmp_path / "libbar.so.2"
    compile_shared(bar, "int bar(void) { return 1; }", soname="libbar.so.2")
    foo = tmp_path / "libfoo.so"
    compile_shared(foo, "int bar(void); int foo(void) { return bar(); }", links=[bar],
                   runpath="$ORIGIN/../x")
    assert read_elf(io.BytesIO(bar.read_bytes())) == ElfFile("libbar.so.2", ())
    elf = read_elf(io.BytesIO(foo.read_bytes()))
    assert elf is not None and elf.soname is None and "libbar.so.2" in elf.needed


@pytest.mark.parametrize("data", [b"", b"\x7fELF", b"not an elf at all" * 10,
                                  b"\x7fELF\x02\x01\x01" + b"\0" * 57, b"\x7fELF" + b"\xff" * 60])
def test_malformed_files_are_skipped(data: bytes) -> None:
    assert read_elf(io.BytesIO(data)) is None


def test_truncated_elf_is_skipped(tmp_path: Path) -> None:
    lib = tmp_path / "libx.so"
    data = compile_shared(lib, "int x(void) { return 1; }", soname="libx.so")
    for cut in (40, 64, 100):
        assert read_elf(io.BytesIO(data[:cut])) is None
    read_elf(io.BytesIO(data[: len(data) // 2]))  # whatever it finds, it does not raise


def test_a_wheel_lists_what_it_provides_and_needs_from_outside(tmp_path: Path) -> None:
    other = tmp_path / "libother.so.3"
    compile_shared(other, "int other(void) { return 3; }", soname="libother.so.3")
    own = compile_shared(tmp_path / "libown.so.1",
                         "int other(void); int own(void) { return other(); }",
                         soname="libown.so.1", links=[other])
    ext = compile_shared(tmp_path / f"_ext{EXT}",
                         "int own(void); int other(void); int f(void) { return own() + other(); }",
                         links=[tmp_path / "libown.so.1", other])
    wheel = make_wheel(tmp_path / "w", "demo", "1.0", files={
        "demo/__init__.py": "",
        f"demo/_ext{EXT}": ext,
        "demo.libs/libown.so.1": own,
        "demo/data.txt": "not a library",
        "demo-1.0.data/platlib/plat/libplat.so": compile_shared(
            tmp_path / "libplat.so", "int plat(void) { return 4; }"),
    }, tag="cp311-cp311-linux_x86_64")
    summary = scan_wheel(wheel)
    path, needs = summary.provides["libown.so.1"]
    assert path == "demo.libs/libown.so.1"
    assert "libother.so.3" in needs
    assert "libother.so.3" in summary.needs
    assert "libown.so.1" not in summary.needs  # found inside the wheel
    # The extension has no SONAME and no lib* name; a .data/platlib file lands at the root.
    assert summary.provides["libplat.so"] == ("plat/libplat.so", ())
    assert sorted(summary.provides) == ["libown.so.1", "libplat.so"]


def test_summary_keeps_only_needs_the_wheel_cannot_answer() -> None:
    files = {"lib/libq.so": ElfFile("libq.so", ("libc.so.6",)),
             "q/_q.so": ElfFile(None, ("libq.so", "libz.so.1"))}
    summary = link_summary(files)
    assert summary.provides == {"libq.so": ("lib/libq.so", ("libc.so.6",))}
    assert summary.needs == ("libc.so.6", "libz.so.1")


@pytest.mark.parametrize(("members", "expected"), [
    (["torch/lib/libc10.so", "torch/__init__.py"], True),
    (["nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/__init__.py"], True),
    (["x-1.0.data/platlib/x/libx.so"], True),
    (["numpy.libs/libscipy_openblas64_-ff651d7f.so",
      "numpy/_core/_m.cpython-312-x86_64-linux-gnu.so"], False),
    (["pandas/_libs/lib.cpython-312-x86_64-linux-gnu.so", "pandas/_libs/libx.abi3.so"], False),
    (["x-1.0.dist-info/libfoo.so", "x-1.0.data/data/lib/libfoo.so"], False),
    (["x/foo.so", "x/__init__.py"], False),
])
def test_which_wheels_may_hold_a_library_others_link_to(members: list[str],
                                                       expected: bool) -> None:
    from carton_backend.wheels.elfdeps import may_link_across

    assert may_link_across(members) is expected
