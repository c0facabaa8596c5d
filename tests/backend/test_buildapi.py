"""The PEP 517 hooks, driven by real frontends (`python -m build`, `pip wheel`) without
build isolation, and directly.

The tests that drive a frontend are marked `slow`: they run on one Python (noxfile.py);
the integration session drives real frontends, isolated, on each."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import carton_backend
from carton_backend.lock import locking

from ..factory import make_sdist, make_wheel, write_model
from ..indexserver import PackageIndex


@pytest.fixture
def model(tmp_path: Path, pypi: PackageIndex, private: PackageIndex) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    private.add(make_sdist(tmp_path / "s", "gamma", "1.0"))
    return write_model(tmp_path / "model", "alpha\ngamma\n",
                       files={"helpers/__init__.py": "X = 1\n", "weights.json": "{}"})


def build(env: dict[str, str], model: Path, out: Path,
          *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           *args, str(model)], env=env, capture_output=True, text=True,
                          check=False)


@pytest.mark.slow
def test_python_m_build_leaves_sdist_wheel_and_carton(
        model: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    out = tmp_path / "dist"
    proc = build(hermetic_env, model, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "demo_model-0.1.0-py3-none-any.whl", "demo_model-0.1.0.carton",
        "demo_model-0.1.0.tar.gz"]
    with tarfile.open(out / "demo_model-0.1.0.tar.gz") as tar:
        names = tar.getnames()
    assert "demo_model-0.1.0/PKG-INFO" in names
    assert "demo_model-0.1.0/.carton/carton.lock" in names
    assert any(n.endswith("gamma-1.0-py3-none-any.whl") for n in names)
    with zipfile.ZipFile(out / "demo_model-0.1.0-py3-none-any.whl") as zf:
        wheel_names = set(zf.namelist())
        meta = email.parser.BytesParser().parsebytes(
            zf.read("demo_model-0.1.0.dist-info/METADATA"))
        scripts = zf.read("demo_model-0.1.0.dist-info/entry_points.txt").decode()
    # The code and the data it reads from beside itself; not what only packing needs.
    assert {n for n in wheel_names if ".dist-info/" not in n} == {
        "model.py", "helpers/__init__.py", "weights.json"}
    assert sorted(meta.get_all("Requires-Dist")) == ["alpha==1.0", "gamma==1.0"]
    assert "demo-model = model:main" in scripts


@pytest.mark.slow
def test_carton_from_frontend_equals_carton_from_cli(
        model: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    """The wheel step builds from the unpacked sdist (with PKG-INFO added): the carton
    must not depend on that."""
    proc = build(hermetic_env, model, tmp_path / "dist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cli = subprocess.run([sys.executable, "-m", "carton_backend", "pack", str(model), "-o",
                          str(tmp_path / "cli")], env=hermetic_env, capture_output=True,
                         text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "dist" / "demo_model-0.1.0.carton").read_bytes() == \
        (tmp_path / "cli" / "demo_model-0.1.0.carton").read_bytes()


@pytest.mark.slow
def test_pip_wheel_drives_the_backend(model: Path, tmp_path: Path,
                                      hermetic_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                           "--no-deps", "--wheel-dir", str(tmp_path / "wh"), str(model)],
                          env=hermetic_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "wh").iterdir()] == ["demo_model-0.1.0-py3-none-any.whl"]
    assert (model / ".carton" / "carton.lock").is_file()
    # pip keeps only the wheel: the .carton is where `python -m build` leaves it.
    assert [p.name for p in (model / "dist").iterdir()] == ["demo_model-0.1.0.carton"]


@pytest.mark.slow
def test_pip_keeps_the_carton_where_carton_dir_says(model: Path, tmp_path: Path,
                                                   hermetic_env: dict[str, str]) -> None:
    """pip keeps only the wheel out of its temporary folder: `-C carton-dir=dist` has
    the `.carton` written into the model folder's dist/ instead."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                           "--no-deps", "--config-settings", "carton-dir=dist", "--wheel-dir",
                           str(tmp_path / "wh"), str(model)],
                          env=hermetic_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "wh").iterdir()] == ["demo_model-0.1.0-py3-none-any.whl"]
    assert (model / "dist" / "demo_model-0.1.0.carton").is_file()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                           "--no-deps", "--config-settings", "carton-dir=", "--wheel-dir",
                           str(tmp_path / "wh2"), str(model)],
                          env=hermetic_env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "the carton-dir setting must be one folder" in (
        proc.stdout + proc.stderr)


