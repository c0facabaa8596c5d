"""carton_backend.errors: the build half's exceptions, one tree under BuildError, each also
the builtin a caller would catch, with its fields and a one-line message."""

from __future__ import annotations

import pytest

from carton_backend.errors import (
    BuildError,
    ConfigError,
    DownloadError,
    HashMismatch,
    IndexLookupError,
    RequirementsError,
    ResolveError,
    WheelBuildError,
)
from carton_hook.errors import CartonError, report

URL = "https://files.example.org/alpha-1.0-py3-none-any.whl"


@pytest.mark.parametrize(("error", "builtin"), [
    (ConfigError("/m/pyproject.toml", "tool.carton.python", "must be a list"), ValueError),
    (RequirementsError("/m/requirements.txt", "not found"), ValueError),
    (ResolveError("pip could not resolve"), RuntimeError),
    (DownloadError(URL, "HTTP 404"), OSError),
    (HashMismatch(URL, "0" * 64, "1" * 64), OSError),
    (IndexLookupError("the index is unreachable"), OSError),
    (WheelBuildError("cannot build"), RuntimeError),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__)
def test_each_error_is_a_build_error_and_the_builtin_a_caller_catches(
        error: BuildError, builtin: type[Exception]) -> None:
    assert isinstance(error, BuildError)
    assert isinstance(error, CartonError)
    assert isinstance(error, builtin)
    assert error.kind == "build"  # the kind of their base, BuildError
    assert "\n" not in str(error)


def test_a_config_error_names_the_file_and_the_key() -> None:
    err = ConfigError("/m/pyproject.toml", "tool.carton.bundle", 'must be "non-pypi" or "all"')
    assert (err.path, err.key) == ("/m/pyproject.toml", "tool.carton.bundle")
    assert str(err) == '/m/pyproject.toml: `tool.carton.bundle` must be "non-pypi" or "all"'


def test_a_requirements_error_names_the_file() -> None:
    err = RequirementsError("/m/reqs/base.txt", "includes itself (an -r/-c cycle)")
    assert err.path == "/m/reqs/base.txt"
    assert str(err) == "/m/reqs/base.txt: includes itself (an -r/-c cycle)"


def test_a_download_error_is_an_oserror_that_reads_as_its_message() -> None:
    """OSError formats two arguments as `[Errno x] y`: the message must be the only one."""
    err = DownloadError(URL, "HTTP 503")
    assert err.url == URL
    assert str(err) == f"{URL}: HTTP 503"
    assert err.errno is None and err.args == (f"{URL}: HTTP 503",)


def test_a_hash_mismatch_is_a_download_error_with_both_digests() -> None:
    expected, actual = "a" * 64, "b" * 64
    err = HashMismatch(URL, expected, actual)
    assert isinstance(err, DownloadError)
    assert (err.url, err.expected, err.actual) == (URL, expected, actual)
    assert str(err) == (f"{URL}: sha256 is {actual}, expected {expected}; "
                        "the file changed or was tampered with")


def test_a_build_error_is_reported_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise WheelBuildError("cannot build a wheel from ./libs/x for Python 3.11: no backend")
    except WheelBuildError as exc:
        assert report(exc) == 1
    assert capsys.readouterr().err == ("carton: error: cannot build a wheel from ./libs/x "
                                       "for Python 3.11: no backend\n")
