"""loading/run.py: `resolve_entrypoint`, an entrypoint's three forms and its one-line errors."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.errors import EntrypointError
from carton_hook.loading.run import resolve_entrypoint

# What each of these errors ends with: where the entrypoint is set, and what to do.
FIX = ("; fix `entrypoint` under [tool.carton] in the model's pyproject.toml (and pack "
       "the carton again)")


@pytest.fixture
def model_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty model folder, first on `sys.path` as isolation puts it; `sys.modules`
    (`__main__` included), `sys.path` and `sys.argv` restored afterwards."""
    folder = tmp_path / "model"
    folder.mkdir()
    saved_modules, saved_path, saved_argv = dict(sys.modules), list(sys.path), list(sys.argv)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield folder
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.argv[:] = saved_argv
        importlib.invalidate_caches()


def write(folder: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_module_function_is_the_function_itself(model_dir: Path) -> None:
    write(model_dir, {"run_unit_fn.py": "def main():\n    return 7\n"})
    entry = resolve_entrypoint(model_dir, "run_unit_fn:main")
    assert entry is sys.modules["run_unit_fn"].main
    assert entry() == 7


def test_a_dotted_attribute_is_followed(model_dir: Path) -> None:
    write(model_dir, {"run_unit_dotted.py": "class App:\n    @staticmethod\n"
                                            "    def start():\n        return 'started'\n"})
    assert resolve_entrypoint(model_dir, "run_unit_dotted:App.start")() == "started"


@pytest.mark.parametrize(("attrs", "missing"), [("nope", "nope"), ("App.nope", "App.nope")])
def test_a_missing_function_is_one_line_naming_the_module_and_attribute(
        model_dir: Path, attrs: str, missing: str) -> None:
    write(model_dir, {"run_unit_attr.py": "class App:\n    pass\n"})
    with pytest.raises(EntrypointError) as caught:
        resolve_entrypoint(model_dir, f"run_unit_attr:{attrs}")
    assert one_line(caught.value) == (f"entrypoint 'run_unit_attr:{attrs}': run_unit_attr "
                                      f"has no {missing}" + FIX)
    assert isinstance(caught.value, LookupError)
    assert caught.value.__suppress_context__  # no AttributeError chained under it


def test_something_that_cannot_be_called_is_refused(model_dir: Path) -> None:
    write(model_dir, {"run_unit_value.py": "VALUE = 3\n"})
    with pytest.raises(EntrypointError) as caught:
        resolve_entrypoint(model_dir, "run_unit_value:VALUE")
    assert one_line(caught.value) == "entrypoint 'run_unit_value:VALUE' is not callable" + FIX


def test_a_module_runs_as_main_only_when_called_and_leaves_argv_alone(
        model_dir: Path) -> None:
    write(model_dir, {"run_unit_mod.py": "import sys\nseen = (__name__, list(sys.argv))\n"})
    before = sys.modules["__main__"]
    entry = resolve_entrypoint(model_dir, "run_unit_mod")
    assert sys.modules["__main__"] is before  # resolving runs nothing
    sys.argv[:] = ["MODEL", "one"]
    assert entry() is None
    main = sys.modules["__main__"]
    assert main is not before and main.seen == ("__main__", ["MODEL", "one"])
    assert main.__file__ == str(model_dir / "run_unit_mod.py")
    assert main.__spec__ is not None and main.__spec__.name == "run_unit_mod"
    assert "run_unit_mod" not in sys.modules  # run as __main__, not imported as itself


def test_a_package_runs_its_main_module(model_dir: Path) -> None:
    write(model_dir, {"run_unit_pkg/__init__.py": "",
                      "run_unit_pkg/__main__.py": "from . import helper\nseen = helper.X\n",
                      "run_unit_pkg/helper.py": "X = 'relative import works'\n"})
    resolve_entrypoint(model_dir, "run_unit_pkg")()
    main = sys.modules["__main__"]
    assert main.seen == "relative import works"
    assert main.__spec__ is not None and main.__spec__.name == "run_unit_pkg.__main__"
    assert main.__package__ == "run_unit_pkg"


def test_a_package_without_main_is_refused(model_dir: Path) -> None:
    write(model_dir, {"run_unit_nomain/__init__.py": ""})
    with pytest.raises(EntrypointError) as caught:
        resolve_entrypoint(model_dir, "run_unit_nomain")
    assert one_line(caught.value) == ("entrypoint 'run_unit_nomain' is a package without __main__"
                                    + FIX)


def test_a_module_that_is_not_there_is_refused(model_dir: Path) -> None:
    with pytest.raises(EntrypointError) as caught:
        resolve_entrypoint(model_dir, "run_unit_nowhere")
    assert one_line(caught.value) == ("entrypoint 'run_unit_nowhere': no module run_unit_nowhere"
                                    + FIX)


def test_a_script_runs_as_main_from_the_model_folder_whatever_sys_path_says(
        model_dir: Path) -> None:
    write(model_dir, {"scripts/run.py": "import sys\nseen = (__name__, __file__, sys.argv)\n"})
    sys.path.remove(str(model_dir))
    entry = resolve_entrypoint(model_dir, "scripts/run.py")
    sys.argv[:] = ["MODEL", "x"]
    assert entry() is None
    main = sys.modules["__main__"]
    script = str(model_dir / "scripts" / "run.py")
    assert main.seen == ("__main__", script, ["MODEL", "x"])
    assert main.__spec__ is None


def test_a_script_is_compiled_under_its_own_path(model_dir: Path) -> None:
    """Tracebacks and syntax errors name the model's file, as `python script.py` does."""
    write(model_dir, {"broken.py": "def (:\n"})
    with pytest.raises(SyntaxError) as caught:
        resolve_entrypoint(model_dir, "broken.py")()
    assert caught.value.filename == str(model_dir / "broken.py")


def test_a_script_that_is_not_there_is_an_entrypoint_error(model_dir: Path) -> None:
    with pytest.raises(EntrypointError):
        resolve_entrypoint(model_dir, "missing.py")()


def test_a_function_of_a_module_that_is_not_there_is_an_entrypoint_error(
        model_dir: Path) -> None:
    with pytest.raises(EntrypointError):
        resolve_entrypoint(model_dir, "run_unit_gone:main")


def test_a_module_the_entrypoint_imports_that_is_missing_is_not_the_entrypoints_error(
        model_dir: Path) -> None:
    """Only the entrypoint's own module is an EntrypointError; what it imports that is
    missing is the model's ModuleNotFoundError (and the runner's hint about the lock)."""
    write(model_dir, {"run_unit_needs.py": "import run_unit_nowhere\ndef main():\n    pass\n"})
    with pytest.raises(ModuleNotFoundError) as caught:
        resolve_entrypoint(model_dir, "run_unit_needs:main")
    assert caught.value.name == "run_unit_nowhere"
