"""carton_backend.wheels.collect: one resolved distribution turned into a locked package, its
wheel checked, recorded by URL when the public index has the identical file and bundled
otherwise, its metadata kept."""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_backend.errors import BuildError
from carton_backend.network.download import Downloader
from carton_backend.network.httpclient import HttpClient
from carton_backend.network.pypi import PublicIndex
from carton_backend.resolution.environment import Target
from carton_backend.resolution.resolve import Resolved
from carton_backend.wheels.collect import Collector
from carton_hook.formats.lockfile import BUNDLED_DIR, DIST_INFO_DIR, bundled_path

from ...factory import make_sdist, make_wheel, write_model, write_source_tree
from ...indexserver import PackageIndex

HERE = Target(f"{sys.version_info[0]}.{sys.version_info[1]}", building=True)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolved(name: str, url: str, sha256: str | None, *, kind: str = "wheel",
             yanked: bool = False, subdirectory: str | None = None) -> Resolved:
    return Resolved(name=name, version="1.0", url=url, kind=kind, sha256=sha256, requested=True,
                    requires_dist=(), requested_extras=(), yanked=yanked,
                    subdirectory=subdirectory)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "model")


@pytest.fixture
def collector(tmp_path: Path, model: Path, pypi: PackageIndex,
              monkeypatch: pytest.MonkeyPatch) -> Collector:
    """Locks into `model`, asking the loopback `pypi` whether it has each file."""
    for var in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    client = HttpClient()
    (tmp_path / "work").mkdir()
    return Collector(model, HERE, Downloader(client, tmp_path / "cache"),
                     PublicIndex(pypi.url, client), tmp_path / "work")


