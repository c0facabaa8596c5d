"""Folders published by one rename, their completion marker written last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carton_hook.cache.layout import COMPLETE, is_published
from carton_hook.cache.publish import publish, publishing


def filled(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "file.txt").write_text(text)
    return path


def test_a_folder_is_published_whole_with_its_marker(tmp_path: Path) -> None:
    tree = filled(tmp_path / "work" / "tree", "one")
    final = tmp_path / "final"
    publish(tree, final, {"sha256": "ab" * 32}, durable=True)
    assert not tree.exists() and is_published(final)
    assert (final / "file.txt").read_text() == "one"
    assert json.loads((final / COMPLETE).read_text()) == {"format": 1, "sha256": "ab" * 32}


def test_the_first_publisher_wins_a_race(tmp_path: Path) -> None:
    final = tmp_path / "final"
    publish(filled(tmp_path / "a", "first"), final)
    second = filled(tmp_path / "b", "second")
    publish(second, final)  # lost: no error, the first stays
    assert (final / "file.txt").read_text() == "first"
    assert second.is_dir()  # the loser's copy is its caller's to remove


def test_something_else_in_the_way_is_an_error(tmp_path: Path) -> None:
    final = filled(tmp_path / "final", "not published: no marker")
    with pytest.raises(OSError):
        publish(filled(tmp_path / "tree", "new"), final)
    assert not is_published(final)


def test_publishing_removes_its_work_folder_on_error(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "final"
    with pytest.raises(RuntimeError), publishing(final) as tree:
        (tree / "half.txt").write_text("half")
        raise RuntimeError("the filler failed")
    assert not final.exists() and list(final.parent.iterdir()) == []
    with publishing(final) as tree:
        (tree / "whole.txt").write_text("whole")
    assert is_published(final) and list(final.parent.iterdir()) == [final]
