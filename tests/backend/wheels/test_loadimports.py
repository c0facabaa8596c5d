"""carton_backend/wheels/loadimports.py: what importing a pure-Python wheel's modules
imports, read from wheels built here, and the dependencies a lock section keeps for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from carton_backend.wheels.loadimports import load_imports, narrow_dependencies, source_imports
from carton_hook.formats.lockfile import Package, Wheel

from ...factory import make_wheel


@pytest.mark.parametrize(("source", "expected"), [
    ("import alpha\n", {"alpha"}),
    ("import alpha.sub as s, beta  # two\n", {"alpha.sub", "beta"}),
    ("from alpha.sub import thing, other as o\n",
     {"alpha.sub", "alpha.sub.thing", "alpha.sub.other"}),
    ("from alpha import (\n    one,  # the first\n    two as t, three)\nimport four\n",
     {"alpha", "alpha.one", "alpha.two", "alpha.three", "four"}),
    ("from google import (api,\n                    protobuf)\n",
     {"google", "google.api", "google.protobuf"}),
    ("from . import sibling\nfrom .mod import x\n", set()),
    ("try:\n    import fast\nexcept ImportError:\n    import slow\n", {"fast", "slow"}),
    ("if sys.version_info < (3, 11):\n    import tomli\n", {"tomli"}),
    ("class Thing:\n    import inclass\n", {"inclass"}),
    ("def f():\n    import later\n", set()),
    ("async def f():\n    import later\n", set()),
    ("class Thing:\n    def f(self):\n        import later\n    import now\n", {"now"}),
    ("def f(\n    a,\n) -> None:\n    import later\nimport now\n", {"now"}),
    ("@decorate\ndef f():\n    import later\n", set()),
    ("if TYPE_CHECKING:\n    import typed\nelse:\n    import real\n", {"real"}),
    ("if typing.TYPE_CHECKING:\n    from typed import T\n", set()),
    ("import importlib\nmod = importlib.import_module('plugin.impl')\n",
     {"importlib", "plugin.impl"}),
    ("def f():\n    return importlib.import_module('later')\n", set()),
    ("x = 'import not_code'\nimported = 1\nimport_me = 2\n", set()),
])
def test_what_runs_when_the_module_runs_counts(source: str, expected: set[str]) -> None:
    assert source_imports(source.encode()) == expected


def test_a_misread_line_adds_a_name_rather_than_drops_one() -> None:
    """A string's line at column 0 inside a function ends the function as the lines are
    read: what follows counts, as it would have counted had it run."""
    source = 'def f():\n    x = """\nnot code\n"""\n    import later\n'
    assert source_imports(source.encode()) == {"later"}


def test_a_pure_wheel_is_read_whole_and_one_with_compiled_code_is_not(tmp_path: Path) -> None:
    pure = make_wheel(tmp_path, "pure", files={
        "pure/__init__.py": "import alpha\n",
        "pure/sub/__init__.py": "def f():\n    import beta\n",
        "pure-1.0.data/purelib/extra.py": "from gamma import g\n",
        "pure-1.0.data/scripts/tool.py": "import delta\n",  # a script, not a module
        "pure/data.txt": "import epsilon\n",
    })
    assert load_imports(pure) == {"alpha", "gamma", "gamma.g"}
    for member in ("fast/_speedups.cpython-311-x86_64-linux-gnu.so", "fast/_old.pyc",
                   "fast.libs/libx.so.1"):
        compiled = make_wheel(tmp_path / member.replace("/", "_"), "fast", files={
            "fast/__init__.py": "import alpha\n", member: b"\x7fELF"})
        assert load_imports(compiled) is None, member


def _package(name: str, imports: tuple[str, ...], deps: tuple[str, ...] = ()) -> Package:
    sha = name.encode().hex().ljust(64, "0")[:64]
    return Package(name, "1.0", Wheel(f"{name}-1.0-py3-none-any.whl", sha, 1,
                                      url=f"https://files.example/{name}.whl"),
                   dependencies=deps, imports=imports)


def test_a_section_keeps_the_dependencies_that_importing_imports() -> None:
    top = _package("top", ("top",), ("eager", "lazy", "meta", "portion", "tzdata"))
    unread = _package("unread", ("unread",), ("lazy",))
    meta = _package("meta", (), ("lazy",))  # no module of its own: it gathers others
    section = [top, unread, meta, _package("eager", ("eager",)), _package("lazy", ("lazy",)),
               _package("portion", ("google.portion",)), _package("tzdata", ("tzdata",))]
    narrowed = narrow_dependencies(section, {sha: frozenset(
        {"eager.sub", "google", "google.portion", "os", "top"})
        for sha in (top.wheel.sha256, meta.wheel.sha256)})
    by_name = {p.name: p for p in narrowed}
    assert by_name["top"].imported_dependencies == ("eager", "meta", "portion")
    assert by_name["unread"].imported_dependencies is None  # not read: all of them count
    assert by_name["meta"].imported_dependencies is None  # passed through
    assert by_name["top"].dependencies == top.dependencies  # what pip resolved stays