@pytest.mark.slow
def test_wheel_from_the_sdist_reuses_its_lock(
        model: Path, tmp_path: Path, hermetic_env: dict[str, str], pypi: PackageIndex,
        private: PackageIndex, use_hermetic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = build(hermetic_env, model, tmp_path / "dist", "--sdist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(tmp_path / "dist" / "demo_model-0.1.0.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    pypi.stop()
    private.stop()

    def no_resolver(*args: object, **kwargs: object) -> None:
        raise AssertionError("the wheel step re-resolved")

    monkeypatch.setattr(locking, "resolve", no_resolver)
    monkeypatch.chdir(tmp_path / "unpacked" / "demo_model-0.1.0")
    assert carton_backend.get_requires_for_build_wheel() == []
    name = carton_backend.build_wheel(str(tmp_path / "out"))
    assert name == "demo_model-0.1.0-py3-none-any.whl"
    assert (tmp_path / "out" / "demo_model-0.1.0.carton").is_file()


def test_get_requires_asks_for_pip_only_when_resolving(
        model: Path, use_hermetic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model)
    assert carton_backend.get_requires_for_build_sdist() == ["pip>=23.0"]
    meta = carton_backend.prepare_metadata_for_build_wheel(str(model.parent / "meta"))
    assert meta == "demo_model-0.1.0.dist-info"
    assert carton_backend.get_requires_for_build_sdist() == []
    assert carton_backend.get_requires_for_build_wheel() == []


@pytest.mark.slow
def test_hook_error_is_one_line_without_traceback(tmp_path: Path,
                                                  hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "no-such-package\n")
    proc = build(hermetic_env, model, tmp_path / "dist")
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "carton: error:" in output and "no-such-package" in output
    assert "Traceback" not in output
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


@pytest.mark.slow
def test_unnormalised_version_gives_valid_file_names(tmp_path: Path,
                                                     hermetic_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "model", "", version="1.0-RC1")
    proc = build(hermetic_env, model, tmp_path / "dist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == [
        "demo_model-1.0rc1-py3-none-any.whl", "demo_model-1.0rc1.carton",
        "demo_model-1.0rc1.tar.gz"]


@pytest.mark.slow
def test_project_metadata_reaches_the_wheel_and_the_sdist(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    from packaging.metadata import Metadata

    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n",
                        files={"README.md": "# Demo\n\nIt *predicts*.\n",
                               "LICENSE": "MIT License\n\nCopyright the authors\n"})
    pyproject = model / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"\n', '''\
version = "0.1.0"
description = "A demo model"
readme = "README.md"
license = {file = "LICENSE"}
authors = [{name = "Ada"}, {name = "Bo", email = "bo@example.com"}]
keywords = ["demo", "model"]
classifiers = ["Programming Language :: Python :: 3"]
urls = {Homepage = "https://example.com", Issues = "https://example.com/issues"}
'''))
    out = tmp_path / "dist"
    proc = build(hermetic_env, model, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(out / "demo_model-0.1.0-py3-none-any.whl") as zf:
        wheel_meta = zf.read("demo_model-0.1.0.dist-info/METADATA")
    with tarfile.open(out / "demo_model-0.1.0.tar.gz") as tar:
        member = tar.extractfile("demo_model-0.1.0/PKG-INFO")
        assert member is not None
        sdist_meta = member.read()
    assert wheel_meta == sdist_meta
    meta = Metadata.from_email(wheel_meta)  # valid core metadata, read by packaging
    assert meta.summary == "A demo model"
    assert meta.description == "# Demo\n\nIt *predicts*.\n"
    assert meta.description_content_type == "text/markdown"
    # The file's lines, continued as RFC 822 folds them (indented)
    assert meta.license is not None
    assert [line.strip() for line in meta.license.splitlines()] == [
        "MIT License", "", "Copyright the authors"]
    assert (meta.author, meta.author_email) == ("Ada", "Bo <bo@example.com>")
    assert meta.keywords == ["demo", "model"]
    assert meta.classifiers == ["Programming Language :: Python :: 3"]
    assert meta.project_urls == {"Homepage": "https://example.com",
                                 "Issues": "https://example.com/issues"}
    assert [str(r) for r in meta.requires_dist or []] == ["alpha==1.0"]


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False])
def test_pip_install_gives_a_console_script_that_finds_the_models_data(
        tmp_path: Path, pypi: PackageIndex, hermetic_env: dict[str, str],
        editable: bool) -> None:
    """`pip install MODEL_DIR`: the console script runs, and reads the data file beside
    its module. `pip install -e` (PEP 660; pip 25 needs build_editable): it runs the
    folder's code as it is now."""
    import os
    import sysconfig

    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    model = write_model(tmp_path / "model", "alpha\n", files={
        "weights.json": '{"w": 2}',
        "model.py": "import json, pathlib\ndef main():\n"
                    "    here = pathlib.Path(__file__).parent\n"
                    "    print('v1', json.loads((here / 'weights.json').read_text())['w'])\n"})
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # pip runs the backend in the target interpreter (--no-build-isolation): it finds
    # carton-backend and its dependencies where this interpreter has them.
    where = [str(Path(carton_backend.__file__).parent.parent), sysconfig.get_paths()["purelib"]]
    env = {**hermetic_env, "PYTHONPATH": os.pathsep.join(where)}
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-build-isolation", "--no-deps", *(["-e"] if editable else []),
                           str(model)],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = venv / "bin" / "demo-model"
    run = subprocess.run([str(script)], env=hermetic_env, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "v1 2\n"), run.stderr
    (model / "model.py").write_text((model / "model.py").read_text().replace("v1", "v2"))
    run = subprocess.run([str(script)], env=hermetic_env, capture_output=True, text=True)
    assert run.stdout == ("v2 2\n" if editable else "v1 2\n"), run.stderr
    cartons = [p.relative_to(model).as_posix() for p in model.rglob("*.carton") if p.is_file()]
    assert cartons == ([] if editable else ["dist/demo_model-0.1.0.carton"])
