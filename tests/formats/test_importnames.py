"""carton_hook/formats/importnames.py: the import names a wheel provides, from its file list alone
(IMPORTS.md, pitfall 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carton_hook.formats.importnames import (
    import_names,
    install_paths,
    module_name,
    shadowed_stdlib_names,
)
from carton_hook.formats.wheelcheck import check_wheel

from ..factory import make_wheel

SO = ".cpython-311-x86_64-linux-gnu.so"


def dist_info(name: str, version: str = "1.0") -> list[str]:
    base = f"{name}-{version}.dist-info"
    return [f"{base}/METADATA", f"{base}/WHEEL", f"{base}/RECORD", f"{base}/top_level.txt"]


def test_single_file_module() -> None:
    assert import_names(["six.py", *dist_info("six", "1.16.0")]) == ["six"]


def test_two_top_level_packages_in_one_wheel() -> None:
    members = ["attr/__init__.py", "attr/_make.py", "attr/py.typed",
               "attrs/__init__.py", "attrs/converters.py", *dist_info("attrs", "23.2.0")]
    assert import_names(members) == ["attr", "attrs"]


def test_extension_only_top_level_module() -> None:
    members = [f"_cffi_backend{SO}", "cffi/__init__.py", "cffi/api.py", *dist_info("cffi")]
    assert import_names(members) == ["_cffi_backend", "cffi"]


def test_windows_extension_module() -> None:
    assert import_names(["_speedups.cp311-win_amd64.pyd"]) == ["_speedups"]


def test_mypyc_module_that_is_not_an_identifier() -> None:
    mypyc = f"81d243bd2c585b0f4821__mypyc{SO}"
    members = [mypyc, "charset_normalizer/__init__.py", f"charset_normalizer/md{SO}",
               "charset_normalizer/md.py", *dist_info("charset_normalizer", "3.3.2")]
    assert import_names(members) == ["81d243bd2c585b0f4821__mypyc", "charset_normalizer"]


def test_namespace_portion_owns_only_its_own_subpackage() -> None:
    protobuf = ["google/protobuf/__init__.py", "google/protobuf/message.py",
                "google/protobuf/internal/__init__.py", *dist_info("protobuf", "4.25.0")]
    googleapis = ["google/api/__init__.py", "google/api/http_pb2.py",
                  "google/type/__init__.py", "google/type/date_pb2.py",
                  *dist_info("googleapis_common_protos", "1.62.0")]
    assert import_names(protobuf) == ["google.protobuf"]
    assert import_names(googleapis) == ["google.api", "google.type"]


def test_nested_namespace_portions() -> None:
    members = ["azure/mgmt/compute/__init__.py", "azure/mgmt/compute/models.py"]
    assert import_names(members) == ["azure.mgmt.compute"]


def test_module_directly_in_a_namespace_folder() -> None:
    assert import_names(["zope/interface/__init__.py", "zope/event.py"]) == [
        "zope.event", "zope.interface"]


def test_top_level_folder_without_modules_is_a_namespace() -> None:
    assert import_names(["nvidia/cublas/lib/libcublas.so.12", *dist_info("nvidia_cublas")]) == [
        "nvidia"]


def test_data_folder_beside_a_package_is_skipped() -> None:
    members = ["numpy/__init__.py", f"numpy/core/_multiarray_umath{SO}",
               "numpy.libs/libopenblas64_p-r0-15028c96.3.21.so",
               "numpy.libs/libgfortran-040039e1.so.5.0.0", *dist_info("numpy", "1.26.4")]
    assert import_names(members) == ["numpy"]


def test_stubs_folder_is_skipped() -> None:
    members = ["foo-stubs/__init__.pyi", "foo-stubs/core.pyi", "foo/__init__.py"]
    assert import_names(members) == ["foo"]
    assert import_names(["foo-stubs/__init__.pyi"]) == []


def test_purelib_and_platlib_count_but_other_data_schemes_do_not() -> None:
    members = ["demo-1.0.data/purelib/pure_pkg/__init__.py",
               f"demo-1.0.data/platlib/_native{SO}",
               "demo-1.0.data/scripts/tool.py",
               "demo-1.0.data/headers/demo.h",
               "demo-1.0.data/data/share/demo/cfg.py",
               *dist_info("demo")]
    assert import_names(members) == ["_native", "pure_pkg"]
    assert install_paths(members) == ["pure_pkg/__init__.py", f"_native{SO}"]


def test_scripts_only_wheel_provides_nothing() -> None:
    assert import_names(["tool-1.0.data/scripts/tool", "tool-1.0.data/scripts/helper.py",
                         *dist_info("tool")]) == []


def test_dist_info_is_skipped() -> None:
    members = ["demo/__init__.py", "demo-1.0.dist-info/licenses/LICENSE",
               "demo-1.0.dist-info/entry_points.txt", "demo-1.0.dist-info/sitecustomize.py"]
    assert import_names(members) == ["demo"]
    assert install_paths(members) == ["demo/__init__.py"]


def test_stdlib_shadowing_names_are_dropped_and_reported() -> None:
    members = ["json/__init__.py", "json/decoder.py", "typing.py", "typing_extensions.py",
               "simplejson/__init__.py", *dist_info("evil")]
    assert import_names(members) == ["simplejson", "typing_extensions"]
    assert shadowed_stdlib_names(members) == ["json", "typing"]


def test_stdlib_namespace_portion_is_dropped_and_reported() -> None:
    members = ["concurrent/futures/extra.py"]
    assert import_names(members) == []
    assert shadowed_stdlib_names(members) == ["concurrent"]


def test_nothing_shadowed_in_an_ordinary_wheel() -> None:
    assert shadowed_stdlib_names(["six.py", "google/protobuf/__init__.py"]) == []


def test_package_whose_init_is_an_extension_module() -> None:
    members = [f"fastpkg/__init__{SO}", f"fastpkg/_impl{SO}", *dist_info("fastpkg")]
    assert import_names(members) == ["fastpkg"]


def test_package_whose_init_is_a_pyc() -> None:
    assert import_names(["sourceless/__init__.pyc", "sourceless/a.pyc"]) == ["sourceless"]


def test_source_file_that_is_not_an_identifier_is_not_a_module() -> None:
    members = ["my-script.py", "setup.cfg", "README.md", "conftest.py", "demo.pth"]
    assert import_names(members) == ["conftest"]


def test_folder_that_is_not_an_identifier_is_skipped_even_with_modules() -> None:
    assert import_names(["my-pkg/__init__.py", "1abc/__init__.py", "tests/test_x.py"]) == [
        "tests.test_x"]


def test_top_level_init_is_not_a_module() -> None:
    assert import_names(["__init__.py", "demo.py"]) == ["demo"]


def test_names_are_sorted_and_unique() -> None:
    members = ["zeta.py", "alpha/__init__.py", f"zeta{SO}", "mid.py", "alpha/x.py"]
    assert import_names(members) == ["alpha", "mid", "zeta"]


def test_folder_entries_add_no_names_of_their_own() -> None:
    assert import_names(["demo/", "demo/sub/", "demo/__init__.py"]) == ["demo"]
    # An empty top-level folder is importable as a namespace, like one with only data.
    assert import_names(["demo/__init__.py", "empty/"]) == ["demo", "empty"]


@pytest.mark.parametrize(("filename", "expected"), [
    ("six.py", "six"),
    ("six.pyc", "six"),
    ("six.cpython-311.pyc", None),
    ("my-mod.py", None),
    ("a.b.py", None),
    (f"_cffi_backend{SO}", "_cffi_backend"),
    ("_speedups.abi3.so", "_speedups"),
    ("_win.cp311-win_amd64.pyd", "_win"),
    (f"81d243bd2c585b0f4821__mypyc{SO}", "81d243bd2c585b0f4821__mypyc"),
    ("libfoo.so.1", None),
    ("stub.pyi", None),
    ("data.json", None),
    ("__init__.py", "__init__"),
])
def test_module_name(filename: str, expected: str | None) -> None:
    assert module_name(filename) == expected


def test_check_wheel_reports_the_same_names(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "protobuf", "4.25.0", {
        "google/protobuf/__init__.py": "",
        "google/_upb/_message.abi3.so": b"\x7fELF",
        "protobuf-4.25.0.data/purelib/protobuf_extra.py": "",
        "json/__init__.py": "",
    })
    assert check_wheel(path).imports == ("google._upb._message", "google.protobuf",
                                         "protobuf_extra")


def test_parse_pth_path_lines_and_code() -> None:
    from carton_hook.formats.importnames import parse_pth

    roots, runs_code = parse_pth("# comment\n\nsrc\nlib/extra/\nimport os\n../escape\n/abs\n"
                                 "src\n")
    assert roots == ["src", "lib/extra"]
    assert runs_code is True
    assert parse_pth("only_a_path\n") == (["only_a_path"], False)
