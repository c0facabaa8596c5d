"""Compiling whole trees on every core (`fetch --compile`): the same `.pyc` files the
first imports would write, with helper processes that may die."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from carton_hook.cache.pycache import timestamp_header
from carton_hook.installing import compileahead as bytecode

from ..waiting import wait_for

TAG = sys.implementation.cache_tag


def pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc"


def write_modules(folder: Path, count: int, lines: int = 1) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"m{i:03d}.py"
        path.write_text(f"VALUE = {i}\n" * lines)
        paths.append(str(path))
    return paths


def assert_compiled(source: str) -> None:
    """`source` has the `.pyc` its first import would have written."""
    path = Path(source)
    data = pyc(path).read_bytes()
    st = path.stat()
    assert data[:16] == timestamp_header(st.st_mtime, st.st_size)
    import marshal

    code = marshal.loads(data[16:])
    assert code.co_filename == source
    assert code == compile(path.read_bytes(), source, "exec", dont_inherit=True)


def test_modules_are_compiled_by_helper_processes_too(tmp_path: Path) -> None:
    """Helpers compile beside the asking thread; a module that does not compile is
    skipped, as pip does; the temporary files stay in `tmp`."""
    compiler = bytecode.Compiler(helpers=2, tmp=str(tmp_path / "tmp"))
    compiler.start()
    wait_for(lambda: compiler.ready == 2)
    sources = write_modules(tmp_path / "many", 120, lines=200)
    broken = tmp_path / "many" / "broken.py"
    broken.write_text("def (:\n")
    compiler.compile([*sources, str(broken)])
    assert compiler.helped > 0
    for source in sources:
        assert_compiled(source)
    assert not list((tmp_path / "many" / "__pycache__").glob("broken.*"))
    assert sorted(os.listdir(tmp_path / "many" / "__pycache__")) == sorted(
        pyc(Path(s)).name for s in sources)
    assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.parametrize("count", [1, 2, 5, 40])
def test_a_helper_that_dies_loses_no_module(tmp_path: Path, count: int) -> None:
    """Whether the helper's death shows when its feeder writes, flushes or reads, every
    module is compiled and `compile` returns (it once waited forever)."""
    for attempt in range(5):
        compiler = bytecode.Compiler(helpers=1, tmp=str(tmp_path / "tmp"))
        compiler.start()
        wait_for(lambda c=compiler: c.ready == 1)  # type: ignore[misc]
        compiler.compile([])  # nothing to do: returns at once
        sources = write_modules(tmp_path / f"a{attempt}", count)
        kill_helpers()
        done = threading.Thread(target=compiler.compile, args=(sources,), daemon=True)
        done.start()
        done.join(timeout=60)
        assert not done.is_alive(), "compile() never returned"
        assert compiler.helped == 0
        for source in sources:
            assert_compiled(source)


def test_tree_sources_are_the_importable_modules(tmp_path: Path) -> None:
    """Scripts, headers, data files and metadata are not compiled; a package that is
    named like a scheme folder is."""
    for rel in ("pkg/__init__.py", "pkg/sub/mod.py", "top.py", "bin/script.py",
                "include/gen.py", "data/share/x.py", "demo-1.0.dist-info/x.py",
                "pkg/__pycache__/stray.py", "data2/__init__.py", "pkg/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = {Path(p).relative_to(tmp_path).as_posix() for p in bytecode.tree_sources(
        str(tmp_path))}
    assert found == {"pkg/__init__.py", "pkg/sub/mod.py", "top.py", "data2/__init__.py"}
    (tmp_path / "bin" / "__init__.py").write_text("")  # a package named bin
    found = {Path(p).relative_to(tmp_path).as_posix() for p in bytecode.tree_sources(
        str(tmp_path))}
    assert {"bin/__init__.py", "bin/script.py"} <= found


def kill_helpers() -> None:
    """SIGKILL this process's compile helpers (children running `python -I -S -c`)."""
    import signal

    mine = str(os.getpid())
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat_file.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[1] == mine and b"-S" in cmdline and b"-I" in cmdline:
            os.kill(int(stat_file.parent.name), signal.SIGKILL)


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_module_imports_reads_the_module_level_imports(tmp_path: Path) -> None:
    source = textwrap.dedent("""
        import os
        import top.sub.deep
        from . import sibling, other as renamed
        from .child import thing
        from .. import up
        from ...too_far import x
        from .star import *
        if os.environ.get("NEVER"):
            from .conditional import y
        try:
            import optional_dep
        except ImportError:
            pass
        def later():
            import inside_function
        class Later:
            import in_class_body
    """)
    code = compile(source, "pkg/sub/__init__.py", "exec")
    found = list(bytecode.module_imports(code, "pkg.sub", is_package=True))
    assert found == [
        "os", "top.sub.deep", "pkg.sub", "pkg.sub.sibling", "pkg.sub.other",
        "pkg.sub.child", "pkg.sub.child.thing", "pkg", "pkg.up", "pkg.sub.star",
        "pkg.sub.conditional", "pkg.sub.conditional.y", "optional_dep"]
    # What runs only under a type checker (`if TYPE_CHECKING:`, also as
    # typing.TYPE_CHECKING, not its `else:`, nor `if not TYPE_CHECKING:`) comes last
    # where asked, and in its turn otherwise.
    code = compile(textwrap.dedent("""
        import typing
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import checked
            from .c import d
        else:
            import otherwise
        if typing.TYPE_CHECKING:
            import also_checked
        if not TYPE_CHECKING:
            import at_run_time
    """), "pkg/mod.py", "exec")
    assert list(bytecode.module_imports(code, "pkg.mod", is_package=False,
                                        checked_last=True)) == [
        "typing", "typing", "typing.TYPE_CHECKING", "otherwise", "at_run_time",
        "checked", "pkg.c", "pkg.c.d", "also_checked"]
    assert list(bytecode.module_imports(code, "pkg.mod", is_package=False)) == [
        "typing", "typing", "typing.TYPE_CHECKING", "checked", "pkg.c", "pkg.c.d",
        "otherwise", "also_checked", "at_run_time"]
    # In a module (not a package), `.` is its package.
    code = compile("from . import a\nfrom .b import c\n", "pkg/mod.py", "exec")
    assert list(bytecode.module_imports(code, "pkg.mod", is_package=False)) == [
        "pkg", "pkg.a", "pkg.b", "pkg.b.c"]


