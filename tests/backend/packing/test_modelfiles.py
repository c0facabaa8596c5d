"""model_files: which files of a model folder are packed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError
from carton_backend.packing.modelfiles import Excluder, model_files


def make_config(root: Path, exclude: tuple[str, ...] = ()) -> ModelConfig:
    return ModelConfig(root=root, name="m", version="1.0", entrypoint="model:main",
                       exclude=exclude)


def touch(root: Path, *paths: str) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"content of {rel}\n")


def relpaths(root: Path, exclude: tuple[str, ...] = ()) -> list[str]:
    return [f.relpath for f in model_files(make_config(root, exclude))]


def test_default_excludes(tmp_path: Path) -> None:
    touch(tmp_path,
          "pyproject.toml", "model.py", "requirements.txt",
          "dist/m-1.0.carton", ".git/HEAD", ".venv/bin/python", ".nox/x/y", ".tox/py/z",
          "__pycache__/model.cpython-311.pyc", "pkg/__pycache__/a.cpython-311.pyc",
          "pkg/deep/__pycache__/b.txt", "pkg/stale.pyc", "stale.pyc",
          "pkg/a.py", "pkg/dist/x.txt", "pkg/.git/HEAD", "pkg/.venv/y",
          ".gitignore", "dist.txt", ".venv.txt", "pkg/deep/c.pyx",
          ".ipynb_checkpoints/model-checkpoint.ipynb", "nb/.ipynb_checkpoints/x.ipynb",
          "pylock.toml", "pylock.cp311.toml", "pkg/pylock.toml")
    # Those with no inner "/" match at any depth, folders pruned whole; a pylock.toml only
    # at the top (where export-pylock writes it).
    assert relpaths(tmp_path) == [
        ".gitignore", ".venv.txt", "dist.txt", "model.py", "pkg/a.py", "pkg/deep/c.pyx",
        "pkg/pylock.toml", "pyproject.toml", "requirements.txt",
    ]


def test_folder_only_defaults_keep_files_of_that_name(tmp_path: Path) -> None:
    touch(tmp_path, "dist", "pkg/__pycache__", "model.py")
    assert relpaths(tmp_path) == ["dist", "model.py", "pkg/__pycache__"]


def test_excluder_rules() -> None:
    ex = Excluder(["dist/", "*.pyc", "data/raw/**", "/notes/", "logs/", "a/**/b", "c?.txt"])
    # a trailing "/" matches folders only
    assert ex.excluded("dist", True)
    assert not ex.excluded("dist", False)
    # no "/" inside: matches at any depth
    assert ex.excluded("pkg/sub/dist", True)
    assert ex.excluded("x.pyc", False)
    assert ex.excluded("pkg/sub/x.pyc", False)
    assert not ex.excluded("x.pyc.txt", False)
    # "*" stays within one segment, "**" crosses them; anchored at the folder
    assert ex.excluded("data/raw/a.csv", False)
    assert ex.excluded("data/raw/deep/er/a.csv", False)
    assert not ex.excluded("data/raw", True)
    assert not ex.excluded("other/data/raw/a.csv", False)
    assert not ex.excluded("data/rawx/a.csv", False)
    # a leading "/" anchors a pattern without an inner "/"
    assert ex.excluded("notes", True)
    assert not ex.excluded("sub/notes", True)
    assert ex.excluded("sub/logs", True)
    # "**/" matches zero or more folders
    assert ex.excluded("a/b", False)
    assert ex.excluded("a/x/y/b", False)
    assert not ex.excluded("z/a/b", False)
    # "?" is one character, not a "/"
    assert ex.excluded("c1.txt", False)
    assert not ex.excluded("c12.txt", False)
    assert not ex.excluded("c/.txt", False)


def test_user_patterns(tmp_path: Path) -> None:
    touch(tmp_path,
          "model.py", "data/raw/a.csv", "data/raw/deep/b.csv", "data/clean/a.csv",
          "scratch.tmp", "pkg/scratch.tmp", "pkg/keep.tmpx",
          "notes/todo.md", "pkg/notes/todo.md", "notes.md",
          "top/x.log", "pkg/top/x.log")
    assert relpaths(tmp_path, ("data/raw/**", "*.tmp", "notes/", "/top/")) == [
        "data/clean/a.csv", "model.py", "notes.md", "pkg/keep.tmpx", "pkg/top/x.log",
    ]


def test_anchored_pattern_with_inner_slash(tmp_path: Path) -> None:
    touch(tmp_path, "data/x.csv", "data/sub/x.csv", "other/data/x.csv")
    assert relpaths(tmp_path, ("data/*.csv",)) == ["data/sub/x.csv", "other/data/x.csv"]


def test_unanchored_file_pattern_also_prunes_folders(tmp_path: Path) -> None:
    touch(tmp_path, "cache/a.bin", "pkg/cache/b.bin", "pkg/keep.py")
    assert relpaths(tmp_path, ("cache",)) == ["pkg/keep.py"]


def test_pkg_info_only_skipped_at_top(tmp_path: Path) -> None:
    touch(tmp_path, "PKG-INFO", "model.py", "sub/PKG-INFO")
    assert relpaths(tmp_path) == ["model.py", "sub/PKG-INFO"]


def test_carton_tmp_files_skipped(tmp_path: Path) -> None:
    touch(tmp_path, ".carton-tmp-abc123", "model.py", "pkg/.carton-tmp-x",
          ".carton-tmp-dir/inner.txt", "carton-tmp-keep")
    assert relpaths(tmp_path) == ["carton-tmp-keep", "model.py"]


def test_the_runtimes_metadata_pack_is_left_out(tmp_path: Path) -> None:
    """A copy of a model folder the runtime extracted brings one; a carton that holds one
    is refused (formats/archive.py)."""
    touch(tmp_path, "model.py", ".carton/carton.lock", ".carton/dist-info.pack",
          "pkg/.carton/dist-info.pack")
    assert relpaths(tmp_path) == [".carton/carton.lock", "model.py",
                                  "pkg/.carton/dist-info.pack"]


def test_executables_by_mode_bits(tmp_path: Path) -> None:
    touch(tmp_path, "run.sh", "group.sh", "plain.py")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "group.sh").chmod(0o654)
    (tmp_path / "plain.py").chmod(0o644)
    files = {f.relpath: f for f in model_files(make_config(tmp_path))}
    assert files["run.sh"].executable is True
    assert files["group.sh"].executable is True
    assert files["plain.py"].executable is False
    assert files["run.sh"].path == tmp_path / "run.sh"


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_symlinked_folders_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside, "secret.txt")
    root = tmp_path / "m"
    touch(root, "model.py", "real/file.txt")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "file-link.txt").symlink_to(root / "model.py")
    files = model_files(make_config(root))
    assert [f.relpath for f in files] == ["file-link.txt", "model.py", "real/file.txt"]


def test_sorted_by_relpath(tmp_path: Path) -> None:
    touch(tmp_path, "b.py", "a/z.py", "a.py", "A.py", "a-b/c.py", "a/b/c.py")
    names = relpaths(tmp_path)
    assert names == sorted(names)
    assert names == ["A.py", "a-b/c.py", "a.py", "a/b/c.py", "a/z.py", "b.py"]


@pytest.mark.skipif(sys.platform == "win32", reason="newlines in file names")
def test_newline_in_file_name(tmp_path: Path) -> None:
    touch(tmp_path, "model.py", "bad\nname.txt")
    with pytest.raises(BuildError) as info:
        model_files(make_config(tmp_path))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "bad\nname.txt") + ": ")
    assert "cannot be packed (control character" in message
    assert message.endswith("rename it or exclude it")


def test_newline_in_excluded_file_name_is_fine(tmp_path: Path) -> None:
    touch(tmp_path, "model.py", "bad\nname.tmp")
    assert relpaths(tmp_path, ("*.tmp",)) == ["model.py"]


@pytest.mark.skipif(sys.platform == "win32", reason="backslashes are separators there")
@pytest.mark.parametrize(("name", "fragment"), [
    ("a\\b.txt", "backslash"),
    ("a:b.txt", "colon"),
    ("what?.md", "* ?"),
    ("con.py", "reserved device name"),
    ("trailing.", "ending in a dot"),
])
def test_names_the_archive_readers_refuse(tmp_path: Path, name: str, fragment: str) -> None:
    touch(tmp_path, name)
    with pytest.raises(BuildError, match="cannot be packed") as info:
        model_files(make_config(tmp_path))
    assert fragment in str(info.value)


@pytest.mark.skipif(sys.platform != "linux", reason="arbitrary bytes in file names")
def test_non_utf8_file_name(tmp_path: Path) -> None:
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("x")
    with pytest.raises(BuildError, match="a file name is not valid UTF-8"):
        model_files(make_config(tmp_path))


def test_env_files_and_virtual_environments_stay_out_unless_named(tmp_path: Path) -> None:
    touch(tmp_path, "model.py", ".env", ".env.local", "cfg/.env.prod", ".env.example",
          "envs/py311/pyvenv.cfg", "envs/py311/lib/x.py", "tools/pyvenv.cfg.txt",
          "keep-env/pyvenv.cfg", "keep-env/a.py")
    assert relpaths(tmp_path) == ["model.py", "tools/pyvenv.cfg.txt"]
    assert relpaths(tmp_path, ("!.env.example", "!keep-env/")) == [
        ".env.example", "keep-env/a.py", "keep-env/pyvenv.cfg", "model.py",
        "tools/pyvenv.cfg.txt"]


def test_the_model_folders_gitignore_is_honoured_but_not_in_carton_own_folder(
        tmp_path: Path) -> None:
    touch(tmp_path, "model.py", "mlruns/0/meta.yaml", ".ipynb_checkpoints/x.ipynb",
          "w.ckpt", "best.ckpt", "#notes", "a.txt", "b.txt", "c.txt", "sub/a.txt",
          ".carton/carton.lock", ".carton/bundled_wheels/x/y-1.0-py3-none-any.whl")
    (tmp_path / ".gitignore").write_text(
        "# experiment output\n\nmlruns/\n.ipynb_checkpoints/\n*.ckpt\n!best.ckpt\n"
        "\\#notes\n/[ab].txt   \n*.whl\n.carton/\n")
    assert relpaths(tmp_path) == [
        ".carton/bundled_wheels/x/y-1.0-py3-none-any.whl", ".carton/carton.lock",
        ".gitignore", "best.ckpt", "c.txt", "model.py", "sub/a.txt"]
    # [tool.carton] exclude comes last: it may take back what .gitignore left out
    assert "w.ckpt" in relpaths(tmp_path, ("!w.ckpt",))


def test_excluder_negation_classes_and_escapes() -> None:
    ex = Excluder(["*.log", "!keep.log", "data/[0-9]*.csv", "[!x]y", "\\!bang", "a\\*b"])
    assert ex.excluded("run.log", False) and not ex.excluded("keep.log", False)
    assert ex.verdict("keep.log", False) is False and ex.verdict("x.py", False) is None
    assert ex.excluded("data/1.csv", False) and not ex.excluded("data/x.csv", False)
    assert ex.excluded("zy", False) and not ex.excluded("xy", False)
    assert ex.excluded("!bang", False)
    assert ex.excluded("a*b", False) and not ex.excluded("axb", False)
