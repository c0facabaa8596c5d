"""read_tree, requirements_hash and build_code_lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from carton_backend.errors import BuildError, RequirementsError
from carton_backend.resolution.requirements import (
    RequirementsFile,
    build_code_lines,
    read_tree,
    requirements_hash,
)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def one_file(lines: str) -> list[RequirementsFile]:
    return [RequirementsFile(path=Path("requirements.txt"), relpath="requirements.txt",
                             data=lines.encode(), lines=tuple(lines.splitlines()))]


def test_single_file(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "numpy==1.26.4\nrequests>=2\n"})
    [f] = read_tree(tmp_path, "requirements.txt")
    assert f.path == tmp_path / "requirements.txt"
    assert f.relpath == "requirements.txt"
    assert f.data == b"numpy==1.26.4\nrequests>=2\n"
    assert f.lines == ("numpy==1.26.4", "requests>=2")


def test_include_forms_relative_to_including_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "requirements.txt": "-r reqs/base.txt\n-rreqs/more.txt\nlast==1\n",
        "reqs/base.txt": "--requirement=sub/deep.txt\nbase==1\n",
        "reqs/sub/deep.txt": "--constraint ../pins.txt\ndeep==1\n",
        "reqs/pins.txt": "pin==1\n",
        "reqs/more.txt": "-c pins.txt\nmore==1\n",
        # decoys with the same names next to the top file: must not be read
        "sub/deep.txt": "wrong==1\n",
        "pins.txt": "wrong==1\n",
    })
    files = read_tree(tmp_path, "requirements.txt")
    # depth-first, in the order the include lines appear
    assert [f.relpath for f in files] == [
        "requirements.txt", "reqs/base.txt", "reqs/sub/deep.txt", "reqs/pins.txt",
        "reqs/more.txt", "reqs/pins.txt",
    ]
    assert files[2].lines == ("--constraint ../pins.txt", "deep==1")
    assert files[3].lines == ("pin==1",)
    assert files[3].path == tmp_path / "reqs" / "sub" / ".." / "pins.txt"


def test_requirements_in_a_subfolder(tmp_path: Path) -> None:
    write(tmp_path, {"deps/main.txt": "-r other.txt\n", "deps/other.txt": "x==1\n"})
    files = read_tree(tmp_path, "deps/main.txt")
    assert [f.relpath for f in files] == ["deps/main.txt", "deps/other.txt"]


def test_hash_stable(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r base.txt\na==1\n", "base.txt": "b==1\n"})
    first = requirements_hash(read_tree(tmp_path, "requirements.txt"))
    assert first == requirements_hash(read_tree(tmp_path, "requirements.txt"))
    assert len(first) == 64
    int(first, 16)
    # the same tree at another place hashes the same: paths are relative to the folder
    other = write(tmp_path / "copy", {"requirements.txt": "-r base.txt\na==1\n",
                                      "base.txt": "b==1\n"})
    assert requirements_hash(read_tree(other, "requirements.txt")) == first


def test_hash_changes_when_an_included_file_changes(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r base.txt\n", "base.txt": "b==1\n"})
    before = requirements_hash(read_tree(tmp_path, "requirements.txt"))
    (tmp_path / "base.txt").write_text("b==2\n")
    after = requirements_hash(read_tree(tmp_path, "requirements.txt"))
    assert after != before
    (tmp_path / "base.txt").write_text("b==1\n")
    assert requirements_hash(read_tree(tmp_path, "requirements.txt")) == before


def test_hash_changes_when_a_file_is_renamed(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r a.txt\n", "a.txt": "b==1\n"})
    before = requirements_hash(read_tree(tmp_path, "requirements.txt"))
    # same bytes everywhere except the include line: rename a.txt -> c.txt
    (tmp_path / "a.txt").rename(tmp_path / "c.txt")
    (tmp_path / "requirements.txt").write_text("-r c.txt\n")
    assert requirements_hash(read_tree(tmp_path, "requirements.txt")) != before


def test_hash_covers_relpath_not_only_bytes() -> None:
    a = [RequirementsFile(Path("x"), "a.txt", b"same\n", ("same",))]
    b = [RequirementsFile(Path("x"), "b.txt", b"same\n", ("same",))]
    assert requirements_hash(a) != requirements_hash(b)


def test_hash_no_collision_by_moving_bytes() -> None:
    a = [RequirementsFile(Path("x"), "a.txt", b"ab", ()),
         RequirementsFile(Path("y"), "b.txt", b"c", ())]
    b = [RequirementsFile(Path("x"), "a.txt", b"a", ()),
         RequirementsFile(Path("y"), "b.txt", b"bc", ())]
    assert requirements_hash(a) != requirements_hash(b)


def test_cycle(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r a.txt\n", "a.txt": "-r b.txt\n",
                     "b.txt": "-c a.txt\n"})
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path, "requirements.txt")
    assert str(info.value) == f"{tmp_path / 'a.txt'}: includes itself (an -r/-c cycle)"


def test_self_include(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "x==1\n-r ./requirements.txt\n"})
    with pytest.raises(RequirementsError, match=r"an -r/-c cycle"):
        read_tree(tmp_path, "requirements.txt")


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r a.txt\n-c a.txt\n", "a.txt": "a==1\n"})
    files = read_tree(tmp_path, "requirements.txt")
    assert [f.relpath for f in files] == ["requirements.txt", "a.txt", "a.txt"]


def test_missing_top_file(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path, "requirements.txt")
    err = info.value
    assert isinstance(err, BuildError)
    assert err.path == str(tmp_path / "requirements.txt")
    assert str(err) == (f"{tmp_path / 'requirements.txt'}: requirements file not found; "
                        "create it (it may be empty) or set [tool.carton] requirements")


def test_missing_included_file(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r sub/missing.txt\n"})
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path, "requirements.txt")
    assert str(info.value) == f"{tmp_path / 'sub' / 'missing.txt'}: requirements file not found"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"caf\xe9==1\n")
    with pytest.raises(RequirementsError, match="is not UTF-8 text"):
        read_tree(tmp_path, "requirements.txt")


@pytest.mark.parametrize(("line", "target"), [
    ("-r https://example.com/reqs.txt", "https://example.com/reqs.txt"),
    ("--constraint=http://127.0.0.1/c.txt", "http://127.0.0.1/c.txt"),
    ("-rfile:///etc/reqs.txt", "file:///etc/reqs.txt"),
])
def test_remote_include_refused(tmp_path: Path, line: str, target: str) -> None:
    write(tmp_path, {"requirements.txt": f"a==1\n{line}\n"})
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path, "requirements.txt")
    assert str(info.value) == (
        f"{tmp_path / 'requirements.txt'}: includes {target!r} from the network; carton "
        "hashes every include, so copy it into the folder")


def test_quoted_include(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": '-r "my reqs.txt"\n', "my reqs.txt": "a==1\n"})
    files = read_tree(tmp_path, "requirements.txt")
    assert [f.relpath for f in files] == ["requirements.txt", "my reqs.txt"]


def test_unclosed_quote_in_include(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": '-r "my reqs.txt\n'})
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path, "requirements.txt")
    assert str(info.value) == (f"{tmp_path / 'requirements.txt'}: cannot read the include "
                               "'-r \"my reqs.txt' (No closing quotation)")


def test_comments_blanks_and_continuations(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": (
        "# a comment\n"
        "\n"
        "   \n"
        "numpy==1.26.4  # pinned for the model\n"
        "requests \\\n"
        "  >=2.0 \\\n"
        "  ; python_version >= '3'\n"
        "name#notacomment==1\n"
        "   # indented comment\n"
        "last==1 \\\n"
    )})
    [f] = read_tree(tmp_path, "requirements.txt")
    assert f.lines == (
        "numpy==1.26.4",
        "requests   >=2.0   ; python_version >= '3'",
        "name#notacomment==1",
        "last==1",
    )


def test_comment_ending_in_backslash_does_not_swallow_next_line(tmp_path: Path) -> None:
    # pip never continues a comment line: the include after it is read
    write(tmp_path, {"requirements.txt": "# pins for CUDA \\\n-r cuda.txt\nfoo==1\\\n# c\n",
                     "cuda.txt": "torch==2.3.0\n"})
    files = read_tree(tmp_path, "requirements.txt")
    assert [f.relpath for f in files] == ["requirements.txt", "cuda.txt"]
    assert files[0].lines == ("-r cuda.txt", "foo==1")


def test_include_inside_continuation_and_comment(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r \\\n  base.txt  # the base\n",
                     "base.txt": "b==1\n"})
    files = read_tree(tmp_path, "requirements.txt")
    assert [f.relpath for f in files] == ["requirements.txt", "base.txt"]


def test_bom_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"\xef\xbb\xbf-r base.txt\n")
    (tmp_path / "base.txt").write_text("b==1\n")
    files = read_tree(tmp_path, "requirements.txt")
    assert [f.relpath for f in files] == ["requirements.txt", "base.txt"]
    assert files[0].data.startswith(b"\xef\xbb\xbf")  # hashed as the bytes on disk


FLAGGED = [
    "./local/dir",
    "/abs/dir",
    "git+https://github.com/org/repo.git@v1.0#egg=repo",
    "name @ https://x/y-1.0.tar.gz",
    "name @ git+https://github.com/org/repo.git",
    "name @ file:///abs/dir",
    "./dists/y-1.0.tar.gz",
    "https://x/y-1.0.zip",
    "-e ./local/dir",
    "--editable=git+https://github.com/org/repo.git#egg=repo",
]

NOT_FLAGGED = [
    "name==1.0",
    "name>=1,<2 ; python_version >= '3.10'",
    "name[extra]~=1.2",
    "name @ https://x/y-1.0-py3-none-any.whl",
    "name @ https://x/y-1.0-py3-none-any.whl#sha256=abc",
    "./wheels/y-1.0-py3-none-any.whl",
    "--index-url https://example.com/simple",
    "--extra-index-url=https://example.com/simple",
    "--only-binary :all:",
    "-r other.txt",
    "name>=1 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000",
]


@pytest.mark.parametrize("line", FLAGGED)
def test_build_code_line_flagged(line: str) -> None:
    files = one_file(f"ok==1\n{line}\n")
    assert build_code_lines(files) == [(files[0], line)]


@pytest.mark.parametrize("line", NOT_FLAGGED)
def test_build_code_line_not_flagged(line: str) -> None:
    assert build_code_lines(one_file(f"ok==1\n{line}\n")) == []


def test_build_code_lines_across_files(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "a==1\n-r more.txt\n./pkg\n",
                     "more.txt": "b @ https://x/b-1.0.tar.gz\nc==1\n"})
    files = read_tree(tmp_path, "requirements.txt")
    found = [(f.relpath, line) for f, line in build_code_lines(files)]
    assert found == [("requirements.txt", "./pkg"),
                     ("more.txt", "b @ https://x/b-1.0.tar.gz")]


def test_include_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"shared.txt": "alpha\n", "model/requirements.txt": "-r ../shared.txt\n"})
    with pytest.raises(RequirementsError) as info:
        read_tree(tmp_path / "model", "requirements.txt")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "model" / "requirements.txt"))
    assert "outside the model folder" in message and "shared.txt" in message