def test_ahead_compiles_what_an_import_will_load_in_order(tmp_path: Path) -> None:
    """Breadth first from the names, across roots (another wheel's package), the
    module-level imports only; each module as its first import would write it."""
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    _write_tree(root_a, {
        "pkg/__init__.py": "from . import core\nfrom .util import helper\nimport other\n",
        "pkg/core.py": "from .deep import inner\n",
        "pkg/deep/__init__.py": "", "pkg/deep/inner.py": "X = 1\n",
        "pkg/util.py": "def helper():\n    from . import lazy\n",
        "pkg/lazy.py": "", "pkg/broken.py": "def (:\n"})
    _write_tree(root_b, {"other/__init__.py": "import pkg.broken\n"})
    tmp = tmp_path / "tmp"
    done = bytecode.ahead(["pkg"], [str(root_a), str(root_b)], str(tmp))
    assert done == ["pkg", "pkg.core", "pkg.util", "other", "pkg.deep", "pkg.deep.inner"]
    for rel in ("pkg/__init__.py", "pkg/core.py", "pkg/util.py", "pkg/deep/inner.py"):
        assert_compiled(str(root_a / rel))
    assert_compiled(str(root_b / "other" / "__init__.py"))
    assert not pyc(root_a / "pkg" / "lazy.py").exists()  # imported in a function only
    assert not pyc(root_a / "pkg" / "broken.py").exists()  # does not compile: skipped
    # A second pass reads what the first wrote.
    assert bytecode.ahead(["pkg"], [str(root_a), str(root_b)], str(tmp)) == done


def test_ahead_stops_when_its_model_has_ended(tmp_path: Path) -> None:
    _write_tree(tmp_path, {"pkg/__init__.py": "from . import a\n", "pkg/a.py": ""})
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    done = bytecode.ahead(["pkg"], [str(tmp_path)], str(tmp_path / "tmp"),
                          owner=int(gone.stdout))
    assert done == []
    assert bytecode.ahead(["pkg"], [str(tmp_path)], str(tmp_path / "tmp"),
                          owner=os.getpid()) == ["pkg", "pkg.a"]


def test_source_bytes_counts_the_python_source_of_the_named_top_levels(tmp_path: Path) -> None:
    _write_tree(tmp_path / "a", {"pkg/__init__.py": "#" * 10, "pkg/sub/mod.py": "#" * 20,
                                 "pkg/__pycache__/stray.py": "#" * 1000,
                                 "pkg/data.txt": "#" * 1000, "other/__init__.py": "#" * 500})
    _write_tree(tmp_path / "b", {"single.py": "#" * 30, "pkg/more.py": "#" * 40})
    roots = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert bytecode._source_bytes(["pkg.sub.mod"], roots, 10**6) == 70  # both roots
    assert bytecode._source_bytes(["single", "missing"], roots, 10**6) == 30
    assert bytecode._source_bytes(["pkg", "single"], roots, 10**6) == 100
    assert 5 <= bytecode._source_bytes(["pkg", "single"], roots, 5) < 100  # stops early


def test_nothing_is_compiled_ahead_of_less_source_than_it_pays_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two trees alike but for a module of filler: only the one with AHEAD_WORTH bytes of
    source under the imported package is worth compiling ahead (the other is left to the
    import); nothing is, of names no root holds, or on one core."""
    filler = "#" * bytecode.AHEAD_WORTH + "\n"
    for name, extra in (("small", {}), ("big", {"filler.py": filler})):
        _write_tree(tmp_path / name, {"pkg/__init__.py": "from . import extra\n",
                                      "pkg/extra.py": "E = 1\n",
                                      **{f"pkg/{k}": v for k, v in extra.items()}})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert bytecode.worth_ahead(["pkg"], [str(tmp_path / "big")])
    assert not bytecode.worth_ahead(["pkg"], [str(tmp_path / "small")])
    assert not bytecode.worth_ahead(["other"], [str(tmp_path / "big")])
    assert not bytecode.worth_ahead([], [str(tmp_path / "big")])
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not bytecode.worth_ahead(["pkg"], [str(tmp_path / "big")])
