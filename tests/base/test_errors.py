"""carton_hook/errors.py: each error's kind and builtin base, its message, and `report`,
the one writer of `carton: error:` lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from carton_hook import errors
from carton_hook.errors import (
    ArchiveError,
    CacheError,
    CartonError,
    CartonImportError,
    EntrypointError,
    FetchError,
    LockError,
    MirrorError,
    UnsafeMember,
    WheelError,
    WorkerError,
    report,
)

# Each error, the word that carries it over the worker boundary, and the builtin a
# caller catches it as.
KINDS: list[tuple[type[CartonError], str, type[BaseException]]] = [
    (CartonError, "error", Exception),
    (LockError, "lock", ValueError),
    (WheelError, "wheel", ValueError),
    (ArchiveError, "archive", ValueError),
    (UnsafeMember, "unsafe-member", ValueError),
    (CacheError, "cache", OSError),
    (FetchError, "fetch", OSError),
    (MirrorError, "mirror", OSError),
    (EntrypointError, "entrypoint", LookupError),
    (CartonImportError, "import", ImportError),
]


def _raised(error: BaseException) -> BaseException:
    """`error` with a traceback, as an edge catches it."""
    try:
        raise error
    except BaseException as exc:
        return exc


# ---------------------------------------------------------------- the tree


@pytest.mark.parametrize(("cls", "kind", "builtin"), KINDS, ids=[c.__name__ for c, _, _ in KINDS])
def test_each_error_names_its_kind_and_is_the_builtin_a_caller_catches(
        cls: type[CartonError], kind: str, builtin: type[BaseException]) -> None:
    assert cls.kind == kind
    assert issubclass(cls, CartonError) and issubclass(cls, builtin)


def test_the_table_covers_every_error_the_module_defines() -> None:
    defined = {value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, BaseException)
               and value.__module__ == errors.__name__}
    assert defined == {cls for cls, _, _ in KINDS} | {WorkerError}


def test_no_two_errors_share_a_kind() -> None:
    kinds = [cls.kind for cls, _, _ in KINDS]
    assert len(set(kinds)) == len(kinds)


def test_a_worker_error_carries_the_kind_the_worker_reported() -> None:
    err = WorkerError("model.carton: no lock section for CPython 3.11", "no-environment")
    assert (str(err), err.kind) == ("model.carton: no lock section for CPython 3.11",
                                    "no-environment")
    assert WorkerError("x", "crash").kind == "crash"
    assert isinstance(err, CartonError) and not isinstance(err, (OSError, ValueError))


# ---------------------------------------------------------------- messages


def test_a_lock_error_names_the_file_and_the_key() -> None:
    err = LockError("m/.carton/carton.lock", "expected a string", key="environments[0].id")
    assert str(err) == "m/.carton/carton.lock: environments[0].id: expected a string"
    assert (err.path, err.key) == ("m/.carton/carton.lock", "environments[0].id")


def test_a_lock_error_without_a_key_names_the_file_only() -> None:
    err = LockError("carton.lock", "not found")
    assert str(err) == "carton.lock: not found"
    assert err.key is None


def test_wheel_and_archive_errors_start_with_the_file() -> None:
    wheel = WheelError("demo-1.0-py3-none-any.whl", "RECORD is missing")
    archive = ArchiveError("model.carton", "MANIFEST is missing")
    assert (str(wheel), wheel.wheel) == ("demo-1.0-py3-none-any.whl: RECORD is missing",
                                         "demo-1.0-py3-none-any.whl")
    assert (str(archive), archive.path) == ("model.carton: MANIFEST is missing", "model.carton")


# ---------------------------------------------------------------- report


def test_report_writes_one_line_on_stderr_and_returns_the_failure_status(
        capsys: pytest.CaptureFixture[str]) -> None:
    status = report(_raised(FetchError("demo 1.0: the index answered 503")))
    out, err = capsys.readouterr()
    assert (status, out, err) == (1, "", "carton: error: demo 1.0: the index answered 503\n")


def test_report_appends_where_it_happened(capsys: pytest.CaptureFixture[str]) -> None:
    report(CartonImportError("six could not be installed"), where=" (needed at model.py:3)")
    assert capsys.readouterr().err == (
        "carton: error: six could not be installed (needed at model.py:3)\n")


def test_report_takes_a_message_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert report("unknown option --frobnicate") == 1
    assert capsys.readouterr().err == "carton: error: unknown option --frobnicate\n"


def test_any_exception_is_written_as_its_message_without_its_type(
        capsys: pytest.CaptureFixture[str]) -> None:
    report(_raised(LockError("carton.lock", "bad", key="lock-version")))
    report(_raised(ValueError("not carton's own")))
    report(_raised(OSError(2, "No such file or directory", "w.whl")))
    assert capsys.readouterr().err.splitlines() == [
        "carton: error: carton.lock: lock-version: bad",
        "carton: error: not carton's own",
        "carton: error: [Errno 2] No such file or directory: 'w.whl'",
    ]


def test_an_exception_without_a_message_is_named_by_its_type(
        capsys: pytest.CaptureFixture[str]) -> None:
    report(_raised(RuntimeError()))
    report(_raised(KeyError()), where=" (while reading the plan)")
    assert capsys.readouterr().err.splitlines() == [
        "carton: error: RuntimeError",
        "carton: error: KeyError (while reading the plan)",
    ]


def test_verbose_prints_the_traceback_and_its_cause_before_the_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        try:
            raise ConnectionResetError("peer hung up")
        except OSError as cause:
            raise FetchError("demo 1.0: the download failed") from cause
    except FetchError as exc:
        status = report(exc, verbose=True, where=" (at model.py:1)")
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("Traceback (most recent call last):\n")
    assert "ConnectionResetError: peer hung up" in err
    assert "direct cause of the following exception" in err
    assert "carton_hook.errors.FetchError: demo 1.0: the download failed\n" in err
    assert err.endswith("\ncarton: error: demo 1.0: the download failed (at model.py:1)\n")
    assert err.count("carton: error:") == 1


def test_without_verbose_there_is_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    report(_raised(CacheError("cannot create the cache")))
    assert "Traceback" not in capsys.readouterr().err


def test_verbose_with_a_message_prints_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    report("no such command or model 'inof'", verbose=True)
    assert capsys.readouterr().err == "carton: error: no such command or model 'inof'\n"


def test_a_process_that_exits_with_report_fails_with_status_1() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTON_")}
    code = ("import sys\nfrom carton_hook.errors import ArchiveError, report\n"
            "sys.exit(report(ArchiveError('m.carton', 'not a zip')))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "carton: error: m.carton: not a zip\n")
