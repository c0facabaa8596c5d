"""carton_backend.packing.runtimefiles: the runtime an executable carton carries (carton_hook, and
the distributions its worker imports, as sources), its key, and the archive's
`__main__.py`."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import pytest

import carton_hook
from carton_backend.errors import BuildError
from carton_backend.packing import runtimefiles
from carton_backend.packing.runtimefiles import (
    DEPENDENCIES,
    OPTIONAL,
    RuntimeFile,
    runtime_files,
    runtime_key,
    zip_main,
)

HOOK = Path(carton_hook.__file__).resolve().parent
HOOK_PREFIX = "runtime/hook/carton_hook/"
DEPS_PREFIX = "runtime/deps/"


@pytest.fixture(scope="module")
def carried() -> list[RuntimeFile]:
    return runtime_files()


def installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_files_are_sorted_by_archive_name_and_each_is_there(
        carried: list[RuntimeFile]) -> None:
    names = [f.arcname for f in carried]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(n.startswith((HOOK_PREFIX, DEPS_PREFIX)) for n in names)
    assert all(f.path.is_file() for f in carried)


def test_carton_hook_is_carried_whole_under_runtime_hook(carried: list[RuntimeFile]) -> None:
    hook = {f.arcname: f.path for f in carried if f.arcname.startswith(HOOK_PREFIX)}
    modules = [p for p in HOOK.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(modules) > 20
    for module in modules:
        arcname = HOOK_PREFIX + module.relative_to(HOOK).as_posix()
        assert hook.get(arcname) == module, arcname
    assert hook[HOOK_PREFIX + "py.typed"] == HOOK / "py.typed"
    assert hook[HOOK_PREFIX + "zipmain.py"] == HOOK / "zipmain.py"


def test_the_workers_distributions_are_carried_with_their_metadata_and_licenses(
        carried: list[RuntimeFile]) -> None:
    deps = [f for f in carried if f.arcname.startswith(DEPS_PREFIX)]
    tops = {f.arcname[len(DEPS_PREFIX):].split("/", 1)[0] for f in deps}
    wanted = [d for d in (*DEPENDENCIES, *OPTIONAL) if installed(d)]
    assert {"urllib3", "packaging", "installer", "filelock"} <= set(wanted)
    for dist in wanted:
        version = importlib.metadata.version(dist)
        assert dist in tops
        assert f"{DEPS_PREFIX}{dist}/__init__.py" in {f.arcname for f in deps}
        info = f"{dist}-{version}.dist-info"
        kept = sorted(f.arcname[len(DEPS_PREFIX) + len(info) + 1:] for f in deps
                      if f.arcname.startswith(f"{DEPS_PREFIX}{info}/"))
        assert "METADATA" in kept, dist
        assert all(k == "METADATA" or k.startswith("licenses/")
                   or k.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE"))
                   for k in kept), (dist, kept)  # no RECORD, INSTALLER, WHEEL or SBOM
    assert tops <= {*wanted, *(f"{d}-{importlib.metadata.version(d)}.dist-info"
                               for d in wanted)}


def test_tomli_is_carried_exactly_when_the_packing_environment_has_it(
        carried: list[RuntimeFile]) -> None:
    has_tomli = any(f.arcname.startswith(f"{DEPS_PREFIX}tomli/") for f in carried)
    assert has_tomli == installed("tomli")


def test_no_compiled_file_cache_folder_or_launcher_is_carried(
        carried: list[RuntimeFile]) -> None:
    for f in carried:
        assert "/__pycache__/" not in f.arcname, f.arcname
        assert not f.arcname.endswith((".pyc", ".pyo", ".exe")), f.arcname


def test_the_hook_tree_is_taken_without_caches_or_launchers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a tree of its own: whatever the installed carton_hook happens to hold."""
    hook = tmp_path / "carton_hook"
    for rel in ("__init__.py", "zipmain.py", "py.typed", "loading/api.py",
                "__pycache__/zipmain.cpython-311.pyc", "loading/__pycache__/api.cpython-311.pyc",
                "loading/old.pyc", "loading/old.pyo", "commands/launcher.exe",
                "formats/data/table.json"):
        (hook / rel).parent.mkdir(parents=True, exist_ok=True)
        (hook / rel).write_text("x")
    monkeypatch.setattr(runtimefiles, "_hook_dir", lambda: hook)
    names = [f.arcname[len(HOOK_PREFIX):] for f in runtime_files()
             if f.arcname.startswith(HOOK_PREFIX)]
    assert names == ["__init__.py", "formats/data/table.json", "loading/api.py", "py.typed",
                     "zipmain.py"]