@pytest.fixture
def warned() -> Iterator[list[str]]:
    """What is said on the `carton` logger at warning level, whatever its handlers are."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("carton")
    handler, level = Keep(logging.WARNING), logger.level
    logger.addHandler(handler)
    if logger.level in (logging.NOTSET,) or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_wheel_the_public_index_lacks_is_bundled_by_its_sha256(
        tmp_path: Path, model: Path, collector: Collector, warned: list[str]) -> None:
    wheel = make_wheel(tmp_path / "local", "Alpha", "1.0", requires=["beta"])
    package = collector.package(resolved("Alpha", wheel.as_uri(), sha(wheel)), ["beta"])
    digest = sha(wheel)
    assert (package.name, package.version, package.requested) == ("alpha", "1.0", True)
    assert (package.dependencies, package.imports) == (("beta",), ("alpha",))
    assert (package.index_url, package.built_from) == (None, None)
    assert package.wheel.name == wheel.name
    assert (package.wheel.sha256, package.wheel.size) == (digest, wheel.stat().st_size)
    assert (package.wheel.url, package.wheel.path) == (None, bundled_path(digest, wheel.name))
    assert (model / bundled_path(digest, wheel.name)).read_bytes() == wheel.read_bytes()
    assert warned == []


def test_the_wheels_metadata_is_kept_under_its_sha256(
        tmp_path: Path, model: Path, collector: Collector) -> None:
    wheel = make_wheel(tmp_path / "local", "alpha", "1.0")
    collector.package(resolved("alpha", wheel.as_uri(), sha(wheel)), [])
    collector.package(resolved("alpha", wheel.as_uri(), sha(wheel)), [])  # again: no change
    kept = model / DIST_INFO_DIR
    assert [p.name for p in kept.iterdir()] == [sha(wheel)]  # no temporary folder left
    folder = kept / sha(wheel) / "alpha-1.0.dist-info"
    assert sorted(p.name for p in folder.iterdir()) == ["METADATA", "RECORD", "WHEEL"]
    assert folder.joinpath("METADATA").read_text().startswith("Metadata-Version: 2.1\n")


def test_a_wheel_the_public_index_has_is_recorded_by_its_url(
        tmp_path: Path, model: Path, collector: Collector, pypi: PackageIndex) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    package = collector.package(resolved("alpha", pypi.file_url(wheel.name), sha(wheel)), [])
    assert (package.wheel.url, package.wheel.path) == (pypi.file_url(wheel.name), None)
    assert package.index_url == pypi.url
    assert not (model / BUNDLED_DIR).exists()
    assert (model / DIST_INFO_DIR / sha(wheel)).is_dir()  # kept for recorded wheels too


def test_the_same_file_name_with_other_bytes_on_the_index_is_bundled_with_a_warning(
        tmp_path: Path, collector: Collector, pypi: PackageIndex, warned: list[str]) -> None:
    pypi.add(make_wheel(tmp_path / "public", "alpha", "1.0", {"alpha.py": "X = 'public'\n"}))
    mine = make_wheel(tmp_path / "mine", "alpha", "1.0", {"alpha.py": "X = 'mine'\n"})
    package = collector.package(resolved("alpha", mine.as_uri(), sha(mine)), [])
    assert package.wheel.bundled and package.index_url is None
    assert warned == [f"{mine.name} differs from the file of the same name on {pypi.url}; "
                        "bundling it"]


def test_a_yanked_pick_is_locked_with_a_warning(tmp_path: Path, collector: Collector,
                                                pypi: PackageIndex, warned: list[str]) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    pypi.yanked.add(wheel.name)
    url = pypi.file_url(wheel.name)
    collector.package(resolved("alpha", url, sha(wheel), yanked=True), [])
    assert warned == ["alpha 1.0 is yanked on its index; consider another version"]
    warned.clear()
    # pip took it from elsewhere, unyanked; the public index says it is yanked
    package = collector.package(resolved("alpha", url, sha(wheel)), [])
    assert package.wheel.url == url
    assert warned == [f"{wheel.name} is yanked on {pypi.url}"]


def test_a_wheel_of_another_project_than_pip_asked_for_is_refused(
        tmp_path: Path, model: Path, collector: Collector) -> None:
    wheel = make_wheel(tmp_path / "local", "alpha", "1.0")
    with pytest.raises(BuildError) as info:
        collector.package(resolved("beta", wheel.as_uri(), sha(wheel)), [])
    assert str(info.value) == f"{wheel.as_uri()}: the wheel is alpha, pip asked for beta"
    assert not (model / BUNDLED_DIR).exists()


def test_a_broken_wheel_is_refused_naming_the_package_and_a_shortened_url(
        tmp_path: Path, model: Path, collector: Collector) -> None:
    folder = tmp_path / ("a-very-long-folder-name-" * 6)
    wheel = make_wheel(folder, "alpha", "1.0", extra_members={"alpha/extra.py": b"X = 1\n"})
    url = wheel.as_uri()
    assert len(url) > 120
    with pytest.raises(BuildError) as info:
        collector.package(resolved("alpha", url, sha(wheel)), [])
    message = str(info.value)
    assert message.startswith(f"alpha 1.0 from {url[:117]}...: {wheel.name}: ")
    assert "alpha/extra.py" in message
    assert not (model / BUNDLED_DIR).exists() and not (model / DIST_INFO_DIR).exists()


def test_a_pth_file_that_runs_code_is_warned_about(tmp_path: Path, collector: Collector,
                                                   warned: list[str]) -> None:
    wheel = make_wheel(tmp_path / "local", "alpha", "1.0", {
        "alpha/__init__.py": "",
        "alpha_hook.pth": "import os; os.environ.setdefault('A', '1')\n",
        "distutils-precedence.pth": "import os\n",
        "a1_coverage.pth": "import sys; exec('import os')\n",  # carton does what it does
        "alpha-nspkg.pth": "import sys\n",
    })
    collector.package(resolved("alpha", wheel.as_uri(), sha(wheel)), [])
    assert warned == [f"{wheel.name}: alpha_hook.pth runs code at start-up when "
                        "pip-installed; carton never runs it (its path lines are honoured)"]


def test_an_sdist_in_the_model_folder_is_built_and_recorded_by_its_relative_path(
        model: Path, collector: Collector, pypi: PackageIndex, use_hermetic_env: None) -> None:
    sdist = make_sdist(model / "vendor", "gamma", "1.0")
    pypi.add(sdist)  # a built wheel is never looked up: its bytes are carton's own
    package = collector.package(resolved("gamma", sdist.as_uri(), sha(sdist), kind="sdist"), [])
    assert package.built_from == {"sdist": {"name": "gamma-1.0.tar.gz",
                                            "path": "vendor/gamma-1.0.tar.gz",
                                            "hashes": {"sha256": sha(sdist)}}}
    assert package.wheel.name == "gamma-1.0-py3-none-any.whl"
    assert package.wheel.path == bundled_path(package.wheel.sha256, package.wheel.name)
    assert (model / package.wheel.path).is_file()
    assert package.index_url is None and package.imports == ("gamma",)


def test_a_folder_built_from_a_subdirectory_records_the_subdirectory_once(
        model: Path, collector: Collector, use_hermetic_env: None) -> None:
    write_source_tree(model / "libs" / "repo" / "pkg", "delta", "0.3")
    res = resolved("delta", (model / "libs" / "repo").as_uri(), None, kind="directory",
                   subdirectory="pkg")
    package = collector.package(res, [])
    # PEP 751: `subdirectory` is relative to `path`, as carton records it for VCS sources
    assert package.built_from == {"directory": {"path": "libs/repo", "subdirectory": "pkg"}}
