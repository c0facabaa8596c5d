"""`CARTON_INDEX_URL`: locked files fetched by filename from a mirror's simple API (JSON
or HTML), still checked against the lock; the recorded URL is the fallback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": "import alpha\ndef main():\n    print(alpha.VALUE)\n"}


@pytest.fixture(params=[True, False], ids=["json-mirror", "html-mirror"])
def mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path / "mirror-root", json=request.param).start()
    yield index
    index.stop()


def alpha(tmp_path: Path, value: str) -> Path:
    return make_wheel(tmp_path / f"w-{value}", "alpha", "1.0",
                      {"alpha/__init__.py": f"VALUE = {value!r}\n"})


def files(index: PackageIndex) -> list[str]:
    return [r for r in index.requests if r.startswith("/files/")]


def test_the_mirror_serves_what_the_lock_names(
        tmp_path: Path, pypi: PackageIndex, mirror: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    wheel = alpha(tmp_path, "locked")
    pypi.add(wheel)
    mirror.add(wheel)
    carton = build_carton("alpha\n", MODEL)
    pypi.stop()  # only the mirror is reachable, as on a locked-down machine
    env = {**hermetic_env, "CARTON_INDEX_URL": mirror.url}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "locked\n", ""), proc.stderr
    assert files(mirror) == ["/files/alpha-1.0-py3-none-any.whl"]


def test_a_mirror_file_that_differs_falls_back_to_the_locked_url(
        tmp_path: Path, pypi: PackageIndex, mirror: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    pypi.add(alpha(tmp_path, "locked"))
    mirror.add(alpha(tmp_path, "tampered"))  # the same filename, other bytes
    carton = build_carton("alpha\n", MODEL)
    env = {**hermetic_env, "CARTON_INDEX_URL": mirror.url}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout) == (0, "locked\n"), proc.stderr
    assert "not from the mirror" in proc.stderr  # refused by the lock's size or sha256
    assert "sha256" in proc.stderr or "than the locked" in proc.stderr
    assert files(mirror) and files(pypi)[-1:] == ["/files/alpha-1.0-py3-none-any.whl"]


def test_a_mirror_without_the_project_falls_back(
        tmp_path: Path, pypi: PackageIndex, mirror: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    pypi.add(alpha(tmp_path, "locked"))
    carton = build_carton("alpha\n", MODEL)
    proc = run_hook({**hermetic_env, "CARTON_INDEX_URL": mirror.url}, carton)
    assert (proc.returncode, proc.stdout) == (0, "locked\n"), proc.stderr
    assert "does not list alpha-1.0-py3-none-any.whl" in proc.stderr
    pypi.stop()
    other = Path(hermetic_env["CARTON_HOME"] + "-2")
    proc = run_hook({**hermetic_env, "CARTON_HOME": str(other),
                     "CARTON_INDEX_URL": mirror.url}, carton)
    assert proc.returncode == 1
    assert "cannot import alpha" in proc.stderr and "not from the mirror" in proc.stderr


def test_a_mirror_carton_may_not_use_is_refused(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(alpha(tmp_path, "locked"))
    carton = build_carton("alpha\n", MODEL)
    env = {**hermetic_env, "CARTON_INDEX_URL": "http://mirror.example.com/simple/"}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout) == (0, "locked\n"), proc.stderr
    assert "only https URLs (or http to a loopback host)" in proc.stderr


def test_a_mirror_page_that_redirects_where_carton_may_not_go_is_refused(
        tmp_path: Path, pypi: PackageIndex, mirror: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    """The page's redirect is judged like a locked URL, before anything connects: here
    urllib.parse would read the loopback mirror and urllib3 `remote.example`."""
    wheel = alpha(tmp_path, "locked")
    pypi.add(wheel)
    mirror.add(wheel)
    carton = build_carton("alpha\n", MODEL)
    trick = f"http://remote.example\\@{urlsplit(mirror.url).netloc}/simple/alpha/"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", trick)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        env = {**hermetic_env, "CARTON_INDEX_URL": f"http://127.0.0.1:{server.server_port}/"}
        proc = run_hook(env, carton)
    finally:
        server.shutdown()
        server.server_close()
    assert (proc.returncode, proc.stdout) == (0, "locked\n"), proc.stderr
    assert "printable ASCII" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert mirror.requests == []


def test_asking_whether_a_mirror_is_set_does_not_load_the_page_reader() -> None:
    """Every first run's download asks; the page reader (html.parser) is loaded only to
    read a mirror's page."""
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "from carton_hook.installing.mirror import mirror_index\n"
            "assert mirror_index() is None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('html', "
            "'carton_hook.formats.simpleapi'))))\n")
    env = {k: v for k, v in os.environ.items() if k != "CARTON_INDEX_URL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
