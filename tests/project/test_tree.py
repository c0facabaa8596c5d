"""The test tree mirrors the code (docs/architecture.md): a module's tests are
tests/<room>/test_<module>.py for carton_hook/<room>/<module>.py, tests/base/ for the
runtime's base modules, tests/backend/<room>/ for carton_backend/<room>/ and tests/backend/
for the build half's edges; runs of the whole runtime are in tests/e2e/ and checks of the
project as a whole in tests/project/. A test file anywhere else, or named for a module
that was renamed or removed, fails here."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Folders of tests named freely: what they test is not one module.
FREE = ("e2e", "project")


def _mirrors(root: Path) -> dict[str, Path]:
    """Each folder of tests named after modules (relative to tests/) -> the folder that
    holds those modules."""
    rooms = {p.parent.name: p.parent for p in (root / "carton_hook").glob("*/__init__.py")}
    backend = {f"backend/{p.parent.name}": p.parent
               for p in (root / "carton_backend").glob("*/__init__.py")}
    return {**rooms, **backend, "base": root / "carton_hook", "backend": root / "carton_backend"}


def misplaced(root: Path) -> list[str]:
    """What in `root`/tests breaks the mirror, one line each."""
    tests = root / "tests"
    mirrors = _mirrors(root)
    folders = sorted([*mirrors, *FREE])
    problems = []
    for path in sorted(tests.rglob("*.py")):
        where = path.relative_to(tests)
        if len(where.parts) == 1:
            if path.name.startswith("test_"):
                problems.append(f"{where}: a test file belongs in one of {folders}")
            continue  # a support module (conftest, factory, ...)
        folder = where.parent.as_posix()
        if folder not in folders:
            problems.append(f"{where}: tests live in one of {folders}")
        elif path.name == "__init__.py":
            continue
        elif not path.name.startswith("test_"):
            problems.append(f"{where}: support modules stay at the top of tests/")
        elif not (tests / folder / "__init__.py").is_file():
            problems.append(f"{where}: tests/{folder}/ has no __init__.py")
        elif folder in mirrors and not (mirrors[folder] / f"{path.stem[5:]}.py").is_file():
            module = (mirrors[folder] / f"{path.stem[5:]}.py").relative_to(root)
            problems.append(f"{where}: there is no {module.as_posix()} for it to test")
    return problems


def test_every_test_file_is_where_its_subject_is() -> None:
    assert misplaced(ROOT) == []


def test_a_stray_file_and_a_renamed_module_are_caught(tmp_path: Path) -> None:
    for name in ("carton_hook/cache/__init__.py", "carton_hook/cache/entries.py",
                 "carton_backend/packing/pack.py", "tests/cache/__init__.py",
                 "tests/cache/test_entries.py", "tests/backend/__init__.py",
                 "tests/backend/packing/__init__.py", "tests/backend/packing/test_pack.py",
                 "carton_backend/packing/__init__.py", "carton_backend/cli.py",
                 "tests/backend/test_cli.py", "tests/e2e/__init__.py",
                 "tests/e2e/test_anything.py", "tests/conftest.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert misplaced(tmp_path) == []
    for name in ("tests/test_stray.py", "tests/cache/test_cache.py",
                 "tests/backend/test_pack.py", "tests/backend/packing/test_packing.py",
                 "tests/nowhere/test_x.py", "tests/cache/helpers.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert [line.split(":")[0] for line in misplaced(tmp_path)] == [
        "backend/packing/test_packing.py", "backend/test_pack.py", "cache/helpers.py",
        "cache/test_cache.py", "nowhere/test_x.py", "test_stray.py"]


# The edges Python runs directly: tested end to end (tests/e2e/test_main.py,
# tests/e2e/test_executable.py, tests/backend/test_cli.py through its main).
RUN_END_TO_END = ("carton_hook/__main__.py", "carton_hook/zipmain.py",
                  "carton_backend/__main__.py")


def untested(root: Path) -> list[str]:
    """The modules of `root` without a test file of their own, edges aside."""
    missing = []
    for folder, modules in _mirrors(root).items():
        for module in sorted(modules.glob("*.py")):
            relpath = module.relative_to(root).as_posix()
            if module.name == "__init__.py" or relpath in RUN_END_TO_END:
                continue
            if not (root / "tests" / folder / f"test_{module.name}").is_file():
                missing.append(relpath)
    return missing


def test_every_module_has_a_test_file_of_its_own() -> None:
    assert untested(ROOT) == []


def test_a_module_without_tests_is_named(tmp_path: Path) -> None:
    for name in ("carton_hook/cache/__init__.py", "carton_hook/cache/entries.py",
                 "carton_hook/cache/layout.py", "carton_hook/__main__.py",
                 "carton_backend/packing/__init__.py", "carton_backend/packing/pack.py",
                 "tests/cache/test_entries.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert untested(tmp_path) == ["carton_hook/cache/layout.py", "carton_backend/packing/pack.py"]
