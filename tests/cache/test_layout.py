"""carton_hook/cache/layout.py: where things are under CARTON_HOME, the fallback when the
home folder cannot be written, and `is_published`, the one test of a completion marker."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from carton_hook.cache.layout import (
    COMPLETE,
    PLAN_SUFFIX,
    carton_home,
    is_published,
    models_dir,
    packages_dir,
    plans_dir,
    prefix_dir,
)
from carton_hook.cache.publish import publish

TAG = f"py{sys.version_info[0]}{sys.version_info[1]}"


@pytest.fixture
def no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """CARTON_HOME unset, and set back as it was after the test (the fallback sets it)."""
    monkeypatch.delenv("CARTON_HOME", raising=False)


def permissions_enforced(tmp_path: Path) -> bool:
    """False where a folder without write permission can be written anyway (root)."""
    probe = tmp_path / "read-only-probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        return not os.access(probe, os.W_OK)
    finally:
        probe.chmod(0o755)


@contextmanager
def carton_warnings() -> Iterator[list[str]]:
    """What the `carton` logger warns about meanwhile, however logging is set up."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.WARNING)
    log = logging.getLogger("carton")
    log.addHandler(handler)
    try:
        yield lines
    finally:
        log.removeHandler(handler)


# ---------------------------------------------------------------- CARTON_HOME