def test_every_license_file_of_a_carried_distribution_is_carried(
        carried: list[RuntimeFile]) -> None:
    names = {f.arcname for f in carried}
    for dist in (*DEPENDENCIES, *OPTIONAL):
        if not installed(dist):
            continue
        for file in importlib.metadata.distribution(dist).files or ():
            rel = file.as_posix()
            if ".dist-info/" in rel and ("/licenses/" in rel or rel.rsplit("/", 1)[-1].upper()
                                         .startswith(("LICENSE", "LICENCE", "COPYING"))):
                assert DEPS_PREFIX + rel in names, rel


def test_a_missing_dependency_fails_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DEPENDENCIES, "carton-absent-dist", ("carton_absent_dist",))
    with pytest.raises(BuildError) as info:
        runtime_files()
    assert str(info.value) == ("carton-absent-dist is not installed where carton packs; an "
                               "executable carton carries it (reinstall carton-backend)")


def test_a_missing_optional_distribution_is_left_out(monkeypatch: pytest.MonkeyPatch,
                                                     carried: list[RuntimeFile]) -> None:
    monkeypatch.setitem(OPTIONAL, "carton-absent-dist", ("carton_absent_dist",))
    assert runtime_files() == carried


def test_the_runtime_key_hashes_the_runtimes_manifest_lines_only() -> None:
    manifest = {"runtime/hook/carton_hook/__init__.py": "b" * 64,
                "runtime/deps/urllib3/__init__.py": "a" * 64,
                "model/model.py": "c" * 64, "__main__.py": "d" * 64}
    lines = (f"runtime/deps/urllib3/__init__.py={'a' * 64}\n"
             f"runtime/hook/carton_hook/__init__.py={'b' * 64}\n")
    assert runtime_key(manifest) == hashlib.sha256(lines.encode()).hexdigest()
    # The model's files do not change it; any runtime file does.
    assert runtime_key({**manifest, "model/model.py": "e" * 64}) == runtime_key(manifest)
    changed = {**manifest, "runtime/deps/urllib3/__init__.py": "f" * 64}
    assert runtime_key(changed) != runtime_key(manifest)
    assert runtime_key({}) == hashlib.sha256(b"").hexdigest()


def test_the_archives_main_is_zipmain_with_its_key_filled_in() -> None:
    source = (HOOK / "zipmain.py").read_text(encoding="utf-8")
    key = "0123456789abcdef" * 4
    main = zip_main(key).decode("utf-8")
    assert main.count(f'RUNTIME = "{key}"') == 1
    assert 'RUNTIME = ""' not in main
    assert main.replace(f'RUNTIME = "{key}"', 'RUNTIME = ""') == source
    compile(main, "__main__.py", "exec")


@pytest.mark.parametrize("text", ['RUNTIME = None\n', 'RUNTIME = ""\nRUNTIME = ""\n'],
                         ids=["none", "twice"])
def test_a_zipmain_without_one_placeholder_fails_the_pack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    (tmp_path / "zipmain.py").write_text(text)
    monkeypatch.setattr(runtimefiles, "_hook_dir", lambda: tmp_path)
    with pytest.raises(BuildError, match="has no RUNTIME placeholder"):
        zip_main("a" * 64)
