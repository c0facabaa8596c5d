"""carton_hook/loading/earlycode.py: while a first run waits for a wheel, the modules its
import will load are compiled from the downloaded file, in the order the import loads
them, under the paths they will have in the cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from carton_hook.cache import pycache
from carton_hook.loading import earlycode
from carton_hook.loading.earlycode import EarlyCode

from ..factory import make_wheel

SHA_A, SHA_B = "a" * 64, "b" * 64


@pytest.fixture
def early(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    kept: dict[str, object] = {}
    monkeypatch.setattr(pycache, "EARLY", kept)
    return kept


def compile_all(code: EarlyCode) -> None:
    while code.step():
        pass


def test_the_modules_an_import_loads_are_compiled_in_its_order(
        tmp_path: Path, early: dict[str, tuple[bytes, object]]) -> None:
    wheel = make_wheel(tmp_path, "pkg", files={
        "pkg/__init__.py": ("from typing import TYPE_CHECKING\nfrom . import core\n"
                            "import dep\nfrom .late import x\n"
                            "if TYPE_CHECKING:\n    from . import typed_only\n"),
        "pkg/core.py": "from .deep import inner\n",
        "pkg/deep.py": "inner = 1\n",
        "pkg/late.py": "x = 2\n",
        "pkg/typed_only.py": "y = 3\n",
        "pkg/unused.py": "z = 4\n",
    })
    root = tmp_path / "packages"
    code = EarlyCode(str(root))
    code.downloaded(SHA_A, str(wheel))
    os.remove(wheel)  # the worker removes it once installed: it was opened already
    code.want(["pkg"])
    compile_all(code)
    entry = root / SHA_A
    # Depth first, each module's imports in the order of its code, as importing does,
    # what only a type checker imports after the rest; never what nothing imports.
    assert list(early) == [str(entry / p) for p in (
        "pkg/__init__.py", "pkg/core.py", "pkg/deep.py", "pkg/late.py",
        "pkg/typed_only.py")]
    source, compiled = early[str(entry / "pkg" / "core.py")]
    assert source == b"from .deep import inner\n"
    assert compiled == compile(source, str(entry / "pkg" / "core.py"), "exec",
                               dont_inherit=True)
    assert not code.has_work()
    # `dep` is in a wheel downloaded later: compiled then, and first.
    dep = make_wheel(tmp_path, "dep")
    code.downloaded(SHA_B, str(dep))
    assert code.has_work()
    assert code.step()
    assert list(early)[-1] == str(root / SHA_B / "dep" / "__init__.py")


def test_an_installed_wheel_is_let_go_of(
        tmp_path: Path, early: dict[str, tuple[bytes, object]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the worker says a wheel is installed, its imports read it in the cache: its
    downloaded file (removed from the folder by then) is closed, taking no more disk,
    whether a waiting import read it or not."""
    wheel = make_wheel(tmp_path, "pkg", files={"pkg/__init__.py": "", "pkg/other.py": ""})
    unread = make_wheel(tmp_path, "dep")
    files: list[BinaryIO] = []

    def recording_open(path: str, mode: str) -> BinaryIO:
        file = open(path, mode)  # noqa: SIM115 - the code under test closes it
        files.append(file)  # held here: closed by `installed`, not by being collected
        return file

    monkeypatch.setattr(earlycode, "open", recording_open, raising=False)
    code = EarlyCode(str(tmp_path / "packages"))
    code.downloaded(SHA_A, str(wheel))
    code.downloaded(SHA_B, str(unread))
    code.want(["pkg"])
    assert code.step() and not code.step()
    assert [file.closed for file in files] == [False, False]
    code.installed(SHA_A)
    code.installed(SHA_B)  # downloaded, never read by an import
    code.installed("c" * 64)  # never downloaded: nothing to let go of
    assert [file.closed for file in files] == [True, True]
    code.want(["pkg.other"])
    assert not code.step()
    assert list(early) == [str(tmp_path / "packages" / SHA_A / "pkg" / "__init__.py")]


def test_scheme_folders_big_modules_and_broken_ones(
        tmp_path: Path, early: dict[str, tuple[bytes, object]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A module under `.data/purelib` or `.data/platlib` is compiled under its path at
    the entry's root; one bigger than MAX_SOURCE, or that does not compile, is left to
    its import (which compiles it, or says why it cannot)."""
    monkeypatch.setattr(earlycode, "MAX_SOURCE", 100)
    wheel = make_wheel(tmp_path, "pkg", files={
        "pkg-1.0.data/purelib/pure.py": "import plat\n",
        "pkg-1.0.data/platlib/plat.py": "import big\nimport broken\nimport after\n",
        "pkg-1.0.data/scripts/script.py": "print('not a module')\n",
        "big.py": "x = 1\n" * 50,
        "broken.py": "def (:\n",
        "after.py": "",
    })
    code = EarlyCode(str(tmp_path / "packages"))
    code.downloaded(SHA_A, str(wheel))
    code.want(["pure", "script"])
    compile_all(code)
    entry = tmp_path / "packages" / SHA_A
    assert list(early) == [str(entry / "pure.py"), str(entry / "plat.py"),
                           str(entry / "after.py")]


def test_a_file_that_is_not_a_wheel_is_ignored(
        tmp_path: Path, early: dict[str, tuple[bytes, object]]) -> None:
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    code = EarlyCode(str(tmp_path / "packages"))
    code.downloaded(SHA_A, str(bad))
    code.downloaded(SHA_B, str(tmp_path / "gone.whl"))
    code.want(["pkg"])
    assert not code.step()
    assert early == {}