def test_carton_home_is_the_variable_as_given(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("CARTON_HOME", str(tmp_path / "not-made-yet"))
    assert carton_home() == str(tmp_path / "not-made-yet")
    assert not (tmp_path / "not-made-yet").exists()


def test_a_relative_carton_home_is_made_absolute_for_the_children_too(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Workers and subprocesses inherit the variable and may start in another folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CARTON_HOME", "relative/home")
    assert carton_home() == str(tmp_path / "relative" / "home")
    assert os.environ["CARTON_HOME"] == str(tmp_path / "relative" / "home")
    assert not (tmp_path / "relative").exists()


def test_a_carton_home_under_a_tilde_no_shell_expanded_is_in_the_home_folder(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.setenv("CARTON_HOME", "~/caches/carton")
    assert carton_home() == str(tmp_path / "me" / "caches" / "carton")
    assert os.environ["CARTON_HOME"] == str(tmp_path / "me" / "caches" / "carton")


@pytest.mark.parametrize("value", [None, ""])
def test_without_carton_home_it_is_dot_carton_in_the_home_folder(
        value: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("CARTON_HOME", raising=False)
    else:
        monkeypatch.setenv("CARTON_HOME", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    with carton_warnings() as warned:
        assert carton_home() == str(tmp_path / ".carton")
    assert warned == []
    assert not (tmp_path / ".carton").exists()  # made by whoever fills it, not here
    assert os.environ.get("CARTON_HOME") == value


def test_a_home_folder_that_cannot_be_written_falls_back_to_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_home: None) -> None:
    home = tmp_path / "no-such-home"  # not even there: nothing can be made in it
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "container-work"
    work.mkdir()
    monkeypatch.chdir(work)
    with carton_warnings() as warned:
        assert carton_home() == str(work / ".carton")
        # The children (the worker, the model's subprocesses) use the same one, and
        # nothing is said twice.
        assert os.environ["CARTON_HOME"] == str(work / ".carton")
        assert carton_home() == str(work / ".carton")
    assert warned == [f"{home / '.carton'} cannot be created (the home folder is not "
                      f"writable); using {work / '.carton'} (set CARTON_HOME to choose)"]
    assert list(work.iterdir()) == []


def test_where_neither_can_be_written_it_falls_back_to_the_temp_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_home: None) -> None:
    if not permissions_enforced(tmp_path):
        pytest.skip("this user may write into a read-only folder")
    monkeypatch.setenv("HOME", str(tmp_path / "no-such-home"))
    work = tmp_path / "read-only-work"
    work.mkdir()
    work.chmod(0o555)
    monkeypatch.chdir(work)
    try:
        with carton_warnings() as warned:
            home = carton_home()
    finally:
        work.chmod(0o755)
    assert home == os.path.join(tempfile.gettempdir(), f"carton-{os.getuid()}")
    assert os.environ["CARTON_HOME"] == home
    assert len(warned) == 1 and warned[0].endswith(f"using {home} (set CARTON_HOME to choose)")


def test_an_existing_cache_in_a_read_only_home_folder_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_home: None) -> None:
    """A warm run writes nothing, so a cache filled earlier serves it where it is."""
    if not permissions_enforced(tmp_path):
        pytest.skip("this user may write into a read-only folder")
    home = tmp_path / "home"
    (home / ".carton").mkdir(parents=True)
    home.chmod(0o555)
    monkeypatch.setenv("HOME", str(home))
    try:
        with carton_warnings() as warned:
            assert carton_home() == str(home / ".carton")
    finally:
        home.chmod(0o755)
    assert warned == [] and "CARTON_HOME" not in os.environ


# ---------------------------------------------------------------- the folders


def test_each_folder_is_under_the_home_given(tmp_path: Path) -> None:
    for home in (tmp_path, str(tmp_path)):
        assert packages_dir(home) == str(tmp_path / "pythonpackages" / TAG)
        assert models_dir(home) == str(tmp_path / "models")
        assert plans_dir(home) == str(tmp_path / "plans")


def test_without_a_home_each_folder_is_under_carton_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_HOME", str(tmp_path / "ch"))
    assert packages_dir() == str(tmp_path / "ch" / "pythonpackages" / TAG)
    assert models_dir() == str(tmp_path / "ch" / "models")
    assert plans_dir() == str(tmp_path / "ch" / "plans")


def test_a_plans_prefix_is_named_for_its_plan_file(tmp_path: Path) -> None:
    plan = os.path.join(plans_dir(tmp_path), "0123abcd" + PLAN_SUFFIX)
    assert PLAN_SUFFIX == ".plan"
    assert prefix_dir(plan, tmp_path) == str(tmp_path / "envs" / "0123abcd")
    assert prefix_dir("elsewhere/k.v2.plan", str(tmp_path)) == str(tmp_path / "envs" / "k.v2")


def test_nothing_is_made_on_disk(tmp_path: Path) -> None:
    for folder in (packages_dir(tmp_path), models_dir(tmp_path), plans_dir(tmp_path),
                   prefix_dir("k.plan", tmp_path)):
        assert not os.path.exists(folder)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- is_published


def test_the_completion_marker_is_dot_carton_complete() -> None:
    assert COMPLETE == ".carton-complete"


def test_a_folder_with_its_marker_is_published(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    assert not is_published(entry)
    (entry / COMPLETE).write_text("{}")
    assert is_published(entry) and is_published(str(entry))


def test_a_folder_publish_made_is_published_and_its_work_folder_was_not(
        tmp_path: Path) -> None:
    tree = tmp_path / "work"
    tree.mkdir()
    (tree / "six.py").write_text("")
    assert not is_published(tree)
    final = tmp_path / "pythonpackages" / TAG / ("a" * 64)
    final.parent.mkdir(parents=True)
    publish(tree, final)
    assert is_published(final)


@pytest.mark.parametrize("layout", ["missing-folder", "marker-is-a-folder", "marker-below",
                                    "folder-is-a-file", "other-name"])
def test_anything_but_a_marker_file_in_the_folder_is_not_published(
        tmp_path: Path, layout: str) -> None:
    entry = tmp_path / "entry"
    if layout == "marker-is-a-folder":
        (entry / COMPLETE).mkdir(parents=True)
    elif layout == "marker-below":
        (entry / "sub").mkdir(parents=True)
        (entry / "sub" / COMPLETE).write_text("{}")
    elif layout == "folder-is-a-file":
        entry.write_text("")
    elif layout == "other-name":
        entry.mkdir()
        (entry / ".carton-complete.tmp").write_text("{}")
    assert not is_published(entry)
