"""carton_backend.cli: `python -m carton_backend`'s parser and dispatch, its exit statuses
(0, 1 for a failure, 2 for usage, 130 when interrupted) and its one-line errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_backend.cli import _parser, main
from carton_backend.config import load_config
from carton_backend.lock.locking import settings
from carton_backend.resolution.environment import current_marker_environment, env_id, env_marker
from carton_backend.resolution.requirements import read_tree, requirements_hash
from carton_hook.formats.lockfile import LOCK_PATH, Environment, Lock, dump_lock
from carton_hook.formats.version import CREATED_BY

from ..conftest import ctrl_c_as_in_a_terminal
from ..factory import write_model

COMMANDS = ["lock", "pack", "check-reproducible", "export-pylock"]


@pytest.fixture(autouse=True)
def carton_logger() -> Iterator[None]:
    """main() attaches a stderr handler to the `carton` logger: each test gets the logger
    without one (so that its own stderr is the one written to), and it is put back."""
    logger = logging.getLogger("carton")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    for handler in saved[0]:
        if getattr(handler, "_carton", False):
            logger.removeHandler(handler)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def locked_model(folder: Path) -> Path:
    """A model folder with no requirements and a current lock for this interpreter, made
    without pip: the commands take their fast path (no resolver, no network). Not
    executable, so that a pack is quick."""
    write_model(folder, "", carton='entrypoint = "model:main"\nexecutable = false\n')
    config = load_config(folder)
    menv = current_marker_environment()
    lock = Lock(config.requirements, requirements_hash(read_tree(folder, config.requirements)),
                (Environment(env_id(menv), env_marker(menv), menv, ()),),
                created_by=CREATED_BY, extra={"settings": settings(config)})
    (folder / ".carton").mkdir()
    (folder / LOCK_PATH).write_bytes(dump_lock(lock))
    return folder


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m carton_backend")
    return err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "the following arguments are required: COMMAND" in usage_error([], capsys)


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["build", "."], capsys)
    assert "invalid choice: 'build'" in err
    for command in COMMANDS:
        assert f"'{command}'" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_needs_the_model_folder(command: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert "the following arguments are required: MODEL_DIR" in usage_error([command], capsys)


def test_an_option_of_another_command_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unrecognized arguments: --check" in usage_error(["pack", "--check", str(tmp_path)],
                                                            capsys)


def test_version_prints_who_packs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"{CREATED_BY}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_help(command: str, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps at the terminal's width
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m carton_backend {command} [-h] [-v] [-q]")
    assert "MODEL_DIR" in out


def test_the_options_reach_the_command() -> None:
    parser = _parser()
    args = parser.parse_args(["lock", "m", "--upgrade-package", "Alpha", "-q",
                              "--upgrade-package", "beta"])
    assert (args.command, args.model_dir, args.upgrade, args.check) == \
        ("lock", Path("m"), False, False)
    assert (args.upgrade_package, args.quiet, args.verbose) == (["Alpha", "beta"], True, False)
    args = parser.parse_args(["pack", "-v", "m", "-o", "out", "--list"])
    assert (args.outdir, args.list, args.verbose) == (Path("out"), True, True)
    assert parser.parse_args(["pack", "m"]).outdir is None
    args = parser.parse_args(["export-pylock", "m", "--environment", "cp311-linux-x86_64",
                              "--output", "pylock.toml"])
    assert (args.environment, args.output) == ("cp311-linux-x86_64", Path("pylock.toml"))


def test_a_failure_is_one_line_without_a_traceback(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"carton: error: {tmp_path / 'pyproject.toml'}: `pyproject.toml` "
                            "not found; is this a model folder?\n")


def test_verbose_shows_the_traceback_then_the_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lock", "--verbose", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "ConfigError" in err
    assert err.splitlines()[-1].startswith(f"carton: error: {tmp_path / 'pyproject.toml'}: ")


def test_a_relative_model_folder_is_taken_from_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = locked_model(tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    assert main(["lock", "--check", "model"]) == 0
    assert capsys.readouterr().out == f"current\n{folder.resolve() / 'requirements.txt'}\n"


@pytest.mark.parametrize(("flags", "said", "unsaid"), [
    ([], "carton: wrote ", "nothing to resolve"),
    (["-v"], "is current; nothing to resolve", None),  # debug lines
    (["-q"], None, "carton:"),
], ids=["default", "verbose", "quiet"])
def test_pack_writes_the_carton_and_says_as_much_as_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        flags: list[str], said: str | None, unsaid: str | None) -> None:
    folder = locked_model(tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    assert main(["pack", *flags, str(folder), "-o", "out"]) == 0
    carton = tmp_path / "out" / "demo_model-0.1.0.carton"
    assert carton.is_file()
    captured = capsys.readouterr()
    assert captured.out == ("" if "-q" in flags else f"{carton}\n")
    if said is not None:
        assert said in captured.err
    if unsaid is not None:
        assert unsaid not in captured.err
    if "-q" in flags:
        assert captured.err == ""


def test_pack_goes_into_the_model_folders_dist_by_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = locked_model(tmp_path / "model")
    assert main(["pack", "-q", str(folder)]) == 0
    assert [p.name for p in (folder / "dist").iterdir()] == ["demo_model-0.1.0.carton"]


def test_pack_list_neither_locks_nor_packs(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_model(tmp_path / "model", "alpha\n", files={"pkg/__init__.py": ""})
    assert main(["pack", "--list", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "model.py", "pkg/__init__.py", "pyproject.toml", "requirements.txt"]
    assert not (folder / ".carton").exists() and not (folder / "dist").exists()


def test_export_pylock_refuses_a_wrong_file_name_as_usage_before_locking(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_model(tmp_path / "model", "alpha\n")
    assert main(["export-pylock", str(folder), "-o", str(tmp_path / "locked.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"carton: error: {tmp_path / 'locked.toml'}: PEP 751 names the file ")
    assert not (folder / ".carton").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
def test_an_interrupt_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """The command is stopped while it reads pyproject.toml (a named pipe that the test
    holds open and never writes to): Ctrl-C there ends it with 130, quietly."""
    folder = tmp_path / "model"
    folder.mkdir()
    os.mkfifo(folder / "pyproject.toml")
    proc = subprocess.Popen([sys.executable, "-m", "carton_backend", "lock", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        # Opening the write end waits until the command has opened the read end; it then
        # waits for bytes that never come.
        writer = os.open(folder / "pyproject.toml", os.O_WRONLY)
        try:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(writer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert (out, err) == ("", "")
